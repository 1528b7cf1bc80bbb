//! kubesim binary: serves simulated clusters, writes their kubeconfig, runs the admin endpoint until SIGINT/SIGTERM.
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use kubesim::{Sim, SimOptions, casskop::CasskopOptions};

#[derive(Parser, Debug)]
#[command(name = "kubesim", about = "In-memory simulated Kubernetes API servers")]
struct Args {
    /// Cluster names, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    clusters: Vec<String>,
    /// Where to write the kubeconfig (one context per cluster).
    #[arg(long)]
    kubeconfig_out: PathBuf,
    /// Install the CassandraCluster CRD and run the simulated CassKop in every cluster.
    #[arg(long)]
    casskop: bool,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    casskop_ready_after: Duration,
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    casskop_react_after: Duration,
    /// Write the audit log as JSON lines to this file.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Longest lifetime of a TokenRequest token, as kube-apiserver's flag of the same name
    /// (longer requests are shortened to it; any duration is accepted, e.g. 20s for tests).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    service_account_max_token_expiration: Option<Duration>,
    /// Run a simulated kubelet in every cluster: a pod whose image is IMAGE (exact, or without
    /// its tag) runs the local binary PATH as its process. Repeatable; needs root and iproute2.
    #[arg(long = "kubelet", value_name = "IMAGE=PATH", value_parser = kubesim::KubeletOptions::parse_mapping)]
    kubelet: Vec<(String, PathBuf)>,
    /// Port of the admin endpoint (0 = any free port).
    #[arg(long, default_value_t = 0)]
    admin_port: u16,
}

/// "1500ms", "2s", "1m", "1h" or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 2s, 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Worker stack: handling a body as deep as kube-apiserver takes (10,000 levels) recurses once
/// per level in validation, patching, encoding and dropping; tokio's default 2 MiB is not enough.
const WORKER_STACK: usize = 256 * 1024 * 1024;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK)
        .build()
        .context("starting the async runtime")?
        .block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let names: Vec<&str> = args
        .clusters
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let opts = SimOptions {
        casskop: args.casskop.then_some(CasskopOptions {
            ready_after: args.casskop_ready_after,
            react_after: args.casskop_react_after,
        }),
        audit_log: args.audit_log.clone(),
        max_token_expiration: args.service_account_max_token_expiration,
    };
    let mut sim = Sim::start(&names, opts).await.context("starting kubesim")?;
    if !args.kubelet.is_empty() {
        let k = kubesim::KubeletOptions {
            images: args.kubelet.iter().cloned().collect(),
        };
        sim.start_kubelet(&k).await?;
    }
    sim.write_kubeconfig(&args.kubeconfig_out)?;
    let (addr, admin) = kubesim::admin::start(&sim, args.admin_port).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "kubesim admin http://{addr}")?;
        writeln!(out, "kubesim ready")?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    admin.abort();
    sim.shutdown().await;
    Ok(())
}
