//! OpenAPI documents: only what kubectl 1.32 asks for. kubectl reads the /openapi/v3 root and each group-version
//! document to learn that PATCH accepts `fieldValidation` (then it validates server-side instead of downloading
//! schemas); without any schema for a kind, `kubectl apply` falls back to its built-in types or JSON merge patch.
use http::Response;
use serde_json::{Map, Value, json};

use crate::http::{Body, bytes_response, json_response};
use crate::resources::{Registry, ResourceDef};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(reg: &Registry, group: &str, version: &str) -> String {
    // Changes whenever the group-version's resources change, so kubectl's cache stays right.
    let mut h: u64 = 1469598103934665603;
    for d in reg
        .defs
        .iter()
        .filter(|d| d.group == group && d.versions.iter().any(|v| v == version))
    {
        for b in d
            .plural
            .bytes()
            .chain(d.kind.bytes())
            .chain([u8::from(d.namespaced)])
        {
            h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
        }
        if let Some(s) = d.schemas.as_ref().and_then(|s| s.raw(version)) {
            for b in s.to_string().bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
            }
        }
    }
    format!("{h:016X}")
}

fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, vs) in reg.groups() {
        for v in vs {
            let p = gv_path(&g, &v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(reg, &g, &v))}),
            );
        }
    }
    json!({"paths": paths})
}

fn params() -> Value {
    json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
    ])
}

fn gv_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&std::sync::Arc<ResourceDef>> = reg
        .defs
        .iter()
        .filter(|d| d.group == group && d.versions.iter().any(|v| v == version))
        .collect();
    if defs.is_empty() {
        return None;
    }
    let prefix = format!("/{}", gv_path(group, version));
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for d in defs {
        if let Some(s) = d.schemas.as_ref().and_then(|s| s.raw(version)) {
            schemas.insert(
                schema_name(group, version, &d.kind),
                crd_component(s, group, version, &d.kind),
            );
        }
        let gvk = json!({"group": group, "version": version, "kind": d.kind});
        let item = if d.virtual_create {
            format!("{prefix}/{}", d.plural)
        } else if d.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", d.plural)
        } else {
            format!("{prefix}/{}/{{name}}", d.plural)
        };
        let op = |id: &str| {
            json!({"operationId": id, "x-kubernetes-action": if id.starts_with("patch") { "patch" } else { "post" },
                "x-kubernetes-group-version-kind": gvk, "parameters": params(),
                "responses": {"200": {"description": "OK"}}})
        };
        let mut entry = Map::new();
        if d.virtual_create {
            entry.insert("post".into(), op(&format!("create{}", d.kind)));
        } else {
            entry.insert("patch".into(), op(&format!("patch{}", d.kind)));
        }
        paths.insert(item.clone(), Value::Object(entry));
        if d.status {
            let mut e = Map::new();
            e.insert("patch".into(), op(&format!("patch{}Status", d.kind)));
            paths.insert(format!("{item}/status"), Value::Object(e));
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

/// `com.orange.db.v2.CassandraCluster`: the reversed group, as kube-apiserver names CRD schemas.
fn schema_name(group: &str, version: &str, kind: &str) -> String {
    let rev: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", rev.join("."))
}

/// A CRD version's schema as kube-apiserver publishes it: tagged with its group-version-kind
/// (how kubectl explain finds it), apiVersion/kind described when the schema leaves them out.
fn crd_component(s: &Value, group: &str, version: &str, kind: &str) -> Value {
    let mut c = s.clone();
    c["x-kubernetes-group-version-kind"] =
        json!([{"group": group, "version": version, "kind": kind}]);
    if !c["properties"].is_object() {
        c["properties"] = json!({});
    }
    let props = &mut c["properties"];
    if props.get("apiVersion").is_none() {
        props["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."});
    }
    if props.get("kind").is_none() {
        props["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."});
    }
    if props.get("metadata").is_none() {
        props["metadata"] = json!({"type": "object", "description": "Standard object's metadata."});
    }
    c
}

/// `/openapi/v2`: a document without definitions. kubectl reads it (as protobuf) when a kind is missing
/// from the v3 documents, e.g. applying an object whose CRD is not installed; finding no schema there it
/// skips client-side validation and reports the missing kind itself, as against a real cluster.
pub fn v2(headers: &http::HeaderMap) -> Response<Body> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("protobuf") {
        // An empty gnostic openapi_v2.Document message encodes as zero bytes.
        return bytes_response(
            200,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            Vec::new(),
        );
    }
    json_response(
        200,
        &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.4"}, "paths": {}, "definitions": {}}),
    )
}

/// None: 404.
pub fn serve(reg: &Registry, path: &str) -> Option<Response<Body>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["openapi", "v3"] => Some(json_response(200, &root(reg))),
        ["openapi", "v3", "api", v] => gv_doc(reg, "", v).map(|d| json_response(200, &d)),
        ["openapi", "v3", "apis", g, v] => gv_doc(reg, g, v).map(|d| json_response(200, &d)),
        _ => None,
    }
}
