//! The simulated CassKop's phases as real `kubectl` 1.32 sees them, stale window included.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kubesim::casskop::CasskopOptions;
use kubesim::{AuditEntry, Sim, SimOptions};
use tokio::io::AsyncReadExt;

const CLUSTER: &str = "k8s-cluster1";
const NS: &str = "cassandra-e2e";
const CASSKOP_USER: &str = "system:serviceaccount:kube-system:casskop";
const ADMIN_USER: &str = "kubesim:admin";
/// Upper bound for any wait; reaching it fails the test with what was seen.
const PATIENCE: &str = "90s";

/// kubectl against [`CLUSTER`], with the CassandraCluster reads and waits of these tests.
struct Kubectl {
    cli: kubesim::kubectl::Kubectl,
}

impl Kubectl {
    /// Run kubectl, insist on exit code 0, return stdout.
    async fn ok(&self, args: &[&str]) -> String {
        self.cli.run(args).await.ok().stdout
    }

    async fn ok_stdin(&self, args: &[&str], input: &str) -> String {
        self.cli.run_stdin(args, input).await.ok().stdout
    }

    async fn status(&self, name: &str) -> String {
        self.ok(&[
            "get",
            "cassc",
            name,
            "-n",
            NS,
            "-o",
            "jsonpath={.status.phase}/{.status.lastClusterAction}/{.status.lastClusterActionStatus}",
        ])
        .await
    }

    /// `kubectl patch --type merge` of one CassandraCluster.
    async fn merge_patch(&self, name: &str, patch: &str) {
        self.ok(&[
            "patch", "cassc", name, "-n", NS, "--type", "merge", "-p", patch,
        ])
        .await;
    }

    /// `kubectl wait --for=jsonpath=...` on one CassandraCluster.
    async fn wait_for(&self, name: &str, jsonpath: &str, value: &str) {
        let cond = format!("jsonpath={{{jsonpath}}}={value}");
        let out = self
            .cli
            .run(&[
                "wait",
                &format!("cassandracluster/{name}"),
                "-n",
                NS,
                &format!("--for={cond}"),
                &format!("--timeout={PATIENCE}"),
            ])
            .await;
        assert_eq!(
            out.code,
            0,
            "waiting for {jsonpath}={value} on {name}: stdout={} stderr={} (status now {})",
            out.stdout,
            out.stderr,
            self.status(name).await
        );
    }

    /// Wait for a new action to be started and then finished.
    async fn wait_action_done(&self, name: &str, action: &str) {
        self.wait_for(name, ".status.lastClusterAction", action)
            .await;
        self.wait_for(name, ".status.lastClusterActionStatus", "Done")
            .await;
    }

    /// `name=replicas/ready` for each StatefulSet of the cluster, sorted.
    async fn statefulsets(&self, cluster: &str) -> Vec<String> {
        let out = self
            .ok(&[
                "get",
                "statefulsets",
                "-n",
                NS,
                "-l",
                &format!("cassandracluster={cluster}"),
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}/{.status.readyReplicas}{\"\\n\"}{end}",
            ])
            .await;
        sorted_lines(&out)
    }

    /// `name phase image podIP` for each Pod of the cluster, sorted.
    async fn pods(&self, selector: &str) -> Vec<String> {
        let out = self
            .ok(&[
                "get",
                "pods",
                "-n",
                NS,
                "-l",
                selector,
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.spec.containers[0].image} {.status.podIP}{\"\\n\"}{end}",
            ])
            .await;
        sorted_lines(&out)
    }
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

async fn start(dir: &Path, opts: CasskopOptions) -> (Sim, Kubectl) {
    let sim = Sim::start(
        &[CLUSTER],
        SimOptions {
            casskop: Some(opts),
            ..SimOptions::default()
        },
    )
    .await
    .expect("kubesim starts");
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = Kubectl {
        cli: kubesim::kubectl::Kubectl::new(kubeconfig)
            .context(CLUSTER)
            .timeout(Duration::from_secs(120)),
    };
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(sim.cluster(CLUSTER).client().await)
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    (sim, kubectl)
}

fn cluster_yaml(name: &str, extra_metadata: &str) -> String {
    format!(
        r"apiVersion: db.orange.com/v2
kind: CassandraCluster
metadata:
  name: {name}
  namespace: {NS}
{extra_metadata}spec:
  cassandraImage: cassandra:3.11.6
  nodesPerRacks: 1
  autoUpdateSeedList: false
  topology:
    dc:
      - name: dc1
        rack:
          - name: rack1
          - name: rack2
      - name: dc2
        nodesPerRacks: 2
"
    )
}

/// Wait (bounded) until the audit log holds an entry matching `pred`.
async fn wait_audit(sim: &Sim, what: &str, pred: impl Fn(&AuditEntry) -> bool) -> AuditEntry {
    for _ in 0..2400 {
        if let Some(e) = sim.audit().into_iter().find(|e| pred(e)) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("audit log never showed {what}");
}

fn is_casskop_write_of(e: &AuditEntry, name: &str) -> bool {
    e.user == CASSKOP_USER
        && e.resource == "cassandraclusters"
        && e.name == name
        && matches!(e.verb.as_str(), "patch" | "update")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_seen_through_kubectl_including_the_stale_window() {
    let dir = tempfile::tempdir().unwrap();
    let react_after = Duration::from_secs(4);
    let (sim, kubectl) = start(
        dir.path(),
        CasskopOptions {
            ready_after: Duration::from_millis(800),
            react_after,
        },
    )
    .await;
    let name = "cassandra-demo";

    // Every state change, as `kubectl get -w` prints it.
    let mut watch = kubectl
        .cli
        .command(&[
            "get",
            "cassc",
            "-n",
            NS,
            "--watch",
            "-o",
            "jsonpath={.metadata.name}:{.status.phase}/{.status.lastClusterAction}/{.status.lastClusterActionStatus}{\"\\n\"}",
        ])
        .spawn()
        .unwrap();
    wait_audit(&sim, "kubectl's watch on cassandraclusters", |e| {
        e.user == ADMIN_USER && e.verb == "watch" && e.resource == "cassandraclusters"
    })
    .await;

    kubectl
        .ok_stdin(&["apply", "-f", "-"], &cluster_yaml(name, ""))
        .await;
    kubectl.wait_action_done(name, "Initializing").await;
    assert_eq!(kubectl.status(name).await, "Running/Initializing/Done");
    assert_eq!(
        kubectl.statefulsets(name).await,
        vec![
            "cassandra-demo-dc1-rack1=1/1",
            "cassandra-demo-dc1-rack2=1/1",
            "cassandra-demo-dc2-rack1=2/2"
        ]
    );
    let pods = kubectl.pods(&format!("cassandracluster={name}")).await;
    let names: Vec<&str> = pods.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        vec![
            "cassandra-demo-dc1-rack1-0",
            "cassandra-demo-dc1-rack2-0",
            "cassandra-demo-dc2-rack1-0",
            "cassandra-demo-dc2-rack1-1"
        ]
    );
    for line in &pods {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[1], "Running", "{line}");
        assert_eq!(f[2], "cassandra:3.11.6", "{line}");
        assert!(f[3].starts_with("10."), "pod without IP: {line}");
    }
    let dc2 = kubectl
        .pods(&format!(
            "app=cassandracluster,cassandracluster={name},cassandraclusters.db.orange.com.dc=dc2,cassandraclusters.db.orange.com.rack=rack1"
        ))
        .await;
    assert_eq!(dc2.len(), 2, "{dc2:?}");
    let racks = kubectl
        .ok(&[
            "get",
            "cassc",
            name,
            "-n",
            NS,
            "-o",
            "jsonpath={.status.cassandraRackStatus.dc1-rack2.phase}/{.status.cassandraRackStatus.dc2-rack1.cassandraLastAction.status}",
        ])
        .await;
    assert_eq!(racks, "Running/Done");

    // The stale window: CassKop has not noticed the new image yet.
    kubectl
        .ok(&[
            "patch",
            "cassc",
            name,
            "-n",
            NS,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"cassandraImage":"cassandra:3.11.7"}}"#,
        ])
        .await;
    let stale_phase = kubectl
        .ok(&[
            "get",
            "cassc",
            name,
            "-n",
            NS,
            "-o",
            "jsonpath={.status.phase}",
        ])
        .await;
    let stale_status = kubectl.status(name).await;
    assert_eq!(stale_phase, "Running");
    assert_eq!(stale_status, "Running/Initializing/Done");
    kubectl.wait_action_done(name, "UpdateDockerImage").await;
    assert_eq!(kubectl.status(name).await, "Running/UpdateDockerImage/Done");
    for line in kubectl.pods(&format!("cassandracluster={name}")).await {
        assert!(line.contains(" Running cassandra:3.11.7 10."), "{line}");
    }

    // The audit log proves CassKop wrote nothing during the stale window.
    let audit = sim.audit();
    let spec_patch = audit
        .iter()
        .find(|e| {
            e.user == ADMIN_USER
                && e.verb == "patch"
                && e.resource == "cassandraclusters"
                && e.name == name
        })
        .expect("kubectl's patch is audited");
    let stale_gets: Vec<&AuditEntry> = audit
        .iter()
        .filter(|e| {
            e.user == ADMIN_USER && e.verb == "get" && e.name == name && e.seq > spec_patch.seq
        })
        .take(2)
        .collect();
    let noticed = audit
        .iter()
        .find(|e| e.seq > spec_patch.seq && is_casskop_write_of(e, name))
        .expect("CassKop reacted to the image change");
    assert!(
        stale_gets.iter().all(|g| g.seq < noticed.seq),
        "CassKop wrote before kubectl read the stale status"
    );
    let window = Duration::from_micros((noticed.time_us - spec_patch.time_us).max(0) as u64);
    println!("spec patch -> CassKop's first write: {window:?} (react_after {react_after:?})");
    // Audit times are taken when a request's handler ends, a little after the watch event went
    // out: allow for that, nothing more.
    assert!(
        window + Duration::from_millis(100) >= react_after,
        "CassKop reacted after {window:?}"
    );
    let noticed_status =
        noticed.object.as_ref().expect("write carries the object")["status"].clone();
    assert_eq!(noticed_status["phase"], "Pending");
    assert_eq!(noticed_status["lastClusterAction"], "UpdateDockerImage");
    assert_eq!(noticed_status["lastClusterActionStatus"], "Ongoing");
    // Status writes never touch the spec others wrote.
    for e in audit.iter().filter(|e| is_casskop_write_of(e, name)) {
        let spec = &e.object.as_ref().unwrap()["spec"];
        assert_eq!(spec["nodesPerRacks"], 1);
        assert_eq!(spec["autoUpdateSeedList"], false);
    }

    // Everything kubectl's watch printed, in order, repeats folded.
    let mut watch_out = watch.stdout.take().unwrap();
    watch.start_kill().unwrap();
    let mut printed = String::new();
    watch_out.read_to_string(&mut printed).await.unwrap();
    let mut states: Vec<&str> = Vec::new();
    for line in printed.lines() {
        let state = line.strip_prefix(&format!("{name}:")).unwrap_or(line);
        if state != "//" && states.last() != Some(&state) {
            states.push(state);
        }
    }
    assert_eq!(
        states,
        vec![
            "Initializing/Initializing/Ongoing",
            "Running/Initializing/Done",
            "Pending/UpdateDockerImage/Ongoing",
            "Running/UpdateDockerImage/Done",
        ],
        "kubectl get -w printed:\n{printed}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_hold_restart_failure_and_deletion_through_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let ready_after = Duration::from_millis(400);
    let (sim, kubectl) = start(
        dir.path(),
        CasskopOptions {
            ready_after,
            react_after: Duration::from_millis(300),
        },
    )
    .await;
    let name = "cass-b";
    let yaml = format!(
        "apiVersion: db.orange.com/v2\nkind: CassandraCluster\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  cassandraImage: cassandra:3.11.6\n"
    );
    kubectl.ok_stdin(&["apply", "-f", "-"], &yaml).await;
    kubectl.wait_action_done(name, "Initializing").await;
    assert_eq!(
        kubectl.statefulsets(name).await,
        vec!["cass-b-dc1-rack1=1/1"]
    );

    kubectl
        .merge_patch(name, r#"{"spec":{"nodesPerRacks":3}}"#)
        .await;
    kubectl.wait_action_done(name, "ScaleUp").await;
    assert_eq!(
        kubectl.statefulsets(name).await,
        vec!["cass-b-dc1-rack1=3/3"]
    );
    assert_eq!(
        kubectl
            .pods(&format!("cassandracluster={name}"))
            .await
            .len(),
        3
    );

    kubectl
        .merge_patch(name, r#"{"spec":{"nodesPerRacks":2}}"#)
        .await;
    kubectl.wait_action_done(name, "ScaleDown").await;
    let pods = kubectl.pods(&format!("cassandracluster={name}")).await;
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert!(
        pods.iter().all(|p| !p.starts_with("cass-b-dc1-rack1-2 ")),
        "{pods:?}"
    );

    // Held: the action stays Pending/Ongoing, and a second change restarts it.
    kubectl
        .ok(&[
            "annotate",
            "cassc",
            name,
            "-n",
            NS,
            "kubesim.casskop/hold=Pending",
        ])
        .await;
    kubectl
        .merge_patch(name, r#"{"spec":{"configMapName":"cassandra-config"}}"#)
        .await;
    kubectl
        .wait_for(name, ".status.lastClusterAction", "UpdateConfigMap")
        .await;
    tokio::time::sleep(ready_after * 4).await;
    assert_eq!(
        kubectl.status(name).await,
        "Pending/UpdateConfigMap/Ongoing"
    );
    kubectl
        .merge_patch(name, r#"{"spec":{"cassandraImage":"cassandra:3.11.9"}}"#)
        .await;
    kubectl
        .wait_for(name, ".status.lastClusterAction", "UpdateDockerImage")
        .await;
    tokio::time::sleep(ready_after * 4).await;
    assert_eq!(
        kubectl.status(name).await,
        "Pending/UpdateDockerImage/Ongoing"
    );
    kubectl
        .ok(&["annotate", "cassc", name, "-n", NS, "kubesim.casskop/hold-"])
        .await;
    kubectl
        .wait_for(name, ".status.lastClusterActionStatus", "Done")
        .await;
    assert_eq!(kubectl.status(name).await, "Running/UpdateDockerImage/Done");
    for line in kubectl.pods(&format!("cassandracluster={name}")).await {
        assert!(line.contains(" Running cassandra:3.11.9 10."), "{line}");
    }

    // Failing: the action ends in Error with phase Pending; lifting the hook retries it.
    kubectl
        .ok(&[
            "annotate",
            "cassc",
            name,
            "-n",
            NS,
            "kubesim.casskop/fail=true",
        ])
        .await;
    kubectl
        .merge_patch(
            name,
            r#"{"spec":{"resources":{"limits":{"cpu":"2","memory":"2Gi"}}}}"#,
        )
        .await;
    kubectl
        .wait_for(name, ".status.lastClusterActionStatus", "Error")
        .await;
    assert_eq!(kubectl.status(name).await, "Pending/UpdateResources/Error");
    kubectl
        .ok(&["annotate", "cassc", name, "-n", NS, "kubesim.casskop/fail-"])
        .await;
    kubectl
        .wait_for(name, ".status.lastClusterActionStatus", "Done")
        .await;
    assert_eq!(kubectl.status(name).await, "Running/UpdateResources/Done");

    // A seed list written into the status (as Multi-CassKop does) is acted on too.
    kubectl
        .merge_patch(
            name,
            r#"{"status":{"seedlist":["cass-b-dc1-rack1-0.cass-b.cassandra-e2e"]}}"#,
        )
        .await;
    kubectl.wait_action_done(name, "UpdateSeedList").await;

    // The CRD's printer columns, its short name and its category.
    for args in [
        ["get", "cassc", name],
        ["get", "cassandraclusters.db.orange.com", name],
        ["get", "cassandra", name],
    ] {
        let table = kubectl.ok(&[args[0], args[1], args[2], "-n", NS]).await;
        let lines: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            vec!["NAME", "PHASE", "ACTION", "ACTION-STATUS", "AGE"],
            "{args:?}:\n{table}"
        );
        let row = lines
            .iter()
            .find(|l| l.first() == Some(&name))
            .expect("a row");
        assert_eq!(row[1..4], ["Running", "UpdateSeedList", "Done"], "{table}");
    }

    // Deleting the CassandraCluster deletes its StatefulSets and Pods (CassKop deletes them, and
    // the API server's garbage collector follows their ownerReferences too).
    kubectl.ok(&["delete", "cassc", name, "-n", NS]).await;
    let mut gone = false;
    for _ in 0..300 {
        let left = kubectl
            .ok(&[
                "get",
                "statefulsets,pods",
                "-n",
                NS,
                "-l",
                &format!("cassandracluster={name}"),
                "-o",
                "name",
            ])
            .await;
        if left.trim().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "StatefulSets/Pods of {name} survived its deletion");
    sim.shutdown().await;
}
