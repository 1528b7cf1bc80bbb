//! A change CassKop refuses (a rack added to an existing DC: it writes the old topology back,
//! `CorrectCRDConfig`): the site and the MultiCasskop are Blocked naming the site, the
//! CassandraCluster, the field put back and CassKop's reason, with one Warning Event; the same
//! change is tried again with backoff (a handful of writes, not one a second), and a new change
//! is applied at once.

use std::time::Duration;

use e2e::audit::running_done;
use e2e::{Env, NAMESPACE, condition, controller_log_tail, eventually};
use serde_json::{Value, json};

const MC: &str = "refused";
const SITES: [&str; 2] = ["k8s-cluster1", "k8s-cluster2"];
const WAIT: Duration = Duration::from_secs(240);
/// How long the controller is watched while Blocked.
const WATCHED: Duration = Duration::from_secs(10);
/// At most this many writes to the refusing site over [`WATCHED`]: its retries back off from 2 s
/// (a write a second without them).
const MAX_WRITES: usize = 5;

/// One DC per site; site 1's DC has `racks1` racks; every site runs `image`.
fn manifest(racks1: usize, image: &str) -> String {
    let racks: Vec<Value> = (1..=racks1)
        .map(|r| json!({"name": format!("rack{r}")}))
        .collect();
    json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": {"name": MC, "namespace": NAMESPACE},
        "spec": {
            "base": {
                "apiVersion": "db.orange.com/v2",
                "kind": "CassandraCluster",
                "metadata": {"name": MC},
                "spec": {"cassandraImage": image, "nodesPerRacks": 1},
            },
            "override": {
                "k8s-cluster1": {"spec": {"topology": {"dc": [{"name": "dc1", "rack": racks}]}}},
                "k8s-cluster2": {"spec": {"topology": {"dc": [{"name": "dc2", "rack": [{"name": "rack1"}]}]}}},
            },
        }
    })
    .to_string()
}

fn site_entry(mc: &Value, site: &str) -> Value {
    mc["status"]["sites"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == site).cloned())
        .unwrap_or(Value::Null)
}

/// The controller's writes to site 1's CassandraCluster from audit sequence `from` on.
fn writes_to_site1(env: &Env, from: u64) -> Vec<Value> {
    let user = Env::sa_user("multi-casskop");
    env.sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= from && e.user == user && e.cluster == "k8s-cluster1")
        .filter(|e| e.resource == "cassandraclusters" && (200..300).contains(&e.code))
        .filter(|e| matches!(e.verb.as_str(), "create" | "update" | "patch"))
        .map(|e| e.object.unwrap_or(Value::Null))
        .collect()
}

async fn ready(env: &Env, image: &str) -> anyhow::Result<()> {
    eventually("every site Running with the image", WAIT, || async {
        let mc = env.get_mc(MC)?;
        let mut ok = mc["status"]["observedGeneration"] == mc["metadata"]["generation"]
            && condition(&mc, "Ready").is_some_and(|c| c.0 == "True");
        for s in SITES {
            ok &= env
                .get_cc(s, MC)?
                .is_some_and(|cc| running_done(&cc) && cc["spec"]["cassandraImage"] == image);
        }
        Ok(ok.then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_casskop_puts_back_blocks_the_site_retries_with_backoff_and_a_new_change_goes_at_once()
-> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    let log = |e: anyhow::Error| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 80));
    env.apply_yaml(&manifest(1, "cassandra:3.11.9"))?;
    ready(&env, "cassandra:3.11.9").await.map_err(log)?;

    // A second rack for dc1: CassKop accepts no rack added to an existing DC.
    env.apply_yaml(&manifest(2, "cassandra:3.11.9"))?;
    let mc = eventually("the MultiCasskop Blocked on site 1", WAIT, || async {
        let mc = env.get_mc(MC)?;
        let blocked = mc["status"]["phase"] == "Blocked"
            && site_entry(&mc, "k8s-cluster1")["state"] == "Blocked";
        Ok(blocked.then_some(mc))
    })
    .await
    .map_err(log)?;
    let message = site_entry(&mc, "k8s-cluster1")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for part in [
        "site k8s-cluster1",
        &format!("CassandraCluster {NAMESPACE}/{MC}"),
        "put back spec.topology.dc[0].rack (set by spec.override.k8s-cluster1.spec.topology.dc[0].rack)",
        "lastClusterAction CorrectCRDConfig",
        "no rack added to",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    let (_, _, ready_message) = condition(&mc, "Ready").expect("a Ready condition");
    assert!(
        ready_message.contains("site k8s-cluster1"),
        "{ready_message}"
    );
    assert_eq!(
        site_entry(&mc, "k8s-cluster2")["state"],
        "Ready",
        "site 2 has nothing to change: {}",
        mc["status"]
    );

    // A while later: a few retries, not one a second; still Blocked, one Warning Event.
    let from = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    tokio::time::sleep(WATCHED).await;
    let writes = writes_to_site1(&env, from).len();
    println!("writes to k8s-cluster1 over {WATCHED:?} while Blocked: {writes}");
    assert!(
        writes <= MAX_WRITES,
        "{writes} writes over {WATCHED:?}:\n{}",
        controller_log_tail(&ctl.logs(), 40)
    );
    let mc = env.get_mc(MC)?;
    assert_eq!(mc["status"]["phase"], "Blocked", "{}", mc["status"]);
    let cc = env.get_cc("k8s-cluster1", MC)?.expect("site 1's cluster");
    assert_eq!(
        cc["spec"]["topology"]["dc"][0]["rack"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "CassKop kept its topology"
    );
    let events = env.events_of(MC)?;
    let warnings: Vec<_> = events
        .iter()
        .filter(|(t, _, n)| t == "Warning" && n.contains("CassKop refused the change"))
        .collect();
    assert_eq!(warnings.len(), 1, "{events:#?}");
    assert!(
        warnings[0].1 == "SiteBlocked" && warnings[0].2.contains("site k8s-cluster1"),
        "{warnings:?}"
    );
    assert!(
        env.get_cc("k8s-cluster2", MC)?
            .is_some_and(|cc| cc["spec"]["topology"]["dc"][0]["rack"]
                .as_array()
                .is_some_and(|r| r.len() == 1)),
        "site 2 untouched"
    );

    // A new change (the rack dropped, a new image): applied at once, the rollout goes on.
    let from = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    env.apply_yaml(&manifest(1, "cassandra:3.11.10"))?;
    ready(&env, "cassandra:3.11.10").await.map_err(log)?;
    let first = writes_to_site1(&env, from)
        .into_iter()
        .next()
        .expect("site 1 written");
    assert_eq!(
        first["spec"]["cassandraImage"], "cassandra:3.11.10",
        "the first write after the change is the new change, not a retry of the old one"
    );
    let mc = env.get_mc(MC)?;
    assert_eq!(mc["status"]["phase"], "Running", "{}", mc["status"]);
    Ok(())
}
