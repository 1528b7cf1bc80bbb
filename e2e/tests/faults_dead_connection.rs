//! A watch whose connection died without a close resumes on a new connection within about a minute.
//!
//! A partition that drops packets, or a NAT entry that expired, leaves the controller's watch
//! connections open and silent while the API server itself is fine: nothing ends the watch and
//! no error comes. kube's watcher treats a watch as dead only after its server-side timeout plus
//! a margin, so the controller asks for short watches (`WATCH_TIMEOUT_SECS`): a MultiCasskop
//! created after such a cut is acted on within about a minute, not after five.
use std::time::{Duration, Instant};

use e2e::proxy::FreezableProxy;
use e2e::{ControllerProcess, Env, NAMESPACE, controller_log_tail, eventually, sample};

/// The controller with the local cluster (also site 1) reached through `local_url`, the other
/// site directly.
fn controller(env: &Env, local_url: &str) -> anyhow::Result<ControllerProcess> {
    let kubeconfig = env.dir.path().join("kubeconfig-proxied");
    env.write_sa_kubeconfig_via(&kubeconfig, "multi-casskop", local_url)?;
    let args: Vec<String> = vec![
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--context".into(),
        "k8s-cluster1".into(),
        "-lk8s-cluster1".into(),
        "-rk8s-cluster2".into(),
        "--namespace".into(),
        NAMESPACE.into(),
        "--imports-dir".into(),
        env.dir.path().join("none").display().to_string(),
    ];
    ControllerProcess::spawn(env.dir.path(), "dead-connection", &args, &[])
}

/// The sample MultiCasskop under another name, creating CassandraCluster `cc`.
fn renamed_sample(mc: &str, cc: &str) -> anyhow::Result<String> {
    Ok(sample("multi-casskop.yaml")?
        .replace("name: multi-casskop-demo", &format!("name: {mc}"))
        .replace("cassandra-demo", cc))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multicasskop_created_after_the_watch_connection_silently_died_is_still_acted_on()
-> anyhow::Result<()> {
    let env = Env::start(&["k8s-cluster1", "k8s-cluster2"]).await?;
    let target = env.local().url().trim_start_matches("https://").parse()?;
    let proxy = FreezableProxy::start(target).await?;
    let mut ctl = controller(&env, &proxy.https_url())?;
    let fail = |e: anyhow::Error| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 40));

    env.apply_yaml(&renamed_sample("before-cut", "cassandra-before")?)?;
    eventually(
        "the first one at both sites",
        Duration::from_secs(120),
        || async { Ok(env.get_cc("k8s-cluster2", "cassandra-before")?.map(drop)) },
    )
    .await
    .map_err(fail)?;

    // Every connection of the controller to the local API server goes silent for good (its
    // watch of MultiCasskops included); new connections work, as the server is fine.
    proxy.kill_open_connections_silently();
    let cut = Instant::now();
    env.apply_yaml(&renamed_sample("after-cut", "cassandra-after")?)?;
    // kube's default would notice the dead watch after about 295 s; short watches end within
    // 65 s and the next one runs on a new connection. The bound leaves room for a loaded machine.
    eventually(
        "the MultiCasskop created after the cut to be acted on",
        Duration::from_secs(180),
        || async { Ok(env.get_cc("k8s-cluster1", "cassandra-after")?.map(drop)) },
    )
    .await
    .map_err(fail)?;
    println!(
        "acted on {:.1} s after the connections died",
        cut.elapsed().as_secs_f64()
    );
    assert!(ctl.exited().is_none(), "the controller kept running");
    Ok(())
}
