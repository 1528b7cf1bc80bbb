//! How the registry finds sites: the local cluster, the remotes and where their credentials live.

use std::path::PathBuf;

/// How to find sites.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    pub local: String,
    pub remotes: Vec<String>,
    /// The controller's namespace (Secrets and ClientConfigs are read there).
    pub namespace: String,
    pub imports_dir: PathBuf,
    /// Kubeconfig file used for `--kubeconfig` and for context-named remotes.
    pub kubeconfig: Option<PathBuf>,
    /// Context of the local cluster (`--context`), else current/in-cluster.
    pub local_context: Option<String>,
    /// What kubeconfigs read through the API (mounted Secrets, Secrets, ClientConfigs) may use
    /// beyond plain data; the `kubeconfig` file above is the operator's and is not vetted.
    pub kubeconfig_policy: super::untrusted::KubeconfigPolicy,
}
