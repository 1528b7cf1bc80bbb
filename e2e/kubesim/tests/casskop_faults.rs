//! The simulated CassKop through kube-rs: it survives faults, restarts and re-creation, and cleans up after deletion.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kubesim::casskop::{self, CasskopOptions};
use kubesim::{Sim, SimOptions};
use serde_json::{Value, json};

const CLUSTER: &str = "k8s-cluster1";
const NS: &str = "cass";

fn opts() -> CasskopOptions {
    CasskopOptions {
        ready_after: Duration::from_millis(300),
        react_after: Duration::from_millis(200),
    }
}

async fn namespace(client: &kube::Client) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

fn clusters(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &casskop::api_resource())
}

async fn create(api: &Api<DynamicObject>, name: &str, spec: Value) -> DynamicObject {
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "CassandraCluster",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap()
}

fn state(obj: &DynamicObject) -> String {
    let s = |k: &str| {
        obj.data["status"][k]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    format!(
        "{}/{}/{}",
        s("phase"),
        s("lastClusterAction"),
        s("lastClusterActionStatus")
    )
}

/// Wait (through a watch) until the cluster's phase/action/status reads `want`.
async fn wait_state(api: &Api<DynamicObject>, name: &str, want: &str) {
    let want_owned = want.to_owned();
    let cond = move |o: Option<&DynamicObject>| o.is_some_and(|o| state(o) == want_owned);
    eprintln!("waiting for {name} to reach {want}");
    // Generous: a loaded CI machine is slow, never wrong.
    let res = tokio::time::timeout(
        Duration::from_secs(180),
        await_condition(api.clone(), name, cond),
    )
    .await;
    if res.is_err() {
        let now = api.get(name).await.map(|o| state(&o)).unwrap_or_default();
        panic!("{name} never reached {want}; it is {now}");
    }
}

async fn merge(api: &Api<DynamicObject>, name: &str, patch: Value) {
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Names of the cluster's objects of one kind, sorted.
async fn children(client: &kube::Client, kind: &str, cluster: &str) -> Vec<String> {
    let ar = match kind {
        "pods" => kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
        _ => kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::StatefulSet>(&()),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &ar);
    let mut names: Vec<String> = api
        .list(&ListParams::default().labels(&format!("cassandracluster={cluster}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    names.sort();
    names
}

async fn wait_children(client: &kube::Client, kind: &str, cluster: &str, want: &[&str]) {
    for _ in 0..2400 {
        if children(client, kind, cluster).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{kind} of {cluster}: {:?}, wanted {want:?}",
        children(client, kind, cluster).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casskop_completes_actions_through_expired_watches_outages_and_errors() {
    let sim = Sim::start(
        &[CLUSTER],
        SimOptions {
            casskop: Some(opts()),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let cluster = sim.cluster(CLUSTER).clone();
    let client = cluster.client().await;
    namespace(&client).await;
    let api = clusters(&client);
    create(&api, "c1", json!({"cassandraImage": "cassandra:3.11.6"})).await;
    wait_state(&api, "c1", "Running/Initializing/Done").await;

    // A 410 on every watch: CassKop re-lists and still notices the change.
    cluster.faults().expire_watches();
    merge(
        &api,
        "c1",
        json!({"spec": {"cassandraImage": "cassandra:3.11.7"}}),
    )
    .await;
    wait_state(&api, "c1", "Running/UpdateDockerImage/Done").await;

    // The cluster goes away right after a change, for longer than react + ready.
    merge(&api, "c1", json!({"spec": {"configMapName": "cm"}})).await;
    cluster.faults().set_unreachable(true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.faults().set_unreachable(false);
    let client = cluster.client().await;
    let api = clusters(&client);
    wait_state(&api, "c1", "Running/UpdateConfigMap/Done").await;

    // A third of the requests fail: CassKop retries until the action is done.
    cluster.faults().set_error_rate(0.3, vec![500, 503, 429]);
    let mut patched = false;
    for _ in 0..50 {
        let p = json!({"spec": {"nodesPerRacks": 3}});
        if api
            .patch("c1", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .is_ok()
        {
            patched = true;
            break;
        }
    }
    assert!(patched);
    // Polled: a watch would itself be broken by the injected errors.
    eprintln!("waiting for c1 to reach Running/ScaleUp/Done under injected errors");
    let mut last = String::new();
    for _ in 0..1800 {
        if let Ok(o) = api.get("c1").await {
            last = state(&o);
            if last == "Running/ScaleUp/Done" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.faults().clear();
    assert_eq!(
        last, "Running/ScaleUp/Done",
        "ScaleUp never finished under errors"
    );
    assert_eq!(
        children(&client, "pods", "c1").await,
        vec!["c1-dc1-rack1-0", "c1-dc1-rack1-1", "c1-dc1-rack1-2"]
    );
    let writes: Vec<u16> = sim
        .audit()
        .iter()
        .filter(|e| e.user == "system:serviceaccount:kube-system:casskop")
        .map(|e| e.code)
        .collect();
    println!(
        "CassKop made {} requests, {} failed",
        writes.len(),
        writes.iter().filter(|c| **c >= 400).count()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_casskop_finishes_the_ongoing_action() {
    // CassKop run by the test itself (as the admin), so it can be stopped and started.
    let sim = Sim::start(&[CLUSTER], SimOptions::default()).await.unwrap();
    let client = sim.cluster(CLUSTER).client().await;
    casskop::install_crd(client.clone()).await.unwrap();
    // Installing twice is fine (it replaces).
    casskop::install_crd(client.clone()).await.unwrap();
    namespace(&client).await;
    let api = clusters(&client);
    let slow = CasskopOptions {
        ready_after: Duration::from_secs(3600),
        react_after: Duration::from_millis(100),
    };
    let first = tokio::spawn(casskop::run(client.clone(), slow));
    create(&api, "c2", json!({"nodesPerRacks": 2})).await;
    wait_state(&api, "c2", "Initializing/Initializing/Ongoing").await;
    first.abort();
    let _ = first.await;

    let second = tokio::spawn(casskop::run(client.clone(), opts()));
    wait_state(&api, "c2", "Running/Initializing/Done").await;
    assert_eq!(
        children(&client, "statefulsets", "c2").await,
        vec!["c2-dc1-rack1"]
    );
    // A change made while no CassKop runs is noticed by the next one.
    second.abort();
    let _ = second.await;
    merge(&api, "c2", json!({"spec": {"nodesPerRacks": 1}})).await;
    let third = tokio::spawn(casskop::run(client.clone(), opts()));
    wait_state(&api, "c2", "Running/ScaleDown/Done").await;
    wait_children(&client, "pods", "c2", &["c2-dc1-rack1-0"]).await;
    third.abort();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_mid_action_removes_children_and_recreation_starts_over() {
    let sim = Sim::start(
        &[CLUSTER],
        SimOptions {
            casskop: Some(CasskopOptions {
                ready_after: Duration::from_millis(300),
                react_after: Duration::from_millis(100),
            }),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let client = sim.cluster(CLUSTER).client().await;
    namespace(&client).await;
    let api = clusters(&client);
    let topology = json!({"dc": [{"name": "east", "rack": [{"name": "a"}, {"name": "b"}]}]});
    create(&api, "c3", json!({"topology": topology})).await;
    wait_state(&api, "c3", "Running/Initializing/Done").await;
    api.patch(
        "c3",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"kubesim.casskop/hold": "Pending"}}, "spec": {"nodesPerRacks": 2}})),
    )
    .await
    .unwrap();
    wait_state(&api, "c3", "Pending/ScaleUp/Ongoing").await;

    api.delete("c3", &DeleteParams::default()).await.unwrap();
    wait_children(&client, "statefulsets", "c3", &[]).await;
    wait_children(&client, "pods", "c3", &[]).await;

    // Same name, new object: a fresh Initializing with a different topology.
    let created = create(&api, "c3", json!({"nodesPerRacks": 1})).await;
    wait_state(&api, "c3", "Running/Initializing/Done").await;
    wait_children(&client, "statefulsets", "c3", &["c3-dc1-rack1"]).await;
    let sts: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::StatefulSet>(&()),
    );
    let owner = sts
        .get("c3-dc1-rack1")
        .await
        .unwrap()
        .metadata
        .owner_references
        .unwrap();
    assert_eq!(Some(&owner[0].uid), created.metadata.uid.as_ref());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_new_cluster_stays_pending_until_the_hold_is_lifted() {
    let sim = Sim::start(
        &[CLUSTER],
        SimOptions {
            casskop: Some(opts()),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let client = sim.cluster(CLUSTER).client().await;
    namespace(&client).await;
    let api = clusters(&client);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "CassandraCluster",
        "metadata": {"name": "held", "annotations": {casskop::HOLD_ANNOTATION: "Pending"}},
        "spec": {"nodesPerRacks": 1},
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    wait_state(&api, "held", "Pending/Initializing/Ongoing").await;
    // Well past ready_after it is still held.
    tokio::time::sleep(opts().ready_after * 5).await;
    assert_eq!(
        state(&api.get("held").await.unwrap()),
        "Pending/Initializing/Ongoing"
    );
    merge(
        &api,
        "held",
        json!({"metadata": {"annotations": {casskop::HOLD_ANNOTATION: null}}}),
    )
    .await;
    wait_state(&api, "held", "Running/Initializing/Done").await;
    sim.shutdown().await;
}
