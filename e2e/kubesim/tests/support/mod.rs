//! Helpers of the kubesim integration tests: an in-process kubesim with a kubeconfig in a tempdir, real `kubectl` runs (kubesim::kubectl), raw HTTPS requests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use http::Request;
pub use kubesim::kubectl::{Kubectl, Run};
use kubesim::{Cluster, Sim, SimOptions};
use serde_json::Value;

/// A running kubesim plus the tempdir holding its kubeconfig and kubectl's caches.
pub struct Env {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Env {
    pub async fn start(names: &[&str]) -> Env {
        Self::start_with(names, SimOptions::default()).await
    }

    pub async fn start_with(names: &[&str], opts: SimOptions) -> Env {
        let sim = Sim::start(names, opts).await.expect("kubesim starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig)
            .expect("kubeconfig written");
        Env {
            sim,
            dir,
            kubeconfig,
        }
    }

    pub fn cluster(&self, name: &str) -> &Cluster {
        self.sim.cluster(name)
    }

    /// Writes `content` to a file in the tempdir and returns its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("test file written");
        p
    }

    /// kubectl with this env's kubeconfig (current context: the first cluster), HOME and caches
    /// in the tempdir; a clone can move into a spawned task.
    pub fn kubectl_runner(&self) -> Kubectl {
        Kubectl::new(&self.kubeconfig).home(self.dir.path())
    }

    /// Runs kubectl with this env's kubeconfig (current context: the first cluster).
    pub async fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_runner().run(args).await
    }

    /// Runs kubectl with `stdin` piped in.
    pub async fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.kubectl_runner().run_stdin(args, stdin).await
    }

    /// Adds a kubeconfig user authenticating with `token` and a context `ctx` using it on `cluster`.
    pub async fn add_token_context(&self, ctx: &str, cluster: &str, token: &str, namespace: &str) {
        let user = format!("{ctx}-user");
        self.kubectl(&[
            "config",
            "set-credentials",
            &user,
            &format!("--token={token}"),
        ])
        .await
        .ok();
        self.kubectl(&[
            "config",
            "set-context",
            ctx,
            &format!("--cluster={cluster}"),
            &format!("--user={user}"),
            &format!("--namespace={namespace}"),
        ])
        .await
        .ok();
    }

    pub async fn shutdown(self) {
        self.sim.shutdown().await;
    }
}

/// A namespaced CRD `widgets.example.com` (kind Widget, short name wd) with a status subresource and
/// printer columns Size/Phase/Age.
pub const WIDGET_CRD: &str = r"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Phase
      type: string
      jsonPath: .status.phase
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
";

/// The widget object `name` in `ns` with spec.size `size`, as YAML.
pub fn widget_yaml(ns: &str, name: &str, size: i64) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  size: {size}\n"
    )
}

/// A raw HTTP answer: code, content type and body.
#[derive(Debug)]
pub struct Raw {
    pub code: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer is not JSON ({e}): {} {}",
                self.code,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request through kube-rs' raw `send` (no status handling): the connection must answer.
pub async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Raw {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        b = b.header(http::header::CONTENT_TYPE, ct);
    }
    let req = b
        .body(kube::client::Body::from(body))
        .expect("request builds");
    let resp = client
        .send(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: no HTTP answer (connection dropped?): {e}"));
    let code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp
        .into_body()
        .collect_bytes()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: body cut off: {e}"))
        .to_vec();
    Raw {
        code,
        content_type,
        body,
    }
}

/// Asserts `v` is a failure `Status` with `code` and `reason`; returns its message.
#[track_caller]
pub fn assert_status(v: &Value, code: u16, reason: &str) -> String {
    assert_eq!(v["kind"], "Status", "not a Status: {v}");
    assert_eq!(v["apiVersion"], "v1", "Status apiVersion: {v}");
    assert_eq!(v["status"], "Failure", "Status status: {v}");
    assert_eq!(v["code"], code, "Status code: {v}");
    assert_eq!(v["reason"], reason, "Status reason: {v}");
    let msg = v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("Status without message: {v}"))
        .to_string();
    assert!(!msg.is_empty(), "empty message: {v}");
    msg
}

/// A kube-rs client of `cluster` authenticating with `token`, without kube's default retries on
/// 429/503/504, so each injected error reaches the caller.
pub async fn no_retry_client(cluster: &Cluster, token: &str) -> kube::Client {
    let yaml = kubesim::kubeconfig::render(&[(
        cluster.name().to_string(),
        cluster.url(),
        cluster.ca_pem(),
        token.to_string(),
    )]);
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig parses");
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("client config");
    cfg.default_retry = false;
    kube::Client::try_from(cfg).expect("client builds")
}

/// Polls the audit log until `pred` holds for an entry (at most 60 s; no timing is asserted).
pub async fn until_audited(sim: &Sim, pred: impl Fn(&kubesim::AuditEntry) -> bool) {
    for _ in 0..1200 {
        if sim.audit().iter().any(&pred) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the expected request never reached the audit log");
}

/// `https://127.0.0.1:PORT` -> `127.0.0.1:PORT`.
fn host_port(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string()
}

/// Waits (at most 60 s) until TCP connections to `url` are refused: the unreachable fault closes
/// the listener from the server's task, a moment after the fault is set.
pub async fn until_refused(url: &str) {
    let addr = host_port(url);
    for _ in 0..1200 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} still accepts connections");
}

/// Waits (at most 60 s) until `url` accepts TCP connections again (the listener is re-bound).
pub async fn until_listening(url: &str) {
    let addr = host_port(url);
    for _ in 0..1200 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} does not accept connections");
}
