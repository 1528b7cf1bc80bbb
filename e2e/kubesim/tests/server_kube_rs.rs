//! Server core driven by kube-rs: CRUD semantics, resourceVersion/generation rules, status subresource, watch, TLS, tokens, faults, audit.
use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use kubesim::{Sim, SimOptions};
use serde_json::json;

fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "data": data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
    }))
    .unwrap()
}

/// The next watch event that is not a BOOKMARK.
async fn next_event<S>(s: &mut S) -> WatchEvent<ConfigMap>
where
    S: futures::Stream<Item = Result<WatchEvent<ConfigMap>, kube::Error>> + Unpin,
{
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), s.try_next())
            .await
            .expect("watch stalled")
            .unwrap()
            .expect("watch ended");
        if !matches!(ev, WatchEvent::Bookmark(_)) {
            return ev;
        }
    }
}

fn api_err(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn widget_crd(client: &kube::Client, status: bool) -> Api<DynamicObject> {
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let mut version = json!({"name": "v1", "served": true, "storage": true,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
    if status {
        version["subresources"] = json!({"status": {}});
    }
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [version]}
    }))
    .unwrap();
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let conds = created.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True"),
        "{conds:?}"
    );
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("example.com", "v1", "Widget"),
            "widgets",
        ),
    )
}

#[tokio::test]
async fn crud_resource_versions_and_errors() {
    let sim = Sim::start(&["a"], SimOptions::default()).await.unwrap();
    let client = sim.cluster("a").client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let created = cms
        .create(&PostParams::default(), &cm("one", &[("k", "v")]))
        .await
        .unwrap();
    let rv1: u64 = created
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(
        created.metadata.generation, None,
        "ConfigMaps have no generation"
    );

    // AlreadyExists
    let (code, reason) = api_err(
        cms.create(&PostParams::default(), &cm("one", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));

    // generateName
    let mut g = cm("", &[]);
    g.metadata.name = None;
    g.metadata.generate_name = Some("gen-".into());
    let gen_obj = cms.create(&PostParams::default(), &g).await.unwrap();
    let gname = gen_obj.metadata.name.unwrap();
    assert!(gname.starts_with("gen-") && gname.len() == 9, "{gname}");

    // Update bumps the resourceVersion; a stale one is a 409 Conflict.
    let mut upd = created.clone();
    upd.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = cms
        .replace("one", &PostParams::default(), &upd)
        .await
        .unwrap();
    let rv2: u64 = updated
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    let (code, reason) = api_err(
        cms.replace("one", &PostParams::default(), &upd)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    // A no-op write keeps the resourceVersion.
    let same = cms
        .replace("one", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        updated.metadata.resource_version
    );

    // Missing namespace -> 404; invalid name -> 422.
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let (code, _) = api_err(
        other
            .create(&PostParams::default(), &cm("x", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 404);
    let (code, reason) = api_err(
        cms.create(&PostParams::default(), &cm("Bad_Name", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));

    // List with a label selector, limit and continue.
    for i in 0..5 {
        let mut c = cm(&format!("lbl-{i}"), &[]);
        c.metadata.labels = Some(
            [(
                "team".to_string(),
                if i % 2 == 0 { "even" } else { "odd" }.to_string(),
            )]
            .into(),
        );
        cms.create(&PostParams::default(), &c).await.unwrap();
    }
    let even = cms
        .list(&ListParams::default().labels("team=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 3);
    let page1 = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    let token = page1.metadata.continue_.clone().expect("continue token");
    let page2 = cms
        .list(&ListParams::default().limit(100).continue_token(&token))
        .await
        .unwrap();
    let total = cms.list(&ListParams::default()).await.unwrap().items.len();
    assert_eq!(page1.items.len() + page2.items.len(), total);
    assert!(page2.metadata.continue_.is_none());
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=one"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);

    // Delete; then 404.
    cms.delete("one", &DeleteParams::default()).await.unwrap();
    let (code, reason) = api_err(cms.get("one").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));

    // Default namespaces and their default ServiceAccount.
    let nss: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for n in ["default", "kube-public", "kube-system"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "kube-public");
    sas.get("default").await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn finalizers_status_subresource_and_generation() {
    let sim = Sim::start(&["a"], SimOptions::default()).await.unwrap();
    let client = sim.cluster("a").client().await;
    let widgets = widget_crd(&client, true).await;
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "finalizers": ["example.com/hold"]}, "spec": {"size": 1}, "status": {"phase": "ignored"}}))
    .unwrap();
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create with a status subresource"
    );

    // Status via /status: generation stays.
    let st = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running"}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["phase"], "Running");
    assert_eq!(
        st.data["spec"]["size"], 1,
        "writes to /status change only status"
    );
    assert_eq!(st.metadata.generation, Some(1));

    // Main resource: spec change bumps generation, status change is ignored.
    let m = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}, "status": {"phase": "Hacked"}})),
        )
        .await
        .unwrap();
    assert_eq!(m.metadata.generation, Some(2));
    assert_eq!(m.data["status"]["phase"], "Running");
    // Labels only: no generation bump.
    let l = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(l.metadata.generation, Some(2));

    // Finalizer: delete only marks.
    widgets
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap();
    let marked = widgets.get("w1").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    let (code, _) = api_err(widgets.get("w1").await.unwrap_err());
    assert_eq!(code, 404);

    // SMP is refused on custom resources.
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let (code, reason) = api_err(
        widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 3}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (415, "UnsupportedMediaType"));
    sim.shutdown().await;
}

#[tokio::test]
async fn generation_without_status_subresource_and_crd_removal() {
    let sim = Sim::start(&["a"], SimOptions::default()).await.unwrap();
    let client = sim.cluster("a").client().await;
    let widgets = widget_crd(&client, false).await;
    let w: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 1}}))
        .unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let s = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "x"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        s.data["status"]["phase"], "x",
        "without a status subresource status is an ordinary field"
    );
    assert_eq!(
        s.metadata.generation,
        Some(2),
        "any change outside metadata bumps generation"
    );
    let (code, _) = api_err(
        widgets
            .patch_status(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        code, 404,
        "no /status without a declared status subresource"
    );

    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    // kube-rs discovery sees the CRD's resource, and the built-ins with their scopes.
    let disc = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let (ar, caps) = disc
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("widgets discovered");
    assert_eq!(
        (ar.plural.as_str(), caps.scope.clone()),
        ("widgets", kube::discovery::Scope::Namespaced)
    );
    let (_, ns_caps) = disc
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .unwrap();
    assert_eq!(ns_caps.scope, kube::discovery::Scope::Cluster);
    let (sts, _) =
        kube::discovery::pinned_kind(&client, &GroupVersionKind::gvk("apps", "v1", "StatefulSet"))
            .await
            .unwrap();
    assert_eq!(sts.plural, "statefulsets");
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let (code, _) = api_err(widgets.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(code, 404, "deleting the CRD stops serving its resource");
    sim.shutdown().await;
}

#[tokio::test]
async fn watch_orders_events_resumes_and_expires() {
    let sim = Sim::start(&["a"], SimOptions::default()).await.unwrap();
    let c = sim.cluster("a");
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let list = cms.list(&ListParams::default()).await.unwrap();
    let rv0 = list.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(30), &rv0)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("w", &[("a", "1")]))
        .await
        .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    let mut kinds = vec![];
    while kinds.len() < 3 {
        match next_event(&mut stream).await {
            WatchEvent::Added(o) => kinds.push(("ADDED", o.data.unwrap()["a"].clone())),
            WatchEvent::Modified(o) => kinds.push(("MODIFIED", o.data.unwrap()["a"].clone())),
            WatchEvent::Deleted(o) => kinds.push(("DELETED", o.data.unwrap()["a"].clone())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        kinds,
        vec![
            ("ADDED", "1".to_string()),
            ("MODIFIED", "2".to_string()),
            ("DELETED", "2".to_string())
        ]
    );

    // Resume from the old resourceVersion replays the same history.
    let mut again = cms
        .watch(&WatchParams::default().timeout(30), &rv0)
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next_event(&mut again).await, WatchEvent::Added(_)));

    // Forced expiry: open watches get a 410 ERROR event; old resourceVersions are refused.
    c.faults().expire_watches();
    match next_event(&mut stream).await {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    let mut old = cms
        .watch(&WatchParams::default(), &rv0)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut old).await {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }

    // Label-selected watch sees a relabel as ADDED / DELETED.
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut sel = cms
        .watch(&WatchParams::default().labels("pick=yes").timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("s", &[]))
        .await
        .unwrap();
    cms.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"pick": "yes"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"pick": "no"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next_event(&mut sel).await, WatchEvent::Added(_)));
    assert!(matches!(next_event(&mut sel).await, WatchEvent::Deleted(_)));

    // Bookmarks when asked for.
    let mut bm = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    loop {
        if let WatchEvent::Bookmark(b) = bm.try_next().await.unwrap().unwrap() {
            assert!(!b.metadata.resource_version.is_empty());
            break;
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn kube_runtime_watcher_recovers_from_410_and_dropped_connections() {
    use kube::runtime::{WatchStreamExt, watcher};
    let sim = Sim::start(&["a"], SimOptions::default()).await.unwrap();
    let c = sim.cluster("a").clone();
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut events = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut seen = vec![];
    let wait_for = async |events: &mut futures::stream::BoxStream<
        '_,
        Result<watcher::Event<ConfigMap>, watcher::Error>,
    >,
                          name: &str,
                          seen: &mut Vec<String>| {
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(60), events.next())
                .await
                .expect("watcher stalled");
            if let Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) = ev {
                let n = o.metadata.name.clone().unwrap();
                seen.push(n.clone());
                if n == name {
                    return;
                }
            }
        }
    };
    cms.create(&PostParams::default(), &cm("first", &[]))
        .await
        .unwrap();
    wait_for(&mut events, "first", &mut seen).await;
    c.faults().expire_watches();
    cms.create(&PostParams::default(), &cm("after-410", &[]))
        .await
        .unwrap();
    wait_for(&mut events, "after-410", &mut seen).await;
    c.faults().set_unreachable(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.faults().set_unreachable(false);
    cms.create(&PostParams::default(), &cm("after-drop", &[]))
        .await
        .unwrap();
    wait_for(&mut events, "after-drop", &mut seen).await;
    println!("watcher saw {seen:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn tls_tokens_and_cluster_isolation() {
    let sim = Sim::start(&["a", "b"], SimOptions::default())
        .await
        .unwrap();
    let (a, b) = (sim.cluster("a"), sim.cluster("b"));
    assert_ne!(a.url(), b.url());
    // A client trusting B's CA cannot talk to A.
    let yaml = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters:\n- name: x\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: {}\ncontexts:\n- name: x\n  context: {{cluster: x, user: u}}\n",
        a.url(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b.ca_pem()),
        a.admin_token()
    );
    let cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&yaml).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let wrong = kube::Client::try_from(cfg).unwrap();
    let err = Api::<Namespace>::all(wrong)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "TLS must fail before any API answer: {err:?}"
    );

    // A's admin token is unknown to B.
    let cross = b.client_with_token(&a.admin_token()).await.unwrap();
    let (code, reason) = api_err(
        Api::<Namespace>::all(cross)
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (401, "Unauthorized"));

    // Service-account token Secret filled by the token controller; its token works until the Secret goes.
    let admin = a.client().await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap(),
    )
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "robot-token",
                "annotations": {"kubernetes.io/service-account.name": "robot"}},
                "type": "kubernetes.io/service-account-token"}))
            .unwrap(),
        )
        .await
        .unwrap();
    let s = secrets.get("robot-token").await.unwrap();
    let data = s.data.unwrap();
    assert_eq!(
        String::from_utf8(data["ca.crt"].0.clone()).unwrap(),
        a.ca_pem()
    );
    assert_eq!(
        String::from_utf8(data["namespace"].0.clone()).unwrap(),
        "default"
    );
    assert!(
        s.metadata
            .annotations
            .unwrap()
            .contains_key("kubernetes.io/service-account.uid")
    );
    let token = String::from_utf8(data["token"].0.clone()).unwrap();
    let robot = a.client_with_token(&token).await.unwrap();
    // Authenticated but not authorized: 403 with kube's message shape.
    let err = Api::<Secret>::namespaced(robot.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403);
            assert!(
                s.message.contains(
                    "User \"system:serviceaccount:default:robot\" cannot list resource \"secrets\""
                ),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    // Discovery is allowed for every authenticated user.
    robot.apiserver_version().await.unwrap();
    secrets
        .delete("robot-token", &DeleteParams::default())
        .await
        .unwrap();
    let (code, _) = api_err(robot.apiserver_version().await.unwrap_err());
    assert_eq!(code, 401, "a Secret token dies with its Secret");

    // Issued tokens: revocation and expiry.
    let t = a.issue_token("default", "robot", None);
    let c = a.client_with_token(&t).await.unwrap();
    c.apiserver_version().await.unwrap();
    a.faults().revoke_token(&t);
    assert_eq!(api_err(c.apiserver_version().await.unwrap_err()).0, 401);
    let short = a.issue_token("default", "robot", Some(Duration::from_secs(1)));
    let sc = a.client_with_token(&short).await.unwrap();
    sc.apiserver_version().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(api_err(sc.apiserver_version().await.unwrap_err()).0, 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_are_visible_and_clear() {
    let sim = Sim::start(&["a"], SimOptions::default()).await.unwrap();
    let c = sim.cluster("a");
    // kube's default client retries 429/503 for minutes: see the faults without it.
    let mut cfg = c.config_with_token(&c.admin_token()).await.unwrap();
    cfg.default_retry = false;
    let client = kube::Client::try_from(cfg).unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.get("default").await.unwrap();

    c.faults().set_error_rate(1.0, vec![503]);
    let (code, reason) = api_err(nss.get("default").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (503, "ServiceUnavailable"));
    c.faults().set_error_rate(1.0, vec![429]);
    assert_eq!(api_err(nss.get("default").await.unwrap_err()).0, 429);
    c.faults().clear();
    nss.get("default").await.unwrap();

    c.faults().set_unreachable(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let port = c.url().rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(refused.is_err(), "unreachable must refuse connections");
    assert!(nss.get("default").await.is_err());
    c.faults().clear();
    let mut ok = false;
    for _ in 0..50 {
        if nss.get("default").await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the same port serves again once cleared");

    c.faults().set_latency(Duration::from_millis(200));
    let t = std::time::Instant::now();
    nss.get("default").await.unwrap();
    println!("request with 200ms injected latency took {:?}", t.elapsed());
    assert!(t.elapsed() >= Duration::from_millis(200));
    c.faults().clear();

    // Audit: every request, with user, verb and code.
    let audit = sim.audit();
    assert!(audit.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(audit.iter().any(|e| e.code == 503
        && e.verb == "get"
        && e.resource == "namespaces"
        && e.name == "default"));
    assert!(audit.iter().all(|e| e.cluster == "a"));
    assert!(
        audit
            .iter()
            .filter(|e| e.code == 200)
            .all(|e| e.user == "kubesim:admin")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn apply_dry_run_collections_cluster_scope_and_reviews() {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
    let sim = Sim::start(&["a"], SimOptions::default()).await.unwrap();
    let c = sim.cluster("a");
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Server-side apply: creates (with managedFields), and an identical re-apply changes nothing.
    let pp = PatchParams::apply("tester");
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let first = cms.patch("ssa", &pp, &Patch::Apply(&body)).await.unwrap();
    let mf = first.metadata.managed_fields.clone().unwrap();
    assert!(
        mf.iter()
            .any(|e| e.manager.as_deref() == Some("tester")
                && e.operation.as_deref() == Some("Apply")),
        "{mf:?}"
    );
    let again = cms.patch("ssa", &pp, &Patch::Apply(&body)).await.unwrap();
    assert_eq!(
        again.metadata.resource_version, first.metadata.resource_version,
        "a no-op apply keeps the resourceVersion"
    );
    // A resourceVersion in the apply configuration is a precondition, as in kube-apiserver.
    let mut stale = body.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["data"]["a"] = json!("2");
    let (code, _) = api_err(
        cms.patch("ssa", &pp, &Patch::Apply(&stale))
            .await
            .expect_err("a stale resourceVersion must conflict"),
    );
    assert_eq!(code, 409);
    let mut current = stale.clone();
    current["metadata"]["resourceVersion"] = json!(first.metadata.resource_version.clone());
    let applied = cms
        .patch("ssa", &pp, &Patch::Apply(&current))
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["a"], "2");
    // fieldManager on an ordinary patch is recorded too.
    let upd = cms
        .patch(
            "ssa",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"b": "2"}})),
        )
        .await
        .unwrap();
    assert!(
        upd.metadata
            .managed_fields
            .unwrap()
            .iter()
            .any(|e| e.manager.as_deref() == Some("editor")
                && e.operation.as_deref() == Some("Update"))
    );

    // dryRun=All changes nothing.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    cms.create(&dry, &cm("dry", &[])).await.unwrap();
    assert_eq!(api_err(cms.get("dry").await.unwrap_err()).0, 404);
    let rv = cms.get("ssa").await.unwrap().metadata.resource_version;
    cms.patch(
        "ssa",
        &PatchParams {
            dry_run: true,
            ..Default::default()
        },
        &Patch::Merge(json!({"data": {"c": "3"}})),
    )
    .await
    .unwrap();
    let now = cms.get("ssa").await.unwrap();
    assert_eq!(now.metadata.resource_version, rv);
    assert!(!now.data.unwrap().contains_key("c"));

    // deletecollection with a label selector.
    for (n, l) in [("d1", "x"), ("d2", "x"), ("d3", "y")] {
        let mut o = cm(n, &[]);
        o.metadata.labels = Some([("grp".to_string(), l.to_string())].into());
        cms.create(&PostParams::default(), &o).await.unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("grp=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default().labels("grp"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    assert_eq!(left, vec!["d3".to_string()]);

    // Cluster-scoped custom resources.
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let crd: DynamicObject = serde_json::from_value(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "regions.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"plural": "regions", "kind": "Region"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Region"),
        "regions",
    );
    let regions: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let r: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Region", "metadata": {"name": "eu"}, "spec": {}})).unwrap();
    let stored = regions.create(&PostParams::default(), &r).await.unwrap();
    assert_eq!(stored.metadata.namespace, None);
    assert_eq!(
        regions
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // TokenRequest and SelfSubjectAccessReview as a service account.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let tr: TokenRequest =
        serde_json::from_value(json!({"spec": {"expirationSeconds": 600}})).unwrap();
    let tr = sas
        .create_subresource::<TokenRequest, TokenRequest>(
            "token",
            "default",
            &PostParams::default(),
            &tr,
        )
        .await
        .unwrap();
    let status = tr.status.unwrap();
    assert!(!status.token.is_empty());
    let sa_client = c.client_with_token(&status.token).await.unwrap();
    let ssar: SelfSubjectAccessReview = serde_json::from_value(json!({"spec": {"resourceAttributes": {"verb": "list", "resource": "configmaps", "namespace": "default"}}})).unwrap();
    let reviews: Api<SelfSubjectAccessReview> = Api::all(sa_client.clone());
    let answer = reviews.create(&PostParams::default(), &ssar).await.unwrap();
    assert!(
        !answer.status.unwrap().allowed,
        "the default service account may not list configmaps"
    );
    let admin_reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    assert!(
        admin_reviews
            .create(&PostParams::default(), &ssar)
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );

    // Garbage collection: deleting an owner deletes its sole dependents, unless orphaned.
    let owner = cms
        .create(&PostParams::default(), &cm("owner", &[]))
        .await
        .unwrap();
    for n in ["dep1", "dep2"] {
        let mut d = cm(n, &[]);
        d.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: owner.metadata.uid.clone().unwrap(),
                ..Default::default()
            },
        ]);
        cms.create(&PostParams::default(), &d).await.unwrap();
    }
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_err(cms.get("dep1").await.unwrap_err()).0, 404);
    assert_eq!(api_err(cms.get("dep2").await.unwrap_err()).0, 404);
    let owner = cms
        .create(&PostParams::default(), &cm("owner", &[]))
        .await
        .unwrap();
    let mut d = cm("dep3", &[]);
    d.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner".into(),
            uid: owner.metadata.uid.clone().unwrap(),
            ..Default::default()
        },
    ]);
    cms.create(&PostParams::default(), &d).await.unwrap();
    cms.delete("owner", &DeleteParams::orphan()).await.unwrap();
    cms.get("dep3").await.unwrap();

    // Metadata-only list.
    let metas = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert!(
        metas
            .items
            .iter()
            .any(|m| m.metadata.name.as_deref() == Some("ssa"))
    );
    // Streaming-list watcher (sendInitialEvents).
    {
        use kube::runtime::watcher;
        let mut s = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
        let mut saw_init_done = false;
        while let Some(ev) = tokio::time::timeout(Duration::from_secs(30), s.next())
            .await
            .unwrap()
        {
            if let watcher::Event::InitDone = ev.unwrap() {
                saw_init_done = true;
                break;
            }
        }
        assert!(saw_init_done);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn audit_spans_clusters_and_casskop_identity_is_provisioned() {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    let opts = SimOptions {
        casskop: Some(kubesim::casskop::CasskopOptions {
            ready_after: Duration::from_secs(1),
            react_after: Duration::from_secs(1),
        }),
        audit_log: None,
        ..Default::default()
    };
    let sim = Sim::start(&["a", "b"], opts).await.unwrap();
    for c in sim.clusters() {
        let client = c.client().await;
        Api::<ServiceAccount>::namespaced(client.clone(), "kube-system")
            .get("casskop")
            .await
            .unwrap();
        let crb = Api::<ClusterRoleBinding>::all(client.clone())
            .get("kubesim-casskop")
            .await
            .unwrap();
        assert_eq!(crb.role_ref.name, "cluster-admin");
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        cms.create(
            &PostParams::default(),
            &cm(&format!("from-{}", c.name()), &[("x", "y")]),
        )
        .await
        .unwrap();
    }
    let all = sim.audit();
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq is global and increasing"
    );
    let creates: Vec<_> = all
        .iter()
        .filter(|e| e.verb == "create" && e.resource == "configmaps")
        .collect();
    assert_eq!(creates.len(), 2);
    assert_eq!(
        (creates[0].cluster.as_str(), creates[1].cluster.as_str()),
        ("a", "b")
    );
    assert_eq!(
        creates[0].object.as_ref().unwrap()["data"]["x"],
        "y",
        "the stored object is recorded"
    );
    assert_eq!(creates[0].name, "from-a");
    assert_eq!(
        sim.cluster("b")
            .audit()
            .iter()
            .filter(|e| e.cluster != "b")
            .count(),
        0
    );
    // Requests of the simulated CassKop (if it made any) are told apart by user.
    assert!(
        all.iter()
            .filter(|e| e.user.contains("casskop"))
            .all(|e| e.user == "system:serviceaccount:kube-system:casskop")
    );
    sim.shutdown().await;
}
