//! The three-site sample rolls out one site at a time in order, an edit
//! of the base rolls out the same way, printer columns and `kubectl wait`, watch-driven handoffs.

use std::time::Duration;

use e2e::audit::{self, median_p99, running_done};
use e2e::{Env, condition, eventually, sample};
use serde_json::Value;

const SITES: [&str; 3] = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];
const MC: &str = "cassandra-3dc";

fn image_of(cc: &Value) -> Option<&str> {
    cc["spec"]["cassandraImage"].as_str()
}

fn report_handoffs(label: &str, r: &audit::RolloutReport) {
    match median_p99(&r.handoffs_us) {
        Some((median, p99)) => println!(
            "{label}: {} handoffs, site k Running/Done -> site k+1 write: median {:.1} ms, p99 {:.1} ms",
            r.handoffs_us.len(),
            median as f64 / 1000.0,
            p99 as f64 / 1000.0
        ),
        None => println!("{label}: no handoff measured"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_roll_out_in_order_and_edits_follow_the_same_order() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    eventually(
        "the controller to be ready",
        Duration::from_secs(60),
        || async { Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(())) },
    )
    .await?;

    // 1. Creation.
    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?;
    // 3. kubectl wait returns once every site is Running.
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("multicasskop/{MC}"),
        "--timeout=240s",
    ])
    .map_err(|e| anyhow::anyhow!("{e}\ncontroller log:\n{}", tail(&ctl.logs())))?;
    for site in SITES {
        let cc = env
            .get_cc(site, MC)?
            .unwrap_or_else(|| panic!("no CassandraCluster in {site}"));
        assert!(running_done(&cc), "{site}: {}", cc["status"]);
    }
    let controller_user = Env::sa_user("multi-casskop");
    let created = audit::analyze(&env.sim.audit(), &[controller_user.as_str()], MC, 0);
    println!("creation steps: {:#?}", created.steps);
    assert!(created.violations.is_empty(), "{:?}", created.violations);
    assert_eq!(
        created.first_write_order, SITES,
        "sites created in flag order"
    );
    assert_eq!(created.handoffs_us.len(), 2, "two handoffs: 1->2, 2->3");
    report_handoffs("creation", &created);

    // 3. Printer columns.
    let table = env.kubectl(&["get", "multicasskops"])?;
    println!("{table}");
    let header = table.lines().next().unwrap_or_default();
    for col in ["NAME", "PHASE", "SITE", "READY", "AGE"] {
        assert!(header.contains(col), "column {col} missing: {header}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with(MC))
        .expect("a row for the MultiCasskop");
    assert!(row.contains("Running") && row.contains("3/3"), "{row}");
    let mc = env.get_mc(MC)?;
    let (status, _, message) = condition(&mc, "Ready").expect("Ready condition");
    assert_eq!(status, "True", "{message}");
    assert_eq!(
        condition(&mc, "Valid").map(|c| c.0).as_deref(),
        Some("True")
    );
    assert_eq!(
        condition(&mc, "SitesReachable").map(|c| c.0).as_deref(),
        Some("True")
    );

    // 2. Editing the base rolls out one site at a time, in order.
    let from_seq = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    env.kubectl(&[
        "patch",
        "multicasskop",
        MC,
        "--type=merge",
        "-p",
        r#"{"spec":{"base":{"spec":{"cassandraImage":"cassandra:3.11.10"}}}}"#,
    ])?;
    eventually(
        "the new image Running/Done at every site",
        Duration::from_secs(240),
        || async {
            let mc = env.get_mc(MC)?;
            let settled = mc["status"]["observedGeneration"] == mc["metadata"]["generation"]
                && condition(&mc, "Ready").is_some_and(|c| c.0 == "True");
            let mut all = settled;
            for site in SITES {
                let cc = env.get_cc(site, MC)?;
                all &= cc.as_ref().is_some_and(|cc| {
                    image_of(cc) == Some("cassandra:3.11.10") && running_done(cc)
                });
            }
            Ok(all.then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\ncontroller log:\n{}", tail(&ctl.logs())))?;
    let edited = audit::analyze(&env.sim.audit(), &[controller_user.as_str()], MC, from_seq);
    println!("edit steps: {:#?}", edited.steps);
    assert!(edited.violations.is_empty(), "{:?}", edited.violations);
    assert_eq!(
        edited.first_write_order, SITES,
        "the edit follows the site order"
    );
    report_handoffs("edit", &edited);
    let all = audit::RolloutReport {
        handoffs_us: [created.handoffs_us.clone(), edited.handoffs_us.clone()].concat(),
        ..Default::default()
    };
    report_handoffs("all rollouts", &all);

    // 4. Watch-driven: handoffs counted by the controller too.
    let (_, metrics) = ctl.http_get("/metrics")?;
    let handoffs = metrics
        .lines()
        .find(|l| l.starts_with("multicasskop_site_handoffs_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        handoffs >= 4.0,
        "expected at least 4 handoffs in /metrics:\n{metrics}"
    );

    // Idle: once converged the controller reads nothing from the sites but its watches.
    let idle_from = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= idle_from && e.user == controller_user && e.verb != "watch")
        .map(|e| format!("{} {} {} {}", e.cluster, e.verb, e.resource, e.name))
        .collect();
    println!("controller requests while idle for 3 s: {idle:?}");
    assert!(
        idle.iter().all(|r| !r.contains("cassandraclusters")),
        "no CassandraCluster polling while idle: {idle:?}"
    );
    Ok(())
}

fn tail(log: &str) -> String {
    e2e::controller_log_tail(log, 80)
}
