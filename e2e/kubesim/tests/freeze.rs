//! The freeze fault: a frozen cluster accepts connections and keeps them open, answers nothing
//! (kubectl and kube-rs time out, open watches fall silent), leaves the other clusters alone,
//! and resumes everything held (requests, watch events) once cleared; set and cleared on the
//! admin endpoint too.
mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::json;
use support::Env;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GUARD: Duration = Duration::from_secs(60);
/// How long the tests look for an answer that must not come (silence cannot be proven; this is
/// long enough for kubesim to answer a hundred times over when it is not frozen).
const SILENCE: Duration = Duration::from_secs(2);

async fn with_configmap() -> Env {
    let env = Env::start(&["k1", "k2"]).await;
    env.kubectl(&["create", "configmap", "cm", "--from-literal=a=1"])
        .await
        .ok();
    env.kubectl(&["get", "configmap", "cm"]).await.ok();
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_cluster_keeps_connections_answers_nothing_and_resumes_when_cleared() {
    let env = with_configmap().await;
    let c = env.cluster("k1").clone();
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    let list = cms.list(&ListParams::default()).await.unwrap();
    let mut watch = cms
        .watch(
            &WatchParams::default(),
            list.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();

    c.faults().set_frozen(true);
    // A new connection is accepted and kept open, and not a byte comes back.
    let addr = c.url().trim_start_matches("https://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("a frozen cluster still accepts connections");
    tcp.write_all(b"\x16\x03\x01\x00\x05hello").await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(SILENCE, tcp.read(&mut byte)).await;
    assert!(
        read.is_err(),
        "the connection was answered or closed: {read:?}"
    );

    // kubectl gives up with its own deadline; the other cluster answers as usual.
    let r = env
        .kubectl(&["get", "configmap", "cm", "--request-timeout=2s"])
        .await
        .fails(1);
    assert!(
        r.stderr.contains("Client.Timeout exceeded")
            || r.stderr.contains("context deadline exceeded")
            || r.stderr.contains("i/o timeout"),
        "{}",
        r.stderr
    );
    env.kubectl(&["--context", "k2", "get", "configmaps"])
        .await
        .ok();

    // A write sent while frozen is held, not done; the open watch stays silent.
    let held = tokio::spawn({
        let cms = cms.clone();
        async move {
            cms.patch(
                "cm",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": "2"}})),
            )
            .await
        }
    });
    let quiet = tokio::time::timeout(SILENCE, watch.try_next()).await;
    assert!(quiet.is_err(), "the watch spoke while frozen: {quiet:?}");
    assert!(!held.is_finished(), "a frozen cluster answered a write");
    let data = c.audit();
    assert!(
        !data
            .iter()
            .any(|e| e.verb == "patch" && e.resource == "configmaps"),
        "the held write was done while frozen"
    );

    // Cleared: the held write is done and answered, the watch delivers it.
    c.faults().clear();
    let patched = tokio::time::timeout(GUARD, held)
        .await
        .expect("the held write is answered once cleared")
        .unwrap()
        .expect("the held write succeeds");
    assert_eq!(patched.data.unwrap()["a"], "2");
    let ev = tokio::time::timeout(GUARD, async {
        loop {
            match watch.try_next().await.unwrap() {
                Some(WatchEvent::Bookmark(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the watch resumes once cleared");
    assert!(
        matches!(ev, Some(WatchEvent::Modified(ref o)) if o.data.as_ref().unwrap()["a"] == "2"),
        "{ev:?}"
    );
    env.sim.shutdown().await;
}

/// A plain HTTP/1.1 call to the admin endpoint.
async fn admin(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .expect("admin answers")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_is_set_and_cleared_on_the_admin_endpoint() {
    let env = with_configmap().await;
    let (addr, _admin) = kubesim::admin::start(&env.sim, 0).await.unwrap();
    let (code, body) = admin(addr, "PUT", "/clusters/k1/faults", r#"{"freeze":true}"#).await;
    assert_eq!(code, 200, "{body}");
    assert!(env.cluster("k1").faults().is_frozen());
    let r = env
        .kubectl(&["get", "configmap", "cm", "--request-timeout=2s"])
        .await
        .fails(1);
    assert!(
        r.stderr.starts_with("Unable to connect to the server: "),
        "{}",
        r.stderr
    );

    let (code, body) = admin(addr, "DELETE", "/clusters/k1/faults", "").await;
    assert_eq!(code, 200, "{body}");
    assert!(!env.cluster("k1").faults().is_frozen());
    let r = env
        .kubectl(&["get", "configmap", "cm", "-o", "jsonpath={.data.a}"])
        .await
        .ok();
    assert_eq!(r.stdout, "1");
    env.sim.shutdown().await;
}
