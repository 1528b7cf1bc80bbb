//! The kubesim binary: ready line, kubeconfig, admin endpoint (faults, audit), audit log file, clean exit on SIGTERM.
use std::path::Path;
use std::time::Duration;

use kubesim::kubectl::{Kubectl, Run};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

async fn admin(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// kubectl against context `ctx`, each request given up after 5 s.
async fn kubectl(kc: &Path, cache: &Path, ctx: &str, args: &[&str]) -> Run {
    let args = [&["--request-timeout=5s"], args].concat();
    Kubectl::new(kc)
        .cache_dir(cache)
        .context(ctx)
        .run(&args)
        .await
}

#[tokio::test]
async fn binary_serves_admin_faults_audit_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let cache = dir.path().join("cache");
    let audit_file = dir.path().join("audit.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(["--clusters", "east,west", "--kubeconfig-out"])
        .arg(&kc)
        .arg("--audit-log")
        .arg(&audit_file)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin_addr = String::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("kubesim exited early");
        if let Some(url) = line.strip_prefix("kubesim admin http://") {
            admin_addr = url.trim().to_string();
        }
        if line == "kubesim ready" {
            break;
        }
    }
    assert!(
        !admin_addr.is_empty(),
        "the admin line comes before the ready line"
    );
    let cfg = std::fs::read_to_string(&kc).unwrap();
    assert!(
        cfg.contains("current-context: east") && cfg.contains("name: west-admin"),
        "{cfg}"
    );

    let ok = kubectl(&kc, &cache, "west", &["get", "ns", "-o", "name"]).await;
    assert!(ok.success());
    assert!(ok.stdout.contains("namespace/kube-system"));

    let (code, _) = admin(
        &admin_addr,
        "PUT",
        "/clusters/west/faults",
        r#"{"errorRate":1.0,"errorCodes":[500]}"#,
    )
    .await;
    assert_eq!(code, 200);
    let failed = kubectl(&kc, &cache, "west", &["get", "ns", "default"]).await;
    assert!(!failed.success());
    assert!(
        failed.stderr.contains("injected fault"),
        "{}",
        failed.stderr
    );
    // The other cluster is unaffected.
    assert!(
        kubectl(&kc, &cache, "east", &["get", "ns", "default"])
            .await
            .success()
    );
    assert_eq!(
        admin(&admin_addr, "DELETE", "/clusters/west/faults", "")
            .await
            .0,
        200
    );
    assert!(
        kubectl(&kc, &cache, "west", &["get", "ns", "default"])
            .await
            .success()
    );

    admin(
        &admin_addr,
        "PUT",
        "/clusters/west/faults",
        r#"{"unreachable":true}"#,
    )
    .await;
    let refused = kubectl(&kc, &cache, "west", &["get", "ns", "default"]).await;
    assert!(refused.stderr.contains("was refused"), "{}", refused.stderr);
    admin(&admin_addr, "DELETE", "/clusters/west/faults", "").await;
    assert!(
        kubectl(&kc, &cache, "west", &["get", "ns", "default"])
            .await
            .success()
    );
    assert_eq!(
        admin(&admin_addr, "PUT", "/clusters/nowhere/faults", "{}")
            .await
            .0,
        404
    );

    let (code, body) = admin(&admin_addr, "GET", "/audit", "").await;
    assert_eq!(code, 200);
    let entries: Vec<kubesim::AuditEntry> = body
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries.iter().any(|e| e.cluster == "west"
        && e.code == 500
        && e.resource == "namespaces"
        && e.name == "default"));
    assert!(
        entries
            .iter()
            .any(|e| e.cluster == "east" && e.code == 200 && e.user == "kubesim:admin")
    );

    let pid = child.id().unwrap();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let file = std::fs::read_to_string(&audit_file).unwrap();
    assert_eq!(
        file.lines().count(),
        entries.len(),
        "the audit file has every request as a JSON line"
    );
}
