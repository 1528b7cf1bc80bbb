//! TEMPORARY dispatch written by B2 so the registration commands can be tested; main.rs is B3's.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use multi_casskop::cli;

#[derive(Parser)]
#[command(name = "multi-casskop", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Export(cli::export::ExportArgs),
    Register(cli::register::RegisterArgs),
    Check(cli::check::CheckArgs),
    Status(cli::status::StatusArgs),
    Ring(cli::ring::RingArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Stand-in for B3's telemetry::init: RUST_LOG to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Export(a) => cli::export::run(a).await,
        Command::Register(a) => cli::register::run(a).await,
        Command::Check(a) => cli::check::run(a).await,
        Command::Status(a) => cli::status::run(a).await,
        Command::Ring(a) => cli::ring::run(a).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
