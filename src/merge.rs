//! Desired CassandraCluster per site: `base` merged with `override[site]` (RFC 7386), plus
//! Multi-CassKop's seed-list rules, our labels and the spec-hash annotation.
//! INTERFACE FROZEN BY THE LEAD (signatures below); implementation by the planner owner.

use serde_json::Value;

/// Why a MultiCasskop cannot be turned into desired CassandraClusters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSpec {
    #[error("{0}")]
    Message(String),
}

/// The desired CassandraCluster for one site, ready to server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredCluster {
    pub site: String,
    pub name: String,
    pub namespace: String,
    /// Full object (apiVersion, kind, metadata with labels + hash annotation, spec, status.seedlist).
    pub object: Value,
    /// Stable hash of `object` (before the hash annotation was added).
    pub hash: String,
}

/// Build the desired object for `site`. `owner_ns`/`owner_name`: the MultiCasskop.
pub fn desired_for_site(
    base: &Value,
    override_: Option<&Value>,
    site: &str,
    owner_ns: &str,
    owner_name: &str,
) -> Result<DesiredCluster, InvalidSpec> {
    let _ = (base, override_, site, owner_ns, owner_name);
    todo!()
}

/// True when `live` already holds every field of `desired` (lists compared element-wise).
pub fn live_matches_desired(desired: &Value, live: &Value) -> bool {
    let _ = (desired, live);
    todo!()
}
