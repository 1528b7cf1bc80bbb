//! The `scale` subresource of StatefulSets (autoscaling/v1 Scale), as `kubectl scale` uses it.
use std::sync::Arc;

use serde_json::{Value, json};

use crate::cluster::ClusterInner;
use crate::errors::ApiError;
use crate::objects::{self, Ctx, Managed};
use crate::patch;
use crate::resources::ResourceDef;

use super::request::{self, Query};

fn selector(sts: &Value) -> String {
    sts["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub fn scale_of(sts: &Value) -> Value {
    let m = &sts["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": sts["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": sts["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector(sts)},
    })
}

pub fn get(c: &ClusterInner, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
    let sts = c
        .store
        .lock()
        .get(&def.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    Ok(scale_of(&sts))
}

/// PUT (`patch_ct` None, body is a Scale) or PATCH (body is a patch of the Scale).
#[allow(clippy::too_many_arguments)]
pub fn write(
    c: &ClusterInner,
    def: &Arc<ResourceDef>,
    version: &str,
    ns: &str,
    name: &str,
    patch_ct: Option<&str>,
    bytes: &[u8],
    q: &Query,
    manager: String,
) -> Result<Value, ApiError> {
    let options = if patch_ct.is_some() {
        "PatchOptions"
    } else {
        "UpdateOptions"
    };
    let dry_run = request::dry_run(q, options)?;
    let mut st = c.store.lock();
    let sts = st
        .get(&def.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    let current = scale_of(&sts);
    let wanted = match patch_ct {
        None => request::parse_json(bytes)?,
        Some(ct) => {
            let p = request::parse_json(bytes)?;
            let r = match ct {
                "application/json-patch+json" => patch::json_patch(&current, &p),
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    patch::merge_patch(&current, &p)
                }
                _ => {
                    return Err(ApiError::unsupported_media(
                        "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json",
                    ));
                }
            };
            r.map_err(|e| ApiError::bad_request(format!("{e:?}")))?
        }
    };
    if let Some(rv) = wanted["metadata"]["resourceVersion"]
        .as_str()
        .filter(|r| !r.is_empty())
        && Some(rv) != sts["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(&def.group, &def.plural, name));
    }
    let replicas = wanted["spec"]["replicas"]
        .as_i64()
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "autoscaling",
                "Scale",
                name,
                "spec.replicas",
                "spec.replicas: Invalid value: must be greater than or equal to 0",
            )
        })?;
    let mut new = (*sts).clone();
    if !new["spec"].is_object() {
        new["spec"] = json!({});
    }
    new["spec"]["replicas"] = json!(replicas);
    let ctx = Ctx {
        ca_pem: &c.ca_pem,
        manager,
        dry_run,
        now: objects::now_rfc3339(),
        ..Default::default()
    };
    let stored = objects::update(
        &mut st,
        def,
        version,
        ns,
        name,
        new,
        None,
        &ctx,
        false,
        Managed::Track,
    )?;
    Ok(scale_of(&stored))
}
