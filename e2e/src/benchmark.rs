//! The controller benchmark: workloads on kubesim, measurements (audit log, `/metrics`, `/proc`)
//! and the `target/bench/results.json` file written by the `bench` binary.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kubesim::casskop::CasskopOptions;
use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{self, median_p99};
use crate::{ControllerProcess, Env, EnvOptions, NAMESPACE};

/// Service account the benchmarked (and fault-tested) controller authenticates as.
pub const CONTROLLER_SA: &str = "multi-casskop";

/// Sizes of one bench run.
#[derive(Clone, Debug)]
pub struct BenchSizes {
    /// MultiCasskops of the handoff run (each over `sites` sites: `sites - 1` handoffs each);
    /// they are then left alone for the idle measurement.
    pub handoff_crs: usize,
    /// Sites of the handoff and idle runs.
    pub sites: usize,
    /// Pause between two creations in the handoff run (rollouts overlap, but do not all hand
    /// off in the same millisecond).
    pub handoff_stagger: Duration,
    /// Simulated CassKop timing of the handoff run.
    pub handoff_casskop: CasskopOptions,
    /// Length of the idle measurement.
    pub idle: Duration,
    /// MultiCasskops of the scale run.
    pub scale_crs: usize,
    /// Sites of the scale run.
    pub scale_sites: usize,
    /// Remotes of the startup measurement (kubesim runs one more cluster, the local one).
    pub startup_remotes: usize,
    /// Startups measured (the median is reported).
    pub startup_runs: usize,
    /// MultiCasskops using the frozen site in the "frozen" part (their change rolls toward it
    /// while it is frozen); the part measures `handoff_crs` others before and during the freeze.
    pub frozen_users: usize,
    /// Parts to run: "startup", "handoff" (with idle), "scale", "frozen" (all by default).
    pub parts: Vec<String>,
}

impl BenchSizes {
    /// The full sizes, the ones the README's Performance table reports.
    pub fn full() -> Self {
        Self {
            handoff_crs: 50,
            sites: 3,
            handoff_stagger: Duration::from_millis(150),
            handoff_casskop: CasskopOptions {
                ready_after: Duration::from_millis(500),
                react_after: Duration::from_millis(200),
            },
            idle: Duration::from_secs(120),
            scale_crs: 1000,
            scale_sites: 3,
            startup_remotes: 10,
            startup_runs: 5,
            frozen_users: 20,
            parts: vec![
                "startup".into(),
                "handoff".into(),
                "scale".into(),
                "frozen".into(),
            ],
        }
    }

    /// Small sizes for CI and a first look (well under two minutes).
    pub fn quick() -> Self {
        Self {
            handoff_crs: 6,
            idle: Duration::from_secs(15),
            scale_crs: 60,
            startup_runs: 1,
            frozen_users: 4,
            ..Self::full()
        }
    }
}

/// The results file: exactly the keys the README's Performance table is built from.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResults {
    pub handoff_p50_ms: f64,
    pub handoff_p99_ms: f64,
    pub idle_requests_per_cr_min: f64,
    pub idle_reconciles_per_cr_min: f64,
    pub scale_crs: u64,
    pub scale_sites: u64,
    pub scale_converge_s: f64,
    pub controller_peak_rss_mib: f64,
    pub controller_cpu_s: f64,
    pub startup_ready_ms: f64,
}

/// Figures printed next to the results (not in the results file).
#[derive(Clone, Debug, Default)]
pub struct BenchDetails {
    pub handoffs: usize,
    pub handoff_max_ms: f64,
    pub handoff_violations: usize,
    pub idle_crs: usize,
    pub idle_s: f64,
    pub idle_requests: usize,
    /// Idle requests by verb and resource, most frequent first.
    pub idle_request_kinds: Vec<(String, usize)>,
    pub idle_reconciles: f64,
    pub scale_apply_s: f64,
    pub scale_cpu_total_s: f64,
    pub scale_rss_end_mib: f64,
    pub scale_requests: usize,
    /// Scale-run controller requests by verb and resource, most frequent first.
    pub scale_request_kinds: Vec<(String, usize)>,
    /// Controller RSS once ready, before the scale run's objects were applied (MiB).
    pub scale_rss_before_mib: f64,
    pub startup_all_ms: Vec<f64>,
    /// The frozen-site part, when it ran.
    pub frozen: Option<crate::bench_frozen::FrozenFigures>,
}

/// The MultiCasskop API resource (db.orange.com/v2).
pub fn mc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", "MultiCasskop"),
        "multicasskops",
    )
}

/// MultiCasskops of [`NAMESPACE`] through `client`.
pub fn mc_api(client: kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client, NAMESPACE, &mc_resource())
}

/// A MultiCasskop `name` whose CassandraCluster `cc` (same name at each site) takes part at `sites`
/// (in that order of the flags), image `image`.
pub fn mc_object(name: &str, cc: &str, sites: &[String], image: &str) -> Value {
    let overrides: serde_json::Map<String, Value> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                s.clone(),
                json!({"spec": {"topology": {"dc": [{"name": format!("dc{}", i + 1), "rack": [{"name": "rack1"}]}]}}}),
            )
        })
        .collect();
    json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "base": {
                "apiVersion": "db.orange.com/v2",
                "kind": "CassandraCluster",
                "metadata": {"name": cc},
                "spec": {"cassandraImage": image, "nodesPerRacks": 1}
            },
            "override": overrides
        }
    })
}

/// Create `objects` (MultiCasskops as JSON) with `concurrency` requests in flight.
pub async fn create_all(
    api: &Api<DynamicObject>,
    objects: Vec<Value>,
    concurrency: usize,
) -> anyhow::Result<()> {
    futures::stream::iter(objects.into_iter().map(|o| async move {
        let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
        let obj: DynamicObject = serde_json::from_value(o)?;
        api.create(&PostParams::default(), &obj)
            .await
            .with_context(|| {
                format!("creating MultiCasskop {NAMESPACE}/{name} in the local cluster")
            })?;
        anyhow::Ok(())
    }))
    .buffer_unordered(concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

/// `true` when the MultiCasskop's Ready condition is True for its current generation.
pub fn is_ready(mc: &Value) -> bool {
    let observed = mc["status"]["observedGeneration"].as_i64();
    let generation = mc["metadata"]["generation"].as_i64();
    observed.is_some()
        && observed == generation
        && crate::condition(mc, "Ready").is_some_and(|(s, _, _)| s == "True")
}

/// Names of the MultiCasskops of [`NAMESPACE`] that are not Ready yet (of those listed).
pub async fn not_ready(api: &Api<DynamicObject>) -> anyhow::Result<(usize, Vec<String>)> {
    let list = api
        .list(&ListParams::default())
        .await
        .context("listing MultiCasskops in the local cluster")?;
    let total = list.items.len();
    let pending = list
        .items
        .into_iter()
        .filter_map(|o| {
            let v = serde_json::to_value(&o).ok()?;
            (!is_ready(&v)).then(|| o.metadata.name.unwrap_or_default())
        })
        .collect();
    Ok((total, pending))
}

/// Wait until `expected` MultiCasskops exist and all are Ready, polling every `every`.
pub async fn wait_all_ready(
    api: &Api<DynamicObject>,
    expected: usize,
    every: Duration,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let (total, pending) = not_ready(api).await?;
        if total >= expected && pending.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {total} MultiCasskops still not Ready after {timeout:?} (expected {expected}); first: {:?}",
                pending.len(),
                &pending[..pending.len().min(10)]
            );
        }
        tokio::time::sleep(every).await;
    }
}

/// The controller's arguments for `env` (as [`Env::start_controller`] builds them).
pub fn controller_args(env: &Env, extra: &[&str]) -> Vec<String> {
    let names = env.names();
    let mut args: Vec<String> = vec![
        "--kubeconfig".into(),
        env.kubeconfig.display().to_string(),
        "--context".into(),
        names[0].clone(),
        format!("-l{}", names[0]),
        "--namespace".into(),
        NAMESPACE.into(),
        "--imports-dir".into(),
        env.dir.path().join("no-imports").display().to_string(),
    ];
    if names.len() > 1 {
        args.push(format!("-r{}", names[1..].join(",")));
    }
    args.extend(extra.iter().map(ToString::to_string));
    args
}

/// Start the controller for `env` logging at `log_level` (Multi-CassKop's LOG_LEVEL values).
pub fn spawn_controller(
    env: &Env,
    label: &str,
    log_level: &str,
    extra: &[&str],
) -> anyhow::Result<ControllerProcess> {
    ControllerProcess::spawn(
        env.dir.path(),
        label,
        &controller_args(env, extra),
        &[("LOG_LEVEL", log_level)],
    )
}

/// Wait for `/readyz` to answer 200, polling every `every`.
pub async fn wait_readyz(
    ctl: &mut ControllerProcess,
    every: Duration,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok((200, _)) = ctl.http_get("/readyz") {
            return Ok(());
        }
        if let Some(code) = ctl.exited() {
            bail!(
                "the controller exited ({code:?}) before it was ready:\n{}",
                crate::controller_log_tail(&ctl.logs(), 30)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the controller was not ready after {timeout:?}:\n{}",
                crate::controller_log_tail(&ctl.logs(), 30)
            );
        }
        tokio::time::sleep(every).await;
    }
}

/// Sum of every sample of metric `name` (all label sets) in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = false;
    let mut sum = 0.0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((head, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let metric = head.split('{').next().unwrap_or("");
        if metric == name
            && let Ok(v) = value.trim().parse::<f64>()
        {
            found = true;
            sum += v;
        }
    }
    found.then_some(sum)
}

/// Reconciles counted by the controller so far (`multicasskop_reconciles_total`, all results).
pub fn reconciles(ctl: &ControllerProcess) -> anyhow::Result<f64> {
    let (code, body) = ctl.http_get("/metrics")?;
    if code != 200 {
        bail!("/metrics answered {code}");
    }
    metric_sum(&body, "multicasskop_reconciles_total")
        .context("no multicasskop_reconciles_total in /metrics")
}

/// Memory and CPU of a process, from /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    /// Peak resident set (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// Current resident set (VmRSS), MiB.
    pub rss_mib: f64,
    /// utime + stime, seconds.
    pub cpu_s: f64,
}

fn clock_ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Read /proc/`pid`/status and /proc/`pid`/stat.
pub fn proc_stats(pid: u32) -> anyhow::Result<ProcStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat
        .rsplit_once(')')
        .map(|x| x.1)
        .context("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    Ok(ProcStats {
        peak_rss_mib: kib("VmHWM:") / 1024.0,
        rss_mib: kib("VmRSS:") / 1024.0,
        cpu_s: (utime + stime) / clock_ticks_per_s(),
    })
}

fn site_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("site{i}")).collect()
}

async fn start_env(sites: &[String], casskop: CasskopOptions) -> anyhow::Result<Env> {
    let names: Vec<&str> = sites.iter().map(String::as_str).collect();
    Env::start_with(
        &names,
        EnvOptions {
            casskop,
            controller_sa: CONTROLLER_SA.to_string(),
            local_cluster_admin: true,
        },
    )
    .await
}

fn log(msg: &str) {
    eprintln!("[bench {}] {msg}", jiff::Zoned::now().strftime("%H:%M:%S"));
}

/// Requests counted by "cluster verb resource[/subresource] -> code", most frequent first.
fn by_kind(entries: &[kubesim::AuditEntry]) -> Vec<(String, usize)> {
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for e in entries {
        let sub = if e.subresource.is_empty() {
            String::new()
        } else {
            format!("/{}", e.subresource)
        };
        *kinds
            .entry(format!(
                "{} {} {}{sub} -> {}",
                e.cluster, e.verb, e.resource, e.code
            ))
            .or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    kinds
}

/// Handoffs then idle, on one set of clusters: fills the handoff and idle figures.
async fn handoff_and_idle(
    sizes: &BenchSizes,
    out: &mut BenchResults,
    d: &mut BenchDetails,
) -> anyhow::Result<()> {
    let sites = site_names(sizes.sites);
    let env = start_env(&sites, sizes.handoff_casskop.clone()).await?;
    let mut ctl = spawn_controller(&env, "handoff", "Info", &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(20), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let start_seq = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    log(&format!(
        "handoffs: {} MultiCasskops over {} sites, one created every {:?}",
        sizes.handoff_crs, sizes.sites, sizes.handoff_stagger
    ));
    for i in 0..sizes.handoff_crs {
        let name = format!("handoff-{i:03}");
        create_all(
            &api,
            vec![mc_object(&name, &name, &sites, "cassandra:3.11.9")],
            1,
        )
        .await?;
        tokio::time::sleep(sizes.handoff_stagger).await;
    }
    wait_all_ready(
        &api,
        sizes.handoff_crs,
        Duration::from_millis(250),
        Duration::from_secs(300),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", crate::controller_log_tail(&ctl.logs(), 40)))?;
    let entries = env.sim.settled_audit().await;
    let user = Env::sa_user(CONTROLLER_SA);
    let mut handoffs = Vec::new();
    for i in 0..sizes.handoff_crs {
        let r = audit::analyze(
            &entries,
            &[user.as_str()],
            &format!("handoff-{i:03}"),
            start_seq,
        );
        d.handoff_violations += r.violations.len();
        for v in &r.violations {
            log(&format!("VIOLATION handoff-{i:03}: {v}"));
        }
        handoffs.extend(r.handoffs_us);
    }
    let (p50, p99) = median_p99(&handoffs).context("no handoff measured")?;
    out.handoff_p50_ms = p50 as f64 / 1000.0;
    out.handoff_p99_ms = p99 as f64 / 1000.0;
    d.handoffs = handoffs.len();
    d.handoff_max_ms = handoffs.iter().copied().max().unwrap_or(0) as f64 / 1000.0;

    // Idle: every MultiCasskop converged and left alone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seq0 = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    let rec0 = reconciles(&ctl)?;
    let t0 = Instant::now();
    log(&format!(
        "idle: {} converged MultiCasskops for {:?}",
        sizes.handoff_crs, sizes.idle
    ));
    tokio::time::sleep(sizes.idle).await;
    let rec1 = reconciles(&ctl)?;
    let idle_s = t0.elapsed().as_secs_f64();
    let idle: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= seq0 && e.user == user && e.verb != "watch")
        .collect();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for e in &idle {
        *kinds
            .entry(format!(
                "{} {} {} -> {}",
                e.cluster, e.verb, e.resource, e.code
            ))
            .or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    let minutes = idle_s / 60.0;
    let crs = sizes.handoff_crs as f64;
    out.idle_requests_per_cr_min = idle.len() as f64 / crs / minutes;
    out.idle_reconciles_per_cr_min = (rec1 - rec0) / crs / minutes;
    d.idle_crs = sizes.handoff_crs;
    d.idle_s = idle_s;
    d.idle_requests = idle.len();
    d.idle_request_kinds = kinds;
    d.idle_reconciles = rec1 - rec0;
    ctl.kill();
    env.sim.shutdown().await;
    Ok(())
}

/// 1,000 (or the quick size) MultiCasskops applied at once with an instantly ready CassKop.
async fn scale(
    sizes: &BenchSizes,
    out: &mut BenchResults,
    d: &mut BenchDetails,
) -> anyhow::Result<()> {
    let sites = site_names(sizes.scale_sites);
    let env = start_env(
        &sites,
        CasskopOptions {
            ready_after: Duration::ZERO,
            react_after: Duration::ZERO,
        },
    )
    .await?;
    let mut ctl = spawn_controller(&env, "scale", "Info", &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(20), Duration::from_secs(60)).await?;
    let pid = ctl.pid().context("controller pid")?;
    let before = proc_stats(pid)?;
    let api = mc_api(env.local().client().await);
    let objects: Vec<Value> = (0..sizes.scale_crs)
        .map(|i| {
            let name = format!("scale-{i:04}");
            mc_object(&name, &name, &sites, "cassandra:3.11.9")
        })
        .collect();
    let seq0 = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    log(&format!(
        "scale: {} MultiCasskops over {} sites, instantly ready CassKop",
        sizes.scale_crs, sizes.scale_sites
    ));
    let t0 = Instant::now();
    create_all(&api, objects, 16).await?;
    d.scale_apply_s = t0.elapsed().as_secs_f64();
    wait_all_ready(
        &api,
        sizes.scale_crs,
        Duration::from_millis(250),
        Duration::from_secs(600),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", crate::controller_log_tail(&ctl.logs(), 40)))?;
    out.scale_converge_s = t0.elapsed().as_secs_f64();
    let after = proc_stats(pid)?;
    out.scale_crs = sizes.scale_crs as u64;
    out.scale_sites = sizes.scale_sites as u64;
    out.controller_peak_rss_mib = after.peak_rss_mib;
    out.controller_cpu_s = after.cpu_s - before.cpu_s;
    d.scale_cpu_total_s = after.cpu_s;
    d.scale_rss_end_mib = after.rss_mib;
    let user = Env::sa_user(CONTROLLER_SA);
    let entries: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= seq0 && e.user == user)
        .collect();
    d.scale_requests = entries.len();
    d.scale_request_kinds = by_kind(&entries);
    d.scale_rss_before_mib = before.rss_mib;
    ctl.kill();
    env.sim.shutdown().await;
    Ok(())
}

/// Process start to /readyz 200 with `startup_remotes` remotes.
async fn startup(
    sizes: &BenchSizes,
    out: &mut BenchResults,
    d: &mut BenchDetails,
) -> anyhow::Result<()> {
    let names: Vec<String> = (0..=sizes.startup_remotes)
        .map(|i| format!("cluster{i:02}"))
        .collect();
    let env = start_env(&names, CasskopOptions::default()).await?;
    log(&format!(
        "startup: {} remotes, {} run(s)",
        sizes.startup_remotes, sizes.startup_runs
    ));
    for run in 0..sizes.startup_runs {
        let t0 = Instant::now();
        let mut ctl = spawn_controller(&env, &format!("startup-{run}"), "Info", &[])?;
        wait_readyz(&mut ctl, Duration::from_millis(2), Duration::from_secs(60)).await?;
        d.startup_all_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        ctl.kill();
    }
    let mut all = d.startup_all_ms.clone();
    all.sort_by(f64::total_cmp);
    out.startup_ready_ms = all[all.len() / 2];
    env.sim.shutdown().await;
    Ok(())
}

/// Run every measurement with `sizes`.
pub async fn run(sizes: &BenchSizes) -> anyhow::Result<(BenchResults, BenchDetails)> {
    let mut out = BenchResults {
        handoff_p50_ms: f64::NAN,
        handoff_p99_ms: f64::NAN,
        idle_requests_per_cr_min: f64::NAN,
        idle_reconciles_per_cr_min: f64::NAN,
        scale_crs: 0,
        scale_sites: 0,
        scale_converge_s: f64::NAN,
        controller_peak_rss_mib: f64::NAN,
        controller_cpu_s: f64::NAN,
        startup_ready_ms: f64::NAN,
    };
    let mut d = BenchDetails::default();
    let part = |p: &str| sizes.parts.iter().any(|x| x == p);
    if part("startup") {
        startup(sizes, &mut out, &mut d)
            .await
            .context("startup measurement")?;
    }
    if part("handoff") {
        handoff_and_idle(sizes, &mut out, &mut d)
            .await
            .context("handoff/idle measurement")?;
    }
    if part("scale") {
        scale(sizes, &mut out, &mut d)
            .await
            .context("scale measurement")?;
    }
    if part("frozen") {
        log("frozen site: baseline handoffs, then the same with one site frozen");
        d.frozen = Some(
            crate::bench_frozen::measure(sizes)
                .await
                .context("frozen-site measurement")?,
        );
    }
    Ok((out, d))
}

/// Write the results file (creating its directory).
pub fn write_results(path: &Path, r: &BenchResults) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(r)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// The table printed by the bench: measure, value, target, verdict.
pub fn table(r: &BenchResults, d: &BenchDetails) -> String {
    let mut rows: Vec<(String, String, String, &str)> = Vec::new();
    let mut row = |what: &str, value: String, target: Option<(f64, f64)>, target_text: &str| {
        // Each target is "below max", except those written "≤", which include it.
        let verdict = match target {
            Some((v, max)) if v.is_finite() && v < max => "ok",
            Some((v, max)) if target_text.starts_with('≤') && v == max => "ok",
            Some(_) => "MISSED",
            None => "",
        };
        rows.push((what.to_string(), value, target_text.to_string(), verdict));
    };
    row(
        &format!("handoff p50 ({} handoffs)", d.handoffs),
        format!("{:.1} ms", r.handoff_p50_ms),
        None,
        "",
    );
    row(
        "handoff p99",
        format!("{:.1} ms", r.handoff_p99_ms),
        Some((r.handoff_p99_ms, 50.0)),
        "< 50 ms",
    );
    row(
        &format!("idle requests ({} CRs, {:.0} s)", d.idle_crs, d.idle_s),
        format!("{:.3} /CR/min", r.idle_requests_per_cr_min),
        Some((r.idle_requests_per_cr_min, 0.1)),
        "≤ 0.1",
    );
    row(
        "idle reconciles",
        format!("{:.3} /CR/min", r.idle_reconciles_per_cr_min),
        Some((r.idle_reconciles_per_cr_min, 0.2)),
        "< 0.2 (Multi-CassKop: 2)",
    );
    row(
        &format!("scale {} x {} converged", r.scale_crs, r.scale_sites),
        format!("{:.2} s", r.scale_converge_s),
        Some((r.scale_converge_s, 30.0)),
        "< 30 s (1000 x 3)",
    );
    row(
        "controller peak RSS (scale)",
        format!("{:.1} MiB", r.controller_peak_rss_mib),
        Some((r.controller_peak_rss_mib, 48.0)),
        "< 48 MiB",
    );
    let per_cr = d.scale_requests as f64 / r.scale_crs as f64;
    row(
        "controller requests per CR (scale)",
        format!("{per_cr:.1}"),
        Some((per_cr, 12.0)),
        "≤ 12",
    );
    row(
        "controller CPU (scale)",
        format!("{:.2} s", r.controller_cpu_s),
        None,
        "",
    );
    row(
        "startup to /readyz (10 remotes)",
        format!("{:.1} ms", r.startup_ready_ms),
        Some((r.startup_ready_ms, 500.0)),
        "< 500 ms",
    );
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
    let mut s = String::new();
    for (a, b, c, v) in rows {
        s.push_str(&format!("| {a:<w0$} | {b:>w1$} | {c:<w2$} | {v:<6} |\n"));
    }
    s.push_str(&format!(
        "handoffs: max {:.1} ms, violations {}; idle: {} requests, {} reconciles; idle requests by kind: {:?}\n",
        d.handoff_max_ms, d.handoff_violations, d.idle_requests, d.idle_reconciles, d.idle_request_kinds
    ));
    s.push_str(&format!(
        "scale: applying took {:.2} s, {} controller requests, controller CPU since start {:.2} s, RSS before {:.1} MiB and at the end {:.1} MiB; startups: {:?} ms\n",
        d.scale_apply_s, d.scale_requests, d.scale_cpu_total_s, d.scale_rss_before_mib, d.scale_rss_end_mib, d.startup_all_ms
    ));
    s.push_str(&format!(
        "scale requests by kind: {:?}\n",
        d.scale_request_kinds
    ));
    if let Some(f) = &d.frozen {
        s.push_str(&crate::bench_frozen::rows(f));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_every_label_set() {
        let text = "# HELP multicasskop_reconciles Reconciliations\n\
                    # TYPE multicasskop_reconciles counter\n\
                    multicasskop_reconciles_total{result=\"applied\"} 3\n\
                    multicasskop_reconciles_total{result=\"waiting\"} 4.5\n\
                    multicasskop_reconciles_totalx 100\n";
        assert_eq!(metric_sum(text, "multicasskop_reconciles_total"), Some(7.5));
        assert_eq!(metric_sum(text, "absent"), None);
    }

    #[test]
    fn proc_stats_reads_our_own_peak_rss() {
        let s = proc_stats(std::process::id()).expect("own /proc entry");
        assert!(s.peak_rss_mib > 0.0 && s.peak_rss_mib >= s.rss_mib);
    }

    #[test]
    fn results_file_has_exactly_ten_keys() {
        let r = BenchResults {
            handoff_p50_ms: 1.0,
            handoff_p99_ms: 2.0,
            idle_requests_per_cr_min: 0.0,
            idle_reconciles_per_cr_min: 0.0,
            scale_crs: 1,
            scale_sites: 3,
            scale_converge_s: 1.0,
            controller_peak_rss_mib: 1.0,
            controller_cpu_s: 1.0,
            startup_ready_ms: 1.0,
        };
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 10, "{keys:?}");
    }
}
