//! The replicaset controller: a ReplicaSet adopts the orphan pods its selector picks, creates or deletes pods from its template until `spec.replicas` of them are active, and reports replicas, fully labelled, ready and available pods.
use std::cmp::Reverse;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::ResKey;
use crate::store::State;

use super::util::{
    self, controller_ref, controller_uid, deleting, pod_active, pod_available, pod_ready,
    selector_matches,
};
use super::writes;

const COMPONENT: &str = "replicaset-controller";

pub fn key() -> ResKey {
    ResKey {
        group: "apps".into(),
        plural: "replicasets".into(),
    }
}

fn pods_key() -> ResKey {
    ResKey {
        group: String::new(),
        plural: "pods".into(),
    }
}

pub fn sync_all(st: &mut State) {
    for rs in st.range(&key(), None, None) {
        sync(st, &rs);
    }
}

/// The pods a ReplicaSet controls, adopting the orphans its selector picks (kube's
/// `PodControllerRefManager`); a ReplicaSet being deleted adopts nothing.
pub fn owned_pods(st: &mut State, rs: &Value) -> Vec<Arc<Value>> {
    let ns = util::str_of(rs, "/metadata/namespace").to_string();
    let uid = util::uid(rs).to_string();
    let selector = &rs["spec"]["selector"];
    let mut out = vec![];
    for pod in st.range(&pods_key(), Some(&ns), None) {
        match controller_uid(&pod) {
            Some(u) if u == uid => out.push(pod),
            None if !deleting(rs)
                && pod_active(&pod)
                && selector_matches(selector, &pod["metadata"]["labels"]) =>
            {
                let mut p = (*pod).clone();
                let mut refs = p["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                refs.push(controller_ref(rs, "apps/v1", "ReplicaSet"));
                p["metadata"]["ownerReferences"] = json!(refs);
                if let Some(adopted) = writes::update(st, "", "pods", p, false) {
                    out.push(adopted);
                }
            }
            _ => {}
        }
    }
    out
}

fn pod_from_template(rs: &Value) -> Value {
    let t = &rs["spec"]["template"];
    let mut meta = json!({
        "generateName": format!("{}-", util::name(rs)),
        "namespace": rs["metadata"]["namespace"],
        "ownerReferences": [controller_ref(rs, "apps/v1", "ReplicaSet")],
    });
    for k in ["labels", "annotations"] {
        if t["metadata"][k].is_object() {
            meta[k] = t["metadata"][k].clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t["spec"]})
}

/// kube's `ActivePods` order: the pods deleted first come first (unscheduled, pending, not
/// ready, then the youngest).
fn deletion_order(pods: &mut [Arc<Value>]) {
    pods.sort_by_key(|p| {
        let phase = match p["status"]["phase"].as_str() {
            Some("Pending") => 0,
            Some("Unknown") => 1,
            _ => 2,
        };
        (
            p["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty()),
            phase,
            pod_ready(p),
            Reverse(util::str_of(p, "/metadata/creationTimestamp").to_string()),
        )
    });
}

fn manage(st: &mut State, rs: &Value, active: &[Arc<Value>]) {
    let want = util::spec_replicas(rs);
    let have = active.len() as i64;
    if have < want {
        for _ in have..want {
            if let Some(p) = writes::create(st, "", "pods", pod_from_template(rs)) {
                let msg = format!("Created pod: {}", util::name(&p));
                writes::event(st, rs, COMPONENT, "Normal", "SuccessfulCreate", &msg);
            }
        }
    } else if have > want {
        let mut victims = active.to_vec();
        deletion_order(&mut victims);
        let ns = util::str_of(rs, "/metadata/namespace").to_string();
        for p in victims.iter().take((have - want) as usize) {
            let name = util::name(p).to_string();
            writes::delete(st, "", "pods", &ns, &name, false);
            let msg = format!("Deleted pod: {name}");
            writes::event(st, rs, COMPONENT, "Normal", "SuccessfulDelete", &msg);
        }
    }
}

/// `calculateStatus`: counts of the pods seen at the start of the sync (the pods it creates
/// are counted when their creation is observed, as with kube).
fn status_of(rs: &Value, active: &[Arc<Value>]) -> Value {
    let min_ready = util::int_of(rs, "/spec/minReadySeconds");
    let template_labels = &rs["spec"]["template"]["metadata"]["labels"];
    let fully = active
        .iter()
        .filter(|p| {
            template_labels.as_object().is_none_or(|l| {
                l.iter()
                    .all(|(k, v)| p["metadata"]["labels"].get(k) == Some(v))
            })
        })
        .count();
    let ready = active.iter().filter(|p| pod_ready(p)).count();
    let available = active
        .iter()
        .filter(|p| pod_available(p, min_ready))
        .count();
    let mut s = json!({"replicas": active.len()});
    for (k, n) in [
        ("fullyLabeledReplicas", fully),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        if n > 0 {
            s[k] = json!(n);
        }
    }
    if let Some(g) = rs["metadata"]["generation"].as_i64() {
        s["observedGeneration"] = json!(g);
    }
    if let Some(c) = rs["status"].get("conditions") {
        s["conditions"] = c.clone();
    }
    s
}

pub fn sync(st: &mut State, rs: &Value) {
    let pods = owned_pods(st, rs);
    let active: Vec<Arc<Value>> = pods.into_iter().filter(|p| pod_active(p)).collect();
    if !deleting(rs) {
        manage(st, rs, &active);
    }
    let status = status_of(rs, &active);
    if rs["status"] != status {
        let ns = util::str_of(rs, "/metadata/namespace");
        let Some(mut fresh) = st.get(&key(), ns, util::name(rs)).map(|r| (*r).clone()) else {
            return;
        };
        fresh["status"] = status;
        writes::update(st, "apps", "replicasets", fresh, true);
    }
}
