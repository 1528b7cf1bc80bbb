//! The user's story from the README, run for real: `register`, `helm install` of the chart with
//! real Helm 4 (`scripts/helm`), the chart's Deployment run as a pod by kubesim's kubelet, a
//! sample applied with kubectl, the rollout, `ring`, `helm upgrade`, leader failover between two
//! replicas, `helm uninstall`.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use e2e::{audit, binary, eventually, workspace_root};
use kubesim::casskop::CasskopOptions;
use kubesim::{KubeletOptions, Sim, SimOptions};
use serde_json::Value;

const NS: &str = "cassandra";
const LOCAL: &str = "k8s-cluster1";
const REMOTE: &str = "k8s-cluster2";
const IMAGE: &str = "ghcr.io/multi-casskop/multi-casskop";
const CONTROLLER: &str = "system:serviceaccount:cassandra:multi-casskop";

/// One command as a user types it, with the admin kubeconfig of the simulated clusters.
struct Shell<'a> {
    kubeconfig: &'a Path,
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Shell<'_> {
    fn run(&self, program: &Path, args: &[&str]) -> anyhow::Result<Ran> {
        let out = Command::new(program)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig)
            .output()
            .with_context(|| format!("running {}", program.display()))?;
        Ok(Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn ok(&self, program: &Path, args: &[&str]) -> anyhow::Result<String> {
        let r = self.run(program, args)?;
        if r.code != 0 {
            bail!(
                "`{} {}` exited {}:\n{}{}",
                program.display(),
                args.join(" "),
                r.code,
                r.stdout,
                r.stderr
            );
        }
        Ok(r.stdout)
    }

    fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.ok(Path::new("kubectl"), args)
    }

    fn helm(&self, args: &[&str]) -> anyhow::Result<String> {
        self.ok(&workspace_root().join("scripts/helm"), args)
    }

    fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        Ok(serde_json::from_str(&self.kubectl(&all)?)?)
    }
}

fn step(started: Instant, what: &str) {
    println!("[{:>6.1}s] step: {what}", started.elapsed().as_secs_f64());
}

/// The chart's pods (name, ready, args) in the local cluster.
fn controller_pods(sh: &Shell<'_>) -> anyhow::Result<Vec<(String, bool, Vec<String>)>> {
    let pods = sh.json(&[
        "--context",
        LOCAL,
        "-n",
        NS,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=multi-casskop",
    ])?;
    Ok(pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let args = p["spec"]["containers"][0]["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                ready,
                args,
            )
        })
        .collect())
}

/// `helm install|upgrade` of the chart with k8s.local/k8s.remote plus `extra` values, waiting
/// for the Deployment as `--wait` does.
fn helm_chart(sh: &Shell<'_>, verb: &str, extra: &[&str]) -> anyhow::Result<String> {
    let chart = workspace_root().join("helm/multi-casskop");
    let local_set = format!("k8s.local={LOCAL}");
    let remote_set = format!("k8s.remote={{{REMOTE}}}");
    let mut args = vec![
        "--kube-context",
        LOCAL,
        verb,
        "multi-casskop",
        chart.to_str().context("chart path")?,
        "-n",
        NS,
        "--set",
        &local_set,
        "--set",
        &remote_set,
        "--wait",
        "--timeout",
        "3m",
    ];
    for value in extra {
        args.extend(["--set", value]);
    }
    sh.helm(&args)
}

fn lease_holder(sh: &Shell<'_>) -> anyhow::Result<Option<String>> {
    let leases = sh.json(&["--context", LOCAL, "-n", NS, "get", "leases"])?;
    Ok(leases["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_install_runs_the_chart_as_a_pod_that_rolls_out_upgrades_fails_over_and_uninstalls()
-> anyhow::Result<()> {
    if let Some(why) = KubeletOptions::unavailable() {
        println!("SKIPPED: the simulated kubelet cannot run here: {why}");
        return Ok(());
    }
    if Command::new("python3")
        .args(["-c", "import helm_python"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        println!("SKIPPED: python3 with helm-python-sdk is missing (the test command installs it)");
        return Ok(());
    }
    let started = Instant::now();
    let mut sim = Sim::start(
        &[LOCAL, REMOTE],
        SimOptions {
            casskop: Some(CasskopOptions {
                ready_after: Duration::from_secs(1),
                react_after: Duration::from_secs(1),
            }),
            ..Default::default()
        },
    )
    .await?;
    let mut kubelet = KubeletOptions::default();
    kubelet.images.insert(IMAGE.to_string(), binary()?);
    sim.start_kubelet(&kubelet).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;
    let sh = Shell {
        kubeconfig: &kubeconfig,
    };
    let result = story(&sh, &sim, started).await;
    if result.is_err() {
        let logs = sh
            .kubectl(&[
                "--context",
                LOCAL,
                "-n",
                NS,
                "logs",
                "deployment/multi-casskop",
                "--tail=40",
            ])
            .unwrap_or_else(|e| e.to_string());
        println!("--- controller pod log tail:\n{logs}");
    }
    sim.shutdown().await;
    result
}

async fn story(sh: &Shell<'_>, sim: &Sim, started: Instant) -> anyhow::Result<()> {
    let mc = binary()?;
    for c in [LOCAL, REMOTE] {
        sh.kubectl(&["--context", c, "create", "namespace", NS])?;
    }

    step(
        started,
        "multi-casskop register writes the remote's Secret into the local cluster",
    );
    sh.ok(
        &mc,
        &[
            "register",
            "--source-context",
            REMOTE,
            "--dest-context",
            LOCAL,
            "--source-namespace",
            NS,
            "--dest-namespace",
            NS,
            "--destination-name",
            REMOTE,
        ],
    )?;

    step(
        started,
        "helm install with k8s.local and k8s.remote, waiting for the Deployment",
    );
    let installed = helm_chart(sh, "install", &[])?;
    assert!(installed.contains("STATUS: deployed"), "{installed}");

    step(
        started,
        "kubectl rollout status sees the Deployment rolled out",
    );
    let status = sh.kubectl(&[
        "--context",
        LOCAL,
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/multi-casskop",
        "--timeout=2m",
    ])?;
    assert!(status.contains("successfully rolled out"), "{status}");
    let pods = controller_pods(sh)?;
    assert_eq!(pods.len(), 1, "one replica: {pods:?}");
    let (_, ready, args) = &pods[0];
    assert!(ready, "the pod is Ready through its readiness probe");
    assert!(
        args.contains(&format!("-l{LOCAL}")) && args.contains(&format!("-r{REMOTE}")),
        "the pod runs -l{LOCAL} -r{REMOTE}: {args:?}"
    );

    step(
        started,
        "kubectl apply of the sample: the rollout completes site by site",
    );
    let sample = workspace_root().join("samples/multi-casskop.yaml");
    sh.kubectl(&[
        "--context",
        LOCAL,
        "-n",
        NS,
        "apply",
        "-f",
        sample.to_str().context("sample path")?,
    ])?;
    sh.kubectl(&[
        "--context",
        LOCAL,
        "-n",
        NS,
        "wait",
        "--for=condition=Ready",
        "--timeout=3m",
        "multicasskop/multi-casskop-demo",
    ])?;
    let report = audit::analyze(&sim.audit(), &[CONTROLLER], "cassandra-demo", 0);
    assert_eq!(
        report.first_write_order,
        vec![LOCAL.to_string(), REMOTE.to_string()],
        "created by the pod's service accounts, local first: {:?}",
        report.steps
    );
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    step(started, "multi-casskop ring sees every node UN");
    let ring = sh.ok(
        &mc,
        &[
            "ring",
            "multi-casskop-demo",
            "-n",
            NS,
            "-l",
            LOCAL,
            "-r",
            REMOTE,
            "--use-kubeconfig-contexts",
        ],
    )?;
    assert!(ring.contains("UN"), "{ring}");

    step(
        started,
        "helm upgrade with a changed value rolls the Deployment to a new pod",
    );
    let before = controller_pods(sh)?;
    let upgraded = helm_chart(sh, "upgrade", &["resyncPeriod=7m"])?;
    assert!(upgraded.contains("REVISION: 2"), "{upgraded}");
    let after = eventually(
        "the old pod gone after the rollout",
        Duration::from_secs(120),
        || async {
            let pods = controller_pods(sh)?;
            if pods.len() == 1 && pods[0].0 != before[0].0 && pods[0].1 {
                Ok(Some(pods))
            } else {
                Ok(None)
            }
        },
    )
    .await?;
    assert!(
        after[0].2.iter().any(|a| a == "--resync=7m"),
        "the new pod runs the new value: {:?}",
        after[0].2
    );
    let rs = sh.json(&["--context", LOCAL, "-n", NS, "get", "replicasets"])?;
    let revisions: Vec<&str> = rs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str())
        .collect();
    assert!(
        revisions.contains(&"2"),
        "a second ReplicaSet: {revisions:?}"
    );

    step(
        started,
        "two replicas: kill the leader's pod, the other takes the Lease",
    );
    helm_chart(sh, "upgrade", &["replicaCount=2"])?;
    let leader = eventually(
        "a leader among two Ready replicas",
        Duration::from_secs(120),
        || async {
            let pods = controller_pods(sh)?;
            let holder = lease_holder(sh)?;
            Ok(match holder {
                Some(h) if pods.len() == 2 && pods.iter().all(|p| p.1) => pods
                    .iter()
                    .find(|p| h.starts_with(&p.0))
                    .map(|p| p.0.clone()),
                _ => None,
            })
        },
    )
    .await?;
    sh.kubectl(&[
        "--context",
        LOCAL,
        "-n",
        NS,
        "delete",
        "pod",
        &leader,
        "--wait=false",
    ])?;
    let new_leader = eventually(
        "another pod holds the Lease",
        Duration::from_secs(120),
        || async { Ok(lease_holder(sh)?.filter(|h| !h.starts_with(&leader))) },
    )
    .await?;
    println!("leader {leader} killed; the Lease is now held by {new_leader}");
    sh.kubectl(&[
        "--context",
        LOCAL,
        "-n",
        NS,
        "wait",
        "--for=condition=Ready",
        "--timeout=2m",
        "multicasskop/multi-casskop-demo",
    ])?;

    step(
        started,
        "helm uninstall removes the controller and keeps the CRDs and the data",
    );
    let out = sh.helm(&[
        "--kube-context",
        LOCAL,
        "uninstall",
        "multi-casskop",
        "-n",
        NS,
    ])?;
    assert!(out.contains("uninstalled"), "{out}");
    eventually(
        "the controller's pods gone",
        Duration::from_secs(120),
        || async { Ok(controller_pods(sh)?.is_empty().then_some(())) },
    )
    .await?;
    let left = sh.kubectl(&[
        "--context",
        LOCAL,
        "-n",
        NS,
        "get",
        "deploy,sa,role,rolebinding",
        "-o",
        "name",
    ])?;
    assert!(
        !left.contains("multi-casskop"),
        "the chart's objects are gone: {left}"
    );
    sh.kubectl(&[
        "--context",
        LOCAL,
        "get",
        "crd",
        "multicasskops.db.orange.com",
    ])?;
    for site in [LOCAL, REMOTE] {
        sh.kubectl(&[
            "--context",
            site,
            "-n",
            NS,
            "get",
            "cassandracluster",
            "cassandra-demo",
        ])?;
    }
    step(started, "done");
    Ok(())
}
