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
use crate::runtime::fence::WriteFence;
use crate::runtime::health::{self, Readiness};
use crate::runtime::leader::{self, Leadership, LeaseConfig, LeaseTiming};
use crate::runtime::liveness::Liveness;
use crate::runtime::metrics::Metrics;
use crate::runtime::signals;
use crate::sites::{ClientHook, RegistryConfig, SiteRegistry, local};

/// Arguments of the controller (`multi-casskop [run]`).
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub sites: SiteArgs,
    /// Run only while holding the Lease `multi-casskop` in the watch namespace, so several
    /// replicas never reconcile at once. Every write (local and remote) stops once the Lease was
    /// not renewed within the renew deadline, before a standby may take over; the process then
    /// exits 1. Example: `--leader-elect`.
    #[arg(long = "leader-elect")]
    pub leader_elect: bool,
    /// How long a standby waits, after it last saw the Lease change, before taking it over.
    /// A whole number of seconds. Example: `--leader-elect-lease-duration 15s`.
    #[arg(long = "leader-elect-lease-duration", value_name = "DURATION", default_value = "15s", value_parser = crate::duration::parse_or_seconds)]
    pub lease_duration: Duration,
    /// The leader stops every write (local and remote) and exits when no renew succeeded within
    /// this time from the start of the last successful one; shorter than the lease duration, so
    /// it stops before a standby can take over. Example: `--leader-elect-renew-deadline 10s`.
    #[arg(long = "leader-elect-renew-deadline", value_name = "DURATION", default_value = "10s", value_parser = crate::duration::parse_or_seconds)]
    pub renew_deadline: Duration,
    /// How often the leader renews the Lease and a standby retries.
    /// Example: `--leader-elect-retry-period 2s`.
    #[arg(long = "leader-elect-retry-period", value_name = "DURATION", default_value = "2s", value_parser = crate::duration::parse_or_seconds)]
    pub retry_period: Duration,
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
    let timing = LeaseTiming::new(args.lease_duration, args.renew_deadline, args.retry_period)?;
    sites
        .deadlines
        .install_with_progress(args.bounds.site_probe_period, args.bounds.keepalive());
    let (local, namespace, lease_client) = connect_local(sites).await?;
    // Every client the controller writes through is fenced; only the Lease's own is not.
    let fence = args
        .leader_elect
        .then(|| WriteFence::closed(&namespace, leader::LEASE_NAME));
    let client = fenced(fence.as_ref(), &local, lease_client.clone());
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
    let leadership = if let Some(fence) = &fence {
        let cfg = LeaseConfig::new(&namespace, identity.clone(), timing);
        let Some(l) = lead(lease_client, cfg, fence.clone(), shutdown.clone()).await else {
            info!("shutting down before becoming leader");
            return Ok(ExitCode::SUCCESS);
        };
        Some(l)
    } else {
        None
    };

    let registry = SiteRegistry::start_with_hook(
        client.clone(),
        RegistryConfig {
            local: local.clone(),
            remotes: sites.remotes.clone(),
            namespace: namespace.clone(),
            imports_dir: sites.imports_dir.clone(),
            kubeconfig: sites.kubeconfig.clone(),
            local_context: sites.context.clone(),
            kubeconfig_policy: sites.kubeconfig_policy(),
        },
        site_hook(fence),
    )
    .await;
    // Only the leader gets here: it alone renews the remotes' tokens (its writes are fenced).
    crate::sites::renewal::spawn(registry.clone(), client.clone(), metrics.clone());

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

/// `client` behind `fence` when there is one.
fn fenced(fence: Option<&WriteFence>, site: &str, client: Client) -> Client {
    match fence {
        Some(f) => f.wrap(site, client),
        None => client,
    }
}

/// What the registry applies to every site client: the fence, when there is one.
fn site_hook(fence: Option<WriteFence>) -> ClientHook {
    Arc::new(move |site, client| fenced(fence.as_ref(), site, client))
}

/// Waits for the Lease (`None`: shutdown came first), then exits the process the moment it is
/// lost: another replica may be reconciling already, and Kubernetes restarts this one. The
/// fence has refused every write since the renew deadline passed, exit or not.
async fn lead(
    client: Client,
    cfg: LeaseConfig,
    fence: WriteFence,
    shutdown: impl Future<Output = ()>,
) -> Option<Arc<Leadership>> {
    let leadership = tokio::select! {
        l = Leadership::acquire(client, cfg, fence) => Arc::new(l),
        () = shutdown => return None,
    };
    let held = leadership.clone();
    tokio::spawn(async move {
        let why = held.hold().await;
        error!("lost leadership: {why}; exiting now so no two replicas reconcile at once");
        std::process::exit(1);
    });
    Some(leadership)
}
