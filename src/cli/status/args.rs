//! The arguments of `multi-casskop status`.

use std::time::Duration;

use crate::cli::common::sites::SiteArgs;

const EXAMPLE: &str = "\
Example:
  multi-casskop status cassandra-3dc -n cassandra --use-kubeconfig-contexts \\
      --context k8s-cluster1 -l k8s-cluster1 -r k8s-cluster2,k8s-cluster3

Reads the MultiCasskop from the local cluster, then each site's CassandraCluster and its pods
directly (credentials found as the controller finds them: mounted directory under --imports-dir,
Secret NAME in the namespace, kubeconfig context NAME; with --use-kubeconfig-contexts, your own
kubeconfig context NAME, since the controller's service accounts may not read pods). Sites the
MultiCasskop names in `override`
need no --remote flag: their credentials are looked up the same way. Without --local the local
site is named after the kubeconfig context. Exit code 0 when the table could be printed (even with
unreachable sites), 1 when the MultiCasskop or the local cluster cannot be read.";

/// Output format of `status`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusOutput {
    /// One line per site.
    #[default]
    Table,
    /// The table with namespace, rollout state and credential source.
    Wide,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// Arguments of `multi-casskop status`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    about = "Show a MultiCasskop's federation: per site the phase, current action, ready pods, last transition and message",
    after_help = EXAMPLE
)]
pub struct StatusArgs {
    /// Name of the MultiCasskop.
    pub name: String,
    #[command(flatten)]
    pub sites: SiteArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = StatusOutput::Table)]
    pub output: StatusOutput,
    /// Reach every remote site through the kubeconfig context named after it (your own
    /// credentials) instead of the controller's (mounted directory, Secret, then context).
    #[arg(long)]
    pub use_kubeconfig_contexts: bool,
    /// Keep watching, as `kubectl get -w`: the table is redrawn in place on a terminal, and in
    /// a pipe the lines that changed are printed. Ends with exit 0 once the MultiCasskop is
    /// Ready (condition Ready=True for its current generation), 1 if it is deleted, 130 on Ctrl-C.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// With --watch: give up after this long with exit 1, saying what is not Ready yet, as
    /// `kubectl wait --timeout`. Default: watch until Ready. Example: `--timeout 10m`.
    #[arg(long, value_name = "DURATION", requires = "watch",
          value_parser = crate::duration::parse_or_seconds)]
    pub timeout: Option<Duration>,
}
