//! Fields a site's API server did not keep: what we sent against what it stored. A site's
//! CassandraCluster CRD prunes fields it does not declare (a typo in an override, a field newer
//! than that site's CassKop); such a field never shows up in the live object, so comparing
//! desired with live must leave it out, or the controller would apply again forever. Pure.

use serde_json::Value;

/// One step of a field path: an object member or a list index.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A member name printed after a dot (`spec.nodesPerRacks`); anything else is printed in
/// brackets (`spec.service.annotations[external-dns.alpha.kubernetes.io/hostname]`), as
/// kube-apiserver prints map keys in field paths.
fn plain_key(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if plain_key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => {
                out.push('[');
                out.push_str(k);
                out.push(']');
            }
            Step::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Parse a path printed by [`render`] (or by kube-apiserver, which uses the same form). `None`
/// when it is not one.
fn parse(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            let text = &inner[..end];
            steps.push(match text.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::Key(text.to_string()),
            });
            rest = &inner[end + 1..];
        } else {
            let rest_key = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_key.find(['.', '[']).unwrap_or(rest_key.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(rest_key[..end].to_string()));
            rest = &rest_key[end..];
        }
    }
    (!steps.is_empty()).then_some(steps)
}

/// The fields of `sent` that `stored` does not hold, as field paths
/// (`spec.topology.dc[0].nodesPerRack`), looking under `spec` and `status` only (metadata is
/// the API server's: it adds to it, and never drops labels or annotations). Nulls we sent mean
/// "unset" and never count. Fields the server added (defaults) never count either: only what
/// we sent is looked for. A list whose length changed is reported as a whole.
pub fn dropped_fields(sent: &Value, stored: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for top in ["spec", "status"] {
        if let Some(s) = sent.get(top) {
            let mut path = vec![Step::Key(top.to_string())];
            walk(s, stored.get(top), &mut path, &mut out);
        }
    }
    out
}

fn walk(sent: &Value, stored: Option<&Value>, path: &mut Vec<Step>, out: &mut Vec<String>) {
    if sent.is_null() {
        return;
    }
    let Some(stored) = stored.filter(|v| !v.is_null()) else {
        out.push(render(path));
        return;
    };
    match (sent, stored) {
        (Value::Object(s), Value::Object(t)) => {
            for (k, v) in s {
                path.push(Step::Key(k.clone()));
                walk(v, t.get(k), path, out);
                path.pop();
            }
        }
        (Value::Array(s), Value::Array(t)) if s.len() == t.len() => {
            for (i, (v, w)) in s.iter().zip(t).enumerate() {
                path.push(Step::Index(i));
                walk(v, Some(w), path, out);
                path.pop();
            }
        }
        (Value::Array(_) | Value::Object(_), _) => out.push(render(path)),
        // Scalars: a value the server changed is not a dropped field (a webhook's business,
        // and drift detection still sees it).
        _ => {}
    }
}

/// `value` without the fields at `paths` (paths from [`dropped_fields`]); a path that does not
/// lead anywhere in `value` is ignored. List entries are removed only when the path names one
/// (the list keeps its other entries in place).
pub fn without_fields(value: &Value, paths: &[String]) -> Value {
    let mut out = value.clone();
    for path in paths {
        if let Some(steps) = parse(path) {
            remove(&mut out, &steps);
        }
    }
    out
}

fn remove(value: &mut Value, steps: &[Step]) {
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut at = value;
    for step in parents {
        let next = match (step, at) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k),
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return,
        }
    }
    match (last, at) {
        (Step::Key(k), Value::Object(m)) => {
            m.remove(k);
        }
        (Step::Index(i), Value::Array(a)) if *i < a.len() => {
            // Null, not removal: the indices of the entries after it must stay as they were.
            a[*i] = Value::Null;
        }
        _ => {}
    }
}

/// True when `value` holds something (not null) at `path`.
fn holds(value: &Value, path: &str) -> bool {
    let Some(steps) = parse(path) else {
        return false;
    };
    let mut at = value;
    for step in &steps {
        let next = match (step, at) {
            (Step::Key(k), Value::Object(m)) => m.get(k),
            (Step::Index(i), Value::Array(a)) => a.get(*i),
            _ => None,
        };
        match next {
            Some(v) if !v.is_null() => at = v,
            _ => return false,
        }
    }
    true
}

/// The MultiCasskop field that set the CassandraCluster field at `path` for `site`: its
/// override when that holds the path, else `base` (the merge takes the override first).
/// `None` when neither holds it as such (a list merged from both, say).
pub fn where_set(
    path: &str,
    base: &Value,
    override_: Option<&Value>,
    site: &str,
) -> Option<String> {
    if override_.is_some_and(|o| holds(o, path)) {
        return Some(format!("spec.override.{site}.{path}"));
    }
    holds(base, path).then(|| format!("spec.base.{path}"))
}

/// What the user is told about fields `site` did not store in CassandraCluster `cluster`
/// (`namespace/name`): each path with the MultiCasskop field that set it, and why it happens.
pub fn dropped_note(
    site: &str,
    cluster: &str,
    dropped: &[String],
    base: &Value,
    override_: Option<&Value>,
) -> String {
    let fields: Vec<String> = dropped
        .iter()
        .map(|p| match where_set(p, base, override_, site) {
            Some(from) => format!("{p} (set by {from})"),
            None => p.clone(),
        })
        .collect();
    format!(
        "{site}'s CassandraCluster CRD dropped {} from CassandraCluster {cluster}: that site's CRD \
         does not declare them (a typo, or a field newer than the CassKop installed there), so \
         they are not compared again until the MultiCasskop changes",
        fields.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pruned_member_inside_a_list_entry_is_named_with_its_index() {
        let sent = json!({"spec": {"topology": {"dc": [
            {"name": "dc1", "nodesPerRack": 2, "rack": [{"name": "r1"}]}
        ]}}});
        let stored = json!({"spec": {"topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "r1"}]}
        ]}}});
        assert_eq!(
            dropped_fields(&sent, &stored),
            vec!["spec.topology.dc[0].nodesPerRack"]
        );
    }

    #[test]
    fn defaults_added_by_the_server_and_nulls_we_sent_never_count() {
        let sent = json!({"spec": {"nodesPerRacks": 1, "imagePullPolicy": null}});
        let stored = json!({"spec": {"nodesPerRacks": 1, "runAsUser": 999, "fsGroup": 1}});
        assert!(dropped_fields(&sent, &stored).is_empty());
    }

    #[test]
    fn metadata_is_not_compared_and_status_is() {
        let sent = json!({
            "metadata": {"annotations": {"a": "b"}},
            "status": {"seedlist": ["s1"], "typo": 1}
        });
        let stored = json!({"metadata": {}, "status": {"seedlist": ["s1"]}});
        assert_eq!(dropped_fields(&sent, &stored), vec!["status.typo"]);
    }

    #[test]
    fn a_whole_pruned_object_is_named_once_and_odd_keys_go_in_brackets() {
        let sent = json!({"spec": {
            "newThing": {"a": 1, "b": {"c": 2}},
            "service": {"annotations": {"external-dns.alpha.kubernetes.io/hostname": "x."}}
        }});
        let stored = json!({"spec": {"service": {"annotations": {}}}});
        assert_eq!(
            dropped_fields(&sent, &stored),
            vec![
                "spec.newThing",
                "spec.service.annotations[external-dns.alpha.kubernetes.io/hostname]"
            ]
        );
    }

    #[test]
    fn where_set_names_the_override_first_then_base() {
        let base = json!({"spec": {"nodesPerRacks": 1, "topology": {"dc": [{"name": "dc1"}]}}});
        let over = json!({"spec": {"topology": {"dc": [{"name": "dc1", "nodesPerRack": 2}]}}});
        assert_eq!(
            where_set(
                "spec.topology.dc[0].nodesPerRack",
                &base,
                Some(&over),
                "k8s-cluster2"
            )
            .as_deref(),
            Some("spec.override.k8s-cluster2.spec.topology.dc[0].nodesPerRack")
        );
        assert_eq!(
            where_set("spec.nodesPerRacks", &base, Some(&over), "k8s-cluster2").as_deref(),
            Some("spec.base.spec.nodesPerRacks")
        );
        assert_eq!(where_set("spec.other", &base, None, "s"), None);
    }

    #[test]
    fn paths_round_trip_through_parse() {
        for p in [
            "spec.topology.dc[0].rack[12].name",
            "spec.service.annotations[external-dns.alpha.kubernetes.io/hostname]",
            "status.seedlist",
        ] {
            assert_eq!(render(&parse(p).unwrap()), p);
        }
        assert_eq!(parse(""), None);
        assert_eq!(parse("spec..x"), None);
        assert_eq!(parse("spec[0"), None);
    }

    #[test]
    fn without_fields_removes_what_was_dropped_and_nothing_else() {
        let desired = json!({"spec": {"nodesPerRacks": 1, "topology": {"dc": [
            {"name": "dc1", "nodesPerRack": 2}, {"name": "dc2"}
        ]}}});
        let cleaned = without_fields(
            &desired,
            &[
                "spec.topology.dc[0].nodesPerRack".to_string(),
                "spec.nowhere.at.all".to_string(),
                "spec.topology.dc[7].x".to_string(),
            ],
        );
        assert_eq!(
            cleaned,
            json!({"spec": {"nodesPerRacks": 1, "topology": {"dc": [
                {"name": "dc1"}, {"name": "dc2"}
            ]}}})
        );
    }

    #[test]
    fn what_was_dropped_no_longer_differs_once_left_out() {
        let sent = json!({"spec": {"a": 1, "topology": {"dc": [{"name": "dc1", "typo": 3}]}}});
        let stored =
            json!({"spec": {"a": 1, "runAsUser": 999, "topology": {"dc": [{"name": "dc1"}]}}});
        let dropped = dropped_fields(&sent, &stored);
        let cleaned = without_fields(&sent, &dropped);
        assert!(dropped_fields(&cleaned, &stored).is_empty());
        assert!(crate::merge::live_matches_desired(&cleaned, &stored));
        assert!(!crate::merge::live_matches_desired(&sent, &stored));
    }
}
