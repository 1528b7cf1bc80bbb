//! The command line: one file per subcommand, what they share in `common`, and the dispatch.

pub mod check;
pub mod common;
pub mod crd;
pub mod export;
pub mod register;
pub mod ring;
pub mod run;
pub mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use common::sites::SiteArgs;

/// Federates CassKop CassandraClusters across Kubernetes clusters, one site at a time.
///
/// Without a subcommand it runs the controller, as Multi-CassKop's chart starts it:
///   multi-casskop -lk8s-cluster1 -rk8s-cluster2 -rk8s-cluster3
///
/// Logging: RUST_LOG (e.g. RUST_LOG=multi_casskop=debug), else LOG_LEVEL=Debug|Info|Warn|Error;
/// LOG_TYPE=json for JSON lines.
#[derive(Parser, Debug)]
#[command(
    name = "multi-casskop",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    run: run::RunArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller (the default).
    ///
    /// Example: multi-casskop run --local k8s-cluster1 --remote k8s-cluster2,k8s-cluster3 --leader-elect
    Run(run::RunArgs),
    /// Print a remote cluster's service-account credentials as a Secret for the control plane.
    ///
    /// Example: multi-casskop export --context k8s-cluster2 -n cassandra multi-casskop --as k8s-cluster2 | kubectl apply -f -
    Export(export::ExportArgs),
    /// Register a data-plane cluster with the control plane (creates the credential Secret).
    ///
    /// Example: multi-casskop register --source-context k8s-cluster2 --dest-context k8s-cluster1
    Register(register::RegisterArgs),
    /// Check that every configured site is reachable with the credentials the controller would use.
    ///
    /// Example: multi-casskop check -l k8s-cluster1 -r k8s-cluster2
    Check(check::CheckArgs),
    /// Show a MultiCasskop's rollout: every site, its CassandraCluster and what blocks it.
    ///
    /// Example: multi-casskop status cassandra-3dc -n cassandra
    Status(status::StatusArgs),
    /// Check the Cassandra ring across the sites (nodetool status in one pod per site).
    ///
    /// Example: multi-casskop ring cassandra-3dc -n cassandra
    Ring(ring::RingArgs),
    /// Print the MultiCasskop CustomResourceDefinition (YAML).
    ///
    /// Example: multi-casskop crd | kubectl apply -f -
    Crd(crd::CrdArgs),
}

/// The whole `multi-casskop` command line: parse `args` (the first item is the program name),
/// set up logging, run the subcommand, and return the process exit code. `src/main.rs` calls it;
/// the demo calls it too when started under the name `multi-casskop`.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let parsed = Cli::parse_from(args);
    crate::runtime::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("multi-casskop: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match parsed.command {
            None => run::run(parsed.run).await,
            Some(Command::Run(args)) => run::run(args).await,
            Some(Command::Export(args)) => export::run(args).await,
            Some(Command::Register(args)) => register::run(args).await,
            Some(Command::Check(args)) => check::run(args).await,
            Some(Command::Status(args)) => status::run(args).await,
            Some(Command::Ring(args)) => ring::run(args).await,
            Some(Command::Crd(args)) => crd::run(args),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
