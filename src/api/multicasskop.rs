//! `MultiCasskop`: spec identical to Multi-CassKop's, plus a status that tells the whole story.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Label set on every CassandraCluster we create: the owning MultiCasskop's name.
pub const OWNER_NAME_LABEL: &str = "multicasskop.db.orange.com/owner-name";
/// Label set on every CassandraCluster we create: the owning MultiCasskop's namespace.
pub const OWNER_NAMESPACE_LABEL: &str = "multicasskop.db.orange.com/owner-namespace";
/// Label set on every CassandraCluster we create: the site (cluster name) it belongs to.
pub const SITE_LABEL: &str = "multicasskop.db.orange.com/site";
/// Annotation on every CassandraCluster we write: hash of the desired object we applied.
pub const SPEC_HASH_ANNOTATION: &str = "multicasskop.db.orange.com/spec-hash";
/// Finalizer added when `deleteCassandraCluster: true`.
pub const FINALIZER: &str = "multicasskop.db.orange.com/delete-cassandraclusters";
/// Field manager of every server-side apply we do.
pub const FIELD_MANAGER: &str = "multi-casskop";

/// Desired state: a base CassandraCluster and per-site overrides (Multi-CassKop's spec, unchanged).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "db.orange.com",
    version = "v2",
    kind = "MultiCasskop",
    plural = "multicasskops",
    singular = "multicasskop",
    namespaced,
    status = "MultiCasskopStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Site","type":"string","description":"Site in progress","jsonPath":".status.currentSite"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","description":"Sites Running over sites","jsonPath":".status.readySites"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MultiCasskopSpec {
    /// When true, a finalizer is added and deleting the MultiCasskop deletes the
    /// CassandraClusters it created, last site first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_cassandra_cluster: Option<bool>,
    /// A whole CassandraCluster (apiVersion, kind, metadata, spec): what every site starts from.
    #[serde(default)]
    #[schemars(schema_with = "free_form_object")]
    pub base: serde_json::Value,
    /// Site name -> partial CassandraCluster merged over `base` (RFC 7386). Only sites named here
    /// get a CassandraCluster.
    #[serde(default, rename = "override")]
    #[schemars(schema_with = "free_form_map")]
    pub override_: BTreeMap<String, serde_json::Value>,
    /// Optional explicit rollout order (site names). Without it: local, remotes in flag order,
    /// then ClientConfig sites by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_order: Option<Vec<String>>,
}

/// What the controller observed and did, per site and overall.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiCasskopStatus {
    /// Overall phase: Pending, Progressing, Running, Blocked, Invalid or Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The site being created or changed right now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_site: Option<String>,
    /// Sites Running/Done and up to date over sites taking part, like `2/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_sites: Option<String>,
    /// The MultiCasskop generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One entry per site taking part, in rollout order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteStatus>,
    /// Ready, Progressing, Valid, SitesReachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One site's CassandraCluster as last observed, and what we last wrote there.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteStatus {
    /// Site (cluster) name.
    pub name: String,
    /// Namespace of the site's CassandraCluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// CassandraCluster `status.phase` as CassKop wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// CassandraCluster `status.lastClusterAction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cluster_action: Option<String>,
    /// CassandraCluster `status.lastClusterActionStatus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cluster_action_status: Option<String>,
    /// True when the site is Running/Done with a status written after our last change.
    #[serde(default)]
    pub ready: bool,
    /// Where the site stands in the rollout: Ready, InProgress, Waiting, Blocked or Deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Human-readable state of this site (why it waits, what failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `ready` or the site state last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Hash of the desired CassandraCluster we last applied to this site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_hash: Option<String>,
    /// The CassandraCluster's `metadata.generation` right after our last write; a status counts
    /// only once the generation moved past it (CassKop wrote after us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_generation: Option<i64>,
    /// When we last wrote to this site (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_time: Option<String>,
}

/// A Kubernetes-style condition (metav1.Condition shape).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready, Progressing, Valid or SitesReachable.
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// When status last changed (RFC 3339).
    pub last_transition_time: String,
    /// Generation this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

fn free_form_map(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        }
    })
}
