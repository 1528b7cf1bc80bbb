//! Day two: a site added to a running federation is created before anything changes on the
//! existing sites; a site removed from `override` is scaled to 0 then deleted (Blocked while
//! keyspaces still replicate there, until the replication is changed with cqlsh), or released.

use std::time::Duration;

use e2e::audit::{self, StepKind, running_done};
use e2e::{Env, NAMESPACE, condition, eventually};
use serde_json::{Value, json};

const MC: &str = "sites";
const WAIT: Duration = Duration::from_secs(240);

/// A MultiCasskop with one single-rack DC `dcN` per site `k8s-clusterN` listed.
fn manifest(sites: &[usize], delete: bool, image: &str) -> String {
    let overrides: serde_json::Map<String, Value> = sites
        .iter()
        .map(|n| {
            (
                format!("k8s-cluster{n}"),
                json!({"spec": {"topology": {"dc": [{"name": format!("dc{n}"), "rack": [{"name": "rack1"}]}]}}}),
            )
        })
        .collect();
    json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": {"name": MC, "namespace": NAMESPACE},
        "spec": {
            "deleteCassandraCluster": delete,
            "base": {
                "apiVersion": "db.orange.com/v2",
                "kind": "CassandraCluster",
                "metadata": {"name": MC},
                "spec": {"cassandraImage": image, "nodesPerRacks": 1, "autoUpdateSeedList": false},
            },
            "override": overrides,
        }
    })
    .to_string()
}

fn tail(ctl: &e2e::ControllerProcess) -> String {
    e2e::controller_log_tail(&ctl.logs(), 80)
}

/// Every site listed Running/Done and the MultiCasskop Ready for its current generation.
async fn wait_ready(env: &Env, ctl: &e2e::ControllerProcess, sites: &[&str]) -> anyhow::Result<()> {
    eventually("the MultiCasskop Ready", WAIT, || async {
        let mc = env.get_mc(MC)?;
        let mut ok = mc["status"]["observedGeneration"] == mc["metadata"]["generation"]
            && condition(&mc, "Ready").is_some_and(|c| c.0 == "True");
        for s in sites {
            ok &= env.get_cc(s, MC)?.is_some_and(|cc| running_done(&cc));
        }
        Ok(ok.then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\ncontroller log:\n{}", tail(ctl)))
}

async fn start(sites: &[&str]) -> anyhow::Result<(Env, e2e::ControllerProcess)> {
    let env = Env::start(sites).await?;
    let ctl = env.start_controller("controller", &[])?;
    Ok((env, ctl))
}

fn seq_now(env: &Env) -> u64 {
    env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_added_to_a_running_federation_is_created_before_the_existing_sites_change()
-> anyhow::Result<()> {
    let names = [
        "k8s-cluster1",
        "k8s-cluster2",
        "k8s-cluster3",
        "k8s-cluster4",
    ];
    let (env, ctl) = start(&names).await?;
    env.apply_yaml(&manifest(&[1, 2, 3], false, "cassandra:3.11.9"))?;
    wait_ready(&env, &ctl, &names[..3]).await?;

    // The fourth site and a new image at once: the existing sites need the image too, but the
    // new site comes first, and nothing is written to them before it is Running.
    let from = seq_now(&env);
    env.apply_yaml(&manifest(&[1, 2, 3, 4], false, "cassandra:3.11.10"))?;
    wait_ready(&env, &ctl, &names).await?;
    for s in names {
        let cc = env
            .get_cc(s, MC)?
            .expect("a CassandraCluster at every site");
        assert_eq!(cc["spec"]["cassandraImage"], "cassandra:3.11.10", "{s}");
    }
    let user = Env::sa_user("multi-casskop");
    let report = audit::analyze(&env.sim.audit(), &[user.as_str()], MC, from);
    println!("steps: {:#?}", report.steps);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(
        report.first_write_order,
        [
            "k8s-cluster4",
            "k8s-cluster1",
            "k8s-cluster2",
            "k8s-cluster3"
        ],
        "the new site is written first"
    );
    let settled4 = report
        .steps
        .iter()
        .position(|s| s.site == "k8s-cluster4" && s.kind == StepKind::Settled)
        .expect("the new site settles");
    let first_existing = report
        .steps
        .iter()
        .position(|s| s.site != "k8s-cluster4")
        .expect("the existing sites are updated");
    assert!(
        settled4 < first_existing,
        "the existing sites are untouched until the new one is Running: {:#?}",
        report.steps
    );
    let mc = env.get_mc(MC)?;
    assert_eq!(mc["status"]["readySites"], "4/4");
    Ok(())
}

/// `kubectl exec` of `cqlsh -e STATEMENT` in pod `pod` of `site`.
fn cqlsh(env: &Env, site: &str, pod: &str, statement: &str) -> anyhow::Result<String> {
    env.kubectl_in(site, &["exec", pod, "--", "cqlsh", "-e", statement])
}

/// The leaving site's status entry.
fn entry(mc: &Value, site: &str) -> Option<Value> {
    mc["status"]["sites"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == site)
        .cloned()
}

/// `multi-casskop status|ring NAME` with the admin kubeconfig's own contexts.
fn cli(env: &Env, verb: &str, remotes: &str) -> anyhow::Result<std::process::Output> {
    Ok(std::process::Command::new(e2e::binary()?)
        .args([
            verb,
            MC,
            "-n",
            NAMESPACE,
            "--kubeconfig",
            &env.admin_kubeconfig.display().to_string(),
            "--context",
            "k8s-cluster1",
            "-l",
            "k8s-cluster1",
            "-r",
            remotes,
            "--use-kubeconfig-contexts",
        ])
        .output()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_site_is_blocked_while_keyspaces_replicate_there_then_scaled_to_zero_and_deleted()
-> anyhow::Result<()> {
    let names = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];
    let (env, mut ctl) = start(&names).await?;
    env.apply_yaml(&manifest(&[1, 2, 3], true, "cassandra:3.11.9"))?;
    wait_ready(&env, &ctl, &names).await?;

    let from = seq_now(&env);
    env.apply_yaml(&manifest(&[1, 2], true, "cassandra:3.11.9"))?;
    // Cassandra's default system keyspaces replicate in every DC: CassKop refuses dc3 to 0.
    let blocked = eventually("the removal Blocked on the keyspaces", WAIT, || async {
        let mc = env.get_mc(MC)?;
        let blocked = mc["status"]["phase"] == "Blocked"
            && entry(&mc, "k8s-cluster3").is_some_and(|e| e["state"] == "Blocked");
        Ok(blocked.then_some(mc))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\ncontroller log:\n{}", tail(&ctl)))?;
    let message = entry(&blocked, "k8s-cluster3").unwrap()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for part in [
        "site k8s-cluster3 left spec.override",
        "DC dc3",
        "CorrectCRDConfig",
        "keyspaces still replicate there",
        "ALTER KEYSPACE",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    let (_, _, ready_message) = condition(&blocked, "Ready").unwrap();
    assert!(ready_message.contains("ALTER KEYSPACE"), "{ready_message}");
    assert_eq!(blocked["status"]["currentSite"], "k8s-cluster3");
    let events = env.events_of(MC)?;
    assert!(
        events.iter().any(|(t, r, n)| t == "Warning"
            && r == "SiteRemovalBlocked"
            && n.contains("ALTER KEYSPACE")),
        "{events:?}"
    );
    let status = cli(&env, "status", "k8s-cluster2,k8s-cluster3")?;
    let table = String::from_utf8_lossy(&status.stdout);
    println!("{table}");
    assert!(
        table.contains("k8s-cluster3") && table.contains("CassKop refused to scale DC dc3"),
        "{table}"
    );
    assert!(
        env.get_cc("k8s-cluster3", MC)?.is_some(),
        "k8s-cluster3's CassandraCluster is kept while the removal is blocked"
    );

    // A controller restarted mid-removal carries on from the status alone.
    ctl.kill();
    let ctl = env.start_controller("controller-restarted", &[])?;

    // The user takes dc3 out of every keyspace's replication; the removal goes on by itself.
    let pod = format!("{MC}-dc1-rack1-0");
    for ks in ["system_auth", "system_distributed", "system_traces"] {
        let stmt = format!(
            "ALTER KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', 'dc1': '1', 'dc2': '1'}}"
        );
        cqlsh(&env, "k8s-cluster1", &pod, &stmt)?;
    }
    // Paused: the replication no longer holds the removal back, yet nothing is written; the
    // leaving site's entry stays, and the removal resumes from it once unpaused.
    let paused_from = seq_now(&env);
    env.kubectl(&[
        "patch",
        "multicasskop",
        MC,
        "--type=merge",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ])?;
    eventually("the MultiCasskop Paused", WAIT, || async {
        let mc = env.get_mc(MC)?;
        Ok((mc["status"]["phase"] == "Paused").then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\ncontroller log:\n{}", tail(&ctl)))?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mc = env.get_mc(MC)?;
    assert!(
        entry(&mc, "k8s-cluster3").is_some_and(|e| e["state"] == "Blocked"),
        "{}",
        mc["status"]
    );
    let while_paused: Vec<String> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= paused_from && e.user == Env::sa_user("multi-casskop"))
        .filter(|e| e.resource == "cassandraclusters")
        .filter(|e| matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete"))
        .map(|e| format!("{} {} in {}", e.verb, e.name, e.cluster))
        .collect();
    assert!(
        while_paused.is_empty(),
        "written while paused: {while_paused:?}"
    );
    env.kubectl(&[
        "patch",
        "multicasskop",
        MC,
        "--type=merge",
        "-p",
        r#"{"spec":{"paused":false}}"#,
    ])?;
    eventually("k8s-cluster3's CassandraCluster deleted", WAIT, || async {
        Ok(env.get_cc("k8s-cluster3", MC)?.is_none().then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\ncontroller log:\n{}", tail(&ctl)))?;
    wait_ready(&env, &ctl, &names[..2]).await?;
    let mc = env.get_mc(MC)?;
    assert_eq!(mc["status"]["phase"], "Running");
    assert_eq!(mc["status"]["readySites"], "2/2");
    assert!(entry(&mc, "k8s-cluster3").is_none(), "{}", mc["status"]);

    // Scaled to 0 (dc3 at 0 nodes), then deleted, from the audit log.
    let user = Env::sa_user("multi-casskop");
    let mut scaled = None;
    let mut deleted = None;
    for e in env.sim.audit() {
        if e.seq < from
            || e.user != user
            || e.cluster != "k8s-cluster3"
            || e.resource != "cassandraclusters"
        {
            continue;
        }
        if e.verb == "patch"
            && e.code < 300
            && e.object
                .as_ref()
                .is_some_and(|o| o["spec"]["topology"]["dc"][0]["nodesPerRacks"] == 0)
        {
            scaled.get_or_insert(e.seq);
        }
        if e.verb == "delete" && e.code < 300 {
            deleted.get_or_insert(e.seq);
        }
    }
    let (scaled, deleted) = (
        scaled.expect("a scale-down to 0"),
        deleted.expect("a delete"),
    );
    assert!(
        scaled < deleted,
        "scaled to 0 (seq {scaled}) before the delete (seq {deleted})"
    );
    let casskop_scaled = audit::casskop_finished_between(
        &env.sim.audit(),
        "k8s-cluster3",
        "ScaleDown",
        scaled,
        deleted,
    );
    assert!(
        casskop_scaled,
        "CassKop decommissioned dc3 before the delete"
    );
    let events = env.events_of(MC)?;
    println!("events: {events:#?}");
    for reason in ["SiteScalingDown", "Deleting", "SiteRemoved"] {
        assert!(
            events.iter().any(|(_, r, _)| r == reason),
            "{reason}: {events:?}"
        );
    }
    // The remaining sites untouched by the removal.
    for s in &names[..2] {
        let wrote = env.sim.audit().into_iter().any(|e| {
            e.seq >= from
                && e.user == user
                && e.cluster == *s
                && e.resource == "cassandraclusters"
                && matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete")
        });
        assert!(!wrote, "{s} was written during the removal");
    }

    // The ring: the remaining DCs only, every node UN.
    let ring = cli(&env, "ring", "k8s-cluster2")?;
    let out = String::from_utf8_lossy(&ring.stdout);
    println!("{out}{}", String::from_utf8_lossy(&ring.stderr));
    assert_eq!(ring.status.code(), Some(0), "{out}");
    assert!(out.contains("dc1") && out.contains("dc2"), "{out}");
    assert!(!out.contains("dc3"), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_site_without_delete_cassandra_cluster_is_released_not_deleted()
-> anyhow::Result<()> {
    let names = ["k8s-cluster1", "k8s-cluster2"];
    let (env, ctl) = start(&names).await?;
    env.apply_yaml(&manifest(&[1, 2], false, "cassandra:3.11.9"))?;
    wait_ready(&env, &ctl, &names).await?;

    env.apply_yaml(&manifest(&[1], false, "cassandra:3.11.9"))?;
    let mc = eventually("the site released", WAIT, || async {
        let mc = env.get_mc(MC)?;
        let released = entry(&mc, "k8s-cluster2").is_some_and(|e| e["state"] == "Released")
            && mc["status"]["phase"] == "Running";
        Ok(released.then_some(mc))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\ncontroller log:\n{}", tail(&ctl)))?;
    let line = entry(&mc, "k8s-cluster2").unwrap()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for part in [
        "released at",
        "nothing was deleted",
        &format!("{NAMESPACE}/{MC}"),
    ] {
        assert!(line.contains(part), "{part}: {line}");
    }
    assert_eq!(mc["status"]["readySites"], "1/1");
    let cc = env
        .get_cc("k8s-cluster2", MC)?
        .expect("released, not deleted");
    assert!(running_done(&cc), "{}", cc["status"]);
    let labels = cc["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        labels
            .keys()
            .all(|k| !k.starts_with("multicasskop.db.orange.com/")),
        "owner labels removed: {labels:?}"
    );
    let annotations = &cc["metadata"]["annotations"];
    assert_eq!(
        annotations["multicasskop.db.orange.com/released-by"],
        format!("{NAMESPACE}/{MC}")
    );
    assert!(
        annotations["multicasskop.db.orange.com/released-at"]
            .as_str()
            .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
        "{annotations}"
    );
    let events = env.events_of(MC)?;
    assert!(
        events
            .iter()
            .any(|(t, r, n)| t == "Normal" && r == "SiteReleased" && n.contains("k8s-cluster2")),
        "{events:?}"
    );
    // Nothing more happens to it: still there a while later, still released.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(env.get_cc("k8s-cluster2", MC)?.is_some());
    let mc = env.get_mc(MC)?;
    assert_eq!(entry(&mc, "k8s-cluster2").unwrap()["state"], "Released");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_site_whose_cluster_is_no_longer_configured_is_reported_and_never_touched()
-> anyhow::Result<()> {
    let names = ["k8s-cluster1", "k8s-cluster2"];
    let (env, mut ctl) = start(&names).await?;
    env.apply_yaml(&manifest(&[1, 2], true, "cassandra:3.11.9"))?;
    wait_ready(&env, &ctl, &names).await?;

    // The site leaves override while the controller is down, and comes back without it.
    ctl.kill();
    env.apply_yaml(&manifest(&[1], true, "cassandra:3.11.9"))?;
    let from = seq_now(&env);
    let args: Vec<String> = [
        "--kubeconfig",
        &env.kubeconfig.display().to_string(),
        "--context",
        "k8s-cluster1",
        "-lk8s-cluster1",
        "--namespace",
        NAMESPACE,
        "--imports-dir",
        &env.dir.path().join("no-imports").display().to_string(),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let ctl = e2e::ControllerProcess::spawn(env.dir.path(), "controller-local-only", &args, &[])?;
    let mc = eventually("the leaving site reported", WAIT, || async {
        let mc = env.get_mc(MC)?;
        let reported = mc["status"]["observedGeneration"] == mc["metadata"]["generation"]
            && entry(&mc, "k8s-cluster2").is_some_and(|e| e["state"] == "Blocked");
        Ok(reported.then_some(mc))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\ncontroller log:\n{}", tail(&ctl)))?;
    let message = entry(&mc, "k8s-cluster2").unwrap()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("site k8s-cluster2 is not a configured cluster")
            && message.contains("neither scaled down nor deleted until it is back"),
        "{message}"
    );
    // Reported, not waited on by the sites that stay: they are Running.
    assert_eq!(mc["status"]["phase"], "Running", "{}", mc["status"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cc = env.get_cc("k8s-cluster2", MC)?.expect("left as it is");
    assert!(running_done(&cc), "{}", cc["status"]);
    assert_eq!(
        cc["spec"]["topology"]["dc"][0]["nodesPerRacks"],
        Value::Null
    );
    let touched: Vec<String> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| {
            e.seq >= from && e.cluster == "k8s-cluster2" && e.resource == "cassandraclusters"
        })
        .filter(|e| matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete"))
        .filter(|e| e.user != audit::CASSKOP_USER)
        .map(|e| format!("{} {} by {}", e.verb, e.name, e.user))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    Ok(())
}
