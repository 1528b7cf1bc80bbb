//! Test support: runs the real `kubectl` against kubesim clusters, killed after a timeout.
//!
//! ```no_run
//! # async fn demo(sim: &kubesim::Sim, dir: &std::path::Path) {
//! use kubesim::kubectl::Kubectl;
//! sim.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
//! let kubectl = Kubectl::new(dir.join("kubeconfig")).context("k8s-cluster1").home(dir);
//! let namespaces = kubectl.run(&["get", "ns", "-o", "json"]).await.ok().json();
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

/// Default limit of one kubectl run (generous: tests share 2 cores).
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// How to run kubectl: kubeconfig, optional context, namespace and home, and a time limit.
///
/// Cheap to clone, so a copy can move into a spawned task (a `kubectl wait` or `get -w`).
#[derive(Clone, Debug)]
pub struct Kubectl {
    kubeconfig: PathBuf,
    context: Option<String>,
    namespace: Option<String>,
    home: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    timeout: Duration,
    echo: bool,
}

/// What one kubectl run gave.
#[derive(Debug)]
pub struct Run {
    /// The exit code; -1 when kubectl was killed by a signal.
    pub code: i32,
    /// What kubectl printed on stdout (lossy UTF-8).
    pub stdout: String,
    /// What kubectl printed on stderr (lossy UTF-8).
    pub stderr: String,
}

impl Run {
    /// Whether kubectl exited 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panics (with everything kubectl printed) unless it exited 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "kubectl failed: {self:#?}");
        self
    }

    /// Panics unless kubectl exited with `code`.
    #[track_caller]
    pub fn fails(self, code: i32) -> Run {
        assert_eq!(self.code, code, "kubectl exit code: {self:#?}");
        self
    }

    /// stdout parsed as JSON; panics when it is not.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("kubectl printed no JSON ({e}): {self:#?}"))
    }

    /// stdout split into lines of whitespace-separated cells (for tables).
    pub fn table(&self) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    }
}

impl Kubectl {
    /// kubectl reading `kubeconfig` (through `KUBECONFIG`, so `--kubeconfig` in the arguments of
    /// one run still wins), with its current context, [`KUBECTL_TIMEOUT`], each run echoed.
    pub fn new(kubeconfig: impl Into<PathBuf>) -> Kubectl {
        Kubectl {
            kubeconfig: kubeconfig.into(),
            context: None,
            namespace: None,
            home: None,
            cache_dir: None,
            timeout: KUBECTL_TIMEOUT,
            echo: true,
        }
    }

    /// Passes `--context context` before each run's arguments.
    pub fn context(mut self, context: &str) -> Kubectl {
        self.context = Some(context.to_string());
        self
    }

    /// Passes `-n namespace` before each run's arguments.
    pub fn namespace(mut self, namespace: &str) -> Kubectl {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Sets `HOME` to `dir` and the discovery cache to `dir/kube-cache`: no stale discovery
    /// from another test whose server happened to get the same port.
    pub fn home(mut self, dir: &Path) -> Kubectl {
        self.home = Some(dir.to_path_buf());
        self.cache_dir = Some(dir.join("kube-cache"));
        self
    }

    /// Keeps the discovery cache in `dir` (`KUBECACHEDIR`, as `--cache-dir` would).
    pub fn cache_dir(mut self, dir: &Path) -> Kubectl {
        self.cache_dir = Some(dir.to_path_buf());
        self
    }

    /// Kills each run after `limit` instead of [`KUBECTL_TIMEOUT`] (for long `kubectl wait`s).
    pub fn timeout(mut self, limit: Duration) -> Kubectl {
        self.timeout = limit;
        self
    }

    /// Does not echo runs (for callers that poll, whose echoes would bury a failure).
    pub fn quiet(mut self) -> Kubectl {
        self.echo = false;
        self
    }

    /// The command for `kubectl args`: environment and leading flags set, stdin null,
    /// stdout and stderr piped, killed when dropped. For runs read while they go (`get -w`).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(kubectl_bin());
        if let Some(context) = &self.context {
            cmd.args(["--context", context]);
        }
        if let Some(namespace) = &self.namespace {
            cmd.args(["-n", namespace]);
        }
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(home) = &self.home {
            cmd.env("HOME", home);
        }
        if let Some(cache) = &self.cache_dir {
            cmd.env("KUBECACHEDIR", cache);
        }
        cmd
    }

    /// Runs `kubectl args` to its end; panics if it cannot start or outlives the timeout.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_input(args, None).await
    }

    /// Runs `kubectl args` with `stdin` piped in.
    pub async fn run_stdin(&self, args: &[&str], stdin: impl AsRef<[u8]>) -> Run {
        self.run_input(args, Some(stdin.as_ref())).await
    }

    /// Runs `kubectl args`, with `stdin` piped in when there is one.
    pub async fn run_input(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        use tokio::io::AsyncWriteExt;
        let mut cmd = self.command(args);
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", kubectl_bin().display()));
        if let Some(input) = stdin {
            let mut si = child.stdin.take().expect("stdin piped");
            si.write_all(input).await.expect("writing kubectl's stdin");
            drop(si);
        }
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within {:?}", self.timeout))
            .expect("kubectl ran");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if self.echo {
            println!(
                "$ kubectl {}\n  -> {} | {} | {}",
                args.join(" "),
                run.code,
                run.stdout.trim_end(),
                run.stderr.trim_end()
            );
        }
        run
    }

    /// [`Kubectl::run_input`] for synchronous callers, inside or outside a
    /// tokio runtime (it runs on a thread of its own).
    pub fn run_blocking(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for kubectl")
                    .block_on(self.run_input(args, stdin))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// The kubectl to run: $KUBESIM_TEST_KUBECTL if set; else kubectl 1.32 (the version the tests' expected outputs come from)
/// when PATH's kubectl is a version dispatcher with a `kubectl.1.32` beside it (the Google Cloud SDK
/// layout, which would otherwise pick the version matching the server's); else PATH's kubectl.
pub fn kubectl_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("KUBESIM_TEST_KUBECTL") {
            return PathBuf::from(p);
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file());
        let pinned = on_path
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.parent().map(|d| d.join("kubectl.1.32")))
            .filter(|p| p.is_file());
        let bin = pinned.unwrap_or_else(|| PathBuf::from("kubectl"));
        println!("kubectl under test: {}", bin.display());
        bin
    })
    .clone()
}
