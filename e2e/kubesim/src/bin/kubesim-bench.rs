//! kubesim-bench: throughput (get, patch), write-to-watch-event latency and memory of one simulated cluster.
//!
//! Not a test: it prints figures (a table on stdout, JSON at `target/bench/kubesim.json`).
//! Run with `cargo run -p kubesim --release --bin kubesim-bench`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use kubesim::casskop::{self, CasskopOptions};
use kubesim::{Sim, SimOptions};
use serde::Serialize;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "Benchmark one kubesim cluster: requests/s, watch latency, memory")]
struct Args {
    /// Concurrent client tasks for the throughput phases.
    #[arg(long, default_value_t = 16)]
    tasks: usize,
    /// Seconds per throughput phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Writes timed for the watch latency (after 100 warm-up writes).
    #[arg(long, default_value_t = 2000)]
    writes: usize,
    /// Objects stored before measuring memory.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Where the JSON goes (default: `target/bench/kubesim.json` in the workspace).
    #[arg(long)]
    json: Option<PathBuf>,
    /// CassandraClusters for the simulated-CassKop phase (instantly ready); 0 skips it.
    #[arg(long, default_value_t = 1000)]
    casskop_clusters: usize,
}

#[derive(Serialize, Debug)]
struct Report {
    tasks: usize,
    seconds_per_phase: u64,
    get_requests: u64,
    get_errors: u64,
    get_per_second: f64,
    patch_requests: u64,
    patch_errors: u64,
    patch_per_second: f64,
    watch_writes: usize,
    watch_latency_median_ms: f64,
    watch_latency_p99_ms: f64,
    watch_latency_max_ms: f64,
    objects: usize,
    rss_before_objects_mib: f64,
    rss_with_objects_mib: f64,
    rss_peak_mib: f64,
    bytes_per_object: f64,
    casskop_clusters: usize,
    casskop_all_done_s: f64,
    casskop_requests_per_cluster: f64,
    audit_entries_at_end: usize,
    rss_at_end_mib: f64,
    note: &'static str,
}

const NS: &str = "bench";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sim = Sim::start(&["bench"], SimOptions::default())
        .await
        .context("starting kubesim")?;
    let client = sim.cluster("bench").client().await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .context("creating namespace bench")?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let phase = Duration::from_secs(args.seconds);

    // Memory first, on a fresh cluster, so the audit log of the later phases does not count.
    let rss_before = proc_status_kib("VmRSS")?;
    eprintln!("storing {} objects", args.objects);
    store_objects(&api, args.tasks, args.objects).await?;
    let rss_after = proc_status_kib("VmRSS")?;
    let rss_peak = proc_status_kib("VmHWM")?;

    api.create(&PostParams::default(), &config_map("target", "x"))
        .await?;
    eprintln!("get: {} tasks for {:?}", args.tasks, phase);
    let (get_requests, get_errors, get_elapsed) = hammer(&api, args.tasks, phase, |api, _, _| {
        Box::pin(async move { api.get("target").await.map(|_| ()) })
    })
    .await;

    for i in 0..args.tasks {
        api.create(
            &PostParams::default(),
            &config_map(&format!("patch-{i}"), "0"),
        )
        .await?;
    }
    eprintln!("patch: {} tasks for {:?}", args.tasks, phase);
    let (patch_requests, patch_errors, patch_elapsed) =
        hammer(&api, args.tasks, phase, |api, task, n| {
            Box::pin(async move {
                let body = json!({"data": {"v": n.to_string()}});
                api.patch(
                    &format!("patch-{task}"),
                    &PatchParams::default(),
                    &Patch::Merge(&body),
                )
                .await
                .map(|_| ())
            })
        })
        .await;

    eprintln!("watch latency: {} writes", args.writes);
    let mut latencies = watch_latencies(&api, args.writes).await?;
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[idx]
    };

    let rss_end = proc_status_kib("VmRSS")?;
    let audit_entries = sim.audit().len();

    sim.shutdown().await;
    let (casskop_all_done_s, casskop_requests_per_cluster) = if args.casskop_clusters > 0 {
        eprintln!(
            "simulated CassKop: {} CassandraClusters",
            args.casskop_clusters
        );
        casskop_phase(args.tasks, args.casskop_clusters).await?
    } else {
        (0.0, 0.0)
    };

    let report = Report {
        tasks: args.tasks,
        seconds_per_phase: args.seconds,
        get_requests,
        get_errors,
        get_per_second: get_requests as f64 / get_elapsed.as_secs_f64(),
        patch_requests,
        patch_errors,
        patch_per_second: patch_requests as f64 / patch_elapsed.as_secs_f64(),
        watch_writes: latencies.len(),
        watch_latency_median_ms: pct(0.5),
        watch_latency_p99_ms: pct(0.99),
        watch_latency_max_ms: *latencies.last().unwrap_or(&0.0),
        objects: args.objects,
        rss_before_objects_mib: rss_before as f64 / 1024.0,
        rss_with_objects_mib: rss_after as f64 / 1024.0,
        rss_peak_mib: rss_peak as f64 / 1024.0,
        casskop_clusters: args.casskop_clusters,
        casskop_all_done_s,
        casskop_requests_per_cluster,
        bytes_per_object: (rss_after.saturating_sub(rss_before) * 1024) as f64
            / args.objects.max(1) as f64,
        audit_entries_at_end: audit_entries,
        rss_at_end_mib: rss_end as f64 / 1024.0,
        note: "server and clients share one process: RSS includes the kube-rs clients; the in-memory audit log (one entry per request, with the written object) grows with every request",
    };
    print_table(&report);
    let path = args.json.unwrap_or_else(default_json_path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("JSON written to {}", path.display());
    Ok(())
}

/// Create `n` CassandraClusters (from `tasks` concurrent clients) in a cluster whose simulated
/// CassKop is instantly ready; (seconds until a watch has seen every one Running/Done,
/// CassKop's requests per CassandraCluster).
async fn casskop_phase(tasks: usize, n: usize) -> anyhow::Result<(f64, f64)> {
    let sim = Sim::start(
        &["bench-casskop"],
        SimOptions {
            casskop: Some(CasskopOptions {
                ready_after: Duration::ZERO,
                react_after: Duration::ZERO,
            }),
            ..SimOptions::default()
        },
    )
    .await
    .context("starting kubesim with the simulated CassKop")?;
    let client = sim.cluster("bench-casskop").client().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &casskop::api_resource());
    let mut done = watcher(api.clone(), watcher::Config::default()).boxed();
    // Watch established (initial list done) before the clock starts.
    while let Some(ev) = done.next().await {
        if matches!(ev, Ok(watcher::Event::InitDone)) {
            break;
        }
    }
    let start = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let api = api.clone();
        handles.push(tokio::spawn(async move {
            for i in (task..n).step_by(tasks) {
                let obj: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "db.orange.com/v2",
                    "kind": "CassandraCluster",
                    "metadata": {"name": format!("cc-{i:05}")},
                    "spec": {"nodesPerRacks": 1, "cassandraImage": "cassandra:3.11.6"},
                }))?;
                api.create(&PostParams::default(), &obj)
                    .await
                    .with_context(|| format!("creating CassandraCluster default/cc-{i:05}"))?;
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let mut ready = std::collections::HashSet::new();
    while ready.len() < n {
        let ev = tokio::time::timeout(Duration::from_secs(120), done.next())
            .await
            .context("CassandraClusters not all Running/Done after 120s")?
            .context("watch ended")?;
        if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = ev {
            let status = &o.data["status"];
            if status["phase"] == "Running" && status["lastClusterActionStatus"] == "Done" {
                ready.insert(o.metadata.name.unwrap_or_default());
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let casskop_requests = sim
        .audit()
        .iter()
        .filter(|e| e.user == "system:serviceaccount:kube-system:casskop")
        .count();
    sim.shutdown().await;
    Ok((elapsed, casskop_requests as f64 / n as f64))
}

fn config_map(name: &str, v: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("v".to_owned(), v.to_owned())])),
        ..Default::default()
    }
}

type Call = std::pin::Pin<Box<dyn Future<Output = kube::Result<()>> + Send>>;

/// Run `call` from `tasks` concurrent tasks for `phase`; (successes, errors, elapsed).
async fn hammer(
    api: &Api<ConfigMap>,
    tasks: usize,
    phase: Duration,
    call: fn(Api<ConfigMap>, usize, u64) -> Call,
) -> (u64, u64, Duration) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + phase;
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (api, ok, failed) = (api.clone(), ok.clone(), failed.clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                match call(api.clone(), task, n).await {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
                n += 1;
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        start.elapsed(),
    )
}

/// Sequential writes to one ConfigMap; each one's latency is from just before the PATCH is sent
/// until the watch delivers the MODIFIED event carrying it. Milliseconds.
async fn watch_latencies(api: &Api<ConfigMap>, writes: usize) -> anyhow::Result<Vec<f64>> {
    let created = api
        .create(&PostParams::default(), &config_map("latency", "-1"))
        .await?;
    let rv = created.metadata.resource_version.unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i64, Instant)>();
    let watch_api = api.clone();
    let reader = tokio::spawn(async move {
        let params = WatchParams::default()
            .fields("metadata.name=latency")
            .timeout(290);
        let mut stream = watch_api.watch(&params, &rv).await?.boxed();
        while let Some(ev) = stream.next().await {
            if let WatchEvent::Modified(cm) = ev? {
                let seq = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("v"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(-1);
                if tx.send((seq, Instant::now())).is_err() {
                    break;
                }
            }
        }
        anyhow::Ok(())
    });
    let warmup = 100;
    let mut out = Vec::with_capacity(writes);
    for i in 0..(warmup + writes) as i64 {
        let body = json!({"data": {"v": i.to_string()}});
        let sent = Instant::now();
        api.patch("latency", &PatchParams::default(), &Patch::Merge(&body))
            .await?;
        loop {
            let (seq, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .context("no watch event within 30s")?
                .context("the watch ended")?;
            if seq == i {
                if i >= warmup as i64 {
                    out.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                }
                break;
            }
        }
    }
    reader.abort();
    Ok(out)
}

async fn store_objects(api: &Api<ConfigMap>, tasks: usize, objects: usize) -> anyhow::Result<()> {
    let payload = "x".repeat(200);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (api, payload) = (api.clone(), payload.clone());
        handles.push(tokio::spawn(async move {
            for i in (task..objects).step_by(tasks) {
                api.create(
                    &PostParams::default(),
                    &config_map(&format!("obj-{i:05}"), &payload),
                )
                .await
                .with_context(|| format!("creating ConfigMap bench/obj-{i:05}"))?;
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(())
}

/// A `kB` field of /proc/self/status (VmRSS, VmHWM).
fn proc_status_kib(field: &str) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

fn default_json_path() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.ancestors().nth(2).unwrap_or(manifest);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    target.join("bench").join("kubesim.json")
}

fn print_table(r: &Report) {
    println!(
        "kubesim benchmark: 1 cluster, {} concurrent clients, {} s per throughput phase",
        r.tasks, r.seconds_per_phase
    );
    let rows: Vec<(String, String)> = vec![
        (
            "get requests/s".into(),
            format!(
                "{:.0} ({} ok, {} errors)",
                r.get_per_second, r.get_requests, r.get_errors
            ),
        ),
        (
            "patch requests/s".into(),
            format!(
                "{:.0} ({} ok, {} errors)",
                r.patch_per_second, r.patch_requests, r.patch_errors
            ),
        ),
        (
            format!("write->watch median ({} writes)", r.watch_writes),
            format!("{:.3} ms", r.watch_latency_median_ms),
        ),
        (
            "write->watch p99".into(),
            format!("{:.3} ms", r.watch_latency_p99_ms),
        ),
        (
            "write->watch max".into(),
            format!("{:.3} ms", r.watch_latency_max_ms),
        ),
        (
            "RSS before storing objects (fresh cluster)".into(),
            format!("{:.1} MiB", r.rss_before_objects_mib),
        ),
        (
            format!("RSS with {} objects", r.objects),
            format!("{:.1} MiB", r.rss_with_objects_mib),
        ),
        (
            "peak RSS (VmHWM)".into(),
            format!("{:.1} MiB", r.rss_peak_mib),
        ),
        (
            "RSS growth per object".into(),
            format!("{:.0} bytes", r.bytes_per_object),
        ),
        (
            format!(
                "CassKop: {} CassandraClusters Running/Done",
                r.casskop_clusters
            ),
            format!(
                "{:.2} s ({:.1} CassKop requests each)",
                r.casskop_all_done_s, r.casskop_requests_per_cluster
            ),
        ),
        (
            format!("RSS at the end ({} audit entries)", r.audit_entries_at_end),
            format!("{:.1} MiB", r.rss_at_end_mib),
        ),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("  {k:<width$}  {v}");
    }
    println!("  ({})", r.note);
}
