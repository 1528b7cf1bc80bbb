//! The rollout on top of CassKop's real CassandraCluster CRD (`../shared/upstream`), whose schema
//! the sites enforce as kube-apiserver does: a field the site's CRD prunes is reported once and
//! never applied again in a loop, a change to such a field alone does not wait for a CassKop
//! reaction, a value the CRD refuses (422) blocks that site with the server's message, and the
//! defaults the CRD adds never count as drift.

use std::time::Duration;

use e2e::{ControllerProcess, Env, NAMESPACE, condition, controller_log_tail, eventually};
use serde_json::{Value, json};

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";
const WAIT: Duration = Duration::from_secs(240);

fn tail(ctl: &ControllerProcess) -> String {
    controller_log_tail(&ctl.logs(), 60)
}

/// Two sites running CassKop's real CRD, and the controller. `None` (skipped) without
/// `../shared/upstream`.
async fn start_on_real_crd() -> anyhow::Result<Option<(Env, ControllerProcess)>> {
    let env = Env::start(&[C1, C2]).await?;
    if !env.use_real_casskop_crd()? {
        return Ok(None);
    }
    let ctl = env.start_controller("controller", &[])?;
    eventually(
        "the controller to be ready",
        Duration::from_secs(60),
        || async { Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(())) },
    )
    .await?;
    Ok(Some((env, ctl)))
}

fn multicasskop(name: &str, cc: &str, override2: &Value) -> String {
    json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": {"name": name},
        "spec": {
            "base": {
                "apiVersion": "db.orange.com/v2",
                "kind": "CassandraCluster",
                "metadata": {"name": cc},
                "spec": {
                    "cassandraImage": "cassandra:3.11.9",
                    "nodesPerRacks": 1,
                    "dataCapacity": "256Mi",
                    "sidecarConfigs": [{"name": "logs", "image": "busybox",
                        "ports": [{"containerPort": 9000}]}]
                }
            },
            "override": {
                C1: {"spec": {"topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}]}}},
                C2: override2
            }
        }
    })
    .to_string()
}

fn dc2(extra: Value) -> Value {
    let mut dc = json!({"name": "dc2", "rack": [{"name": "rack1"}]});
    if let (Some(d), Some(e)) = (dc.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    json!({"spec": {"topology": {"dc": [dc]}}})
}

/// The MultiCasskop once Ready at `generation`.
async fn settled(
    env: &Env,
    ctl: &ControllerProcess,
    mc: &str,
    generation: i64,
) -> anyhow::Result<Value> {
    eventually(
        &format!("{mc} Ready at generation {generation}"),
        WAIT,
        || async {
            let o = env.get_mc(mc)?;
            Ok((o["status"]["observedGeneration"] == generation
                && condition(&o, "Ready").is_some_and(|c| c.0 == "True"))
            .then_some(o))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(ctl)))
}

/// The controller's writes to CassandraCluster `cc` at `site`, from that site's audit log.
fn writes_to(env: &Env, site: &str, cc: &str) -> usize {
    let user = Env::sa_user("multi-casskop");
    env.sim
        .cluster(site)
        .audit()
        .iter()
        .filter(|e| {
            e.user == user
                && e.resource == "cassandraclusters"
                && (e.name == cc || e.name.is_empty())
                && matches!(e.verb.as_str(), "create" | "update" | "patch")
                && e.code < 300
        })
        .count()
}

fn site_status<'a>(mc: &'a Value, site: &str) -> &'a Value {
    mc["status"]["sites"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["name"] == site))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_site_crd_prunes_is_reported_once_and_never_applied_in_a_loop()
-> anyhow::Result<()> {
    let Some((env, ctl)) = start_on_real_crd().await? else {
        return Ok(());
    };
    let cc = "cassandra-typo";
    // A typo inside a DC entry: the real CRD declares no `nodesPerRack` there, so it prunes it.
    env.apply_yaml(&multicasskop("typo", cc, &dc2(json!({"nodesPerRack": 2}))))?;
    let mc = settled(&env, &ctl, "typo", 1).await?;
    let site2 = site_status(&mc, C2);
    assert_eq!(
        site2["droppedFields"],
        json!(["spec.topology.dc[0].nodesPerRack"]),
        "the status names the field the site did not store: {site2}"
    );
    let message = site2["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "k8s-cluster2's CassandraCluster CRD dropped spec.topology.dc[0].nodesPerRack"
        ) && message.contains("spec.override.k8s-cluster2.spec.topology.dc[0].nodesPerRack"),
        "the site's message names the field and where it was set: {message}"
    );
    assert!(
        site_status(&mc, C1)["droppedFields"].is_null(),
        "site 1 stored everything"
    );
    let live = env.get_cc(C2, cc)?.expect("created at site 2");
    assert!(
        live["spec"]["topology"]["dc"][0]
            .get("nodesPerRack")
            .is_none(),
        "really pruned by the site: {}",
        live["spec"]["topology"]
    );
    // Defaults the real CRD adds are there, and are no drift either.
    assert_eq!(live["spec"]["runAsUser"], 999);
    assert_eq!(live["spec"]["fsGroup"], 1);
    assert_eq!(live["spec"]["serverType"], "cassandra");
    assert_eq!(
        live["spec"]["sidecarConfigs"][0]["ports"][0]["protocol"],
        "TCP"
    );

    // Settled: the controller does not come back to write either site, through several
    // reconciles (each CassKop status write and the resync wake it).
    let before = (writes_to(&env, C1, cc), writes_to(&env, C2, cc));
    let cc2 = cc.to_string();
    env.kubectl_in(
        C2,
        &[
            "annotate",
            "cassandracluster",
            &cc2,
            "-n",
            NAMESPACE,
            "poke=1",
        ],
    )?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = (writes_to(&env, C1, cc), writes_to(&env, C2, cc));
    assert_eq!(
        before,
        after,
        "no write after the rollout settled (site 1, site 2)\n{}",
        tail(&ctl)
    );
    let dropped_events: Vec<_> = env
        .events_of("typo")?
        .into_iter()
        .filter(|(t, reason, _)| t == "Warning" && reason == "FieldsDropped")
        .collect();
    assert_eq!(
        dropped_events.len(),
        1,
        "one Warning Event for the dropped field: {dropped_events:?}"
    );
    assert!(
        dropped_events[0]
            .2
            .contains("spec.topology.dc[0].nodesPerRack"),
        "{dropped_events:?}"
    );
    assert!(!ctl.logs().contains("panicked"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_a_pruned_field_alone_does_not_wait_for_casskop() -> anyhow::Result<()> {
    let Some((env, ctl)) = start_on_real_crd().await? else {
        return Ok(());
    };
    let cc = "cassandra-typo-change";
    env.apply_yaml(&multicasskop(
        "typo-change",
        cc,
        &dc2(json!({"nodesPerRack": 2})),
    ))?;
    settled(&env, &ctl, "typo-change", 1).await?;
    let action_before = env.get_cc(C2, cc)?.expect("created")["status"].clone();
    // Only the pruned field changes: the site stores nothing new, CassKop has nothing to do,
    // and the rollout must not wait for it.
    env.apply_yaml(&multicasskop(
        "typo-change",
        cc,
        &dc2(json!({"nodesPerRack": 3})),
    ))?;
    let mc = settled(&env, &ctl, "typo-change", 2).await?;
    assert_eq!(
        site_status(&mc, C2)["droppedFields"],
        json!(["spec.topology.dc[0].nodesPerRack"])
    );
    let live = env.get_cc(C2, cc)?.expect("still there");
    assert_eq!(
        live["status"]["lastClusterAction"], action_before["lastClusterAction"],
        "CassKop had nothing to do"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_site_crd_refuses_blocks_that_site_with_the_server_message()
-> anyhow::Result<()> {
    let Some((env, ctl)) = start_on_real_crd().await? else {
        return Ok(());
    };
    let cc = "cassandra-refused";
    let bad = json!({"spec": {"nodesPerRacks": "abc",
        "topology": {"dc": [{"name": "dc2", "rack": [{"name": "rack1"}]}]}}});
    env.apply_yaml(&multicasskop("refused", cc, &bad))?;
    let mc = eventually("site 2 Blocked by the refusal", WAIT, || async {
        let o = env.get_mc("refused")?;
        Ok(
            (site_status(&o, C2)["state"] == "Blocked" && site_status(&o, C1)["state"] == "Ready")
                .then_some(o),
        )
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl)))?;
    let message = site_status(&mc, C2)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("site k8s-cluster2 refused the desired CassandraCluster")
            && message.contains("spec.nodesPerRacks: Invalid value")
            && message.contains("must be of type integer")
            && message.contains("set by spec.override.k8s-cluster2.spec.nodesPerRacks"),
        "the site's message gives the server's message, the field and where it was set: {message}"
    );
    assert_eq!(mc["status"]["phase"], "Blocked");
    assert_eq!(
        condition(&mc, "SitesReachable").map(|c| c.0).as_deref(),
        Some("True"),
        "a site that answered is reachable"
    );
    assert!(env.get_cc(C2, cc)?.is_none(), "nothing created at site 2");
    let events = env.events_of("refused")?;
    assert!(
        events
            .iter()
            .any(|(t, r, note)| t == "Warning" && r == "SpecRejected" && note.contains(C2)),
        "{events:?}"
    );

    // Fixed: the site is created and the rollout completes.
    let good = json!({"spec": {"nodesPerRacks": 1,
        "topology": {"dc": [{"name": "dc2", "rack": [{"name": "rack1"}]}]}}});
    env.apply_yaml(&multicasskop("refused", cc, &good))?;
    settled(&env, &ctl, "refused", 2).await?;
    assert_eq!(
        env.get_cc(C2, cc)?.expect("created")["spec"]["nodesPerRacks"],
        1
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_change_and_delete_run_on_the_real_crd() -> anyhow::Result<()> {
    let Some((env, ctl)) = start_on_real_crd().await? else {
        return Ok(());
    };
    let cc = "cassandra-real";
    let mut mc: Value = serde_json::from_str(&multicasskop("real", cc, &dc2(json!({}))))?;
    mc["spec"]["deleteCassandraCluster"] = json!(true);
    env.apply_yaml(&mc.to_string())?;
    settled(&env, &ctl, "real", 1).await?;
    for site in [C1, C2] {
        let live = env.get_cc(site, cc)?.expect("created");
        assert_eq!(live["status"]["phase"], "Running", "{site}");
        assert_eq!(live["spec"]["cassandraImage"], "cassandra:3.11.9", "{site}");
    }
    mc["spec"]["base"]["spec"]["cassandraImage"] = json!("cassandra:3.11.10");
    env.apply_yaml(&mc.to_string())?;
    settled(&env, &ctl, "real", 2).await?;
    for site in [C1, C2] {
        let live = env.get_cc(site, cc)?.expect("still there");
        assert_eq!(
            live["spec"]["cassandraImage"], "cassandra:3.11.10",
            "{site}"
        );
    }
    env.kubectl(&["delete", "multicasskop", "real", "--wait=false"])?;
    eventually(
        "both CassandraClusters and the MultiCasskop gone",
        WAIT,
        || async {
            let gone = env.get_cc(C1, cc)?.is_none() && env.get_cc(C2, cc)?.is_none();
            let mc_gone = env
                .kubectl_raw(C1, &["get", "multicasskop", "real"], None)
                .code
                != 0;
            Ok((gone && mc_gone).then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl)))?;
    Ok(())
}
