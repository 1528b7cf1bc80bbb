//! The command line: one file per subcommand, what they share in `common`, and the dispatch.

pub mod check;
pub mod common;
pub mod completions;
pub mod crd;
pub mod export;
pub mod invocation;
pub mod register;
pub mod ring;
pub mod run;
pub mod status;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use invocation::Invocation;

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
    /// Print a shell completion script.
    ///
    /// Example: source <(multi-casskop completions bash)
    Completions(completions::CompletionsArgs),
    /// Completion candidates in cobra's format, for kubectl's plugin completion.
    #[command(name = "__complete", hide = true)]
    Complete(completions::CompleteArgs),
}

/// The whole `multi-casskop` command line: parse `args` (the first item is the program name,
/// which says whether it runs as the kubectl plugin: see [`invocation`]), set up logging, run the
/// subcommand, and return the process exit code. `src/main.rs` calls it; the demo calls it too
/// when started under the name `multi-casskop`.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let invocation = Invocation::from_argv0(args.first().map(std::ffi::OsString::as_os_str));
    let mut cmd = invocation.shape(Cli::command());
    if let Invocation::PluginCompletion { .. } = invocation {
        let words: Vec<String> = args[1..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return completions::answer(&mut cmd, &words);
    }
    if invocation.is_plugin() && args.len() <= 1 {
        // As `kubectl` alone: the help, exit 0.
        let _ = cmd.print_long_help();
        return ExitCode::SUCCESS;
    }
    let parsed = match cmd
        .try_get_matches_from_mut(args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(p) => p,
        Err(e) => e.format(&mut cmd).exit(),
    };
    match parsed.command {
        Some(Command::Completions(a)) => return completions::run(&a, &mut cmd, &invocation),
        Some(Command::Complete(a)) => return completions::answer(&mut cmd, &a.words),
        _ => {}
    }
    crate::runtime::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "{}: cannot start the async runtime: {e}",
                invocation.display_name()
            );
            return ExitCode::FAILURE;
        }
    };
    let what = command_words(&invocation, parsed.command.as_ref());
    match runtime.block_on(dispatch(parsed)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{what}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the parsed command (the controller without one).
async fn dispatch(parsed: Cli) -> anyhow::Result<ExitCode> {
    match parsed.command {
        None => run::run(parsed.run).await,
        Some(Command::Run(args)) => run::run(args).await,
        Some(Command::Export(args)) => export::run(args).await,
        Some(Command::Register(args)) => register::run(args).await,
        Some(Command::Check(args)) => check::run(args).await,
        Some(Command::Status(args)) => status::run(args).await,
        Some(Command::Ring(args)) => ring::run(args).await,
        Some(Command::Crd(args)) => crd::run(args),
        Some(Command::Completions(_) | Command::Complete(_)) => Ok(ExitCode::SUCCESS),
    }
}

/// The command as the user typed it, to start its error message: `kubectl multicasskop status`.
fn command_words(invocation: &Invocation, command: Option<&Command>) -> String {
    let sub = match command {
        None | Some(Command::Run(_)) => "run",
        Some(Command::Export(_)) => "export",
        Some(Command::Register(_)) => "register",
        Some(Command::Check(_)) => "check",
        Some(Command::Status(_)) => "status",
        Some(Command::Ring(_)) => "ring",
        Some(Command::Crd(_)) => "crd",
        Some(Command::Completions(_) | Command::Complete(_)) => "completions",
    };
    format!("{} {sub}", invocation.display_name())
}
