//! The simulated kubelet seen through real kubectl: pods run as processes (probes, restarts, logs, describe, wide listing), bad input, per-pod network namespaces, in-cluster API access under RBAC, secret volume updates, graceful deletion.
//!
//! These tests need root and iproute2 (network namespaces); they skip, saying so, elsewhere.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kubesim::kubectl::{Kubectl, Run};
use kubesim::{KubeletOptions, Sim, SimOptions};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(120);

struct Env {
    sim: Sim,
    kubectl: Kubectl,
    _dir: tempfile::TempDir,
}

/// A one-cluster Sim with a kubelet mapping `sh`, `python` and `kubectl`; None (skip) where
/// network namespaces cannot be made.
async fn start() -> Option<Env> {
    if let Some(why) = KubeletOptions::unavailable() {
        eprintln!("SKIPPED: the simulated kubelet cannot run here: {why}");
        return None;
    }
    let mut sim = Sim::start(&["k1", "k2"], SimOptions::default())
        .await
        .unwrap();
    let images = BTreeMap::from([
        ("sh".to_string(), PathBuf::from("/bin/sh")),
        ("python".to_string(), PathBuf::from("/usr/bin/python3")),
        ("kubectl".to_string(), kubesim::kubectl::kubectl_bin()),
    ]);
    sim.start_kubelet(&KubeletOptions { images }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let kubectl = Kubectl::new(&kc).context("k1").home(dir.path());
    Some(Env {
        sim,
        kubectl,
        _dir: dir,
    })
}

async fn apply(k: &Kubectl, yaml: &str) {
    k.run_stdin(&["apply", "-f", "-"], yaml).await.ok();
}

/// Polls `kubectl ARGS` until `done` holds for its result; panics with the last output after
/// the deadline.
async fn wait_for(k: &Kubectl, args: &[&str], what: &str, done: impl Fn(&Run) -> bool) -> Run {
    let start = Instant::now();
    loop {
        let r = k.run(args).await;
        if done(&r) {
            return r;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: still not so after {DEADLINE:?}; last `kubectl {}`: {}{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn pod(k: &Kubectl, name: &str) -> Value {
    k.run(&["get", "pod", name, "-o", "json"]).await.ok().json()
}

fn events_of(r: &Run) -> Vec<(String, String)> {
    r.json()["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn events(k: &Kubectl, pod: &str) -> Vec<(String, String)> {
    let sel = format!("involvedObject.name={pod}");
    events_of(
        &k.run(&["get", "events", "--field-selector", &sel, "-o", "json"])
            .await
            .ok(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_whose_liveness_probe_fails_is_restarted_and_an_event_says_why() {
    let Some(env) = start().await else { return };
    let k = &env.kubectl;
    apply(
        k,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: sh
    command: ["/bin/sh", "-c", "echo run started; trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.2; done"]
    livenessProbe:
      httpGet: {path: /healthz, port: 8081}
      periodSeconds: 1
      failureThreshold: 2
"#,
    )
    .await;
    let r = wait_for(
        k,
        &["get", "pod", "live", "-o", "json"],
        "restartCount grows",
        |r| {
            r.success()
                && r.json()["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)
        },
    )
    .await;
    let cs = &r.json()["status"]["containerStatuses"][0];
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Completed", "{cs}");
    let evs = events(k, "live").await;
    assert!(
        evs.iter().any(|(r, m)| r == "Unhealthy"
            && m.starts_with("Liveness probe failed: Get \"http://10.244.")
            && m.contains("connect: connection refused")),
        "{evs:?}"
    );
    assert!(
        evs.contains(&(
            "Killing".into(),
            "Container app failed liveness probe, will be restarted".into()
        )),
        "{evs:?}"
    );
    let prev = k.run(&["logs", "live", "--previous"]).await.ok();
    assert_eq!(prev.stdout, "run started\ngot TERM\n");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_describe_and_wide_listing_show_a_running_pod_as_a_cluster_does() {
    let Some(env) = start().await else { return };
    let k = &env.kubectl;
    apply(
        k,
        r#"
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cr3t}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data: {mode: fast}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: python:3.12
    command: ["/bin/sh", "-c", "echo ns=$NS name=$NAME ip=$POD_IP pw=$PW mode=$MODE greeting=$GREETING; exec python3 -u -m http.server 8081"]
    env:
    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: PW, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: conf, key: mode}}}
    - {name: GREETING, value: "hello-$(NAME)"}
    readinessProbe:
      httpGet: {path: /, port: 8081}
      periodSeconds: 1
"#,
    )
    .await;
    k.run(&["wait", "--for=condition=Ready", "pod/web", "--timeout=120s"])
        .await
        .ok();
    let p = pod(k, "web").await;
    let ip = p["status"]["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.244."), "{ip}");
    let wide = k.run(&["get", "pods", "-o", "wide"]).await.ok().table();
    assert_eq!(
        wide[0],
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    let row = &wide[1];
    assert_eq!(
        (
            &row[0][..],
            &row[1][..],
            &row[2][..],
            &row[3][..],
            &row[5][..],
            &row[6][..],
            &row[7][..]
        ),
        (
            "web",
            "1/1",
            "Running",
            "0",
            ip.as_str(),
            "k1-node",
            "<none>"
        ),
        "{row:?}"
    );
    let logs = k.run(&["logs", "web"]).await.ok();
    assert!(
        logs.stdout.starts_with(&format!(
            "ns=default name=web ip={ip} pw=s3cr3t mode=fast greeting=hello-web\n"
        )),
        "{}",
        logs.stdout
    );
    let d = k.run(&["describe", "pod", "web"]).await.ok().stdout;
    for want in [
        "Status:           Running".to_string(),
        format!("IP:               {ip}"),
        "Node:             k1-node/127.0.0.1".to_string(),
        "Readiness:      http-get http://:8081/ delay=0s timeout=1s period=1s #success=1 #failure=3".to_string(),
        "/var/run/secrets/kubernetes.io/serviceaccount from kube-api-access-".to_string(),
        "Started container web".to_string(),
        "Successfully assigned default/web to k1-node".to_string(),
    ] {
        assert!(d.contains(&want), "describe lacks {want:?}:\n{d}");
    }
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_image_and_missing_secret_keep_pods_waiting_with_the_kubelets_reasons() {
    let Some(env) = start().await else { return };
    let k = &env.kubectl;
    apply(
        k,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: badimg}
spec:
  containers:
  - {name: app, image: "example.org/nothing:1.0"}
---
apiVersion: v1
kind: Pod
metadata: {name: nosecret}
spec:
  containers:
  - {name: app, image: sh, command: ["/bin/sh", "-c", "cat /etc/creds/key; sleep 1000"], volumeMounts: [{name: creds, mountPath: /etc/creds}]}
  volumes:
  - {name: creds, secret: {secretName: missing}}
"#,
    )
    .await;
    let r = wait_for(
        k,
        &["get", "pod", "badimg", "-o", "json"],
        "image pull error",
        |r| {
            r.success()
                && r.json()["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                    .as_str()
                    .is_some_and(|s| s == "ErrImagePull" || s == "ImagePullBackOff")
        },
    )
    .await;
    let p = r.json();
    assert_eq!(p["status"]["phase"], "Pending");
    let msg = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(
        msg.contains("maps no binary to image \"example.org/nothing:1.0\" (map one with kubesim --kubelet IMAGE=PATH)"),
        "{msg}"
    );
    let evs = wait_for(
        k,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=nosecret",
            "-o",
            "json",
        ],
        "FailedMount Event",
        |r| r.success() && events_of(r).iter().any(|(r, _)| r == "FailedMount"),
    )
    .await;
    assert!(
        events_of(&evs).contains(&(
            "FailedMount".into(),
            "MountVolume.SetUp failed for volume \"creds\" : secret \"missing\" not found".into()
        )),
        "{:?}",
        events_of(&evs)
    );
    let table = k.run(&["get", "pods"]).await.ok().table();
    let status = |n: &str| {
        table
            .iter()
            .find(|r| r[0] == n)
            .map(|r| r[2].clone())
            .unwrap_or_default()
    };
    assert_eq!(status("nosecret"), "ContainerCreating");
    assert!(
        ["ErrImagePull", "ImagePullBackOff"].contains(&status("badimg").as_str()),
        "{table:?}"
    );
    // Once the Secret exists the pod starts with it mounted, as on a node.
    apply(
        k,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: missing}\nstringData: {key: found-it}\n",
    )
    .await;
    wait_for(
        k,
        &["logs", "nosecret"],
        "the pod starts once its Secret exists",
        |r| r.success() && r.stdout == "found-it",
    )
    .await;
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_both_listen_on_port_8081_in_their_own_network_namespaces() {
    let Some(env) = start().await else { return };
    let k = &env.kubectl;
    for name in ["one", "two"] {
        apply(
            k,
            &format!(
                r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: web
    image: python
    command: ["python3", "-u", "-m", "http.server", "8081"]
    readinessProbe:
      httpGet: {{path: /, port: 8081}}
      periodSeconds: 1
"#
            ),
        )
        .await;
    }
    for name in ["one", "two"] {
        k.run(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{name}"),
            "--timeout=120s",
        ])
        .await
        .ok();
    }
    let (a, b) = (pod(k, "one").await, pod(k, "two").await);
    assert_ne!(a["status"]["podIP"], b["status"]["podIP"]);
    for p in [&a, &b] {
        assert_eq!(
            p["status"]["containerStatuses"][0]["restartCount"], 0,
            "{p}"
        );
    }
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_in_a_pod_reaches_the_api_with_its_mounted_token_and_rbac_applies() {
    let Some(env) = start().await else { return };
    let k = &env.kubectl;
    apply(
        k,
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: reader, namespace: default}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  serviceAccountName: reader
  restartPolicy: Never
  containers:
  - name: kubectl
    image: kubectl
    command: ["/bin/sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; kubectl get pod client -o name; kubectl get secrets 2>&1; touch /written 2>&1; echo end"]
    securityContext: {readOnlyRootFilesystem: true}
"#,
    )
    .await;
    let r = wait_for(
        k,
        &["get", "pod", "client", "-o", "json"],
        "the pod completes",
        |r| r.success() && r.json()["status"]["phase"] == "Succeeded",
    )
    .await;
    assert_eq!(
        r.json()["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    let logs = k.run(&["logs", "client"]).await.ok().stdout;
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines[0], "default", "{logs}");
    assert_eq!(lines[1], "pod/client", "{logs}");
    assert_eq!(
        lines[2],
        "Error from server (Forbidden): secrets is forbidden: User \"system:serviceaccount:default:reader\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\"",
        "{logs}"
    );
    assert_eq!(
        lines[3], "touch: cannot touch '/written': Read-only file system",
        "{logs}"
    );
    assert!(!std::path::Path::new("/written").exists());
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_in_a_pod_reaches_every_simulated_cluster_at_its_kubeconfig_address() {
    let Some(env) = start().await else { return };
    let k = &env.kubectl;
    let kubeconfig = env.sim.kubeconfig_yaml();
    k.run(&[
        "create",
        "secret",
        "generic",
        "kc",
        &format!("--from-literal=config={kubeconfig}"),
    ])
    .await
    .ok();
    apply(
        k,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: multi}
spec:
  restartPolicy: Never
  containers:
  - name: kubectl
    image: kubectl
    command: ["/bin/sh", "-c", "for c in k1 k2; do kubectl --kubeconfig /etc/kc/config --context $c get ns default -o name; done"]
    volumeMounts: [{name: kc, mountPath: /etc/kc}]
  volumes:
  - {name: kc, secret: {secretName: kc}}
"#,
    )
    .await;
    wait_for(
        k,
        &["get", "pod", "multi", "-o", "json"],
        "the pod completes",
        |r| r.success() && r.json()["status"]["phase"] == "Succeeded",
    )
    .await;
    let logs = k.run(&["logs", "multi"]).await.ok().stdout;
    assert_eq!(logs, "namespace/default\nnamespace/default\n");
    let k2 = env.sim.cluster("k2").audit();
    assert!(
        k2.iter().any(|a| a.user == "kubesim:admin"
            && a.resource == "namespaces"
            && a.name == "default"),
        "the pod's request reached k2"
    );
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_service_account_token_is_renewed_before_it_expires() {
    let Some(env) = start().await else { return };
    let k = &env.kubectl;
    // kube-apiserver's --service-account-max-token-expiration, shortened: 20 s tokens.
    env.sim
        .cluster("k1")
        .set_max_token_expiration(Some(Duration::from_secs(20)));
    apply(
        k,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: renew}
spec:
  containers:
  - name: kubectl
    image: kubectl
    command: ["/bin/sh", "-c", "while true; do echo \"$(md5sum < /var/run/secrets/kubernetes.io/serviceaccount/token | cut -c1-8) $(kubectl auth whoami -o jsonpath={.status.userInfo.username} 2>&1)\"; sleep 1; done"]
"#,
    )
    .await;
    let r = wait_for(k, &["logs", "renew"], "a second token is mounted", |r| {
        let tokens: std::collections::BTreeSet<&str> = r
            .stdout
            .lines()
            .filter_map(|l| l.split(' ').next())
            .collect();
        r.success() && tokens.len() >= 2
    })
    .await;
    // Renewed before expiry: every call made with whichever token was mounted succeeded.
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .all(|l| l.ends_with(" system:serviceaccount:default:default")),
        "{}",
        r.stdout
    );
    env.sim.shutdown().await;
}

#[tokio::test]
async fn kubesim_refuses_a_kubelet_mapping_without_a_path() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args([
            "--clusters",
            "a",
            "--kubeconfig-out",
            "/dev/null",
            "--kubelet",
            "busybox",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid --kubelet \"busybox\": expected IMAGE=PATH"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_change_reaches_the_mounted_volume_through_the_data_symlink() {
    let Some(env) = start().await else { return };
    let k = &env.kubectl;
    apply(
        k,
        r#"
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {token: first}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  containers:
  - name: app
    image: sh
    command: ["/bin/sh", "-c", "while true; do echo \"$(cat /etc/creds/token) $(readlink /etc/creds/token) $(readlink /etc/creds/..data | cut -c1-4)\"; sleep 0.3; done"]
    volumeMounts: [{name: creds, mountPath: /etc/creds, readOnly: true}]
  volumes:
  - {name: creds, secret: {secretName: creds}}
"#,
    )
    .await;
    wait_for(k, &["logs", "reader"], "the first token is read", |r| {
        r.success() && r.stdout.lines().any(|l| l == "first ..data/token ..20")
    })
    .await;
    apply(
        k,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {token: second}\n",
    )
    .await;
    let r = wait_for(k, &["logs", "reader"], "the changed token is read", |r| {
        r.success() && r.stdout.lines().any(|l| l == "second ..data/token ..20")
    })
    .await;
    // Never a torn read: every line is one whole value.
    assert!(
        r.stdout
            .lines()
            .all(|l| l == "first ..data/token ..20" || l == "second ..data/token ..20"),
        "{}",
        r.stdout
    );
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pod_sends_sigterm_then_sigkill_after_the_grace_period() {
    let Some(env) = start().await else { return };
    let k = &env.kubectl;
    apply(
        k,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: sh
    command: ["/bin/sh", "-c", "trap 'echo got TERM, staying' TERM; echo up; while true; do sleep 0.2; done"]
"#,
    )
    .await;
    wait_for(k, &["logs", "stubborn"], "the pod runs", |r| {
        r.success() && r.stdout == "up\n"
    })
    .await;
    let follow = k.clone();
    let logs = tokio::spawn(async move { follow.run(&["logs", "-f", "stubborn"]).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deleting = k
        .run(&["delete", "pod", "stubborn", "--wait=false"])
        .await
        .ok();
    assert_eq!(deleting.stdout, "pod \"stubborn\" deleted\n");
    let p = pod(k, "stubborn").await;
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 2, "{p}");
    let row = k.run(&["get", "pod", "stubborn"]).await.ok().table();
    assert_eq!(row[1][2], "Terminating");
    wait_for(k, &["get", "pods", "-o", "name"], "the pod is gone", |r| {
        r.success() && !r.stdout.contains("stubborn")
    })
    .await;
    let followed = logs.await.unwrap().ok();
    assert_eq!(
        followed.stdout, "up\ngot TERM, staying\n",
        "the follow ends with the process"
    );
    let evs = events(k, "stubborn").await;
    assert!(
        evs.contains(&("Killing".into(), "Stopping container app".into())),
        "{evs:?}"
    );
    env.sim.shutdown().await;
}
