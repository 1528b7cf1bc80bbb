//! A site: a configured cluster's client, or why it cannot be used.

use std::sync::Arc;

use super::client_config::ClientConfigError;
use super::credentials::{CredentialError, CredentialSource};

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
