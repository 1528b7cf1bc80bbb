//! e2e harness: kubesim clusters reached only through kubeconfig contexts, the real
//! `multi-casskop` binary as a child process, kubectl, audit-log analysis of rollouts, and a
//! TCP forwarder that can freeze (proxy).

pub mod audit;
pub mod bench_frozen;
pub mod benchmark;
pub mod chart;
pub mod clientconfigs;
pub mod faults;
pub mod helm_release;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kubesim::casskop::CasskopOptions;
use kubesim::kubectl::{Kubectl, Run};
use kubesim::{Sim, SimOptions};
use serde_json::{Value, json};

/// Namespace of the controller, its MultiCasskops and (unless overridden) the CassandraClusters.
pub const NAMESPACE: &str = "cassandra-e2e";

/// The workspace root (for `samples/` and `target/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .to_path_buf()
}

/// The binary [`binary`] answers, when a program chose it (the bench: the release build beside
/// it). Set once, before any environment is started.
static CHOSEN_BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Make [`binary`] answer `path` for the rest of this process.
pub fn use_binary(path: PathBuf) {
    let _ = CHOSEN_BINARY.set(path);
}

/// The `multi-casskop` binary built by `cargo build --workspace --bins` (scripts/test.sh does).
/// [`use_binary`], then `MULTI_CASSKOP_BIN`, override it.
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = CHOSEN_BINARY.get() {
        return Ok(p.clone());
    }
    if let Ok(p) = std::env::var("MULTI_CASSKOP_BIN") {
        return Ok(PathBuf::from(p));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let p = target.join("debug").join("multi-casskop");
    if !p.exists() {
        bail!(
            "{} not found: run `cargo build -p multi-casskop` (or scripts/test.sh) before the e2e tests",
            p.display()
        );
    }
    Ok(p)
}

/// Simulated clusters with the simulated CassKop, a namespace in each, and a kubeconfig whose
/// contexts authenticate as service accounts (so the audit log tells the controller apart).
pub struct Env {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    /// kubeconfig with one context per cluster; users are service accounts of [`NAMESPACE`].
    pub kubeconfig: PathBuf,
    /// kubeconfig with the admin token of every cluster (for the test's own kubectl calls).
    pub admin_kubeconfig: PathBuf,
    names: Vec<String>,
}

/// Options of [`Env::start`].
#[derive(Clone, Debug)]
pub struct EnvOptions {
    /// Simulated CassKop timing (1 s for each step by default).
    pub casskop: CasskopOptions,
    /// Service account the controller's kubeconfig authenticates as.
    pub controller_sa: String,
    /// Bind cluster-admin to the namespace's service accounts in the local cluster too (false:
    /// the test grants the local permissions itself, e.g. the chart's Role).
    pub local_cluster_admin: bool,
}

impl Default for EnvOptions {
    fn default() -> Self {
        Self {
            casskop: CasskopOptions {
                ready_after: Duration::from_secs(1),
                react_after: Duration::from_secs(1),
            },
            controller_sa: "multi-casskop".to_string(),
            local_cluster_admin: true,
        }
    }
}

impl Env {
    /// Start `names` (first = local) with the default options.
    pub async fn start(names: &[&str]) -> anyhow::Result<Env> {
        Self::start_with(names, EnvOptions::default()).await
    }

    /// Start `names` (first = local).
    pub async fn start_with(names: &[&str], opts: EnvOptions) -> anyhow::Result<Env> {
        let sim = Sim::start(
            names,
            SimOptions {
                casskop: Some(opts.casskop.clone()),
                audit_log: None,
                ..Default::default()
            },
        )
        .await?;
        let dir = tempfile::tempdir()?;
        for (i, c) in sim.clusters().iter().enumerate() {
            let client = c.client().await;
            let nss: kube::Api<k8s_openapi::api::core::v1::Namespace> =
                kube::Api::all(client.clone());
            let ns = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
            nss.create(&Default::default(), &ns)
                .await
                .with_context(|| format!("creating namespace {NAMESPACE} in {}", c.name()))?;
            if i == 0 && !opts.local_cluster_admin {
                continue;
            }
            // Every service account of the namespace is cluster-admin: tests give each
            // controller replica its own account so the audit log tells them apart.
            let crbs: kube::Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> =
                kube::Api::all(client);
            let crb = serde_json::from_value(json!({
                "metadata": {"name": "e2e-controllers"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "Group", "name": format!("system:serviceaccounts:{NAMESPACE}"), "apiGroup": "rbac.authorization.k8s.io"}]
            }))?;
            crbs.create(&Default::default(), &crb)
                .await
                .with_context(|| format!("binding cluster-admin in {}", c.name()))?;
        }
        let admin_kubeconfig = dir.path().join("admin-kubeconfig");
        sim.write_kubeconfig(&admin_kubeconfig)?;
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        let env = Env {
            kubeconfig: dir.path().join("kubeconfig"),
            admin_kubeconfig,
            sim,
            dir,
            names,
        };
        env.write_sa_kubeconfig(&env.kubeconfig, &opts.controller_sa)?;
        // The CRD comes from the binary itself, through kubectl, as a user would install it.
        let crd = Command::new(binary()?).arg("crd").output()?;
        if !crd.status.success() {
            bail!(
                "multi-casskop crd failed: {}",
                String::from_utf8_lossy(&crd.stderr)
            );
        }
        env.kubectl_stdin(&["apply", "-f", "-"], &crd.stdout)?;
        Ok(env)
    }

    /// Names of the clusters, local first.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The local cluster.
    pub fn local(&self) -> &kubesim::Cluster {
        self.sim.cluster(&self.names[0])
    }

    /// Write a kubeconfig whose contexts (one per cluster, named after it) use a fresh token of
    /// service account `sa` in [`NAMESPACE`]. Returns the tokens (for log searches).
    pub fn write_sa_kubeconfig(&self, path: &Path, sa: &str) -> anyhow::Result<Vec<String>> {
        self.write_sa_kubeconfig_via(path, sa, &self.local().url())
    }

    /// As [`Env::write_sa_kubeconfig`], with the local cluster reached at `local_url` (a proxy
    /// in front of it) and every other cluster directly.
    pub fn write_sa_kubeconfig_via(
        &self,
        path: &Path,
        sa: &str,
        local_url: &str,
    ) -> anyhow::Result<Vec<String>> {
        let mut entries = Vec::new();
        let mut tokens = Vec::new();
        for c in self.sim.clusters() {
            let token = c.issue_token(NAMESPACE, sa, None);
            tokens.push(token.clone());
            let url = if c.name() == self.names()[0] {
                local_url.to_string()
            } else {
                c.url()
            };
            entries.push((c.name().to_string(), url, c.ca_pem(), token));
        }
        std::fs::write(path, kubesim::kubeconfig::render(&entries))?;
        Ok(tokens)
    }

    /// The user name the audit log shows for service account `sa`.
    pub fn sa_user(sa: &str) -> String {
        format!("system:serviceaccount:{NAMESPACE}:{sa}")
    }

    /// Run kubectl as admin against `context`; fails with its stderr on a non-zero exit.
    pub fn kubectl_in(&self, context: &str, args: &[&str]) -> anyhow::Result<String> {
        checked(args, self.kubectl_raw(context, args, None))
    }

    /// kubectl as admin against the local cluster.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.kubectl_in(&self.names[0], args)
    }

    /// kubectl against the local cluster with `input` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &[u8]) -> anyhow::Result<String> {
        checked(args, self.kubectl_raw(&self.names[0], args, Some(input)))
    }

    /// kubectl as admin in [`NAMESPACE`] of `context`, exit code not checked, not echoed (the
    /// scenarios poll); killed after 5 minutes, beyond the `--timeout=240s` of their waits.
    pub fn kubectl_raw(&self, context: &str, args: &[&str], input: Option<&[u8]>) -> Run {
        Kubectl::new(&self.admin_kubeconfig)
            .context(context)
            .namespace(NAMESPACE)
            .timeout(Duration::from_secs(300))
            .quiet()
            .run_blocking(args, input)
    }

    /// `kubectl apply -f` of a manifest text (local cluster).
    pub fn apply_yaml(&self, yaml: &str) -> anyhow::Result<String> {
        self.kubectl_stdin(&["apply", "-f", "-"], yaml.as_bytes())
    }

    /// A MultiCasskop from the local cluster, as JSON.
    pub fn get_mc(&self, name: &str) -> anyhow::Result<Value> {
        let out = self.kubectl(&["get", "multicasskop", name, "-o", "json"])?;
        Ok(serde_json::from_str(&out)?)
    }

    /// A CassandraCluster at `site`, as JSON; `None` when absent.
    pub fn get_cc(&self, site: &str, name: &str) -> anyhow::Result<Option<Value>> {
        let out = self.kubectl_raw(
            site,
            &[
                "get",
                "cassandracluster",
                name,
                "-o",
                "json",
                "--ignore-not-found",
            ],
            None,
        );
        if !out.success() {
            bail!(
                "kubectl get cassandracluster {name} in {site}: {}",
                out.stderr
            );
        }
        if out.stdout.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&out.stdout)?))
    }

    /// Replace the simulated CassKop's CRD in every cluster with CassKop's real one from
    /// `../shared/upstream`, as an operator would apply it. `false` (after printing why the
    /// caller skips) when that file is absent.
    pub fn use_real_casskop_crd(&self) -> anyhow::Result<bool> {
        let Some(crd) = kubesim::fixtures::upstream_file("casskop-cassandraclusters-crd.yaml")
        else {
            return Ok(false);
        };
        let path = crd.display().to_string();
        for site in &self.names {
            self.kubectl_in(
                site,
                &["apply", "--server-side", "--force-conflicts", "-f", &path],
            )?;
            self.kubectl_in(
                site,
                &[
                    "wait",
                    "--for=condition=Established",
                    "--timeout=30s",
                    "crd/cassandraclusters.db.orange.com",
                ],
            )?;
        }
        Ok(true)
    }

    /// Events (events.k8s.io) of the local cluster regarding MultiCasskop `mc`: (type, reason,
    /// note).
    pub fn events_of(&self, mc: &str) -> anyhow::Result<Vec<(String, String, String)>> {
        let out = self.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
        let list: Value = serde_json::from_str(&out)?;
        Ok(list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|e| e["regarding"]["name"] == mc && e["regarding"]["kind"] == "MultiCasskop")
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
                (s("type"), s("reason"), s("note"))
            })
            .collect())
    }

    /// Start the controller with the service-account kubeconfig, local = first cluster,
    /// remotes = the others, plus `extra` arguments.
    pub fn start_controller(
        &self,
        label: &str,
        extra: &[&str],
    ) -> anyhow::Result<ControllerProcess> {
        let remotes = self.names[1..].join(",");
        let mut args: Vec<String> = vec![
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            "--context".into(),
            self.names[0].clone(),
            format!("-l{}", self.names[0]),
            "--namespace".into(),
            NAMESPACE.into(),
            "--imports-dir".into(),
            self.dir.path().join("no-imports").display().to_string(),
        ];
        if !remotes.is_empty() {
            args.push(format!("-r{remotes}"));
        }
        args.extend(extra.iter().map(ToString::to_string));
        ControllerProcess::spawn(self.dir.path(), label, &args, &[])
    }

    /// `multi-casskop register` as a user runs it with the admin kubeconfig: site `source` into
    /// the local cluster, both in [`NAMESPACE`], plus `extra` arguments. Exit code not checked.
    pub fn register(&self, source: &str, extra: &[&str]) -> anyhow::Result<std::process::Output> {
        let admin = self.admin_kubeconfig.display().to_string();
        let out = Command::new(binary()?)
            .args([
                "register",
                "--source-context",
                source,
                "--dest-context",
                &self.names[0],
                "--source-kubeconfig",
                &admin,
                "--dest-kubeconfig",
                &admin,
                "--source-namespace",
                NAMESPACE,
                "--dest-namespace",
                NAMESPACE,
            ])
            .args(extra)
            .output()?;
        Ok(out)
    }
}

/// The `status.seedlist` of CassandraCluster JSON (empty when it has none).
pub fn seed_list(cc: &Value) -> Vec<String> {
    cc["status"]["seedlist"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Env {
    /// Waits until every site of `sites` has CassandraCluster `mc` Running/Done with seed list
    /// `want`, and MultiCasskop `mc` is Ready for its current generation.
    pub async fn settled_with_seeds(
        &self,
        mc: &str,
        sites: &[&str],
        want: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        eventually("every site Running with the seed list", timeout, || async {
            let obj = self.get_mc(mc)?;
            let mut ok = obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
                && condition(&obj, "Ready").is_some_and(|c| c.0 == "True");
            for site in sites {
                ok &= self
                    .get_cc(site, mc)?
                    .is_some_and(|cc| audit::running_done(&cc) && seed_list(&cc) == want);
            }
            Ok(ok.then_some(()))
        })
        .await
    }
}

/// stdout of a kubectl run that had to succeed; its stderr as the error otherwise.
fn checked(args: &[&str], out: Run) -> anyhow::Result<String> {
    if !out.success() {
        bail!("kubectl {} failed: {}", args.join(" "), out.stderr);
    }
    Ok(out.stdout)
}

/// A `multi-casskop` child process; killed on drop.
pub struct ControllerProcess {
    child: Option<Child>,
    /// Combined stdout/stderr of the process.
    pub log_path: PathBuf,
    /// Where `/healthz`, `/readyz`, `/metrics` are served.
    pub metrics_addr: String,
}

/// A free local port (bound then released).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl ControllerProcess {
    /// Spawn the binary with `args` (a `--metrics-addr` on a free port is added unless given).
    pub fn spawn(
        dir: &Path,
        label: &str,
        args: &[String],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut args = args.to_vec();
        let metrics_addr = match args.iter().position(|a| a == "--metrics-addr") {
            Some(i) => args[i + 1].clone(),
            None => {
                let a = format!("127.0.0.1:{}", free_port()?);
                args.push("--metrics-addr".into());
                args.push(a.clone());
                a
            }
        };
        let log_path = dir.join(format!("{label}.log"));
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new(binary()?);
        cmd.args(&args)
            .env_remove("RUST_LOG")
            .env_remove("WATCH_NAMESPACE")
            .env("LOG_LEVEL", "Debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("starting multi-casskop")?;
        Ok(Self {
            child: Some(child),
            log_path,
            metrics_addr,
        })
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the exit (SIGKILL after 20 s). Returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `Some(code)` once the process has exited.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// GET a path of the probe endpoint: (status code, body). Plain HTTP/1.1 over TCP.
    pub fn http_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.metrics_addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let code = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no HTTP status line")?;
        let body = out
            .split_once("\r\n\r\n")
            .map(|x| x.1)
            .unwrap_or("")
            .to_string();
        Ok((code, body))
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Poll `f` every 100 ms until it returns `Some`, failing after `timeout` with `what`.
/// (A generous bound on a condition, not a timing assertion.)
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            match last_err {
                Some(e) => bail!("timed out waiting for {what} (last error: {e:#})"),
                None => bail!("timed out waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The condition `type_` of a MultiCasskop JSON, as (status, reason, message).
pub fn condition(mc: &Value, type_: &str) -> Option<(String, String, String)> {
    mc["status"]["conditions"].as_array()?.iter().find_map(|c| {
        (c["type"] == type_).then(|| {
            (
                c["status"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        })
    })
}

/// A sample manifest from `samples/`.
pub fn sample(name: &str) -> anyhow::Result<String> {
    let p = workspace_root().join("samples").join(name);
    std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
}

/// Rename the `k8s-clusterN` site names of a sample to the simulated cluster names.
pub fn retarget_sample(yaml: &str, names: &[String]) -> String {
    let mut out = yaml.to_string();
    for (i, n) in names.iter().enumerate() {
        out = out.replace(&format!("k8s-cluster{}", i + 1), n);
    }
    out
}

/// The last `n` lines the controller itself logged (its own modules, not client internals).
pub fn controller_log_tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("multi_casskop") && !l.contains("HTTP{"))
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
