//! CassKop's `CassandraCluster`, handled as an opaque object with a few typed accessors.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{ApiResource, DynamicObject};

use crate::api::lenient::Poison;
use crate::api::owner::OwnerLabels;

const GROUP: &str = "db.orange.com";
const VERSION: &str = "v2";
const API_VERSION: &str = "db.orange.com/v2";
const KIND: &str = "CassandraCluster";
const PLURAL: &str = "cassandraclusters";

/// db.orange.com/v2 CassandraCluster, namespaced, no status subresource.
pub fn cassandra_cluster_resource() -> ApiResource {
    ApiResource::erase::<CachedCluster>(&())
}

/// The `status` fields the controller reads: CassKop's progress and the seed list we set.
pub const CACHED_STATUS_FIELDS: [&str; 4] = [
    "phase",
    "lastClusterAction",
    "lastClusterActionStatus",
    "seedlist",
];

/// Keep in a cached CassandraCluster only what the controller reads: no managedFields, and of
/// `status` only [`CACHED_STATUS_FIELDS`] (CassKop's per-rack and per-pod status can be most
/// of a large cluster's object).
pub fn slim_for_cache(obj: &mut DynamicObject) {
    obj.metadata.managed_fields = None;
    if let Some(status) = obj
        .data
        .get_mut("status")
        .and_then(serde_json::Value::as_object_mut)
    {
        status.retain(|k, _| CACHED_STATUS_FIELDS.contains(&k.as_str()));
    }
}

/// A stand-in carrying only `metadata`, to drop an undecodable CassandraCluster from a cache.
pub fn placeholder(metadata: ObjectMeta) -> DynamicObject {
    DynamicObject {
        types: None,
        metadata,
        data: serde_json::Value::Null,
    }
}

/// Log an undecodable CassandraCluster of `site`, with the MultiCasskop its labels name.
pub fn report_poison(site: &str, poison: &Poison) {
    let labels = poison.meta.labels.clone().unwrap_or_default();
    let owner = match (
        labels.get(crate::api::multicasskop::OWNER_NAMESPACE_LABEL),
        labels.get(crate::api::multicasskop::OWNER_NAME_LABEL),
    ) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        _ => "none".to_string(),
    };
    tracing::warn!(
        site,
        cassandracluster = %poison.key(),
        multicasskop = %owner,
        "CassandraCluster {} in site {site} cannot be decoded, left out of the cache: {}",
        poison.key(),
        poison.error
    );
}

/// A CassandraCluster as a site cache holds it: the (slimmed) object as compact JSON text, decoded
/// when a reconcile reads it, and beside it only what the cache itself and the lookups over a
/// whole cache read (name, namespace, resourceVersion, generation, owner labels). A decoded
/// object (`serde_json::Value` maps keep their order, so each one is an index plus a table) is
/// several times its text: for 1,000 MultiCasskops x 3 sites this was most of the controller's
/// heap. The kind is fixed, so the cache's keys carry no [`ApiResource`].
#[derive(Clone, Debug)]
pub struct CachedCluster {
    metadata: ObjectMeta,
    owner: [Option<Box<str>>; 3],
    text: Box<str>,
}

impl CachedCluster {
    /// The cache's copy of `obj` (slim it first, see [`slim_for_cache`]).
    pub fn new(obj: &DynamicObject) -> Self {
        let m = &obj.metadata;
        let labels = OwnerLabels::read(m.labels.as_ref());
        Self {
            metadata: ObjectMeta {
                name: m.name.clone(),
                namespace: m.namespace.clone(),
                resource_version: m.resource_version.clone(),
                generation: m.generation,
                ..ObjectMeta::default()
            },
            owner: [labels.namespace, labels.name, labels.site].map(|l| l.map(Box::from)),
            // Serializing a decoded object cannot fail: its map keys are strings.
            text: serde_json::to_string(obj)
                .unwrap_or_default()
                .into_boxed_str(),
        }
    }

    /// The owner labels of the object.
    pub fn owner_labels(&self) -> OwnerLabels<'_> {
        let [namespace, name, site] = self.owner.each_ref().map(|l| l.as_deref());
        OwnerLabels {
            namespace,
            name,
            site,
        }
    }

    /// The object as the watch delivered it, minus what [`slim_for_cache`] leaves out. The text
    /// was written from an object that decoded within the same depth limit, so this only fails
    /// if memory was corrupted; the error names the object.
    pub fn object(&self) -> Result<DynamicObject, String> {
        serde_json::from_str(&self.text).map_err(|e| {
            format!(
                "cached CassandraCluster {}/{} cannot be read back: {e}",
                self.metadata.namespace.as_deref().unwrap_or_default(),
                self.metadata.name.as_deref().unwrap_or_default()
            )
        })
    }
}

impl Resource for CachedCluster {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind((): &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group((): &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version((): &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn api_version((): &()) -> Cow<'_, str> {
        API_VERSION.into()
    }
    fn plural((): &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cache_copy_keeps_what_the_controller_reads() {
        let mut obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": {"name": "c", "managedFields": [{"manager": "casskop"}],
                         "labels": {"a": "b"}},
            "spec": {"nodesPerRacks": 3},
            "status": {"phase": "Running", "lastClusterAction": "Initializing",
                       "lastClusterActionStatus": "Done", "seedlist": ["s1"],
                       "cassandraRackStatus": {"dc1-rack1": {"phase": "Running"}}}
        }))
        .unwrap();
        slim_for_cache(&mut obj);
        assert!(obj.metadata.managed_fields.is_none());
        assert_eq!(obj.metadata.labels.as_ref().unwrap()["a"], "b");
        assert_eq!(obj.data["spec"]["nodesPerRacks"], 3);
        let view = CassandraClusterView(&obj);
        assert!(view.is_running_done());
        assert_eq!(view.last_cluster_action(), Some("Initializing"));
        assert_eq!(obj.data["status"]["seedlist"], json!(["s1"]));
        assert!(obj.data["status"].get("cassandraRackStatus").is_none());
    }
}
