//! Fault suite: the controller SIGKILLed at random moments during the rollouts (and
//! change rollouts) of many MultiCasskops, restarted each time; nothing out of order, nothing
//! deleted, nothing created twice, everything converges.
//!
//! Default: 10 resources, 5 kills. Long variant (`--ignored`): 50 resources, 20 kills.
//! Replay a run with `FAULTS_SEED=<seed printed by the test>`.

use std::time::Duration;

use e2e::benchmark::{CONTROLLER_SA, mc_api, spawn_controller, wait_readyz};
use e2e::faults::{
    Rng, assert_no_panic, check_invariants, create_fleet, set_image, wait_converged,
};
use e2e::{Env, EnvOptions};
use kubesim::casskop::CasskopOptions;

const SITES: [&str; 3] = ["site1", "site2", "site3"];

async fn kill_during_rollouts(resources: usize, kills: usize) -> anyhow::Result<()> {
    let mut rng = Rng::from_env("kill_during_rollouts");
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
    let mut ctl = spawn_controller(&env, "controller-0", "Info", &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let mut expected = create_fleet(
        &api,
        (0..resources).map(|i| format!("kill-{i:02}")),
        &sites,
        "cassandra:3.11.9",
        8,
    )
    .await?;

    let mut logs = Vec::new();
    for k in 1..=kills {
        tokio::time::sleep(rng.millis(200, 2500)).await;
        // Halfway through, change half of the resources: their change rollouts get killed too.
        if k == kills.div_ceil(2) {
            for (name, image) in &mut expected {
                if rng.chance(0.5) {
                    *image = "cassandra:3.11.10".into();
                    set_image(&env, name, image).await?;
                }
            }
        }
        ctl.kill();
        println!("kill {k}/{kills}");
        logs.push(ctl.logs());
        tokio::time::sleep(rng.millis(0, 500)).await;
        ctl = spawn_controller(&env, &format!("controller-{k}"), "Info", &[])?;
    }
    wait_converged(&env, &expected, Duration::from_secs(300))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}\nlast controller log:\n{}",
                e2e::faults::failure_log(&ctl, "kill")
            )
        })?;
    logs.push(ctl.logs());
    for (i, log) in logs.iter().enumerate() {
        assert_no_panic(log, &format!("controller-{i}"));
    }
    let user = Env::sa_user(CONTROLLER_SA);
    let names: Vec<String> = expected.keys().cloned().collect();
    let r = check_invariants(&env, &names, &[user.as_str()], false);
    println!(
        "{resources} resources, {kills} kills: {} controller writes, {} creates, {} handoffs",
        r.controller_writes, r.creates, r.handoffs
    );
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(
        r.creates,
        resources * sites.len(),
        "one create per resource and site"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_rollouts_loses_nothing() -> anyhow::Result<()> {
    kill_during_rollouts(10, 5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long variant (50 resources, 20 kills): cargo nextest run -p e2e --run-ignored only faults_kill"]
async fn sigkill_during_rollouts_loses_nothing_long() -> anyhow::Result<()> {
    kill_during_rollouts(50, 20).await
}
