//! Deployments, ReplicaSets and Services against real `kubectl` 1.32: rollouts (RollingUpdate
//! and Recreate), revisions and `rollout undo`, `rollout status`, `get` and `describe` output,
//! the scale subresource, ClusterIPs, Endpoints, and garbage collection of what a Deployment owns.
//!
//! Nothing runs pods here: the tests play the kubelet's part by writing pod status (Running,
//! Ready, an IP) through the API, as a kubelet does.
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kubesim::pod_ready::mark_pods_ready;
use serde_json::{Value, json};
use support::Env;

const C1: &str = "k1";

fn deployment_yaml(name: &str, replicas: i64, image: &str, strategy: &str) -> String {
    format!(
        r"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  strategy: {{type: {strategy}}}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
        ports: [{{containerPort: 8080, name: http}}]
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: http}}]
"
    )
}

async fn started() -> (Env, Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let env = Env::start(&[C1]).await;
    let on = Arc::new(AtomicBool::new(true));
    let task = mark_pods_ready(env.cluster(C1).client().await, "default", on.clone());
    (env, on, task)
}

async fn apply(env: &Env, yaml: &str) {
    env.kubectl_stdin(&["apply", "-f", "-"], yaml).await.ok();
}

/// The last line `kubectl rollout status` prints once the rollout is over.
async fn rollout_status(env: &Env, name: &str) -> String {
    let out = env
        .kubectl(&[
            "rollout",
            "status",
            &format!("deployment/{name}"),
            "--timeout=90s",
        ])
        .await
        .ok()
        .stdout;
    out.lines().last().unwrap_or("").to_string()
}

/// The ReplicaSets as (name, desired replicas, revision annotation), oldest first.
async fn replicasets(env: &Env) -> Vec<(String, i64, String)> {
    let v = env.kubectl(&["get", "rs", "-o", "json"]).await.ok().json();
    let mut out: Vec<(String, i64, String, String)> = v["items"]
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
                rs["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.3.cmp(&b.3).then(a.2.cmp(&b.2)));
    out.into_iter().map(|(n, r, rev, _)| (n, r, rev)).collect()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_waits_for_ready_pods_and_get_prints_kube_columns() {
    let (env, on, task) = started().await;
    on.store(false, Ordering::SeqCst);
    apply(
        &env,
        &deployment_yaml("web", 2, "nginx:1.25", "RollingUpdate"),
    )
    .await;
    let r = env
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=2s"])
        .await
        .fails(1);
    assert!(
        r.stdout
            .contains("Waiting for deployment \"web\" rollout to finish: 0 of 2 updated replicas are available..."),
        "{r:#?}"
    );
    on.store(true, Ordering::SeqCst);
    assert_eq!(
        rollout_status(&env, "web").await,
        "deployment \"web\" successfully rolled out"
    );

    let t = env.kubectl(&["get", "deploy,rs,svc,ep"]).await.ok().stdout;
    let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(lines[1][..4], ["deployment.apps/web", "2/2", "2", "2"]);
    assert_eq!(lines[3], ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert!(lines[4][0].starts_with("replicaset.apps/web-"), "{t}");
    assert_eq!(lines[4][1..4], ["2", "2", "2"]);
    assert_eq!(
        lines[6],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert_eq!(lines[7][0], "service/web");
    assert_eq!(lines[7][1], "ClusterIP");
    assert!(lines[7][2].starts_with("10.96."), "{t}");
    assert_eq!(lines[7][3..5], ["<none>", "80/TCP"]);
    assert_eq!(lines[9], ["NAME", "ENDPOINTS", "AGE"]);
    assert_eq!(lines[10][0], "endpoints/web");
    assert_eq!(lines[10][1].matches(":8080").count(), 2, "{t}");

    let describe = env.kubectl(&["describe", "svc", "web"]).await.ok().stdout;
    let endpoints = describe
        .lines()
        .find(|l| l.starts_with("Endpoints:"))
        .unwrap_or_default();
    assert_eq!(endpoints.matches(":8080").count(), 2, "{describe}");
    let slices = env
        .kubectl(&["get", "endpointslices", "--no-headers"])
        .await
        .ok()
        .stdout;
    let cells: Vec<&str> = slices.split_whitespace().collect();
    assert!(cells[0].starts_with("web-"), "{slices}");
    assert_eq!(cells[1..3], ["IPv4", "8080"]);
    assert_eq!(cells[3].split(',').count(), 2, "{slices}");

    // Every pod is the template's, owned by the ReplicaSet and labelled with its hash.
    let rs = &replicasets(&env).await[0].0;
    let hash = rs.trim_start_matches("web-");
    let pods = env
        .kubectl(&["get", "pods", "-o", "json"])
        .await
        .ok()
        .json();
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 2);
    for p in pods {
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], hash);
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert_eq!(p["metadata"]["ownerReferences"][0]["name"], rs.as_str());
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(p["spec"]["containers"][0]["image"], "nginx:1.25");
    }
    let d = env
        .kubectl(&["get", "deploy", "web", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        d["status"]["observedGeneration"],
        d["metadata"]["generation"]
    );
    let reasons: Vec<(&str, &str)> = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("Available", "MinimumReplicasAvailable"),
            ("Progressing", "NewReplicaSetAvailable")
        ]
    );
    task.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_template_rolls_to_a_new_replicaset_and_undo_reuses_the_old_one() {
    let (env, _on, task) = started().await;
    apply(
        &env,
        &deployment_yaml("web", 2, "nginx:1.25", "RollingUpdate"),
    )
    .await;
    rollout_status(&env, "web").await;
    env.kubectl(&["set", "image", "deployment/web", "main=nginx:1.26"])
        .await
        .ok();
    assert_eq!(
        rollout_status(&env, "web").await,
        "deployment \"web\" successfully rolled out"
    );
    let rss = replicasets(&env).await;
    assert_eq!(rss.len(), 2, "{rss:?}");
    assert_eq!((rss[0].1, rss[0].2.as_str()), (0, "1"));
    assert_eq!((rss[1].1, rss[1].2.as_str()), (2, "2"));

    let describe = env
        .kubectl(&["describe", "deployment", "web"])
        .await
        .ok()
        .stdout;
    for line in [
        "Replicas:               2 desired | 2 updated | 2 total | 2 available | 0 unavailable",
        "StrategyType:           RollingUpdate",
        "RollingUpdateStrategy:  25% max unavailable, 25% max surge",
        "Annotations:            deployment.kubernetes.io/revision: 2",
        &format!("NewReplicaSet:   {} (2/2 replicas created)", rss[1].0),
        &format!("OldReplicaSets:  {} (0/0 replicas created)", rss[0].0),
        &format!("Scaled up replica set {} from 0 to 1", rss[1].0),
        &format!("Scaled down replica set {} from 2 to 1", rss[0].0),
    ] {
        assert!(describe.contains(line), "missing {line:?} in\n{describe}");
    }
    let conditions = describe.split("Conditions:").nth(1).unwrap();
    assert!(conditions.contains("Available      True    MinimumReplicasAvailable"));
    assert!(conditions.contains("Progressing    True    NewReplicaSetAvailable"));

    env.kubectl(&["rollout", "undo", "deployment/web"])
        .await
        .ok();
    rollout_status(&env, "web").await;
    let mut after = replicasets(&env).await;
    after.sort();
    assert_eq!(after.len(), 2, "undo makes no third ReplicaSet: {after:?}");
    let first = after.iter().find(|r| r.0 == rss[0].0).unwrap();
    let second = after.iter().find(|r| r.0 == rss[1].0).unwrap();
    assert_eq!(
        (first.1, first.2.as_str()),
        (2, "3"),
        "the first ReplicaSet is revision 3"
    );
    assert_eq!(second.1, 0);
    eventually("only nginx:1.25 pods", || {
        let env = &env;
        async move {
            let pods = env
                .kubectl(&["get", "pods", "-o", "json"])
                .await
                .ok()
                .json();
            pods["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "nginx:1.25")
        }
    })
    .await;
    task.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_scales_the_old_replicaset_to_zero_before_the_new_one_starts() {
    let (env, _on, task) = started().await;
    apply(&env, &deployment_yaml("db", 1, "postgres:16", "Recreate")).await;
    rollout_status(&env, "db").await;
    env.kubectl(&["set", "image", "deployment/db", "main=postgres:17"])
        .await
        .ok();
    rollout_status(&env, "db").await;
    let rss = replicasets(&env).await;
    let events = env
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=Deployment",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    let messages: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            format!("Scaled up replica set {} from 0 to 1", rss[0].0),
            format!("Scaled down replica set {} from 1 to 0", rss[0].0),
            format!("Scaled up replica set {} from 0 to 1", rss[1].0),
        ]
    );
    let describe = env.kubectl(&["describe", "deploy", "db"]).await.ok().stdout;
    assert!(
        describe
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["StrategyType:", "Recreate"]),
        "{describe}"
    );
    task.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_subresource_resizes_the_replicaset() {
    let (env, _on, task) = started().await;
    apply(
        &env,
        &deployment_yaml("web", 1, "nginx:1.25", "RollingUpdate"),
    )
    .await;
    rollout_status(&env, "web").await;
    let r = env
        .kubectl(&["scale", "deployment/web", "--replicas=3"])
        .await
        .ok();
    assert_eq!(r.stdout, "deployment.apps/web scaled\n");
    rollout_status(&env, "web").await;
    let rss = replicasets(&env).await;
    assert_eq!(rss.len(), 1, "scaling makes no new ReplicaSet");
    assert_eq!(rss[0].1, 3);
    let t = env
        .kubectl(&["get", "deploy", "web", "--no-headers"])
        .await
        .ok();
    let cells: Vec<&str> = t.stdout.split_whitespace().collect();
    assert_eq!(cells[..4], ["web", "3/3", "3", "3"], "{t:#?}");
    task.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_that_misses_the_template_labels_is_refused() {
    let env = Env::start(&[C1]).await;
    let yaml = deployment_yaml("web", 1, "nginx", "RollingUpdate").replacen(
        "labels: {app: web}\n    spec:",
        "labels: {app: other}\n    spec:",
        1,
    );
    let r = env
        .kubectl_stdin(&["apply", "-f", "-"], &yaml)
        .await
        .fails(1);
    assert!(
        r.stderr.contains(
            "The Deployment \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
        ),
        "{r:#?}"
    );
    apply(&env, &deployment_yaml("web", 1, "nginx", "RollingUpdate")).await;
    let r = env
        .kubectl(&[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"selector":{"matchLabels":{"app":"web","tier":"x"}},"template":{"metadata":{"labels":{"tier":"x"}}}}}"#,
        ])
        .await
        .fails(1);
    assert!(r.stderr.contains("field is immutable"), "{r:#?}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_keep_their_cluster_ip_and_headless_ones_get_none() {
    let env = Env::start(&[C1]).await;
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: a}\n  ports: [{port: 80}]\n";
    apply(&env, svc).await;
    let ip = |v: &Value| v["spec"]["clusterIP"].as_str().unwrap().to_string();
    let first = env
        .kubectl(&["get", "svc", "s", "-o", "json"])
        .await
        .ok()
        .json();
    assert!(ip(&first).starts_with("10.96."));
    assert_eq!(first["spec"]["clusterIPs"], json!([ip(&first)]));
    assert_eq!(first["spec"]["ports"][0]["targetPort"], 80);
    apply(&env, &svc.replace("port: 80", "port: 81")).await;
    let again = env
        .kubectl(&["get", "svc", "s", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        ip(&again),
        ip(&first),
        "apply keeps the allocated ClusterIP"
    );
    let r = env
        .kubectl(&[
            "patch",
            "svc",
            "s",
            "--type=merge",
            "-p",
            r#"{"spec":{"clusterIP":"10.96.0.99","clusterIPs":["10.96.0.99"]}}"#,
        ])
        .await
        .fails(1);
    assert!(r.stderr.contains("may not change once set"), "{r:#?}");

    let headless = "apiVersion: v1\nkind: Service\nmetadata: {name: h}\nspec:\n  clusterIP: None\n  selector: {app: a}\n  ports: [{port: 80}]\n";
    apply(&env, headless).await;
    let t = env.kubectl(&["get", "svc", "h", "--no-headers"]).await.ok();
    let cells: Vec<&str> = t.stdout.split_whitespace().collect();
    assert_eq!(cells[..5], ["h", "ClusterIP", "None", "<none>", "80/TCP"]);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_deployment_deletes_or_orphans_its_replicasets_as_the_propagation_policy_says() {
    let (env, _on, task) = started().await;
    apply(&env, &deployment_yaml("bg", 2, "nginx", "RollingUpdate")).await;
    rollout_status(&env, "bg").await;
    env.kubectl(&["delete", "deployment", "bg"]).await.ok();
    let gone = |what: &'static str| {
        let env = &env;
        move || async move {
            let r = env.kubectl(&["get", what, "-o", "name"]).await.ok();
            r.stdout.trim().is_empty()
        }
    };
    eventually("no ReplicaSet", gone("rs")).await;
    eventually("no Pod", gone("pods")).await;

    // Foreground: the Deployment waits, with its foregroundDeletion finalizer, for a pod that
    // a finalizer keeps.
    apply(&env, &deployment_yaml("fg", 1, "nginx", "RollingUpdate")).await;
    rollout_status(&env, "fg").await;
    let pod = env
        .kubectl(&["get", "pods", "-o", "name"])
        .await
        .ok()
        .stdout;
    let pod = pod.trim();
    env.kubectl(&[
        "patch",
        pod,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ])
    .await
    .ok();
    env.kubectl(&[
        "delete",
        "deployment",
        "fg",
        "--cascade=foreground",
        "--wait=false",
    ])
    .await
    .ok();
    let d = env
        .kubectl(&["get", "deploy", "fg", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(d["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert!(d["metadata"]["deletionTimestamp"].is_string());
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.kubectl(&["get", "deploy", "fg"]).await.ok();
    env.kubectl(&[
        "patch",
        pod,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .await
    .ok();
    eventually("the Deployment gone after its pod", gone("deploy")).await;
    eventually("no ReplicaSet", gone("rs")).await;

    // Orphan: the ReplicaSet stays without its ownerReference, and a new Deployment of the same
    // template adopts it instead of making another.
    apply(&env, &deployment_yaml("or", 1, "nginx", "RollingUpdate")).await;
    rollout_status(&env, "or").await;
    let before = replicasets(&env).await;
    env.kubectl(&["delete", "deployment", "or", "--cascade=orphan"])
        .await
        .ok();
    let rs = env.kubectl(&["get", "rs", "-o", "json"]).await.ok().json();
    assert!(
        rs["items"][0]["metadata"].get("ownerReferences").is_none(),
        "{rs}"
    );
    apply(&env, &deployment_yaml("or", 1, "nginx", "RollingUpdate")).await;
    rollout_status(&env, "or").await;
    let after = replicasets(&env).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].0, before[0].0);
    let rs = env.kubectl(&["get", "rs", "-o", "json"]).await.ok().json();
    assert_eq!(
        rs["items"][0]["metadata"]["ownerReferences"][0]["name"],
        "or"
    );
    task.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_deployment_and_expose_send_protobuf_that_is_understood() {
    let (env, _on, task) = started().await;
    let r = env
        .kubectl(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.25",
            "--replicas=2",
            "--port=80",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "deployment.apps/web created\n");
    let r = env
        .kubectl(&[
            "expose",
            "deployment",
            "web",
            "--port=8080",
            "--target-port=80",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "service/web exposed\n");
    rollout_status(&env, "web").await;
    let d = env
        .kubectl(&["get", "deploy", "web", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        (c["name"].as_str(), c["image"].as_str()),
        (Some("nginx"), Some("nginx:1.25"))
    );
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert!(
        d["spec"]["template"]["metadata"]
            .get("creationTimestamp")
            .is_none()
    );
    let svc = env
        .kubectl(&["get", "svc", "web", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"port": 8080, "protocol": "TCP", "targetPort": 80}])
    );
    assert_eq!(svc["spec"]["selector"], json!({"app": "web"}));
    task.abort();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_past_its_progress_deadline_fails_rollout_status() {
    let (env, on, task) = started().await;
    on.store(false, Ordering::SeqCst);
    let yaml = deployment_yaml("slow", 1, "nginx", "RollingUpdate").replacen(
        "  replicas: 1\n",
        "  replicas: 1\n  progressDeadlineSeconds: 1\n",
        1,
    );
    apply(&env, &yaml).await;
    let r = env
        .kubectl(&["rollout", "status", "deployment/slow", "--timeout=60s"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: deployment \"slow\" exceeded its progress deadline\n"
    );
    let d = env
        .kubectl(&["get", "deploy", "slow", "-o", "json"])
        .await
        .ok()
        .json();
    let progressing = &d["status"]["conditions"][1];
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    assert_eq!(progressing["status"], "False");

    // Paused: Progressing is Unknown and the template change makes no ReplicaSet until resumed.
    on.store(true, Ordering::SeqCst);
    env.kubectl(&["rollout", "pause", "deployment/slow"])
        .await
        .ok();
    env.kubectl(&["set", "image", "deployment/slow", "main=nginx:2"])
        .await
        .ok();
    eventually("DeploymentPaused", || {
        let env = &env;
        async move {
            let d = env
                .kubectl(&["get", "deploy", "slow", "-o", "json"])
                .await
                .ok()
                .json();
            d["status"]["conditions"][1]["reason"] == "DeploymentPaused"
        }
    })
    .await;
    assert_eq!(replicasets(&env).await.len(), 1);
    env.kubectl(&["rollout", "resume", "deployment/slow"])
        .await
        .ok();
    assert_eq!(
        rollout_status(&env, "slow").await,
        "deployment \"slow\" successfully rolled out"
    );
    assert_eq!(replicasets(&env).await.len(), 2);
    task.abort();
    env.shutdown().await;
}
