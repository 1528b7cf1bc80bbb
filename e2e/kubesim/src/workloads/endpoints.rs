//! The endpoints and endpointslice controllers: each Service with a selector gets an Endpoints object of the same name listing its pods' IPs (ready ones as addresses, the others as notReadyAddresses) and target ports, and one EndpointSlice (owned by the Service) with the same endpoints.
use serde_json::{Value, json};

use crate::resources::ResKey;
use crate::store::State;

use super::util::{self, pod_ready, selector_matches};
use super::writes;

fn core(plural: &str) -> ResKey {
    ResKey {
        group: String::new(),
        plural: plural.into(),
    }
}

/// Marks the Endpoints this controller made (kube sets it on every change it writes).
const TRIGGER_TIME_ANN: &str = "endpoints.kubernetes.io/last-change-trigger-time";

pub fn sync_all(st: &mut State) {
    for svc in st.range(&core("services"), None, None) {
        if svc["spec"]["selector"]
            .as_object()
            .is_some_and(|s| !s.is_empty())
        {
            sync(st, &svc);
        }
    }
    for ep in st.range(&core("endpoints"), None, None) {
        let ns = util::str_of(&ep, "/metadata/namespace").to_string();
        let name = util::name(&ep).to_string();
        let ours = ep["metadata"]["annotations"][TRIGGER_TIME_ANN].is_string();
        if ours && st.get(&core("services"), &ns, &name).is_none() {
            writes::delete(st, "", "endpoints", &ns, &name, false);
        }
    }
}

/// A Service port's target on one pod: a number, or the pod's container port of that name.
fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match &port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod["spec"]["containers"]
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == name.as_str())
            .and_then(|p| p["containerPort"].as_i64()),
        _ => port["port"].as_i64(),
    }
}

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const SLICE_MANAGER: &str = "endpointslice-controller.k8s.io";

/// The Service's EndpointSlice: `discovery.k8s.io/v1`, one endpoint per pod with its
/// ready/serving/terminating conditions, owned by the Service.
fn sync_slice(st: &mut State, svc: &Value, pods: &[std::sync::Arc<Value>], ports: &[Value]) {
    let ns = util::str_of(svc, "/metadata/namespace").to_string();
    let name = util::name(svc).to_string();
    let endpoints: Vec<Value> = pods
        .iter()
        .map(|p| {
            let mut e = json!({"addresses": [p["status"]["podIP"]],
                "conditions": {"ready": pod_ready(p), "serving": pod_ready(p), "terminating": false},
                "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}});
            if let Some(n) = p["spec"]["nodeName"].as_str() {
                e["nodeName"] = json!(n);
            }
            e
        })
        .collect();
    // The controller always names a slice's ports ("" when unnamed): clients dereference it.
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if p["name"].is_null() {
                p["name"] = json!("");
            }
            p
        })
        .collect();
    let key = ResKey {
        group: "discovery.k8s.io".into(),
        plural: "endpointslices".into(),
    };
    let current = st.range(&key, Some(&ns), None).into_iter().find(|s| {
        s["metadata"]["labels"][SERVICE_NAME_LABEL] == name.as_str()
            && s["metadata"]["labels"][MANAGED_BY_LABEL] == SLICE_MANAGER
    });
    match current {
        None => {
            let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": format!("{name}-"), "namespace": ns,
                    "labels": {SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: SLICE_MANAGER},
                    "ownerReferences": [util::controller_ref(svc, "v1", "Service")]},
                "addressType": "IPv4", "endpoints": endpoints, "ports": ports});
            writes::create(st, "discovery.k8s.io", "endpointslices", slice);
        }
        Some(cur) if cur["endpoints"] != json!(endpoints) || cur["ports"] != json!(&ports) => {
            let mut up = (*cur).clone();
            up["endpoints"] = json!(endpoints);
            up["ports"] = json!(ports);
            writes::update(st, "discovery.k8s.io", "endpointslices", up, false);
        }
        Some(_) => {}
    }
}

fn sync(st: &mut State, svc: &Value) {
    let ns = util::str_of(svc, "/metadata/namespace").to_string();
    let selector = json!({"matchLabels": svc["spec"]["selector"]});
    let pods: Vec<_> = st
        .range(&core("pods"), Some(&ns), None)
        .into_iter()
        .filter(|p| {
            !util::deleting(p)
                && !util::str_of(p, "/status/podIP").is_empty()
                && selector_matches(&selector, &p["metadata"]["labels"])
        })
        .collect();
    let mut ready = vec![];
    let mut not_ready = vec![];
    let mut ports = vec![];
    for p in &pods {
        let addr = json!({"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"],
            "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}});
        if pod_ready(p) {
            ready.push(addr);
        } else {
            not_ready.push(addr);
        }
        for sp in svc["spec"]["ports"].as_array().into_iter().flatten() {
            let Some(port) = target_port(sp, p) else {
                continue;
            };
            let mut e = json!({"port": port, "protocol": sp["protocol"]});
            if let Some(n) = sp["name"].as_str() {
                e["name"] = json!(n);
            }
            if !ports.contains(&e) {
                ports.push(e);
            }
        }
    }
    let mut subset = json!({"ports": ports});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    sync_slice(st, svc, &pods, &ports);
    let subsets = if pods.is_empty() {
        json!([])
    } else {
        json!([subset])
    };
    let name = util::name(svc).to_string();
    match st.get(&core("endpoints"), &ns, &name) {
        None => {
            let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns,
                    "annotations": {TRIGGER_TIME_ANN: util::now()}}});
            if let Some(l) = svc["metadata"]["labels"].as_object() {
                ep["metadata"]["labels"] = json!(l);
            }
            if !pods.is_empty() {
                ep["subsets"] = subsets;
            }
            writes::create(st, "", "endpoints", ep);
        }
        Some(cur)
            if cur["subsets"] != subsets && !(pods.is_empty() && cur["subsets"].is_null()) =>
        {
            let mut up = (*cur).clone();
            up["subsets"] = subsets;
            up["metadata"]["annotations"][TRIGGER_TIME_ANN] = json!(util::now());
            writes::update(st, "", "endpoints", up, false);
        }
        Some(_) => {}
    }
}
