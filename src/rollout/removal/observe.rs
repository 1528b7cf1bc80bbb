//! Observe the sites that left `spec.override`: which they are (status entries `override` no
//! longer names), whether each can be reached, and our CassandraCluster there, found in the
//! site's cache by our owner labels for that site.

use std::sync::Arc;

use kube::api::DynamicObject;
use serde_json::Value;

use crate::api::{CassandraClusterView, SiteStatus};
use crate::rollout::context::{Context, Target};
use crate::rollout::observe::Observation;
use crate::rollout::plan::SiteAccess;
use crate::rollout::site_caches::WatchHealth;
use crate::sites::{Site, SiteState};

use super::names::state;
use super::plan::{LeavingCluster, LeavingInput, RemovalMark};

/// A leaving site as observed, with what acting on it needs.
pub struct Leaving {
    pub input: LeavingInput,
    /// The site's client, when reachable.
    pub site: Option<Arc<Site>>,
    /// Our CassandraCluster there, as the cache holds it.
    pub live: Option<DynamicObject>,
}

/// The sites that left `override`, in status order.
pub async fn observe(target: &Target<'_>, ctx: &Context, obs: &Observation) -> Vec<Leaving> {
    let spec = &target.mc.spec;
    let mut out = Vec::new();
    for entry in &obs.prev.sites {
        let leaving = !spec.override_.contains_key(&entry.name)
            && entry.state.as_deref() != Some(state::RELEASED)
            && obs.facts.iter().all(|f| f.name != entry.name);
        if leaving {
            out.push(observe_one(target, ctx, entry).await);
        }
    }
    out
}

async fn observe_one(target: &Target<'_>, ctx: &Context, entry: &SiteStatus) -> Leaving {
    let mark = entry
        .applied_hash
        .clone()
        .zip(entry.applied_generation)
        .map(|(hash, generation)| RemovalMark { hash, generation });
    let mut leaving = Leaving {
        input: LeavingInput {
            name: entry.name.clone(),
            access: SiteAccess::Ok,
            found: None,
            mark,
        },
        site: None,
        live: None,
    };
    let site = match ctx.registry.get(&entry.name) {
        None => {
            leaving.input.access = match ctx.registry.client_configs_unknown() {
                Some(reason) => SiteAccess::Unlisted { reason },
                None => SiteAccess::NotConfigured,
            };
            return leaving;
        }
        Some(SiteState::Unavailable { reason }) => {
            leaving.input.access = SiteAccess::Unavailable { reason };
            return leaving;
        }
        Some(SiteState::Ready(site)) => site,
    };
    let namespace = namespace_of(target, entry);
    let view = ctx.caches.view(&site, &namespace).await;
    if view.health != WatchHealth::Synced {
        leaving.input.access = SiteAccess::Unavailable {
            reason: format!(
                "site {}: CassandraCluster cache in namespace {namespace} not synced yet",
                entry.name
            ),
        };
        return leaving;
    }
    let (ns, name) = (target.ns.as_str(), target.name.as_str());
    let cached = view.store.state().into_iter().find(|o| {
        let l = o.owner_labels();
        l.name_owner(ns, name) && l.site == Some(entry.name.as_str())
    });
    let live = match cached.map(|o| o.object()).transpose() {
        Ok(live) => live,
        Err(e) => {
            let reason = format!("site {}: {e}", entry.name);
            leaving.input.access = SiteAccess::Unavailable { reason };
            return leaving;
        }
    };
    leaving.input.found = live.as_ref().map(leaving_cluster);
    leaving.live = live;
    leaving.site = Some(site);
    leaving
}

/// Where the site's CassandraCluster lives: as last recorded, else where `base` puts it.
fn namespace_of(target: &Target<'_>, entry: &SiteStatus) -> String {
    entry.namespace.clone().unwrap_or_else(|| {
        target
            .mc
            .spec
            .base
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(&target.ns)
            .to_string()
    })
}

/// What the removal planner needs of a live CassandraCluster.
pub fn leaving_cluster(o: &DynamicObject) -> LeavingCluster {
    let view = CassandraClusterView(o);
    let spec = o.data.get("spec").cloned().unwrap_or(Value::Null);
    LeavingCluster {
        namespace: o.metadata.namespace.clone().unwrap_or_default(),
        name: o.metadata.name.clone().unwrap_or_default(),
        generation: o.metadata.generation.unwrap_or(0),
        dcs: dc_nodes(&spec),
        phase: view.phase().map(str::to_string),
        last_cluster_action: view.last_cluster_action().map(str::to_string),
        last_cluster_action_status: view.last_cluster_action_status().map(str::to_string),
        deleting: o.metadata.deletion_timestamp.is_some(),
    }
}

/// Each DC of `spec.topology` with its nodes per rack, as CassKop counts them: the DC's own
/// `nodesPerRacks`, else the spec's, else 1. No topology: CassKop's one default DC `dc1`.
pub fn dc_nodes(spec: &Value) -> Vec<(String, i64)> {
    let global = spec
        .get("nodesPerRacks")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let dcs = spec
        .pointer("/topology/dc")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if dcs.is_empty() {
        return vec![("dc1".to_string(), global)];
    }
    dcs.iter()
        .map(|dc| {
            let name = dc.get("name").and_then(Value::as_str).unwrap_or("dc1");
            let nodes = dc
                .get("nodesPerRacks")
                .and_then(Value::as_i64)
                .unwrap_or(global);
            (name.to_string(), nodes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dc_nodes_count_as_casskop_does() {
        let spec = json!({"nodesPerRacks": 2, "topology": {"dc": [
            {"name": "dc1"}, {"name": "dc2", "nodesPerRacks": 0}
        ]}});
        assert_eq!(
            dc_nodes(&spec),
            vec![("dc1".to_string(), 2), ("dc2".to_string(), 0)]
        );
        assert_eq!(dc_nodes(&json!({})), vec![("dc1".to_string(), 1)]);
    }
}
