//! Sites from k8ssandra ClientConfigs added, rotated, removed and re-added while the controller
//! runs (same process); `spec.siteOrder` proven from the audit log; unknown and duplicate site
//! names reported in the status.

use std::time::Duration;

use e2e::audit::{self, running_done};
use e2e::chart::client_config_crd;
use e2e::clientconfigs::{
    apply, client_config, kubeconfig_for, kubeconfig_secret, multicasskop, start_controller_with,
    write_kubeconfig,
};
use e2e::{ControllerProcess, Env, NAMESPACE, condition, controller_log_tail, eventually};
use serde_json::Value;

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";
const C3: &str = "k8s-cluster3";
const WAIT: Duration = Duration::from_secs(180);

/// The controller's own identity (local and flag remote), and the one in the ClientConfig's Secret.
const CTL_SA: &str = "multi-casskop";
const SITE3_SA: &str = "dc3-site";

/// Env on three clusters with the chart's ClientConfig CRD, and a controller that knows only
/// `-l C1 -r C2` (its kubeconfig has no context for C3: that site can only come from a ClientConfig).
async fn setup(label: &str) -> anyhow::Result<(Env, ControllerProcess)> {
    let env = Env::start(&[C1, C2, C3]).await?;
    apply(&env, &client_config_crd()?)?;
    let kc = env.dir.path().join(format!("{label}-kubeconfig"));
    let (c1, c2) = (env.sim.cluster(C1), env.sim.cluster(C2));
    write_kubeconfig(
        &kc,
        &[
            (c1, c1.issue_token(NAMESPACE, CTL_SA, None)),
            (c2, c2.issue_token(NAMESPACE, CTL_SA, None)),
        ],
    )?;
    let ctl = start_controller_with(&env, label, &kc, C1, &[C2], &[])?;
    eventually("the controller to be ready", WAIT, || async {
        Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(()))
    })
    .await?;
    Ok((env, ctl))
}

/// Apply the Secret (key `kubeconfig`, context `context`, a token of [`SITE3_SA`] on C3) and
/// the ClientConfig for site C3. Returns the token (to revoke it later).
fn add_site3(env: &Env, context: Option<&str>) -> anyhow::Result<String> {
    let c3 = env.sim.cluster(C3);
    let token = c3.issue_token(NAMESPACE, SITE3_SA, None);
    let kc = kubeconfig_for(c3, context.unwrap_or(C3), &token);
    apply(env, &kubeconfig_secret("dc3-kubeconfig", &kc))?;
    apply(env, &client_config(C3, "dc3-kubeconfig", context))?;
    Ok(token)
}

/// The seq after every request recorded so far (requests still being handled included, so
/// none of them is counted as the next step's).
async fn next_seq(env: &Env) -> u64 {
    env.sim
        .settled_audit()
        .await
        .last()
        .map(|e| e.seq + 1)
        .unwrap_or(0)
}

/// Wait until MultiCasskop `mc` is Ready for its current generation with every site of `sites`
/// Running/Done on `image`.
async fn wait_rolled_out(
    env: &Env,
    ctl: &ControllerProcess,
    mc: &str,
    cc: &str,
    image: &str,
    sites: &[&str],
) -> anyhow::Result<Value> {
    eventually(
        &format!("{mc}: {image} Running/Done at {sites:?}"),
        WAIT,
        || async {
            let m = env.get_mc(mc)?;
            let mut ok = m["status"]["observedGeneration"] == m["metadata"]["generation"]
                && condition(&m, "Ready").is_some_and(|c| c.0 == "True")
                && m["status"]["readySites"] == format!("{}/{}", sites.len(), sites.len());
            for s in sites {
                ok &= env
                    .get_cc(s, cc)?
                    .is_some_and(|c| c["spec"]["cassandraImage"] == image && running_done(&c));
            }
            Ok(ok.then_some(m))
        },
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\ncontroller log:\n{}",
            controller_log_tail(&ctl.logs(), 40)
        )
    })
}

fn users() -> [String; 2] {
    [Env::sa_user(CTL_SA), Env::sa_user(SITE3_SA)]
}

/// The rollout of `cc` since seq `from`, once every request already made is recorded (the
/// write that made an object visible may not be in the audit log yet when it is seen).
async fn rollout_since(env: &Env, cc: &str, from: u64) -> audit::RolloutReport {
    let users = users();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let r = audit::analyze(&env.sim.settled_audit().await, &refs, cc, from);
    println!("steps since seq {from}: {:#?}", r.steps);
    r
}

fn site_status<'a>(mc: &'a Value, site: &str) -> Option<&'a Value> {
    mc["status"]["sites"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == site)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_config_site_added_rotated_removed_and_readded_live() -> anyhow::Result<()> {
    const MC: &str = "federation";
    const CC: &str = "cassandra-fed";
    let (env, mut ctl) = setup("controller").await?;
    let pid = ctl.pid();

    apply(
        &env,
        &multicasskop(MC, CC, "cassandra:3.11.9", &[C1, C2], None),
    )?;
    wait_rolled_out(&env, &ctl, MC, CC, "cassandra:3.11.9", &[C1, C2]).await?;
    assert!(env.get_cc(C3, CC)?.is_none());

    // 1. A Secret and a ClientConfig for a third cluster, then the site in the override.
    let old_token = add_site3(&env, Some("dc3-context"))?;
    let from = next_seq(&env).await;
    apply(
        &env,
        &multicasskop(MC, CC, "cassandra:3.11.9", &[C1, C2, C3], None),
    )?;
    wait_rolled_out(&env, &ctl, MC, CC, "cassandra:3.11.9", &[C1, C2, C3]).await?;
    let r = rollout_since(&env, CC, from).await;
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.first_write_order, [C3], "only the new site is written");
    let site3_writes = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| {
            e.seq >= from
                && e.cluster == C3
                && e.name == CC
                && matches!(e.verb.as_str(), "create" | "patch")
        })
        .map(|e| (e.user, e.code))
        .collect::<Vec<_>>();
    assert!(
        site3_writes
            .iter()
            .any(|(u, c)| *u == Env::sa_user(SITE3_SA) && (200..300).contains(c)),
        "site {C3} is written with the ClientConfig's credentials: {site3_writes:?}"
    );
    assert_eq!(ctl.pid(), pid);
    assert!(ctl.exited().is_none(), "the controller must not restart");

    // 2. Rotation: a new token in the Secret, the old one revoked; the site keeps working.
    let c3 = env.sim.cluster(C3).clone();
    let new_token = c3.issue_token(NAMESPACE, SITE3_SA, None);
    apply(
        &env,
        &kubeconfig_secret(
            "dc3-kubeconfig",
            &kubeconfig_for(&c3, "dc3-context", &new_token),
        ),
    )?;
    c3.faults().revoke_token(&old_token);
    let from = next_seq(&env).await;
    apply(
        &env,
        &multicasskop(MC, CC, "cassandra:3.11.10", &[C1, C2, C3], None),
    )?;
    wait_rolled_out(&env, &ctl, MC, CC, "cassandra:3.11.10", &[C1, C2, C3]).await?;
    let r = rollout_since(&env, CC, from).await;
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.first_write_order, [C1, C2, C3]);
    assert!(ctl.exited().is_none(), "the controller must not restart");
    assert_eq!(ctl.pid(), pid);

    // 3. The ClientConfig deleted: the site is reported as no longer configured, nothing is
    // deleted, the MultiCasskop stays valid.
    let from_removal = next_seq(&env).await;
    env.kubectl(&["delete", "clientconfigs.config.k8ssandra.io", C3])?;
    let mc = eventually("site 3 reported as no longer configured", WAIT, || async {
        let m = env.get_mc(MC)?;
        let reachable = condition(&m, "SitesReachable");
        let msg = site_status(&m, C3)
            .and_then(|s| s["message"].as_str())
            .unwrap_or_default()
            .to_string();
        Ok(
            (reachable.is_some_and(|c| c.0 == "False" && c.2.contains(C3))
                && msg.contains("no longer configured"))
            .then_some(m),
        )
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\ncontroller log:\n{}",
            controller_log_tail(&ctl.logs(), 40)
        )
    })?;
    println!(
        "after deleting the ClientConfig: phase {}, conditions {}",
        mc["status"]["phase"], mc["status"]["conditions"]
    );
    let (valid, _, valid_msg) = condition(&mc, "Valid").expect("Valid condition");
    assert_eq!(valid, "True", "{valid_msg}");
    let (_, reason, msg) = condition(&mc, "SitesReachable").unwrap();
    assert_eq!(reason, "SitesNotConfigured", "{msg}");
    assert_ne!(
        condition(&mc, "Ready").map(|c| c.0).as_deref(),
        Some("True")
    );
    let cc3 = env
        .get_cc(C3, CC)?
        .expect("the CassandraCluster at site 3 stays");
    assert_eq!(cc3["spec"]["cassandraImage"], "cassandra:3.11.10");

    // An edit made meanwhile, then the ClientConfig re-created: the rollout resumes, in order.
    let from = next_seq(&env).await;
    apply(
        &env,
        &multicasskop(MC, CC, "cassandra:3.11.11", &[C1, C2, C3], None),
    )?;
    add_site3(&env, Some("dc3-context"))?;
    wait_rolled_out(&env, &ctl, MC, CC, "cassandra:3.11.11", &[C1, C2, C3]).await?;
    let r = rollout_since(&env, CC, from).await;
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.first_write_order, [C1, C2, C3]);
    let deletes: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| {
            e.seq >= from_removal && e.resource == "cassandraclusters" && e.verb == "delete"
        })
        .map(|e| format!("{} {} by {}", e.cluster, e.name, e.user))
        .collect();
    assert!(deletes.is_empty(), "nothing is deleted: {deletes:?}");
    assert!(ctl.exited().is_none(), "the controller must not restart");
    assert_eq!(ctl.pid(), pid);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_order_chooses_the_rollout_order_and_unknown_names_are_refused() -> anyhow::Result<()>
{
    const MC: &str = "ordered";
    const CC: &str = "cassandra-ordered";
    let (env, ctl) = setup("controller").await?;
    // Default order: C1 (local), C2 (flag), C3 (ClientConfig, context named after it).
    add_site3(&env, None)?;

    // 4. siteOrder: C3 first, then C1, then C2.
    let from = next_seq(&env).await;
    apply(
        &env,
        &multicasskop(
            MC,
            CC,
            "cassandra:3.11.9",
            &[C1, C2, C3],
            Some(&[C3, C1, C2]),
        ),
    )?;
    wait_rolled_out(&env, &ctl, MC, CC, "cassandra:3.11.9", &[C1, C2, C3]).await?;
    let r = rollout_since(&env, CC, from).await;
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(
        r.first_write_order,
        [C3, C1, C2],
        "creation follows spec.siteOrder"
    );
    assert_eq!(r.handoffs_us.len(), 2);

    // Changing siteOrder with an edit: the edit follows the new order.
    let from = next_seq(&env).await;
    apply(
        &env,
        &multicasskop(
            MC,
            CC,
            "cassandra:3.11.10",
            &[C1, C2, C3],
            Some(&[C2, C3, C1]),
        ),
    )?;
    wait_rolled_out(&env, &ctl, MC, CC, "cassandra:3.11.10", &[C1, C2, C3]).await?;
    let r = rollout_since(&env, CC, from).await;
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(
        r.first_write_order,
        [C2, C3, C1],
        "the edit follows the new siteOrder"
    );

    // An unknown name in siteOrder: Valid=False naming it, nothing created.
    let from = next_seq(&env).await;
    apply(
        &env,
        &multicasskop(
            "typo",
            "cassandra-typo",
            "cassandra:3.11.9",
            &[C1],
            Some(&[C1, "k8s-cluster9"]),
        ),
    )?;
    let mc = eventually("the typo MultiCasskop to be invalid", WAIT, || async {
        let m = env.get_mc("typo")?;
        Ok(condition(&m, "Valid")
            .is_some_and(|c| c.0 == "False")
            .then_some(m))
    })
    .await?;
    let (_, reason, msg) = condition(&mc, "Valid").unwrap();
    println!("Valid=False {reason}: {msg}");
    assert!(
        msg.contains("spec.siteOrder")
            && msg.contains("k8s-cluster9")
            && msg.contains("not a configured cluster"),
        "{msg}"
    );
    for c in [C1, C2, C3] {
        assert!(
            msg.contains(c),
            "the message lists the configured sites: {msg}"
        );
    }
    assert_eq!(mc["status"]["phase"], "Invalid");
    let events = env.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
    let events: Value = serde_json::from_str(&events)?;
    assert!(
        events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["reason"] == "InvalidSpec" && e["regarding"]["name"] == "typo"),
        "an InvalidSpec Event for typo"
    );
    let writes: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= from && e.name == "cassandra-typo")
        .map(|e| format!("{} {} {}", e.cluster, e.verb, e.code))
        .collect();
    assert!(
        writes.is_empty(),
        "nothing done for the invalid MultiCasskop: {writes:?}"
    );

    // A ClientConfig named like the --remote site: the name is defined twice, every
    // MultiCasskop using it says so, and nothing is done there until it is resolved.
    apply(&env, &client_config(C2, "dc3-kubeconfig", None))?;
    let mc = eventually("the duplicate site name reported", WAIT, || async {
        let m = env.get_mc(MC)?;
        Ok(condition(&m, "SitesReachable")
            .is_some_and(|c| c.0 == "False" && c.2.contains("defined twice"))
            .then_some(m))
    })
    .await?;
    let (_, _, msg) = condition(&mc, "SitesReachable").unwrap();
    assert!(msg.contains(C2) && msg.contains("--remote"), "{msg}");
    env.kubectl(&["delete", "clientconfigs.config.k8ssandra.io", C2])?;
    wait_rolled_out(&env, &ctl, MC, CC, "cassandra:3.11.10", &[C1, C2, C3]).await?;
    Ok(())
}
