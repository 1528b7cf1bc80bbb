//! Fault suite: 20% of all requests, on every cluster, answered 500/503/429 for a while,
//! with storms of watch expiry (410 Gone) on top, during creations and change rollouts of many
//! MultiCasskops. Nothing out of order, nothing deleted, nothing created twice, everything
//! converges once the storm is over, and the controller never dies.
//!
//! A status write refused right after a CassandraCluster write succeeded loses the record of
//! that write; the controller recovers it from the object's annotations (this test is what
//! caught the livelock the earlier managedFields-based recovery left).

use std::time::{Duration, Instant};

use e2e::benchmark::{CONTROLLER_SA, mc_api, spawn_controller, wait_readyz};
use e2e::faults::{
    Rng, assert_no_panic, check_invariants, create_fleet, set_image, wait_converged,
};
use e2e::{Env, EnvOptions};
use kubesim::casskop::CasskopOptions;

const SITES: [&str; 3] = ["site1", "site2", "site3"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_storm_and_watch_expiry_lose_nothing() -> anyhow::Result<()> {
    let mut rng = Rng::from_env("error_storm");
    let env = Env::start_with(
        &SITES,
        EnvOptions {
            casskop: CasskopOptions {
                ready_after: Duration::from_millis(400),
                react_after: Duration::from_millis(200),
            },
            controller_sa: CONTROLLER_SA.into(),
            local_cluster_admin: true,
        },
    )
    .await?;
    let sites: Vec<String> = env.names().to_vec();
    let mut ctl = spawn_controller(&env, "controller", "Debug", &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    // Created before the storm (the test's own writes are not the point), rolled out in it.
    let mut expected = create_fleet(
        &api,
        (0..10).map(|i| format!("storm-{i}")),
        &sites,
        "cassandra:3.11.9",
        4,
    )
    .await?;
    for c in env.sim.clusters() {
        c.faults().set_error_rate(0.2, vec![500, 503, 429]);
    }
    println!("storm on: 20% of requests answered 500/503/429");
    let storm = Duration::from_secs(20);
    let start = Instant::now();
    let mut expiries = 0;
    let mut edited = false;
    while start.elapsed() < storm {
        tokio::time::sleep(rng.millis(300, 1500)).await;
        // Storms of 410: every open watch on a cluster (sometimes all) expires.
        if rng.chance(0.3) {
            for c in env.sim.clusters() {
                c.faults().expire_watches();
            }
        } else {
            rng.pick(env.sim.clusters()).faults().expire_watches();
        }
        expiries += 1;
        if !edited && start.elapsed() > storm / 2 {
            // A change rollout through the storm (the edit itself retried until it lands).
            for c in env.sim.clusters() {
                c.faults().set_error_rate(0.0, vec![]);
            }
            for (name, image) in &mut expected {
                *image = "cassandra:3.11.10".into();
                set_image(&env, name, image).await?;
            }
            for c in env.sim.clusters() {
                c.faults().set_error_rate(0.2, vec![500, 503, 429]);
            }
            edited = true;
        }
    }
    let injected: usize = env
        .sim
        .audit()
        .iter()
        .filter(|e| matches!(e.code, 500 | 503 | 429))
        .count();
    for c in env.sim.clusters() {
        c.faults().clear();
    }
    println!("storm over: {expiries} watch expiries, {injected} requests answered with an error");
    assert!(injected > 0, "the storm did inject errors");

    wait_converged(&env, &expected, Duration::from_secs(400))
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::faults::failure_log(&ctl, "errors")))?;
    assert!(ctl.exited().is_none(), "the controller kept running");
    assert_no_panic(&ctl.logs(), "controller");
    let user = Env::sa_user(CONTROLLER_SA);
    let names: Vec<String> = expected.keys().cloned().collect();
    let r = check_invariants(&env, &names, &[user.as_str()], false);
    println!(
        "{} controller writes, {} creates, {} handoffs",
        r.controller_writes, r.creates, r.handoffs
    );
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(r.creates, 10 * 3, "one create per resource and site");
    Ok(())
}
