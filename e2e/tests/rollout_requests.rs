//! What a three-site creation costs the API servers: the controller's requests per MultiCasskop
//! (from kubesim's audit log) stay within twelve, and every Event and status field a user relies
//! on is still there.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::benchmark::{CONTROLLER_SA, create_all, mc_api, mc_object, spawn_controller, wait_readyz};
use e2e::{Env, EnvOptions, condition, controller_log_tail, eventually};
use kubesim::casskop::CasskopOptions;

const SITES: [&str; 3] = ["site1", "site2", "site3"];
/// MultiCasskops created at once (as the bench's scale part, smaller).
const MCS: usize = 20;
/// The bound of a three-site creation, per MultiCasskop.
const MAX_REQUESTS_PER_MC: f64 = 12.0;

/// The requests of the controller that serve the MultiCasskops (their status and Events, and
/// their CassandraClusters), counted by "verb resource[/subresource]". Requests that do not
/// depend on the number of MultiCasskops (site probes, readiness, the ClientConfig CRD look-up,
/// watches) are left out: they are the idle cost, measured by the bench.
fn per_mc_requests(entries: &[kubesim::AuditEntry], user: &str) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for e in entries {
        let counted = matches!(
            e.resource.as_str(),
            "multicasskops" | "cassandraclusters" | "events"
        );
        if e.user != user || e.verb == "watch" || e.verb == "list" || !counted {
            continue;
        }
        let sub = if e.subresource.is_empty() {
            String::new()
        } else {
            format!("/{}", e.subresource)
        };
        *kinds
            .entry(format!("{} {}{sub} -> {}", e.verb, e.resource, e.code))
            .or_default() += 1;
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_site_creation_costs_at_most_twelve_requests_and_reports_everything()
-> anyhow::Result<()> {
    let env = Env::start_with(
        &SITES,
        EnvOptions {
            casskop: CasskopOptions {
                ready_after: Duration::ZERO,
                react_after: Duration::ZERO,
            },
            controller_sa: CONTROLLER_SA.to_string(),
            local_cluster_admin: true,
        },
    )
    .await?;
    let mut ctl = spawn_controller(&env, "controller", "Info", &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let sites: Vec<String> = SITES.iter().map(ToString::to_string).collect();
    let names: Vec<String> = (0..MCS).map(|i| format!("count-{i:02}")).collect();
    let from = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    let objects = names
        .iter()
        .map(|n| mc_object(n, n, &sites, "cassandra:3.11.9"))
        .collect();
    create_all(&api, objects, 8).await?;
    for name in &names {
        eventually(
            &format!("{name} Ready"),
            Duration::from_secs(240),
            || async {
                let mc = env.get_mc(name)?;
                Ok(e2e::benchmark::is_ready(&mc).then_some(()))
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 60)))?;
    }
    // Let a reconcile still under way (a deferred status write) finish before counting.
    tokio::time::sleep(Duration::from_secs(6)).await;

    let user = Env::sa_user(CONTROLLER_SA);
    let entries: Vec<_> = env
        .sim
        .settled_audit()
        .await
        .into_iter()
        .filter(|e| e.seq >= from)
        .collect();
    let kinds = per_mc_requests(&entries, &user);
    let total: usize = kinds.values().sum();
    let per_mc = total as f64 / MCS as f64;
    println!(
        "controller requests for {MCS} three-site creations: {total} ({per_mc:.2} per MultiCasskop)"
    );
    for (kind, n) in &kinds {
        println!(
            "  {kind}: {n} ({:.2} per MultiCasskop)",
            *n as f64 / MCS as f64
        );
    }
    for (t, r, note) in env.events_of(&names[0])? {
        println!("  Event of {}: {t} {r}: {note}", names[0]);
    }
    assert!(
        per_mc <= MAX_REQUESTS_PER_MC,
        "{per_mc:.2} requests per MultiCasskop, more than {MAX_REQUESTS_PER_MC}: {kinds:#?}"
    );
    let creates = kinds
        .get("create cassandraclusters -> 201")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        creates,
        MCS * SITES.len(),
        "one create per site: {kinds:#?}"
    );

    for name in &names {
        assert_reported(&env, name)?;
    }
    Ok(())
}

/// The status fields and Events a user of a Ready three-site MultiCasskop relies on.
fn assert_reported(env: &Env, name: &str) -> anyhow::Result<()> {
    let mc = env.get_mc(name)?;
    let st = &mc["status"];
    assert_eq!(st["phase"], "Running", "{name}: {st}");
    assert_eq!(st["readySites"], "3/3", "{name}: {st}");
    assert_eq!(
        st["observedGeneration"], mc["metadata"]["generation"],
        "{name}"
    );
    for (type_, status) in [
        ("Ready", "True"),
        ("Progressing", "False"),
        ("Valid", "True"),
        ("SitesReachable", "True"),
    ] {
        let (s, _, message) =
            condition(&mc, type_).unwrap_or_else(|| panic!("{name}: no {type_} condition: {st}"));
        assert_eq!(s, status, "{name}: {type_}: {message}");
        assert!(!message.is_empty(), "{name}: {type_} says why");
    }
    let sites = st["sites"].as_array().cloned().unwrap_or_default();
    assert_eq!(sites.len(), SITES.len(), "{name}: {st}");
    for (site, entry) in SITES.iter().zip(&sites) {
        assert_eq!(entry["name"], *site, "{name}: sites in rollout order");
        assert_eq!(entry["state"], "Ready", "{name} {site}: {entry}");
        assert_eq!(entry["ready"], true, "{name} {site}: {entry}");
        assert_eq!(entry["phase"], "Running", "{name} {site}: {entry}");
        assert_eq!(
            entry["lastClusterActionStatus"], "Done",
            "{name} {site}: {entry}"
        );
        for field in [
            "namespace",
            "message",
            "lastTransitionTime",
            "appliedHash",
            "appliedGeneration",
            "appliedTime",
        ] {
            assert!(
                !entry[field].is_null() && entry[field] != "",
                "{name} {site}: {field} missing: {entry}"
            );
        }
    }
    let events = env.events_of(name)?;
    let reasons: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    for site in SITES {
        let created = events
            .iter()
            .filter(|(t, r, note)| {
                t == "Normal" && r == "Created" && note.contains(&format!("in site {site}"))
            })
            .count();
        assert_eq!(
            created, 1,
            "{name}: one Created Event for {site}: {events:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|(t, r, note)| t == "Normal" && r == "RolloutComplete" && note.contains("3 site")),
        "{name}: RolloutComplete: {events:?}"
    );
    assert!(
        !reasons
            .iter()
            .any(|r| r.contains("Fail") || *r == "SiteBlocked"),
        "{name}: no failure: {reasons:?}"
    );
    Ok(())
}

/// The safety-net resync reconciles every converged MultiCasskop again and again; with nothing
/// changed it reads from the caches only: no status write, no Event, no CassandraCluster request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_of_converged_multicasskops_sends_no_request() -> anyhow::Result<()> {
    const CONVERGED: usize = 4;
    let env = Env::start_with(
        &SITES,
        EnvOptions {
            casskop: CasskopOptions {
                ready_after: Duration::ZERO,
                react_after: Duration::ZERO,
            },
            controller_sa: CONTROLLER_SA.to_string(),
            local_cluster_admin: true,
        },
    )
    .await?;
    let mut ctl = spawn_controller(&env, "controller", "Info", &["--resync", "2s"])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let sites: Vec<String> = SITES.iter().map(ToString::to_string).collect();
    let names: Vec<String> = (0..CONVERGED).map(|i| format!("resync-{i}")).collect();
    let objects = names
        .iter()
        .map(|n| mc_object(n, n, &sites, "cassandra:3.11.9"))
        .collect();
    create_all(&api, objects, 4).await?;
    for name in &names {
        eventually(
            &format!("{name} Ready"),
            Duration::from_secs(240),
            || async {
                let mc = env.get_mc(name)?;
                Ok(e2e::benchmark::is_ready(&mc).then_some(()))
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 60)))?;
    }
    // Let the last deferred status write go out (see `rollout::quiet`) before counting.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let from = env
        .sim
        .settled_audit()
        .await
        .last()
        .map_or(0, |e| e.seq + 1);
    let reconciles_before = e2e::benchmark::reconciles(&ctl)?;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let reconciles = e2e::benchmark::reconciles(&ctl)? - reconciles_before;
    let user = Env::sa_user(CONTROLLER_SA);
    let entries: Vec<_> = env
        .sim
        .settled_audit()
        .await
        .into_iter()
        .filter(|e| e.seq >= from)
        .collect();
    let kinds = per_mc_requests(&entries, &user);
    println!("{reconciles} reconciles in 9 s with --resync 2s; requests: {kinds:?}");
    assert!(
        reconciles >= CONVERGED as f64,
        "the resync reconciled every MultiCasskop at least once: {reconciles}"
    );
    assert!(
        kinds.is_empty(),
        "no request for converged MultiCasskops on resync: {kinds:#?}"
    );
    Ok(())
}
