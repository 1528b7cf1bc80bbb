//! One resource request dispatched by method and subresource: get, create, update, patch, delete, deletecollection, list/watch, scale, exec, and the object as the client asked to see it.
use std::sync::Arc;

use http::{Method, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::cluster::ClusterInner;
use crate::errors::ApiError;
use crate::exec;
use crate::http::{Body, bytes_response, json_response, to_yaml};
use crate::kubelet::logs::LogQuery;
use crate::objects::{self, Ctx, DeleteOpts, Managed};
use crate::rbac::UserInfo;
use crate::resources::ResourceDef;
use crate::schema::FieldValidation;

use super::request::{
    Audit, Out, Query, ResReq, content_type, decode_object, default_manager, dry_run, negotiate,
    parse_json, read_body,
};
use super::virtual_objects::{token_request, virtual_create};
use super::{collection, patch, scale};

/// The object as served at `version` (CRDs may serve several versions of one stored object).
fn present(obj: &Arc<Value>, def: &ResourceDef, version: &str) -> Arc<Value> {
    let want = def.api_version(version);
    if obj["apiVersion"].as_str() == Some(want.as_str()) {
        return obj.clone();
    }
    let mut o = (**obj).clone();
    o["apiVersion"] = Value::String(want);
    Arc::new(o)
}

fn field_validation(q: &Query) -> Result<FieldValidation, ApiError> {
    FieldValidation::from_query(q.get("fieldValidation").map(String::as_str))
}

/// Adds one `Warning: 299 - "text"` header per warning, as kube-apiserver does.
fn with_warnings(mut resp: Response<Body>, warnings: Vec<String>) -> Response<Body> {
    for w in warnings {
        let quoted = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = http::HeaderValue::from_str(&quoted) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}

fn partial_meta(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

fn object_response(
    code: u16,
    obj: &Arc<Value>,
    out: &Out,
    def: &ResourceDef,
    version: &str,
) -> Response<Body> {
    let obj = present(obj, def, version);
    match out {
        Out::Json => bytes_response(
            code,
            "application/json",
            serde_json::to_vec(&*obj).unwrap_or_default(),
        ),
        Out::Yaml => bytes_response(code, "application/yaml", to_yaml(&obj)),
        Out::Meta => json_response(code, &partial_meta(&obj)),
        Out::Table(inc) => {
            let t = crate::table::render_table(
                std::slice::from_ref(&*obj),
                &def.columns_for(version),
                &json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
                inc,
            );
            json_response(code, &t)
        }
    }
}

fn redact(v: &Value) -> Value {
    let mut v = v.clone();
    if v["kind"] == "Secret" && v["data"]["token"].is_string() {
        v["data"]["token"] = json!("<redacted>");
    }
    if v["kind"] == "TokenRequest" && v["status"]["token"].is_string() {
        v["status"]["token"] = json!("<redacted>");
    }
    v
}

pub(super) async fn resource(
    c: &Arc<ClusterInner>,
    parts: http::request::Parts,
    body: Incoming,
    q: Query,
    r: ResReq,
    user: &UserInfo,
    a: &mut Audit,
) -> Result<Response<Body>, ApiError> {
    let reg = c.store.registry();
    let def = reg
        .find(&r.group, &r.version, &r.resource)
        .ok_or_else(ApiError::no_route)?;
    if let Some(s) = &r.sub
        && !def.has_subresource(s)
    {
        return Err(ApiError::no_route());
    }
    let is_ns_resource = def.group.is_empty() && def.plural == "namespaces";
    if def.namespaced
        && r.namespace.is_none()
        && (r.name.is_some() || parts.method == Method::POST || parts.method == Method::DELETE)
    {
        return Err(ApiError::no_route());
    }
    if !def.namespaced && r.namespace.is_some() && !is_ns_resource {
        return Err(ApiError::no_route());
    }
    if def.virtual_create && (parts.method != Method::POST || r.name.is_some()) {
        return Err(ApiError::method_not_allowed());
    }
    let ns = r.namespace.clone().unwrap_or_default();
    let out = negotiate(&parts.headers, &q)?;
    let version = r.version.clone();
    let sub = r.sub.as_deref();
    let method = parts.method.clone();
    match (&method, r.name.as_deref(), sub) {
        (&Method::GET | &Method::POST, Some(name), Some("exec"))
            if def.group.is_empty() && def.plural == "pods" =>
        {
            exec::exec(&c.exec, parts, &ns, name, user).await
        }
        (&Method::GET, Some(name), Some("log"))
            if def.group.is_empty() && def.plural == "pods" && c.pod_logs.enabled() =>
        {
            let pod = c
                .store
                .lock()
                .get(&def.key(), &ns, name)
                .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
            c.pod_logs.serve(&pod, &LogQuery::from_query(&q)?)
        }
        (&Method::GET, Some(_), Some("exec" | "log")) | (&Method::POST, Some(_), Some("exec")) => {
            Err(ApiError::bad_request(format!(
                "kubesim ({}): pods/{} is not supported yet",
                c.name,
                sub.unwrap_or("")
            )))
        }
        (&Method::GET | &Method::HEAD, Some(name), Some("scale")) => {
            Ok(json_response(200, &scale::get(c, &def, &ns, name)?))
        }
        (&Method::PUT | &Method::PATCH, Some(name), Some("scale")) => {
            let bytes = read_body(&parts.headers, body).await?;
            let ct = content_type(&parts.headers);
            let patch_ct = (method == Method::PATCH).then_some(ct.as_str());
            let manager = q
                .get("fieldManager")
                .cloned()
                .unwrap_or_else(|| default_manager(&parts.headers));
            let scale = scale::write(c, &def, &version, &ns, name, patch_ct, &bytes, &q, manager)?;
            a.object = Some(scale.clone());
            Ok(json_response(200, &scale))
        }
        (&Method::GET | &Method::HEAD, Some(name), None | Some("status")) => {
            // The storage layer parses a get's resourceVersion too (500 on a non-integer, as for lists).
            if let Some(rv) = q.get("resourceVersion").filter(|s| !s.is_empty()) {
                collection::parse_rv(rv)?;
            }
            let obj = c
                .store
                .lock()
                .get(&def.key(), &ns, name)
                .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
            Ok(object_response(200, &obj, &out, &def, &version))
        }
        (&Method::GET | &Method::HEAD, None, None) if r.watch => {
            collection::watch(c, &def, &version, r.namespace.as_deref(), &q, out)
        }
        (&Method::GET | &Method::HEAD, None, None) => {
            collection::list(c, &def, &version, r.namespace.as_deref(), &q, &out)
        }
        (&Method::POST, None, None) => {
            let bytes = read_body(&parts.headers, body).await?;
            let obj = decode_object(&parts.headers, &bytes, &def.kind)?;
            if def.virtual_create {
                let resp = virtual_create(c, &def, &version, obj, user)?;
                return Ok(json_response(201, &resp));
            }
            let ctx = Ctx {
                ca_pem: &c.ca_pem,
                manager: q
                    .get("fieldManager")
                    .cloned()
                    .unwrap_or_else(|| default_manager(&parts.headers)),
                dry_run: dry_run(&q, "CreateOptions")?,
                now: objects::now_rfc3339(),
                field_validation: field_validation(&q)?,
                ..Default::default()
            };
            let created = objects::create(&mut c.store.lock(), &def, &version, &ns, obj, &ctx)?;
            a.name = created["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            a.object = Some(redact(&created));
            Ok(with_warnings(
                object_response(201, &created, &out, &def, &version),
                ctx.warnings.into_inner(),
            ))
        }
        (&Method::POST, Some(name), Some("token")) => {
            let bytes = read_body(&parts.headers, body).await?;
            let obj = if bytes.iter().all(u8::is_ascii_whitespace) {
                json!({})
            } else {
                decode_object(&parts.headers, &bytes, "TokenRequest")?
            };
            let resp = token_request(c, &ns, name, obj, dry_run(&q, "CreateOptions")?)?;
            a.object = Some(redact(&resp));
            Ok(json_response(201, &resp))
        }
        (&Method::PUT, Some(name), None | Some("status" | "finalize")) => {
            let bytes = read_body(&parts.headers, body).await?;
            let obj = decode_object(&parts.headers, &bytes, &def.kind)?;
            let ctx = Ctx {
                ca_pem: &c.ca_pem,
                manager: q
                    .get("fieldManager")
                    .cloned()
                    .unwrap_or_else(|| default_manager(&parts.headers)),
                dry_run: dry_run(&q, "UpdateOptions")?,
                now: objects::now_rfc3339(),
                field_validation: field_validation(&q)?,
                ..Default::default()
            };
            let sub = if sub == Some("finalize") { None } else { sub };
            let updated = objects::update(
                &mut c.store.lock(),
                &def,
                &version,
                &ns,
                name,
                obj,
                sub,
                &ctx,
                true,
                Managed::Track,
            )?;
            a.object = Some(redact(&updated));
            Ok(with_warnings(
                object_response(200, &updated, &out, &def, &version),
                ctx.warnings.into_inner(),
            ))
        }
        (&Method::PATCH, Some(name), None | Some("status")) => {
            let bytes = read_body(&parts.headers, body).await?;
            let (code, obj, warnings) = patch::patch(
                c,
                &def,
                &version,
                &ns,
                name,
                sub,
                &parts.headers,
                &bytes,
                &q,
            )?;
            a.object = Some(redact(&obj));
            Ok(with_warnings(
                object_response(code, &obj, &out, &def, &version),
                warnings,
            ))
        }
        (&Method::DELETE, Some(name), None) => {
            let bytes = read_body(&parts.headers, body).await?;
            let opts = delete_opts(&parts.headers, &bytes, &q)?;
            let ctx = Ctx {
                ca_pem: &c.ca_pem,
                manager: String::new(),
                dry_run: opts.dry_run,
                now: objects::now_rfc3339(),
                ..Default::default()
            };
            let obj = objects::delete(&mut c.store.lock(), &def, &ns, name, &ctx, &opts)?;
            a.object = Some(redact(&obj));
            let gone = obj["metadata"]["deletionTimestamp"].is_null();
            if gone && returns_status_on_delete(&def) {
                return Ok(json_response(
                    200,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "group": def.group, "kind": def.plural, "uid": obj["metadata"]["uid"]}}),
                ));
            }
            Ok(object_response(200, &obj, &out, &def, &version))
        }
        (&Method::DELETE, None, None) => {
            let bytes = read_body(&parts.headers, body).await?;
            let opts = delete_opts(&parts.headers, &bytes, &q)?;
            collection::delete_collection(c, &def, &version, r.namespace.as_deref(), &q, &opts)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn returns_status_on_delete(def: &ResourceDef) -> bool {
    !def.custom
        && matches!(
            def.plural.as_str(),
            "secrets"
                | "configmaps"
                | "serviceaccounts"
                | "events"
                | "leases"
                | "roles"
                | "rolebindings"
                | "clusterroles"
                | "clusterrolebindings"
                | "deployments"
                | "replicasets"
                | "services"
                | "endpoints"
        )
}

fn delete_opts(headers: &http::HeaderMap, bytes: &[u8], q: &Query) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        dry_run: dry_run(q, "DeleteOptions")?,
        orphan: q.get("propagationPolicy").is_some_and(|p| p == "Orphan")
            || q.get("orphanDependents").is_some_and(|o| o == "true"),
        grace_period: q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()),
        foreground: q
            .get("propagationPolicy")
            .is_some_and(|p| p == "Foreground"),
        ..Default::default()
    };
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        // client-go's typed clients (Helm's release Secrets) send their DeleteOptions as protobuf.
        let v = match content_type(headers).as_str() {
            "application/vnd.kubernetes.protobuf" => super::proto::decode(bytes)?,
            _ => parse_json(bytes)?,
        };
        if v["propagationPolicy"] == "Foreground" {
            opts.foreground = true;
        }
        if v["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "All"))
        {
            opts.dry_run = true;
        }
        if v["propagationPolicy"] == "Orphan" || v["orphanDependents"] == true {
            opts.orphan = true;
        }
        if let Some(g) = v["gracePeriodSeconds"].as_i64() {
            opts.grace_period = Some(g);
        }
        opts.uid = v["preconditions"]["uid"].as_str().map(String::from);
        opts.resource_version = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
    }
    Ok(opts)
}
