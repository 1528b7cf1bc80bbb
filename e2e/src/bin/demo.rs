//! The one-command demo: three simulated clusters with CassKop, remotes registered with `multi-casskop register`, the real controller, the three-site sample applied with kubectl, live per-site progress, then `status` and `ring`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;

const SITES: [&str; 3] = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];
const NS: &str = "cassandra";
const NAME: &str = "cassandra-3dc";

/// Runs the whole multi-casskop story on three simulated Kubernetes clusters.
#[derive(Parser, Debug)]
#[command(name = "demo")]
struct Args {
    /// Leave the clusters and the controller running and print the KUBECONFIG line (Ctrl-C to stop).
    #[arg(long)]
    keep: bool,
    /// How long the simulated CassKop takes to finish an action (ready-after).
    #[arg(long, default_value = "2", value_name = "SECONDS")]
    ready_after: f64,
    /// How long the simulated CassKop takes to notice a change (react-after).
    #[arg(long, default_value = "1", value_name = "SECONDS")]
    react_after: f64,
    /// Give up when the rollout is not done after this long.
    #[arg(long, default_value = "180", value_name = "SECONDS")]
    timeout: u64,
}

fn say(step: &str) {
    println!("\n==> {step}");
}

/// The `multi-casskop` binary the demo drives: `MULTI_CASSKOP_BIN` when set, else this very
/// executable under the name `multi-casskop` (a symlink in `dir`): the demo links the
/// multi-casskop library and behaves exactly as the `multi-casskop` binary when started under
/// that name, so `cargo run --release -p e2e --bin demo` needs no second build of the controller.
fn controller_binary(dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("MULTI_CASSKOP_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().context("locating the demo binary")?;
    let link = dir.join(format!("multi-casskop{}", std::env::consts::EXE_SUFFIX));
    std::os::unix::fs::symlink(&me, &link)
        .with_context(|| format!("linking {} as {}", me.display(), link.display()))?;
    Ok(link)
}

/// True when this process was started under the name `multi-casskop` (see [`controller_binary`]).
fn started_as_multi_casskop() -> bool {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_stem().map(|s| s == "multi-casskop"))
        .unwrap_or(false)
}

/// Runs a command with KUBECONFIG set, returns its stdout; fails with its output.
async fn run(
    kubeconfig: &Path,
    program: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "`{} {}` failed ({}):\n{}{}",
            program.display(),
            args.join(" "),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

fn cc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", "CassandraCluster"),
        "cassandraclusters",
    )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn main() -> std::process::ExitCode {
    if started_as_multi_casskop() {
        return multi_casskop::cli::main(std::env::args_os());
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn demo() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let kubectl = PathBuf::from("kubectl");
    let dir = tempfile::Builder::new()
        .prefix("multi-casskop-demo-")
        .tempdir()?;
    let bin = controller_binary(dir.path())?;
    let kubeconfig = dir.path().join("kubeconfig");

    say("Starting three simulated Kubernetes clusters, each with the simulated CassKop");
    let opts = kubesim::SimOptions {
        casskop: Some(kubesim::casskop::CasskopOptions {
            ready_after: Duration::from_secs_f64(args.ready_after),
            react_after: Duration::from_secs_f64(args.react_after),
        }),
        audit_log: Some(dir.path().join("audit.jsonl")),
        ..Default::default()
    };
    let sim = kubesim::Sim::start(&SITES, opts).await?;
    sim.write_kubeconfig(&kubeconfig)?;
    for c in sim.clusters() {
        println!("    {:<13} {}", c.name(), c.url());
        let nss: Api<Namespace> = Api::all(c.client().await);
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
        match nss.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                return Err(e).with_context(|| format!("creating namespace {NS} in {}", c.name()));
            }
        }
    }

    say(
        "Installing the MultiCasskop CRD in the control plane: multi-casskop crd | kubectl apply -f -",
    );
    let crd = run(&kubeconfig, &bin, &["crd"], None).await?;
    print!(
        "    {}",
        run(
            &kubeconfig,
            &kubectl,
            &["--context", SITES[0], "apply", "-f", "-"],
            Some(&crd)
        )
        .await?
    );

    for remote in &SITES[1..] {
        say(&format!(
            "multi-casskop register --source-context {remote} --dest-context {} --source-namespace {NS} --dest-namespace {NS}",
            SITES[0]
        ));
        let out = run(
            &kubeconfig,
            &bin,
            &[
                "register",
                "--source-context",
                remote,
                "--dest-context",
                SITES[0],
                "--source-namespace",
                NS,
                "--dest-namespace",
                NS,
            ],
            None,
        )
        .await?;
        for l in out.lines().filter(|l| !l.trim().is_empty()).take(4) {
            println!("    {l}");
        }
        let secrets: Api<Secret> = Api::namespaced(sim.cluster(SITES[0]).client().await, NS);
        let secret = secrets.get(remote).await.with_context(|| {
            format!(
                "register did not write Secret {NS}/{remote} in {}",
                SITES[0]
            )
        })?;
        let keys: Vec<String> = secret.data.unwrap_or_default().into_keys().collect();
        println!(
            "    Secret {NS}/{remote} in {} holds: {}",
            SITES[0],
            keys.join(", ")
        );
    }

    say(&format!(
        "multi-casskop --local {} --remote {} --remote {} -n {NS}   (the controller)",
        SITES[0], SITES[1], SITES[2]
    ));
    let log_path = dir.path().join("controller.log");
    let log = std::fs::File::create(&log_path)?;
    let metrics = format!("127.0.0.1:{}", free_port()?);
    let mut controller = tokio::process::Command::new(&bin)
        .args([
            "--local",
            SITES[0],
            "--remote",
            SITES[1],
            "--remote",
            SITES[2],
            "--context",
            SITES[0],
            "-n",
            NS,
        ])
        .args(["--metrics-addr", &metrics])
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting the controller")?;
    println!("    logs: {}", log_path.display());

    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/multi-casskop-3sites.yaml");
    let sample_s = sample.to_str().context("sample path is not UTF-8")?;
    say(&format!(
        "kubectl apply -n {NS} -f samples/multi-casskop-3sites.yaml"
    ));
    print!(
        "    {}",
        run(
            &kubeconfig,
            &kubectl,
            &["--context", SITES[0], "apply", "-n", NS, "-f", sample_s],
            None
        )
        .await?
    );

    say("Rollout, one site after another");
    if let Err(e) = watch_rollout(&sim, &mut controller, Duration::from_secs(args.timeout)).await {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        eprintln!("\ncontroller log (last lines):");
        for l in tail.iter().rev() {
            eprintln!("    {l}");
        }
        let _ = controller.start_kill();
        sim.shutdown().await;
        return Err(e);
    }

    // Your own kubeconfig contexts: the controller's service accounts may not list or exec into pods.
    let site_flags = [
        "-n",
        NS,
        "--context",
        SITES[0],
        "-l",
        SITES[0],
        "-r",
        "k8s-cluster2,k8s-cluster3",
        "--use-kubeconfig-contexts",
    ];
    say(&format!(
        "multi-casskop status {NAME} {}",
        site_flags.join(" ")
    ));
    let mut a = vec!["status", NAME];
    a.extend(site_flags);
    // The controller records the last site's readiness right after CassKop writes it.
    let mut status = String::new();
    for _ in 0..100 {
        status = run(&kubeconfig, &bin, &a, None).await?;
        if status.contains("ready sites 3/3") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    print!("{status}");

    say(&format!(
        "multi-casskop ring {NAME} {}",
        site_flags.join(" ")
    ));
    let mut a = vec!["ring", NAME];
    a.extend(site_flags);
    let ring = run(&kubeconfig, &bin, &a, None).await;
    match &ring {
        Ok(out) => print!("{out}"),
        Err(e) => println!("{e:#}"),
    }

    println!("\nDone in {:.1}s.", started.elapsed().as_secs_f64());
    if args.keep {
        let kept = dir.keep();
        println!("\nThe clusters and the controller keep running. In another shell:\n");
        println!(
            "    export KUBECONFIG={}",
            kept.join("kubeconfig").display()
        );
        println!(
            "    kubectl --context {} get multicasskops -n {NS}",
            SITES[0]
        );
        println!(
            "    kubectl --context {} get cassandraclusters,pods -n {NS}",
            SITES[1]
        );
        println!(
            "    kubectl --context {} exec -n {NS} {NAME}-dc3-rack1-0 -- nodetool status",
            SITES[2]
        );
        println!("\nCtrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        // The clusters stop with this process: their kubeconfig is of no use any more.
        let _ = std::fs::remove_dir_all(&kept);
    }
    let _ = controller.start_kill();
    let _ = controller.wait().await;
    sim.shutdown().await;
    if ring.is_err() {
        bail!("the ring check failed");
    }
    Ok(())
}

/// Shows one progress line per site until every site's CassandraCluster is Running/Done, then
/// checks the order from the audit log: each site was first written after the previous one's
/// Running/Done status.
async fn watch_rollout(
    sim: &kubesim::Sim,
    controller: &mut tokio::process::Child,
    timeout: Duration,
) -> anyhow::Result<()> {
    let tty = std::io::stdout().is_terminal();
    let mp = MultiProgress::new();
    let style = ProgressStyle::with_template("    {spinner} {prefix:<13} {msg}")?;
    let done_style = ProgressStyle::with_template("    \u{2714} {prefix:<13} {msg}")?;
    let mut bars = vec![];
    let mut apis: Vec<Api<DynamicObject>> = vec![];
    for s in SITES {
        let bar = mp.add(
            ProgressBar::new_spinner()
                .with_style(style.clone())
                .with_prefix(s.to_string()),
        );
        bar.set_message("waiting for its turn");
        if tty {
            bar.enable_steady_tick(Duration::from_millis(120));
        } else {
            println!("    {s:<13} waiting for its turn");
        }
        bars.push((
            bar,
            String::from("waiting for its turn"),
            None::<f64>,
            None::<f64>,
        ));
        apis.push(Api::namespaced_with(
            sim.cluster(s).client().await,
            NS,
            &cc_resource(),
        ));
    }
    let t0 = Instant::now();
    loop {
        if let Some(st) = controller.try_wait()? {
            bail!("the controller exited ({st})");
        }
        for (i, api) in apis.iter().enumerate() {
            let (bar, last, created, running) = &mut bars[i];
            if running.is_some() {
                continue;
            }
            let cc = api
                .get_opt(NAME)
                .await
                .with_context(|| format!("reading the CassandraCluster in {}", SITES[i]))?;
            let now = t0.elapsed().as_secs_f64();
            let msg = match &cc {
                None => "waiting for its turn".to_string(),
                Some(cc) => {
                    created.get_or_insert(now);
                    let st = &cc.data["status"];
                    let phase = st["phase"].as_str().unwrap_or("Created");
                    let action = st["lastClusterAction"].as_str().unwrap_or("-");
                    let astatus = st["lastClusterActionStatus"].as_str().unwrap_or("-");
                    if phase == "Running" && astatus == "Done" {
                        *running = Some(now);
                    }
                    format!("{phase:<12} {action}/{astatus}")
                }
            };
            if msg != *last {
                if !tty {
                    println!("    {:<13} {msg}   [{now:.1}s]", SITES[i]);
                }
                bar.set_message(msg.clone());
                *last = msg;
            }
            if let Some(r) = running {
                bar.set_style(done_style.clone());
                bar.finish_with_message(format!(
                    "Running      (created at {:.1}s, Running at {r:.1}s)",
                    created.unwrap_or_default()
                ));
            }
        }
        if bars.iter().all(|b| b.3.is_some()) {
            break;
        }
        if t0.elapsed() > timeout {
            bail!("the rollout did not finish within {}s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    println!("\n    Order, from the audit log of the three API servers:");
    let audit = sim.audit();
    let first = |site: &str, pred: &dyn Fn(&kubesim::AuditEntry) -> bool| {
        audit
            .iter()
            .find(|e| {
                e.cluster == site && e.resource == "cassandraclusters" && e.code < 300 && pred(e)
            })
            .map(|e| (e.seq, e.time_us))
    };
    let mut prev_running: Option<(u64, i64)> = None;
    for (i, site) in SITES.iter().enumerate() {
        let created = first(site, &|e| {
            matches!(e.verb.as_str(), "create" | "patch" | "update")
                && !e.user.ends_with(":casskop")
        });
        let running = first(site, &|e| {
            e.user.ends_with(":casskop")
                && e.object.as_ref().is_some_and(|o| {
                    o["status"]["phase"] == "Running"
                        && o["status"]["lastClusterActionStatus"] == "Done"
                })
        });
        let (Some(c), Some(r)) = (created, running) else {
            bail!("the audit log lacks the first write or the Running/Done status of {site}");
        };
        match prev_running {
            Some(p) if c.0 < p.0 => bail!(
                "{site} was written before {} was Running: the rollout order is broken",
                SITES[i - 1]
            ),
            Some(p) => println!(
                "    {site:<13} first written {} ms after {} was Running/Done; Running/Done {:.1}s later",
                (c.1 - p.1) / 1000,
                SITES[i - 1],
                (r.1 - c.1) as f64 / 1e6
            ),
            None => println!(
                "    {site:<13} first written first; Running/Done {:.1}s later",
                (r.1 - c.1) as f64 / 1e6
            ),
        }
        prev_running = Some(r);
    }
    Ok(())
}
