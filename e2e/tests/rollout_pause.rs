//! `spec.paused`: paused mid-rollout, nothing is written to any site (audit log) while the
//! status keeps being reported (phase Paused in `kubectl get`, a Paused condition); resumed,
//! the rollout finishes in order. Paused, a deletion neither deletes nor drops the finalizer.
//! `paused` of the wrong type is refused by the API server with the field named.

use std::time::Duration;

use e2e::audit::{self, running_done};
use e2e::{Env, condition, controller_log_tail, eventually, sample};
use kubesim::AuditEntry;
use serde_json::Value;

const SITES: [&str; 3] = ["k8s-cluster1", "k8s-cluster2", "k8s-cluster3"];
const MC: &str = "cassandra-3dc";
const WAIT: Duration = Duration::from_secs(240);
/// How long a paused MultiCasskop is watched for writes: several CassKop steps (1 s each).
const PAUSED_FOR: Duration = Duration::from_secs(6);

fn set_paused(env: &Env, paused: bool) -> anyhow::Result<String> {
    let patch = format!(r#"{{"spec":{{"paused":{paused}}}}}"#);
    env.kubectl(&["patch", "multicasskop", MC, "--type=merge", "-p", &patch])
}

/// The MultiCasskop once its status says it is paused for its current generation.
async fn paused_reported(env: &Env) -> anyhow::Result<Value> {
    eventually("the status to say Paused", WAIT, || async {
        let mc = env.get_mc(MC)?;
        let current = mc["status"]["observedGeneration"] == mc["metadata"]["generation"];
        Ok((current && mc["status"]["phase"] == "Paused").then_some(mc))
    })
    .await
}

/// Writes of the controller from `from` on, other than its MultiCasskop status reports.
fn writes_since(entries: &[AuditEntry], controller: &str, from: u64) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.seq >= from && e.user == controller)
        .filter(|e| matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete"))
        .filter(|e| !(e.resource == "multicasskops" && e.subresource == "status"))
        .filter(|e| e.resource != "events" && e.resource != "leases")
        .map(|e| {
            format!(
                "seq {} {} {} {} {}",
                e.seq, e.cluster, e.verb, e.resource, e.name
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_mid_rollout_writes_nothing_and_resumes_in_order() -> anyhow::Result<()> {
    let env = Env::start(&SITES).await?;
    let ctl = env.start_controller("controller", &[])?;
    let log = |e: anyhow::Error| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 60));
    let controller = Env::sa_user("multi-casskop");
    let manifest = sample("multi-casskop-3sites.yaml")?.replace(
        "spec:\n  base:",
        "spec:\n  deleteCassandraCluster: true\n  base:",
    );
    env.apply_yaml(&manifest)?;

    // Mid-rollout: the first site created, the others not yet.
    eventually("the first site created", WAIT, || async {
        Ok(env.get_cc(SITES[0], MC)?.map(|_| ()))
    })
    .await
    .map_err(log)?;
    set_paused(&env, true)?;
    let mc = paused_reported(&env).await.map_err(log)?;
    let from = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    let (status, reason, message) = condition(&mc, "Paused").expect("a Paused condition");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Paused"));
    assert!(
        message.starts_with("spec.paused is true: nothing is written to any site"),
        "{message}"
    );
    let (status, reason, _) = condition(&mc, "Progressing").expect("Progressing");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Paused"));
    let table = env.kubectl(&["get", "multicasskops"])?;
    println!("{table}");
    let row = table.lines().find(|l| l.starts_with(MC)).expect("a row");
    assert!(row.contains("Paused"), "{row}");

    let mut created = Vec::new();
    for site in SITES {
        if env.get_cc(site, MC)?.is_some() {
            created.push(site);
        }
    }
    println!("created when the pause was reported: {created:?}");

    // CassKop finishes what it was doing meanwhile; the controller reports it, writes nothing.
    tokio::time::sleep(PAUSED_FOR).await;
    eventually(
        "the created sites reported Running while paused",
        WAIT,
        || async {
            let mc = env.get_mc(MC)?;
            let sites = mc["status"]["sites"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let running = created.iter().all(|c| {
                sites
                    .iter()
                    .any(|s| s["name"] == *c && s["phase"] == "Running")
            });
            Ok((running && mc["status"]["phase"] == "Paused").then_some(()))
        },
    )
    .await
    .map_err(log)?;
    let during = writes_since(&env.sim.audit(), &controller, from);
    assert!(during.is_empty(), "writes while paused: {during:?}");
    for site in SITES.iter().filter(|s| !created.contains(s)) {
        assert!(
            env.get_cc(site, MC)?.is_none(),
            "{site} not created while paused"
        );
    }
    if created.len() < SITES.len() {
        let next = SITES[created.len()];
        let mc = env.get_mc(MC)?;
        let held = condition(&mc, "Paused").expect("Paused").2;
        assert!(
            held.contains("held until resumed: ") && held.contains(next),
            "{held}"
        );
    }
    let events = env.events_of(MC)?;
    assert!(events.iter().any(|(_, r, _)| r == "Paused"), "{events:?}");

    // Resumed: the rollout finishes, one site at a time, in order.
    set_paused(&env, false)?;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("multicasskop/{MC}"),
        "--timeout=240s",
    ])
    .map_err(log)?;
    for site in SITES {
        let cc = env.get_cc(site, MC)?.expect("created");
        assert!(running_done(&cc), "{site}");
    }
    let r = audit::analyze(&env.sim.audit(), &[controller.as_str()], MC, 0);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.first_write_order, SITES);
    let mc = env.get_mc(MC)?;
    assert!(
        condition(&mc, "Paused").is_none(),
        "no Paused condition once resumed"
    );
    assert_eq!(mc["status"]["phase"], "Running");

    // Paused, a deletion deletes nothing and keeps the finalizer; resumed, it completes.
    set_paused(&env, true)?;
    paused_reported(&env).await.map_err(log)?;
    env.kubectl(&["delete", "multicasskop", MC, "--wait=false"])?;
    let from = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    tokio::time::sleep(PAUSED_FOR).await;
    let mc = env.get_mc(MC)?;
    assert!(mc["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(mc["status"]["phase"], "Paused");
    let during = writes_since(&env.sim.audit(), &controller, from);
    assert!(during.is_empty(), "writes while paused: {during:?}");
    for site in SITES {
        assert!(env.get_cc(site, MC)?.is_some(), "{site} kept while paused");
    }
    set_paused(&env, false)?;
    eventually("the MultiCasskop and its clusters gone", WAIT, || async {
        let left = env.kubectl(&[
            "get",
            "multicasskop",
            MC,
            "--ignore-not-found",
            "-o",
            "name",
        ])?;
        let mut gone = left.trim().is_empty();
        for site in SITES {
            gone &= env.get_cc(site, MC)?.is_none();
        }
        Ok(gone.then_some(()))
    })
    .await
    .map_err(log)?;
    Ok(())
}

/// `paused: "yes"`: the CRD's schema makes the API server refuse it (422) naming the field,
/// so kubectl fails and nothing is stored. Under a CRD whose `spec` is open (installed by
/// other means), the object is stored and the controller reports `Valid=False` naming the
/// field, writing nothing to the site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_of_the_wrong_type_is_refused_naming_the_field() -> anyhow::Result<()> {
    let env = Env::start(&SITES[..1]).await?;
    let manifest = sample("multi-casskop-3sites.yaml")?
        .replace("spec:\n  base:", "spec:\n  paused: \"yes\"\n  base:");
    let out = env.kubectl_raw(SITES[0], &["apply", "-f", "-"], Some(manifest.as_bytes()));
    println!("{}", out.stderr);
    assert!(!out.success(), "kubectl apply must fail");
    assert!(
        out.stderr.contains("spec.paused") && out.stderr.contains("must be of type boolean"),
        "{}",
        out.stderr
    );
    let left = env.kubectl(&["get", "multicasskops", "-o", "name"])?;
    assert!(left.trim().is_empty(), "nothing stored: {left}");

    // The same object under an open `spec`.
    let crd = env.kubectl(&["get", "crd", "multicasskops.db.orange.com", "-o", "json"])?;
    let mut crd: Value = serde_json::from_str(&crd)?;
    for v in crd["spec"]["versions"].as_array_mut().expect("versions") {
        v["schema"]["openAPIV3Schema"]["properties"]["spec"] =
            serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    }
    env.kubectl_stdin(&["replace", "-f", "-"], crd.to_string().as_bytes())?;
    env.apply_yaml(&manifest)?;
    let ctl = env.start_controller("controller", &[])?;
    let (_, _, message) = eventually("Valid=False", WAIT, || async {
        Ok(condition(&env.get_mc(MC)?, "Valid").filter(|c| c.0 == "False"))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 40)))?;
    assert!(
        message.contains("spec.paused") && message.contains("expected a boolean"),
        "{message}"
    );
    assert!(env.get_cc(SITES[0], MC)?.is_none(), "nothing written");
    Ok(())
}

/// `kubectl explain` documents the new fields from the CRD's schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_documents_auto_seed_list_and_paused() -> anyhow::Result<()> {
    let env = Env::start(&SITES[..1]).await?;
    for (field, words) in [
        ("autoSeedList", "external-dns.alpha.kubernetes.io/hostname"),
        ("paused", "resumes where it stopped"),
    ] {
        let out = env.kubectl(&["explain", &format!("multicasskops.spec.{field}")])?;
        println!("{out}");
        assert!(out.contains("<boolean>"), "{out}");
        assert!(out.contains(words), "{out}");
    }
    let out = env.kubectl(&["explain", "multicasskops.status.sites.seedList"])?;
    assert!(
        out.contains("<[]string>") && out.contains("spec.autoSeedList"),
        "{out}"
    );
    Ok(())
}
