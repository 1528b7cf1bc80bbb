//! The `kubesim` binary with `--casskop`: three clusters each run the simulated CassKop, driven by kubectl and the admin endpoint.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use kubesim::kubectl::Kubectl;
use tokio::io::{AsyncBufReadExt, BufReader};

const CLUSTERS: [&str; 3] = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];

/// kubectl against `context`, with room for the 90 s waits below.
fn kubectl(kubeconfig: &Path, context: &str) -> Kubectl {
    Kubectl::new(kubeconfig)
        .context(context)
        .timeout(Duration::from_secs(120))
}

fn cluster_yaml(image: &str) -> String {
    format!(
        "apiVersion: db.orange.com/v2\nkind: CassandraCluster\nmetadata:\n  name: demo\n  namespace: default\nspec:\n  cassandraImage: {image}\n  nodesPerRacks: 2\n"
    )
}

async fn wait_jsonpath(kubeconfig: &Path, context: &str, path: &str, value: &str) {
    kubectl(kubeconfig, context)
        .run(&[
            "wait",
            "cassc/demo",
            &format!("--for=jsonpath={{{path}}}={value}"),
            "--timeout=90s",
        ])
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_casskop_in_every_cluster_and_survives_an_admin_fault() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let audit_log = dir.path().join("audit.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .arg("--clusters")
        .arg(CLUSTERS.join(","))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .args([
            "--casskop",
            "--casskop-ready-after",
            "500ms",
            "--casskop-react-after",
            "300ms",
        ])
        .arg("--audit-log")
        .arg(&audit_log)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubesim starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = None;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("kubesim prints its ready line")
        .unwrap()
    {
        if let Some(url) = line.strip_prefix("kubesim admin ") {
            admin = Some(url.to_owned());
        }
        if line == "kubesim ready" {
            break;
        }
    }
    let admin = admin.expect("kubesim printed its admin URL");

    for context in CLUSTERS {
        kubectl(&kubeconfig, context)
            .run_stdin(&["apply", "-f", "-"], cluster_yaml("cassandra:3.11.6"))
            .await
            .ok();
    }
    for context in CLUSTERS {
        wait_jsonpath(
            &kubeconfig,
            context,
            ".status.lastClusterActionStatus",
            "Done",
        )
        .await;
        let pods = kubectl(&kubeconfig, context)
            .run(&["get", "pods", "-l", "cassandracluster=demo", "-o", "name"])
            .await
            .ok()
            .stdout;
        assert_eq!(
            pods.lines().collect::<Vec<_>>(),
            vec!["pod/demo-dc1-rack1-0", "pod/demo-dc1-rack1-1"],
            "{context}"
        );
    }

    // Expire every watch of cluster 2 (CassKop's included): it re-lists and still reacts.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-f",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-d", r#"{"expireWatches":true}"#])
        .arg(format!("{admin}/clusters/k8s-cluster2/faults"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kubectl(&kubeconfig, "k8s-cluster2")
        .run_stdin(&["apply", "-f", "-"], cluster_yaml("cassandra:3.11.7"))
        .await
        .ok();
    wait_jsonpath(
        &kubeconfig,
        "k8s-cluster2",
        ".status.lastClusterAction",
        "UpdateDockerImage",
    )
    .await;
    wait_jsonpath(
        &kubeconfig,
        "k8s-cluster2",
        ".status.lastClusterActionStatus",
        "Done",
    )
    .await;
    // The other clusters were not touched.
    for context in ["k8s-cluster1", "k8s-cluster3"] {
        let action = kubectl(&kubeconfig, context)
            .run(&[
                "get",
                "cassc",
                "demo",
                "-o",
                "jsonpath={.status.lastClusterAction}",
            ])
            .await
            .ok()
            .stdout;
        assert_eq!(action, "Initializing", "{context}");
    }

    // SIGTERM: exit 0, and the audit log file holds CassKop's status writes in every cluster.
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("kubesim exits on SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(&audit_log).unwrap();
    for cluster in CLUSTERS {
        let writes = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| {
                e["cluster"] == cluster
                    && e["user"] == "system:serviceaccount:kube-system:casskop"
                    && e["resource"] == "cassandraclusters"
                    && e["verb"] == "patch"
                    && e["code"] == 200
            })
            .count();
        let want = if cluster == "k8s-cluster2" { 4 } else { 2 };
        assert_eq!(writes, want, "CassKop's status writes in {cluster}");
    }
}
