//! One simulated cluster under concurrent load (16 requests in flight) loses nothing: every get, patch and create succeeds, a watch delivers every write, and a list returns every object. The figures (requests/s, watch latency, memory) are `kubesim-bench`'s job, not a test's.
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kubesim::{Sim, SimOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_all_succeed_and_a_watch_sees_every_write() {
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
    futures::stream::iter(0..n)
        .map(|_| cms.get("hot"))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();

    futures::stream::iter(0..n)
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
    for i in 0..500 {
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
    }

    futures::stream::iter(0..10_000)
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
    let all = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 10_001);
    tokio::time::sleep(Duration::from_millis(10)).await;
    sim.shutdown().await;
}
