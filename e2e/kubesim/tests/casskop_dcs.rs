//! Adding and removing a DC with kubesim's CassKop, as CassKop does it: a new DC is `Initializing`; a refused change is put back (`CorrectCRDConfig`); keyspace replication changed with `cqlsh` through `kubectl exec` shows in `nodetool status`; a DC goes to 0 only once no keyspace replicates there (then `UpdateSeedList` with autoUpdateSeedList); a DC at 0 is removed (`ActionDeleteDC`).
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kubesim::casskop::{CasskopOptions, api_resource};
use kubesim::kubectl::Kubectl;
use kubesim::{Sim, SimOptions};
use serde_json::{Value, json};

const NS: &str = "dcs";
const CC: &str = "cass";

struct Env {
    _sim: Sim,
    _dir: tempfile::TempDir,
    ccs: Api<DynamicObject>,
    sts: Api<DynamicObject>,
    kubectl: Kubectl,
}

async fn start() -> Env {
    let sim = Sim::start(
        &["k1"],
        SimOptions {
            casskop: Some(CasskopOptions {
                ready_after: Duration::from_millis(300),
                react_after: Duration::from_millis(200),
            }),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let client = sim.clusters()[0].client().await;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let sts_ar = kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::StatefulSet>(&());
    Env {
        ccs: Api::namespaced_with(client.clone(), NS, &api_resource()),
        sts: Api::namespaced_with(client, NS, &sts_ar),
        kubectl: Kubectl::new(kubeconfig)
            .context("k1")
            .namespace(NS)
            .home(dir.path()),
        _sim: sim,
        _dir: dir,
    }
}

impl Env {
    async fn cc(&self) -> Value {
        serde_json::to_value(self.ccs.get(CC).await.unwrap()).unwrap()
    }

    async fn merge(&self, patch: Value) {
        self.ccs
            .patch(CC, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Wait (generously) until `phase/action/status` is `want`; the last status on failure.
    async fn wait_state(&self, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..600 {
            last = self.cc().await;
            let s = &last["status"];
            let got = format!(
                "{}/{}/{}",
                s["phase"].as_str().unwrap_or(""),
                s["lastClusterAction"].as_str().unwrap_or(""),
                s["lastClusterActionStatus"].as_str().unwrap_or("")
            );
            if got == want {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never {want}; last: {:#}", last["status"]);
    }

    /// Wait until CassKop has put `spec.topology` back to `want`.
    async fn wait_topology(&self, want: &Value) -> Value {
        let mut last = Value::Null;
        for _ in 0..600 {
            last = self.cc().await;
            if &last["spec"]["topology"] == want {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "topology never put back to {want}; last: {:#}",
            last["spec"]
        );
    }

    async fn replicas(&self, sts: &str) -> Option<i64> {
        self.sts
            .get_opt(sts)
            .await
            .unwrap()
            .and_then(|s| s.data.pointer("/spec/replicas").and_then(Value::as_i64))
    }

    async fn exec(&self, pod: &str, cmd: &[&str]) -> kubesim::kubectl::Run {
        let mut args = vec!["exec", pod, "--"];
        args.extend_from_slice(cmd);
        self.kubectl.run(&args).await
    }

    /// `Owns (effective)` per DC from `nodetool status` run in `pod`.
    async fn owns(&self, pod: &str) -> Vec<(String, String)> {
        let out = self.exec(pod, &["nodetool", "status"]).await.ok().stdout;
        let mut dc = String::new();
        let mut rows = vec![];
        for line in out.lines() {
            if let Some(d) = line.strip_prefix("Datacenter: ") {
                dc = d.to_owned();
            } else if line.starts_with("UN ") {
                rows.push((
                    dc.clone(),
                    line.split_whitespace().nth(5).unwrap().to_owned(),
                ));
            }
        }
        rows
    }
}

fn two_dcs() -> Value {
    json!({"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}, {"name": "dc2", "rack": [{"name": "rack1"}]}]})
}

async fn two_dc_cluster() -> Env {
    let env = start().await;
    let cc = json!({
        "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
        "metadata": {"name": CC},
        "spec": {"nodesPerRacks": 1, "autoUpdateSeedList": true,
                 "topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}]}},
    });
    env.ccs
        .create(&PostParams::default(), &serde_json::from_value(cc).unwrap())
        .await
        .unwrap();
    env.wait_state("Running/Initializing/Done").await;
    let before = env.cc().await["status"]["cassandraRackStatus"]["dc1-rack1"].clone();
    env.merge(json!({"spec": {"topology": two_dcs()}})).await;
    let adding = env.wait_state("Initializing/Initializing/Ongoing").await;
    let racks = &adding["status"]["cassandraRackStatus"];
    assert_eq!(
        racks["dc1-rack1"], before,
        "the running DC's rack is left alone"
    );
    assert_eq!(racks["dc2-rack1"]["phase"], "Initializing");
    let added = env.wait_state("Running/Initializing/Done").await;
    assert_eq!(
        added["status"]["cassandraRackStatus"]["dc2-rack1"]["cassandraLastAction"]["status"],
        "Done"
    );
    assert_eq!(
        added["status"]["seedlist"],
        json!(["cass-dc1-rack1-0.cass.dcs", "cass-dc2-rack1-0.cass.dcs"])
    );
    assert_eq!(env.replicas("cass-dc2-rack1").await, Some(1));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dc_added_is_initializing_and_a_rack_change_is_put_back() {
    let env = two_dc_cluster().await;
    // dc1 losing its racks (kuttl's merge of `dc: [{name: dc1, nodesPerRacks: 0}]`): refused,
    // the whole topology put back.
    env.merge(json!({"spec": {"topology": {"dc": [{"name": "dc1", "nodesPerRacks": 0}]}}}))
        .await;
    let refused = env.wait_state("Running/CorrectCRDConfig/Done").await;
    assert_eq!(refused["spec"]["topology"], two_dcs());
    assert_eq!(env.replicas("cass-dc2-rack1").await, Some(1));
    assert_eq!(env.replicas("cass-dc1-rack1").await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dc_goes_to_zero_only_once_no_keyspace_replicates_there_then_is_removed() {
    let env = two_dc_cluster().await;
    let pod = "cass-dc1-rack1-0";
    // Cassandra's defaults: system_traces (SimpleStrategy, RF 2) over both single-node DCs.
    let owns = env.owns(pod).await;
    assert_eq!(
        owns,
        vec![
            ("dc1".into(), "100.0%".into()),
            ("dc2".into(), "100.0%".into())
        ]
    );

    // Removing dc2 while it has nodes: refused.
    env.merge(
        json!({"spec": {"topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}]}}}),
    )
    .await;
    let refused = env.wait_state("Running/CorrectCRDConfig/Done").await;
    assert_eq!(refused["spec"]["topology"], two_dcs());

    // dc2 to 0 while system keyspaces still replicate there: refused, topology put back.
    let mut to_zero = two_dcs();
    to_zero["dc"][1]["nodesPerRacks"] = json!(0);
    env.merge(json!({"spec": {"topology": to_zero.clone()}}))
        .await;
    let still = env.wait_topology(&two_dcs()).await;
    assert_eq!(still["status"]["lastClusterAction"], "CorrectCRDConfig");
    assert_eq!(env.replicas("cass-dc2-rack1").await, Some(1));

    // Bad CQL fails as cqlsh does.
    let bad = env
        .exec(pod, &["cqlsh", "-e", "ALTER KEYSPAC system_auth"])
        .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("SyntaxException"), "{bad:?}");

    for ks in ["system_auth", "system_traces", "system_distributed"] {
        let stmt = format!(
            "ALTER KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': '1'}}"
        );
        env.exec(pod, &["cqlsh", "-e", &stmt]).await.ok();
    }
    assert_eq!(
        env.owns(pod).await,
        vec![
            ("dc1".into(), "100.0%".into()),
            ("dc2".into(), "0.0%".into())
        ]
    );
    let described = env
        .exec(pod, &["cqlsh", "-e", "DESCRIBE KEYSPACE system_auth"])
        .await
        .ok()
        .stdout;
    assert!(described.contains("'dc1': '1'"), "{described}");

    // Now dc2 can go to 0: ScaleDown, then its seed leaves the seed list (UpdateSeedList).
    env.merge(json!({"spec": {"topology": to_zero}})).await;
    let done = env.wait_state("Running/UpdateSeedList/Done").await;
    assert_eq!(
        done["status"]["seedlist"],
        json!(["cass-dc1-rack1-0.cass.dcs"])
    );
    assert_eq!(env.replicas("cass-dc2-rack1").await, Some(0));

    // Removed once at 0: its StatefulSet and rack status go.
    env.merge(
        json!({"spec": {"topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}]}}}),
    )
    .await;
    let removed = env.wait_state("Running/ActionDeleteDC/Done").await;
    let racks: Vec<&String> = removed["status"]["cassandraRackStatus"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(racks, vec!["dc1-rack1"]);
    assert_eq!(env.replicas("cass-dc2-rack1").await, None);
    assert_eq!(env.replicas("cass-dc1-rack1").await, Some(1));
}
