//! `multi-casskop check`: proves, site by site, that the controller could do its job.

use std::process::ExitCode;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams};
use serde::Serialize;

use crate::api::lenient::Lenient;
use crate::cli::common::sites::SiteArgs;
use crate::sites::client_config::{ClientConfigRef, client_config_resource};
use crate::sites::credentials::{self, Credentials, RemoteLookup, SecretLookup};
use crate::sites::local;
use crate::sites::probe::{self, Failure, FailureKind, Permission};
use crate::sites::token_expiry;
use crate::sites::untrusted::{self, KubeconfigPolicy};
use crate::sites::{CredentialError, CredentialSource, SiteError};

/// Longest wait for one site's client to be built (an allowed exec plugin runs then).
const CLIENT_BUILD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

const EXAMPLE: &str = "\
Example:
  multi-casskop check --context k8s-cluster1 -n cassandra -l k8s-cluster1 -r k8s-cluster2

For each site (the local one, every --remote, every ClientConfig in the namespace) it checks, in
order: credentials found and parseable (same lookup as the controller: mounted directory under
--imports-dir, Secret NAME in the namespace, kubeconfig context NAME), the API server reached with
its TLS certificate trusted, the token accepted, every verb the controller needs allowed
(SelfSubjectAccessReview), the CassandraCluster CRD served (and MultiCasskop on the local site),
the namespace present. The namespace checked is --namespace on the local site and on remotes
found as kubeconfig contexts, and the credentials' own namespace (the exported service
account's) on remotes found as Secrets, mounts or ClientConfigs.
Kubeconfigs read from Secrets, mounts and ClientConfigs are vetted as the controller vets them:
exec/auth-provider plugins, tokenFile and file paths fail unless --insecure-kubeconfig-exec,
insecure-skip-tls-verify, http:// servers and proxy-url unless --insecure-kubeconfig-tls.
Exit code 0 when everything passes, 1 otherwise.";

/// Output format of `check`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CheckOutput {
    /// One line per check.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// Arguments of `multi-casskop check`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    about = "Check every site's credentials, TLS, token, RBAC, CRDs and namespace, as the controller would use them",
    after_help = EXAMPLE
)]
pub struct CheckArgs {
    #[command(flatten)]
    pub sites: SiteArgs,
    /// Output format: table (default) or json.
    #[arg(short = 'o', long, value_enum, default_value_t = CheckOutput::Table)]
    pub output: CheckOutput,
}

/// Result of one check.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    /// Could not be run (an earlier check failed) or could not tell; not a failure.
    Skip,
}

/// One line of the report.
#[derive(Serialize, Clone, Debug)]
pub struct CheckLine {
    pub check: &'static str,
    pub result: Outcome,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// One site's report.
#[derive(Serialize, Clone, Debug)]
pub struct SiteReport {
    pub site: String,
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub namespace: String,
    pub ok: bool,
    pub checks: Vec<CheckLine>,
}

/// The whole report.
#[derive(Serialize, Clone, Debug)]
pub struct Report {
    pub namespace: String,
    pub ok: bool,
    pub sites: Vec<SiteReport>,
}

struct Site {
    report: SiteReport,
}

impl Site {
    fn new(name: &str, role: &'static str, namespace: &str) -> Self {
        Self {
            report: SiteReport {
                site: name.to_string(),
                role,
                source: None,
                server: None,
                namespace: namespace.to_string(),
                ok: true,
                checks: Vec::new(),
            },
        }
    }
    fn ok(&mut self, check: &'static str, message: String) {
        self.report.checks.push(CheckLine {
            check,
            result: Outcome::Ok,
            message,
            fix: None,
        });
    }
    fn fail(&mut self, check: &'static str, message: String, fix: String) {
        self.report.ok = false;
        self.report.checks.push(CheckLine {
            check,
            result: Outcome::Fail,
            message,
            fix: Some(fix),
        });
    }
    fn skip(&mut self, check: &'static str, message: String) {
        self.report.checks.push(CheckLine {
            check,
            result: Outcome::Skip,
            message,
            fix: None,
        });
    }
    fn skip_rest(&mut self, from: usize) {
        for c in &CHECKS[from..] {
            self.skip(c, "not run: an earlier check failed".to_string());
        }
    }
}

const CHECKS: [&str; 6] = ["credentials", "tls", "token", "rbac", "crd", "namespace"];

/// What the TLS check leaves to the next ones.
enum Tls {
    /// Reached, certificate trusted, token not refused.
    Trusted,
    /// Reached and trusted, but the server answered 401: the token check reports it.
    TokenRejected(Failure),
    /// Not reached or not trusted: the later checks were skipped.
    Failed,
}

/// Runs every check on one site, in order; a failed step skips the ones that need it.
async fn check_site(
    mut site: Site,
    creds: Result<Credentials, SiteError>,
    cred_fix: String,
    controller_ns: &str,
    local: bool,
) -> SiteReport {
    let Some((creds, client)) = site
        .check_credentials(creds, cred_fix, controller_ns, local)
        .await
    else {
        return site.report;
    };
    let ns = site.report.namespace.clone();
    let server = creds.server();
    let unverified = untrusted::unverified_tls(&creds.config);
    let token_failed = match site.check_tls(&client, &server, unverified).await {
        Tls::Failed => return site.report,
        Tls::Trusted => None,
        Tls::TokenRejected(f) => Some(f),
    };
    if site
        .check_token_and_rbac(&client, &creds, &ns, &server, local, token_failed)
        .await
    {
        site.check_crds(&client, &server, local).await;
        site.check_namespace(&client, &ns, &server).await;
    }
    site.report
}

/// The fix for credentials refused because of what their kubeconfig asks for.
fn refusal_fix(e: &SiteError) -> Option<String> {
    let SiteError::Credentials(CredentialError::Refused { refusals, .. }) = e else {
        return None;
    };
    let mut flags: Vec<&str> = refusals.iter().map(|r| r.kind.flag()).collect();
    flags.sort_unstable();
    flags.dedup();
    Some(format!(
        "write the credentials with a token and the -data forms (as `multi-casskop register` does), or pass {} to the controller and to check if everyone who can write them is trusted",
        flags.join(" and ")
    ))
}

impl Site {
    /// Credentials found and a client built; sets the namespace the other checks use.
    async fn check_credentials(
        &mut self,
        creds: Result<Credentials, SiteError>,
        cred_fix: String,
        controller_ns: &str,
        local: bool,
    ) -> Option<(Credentials, kube::Client)> {
        let creds = match creds {
            Ok(c) => c,
            Err(e) => {
                let fix = refusal_fix(&e).unwrap_or(cred_fix);
                self.fail("credentials", e.to_string(), fix);
                self.skip_rest(1);
                return None;
            }
        };
        // Where the site's CassandraClusters live: exported credentials name the namespace their
        // service account (and Role) is in; a plain kubeconfig context's namespace is just a user
        // default, so the controller's namespace is checked there.
        let ns = if local || matches!(creds.source, CredentialSource::KubeconfigContext { .. }) {
            controller_ns.to_string()
        } else {
            creds
                .default_namespace
                .clone()
                .unwrap_or_else(|| controller_ns.to_string())
        };
        self.report.namespace = ns;
        self.report.source = Some(creds.source.describe());
        self.report.server = Some(creds.server());
        let client = match creds.build_client(CLIENT_BUILD_DEADLINE).await {
            Ok(c) => c,
            Err(e) => {
                self.fail("credentials", e.to_string(), cred_fix);
                self.skip_rest(1);
                return None;
            }
        };
        self.ok("credentials", format!("from {}", creds.source.describe()));
        Some((creds, client))
    }

    /// The API server reached and its certificate trusted. `unverified`: why the credentials
    /// do not verify the server at all (said instead of "certificate trusted").
    async fn check_tls(
        &mut self,
        client: &kube::Client,
        server: &str,
        unverified: Option<&str>,
    ) -> Tls {
        let name = self.report.site.clone();
        let trust = match unverified {
            None => "certificate trusted".to_string(),
            Some(why) => format!("NOT verified ({why})"),
        };
        match probe::reach(client).await {
            Ok(v) => {
                self.ok("tls", format!("{server} reached, {trust} ({v})"));
                Tls::Trusted
            }
            Err(f) if f.kind == FailureKind::Unauthorized => {
                self.ok("tls", format!("{server} reached, {trust}"));
                Tls::TokenRejected(f)
            }
            Err(f) => {
                let msg = match f.kind {
                    FailureKind::Tls => format!(
                        "TLS to {server} failed: the server's certificate is not signed by the CA in the credentials ({})",
                        f.message
                    ),
                    FailureKind::Unreachable => format!("cannot reach {server}: {}", f.message),
                    _ => format!("{server}: {}", f.message),
                };
                self.fail("tls", msg, probe::fix_for(f.kind, &name, server));
                self.skip_rest(2);
                Tls::Failed
            }
        }
    }

    /// The token accepted and every verb the controller needs allowed, one
    /// SelfSubjectAccessReview per verb. False: the token failed, later checks were skipped.
    async fn check_token_and_rbac(
        &mut self,
        client: &kube::Client,
        creds: &Credentials,
        ns: &str,
        server: &str,
        local: bool,
        mut token_failed: Option<Failure>,
    ) -> bool {
        let name = self.report.site.clone();
        let mut perms: Vec<&Permission> = probe::SITE_PERMISSIONS.iter().collect();
        if local {
            perms.extend(probe::LOCAL_PERMISSIONS.iter());
        }
        let mut denied = Vec::new();
        if token_failed.is_none() {
            for p in &perms {
                match probe::can_i(client, ns, p).await {
                    Ok(None) => {}
                    Ok(Some(_why)) => denied.push(p.describe()),
                    Err(f) => {
                        token_failed = Some(f);
                        break;
                    }
                }
            }
        }
        if let Some(f) = token_failed {
            let message = if f.kind == FailureKind::Unauthorized {
                let expired = token_claims(creds)
                    .ok()
                    .filter(|c| c.expires <= token_expiry::now())
                    .map(|c| format!(" (token expired at {})", token_expiry::rfc3339(c.expires)))
                    .unwrap_or_default();
                format!(
                    "{name} rejected the token from {}: {}{expired}",
                    creds.source.describe(),
                    f.message
                )
            } else {
                format!("access review failed: {}", f.message)
            };
            self.fail("token", message, probe::fix_for(f.kind, &name, server));
            self.skip_rest(3);
            return false;
        }
        self.ok("token", token_accepted(creds));
        if denied.is_empty() {
            self.ok(
                "rbac",
                format!(
                    "all {} verbs the controller needs are allowed in {ns}",
                    perms.len()
                ),
            );
        } else {
            self.fail(
                "rbac",
                format!("not allowed in namespace {ns}: {}", denied.join(", ")),
                if local {
                    "grant them to the controller's service account (the Helm chart's Role does)".to_string()
                } else {
                    format!("run `multi-casskop register --source-context {name} ...` again (it writes the Role), or add the verbs to the Role bound to this identity")
                },
            );
        }
        true
    }

    /// The CassandraCluster CRD served (and the MultiCasskop one on the local site).
    async fn check_crds(&mut self, client: &kube::Client, server: &str, local: bool) {
        let name = self.report.site.clone();
        let mut wanted = vec![(
            "cassandraclusters",
            "CassKop's CassandraCluster",
            "install CassKop",
        )];
        if local {
            wanted.push((
                "multicasskops",
                "MultiCasskop",
                "install the multi-casskop chart (or `multi-casskop crd | kubectl apply -f -`)",
            ));
        }
        let mut missing = Vec::new();
        for (plural, what, how) in &wanted {
            match probe::serves(client, "db.orange.com/v2", plural).await {
                Ok(true) => {}
                Ok(false) => missing.push((*plural, *what, *how)),
                Err(f) => {
                    self.fail(
                        "crd",
                        format!("discovery failed: {}", f.message),
                        probe::fix_for(f.kind, &name, server),
                    );
                    return;
                }
            }
        }
        if missing.is_empty() {
            let served: Vec<String> = wanted
                .iter()
                .map(|w| format!("{}.db.orange.com/v2", w.0))
                .collect();
            self.ok("crd", format!("{} served", served.join(", ")));
            return;
        }
        self.fail(
            "crd",
            missing
                .iter()
                .map(|(p, w, _)| {
                    format!("the {w} CRD ({p}.db.orange.com/v2) is not installed on {name}")
                })
                .collect::<Vec<_>>()
                .join("; "),
            missing
                .iter()
                .map(|(_, _, h)| format!("{h} on {name}"))
                .collect::<Vec<_>>()
                .join("; "),
        );
    }

    /// The namespace present (skipped when namespaces may not be read).
    async fn check_namespace(&mut self, client: &kube::Client, ns: &str, server: &str) {
        let name = self.report.site.clone();
        match probe::namespace_exists(client, ns).await {
            Ok(Some(true)) => self.ok("namespace", format!("namespace {ns} exists")),
            Ok(Some(false)) => self.fail(
                "namespace",
                format!("namespace {ns} does not exist on {name}"),
                format!("create it: kubectl --context {name} create namespace {ns}"),
            ),
            Ok(None) => self.skip(
                "namespace",
                format!("cannot tell whether namespace {ns} exists (no get on namespaces)"),
            ),
            Err(f) => self.fail(
                "namespace",
                f.message.clone(),
                probe::fix_for(f.kind, &name, server),
            ),
        }
    }
}

/// Builds the whole report (no printing).
pub async fn report(args: &CheckArgs) -> Report {
    let s = &args.sites;
    let ns = local::resolve_namespace(
        s.namespace.as_deref(),
        s.kubeconfig.as_deref(),
        s.context.as_deref(),
    );
    let local_creds = local::credentials(s.kubeconfig.as_deref(), s.context.as_deref()).await;
    let local_name = s.local.clone().unwrap_or_else(|| match &local_creds {
        Ok(c) => match &c.source {
            CredentialSource::KubeconfigContext { context } => context.clone(),
            _ => "local".to_string(),
        },
        Err(_) => s.context.clone().unwrap_or_else(|| "local".to_string()),
    });
    let secrets = Secrets {
        client: local_creds.as_ref().ok().and_then(|c| c.client().ok()),
        namespace: ns.clone(),
        policy: s.kubeconfig_policy(),
    };
    let mut sites = Vec::new();
    sites.push(
        check_site(
            Site::new(&local_name, "local", &ns),
            local_creds.clone().map_err(SiteError::from),
            "pass --kubeconfig/--context for the control-plane cluster".to_string(),
            &ns,
            true,
        )
        .await,
    );
    let mut seen = vec![local_name.clone()];
    sites.extend(remote_reports(s, &local_name, &secrets, &mut seen).await);
    sites.extend(client_config_reports(&secrets, &mut seen).await);
    let ok = sites.iter().all(|s| s.ok);
    Report {
        namespace: ns,
        ok,
        sites,
    }
}

/// Reads credential Secrets from the controller's namespace on the local cluster.
struct Secrets {
    /// `None` when the local cluster is unusable.
    client: Option<kube::Client>,
    namespace: String,
    /// What the kubeconfigs in them may use (the `--insecure-kubeconfig-*` flags).
    policy: KubeconfigPolicy,
}

impl Secrets {
    /// Secret `name`, as the controller's lookup sees it.
    async fn lookup(&self, name: &str) -> SecretLookup {
        let Some(client) = self.client.clone() else {
            return SecretLookup::Failed("the local cluster is unusable".to_string());
        };
        // A list pinned to the name, as the controller's watch reads it (and as RBAC
        // `resourceNames` grant it): never a get, never the namespace's other Secrets.
        let api: Api<Secret> = Api::namespaced(client, &self.namespace);
        let pinned = ListParams::default().fields(&format!("metadata.name={name}"));
        match api.list(&pinned).await {
            Ok(list) => list
                .items
                .first()
                .map_or(SecretLookup::NotFound, SecretLookup::from_secret),
            Err(e) => SecretLookup::Failed(probe::classify(&e).message),
        }
    }
}

/// One report per `--remote` not seen yet, credentials found as the controller finds them.
async fn remote_reports(
    s: &SiteArgs,
    local_name: &str,
    secrets: &Secrets,
    seen: &mut Vec<String>,
) -> Vec<SiteReport> {
    let ns = &secrets.namespace;
    let mut out = Vec::new();
    for remote in &s.remotes {
        if seen.contains(remote) {
            continue;
        }
        seen.push(remote.clone());
        let lookup = RemoteLookup {
            name: remote.clone(),
            imports_dir: s.imports_dir.clone(),
            namespace: ns.clone(),
            kubeconfig: s.kubeconfig.clone(),
        };
        let creds = credentials::load_remote(&lookup, secrets.lookup(remote).await, secrets.policy)
            .await
            .map_err(SiteError::from);
        let fix = format!(
            "register it: multi-casskop register --source-context {remote} --dest-context {local_name} --dest-namespace {ns} (or export it and apply the Secret in {ns})"
        );
        out.push(check_site(Site::new(remote, "remote", ns), creds, fix, ns, false).await);
    }
    out
}

/// One report per ClientConfig in the namespace (k8ssandra style), when the CRD exists.
async fn client_config_reports(secrets: &Secrets, seen: &mut Vec<String>) -> Vec<SiteReport> {
    let ns = &secrets.namespace;
    let Some(client) = &secrets.client else {
        return Vec::new();
    };
    // Decoded one by one: an undecodable ClientConfig is reported as its site, never hides the others.
    let api: Api<Lenient<DynamicObject>> =
        Api::namespaced_with(client.clone(), ns, &client_config_resource());
    let Ok(list) = api.list(&ListParams::default()).await else {
        return Vec::new();
    };
    let mut ccs: Vec<ClientConfigRef> = list
        .items
        .iter()
        .filter_map(ClientConfigRef::from_lenient)
        .collect();
    ccs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for cc in ccs {
        let mut site = Site::new(&cc.name, "clientconfig", ns);
        if seen.contains(&cc.name) {
            site.fail(
                "credentials",
                format!(
                    "site {} is defined twice: by a flag and by ClientConfig {ns}/{}",
                    cc.name, cc.name
                ),
                "remove the ClientConfig or the flag".to_string(),
            );
            site.skip_rest(1);
            out.push(site.report);
            continue;
        }
        seen.push(cc.name.clone());
        let creds = match &cc.secret {
            Err(e) => Err(SiteError::from(e.clone())),
            Ok(secret) => credentials::load_client_config(
                ns,
                &cc.name,
                secret,
                &cc.context,
                secrets.lookup(secret).await,
                secrets.policy,
            )
            .await
            .map_err(SiteError::from),
        };
        let fix = format!(
            "fix the ClientConfig {ns}/{} or its Secret (multi-casskop register --client-config writes both)",
            cc.name
        );
        out.push(check_site(site, creds, fix, ns, false).await);
    }
    out
}

/// The claims of the credentials' bearer token (read as data).
fn token_claims(
    creds: &Credentials,
) -> Result<token_expiry::TokenClaims, token_expiry::ClaimsError> {
    use secrecy::ExposeSecret;
    let Some(token) = creds.config.auth_info.token.as_ref() else {
        return Err(token_expiry::ClaimsError::NotJwt);
    };
    token_expiry::claims(token.expose_secret())
}

/// The token check's message: accepted, with the token's expiry when it is a bound token.
fn token_accepted(creds: &Credentials) -> String {
    match token_claims(creds) {
        Ok(c) => format!(
            "accepted; expires {}",
            token_expiry::rfc3339(c.expires)
        ),
        Err(token_expiry::ClaimsError::NoExpiry) => {
            "accepted; never expires (legacy token: re-run `multi-casskop register` for a renewed one)".to_string()
        }
        Err(_) => "accepted".to_string(),
    }
}

/// Renders the table.
pub fn render_table(r: &Report) -> String {
    let mut rows = vec![[
        "SITE".to_string(),
        "CHECK".to_string(),
        "RESULT".to_string(),
        "DETAIL".to_string(),
    ]];
    for s in &r.sites {
        for c in &s.checks {
            let result = match c.result {
                Outcome::Ok => "ok",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            let mut detail = c.message.clone();
            if let Some(f) = &c.fix {
                detail = format!("{detail} -> fix: {f}");
            }
            rows.push([
                s.site.clone(),
                c.check.to_string(),
                result.to_string(),
                detail,
            ]);
        }
    }
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:6}  {}\n",
            r[0], r[1], r[2], r[3]
        ));
    }
    let failed: Vec<&str> = r
        .sites
        .iter()
        .filter(|s| !s.ok)
        .map(|s| s.site.as_str())
        .collect();
    if failed.is_empty() {
        out.push_str(&format!(
            "all checks passed ({} sites, namespace {})\n",
            r.sites.len(),
            r.namespace
        ));
    } else {
        out.push_str(&format!("checks failed on: {}\n", failed.join(", ")));
    }
    out
}

/// Runs the subcommand; the exit code is the process's.
pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    args.sites.deadlines.install();
    let r = report(&args).await;
    match args.output {
        CheckOutput::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        CheckOutput::Table => print!("{}", render_table(&r)),
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(check: &'static str, result: Outcome, message: &str, fix: Option<&str>) -> CheckLine {
        CheckLine {
            check,
            result,
            message: message.to_string(),
            fix: fix.map(str::to_string),
        }
    }

    #[test]
    fn table_shows_each_failure_with_its_fix_and_names_failed_sites() {
        let r = Report {
            namespace: "cassandra".into(),
            ok: false,
            sites: vec![
                SiteReport {
                    site: "k8s-cluster1".into(),
                    role: "local",
                    source: None,
                    server: None,
                    namespace: "cassandra".into(),
                    ok: true,
                    checks: vec![line(
                        "credentials",
                        Outcome::Ok,
                        "from kubeconfig context k8s-cluster1",
                        None,
                    )],
                },
                SiteReport {
                    site: "k8s-cluster2".into(),
                    role: "remote",
                    source: None,
                    server: None,
                    namespace: "cassandra".into(),
                    ok: false,
                    checks: vec![
                        line(
                            "credentials",
                            Outcome::Fail,
                            "no credentials for remote k8s-cluster2",
                            Some("register it"),
                        ),
                        line(
                            "tls",
                            Outcome::Skip,
                            "not run: an earlier check failed",
                            None,
                        ),
                    ],
                },
            ],
        };
        let t = render_table(&r);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("SITE          CHECK        RESULT  DETAIL"),
            "{t}"
        );
        assert_eq!(
            lines[2],
            "k8s-cluster2  credentials  FAIL    no credentials for remote k8s-cluster2 -> fix: register it"
        );
        assert!(lines[3].contains("skip"), "{t}");
        assert_eq!(lines[4], "checks failed on: k8s-cluster2");
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(json["sites"][1]["checks"][0]["result"], "fail");
        assert_eq!(json["sites"][1]["checks"][0]["fix"], "register it");
        assert!(json["sites"][0]["checks"][0].get("fix").is_none());
    }
}
