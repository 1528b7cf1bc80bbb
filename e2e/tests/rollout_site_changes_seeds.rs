//! Day two with `autoSeedList`, from the audit log: a fourth site (two DCs) added to a running
//! federation is created once every existing site is Running, before any of them changes; then
//! the new seed list reaches them one at a time. Removed again (`deleteCassandraCluster:
//! true`): each of its DCs is scaled to 0, the last first, each checked by CassKop for keyspaces
//! (Blocked naming the DC until the replication is changed with cqlsh), then it is deleted, then
//! the other sites get the seed list without it, one at a time; never before its nodes are gone.

use std::time::Duration;

use e2e::audit::{self, StepKind};
use e2e::{Env, NAMESPACE, controller_log_tail, eventually};
use serde_json::{Value, json};

const MC: &str = "sites";
const SITES: [&str; 4] = [
    "k8s-cluster1",
    "k8s-cluster2",
    "k8s-cluster3",
    "k8s-cluster4",
];
const WAIT: Duration = Duration::from_secs(300);

/// Seeds of the three first sites: one single-rack DC of one node each.
const SEEDS_OF_THREE: [&str; 3] = [
    "sites-dc1-rack1-0.site1.example.com",
    "sites-dc2-rack1-0.site2.example.com",
    "sites-dc3-rack1-0.site3.example.com",
];
/// The fourth site's seeds: DCs dc4 and dc5, in its own zone.
const SEEDS_OF_FOURTH: [&str; 2] = [
    "sites-dc4-rack1-0.site4.example.com",
    "sites-dc5-rack1-0.site4.example.com",
];

/// Site `k8s-clusterN`'s DCs: `dcN`, and `dc5` too for the fourth.
fn dcs(n: usize) -> Vec<Value> {
    let dc = |name: String| json!({"name": name, "rack": [{"name": "rack1"}]});
    let mut out = vec![dc(format!("dc{n}"))];
    if n == 4 {
        out.push(dc("dc5".into()));
    }
    out
}

fn manifest(sites: &[usize]) -> String {
    let overrides: serde_json::Map<String, Value> = sites
        .iter()
        .map(|n| {
            (
                format!("k8s-cluster{n}"),
                json!({"spec": {
                    "service": {"annotations": {
                        "external-dns.alpha.kubernetes.io/hostname": format!("site{n}.example.com.")}},
                    "topology": {"dc": dcs(*n)},
                }}),
            )
        })
        .collect();
    json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": {"name": MC, "namespace": NAMESPACE},
        "spec": {
            "autoSeedList": true,
            "deleteCassandraCluster": true,
            "base": {
                "apiVersion": "db.orange.com/v2",
                "kind": "CassandraCluster",
                "metadata": {"name": MC},
                "spec": {"cassandraImage": "cassandra:3.11.9", "nodesPerRacks": 1, "autoUpdateSeedList": false},
            },
            "override": overrides,
        }
    })
    .to_string()
}

fn seq_now(env: &Env) -> u64 {
    env.sim.audit().last().map_or(0, |e| e.seq + 1)
}

/// A successful write of the controller to a CassandraCluster, from the audit log.
struct Write {
    seq: u64,
    site: String,
    verb: String,
    object: Value,
}

/// The controller's successful writes (create/update/patch/delete) to CassandraClusters from
/// `from` on.
fn writes(env: &Env, from: u64) -> Vec<Write> {
    let user = Env::sa_user("multi-casskop");
    env.sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= from && e.user == user && e.resource == "cassandraclusters")
        .filter(|e| (200..300).contains(&e.code))
        .filter(|e| matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete"))
        .map(|e| Write {
            seq: e.seq,
            site: e.cluster,
            verb: e.verb,
            object: e.object.unwrap_or(Value::Null),
        })
        .collect()
}

/// The object of the last write to `site` among `writes`.
fn last_write(writes: &[Write], site: &str) -> Option<Value> {
    writes
        .iter()
        .rev()
        .find(|w| w.site == site)
        .map(|w| w.object.clone())
}

fn cqlsh(env: &Env, statement: &str) -> anyhow::Result<String> {
    let pod = format!("{MC}-dc1-rack1-0");
    env.kubectl_in(
        "k8s-cluster1",
        &["exec", &pod, "--", "cqlsh", "-e", statement],
    )
}

/// Replicate the system keyspaces in `dcs` only.
fn replicate_in(env: &Env, dcs: &[&str]) -> anyhow::Result<()> {
    let map: Vec<String> = dcs.iter().map(|d| format!("'{d}': '1'")).collect();
    for ks in ["system_auth", "system_distributed", "system_traces"] {
        cqlsh(
            env,
            &format!(
                "ALTER KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', {}}}",
                map.join(", ")
            ),
        )?;
    }
    Ok(())
}

fn entry(mc: &Value, site: &str) -> Value {
    mc["status"]["sites"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == site).cloned())
        .unwrap_or(Value::Null)
}

/// The fourth site's removal Blocked, its message naming `dc`.
async fn blocked_on(env: &Env, dc: &str) -> anyhow::Result<String> {
    eventually(&format!("the removal Blocked on {dc}"), WAIT, || async {
        let mc = env.get_mc(MC)?;
        let e = entry(&mc, "k8s-cluster4");
        let message = e["message"].as_str().unwrap_or_default().to_string();
        let blocked = mc["status"]["phase"] == "Blocked"
            && e["state"] == "Blocked"
            && message.contains(&format!("DC {dc} "));
        Ok(blocked.then_some(message))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auto_seeds_a_site_joins_before_the_others_change_and_leaves_before_its_seeds_go()
-> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    let log = |e: anyhow::Error| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 80));
    let user = Env::sa_user("multi-casskop");
    env.apply_yaml(&manifest(&[1, 2, 3]))?;
    env.settled_with_seeds(MC, &SITES[..3], &SEEDS_OF_THREE, WAIT)
        .await
        .map_err(log)?;

    // The fourth site joins: created first, every existing site then Running; nothing written
    // to them before it is Running; then the seed list with its DCs, one site at a time.
    let joined_from = seq_now(&env);
    env.apply_yaml(&manifest(&[1, 2, 3, 4]))?;
    let four: Vec<&str> = SEEDS_OF_THREE
        .iter()
        .chain(&SEEDS_OF_FOURTH)
        .copied()
        .collect();
    env.settled_with_seeds(MC, &SITES, &four, WAIT)
        .await
        .map_err(log)?;
    let joined = audit::analyze(&env.sim.audit(), &[user.as_str()], MC, joined_from);
    println!("join steps: {:#?}", joined.steps);
    assert!(joined.violations.is_empty(), "{:?}", joined.violations);
    assert_eq!(
        joined.first_write_order,
        [
            "k8s-cluster4",
            "k8s-cluster1",
            "k8s-cluster2",
            "k8s-cluster3"
        ]
    );
    let settled4 = joined
        .steps
        .iter()
        .position(|s| s.site == "k8s-cluster4" && s.kind == StepKind::Settled)
        .expect("the new site settles");
    assert!(
        joined.steps[..settled4]
            .iter()
            .all(|s| s.site == "k8s-cluster4"),
        "the existing sites are untouched until the new one is Running: {:#?}",
        joined.steps
    );
    for site in &SITES[..3] {
        let last = last_write(&writes(&env, joined_from), site).expect("written");
        assert_eq!(
            e2e::seed_list(&last),
            four,
            "{site} gets the seeds of every DC"
        );
    }

    // The fourth site leaves. dc4 is taken out of the replication, dc5 not yet: the last DC
    // goes first and CassKop refuses it, so nothing is scaled down.
    let left_from = seq_now(&env);
    replicate_in(&env, &["dc1", "dc2", "dc3", "dc5"])?;
    env.apply_yaml(&manifest(&[1, 2, 3]))?;
    let message = blocked_on(&env, "dc5").await.map_err(log)?;
    for part in [
        "site k8s-cluster4 left spec.override",
        "CorrectCRDConfig",
        "ALTER KEYSPACE",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    let cc4 = env.get_cc("k8s-cluster4", MC)?.expect("kept while blocked");
    assert_eq!(
        cc4["spec"]["topology"]["dc"][0]["nodesPerRacks"],
        Value::Null,
        "dc4 untouched: {}",
        cc4["spec"]
    );
    // dc5 out of the replication: dc5 goes, then dc4 is asked about and refused in turn.
    replicate_in(&env, &["dc1", "dc2", "dc3", "dc4"])?;
    blocked_on(&env, "dc4").await.map_err(log)?;
    replicate_in(&env, &["dc1", "dc2", "dc3"])?;
    env.settled_with_seeds(MC, &SITES[..3], &SEEDS_OF_THREE, WAIT)
        .await
        .map_err(log)?;
    assert!(env.get_cc("k8s-cluster4", MC)?.is_none(), "deleted");

    // From the audit: dc5 to 0, dc4 to 0, the delete, then the three sites one at a time,
    // none of them written before the delete.
    let w = writes(&env, left_from);
    let story: Vec<String> = w
        .iter()
        .map(
            |Write {
                 seq,
                 site,
                 verb,
                 object,
             }| {
                let zeros: Vec<String> = object["spec"]["topology"]["dc"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|d| d["nodesPerRacks"] == 0)
                    .filter_map(|d| d["name"].as_str().map(String::from))
                    .collect();
                format!("{seq} {verb} {site} at 0: {zeros:?}")
            },
        )
        .collect();
    println!("removal writes: {story:#?}");
    let first_at = |pred: &dyn Fn(&Write) -> bool| w.iter().find(|x| pred(x)).map(|x| x.seq);
    let at_zero = |obj: &Value, i: usize| obj["spec"]["topology"]["dc"][i]["nodesPerRacks"] == 0;
    let dc5_down =
        first_at(&|x| x.site == "k8s-cluster4" && x.verb == "patch" && at_zero(&x.object, 1))
            .expect("dc5 scaled to 0");
    let dc4_down =
        first_at(&|x| x.site == "k8s-cluster4" && x.verb == "patch" && at_zero(&x.object, 0))
            .expect("dc4 scaled to 0");
    let deleted =
        first_at(&|x| x.site == "k8s-cluster4" && x.verb == "delete").expect("the delete");
    let others = first_at(&|x| x.site != "k8s-cluster4").expect("the other sites get new seeds");
    assert!(
        dc5_down < dc4_down && dc4_down < deleted && deleted < others,
        "{story:#?}"
    );
    let casskop_scaled_dc4 = audit::casskop_finished_between(
        &env.sim.audit(),
        "k8s-cluster4",
        "ScaleDown",
        dc4_down,
        deleted,
    );
    assert!(
        casskop_scaled_dc4,
        "CassKop decommissioned dc4 before the delete"
    );
    let after = audit::analyze(&env.sim.audit(), &[user.as_str()], MC, deleted + 1);
    assert!(after.violations.is_empty(), "{:?}", after.violations);
    assert_eq!(
        after.first_write_order,
        ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"],
        "{:#?}",
        after.steps
    );
    for site in &SITES[..3] {
        let last = last_write(&w, site).expect("written");
        assert_eq!(
            e2e::seed_list(&last),
            SEEDS_OF_THREE,
            "{site}: the seeds without dc4, dc5"
        );
    }
    let mc = env.get_mc(MC)?;
    assert_eq!(mc["status"]["readySites"], "3/3");
    assert!(entry(&mc, "k8s-cluster4").is_null(), "{}", mc["status"]);
    Ok(())
}
