//! `multi-casskop [run]`: starts the controller (probes, metrics, optional leader election).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kube::Client;
use tracing::{error, info};

use crate::cli::common::deadlines::ProgressArgs;
use crate::cli::common::sites::SiteArgs;
use crate::rollout::controller::{self, ControllerConfig};
use crate::runtime::health::{self, Readiness};
use crate::runtime::leader::{self, Leadership, LeaseConfig};
use crate::runtime::liveness::Liveness;
use crate::runtime::metrics::Metrics;
use crate::runtime::signals;
use crate::sites::{RegistryConfig, SiteRegistry, local};

/// Arguments of the controller (`multi-casskop [run]`).
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub sites: SiteArgs,
    /// Run only while holding the Lease `multi-casskop` in the watch namespace, so several
    /// replicas never reconcile at once. Example: `--leader-elect`.
    #[arg(long = "leader-elect")]
    pub leader_elect: bool,
    /// Address of the probe endpoints `/healthz`, `/readyz` and the Prometheus `/metrics`.
    /// Example: `--metrics-addr 127.0.0.1:9090`.
    #[arg(
        long = "metrics-addr",
        value_name = "ADDR",
        default_value = "0.0.0.0:8081"
    )]
    pub metrics_addr: SocketAddr,
    /// Safety-net re-examination of settled MultiCasskops; progress itself is watch-driven.
    /// Examples: `--resync 10m`, `--resync 90s`, `--resync 1h`.
    #[arg(long = "resync", value_name = "DURATION", default_value = "10m", value_parser = crate::duration::parse_or_seconds)]
    pub resync: Duration,
    /// MultiCasskops reconciled at the same time (each one still moves one site at a time).
    /// Bounds the connections and memory a burst of changes can take.
    /// Example: `--concurrency 32`.
    #[arg(long = "concurrency", value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    #[command(flatten)]
    pub bounds: ProgressArgs,
}

/// Run the controller until SIGINT/SIGTERM (exit 0) or a lost lease (exit 1).
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let sites = &args.sites;
    sites
        .deadlines
        .install_with_probe(args.bounds.site_probe_period);
    let (local, namespace, client) = connect_local(sites).await?;
    let identity = leader::identity();
    info!(
        local = %local,
        remotes = ?sites.remotes,
        namespace = %namespace,
        identity = %identity,
        "multi-casskop starting"
    );

    let metrics = Arc::new(Metrics::new());
    let (readiness, liveness) = serve_probes(&args, &client, &local, &metrics).await?;

    let shutdown = signals::shutdown_signal().shared();
    let leadership = if args.leader_elect {
        let Some(l) = lead(
            client.clone(),
            &namespace,
            identity.clone(),
            shutdown.clone(),
        )
        .await
        else {
            info!("shutting down before becoming leader");
            return Ok(ExitCode::SUCCESS);
        };
        Some(l)
    } else {
        None
    };

    let registry = SiteRegistry::start(
        client.clone(),
        RegistryConfig {
            local: local.clone(),
            remotes: sites.remotes.clone(),
            namespace: namespace.clone(),
            imports_dir: sites.imports_dir.clone(),
            kubeconfig: sites.kubeconfig.clone(),
            local_context: sites.context.clone(),
        },
    )
    .await;

    controller::run(
        client,
        registry,
        ControllerConfig {
            namespace,
            resync: args.resync,
            concurrency: args.concurrency,
            instance: identity,
            reconcile_timeout: args.bounds.reconcile_timeout,
        },
        metrics,
        (readiness, liveness),
        shutdown,
    )
    .await;
    if let Some(l) = leadership {
        l.release().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Serve `/healthz`, `/readyz` and `/metrics`, and keep checking that the local cluster answers.
async fn serve_probes(
    args: &RunArgs,
    client: &Client,
    local: &str,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Readiness, Liveness)> {
    let readiness = Readiness::default();
    let liveness = Liveness::new(args.bounds.liveness_timeout);
    let addr = args.metrics_addr;
    health::serve(addr, readiness.clone(), liveness.clone(), metrics.clone()).await?;
    info!("serving /healthz, /readyz and /metrics on {addr}");
    health::watch_local_reachability(
        client.clone(),
        readiness.clone(),
        liveness.clone(),
        local.to_string(),
    );
    Ok((readiness, liveness))
}

/// The local cluster's name, the namespace to watch and a client to the local API server.
async fn connect_local(sites: &SiteArgs) -> anyhow::Result<(String, String, Client)> {
    let Some(local) = sites.local.clone().filter(|s| !s.is_empty()) else {
        anyhow::bail!(
            "the local cluster name is required: --local NAME (or -lNAME, as Multi-CassKop's chart passes it)"
        );
    };
    let kubeconfig = sites.kubeconfig.as_deref();
    let context = sites.context.as_deref();
    let creds = local::credentials(kubeconfig, context)
        .await
        .map_err(|e| anyhow::anyhow!("local cluster: {e}"))?;
    let namespace = local::resolve_namespace(sites.namespace.as_deref(), kubeconfig, context);
    let client = creds
        .client()
        .map_err(|e| anyhow::anyhow!("cannot build a client for the local cluster {local}: {e}"))?;
    Ok((local, namespace, client))
}

/// Waits for the Lease (`None`: shutdown came first), then exits the process the moment it is
/// lost: another replica may be reconciling already, and Kubernetes restarts this one.
async fn lead(
    client: Client,
    namespace: &str,
    identity: String,
    shutdown: impl Future<Output = ()>,
) -> Option<Arc<Leadership>> {
    let cfg = LeaseConfig::new(namespace, identity);
    let leadership = tokio::select! {
        l = Leadership::acquire(client, cfg) => Arc::new(l),
        _ = shutdown => return None,
    };
    let held = leadership.clone();
    tokio::spawn(async move {
        let why = held.hold().await;
        error!("lost leadership: {why}; exiting now so no two replicas reconcile at once");
        std::process::exit(1);
    });
    Some(leadership)
}
