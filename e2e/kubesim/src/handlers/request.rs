//! What a request asks for: its path as a resource request, query, verb, wanted output, body (JSON, YAML or protobuf), field manager and dry-run, plus what the audit log records of it.
use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, Method, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use crate::errors::ApiError;
use crate::http::BODY_LIMIT;

/// What the audit log records for a request.
#[derive(Default)]
pub(super) struct Audit {
    pub user: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub object: Option<Value>,
}

pub(super) type Query = HashMap<String, String>;

pub(super) fn parse_query(uri: &http::Uri) -> Query {
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
pub(super) struct ResReq {
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

pub(super) fn parse_path(path: &str, q: &Query) -> Option<Result<ResReq, ApiError>> {
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
            r.sub = rest.get(2).map(ToString::to_string);
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
    r.name = rest.get(1).map(ToString::to_string);
    r.sub = rest.get(2).map(ToString::to_string);
    Some(Ok(r))
}

pub(super) fn verb_of(method: &Method, r: &ResReq) -> &'static str {
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

/// The name a list or watch is for, as kube-apiserver's RequestInfo has it: a `fieldSelector`
/// pinning `metadata.name` to a valid path segment makes it a request for that one name, so
/// RBAC `resourceNames` authorize it and the audit log names it.
pub(super) fn selected_name(verb: &str, q: &Query) -> Option<String> {
    if !matches!(verb, "list" | "watch") {
        return None;
    }
    let selector = crate::selectors::FieldSelector::parse_syntax(q.get("fieldSelector")?).ok()?;
    let name = selector.exact_name()?;
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('%');
    valid.then(|| name.to_string())
}

/// How the client wants objects rendered.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Out {
    Json,
    Yaml,
    Table(String),
    Meta,
}

pub(super) fn negotiate(headers: &HeaderMap, q: &Query) -> Result<Out, ApiError> {
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
            Some("PartialObjectMetadata" | "PartialObjectMetadataList") if json_like => {
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

/// Reads at most BODY_LIMIT bytes. A longer body is still read to its end (up to DRAIN_LIMIT) and
/// discarded before the 413, as Go's server does: answering while the client is still sending and
/// closing the connection would reset it and the client would never see the Status.
pub(super) async fn read_body(_headers: &HeaderMap, mut body: Incoming) -> Result<Bytes, ApiError> {
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

pub(super) fn content_type(headers: &HeaderMap) -> String {
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

pub(super) fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    crate::depth::parse(bytes).map_err(|e| {
        let e = match e {
            Ok(too_deep) => too_deep.to_string(),
            Err(e) => e.to_string(),
        };
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub(super) fn parse_yaml(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    match crate::depth::parse(bytes) {
        Ok(v) => return Ok(v),
        // Valid JSON (so valid YAML) that is too deep: refused as the JSON path refuses it.
        Err(Ok(too_deep)) => {
            return Err(ApiError::bad_request(format!(
                "couldn't get version/kind; json parse error: {too_deep}"
            )));
        }
        Err(Err(_)) => {}
    }
    let s = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("the body of the request is not valid UTF-8"))?;
    serde_saphyr::from_str::<Value>(s)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// Decodes a create/update body meant to be a `kind`. Like kube-apiserver's transformDecodeError,
/// a body that does not decode is a 400 "the object provided is unrecognized (must be of type
/// KIND): CAUSE (SUMMARY)", the summary being the body's start (hex unless it starts with `{`).
pub(super) fn decode_object(
    headers: &HeaderMap,
    bytes: &[u8],
    kind: &str,
) -> Result<Value, ApiError> {
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
        "application/vnd.kubernetes.protobuf" => super::proto::decode(bytes)?,
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

pub(super) fn default_manager(headers: &HeaderMap) -> String {
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
pub(super) fn dry_run(q: &Query, options: &str) -> Result<bool, ApiError> {
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
