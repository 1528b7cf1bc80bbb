//! `multi-casskop export`: prints a service account's credentials as a Secret, the kubemcsa way.

use std::path::PathBuf;
use std::process::ExitCode;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;

use super::common::contexts::{context_fix, der_to_pem};
use super::common::steps::{StepFailed, Steps, Stop};
use crate::sites::credentials;
use crate::sites::exported;
use crate::sites::exported::IssuedToken;
use crate::sites::probe::{self, FailureKind};
use crate::sites::{CredentialSource, Credentials};

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
    /// Lifetime to ask for the bound token from the TokenRequest API (e.g. 24h, 30d; at least
    /// 10m) [default: 24h]. The API server may grant less; the controller renews the token when
    /// a third of what was granted is left (it needs create on serviceaccounts/token for this
    /// service account: `multi-casskop register` grants it).
    #[arg(long, value_name = "DURATION", value_parser = exported::parse_token_ttl, conflicts_with = "legacy_token")]
    pub token_ttl: Option<std::time::Duration>,
    /// Export a never-expiring token Secret of the service account (created if missing) instead
    /// of a bound token. Discouraged: the token works until its Secret is deleted (a leaked copy
    /// too), the controller cannot renew it, and Kubernetes 1.24+ no longer makes such tokens.
    #[arg(long)]
    pub legacy_token: bool,
}

/// Runs the subcommand; the exit code is the process's.
pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let mut steps = Steps::new("export", 4);
    let result = export(&args, &mut steps).await;
    steps.finish(result)
}

/// The cluster whose service account is exported, once its context is loaded.
struct Source {
    /// Context name, as messages call the cluster.
    cluster: String,
    creds: Credentials,
    client: kube::Client,
    namespace: String,
    server: String,
}

/// Every step in order; the first failure stops it.
async fn export(args: &ExportArgs, steps: &mut Steps) -> Result<(), Stop> {
    let src = load_context(args, steps).await?;
    read_service_account(args, &src, steps).await?;
    let token = get_token(args, &src, steps).await?;
    steps.begin("print Secret");
    let Some(ca) = cluster_ca(&src, &token).await else {
        return Err(StepFailed::new(
            &src.cluster,
            "no CA certificate found (none in the token Secret, the kubeconfig or the kube-root-ca.crt ConfigMap)",
            "add certificate-authority-data to the context in your kubeconfig",
        )
        .into());
    };
    let secret = exported::exported_secret(
        &args.as_name,
        None,
        &src.server,
        &ca,
        &token.token,
        &src.namespace,
    )?;
    print!("{}", exported::to_yaml(&secret)?);
    steps.ok(&format!(
        "Secret {} written to stdout (apply it in the controller's namespace)",
        args.as_name
    ));
    Ok(())
}

/// Loads the context (given or current) and builds its client.
async fn load_context(args: &ExportArgs, steps: &mut Steps) -> Result<Source, StepFailed> {
    steps.begin("load context");
    let kubeconfig = args.kubeconfig.as_deref();
    let creds = credentials::require_local_context(kubeconfig, args.context.as_deref())
        .await
        .map_err(|e| {
            let cluster = args
                .context
                .clone()
                .unwrap_or_else(|| "(current context)".to_string());
            StepFailed::new(&cluster, e.to_string(), context_fix(kubeconfig))
        })?;
    let cluster = match &creds.source {
        CredentialSource::KubeconfigContext { context } => context.clone(),
        _ => args.context.clone().unwrap_or_default(),
    };
    let namespace = args
        .namespace
        .clone()
        .or(creds.default_namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    let server = creds.server().trim_end_matches('/').to_string();
    steps.ok(&format!("context {cluster} -> {server}"));
    let client = creds.client().map_err(|e| {
        StepFailed::new(
            &cluster,
            e.to_string(),
            "fix the context's certificate data",
        )
    })?;
    Ok(Source {
        cluster,
        creds,
        client,
        namespace,
        server,
    })
}

/// Checks the service account exists (export never creates it).
async fn read_service_account(
    args: &ExportArgs,
    src: &Source,
    steps: &mut Steps,
) -> Result<(), StepFailed> {
    let (sa, ns, cluster) = (&args.serviceaccount, &src.namespace, &src.cluster);
    steps.begin("read service account");
    let api: Api<ServiceAccount> = Api::namespaced(src.client.clone(), ns);
    match api.get_opt(sa).await {
        Ok(Some(_)) => {
            steps.ok(&format!("service account {ns}/{sa} exists"));
            Ok(())
        }
        Ok(None) => Err(StepFailed::new(
            cluster,
            format!("service account {ns}/{sa} not found"),
            format!(
                "create it (kubectl --context {cluster} -n {ns} create serviceaccount {sa}), pass the right -n, or use `multi-casskop register`, which creates it with its RBAC"
            ),
        )),
        Err(e) => {
            let f = probe::classify(&e);
            Err(StepFailed::new(
                cluster,
                format!("{}: {}", src.server, f.message),
                probe::fix_for(f.kind, cluster, &src.server),
            ))
        }
    }
}

/// A TokenRequest token (24 h unless --token-ttl), or with --legacy-token the newest token
/// Secret exported under this name.
async fn get_token(
    args: &ExportArgs,
    src: &Source,
    steps: &mut Steps,
) -> Result<IssuedToken, StepFailed> {
    let (sa, ns, cluster) = (&args.serviceaccount, &src.namespace, &src.cluster);
    steps.begin("get token");
    let got = match exported::token_lifetime(args.token_ttl, args.legacy_token) {
        Some(ttl) => exported::request_token(&src.client, ns, sa, ttl).await,
        None => exported::find_or_create_token_secret(&src.client, ns, sa, &args.as_name).await,
    };
    let token = got.map_err(|f| {
        let fix = if f.kind == FailureKind::Forbidden {
            format!(
                "you need create on serviceaccounts/token (or on secrets, with --legacy-token) in {ns} on {cluster}"
            )
        } else {
            probe::fix_for(f.kind, cluster, &src.server)
        };
        StepFailed::new(
            cluster,
            format!("cannot get a token for {ns}/{sa}: {}", f.message),
            fix,
        )
    })?;
    steps.ok(&match (&token.secret_name, &token.expires) {
        (Some(s), _) => format!("token from Secret {ns}/{s}"),
        (None, Some(exp)) => format!("TokenRequest token valid until {exp}"),
        _ => "token issued".to_string(),
    });
    Ok(token)
}

/// The cluster CA: from the token Secret, else the kubeconfig, else `kube-root-ca.crt`.
async fn cluster_ca(src: &Source, token: &IssuedToken) -> Option<Vec<u8>> {
    if let Some(ca) = token.ca_pem.clone() {
        return Some(ca);
    }
    if let Some(ca) = src.creds.config.root_cert.as_ref() {
        return Some(der_to_pem(ca));
    }
    exported::root_ca_from_configmap(&src.client, &src.namespace).await
}
