//! Split brain: the leader's connection to the control-plane API freezes while its remote sites
//! stay reachable; a second replica takes the Lease over, and no write of the old leader lands,
//! at any site, after the new leader's first write.

use std::time::{Duration, Instant};

use e2e::proxy::FreezableProxy;
use e2e::{ControllerProcess, Env, EnvOptions, NAMESPACE, controller_log_tail, eventually, sample};
use kubesim::AuditEntry;
use kubesim::casskop::CasskopOptions;

const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// A replica whose kubeconfig reaches the local cluster at `local_url` (a proxy, or the
/// cluster itself) and every remote directly, as service account `label`.
fn replica(env: &Env, label: &str, local_url: &str) -> anyhow::Result<ControllerProcess> {
    let kubeconfig = env.dir.path().join(format!("kubeconfig-{label}"));
    env.write_sa_kubeconfig_via(&kubeconfig, label, local_url)?;
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

fn is_write_by(e: &AuditEntry, user: &str) -> bool {
    e.user == user && WRITE_VERBS.contains(&e.verb.as_str())
}

/// The writes of `old` that landed after the first write of `new`, one line each.
fn late_writes(entries: &[AuditEntry], old: &str, new: &str) -> Vec<String> {
    let Some(first_of_new) = entries.iter().find(|e| is_write_by(e, new)) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| is_write_by(e, old) && e.seq > first_of_new.seq)
        .map(|e| {
            format!(
                "seq {} (new leader's first: {}): {} {} {}/{} at {} ({})",
                e.seq, first_of_new.seq, e.verb, e.resource, e.namespace, e.name, e.cluster, e.code
            )
        })
        .collect()
}

/// For a failed wait: what the audit log says about both leaders so far.
fn split_brain_report(env: &Env) -> String {
    let late = late_writes(
        &env.sim.audit(),
        &Env::sa_user("replica-a"),
        &Env::sa_user("replica-b"),
    );
    format!(
        "writes of the old leader after the new leader's first: {}\n{}",
        late.len(),
        late.join("\n")
    )
}

fn image_at(env: &Env, site: &str) -> anyhow::Result<Option<String>> {
    Ok(env
        .get_cc(site, "cassandra-3dc")?
        .and_then(|cc| cc["spec"]["cassandraImage"].as_str().map(str::to_string)))
}

/// The exit code of `p` once it exited (bounded wait).
async fn exit_of(p: &mut ControllerProcess, timeout: Duration) -> anyhow::Result<Option<i32>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(code) = p.exited() {
            return Ok(code);
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "still running after {timeout:?}:\n{}",
                controller_log_tail(&p.logs(), 30)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_local_api_writes_nothing_after_the_new_leader_starts()
-> anyhow::Result<()> {
    // CassKop takes 14 s per action: site 2, written just before the freeze, settles after the
    // new leader took over, the moment a stale leader would write site 3 with the old spec.
    let opts = EnvOptions {
        casskop: CasskopOptions {
            ready_after: Duration::from_secs(14),
            react_after: Duration::from_secs(1),
        },
        ..EnvOptions::default()
    };
    let env = Env::start_with(&["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"], opts).await?;
    let local = env.local().url();
    let target = local.trim_start_matches("https://").parse()?;
    let proxy = FreezableProxy::start(target).await?;

    let mut a = replica(&env, "replica-a", &proxy.https_url())?;
    eventually("replica-a to lead", Duration::from_secs(60), || async {
        Ok(a.logs().contains("became leader").then_some(()))
    })
    .await?;
    let mut b = replica(&env, "replica-b", &local)?;
    eventually("replica-b to stand by", Duration::from_secs(60), || async {
        Ok(b.logs().contains("standing by").then_some(()))
    })
    .await?;

    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?;
    eventually(
        "replica-a to write site 2",
        Duration::from_secs(240),
        || async { Ok(env.get_cc("k8s-cluster2", "cassandra-3dc")?.map(|_| ())) },
    )
    .await?;
    proxy.freeze();
    let frozen_at = Instant::now();
    let freeze_seq = env.sim.audit().last().map_or(0, |e| e.seq);

    eventually(
        "replica-b to take over",
        Duration::from_secs(120),
        || async { Ok(b.logs().contains("became leader").then_some(())) },
    )
    .await?;
    let took_over = frozen_at.elapsed();
    // The user edits the MultiCasskop once the new leader holds the Lease.
    env.kubectl(&[
        "patch",
        "multicasskop",
        "cassandra-3dc",
        "--type=merge",
        "-p",
        r#"{"spec":{"base":{"spec":{"cassandraImage":"cassandra:3.11.10"}}}}"#,
    ])?;
    for site in env.names() {
        eventually(
            &format!("the edit to reach {site}"),
            Duration::from_secs(240),
            || async {
                Ok((image_at(&env, site)?.as_deref() == Some("cassandra:3.11.10")).then_some(()))
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", split_brain_report(&env)))?;
    }
    // Bounded; checked after the audit log, which says more when this fails.
    let exit = exit_of(&mut a, Duration::from_secs(60)).await;
    eventually("Ready after the edit", Duration::from_secs(240), || async {
        let mc = env.get_mc("cassandra-3dc")?;
        Ok((e2e::condition(&mc, "Ready").map(|c| c.0).as_deref() == Some("True")).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", split_brain_report(&env)))?;

    let (ua, ub) = (Env::sa_user("replica-a"), Env::sa_user("replica-b"));
    let entries = env.sim.audit();
    let first_of_b = entries
        .iter()
        .find(|e| is_write_by(e, &ub))
        .expect("the new leader wrote");
    let late = late_writes(&entries, &ua, &ub);
    let a_writes: Vec<&AuditEntry> = entries.iter().filter(|e| is_write_by(e, &ua)).collect();
    let a_remote_after_freeze = a_writes
        .iter()
        .filter(|e| e.seq > freeze_seq && e.cluster != env.names()[0])
        .count();
    let last_of_a = a_writes.last().map_or(0, |e| e.time_us);
    println!(
        "replica-b leads {took_over:?} after the freeze; replica-a's last write landed {} ms before replica-b's first ({} of its writes at remote sites after the freeze); replica-a exit: {exit:?}",
        (first_of_b.time_us - last_of_a) / 1000,
        a_remote_after_freeze,
    );
    let a_logs = a.logs();
    for line in a_logs.lines().filter(|l| {
        l.contains("write refused")
            || l.contains("write abandoned")
            || l.contains("lost leadership")
    }) {
        println!("replica-a: {line}");
    }
    assert!(
        a_writes.iter().any(|e| e.cluster == "k8s-cluster2"),
        "the old leader wrote to a remote site before the freeze"
    );
    assert!(
        late.is_empty(),
        "writes of the old leader landed after the new leader's first write:\n{}",
        late.join("\n")
    );
    assert_eq!(exit?, Some(1), "the old leader exits 1");
    assert!(
        a_logs.contains("lost leadership")
            && a_logs.contains("not renewed within the renew deadline"),
        "{}",
        controller_log_tail(&a_logs, 30)
    );
    drop(proxy);
    assert_eq!(b.terminate(), Some(0));
    Ok(())
}
