//! Patch semantics (PLACEHOLDER until A2's module lands): merge, JSON, strategic merge, server-side apply.
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum PatchError {
    /// 400 malformed patch
    BadRequest(String),
    /// 422 e.g. JSON-patch test failed / path missing
    Invalid(String),
    /// 409 SSA conflict
    Conflict { message: String },
}

pub fn json_patch(live: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::BadRequest(format!("invalid JSON patch: {e}")))?;
    let mut doc = live.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::Invalid(e.to_string()))?;
    Ok(doc)
}

pub fn merge_patch(live: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::BadRequest(
            "merge patch must be a JSON object".into(),
        ));
    }
    let mut doc = live.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

pub fn strategic_merge_patch(
    live: &Value,
    patch: &Value,
    _kind: &str,
) -> Result<Value, PatchError> {
    merge_patch(live, patch)
}

pub struct ApplyOptions<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub subresource: Option<&'a str>,
    pub now: &'a str,
}

pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    opts: &ApplyOptions,
) -> Result<Value, PatchError> {
    if !applied.is_object() {
        return Err(PatchError::BadRequest(
            "apply body must be an object".into(),
        ));
    }
    let mut out = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut body = applied.clone();
    if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    json_patch::merge(&mut out, &body);
    set_entry(
        &mut out,
        opts.manager,
        "Apply",
        &fields_of(applied),
        opts.subresource,
        opts.now,
    );
    Ok(out)
}

pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let _ = old;
    let fields = fields_of(new);
    set_entry(new, manager, "Update", &fields, subresource, now);
}

fn fields_of(v: &Value) -> Value {
    let mut m = Map::new();
    if let Some(o) = v.as_object() {
        for (k, val) in o {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if k == "metadata" {
                let mut mm = Map::new();
                for key in ["labels", "annotations", "finalizers"] {
                    if let Some(x) = val.get(key) {
                        mm.insert(format!("f:{key}"), fields_of(x));
                    }
                }
                if !mm.is_empty() {
                    m.insert("f:metadata".into(), Value::Object(mm));
                }
                continue;
            }
            m.insert(
                format!("f:{k}"),
                if val.is_object() {
                    fields_of(val)
                } else {
                    Value::Object(Map::new())
                },
            );
        }
    }
    Value::Object(m)
}

fn set_entry(
    obj: &mut Value,
    manager: &str,
    op: &str,
    fields: &Value,
    sub: Option<&str>,
    now: &str,
) {
    let api_version = obj
        .get("apiVersion")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let Some(meta) = obj.as_object_mut().map(|o| {
        o.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()))
    }) else {
        return;
    };
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let list = meta
        .entry("managedFields")
        .or_insert_with(|| Value::Array(vec![]));
    if !list.is_array() {
        *list = Value::Array(vec![]);
    }
    let arr = list.as_array_mut().expect("array");
    arr.retain(|e| {
        !(e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some(op)
            && e.get("subresource").and_then(Value::as_str) == sub)
    });
    let mut e = serde_json::json!({
        "manager": manager, "operation": op, "apiVersion": api_version, "time": now,
        "fieldsType": "FieldsV1", "fieldsV1": fields,
    });
    if let Some(s) = sub {
        e["subresource"] = Value::String(s.to_string());
    }
    arr.push(e);
}
