//! The state one simulated cluster is made of: name, address, CA, admin token, object store, faults, test hooks, audit log, shutdown, pod exec.
use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::exec::ExecContext;
use crate::faults::Faults;
use crate::hooks::Hooks;
use crate::kubelet::logs::PodLogs;
use crate::store::Store;

/// Everything one simulated cluster is made of.
pub struct ClusterInner {
    pub name: String,
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub admin_token: String,
    pub store: Arc<Store>,
    pub faults: Faults,
    pub hooks: Hooks,
    pub audit: Arc<AuditLog>,
    pub shutdown: CancellationToken,
    /// Pod exec: the other clusters of the Sim and the ring faults.
    pub exec: Arc<ExecContext>,
    /// Container logs of the simulated kubelet (pods/log), empty without one.
    pub pod_logs: Arc<PodLogs>,
}

impl std::fmt::Debug for ClusterInner {
    // No tokens in Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterInner")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
