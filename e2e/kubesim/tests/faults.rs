//! Every fault (unreachable, latency, 500/503/429 share, revoked token, watch expiry) is visible to kubectl and kube-rs clients and stops when cleared, set through the library and through the binary's admin endpoint.
mod support;

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use support::{Env, Kubectl, no_retry_client, raw, until_audited, until_listening, until_refused};

const GUARD: Duration = Duration::from_secs(60);

async fn with_configmap() -> Env {
    let env = Env::start(&["k1", "k2"]).await;
    env.kubectl(&["create", "configmap", "cm", "--from-literal=a=1"])
        .await
        .ok();
    // Warm kubectl's discovery cache so later runs make exactly the requests under test.
    env.kubectl(&["get", "configmap", "cm"]).await.ok();
    env
}

/// kubectl's report of a client-side timeout (the wording depends on where the deadline hits).
fn timed_out(stderr: &str) -> bool {
    stderr.starts_with("Unable to connect to the server: ")
        && (stderr.contains("context deadline exceeded")
            || stderr.contains("Client.Timeout exceeded"))
}

fn api_err(r: Result<ConfigMap, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error Status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_refuses_connections_drops_watches_and_recovers() {
    let env = with_configmap().await;
    let c = env.cluster("k1").clone();
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let list = cms.list(&ListParams::default()).await.unwrap();
    let mut watch = cms
        .watch(
            &WatchParams::default(),
            list.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();

    c.faults().set_unreachable(true);
    // The open watch connection is dropped: the stream errors or ends.
    let end = tokio::time::timeout(GUARD, async {
        loop {
            match watch.next().await {
                None => return "ended".to_string(),
                Some(Err(e)) => return format!("error: {e}"),
                Some(Ok(WatchEvent::Bookmark(_))) => continue,
                Some(Ok(ev)) => panic!("unexpected event while unreachable: {ev:?}"),
            }
        }
    })
    .await
    .expect("the watch stream ends once the cluster is unreachable");
    println!("watch while unreachable: {end}");
    until_refused(&c.url()).await;

    let port = c.url().rsplit(':').next().unwrap().to_string();
    let r = env.kubectl(&["get", "configmap", "cm"]).await.fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?\n"
        )
    );
    match cms.get("cm").await {
        Err(kube::Error::Api(s)) => panic!("a refused connection is not an API answer: {s:?}"),
        Err(e) => println!("kube-rs while unreachable: {e}"),
        Ok(_) => panic!("kube-rs reached an unreachable cluster"),
    }
    // The other cluster is not affected.
    env.kubectl(&["--context", "k2", "get", "configmaps"])
        .await
        .ok();

    c.faults().set_unreachable(false);
    until_listening(&c.url()).await;
    let r = env
        .kubectl(&["get", "configmap", "cm", "-o", "jsonpath={.data.a}"])
        .await
        .ok();
    assert_eq!(r.stdout, "1");
    // Same port, fresh connections: the old client works again, and a new watch sees changes.
    let list = cms
        .list(&ListParams::default())
        .await
        .expect("kube-rs reconnects");
    let mut watch = cms
        .watch(
            &WatchParams::default(),
            list.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    cms.patch(
        "cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(GUARD, watch.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, Some(WatchEvent::Modified(ref o)) if o.data.as_ref().unwrap()["a"] == "2"),
        "{ev:?}"
    );

    // clear() ends it too.
    c.faults().set_unreachable(true);
    until_refused(&c.url()).await;
    env.kubectl(&["get", "configmap", "cm"]).await.fails(1);
    c.faults().clear();
    until_listening(&c.url()).await;
    env.kubectl(&["get", "configmap", "cm"]).await.ok();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_every_answer_until_cleared() {
    let env = with_configmap().await;
    let c = env.cluster("k1").clone();
    let cms: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    cms.get("cm").await.unwrap();

    let lat = Duration::from_millis(2500);
    c.faults().set_latency(lat);
    let t = Instant::now();
    cms.get("cm").await.unwrap();
    let slow = t.elapsed();
    println!("kube-rs get with {lat:?} latency: {slow:?}");
    assert!(
        slow >= lat,
        "the answer came before the injected latency: {slow:?}"
    );
    // A client whose timeout is shorter than the latency gives up (kubectl's own message).
    let r = env
        .kubectl(&["get", "configmap", "cm", "--request-timeout=1s"])
        .await
        .fails(1);
    assert!(timed_out(&r.stderr), "{r:#?}");

    c.faults().clear();
    let t = Instant::now();
    cms.get("cm").await.unwrap();
    println!("kube-rs get after clearing: {:?}", t.elapsed());
    // Generous (load, TLS), but far below the latency the fault would add twice over (kubectl makes one request).
    let r = env
        .kubectl(&[
            "get",
            "configmap",
            "cm",
            "--request-timeout=20s",
            "-o",
            "name",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "configmap/cm\n");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_share_500_503_429() {
    let env = with_configmap().await;
    let c = env.cluster("k1").clone();
    let raw_client = no_retry_client(&c, &c.admin_token()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(raw_client.clone());

    // Every request answered 500.
    c.faults().set_error_rate(1.0, vec![500]);
    let r = env.kubectl(&["get", "configmap", "cm"]).await.fails(1);
    assert_eq!(
        r.stderr,
        "Error from server (InternalError): Internal error occurred: injected fault\n"
    );
    let s = api_err(cms.get("cm").await);
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"), "{s:?}");
    // Writes fail before they happen.
    let s = api_err(
        cms.patch(
            "cm",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "9"}})),
        )
        .await,
    );
    assert_eq!(s.code, 500);

    // 503.
    c.faults().set_error_rate(1.0, vec![503]);
    let r = env.kubectl(&["get", "configmap", "cm"]).await.fails(1);
    assert!(
        r.stderr
            .starts_with("Error from server (ServiceUnavailable): "),
        "{r:#?}"
    );
    let s = api_err(cms.get("cm").await);
    assert_eq!(
        (s.code, s.reason.as_str()),
        (503, "ServiceUnavailable"),
        "{s:?}"
    );

    // 429 carries Retry-After (header and details), as the apiserver's priority & fairness does.
    c.faults().set_error_rate(1.0, vec![429]);
    let a = raw(
        &raw_client,
        "GET",
        "/api/v1/namespaces/default/configmaps/cm",
        None,
        vec![],
    )
    .await;
    assert_eq!(a.code, 429);
    let st = a.json();
    assert_eq!(st["reason"], "TooManyRequests");
    assert_eq!(st["details"]["retryAfterSeconds"], 1);
    let before = env.sim.audit().last().map(|e| e.seq).unwrap_or(0);
    // kubectl (client-go) retries a 429 with Retry-After, then reports it.
    let r = env.kubectl(&["get", "configmap", "cm"]).await.fails(1);
    assert!(
        r.stderr
            .starts_with("Error from server (TooManyRequests): "),
        "{r:#?}"
    );
    let tries = env
        .sim
        .audit()
        .iter()
        .filter(|e| e.seq > before && e.name == "cm" && e.code == 429)
        .count();
    println!("kubectl tried {tries} times against a 429 with Retry-After");
    assert!(
        tries >= 2,
        "client-go retries a 429 that carries Retry-After"
    );

    // The faults do not touch the second cluster.
    env.kubectl(&["--context", "k2", "get", "configmaps"])
        .await
        .ok();

    // A share: some requests fail, kube-rs' default client retries 503s and every get succeeds.
    c.faults().set_error_rate(0.3, vec![503]);
    let retrying: Api<ConfigMap> = Api::default_namespaced(c.client().await);
    let before = env.sim.audit().last().map(|e| e.seq).unwrap_or(0);
    for _ in 0..50 {
        retrying
            .get("cm")
            .await
            .expect("kube-rs retries injected 503s");
    }
    let seen: Vec<u16> = env
        .sim
        .audit()
        .iter()
        .filter(|e| e.seq > before && e.name == "cm")
        .map(|e| e.code)
        .collect();
    let failed = seen.iter().filter(|c| **c == 503).count();
    println!(
        "50 gets at a 0.3 share of 503: {} requests, {failed} answered 503",
        seen.len()
    );
    assert!(failed > 0 && seen.len() == 50 + failed, "{seen:?}");
    assert!(seen.iter().all(|c| *c == 200 || *c == 503), "{seen:?}");

    // Cleared: nothing fails any more.
    c.faults().clear();
    let before = env.sim.audit().last().map(|e| e.seq).unwrap_or(0);
    for _ in 0..20 {
        cms.get("cm").await.expect("no injected errors after clear");
    }
    env.kubectl(&["get", "configmap", "cm"]).await.ok();
    assert!(
        env.sim
            .audit()
            .iter()
            .filter(|e| e.seq > before)
            .all(|e| e.code == 200)
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_gets_401_until_cleared() {
    let env = with_configmap().await;
    let c = env.cluster("k1").clone();
    env.kubectl(&[
        "create",
        "role",
        "cm-reader",
        "--verb=get,list",
        "--resource=configmaps",
    ])
    .await
    .ok();
    env.kubectl(&[
        "create",
        "rolebinding",
        "cm-reader",
        "--role=cm-reader",
        "--serviceaccount=default:app",
    ])
    .await
    .ok();
    let token = c.issue_token("default", "app", None);
    env.add_token_context("app", "k1", &token, "default").await;
    let cms: Api<ConfigMap> = Api::default_namespaced(no_retry_client(&c, &token).await);
    env.kubectl(&["--context", "app", "get", "configmap", "cm"])
        .await
        .ok();
    cms.get("cm").await.unwrap();

    c.faults().revoke_token(&token);
    let r = env
        .kubectl(&["--context", "app", "get", "configmap", "cm"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: You must be logged in to the server (Unauthorized)\n"
    );
    let s = api_err(cms.get("cm").await);
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
    // Other identities are unaffected.
    env.kubectl(&["get", "configmap", "cm"]).await.ok();
    assert!(
        env.sim
            .audit()
            .iter()
            .any(|e| e.code == 401 && e.user.is_empty()),
        "401s are audited without a user"
    );

    c.faults().clear();
    env.kubectl(&["--context", "app", "get", "configmap", "cm"])
        .await
        .ok();
    cms.get("cm")
        .await
        .expect("the token works again once cleared");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_watches_get_410_and_a_relist_recovers() {
    let env = with_configmap().await;
    let c = env.cluster("k1").clone();
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let list = cms.list(&ListParams::default()).await.unwrap();
    let old_rv = list.metadata.resource_version.clone().unwrap();
    let mut watch = cms
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();

    // kubectl get -w, running when the watches expire.
    let seen = env.sim.audit().last().map(|e| e.seq).unwrap_or(0);
    let kubectl_watch = {
        let kubectl = env.kubectl_runner();
        tokio::spawn(async move {
            kubectl
                .run(&["get", "configmaps", "-w", "-o", "json"])
                .await
        })
    };
    until_audited(&env.sim, |e| {
        e.seq > seen && e.verb == "watch" && e.resource == "configmaps"
    })
    .await;

    c.faults().expire_watches();
    // kube-rs: an ERROR event with a 410 Expired Status, then the stream ends.
    let ev = tokio::time::timeout(GUARD, async {
        loop {
            match watch.try_next().await.unwrap() {
                Some(WatchEvent::Bookmark(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .unwrap();
    match ev {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"), "{e:?}");
            assert!(e.message.starts_with("too old resource version"), "{e:?}");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(GUARD, watch.try_next())
            .await
            .unwrap()
            .unwrap()
            .is_none(),
        "the server closes the watch"
    );
    // kubectl prints the Status of the ERROR event and ends when the server closes the watch.
    let r = kubectl_watch.await.unwrap();
    assert!(
        r.stdout.contains("\"code\": 410") && r.stdout.contains("\"reason\": \"Expired\""),
        "{r:#?}"
    );

    // Resuming from the old resourceVersion: 410 at once.
    let mut again = cms
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(GUARD, again.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"), "{e:?}");
        }
        other => panic!("expected a 410 for an expired resourceVersion, got {other:?}"),
    }
    // A re-list gives a fresh resourceVersion to watch from: the fault is over.
    let list = cms.list(&ListParams::default()).await.unwrap();
    let new_rv = list.metadata.resource_version.clone().unwrap();
    assert!(new_rv.parse::<u64>().unwrap() > old_rv.parse::<u64>().unwrap());
    let mut fresh = cms
        .watch(&WatchParams::default(), &new_rv)
        .await
        .unwrap()
        .boxed();
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "after"}, "data": {"x": "y"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    match tokio::time::timeout(GUARD, fresh.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Added(o)) => assert_eq!(o.metadata.name.as_deref(), Some("after")),
        other => panic!("expected ADDED after the re-list, got {other:?}"),
    }
    let r = env.kubectl(&["get", "configmaps", "-o", "name"]).await.ok();
    assert!(r.stdout.contains("configmap/after\n"), "{}", r.stdout);
    env.shutdown().await;
}

/// A tiny HTTP/1.1 client for the admin endpoint (plain HTTP on 127.0.0.1).
async fn admin(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin endpoint listens");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_through_the_binary_admin_endpoint() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args([
            "--clusters",
            "a,b",
            "--kubeconfig-out",
            kc.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = String::new();
    tokio::time::timeout(GUARD, async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(a) = l.strip_prefix("kubesim admin http://") {
                addr = a.to_string();
            }
            if l == "kubesim ready" {
                return;
            }
        }
        panic!("kubesim exited before it was ready");
    })
    .await
    .expect("kubesim gets ready");
    assert!(
        !addr.is_empty(),
        "the admin address is printed before `kubesim ready`"
    );
    let k = |args: Vec<&'static str>| {
        let kubectl = Kubectl::new(&kc).home(dir.path());
        async move { kubectl.run(&args).await }
    };
    k(vec!["--context", "a", "get", "namespaces"]).await.ok();
    k(vec!["--context", "b", "get", "namespaces"]).await.ok();

    let (code, body) = admin(
        &addr,
        "PUT",
        "/clusters/a/faults",
        r#"{"errorRate":1.0,"errorCodes":[503]}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let r = k(vec!["--context", "a", "get", "namespaces"])
        .await
        .fails(1);
    assert!(
        r.stderr
            .starts_with("Error from server (ServiceUnavailable): "),
        "{r:#?}"
    );
    k(vec!["--context", "b", "get", "namespaces"]).await.ok();
    assert_eq!(
        admin(&addr, "DELETE", "/clusters/a/faults", "").await.0,
        200
    );
    k(vec!["--context", "a", "get", "namespaces"]).await.ok();

    assert_eq!(
        admin(
            &addr,
            "PUT",
            "/clusters/b/faults",
            r#"{"unreachable":true}"#
        )
        .await
        .0,
        200
    );
    let kcv: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&kc).unwrap()).unwrap();
    let url_b = kcv["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "b")
        .unwrap()["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_string();
    until_refused(&url_b).await;
    let r = k(vec!["--context", "b", "get", "namespaces"])
        .await
        .fails(1);
    assert!(r.stderr.contains("was refused"), "{r:#?}");
    assert_eq!(
        admin(&addr, "DELETE", "/clusters/b/faults", "").await.0,
        200
    );
    until_listening(&url_b).await;
    k(vec!["--context", "b", "get", "namespaces"]).await.ok();

    // Revoking cluster a's admin token (read from the kubeconfig the binary wrote).
    let user_a = kcv["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "a")
        .unwrap()["context"]["user"]
        .clone();
    let tok = kcv["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == user_a)
        .unwrap()["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = admin(
        &addr,
        "PUT",
        "/clusters/a/faults",
        &json!({"revokeTokens": [tok]}).to_string(),
    )
    .await;
    assert_eq!(code, 200);
    let r = k(vec!["--context", "a", "get", "namespaces"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: You must be logged in to the server (Unauthorized)\n"
    );
    assert_eq!(
        admin(&addr, "DELETE", "/clusters/a/faults", "").await.0,
        200
    );
    k(vec!["--context", "a", "get", "namespaces"]).await.ok();

    // A watch running in kubectl ends with a 410 when the admin expires watches.
    let watcher = {
        let kubectl = Kubectl::new(&kc).home(dir.path());
        tokio::spawn(async move {
            kubectl
                .run(&["--context", "a", "get", "namespaces", "-w", "-o", "json"])
                .await
        })
    };
    for _ in 0..1200 {
        let (_, audit) = admin(&addr, "GET", "/audit", "").await;
        if audit
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|e| e["verb"] == "watch" && e["cluster"] == "a")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        admin(
            &addr,
            "PUT",
            "/clusters/a/faults",
            r#"{"expireWatches":true}"#
        )
        .await
        .0,
        200
    );
    let r = watcher.await.unwrap();
    assert!(r.stdout.contains("\"code\": 410"), "{r:#?}");

    // Latency through the admin endpoint.
    assert_eq!(
        admin(&addr, "PUT", "/clusters/a/faults", r#"{"latencyMs":2500}"#)
            .await
            .0,
        200
    );
    let r = k(vec![
        "--context",
        "a",
        "get",
        "namespaces",
        "--request-timeout=1s",
    ])
    .await
    .fails(1);
    assert!(timed_out(&r.stderr), "{r:#?}");
    assert_eq!(
        admin(&addr, "DELETE", "/clusters/a/faults", "").await.0,
        200
    );
    k(vec!["--context", "a", "get", "namespaces"]).await.ok();

    // Errors of the admin endpoint itself, and the audit log as JSON lines.
    assert_eq!(
        admin(&addr, "PUT", "/clusters/nope/faults", "{}").await.0,
        404
    );
    assert_eq!(
        admin(&addr, "PUT", "/clusters/a/faults", "{not json")
            .await
            .0,
        400
    );
    let (code, audit) = admin(&addr, "GET", "/audit", "").await;
    assert_eq!(code, 200);
    let entries: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(
        entries
            .iter()
            .any(|e| e["cluster"] == "a" && e["code"] == 503)
    );
    assert!(
        entries
            .iter()
            .any(|e| e["cluster"] == "a" && e["code"] == 401)
    );
    assert!(
        entries
            .windows(2)
            .all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64()),
        "ordered by seq"
    );

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(GUARD, child.wait())
        .await
        .expect("kubesim exits on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
