//! CassKop's `CassandraCluster`, handled as an opaque object with a few typed accessors.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

/// db.orange.com/v2 CassandraCluster, namespaced, no status subresource.
pub fn cassandra_cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", "CassandraCluster"),
        "cassandraclusters",
    )
}

/// Read-only typed view over the few CassandraCluster fields we use.
pub struct CassandraClusterView<'a>(pub &'a DynamicObject);

impl<'a> CassandraClusterView<'a> {
    fn status_str(&self, key: &str) -> Option<&'a str> {
        self.0.data.get("status")?.get(key)?.as_str()
    }
    /// `status.phase`: Initializing, Running, Pending.
    pub fn phase(&self) -> Option<&'a str> {
        self.status_str("phase")
    }
    /// `status.lastClusterAction`.
    pub fn last_cluster_action(&self) -> Option<&'a str> {
        self.status_str("lastClusterAction")
    }
    /// `status.lastClusterActionStatus`: ToDo, Ongoing, Continue, Finalizing, Done, Error.
    pub fn last_cluster_action_status(&self) -> Option<&'a str> {
        self.status_str("lastClusterActionStatus")
    }
    /// Multi-CassKop's readiness rule: phase Running and last action Done.
    pub fn is_running_done(&self) -> bool {
        self.phase() == Some("Running") && self.last_cluster_action_status() == Some("Done")
    }
}
