//! The `multi-casskop` binary: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use multi_casskop::cli;

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
    run: cli::run::RunArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller (the default).
    ///
    /// Example: multi-casskop run --local k8s-cluster1 --remote k8s-cluster2,k8s-cluster3 --leader-elect
    Run(cli::run::RunArgs),
    /// Print a remote cluster's service-account credentials as a Secret for the control plane.
    ///
    /// Example: multi-casskop export --context k8s-cluster2 ... | kubectl apply -f -
    Export(cli::export::ExportArgs),
    /// Register a data-plane cluster with the control plane (creates the credential Secret).
    ///
    /// Example: multi-casskop register --source-context k8s-cluster2 --dest-context k8s-cluster1
    Register(cli::register::RegisterArgs),
    /// Check that every configured site is reachable with the credentials the controller would use.
    ///
    /// Example: multi-casskop check -l k8s-cluster1 -r k8s-cluster2
    Check(cli::check::CheckArgs),
    /// Show a MultiCasskop's rollout: every site, its CassandraCluster and what blocks it.
    ///
    /// Example: multi-casskop status cassandra-3dc -n cassandra
    Status(cli::status::StatusArgs),
    /// Check the Cassandra ring across the sites (nodetool status in one pod per site).
    ///
    /// Example: multi-casskop ring cassandra-3dc -n cassandra
    Ring(cli::ring::RingArgs),
    /// Print the MultiCasskop CustomResourceDefinition (YAML).
    ///
    /// Example: multi-casskop crd | kubectl apply -f -
    Crd(cli::crd::CrdArgs),
}

fn main() -> ExitCode {
    let parsed = Cli::parse();
    multi_casskop::telemetry::init();
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
            None => cli::run::run(parsed.run).await,
            Some(Command::Run(args)) => cli::run::run(args).await,
            Some(Command::Export(args)) => cli::export::run(args).await,
            Some(Command::Register(args)) => cli::register::run(args).await,
            Some(Command::Check(args)) => cli::check::run(args).await,
            Some(Command::Status(args)) => cli::status::run(args).await,
            Some(Command::Ring(args)) => cli::ring::run(args).await,
            Some(Command::Crd(args)) => cli::crd::run(args),
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
