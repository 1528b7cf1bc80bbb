//! Two replicas with leader election: only the leader writes, and killing
//! it hands over to the other, which finishes the rollout in order.

use std::time::Duration;

use e2e::audit;
use e2e::{ControllerProcess, Env, NAMESPACE, eventually, sample};

fn replica(env: &Env, label: &str) -> anyhow::Result<ControllerProcess> {
    let kubeconfig = env.dir.path().join(format!("kubeconfig-{label}"));
    env.write_sa_kubeconfig(&kubeconfig, label)?;
    let args: Vec<String> = vec![
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--context".into(),
        "k8s-cluster1".into(),
        "-lk8s-cluster1".into(),
        "-rk8s-cluster2,k8s-cluster3".into(),
        "--namespace".into(),
        NAMESPACE.into(),
        "--imports-dir".into(),
        env.dir.path().join("none").display().to_string(),
        "--leader-elect".into(),
    ];
    ControllerProcess::spawn(env.dir.path(), label, &args, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_killing_it_hands_over() -> anyhow::Result<()> {
    let env = Env::start(&["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"]).await?;
    let mut a = replica(&env, "replica-a")?;
    eventually("replica-a to lead", Duration::from_secs(60), || async {
        Ok(a.logs().contains("became leader").then_some(()))
    })
    .await?;
    let mut b = replica(&env, "replica-b")?;
    eventually("replica-b to stand by", Duration::from_secs(60), || async {
        Ok(b.logs().contains("standing by").then_some(()))
    })
    .await?;
    // Both are ready (the standby only needs the local cluster).
    for r in [&a, &b] {
        eventually("readiness", Duration::from_secs(60), || async {
            Ok(matches!(r.http_get("/readyz"), Ok((200, _))).then_some(()))
        })
        .await?;
    }

    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?;
    eventually(
        "the rollout to reach site 2",
        Duration::from_secs(240),
        || async { Ok(env.get_cc("k8s-cluster2", "cassandra-3dc")?.map(|_| ())) },
    )
    .await?;
    a.kill();
    // Let the servers finish any request A had already sent before it died.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kill_seq = env.sim.audit().last().map(|e| e.seq).unwrap_or(0);

    eventually(
        "replica-b to take over",
        Duration::from_secs(90),
        || async { Ok(b.logs().contains("became leader").then_some(())) },
    )
    .await?;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "multicasskop/cassandra-3dc",
        "--timeout=240s",
    ])
    .map_err(|e| anyhow::anyhow!("{e}\n{}", b.logs()))?;

    let (ua, ub) = (Env::sa_user("replica-a"), Env::sa_user("replica-b"));
    let entries = env.sim.audit();
    let writes = |user: &str, before: bool| {
        entries
            .iter()
            .filter(|e| e.user == user && (e.seq <= kill_seq) == before)
            .filter(|e| matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete"))
            .filter(|e| e.resource == "cassandraclusters" || e.resource == "multicasskops")
            .count()
    };
    println!(
        "writes before the kill: a={} b={}; after: a={} b={}",
        writes(&ua, true),
        writes(&ub, true),
        writes(&ua, false),
        writes(&ub, false)
    );
    assert!(writes(&ua, true) > 0, "the leader wrote");
    assert_eq!(
        writes(&ub, true),
        0,
        "the standby never wrote while the leader lived"
    );
    assert_eq!(
        writes(&ua, false),
        0,
        "the killed leader wrote nothing after"
    );
    assert!(
        writes(&ub, false) > 0,
        "the new leader finished the rollout"
    );
    let r = audit::analyze(&entries, &[ua.as_str(), ub.as_str()], "cassandra-3dc", 0);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(
        r.first_write_order,
        ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"]
    );
    let lease = env.kubectl(&[
        "get",
        "lease",
        "multi-casskop",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    println!("lease holder: {lease}");
    assert!(!lease.is_empty());
    // SIGTERM: a clean stop that hands the lease back at once.
    assert_eq!(b.terminate(), Some(0), "exit code on SIGTERM");
    assert!(
        b.logs().contains("released Lease"),
        "{}",
        e2e::controller_log_tail(&b.logs(), 20)
    );
    let holder = env.kubectl(&[
        "get",
        "lease",
        "multi-casskop",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    assert!(holder.is_empty(), "lease released, holder now {holder:?}");
    Ok(())
}
