//! `multi-casskop status`: one table of a federation, read live from the local MultiCasskop and every site's CassandraCluster and pods; `--watch` follows it.

mod args;
mod render;
mod report;
mod watch;

use std::process::ExitCode;

pub use args::{StatusArgs, StatusOutput};
pub use render::{age, render};
pub use report::{SiteLine, StatusReport, report};

use super::common::federation;

/// `multi-casskop status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    args.sites.deadlines.install();
    let fed = federation::load(&args.sites, &args.name, args.use_kubeconfig_contexts).await?;
    if args.watch {
        return watch::run(&args, fed).await;
    }
    let r = report(&fed).await;
    match args.output {
        StatusOutput::Table | StatusOutput::Wide => {
            print!(
                "{}",
                render(
                    &r,
                    args.output == StatusOutput::Wide,
                    jiff::Timestamp::now()
                )
            );
        }
        StatusOutput::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        StatusOutput::Yaml => print!("{}", serde_saphyr::to_string(&r)?),
    }
    Ok(ExitCode::SUCCESS)
}
