//! Sites: the clusters a federation spans, their credentials and clients, reloaded live.

pub mod answering;
pub mod client_config;
mod config;
pub mod credentials;
pub mod deadlines;
pub mod exported;
pub mod local;
pub mod probe;
mod registry;
pub mod renewal;
mod secret_watch;
mod site;
pub mod token_expiry;
pub mod token_report;
pub mod transport;
pub mod untrusted;

pub use config::RegistryConfig;
pub use credentials::{CredentialError, CredentialSource, Credentials};
pub use registry::{ClientHook, SiteRegistry};
pub use site::{Site, SiteError, SiteState};
pub use untrusted::KubeconfigPolicy;

/// Multi-CassKop's mount path for exported service-account Secrets (one directory per remote).
pub const DEFAULT_IMPORTS_DIR: &str = "/var/run/secrets/admiralty.io/serviceaccountimports";
