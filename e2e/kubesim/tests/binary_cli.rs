//! The kubesim binary: `--clusters a,b --kubeconfig-out F` prints `kubesim ready`, serves every context, writes `--audit-log` as JSON lines, serves the admin endpoint (faults, audit), exits 0 on SIGTERM/SIGINT, and refuses bad arguments.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use kubesim::AuditEntry;
use kubesim::kubectl::{Kubectl, Run};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const GUARD: Duration = Duration::from_secs(60);

struct Running {
    child: tokio::process::Child,
    /// stdout lines printed up to and including `kubesim ready`.
    lines: Vec<String>,
}

async fn start(args: &[&str]) -> Running {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("kubesim binary runs");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lines = vec![];
    tokio::time::timeout(GUARD, async {
        while let Some(l) = out.next_line().await.unwrap() {
            lines.push(l.clone());
            if l == "kubesim ready" {
                return;
            }
        }
        panic!("kubesim exited before printing `kubesim ready`: {lines:?}");
    })
    .await
    .expect("kubesim gets ready");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    Running { child, lines }
}

async fn signal(r: &mut Running, sig: &str) -> std::process::ExitStatus {
    let pid = r.child.id().expect("still running").to_string();
    assert!(
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::timeout(GUARD, r.child.wait())
        .await
        .expect("kubesim exits on the signal")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_every_context_writes_the_audit_log_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let audit = dir.path().join("audit.jsonl");
    let mut sim = start(&[
        "--clusters",
        "alpha,beta",
        "--kubeconfig-out",
        kc.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
    ])
    .await;
    assert_eq!(sim.lines.last().map(String::as_str), Some("kubesim ready"));
    assert!(
        sim.lines
            .iter()
            .any(|l| l.starts_with("kubesim admin http://127.0.0.1:")),
        "{:?}",
        sim.lines
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kc).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the kubeconfig holds tokens");
    }
    let kubectl = Kubectl::new(&kc).home(dir.path());
    let ctx = kubectl
        .run(&["config", "get-contexts", "-o", "name"])
        .await
        .ok();
    assert_eq!(ctx.stdout, "alpha\nbeta\n");
    let cur = kubectl.run(&["config", "current-context"]).await.ok();
    assert_eq!(cur.stdout, "alpha\n");
    for c in ["alpha", "beta"] {
        let r = kubectl
            .run(&["--context", c, "get", "namespaces", "-o", "name"])
            .await
            .ok();
        assert_eq!(
            r.stdout,
            "namespace/default\nnamespace/kube-public\nnamespace/kube-system\n"
        );
    }
    // The clusters are separate: what is created in one is not in the other.
    kubectl
        .run(&["--context", "beta", "create", "namespace", "only-beta"])
        .await
        .ok();
    kubectl
        .run(&["--context", "beta", "get", "namespace", "only-beta"])
        .await
        .ok();
    let r = kubectl
        .run(&["--context", "alpha", "get", "namespace", "only-beta"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): namespaces \"only-beta\" not found\n"
    );
    let v = kubectl
        .run(&["--context", "beta", "version", "-o", "json"])
        .await
        .ok()
        .json();
    assert!(
        v["serverVersion"]["gitVersion"]
            .as_str()
            .is_some_and(|g| g.starts_with("v1.")),
        "{v}"
    );

    // The audit log is written as the requests come (one JSON object per line).
    let entries = read_audit(&audit);
    assert!(entries.iter().any(|e| e.cluster == "beta"
        && e.verb == "create"
        && e.resource == "namespaces"
        && e.name == "only-beta"
        && e.code == 201));
    assert!(entries.iter().any(|e| e.cluster == "alpha"
        && e.verb == "get"
        && e.name == "only-beta"
        && e.code == 404));
    assert!(
        entries
            .iter()
            .all(|e| e.user == "kubesim:admin" || e.user.is_empty()),
        "only the admin talked"
    );
    assert!(
        entries.windows(2).all(|w| w[0].seq < w[1].seq),
        "ordered by a global seq"
    );
    let created = entries
        .iter()
        .find(|e| e.verb == "create" && e.name == "only-beta")
        .unwrap();
    assert_eq!(
        created.object.as_ref().unwrap()["metadata"]["name"],
        "only-beta",
        "writes carry the object"
    );

    let status = signal(&mut sim, "-TERM").await;
    assert!(status.success(), "exit status on SIGTERM: {status:?}");
    let after = read_audit(&audit);
    assert!(after.len() >= entries.len());
    // Nothing listens any more.
    let r = kubectl
        .run(&[
            "--context",
            "alpha",
            "get",
            "namespaces",
            "--request-timeout=5s",
        ])
        .await
        .fails(1);
    assert!(r.stderr.contains("was refused"), "{r:#?}");
}

fn read_audit(path: &Path) -> Vec<AuditEntry> {
    let text = std::fs::read_to_string(path).expect("audit log exists");
    assert!(text.ends_with('\n'), "complete lines only");
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("audit line is not an AuditEntry ({e}): {l}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_0_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut r = start(&[
        "--clusters",
        "solo",
        "--kubeconfig-out",
        kc.to_str().unwrap(),
    ])
    .await;
    Kubectl::new(&kc)
        .home(dir.path())
        .run(&["get", "namespaces"])
        .await
        .ok();
    let status = signal(&mut r, "-INT").await;
    assert!(status.success(), "exit status on SIGINT: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let run = |args: Vec<String>| async move {
        let out = tokio::time::timeout(
            GUARD,
            tokio::process::Command::new(env!("CARGO_BIN_EXE_kubesim"))
                .args(&args)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("kubesim exits")
        .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let kcs = kc.to_str().unwrap().to_string();
    // No --clusters: a usage error (clap: exit 2).
    let (code, stdout, stderr) = run(vec!["--kubeconfig-out".into(), kcs.clone()]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--clusters"), "{stderr}");
    assert!(!stdout.contains("kubesim ready"));
    // The same name twice.
    let (code, stdout, stderr) = run(vec![
        "--clusters".into(),
        "a,a".into(),
        "--kubeconfig-out".into(),
        kcs.clone(),
    ])
    .await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("given twice"), "{stderr}");
    assert!(!stdout.contains("kubesim ready"));
    // A bad duration.
    let (code, _, stderr) = run(vec![
        "--clusters".into(),
        "a".into(),
        "--kubeconfig-out".into(),
        kcs.clone(),
        "--casskop-ready-after".into(),
        "soon".into(),
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid duration"), "{stderr}");
    // An unwritable kubeconfig path.
    let (code, stdout, stderr) = run(vec![
        "--clusters".into(),
        "a".into(),
        "--kubeconfig-out".into(),
        "/nonexistent-dir/kc".into(),
    ])
    .await;
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("/nonexistent-dir/kc"),
        "the error names the path: {stderr}"
    );
    assert!(!stdout.contains("kubesim ready"));
}

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
        .stdout(Stdio::piped())
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
    let entries: Vec<AuditEntry> = body
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
