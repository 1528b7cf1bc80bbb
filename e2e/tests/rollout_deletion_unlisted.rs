//! Deletion never guesses: a site configured by a ClientConfig counts as gone only once a
//! ClientConfig list shows it gone. While that list fails (here from the controller's start on),
//! a deletion with `deleteCassandraCluster: true` keeps the finalizer and says why; once the list
//! answers, the deletion completes.

use std::time::Duration;

use e2e::audit::running_done;
use e2e::chart::client_config_crd;
use e2e::clientconfigs::{
    apply, client_config, kubeconfig_for, kubeconfig_secret, multicasskop, start_controller_with,
    write_kubeconfig,
};
use e2e::{ControllerProcess, Env, NAMESPACE, condition, controller_log_tail, eventually};
use serde_json::Value;

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";
const WAIT: Duration = Duration::from_secs(240);
const CTL_SA: &str = "multi-casskop";
const MC: &str = "unlisted";
const CC: &str = "cassandra-unlisted";

async fn ready(ctl: &ControllerProcess) -> anyhow::Result<()> {
    eventually("the controller to be ready", WAIT, || async {
        Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(()))
    })
    .await
}

/// Warning Events about the MultiCasskop: their notes.
fn warnings(env: &Env) -> anyhow::Result<Vec<String>> {
    let out = env.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
    let list: Value = serde_json::from_str(&out)?;
    Ok(list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["regarding"]["name"] == MC && e["type"] == "Warning")
        .filter_map(|e| e["note"].as_str().map(str::to_string))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_waits_while_client_configs_cannot_be_listed() -> anyhow::Result<()> {
    let env = Env::start(&[C1, C2]).await?;
    apply(&env, &client_config_crd()?)?;
    // The controller knows only the local site; C2 comes from a ClientConfig.
    let (c1, c2) = (env.sim.cluster(C1), env.sim.cluster(C2));
    let kc = env.dir.path().join("controller-kubeconfig");
    write_kubeconfig(&kc, &[(c1, c1.issue_token(NAMESPACE, CTL_SA, None))])?;
    let site_kc = kubeconfig_for(c2, C2, &c2.issue_token(NAMESPACE, CTL_SA, None));
    apply(&env, &kubeconfig_secret("dc2-kubeconfig", &site_kc))?;
    apply(&env, &client_config(C2, "dc2-kubeconfig", None))?;
    let mut first = start_controller_with(&env, "first", &kc, C1, &[], &[])?;
    ready(&first).await?;
    let mut mc = multicasskop(MC, CC, "cassandra:3.11.9", &[C1, C2], None);
    mc["spec"]["deleteCassandraCluster"] = true.into();
    apply(&env, &mc)?;
    eventually("both sites Running/Done", WAIT, || async {
        let m = env.get_mc(MC)?;
        let mut ok = condition(&m, "Ready").is_some_and(|c| c.0 == "True");
        for s in [C1, C2] {
            ok &= env.get_cc(s, CC)?.is_some_and(|c| running_done(&c));
        }
        Ok(ok.then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&first.logs(), 40)))?;

    // The controller restarts while the ClientConfig list fails, then the MultiCasskop is deleted.
    first.kill();
    env.local().hooks().refuse("clientconfigs", 500);
    let second = start_controller_with(&env, "second", &kc, C1, &[], &[])?;
    ready(&second).await?;
    env.kubectl(&["delete", "multicasskop", MC, "--wait=false"])?;
    let message = eventually("the deletion to say why it waits", WAIT, || async {
        let m = env.get_mc(MC)?;
        let site2 = m["status"]["sites"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == C2)
            .and_then(|s| s["message"].as_str())
            .unwrap_or_default()
            .to_string();
        Ok(
            (site2.contains("cannot be listed") && site2.contains("finalizer stays"))
                .then_some(site2),
        )
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&second.logs(), 40)))?;
    println!("site {C2}: {message}");
    assert!(
        message.contains("ClientConfigs") && message.contains(NAMESPACE) && message.contains("500"),
        "names the ClientConfig source and the failure: {message}"
    );
    let notes = warnings(&env)?;
    assert!(
        notes.iter().any(|n| n.contains(C2)
            && n.contains("ClientConfigs")
            && n.contains("cannot be listed")),
        "a Warning Event says why: {notes:?}"
    );
    // It keeps waiting: nothing deleted, the finalizer kept.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let m = env.get_mc(MC)?;
    assert!(
        m["metadata"]["finalizers"]
            .to_string()
            .contains("multicasskop.db.orange.com/"),
        "the finalizer stays: {}",
        m["metadata"]
    );
    for s in [C1, C2] {
        assert!(
            env.get_cc(s, CC)?.is_some(),
            "the CassandraCluster at {s} is still there"
        );
    }

    // The list answers again: the deletion completes, every CassandraCluster gone.
    env.local().hooks().accept("clientconfigs");
    eventually(
        "the MultiCasskop and its CassandraClusters gone",
        WAIT,
        || async {
            let gone = env
                .kubectl(&[
                    "get",
                    "multicasskop",
                    MC,
                    "--ignore-not-found",
                    "-o",
                    "name",
                ])?
                .trim()
                .is_empty();
            let mut all = gone;
            for s in [C1, C2] {
                all &= env.get_cc(s, CC)?.is_none();
            }
            Ok(all.then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&second.logs(), 40)))?;
    assert!(
        !second.logs().contains("panicked"),
        "the controller panicked"
    );
    Ok(())
}
