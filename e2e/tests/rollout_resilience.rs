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
