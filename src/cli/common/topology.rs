//! A CassandraCluster's expected pods as CassKop names them, and when a pod counts as ready.

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

/// One DC-rack of a CassandraCluster topology (CassKop's defaults: `dc1`, `rack1`, 1 node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RackPlacement {
    pub dc: String,
    pub rack: String,
    pub nodes: u32,
}

fn nodes_value(v: Option<&Value>) -> Option<u32> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .map(|n| n.min(u64::from(u32::MAX)) as u32)
}

/// Expands `spec.topology` as CassKop does: a DC's `nodesPerRacks` overrides `spec.nodesPerRacks`
/// (default 1); a DC without racks has `rack1`; no topology means `dc1`/`rack1`.
pub fn expand_topology(spec: &Value) -> Vec<RackPlacement> {
    let default_nodes = nodes_value(spec.get("nodesPerRacks")).unwrap_or(1);
    let Some(dcs) = spec
        .pointer("/topology/dc")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
    else {
        return vec![RackPlacement {
            dc: "dc1".into(),
            rack: "rack1".into(),
            nodes: default_nodes,
        }];
    };
    let mut out = vec![];
    for (i, dc) in dcs.iter().enumerate() {
        let name = dc
            .get("name")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("dc{}", i + 1));
        let nodes = nodes_value(dc.get("nodesPerRacks")).unwrap_or(default_nodes);
        let mut racks: Vec<String> = dc
            .get("rack")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(j, r)| {
                        r.get("name")
                            .and_then(Value::as_str)
                            .map(String::from)
                            .unwrap_or_else(|| format!("rack{}", j + 1))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if racks.is_empty() {
            racks.push("rack1".into());
        }
        out.extend(racks.into_iter().map(|rack| RackPlacement {
            dc: name.clone(),
            rack,
            nodes,
        }));
    }
    out
}

/// Expected pods of a CassandraCluster named `cluster`: `<cluster>-<dc>-<rack>-<i>`, with their DC and rack.
pub fn expected_pods(cluster: &str, spec: &Value) -> Vec<(String, String, String)> {
    expand_topology(spec)
        .into_iter()
        .flat_map(|p| {
            (0..p.nodes).map(move |i| {
                (
                    format!("{cluster}-{}-{}-{i}", p.dc, p.rack),
                    p.dc.clone(),
                    p.rack.clone(),
                )
            })
        })
        .collect()
}

/// True when the pod is Running with its Ready condition True.
pub fn pod_ready(p: &Pod) -> bool {
    let Some(st) = &p.status else { return false };
    st.phase.as_deref() == Some("Running")
        && st
            .conditions
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topology_expansion_follows_casskop() {
        assert_eq!(
            expand_topology(&json!({})),
            vec![RackPlacement {
                dc: "dc1".into(),
                rack: "rack1".into(),
                nodes: 1
            }]
        );
        let spec = json!({"nodesPerRacks": 2, "topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "r1"}, {"name": "r2"}]},
            {"name": "dc2", "nodesPerRacks": "3"}]}});
        let t = expand_topology(&spec);
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[1].dc.as_str(), t[1].rack.as_str(), t[1].nodes),
            ("dc1", "r2", 2)
        );
        assert_eq!(
            (t[2].dc.as_str(), t[2].rack.as_str(), t[2].nodes),
            ("dc2", "rack1", 3)
        );
        let pods = expected_pods("c", &spec);
        assert_eq!(pods.len(), 7);
        assert_eq!(pods[0].0, "c-dc1-r1-0");
        assert_eq!(pods[6].0, "c-dc2-rack1-2");
    }
}
