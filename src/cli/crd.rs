//! `multi-casskop crd`: prints the MultiCasskop CustomResourceDefinition, generated from the Rust types.

use std::process::ExitCode;

/// Arguments of `multi-casskop crd` (none).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CrdArgs {}

/// Prints the CRD on stdout (the chart's `files/multicasskops.db.orange.com.yaml`, minus its header).
pub fn run(_: CrdArgs) -> anyhow::Result<ExitCode> {
    print!("{}", crate::api::crd_yaml());
    Ok(ExitCode::SUCCESS)
}
