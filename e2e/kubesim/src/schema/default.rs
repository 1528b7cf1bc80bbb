//! Defaulting: fills schema defaults where a field is absent (or a non-nullable null), and drops non-nullable nulls without a default.
use serde_json::{Map, Value};

use super::structural::{Additional, Node};

/// Applies `s`'s defaults to `v` in place, as kube-apiserver does after pruning: a default is set
/// only where its parent object exists, then defaulted itself; returns whether anything changed.
pub fn apply(v: &mut Value, s: &Node) -> bool {
    match v {
        Value::Object(m) => apply_map(m, s),
        Value::Array(items) => match s.items.as_deref() {
            Some(is) => {
                let mut changed = false;
                for item in items {
                    changed |= apply(item, is);
                }
                changed
            }
            None => false,
        },
        _ => false,
    }
}

fn apply_map(m: &mut Map<String, Value>, s: &Node) -> bool {
    let mut changed = false;
    if s.has_defaults {
        for (k, p) in &s.properties {
            let Some(d) = &p.default else { continue };
            let missing = match m.get(k) {
                None => true,
                Some(Value::Null) => !p.nullable,
                Some(_) => false,
            };
            if missing {
                m.insert(k.clone(), d.clone());
                changed = true;
            }
        }
    }
    let before = m.len();
    m.retain(|k, v| {
        !(v.is_null()
            && s.properties
                .get(k)
                .is_some_and(|p| !p.nullable && p.default.is_none()))
    });
    changed |= m.len() != before;
    for (k, v) in m.iter_mut() {
        if !(v.is_object() || v.is_array()) {
            continue;
        }
        match (s.properties.get(k), &s.additional) {
            (Some(p), _) => changed |= apply(v, p),
            (None, Some(Additional::Schema(a))) => changed |= apply(v, a),
            _ => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::structural::parse;
    use serde_json::json;

    #[test]
    fn defaults_fill_items_and_existing_parents_only() {
        let mut errs = vec![];
        let s = parse(
            &json!({"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "serverType": {"type": "string", "default": "cassandra"},
                    "pod": {"type": "object", "properties": {"runAsUser": {"type": "integer", "default": 999}}},
                    "ports": {"type": "array", "items": {"type": "object", "properties": {
                        "protocol": {"type": "string", "default": "TCP"}, "port": {"type": "integer"}}}}}}}}),
            "",
            &mut errs,
        );
        assert!(errs.is_empty());
        let mut obj = json!({"spec": {"ports": [{"port": 1}, {"port": 2, "protocol": "UDP"}], "serverType": null}});
        assert!(apply(&mut obj, &s));
        assert_eq!(
            obj,
            json!({"spec": {"ports": [{"port": 1, "protocol": "TCP"}, {"port": 2, "protocol": "UDP"}],
                "serverType": "cassandra"}})
        );
        assert!(!apply(&mut obj, &s), "a second pass changes nothing");
    }

    #[test]
    fn non_nullable_nulls_without_default_are_dropped() {
        let mut errs = vec![];
        let s = parse(
            &json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string", "nullable": true}}}),
            "",
            &mut errs,
        );
        let mut obj = json!({"a": null, "b": null});
        apply(&mut obj, &s);
        assert_eq!(obj, json!({"b": null}));
    }
}
