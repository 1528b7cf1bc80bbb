//! kube-rs against kubesim: the runtime watcher (order, 410 re-list, dropped connection) and server-side apply.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kubesim::{Sim, SimOptions};
use serde_json::json;

const NS: &str = "watch-test";

/// One watcher event reduced to what the tests compare.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Init,
    InitApply(String),
    InitDone,
    Apply(String, Option<String>),
    Delete(String),
    /// An error the watcher reported, with the HTTP code when the server sent one.
    Error(Option<u16>),
}

fn reduce(ev: Result<watcher::Event<ConfigMap>, watcher::Error>) -> Seen {
    let name = |cm: &ConfigMap| cm.metadata.name.clone().unwrap_or_default();
    let value = |cm: &ConfigMap| cm.data.as_ref().and_then(|d| d.get("v").cloned());
    match ev {
        Ok(watcher::Event::Init) => Seen::Init,
        Ok(watcher::Event::InitApply(cm)) => Seen::InitApply(name(&cm)),
        Ok(watcher::Event::InitDone) => Seen::InitDone,
        Ok(watcher::Event::Apply(cm)) => Seen::Apply(name(&cm), value(&cm)),
        Ok(watcher::Event::Delete(cm)) => Seen::Delete(name(&cm)),
        Err(watcher::Error::WatchError(s)) => Seen::Error(Some(s.code)),
        Err(
            watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s))
            | watcher::Error::WatchFailed(kube::Error::Api(s)),
        ) => Seen::Error(Some(s.code)),
        Err(_) => Seen::Error(None),
    }
}

/// Read events until `stop` matches one (included), failing after a generous bound.
async fn until(
    stream: &mut (impl Stream<Item = Seen> + Unpin),
    log: &mut Vec<Seen>,
    stop: impl Fn(&Seen) -> bool,
) -> Seen {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .unwrap_or_else(|_| panic!("watcher went quiet; seen so far: {log:?}"))
            .expect("watcher stream never ends");
        log.push(ev.clone());
        if stop(&ev) {
            return ev;
        }
    }
}

async fn setup() -> (Sim, kube::Client, Api<ConfigMap>) {
    let sim = Sim::start(&["k8s-cluster1"], SimOptions::default())
        .await
        .expect("kubesim starts");
    let client = sim.cluster("k8s-cluster1").client().await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api = Api::namespaced(client.clone(), NS);
    (sim, client, api)
}

fn cm(name: &str, v: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("v".to_owned(), v.to_owned())])),
        ..Default::default()
    }
}

fn watch(api: &Api<ConfigMap>) -> impl Stream<Item = Seen> + Unpin + use<> {
    watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .map(reduce)
        .boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_added_modified_deleted_in_order() {
    let (sim, _client, api) = setup().await;
    api.create(&PostParams::default(), &cm("existing", "0"))
        .await
        .unwrap();
    let mut stream = watch(&api);
    let mut log = Vec::new();
    until(&mut stream, &mut log, |e| *e == Seen::InitDone).await;
    assert_eq!(
        log,
        vec![
            Seen::Init,
            Seen::InitApply("existing".into()),
            Seen::InitDone
        ]
    );

    api.create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    let mut replaced = api.get("a").await.unwrap();
    replaced.data = Some(BTreeMap::from([("v".to_owned(), "3".to_owned())]));
    api.replace("a", &PostParams::default(), &replaced)
        .await
        .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();

    let mut log = Vec::new();
    until(&mut stream, &mut log, |e| *e == Seen::Delete("a".into())).await;
    assert_eq!(
        log,
        vec![
            Seen::Apply("a".into(), Some("1".into())),
            Seen::Apply("a".into(), Some("2".into())),
            Seen::Apply("a".into(), Some("3".into())),
            Seen::Delete("a".into()),
        ]
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_relists_after_a_forced_410() {
    let (sim, _client, api) = setup().await;
    let cluster = sim.cluster("k8s-cluster1").clone();
    api.create(&PostParams::default(), &cm("before", "1"))
        .await
        .unwrap();
    let mut stream = watch(&api);
    let mut log = Vec::new();
    until(&mut stream, &mut log, |e| *e == Seen::InitDone).await;
    let lists_before = list_calls(&sim);

    cluster.faults().expire_watches();
    // Written while the watch is being torn down; the re-list must bring it.
    api.create(&PostParams::default(), &cm("during", "1"))
        .await
        .unwrap();
    let mut log = Vec::new();
    until(&mut stream, &mut log, |e| *e == Seen::InitDone).await;
    println!("after expire_watches: {log:?}");
    let gone_at = log
        .iter()
        .position(|e| *e == Seen::Error(Some(410)))
        .expect("the watcher saw the 410");
    let init_at = log
        .iter()
        .position(|e| *e == Seen::Init)
        .expect("the watcher re-listed");
    assert!(gone_at < init_at, "{log:?}");
    let relisted: Vec<&Seen> = log[init_at..]
        .iter()
        .filter(|e| matches!(e, Seen::InitApply(_)))
        .collect();
    assert_eq!(
        relisted,
        vec![
            &Seen::InitApply("before".into()),
            &Seen::InitApply("during".into())
        ]
    );
    assert!(list_calls(&sim) > lists_before, "no new list request");

    // And it keeps watching afterwards.
    api.create(&PostParams::default(), &cm("after", "1"))
        .await
        .unwrap();
    let mut log = Vec::new();
    until(
        &mut stream,
        &mut log,
        |e| matches!(e, Seen::Apply(n, _) if n == "after"),
    )
    .await;
    cluster.faults().clear();
    sim.shutdown().await;
}

fn list_calls(sim: &Sim) -> usize {
    sim.audit()
        .iter()
        .filter(|e| e.verb == "list" && e.resource == "configmaps")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_recovers_from_a_dropped_connection() {
    let (sim, _client, api) = setup().await;
    let cluster = sim.cluster("k8s-cluster1").clone();
    let mut stream = watch(&api);
    let mut log = Vec::new();
    until(&mut stream, &mut log, |e| *e == Seen::InitDone).await;

    cluster.faults().set_unreachable(true);
    let mut log = Vec::new();
    until(&mut stream, &mut log, |e| matches!(e, Seen::Error(_))).await;
    println!("while unreachable: {log:?}");
    cluster.faults().set_unreachable(false);

    // The client's own pooled connections died too: retry the write until the cluster answers.
    let mut created = false;
    for _ in 0..100 {
        match api.create(&PostParams::default(), &cm("back", "1")).await {
            Ok(_) => {
                created = true;
                break;
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                created = true;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(created, "cluster never came back");
    let mut log = Vec::new();
    until(
        &mut stream,
        &mut log,
        |e| matches!(e, Seen::Apply(n, _) | Seen::InitApply(n) if n == "back"),
    )
    .await;
    println!("after reconnecting: {log:?}");
    sim.shutdown().await;
}

fn applied(data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": data})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_removes_dropped_fields_reports_conflicts_and_honours_force() {
    let (sim, _client, api) = setup().await;
    let one = PatchParams::apply("manager-one");
    let two = PatchParams::apply("manager-two");

    let cm = api
        .patch(
            "applied",
            &one,
            &Patch::Apply(applied(json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        cm.data,
        Some(BTreeMap::from([
            ("a".into(), "1".into()),
            ("b".into(), "2".into())
        ]))
    );

    // manager-one stops applying b: it goes.
    let cm = api
        .patch("applied", &one, &Patch::Apply(applied(json!({"a": "1"}))))
        .await
        .unwrap();
    assert_eq!(cm.data, Some(BTreeMap::from([("a".into(), "1".into())])));

    // manager-two wants a different a: 409 naming the owner and the field.
    let err = api
        .patch("applied", &two, &Patch::Apply(applied(json!({"a": "9"}))))
        .await
        .expect_err("conflicting apply must fail");
    match &err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409, "{s:?}");
            assert_eq!(s.reason, "Conflict", "{s:?}");
            assert!(s.message.contains("manager-one"), "{}", s.message);
            assert!(s.message.contains(".data.a"), "{}", s.message);
        }
        other => panic!("expected a 409, got {other}"),
    }
    assert_eq!(
        api.get("applied").await.unwrap().data,
        Some(BTreeMap::from([("a".into(), "1".into())]))
    );

    // Same value is no conflict: shared ownership.
    api.patch(
        "applied",
        &two,
        &Patch::Apply(applied(json!({"a": "1", "c": "3"}))),
    )
    .await
    .unwrap();

    // Forced: manager-two takes a, and manager-one now conflicts.
    let cm = api
        .patch(
            "applied",
            &two.clone().force(),
            &Patch::Apply(applied(json!({"a": "9", "c": "3"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        cm.data,
        Some(BTreeMap::from([
            ("a".into(), "9".into()),
            ("c".into(), "3".into())
        ]))
    );
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.contains(&"manager-two".to_owned()), "{managers:?}");
    let err = api
        .patch("applied", &one, &Patch::Apply(applied(json!({"a": "1"}))))
        .await
        .expect_err("manager-one lost a");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409),
        "{err}"
    );
    sim.shutdown().await;
}
