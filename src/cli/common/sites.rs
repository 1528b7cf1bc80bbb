//! The flags naming a federation's sites, shared by the controller, `check`, `status` and `ring`.

use std::path::PathBuf;

use clap::Args;

use crate::sites::{DEFAULT_IMPORTS_DIR, KubeconfigPolicy};

/// The sites of a federation: the same flags as Multi-CassKop (`-l`, `-r`), shared by the
/// controller, `check` and `status`.
#[derive(Args, Debug, Clone, Default)]
pub struct SiteArgs {
    /// Name of the local (control-plane) cluster: the first site of every rollout.
    #[arg(
        short = 'l',
        long = "local",
        env = "MULTI_CASSKOP_LOCAL",
        value_name = "NAME"
    )]
    pub local: Option<String>,
    /// Remote cluster names, in rollout order. Repeat the flag or give a comma-separated list.
    /// Each needs credentials: a mounted Secret under --imports-dir, a Secret NAME in the
    /// controller's namespace, or a kubeconfig context NAME.
    #[arg(short = 'r', long = "remote", value_name = "NAME", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub remotes: Vec<String>,
    /// Namespace to watch and to read credential Secrets from. Default: $WATCH_NAMESPACE, else the
    /// in-cluster namespace, else the kubeconfig context's namespace, else "default".
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
    /// Kubeconfig file for the local cluster and for context-named remotes (default: $KUBECONFIG
    /// or ~/.kube/config; in a pod: the in-cluster service account).
    #[arg(long = "kubeconfig", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context of the local cluster (default: the current context).
    #[arg(long = "context", value_name = "CONTEXT")]
    pub context: Option<String>,
    /// Directory holding one mounted Secret per remote (Multi-CassKop's path).
    #[arg(long = "imports-dir", value_name = "DIR", default_value = DEFAULT_IMPORTS_DIR)]
    pub imports_dir: PathBuf,
    #[command(flatten)]
    pub deadlines: super::deadlines::DeadlineArgs,
    /// Let kubeconfigs read through the API (mounted Secrets under --imports-dir, Secrets,
    /// ClientConfigs' Secrets) run `exec` and `auth-provider` plugins and read local files
    /// (`tokenFile`, `certificate-authority`, `client-certificate`, `client-key`). Off by
    /// default: anyone who can write such a Secret could run commands as the controller and
    /// read its files, so these fields are refused. The --kubeconfig file is never restricted.
    #[arg(long = "insecure-kubeconfig-exec")]
    pub insecure_kubeconfig_exec: bool,
    /// Let kubeconfigs read through the API use `insecure-skip-tls-verify: true`, `http://`
    /// servers and `proxy-url`. Off by default: such a site's token could be taken on the way.
    #[arg(long = "insecure-kubeconfig-tls")]
    pub insecure_kubeconfig_tls: bool,
}

impl SiteArgs {
    /// What kubeconfigs read through the API may use, as the two `--insecure-kubeconfig-*`
    /// flags say.
    pub fn kubeconfig_policy(&self) -> KubeconfigPolicy {
        KubeconfigPolicy {
            allow_exec: self.insecure_kubeconfig_exec,
            allow_insecure_tls: self.insecure_kubeconfig_tls,
        }
    }
}
