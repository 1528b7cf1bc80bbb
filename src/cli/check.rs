//! `multi-casskop check` (placeholder: the sites/registration owner writes the real one).
//! INTERFACE FROZEN BY THE LEAD: `CheckArgs` and `run`.

use std::process::ExitCode;

/// Arguments of `multi-casskop check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {}

/// Runs the subcommand; the exit code is the process's.
pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("multi-casskop check is not implemented yet")
}
