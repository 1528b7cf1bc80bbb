//! `multi-casskop register` (placeholder: the sites/registration owner writes the real one).
//! INTERFACE FROZEN BY THE LEAD: `RegisterArgs` and `run`.

use std::process::ExitCode;

/// Arguments of `multi-casskop register`.
#[derive(clap::Args, Debug, Clone)]
pub struct RegisterArgs {}

/// Runs the subcommand; the exit code is the process's.
pub async fn run(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("multi-casskop register is not implemented yet")
}
