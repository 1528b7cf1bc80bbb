//! Test fixture for `status` and `ring`: three kubesim clusters, the MultiCasskop CRD and the three-site sample in the local one, CassandraClusters and pods written the way CassKop would, and a runner for the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use multi_casskop::api::MultiCasskop;
use serde_json::{Value, json};

use kubesim::fixtures;

pub use fixtures::{Dc, seed_cluster, set_cc_status};

pub const NS: &str = "cassandra";
pub const MC: &str = "cassandra-3dc";
pub const SITES: [&str; 3] = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];

pub struct Fed {
    pub sim: kubesim::Sim,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// Starts the three clusters, installs the MultiCasskop CRD and creates the sample MultiCasskop
/// in namespace `cassandra` of the local cluster (no status yet).
pub async fn start() -> Fed {
    start_with(Default::default()).await
}

/// [`start`] with the simulated CassKop running in every cluster.
pub async fn start_with_casskop() -> Fed {
    let casskop = kubesim::casskop::CasskopOptions {
        ready_after: std::time::Duration::from_millis(300),
        react_after: std::time::Duration::from_millis(100),
    };
    start_with(kubesim::SimOptions {
        casskop: Some(casskop),
        ..Default::default()
    })
    .await
}

/// Creates site `i`'s CassandraCluster the way the controller would (the sample's base merged
/// with its override), for the simulated CassKop to act on.
pub async fn create_site_cluster(fed: &Fed, i: usize) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/multi-casskop-3sites.yaml"),
    )
    .unwrap();
    let mc: MultiCasskop = serde_saphyr::from_str(&text).unwrap();
    let d = multi_casskop::merge::desired_for_site(
        &mc.spec.base,
        mc.spec.override_.get(SITES[i]),
        SITES[i],
        NS,
        MC,
    )
    .expect("the sample is valid");
    let c = fed.sim.cluster(SITES[i]).client().await;
    fixtures::ensure_namespace(&c, NS).await;
    let ccs: Api<kube::api::DynamicObject> = Api::namespaced_with(c, NS, &fixtures::cc_resource());
    ccs.patch(
        MC,
        &PatchParams::apply("multi-casskop").force(),
        &Patch::Apply(&d.object),
    )
    .await
    .expect("apply the CassandraCluster");
}

/// Waits until site `i`'s CassandraCluster is Running/Done and all its pods are Ready.
pub async fn wait_running(fed: &Fed, i: usize) {
    let c = fed.sim.cluster(SITES[i]).client().await;
    let ccs: Api<kube::api::DynamicObject> =
        Api::namespaced_with(c.clone(), NS, &fixtures::cc_resource());
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c, NS);
    let want = if i == 2 { 1 } else { 2 };
    for _ in 0..600 {
        let cc = ccs.get_opt(MC).await.unwrap();
        let running = cc.is_some_and(|cc| {
            cc.data["status"]["phase"] == "Running"
                && cc.data["status"]["lastClusterActionStatus"] == "Done"
        });
        let lp = kube::api::ListParams::default()
            .labels(&format!("app=cassandracluster,cassandracluster={MC}"));
        let ready = pods
            .list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| multi_casskop::cli::common::topology::pod_ready(p))
            .count();
        if running && ready == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{} never became Running with {want} ready pods", SITES[i]);
}

async fn start_with(opts: kubesim::SimOptions) -> Fed {
    let sim = kubesim::Sim::start(&SITES, opts)
        .await
        .expect("kubesim starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let local = sim.cluster(SITES[0]).client().await;
    fixtures::ensure_namespace(&local, NS).await;
    let crds: Api<CustomResourceDefinition> = Api::all(local.clone());
    crds.create(&PostParams::default(), &MultiCasskop::crd())
        .await
        .expect("MultiCasskop CRD");
    let mcs: Api<MultiCasskop> = Api::namespaced(local.clone(), NS);
    for _ in 0..100 {
        if mcs.list(&Default::default()).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/multi-casskop-3sites.yaml"),
    )
    .unwrap();
    let mc: MultiCasskop = serde_saphyr::from_str(&text).expect("sample parses");
    mcs.create(&PostParams::default(), &mc)
        .await
        .expect("create the sample MultiCasskop");
    Fed {
        sim,
        dir,
        kubeconfig,
    }
}

/// Writes the MultiCasskop status the way the controller would.
pub async fn set_mc_status(fed: &Fed, status: Value) {
    let local = fed.sim.cluster(SITES[0]).client().await;
    let mcs: Api<MultiCasskop> = Api::namespaced(local, NS);
    mcs.patch_status(
        MC,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .expect("MultiCasskop status");
}

/// The sample's topology per site: dc1 (rack1, rack2), dc2 (rack1, rack2), dc3 (rack1); 1 node per rack.
pub fn topology(i: usize) -> Dc<'static> {
    match i {
        0 => Dc {
            name: "dc1",
            racks: &["rack1", "rack2"],
            nodes: 1,
        },
        1 => Dc {
            name: "dc2",
            racks: &["rack1", "rack2"],
            nodes: 1,
        },
        _ => Dc {
            name: "dc3",
            racks: &["rack1"],
            nodes: 1,
        },
    }
}

/// Site `i`'s CassandraCluster Running/Done with all its pods Running; returns the pod names.
pub async fn site_running(fed: &Fed, i: usize) -> Vec<String> {
    let c = fed.sim.cluster(SITES[i]).client().await;
    seed_cluster(
        &c,
        NS,
        MC,
        &[topology(i)],
        ("Running", "Initializing", "Done"),
        20 + i as u8,
        true,
    )
    .await
}

pub fn condition(t: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": t, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

pub fn site_status(
    name: &str,
    phase: &str,
    action: &str,
    action_status: &str,
    ready: bool,
    state: &str,
    message: &str,
) -> Value {
    json!({"name": name, "namespace": NS, "phase": phase, "lastClusterAction": action, "lastClusterActionStatus": action_status,
        "ready": ready, "state": state, "message": message, "lastTransitionTime": jiff::Timestamp::now().to_string()})
}

/// Runs the real `multi-casskop` binary with the site flags of the sample's controller.
pub async fn run(fed: &Fed, args: &[&str]) -> (Output, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_multi-casskop"));
    cmd.args(args)
        .args(["-n", NS, "--kubeconfig"])
        .arg(&fed.kubeconfig)
        .args([
            "--context",
            SITES[0],
            "-l",
            SITES[0],
            "-r",
            "k8s-cluster2,k8s-cluster3",
        ])
        .arg("--imports-dir")
        .arg(fed.dir.path().join("no-imports"))
        .env_remove("KUBECONFIG")
        .env_remove("WATCH_NAMESPACE")
        .env_remove("KUBERNETES_SERVICE_HOST");
    let out = cmd.output().await.expect("multi-casskop runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    println!("$ multi-casskop {}\n{stdout}{stderr}", args.join(" "));
    (out, stdout, stderr)
}

/// The table line of `site` in `status` output.
pub fn line_of<'a>(out: &'a str, site: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{site} ")))
        .unwrap_or_else(|| panic!("no line for {site} in:\n{out}"))
}
