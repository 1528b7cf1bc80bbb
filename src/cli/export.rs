//! `multi-casskop export`: prints a service account's credentials as a Secret, the kubemcsa way.
//! INTERFACE FROZEN BY THE LEAD: `ExportArgs` and `run`.

use std::path::PathBuf;
use std::process::ExitCode;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;

use super::common::contexts::{context_fix, der_to_pem};
use super::common::steps::Steps;
use crate::sites::credentials;
use crate::sites::exported;
use crate::sites::probe::{self, FailureKind};

const EXAMPLE: &str = "\
Example:
  multi-casskop export --context k8s-cluster2 -n cassandra multi-casskop --as k8s-cluster2 \\
      | kubectl --context k8s-cluster1 -n cassandra apply -f -
  # then: multi-casskop --local k8s-cluster1 --remote k8s-cluster2

The Secret has kubemcsa's keys (server, ca.crt, namespace, token, and config: a kubeconfig whose
cluster, user and context are all named after --as) plus `kubeconfig` (the same kubeconfig, for
k8ssandra-style readers). It is printed without a namespace: `kubectl apply -n` decides.
The service account must exist; `multi-casskop register` also creates it and its RBAC.";

/// Arguments of `multi-casskop export`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    about = "Print a service account's credentials as a Secret for `kubectl apply -f -` (kubemcsa export compatible)",
    after_help = EXAMPLE
)]
pub struct ExportArgs {
    /// Kubeconfig context of the cluster whose service account is exported (default: the current context).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// Kubeconfig file holding --context (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the service account (default: the context's namespace, else "default").
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The service account to export.
    #[arg(value_name = "SERVICEACCOUNT")]
    pub serviceaccount: String,
    /// Name of the printed Secret and of the cluster, user and context in its kubeconfig; use
    /// the remote's name (`multi-casskop --remote NAME`).
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: String,
    /// Use a bound token from the TokenRequest API valid this long (e.g. 24h, 30d) instead of a
    /// token Secret of the service account (which is created if missing).
    #[arg(long, value_name = "DURATION", value_parser = exported::parse_token_ttl)]
    pub token_ttl: Option<std::time::Duration>,
}

/// Runs the subcommand; the exit code is the process's.
pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let mut steps = Steps::new("export", 4);
    steps.begin("load context");
    let creds = match credentials::require_local_context(
        args.kubeconfig.as_deref(),
        args.context.as_deref(),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            let cluster = args
                .context
                .clone()
                .unwrap_or_else(|| "(current context)".to_string());
            return Ok(steps.fail(
                &cluster,
                &e.to_string(),
                &context_fix(args.kubeconfig.as_deref()),
            ));
        }
    };
    let cluster = match &creds.source {
        crate::sites::CredentialSource::KubeconfigContext { context } => context.clone(),
        _ => args.context.clone().unwrap_or_default(),
    };
    let ns = args
        .namespace
        .clone()
        .or(creds.default_namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    let server = creds.server().trim_end_matches('/').to_string();
    steps.ok(&format!("context {cluster} -> {server}"));
    let client = match creds.client() {
        Ok(c) => c,
        Err(e) => {
            return Ok(steps.fail(
                &cluster,
                &e.to_string(),
                "fix the context's certificate data",
            ));
        }
    };

    let sa = &args.serviceaccount;
    steps.begin("read service account");
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    match api.get_opt(sa).await {
        Ok(Some(_)) => steps.ok(&format!("service account {ns}/{sa} exists")),
        Ok(None) => {
            return Ok(steps.fail(
                &cluster,
                &format!("service account {ns}/{sa} not found"),
                &format!(
                    "create it (kubectl --context {cluster} -n {ns} create serviceaccount {sa}), pass the right -n, or use `multi-casskop register`, which creates it with its RBAC"
                ),
            ));
        }
        Err(e) => {
            let f = probe::classify(&e);
            return Ok(steps.fail(
                &cluster,
                &format!("{server}: {}", f.message),
                &probe::fix_for(f.kind, &cluster, &server),
            ));
        }
    }

    steps.begin("get token");
    let got = match args.token_ttl {
        Some(ttl) => exported::request_token(&client, &ns, sa, ttl).await,
        None => exported::find_or_create_token_secret(&client, &ns, sa, &args.as_name).await,
    };
    let token = match got {
        Ok(t) => t,
        Err(f) => {
            let fix = if f.kind == FailureKind::Forbidden {
                format!(
                    "you need create on serviceaccounts/token (with --token-ttl) or on secrets in {ns} on {cluster}"
                )
            } else {
                probe::fix_for(f.kind, &cluster, &server)
            };
            return Ok(steps.fail(
                &cluster,
                &format!("cannot get a token for {ns}/{sa}: {}", f.message),
                &fix,
            ));
        }
    };
    steps.ok(&match (&token.secret_name, &token.expires) {
        (Some(s), _) => format!("token from Secret {ns}/{s}"),
        (None, Some(exp)) => format!("TokenRequest token valid until {exp}"),
        _ => "token issued".to_string(),
    });

    steps.begin("print Secret");
    let mut ca = token.ca_pem.clone();
    if ca.is_none() {
        ca = creds.config.root_cert.as_ref().map(|c| der_to_pem(c));
    }
    if ca.is_none() {
        ca = exported::root_ca_from_configmap(&client, &ns).await;
    }
    let Some(ca) = ca else {
        return Ok(steps.fail(
            &cluster,
            "no CA certificate found (none in the token Secret, the kubeconfig or the kube-root-ca.crt ConfigMap)",
            "add certificate-authority-data to the context in your kubeconfig",
        ));
    };
    let secret = exported::exported_secret(&args.as_name, None, &server, &ca, &token.token, &ns)?;
    let yaml = exported::to_yaml(&secret)?;
    print!("{yaml}");
    steps.ok(&format!(
        "Secret {} written to stdout (apply it in the controller's namespace)",
        args.as_name
    ));
    Ok(ExitCode::SUCCESS)
}
