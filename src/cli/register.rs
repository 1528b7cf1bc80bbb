//! `multi-casskop register`: wires a data-plane cluster into the control plane in one command.
//! INTERFACE FROZEN BY THE LEAD: `RegisterArgs` and `run`.

use std::path::PathBuf;
use std::process::ExitCode;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};

use super::common::contexts::{context_fix, der_to_pem};
use super::common::steps::Steps;
use crate::sites::CredentialSource;
use crate::sites::client_config::{ClientConfigRef, client_config_resource};
use crate::sites::credentials;
use crate::sites::exported::{self, IssuedToken};
use crate::sites::probe::{self, Failure, FailureKind, Permission};

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
No Events rule: the controller records Events in the control-plane cluster only.

Re-running is safe: it refreshes the token (a new token Secret; older ones made by this command
for the same --destination-name are deleted once the new Secret is written) and updates the
Secret, Role and RoleBinding in place.";

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
    /// Use a bound token from the TokenRequest API valid this long (e.g. 24h, 30d) instead of a
    /// long-lived token Secret. Re-run register before it expires.
    #[arg(long, value_name = "DURATION", value_parser = exported::parse_token_ttl)]
    pub token_ttl: Option<std::time::Duration>,
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
    let src = args.source_context.clone();
    let dst = args.dest_context.clone();
    let name = args
        .destination_name
        .clone()
        .unwrap_or_else(|| exported::dns_safe(&src));
    let sa = args.serviceaccount_name.clone();
    let dry = if args.dry_run { "(dry run) would " } else { "" };

    // 1. contexts.
    steps.begin("load source context");
    let src_creds =
        match credentials::require_local_context(args.source_kubeconfig.as_deref(), Some(&src))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return Ok(steps.fail(
                    &src,
                    &e.to_string(),
                    &context_fix(args.source_kubeconfig.as_deref()),
                ));
            }
        };
    let src_ns = args
        .source_namespace
        .clone()
        .or(src_creds.default_namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    steps.ok(&format!(
        "context {src} -> {} (namespace {src_ns})",
        src_creds.server()
    ));

    steps.begin("load destination context");
    let dst_creds =
        match credentials::require_local_context(args.dest_kubeconfig.as_deref(), Some(&dst)).await
        {
            Ok(c) => c,
            Err(e) => {
                return Ok(steps.fail(
                    &dst,
                    &e.to_string(),
                    &context_fix(args.dest_kubeconfig.as_deref()),
                ));
            }
        };
    let dst_ns = args
        .dest_namespace
        .clone()
        .or(dst_creds.default_namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    steps.ok(&format!(
        "context {dst} -> {} (namespace {dst_ns}, secret {name})",
        dst_creds.server()
    ));

    steps.begin("refuse self-registration");
    let same_file = args.source_kubeconfig == args.dest_kubeconfig;
    if (same_file && src == dst) || same_server(&src_creds.server(), &dst_creds.server()) {
        return Ok(steps.fail(
            &src,
            &format!(
                "source {src} and destination {dst} are the same cluster ({}): a cluster cannot be registered to itself",
                src_creds.server()
            ),
            "pass the data-plane cluster as --source-context and the control-plane cluster as --dest-context; the local cluster needs no registration (it is --local)",
        ));
    }
    steps.ok("source and destination are different clusters");

    let src_client = match src_creds.client() {
        Ok(c) => c,
        Err(e) => {
            return Ok(steps.fail(
                &src,
                &e.to_string(),
                "fix the source context's certificate data",
            ));
        }
    };
    let src_server = src_creds.server();

    // 2. source.
    steps.begin("reach source cluster");
    match probe::reach(&src_client).await {
        Ok(v) => steps.ok(&format!("{src} answers at {src_server} ({v})")),
        Err(f) => {
            return Ok(steps.fail(
                &src,
                &format!("{src_server}: {}", f.message),
                &probe::fix_for(f.kind, &src, &src_server),
            ));
        }
    }

    steps.begin("check source namespace");
    match probe::namespace_exists(&src_client, &src_ns).await {
        Ok(Some(true)) => steps.ok(&format!("namespace {src_ns} exists")),
        Ok(None) => steps.ok(&format!(
            "namespace {src_ns}: cannot tell (no right to read namespaces), continuing"
        )),
        Ok(Some(false)) => {
            return Ok(steps.fail(
                &src,
                &format!("namespace {src_ns} does not exist"),
                &format!("create it (kubectl --context {src} create namespace {src_ns}) or pass --source-namespace"),
            ));
        }
        Err(f) => {
            return Ok(steps.fail(&src, &f.message, &probe::fix_for(f.kind, &src, &src_server)));
        }
    }

    // 3. destination, checked before anything is written on the source.
    steps.begin("reach destination cluster");
    let dst_client = match dst_creds.client() {
        Ok(c) => c,
        Err(e) => {
            return Ok(steps.fail(
                &dst,
                &e.to_string(),
                "fix the destination context's certificate data",
            ));
        }
    };
    let dst_server = dst_creds.server();
    match probe::reach(&dst_client).await {
        Ok(v) => {
            // Same cluster behind two addresses (IP and DNS name, two contexts): the
            // kube-system namespace UID identifies a cluster.
            let (a, b) = (
                probe::cluster_uid(&src_client).await,
                probe::cluster_uid(&dst_client).await,
            );
            if let (Some(a), Some(b)) = (a, b)
                && a == b
            {
                return Ok(steps.fail(
                    &dst,
                    &format!(
                        "source {src} ({src_server}) and destination {dst} ({dst_server}) are the same cluster (kube-system namespace uid {a}): a cluster cannot be registered to itself"
                    ),
                    "pass the data-plane cluster as --source-context and the control-plane cluster as --dest-context",
                ));
            }
            steps.ok(&format!("{dst} answers at {dst_server} ({v})"))
        }
        Err(f) => {
            return Ok(steps.fail(
                &dst,
                &format!("{dst_server}: {}", f.message),
                &probe::fix_for(f.kind, &dst, &dst_server),
            ));
        }
    }

    steps.begin("check destination namespace");
    match probe::namespace_exists(&dst_client, &dst_ns).await {
        Ok(Some(true)) => steps.ok(&format!("namespace {dst_ns} exists")),
        Ok(None) => steps.ok(&format!(
            "namespace {dst_ns}: cannot tell (no right to read namespaces), continuing"
        )),
        Ok(Some(false)) => {
            return Ok(steps.fail(
                &dst,
                &format!("namespace {dst_ns} does not exist"),
                &format!("create it (kubectl --context {dst} create namespace {dst_ns}) or pass --dest-namespace (the controller's namespace)"),
            ));
        }
        Err(f) => {
            return Ok(steps.fail(&dst, &f.message, &probe::fix_for(f.kind, &dst, &dst_server)));
        }
    }

    // 4. writes on the source.
    steps.begin("ensure service account");
    let sa_api: Api<ServiceAccount> = Api::namespaced(src_client.clone(), &src_ns);
    match sa_api.get_opt(&sa).await {
        Ok(Some(_)) => steps.ok(&format!("service account {src_ns}/{sa} exists")),
        Ok(None) if args.dry_run => steps.ok(&format!("{dry}create service account {src_ns}/{sa}")),
        Ok(None) => {
            let obj = ServiceAccount {
                metadata: kube::api::ObjectMeta {
                    name: Some(sa.clone()),
                    namespace: Some(src_ns.clone()),
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
            };
            match sa_api.create(&PostParams::default(), &obj).await {
                Ok(_) => steps.ok(&format!("service account {src_ns}/{sa} created")),
                Err(e) => {
                    let f = probe::classify(&e);
                    let fix = if f.kind == FailureKind::Forbidden {
                        format!(
                            "you may not create service accounts in {src_ns}: ask an admin to run `kubectl --context {src} -n {src_ns} create serviceaccount {sa}`, or use an identity that may"
                        )
                    } else {
                        probe::fix_for(f.kind, &src, &src_server)
                    };
                    return Ok(steps.fail(
                        &src,
                        &format!(
                            "service account {src_ns}/{sa} is missing and could not be created: {}",
                            f.message
                        ),
                        &fix,
                    ));
                }
            }
        }
        Err(e) => {
            let f = probe::classify(&e);
            return Ok(steps.fail(
                &src,
                &format!("cannot read service account {src_ns}/{sa}: {}", f.message),
                &probe::fix_for(f.kind, &src, &src_server),
            ));
        }
    }

    steps.begin("create Role and RoleBinding");
    let role = exported::site_role(&sa, &src_ns);
    let binding = exported::site_role_binding(&sa, &src_ns, &sa);
    if args.no_rbac {
        steps.ok("skipped (--no-rbac): create them yourself, see --help");
    } else if args.dry_run {
        steps.ok(&format!(
            "{dry}create or update Role and RoleBinding {src_ns}/{sa}"
        ));
    } else {
        let written = async {
            let r = create_or_replace(
                &rbac_api(&src_client, &src_ns, "Role", "roles"),
                &sa,
                role.clone(),
            )
            .await?;
            let b = create_or_replace(
                &rbac_api(&src_client, &src_ns, "RoleBinding", "rolebindings"),
                &sa,
                binding.clone(),
            )
            .await?;
            Ok::<_, Failure>((r, b))
        };
        match written.await {
            Ok((r, b)) => steps.ok(&format!(
                "Role {src_ns}/{sa} {r}, RoleBinding {src_ns}/{sa} {b}"
            )),
            Err(f) => {
                let fix = if f.kind == FailureKind::Forbidden {
                    "creating a Role needs at least the rights it grants (and rights on roles/rolebindings): run as a namespace admin, or pass --no-rbac and let an admin create them (see --help)".to_string()
                } else {
                    probe::fix_for(f.kind, &src, &src_server)
                };
                return Ok(steps.fail(
                    &src,
                    &format!("cannot write Role/RoleBinding {src_ns}/{sa}: {}", f.message),
                    &fix,
                ));
            }
        }
    }

    steps.begin("get token");
    let token: Option<IssuedToken> = if args.dry_run {
        steps.ok(&match args.token_ttl {
            Some(ttl) => format!(
                "{dry}request a token valid {} s for {src_ns}/{sa}",
                ttl.as_secs()
            ),
            None => format!("{dry}create a token Secret for {src_ns}/{sa}"),
        });
        None
    } else {
        let got = match args.token_ttl {
            Some(ttl) => exported::request_token(&src_client, &src_ns, &sa, ttl).await,
            None => exported::create_token_secret(&src_client, &src_ns, &sa, &name).await,
        };
        match got {
            Ok(t) => {
                steps.ok(&match (&t.secret_name, &t.expires) {
                    (Some(s), _) => {
                        format!("token Secret {src_ns}/{s} filled by the token controller")
                    }
                    (None, Some(exp)) => format!("TokenRequest token valid until {exp}"),
                    _ => "token issued".to_string(),
                });
                Some(t)
            }
            Err(f) => {
                let fix = if f.kind == FailureKind::Forbidden {
                    format!(
                        "you need create on serviceaccounts/token or secrets in {src_ns} on {src}"
                    )
                } else {
                    probe::fix_for(f.kind, &src, &src_server)
                };
                return Ok(steps.fail(
                    &src,
                    &format!("cannot get a token for {src_ns}/{sa}: {}", f.message),
                    &fix,
                ));
            }
        }
    };

    // CA: what the source kubeconfig trusts for this server, else what the cluster published.
    let mut ca_pem = src_creds.config.root_cert.as_ref().map(|c| der_to_pem(c));
    if ca_pem.is_none() {
        ca_pem = token.as_ref().and_then(|t| t.ca_pem.clone());
    }
    if ca_pem.is_none() {
        ca_pem = exported::root_ca_from_configmap(&src_client, &src_ns).await;
    }
    let server = match (&args.override_src_ip, args.override_src_port) {
        (Some(ip), Some(port)) if ip.contains(':') => format!("https://[{ip}]:{port}"),
        (Some(ip), Some(port)) => format!("https://{ip}:{port}"),
        _ => src_server.trim_end_matches('/').to_string(),
    };

    steps.begin("write credentials Secret");
    let Some(ca_pem) = ca_pem else {
        return Ok(steps.fail(
            &src,
            "no CA certificate found for the source (kubeconfig has none, no ca.crt in the token, no kube-root-ca.crt ConfigMap)",
            "add certificate-authority-data to the source context in your kubeconfig",
        ));
    };
    let secret_api: Api<Secret> = Api::namespaced(dst_client.clone(), &dst_ns);
    let exported_secret = match &token {
        Some(t) => match exported::exported_secret(
            &name,
            Some(&dst_ns),
            &server,
            &ca_pem,
            &t.token,
            &src_ns,
        ) {
            Ok(s) => Some(s),
            Err(e) => return Ok(steps.fail(&dst, &e.to_string(), "report this bug")),
        },
        None => None,
    };
    if args.dry_run {
        let exists = secret_api.get_opt(&name).await.ok().flatten().is_some();
        steps.ok(&format!(
            "{dry}{} Secret {dst_ns}/{name} (keys server, ca.crt, namespace, token, config, kubeconfig; server {server})",
            if exists { "update" } else { "create" }
        ));
    } else if let Some(secret) = &exported_secret {
        let value = serde_json::to_value(secret)?;
        let dyn_api: Api<DynamicObject> = Api::namespaced_with(
            dst_client.clone(),
            &dst_ns,
            &ApiResource::erase::<Secret>(&()),
        );
        match create_or_replace(&dyn_api, &name, value).await {
            Ok(verb) => steps.ok(&format!(
                "Secret {dst_ns}/{name} {verb} in {dst} (server {server})"
            )),
            Err(f) => {
                let fix = if f.kind == FailureKind::Forbidden {
                    format!("you need create/update on secrets in {dst_ns} on {dst}")
                } else {
                    probe::fix_for(f.kind, &dst, &dst_server)
                };
                return Ok(steps.fail(
                    &dst,
                    &format!("cannot write Secret {dst_ns}/{name}: {}", f.message),
                    &fix,
                ));
            }
        }
    }

    if args.client_config {
        steps.begin("write ClientConfig");
        let cc = ClientConfigRef::manifest(&name, &dst_ns, &name, &name);
        if args.dry_run {
            steps.ok(&format!(
                "{dry}create or update ClientConfig {dst_ns}/{name}"
            ));
        } else {
            let api: Api<DynamicObject> =
                Api::namespaced_with(dst_client.clone(), &dst_ns, &client_config_resource());
            match create_or_replace(&api, &name, cc).await {
                Ok(verb) => steps.ok(&format!("ClientConfig {dst_ns}/{name} {verb}")),
                Err(f) => {
                    let fix = if f.kind == FailureKind::NotFound {
                        format!(
                            "the ClientConfig CRD (config.k8ssandra.io) is not installed on {dst}: install it (helm chart value clientConfigCRD) or drop --client-config"
                        )
                    } else {
                        probe::fix_for(f.kind, &dst, &dst_server)
                    };
                    return Ok(steps.fail(
                        &dst,
                        &format!("cannot write ClientConfig {dst_ns}/{name}: {}", f.message),
                        &fix,
                    ));
                }
            }
        }
    }

    steps.begin("revoke older tokens");
    if args.dry_run {
        steps.ok(&format!(
            "{dry}delete older token Secrets of {src_ns}/{sa} exported as {name}"
        ));
    } else {
        // Keep the Secret holding the new token (none for a bound token: then every long-lived
        // token of an earlier registration under this name goes).
        let keep = token
            .as_ref()
            .and_then(|t| t.secret_name.clone())
            .unwrap_or_default();
        match exported::delete_old_token_secrets(&src_client, &src_ns, &sa, &name, &keep).await {
            Ok(d) if d.is_empty() => steps.ok("no older token Secret"),
            Ok(d) => steps.ok(&format!("deleted {}", d.join(", "))),
            Err(f) => {
                return Ok(steps.fail(
                    &src,
                    &format!("cannot delete older token Secrets in {src_ns}: {}", f.message),
                    &format!(
                        "delete them by hand: kubectl --context {src} -n {src_ns} delete secret -l {}={name}",
                        exported::EXPORTED_AS_LABEL
                    ),
                ));
            }
        }
    }

    steps.begin("verify the new credentials");
    let Some(secret) = exported_secret else {
        steps.ok(&format!(
            "{dry}check that the new token may list cassandraclusters in {src_ns}"
        ));
        if args.dry_run {
            print_plan(&args, &name, &src_ns, &dst_ns, &sa, &role, &binding)?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let keys = credentials::secret_keys(&secret);
    let origin = CredentialSource::Secret {
        namespace: dst_ns.clone(),
        name: name.clone(),
    };
    let verified = match credentials::from_keys(&keys, origin, None).await {
        Ok(c) => match c.client() {
            Ok(client) => {
                let perm = Permission {
                    verb: "list",
                    group: "db.orange.com",
                    resource: "cassandraclusters",
                    subresource: "",
                };
                probe::can_i(&client, &src_ns, &perm).await
            }
            Err(e) => Err(Failure {
                kind: FailureKind::Other,
                message: e.to_string(),
            }),
        },
        Err(e) => Err(Failure {
            kind: FailureKind::Other,
            message: e.to_string(),
        }),
    };
    match verified {
        Ok(None) => steps.ok(&format!("{src} accepts the token; it may list cassandraclusters in {src_ns}")),
        Ok(Some(why)) if args.no_rbac => steps.ok(&format!(
            "{src} accepts the token, but it may not list cassandraclusters in {src_ns} yet ({why}): create the Role and RoleBinding"
        )),
        Ok(Some(why)) => {
            return Ok(steps.fail(&src, &format!("the new token may not list cassandraclusters in {src_ns}: {why}"), "run `multi-casskop check` for details"));
        }
        Err(f) => return Ok(steps.fail(&src, &format!("the new credentials do not work: {}", f.message), &probe::fix_for(f.kind, &src, &server))),
    }
    eprintln!("register: done: start the controller with --remote {name} (namespace {dst_ns})");
    Ok(ExitCode::SUCCESS)
}

fn print_plan(
    args: &RegisterArgs,
    name: &str,
    src_ns: &str,
    dst_ns: &str,
    sa: &str,
    role: &serde_json::Value,
    binding: &serde_json::Value,
) -> anyhow::Result<()> {
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
    }))
    ?);
    if args.client_config {
        docs.push(exported::to_yaml(&ClientConfigRef::manifest(
            name, dst_ns, name, name,
        ))?);
    }
    let mut out = String::new();
    for d in docs {
        if d.starts_with('#') {
            out.push_str(&d);
            out.push('\n');
        } else {
            out.push_str("---\n");
            out.push_str(&d);
            if !d.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    print!("{out}");
    Ok(())
}
