//! Admin endpoint of the kubesim binary (plain HTTP on 127.0.0.1): set/clear faults per cluster, read the audit log.
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::audit::AuditLog;
use crate::http::{Body, bytes_response, json_response};
use crate::sim::{Cluster, Sim};

struct Admin {
    clusters: Vec<Cluster>,
    audit: Arc<AuditLog>,
}

/// Binds 127.0.0.1:`port` (0 = ephemeral) and serves until the task is dropped.
pub async fn start(
    sim: &Sim,
    port: u16,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| anyhow::anyhow!("binding admin port {port}: {e}"))?;
    let addr = listener.local_addr()?;
    let admin = Arc::new(Admin {
        clusters: sim.clusters().to_vec(),
        audit: sim.audit_log(),
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let admin = admin.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(handle(&admin, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

fn err(code: u16, msg: String) -> Response<Body> {
    json_response(code, &json!({"error": msg}))
}

async fn handle(admin: &Admin, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (Method::GET, ["audit"]) => {
            let mut out = String::new();
            for e in admin.audit.all() {
                out.push_str(&serde_json::to_string(&e).unwrap_or_default());
                out.push('\n');
            }
            bytes_response(200, "application/x-ndjson", out)
        }
        (Method::GET, ["clusters"]) => {
            let cs: Vec<Value> = admin
                .clusters
                .iter()
                .map(|c| json!({"name": c.name(), "url": c.url()}))
                .collect();
            json_response(200, &json!(cs))
        }
        (m, ["clusters", name, "faults"]) => {
            let Some(c) = admin.clusters.iter().find(|c| c.name() == *name) else {
                return err(404, format!("no cluster named {name}"));
            };
            match m {
                Method::DELETE => {
                    c.faults().clear();
                    c.ring_faults().clear();
                    json_response(200, &json!({"cluster": name, "faults": "cleared"}))
                }
                Method::PUT | Method::POST => {
                    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(e) => return err(400, format!("reading body: {e}")),
                    };
                    let v: Value = match serde_json::from_slice(&body) {
                        Ok(v) => v,
                        Err(e) => {
                            return err(
                                400,
                                format!("faults for cluster {name}: invalid JSON: {e}"),
                            );
                        }
                    };
                    apply_faults(c, &v);
                    json_response(200, &json!({"cluster": name, "applied": v}))
                }
                _ => err(405, "use PUT or DELETE on /clusters/NAME/faults".into()),
            }
        }
        _ => err(404, format!("unknown admin path {path}")),
    }
}

fn apply_faults(c: &Cluster, v: &Value) {
    let f = c.faults();
    if let Some(u) = v["unreachable"].as_bool() {
        f.set_unreachable(u);
    }
    if let Some(frozen) = v["freeze"].as_bool() {
        f.set_frozen(frozen);
    }
    if let Some(on) = v["http1Only"].as_bool() {
        f.set_http1_only(on);
    }
    if let Some(ms) = v["latencyMs"].as_u64() {
        f.set_latency(Duration::from_millis(ms));
    }
    if v.get("errorRate").is_some() || v.get("errorCodes").is_some() {
        let rate = v["errorRate"].as_f64().unwrap_or(0.0);
        let codes: Vec<u16> = v["errorCodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|c| c as u16)
                    .collect()
            })
            .unwrap_or_else(|| vec![503]);
        f.set_error_rate(rate, codes);
    }
    if let Some(toks) = v["revokeTokens"].as_array() {
        for t in toks.iter().filter_map(Value::as_str) {
            f.revoke_token(t);
        }
    }
    if v["expireWatches"].as_bool() == Some(true) {
        f.expire_watches();
    }
    c.ring_faults().apply_json(v);
}
