//! Sites: the clusters a federation spans, their credentials and clients, reloaded live.

pub mod client_config;
pub mod credentials;
pub mod exported;
pub mod local;
pub mod probe;
mod registry;

use std::path::PathBuf;
use std::sync::Arc;

pub use credentials::{CredentialError, Credentials};

use client_config::ClientConfigError;

/// Multi-CassKop's mount path for exported service-account Secrets (one directory per remote).
pub const DEFAULT_IMPORTS_DIR: &str = "/var/run/secrets/admiralty.io/serviceaccountimports";

/// Where a site's credentials came from (shown in status/check, never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    InCluster,
    KubeconfigContext {
        context: String,
    },
    MountedDir {
        path: PathBuf,
    },
    Secret {
        namespace: String,
        name: String,
    },
    ClientConfig {
        namespace: String,
        name: String,
        secret: String,
        context: String,
    },
}

/// Why a configured site cannot be used: defined twice, or its credentials are broken.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SiteError {
    /// `--local` and `--remote` both name the site.
    #[error("site {name} is defined twice: by --local and by --remote; remove one")]
    LocalAndRemote { name: String },
    /// `--local` and a ClientConfig both name the site.
    #[error(
        "site {name} is defined twice: by --local {name} and by ClientConfig {namespace}/{name}; remove one"
    )]
    LocalAndClientConfig { name: String, namespace: String },
    /// `--remote` and a ClientConfig both name the site.
    #[error(
        "site {name} is defined twice: by --remote {name} and by ClientConfig {namespace}/{name}; remove one"
    )]
    RemoteAndClientConfig { name: String, namespace: String },
    /// The site's ClientConfig is unusable.
    #[error(transparent)]
    ClientConfig(#[from] ClientConfigError),
    /// The site's credentials are missing or broken.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

/// A usable site: a client to its API server.
#[derive(Clone)]
pub struct Site {
    pub name: String,
    pub client: kube::Client,
    /// Default namespace of the credentials (kubeconfig context / secret `namespace` key).
    pub default_namespace: Option<String>,
    pub source: CredentialSource,
    /// Bumped each time this site's client is rebuilt (credential rotation).
    pub revision: u64,
}

/// A configured site's state.
#[derive(Clone)]
pub enum SiteState {
    Ready(Arc<Site>),
    /// Credentials missing or broken; `reason` names the source tried and what is wrong.
    Unavailable {
        reason: String,
    },
}

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
}

/// Live set of sites; cheap to clone.
///
/// Remotes come from `--remote` flags (credentials: mounted directory, Secret, kubeconfig
/// context) and from k8ssandra `ClientConfig` objects in the controller namespace; both can
/// change while the controller runs. A Secret watch, a ClientConfig watch, a file watch on the
/// imports directory and a 2 s poll all trigger the same idempotent reload: a site's client is
/// rebuilt only when its raw credentials changed.
#[derive(Clone)]
pub struct SiteRegistry {
    inner: Arc<registry::Inner>,
}

impl SiteRegistry {
    /// Load every site, spawn the reload tasks (Secret watch, imports dir watch). Never fails
    /// because of a remote: a broken remote is `Unavailable` and retried.
    pub async fn start(local: kube::Client, cfg: RegistryConfig) -> Self {
        Self {
            inner: registry::Inner::start(local, cfg).await,
        }
    }
    /// Configured site names in default rollout order: the local site, `--remote` flags in
    /// order, then ClientConfig sites by name.
    pub fn order(&self) -> Vec<String> {
        self.inner.order()
    }
    /// `None`: no such site configured.
    pub fn get(&self, name: &str) -> Option<SiteState> {
        self.inner.get(name)
    }
    /// Changes whenever any site is added, removed, rebuilt or becomes unavailable.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.subscribe()
    }
    /// Every configured site with its state, in [`Self::order`].
    pub fn sites(&self) -> Vec<(String, SiteState)> {
        self.order()
            .into_iter()
            .filter_map(|n| self.get(&n).map(|s| (n, s)))
            .collect()
    }
    /// The registry's configuration.
    pub fn config(&self) -> &RegistryConfig {
        self.inner.config()
    }
    /// Re-reads every source now (the background tasks do this on every change and every 2 s).
    pub async fn reload(&self) {
        self.inner.reload().await
    }
}

impl SiteState {
    /// The site, when usable.
    pub fn ready(&self) -> Option<&Arc<Site>> {
        match self {
            SiteState::Ready(s) => Some(s),
            SiteState::Unavailable { .. } => None,
        }
    }
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("name", &self.name)
            .field("default_namespace", &self.default_namespace)
            .field("source", &self.source)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SiteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SiteState::Ready(s) => f.debug_tuple("Ready").field(s).finish(),
            SiteState::Unavailable { reason } => f
                .debug_struct("Unavailable")
                .field("reason", reason)
                .finish(),
        }
    }
}
