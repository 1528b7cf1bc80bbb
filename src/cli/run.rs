//! `multi-casskop [run]`: starts the controller (probes, metrics, optional leader election).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kube::Client;
use tracing::{error, info, warn};

use crate::cli::SiteArgs;
use crate::rollout::controller::{self, ControllerConfig};
use crate::runtime::health::{self, Readiness};
use crate::runtime::leader::{self, Leadership, LeaseConfig};
use crate::runtime::metrics::Metrics;
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
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c().map(|_| ());
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// Checks the local cluster answers; at start until it does, then every 30 s for `/readyz`.
fn watch_local_reachability(client: Client, readiness: Readiness, local: String) {
    tokio::spawn(async move {
        let mut was_up = None;
        loop {
            let up = match client.apiserver_version().await {
                Ok(_) => {
                    readiness.set_local_reachable(true, None);
                    true
                }
                Err(e) => {
                    let reason = format!("local cluster {local} unreachable: {e}");
                    if was_up != Some(false) {
                        warn!("{reason}");
                    }
                    readiness.set_local_reachable(false, Some(reason));
                    false
                }
            };
            if up && was_up != Some(true) {
                info!("local cluster {local} reachable");
            }
            was_up = Some(up);
            let wait = if up { 30 } else { 2 };
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
    });
}

/// Run the controller until SIGINT/SIGTERM (exit 0) or a lost lease (exit 1).
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let sites = &args.sites;
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
    let identity = leader::identity();
    info!(
        local = %local,
        remotes = ?sites.remotes,
        namespace = %namespace,
        identity = %identity,
        "multi-casskop starting"
    );

    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    let _probes = health::serve(args.metrics_addr, readiness.clone(), metrics.clone()).await?;
    info!(
        "serving /healthz, /readyz and /metrics on {}",
        args.metrics_addr
    );
    watch_local_reachability(client.clone(), readiness.clone(), local.clone());

    let shutdown = shutdown_signal().shared();
    let leadership = if args.leader_elect {
        let cfg = LeaseConfig::new(&namespace, identity.clone());
        tokio::select! {
            l = Leadership::acquire(client.clone(), cfg) => Some(Arc::new(l)),
            _ = shutdown.clone() => {
                info!("shutting down before becoming leader");
                return Ok(ExitCode::SUCCESS);
            }
        }
    } else {
        None
    };
    if let Some(l) = leadership.clone() {
        tokio::spawn(async move {
            let why = l.hold().await;
            // Another replica may be reconciling already: stop at once, Kubernetes restarts us.
            error!("lost leadership: {why}; exiting now so no two replicas reconcile at once");
            std::process::exit(1);
        });
    }

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
        },
        metrics,
        readiness,
        shutdown,
    )
    .await;
    if let Some(l) = leadership {
        l.release().await;
    }
    Ok(ExitCode::SUCCESS)
}
