//! Prints throughput and write-to-watch latency figures of one simulated cluster (no timed assertions).
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kubesim::{Sim, SimOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_and_watch_latency_figures() {
    let sim = Sim::start(&["perf"], SimOptions::default()).await.unwrap();
    let client = sim.cluster("perf").client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "hot"}, "data": {"n": "0"}})).unwrap(),
    )
    .await
    .unwrap();

    let n = 2000;
    let t = Instant::now();
    let gets = futures::stream::iter(0..n)
        .map(|_| cms.get("hot"))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    println!(
        "get: {:.0} requests/s (16 in flight)",
        gets.len() as f64 / t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let patches = futures::stream::iter(0..n)
        .map(|i| {
            let cms = cms.clone();
            async move {
                cms.patch(
                    "hot",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"n": i.to_string()}})),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    println!(
        "patch: {:.0} requests/s (16 in flight)",
        patches.len() as f64 / t.elapsed().as_secs_f64()
    );

    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().fields("metadata.name=hot"), &rv)
        .await
        .unwrap()
        .boxed();
    let mut lat = vec![];
    for i in 0..500 {
        let t = Instant::now();
        let v = format!("w{i}");
        cms.patch(
            "hot",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"n": v}})),
        )
        .await
        .unwrap();
        loop {
            match stream.try_next().await.unwrap().unwrap() {
                WatchEvent::Modified(o) if o.data.as_ref().unwrap()["n"] == v => break,
                _ => {}
            }
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "write-to-watch (patch sent -> event received): median {:?}, p99 {:?}",
        pct(0.5),
        pct(0.99)
    );

    let t = Instant::now();
    let creates = futures::stream::iter(0..10_000)
        .map(|i| {
            let cms = cms.clone();
            let obj: ConfigMap = serde_json::from_value(
                json!({"metadata": {"name": format!("obj-{i}"), "labels": {"i": (i % 10).to_string()}}, "data": {"k": "v".repeat(200)}}),
            )
            .unwrap();
            async move { cms.create(&PostParams::default(), &obj).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    println!(
        "create: {:.0} requests/s, {} objects",
        creates.len() as f64 / t.elapsed().as_secs_f64(),
        creates.len()
    );
    let t = Instant::now();
    let all = cms.list(&ListParams::default()).await.unwrap();
    println!("list of {} objects took {:?}", all.items.len(), t.elapsed());
    assert_eq!(all.items.len(), 10_001);
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for l in status
            .lines()
            .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        {
            println!("{l} (test process: sim + client)");
        }
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    sim.shutdown().await;
}
