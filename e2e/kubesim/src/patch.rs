//! Patching as kube-apiserver does it: merge, JSON, strategic merge and server-side apply.
//!
//! Server-side apply and the other writes keep `metadata.managedFields` up to date.
//!
//! Field ownership is tracked at the granularity this simulator needs: objects recurse, lists are
//! atomic (a list is one field), `metadata.labels`/`annotations` keys are individual fields, and
//! the server-owned metadata (name, namespace, uid, resourceVersion, generation,
//! creationTimestamp, managedFields) plus `apiVersion`/`kind` are never owned.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value, json};

use crate::validation::go_quote;

/// Why a patch could not be applied; each maps to the HTTP status kube-apiserver answers.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchError {
    /// 400: the patch document itself is malformed.
    BadRequest(String),
    /// 422: the patch is well formed but cannot apply (JSON-patch test failed, path missing).
    Invalid(String),
    /// 409: server-side apply conflict, message shaped like kube-apiserver's.
    Conflict { message: String },
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchError::BadRequest(m) | PatchError::Invalid(m) => f.write_str(m),
            PatchError::Conflict { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for PatchError {}

/// The Status message kube-apiserver gives for a JSON patch that does not apply (it reports
/// the detail nowhere; `kubectl` prints "The request is invalid: " before it).
pub const JSON_PATCH_INVALID_MESSAGE: &str =
    "the server rejected our request due to an error in our request";

// ---------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7386)
// ---------------------------------------------------------------------------------------------

/// Applies an RFC 7386 JSON merge patch; the patch must be a JSON object.
pub fn merge_patch(live: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::BadRequest(format!(
            "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type_name(patch)
        )));
    }
    let mut out = live.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------------------------
// JSON patch (RFC 6902)
// ---------------------------------------------------------------------------------------------

/// Applies an RFC 6902 JSON patch. A malformed patch is `BadRequest`; an operation that does
/// not apply (failed `test`, missing path) is `Invalid` with kube-apiserver's message.
pub fn json_patch(live: &Value, patch: &Value) -> Result<Value, PatchError> {
    json_patch_detailed(live, patch).map_err(|e| match e {
        PatchError::Invalid(_) => PatchError::Invalid(JSON_PATCH_INVALID_MESSAGE.to_string()),
        other => other,
    })
}

/// Like [`json_patch`] but `Invalid` carries the detail, worded like the Go json-patch library
/// (v4) kube-apiserver uses, e.g. `testing value /spec/x failed: test failed`. Its leniencies are
/// kept: `replace` of a missing object key adds it, a missing `value` is null, `copy` from a
/// missing key copies null, negative array indices count from the end.
pub fn json_patch_detailed(live: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_type_name(patch)
        )));
    };
    let mut doc = live.clone();
    for op in ops {
        let Value::Object(op) = op else {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                json_type_name(op)
            )));
        };
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
        if !matches!(
            kind,
            "add" | "remove" | "replace" | "move" | "copy" | "test"
        ) {
            return Err(PatchError::Invalid(format!("Unexpected kind: {kind}")));
        }
        let path = op.get("path").and_then(Value::as_str).ok_or_else(|| {
            PatchError::Invalid(format!(
                "{kind} operation failed to decode path: missing value"
            ))
        })?;
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        let from = || {
            op.get("from").and_then(Value::as_str).ok_or_else(|| {
                PatchError::Invalid(format!(
                    "{kind} operation failed to decode from: missing value"
                ))
            })
        };
        match kind {
            "add" => op_add(&mut doc, path, value)?,
            "remove" => {
                op_remove(&mut doc, path).map_err(|e| wrap_error("remove", path, e))?;
            }
            "replace" => op_replace(&mut doc, path, value)?,
            "move" => {
                let f = from()?;
                let v = op_remove(&mut doc, f).map_err(|e| {
                    let key = f.rsplit('/').next().unwrap_or(f);
                    wrap_error("move", key, e)
                })?;
                op_add(&mut doc, path, v).map_err(|e| wrap_error("move", path, e))?;
            }
            "copy" => {
                let f = from()?;
                let v = pointer_get(&doc, f)
                    .map_err(|_| {
                        PatchError::Invalid(format!(
                            "copy operation does not apply: doc is missing from path: {f}: missing value"
                        ))
                    })?
                    .cloned()
                    .unwrap_or(Value::Null);
                op_add(&mut doc, path, v).map_err(|e| wrap_error("copy", path, e))?;
            }
            _ => {
                let found = pointer_get(&doc, path).map_err(|_| {
                    PatchError::Invalid(format!(
                        "test operation does not apply: is missing path: {path}: missing value"
                    ))
                })?;
                let ok = match found {
                    None => value.is_null(),
                    Some(v) => values_equal(v, &value),
                };
                if !ok {
                    return Err(PatchError::Invalid(format!(
                        "testing value {path} failed: test failed"
                    )));
                }
            }
        }
    }
    Ok(doc)
}

fn wrap_error(kind: &str, path: &str, e: PatchError) -> PatchError {
    match e {
        PatchError::Invalid(m) if !m.contains("does not apply") => {
            PatchError::Invalid(format!("error in {kind} for path: '{path}': {m}"))
        }
        other => other,
    }
}

/// Equality as Go's JSON decoding sees it: numbers compare by value (1 == 1.0).
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn parse_pointer(p: &str) -> Result<Vec<String>, PatchError> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(PatchError::Invalid(format!(
            "doc is missing path: \"{p}\": missing value"
        )));
    };
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// An array position from a pointer segment; negative counts from the end (for `add`, -1 is
/// the end itself, like `-`).
fn array_index(seg: &str, len: usize, for_add: bool) -> Option<usize> {
    if for_add && seg == "-" {
        return Some(len);
    }
    let i = seg.parse::<i64>().ok()?;
    let len = len as i64;
    let idx = match (i < 0, for_add) {
        (false, _) => i,
        (true, true) => i + len + 1,
        (true, false) => i + len,
    };
    let max = if for_add { len } else { len - 1 };
    (0..=max).contains(&idx).then_some(idx as usize)
}

/// The value at a pointer: `Ok(None)` when only the last segment is missing, `Err` when the
/// parent does not exist.
fn pointer_get<'a>(doc: &'a Value, p: &str) -> Result<Option<&'a Value>, PatchError> {
    let segs = parse_pointer(p)?;
    let Some((last, parents)) = segs.split_last() else {
        return Ok(Some(doc));
    };
    let parent = walk(doc, parents).ok_or_else(|| {
        PatchError::Invalid(format!("doc is missing path: \"{p}\": missing value"))
    })?;
    Ok(match parent {
        Value::Object(m) => m.get(last),
        Value::Array(a) => array_index(last, a.len(), false).and_then(|i| a.get(i)),
        _ => None,
    })
}

fn walk<'a>(doc: &'a Value, segs: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for s in segs {
        cur = match cur {
            Value::Object(m) => m.get(s)?,
            Value::Array(a) => a.get(array_index(s, a.len(), false)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn walk_mut<'a>(doc: &'a mut Value, segs: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for s in segs {
        cur = match cur {
            Value::Object(m) => m.get_mut(s)?,
            Value::Array(a) => {
                let i = array_index(s, a.len(), false)?;
                a.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn invalid_index(seg: &str) -> PatchError {
    PatchError::Invalid(format!(
        "Unable to access invalid index: {seg}: invalid index referenced"
    ))
}

fn op_add(doc: &mut Value, p: &str, v: Value) -> Result<(), PatchError> {
    let segs = parse_pointer(p)?;
    let Some((last, parents)) = segs.split_last() else {
        *doc = v;
        return Ok(());
    };
    let missing = || {
        PatchError::Invalid(format!(
            "add operation does not apply: doc is missing path: \"{p}\": missing value"
        ))
    };
    match walk_mut(doc, parents).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last.clone(), v);
            Ok(())
        }
        Value::Array(a) => {
            let idx = array_index(last, a.len(), true)
                .ok_or_else(|| wrap_error("add", p, invalid_index(last)))?;
            a.insert(idx, v);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn op_remove(doc: &mut Value, p: &str) -> Result<Value, PatchError> {
    let segs = parse_pointer(p)?;
    let Some((last, parents)) = segs.split_last() else {
        return Ok(std::mem::take(doc));
    };
    let missing = || {
        PatchError::Invalid(format!(
            "remove operation does not apply: doc is missing path: \"{p}\": missing value"
        ))
    };
    match walk_mut(doc, parents).ok_or_else(missing)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| {
            PatchError::Invalid(format!(
                "Unable to remove nonexistent key: {last}: missing value"
            ))
        }),
        Value::Array(a) => match array_index(last, a.len(), false) {
            Some(i) => Ok(a.remove(i)),
            None => Err(invalid_index(last)),
        },
        _ => Err(missing()),
    }
}

fn op_replace(doc: &mut Value, p: &str, v: Value) -> Result<(), PatchError> {
    let segs = parse_pointer(p)?;
    let Some((last, parents)) = segs.split_last() else {
        *doc = v;
        return Ok(());
    };
    let parent = walk_mut(doc, parents).ok_or_else(|| {
        PatchError::Invalid(format!(
            "replace operation does not apply: doc is missing path: {p}: missing value"
        ))
    })?;
    match parent {
        // The Go library sets a missing object key instead of failing.
        Value::Object(m) => {
            m.insert(last.clone(), v);
            Ok(())
        }
        Value::Array(a) => match array_index(last, a.len(), false) {
            Some(i) => {
                a[i] = v;
                Ok(())
            }
            None => Err(PatchError::Invalid(format!(
                "replace operation does not apply: doc is missing key: {p}: missing value"
            ))),
        },
        _ => Err(PatchError::Invalid(format!(
            "replace operation does not apply: doc is missing key: {p}: missing value"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------------

/// How a list field merges under a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// The patch's list replaces the live list (no patchStrategy in the Go type).
    Replace,
    /// Items are maps merged by this key (`patchStrategy:"merge" patchMergeKey:"..."`).
    MergeByKey(&'static str),
    /// A list of scalars merged as a set (`patchStrategy:"merge"` on e.g. finalizers).
    MergeScalars,
}

/// Lengths of the path prefix that leads to a PodSpec for `kind`, if any.
fn pod_spec_prefix(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["spec"],
        "PodTemplate" => &["template", "spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => &[],
    }
}

/// The merge strategy of the list at `path` (map keys from the root; list positions are not
/// part of the path) in a built-in object of `kind`. The one table of patch merge keys.
pub fn list_strategy(kind: &str, path: &[String]) -> ListStrategy {
    use ListStrategy::*;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["metadata", "finalizers"] => return MergeScalars,
        ["metadata", "ownerReferences"] => return MergeByKey("uid"),
        ["status", "conditions"] => return MergeByKey("type"),
        _ => {}
    }
    let pod = pod_spec_prefix(kind);
    if !pod.is_empty() && p.len() > pod.len() && p[..pod.len()] == *pod {
        match &p[pod.len()..] {
            [
                "containers"
                | "initContainers"
                | "ephemeralContainers"
                | "volumes"
                | "imagePullSecrets"
                | "resourceClaims"
                | "schedulingGates",
            ] => {
                return MergeByKey("name");
            }
            ["hostAliases"] => return MergeByKey("ip"),
            ["topologySpreadConstraints"] => return MergeByKey("topologyKey"),
            [
                "containers" | "initContainers" | "ephemeralContainers",
                field,
            ] => match *field {
                "env" => return MergeByKey("name"),
                "ports" => return MergeByKey("containerPort"),
                "volumeMounts" => return MergeByKey("mountPath"),
                "volumeDevices" => return MergeByKey("devicePath"),
                _ => {}
            },
            _ => {}
        }
    }
    match (kind, p.as_slice()) {
        ("Pod", ["status", "podIPs" | "hostIPs"]) => MergeByKey("ip"),
        ("Service", ["spec", "ports"]) => MergeByKey("port"),
        ("ServiceAccount", ["secrets"]) => MergeByKey("name"),
        ("Node", ["status", "addresses"]) => MergeByKey("type"),
        ("Node", ["spec", "podCIDRs"]) => MergeScalars,
        _ => Replace,
    }
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to a built-in object of `kind` ("Pod", "StatefulSet", ...):
/// maps merge recursively, `null` deletes, lists with a merge key merge item by item, other
/// lists are replaced; `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/` and
/// `$setElementOrder/` directives are honoured.
pub fn strategic_merge_patch(live: &Value, patch: &Value, kind: &str) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type_name(patch)
        )));
    };
    let original = match live {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut path = Vec::new();
    smp_map(original, patch, kind, &mut path).map(Value::Object)
}

fn smp_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    kind: &str,
    path: &mut Vec<String>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(d) = patch.get(DIRECTIVE) {
        match d.as_str() {
            Some("replace") => {
                let mut p = patch.clone();
                p.remove(DIRECTIVE);
                return Ok(decoded(p));
            }
            Some("delete") => return Ok(Map::new()),
            _ => {
                let d = d.as_str().map_or_else(|| d.to_string(), str::to_string);
                return Err(PatchError::BadRequest(format!(
                    "unknown patch type: {d} in map: {}",
                    Value::Object(patch.clone())
                )));
            }
        }
    }
    if let Some(keys) = patch.get(RETAIN_KEYS) {
        let Some(keys) = keys.as_array() else {
            return Err(PatchError::BadRequest(
                "invalid patch format: $retainKeys must be a list of strings".into(),
            ));
        };
        let keep: BTreeSet<&str> = keys.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keep.contains(k.as_str()));
    }
    let mut orders: BTreeMap<&str, &Vec<Value>> = BTreeMap::new();
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Some(del) = v.as_array() else {
                return Err(PatchError::BadRequest(
                    "invalid patch format: $deleteFromPrimitiveList must be a list".into(),
                ));
            };
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|i| !del.contains(i));
            }
        } else if let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) {
            let Some(order) = v.as_array() else {
                return Err(PatchError::BadRequest(
                    "invalid patch format: $setElementOrder must be a list".into(),
                ));
            };
            orders.insert(field, order);
        }
    }
    for (k, pv) in patch {
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            original.remove(k);
            continue;
        }
        path.push(k.clone());
        let merged = match (original.remove(k), pv) {
            (Some(Value::Object(o)), Value::Object(p)) => Value::Object(smp_map(o, p, kind, path)?),
            // kube drops a new map that carries a directive
            (None, Value::Object(p)) if p.contains_key(DIRECTIVE) => {
                path.pop();
                continue;
            }
            (None, Value::Object(p)) => Value::Object(smp_map(Map::new(), p, kind, path)?),
            (Some(Value::Array(o)), Value::Array(p)) => {
                Value::Array(smp_list(o, p, kind, path, orders.get(k.as_str()).copied())?)
            }
            (None, Value::Array(p)) => Value::Array(smp_list(
                Vec::new(),
                p,
                kind,
                path,
                orders.get(k.as_str()).copied(),
            )?),
            (_, pv) => pv.clone(),
        };
        path.pop();
        original.insert(k.clone(), merged);
    }
    // An order given for a list the patch does not otherwise touch still reorders it.
    for (field, order) in orders {
        if patch.contains_key(field) {
            continue;
        }
        if let Some(Value::Array(items)) = original.get_mut(field) {
            path.push(field.to_string());
            let key = match list_strategy(kind, path) {
                ListStrategy::MergeByKey(k) => Some(k),
                _ => None,
            };
            path.pop();
            let all = std::mem::take(items);
            *items = order_merged(all.clone(), order, &all, key);
        }
    }
    Ok(original)
}

/// What kube-apiserver keeps of patch content it takes verbatim once decoded into a typed
/// object: directive keys (`$...`) and nulls are gone.
fn decoded(mut m: Map<String, Value>) -> Map<String, Value> {
    fn clean(v: Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::Object(m) => Some(Value::Object(decoded(m))),
            Value::Array(a) => Some(Value::Array(a.into_iter().filter_map(clean).collect())),
            other => Some(other),
        }
    }
    m.retain(|k, _| !k.starts_with('$'));
    m.into_iter()
        .filter_map(|(k, v)| clean(v).map(|v| (k, v)))
        .collect()
}

fn item_id(v: &Value, key: Option<&str>) -> Value {
    match key {
        Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
        None => v.clone(),
    }
}

fn same_item(a: &Value, b: &Value, key: Option<&str>) -> bool {
    item_id(a, key) == item_id(b, key)
}

fn index_in(list: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    list.iter().position(|o| same_item(o, item, key))
}

/// Stable sort by position in `order`; items `order` does not name go last.
fn sort_by_order(mut items: Vec<Value>, order: &[Value], key: Option<&str>) -> Vec<Value> {
    items.sort_by_key(|i| index_in(order, i, key).unwrap_or(usize::MAX));
    items
}

/// kube's `normalizeElementOrder`: the merged items named by `membership` (the patch list, or
/// `$setElementOrder` when given) take its order; the others keep the server's order; the two
/// runs are then interleaved by [`merge_sorted`].
fn order_merged(
    merged: Vec<Value>,
    membership: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let (named, server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|m| index_in(membership, m, key).is_some());
    let named = sort_by_order(named, membership, key);
    merge_sorted(server_only, named, server_order, key)
}

/// kube's `mergeSortedSlice`: interleaves server-only items (`left`) with patch items (`right`)
/// by their positions in the server's list, patch items first when unknown.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        if i >= left.len() {
            out.push(right[j].clone());
            j += 1;
        } else if j >= right.len() {
            out.push(left[i].clone());
            i += 1;
        } else {
            let li = index_in(server_order, &left[i], key);
            let ri = index_in(server_order, &right[j], key);
            match (li, ri) {
                (Some(l), Some(r)) if l < r => {
                    out.push(left[i].clone());
                    i += 1;
                }
                _ => {
                    out.push(right[j].clone());
                    j += 1;
                }
            }
        }
    }
    out
}

fn smp_list(
    original: Vec<Value>,
    patch: &[Value],
    kind: &str,
    path: &mut Vec<String>,
    order: Option<&Vec<Value>>,
) -> Result<Vec<Value>, PatchError> {
    match list_strategy(kind, path) {
        ListStrategy::Replace => Ok(patch.to_vec()),
        ListStrategy::MergeScalars => {
            let mut patch_items: Vec<Value> = Vec::new();
            for p in patch {
                if p.is_object() || p.is_array() {
                    return Err(PatchError::BadRequest(format!(
                        "invalid patch: list {} expects scalars, got {p}",
                        path.join(".")
                    )));
                }
                if !patch_items.contains(p) {
                    patch_items.push(p.clone());
                }
            }
            let mut server_only: Vec<Value> = Vec::new();
            for o in &original {
                if !patch_items.contains(o) && !server_only.contains(o) {
                    server_only.push(o.clone());
                }
            }
            let mut merged = server_only;
            merged.extend(patch_items);
            let membership = order.map(Vec::as_slice).unwrap_or(patch);
            Ok(order_merged(merged, membership, &original, None))
        }
        ListStrategy::MergeByKey(key) => {
            let mut replace = false;
            let mut deletes = Vec::new();
            let mut items: Vec<Map<String, Value>> = Vec::new();
            for p in patch {
                let Value::Object(m) = p else {
                    return Err(PatchError::BadRequest(format!(
                        "invalid patch: list {} expects objects merged by {key}, got {p}",
                        path.join(".")
                    )));
                };
                match m.get(DIRECTIVE).and_then(Value::as_str) {
                    Some("delete") => deletes.push(m.get(key).cloned().unwrap_or(Value::Null)),
                    Some("replace") => replace = true,
                    Some("merge") => {
                        return Err(PatchError::BadRequest(
                            "merging lists cannot yet be specified in the patch".into(),
                        ));
                    }
                    None => {
                        if !m.contains_key(key) {
                            return Err(PatchError::BadRequest(format!(
                                "map: {p} does not contain declared merge key: {key}"
                            )));
                        }
                        items.push(m.clone());
                    }
                    Some(other) => {
                        return Err(PatchError::BadRequest(format!(
                            "unknown patch type: {other} in map: {p}"
                        )));
                    }
                }
            }
            if replace {
                return Ok(items
                    .into_iter()
                    .map(|m| Value::Object(decoded(m)))
                    .collect());
            }
            let original: Vec<Value> = original
                .into_iter()
                .filter(|o| !deletes.contains(&item_id(o, Some(key))))
                .collect();
            let mut merged = original.clone();
            for item in &items {
                let id = item.get(key).cloned().unwrap_or(Value::Null);
                match merged.iter().position(|o| item_id(o, Some(key)) == id) {
                    Some(pos) => {
                        let base = match merged[pos].take() {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        merged[pos] = Value::Object(smp_map(base, item, kind, path)?);
                    }
                    // kube appends a new item as sent (only typed decoding drops `$` keys)
                    None => merged.push(Value::Object(decoded(item.clone()))),
                }
            }
            let patch_values: Vec<Value> = items.into_iter().map(Value::Object).collect();
            let membership = order.map(Vec::as_slice).unwrap_or(&patch_values);
            Ok(order_merged(merged, membership, &original, Some(key)))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field sets and managedFields
// ---------------------------------------------------------------------------------------------

/// A field path: map keys from the object root (`["spec", "image"]`).
pub type FieldPath = Vec<String>;

/// A set of owned fields (leaves: scalars, lists, empty objects).
pub type FieldSet = BTreeSet<FieldPath>;

/// Metadata fields the server owns; they never appear in managedFields.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

fn is_unowned(parent: &[String], key: &str) -> bool {
    match parent {
        [] => key == "apiVersion" || key == "kind",
        [m] if m == "metadata" => SERVER_METADATA.contains(&key),
        _ => false,
    }
}

/// The fields an object (or an apply configuration) sets, as ownership sees them.
pub fn field_set(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    collect_fields(v, &mut path, &mut out);
    out
}

fn collect_fields(v: &Value, path: &mut Vec<String>, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() || path.is_empty() || path == &["metadata"] => {
            for (k, child) in m {
                if child.is_null() || is_unowned(path, k) {
                    continue;
                }
                path.push(k.clone());
                collect_fields(child, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for k in path {
        cur = cur.as_object()?.get(k)?;
    }
    Some(cur)
}

/// What changed between two versions of an object, by field.
#[derive(Debug, Default, Clone, PartialEq)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

fn compare(old: &Value, new: &Value) -> Comparison {
    let mut c = Comparison::default();
    let old_set = field_set(old);
    let new_set = field_set(new);
    for p in old_set.union(&new_set) {
        match (get_path(old, p), get_path(new, p)) {
            (None, Some(_)) => {
                c.added.insert(p.clone());
            }
            (Some(_), None) => {
                c.removed.insert(p.clone());
            }
            // Both objects: the container itself did not change; its children are compared.
            (Some(Value::Object(_)), Some(Value::Object(_))) => {}
            (Some(a), Some(b)) if a != b => {
                c.modified.insert(p.clone());
            }
            _ => {}
        }
    }
    c
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    /// "Apply" or "Update".
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    /// "" for the main resource, e.g. "status".
    pub subresource: String,
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_identity(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// kube's `printManager`: `"name"`, ` with subresource "status"`, ` using apps/v1` for updates.
    fn printed(&self) -> String {
        let mut s = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {}", go_quote(&self.subresource));
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    fn identity_key(&self) -> (String, String, String, String) {
        let api = if self.operation == "Apply" {
            String::new()
        } else {
            self.api_version.clone()
        };
        (
            self.manager.clone(),
            self.operation.clone(),
            api,
            self.subresource.clone(),
        )
    }
}

/// Renders a field path like kube's `fieldpath.Path.String()`: `.spec.image`.
pub fn path_string(p: &[String]) -> String {
    p.iter().map(|k| format!(".{k}")).collect()
}

/// Parses kube's FieldsV1 (`{"f:spec":{"f:image":{}}}`) into leaf paths. List item keys
/// (`k:`, `v:`, `i:`) make the list itself the owned field, lists being atomic here.
pub fn decode_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    decode_node(v, &mut path, &mut out);
    out
}

fn decode_node(v: &Value, path: &mut Vec<String>, out: &mut FieldSet) {
    let Some(m) = v.as_object() else {
        return;
    };
    if m.is_empty() && !path.is_empty() {
        out.insert(path.clone());
        return;
    }
    for (k, child) in m {
        if k == "." {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        } else if let Some(name) = k.strip_prefix("f:") {
            path.push(name.to_string());
            decode_node(child, path, out);
            path.pop();
        } else if !path.is_empty() {
            out.insert(path.clone());
        }
    }
}

/// Renders leaf paths as kube's FieldsV1; a path that is owned and has owned children gets `.`.
pub fn encode_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for p in set {
        let mut node = &mut root;
        for k in p {
            let entry = node
                .entry(format!("f:{k}"))
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(child) = entry else {
                unreachable!("fieldsV1 nodes are objects")
            };
            node = child;
        }
    }
    // A node that was created as a leaf and later received children needs its "." marker.
    fn mark(node: &mut Map<String, Value>, path: &mut Vec<String>, set: &FieldSet) {
        for (k, child) in node.iter_mut() {
            let Some(name) = k.strip_prefix("f:") else {
                continue;
            };
            path.push(name.to_string());
            if let Value::Object(c) = child {
                if !c.is_empty() && set.contains(path) {
                    c.insert(".".into(), json!({}));
                }
                mark(c, path, set);
            }
            path.pop();
        }
    }
    let mut path = Vec::new();
    mark(&mut root, &mut path, set);
    Value::Object(root)
}

/// Reads `metadata.managedFields`, merging entries of the same manager, operation and subresource.
pub fn decode_managed_fields(obj: &Value) -> Vec<ManagedEntry> {
    let mut out: Vec<ManagedEntry> = Vec::new();
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return out;
    };
    for e in list {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let entry = ManagedEntry {
            manager: s("manager"),
            operation: s("operation"),
            api_version: s("apiVersion"),
            time: e.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: s("subresource"),
            fields: e.get("fieldsV1").map(decode_fields_v1).unwrap_or_default(),
        };
        match out
            .iter_mut()
            .find(|x| x.same_identity(&entry.manager, &entry.operation, &entry.subresource))
        {
            Some(x) => {
                x.fields.extend(entry.fields);
                if entry.time > x.time {
                    x.time = entry.time;
                    x.api_version = entry.api_version;
                }
            }
            None => out.push(entry),
        }
    }
    out
}

fn time_seconds(t: &Option<String>) -> i64 {
    t.as_deref()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map_or(0, jiff::Timestamp::as_second)
}

/// Renders entries as `metadata.managedFields`, sorted like kube (operation, time, manager,
/// apiVersion, subresource); empty entries are dropped.
pub fn encode_managed_fields(entries: &[ManagedEntry]) -> Vec<Value> {
    let mut sorted: Vec<&ManagedEntry> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    sorted.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then(time_seconds(&p.time).cmp(&time_seconds(&q.time)))
            .then(p.manager.cmp(&q.manager))
            .then(p.api_version.cmp(&q.api_version))
            .then(p.subresource.cmp(&q.subresource))
    });
    sorted
        .into_iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), json!(e.manager));
            m.insert("operation".into(), json!(e.operation));
            m.insert("apiVersion".into(), json!(e.api_version));
            if let Some(t) = &e.time {
                m.insert("time".into(), json!(t));
            }
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), encode_fields_v1(&e.fields));
            if !e.subresource.is_empty() {
                m.insert("subresource".into(), json!(e.subresource));
            }
            Value::Object(m)
        })
        .collect()
}

fn set_managed_fields(obj: &mut Value, entries: &[ManagedEntry]) {
    let encoded = encode_managed_fields(entries);
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if encoded.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(encoded));
        }
    }
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    o
}

fn remove_path(obj: &mut Value, p: &[String]) -> bool {
    let Some((last, parents)) = p.split_last() else {
        return false;
    };
    let mut cur = obj;
    for k in parents {
        match cur.as_object_mut().and_then(|m| m.get_mut(k)) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    cur.as_object_mut()
        .is_some_and(|m| m.remove(last).is_some())
}

/// Does anyone own `p`, something under it, or a leaf above it?
fn owned_near(entries: &[ManagedEntry], p: &[String]) -> bool {
    entries.iter().any(|e| {
        e.fields
            .iter()
            .any(|q| q.starts_with(p) || p.starts_with(q))
    })
}

// ---------------------------------------------------------------------------------------------
// Server-side apply
// ---------------------------------------------------------------------------------------------

/// Parameters of one server-side apply request.
pub struct ApplyOptions<'a> {
    /// `fieldManager` (required by kube for apply).
    pub manager: &'a str,
    /// `force=true`: take ownership of conflicting fields instead of failing.
    pub force: bool,
    /// e.g. `Some("status")` for an apply to the status subresource.
    pub subresource: Option<&'a str>,
    /// RFC 3339 time recorded in managedFields when the object changes.
    pub now: &'a str,
}

/// Removes what an apply configuration cannot set: explicit nulls and server-owned metadata
/// except name/namespace (which identify the object on create).
fn apply_config(applied: &Value) -> Value {
    fn drop_nulls(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), drop_nulls(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut c = drop_nulls(applied);
    if let Some(meta) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in SERVER_METADATA {
            if *k != "name" && *k != "namespace" {
                meta.remove(*k);
            }
        }
    }
    c
}

/// Merges an apply configuration into the live object: objects recurse, anything else
/// (scalars, lists) replaces.
fn merge_config(live: &mut Value, config: &Value) {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            for (k, cv) in c {
                match l.get_mut(k) {
                    Some(lv @ Value::Object(_)) if cv.is_object() => merge_config(lv, cv),
                    _ => {
                        l.insert(k.clone(), cv.clone());
                    }
                }
            }
        }
        (live, config) => *live = config.clone(),
    }
}

/// kube's conflict message, e.g.
/// `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .spec.image`.
fn conflict_message(conflicts: &[(ManagedEntry, FieldSet)]) -> String {
    let total: usize = conflicts.iter().map(|(_, s)| s.len()).sum();
    if total == 1 {
        let (e, s) = &conflicts[0];
        let p = s.iter().next().expect("one conflict");
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            e.printed(),
            path_string(p)
        );
    }
    let mut sorted: Vec<&(ManagedEntry, FieldSet)> = conflicts.iter().collect();
    sorted.sort_by_key(|(e, _)| e.identity_key());
    let mut lines = Vec::new();
    for (e, set) in sorted {
        lines.push(format!("conflicts with {}:", e.printed()));
        for p in set {
            lines.push(format!("- {}", path_string(p)));
        }
    }
    format!("Apply failed with {total} conflicts: {}", lines.join("\n"))
}

/// The `details.causes` of kube's 409 for an apply conflict, rebuilt from the message this
/// module produces: `{"type":"FieldManagerConflict","message":"conflict with \"m\"","field":".spec.x"}`.
#[cfg(test)]
pub fn conflict_causes(message: &str) -> Vec<Value> {
    let cause = |manager: &str, field: &str| json!({"type": "FieldManagerConflict", "message": format!("conflict with {manager}"), "field": field});
    if let Some(rest) = message.strip_prefix("Apply failed with 1 conflict: conflict with ") {
        return match rest.rsplit_once(": ") {
            Some((m, f)) => vec![cause(m, f)],
            None => Vec::new(),
        };
    }
    let Some((_, body)) = message.split_once(" conflicts: ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut manager = "";
    for line in body.lines() {
        if let Some(m) = line
            .strip_prefix("conflicts with ")
            .and_then(|l| l.strip_suffix(':'))
        {
            manager = m;
        } else if let Some(f) = line.strip_prefix("- ") {
            out.push(cause(manager, f));
        }
    }
    out
}

/// Server-side apply: sets the configuration's fields on the live object (creating it when
/// `live` is None), removes fields this manager applied before and no longer applies unless
/// another manager owns them, refuses to change fields owned by others unless `force`, and
/// updates `metadata.managedFields`. A no-op apply returns the live object unchanged.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    opts: &ApplyOptions<'_>,
) -> Result<Value, PatchError> {
    if !applied.is_object() {
        return Err(PatchError::BadRequest(format!(
            "error decoding YAML: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type_name(applied)
        )));
    }
    let subresource = opts.subresource.unwrap_or("");
    let config = apply_config(applied);
    let live_plain = live
        .map(without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let before = live.map(decode_managed_fields).unwrap_or_default();
    let mut entries = before.clone();

    let mut merged = live_plain.clone();
    merge_config(&mut merged, &config);

    let new_set = field_set(&config);
    let api_version = config
        .get("apiVersion")
        .or_else(|| live_plain.get("apiVersion"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let me = match entries
        .iter()
        .position(|e| e.same_identity(opts.manager, "Apply", subresource))
    {
        Some(i) => i,
        None => {
            entries.push(ManagedEntry {
                manager: opts.manager.to_string(),
                operation: "Apply".into(),
                api_version: api_version.clone(),
                time: Some(opts.now.to_string()),
                subresource: subresource.to_string(),
                fields: FieldSet::new(),
            });
            entries.len() - 1
        }
    };
    let last_set = std::mem::replace(&mut entries[me].fields, new_set.clone());
    entries[me].api_version = api_version;

    // Prune what this manager stopped applying, unless someone (including its new set) owns it.
    for p in last_set.difference(&new_set) {
        if owned_near(&entries, p) {
            continue;
        }
        if remove_path(&mut merged, p) {
            for depth in (1..p.len()).rev() {
                let ancestor = &p[..depth];
                let empty = get_path(&merged, ancestor)
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty);
                if !empty || ancestor == ["metadata"] || owned_near(&entries, ancestor) {
                    break;
                }
                remove_path(&mut merged, ancestor);
            }
        }
    }

    let cmp = compare(&live_plain, &merged);
    let changed: FieldSet = cmp.added.union(&cmp.modified).cloned().collect();
    let mut conflicts: Vec<(usize, FieldSet)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i == me {
            continue;
        }
        let c: FieldSet = e.fields.intersection(&changed).cloned().collect();
        if !c.is_empty() {
            conflicts.push((i, c));
        }
    }
    if !conflicts.is_empty() && !opts.force {
        let described: Vec<(ManagedEntry, FieldSet)> = conflicts
            .iter()
            .map(|(i, c)| (entries[*i].clone(), c.clone()))
            .collect();
        return Err(PatchError::Conflict {
            message: conflict_message(&described),
        });
    }
    for (i, c) in &conflicts {
        entries[*i].fields.retain(|p| !c.contains(p));
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if i != me {
            e.fields.retain(|p| !cmp.removed.contains(p));
        }
    }
    let object_changed = merged != live_plain;
    if object_changed {
        entries[me].time = Some(opts.now.to_string());
    }
    entries.retain(|e| !e.fields.is_empty());
    set_managed_fields(&mut merged, &entries);
    match live {
        Some(l) if !object_changed && *l == merged => Ok(l.clone()),
        _ => Ok(merged),
    }
}

/// Records a non-apply write (create, update, patch) by `manager`: it takes ownership of the
/// fields whose value it added or changed, other managers lose those fields (no conflicts for
/// updates) and everyone loses removed fields. Like kube, non-empty managedFields sent by the
/// client (main resource only) are the starting point, and `managedFields: [{}]` resets them.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    // kube's decodeLiveOrNew: subresource writes cannot set managedFields; `[{}]` resets them;
    // otherwise non-empty managedFields sent by the client are taken as they are.
    let sent = new.pointer("/metadata/managedFields").cloned();
    let mut entries = match (&sent, subresource) {
        (_, Some(_)) => old.map(decode_managed_fields).unwrap_or_default(),
        (Some(Value::Array(a)), None) if a.len() == 1 && a[0] == json!({}) => Vec::new(),
        _ => match decode_managed_fields(new) {
            sent_entries if sent_entries.iter().any(|e| !e.fields.is_empty()) => sent_entries,
            _ => old.map(decode_managed_fields).unwrap_or_default(),
        },
    };
    let subresource = subresource.unwrap_or("");
    let old_plain = old.map(without_managed_fields).unwrap_or_else(|| json!({}));
    let new_plain = without_managed_fields(new);
    let cmp = compare(&old_plain, &new_plain);
    let touched: FieldSet = cmp
        .added
        .iter()
        .chain(&cmp.modified)
        .chain(&cmp.removed)
        .cloned()
        .collect();
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let is_me = |e: &ManagedEntry| e.same_identity(manager, "Update", subresource);
    for e in entries.iter_mut().filter(|e| !is_me(e)) {
        e.fields.retain(|p| !touched.contains(p));
    }
    let gained: FieldSet = cmp.added.union(&cmp.modified).cloned().collect();
    match entries.iter_mut().find(|e| is_me(e)) {
        Some(e) => {
            e.fields.retain(|p| !cmp.removed.contains(p));
            if !gained.is_empty() {
                e.fields.extend(gained);
                e.time = Some(now.to_string());
                e.api_version = api_version;
            }
        }
        None if !gained.is_empty() => entries.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version,
            time: Some(now.to_string()),
            subresource: subresource.to_string(),
            fields: gained,
        }),
        None => {}
    }
    entries.retain(|e| !e.fields.is_empty());
    set_managed_fields(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2026-01-01T00:00:00Z";
    const T2: &str = "2026-01-01T00:01:00Z";
    const T3: &str = "2026-01-01T00:02:00Z";

    fn apply(
        live: Option<&Value>,
        cfg: Value,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<Value, PatchError> {
        server_side_apply(
            live,
            &cfg,
            &ApplyOptions {
                manager,
                force,
                subresource: None,
                now,
            },
        )
    }

    fn cc(spec: Value) -> Value {
        json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
               "metadata": {"name": "cc", "namespace": "ns"}, "spec": spec})
    }

    fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
        obj["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|e| e["manager"] == manager)
    }

    // ---- merge patch ----

    #[test]
    fn merge_patch_sets_nested_fields_and_null_deletes() {
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}});
        let out = merge_patch(
            &live,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"y": [1]}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"x": 1, "y": [1]}})
        );
    }

    #[test]
    fn merge_patch_rejects_non_object_patches() {
        assert!(matches!(
            merge_patch(&json!({}), &json!([1])),
            Err(PatchError::BadRequest(_))
        ));
        assert!(matches!(
            merge_patch(&json!({}), &json!("x")),
            Err(PatchError::BadRequest(_))
        ));
    }

    // ---- JSON patch ----

    #[test]
    fn json_patch_applies_all_operations() {
        let live = json!({"spec": {"a": 1, "list": [1, 2]}, "metadata": {"labels": {"x/y": "1"}}});
        let patch = json!([
            {"op": "add", "path": "/spec/b", "value": 2},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "add", "path": "/spec/list/0", "value": 0},
            {"op": "replace", "path": "/spec/a", "value": 10},
            {"op": "remove", "path": "/metadata/labels/x~1y"},
            {"op": "copy", "from": "/spec/a", "path": "/spec/c"},
            {"op": "move", "from": "/spec/b", "path": "/spec/d"},
            {"op": "test", "path": "/spec/d", "value": 2.0},
        ]);
        let out = json_patch(&live, &patch).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"a": 10, "c": 10, "d": 2, "list": [0, 1, 2, 3]}, "metadata": {"labels": {}}})
        );
    }

    #[test]
    fn json_patch_failed_test_is_invalid_with_kubes_message() {
        let live = json!({"spec": {"a": 1}});
        let err = json_patch(
            &live,
            &json!([{"op": "test", "path": "/spec/a", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(err, PatchError::Invalid(JSON_PATCH_INVALID_MESSAGE.into()));
        let detail = json_patch_detailed(
            &live,
            &json!([{"op": "test", "path": "/spec/a", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(
            detail,
            PatchError::Invalid("testing value /spec/a failed: test failed".into())
        );
    }

    #[test]
    fn json_patch_missing_paths_are_invalid_with_go_library_wording() {
        let live = json!({"spec": {"a": 1, "list": [1, 2]}});
        let d = |p: Value| json_patch_detailed(&live, &p).unwrap_err();
        assert_eq!(
            d(json!([{"op": "remove", "path": "/spec/b"}])),
            PatchError::Invalid(
                "error in remove for path: '/spec/b': Unable to remove nonexistent key: b: missing value".into()
            )
        );
        assert_eq!(
            d(json!([{"op": "add", "path": "/status/phase", "value": "x"}])),
            PatchError::Invalid(
                "add operation does not apply: doc is missing path: \"/status/phase\": missing value".into()
            )
        );
        assert_eq!(
            d(json!([{"op": "add", "path": "/spec/list/7", "value": 0}])),
            PatchError::Invalid(
                "error in add for path: '/spec/list/7': Unable to access invalid index: 7: invalid index referenced".into()
            )
        );
        assert_eq!(
            d(json!([{"op": "move", "from": "/spec/zz", "path": "/spec/y"}])),
            PatchError::Invalid(
                "error in move for path: 'zz': Unable to remove nonexistent key: zz: missing value"
                    .into()
            )
        );
        assert_eq!(
            d(json!([{"op": "test", "path": "/spec/x/y", "value": 1}])),
            PatchError::Invalid(
                "test operation does not apply: is missing path: /spec/x/y: missing value".into()
            )
        );
        assert_eq!(
            d(json!([{"op": "replace", "path": "/zz/nope", "value": 1}])),
            PatchError::Invalid(
                "replace operation does not apply: doc is missing path: /zz/nope: missing value"
                    .into()
            )
        );
        assert_eq!(
            d(json!([{"op": "bogus", "path": "/x"}])),
            PatchError::Invalid("Unexpected kind: bogus".into())
        );
        assert_eq!(
            d(json!([{"op": "add", "value": 1}])),
            PatchError::Invalid("add operation failed to decode path: missing value".into())
        );
        assert!(matches!(
            json_patch(&live, &json!([{"op": "remove", "path": "/nope/x"}])),
            Err(PatchError::Invalid(_))
        ));
    }

    #[test]
    fn json_patch_keeps_the_go_librarys_leniencies() {
        // all observed with kubectl 1.32 `patch --local --type json`
        let live = json!({"spec": {"a": 1, "list": [1, 2]}});
        let ok = |p: Value| json_patch(&live, &p).unwrap();
        assert_eq!(
            ok(json!([{"op": "replace", "path": "/spec/nope", "value": 1}]))["spec"]["nope"],
            1
        );
        assert_eq!(
            ok(json!([{"op": "replace", "path": "/spec/a"}]))["spec"]["a"],
            Value::Null
        );
        assert_eq!(
            ok(json!([{"op": "copy", "from": "/spec/zz", "path": "/spec/y"}]))["spec"]["y"],
            Value::Null
        );
        assert_eq!(
            ok(json!([{"op": "test", "path": "/spec/zz", "value": null}])),
            live
        );
        assert_eq!(
            ok(json!([{"op": "add", "path": "/spec/list/-1", "value": 3}]))["spec"]["list"],
            json!([1, 2, 3])
        );
        assert_eq!(
            ok(json!([{"op": "remove", "path": "/spec/list/-1"}]))["spec"]["list"],
            json!([1])
        );
        assert!(
            json_patch(
                &live,
                &json!([{"op": "replace", "path": "/spec/list/9", "value": 1}])
            )
            .is_err()
        );
    }

    #[test]
    fn json_patch_must_be_an_array() {
        assert!(matches!(
            json_patch(&json!({}), &json!({"op": "add"})),
            Err(PatchError::BadRequest(_))
        ));
        assert!(matches!(
            json_patch(&json!({}), &json!([1])),
            Err(PatchError::BadRequest(_))
        ));
    }

    #[test]
    fn json_patch_failure_leaves_nothing_half_applied() {
        let live = json!({"spec": {"a": 1}});
        let r = json_patch(
            &live,
            &json!([{"op": "replace", "path": "/spec/a", "value": 5}, {"op": "test", "path": "/spec/a", "value": 1}]),
        );
        assert!(r.is_err());
        assert_eq!(live, json!({"spec": {"a": 1}}));
    }

    // ---- strategic merge patch ----

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a"]},
            "spec": {"containers": [
                {"name": "c1", "image": "i1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "ports": [{"containerPort": 80}], "args": ["x"]},
                {"name": "c2", "image": "i2"}],
              "tolerations": [{"key": "k1"}],
              "volumes": [{"name": "v1", "emptyDir": {}}]}})
    }

    #[test]
    fn smp_merges_containers_by_name_and_env_by_name() {
        let out = strategic_merge_patch(&pod(), &json!({"spec": {"containers": [
            {"name": "c1", "image": "i1b", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}}), "Pod").unwrap();
        let c = &out["spec"]["containers"];
        assert_eq!(c.as_array().unwrap().len(), 2);
        assert_eq!(c[0]["name"], "c1");
        assert_eq!(c[0]["image"], "i1b");
        assert_eq!(
            c[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(c[0]["args"], json!(["x"]));
        assert_eq!(c[1], json!({"name": "c2", "image": "i2"}));
    }

    #[test]
    fn smp_replaces_lists_without_merge_key() {
        let out = strategic_merge_patch(
            &pod(),
            &json!({"spec": {"tolerations": [{"key": "k2"}],
            "containers": [{"name": "c1", "args": ["y"]}]}}),
            "Pod",
        )
        .unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "k2"}]));
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["y"]));
    }

    #[test]
    fn smp_merges_statefulset_template_containers_and_finalizers() {
        let sts = json!({"kind": "StatefulSet", "metadata": {"finalizers": ["a"]}, "spec": {"replicas": 1, "template": {"spec": {
            "containers": [{"name": "cassandra", "image": "c:3", "volumeMounts": [{"mountPath": "/data", "name": "d"}]}]}}}});
        let out = strategic_merge_patch(&sts, &json!({"metadata": {"finalizers": ["b"]}, "spec": {"replicas": 3, "template": {"spec": {
            "containers": [{"name": "cassandra", "image": "c:4", "volumeMounts": [{"mountPath": "/logs", "name": "l"}]}]}}}}), "StatefulSet").unwrap();
        // kube's mergeSortedSlice puts items the server does not know before the server's own
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
        assert_eq!(out["spec"]["replicas"], 3);
        let c = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "c:4");
        assert_eq!(
            c["volumeMounts"],
            json!([{"mountPath": "/logs", "name": "l"}, {"mountPath": "/data", "name": "d"}])
        );
    }

    #[test]
    fn smp_null_deletes_and_patch_delete_removes_list_items() {
        let out = strategic_merge_patch(&pod(), &json!({"metadata": {"finalizers": null}, "spec": {
            "containers": [{"name": "c2", "$patch": "delete"}, {"name": "c1", "env": [{"name": "A", "$patch": "delete"}]}],
            "volumes": null}}), "Pod").unwrap();
        assert!(out["metadata"].get("finalizers").is_none());
        assert!(out["spec"].get("volumes").is_none());
        let c = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["env"], json!([{"name": "B", "value": "2"}]));
    }

    #[test]
    fn smp_patch_replace_directive_replaces_a_list_or_map() {
        let out = strategic_merge_patch(
            &pod(),
            &json!({"spec": {"containers": [{"name": "n", "image": "x"}, {"$patch": "replace"}]}}),
            "Pod",
        )
        .unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "n", "image": "x"}])
        );
        let out = strategic_merge_patch(
            &pod(),
            &json!({"metadata": {"$patch": "replace", "name": "q"}}),
            "Pod",
        )
        .unwrap();
        assert_eq!(out["metadata"], json!({"name": "q"}));
    }

    #[test]
    fn smp_delete_from_primitive_list_and_retain_keys() {
        let live = json!({"metadata": {"finalizers": ["a", "b", "c"]}, "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let out = strategic_merge_patch(
            &live,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]},
            "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            "Deployment",
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn smp_set_element_order_orders_merged_list() {
        let out = strategic_merge_patch(
            &pod(),
            &json!({"spec": {
            "$setElementOrder/containers": [{"name": "c2"}, {"name": "c1"}],
            "containers": [{"name": "c2", "image": "i2b"}]}}),
            "Pod",
        )
        .unwrap();
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["c2", "c1"]);
        assert_eq!(out["spec"]["containers"][0]["image"], "i2b");
    }

    #[test]
    fn smp_orders_new_items_like_kubes_merge_sorted_slice() {
        let out = strategic_merge_patch(&pod(), &json!({"spec": {"containers": [{"name": "c0", "image": "i0"}, {"name": "c2", "image": "z"}]}}), "Pod").unwrap();
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        // like kube: an unknown patch item goes before the server item it is compared with
        assert_eq!(names, ["c0", "c1", "c2"]);
    }

    #[test]
    fn smp_status_conditions_merge_by_type() {
        let live = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}});
        let out = strategic_merge_patch(
            &live,
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            "Pod",
        )
        .unwrap();
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}])
        );
    }

    #[test]
    fn smp_rejects_non_object_patch_and_missing_merge_key() {
        assert!(matches!(
            strategic_merge_patch(&pod(), &json!([]), "Pod"),
            Err(PatchError::BadRequest(_))
        ));
        assert!(matches!(
            strategic_merge_patch(
                &pod(),
                &json!({"spec": {"containers": [{"image": "x"}]}}),
                "Pod"
            ),
            Err(PatchError::BadRequest(_))
        ));
    }

    /// Expected results recorded from kubectl 1.32's own strategic merge implementation
    /// (`kubectl patch --local -f base.json -p PATCH -o json`), with `$` keys and nulls dropped
    /// as kube-apiserver's typed decoding drops them.
    const KUBECTL_SMP_CASES: &str = r#"{"bases":{"pod":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","finalizers":["a"]},"spec":{"containers":[{"name":"c1","image":"i1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80}],"volumeMounts":[{"mountPath":"/data","name":"d"}]},{"name":"c2","image":"i2"}],"tolerations":[{"key":"k1"}],"volumes":[{"name":"v1","emptyDir":{}}]}},"sts":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"s","labels":{"a":"1"},"annotations":{"x":"y"}},"spec":{"replicas":1,"serviceName":"s","selector":{"matchLabels":{"app":"c"}},"template":{"metadata":{"labels":{"app":"c"}},"spec":{"initContainers":[{"name":"init","image":"b"}],"containers":[{"name":"cassandra","image":"c:3","env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}],"ports":[{"containerPort":9042,"name":"cql"},{"containerPort":7000,"name":"gossip"}],"args":["a","b"]},{"name":"sidecar","image":"s:1"}],"volumes":[{"name":"d","emptyDir":{}},{"name":"e","emptyDir":{}}],"tolerations":[{"key":"t"}]}},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}],"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}}}},"svc":{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc"},"spec":{"ports":[{"port":80,"targetPort":8080},{"port":443}],"selector":{"a":"b"}}}},"cases":[{"kind":"Pod","base":"pod","patch":{"spec":{"$setElementOrder/containers":[{"name":"c2"},{"name":"c1"}],"containers":[{"name":"c2","image":"i2b"}]}},"want":{"apiVersion":"v1","kind":"Pod","metadata":{"finalizers":["a"],"name":"p"},"spec":{"containers":[{"image":"i2b","name":"c2"},{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"i1","name":"c1","ports":[{"containerPort":80}],"volumeMounts":[{"mountPath":"/data","name":"d"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"emptyDir":{},"name":"v1"}]}}},{"kind":"Pod","base":"pod","patch":{"spec":{"$setElementOrder/containers":[{"name":"c3"},{"name":"c2"}],"containers":[{"name":"c3","image":"n"},{"name":"c2","image":"i2b"}]}},"want":{"apiVersion":"v1","kind":"Pod","metadata":{"finalizers":["a"],"name":"p"},"spec":{"containers":[{"image":"n","name":"c3"},{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"i1","name":"c1","ports":[{"containerPort":80}],"volumeMounts":[{"mountPath":"/data","name":"d"}]},{"image":"i2b","name":"c2"}],"tolerations":[{"key":"k1"}],"volumes":[{"emptyDir":{},"name":"v1"}]}}},{"kind":"Pod","base":"pod","patch":{"spec":{"containers":[{"name":"c2","$patch":"delete"},{"name":"c1","env":[{"name":"A","$patch":"delete"},{"name":"Z","value":"9"}]}]}},"want":{"apiVersion":"v1","kind":"Pod","metadata":{"finalizers":["a"],"name":"p"},"spec":{"containers":[{"env":[{"name":"Z","value":"9"},{"name":"B","value":"2"}],"image":"i1","name":"c1","ports":[{"containerPort":80}],"volumeMounts":[{"mountPath":"/data","name":"d"}]}],"tolerations":[{"key":"k1"}],"volumes":[{"emptyDir":{},"name":"v1"}]}}},{"kind":"Pod","base":"pod","patch":{"spec":{"containers":[{"name":"n","image":"x"},{"$patch":"replace"}]}},"want":{"apiVersion":"v1","kind":"Pod","metadata":{"finalizers":["a"],"name":"p"},"spec":{"containers":[{"image":"x","name":"n"}],"tolerations":[{"key":"k1"}],"volumes":[{"emptyDir":{},"name":"v1"}]}}},{"kind":"Pod","base":"pod","patch":{"metadata":{"finalizers":["a","c","c"]}},"want":{"apiVersion":"v1","kind":"Pod","metadata":{"finalizers":["a","c"],"name":"p"},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"i1","name":"c1","ports":[{"containerPort":80}],"volumeMounts":[{"mountPath":"/data","name":"d"}]},{"image":"i2","name":"c2"}],"tolerations":[{"key":"k1"}],"volumes":[{"emptyDir":{},"name":"v1"}]}}},{"kind":"StatefulSet","base":"sts","patch":{"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"cassandra","image":"c:4","env":[{"name":"Y","value":"20"},{"name":"Z","value":"3"}],"args":["c"]}]}}}},"want":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"annotations":{"x":"y"},"labels":{"a":"1"},"name":"s"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"c"}},"serviceName":"s","template":{"metadata":{"labels":{"app":"c"}},"spec":{"containers":[{"args":["c"],"env":[{"name":"X","value":"1"},{"name":"Y","value":"20"},{"name":"Z","value":"3"}],"image":"c:4","name":"cassandra","ports":[{"containerPort":9042,"name":"cql"},{"containerPort":7000,"name":"gossip"}]},{"image":"s:1","name":"sidecar"}],"initContainers":[{"image":"b","name":"init"}],"tolerations":[{"key":"t"}],"volumes":[{"emptyDir":{},"name":"d"},{"emptyDir":{},"name":"e"}]}},"updateStrategy":{"rollingUpdate":{"partition":0},"type":"RollingUpdate"},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}]}}},{"kind":"StatefulSet","base":"sts","patch":{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"cassandra"},{"name":"sidecar"}],"containers":[{"name":"cassandra","$setElementOrder/env":[{"name":"Y"},{"name":"X"}],"env":[{"name":"Y","value":"3"}]}]}}}},"want":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","x":"y"},"labels":{"a":"1"},"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"c"}},"serviceName":"s","template":{"metadata":{"labels":{"app":"c"}},"spec":{"containers":[{"args":["a","b"],"env":[{"name":"Y","value":"3"},{"name":"X","value":"1"}],"image":"c:3","name":"cassandra","ports":[{"containerPort":9042,"name":"cql"},{"containerPort":7000,"name":"gossip"}]},{"image":"s:1","name":"sidecar"}],"initContainers":[{"image":"b","name":"init"}],"tolerations":[{"key":"t"}],"volumes":[{"emptyDir":{},"name":"d"},{"emptyDir":{},"name":"e"}]}},"updateStrategy":{"rollingUpdate":{"partition":0},"type":"RollingUpdate"},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}]}}},{"kind":"StatefulSet","base":"sts","patch":{"spec":{"updateStrategy":{"$retainKeys":["type"],"type":"OnDelete"}}},"want":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"annotations":{"x":"y"},"labels":{"a":"1"},"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"c"}},"serviceName":"s","template":{"metadata":{"labels":{"app":"c"}},"spec":{"containers":[{"args":["a","b"],"env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}],"image":"c:3","name":"cassandra","ports":[{"containerPort":9042,"name":"cql"},{"containerPort":7000,"name":"gossip"}]},{"image":"s:1","name":"sidecar"}],"initContainers":[{"image":"b","name":"init"}],"tolerations":[{"key":"t"}],"volumes":[{"emptyDir":{},"name":"d"},{"emptyDir":{},"name":"e"}]}},"updateStrategy":{"type":"OnDelete"},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}]}}},{"kind":"Service","base":"svc","patch":{"spec":{"ports":[{"port":443,"targetPort":8443},{"port":22}]}},"want":{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc"},"spec":{"ports":[{"port":80,"targetPort":8080},{"port":443,"targetPort":8443},{"port":22}],"selector":{"a":"b"}}}},{"kind":"Pod","base":"pod","patch":{"metadata":{"$setElementOrder/finalizers":["c","a"],"finalizers":["c"]}},"want":{"apiVersion":"v1","kind":"Pod","metadata":{"finalizers":["c","a"],"name":"p"},"spec":{"containers":[{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"i1","name":"c1","ports":[{"containerPort":80}],"volumeMounts":[{"mountPath":"/data","name":"d"}]},{"image":"i2","name":"c2"}],"tolerations":[{"key":"k1"}],"volumes":[{"emptyDir":{},"name":"v1"}]}}},{"kind":"Pod","base":"pod","patch":{"spec":{"containers":[{"name":"c3","image":"a"},{"name":"c4","image":"b"},{"name":"c1","image":"c"}]}},"want":{"apiVersion":"v1","kind":"Pod","metadata":{"finalizers":["a"],"name":"p"},"spec":{"containers":[{"image":"a","name":"c3"},{"image":"b","name":"c4"},{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"c","name":"c1","ports":[{"containerPort":80}],"volumeMounts":[{"mountPath":"/data","name":"d"}]},{"image":"i2","name":"c2"}],"tolerations":[{"key":"k1"}],"volumes":[{"emptyDir":{},"name":"v1"}]}}},{"kind":"StatefulSet","base":"sts","patch":{"spec":{"template":{"spec":{"containers":[{"name":"cassandra","ports":[{"containerPort":7001,"name":"tls"},{"containerPort":7000,"$patch":"delete"}]}]}}}},"want":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"annotations":{"x":"y"},"labels":{"a":"1"},"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"c"}},"serviceName":"s","template":{"metadata":{"labels":{"app":"c"}},"spec":{"containers":[{"args":["a","b"],"env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}],"image":"c:3","name":"cassandra","ports":[{"containerPort":7001,"name":"tls"},{"containerPort":9042,"name":"cql"}]},{"image":"s:1","name":"sidecar"}],"initContainers":[{"image":"b","name":"init"}],"tolerations":[{"key":"t"}],"volumes":[{"emptyDir":{},"name":"d"},{"emptyDir":{},"name":"e"}]}},"updateStrategy":{"rollingUpdate":{"partition":0},"type":"RollingUpdate"},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}]}}},{"kind":"Pod","base":"pod","patch":{"spec":{"containers":[{"name":"new","env":[{"name":"E","$patch":"delete"},{"name":"F","value":"1"}],"securityContext":{"$patch":"replace","privileged":true}}]}},"want":{"apiVersion":"v1","kind":"Pod","metadata":{"finalizers":["a"],"name":"p"},"spec":{"containers":[{"env":[{"name":"E"},{"name":"F","value":"1"}],"name":"new","securityContext":{"privileged":true}},{"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"image":"i1","name":"c1","ports":[{"containerPort":80}],"volumeMounts":[{"mountPath":"/data","name":"d"}]},{"image":"i2","name":"c2"}],"tolerations":[{"key":"k1"}],"volumes":[{"emptyDir":{},"name":"v1"}]}}},{"kind":"StatefulSet","base":"sts","patch":{"spec":{"newthing":{"inner":{"$patch":"replace","x":1},"y":2}}},"want":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"annotations":{"x":"y"},"labels":{"a":"1"},"name":"s"},"spec":{"newthing":{"y":2},"replicas":1,"selector":{"matchLabels":{"app":"c"}},"serviceName":"s","template":{"metadata":{"labels":{"app":"c"}},"spec":{"containers":[{"args":["a","b"],"env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}],"image":"c:3","name":"cassandra","ports":[{"containerPort":9042,"name":"cql"},{"containerPort":7000,"name":"gossip"}]},{"image":"s:1","name":"sidecar"}],"initContainers":[{"image":"b","name":"init"}],"tolerations":[{"key":"t"}],"volumes":[{"emptyDir":{},"name":"d"},{"emptyDir":{},"name":"e"}]}},"updateStrategy":{"rollingUpdate":{"partition":0},"type":"RollingUpdate"},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}]}}},{"kind":"StatefulSet","base":"sts","patch":{"spec":{"template":{"spec":{"containers":[{"name":"cassandra","env":[{"name":"X","value":null,"valueFrom":{"fieldRef":{"fieldPath":"a"}}}]}]}}}},"want":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"annotations":{"x":"y"},"labels":{"a":"1"},"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"c"}},"serviceName":"s","template":{"metadata":{"labels":{"app":"c"}},"spec":{"containers":[{"args":["a","b"],"env":[{"name":"X","valueFrom":{"fieldRef":{"fieldPath":"a"}}},{"name":"Y","value":"2"}],"image":"c:3","name":"cassandra","ports":[{"containerPort":9042,"name":"cql"},{"containerPort":7000,"name":"gossip"}]},{"image":"s:1","name":"sidecar"}],"initContainers":[{"image":"b","name":"init"}],"tolerations":[{"key":"t"}],"volumes":[{"emptyDir":{},"name":"d"},{"emptyDir":{},"name":"e"}]}},"updateStrategy":{"rollingUpdate":{"partition":0},"type":"RollingUpdate"},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}]}}},{"kind":"StatefulSet","base":"sts","patch":{"spec":{"template":{"spec":{"containers":[{"name":"cassandra","env":[{"$patch":"replace"},{"name":"Q","value":"1"}]}]}}}},"want":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"annotations":{"x":"y"},"labels":{"a":"1"},"name":"s"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"c"}},"serviceName":"s","template":{"metadata":{"labels":{"app":"c"}},"spec":{"containers":[{"args":["a","b"],"env":[{"name":"Q","value":"1"}],"image":"c:3","name":"cassandra","ports":[{"containerPort":9042,"name":"cql"},{"containerPort":7000,"name":"gossip"}]},{"image":"s:1","name":"sidecar"}],"initContainers":[{"image":"b","name":"init"}],"tolerations":[{"key":"t"}],"volumes":[{"emptyDir":{},"name":"d"},{"emptyDir":{},"name":"e"}]}},"updateStrategy":{"rollingUpdate":{"partition":0},"type":"RollingUpdate"},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1Gi"}}}}]}}}]}"#;

    #[test]
    fn smp_matches_kubectl_on_recorded_cases() {
        let fixture: Value = serde_json::from_str(KUBECTL_SMP_CASES).unwrap();
        let cases = fixture["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 16);
        for (i, case) in cases.iter().enumerate() {
            let base = &fixture["bases"][case["base"].as_str().unwrap()];
            let kind = case["kind"].as_str().unwrap();
            let got = strategic_merge_patch(base, &case["patch"], kind).unwrap();
            assert_eq!(got, case["want"], "case {i}: {}", case["patch"]);
        }
    }

    #[test]
    fn smp_refuses_merge_directives_like_kube() {
        let live =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c"}]}});
        assert!(matches!(
            strategic_merge_patch(&live, &json!({"metadata": {"labels": {"$patch": "merge", "z": "1"}}}), "Pod"),
            Err(PatchError::BadRequest(m)) if m.starts_with("unknown patch type: merge in map")
        ));
        assert_eq!(
            strategic_merge_patch(
                &live,
                &json!({"spec": {"containers": [{"name": "c", "$patch": "merge"}]}}),
                "Pod"
            ),
            Err(PatchError::BadRequest(
                "merging lists cannot yet be specified in the patch".into()
            ))
        );
    }

    #[test]
    fn merge_key_table_covers_built_in_paths() {
        let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            list_strategy("Pod", &p("spec.containers")),
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(
            list_strategy("Pod", &p("spec.containers.ports")),
            ListStrategy::MergeByKey("containerPort")
        );
        assert_eq!(
            list_strategy("StatefulSet", &p("spec.template.spec.initContainers.env")),
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(
            list_strategy("CronJob", &p("spec.jobTemplate.spec.template.spec.volumes")),
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(
            list_strategy("StatefulSet", &p("spec.volumeClaimTemplates")),
            ListStrategy::Replace
        );
        assert_eq!(
            list_strategy("Pod", &p("spec.tolerations")),
            ListStrategy::Replace
        );
        assert_eq!(
            list_strategy("Secret", &p("metadata.ownerReferences")),
            ListStrategy::MergeByKey("uid")
        );
        assert_eq!(
            list_strategy("Service", &p("spec.ports")),
            ListStrategy::MergeByKey("port")
        );
        assert_eq!(
            list_strategy("ServiceAccount", &p("secrets")),
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(
            list_strategy("ConfigMap", &p("spec.containers")),
            ListStrategy::Replace
        );
    }

    // ---- fieldsV1 ----

    #[test]
    fn fields_v1_round_trips_and_reads_kube_list_keys() {
        let set = field_set(&cc(
            json!({"image": "c:3", "nodes": 3, "topology": {"dc": [{"name": "dc1"}]}}),
        ));
        let enc = encode_fields_v1(&set);
        assert_eq!(
            enc,
            json!({"f:spec": {"f:image": {}, "f:nodes": {}, "f:topology": {"f:dc": {}}}})
        );
        assert_eq!(decode_fields_v1(&enc), set);
        let kube = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}}}}});
        let decoded = decode_fields_v1(&kube);
        let paths: Vec<String> = decoded.iter().map(|p| path_string(p)).collect();
        assert_eq!(
            paths,
            [
                ".metadata.labels",
                ".metadata.labels.app",
                ".spec.containers"
            ]
        );
    }

    #[test]
    fn field_sets_skip_server_owned_metadata_but_own_label_keys() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n", "uid": "u",
            "resourceVersion": "1", "labels": {"a": "1", "b": "2"}, "annotations": {"k": "v"}}, "data": {"x": "y"}});
        let paths: Vec<String> = field_set(&obj).iter().map(|p| path_string(p)).collect();
        assert_eq!(
            paths,
            [
                ".data.x",
                ".metadata.annotations.k",
                ".metadata.labels.a",
                ".metadata.labels.b"
            ]
        );
    }

    // ---- server-side apply ----

    #[test]
    fn apply_creates_the_object_with_one_apply_entry() {
        let out = apply(
            None,
            cc(json!({"image": "c:3", "nodes": 3})),
            "mc",
            false,
            T1,
        )
        .unwrap();
        assert_eq!(out["spec"], json!({"image": "c:3", "nodes": 3}));
        assert_eq!(out["metadata"]["name"], "cc");
        let mf = out["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 1);
        assert_eq!(
            mf[0],
            json!({"manager": "mc", "operation": "Apply", "apiVersion": "db.orange.com/v2", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:image": {}, "f:nodes": {}}}})
        );
    }

    #[test]
    fn reapplying_a_smaller_config_removes_dropped_fields() {
        let v1 = apply(
            None,
            cc(json!({"image": "c:3", "nodes": 3, "extra": {"a": 1}})),
            "mc",
            false,
            T1,
        )
        .unwrap();
        let v2 = apply(Some(&v1), cc(json!({"image": "c:3"})), "mc", false, T2).unwrap();
        assert_eq!(v2["spec"], json!({"image": "c:3"}));
        assert_eq!(
            entry(&v2, "mc").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:image": {}}})
        );
        assert_eq!(entry(&v2, "mc").unwrap()["time"], T2);
    }

    #[test]
    fn dropped_labels_are_removed_and_empty_maps_cleaned() {
        let mut cfg = cc(json!({"image": "c:3"}));
        cfg["metadata"]["labels"] = json!({"team": "db"});
        let v1 = apply(None, cfg, "mc", false, T1).unwrap();
        assert_eq!(v1["metadata"]["labels"]["team"], "db");
        let v2 = apply(Some(&v1), cc(json!({"image": "c:3"})), "mc", false, T2).unwrap();
        assert!(v2["metadata"].get("labels").is_none(), "{v2}");
        assert_eq!(v2["metadata"]["name"], "cc");
    }

    #[test]
    fn another_managers_field_survives_an_apply_that_drops_it() {
        let v1 = apply(
            None,
            cc(json!({"image": "c:3", "nodes": 3})),
            "mc",
            false,
            T1,
        )
        .unwrap();
        // another manager applies the same nodes value: shared ownership, no conflict
        let v2 = apply(Some(&v1), cc(json!({"nodes": 3})), "other", false, T2).unwrap();
        assert!(entry(&v2, "other").is_some());
        let v3 = apply(Some(&v2), cc(json!({"image": "c:3"})), "mc", false, T3).unwrap();
        assert_eq!(v3["spec"], json!({"image": "c:3", "nodes": 3}));
        assert_eq!(
            entry(&v3, "mc").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:image": {}}})
        );
        assert_eq!(
            entry(&v3, "other").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:nodes": {}}})
        );
    }

    #[test]
    fn fields_set_by_updates_survive_an_apply_that_never_owned_them() {
        let v1 = apply(None, cc(json!({"image": "c:3"})), "mc", false, T1).unwrap();
        let mut v2 = v1.clone();
        v2["spec"]["paused"] = json!(true);
        track_update(Some(&v1), &mut v2, "kubectl-patch", None, T2);
        let v3 = apply(Some(&v2), cc(json!({"image": "c:4"})), "mc", false, T3).unwrap();
        assert_eq!(v3["spec"], json!({"image": "c:4", "paused": true}));
    }

    #[test]
    fn conflicting_apply_fails_without_force_with_kubes_message() {
        let v1 = apply(
            None,
            cc(json!({"image": "c:3", "nodes": 3})),
            "mc",
            false,
            T1,
        )
        .unwrap();
        let err = apply(Some(&v1), cc(json!({"image": "c:4"})), "other", false, T2).unwrap_err();
        assert_eq!(
            err,
            PatchError::Conflict {
                message: "Apply failed with 1 conflict: conflict with \"mc\": .spec.image".into()
            }
        );
        let err = apply(
            Some(&v1),
            cc(json!({"image": "c:4", "nodes": 5})),
            "other",
            false,
            T2,
        )
        .unwrap_err();
        assert_eq!(err, PatchError::Conflict {
            message: "Apply failed with 2 conflicts: conflicts with \"mc\":\n- .spec.image\n- .spec.nodes".into()
        });
    }

    #[test]
    fn conflict_with_an_updater_names_its_api_version() {
        let v1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
        let mut created = v1.clone();
        track_update(None, &mut created, "kubectl-client-side-apply", None, T1);
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "2"}});
        let err = apply(Some(&created), cfg, "kubectl", false, T2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.a"
        );
        assert_eq!(
            conflict_causes(&err.to_string()),
            vec![
                json!({"type": "FieldManagerConflict", "message": "conflict with \"kubectl-client-side-apply\" using v1", "field": ".data.a"})
            ]
        );
    }

    #[test]
    fn conflicts_with_several_managers_are_grouped_and_sorted() {
        let v1 = apply(None, cc(json!({"b": 1})), "zeta", false, T1).unwrap();
        let v2 = apply(Some(&v1), cc(json!({"a": 1})), "alpha", false, T2).unwrap();
        let err = apply(Some(&v2), cc(json!({"a": 2, "b": 2})), "me", false, T3).unwrap_err();
        let msg = err.to_string();
        assert_eq!(
            msg,
            "Apply failed with 2 conflicts: conflicts with \"alpha\":\n- .spec.a\nconflicts with \"zeta\":\n- .spec.b"
        );
        assert_eq!(conflict_causes(&msg).len(), 2);
        assert_eq!(conflict_causes(&msg)[1]["field"], ".spec.b");
    }

    #[test]
    fn forced_apply_succeeds_and_transfers_ownership() {
        let v1 = apply(
            None,
            cc(json!({"image": "c:3", "nodes": 3})),
            "mc",
            false,
            T1,
        )
        .unwrap();
        let v2 = apply(Some(&v1), cc(json!({"image": "c:4"})), "other", true, T2).unwrap();
        assert_eq!(v2["spec"], json!({"image": "c:4", "nodes": 3}));
        assert_eq!(
            entry(&v2, "mc").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:nodes": {}}})
        );
        assert_eq!(
            entry(&v2, "other").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:image": {}}})
        );
        // the old owner now conflicts in turn
        assert!(matches!(
            apply(
                Some(&v2),
                cc(json!({"image": "c:3", "nodes": 3})),
                "mc",
                false,
                T3
            ),
            Err(PatchError::Conflict { .. })
        ));
    }

    #[test]
    fn same_value_applied_by_two_managers_is_shared_without_conflict() {
        let v1 = apply(None, cc(json!({"image": "c:3"})), "mc", false, T1).unwrap();
        let v2 = apply(Some(&v1), cc(json!({"image": "c:3"})), "other", false, T2).unwrap();
        assert_eq!(
            entry(&v2, "mc").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:image": {}}})
        );
        assert_eq!(
            entry(&v2, "other").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:image": {}}})
        );
        // dropping it from one manager keeps the value: the other still owns it
        let v3 = apply(Some(&v2), json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster", "metadata": {"name": "cc", "namespace": "ns"}}), "mc", false, T3).unwrap();
        assert_eq!(v3["spec"]["image"], "c:3");
        assert!(
            entry(&v3, "mc").is_none(),
            "an empty manager entry is dropped"
        );
    }

    #[test]
    fn no_op_apply_leaves_the_object_identical() {
        let mut v1 = apply(
            None,
            cc(json!({"image": "c:3", "nodes": 3})),
            "mc",
            false,
            T1,
        )
        .unwrap();
        v1["metadata"]["resourceVersion"] = json!("7");
        v1["metadata"]["uid"] = json!("u-1");
        v1["metadata"]["creationTimestamp"] = json!(T1);
        let mut cfg = cc(json!({"image": "c:3", "nodes": 3}));
        cfg["metadata"]["managedFields"] = json!([{"manager": "spoof"}]);
        let v2 = apply(Some(&v1), cfg, "mc", false, T3).unwrap();
        assert_eq!(
            serde_json::to_string(&v2).unwrap(),
            serde_json::to_string(&v1).unwrap()
        );
    }

    #[test]
    fn apply_keeps_server_metadata_of_the_live_object() {
        let mut v1 = apply(None, cc(json!({"image": "c:3"})), "mc", false, T1).unwrap();
        v1["metadata"]["uid"] = json!("u-1");
        v1["status"] = json!({"phase": "Running"});
        let mut cfg = cc(json!({"image": "c:4"}));
        cfg["metadata"]["uid"] = json!("spoofed");
        let v2 = apply(Some(&v1), cfg, "mc", false, T2).unwrap();
        assert_eq!(v2["metadata"]["uid"], "u-1");
        assert_eq!(v2["status"]["phase"], "Running");
        assert_eq!(v2["spec"]["image"], "c:4");
    }

    #[test]
    fn applies_to_status_subresource_are_separate_managers() {
        let v1 = apply(None, cc(json!({"image": "c:3"})), "mc", false, T1).unwrap();
        let status_cfg = json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster", "metadata": {"name": "cc", "namespace": "ns"}, "status": {"phase": "Running"}});
        let v2 = server_side_apply(
            Some(&v1),
            &status_cfg,
            &ApplyOptions {
                manager: "mc",
                force: false,
                subresource: Some("status"),
                now: T2,
            },
        )
        .unwrap();
        let mf = v2["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 2);
        assert_eq!(mf[1]["subresource"], "status");
        assert_eq!(mf[1]["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
        assert_eq!(v2["spec"]["image"], "c:3");
    }

    #[test]
    fn conflict_names_the_subresource_of_the_owner() {
        let v1 = apply(None, cc(json!({"image": "c:3"})), "mc", false, T1).unwrap();
        let mut v2 = v1.clone();
        v2["status"] = json!({"phase": "Running"});
        track_update(Some(&v1), &mut v2, "casskop", Some("status"), T2);
        let mut cfg = cc(json!({"image": "c:3"}));
        cfg["status"] = json!({"phase": "Pending"});
        let err = apply(Some(&v2), cfg, "mc", false, T3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"casskop\" with subresource \"status\" using db.orange.com/v2: .status.phase"
        );
    }

    #[test]
    fn lists_are_atomic_for_ownership() {
        let v1 = apply(
            None,
            cc(json!({"topology": {"dc": [{"name": "dc1"}]}})),
            "mc",
            false,
            T1,
        )
        .unwrap();
        let err = apply(
            Some(&v1),
            cc(json!({"topology": {"dc": [{"name": "dc1"}, {"name": "dc2"}]}})),
            "other",
            false,
            T2,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"mc\": .spec.topology.dc"
        );
    }

    #[test]
    fn apply_rejects_non_objects() {
        assert!(matches!(
            apply(None, json!([1]), "mc", false, T1),
            Err(PatchError::BadRequest(_))
        ));
    }

    // ---- updates ----

    #[test]
    fn create_gives_the_creator_every_field() {
        let mut obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "1"}}, "type": "Opaque", "data": {"k": "dg=="}});
        track_update(None, &mut obj, "kubectl-create", None, T1);
        let mf = obj["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 1);
        assert_eq!(
            mf[0],
            json!({"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}, "f:type": {}}})
        );
    }

    #[test]
    fn update_transfers_ownership_of_changed_fields() {
        let v1 = apply(
            None,
            cc(json!({"image": "c:3", "nodes": 3})),
            "mc",
            false,
            T1,
        )
        .unwrap();
        let mut v2 = v1.clone();
        v2["spec"]["image"] = json!("c:4");
        track_update(Some(&v1), &mut v2, "kubectl-edit", None, T2);
        assert_eq!(
            entry(&v2, "mc").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:nodes": {}}})
        );
        let edit = entry(&v2, "kubectl-edit").unwrap();
        assert_eq!(edit["operation"], "Update");
        assert_eq!(edit["fieldsV1"], json!({"f:spec": {"f:image": {}}}));
        // the applier now conflicts on the field the updater took
        let err = apply(
            Some(&v2),
            cc(json!({"image": "c:3", "nodes": 3})),
            "mc",
            false,
            T3,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using db.orange.com/v2: .spec.image"
        );
    }

    #[test]
    fn update_without_changes_keeps_managed_fields_and_times() {
        let v1 = apply(None, cc(json!({"image": "c:3"})), "mc", false, T1).unwrap();
        let mut v2 = v1.clone();
        v2["metadata"]["resourceVersion"] = json!("9");
        track_update(Some(&v1), &mut v2, "kubectl-edit", None, T2);
        assert_eq!(
            v2["metadata"]["managedFields"],
            v1["metadata"]["managedFields"]
        );
    }

    #[test]
    fn update_removing_a_field_drops_it_from_every_owner_and_empty_entries() {
        let v1 = apply(None, cc(json!({"image": "c:3"})), "mc", false, T1).unwrap();
        let mut v2 = v1.clone();
        v2["spec"].as_object_mut().unwrap().remove("image");
        v2["spec"]["nodes"] = json!(1);
        track_update(Some(&v1), &mut v2, "kubectl-patch", None, T2);
        assert!(entry(&v2, "mc").is_none());
        assert_eq!(
            entry(&v2, "kubectl-patch").unwrap()["fieldsV1"],
            json!({"f:spec": {"f:nodes": {}}})
        );
    }

    #[test]
    fn repeated_updates_by_one_manager_merge_into_one_entry() {
        let mut v1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
        track_update(None, &mut v1, "m", None, T1);
        let mut v2 = v1.clone();
        v2["data"]["b"] = json!("2");
        track_update(Some(&v1), &mut v2, "m", None, T2);
        let mf = v2["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 1);
        assert_eq!(mf[0]["fieldsV1"], json!({"f:data": {"f:a": {}, "f:b": {}}}));
        assert_eq!(mf[0]["time"], T2);
    }

    #[test]
    fn client_sent_managed_fields_are_honoured_and_can_be_reset() {
        let v1 = apply(None, cc(json!({"image": "c:3"})), "mc", false, T1).unwrap();
        // an update carrying no managedFields keeps the live ones
        let mut plain = v1.clone();
        plain["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        track_update(Some(&v1), &mut plain, "kubectl-edit", None, T2);
        assert_eq!(
            plain["metadata"]["managedFields"],
            v1["metadata"]["managedFields"]
        );
        // [{}] resets ownership; only this write's changes are recorded afterwards
        let mut reset = v1.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        track_update(Some(&v1), &mut reset, "kubectl-edit", None, T2);
        assert!(reset["metadata"].get("managedFields").is_none(), "{reset}");
        // a status write cannot rewrite managedFields
        let mut status = v1.clone();
        status["metadata"]["managedFields"] = json!([{}]);
        status["status"] = json!({"phase": "Running"});
        track_update(Some(&v1), &mut status, "casskop", Some("status"), T2);
        assert!(entry(&status, "mc").is_some());
        assert_eq!(entry(&status, "casskop").unwrap()["subresource"], "status");
    }

    #[test]
    fn duplicate_entries_sent_by_a_client_are_merged() {
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "m", "operation": "Update", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "m", "operation": "Update", "apiVersion": "v1", "time": T2, "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:b": {}}}}]}});
        let entries = decode_managed_fields(&obj);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].fields.len(), 2);
        assert_eq!(entries[0].time.as_deref(), Some(T2));
    }

    #[test]
    fn managed_fields_are_sorted_apply_before_update_then_by_time() {
        let v1 = apply(None, cc(json!({"a": 1})), "zz", false, T2).unwrap();
        let mut v2 = v1.clone();
        v2["spec"]["b"] = json!(1);
        track_update(Some(&v1), &mut v2, "aa", None, T1);
        let v3 = apply(Some(&v2), cc(json!({"c": 1})), "mm", false, T1).unwrap();
        let order: Vec<&str> = v3["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["mm", "zz", "aa"]);
    }
}
