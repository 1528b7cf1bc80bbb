//! Pure helpers the workload controllers share: label selectors, controller references, int-or-percent values, conditions, times and the pod-template hash.
use serde_json::{Map, Value, json};

/// The label a ReplicaSet and its pods carry so that the ReplicaSets of one Deployment never
/// select each other's pods.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
pub const REVISION_ANN: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY_ANN: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS_ANN: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANN: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations the deployment controller never copies from a Deployment to its ReplicaSets.
pub const NOT_COPIED_ANNS: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANN,
    REVISION_HISTORY_ANN,
    DESIRED_REPLICAS_ANN,
    MAX_REPLICAS_ANN,
    "deprecated.deployment.rollback.to",
];

pub fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub fn int_of(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

pub fn name(v: &Value) -> &str {
    str_of(v, "/metadata/name")
}

pub fn uid(v: &Value) -> &str {
    str_of(v, "/metadata/uid")
}

pub fn deleting(v: &Value) -> bool {
    !v["metadata"]["deletionTimestamp"].is_null()
}

/// `spec.replicas`, defaulting to 1 as the API does.
pub fn spec_replicas(v: &Value) -> i64 {
    v.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// The uid of the controller named in `ownerReferences` (the one with `controller: true`).
pub fn controller_uid(v: &Value) -> Option<&str> {
    v["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

/// The controller reference kube's controllers put on what they create or adopt.
pub fn controller_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name(owner), "uid": uid(owner),
        "controller": true, "blockOwnerDeletion": true})
}

/// Whether `labels` match a metav1.LabelSelector (matchLabels and matchExpressions). An empty
/// selector matches everything, as `metav1.LabelSelectorAsSelector` makes it.
pub fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let labels_ok = selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
    let exprs_ok = selector["matchExpressions"].as_array().is_none_or(|es| {
        es.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or("");
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str().unwrap_or("") {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

/// A selector with no requirement at all (refused for workloads: it would select every pod).
pub fn selector_is_empty(selector: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .is_none_or(Map::is_empty)
        && selector["matchExpressions"]
            .as_array()
            .is_none_or(Vec::is_empty)
}

/// `kubectl`'s text form of a selector (`app=x,tier in (a,b)`), as `metav1.FormatLabelSelector`.
pub fn format_selector(selector: &Value) -> String {
    let mut parts: Vec<String> = vec![];
    if let Some(m) = selector["matchLabels"].as_object() {
        let mut kv: Vec<(&String, &Value)> = m.iter().collect();
        kv.sort_by_key(|(k, _)| *k);
        parts.extend(
            kv.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op}"),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// An int-or-string of a rolling update resolved against `total` (kube's
/// `intstr.GetScaledValueFromIntOrPercent`): percentages round up or down as asked.
pub fn scaled(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let x = pct * total;
            if round_up { (x + 99) / 100 } else { x / 100 }
        }
        _ => 0,
    }
}

/// Current time as kube writes it in conditions and timestamps.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Seconds since an RFC 3339 timestamp (None when absent or unparsable).
pub fn seconds_since(t: &str) -> Option<i64> {
    let ts: jiff::Timestamp = t.parse().ok()?;
    Some((jiff::Timestamp::now().as_second() - ts.as_second()).max(0))
}

/// The condition of `type_` in `status.conditions`.
pub fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Whether a pod counts as ready: its Ready condition is True.
pub fn pod_ready(pod: &Value) -> bool {
    condition(&pod["status"], "Ready").is_some_and(|c| c["status"] == "True")
}

/// Whether a pod has been ready for `min_ready` seconds (kube's `IsPodAvailable`).
pub fn pod_available(pod: &Value, min_ready: i64) -> bool {
    let Some(c) = condition(&pod["status"], "Ready").filter(|c| c["status"] == "True") else {
        return false;
    };
    min_ready <= 0
        || c["lastTransitionTime"]
            .as_str()
            .and_then(seconds_since)
            .is_some_and(|s| s >= min_ready)
}

/// A pod that still counts: not being deleted, not Succeeded or Failed.
pub fn pod_active(pod: &Value) -> bool {
    !deleting(pod)
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        )
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for k in keys {
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for x in a {
                canonical(x, out);
                out.push(',');
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// kube's `controller.ComputeHash`: an FNV-32a hash of the pod template (and the collision
/// count when set), written with `rand.SafeEncodeString` (digits mapped to consonants and
/// digits that spell no word), e.g. `5d4f8c7b9`.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    if let Some(c) = collision_count {
        text.push_str(&c.to_string());
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// A pod template without its `pod-template-hash` label (kube's `EqualIgnoreHash`).
pub fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(POD_TEMPLATE_HASH);
        if l.is_empty() {
            t["metadata"]
                .as_object_mut()
                .expect("metadata")
                .remove("labels");
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel = json!({"matchLabels": {"app": "a"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]});
        assert!(selector_matches(&sel, &json!({"app": "a", "tier": "web"})));
        assert!(!selector_matches(&sel, &json!({"app": "a", "tier": "db"})));
        assert!(!selector_matches(
            &sel,
            &json!({"app": "a", "tier": "web", "canary": "1"})
        ));
        assert_eq!(
            format_selector(&sel),
            "app=a,tier in (web,api),!canary".to_string()
        );
    }

    #[test]
    fn percentages_round_up_for_surge_and_down_for_unavailable() {
        assert_eq!(scaled(&json!("25%"), 3, true), 1);
        assert_eq!(scaled(&json!("25%"), 3, false), 0);
        assert_eq!(scaled(&json!(2), 3, false), 2);
    }

    #[test]
    fn template_hash_is_stable_and_uses_the_safe_alphabet() {
        let t = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}});
        let reordered = json!({"spec": {"containers": []}, "metadata": {"labels": {"a": "b"}}});
        assert_eq!(template_hash(&t, None), template_hash(&reordered, None));
        assert_ne!(template_hash(&t, None), template_hash(&t, Some(1)));
        assert!(
            template_hash(&t, None)
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
        );
    }
}
