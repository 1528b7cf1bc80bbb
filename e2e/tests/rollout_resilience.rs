//! A rollout survives expired watches (410 Gone) and a share of failing requests without
//! breaking the one-site-at-a-time rule or reporting a healthy site as unreachable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use e2e::audit;
use e2e::{Env, condition, eventually, sample};

const SITES: [&str; 3] = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];

async fn edit_and_wait(env: &Env, ctl: &e2e::ControllerProcess, image: &str) -> anyhow::Result<()> {
    env.kubectl(&[
        "patch",
        "multicasskop",
        "cassandra-3dc",
        "--type=merge",
        "-p",
        &format!(r#"{{"spec":{{"base":{{"spec":{{"cassandraImage":"{image}"}}}}}}}}"#),
    ])?;
    eventually(
        &format!("{image} Running/Done at every site"),
        Duration::from_secs(240),
        || async {
            let mc = env.get_mc("cassandra-3dc")?;
            let mut done = mc["status"]["observedGeneration"] == mc["metadata"]["generation"]
                && condition(&mc, "Ready").is_some_and(|c| c.0 == "True");
            for site in SITES {
                done &= env.get_cc(site, "cassandra-3dc")?.is_some_and(|cc| {
                    cc["spec"]["cassandraImage"] == image
                        && cc["status"]["phase"] == "Running"
                        && cc["status"]["lastClusterActionStatus"] == "Done"
                });
            }
            Ok(done.then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::controller_log_tail(&ctl.logs(), 60)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_watches_and_failing_requests_do_not_break_the_rollout() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    eventually("ready", Duration::from_secs(60), || async {
        Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(()))
    })
    .await?;
    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "multicasskop/cassandra-3dc",
        "--timeout=240s",
    ])?;
    let user = Env::sa_user("multi-casskop");

    // Watches expire every 700 ms on every cluster during a whole rollout.
    let from = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let clusters: Vec<_> = env.sim.clusters().to_vec();
    let expirer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                for c in &clusters {
                    c.faults().expire_watches();
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
            n
        })
    };
    edit_and_wait(&env, &ctl, "cassandra:3.11.10").await?;
    stop.store(true, Ordering::Relaxed);
    println!(
        "watches expired {} times during the rollout",
        expirer.await?
    );
    let r = audit::analyze(&env.sim.audit(), &[user.as_str()], "cassandra-3dc", from);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.first_write_order, SITES);
    let warnings = warning_events(&env)?;
    assert!(
        warnings.is_empty(),
        "expired watches are not outages: {warnings:?}"
    );

    // 30 % of the controller's and CassKop's requests fail with 500/503/429 at the remotes.
    let from = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    for site in &SITES[1..] {
        env.sim
            .cluster(site)
            .faults()
            .set_error_rate(0.3, vec![500, 503, 429]);
    }
    edit_and_wait(&env, &ctl, "cassandra:3.11.11").await?;
    for site in &SITES[1..] {
        env.sim.cluster(site).faults().clear();
    }
    let injected: Vec<(bool, u16)> = env
        .sim
        .audit()
        .iter()
        .filter(|e| e.seq >= from && matches!(e.code, 429 | 500 | 503))
        .map(|e| (e.user == user, e.code))
        .collect();
    let ours = injected.iter().filter(|(mine, _)| *mine).count();
    println!(
        "{} requests failed on purpose during the second rollout ({ours} of the controller's)",
        injected.len()
    );
    assert!(!injected.is_empty(), "the fault was active");
    let r = audit::analyze(&env.sim.audit(), &[user.as_str()], "cassandra-3dc", from);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.first_write_order, SITES);
    assert!(!ctl.logs().contains("panicked"));
    Ok(())
}

fn warning_events(env: &Env) -> anyhow::Result<Vec<String>> {
    let out = env.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
    let list: serde_json::Value = serde_json::from_str(&out)?;
    Ok(list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["type"] == "Warning")
        .map(|e| format!("{}: {}", e["reason"], e["note"]))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cluster_outage_pauses_the_controller_and_it_resumes() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    eventually("ready", Duration::from_secs(60), || async {
        Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(()))
    })
    .await?;
    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?;
    eventually(
        "the rollout to reach site 2",
        Duration::from_secs(240),
        || async { Ok(env.get_cc("k8s-cluster2", "cassandra-3dc")?.map(|_| ())) },
    )
    .await?;
    // The control plane goes away for a few seconds mid-rollout.
    env.local().faults().set_unreachable(true);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        ctl.http_get("/healthz").is_ok_and(|(code, _)| code == 200),
        "alive while the local cluster is down"
    );
    env.local().faults().clear();
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "multicasskop/cassandra-3dc",
        "--timeout=240s",
    ])
    .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::controller_log_tail(&ctl.logs(), 60)))?;
    let user = Env::sa_user("multi-casskop");
    let r = audit::analyze(&env.sim.audit(), &[user.as_str()], "cassandra-3dc", 0);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.first_write_order, SITES);
    assert!(!ctl.logs().contains("panicked"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_during_a_rollout_still_goes_one_site_at_a_time() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    eventually("ready", Duration::from_secs(60), || async {
        Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(()))
    })
    .await?;
    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "multicasskop/cassandra-3dc",
        "--timeout=240s",
    ])?;
    let from = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    env.kubectl(&[
        "patch",
        "multicasskop",
        "cassandra-3dc",
        "--type=merge",
        "-p",
        r#"{"spec":{"base":{"spec":{"cassandraImage":"cassandra:3.11.10"}}}}"#,
    ])?;
    // As soon as site 2 gets the first edit, edit again.
    eventually(
        "site 2 to get the first edit",
        Duration::from_secs(240),
        || async {
            Ok(env
                .get_cc("k8s-cluster2", "cassandra-3dc")?
                .filter(|cc| cc["spec"]["cassandraImage"] == "cassandra:3.11.10")
                .map(|_| ()))
        },
    )
    .await?;
    edit_and_wait(&env, &ctl, "cassandra:3.11.11").await?;
    let user = Env::sa_user("multi-casskop");
    let r = audit::analyze(&env.sim.audit(), &[user.as_str()], "cassandra-3dc", from);
    println!("{:#?}", r.steps);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(!ctl.logs().contains("panicked"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_multicasskops_roll_out_side_by_side_each_one_site_at_a_time() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    eventually("ready", Duration::from_secs(60), || async {
        Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(()))
    })
    .await?;
    let n = 12;
    let mut manifests = String::new();
    for i in 0..n {
        let overrides: serde_json::Map<String, serde_json::Value> = SITES
            .iter()
            .enumerate()
            // CassKop's CRD refuses a dash in a DC name (pattern ^[^-]+$).
            .map(|(j, s)| (s.to_string(), serde_json::json!({"spec": {"topology": {"dc": [{"name": format!("dc{}", j + 1), "rack": [{"name": "r1"}]}]}}})))
            .collect();
        let mc = serde_json::json!({
            "apiVersion": "db.orange.com/v2", "kind": "MultiCasskop", "metadata": {"name": format!("ring-{i}")},
            "spec": {"base": {"metadata": {"name": format!("cassandra-{i}")}, "spec": {"cassandraImage": "cassandra:3.11.9", "nodesPerRacks": 1}},
                     "override": overrides}});
        manifests.push_str(&format!("---\n{mc}\n"));
    }
    env.apply_yaml(&manifests)?;
    for i in 0..n {
        env.kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("multicasskop/ring-{i}"),
            "--timeout=240s",
        ])
        .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::controller_log_tail(&ctl.logs(), 40)))?;
    }
    let user = Env::sa_user("multi-casskop");
    let audit_log = env.sim.audit();
    for i in 0..n {
        let r = audit::analyze(&audit_log, &[user.as_str()], &format!("cassandra-{i}"), 0);
        assert!(r.violations.is_empty(), "ring-{i}: {:?}", r.violations);
        assert_eq!(r.first_write_order, SITES, "ring-{i}");
    }
    let (_, metrics) = ctl.http_get("/metrics")?;
    println!(
        "{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("multicasskop_reconciles_total")
                || l.starts_with("multicasskop_site_writes_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!ctl.logs().contains("panicked"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_status_record_was_lost_is_recovered_after_a_restart() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let mut ctl = env.start_controller("controller-1", &[])?;
    eventually("ready", Duration::from_secs(60), || async {
        Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(()))
    })
    .await?;
    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "multicasskop/cassandra-3dc",
        "--timeout=240s",
    ])?;
    let old_sites = env.get_mc("cassandra-3dc")?["status"]["sites"].clone();
    env.kubectl(&[
        "patch",
        "multicasskop",
        "cassandra-3dc",
        "--type=merge",
        "-p",
        r#"{"spec":{"base":{"spec":{"cassandraImage":"cassandra:3.11.10"}}}}"#,
    ])?;
    eventually(
        "site 1 to get the edit",
        Duration::from_secs(240),
        || async {
            Ok(env
                .get_cc("k8s-cluster1", "cassandra-3dc")?
                .filter(|cc| cc["spec"]["cassandraImage"] == "cassandra:3.11.10")
                .map(|_| ()))
        },
    )
    .await?;
    // Crash, and lose the status record of that write (as if the crash came just before it).
    ctl.kill();
    let patch = serde_json::json!({"status": {"sites": old_sites}}).to_string();
    env.kubectl(&[
        "patch",
        "multicasskop",
        "cassandra-3dc",
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ])?;
    let ctl = env.start_controller("controller-2", &[])?;
    edit_wait_only(&env, &ctl, "cassandra:3.11.10").await?;
    let user = Env::sa_user("multi-casskop");
    let r = audit::analyze(&env.sim.audit(), &[user.as_str()], "cassandra-3dc", 0);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(
        ctl.logs().contains("does not record"),
        "the mark was recovered, not re-applied forever"
    );
    Ok(())
}

/// Wait until `image` is Running/Done at every site and the MultiCasskop is Ready.
async fn edit_wait_only(
    env: &Env,
    ctl: &e2e::ControllerProcess,
    image: &str,
) -> anyhow::Result<()> {
    eventually(
        &format!("{image} Running/Done at every site"),
        Duration::from_secs(240),
        || async {
            let mc = env.get_mc("cassandra-3dc")?;
            let mut done = mc["status"]["observedGeneration"] == mc["metadata"]["generation"]
                && condition(&mc, "Ready").is_some_and(|c| c.0 == "True");
            for site in SITES {
                done &= env.get_cc(site, "cassandra-3dc")?.is_some_and(|cc| {
                    cc["spec"]["cassandraImage"] == image
                        && cc["status"]["phase"] == "Running"
                        && cc["status"]["lastClusterActionStatus"] == "Done"
                });
            }
            Ok(done.then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::controller_log_tail(&ctl.logs(), 40)))
}
