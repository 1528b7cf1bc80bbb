//! Fault suite: a remote's token revoked mid-rollout of many MultiCasskops (its
//! credentials come from a Secret in the local cluster), then the Secret rotated to a new token.
//! Nothing is done out of order while the site refuses us, the status says which site and why,
//! the new token is used without a restart, nothing deleted or created twice, all converges.

use std::time::Duration;

use base64::Engine;
use e2e::benchmark::{CONTROLLER_SA, mc_api, spawn_controller, wait_readyz};
use e2e::faults::{assert_no_panic, check_invariants, create_fleet, wait_converged};
use e2e::{Env, EnvOptions, NAMESPACE, eventually};
use kubesim::casskop::CasskopOptions;
use serde_json::json;

const SITES: [&str; 3] = ["site1", "site2", "site3"];
const REVOKED: &str = "site2";

/// The Secret holding `site`'s kubeconfig (one context named after the site) with `token`.
fn credential_secret(env: &Env, site: &str, token: &str) -> String {
    let c = env.sim.cluster(site);
    let kubeconfig =
        kubesim::kubeconfig::render(&[(site.to_string(), c.url(), c.ca_pem(), token.to_string())]);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": site, "namespace": NAMESPACE},
        "data": {"config": base64::engine::general_purpose::STANDARD.encode(kubeconfig)}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_remote_token_then_rotated_secret_loses_nothing_without_restart()
-> anyhow::Result<()> {
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
    // Remotes authenticate with Secrets (their own service accounts, so the audit log tells
    // them apart); the kubeconfig contexts of the same names are only the fallback.
    let remote_sa = |site: &str| format!("remote-{site}");
    let old = env
        .sim
        .cluster(REVOKED)
        .issue_token(NAMESPACE, &remote_sa(REVOKED), None);
    env.apply_yaml(&credential_secret(&env, REVOKED, &old))?;
    let t3 = env
        .sim
        .cluster("site3")
        .issue_token(NAMESPACE, &remote_sa("site3"), None);
    env.apply_yaml(&credential_secret(&env, "site3", &t3))?;

    let mut ctl = spawn_controller(&env, "controller", "Debug", &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let remote_user = Env::sa_user(&remote_sa(REVOKED));
    let mut expected = create_fleet(
        &api,
        (0..8).map(|i| format!("token-{i}")),
        &sites,
        "cassandra:3.11.9",
        1,
    )
    .await?;

    // Mid-rollout: once site2 has been written with the Secret's token, revoke it.
    eventually(
        "a first write at site2 with the Secret's token",
        Duration::from_secs(120),
        || async {
            Ok(env
                .sim
                .cluster(REVOKED)
                .audit()
                .iter()
                .any(|e| {
                    e.user == remote_user
                        && e.resource == "cassandraclusters"
                        && matches!(e.verb.as_str(), "create" | "patch")
                        && e.code < 300
                })
                .then_some(()))
        },
    )
    .await?;
    env.sim.cluster(REVOKED).faults().revoke_token(&old);
    println!("token of {REVOKED} revoked");
    // Open watches outlive a revoked token (as on a real API server), and the creations may all
    // have reached site2 already: a change makes site2 needed again.
    for (name, image) in &mut expected {
        *image = "cassandra:3.11.10".into();
        e2e::faults::set_image(&env, name, image).await?;
    }
    let refused = eventually(
        "a MultiCasskop status naming site2 as refusing us",
        Duration::from_secs(90),
        || async {
            let list = api.list(&Default::default()).await?;
            Ok(list.items.into_iter().find_map(|o| {
                let v = serde_json::to_value(&o).ok()?;
                let (status, _, message) = e2e::condition(&v, "SitesReachable")?;
                let blocked_here =
                    v["status"]["phase"] == "Blocked" && v["status"]["currentSite"] == REVOKED;
                ((status == "False" && message.contains(REVOKED)) || blocked_here)
                    .then(|| format!("{}: {}", v["status"]["phase"], v["status"]["conditions"]))
            }))
        },
    )
    .await;
    let refused = match refused {
        Ok(r) => r,
        Err(e) => {
            let problems = e2e::faults::convergence_problems(&env, &expected).await?;
            let casskop_writes: Vec<String> = env
                .sim
                .cluster(REVOKED)
                .audit()
                .iter()
                .filter(|e| e.user == e2e::audit::CASSKOP_USER && e.resource == "cassandraclusters")
                .map(|e| {
                    format!(
                        "{} {} {} {}",
                        e.seq,
                        e.verb,
                        e.name,
                        e.object
                            .as_ref()
                            .map(|o| o["status"]["phase"].to_string())
                            .unwrap_or_default()
                    )
                })
                .collect();
            anyhow::bail!(
                "{e}\nstate: {problems:#?}\nCassKop writes at {REVOKED}: {casskop_writes:#?}\n{}",
                e2e::faults::failure_log(&ctl, "tokens")
            );
        }
    };
    println!("status while refused: {refused}");
    let refusals = env
        .sim
        .cluster(REVOKED)
        .audit()
        .iter()
        .filter(|e| e.code == 401)
        .count();
    println!("{refusals} requests refused with 401 at {REVOKED}");

    // Rotate: a new token in the same Secret; the controller picks it up without a restart.
    let rotated_at = env.sim.audit().last().map(|e| e.seq).unwrap_or(0);
    let new = env
        .sim
        .cluster(REVOKED)
        .issue_token(NAMESPACE, &remote_sa(REVOKED), None);
    env.apply_yaml(&credential_secret(&env, REVOKED, &new))?;
    wait_converged(&env, &expected, Duration::from_secs(300))
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::faults::failure_log(&ctl, "tokens")))?;
    assert!(ctl.exited().is_none(), "the controller was not restarted");
    assert_no_panic(&ctl.logs(), "controller");
    assert!(
        env.sim.audit().iter().any(|e| e.seq > rotated_at
            && e.cluster == REVOKED
            && e.user == remote_user
            && (200..300).contains(&e.code)),
        "site2 reached with the rotated Secret after the rotation"
    );
    let controller_user = Env::sa_user(CONTROLLER_SA);
    let site3_user = Env::sa_user(&remote_sa("site3"));
    let names: Vec<String> = expected.keys().cloned().collect();
    let r = check_invariants(
        &env,
        &names,
        &[
            controller_user.as_str(),
            remote_user.as_str(),
            site3_user.as_str(),
        ],
        false,
    );
    println!(
        "{} controller writes, {} creates, {} handoffs",
        r.controller_writes, r.creates, r.handoffs
    );
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(r.creates, 8 * 3, "one create per resource and site");
    Ok(())
}
