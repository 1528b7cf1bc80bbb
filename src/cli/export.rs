//! `multi-casskop export` (placeholder: the sites/registration owner writes the real one).
//! INTERFACE FROZEN BY THE LEAD: `ExportArgs` and `run`.

use std::process::ExitCode;

/// Arguments of `multi-casskop export`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {}

/// Runs the subcommand; the exit code is the process's.
pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("multi-casskop export is not implemented yet")
}
