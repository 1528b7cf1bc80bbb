//! PATCH: JSON patch, merge patch, strategic merge patch (built-ins only) and server-side apply, on objects and their status.
use std::sync::Arc;

use http::HeaderMap;
use serde_json::Value;

use crate::cluster::ClusterInner;
use crate::errors::ApiError;
use crate::objects::{self, Ctx, Managed};
use crate::patch::{self, ApplyOptions, PatchError};
use crate::resources::ResourceDef;
use crate::schema::{self, FieldValidation};

use super::request::{self, Query};

fn map_err(def: &ResourceDef, name: &str, e: PatchError) -> ApiError {
    match e {
        PatchError::BadRequest(m) => ApiError::bad_request(m),
        // kube-apiserver answers a patch that does not apply with NewGenericServerResponse(422): reason
        // Invalid, empty details, no kind/name (kubectl then prints "The request is invalid: ...").
        PatchError::Invalid(m) => ApiError {
            details: Some(serde_json::json!({})),
            ..ApiError::new(422, "Invalid", m)
        },
        PatchError::Conflict { message } => {
            ApiError::conflict_msg(&def.group, &def.plural, name, message)
        }
    }
}

fn accepted(def: &ResourceDef) -> &'static str {
    if def.custom {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    } else {
        "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
    }
}

/// Returns the HTTP code (201 when apply created the object), the resulting object and the `Warning`s.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    c: &ClusterInner,
    def: &Arc<ResourceDef>,
    version: &str,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    headers: &HeaderMap,
    bytes: &[u8],
    q: &Query,
) -> Result<(u16, Arc<Value>, Vec<String>), ApiError> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let dry_run = request::dry_run(q, "PatchOptions")?;
    let field_validation =
        FieldValidation::from_query(q.get("fieldValidation").map(String::as_str))?;
    let now = objects::now_rfc3339();
    let manager = q.get("fieldManager").cloned().filter(|m| !m.is_empty());
    if ct == "application/apply-patch+yaml" {
        let Some(manager) = manager else {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                "fieldManager",
                "fieldManager: Required value: is required for apply patch",
            ));
        };
        let force = q.get("force").is_some_and(|f| f == "true");
        let mut body = request::parse_yaml(bytes)?;
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the apply configuration must be an object",
            ));
        }
        objects::check_type_meta(def, version, &mut body)?;
        match body["metadata"]["name"].as_str() {
            Some(n) if !n.is_empty() && n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => body["metadata"]["name"] = Value::String(name.into()),
        }
        if def.namespaced {
            body["metadata"]["namespace"] = Value::String(ns.into());
        }
        if let Some(s) = def.schemas.as_ref().and_then(|s| s.version(version)) {
            let undeclared = schema::undeclared(s, &body);
            if !undeclared.is_empty() {
                let av = def.api_version(version);
                return Err(schema::apply_error(&av, &def.kind, ns, name, &undeclared));
            }
        }
        let mut st = c.store.lock();
        let live = st.get(&def.key(), ns, name);
        if live.is_none() && sub.is_some() {
            return Err(ApiError::not_found(&def.group, &def.plural, name));
        }
        // A resourceVersion in the apply configuration is a precondition (optimistic locking).
        if let (Some(rv), Some(l)) = (
            body["metadata"]["resourceVersion"]
                .as_str()
                .filter(|rv| !rv.is_empty()),
            live.as_deref(),
        ) && l["metadata"]["resourceVersion"].as_str() != Some(rv)
        {
            return Err(ApiError::conflict(&def.group, &def.plural, name));
        }
        let opts = ApplyOptions {
            manager: &manager,
            force,
            subresource: sub,
            now: &now,
        };
        let result = patch::server_side_apply(live.as_deref(), &body, &opts)
            .map_err(|e| map_err(def, name, e))?;
        let ctx = Ctx {
            ca_pem: &c.ca_pem,
            manager: String::new(),
            dry_run,
            now: now.clone(),
            field_validation,
            ..Default::default()
        };
        let written = match live {
            None => (
                201,
                objects::create(&mut st, def, version, ns, result, &ctx)?,
            ),
            Some(_) => (
                200,
                objects::update(
                    &mut st,
                    def,
                    version,
                    ns,
                    name,
                    result,
                    sub,
                    &ctx,
                    false,
                    Managed::Keep,
                )?,
            ),
        };
        return Ok((written.0, written.1, ctx.warnings.into_inner()));
    }
    let op: fn(&Value, &Value, &str) -> Result<Value, PatchError> = match ct.as_str() {
        "application/json-patch+json" => |l, p, _| patch::json_patch(l, p),
        "application/merge-patch+json" => |l, p, _| patch::merge_patch(l, p),
        "application/strategic-merge-patch+json" if !def.custom => patch::strategic_merge_patch,
        _ => return Err(ApiError::unsupported_media(accepted(def))),
    };
    let body = request::parse_json(bytes)?;
    if ct == "application/json-patch+json" && !body.is_array() {
        return Err(ApiError::bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        ));
    }
    if ct != "application/json-patch+json" && !body.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: the patch is not a JSON object",
        ));
    }
    let manager = manager.unwrap_or_else(|| {
        let ua = headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let m = ua.split('/').next().unwrap_or("").trim().to_string();
        if m.is_empty() { "unknown".into() } else { m }
    });
    let mut st = c.store.lock();
    let live = st
        .get(&def.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    let new = op(&live, &body, &def.kind).map_err(|e| map_err(def, name, e))?;
    let ctx = Ctx {
        ca_pem: &c.ca_pem,
        manager,
        dry_run,
        now,
        field_validation,
        ..Default::default()
    };
    let updated = objects::update(
        &mut st,
        def,
        version,
        ns,
        name,
        new,
        sub,
        &ctx,
        false,
        Managed::Track,
    )?;
    Ok((200, updated, ctx.warnings.into_inner()))
}
