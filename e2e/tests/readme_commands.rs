//! Runs the README's `sh` code blocks as written, each in the mode its
//! `<!-- readme-test: ... -->` marker names: skipped with a reason, against kubesim, the demo, or
//! (unmarked) as is from the workspace root.
//!
//! Marker grammar (an HTML comment on the line directly before the opening fence):
//! - `readme-test: skip: REASON` — not run; REASON must say why it cannot run here.
//! - `readme-test: demo` — the one-command demo; run only by [`readme_demo_command_exits_0_with_sites_running_in_order`].
//! - `readme-test: kubesim C1,C2[,..] [casskop] [setup: ACTION; ACTION...] [-- NOTE]` — run with
//!   `KUBECONFIG` pointing at simulated clusters named C1, C2, ... (contexts named after them,
//!   current context C1, admin credentials) and `target/debug` first on `PATH`. Consecutive
//!   kubesim blocks naming the same clusters share one simulation, in README order (the
//!   real-cluster story is a sequence). `casskop` runs the simulated CassKop; `kubelet` runs
//!   kubesim's simulated kubelet from that block on, with the chart's image mapped to the built
//!   binary, so `helm install` (`scripts/helm`, real Helm 4, first on `PATH` after
//!   `target/debug`) runs the controller as the chart's pod. Setup actions, done
//!   by the test before the block (what the README's prose asks of the user, or what a skipped
//!   block such as `helm install` would have done): `namespace NS` (created in every cluster),
//!   `crd` (`multi-casskop crd | kubectl apply -f -` in C1, as the chart's CRD template would),
//!   `controller ARGS...` (the built `multi-casskop ARGS...` started in the background with
//!   C1's context and an empty imports directory, as the chart's Deployment would start it).
//! - `readme-test: background until TEXT` — a long-running command the README asks to leave
//!   running (e.g. kubesim by hand): started as is from the workspace root; the test goes on once
//!   its output shows TEXT (it fails if the command exits first) and stops it (SIGTERM to its
//!   process group) after the last block.
//! - no marker — run as is (`bash -euo pipefail -c`) from the workspace root, with a timeout.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use e2e::{ControllerProcess, workspace_root};
use kubesim::casskop::CasskopOptions;
use kubesim::{KubeletOptions, Sim, SimOptions};

/// The chart's image (values.yaml `image.repository`), run by the simulated kubelet.
const CHART_IMAGE: &str = "ghcr.io/multi-casskop/multi-casskop";
use serde_json::json;

/// How a block is run.
#[derive(Clone, Debug, PartialEq)]
enum Mode {
    Skip(String),
    Demo,
    Kubesim(KubesimSpec),
    Background(String),
    Plain,
}

#[derive(Clone, Debug, PartialEq)]
struct KubesimSpec {
    clusters: Vec<String>,
    casskop: bool,
    kubelet: bool,
    setup: Vec<Setup>,
    note: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Setup {
    Namespace(String),
    Crd,
    Controller(Vec<String>),
}

#[derive(Clone, Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    code: String,
    mode: Mode,
}

/// Every fenced block with info string `sh`, with the mode of the marker directly before it.
fn parse_readme(text: &str) -> anyhow::Result<Vec<Block>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_start();
        let Some(info) = l.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - l.len();
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            let raw = lines[i];
            // Strip the fence's indentation (blocks inside list items).
            let cut = raw.len() - raw.trim_start().len();
            body.push(&raw[cut.min(indent)..]);
            i += 1;
        }
        if i >= lines.len() {
            bail!("README.md:{}: unterminated code block", start + 1);
        }
        i += 1; // closing fence
        if info.trim() != "sh" {
            continue;
        }
        let marker = start
            .checked_sub(1)
            .map(|p| lines[p].trim())
            .and_then(|p| p.strip_prefix("<!--"))
            .and_then(|p| p.strip_suffix("-->"))
            .map(str::trim)
            .and_then(|p| p.strip_prefix("readme-test:"))
            .map(str::trim);
        let mode = match marker {
            None => Mode::Plain,
            Some(m) => parse_marker(m).with_context(|| format!("README.md:{start}"))?,
        };
        blocks.push(Block {
            line: start + 1,
            code: body.join("\n") + "\n",
            mode,
        });
    }
    Ok(blocks)
}

fn parse_marker(m: &str) -> anyhow::Result<Mode> {
    if let Some(reason) = m.strip_prefix("skip:") {
        let reason = reason.trim();
        if reason.is_empty() {
            bail!("a skip marker needs a reason");
        }
        return Ok(Mode::Skip(reason.to_string()));
    }
    if m == "demo" {
        return Ok(Mode::Demo);
    }
    if let Some(text) = m.strip_prefix("background until ") {
        let text = text.trim();
        if text.is_empty() {
            bail!("a background marker needs the text that says the command is ready");
        }
        return Ok(Mode::Background(text.to_string()));
    }
    let Some(rest) = m.strip_prefix("kubesim ") else {
        bail!("unknown readme-test marker {m:?}");
    };
    let (rest, note) = match rest.split_once(" -- ") {
        Some((r, n)) => (r, n.trim().to_string()),
        None => (rest, String::new()),
    };
    let (head, setup_text) = match rest.split_once("setup:") {
        Some((h, s)) => (h, s),
        None => (rest, ""),
    };
    let mut words = head.split_whitespace();
    let clusters: Vec<String> = words
        .next()
        .context("kubesim marker without cluster names")?
        .split(',')
        .map(str::to_string)
        .collect();
    let mut casskop = false;
    let mut kubelet = false;
    for w in words {
        match w {
            "casskop" => casskop = true,
            "kubelet" => kubelet = true,
            other => bail!("unknown kubesim option {other:?}"),
        }
    }
    let mut setup = Vec::new();
    for action in setup_text
        .split(';')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        let mut w = action.split_whitespace();
        match w.next() {
            Some("namespace") => setup.push(Setup::Namespace(
                w.next().context("`namespace` needs a name")?.to_string(),
            )),
            Some("crd") => setup.push(Setup::Crd),
            Some("controller") => setup.push(Setup::Controller(w.map(str::to_string).collect())),
            _ => bail!("unknown setup action {action:?}"),
        }
    }
    Ok(Mode::Kubesim(KubesimSpec {
        clusters,
        casskop,
        kubelet,
        setup,
        note,
    }))
}

fn readme() -> anyhow::Result<Vec<Block>> {
    let path = workspace_root().join("README.md");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_readme(&text)
}

/// Remove what `cargo test` put in the test's environment (`CARGO`, `CARGO_PKG_*`, ...): a
/// user's shell has none of it, and build scripts that watch those variables would make the
/// README's `cargo run` rebuild everything. `CARGO_HOME` and `CARGO_TARGET_DIR` stay.
fn scrub_cargo_env(cmd: &mut tokio::process::Command) {
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if (k == "CARGO" || k.starts_with("CARGO_") || k == "OUT_DIR" || k == "RUSTC_BOOTSTRAP")
            && k != "CARGO_HOME"
            && k != "CARGO_TARGET_DIR"
        {
            cmd.env_remove(k);
        }
    }
}

/// Outcome of one block: exit code (None: killed on timeout) and combined output.
struct Ran {
    code: Option<i32>,
    output: String,
    secs: f64,
}

/// `bash -euo pipefail -c CODE` from the workspace root, stdout and stderr into one file,
/// killed (with its whole process group) after `timeout`.
async fn run_block(
    code: &str,
    envs: &[(String, String)],
    dir: &Path,
    timeout: Duration,
) -> anyhow::Result<Ran> {
    let out_path = dir.join(format!("block-{}.out", e2e::free_port()?));
    let out = std::fs::File::create(&out_path)?;
    let mut cmd = tokio::process::Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", code])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .kill_on_drop(true);
    scrub_cargo_env(&mut cmd);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting bash")?;
    let pid = child.id();
    let code = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(st) => st?.code(),
        Err(_) => {
            if let Some(pid) = pid {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
            }
            let _ = child.wait().await;
            None
        }
    };
    Ok(Ran {
        code,
        output: std::fs::read_to_string(&out_path).unwrap_or_default(),
        secs: started.elapsed().as_secs_f64(),
    })
}

/// A block left running in the background (its own process group).
struct Background {
    child: tokio::process::Child,
    out_path: PathBuf,
}

impl Background {
    /// Start `code` and wait until its output contains `ready` (at most `timeout`).
    async fn start(code: &str, dir: &Path, ready: &str, timeout: Duration) -> anyhow::Result<Self> {
        let out_path = dir.join(format!("background-{}.out", e2e::free_port()?));
        let out = std::fs::File::create(&out_path)?;
        let mut cmd = tokio::process::Command::new("bash");
        cmd.args(["-euo", "pipefail", "-c", code])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true);
        scrub_cargo_env(&mut cmd);
        let mut child = cmd.spawn().context("starting bash")?;
        let deadline = Instant::now() + timeout;
        loop {
            let output = std::fs::read_to_string(&out_path).unwrap_or_default();
            if output.contains(ready) {
                return Ok(Self { child, out_path });
            }
            if let Some(st) = child.try_wait()? {
                bail!("exited ({st}) before printing {ready:?}:\n{output}");
            }
            if Instant::now() > deadline {
                let mut b = Self { child, out_path };
                b.stop().await;
                bail!("did not print {ready:?} in {timeout:?}:\n{output}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM to the process group, SIGKILL after 20 s; returns the output.
    async fn stop(&mut self) -> String {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
            if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
                .await
                .is_err()
            {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
                let _ = self.child.wait().await;
            }
        }
        std::fs::read_to_string(&self.out_path).unwrap_or_default()
    }
}

/// One simulation shared by consecutive kubesim blocks naming the same clusters.
struct Story {
    clusters: Vec<String>,
    sim: Option<Sim>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    controllers: Vec<ControllerProcess>,
    kubelet: bool,
}

impl Story {
    async fn start(spec: &KubesimSpec) -> anyhow::Result<Story> {
        let names: Vec<&str> = spec.clusters.iter().map(String::as_str).collect();
        let sim = Sim::start(
            &names,
            SimOptions {
                casskop: spec.casskop.then(|| CasskopOptions {
                    ready_after: Duration::from_secs(1),
                    react_after: Duration::from_secs(1),
                }),
                audit_log: None,
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("starting kubesim {}", spec.clusters.join(",")))?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig)?;
        Ok(Story {
            clusters: spec.clusters.clone(),
            sim: Some(sim),
            dir,
            kubeconfig,
            controllers: Vec::new(),
            kubelet: false,
        })
    }

    /// Pods whose image is the chart's run the built binary from now on.
    async fn start_kubelet(&mut self) -> anyhow::Result<()> {
        if self.kubelet {
            return Ok(());
        }
        if let Some(why) = KubeletOptions::unavailable() {
            bail!("the simulated kubelet cannot run here: {why}");
        }
        let mut opts = KubeletOptions::default();
        opts.images.insert(CHART_IMAGE.to_string(), e2e::binary()?);
        let sim = self.sim.as_mut().expect("running");
        sim.start_kubelet(&opts).await?;
        self.kubelet = true;
        Ok(())
    }

    fn envs(&self) -> anyhow::Result<Vec<(String, String)>> {
        let bin = e2e::binary()?;
        let bindir = bin.parent().context("binary without a directory")?;
        let path = format!(
            "{}:{}:{}",
            bindir.display(),
            workspace_root().join("scripts").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Ok(vec![
            ("KUBECONFIG".into(), self.kubeconfig.display().to_string()),
            ("PATH".into(), path),
        ])
    }

    async fn setup(&mut self, action: &Setup) -> anyhow::Result<()> {
        let sim = self.sim.as_ref().expect("running");
        match action {
            Setup::Namespace(ns) => {
                for c in sim.clusters() {
                    let nss: kube::Api<k8s_openapi::api::core::v1::Namespace> =
                        kube::Api::all(c.client().await);
                    if nss.get_opt(ns).await?.is_some() {
                        continue;
                    }
                    let obj = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
                    nss.create(&Default::default(), &obj)
                        .await
                        .with_context(|| format!("creating namespace {ns} in {}", c.name()))?;
                }
            }
            Setup::Crd => {
                let code = format!(
                    "multi-casskop crd | kubectl --context {} apply -f -",
                    self.clusters[0]
                );
                let ran = run_block(&code, &self.envs()?, self.dir.path(), MINUTES_5).await?;
                if ran.code != Some(0) {
                    bail!("setup `{code}` failed:\n{}", ran.output);
                }
            }
            Setup::Controller(args) => {
                let mut all: Vec<String> = vec![
                    "--kubeconfig".into(),
                    self.kubeconfig.display().to_string(),
                    "--context".into(),
                    self.clusters[0].clone(),
                    "--imports-dir".into(),
                    self.dir.path().join("no-imports").display().to_string(),
                ];
                all.extend(args.iter().cloned());
                let label = format!("controller-{}", self.controllers.len());
                self.controllers.push(ControllerProcess::spawn(
                    self.dir.path(),
                    &label,
                    &all,
                    &[],
                )?);
            }
        }
        Ok(())
    }

    async fn stop(mut self) {
        for c in &mut self.controllers {
            c.terminate();
        }
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
    }

    fn controller_logs(&self) -> String {
        self.controllers
            .iter()
            .map(|c| e2e::controller_log_tail(&c.logs(), 30))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

const MINUTES_5: Duration = Duration::from_secs(300);

fn show(block: &Block) -> String {
    block
        .code
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `sh` block of the README except the demo: skipped ones are listed with their reason,
/// the others must exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_commands_run_as_written() -> anyhow::Result<()> {
    let blocks = readme()?;
    assert!(
        blocks.iter().any(|b| matches!(b.mode, Mode::Kubesim(_))),
        "the README has no kubesim block: the real-cluster story is not run"
    );
    assert_eq!(
        blocks.iter().filter(|b| b.mode == Mode::Demo).count(),
        1,
        "the README must have exactly one demo block"
    );
    let scratch = tempfile::tempdir()?;
    let mut story: Option<Story> = None;
    let mut background: Vec<(usize, Background)> = Vec::new();
    let mut failures = Vec::new();
    for block in &blocks {
        let (ran, extra) = match &block.mode {
            Mode::Skip(reason) => {
                println!(
                    "README.md:{} SKIPPED ({reason}):\n{}",
                    block.line,
                    show(block)
                );
                continue;
            }
            Mode::Demo => {
                println!(
                    "README.md:{} demo, run by readme_demo_command_exits_0_with_sites_running_in_order:\n{}",
                    block.line,
                    show(block)
                );
                continue;
            }
            Mode::Background(ready) => {
                match Background::start(&block.code, scratch.path(), ready, MINUTES_5 * 2).await {
                    Ok(b) => {
                        println!(
                            "README.md:{} (background) running, it printed {ready:?}:\n{}",
                            block.line,
                            show(block)
                        );
                        background.push((block.line, b));
                    }
                    Err(e) => failures.push(format!(
                        "README.md:{} (background):\n{}\n--- {e:#}",
                        block.line,
                        show(block)
                    )),
                }
                continue;
            }
            Mode::Plain => {
                let envs = Vec::new();
                (
                    run_block(&block.code, &envs, scratch.path(), MINUTES_5 * 2).await?,
                    String::new(),
                )
            }
            Mode::Kubesim(spec) => {
                if story.as_ref().is_some_and(|s| s.clusters != spec.clusters) {
                    story.take().expect("checked").stop().await;
                }
                if story.is_none() {
                    story = Some(Story::start(spec).await?);
                }
                let s = story.as_mut().expect("started");
                if spec.kubelet {
                    s.start_kubelet()
                        .await
                        .with_context(|| format!("README.md:{}: kubelet", block.line))?;
                }
                for action in &spec.setup {
                    s.setup(action)
                        .await
                        .with_context(|| format!("README.md:{}: setup {action:?}", block.line))?;
                }
                if !spec.note.is_empty() {
                    println!("README.md:{} note: {}", block.line, spec.note);
                }
                let ran = run_block(&block.code, &s.envs()?, s.dir.path(), MINUTES_5).await?;
                (ran, s.controller_logs())
            }
        };
        let mode = match &block.mode {
            Mode::Kubesim(spec) => format!("kubesim {}", spec.clusters.join(",")),
            _ => "as is".to_string(),
        };
        println!(
            "README.md:{} ({mode}) exit {:?} in {:.1}s:\n{}\n--- output:\n{}",
            block.line,
            ran.code,
            ran.secs,
            show(block),
            ran.output
        );
        if ran.code != Some(0) {
            failures.push(format!(
                "README.md:{} ({mode}) {}:\n{}\n--- output:\n{}{}",
                block.line,
                match ran.code {
                    Some(c) => format!("exited {c}"),
                    None => "timed out".to_string(),
                },
                show(block),
                ran.output,
                if extra.is_empty() {
                    String::new()
                } else {
                    format!("--- controller log tail:\n{extra}\n")
                }
            ));
        }
    }
    if let Some(s) = story.take() {
        s.stop().await;
    }
    for (line, mut b) in background {
        let output = b.stop().await;
        println!("README.md:{line} (background) stopped; its output:\n{output}");
    }
    if !failures.is_empty() {
        bail!(
            "{} README block(s) failed:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
    Ok(())
}

/// The README's demo command, exactly as written: it builds in release mode, so this takes
/// minutes (30 min bound). It must exit 0, show the sites Running in order and pass the ring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_demo_command_exits_0_with_sites_running_in_order() -> anyhow::Result<()> {
    let blocks = readme()?;
    let demo: Vec<&Block> = blocks.iter().filter(|b| b.mode == Mode::Demo).collect();
    assert_eq!(demo.len(), 1, "the README must have exactly one demo block");
    let block = demo[0];
    let scratch = tempfile::tempdir()?;
    let ran = run_block(
        &block.code,
        &[],
        scratch.path(),
        Duration::from_secs(30 * 60),
    )
    .await?;
    let tail: Vec<&str> = ran.output.lines().collect();
    let tail = tail[tail.len().saturating_sub(60)..].join("\n");
    println!(
        "README.md:{} exit {:?} in {:.1}s; output tail:\n{tail}",
        block.line, ran.code, ran.secs
    );
    assert_eq!(ran.code, Some(0), "the demo failed:\n{}", ran.output);
    // Each site reported Running, in the rollout order of the three-site sample.
    let out = &ran.output;
    let running_at = |site: &str| {
        out.lines()
            .position(|l| l.contains(site) && l.contains("Running"))
            .unwrap_or_else(|| panic!("no Running line for {site} in the demo output:\n{out}"))
    };
    let order: Vec<usize> = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"]
        .iter()
        .map(|s| running_at(s))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "the sites did not become Running in order (lines {order:?}):\n{out}"
    );
    assert!(
        out.contains("multi-casskop ring") && out.contains("ring OK:"),
        "the demo printed no passing ring check:\n{out}"
    );
    Ok(())
}

#[test]
fn markers_parse_into_run_modes_and_bad_ones_are_refused() {
    let text = "x\n<!-- readme-test: skip: recursion -->\n```sh\nbash scripts/test.sh\n```\n\
                <!-- readme-test: kubesim a,b casskop setup: namespace ns; crd; controller -la -rb -n ns -- why -->\n  ```sh\n  echo 1 \\\n      2\n  ```\n\
                ```sh\ntrue\n```\n```yaml\nk: v\n```\n";
    let b = parse_readme(text).expect("parses");
    assert_eq!(b.len(), 3);
    assert_eq!(b[0].mode, Mode::Skip("recursion".into()));
    assert_eq!(b[1].code, "echo 1 \\\n    2\n");
    assert_eq!(
        b[1].mode,
        Mode::Kubesim(KubesimSpec {
            clusters: vec!["a".into(), "b".into()],
            casskop: true,
            kubelet: false,
            setup: vec![
                Setup::Namespace("ns".into()),
                Setup::Crd,
                Setup::Controller(vec!["-la".into(), "-rb".into(), "-n".into(), "ns".into()]),
            ],
            note: "why".into(),
        })
    );
    assert_eq!(b[2].mode, Mode::Plain);
    assert!(parse_marker("skip:  ").is_err());
    assert!(parse_marker("kubesim a bogus").is_err());
}
