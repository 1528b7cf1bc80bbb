//! Pruning: drops the fields a structural schema does not declare, except under `x-kubernetes-preserve-unknown-fields`.
use serde_json::{Map, Value};

use super::structural::{Additional, Node};

/// Embedded resources keep their type and these metadata fields (kube coerces the rest away).
const EMBEDDED_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
];

/// Prunes a whole custom resource against its version's schema and returns the dropped paths
/// (`spec.topology.dc[0].nodesPerRack`), which `fieldValidation` reports. The object's own
/// `apiVersion`, `kind` and `metadata` are never pruned by the schema.
pub fn prune_object(obj: &mut Value, root: &Node) -> Vec<String> {
    let mut out = Vec::new();
    let Some(m) = obj.as_object_mut() else {
        return out;
    };
    let mut path = String::new();
    prune_map(m, root, true, &mut path, &mut out);
    out
}

fn push_key(path: &mut String, k: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(k);
    len
}

fn record(path: &str, k: &str, out: &mut Vec<String>) {
    if path.is_empty() {
        out.push(k.to_string());
    } else {
        out.push(format!("{path}.{k}"));
    }
}

fn prune_map(
    m: &mut Map<String, Value>,
    s: &Node,
    root: bool,
    path: &mut String,
    out: &mut Vec<String>,
) {
    let keep_type_meta = root || s.embedded;
    m.retain(|k, v| {
        if keep_type_meta && (k == "apiVersion" || k == "kind") {
            return true;
        }
        if k == "metadata" && root {
            return true;
        }
        if k == "metadata" && s.embedded {
            if let Some(md) = v.as_object_mut() {
                let len = push_key(path, k);
                md.retain(|mk, _| {
                    let keep = EMBEDDED_META.contains(&mk.as_str());
                    if !keep {
                        record(path, mk, out);
                    }
                    keep
                });
                path.truncate(len);
            }
            return true;
        }
        let len = push_key(path, k);
        let keep = match (s.properties.get(k), &s.additional) {
            (Some(p), _) => {
                prune_value(v, Some(p), path, out);
                true
            }
            (None, Some(Additional::Schema(a))) => {
                prune_value(v, Some(a), path, out);
                true
            }
            (None, Some(Additional::Allows(true))) => true,
            _ if s.preserve => true,
            _ => {
                out.push(path.clone());
                false
            }
        };
        path.truncate(len);
        keep
    });
}

fn prune_value(v: &mut Value, s: Option<&Node>, path: &mut String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => match s {
            Some(s) => prune_map(m, s, false, path, out),
            None => {
                for k in m.keys() {
                    record(path, k, out);
                }
                m.clear();
            }
        },
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            if s.is_some_and(|s| s.preserve) && item_schema.is_none() {
                return;
            }
            let len = path.len();
            for (i, item) in items.iter_mut().enumerate() {
                path.push_str(&format!("[{i}]"));
                prune_value(item, item_schema, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::structural::parse;
    use serde_json::json;

    fn node(v: Value) -> Node {
        let mut errs = vec![];
        let n = parse(&v, "", &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        n
    }

    #[test]
    fn preserve_keeps_unknown_fields_but_declared_children_are_still_pruned() {
        let s = node(json!({"type": "object", "properties": {"spec": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"topology": {"type": "object", "properties": {"dc": {"type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}}}}));
        let mut obj = json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x", "odd": 1},
            "spec": {"free": {"a": 1}, "topology": {"dc": [{"name": "dc1", "nodesPerRack": 2}], "typo": 1}},
            "status": {"x": 1}});
        let pruned = prune_object(&mut obj, &s);
        assert_eq!(
            pruned,
            vec![
                "spec.topology.dc[0].nodesPerRack",
                "spec.topology.typo",
                "status"
            ]
        );
        assert_eq!(
            obj,
            json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x", "odd": 1},
                "spec": {"free": {"a": 1}, "topology": {"dc": [{"name": "dc1"}]}}})
        );
    }

    #[test]
    fn additional_properties_schema_prunes_inside_each_value() {
        let s = node(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}}}}}),
        );
        let mut obj = json!({"spec": {"k1": {"a": "x", "b": 1}}});
        assert_eq!(prune_object(&mut obj, &s), vec!["spec.k1.b"]);
        assert_eq!(obj, json!({"spec": {"k1": {"a": "x"}}}));
    }

    #[test]
    fn embedded_resources_keep_type_meta_and_known_metadata() {
        let s = node(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true}}}}}),
        );
        let mut obj = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "uid": "u"}, "spec": {"x": 1}}}});
        assert_eq!(
            prune_object(&mut obj, &s),
            vec!["spec.template.metadata.uid"]
        );
        assert_eq!(obj["spec"]["template"]["spec"], json!({"x": 1}));
    }
}
