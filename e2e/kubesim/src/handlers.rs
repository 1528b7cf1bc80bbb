//! HTTP front of a simulated cluster: request parsing, authentication, faults, RBAC, dispatch to verbs, content negotiation, audit.
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::audit::AuditEntry;
use crate::auth;
use crate::errors::ApiError;
use crate::handlers_ops::{self, Ctx, DeleteOpts, Managed};
use crate::rbac::{self, Decision, RequestAttributes, UserInfo};
use crate::resources::ResourceDef;
use crate::server::ClusterInner;
use crate::{discovery, openapi};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;
/// kube-apiserver's request body limit.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed_unsync()
}

pub fn bytes_response(code: u16, ct: &str, b: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(b));
    *r.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = header::HeaderValue::from_str(ct) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    bytes_response(
        code,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.status_json());
    if e.code == 429
        && let Ok(v) = header::HeaderValue::from_str("1")
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// What the audit log records for a request.
#[derive(Default)]
pub struct Audit {
    pub user: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub object: Option<Value>,
}

pub type Query = HashMap<String, String>;

fn parse_query(uri: &http::Uri) -> Query {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// A resource request, parsed from the URL as kube-apiserver's RequestInfoFactory does.
#[derive(Debug, Default, Clone)]
pub struct ResReq {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub watch: bool,
}

/// None: a non-resource path (discovery, version, openapi, health).
/// Percent-decodes one path segment (e.g. `system%3Adiscovery`); invalid escapes stay as they are.
fn decode_segment(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

fn parse_path(path: &str, q: &Query) -> Option<Result<ResReq, ApiError>> {
    let owned: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    let segs: Vec<&str> = owned.iter().map(String::as_str).collect();
    let (group, version, mut rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => (String::new(), v.to_string(), rest.to_vec()),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => {
            (g.to_string(), v.to_string(), rest.to_vec())
        }
        _ => return None,
    };
    let mut r = ResReq {
        group,
        version,
        ..Default::default()
    };
    if rest[0] == "watch" {
        r.watch = true;
        rest.remove(0);
    }
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        r.watch = true;
    }
    if rest.first() == Some(&"namespaces") && rest.len() >= 2 {
        if rest.len() > 2 && rest[2] != "status" && rest[2] != "finalize" {
            r.namespace = Some(rest[1].to_string());
            rest.drain(0..2);
        } else {
            r.resource = "namespaces".into();
            r.name = Some(rest[1].to_string());
            r.sub = rest.get(2).map(|s| s.to_string());
            return Some(if rest.len() > 3 {
                Err(ApiError::no_route())
            } else {
                Ok(r)
            });
        }
    }
    if rest.is_empty() || rest.len() > 3 {
        return Some(Err(ApiError::no_route()));
    }
    r.resource = rest[0].to_string();
    r.name = rest.get(1).map(|s| s.to_string());
    r.sub = rest.get(2).map(|s| s.to_string());
    Some(Ok(r))
}

fn verb_of(method: &Method, r: &ResReq) -> &'static str {
    match *method {
        Method::GET | Method::HEAD if r.watch => "watch",
        Method::GET | Method::HEAD if r.name.is_some() => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if r.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
}

/// How the client wants objects rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Json,
    Yaml,
    Table(String),
    Meta,
}

fn negotiate(headers: &HeaderMap, q: &Query) -> Result<Out, ApiError> {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
    else {
        return Ok(Out::Json);
    };
    for mt in accept.split(',') {
        let mut parts = mt.split(';').map(str::trim);
        let base = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: HashMap<String, String> = parts
            .filter_map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let json_like = matches!(base.as_str(), "application/json" | "*/*" | "application/*");
        match params.get("as").map(String::as_str) {
            Some("Table") if json_like => {
                let inc = q
                    .get("includeObject")
                    .cloned()
                    .unwrap_or_else(|| "Metadata".into());
                return Ok(Out::Table(inc));
            }
            Some("PartialObjectMetadata") | Some("PartialObjectMetadataList") if json_like => {
                return Ok(Out::Meta);
            }
            Some(_) => continue,
            None => {}
        }
        if json_like {
            return Ok(Out::Json);
        }
        if base == "application/yaml" {
            return Ok(Out::Yaml);
        }
    }
    Err(ApiError::not_acceptable())
}

pub async fn handle(c: Arc<ClusterInner>, req: Request<Incoming>) -> Response<Body> {
    use futures::FutureExt;
    let mut a = Audit::default();
    let routed = std::panic::AssertUnwindSafe(route(&c, req, &mut a))
        .catch_unwind()
        .await;
    let resp = match routed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&ApiError::internal(format!(
            "kubesim ({}) failed while handling the request",
            c.name
        ))),
    };
    let code = resp.status().as_u16();
    c.audit.record(AuditEntry {
        seq: 0,
        time_us: 0,
        cluster: c.name.clone(),
        user: a.user,
        verb: a.verb,
        group: a.group,
        resource: a.resource,
        subresource: a.subresource,
        namespace: a.namespace,
        name: a.name,
        code,
        object: if code < 300 { a.object } else { None },
    });
    resp
}

async fn route(
    c: &Arc<ClusterInner>,
    req: Request<Incoming>,
    a: &mut Audit,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let q = parse_query(&parts.uri);
    let parsed = parse_path(&path, &q);
    match &parsed {
        Some(Ok(r)) => {
            a.verb = verb_of(&parts.method, r).into();
            a.group = r.group.clone();
            a.resource = r.resource.clone();
            a.subresource = r.sub.clone().unwrap_or_default();
            a.namespace = r.namespace.clone().unwrap_or_default();
            a.name = r.name.clone().unwrap_or_default();
        }
        _ => {
            a.verb = parts.method.as_str().to_ascii_lowercase();
            a.resource = path.clone();
        }
    }
    let token = auth::bearer(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let user = {
        let st = c.store.lock();
        token
            .ok_or_else(ApiError::unauthorized)
            .and_then(|t| auth::authenticate(&st, t))?
    };
    let user = impersonate(c, user, &parts.headers)?;
    a.user = user.username.clone();
    let lat = c.faults.latency();
    if !lat.is_zero() {
        tokio::time::sleep(lat).await;
    }
    if let Some(code) = c.faults.pick_error() {
        return Err(ApiError::injected(code));
    }
    let admin = user.groups.iter().any(|g| g == "system:masters");
    match parsed {
        None => {
            if !admin {
                authorize(
                    c,
                    &user,
                    &RequestAttributes {
                        verb: a.verb.clone(),
                        path: path.clone(),
                        resource_request: false,
                        ..Default::default()
                    },
                )?;
            }
            non_resource(c, &parts.method, &path, &parts.headers)
        }
        Some(Err(e)) => Err(e),
        Some(Ok(r)) => {
            if !admin {
                let namespace = if r.resource == "namespaces" && r.group.is_empty() {
                    r.name.clone().unwrap_or_default()
                } else {
                    r.namespace.clone().unwrap_or_default()
                };
                authorize(
                    c,
                    &user,
                    &RequestAttributes {
                        verb: a.verb.clone(),
                        api_group: r.group.clone(),
                        resource: r.resource.clone(),
                        subresource: r.sub.clone().unwrap_or_default(),
                        namespace,
                        name: r.name.clone().unwrap_or_default(),
                        path: path.clone(),
                        resource_request: true,
                    },
                )?;
            }
            resource(c, parts, body, q, r, &user, a).await
        }
    }
}

/// `Impersonate-User` / `Impersonate-Group` (kubectl --as / --as-group): the caller needs the
/// `impersonate` verb on users (serviceaccounts for system:serviceaccount:NS:NAME) and groups; the
/// request then runs as that identity, with the groups kube-apiserver's impersonation filter adds.
fn impersonate(
    c: &ClusterInner,
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let (as_user, as_groups) = (values("impersonate-user"), values("impersonate-group"));
    let Some(username) = as_user.first().cloned() else {
        if as_groups.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::bad_request(format!(
            "requested {as_groups:?} without impersonating a user"
        )));
    };
    let check = |resource: &str, namespace: &str, name: &str| {
        authorize(
            c,
            &user,
            &RequestAttributes {
                verb: "impersonate".into(),
                resource: resource.into(),
                namespace: namespace.into(),
                name: name.into(),
                resource_request: true,
                ..Default::default()
            },
        )
    };
    let sa = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'));
    match sa {
        Some((ns, name)) => check("serviceaccounts", ns, name)?,
        None => check("users", "", &username)?,
    }
    for g in &as_groups {
        check("groups", "", g)?;
    }
    let mut groups = as_groups;
    if let Some((ns, _)) = sa
        && groups.is_empty()
    {
        groups = vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ];
    }
    if username != "system:anonymous" && !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    Ok(UserInfo { username, groups })
}

fn authorize(c: &ClusterInner, user: &UserInfo, attrs: &RequestAttributes) -> Result<(), ApiError> {
    let snapshot = c.store.lock().rbac.clone();
    match rbac::authorize(user, attrs, &snapshot) {
        Decision::Allow => Ok(()),
        Decision::Deny => Err(ApiError::forbidden(
            rbac::forbidden_message(user, attrs),
            &attrs.api_group,
            &attrs.resource,
            &attrs.name,
        )),
    }
}

fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|acc| {
            acc.split(',').any(|mt| {
                let mt = mt.replace(' ', "");
                mt.contains("as=APIGroupDiscoveryList")
                    && mt.contains("v=v2")
                    && !mt.contains("v=v2beta1")
            })
        })
}

fn non_resource(
    c: &ClusterInner,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    if *method != Method::GET && *method != Method::HEAD {
        return Err(ApiError::method_not_allowed());
    }
    let reg = c.store.registry();
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Ok(json_response(200, &discovery::version())),
        ["healthz"] | ["livez"] | ["readyz"] => {
            Ok(bytes_response(200, "text/plain; charset=utf-8", "ok"))
        }
        ["api"] if wants_aggregated(headers) => Ok(bytes_response(
            200,
            discovery::AGGREGATED_CT,
            serde_json::to_vec(&discovery::aggregated(&reg, true)).unwrap_or_default(),
        )),
        ["api"] => Ok(json_response(
            200,
            &discovery::api_versions(&c.addr.to_string()),
        )),
        ["apis"] if wants_aggregated(headers) => Ok(bytes_response(
            200,
            discovery::AGGREGATED_CT,
            serde_json::to_vec(&discovery::aggregated(&reg, false)).unwrap_or_default(),
        )),
        ["apis"] => Ok(json_response(200, &discovery::api_group_list(&reg))),
        ["api", v] => discovery::resource_list(&reg, "", v)
            .map(|d| json_response(200, &d))
            .ok_or_else(ApiError::no_route),
        ["apis", g] => discovery::api_group(&reg, g)
            .map(|d| json_response(200, &d))
            .ok_or_else(ApiError::no_route),
        ["apis", g, v] => discovery::resource_list(&reg, g, v)
            .map(|d| json_response(200, &d))
            .ok_or_else(ApiError::no_route),
        ["openapi", "v2"] => Ok(openapi::v2(headers)),
        ["openapi", ..] => openapi::serve(&reg, path).ok_or_else(ApiError::no_route),
        _ => Err(ApiError::no_route()),
    }
}

/// Reads at most BODY_LIMIT bytes. A longer body is still read to its end (up to DRAIN_LIMIT) and
/// discarded before the 413, as Go's server does: answering while the client is still sending and
/// closing the connection would reset it and the client would never see the Status.
async fn read_body(_headers: &HeaderMap, mut body: Incoming) -> Result<Bytes, ApiError> {
    const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
    let mut buf = bytes::BytesMut::new();
    let (mut seen, mut over) = (0usize, false);
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("error reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > BODY_LIMIT {
            over = true;
            buf.clear();
        } else {
            buf.extend_from_slice(&data);
        }
        if seen > DRAIN_LIMIT {
            break;
        }
    }
    if over {
        return Err(ApiError::too_large(BODY_LIMIT));
    }
    Ok(buf.freeze())
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn parse_yaml(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(v);
    }
    let s = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("the body of the request is not valid UTF-8"))?;
    serde_saphyr::from_str::<Value>(s)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// Decodes a create/update body meant to be a `kind`. Like kube-apiserver's transformDecodeError,
/// a body that does not decode is a 400 "the object provided is unrecognized (must be of type
/// KIND): CAUSE (SUMMARY)", the summary being the body's start (hex unless it starts with `{`).
fn decode_object(headers: &HeaderMap, bytes: &[u8], kind: &str) -> Result<Value, ApiError> {
    decode_any(headers, bytes).map_err(|e| {
        if e.code != 400 {
            return e;
        }
        let summary = match bytes {
            [] => "<empty>".to_string(),
            [b'{', ..] if bytes.len() > 30 => {
                format!("{} ...", String::from_utf8_lossy(&bytes[..30]))
            }
            [b'{', ..] => String::from_utf8_lossy(bytes).into_owned(),
            _ => {
                let hex: String = bytes.iter().take(30).map(|b| format!("{b:02x}")).collect();
                if bytes.len() > 30 {
                    format!("{hex} ...")
                } else {
                    hex
                }
            }
        };
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): {} ({summary})",
            e.message
        ))
    })
}

fn decode_any(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let v = match content_type(headers).as_str() {
        "" | "application/json" | "*/*" => parse_json(bytes)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml(bytes)?,
        "application/vnd.kubernetes.protobuf" => crate::handlers_proto::decode(bytes)?,
        _ => {
            return Err(ApiError::unsupported_media(
                "application/json, application/yaml",
            ));
        }
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: the body is not a JSON object",
        ));
    }
    Ok(v)
}

fn default_manager(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let m = ua.split('/').next().unwrap_or("").trim();
    if m.is_empty() {
        "unknown".into()
    } else {
        m.chars().take(128).collect()
    }
}

/// `options`: CreateOptions, UpdateOptions, PatchOptions or DeleteOptions, which kube-apiserver
/// validates (ValidateDryRun) before anything else: 422 on a value other than All.
pub fn dry_run(q: &Query, options: &str) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            "meta.k8s.io",
            options,
            "",
            "dryRun",
            &format!("dryRun: Unsupported value: []string{{{other:?}}}: supported values: \"All\""),
        )),
    }
}

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

fn partial_meta(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

pub fn to_yaml(v: &Value) -> Vec<u8> {
    serde_saphyr::to_string(v)
        .map(String::into_bytes)
        .unwrap_or_else(|_| serde_json::to_vec(v).unwrap_or_default())
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

async fn resource(
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
            crate::exec::exec(c, parts, &ns, name, user).await
        }
        (&Method::GET, Some(_), Some("exec" | "log")) | (&Method::POST, Some(_), Some("exec")) => {
            Err(ApiError::bad_request(format!(
                "kubesim ({}): pods/{} is not supported yet",
                c.name,
                sub.unwrap_or("")
            )))
        }
        (&Method::GET | &Method::HEAD, Some(name), Some("scale")) => Ok(json_response(
            200,
            &crate::handlers_scale::get(c, &def, &ns, name)?,
        )),
        (&Method::PUT | &Method::PATCH, Some(name), Some("scale")) => {
            let bytes = read_body(&parts.headers, body).await?;
            let ct = content_type(&parts.headers);
            let patch_ct = (method == Method::PATCH).then_some(ct.as_str());
            let manager = q
                .get("fieldManager")
                .cloned()
                .unwrap_or_else(|| default_manager(&parts.headers));
            let scale = crate::handlers_scale::write(
                c, &def, &version, &ns, name, patch_ct, &bytes, &q, manager,
            )?;
            a.object = Some(scale.clone());
            Ok(json_response(200, &scale))
        }
        (&Method::GET | &Method::HEAD, Some(name), None | Some("status")) => {
            // The storage layer parses a get's resourceVersion too (500 on a non-integer, as for lists).
            if let Some(rv) = q.get("resourceVersion").filter(|s| !s.is_empty()) {
                crate::handlers_watch::parse_rv(rv)?;
            }
            let obj = c
                .store
                .lock()
                .get(&def.key(), &ns, name)
                .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
            Ok(object_response(200, &obj, &out, &def, &version))
        }
        (&Method::GET | &Method::HEAD, None, None) if r.watch => {
            crate::handlers_watch::watch(c, &def, &version, r.namespace.as_deref(), &q, out)
        }
        (&Method::GET | &Method::HEAD, None, None) => {
            crate::handlers_watch::list(c, &def, &version, r.namespace.as_deref(), &q, &out)
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
                now: handlers_ops::now_rfc3339(),
            };
            let created =
                handlers_ops::create(&mut c.store.lock(), &def, &version, &ns, obj, &ctx)?;
            a.name = created["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            a.object = Some(redact(&created));
            Ok(object_response(201, &created, &out, &def, &version))
        }
        (&Method::POST, Some(name), Some("token")) => {
            let bytes = read_body(&parts.headers, body).await?;
            let obj = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                json!({})
            } else {
                decode_object(&parts.headers, &bytes, "TokenRequest")?
            };
            let resp = token_request(c, &ns, name, obj, dry_run(&q, "CreateOptions")?)?;
            a.object = Some(redact(&resp));
            Ok(json_response(201, &resp))
        }
        (&Method::PUT, Some(name), None | Some("status") | Some("finalize")) => {
            let bytes = read_body(&parts.headers, body).await?;
            let obj = decode_object(&parts.headers, &bytes, &def.kind)?;
            let ctx = Ctx {
                ca_pem: &c.ca_pem,
                manager: q
                    .get("fieldManager")
                    .cloned()
                    .unwrap_or_else(|| default_manager(&parts.headers)),
                dry_run: dry_run(&q, "UpdateOptions")?,
                now: handlers_ops::now_rfc3339(),
            };
            let sub = if sub == Some("finalize") { None } else { sub };
            let updated = handlers_ops::update(
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
            Ok(object_response(200, &updated, &out, &def, &version))
        }
        (&Method::PATCH, Some(name), None | Some("status")) => {
            let bytes = read_body(&parts.headers, body).await?;
            let (code, obj) = crate::handlers_patch::patch(
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
            Ok(object_response(code, &obj, &out, &def, &version))
        }
        (&Method::DELETE, Some(name), None) => {
            let bytes = read_body(&parts.headers, body).await?;
            let opts = delete_opts(&bytes, &q)?;
            let ctx = Ctx {
                ca_pem: &c.ca_pem,
                manager: String::new(),
                dry_run: opts.dry_run,
                now: handlers_ops::now_rfc3339(),
            };
            let obj = handlers_ops::delete(&mut c.store.lock(), &def, &ns, name, &ctx, &opts)?;
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
            let opts = delete_opts(&bytes, &q)?;
            crate::handlers_watch::delete_collection(
                c,
                &def,
                &version,
                r.namespace.as_deref(),
                &q,
                &opts,
            )
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
        )
}

fn delete_opts(bytes: &[u8], q: &Query) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        dry_run: dry_run(q, "DeleteOptions")?,
        orphan: q.get("propagationPolicy").is_some_and(|p| p == "Orphan")
            || q.get("orphanDependents").is_some_and(|o| o == "true"),
        ..Default::default()
    };
    if !bytes.iter().all(|b| b.is_ascii_whitespace()) {
        let v = parse_json(bytes)?;
        if v["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "All"))
        {
            opts.dry_run = true;
        }
        if v["propagationPolicy"] == "Orphan" || v["orphanDependents"] == true {
            opts.orphan = true;
        }
        opts.uid = v["preconditions"]["uid"].as_str().map(String::from);
        opts.resource_version = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
    }
    Ok(opts)
}

fn virtual_create(
    c: &ClusterInner,
    def: &ResourceDef,
    version: &str,
    mut obj: Value,
    user: &UserInfo,
) -> Result<Value, ApiError> {
    handlers_ops::check_type_meta(def, version, &mut obj)?;
    match def.kind.as_str() {
        "SelfSubjectAccessReview" => {
            let spec = &obj["spec"];
            let attrs = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
                let s = |k: &str| ra[k].as_str().unwrap_or("").to_string();
                RequestAttributes {
                    verb: s("verb"),
                    api_group: s("group"),
                    resource: s("resource"),
                    subresource: s("subresource"),
                    namespace: s("namespace"),
                    name: s("name"),
                    path: String::new(),
                    resource_request: true,
                }
            } else if let Some(na) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
                RequestAttributes {
                    verb: na["verb"].as_str().unwrap_or("").into(),
                    path: na["path"].as_str().unwrap_or("").into(),
                    resource_request: false,
                    ..Default::default()
                }
            } else {
                return Err(ApiError::invalid(
                    "authorization.k8s.io",
                    "SelfSubjectAccessReview",
                    "",
                    "spec.resourceAttributes",
                    "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
                ));
            };
            let snapshot = c.store.lock().rbac.clone();
            let allowed = rbac::authorize(user, &attrs, &snapshot) == Decision::Allow;
            obj["metadata"]["creationTimestamp"] = Value::Null;
            obj["status"] = if allowed {
                json!({"allowed": true})
            } else {
                json!({"allowed": false})
            };
            Ok(obj)
        }
        "SelfSubjectRulesReview" => {
            // `kubectl auth can-i --list`: the caller's rules in spec.namespace.
            let ns = obj["spec"]["namespace"].as_str().unwrap_or("").to_string();
            let snapshot = c.store.lock().rbac.clone();
            let (resource_rules, non_resource_rules) = rbac::rules_for(user, &ns, &snapshot);
            obj["metadata"]["creationTimestamp"] = Value::Null;
            obj["status"] = json!({
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": false,
            });
            Ok(obj)
        }
        "SelfSubjectReview" => {
            obj["metadata"]["creationTimestamp"] = Value::Null;
            obj["status"] = json!({"userInfo": {"username": user.username, "groups": user.groups}});
            Ok(obj)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn token_request(
    c: &ClusterInner,
    ns: &str,
    sa: &str,
    body: Value,
    dry: bool,
) -> Result<Value, ApiError> {
    let secs = match &body["spec"]["expirationSeconds"] {
        Value::Null => 3600,
        v => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    if secs < 600 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            sa,
            "spec.expirationSeconds",
            &format!(
                "spec.expirationSeconds: Invalid value: {secs}: may not specify a duration less than 10 minutes"
            ),
        ));
    }
    if secs > 1 << 32 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            sa,
            "spec.expirationSeconds",
            &format!(
                "spec.expirationSeconds: Invalid value: {secs}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let mut st = c.store.lock();
    let sa_obj = st
        .get(
            &crate::resources::ResKey {
                group: String::new(),
                plural: "serviceaccounts".into(),
            },
            ns,
            sa,
        )
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", sa))?;
    let expires = auth::now_unix() + secs;
    let token = auth::random_token("kubesim-tr");
    if !dry {
        st.tokens.insert(
            token.clone(),
            auth::TokenEntry {
                user: auth::sa_user(ns, sa),
                kind: auth::TokenKind::Request {
                    namespace: ns.into(),
                    sa: sa.into(),
                    sa_uid: auth::sa_uid(&sa_obj),
                },
                expires: Some(expires),
            },
        );
    }
    let exp = jiff::Timestamp::from_second(expires)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let audiences = body["spec"]["audiences"]
        .as_array()
        .filter(|a| !a.is_empty())
        .cloned()
        .unwrap_or_else(|| vec![json!("https://kubernetes.default.svc.cluster.local")]);
    Ok(json!({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": sa, "namespace": ns, "creationTimestamp": handlers_ops::now_rfc3339()},
        "spec": {"audiences": audiences, "expirationSeconds": secs, "boundObjectRef": body["spec"]["boundObjectRef"]},
        "status": {"token": token, "expirationTimestamp": exp},
    }))
}
