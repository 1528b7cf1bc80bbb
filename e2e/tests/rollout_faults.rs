//! Failure handling of a rollout: deletion both ways, a remote outage mid-rollout, credential rotation
//! without restart, invalid MultiCasskops and broken credential Secrets. Each ends in a clear
//! status condition and Event, the controller keeps serving the others, nothing is deleted
//! unless deleteCassandraCluster is true.

use std::time::Duration;

use base64::Engine;
use e2e::audit::{self, StepKind};
use e2e::{ControllerProcess, Env, NAMESPACE, condition, eventually, sample};
use serde_json::{Value, json};

const SITES: [&str; 3] = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];
const LONG: Duration = Duration::from_secs(240);

fn tail(log: &str) -> String {
    e2e::controller_log_tail(log, 80)
}

async fn ready(ctl: &ControllerProcess) -> anyhow::Result<()> {
    eventually(
        "the controller to be ready",
        Duration::from_secs(60),
        || async { Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(())) },
    )
    .await
}

async fn wait_ready(env: &Env, ctl: &ControllerProcess, mc: &str) -> anyhow::Result<()> {
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("multicasskop/{mc}"),
        "--timeout=240s",
    ])
    .map_err(|e| anyhow::anyhow!("{e}\ncontroller log:\n{}", tail(&ctl.logs())))?;
    Ok(())
}

fn two_site_mc(name: &str, cc: &str, sites: &[&str]) -> String {
    let overrides: serde_json::Map<String, Value> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                s.to_string(),
                json!({"spec": {"topology": {"dc": [{"name": format!("dc{}", i + 1), "rack": [{"name": "rack1"}]}]}}}),
            )
        })
        .collect();
    json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": {"name": name},
        "spec": {
            "base": {
                "apiVersion": "db.orange.com/v2",
                "kind": "CassandraCluster",
                "metadata": {"name": cc},
                "spec": {"cassandraImage": "cassandra:3.11.9", "nodesPerRacks": 1}
            },
            "override": overrides
        }
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_removes_clusters_in_reverse_order_only_when_asked() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    env.apply_yaml(&sample("multi-casskop-delete.yaml")?)?; // cassandra-ephemeral, 2 sites
    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?; // cassandra-3dc, 3 sites, no delete
    wait_ready(&env, &ctl, "cassandra-ephemeral").await?;
    wait_ready(&env, &ctl, "cassandra-3dc").await?;
    let eph = env.get_mc("cassandra-ephemeral")?;
    assert!(
        eph["metadata"]["finalizers"]
            .to_string()
            .contains("multicasskop.db.orange.com/"),
        "finalizer on a deleteCassandraCluster MultiCasskop: {}",
        eph["metadata"]
    );
    let keep = env.get_mc("cassandra-3dc")?;
    assert!(
        keep["metadata"]["finalizers"].is_null(),
        "{}",
        keep["metadata"]
    );

    // deleteCassandraCluster: true -> every site's CassandraCluster goes, last site first.
    env.kubectl(&[
        "delete",
        "multicasskop",
        "cassandra-ephemeral",
        "--wait=false",
    ])?;
    eventually("cassandra-ephemeral to be gone", LONG, || async {
        let out = env.kubectl(&["get", "multicasskops", "-o", "name"])?;
        Ok((!out.contains("cassandra-ephemeral")).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
    for site in ["k8s-cluster1", "k8s-cluster2"] {
        assert!(
            env.get_cc(site, "cassandra-ephemeral")?.is_none(),
            "{site} still has it"
        );
    }
    let user = Env::sa_user("multi-casskop");
    let r = audit::analyze(&env.sim.audit(), &[user.as_str()], "cassandra-ephemeral", 0);
    let deletes: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Delete)
        .map(|s| s.site.as_str())
        .collect();
    println!("deletes: {deletes:?}");
    assert_eq!(
        deletes.first(),
        Some(&"k8s-cluster2"),
        "last site deleted first"
    );
    assert!(deletes.contains(&"k8s-cluster1"));
    let events = env.events_of("cassandra-ephemeral")?;
    println!("events: {events:#?}");
    assert!(events.iter().any(|e| e.1 == "Deleting"), "{events:?}");

    // Absent deleteCassandraCluster -> the MultiCasskop goes at once, the clusters stay.
    env.kubectl(&["delete", "multicasskop", "cassandra-3dc", "--timeout=60s"])?;
    for site in SITES {
        assert!(
            env.get_cc(site, "cassandra-3dc")?.is_some(),
            "{site} lost its CassandraCluster"
        );
    }
    let r = audit::analyze(&env.sim.audit(), &[user.as_str()], "cassandra-3dc", 0);
    assert!(
        !r.steps.iter().any(|s| s.kind == StepKind::Delete),
        "nothing deleted: {:?}",
        r.steps
    );
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    assert!(ctl_alive(ctl));
    Ok(())
}

/// The controller deleted nothing anywhere (no MultiCasskop here asks for it).
fn assert_no_deletes(env: &Env) {
    let user = Env::sa_user("multi-casskop");
    let deletes: Vec<String> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.user == user && e.verb == "delete" && e.resource == "cassandraclusters")
        .map(|e| format!("{} {}", e.cluster, e.name))
        .collect();
    assert!(deletes.is_empty(), "nothing deleted: {deletes:?}");
}

fn ctl_alive(mut ctl: ControllerProcess) -> bool {
    ctl.exited().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_outage_blocks_the_rollout_and_it_resumes_when_back() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?;
    // Cut site 2 off as soon as its CassandraCluster exists (mid-rollout).
    eventually("the site-2 CassandraCluster", LONG, || async {
        Ok(env.get_cc("k8s-cluster2", "cassandra-3dc")?.map(|_| ()))
    })
    .await?;
    env.sim
        .cluster("k8s-cluster2")
        .faults()
        .set_unreachable(true);
    let blocked = eventually("SitesReachable=False naming k8s-cluster2", LONG, || async {
        let mc = env.get_mc("cassandra-3dc")?;
        Ok(condition(&mc, "SitesReachable")
            .filter(|c| c.0 == "False" && c.2.contains("k8s-cluster2"))
            .map(|c| (c, mc)))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
    println!(
        "while k8s-cluster2 is down: {:?}\nstatus: {:#}",
        blocked.0, blocked.1["status"]
    );
    assert!(
        env.get_cc("k8s-cluster3", "cassandra-3dc")?.is_none(),
        "nothing done out of order"
    );
    let (_, metrics) = ctl.http_get("/metrics")?;
    assert!(
        metrics.contains(r#"multicasskop_site_reachable{site="k8s-cluster2"} 0"#),
        "the gauge shows the outage:\n{metrics}"
    );
    let events = env.events_of("cassandra-3dc")?;
    assert!(
        events
            .iter()
            .any(|e| e.0 == "Warning" && e.2.contains("k8s-cluster2")),
        "a Warning Event names the site: {events:#?}"
    );

    env.sim.cluster("k8s-cluster2").faults().clear();
    wait_ready(&env, &ctl, "cassandra-3dc").await?;
    let user = Env::sa_user("multi-casskop");
    let r = audit::analyze(&env.sim.audit(), &[user.as_str()], "cassandra-3dc", 0);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.first_write_order, SITES);
    let mc = env.get_mc("cassandra-3dc")?;
    assert_eq!(
        condition(&mc, "SitesReachable").map(|c| c.0).as_deref(),
        Some("True")
    );
    assert_no_deletes(&env);
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}

fn kubeconfig_secret(name: &str, kubeconfig: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(kubeconfig);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"config": b64}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_credential_secret_is_used_without_restart() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let c3 = env.sim.cluster("k8s-cluster3").clone();
    let render = |token: &str| {
        kubesim::kubeconfig::render(&[(
            "k8s-cluster3".to_string(),
            c3.url(),
            c3.ca_pem(),
            token.to_string(),
        )])
    };
    let old = c3.issue_token(NAMESPACE, "remote-k8s-cluster3", None);
    env.apply_yaml(&kubeconfig_secret("k8s-cluster3", &render(&old)))?;
    let mut ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    env.apply_yaml(&sample("multi-casskop-3sites.yaml")?)?;
    wait_ready(&env, &ctl, "cassandra-3dc").await?;
    let remote_user = Env::sa_user("remote-k8s-cluster3");
    assert!(
        env.sim
            .cluster("k8s-cluster3")
            .audit()
            .iter()
            .any(|e| e.user == remote_user
                && e.resource == "cassandraclusters"
                && matches!(e.verb.as_str(), "create" | "patch")
                && e.code < 300),
        "site 3 written with the Secret's credentials"
    );

    // Revoke the token, then change the spec: site 3 refuses us and the status says so.
    c3.faults().revoke_token(&old);
    env.kubectl(&[
        "patch",
        "multicasskop",
        "cassandra-3dc",
        "--type=merge",
        "-p",
        r#"{"spec":{"base":{"spec":{"cassandraImage":"cassandra:3.11.10"}}}}"#,
    ])?;
    let refused = eventually(
        "the status to name k8s-cluster3 as unusable",
        LONG,
        || async {
            let mc = env.get_mc("cassandra-3dc")?;
            let text = mc["status"].to_string();
            Ok((mc["status"]["currentSite"] == "k8s-cluster3"
                && mc["status"]["phase"] == "Blocked"
                && text.contains("k8s-cluster3"))
            .then_some(mc))
        },
    )
    .await
    .map_err(|e| {
        let status = env
            .get_mc("cassandra-3dc")
            .map(|m| m["status"].clone())
            .unwrap_or_default();
        anyhow::anyhow!("{e}\nstatus: {status:#}\n{}", tail(&ctl.logs()))
    })?;
    println!("with a revoked token: {:#}", refused["status"]);

    // Rotate: a new token in the same Secret; no restart.
    let new = c3.issue_token(NAMESPACE, "remote-k8s-cluster3", None);
    env.apply_yaml(&kubeconfig_secret("k8s-cluster3", &render(&new)))?;
    eventually("the new image Running at k8s-cluster3", LONG, || async {
        let cc = env.get_cc("k8s-cluster3", "cassandra-3dc")?;
        Ok(cc
            .filter(|cc| {
                cc["spec"]["cassandraImage"] == "cassandra:3.11.10"
                    && cc["status"]["phase"] == "Running"
                    && cc["status"]["lastClusterActionStatus"] == "Done"
            })
            .map(|_| ()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
    assert!(ctl.exited().is_none(), "the controller was not restarted");
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_multicasskops_are_reported_and_the_valid_one_still_rolls_out() -> anyhow::Result<()>
{
    let env = Env::start(&SITES[..2]).await?;
    let ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    let base = |name: &str| {
        json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster", "metadata": {"name": name},
               "spec": {"cassandraImage": "cassandra:3.11.9", "nodesPerRacks": 1}})
    };
    let over = json!({"k8s-cluster1": {}, "k8s-cluster2": {}});
    let mut cases: Vec<(&str, Value, Value, &str)> = vec![];
    let mut b;
    // (MultiCasskop name, base, override, text the Valid condition must contain)
    cases.push((
        "unknown-site",
        base("cc-a"),
        json!({"k8s-cluster9": {}}),
        "k8s-cluster9",
    ));
    b = base("x");
    b["metadata"] = json!({});
    cases.push(("no-name", b, over.clone(), "metadata.name"));
    cases.push(("bad-name", base("Bad_Name"), over.clone(), "Bad_Name"));
    b = base("cc-d");
    b["kind"] = json!("Deployment");
    cases.push(("wrong-kind", b, over.clone(), "kind"));
    b = base("cc-e");
    b["apiVersion"] = json!("db.orange.com/v1");
    cases.push(("wrong-version", b, over.clone(), "apiVersion"));
    cases.push((
        "renamed-in-override",
        base("cc-f"),
        json!({"k8s-cluster1": {"metadata": {"name": "other"}}}),
        "metadata.name",
    ));
    cases.push((
        "bad-namespace",
        base("cc-g"),
        json!({"k8s-cluster1": {"metadata": {"namespace": "Not_A_Namespace"}}}),
        "namespace",
    ));
    b = base("cc-h");
    b["metadata"]["labels"] = json!({"tier": 3});
    cases.push(("label-not-string", b, over.clone(), "labels"));
    b = base("cc-i");
    b["status"] = json!({"seedlist": "not-a-list"});
    cases.push(("seedlist-not-list", b, over.clone(), "seedlist"));
    b = base("cc-j");
    b["spec"] = json!("not-an-object");
    cases.push(("spec-not-object", b, over.clone(), "spec"));
    b = base("cc-k");
    b["metadata"]["finalizers"] = json!("not-a-list");
    cases.push(("finalizers-not-list", b, over.clone(), "finalizers"));
    for (name, base, override_, _) in &cases {
        let mc = json!({"apiVersion": "db.orange.com/v2", "kind": "MultiCasskop", "metadata": {"name": name},
                        "spec": {"base": base, "override": override_}});
        env.apply_yaml(&mc.to_string())?;
    }
    env.apply_yaml(&two_site_mc("valid", "cassandra-valid", &SITES[..2]))?;
    for (name, _, _, needle) in &cases {
        let (st, reason, message) = eventually(&format!("Valid=False on {name}"), LONG, || async {
            let mc = env.get_mc(name)?;
            Ok(condition(&mc, "Valid").filter(|c| c.0 == "False"))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
        println!("{name}: Valid={st} {reason}: {message}");
        assert!(
            message.contains(needle),
            "{name}: {message:?} should mention {needle}"
        );
        let mc = env.get_mc(name)?;
        assert_eq!(mc["status"]["phase"], "Invalid", "{name}");
        let events = env.events_of(name)?;
        assert!(
            events.iter().any(|e| e.0 == "Warning"),
            "{name}: a Warning Event: {events:?}"
        );
    }
    wait_ready(&env, &ctl, "valid").await?;
    // Nothing was created for any invalid one.
    let user = Env::sa_user("multi-casskop");
    let writes: Vec<String> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| {
            e.user == user
                && e.resource == "cassandraclusters"
                && !matches!(e.verb.as_str(), "get" | "list" | "watch")
        })
        .map(|e| e.name)
        .collect();
    assert!(
        writes.iter().all(|n| n == "cassandra-valid"),
        "only the valid one is written: {writes:?}"
    );
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_credential_secrets_block_only_their_sites() -> anyhow::Result<()> {
    let env = Env::start(&SITES[..2]).await?;
    let c2 = env.sim.cluster("k8s-cluster2").clone();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let good_token = c2.issue_token(NAMESPACE, "remote", None);
    let secrets: Vec<(&str, Value)> = vec![
        ("broken-nokeys", json!({"unrelated": b64("x")})),
        (
            "broken-yaml",
            json!({"config": b64("{{{ this is not yaml")}),
        ),
        (
            "broken-nocontext",
            json!({"config": b64("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")}),
        ),
        (
            "broken-noserver",
            json!({"token": b64(&good_token), "ca.crt": b64(&c2.ca_pem()), "namespace": b64(NAMESPACE)}),
        ),
        (
            "broken-badca",
            json!({"server": b64(&c2.url()), "token": b64(&good_token), "ca.crt": b64("not a certificate"), "namespace": b64(NAMESPACE)}),
        ),
        (
            "broken-badtoken",
            json!({"config": b64(&kubesim::kubeconfig::render(&[("broken-badtoken".into(), c2.url(), c2.ca_pem(), "no-such-token".into())]))}),
        ),
    ];
    for (name, data) in &secrets {
        env.apply_yaml(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE}, "data": data}).to_string())?;
    }
    let broken: Vec<&str> = secrets.iter().map(|s| s.0).collect();
    let remotes = format!("-r{}", broken.join(","));
    let ctl = env.start_controller("controller", &[&remotes])?;
    ready(&ctl).await?;
    for name in &broken {
        env.apply_yaml(&two_site_mc(
            &format!("mc-{name}"),
            &format!("cc-{name}"),
            &["k8s-cluster1", name],
        ))?;
    }
    env.apply_yaml(&two_site_mc("healthy", "cassandra-healthy", &SITES[..2]))?;
    wait_ready(&env, &ctl, "healthy").await?;
    for name in &broken {
        let mc_name = format!("mc-{name}");
        let (st, reason, message) = eventually(
            &format!("SitesReachable=False on {mc_name}"),
            LONG,
            || async {
                let mc = env.get_mc(&mc_name)?;
                Ok(condition(&mc, "SitesReachable")
                    .filter(|c| c.0 == "False" && c.2.contains(name)))
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
        println!("{mc_name}: SitesReachable={st} {reason}: {message}");
        assert!(!message.contains(&good_token), "no token in the status");
        let mc = env.get_mc(&mc_name)?;
        assert_eq!(
            mc["status"]["currentSite"].as_str(),
            Some(*name),
            "{}",
            mc["status"]
        );
        let events = env.events_of(&mc_name)?;
        assert!(
            events
                .iter()
                .any(|e| e.0 == "Warning" && e.2.contains(name)),
            "{mc_name}: {events:?}"
        );
    }
    assert!(!ctl.logs().contains(&good_token), "no token in the logs");
    assert_no_deletes(&env);
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_cassandracluster_is_never_taken_over() -> anyhow::Result<()> {
    let env = Env::start(&SITES[..2]).await?;
    // Someone else's CassandraCluster under the name the MultiCasskop wants at site 2.
    let foreign = json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
        "metadata": {"name": "cassandra-mine", "namespace": NAMESPACE},
        "spec": {"cassandraImage": "cassandra:4.0", "nodesPerRacks": 1}});
    let out = env.kubectl_raw(
        "k8s-cluster2",
        &["apply", "-f", "-"],
        Some(foreign.to_string().as_bytes()),
    );
    assert!(out.success(), "{}", out.stderr);
    let ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    env.apply_yaml(&two_site_mc("mine", "cassandra-mine", &SITES[..2]))?;
    let (st, reason, message) = eventually(
        "the rollout to block on the foreign object",
        LONG,
        || async {
            let mc = env.get_mc("mine")?;
            Ok((mc["status"]["phase"] == "Blocked"
                && mc["status"]["currentSite"] == "k8s-cluster2")
                .then(|| condition(&mc, "Progressing"))
                .flatten())
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
    println!("Progressing={st} {reason}: {message}");
    let mc = env.get_mc("mine")?;
    let site2 = mc["status"]["sites"][1]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        site2.contains("label"),
        "the site says whose it is: {site2}"
    );
    let events = env.events_of("mine")?;
    assert!(
        events
            .iter()
            .any(|e| e.0 == "Warning" && e.2.contains("k8s-cluster2")),
        "{events:?}"
    );
    let cc = env
        .get_cc("k8s-cluster2", "cassandra-mine")?
        .expect("still there");
    assert_eq!(
        cc["spec"]["cassandraImage"], "cassandra:4.0",
        "left untouched"
    );
    let user = Env::sa_user("multi-casskop");
    // The create that finds it is refused (409 AlreadyExists) and changes nothing.
    assert!(
        !env.sim
            .cluster("k8s-cluster2")
            .audit()
            .iter()
            .any(|e| e.user == user
                && e.resource == "cassandraclusters"
                && matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete")
                && e.code != 409),
        "no write to the foreign object"
    );
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_waits_for_an_unreachable_site_and_says_so() -> anyhow::Result<()> {
    let env = Env::start(&SITES[..2]).await?;
    let ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    env.apply_yaml(&sample("multi-casskop-delete.yaml")?)?; // cassandra-ephemeral on both sites
    wait_ready(&env, &ctl, "cassandra-ephemeral").await?;
    env.sim
        .cluster("k8s-cluster2")
        .faults()
        .set_unreachable(true);
    env.kubectl(&[
        "delete",
        "multicasskop",
        "cassandra-ephemeral",
        "--wait=false",
    ])?;
    let status = eventually("the deletion to block on k8s-cluster2", LONG, || async {
        let mc = env.get_mc("cassandra-ephemeral")?;
        let text = mc["status"].to_string();
        Ok((mc["status"]["phase"] == "Deleting"
            && condition(&mc, "SitesReachable")
                .is_some_and(|c| c.0 == "False" && c.2.contains("k8s-cluster2"))
            && text.contains("k8s-cluster2"))
        .then_some(mc["status"].clone()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
    println!("deletion blocked: {status:#}");
    // Reverse order: site 1 is not touched while site 2 cannot be confirmed gone.
    assert!(env.get_cc("k8s-cluster1", "cassandra-ephemeral")?.is_some());
    let mc = env.get_mc("cassandra-ephemeral")?;
    assert!(
        mc["metadata"]["finalizers"]
            .to_string()
            .contains("multicasskop.db.orange.com/")
    );

    env.sim.cluster("k8s-cluster2").faults().clear();
    eventually("cassandra-ephemeral to be gone", LONG, || async {
        let out = env.kubectl(&["get", "multicasskops", "-o", "name"])?;
        Ok((!out.contains("cassandra-ephemeral")).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
    for site in &SITES[..2] {
        assert!(
            env.get_cc(site, "cassandra-ephemeral")?.is_none(),
            "{site} still has it"
        );
    }
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_goes_through_when_a_site_was_removed_from_the_configuration() -> anyhow::Result<()>
{
    let env = Env::start(&SITES[..2]).await?;
    let mut ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    env.apply_yaml(&sample("multi-casskop-delete.yaml")?)?;
    wait_ready(&env, &ctl, "cassandra-ephemeral").await?;
    ctl.terminate();
    // Restart with the local cluster only: k8s-cluster2 is no longer a configured site.
    let args: Vec<String> = vec![
        "--kubeconfig".into(),
        env.kubeconfig.display().to_string(),
        "--context".into(),
        "k8s-cluster1".into(),
        "-lk8s-cluster1".into(),
        "--namespace".into(),
        NAMESPACE.into(),
        "--imports-dir".into(),
        env.dir.path().join("none").display().to_string(),
    ];
    let ctl = ControllerProcess::spawn(env.dir.path(), "controller-local-only", &args, &[])?;
    ready(&ctl).await?;
    let mc = eventually(
        "the status to say k8s-cluster2 is no longer configured",
        LONG,
        || async {
            let mc = env.get_mc("cassandra-ephemeral")?;
            let text = mc["status"].to_string();
            Ok(
                (text.contains("k8s-cluster2") && text.contains("no longer configured"))
                    .then_some(mc),
            )
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
    println!("with k8s-cluster2 unconfigured: {:#}", mc["status"]);
    env.kubectl(&[
        "delete",
        "multicasskop",
        "cassandra-ephemeral",
        "--timeout=240s",
    ])
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl.logs())))?;
    assert!(
        env.get_cc("k8s-cluster1", "cassandra-ephemeral")?.is_none(),
        "the configured site is cleaned up"
    );
    assert!(
        env.get_cc("k8s-cluster2", "cassandra-ephemeral")?.is_some(),
        "the unconfigured site is left alone"
    );
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}
