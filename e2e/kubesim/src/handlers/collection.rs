//! LIST (selectors, limit/continue, Table and metadata-only output), WATCH (resume, 410, bookmarks, timeouts, selector transitions) and DELETECOLLECTION.
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};

use crate::cluster::ClusterInner;
use crate::errors::ApiError;
use crate::http::{Body, bytes_response, json_response, to_yaml};
use crate::objects::{self, Ctx, DeleteOpts};
use crate::resources::ResourceDef;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Event, EventType, WatchMsg, WatchStart};
use crate::table;

use super::bookmarks;
use super::request::{Out, Query};

pub struct Filter {
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

impl Filter {
    /// Selectors of a list/watch/deletecollection, checked against the resource's field labels
    /// (built-ins have their own, e.g. `involvedObject.name` for events; custom resources only
    /// metadata.name/namespace).
    pub fn from_query(q: &Query, def: &ResourceDef) -> Result<Self, ApiError> {
        let label = match q.get("labelSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(LabelSelector::parse(s).map_err(ApiError::bad_request)?),
            None => None,
        };
        let field = match q.get("fieldSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(
                if def.custom {
                    FieldSelector::parse_for_custom_resource(s, def.namespaced, &[])
                } else {
                    FieldSelector::parse_for_resource(s, &def.plural)
                }
                .map_err(ApiError::bad_request)?,
            ),
            None => None,
        };
        Ok(Filter { label, field })
    }
    fn is_empty(&self) -> bool {
        self.label.is_none() && self.field.is_none()
    }
    pub fn matches(&self, obj: &Value) -> bool {
        let empty = serde_json::Map::new();
        self.label
            .as_ref()
            .is_none_or(|l| l.matches(obj["metadata"]["labels"].as_object().unwrap_or(&empty)))
            && self.field.as_ref().is_none_or(|f| f.matches(obj))
    }
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!({"rv": rv, "ns": ns, "name": name})).unwrap_or_default())
}

fn decode_continue(tok: &str) -> Result<(u64, (String, String)), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    Ok((
        rv,
        (
            v["ns"].as_str().unwrap_or("").to_string(),
            v["name"].as_str().ok_or_else(bad)?.to_string(),
        ),
    ))
}

/// kube-apiserver 1.32 parses a list/watch resourceVersion in its storage layer and answers a non-integer
/// with a 500 without reason (kubernetes/kubernetes#101350, #139485), message as below.
pub(crate) fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| {
        ApiError::new(500, "", format!("resourceVersion: Invalid value: \"{s}\": strconv.ParseUint: parsing \"{s}\": invalid syntax"))
    })
}

pub fn list(
    c: &ClusterInner,
    def: &ResourceDef,
    version: &str,
    ns: Option<&str>,
    q: &Query,
    out: &Out,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(q, def)?;
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        // Query parameter decoding (strconv.ParseInt) fails before anything else: 400.
        Some(l) => l.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("strconv.ParseInt: parsing \"{l}\": invalid syntax"))
        })?,
        None => 0,
    };
    let limit = usize::try_from(limit).ok().filter(|l| *l > 0);
    if let Some(rv) = q.get("resourceVersion").filter(|s| !s.is_empty()) {
        parse_rv(rv)?;
    }
    let cont = match q.get("continue").filter(|s| !s.is_empty()) {
        Some(t) => Some(decode_continue(t)?),
        None => None,
    };
    let (all, current_rv) = {
        let st = c.store.lock();
        (
            st.range(&def.key(), ns, cont.as_ref().map(|(_, k)| k)),
            st.rv,
        )
    };
    let list_rv = cont.as_ref().map(|(rv, _)| *rv).unwrap_or(current_rv);
    let mut items = Vec::new();
    let mut more = false;
    for o in all
        .iter()
        .filter(|o| filter.is_empty() || filter.matches(o))
    {
        if limit.is_some_and(|l| items.len() >= l) {
            more = true;
            break;
        }
        items.push(o.clone());
    }
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if more && let Some(last) = items.last() {
        meta["continue"] = json!(encode_continue(
            list_rv,
            last["metadata"]["namespace"].as_str().unwrap_or(""),
            last["metadata"]["name"].as_str().unwrap_or("")
        ));
    }
    let api_version = def.api_version(version);
    match out {
        Out::Table(inc) => {
            let objs: Vec<Value> = items.iter().map(|o| (**o).clone()).collect();
            Ok(json_response(
                200,
                &table::render_table(&objs, &def.columns_for(version), &meta, inc),
            ))
        }
        Out::Meta => {
            let objs: Vec<Value> = items
                .iter()
                .map(|o| json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}))
                .collect();
            Ok(json_response(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": objs}),
            ))
        }
        Out::Yaml => {
            let objs: Vec<Value> = items
                .iter()
                .map(|o| set_version((**o).clone(), &api_version))
                .collect();
            let v = json!({"kind": format!("{}List", def.kind), "apiVersion": api_version, "metadata": meta, "items": objs});
            Ok(bytes_response(200, "application/yaml", to_yaml(&v)))
        }
        Out::Json => {
            // Written piece by piece: no deep copy of the stored objects.
            let mut buf = Vec::with_capacity(256 + items.len() * 512);
            buf.extend_from_slice(b"{\"kind\":");
            let _ = serde_json::to_writer(&mut buf, &format!("{}List", def.kind));
            buf.extend_from_slice(b",\"apiVersion\":");
            let _ = serde_json::to_writer(&mut buf, &api_version);
            buf.extend_from_slice(b",\"metadata\":");
            let _ = serde_json::to_writer(&mut buf, &meta);
            buf.extend_from_slice(b",\"items\":[");
            for (i, o) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                if o["apiVersion"].as_str() == Some(api_version.as_str()) {
                    let _ = serde_json::to_writer(&mut buf, &**o);
                } else {
                    let _ =
                        serde_json::to_writer(&mut buf, &set_version((**o).clone(), &api_version));
                }
            }
            buf.extend_from_slice(b"]}");
            Ok(bytes_response(200, "application/json", buf))
        }
    }
}

fn set_version(mut v: Value, api_version: &str) -> Value {
    v["apiVersion"] = Value::String(api_version.to_string());
    v
}

/// How one watch renders its events.
struct Render {
    out: Out,
    api_version: String,
    kind: String,
    columns: Vec<table::PrinterColumn>,
}

impl Render {
    fn event(&self, typ: &str, obj: &Value) -> Bytes {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(b"{\"type\":\"");
        buf.extend_from_slice(typ.as_bytes());
        buf.extend_from_slice(b"\",\"object\":");
        match &self.out {
            Out::Json | Out::Yaml => {
                if obj["apiVersion"].as_str() == Some(self.api_version.as_str())
                    || typ == "ERROR"
                    || typ == "BOOKMARK"
                {
                    let _ = serde_json::to_writer(&mut buf, obj);
                } else {
                    let _ = serde_json::to_writer(
                        &mut buf,
                        &set_version(obj.clone(), &self.api_version),
                    );
                }
            }
            Out::Meta => {
                let _ = serde_json::to_writer(
                    &mut buf,
                    &json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}),
                );
            }
            Out::Table(inc) => {
                if typ == "ERROR" || typ == "BOOKMARK" {
                    let _ = serde_json::to_writer(&mut buf, obj);
                } else {
                    let t = table::render_table(
                        std::slice::from_ref(obj),
                        &self.columns,
                        &json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
                        inc,
                    );
                    let _ = serde_json::to_writer(&mut buf, &t);
                }
            }
        }
        buf.extend_from_slice(b"}\n");
        Bytes::from(buf)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        self.event(
            "BOOKMARK",
            &json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": meta}),
        )
    }
}

fn expired_event(r: &Render, message: String) -> Bytes {
    r.event("ERROR", &ApiError::gone(message).status_json())
}

/// The event as this watch sees it through its selectors (kube turns selector transitions into ADDED/DELETED).
fn transform<'a>(ev: &'a Event, filter: &Filter) -> Option<(&'static str, &'a Value)> {
    if filter.is_empty() {
        return Some((ev.kind.as_str(), &ev.object));
    }
    let now = filter.matches(&ev.object);
    let before = ev.prev.as_ref().is_some_and(|p| filter.matches(p));
    match ev.kind {
        EventType::Added => now.then_some(("ADDED", &*ev.object)),
        EventType::Deleted => (before || now).then_some(("DELETED", &*ev.object)),
        EventType::Modified => match (before, now) {
            (true, true) => Some(("MODIFIED", &*ev.object)),
            (false, true) => Some(("ADDED", &*ev.object)),
            (true, false) => Some(("DELETED", &*ev.object)),
            (false, false) => None,
        },
    }
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    r
}

pub fn watch(
    c: &Arc<ClusterInner>,
    def: &ResourceDef,
    version: &str,
    ns: Option<&str>,
    q: &Query,
    out: Out,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(q, def)?;
    let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let from = match q.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(_) if send_initial => None,
        Some(s) => Some(parse_rv(s)?),
    };
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(1800);
    let render = Render {
        out,
        api_version: def.api_version(version),
        kind: def.kind.clone(),
        columns: def.columns_for(version),
    };
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    let registered = c.store.lock().watch(&def.key(), ns, from);
    let (start, mut rx) = match registered {
        Ok(x) => x,
        Err(compacted) => {
            let msg = format!(
                "too old resource version: {} ({compacted})",
                from.unwrap_or(0)
            );
            let _ = tx.try_send(expired_event(&render, msg));
            return Ok(stream_response(body_rx));
        }
    };
    let shutdown = c.shutdown.clone();
    tokio::spawn(async move {
        let mut last_rv = from.unwrap_or(0);
        if let WatchStart::Current(objs, rv) = start {
            for o in objs.iter().filter(|o| filter.matches(o)) {
                if tx.send(render.event("ADDED", o)).await.is_err() {
                    return;
                }
            }
            last_rv = rv;
            if send_initial && tx.send(render.bookmark(rv, true)).await.is_err() {
                return;
            }
        }
        let ends = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let deadline = tokio::time::sleep_until(ends);
        tokio::pin!(deadline);
        let mut next_bookmark = bookmarks::next(tokio::time::Instant::now(), ends);
        let bookmark = tokio::time::sleep_until(next_bookmark.unwrap_or(ends));
        tokio::pin!(bookmark);
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(WatchMsg::Event(ev)) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some((typ, obj)) = transform(&ev, &filter)
                            && tx.send(render.event(typ, obj)).await.is_err()
                        {
                            return;
                        }
                    }
                    Some(WatchMsg::Expired) => {
                        let _ = tx.send(expired_event(&render, format!("too old resource version: {last_rv} (watch expired)"))).await;
                        return;
                    }
                    Some(WatchMsg::Closed) | None => return,
                },
                () = &mut bookmark, if bookmarks && next_bookmark.is_some() => {
                    if tx.send(render.bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                    next_bookmark = bookmarks::next(tokio::time::Instant::now(), ends);
                    bookmark.as_mut().reset(next_bookmark.unwrap_or(ends));
                }
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = shutdown.cancelled() => return,
            }
        }
    });
    Ok(stream_response(body_rx))
}

pub fn delete_collection(
    c: &ClusterInner,
    def: &Arc<ResourceDef>,
    version: &str,
    ns: Option<&str>,
    q: &Query,
    opts: &DeleteOpts,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(q, def)?;
    let ctx = Ctx {
        ca_pem: &c.ca_pem,
        manager: String::new(),
        dry_run: opts.dry_run,
        now: objects::now_rfc3339(),
        ..Default::default()
    };
    let mut st = c.store.lock();
    let targets: Vec<Arc<Value>> = st
        .range(&def.key(), ns, None)
        .into_iter()
        .filter(|o| filter.matches(o))
        .collect();
    let mut deleted = vec![];
    for o in targets {
        let (n, name) = crate::store::obj_key(&o);
        if let Ok(d) = objects::delete(&mut st, def, &n, &name, &ctx, opts) {
            deleted.push((*d).clone());
        }
    }
    let rv = st.rv;
    drop(st);
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(version), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
    ))
}
