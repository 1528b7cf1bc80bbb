//! What CassKop refuses in a spec change, in its own order of checks (non-allowed changes, topology changes, a DC scaled to 0), and what it does instead: put the old values back (`CorrectCRDConfig`) or delete a removed DC (`ActionDeleteDC`) — pure.
use serde_json::{Map, Value, json};

/// CassKop's verdict on a change of spec, before it looks for an action to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing refused: the change becomes an action.
    Accept,
    /// Refused: CassKop writes `spec` back (the old values of what it refuses) and reports
    /// `CorrectCRDConfig`.
    Refuse { spec: Value, reason: String },
    /// A DC already scaled to 0 is gone from the topology: its racks (`<dc>-<rack>` status keys)
    /// are deleted and CassKop reports `ActionDeleteDC`.
    DeleteDc { dc: String, racks: Vec<String> },
    /// A DC asks for 0 nodes: allowed only once no keyspace keeps replicas there, which CassKop
    /// asks a running node of the DC's first rack (refused with `spec.topology` put back if
    /// some keyspace still does, or if no node can answer).
    ScaleDcToZero { dc: String, rack: String },
}

fn dcs(spec: &Value) -> Vec<Value> {
    spec.pointer("/topology/dc")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn racks(dc: &Value) -> Vec<Value> {
    dc.get("rack")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn name(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

/// Nodes per rack of a DC: its own `nodesPerRacks`, else the spec's, else 1 (the default
/// CassKop writes into a new cluster's spec).
fn dc_nodes(spec: &Value, dc: &Value) -> i64 {
    int(dc.get("nodesPerRacks"))
        .or_else(|| int(spec.get("nodesPerRacks")))
        .unwrap_or(1)
}

/// A DC's effective value of `field` (its own, else the spec's).
fn dc_field<'a>(spec: &'a Value, dc: &'a Value, field: &str) -> Option<&'a Value> {
    dc.get(field)
        .filter(|v| v.as_str().is_none_or(|s| !s.is_empty()))
        .or_else(|| spec.get(field))
}

fn set(obj: &mut Value, key: &str, v: Option<&Value>) {
    if let Some(m) = obj.as_object_mut() {
        match v {
            Some(v) => {
                m.insert(key.to_owned(), v.clone());
            }
            None => {
                m.remove(key);
            }
        }
    }
}

/// CassKop's checks of a change from `old` to `new` spec; `status` is the live status.
pub fn check(old: &Value, new: &Value, status: &Value) -> Verdict {
    let mut spec = new.clone();
    let mut refused = vec![];
    // A global scale down to 0 is forbidden (an absent field is not a 0: kubesim's CassKop
    // never writes CassKop's defaults into the spec).
    if int(new.get("nodesPerRacks")) == Some(0) {
        set(&mut spec, "nodesPerRacks", old.get("nodesPerRacks"));
        refused.push("spec.nodesPerRacks=0".to_owned());
    }
    // Storage cannot change under a DC (its PVCs exist).
    let old_dcs = dcs(old);
    for (i, dc) in dcs(new).iter().enumerate() {
        let old_dc = old_dcs
            .iter()
            .find(|d| name(d) == name(dc))
            .cloned()
            .unwrap_or(Value::Null);
        for field in ["dataCapacity", "dataStorageClass"] {
            if dc_field(new, dc, field) != dc_field(old, &old_dc, field) {
                set(&mut spec, field, old.get(field));
                if let Some(d) = spec.pointer_mut(&format!("/topology/dc/{i}")) {
                    set(d, field, old_dc.get(field));
                }
                refused.push(format!(
                    "spec.{field} of DC {}",
                    name(dc).unwrap_or_default()
                ));
            }
        }
    }
    if !refused.is_empty() {
        return Verdict::Refuse {
            spec,
            reason: format!("changes refused: {}", refused.join(", ")),
        };
    }
    let restore_topology = |reason: String| {
        let mut spec = new.clone();
        set(&mut spec, "topology", old.get("topology"));
        Verdict::Refuse { spec, reason }
    };
    if let Some(reason) = topology_change_refused(old, new) {
        return restore_topology(reason);
    }
    let new_dcs = dcs(new);
    if new_dcs.len() + 1 < old_dcs.len() {
        return restore_topology("only one DC can be removed at a time".into());
    }
    let rack_count = |dcs: &[Value]| dcs.iter().map(|d| racks(d).len()).sum::<usize>();
    if rack_count(&new_dcs) < rack_count(&old_dcs) {
        let scaling_down = status.get("lastClusterAction").and_then(Value::as_str)
            == Some("ScaleDown")
            && status
                .get("lastClusterActionStatus")
                .and_then(Value::as_str)
                != Some("Done");
        if scaling_down {
            return restore_topology("the ScaleDown to 0 must end before the DC is deleted".into());
        }
        let removed = old_dcs
            .iter()
            .enumerate()
            .find(|(i, d)| new_dcs.get(*i).and_then(name) != name(d))
            .map(|(_, d)| d.clone());
        if let Some(dc) = &removed {
            let dc_name = name(dc).unwrap_or_default().to_owned();
            if dc_nodes(old, dc) > 0 {
                return restore_topology(format!(
                    "DC {dc_name} must be scaled down to 0 before it is deleted"
                ));
            }
            let kept: Vec<String> = new_dcs
                .iter()
                .flat_map(|d| {
                    let dn = name(d).unwrap_or_default().to_owned();
                    racks(d)
                        .iter()
                        .map(move |r| format!("{dn}-{}", name(r).unwrap_or_default()))
                        .collect::<Vec<_>>()
                })
                .collect();
            let racks: Vec<String> = status
                .get("cassandraRackStatus")
                .and_then(Value::as_object)
                .map(|m| m.keys().filter(|k| !kept.contains(k)).cloned().collect())
                .unwrap_or_default();
            if !racks.is_empty() {
                return Verdict::DeleteDc { dc: dc_name, racks };
            }
        }
    }
    // As CassKop's `FindDCWithNodesTo0`: only the first DC at 0 in the topology is asked
    // about, even when it went to 0 earlier and another DC is the one going now (whose
    // keyspaces are then never asked about once the first has no pod left).
    if let Some(dc) = new_dcs.iter().find(|d| dc_nodes(new, d) == 0) {
        let rack = racks(dc)
            .first()
            .and_then(name)
            .unwrap_or("rack1")
            .to_owned();
        return Verdict::ScaleDcToZero {
            dc: name(dc).unwrap_or_default().to_owned(),
            rack,
        };
    }
    Verdict::Accept
}

/// CassKop compares the old and new topology position by position and accepts no change but a
/// DC added or removed: a DC or rack renamed, or a rack added to or removed from a DC that
/// stays, is refused.
fn topology_change_refused(old: &Value, new: &Value) -> Option<String> {
    let (old_dcs, new_dcs) = (dcs(old), dcs(new));
    for (o, n) in old_dcs.iter().zip(new_dcs.iter()) {
        let (on, nn) = (name(o).unwrap_or_default(), name(n).unwrap_or_default());
        if on != nn {
            return Some(format!("DC {on} cannot become {nn}"));
        }
        let (or, nr) = (racks(o), racks(n));
        for (a, b) in or.iter().zip(nr.iter()) {
            if name(a) != name(b) {
                return Some(format!(
                    "rack {}/{} cannot become {}",
                    on,
                    name(a).unwrap_or_default(),
                    name(b).unwrap_or_default()
                ));
            }
        }
        if or.len() != nr.len() {
            return Some(format!(
                "racks of DC {on} cannot be added or removed (only a whole DC can)"
            ));
        }
    }
    None
}

/// The merge patch that turns `from` into `to` (objects compared key by key, anything else
/// replaced; keys gone become null).
pub fn merge_diff(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(f), Value::Object(t)) => {
            let mut out = Map::new();
            for (k, fv) in f {
                match t.get(k) {
                    None => {
                        out.insert(k.clone(), Value::Null);
                    }
                    Some(tv) => {
                        if let Some(d) = merge_diff(fv, tv) {
                            out.insert(k.clone(), d);
                        }
                    }
                }
            }
            for (k, tv) in t {
                if !f.contains_key(k) {
                    out.insert(k.clone(), tv.clone());
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ if from == to => None,
        _ => Some(to.clone()),
    }
}

/// CassKop's seed list for a spec: up to 3 seeds per DC, the first nodes of its racks,
/// `<cluster>-<dc>-<rack>-<i>.<cluster>.<namespace>`.
pub fn seed_list(cluster: &str, namespace: &str, spec: &Value) -> Vec<String> {
    let mut seeds = vec![];
    let seed =
        |dc: &str, rack: &str, i: i64| format!("{cluster}-{dc}-{rack}-{i}.{cluster}.{namespace}");
    let global = int(spec.get("nodesPerRacks")).unwrap_or(1);
    let all = dcs(spec);
    if all.is_empty() {
        return (0..global.min(3))
            .map(|i| seed("dc1", "rack1", i))
            .collect();
    }
    for dc in &all {
        let dn = name(dc).unwrap_or_default();
        let rs = racks(dc);
        let nodes = int(dc.get("nodesPerRacks")).unwrap_or(global);
        if rs.is_empty() {
            seeds.extend((0..nodes.min(3)).map(|i| seed(dn, "rack1", i)));
            continue;
        }
        let mut in_dc = 0;
        for r in &rs {
            let rn = name(r).unwrap_or_default();
            let per_rack = if rs.len() <= 2 {
                4 - rs.len() as i64
            } else {
                1
            };
            for i in 0..nodes.min(per_rack) {
                if in_dc < 3 {
                    seeds.push(seed(dn, rn, i));
                    in_dc += 1;
                }
            }
        }
    }
    seeds
}

/// CassKop keeps the seeds it had that are still wanted, in their order, then adds new ones.
pub fn merge_seeds(old: &[String], new: &[String]) -> Vec<String> {
    let mut out: Vec<String> = old.iter().filter(|s| new.contains(s)).cloned().collect();
    out.extend(new.iter().filter(|s| !old.contains(s)).cloned());
    out
}

/// A status patch value removing rack entries.
pub fn removed_racks(racks: &[String]) -> Value {
    let m: Map<String, Value> = racks.iter().map(|r| (r.clone(), Value::Null)).collect();
    json!(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_dcs() -> Value {
        json!({"nodesPerRacks": 1, "dataCapacity": "256Mi", "topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "rack1"}]},
            {"name": "dc2", "rack": [{"name": "rack1"}]},
        ]}})
    }

    fn running() -> Value {
        json!({"lastClusterAction": "Initializing", "lastClusterActionStatus": "Done",
               "cassandraRackStatus": {"dc1-rack1": {}, "dc2-rack1": {}}})
    }

    #[test]
    fn a_dc_losing_its_racks_is_refused_and_the_topology_put_back() {
        let old = two_dcs();
        let mut new = old.clone();
        new["topology"]["dc"] = json!([{"name": "dc1", "nodesPerRacks": 0}]);
        match check(&old, &new, &running()) {
            Verdict::Refuse { spec, .. } => assert_eq!(spec["topology"], old["topology"]),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn adding_a_dc_is_accepted_but_not_a_rack() {
        let old = json!({"nodesPerRacks": 1, "dataCapacity": "256Mi",
                         "topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}]}});
        assert_eq!(check(&old, &two_dcs(), &running()), Verdict::Accept);
        let mut new = old.clone();
        new["topology"]["dc"][0]["rack"] = json!([{"name": "rack1"}, {"name": "rack2"}]);
        assert!(matches!(
            check(&old, &new, &running()),
            Verdict::Refuse { .. }
        ));
    }

    #[test]
    fn removing_a_dc_needs_it_at_zero_first() {
        let old = two_dcs();
        let new = json!({"nodesPerRacks": 1, "dataCapacity": "256Mi", "topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "rack1"}]}]}});
        match check(&old, &new, &running()) {
            Verdict::Refuse { reason, .. } => assert!(reason.contains("dc2"), "{reason}"),
            v => panic!("{v:?}"),
        }
        let mut at_zero = old.clone();
        at_zero["topology"]["dc"][1]["nodesPerRacks"] = json!(0);
        assert_eq!(
            check(&at_zero, &new, &running()),
            Verdict::DeleteDc {
                dc: "dc2".into(),
                racks: vec!["dc2-rack1".into()]
            }
        );
        assert_eq!(
            check(&old, &at_zero, &running()),
            Verdict::ScaleDcToZero {
                dc: "dc2".into(),
                rack: "rack1".into()
            }
        );
    }

    #[test]
    fn only_the_first_dc_at_zero_is_asked_about_as_casskop_does() {
        let mut first_at_zero = two_dcs();
        first_at_zero["topology"]["dc"][0]["nodesPerRacks"] = json!(0);
        let mut both = first_at_zero.clone();
        both["topology"]["dc"][1]["nodesPerRacks"] = json!(0);
        assert_eq!(
            check(&first_at_zero, &both, &running()),
            Verdict::ScaleDcToZero {
                dc: "dc1".into(),
                rack: "rack1".into()
            },
            "dc2 going to 0 after dc1 is not what CassKop asks about"
        );
        let mut last_at_zero = two_dcs();
        last_at_zero["topology"]["dc"][1]["nodesPerRacks"] = json!(0);
        assert_eq!(
            check(&last_at_zero, &both, &running()),
            Verdict::ScaleDcToZero {
                dc: "dc1".into(),
                rack: "rack1".into()
            },
            "dc1 going to 0 after dc2 is"
        );
    }

    #[test]
    fn global_zero_and_storage_changes_are_put_back() {
        let old = two_dcs();
        let mut new = old.clone();
        new["nodesPerRacks"] = json!(0);
        new["dataCapacity"] = json!("1Gi");
        match check(&old, &new, &running()) {
            Verdict::Refuse { spec, .. } => {
                assert_eq!(spec["nodesPerRacks"], 1);
                assert_eq!(spec["dataCapacity"], "256Mi");
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn seeds_follow_casskop() {
        let s = seed_list("c", "ns", &two_dcs());
        assert_eq!(s, vec!["c-dc1-rack1-0.c.ns", "c-dc2-rack1-0.c.ns"]);
        let mut z = two_dcs();
        z["topology"]["dc"][1]["nodesPerRacks"] = json!(0);
        assert_eq!(seed_list("c", "ns", &z), vec!["c-dc1-rack1-0.c.ns"]);
        assert_eq!(
            merge_seeds(&["b".into(), "a".into()], &["a".into(), "c".into()]),
            vec!["a", "c"]
        );
    }

    #[test]
    fn merge_diff_nulls_what_went() {
        let d = merge_diff(
            &json!({"a": 1, "b": {"c": 2, "d": 3}}),
            &json!({"b": {"c": 2, "d": 4}, "e": 5}),
        );
        assert_eq!(d, Some(json!({"a": null, "b": {"d": 4}, "e": 5})));
    }
}
