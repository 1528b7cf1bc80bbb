//! The whole chart with real Helm 4 (helm-python-sdk) against kubesim, release history in Secrets
//! as the `helm` command keeps it, every action waiting as `--wait=watcher` does: install with
//! `k8s.local`/`k8s.remote` rolls the Deployment out; an upgrade that changes a value makes a new
//! ReplicaSet and rolls to it; rollback goes back to the first ReplicaSet; uninstall removes the
//! release's objects and Secrets and keeps the CRD (resource-policy keep). kubectl sees what it
//! sees on a real cluster. Pods are marked ready through the API in place of a kubelet.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use e2e::chart::chart_dir;
use e2e::helm_release::{HelmFlags, HelmSession};
use kubesim::kubectl::Kubectl;
use kubesim::pod_ready::mark_pods_ready;
use kubesim::{Sim, SimOptions};
use serde_json::{Value, json};

const C1: &str = "k8s-cluster1";
const RELEASE: &str = "multi-casskop";
const NS: &str = "default";
const MC_CRD: &str = "multicasskops.db.orange.com";

/// The ReplicaSets of the release: (name, desired replicas, revision), by name.
async fn replicasets(kubectl: &Kubectl) -> Vec<(String, i64, String)> {
    let v = kubectl
        .run(&[
            "get",
            "rs",
            "-l",
            "app.kubernetes.io/instance=multi-casskop",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    let mut out: Vec<(String, i64, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rs| {
            (
                rs["metadata"]["name"].as_str().unwrap().to_string(),
                rs["spec"]["replicas"].as_i64().unwrap(),
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn deployment_args(kubectl: &Kubectl) -> Value {
    let d = kubectl
        .run(&["get", "deploy", RELEASE, "-o", "json"])
        .await
        .ok()
        .json();
    d["spec"]["template"]["spec"]["containers"][0]["args"].clone()
}

async fn names(kubectl: &Kubectl, what: &str) -> Vec<String> {
    let out = kubectl.run(&["get", what, "-o", "name"]).await.ok().stdout;
    out.lines().map(str::to_string).collect()
}

fn ok(answer: anyhow::Result<Result<Value, String>>, step: &str) -> Value {
    match answer.expect("helm_release.py answers") {
        Ok(v) => v,
        Err(e) => panic!("{step}: Helm failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_upgrade_rollback_uninstall_of_the_chart_roll_the_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&[C1], SimOptions::default()).await.unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = Kubectl::new(&kubeconfig).context(C1).home(dir.path());
    let kubelet = mark_pods_ready(
        sim.cluster(C1).client().await,
        NS,
        Arc::new(AtomicBool::new(true)),
    );
    let mut helm = HelmSession::start_with_storage(&kubeconfig, C1, NS, "secret")
        .unwrap()
        .wait(120);
    let chart = chart_dir();

    // Step 1: helm install with the sites, waiting until the Deployment is rolled out.
    let values = json!({"k8s": {"local": C1, "remote": ["k8s-cluster2"]}});
    let rel = ok(
        helm.install(RELEASE, &chart, values, HelmFlags::default()),
        "install",
    );
    assert_eq!(
        (rel["status"].as_str(), rel["revision"].as_i64()),
        (Some("deployed"), Some(1))
    );
    let status = kubectl
        .run(&[
            "rollout",
            "status",
            "deployment/multi-casskop",
            "--timeout=60s",
        ])
        .await
        .ok();
    assert_eq!(
        status.stdout,
        "deployment \"multi-casskop\" successfully rolled out\n"
    );
    let table = kubectl
        .run(&["get", "deploy", "--no-headers"])
        .await
        .ok()
        .stdout;
    let cells: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(cells[..4], [RELEASE, "1/1", "1", "1"], "{table}");
    let args = deployment_args(&kubectl).await;
    assert!(
        args.as_array().unwrap().contains(&json!("-rk8s-cluster2")),
        "{args}"
    );
    let first = replicasets(&kubectl).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!((first[0].1, first[0].2.as_str()), (1, "1"));
    let secrets = names(&kubectl, "secrets").await;
    assert!(secrets.contains(&"secret/sh.helm.release.v1.multi-casskop.v1".to_string()));

    // Step 2: helm upgrade with one more remote and the metrics Service: a new ReplicaSet takes
    // over (the remotes annotation changed the template), the Service gets a ClusterIP.
    let values = json!({"k8s": {"local": C1, "remote": ["k8s-cluster2", "k8s-cluster3"]},
        "metricService": true});
    let rel = ok(
        helm.upgrade(RELEASE, &chart, values, HelmFlags::default()),
        "upgrade",
    );
    assert_eq!(rel["revision"].as_i64(), Some(2));
    let second = replicasets(&kubectl).await;
    assert_eq!(second.len(), 2, "{second:?}");
    let old = second.iter().find(|r| r.0 == first[0].0).unwrap();
    let new = second.iter().find(|r| r.0 != first[0].0).unwrap();
    assert_eq!((old.1, new.1, new.2.as_str()), (0, 1, "2"));
    let args = deployment_args(&kubectl).await;
    assert!(
        args.as_array().unwrap().contains(&json!("-rk8s-cluster3")),
        "{args}"
    );
    let svc = kubectl
        .run(&["get", "svc", "multi-casskop-metrics", "--no-headers"])
        .await
        .ok()
        .stdout;
    let cells: Vec<&str> = svc.split_whitespace().collect();
    assert_eq!(cells[1], "ClusterIP");
    assert!(cells[2].starts_with("10.96."), "{svc}");
    assert_eq!(cells[4], "8081/TCP");

    // Step 3: helm rollback to revision 1: the first ReplicaSet is scaled up again (as
    // revision 3), no third one is made, and the metrics Service goes.
    ok(helm.rollback(RELEASE, Some(1)), "rollback");
    let third = replicasets(&kubectl).await;
    assert_eq!(third.len(), 2, "{third:?}");
    let back = third.iter().find(|r| r.0 == first[0].0).unwrap();
    assert_eq!((back.1, back.2.as_str()), (1, "3"));
    assert!(
        !names(&kubectl, "svc")
            .await
            .contains(&"service/multi-casskop-metrics".to_string())
    );
    let history = ok(helm.history(RELEASE), "history");
    let statuses: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["superseded", "superseded", "deployed"]);
    let describe = kubectl
        .run(&["describe", "deployment", RELEASE])
        .await
        .ok()
        .stdout;
    assert!(
        describe.contains(&format!(
            "NewReplicaSet:   {} (1/1 replicas created)",
            first[0].0
        )),
        "{describe}"
    );

    // Step 4: helm uninstall: the release's objects and Secrets go, the CRD stays.
    let rel = ok(helm.uninstall(RELEASE), "uninstall");
    assert!(
        rel["info"].as_str().unwrap_or("").contains(MC_CRD),
        "Helm says what it kept: {rel}"
    );
    for what in ["deploy", "rs", "pods", "svc", "serviceaccounts", "roles"] {
        let left: Vec<String> = names(&kubectl, what)
            .await
            .into_iter()
            .filter(|n| n.contains(RELEASE))
            .collect();
        assert!(left.is_empty(), "{what} left after uninstall: {left:?}");
    }
    let left: Vec<String> = names(&kubectl, "secrets")
        .await
        .into_iter()
        .filter(|n| n.contains("sh.helm.release"))
        .collect();
    assert!(left.is_empty(), "release Secrets left: {left:?}");
    kubectl.run(&["get", "crd", MC_CRD]).await.ok();
    kubelet.abort();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_waits_for_the_pods_and_fails_naming_the_deployment_when_none_gets_ready() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&[C1], SimOptions::default()).await.unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let on = Arc::new(AtomicBool::new(false));
    let kubelet = mark_pods_ready(sim.cluster(C1).client().await, NS, on.clone());
    let mut helm = HelmSession::start_with_storage(&kubeconfig, C1, NS, "secret")
        .unwrap()
        .wait(3);
    let values = json!({"k8s": {"local": C1}});
    let answer = helm
        .install(RELEASE, &chart_dir(), values.clone(), HelmFlags::default())
        .unwrap();
    let err = answer.expect_err("no pod gets ready, so the install times out");
    assert!(
        err.contains(
            "resource Deployment/default/multi-casskop not ready. status: InProgress, message: Available: 0/1"
        ),
        "{err}"
    );
    // Once pods get ready, an upgrade completes the release.
    on.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut helm = helm.wait(120);
    let rel = ok(
        helm.upgrade(RELEASE, &chart_dir(), values, HelmFlags::default()),
        "upgrade",
    );
    assert_eq!(
        (rel["status"].as_str(), rel["revision"].as_i64()),
        (Some("deployed"), Some(2))
    );
    kubelet.abort();
    sim.shutdown().await;
}
