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
/// Annotation on every CassandraCluster we write: `metadata.generation` of the object our write
/// was computed against (`0`: the write created it). The write carries that object's
/// resourceVersion as a precondition, so this is exact; with it the applied mark of a write
/// whose record in our status was lost (controller killed, status write refused) is recovered
/// from the object alone.
pub const FROM_GENERATION_ANNOTATION: &str = "multicasskop.db.orange.com/applied-from-generation";
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
    doc = "A federation of CassKop CassandraClusters: one per site, rolled out one site after another.",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Site","type":"string","description":"Site in progress","jsonPath":".status.currentSite"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","description":"Sites Running over sites","jsonPath":".status.readySites"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MultiCasskopSpec {
    /// When true, a finalizer is added and deleting the MultiCasskop deletes the
    /// CassandraClusters it created, last site first; a site removed from `override` has its DCs
    /// scaled to 0, then its CassandraCluster deleted. Otherwise such a site's CassandraCluster is
    /// released (owner labels removed, annotated with who released it and when).
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
    /// When true, the controller computes the seed list of every site's CassandraCluster
    /// (`status.seedlist`) with CassKop's own rule over every site's merged CassandraCluster, in
    /// rollout order, each seed named in its site's DNS zone (the
    /// `external-dns.alpha.kubernetes.io/hostname` annotation of its `spec.service.annotations`).
    /// A changed list rolls out one site at a time. Cannot be combined with
    /// `base.status.seedlist` (the list written by hand, used when this is not true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_seed_list: Option<bool>,
    /// When true, nothing is written for this MultiCasskop (no CassandraCluster created,
    /// changed or deleted, no finalizer added or removed) while its status keeps being reported
    /// (phase Paused); false or absent resumes where it stopped, one site at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// What the controller observed and did, per site and overall.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiCasskopStatus {
    /// Overall phase: Pending, Progressing, Running, Blocked, Invalid, Deleting or Paused.
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
    /// One entry per site taking part, in rollout order; then the sites that left
    /// `spec.override`: one being removed (kept until nothing of ours is left there, the record a
    /// restarted controller carries on from), or whose CassandraCluster was released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteStatus>,
    /// Ready, Progressing, Valid, SitesReachable; and Paused while `spec.paused` is true.
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
    /// Where the site stands in the rollout: Ready, InProgress, Waiting, Blocked or Deleted; for
    /// a site that left `spec.override`: Removing (scaled to 0, deleted or released), Waiting,
    /// Blocked, or Released (its CassandraCluster is no longer ours; nothing was deleted).
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
    /// The generation our last write was computed from (`0`: it created the object), as the
    /// object's `applied-from-generation` annotation says: tells a recorded write from a later
    /// one whose record was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_from_generation: Option<i64>,
    /// When we last wrote to this site (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_time: Option<String>,
    /// Fields of our last write that the site did not store (its CassandraCluster CRD does not
    /// declare them), as field paths such as `spec.topology.dc[0].nodesPerRack`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_fields: Vec<String>,
    /// With `spec.autoSeedList`: the seed list (`status.seedlist`) this site's CassandraCluster
    /// holds, as last written or observed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seed_list: Vec<String>,
}

/// A Kubernetes-style condition (metav1.Condition shape).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready, Progressing, Valid, SitesReachable or Paused.
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

/// The MultiCasskop CustomResourceDefinition as YAML, generated from the Rust types
/// (`multi-casskop crd`, and the Helm chart's `files/`, rendered by its CRD template).
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&MultiCasskop::crd()).expect("a CRD always serializes to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn crd() -> Value {
        let yaml = crd_yaml();
        // Round trip through the YAML text: what users and Helm get.
        serde_saphyr::from_str(&yaml).expect("crd_yaml is valid YAML")
    }

    #[test]
    fn crd_has_status_subresource_and_printer_columns() {
        let crd = crd();
        assert_eq!(crd["kind"], "CustomResourceDefinition");
        assert_eq!(crd["metadata"]["name"], "multicasskops.db.orange.com");
        assert_eq!(crd["spec"]["group"], "db.orange.com");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        let description = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"];
        assert!(
            description
                .as_str()
                .unwrap()
                .contains("one site after another"),
            "{description}"
        );
        assert_eq!(crd["spec"]["names"]["kind"], "MultiCasskop");
        let versions = crd["spec"]["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1);
        let v2 = &versions[0];
        assert_eq!(v2["name"], "v2");
        assert_eq!(v2["served"], true);
        assert_eq!(v2["storage"], true);
        assert!(
            v2["subresources"]["status"].is_object(),
            "{}",
            v2["subresources"]
        );
        let columns: Vec<(&str, &str)> = v2["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["jsonPath"].as_str().unwrap()))
            .collect();
        assert_eq!(
            columns,
            [
                ("Phase", ".status.phase"),
                ("Site", ".status.currentSite"),
                ("Ready", ".status.readySites"),
                ("Age", ".metadata.creationTimestamp"),
            ]
        );
    }

    #[test]
    fn crd_keeps_base_and_override_free_form() {
        let crd = crd();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let spec = &schema["properties"]["spec"]["properties"];
        assert_eq!(spec["base"]["type"], "object");
        assert_eq!(spec["base"]["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(spec["override"]["type"], "object");
        let each = &spec["override"]["additionalProperties"];
        assert_eq!(each["type"], "object");
        assert_eq!(each["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(spec["deleteCassandraCluster"]["type"], "boolean");
        assert_eq!(spec["siteOrder"]["type"], "array");
        let status = &schema["properties"]["status"]["properties"];
        for field in [
            "phase",
            "currentSite",
            "readySites",
            "observedGeneration",
            "sites",
            "conditions",
        ] {
            assert!(
                status[field].is_object(),
                "status.{field} missing from the schema"
            );
        }
    }

    #[test]
    fn crd_documents_auto_seed_list_paused_and_site_seed_lists() {
        let crd = crd();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let spec = &schema["properties"]["spec"]["properties"];
        for (field, words) in [
            ("autoSeedList", "external-dns.alpha.kubernetes.io/hostname"),
            ("paused", "resumes where it stopped"),
        ] {
            assert_eq!(spec[field]["type"], "boolean", "spec.{field}");
            let text = spec[field]["description"].as_str().unwrap_or_default();
            assert!(text.contains(words), "spec.{field}: {text}");
        }
        let site = &schema["properties"]["status"]["properties"]["sites"]["items"]["properties"];
        assert_eq!(site["seedList"]["type"], "array");
        assert_eq!(site["seedList"]["items"]["type"], "string");
    }

    #[test]
    fn multi_casskop_manifest_deserializes() {
        // Multi-CassKop's sample shape: no siteOrder, no status.
        let m: MultiCasskop = serde_json::from_value(serde_json::json!({
            "apiVersion": "db.orange.com/v2",
            "kind": "MultiCasskop",
            "metadata": {"name": "multi-casskop-demo"},
            "spec": {
                "deleteCassandraCluster": true,
                "base": {
                    "apiVersion": "db.orange.com/v2",
                    "kind": "CassandraCluster",
                    "metadata": {"name": "cassandra-demo", "namespace": "cassandra-demo"},
                    "spec": {"nodesPerRacks": 1},
                },
                "override": {
                    "k8s-cluster1": {"spec": {"topology": {"dc": [{"name": "dc1"}]}}},
                    "k8s-cluster2": {"spec": {"topology": {"dc": [{"name": "dc2"}]}}},
                },
            },
        }))
        .unwrap();
        assert_eq!(m.spec.delete_cassandra_cluster, Some(true));
        assert_eq!(m.spec.override_.len(), 2);
        assert_eq!(m.spec.site_order, None);
    }
}
