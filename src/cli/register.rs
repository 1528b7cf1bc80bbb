//! `multi-casskop register`: wires a data-plane cluster into the control plane in one command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};

use super::common::contexts::{context_fix, der_to_pem};
use super::common::steps::{StepFailed, Steps, Stop};
use crate::sites::client_config::{ClientConfigRef, client_config_resource};
use crate::sites::credentials;
use crate::sites::exported::{self, IssuedToken};
use crate::sites::probe::{self, Failure, FailureKind, Permission};
use crate::sites::{CredentialSource, Credentials, KubeconfigPolicy};

const EXAMPLE: &str = "\
Example:
  multi-casskop register --source-context k8s-cluster2 --dest-context k8s-cluster1 \\
      --source-namespace cassandra --dest-namespace cassandra
  # then start the controller with: multi-casskop --local k8s-cluster1 --remote k8s-cluster2

Steps (one progress line each on stderr): load both contexts, refuse a cluster registered to
itself, reach the source and check its namespace, reach the destination and check its namespace
(nothing is written before these pass), ensure the service account, create the Role and
RoleBinding, get a token, write the Secret (and the ClientConfig), revoke older tokens of this
registration, verify the new credentials.

RBAC created on the source (a Role and a RoleBinding named after the service account,
in --source-namespace; least privilege, nothing cluster-wide):
  - cassandraclusters.db.orange.com: get, list, watch (the controller watches every
    site), create, patch (server-side apply; an apply may create), delete (only used for
    MultiCasskops with deleteCassandraCluster: true). No update: it never replaces them.
  - namespaces, only this one (resourceNames): get (lets `check` confirm it exists)
  - serviceaccounts/token, only this service account (resourceNames): create (the controller
    renews its own token with it before it expires)
No Events rule: the controller records Events in the control-plane cluster only.

Token: a bound token from the TokenRequest API, valid 24 h (--token-ttl; the API server may
grant less). The controller renews it when a third of its lifetime is left and writes the new
one to the same Secret. --legacy-token writes a never-expiring token Secret instead (discouraged).

Re-running is safe: it writes a new token to the Secret (token Secrets of earlier --legacy-token
registrations under the same --destination-name are deleted once the new Secret is written) and
updates the Secret, Role and RoleBinding in place.";

/// Arguments of `multi-casskop register`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    about = "Register a data-plane cluster with the control plane: service account, RBAC and token on the source, credentials Secret on the destination",
    after_help = EXAMPLE
)]
pub struct RegisterArgs {
    /// Kubeconfig context of the cluster to register (the data plane, where CassandraClusters will be created).
    #[arg(long, value_name = "CONTEXT")]
    pub source_context: String,
    /// Kubeconfig context of the control-plane cluster, where the controller runs and the Secret is written.
    #[arg(long, value_name = "CONTEXT")]
    pub dest_context: String,
    /// Kubeconfig file holding --source-context (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub source_kubeconfig: Option<PathBuf>,
    /// Kubeconfig file holding --dest-context (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub dest_kubeconfig: Option<PathBuf>,
    /// Namespace on the source for the service account, its RBAC and the CassandraClusters
    /// (default: the source context's namespace, else "default").
    #[arg(long, value_name = "NS")]
    pub source_namespace: Option<String>,
    /// The controller's namespace on the destination, where the Secret is written
    /// (default: the destination context's namespace, else "default").
    #[arg(long, value_name = "NS")]
    pub dest_namespace: Option<String>,
    /// Service account on the source that the controller acts as; created if missing.
    #[arg(long, value_name = "NAME", default_value = "multi-casskop")]
    pub serviceaccount_name: String,
    /// Name of the Secret (and of the remote: `multi-casskop --remote NAME`)
    /// (default: a DNS-safe form of --source-context).
    #[arg(long, value_name = "NAME")]
    pub destination_name: Option<String>,
    /// Source API server IP to put in the credentials instead of the kubeconfig's address
    /// (when the control plane reaches the source by another address). Needs --override-src-port.
    #[arg(long, value_name = "IP", requires = "override_src_port")]
    pub override_src_ip: Option<String>,
    /// Source API server port to use with --override-src-ip.
    #[arg(long, value_name = "PORT", requires = "override_src_ip")]
    pub override_src_port: Option<u16>,
    /// Lifetime to ask for the bound token from the TokenRequest API (e.g. 24h, 30d; at least
    /// 10m) [default: 24h]. The API server may grant less; the controller renews the token when
    /// a third of what was granted is left.
    #[arg(long, value_name = "DURATION", value_parser = exported::parse_token_ttl, conflicts_with = "legacy_token")]
    pub token_ttl: Option<std::time::Duration>,
    /// Write a never-expiring token Secret instead of a bound token. Discouraged: the token
    /// works until its Secret is deleted (a leaked copy too), the controller cannot renew it,
    /// and Kubernetes 1.24+ no longer makes such tokens by itself.
    #[arg(long)]
    pub legacy_token: bool,
    /// Print what would be created and change nothing (only reads are made).
    #[arg(long)]
    pub dry_run: bool,
    /// Do not create the Role and RoleBinding on the source (create them yourself; see below).
    #[arg(long)]
    pub no_rbac: bool,
    /// Also create a k8ssandra ClientConfig named --destination-name pointing at the Secret.
    #[arg(long)]
    pub client_config: bool,
}

/// Creates `obj`, or replaces it in place when it exists (keeping its resourceVersion).
pub(crate) async fn create_or_replace(
    api: &Api<DynamicObject>,
    name: &str,
    obj: serde_json::Value,
) -> Result<&'static str, Failure> {
    let mut obj: DynamicObject = serde_json::from_value(obj).map_err(|e| Failure {
        kind: FailureKind::Other,
        message: e.to_string(),
    })?;
    match api.get_opt(name).await.map_err(|e| probe::classify(&e))? {
        None => {
            api.create(&PostParams::default(), &obj)
                .await
                .map_err(|e| probe::classify(&e))?;
            Ok("created")
        }
        Some(live) => {
            obj.metadata.resource_version = live.metadata.resource_version;
            api.replace(name, &PostParams::default(), &obj)
                .await
                .map_err(|e| probe::classify(&e))?;
            Ok("updated")
        }
    }
}

fn rbac_api(client: &kube::Client, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind),
        plural,
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// Runs the subcommand; the exit code is the process's.
pub async fn run(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    let total = 13 + usize::from(args.client_config);
    let mut steps = Steps::new("register", total);
    let result = register(&args, &mut steps).await;
    steps.finish(result)
}

/// One end of a registration: a kubeconfig context, its credentials, the namespace used there.
struct Side {
    context: String,
    creds: Credentials,
    namespace: String,
}

/// A reached cluster: its client and API server URL.
struct Reached {
    client: kube::Client,
    server: String,
}

/// A registration whose two clusters were both reached; the writes are its methods.
struct Registration<'a> {
    args: &'a RegisterArgs,
    /// Name of the Secret, the remote and the ClientConfig on the destination.
    name: String,
    src: Side,
    dst: Side,
    src_api: Reached,
    dst_api: Reached,
}

/// Every step in order; the first failure stops it.
async fn register(args: &RegisterArgs, steps: &mut Steps) -> Result<(), Stop> {
    let name = args
        .destination_name
        .clone()
        .unwrap_or_else(|| exported::dns_safe(&args.source_context));
    let src = load_side(
        steps,
        "load source context",
        &args.source_context,
        args.source_kubeconfig.as_deref(),
        args.source_namespace.as_ref(),
    )
    .await?;
    steps.ok(&format!(
        "context {} -> {} (namespace {})",
        src.context,
        src.creds.server(),
        src.namespace
    ));
    let dst = load_side(
        steps,
        "load destination context",
        &args.dest_context,
        args.dest_kubeconfig.as_deref(),
        args.dest_namespace.as_ref(),
    )
    .await?;
    steps.ok(&format!(
        "context {} -> {} (namespace {}, secret {name})",
        dst.context,
        dst.creds.server(),
        dst.namespace
    ));
    refuse_self_registration(args, &src, &dst, steps)?;
    let src_api = reach_source(&src, steps).await?;
    check_namespace(
        steps,
        "check source namespace",
        &src,
        &src_api,
        "--source-namespace",
    )
    .await?;
    let dst_api = reach_destination(&src, &src_api, &dst, steps).await?;
    check_namespace(
        steps,
        "check destination namespace",
        &dst,
        &dst_api,
        "--dest-namespace (the controller's namespace)",
    )
    .await?;
    let reg = Registration {
        args,
        name,
        src,
        dst,
        src_api,
        dst_api,
    };
    reg.write(steps).await
}

/// Loads a context's credentials and picks the namespace: `namespace` flag, else the
/// context's, else `default`.
async fn load_side(
    steps: &mut Steps,
    step: &str,
    context: &str,
    kubeconfig: Option<&Path>,
    namespace: Option<&String>,
) -> Result<Side, StepFailed> {
    steps.begin(step);
    let creds = credentials::require_local_context(kubeconfig, Some(context))
        .await
        .map_err(|e| StepFailed::new(context, e.to_string(), context_fix(kubeconfig)))?;
    let namespace = namespace
        .cloned()
        .or(creds.default_namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    Ok(Side {
        context: context.to_string(),
        creds,
        namespace,
    })
}

/// Refuses a source and a destination that are visibly the same cluster (same context and
/// file, or the same server URL).
fn refuse_self_registration(
    args: &RegisterArgs,
    src: &Side,
    dst: &Side,
    steps: &mut Steps,
) -> Result<(), StepFailed> {
    steps.begin("refuse self-registration");
    let same_file = args.source_kubeconfig == args.dest_kubeconfig;
    if (same_file && src.context == dst.context)
        || same_server(&src.creds.server(), &dst.creds.server())
    {
        return Err(StepFailed::new(
            &src.context,
            format!(
                "source {} and destination {} are the same cluster ({}): a cluster cannot be registered to itself",
                src.context,
                dst.context,
                src.creds.server()
            ),
            "pass the data-plane cluster as --source-context and the control-plane cluster as --dest-context; the local cluster needs no registration (it is --local)",
        ));
    }
    steps.ok("source and destination are different clusters");
    Ok(())
}

/// Builds the source's client and checks its API server answers.
async fn reach_source(src: &Side, steps: &mut Steps) -> Result<Reached, StepFailed> {
    let client = src.creds.client().map_err(|e| {
        StepFailed::new(
            &src.context,
            e.to_string(),
            "fix the source context's certificate data",
        )
    })?;
    let server = src.creds.server();
    steps.begin("reach source cluster");
    match probe::reach(&client).await {
        Ok(v) => steps.ok(&format!("{} answers at {server} ({v})", src.context)),
        Err(f) => {
            return Err(StepFailed::new(
                &src.context,
                format!("{server}: {}", f.message),
                probe::fix_for(f.kind, &src.context, &server),
            ));
        }
    }
    Ok(Reached { client, server })
}

/// Builds the destination's client, checks it answers and is not the source under another
/// address (the kube-system namespace UID identifies a cluster).
async fn reach_destination(
    src: &Side,
    src_api: &Reached,
    dst: &Side,
    steps: &mut Steps,
) -> Result<Reached, StepFailed> {
    steps.begin("reach destination cluster");
    let client = dst.creds.client().map_err(|e| {
        StepFailed::new(
            &dst.context,
            e.to_string(),
            "fix the destination context's certificate data",
        )
    })?;
    let server = dst.creds.server();
    let version = probe::reach(&client).await.map_err(|f| {
        StepFailed::new(
            &dst.context,
            format!("{server}: {}", f.message),
            probe::fix_for(f.kind, &dst.context, &server),
        )
    })?;
    let (a, b) = (
        probe::cluster_uid(&src_api.client).await,
        probe::cluster_uid(&client).await,
    );
    if let (Some(a), Some(b)) = (a, b)
        && a == b
    {
        return Err(StepFailed::new(
            &dst.context,
            format!(
                "source {} ({}) and destination {} ({server}) are the same cluster (kube-system namespace uid {a}): a cluster cannot be registered to itself",
                src.context, src_api.server, dst.context
            ),
            "pass the data-plane cluster as --source-context and the control-plane cluster as --dest-context",
        ));
    }
    steps.ok(&format!("{} answers at {server} ({version})", dst.context));
    Ok(Reached { client, server })
}

/// Checks the side's namespace exists (going on when namespaces may not be read).
async fn check_namespace(
    steps: &mut Steps,
    step: &str,
    side: &Side,
    api: &Reached,
    flag: &str,
) -> Result<(), StepFailed> {
    steps.begin(step);
    let (ctx, ns) = (&side.context, &side.namespace);
    match probe::namespace_exists(&api.client, ns).await {
        Ok(Some(true)) => steps.ok(&format!("namespace {ns} exists")),
        Ok(None) => steps.ok(&format!(
            "namespace {ns}: cannot tell (no right to read namespaces), continuing"
        )),
        Ok(Some(false)) => {
            return Err(StepFailed::new(
                ctx,
                format!("namespace {ns} does not exist"),
                format!("create it (kubectl --context {ctx} create namespace {ns}) or pass {flag}"),
            ));
        }
        Err(f) => {
            return Err(StepFailed::new(
                ctx,
                f.message,
                probe::fix_for(f.kind, ctx, &api.server),
            ));
        }
    }
    Ok(())
}

impl Registration<'_> {
    /// `(dry run) would ` in a dry run, else nothing: the prefix of what a step would do.
    fn dry(&self) -> &'static str {
        if self.args.dry_run {
            "(dry run) would "
        } else {
            ""
        }
    }

    /// A failure on the source, with the generic fix for its kind unless `fix` is given.
    fn src_failed(&self, what: String, f: &Failure, fix: Option<String>) -> StepFailed {
        let fix =
            fix.unwrap_or_else(|| probe::fix_for(f.kind, &self.src.context, &self.src_api.server));
        StepFailed::new(&self.src.context, what, fix)
    }

    /// A failure on the destination, with the generic fix for its kind unless `fix` is given.
    fn dst_failed(&self, what: String, f: &Failure, fix: Option<String>) -> StepFailed {
        let fix =
            fix.unwrap_or_else(|| probe::fix_for(f.kind, &self.dst.context, &self.dst_api.server));
        StepFailed::new(&self.dst.context, what, fix)
    }

    /// The writes, source first, then the check that the new credentials work.
    async fn write(&self, steps: &mut Steps) -> Result<(), Stop> {
        self.ensure_service_account(steps).await?;
        let sa = &self.args.serviceaccount_name;
        let role = exported::site_role(sa, &self.src.namespace);
        let binding = exported::site_role_binding(sa, &self.src.namespace, sa);
        self.write_rbac(steps, &role, &binding).await?;
        let token = self.get_token(steps).await?;
        let server = self.exported_server();
        steps.begin("write credentials Secret");
        let secret = self.write_secret(steps, token.as_ref(), &server).await?;
        if self.args.client_config {
            self.write_client_config(steps).await?;
        }
        self.revoke_older_tokens(steps, token.as_ref()).await?;
        steps.begin("verify the new credentials");
        let Some(secret) = secret else {
            steps.ok(&format!(
                "{}check that the new token may list cassandraclusters in {}",
                self.dry(),
                self.src.namespace
            ));
            if self.args.dry_run {
                self.print_plan(&role, &binding)?;
            }
            return Ok(());
        };
        self.verify(steps, &secret, &server).await?;
        eprintln!(
            "register: done: start the controller with --remote {} (namespace {})",
            self.name, self.dst.namespace
        );
        Ok(())
    }

    /// Creates the service account on the source when it is missing.
    async fn ensure_service_account(&self, steps: &mut Steps) -> Result<(), StepFailed> {
        steps.begin("ensure service account");
        let (ns, sa, ctx) = (
            &self.src.namespace,
            &self.args.serviceaccount_name,
            &self.src.context,
        );
        let api: Api<ServiceAccount> = Api::namespaced(self.src_api.client.clone(), ns);
        match api.get_opt(sa).await {
            Ok(Some(_)) => steps.ok(&format!("service account {ns}/{sa} exists")),
            Ok(None) if self.args.dry_run => {
                steps.ok(&format!("{}create service account {ns}/{sa}", self.dry()));
            }
            Ok(None) => match api
                .create(&PostParams::default(), &service_account(sa, ns))
                .await
            {
                Ok(_) => steps.ok(&format!("service account {ns}/{sa} created")),
                Err(e) => {
                    let f = probe::classify(&e);
                    let fix = (f.kind == FailureKind::Forbidden).then(|| format!(
                        "you may not create service accounts in {ns}: ask an admin to run `kubectl --context {ctx} -n {ns} create serviceaccount {sa}`, or use an identity that may"
                    ));
                    return Err(self.src_failed(
                        format!(
                            "service account {ns}/{sa} is missing and could not be created: {}",
                            f.message
                        ),
                        &f,
                        fix,
                    ));
                }
            },
            Err(e) => {
                let f = probe::classify(&e);
                return Err(self.src_failed(
                    format!("cannot read service account {ns}/{sa}: {}", f.message),
                    &f,
                    None,
                ));
            }
        }
        Ok(())
    }

    /// Creates or updates the Role and RoleBinding on the source (unless --no-rbac).
    async fn write_rbac(
        &self,
        steps: &mut Steps,
        role: &serde_json::Value,
        binding: &serde_json::Value,
    ) -> Result<(), StepFailed> {
        steps.begin("create Role and RoleBinding");
        let (ns, sa) = (&self.src.namespace, &self.args.serviceaccount_name);
        if self.args.no_rbac {
            steps.ok("skipped (--no-rbac): create them yourself, see --help");
            return Ok(());
        }
        if self.args.dry_run {
            steps.ok(&format!(
                "{}create or update Role and RoleBinding {ns}/{sa}",
                self.dry()
            ));
            return Ok(());
        }
        let client = &self.src_api.client;
        let written = async {
            let r =
                create_or_replace(&rbac_api(client, ns, "Role", "roles"), sa, role.clone()).await?;
            let b = create_or_replace(
                &rbac_api(client, ns, "RoleBinding", "rolebindings"),
                sa,
                binding.clone(),
            )
            .await?;
            Ok::<_, Failure>((r, b))
        };
        match written.await {
            Ok((r, b)) => {
                steps.ok(&format!("Role {ns}/{sa} {r}, RoleBinding {ns}/{sa} {b}"));
                Ok(())
            }
            Err(f) => {
                let fix = (f.kind == FailureKind::Forbidden).then(|| "creating a Role needs at least the rights it grants (and rights on roles/rolebindings): run as a namespace admin, or pass --no-rbac and let an admin create them (see --help)".to_string());
                Err(self.src_failed(
                    format!("cannot write Role/RoleBinding {ns}/{sa}: {}", f.message),
                    &f,
                    fix,
                ))
            }
        }
    }

    /// A new token for the service account (none in a dry run).
    async fn get_token(&self, steps: &mut Steps) -> Result<Option<IssuedToken>, StepFailed> {
        steps.begin("get token");
        let (ns, sa, ctx) = (
            &self.src.namespace,
            &self.args.serviceaccount_name,
            &self.src.context,
        );
        if self.args.dry_run {
            steps.ok(
                &match exported::token_lifetime(self.args.token_ttl, self.args.legacy_token) {
                    Some(ttl) => format!(
                        "{}request a token valid {} s for {ns}/{sa}",
                        self.dry(),
                        ttl.as_secs()
                    ),
                    None => format!("{}create a token Secret for {ns}/{sa}", self.dry()),
                },
            );
            return Ok(None);
        }
        let client = &self.src_api.client;
        let got = match exported::token_lifetime(self.args.token_ttl, self.args.legacy_token) {
            Some(ttl) => exported::request_token(client, ns, sa, ttl).await,
            None => exported::create_token_secret(client, ns, sa, &self.name).await,
        };
        match got {
            Ok(t) => {
                steps.ok(&match (&t.secret_name, &t.expires) {
                    (Some(s), _) => format!("token Secret {ns}/{s} filled by the token controller"),
                    (None, Some(exp)) => format!("TokenRequest token valid until {exp}"),
                    _ => "token issued".to_string(),
                });
                Ok(Some(t))
            }
            Err(f) => {
                let fix = (f.kind == FailureKind::Forbidden).then(|| {
                    format!("you need create on serviceaccounts/token or secrets in {ns} on {ctx}")
                });
                Err(self.src_failed(
                    format!("cannot get a token for {ns}/{sa}: {}", f.message),
                    &f,
                    fix,
                ))
            }
        }
    }

    /// The source API server URL written in the credentials (`--override-src-ip/port` win).
    fn exported_server(&self) -> String {
        match (&self.args.override_src_ip, self.args.override_src_port) {
            (Some(ip), Some(port)) if ip.contains(':') => format!("https://[{ip}]:{port}"),
            (Some(ip), Some(port)) => format!("https://{ip}:{port}"),
            _ => self.src_api.server.trim_end_matches('/').to_string(),
        }
    }

    /// The source's CA: what the source kubeconfig trusts for this server, else what the
    /// cluster published (in the token Secret, then in `kube-root-ca.crt`).
    async fn source_ca(&self, token: Option<&IssuedToken>) -> Option<Vec<u8>> {
        if let Some(ca) = self.src.creds.config.root_cert.as_ref() {
            return Some(der_to_pem(ca));
        }
        if let Some(ca) = token.and_then(|t| t.ca_pem.clone()) {
            return Some(ca);
        }
        exported::root_ca_from_configmap(&self.src_api.client, &self.src.namespace).await
    }

    /// Writes the credentials Secret on the destination; returns it (none in a dry run).
    async fn write_secret(
        &self,
        steps: &mut Steps,
        token: Option<&IssuedToken>,
        server: &str,
    ) -> Result<Option<Secret>, Stop> {
        let (ns, name, dst) = (&self.dst.namespace, &self.name, &self.dst.context);
        let Some(ca_pem) = self.source_ca(token).await else {
            return Err(StepFailed::new(
                &self.src.context,
                "no CA certificate found for the source (kubeconfig has none, no ca.crt in the token, no kube-root-ca.crt ConfigMap)",
                "add certificate-authority-data to the source context in your kubeconfig",
            )
            .into());
        };
        let secret = match token {
            Some(t) => Some(
                exported::exported_secret(
                    name,
                    Some(ns),
                    server,
                    &ca_pem,
                    &t.token,
                    &self.src.namespace,
                )
                .map_err(|e| StepFailed::new(dst, e.to_string(), "report this bug"))?,
            ),
            None => None,
        };
        if self.args.dry_run {
            let api: Api<Secret> = Api::namespaced(self.dst_api.client.clone(), ns);
            let exists = api.get_opt(name).await.ok().flatten().is_some();
            steps.ok(&format!(
                "{}{} Secret {ns}/{name} (keys server, ca.crt, namespace, token, config, kubeconfig; server {server})",
                self.dry(),
                if exists { "update" } else { "create" }
            ));
            return Ok(secret);
        }
        let Some(s) = &secret else {
            return Ok(secret);
        };
        let value = serde_json::to_value(s)?;
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.dst_api.client.clone(),
            ns,
            &ApiResource::erase::<Secret>(&()),
        );
        match create_or_replace(&api, name, value).await {
            Ok(verb) => steps.ok(&format!(
                "Secret {ns}/{name} {verb} in {dst} (server {server})"
            )),
            Err(f) => {
                let fix = (f.kind == FailureKind::Forbidden)
                    .then(|| format!("you need create/update on secrets in {ns} on {dst}"));
                return Err(self
                    .dst_failed(
                        format!("cannot write Secret {ns}/{name}: {}", f.message),
                        &f,
                        fix,
                    )
                    .into());
            }
        }
        Ok(secret)
    }

    /// Writes the k8ssandra ClientConfig pointing at the Secret on the destination.
    async fn write_client_config(&self, steps: &mut Steps) -> Result<(), StepFailed> {
        steps.begin("write ClientConfig");
        let (ns, name, dst) = (&self.dst.namespace, &self.name, &self.dst.context);
        if self.args.dry_run {
            steps.ok(&format!(
                "{}create or update ClientConfig {ns}/{name}",
                self.dry()
            ));
            return Ok(());
        }
        let cc = ClientConfigRef::manifest(name, ns, name, name);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.dst_api.client.clone(), ns, &client_config_resource());
        match create_or_replace(&api, name, cc).await {
            Ok(verb) => {
                steps.ok(&format!("ClientConfig {ns}/{name} {verb}"));
                Ok(())
            }
            Err(f) => {
                let fix = (f.kind == FailureKind::NotFound).then(|| format!(
                    "the ClientConfig CRD (config.k8ssandra.io) is not installed on {dst}: install it (helm chart value clientConfigCRD) or drop --client-config"
                ));
                Err(self.dst_failed(
                    format!("cannot write ClientConfig {ns}/{name}: {}", f.message),
                    &f,
                    fix,
                ))
            }
        }
    }

    /// Deletes the token Secrets of earlier registrations under this name.
    async fn revoke_older_tokens(
        &self,
        steps: &mut Steps,
        token: Option<&IssuedToken>,
    ) -> Result<(), StepFailed> {
        steps.begin("revoke older tokens");
        let (ns, sa, name, ctx) = (
            &self.src.namespace,
            &self.args.serviceaccount_name,
            &self.name,
            &self.src.context,
        );
        if self.args.dry_run {
            steps.ok(&format!(
                "{}delete older token Secrets of {ns}/{sa} exported as {name}",
                self.dry()
            ));
            return Ok(());
        }
        // Keep the Secret holding the new token (none for a bound token: then every long-lived
        // token of an earlier registration under this name goes).
        let keep = token
            .and_then(|t| t.secret_name.clone())
            .unwrap_or_default();
        match exported::delete_old_token_secrets(&self.src_api.client, ns, sa, name, &keep).await {
            Ok(d) if d.is_empty() => steps.ok("no older token Secret"),
            Ok(d) => steps.ok(&format!("deleted {}", d.join(", "))),
            Err(f) => {
                return Err(StepFailed::new(
                    ctx,
                    format!("cannot delete older token Secrets in {ns}: {}", f.message),
                    format!(
                        "delete them by hand: kubectl --context {ctx} -n {ns} delete secret -l {}={name}",
                        exported::EXPORTED_AS_LABEL
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the written credentials work: the new token may list CassandraClusters.
    async fn verify(
        &self,
        steps: &mut Steps,
        secret: &Secret,
        server: &str,
    ) -> Result<(), StepFailed> {
        let (ns, src) = (&self.src.namespace, &self.src.context);
        let origin = CredentialSource::Secret {
            namespace: self.dst.namespace.clone(),
            name: self.name.clone(),
        };
        let other = |message: String| Failure {
            kind: FailureKind::Other,
            message,
        };
        // The Secret was just written from the source context; it is read back as the
        // controller will read it, under the controller's default policy.
        let keys = credentials::secret_keys(secret);
        let policy = KubeconfigPolicy::default();
        let verified = match credentials::from_keys(&keys, origin, None, policy).await {
            Ok(c) => match c.client() {
                Ok(client) => {
                    let perm = Permission {
                        verb: "list",
                        group: "db.orange.com",
                        resource: "cassandraclusters",
                        subresource: "",
                    };
                    probe::can_i(&client, ns, &perm).await
                }
                Err(e) => Err(other(e.to_string())),
            },
            Err(e) => Err(other(e.to_string())),
        };
        match verified {
            Ok(None) => steps.ok(&format!(
                "{src} accepts the token; it may list cassandraclusters in {ns}"
            )),
            Ok(Some(why)) if self.args.no_rbac => steps.ok(&format!(
                "{src} accepts the token, but it may not list cassandraclusters in {ns} yet ({why}): create the Role and RoleBinding"
            )),
            Ok(Some(why)) => {
                return Err(StepFailed::new(
                    src,
                    format!("the new token may not list cassandraclusters in {ns}: {why}"),
                    "run `multi-casskop check` for details",
                ));
            }
            Err(f) => {
                return Err(StepFailed::new(
                    src,
                    format!("the new credentials do not work: {}", f.message),
                    probe::fix_for(f.kind, src, server),
                ));
            }
        }
        Ok(())
    }

    /// Prints, for `--dry-run`, the objects a real run would write.
    fn print_plan(
        &self,
        role: &serde_json::Value,
        binding: &serde_json::Value,
    ) -> Result<(), Stop> {
        let args = self.args;
        let (name, src_ns, dst_ns, sa) = (
            &self.name,
            &self.src.namespace,
            &self.dst.namespace,
            &args.serviceaccount_name,
        );
        let mut docs = Vec::new();
        docs.push(format!("# on {} (source)", args.source_context));
        docs.push(exported::to_yaml(&serde_json::json!({
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": src_ns}
        }))?);
        if !args.no_rbac {
            docs.push(exported::to_yaml(role)?);
            docs.push(exported::to_yaml(binding)?);
        }
        docs.push(format!(
            "# on {} (destination); data filled at apply time",
            args.dest_context
        ));
        docs.push(exported::to_yaml(&serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": dst_ns},
            "data": {"server": "...", "ca.crt": "...", "namespace": "...", "token": "...", "config": "...", "kubeconfig": "..."}
        }))?);
        if args.client_config {
            docs.push(exported::to_yaml(&ClientConfigRef::manifest(
                name, dst_ns, name, name,
            ))?);
        }
        print!("{}", yaml_stream(&docs));
        Ok(())
    }
}

/// The service account `register` creates, labelled as managed by multi-casskop.
fn service_account(name: &str, namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(
                [(
                    exported::MANAGED_BY_LABEL.to_string(),
                    exported::MANAGED_BY.to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Joins YAML documents with `---`; `#` lines are comments between them.
fn yaml_stream(docs: &[String]) -> String {
    let mut out = String::new();
    for d in docs {
        if d.starts_with('#') {
            out.push_str(d);
            out.push('\n');
        } else {
            out.push_str("---\n");
            out.push_str(d);
            if !d.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}
