//! Fault suite: fuzzed MultiCasskop specs (random JSON in `base` and `override`). Never
//! a panic, always a Valid condition with a message.
//!
//! Most cases (1,200 by default, `PROPTEST_CASES` to change) run in-process through the same
//! pure steps the controller takes (plan::site_order, merge::desired_for_site, plan::plan,
//! status::build_status); a batch of 50 goes through the real controller on kubesim.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use e2e::benchmark::{
    CONTROLLER_SA, create_all, is_ready, mc_api, mc_object, spawn_controller, wait_readyz,
};
use e2e::faults::{
    Rng, SCHEMA_HOSTILE_KINDS, SchemaFate, assert_no_panic, check_invariants, random_mc_spec,
    schema_hostile_mc,
};
use e2e::{Env, EnvOptions, NAMESPACE, condition, eventually};
use kubesim::casskop::CasskopOptions;
use multi_casskop::api::MultiCasskopStatus;
use multi_casskop::merge;
use multi_casskop::rollout::plan::{
    self, Action, AppliedMark, ObservedCluster, Ownership, Plan, PlanInput, SiteAccess, SiteInput,
};
use multi_casskop::rollout::status::{SiteDetail, build_status};
use proptest::prelude::*;
use serde_json::{Value, json};

const SITES: [&str; 3] = ["site1", "site2", "site3"];

/// Cases seen so far by the in-process fuzzer: (valid, invalid), printed as they go.
static SEEN: std::sync::Mutex<(usize, usize)> = std::sync::Mutex::new((0, 0));

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "site1", "site2", "site3", "metadata", "spec", "name", "namespace", "labels",
            "annotations", "apiVersion", "kind", "finalizers", "status", "cassandraImage",
            "topology", "dc", "rack", "seedlist", "ownerReferences", "generateName", "",
        ])
        .prop_map(str::to_string),
        2 => "[a-zA-Z0-9._/-]{0,14}",
        1 => any::<String>(),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        arb_key().prop_map(Value::String),
        "[a-z0-9-]{1,70}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A base: random JSON, or a plausible CassandraCluster with random parts (reaches deeper checks).
fn arb_base() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => arb_json(),
        2 => (
            prop::option::of(prop_oneof![Just(json!("db.orange.com/v2")), arb_json()]),
            prop::option::of(prop_oneof![Just(json!("CassandraCluster")), arb_json()]),
            prop_oneof![
                "[a-z][a-z0-9-]{0,20}".prop_map(|n| json!(n)),
                arb_json(),
            ],
            prop::option::of(arb_json()),
            prop::option::of(arb_json()),
            arb_json(),
        )
            .prop_map(|(api_version, kind, name, namespace, labels, spec)| {
                let mut meta = serde_json::Map::new();
                meta.insert("name".into(), name);
                if let Some(ns) = namespace {
                    meta.insert("namespace".into(), ns);
                }
                if let Some(l) = labels {
                    meta.insert("labels".into(), l);
                }
                let mut b = serde_json::Map::new();
                if let Some(a) = api_version {
                    b.insert("apiVersion".into(), a);
                }
                if let Some(k) = kind {
                    b.insert("kind".into(), k);
                }
                b.insert("metadata".into(), Value::Object(meta));
                b.insert("spec".into(), spec);
                Value::Object(b)
            }),
    ]
}

fn arb_observed() -> impl Strategy<Value = Option<ObservedCluster>> {
    let phase = prop::option::of(prop::sample::select(vec![
        "Initializing",
        "Running",
        "Pending",
        "Error",
    ]));
    let status = prop::option::of(prop::sample::select(vec!["Ongoing", "Done", "Error"]));
    prop::option::of(
        (
            any::<bool>(),
            any::<bool>(),
            0i64..6,
            phase,
            status,
            any::<bool>(),
        )
            .prop_map(
                |(ours, matches, generation, phase, st, deleting)| ObservedCluster {
                    ownership: if ours {
                        Ownership::Ours
                    } else {
                        Ownership::Foreign {
                            owner: "someone".into(),
                        }
                    },
                    matches_desired: matches,
                    generation,
                    phase: phase.map(str::to_string),
                    last_cluster_action: Some("Initializing".into()),
                    last_cluster_action_status: st.map(str::to_string),
                    deleting,
                },
            ),
    )
}

/// What the controller does with a spec up to its status, as in `reconcile_one`.
fn status_for(
    base: &Value,
    overrides: &BTreeMap<String, Value>,
    site_order: Option<&[String]>,
    observed: &[Option<ObservedCluster>],
    applied: &[Option<i64>],
) -> (MultiCasskopStatus, Option<String>) {
    let configured: Vec<String> = SITES.iter().map(ToString::to_string).collect();
    let prev = MultiCasskopStatus::default();
    let now = "2026-11-21T12:00:00Z";
    let mut invalid = None;
    let mut desired = Vec::new();
    match plan::site_order(&configured, site_order, overrides) {
        Err(why) => invalid = Some(why.to_string()),
        Ok(sites) => {
            for site in sites {
                match merge::desired_for_site(base, overrides.get(&site), &site, NAMESPACE, "fuzz")
                {
                    Ok(d) => {
                        assert_eq!(d.site, site);
                        assert!(!d.name.is_empty(), "desired without a name: {d:?}");
                        assert_eq!(d.object["metadata"]["name"], json!(d.name));
                        assert!(!d.hash.is_empty());
                        desired.push(d);
                    }
                    Err(e) => {
                        invalid = Some(e.to_string());
                        break;
                    }
                }
            }
        }
    }
    if let Some(why) = &invalid {
        let nothing = Plan {
            action: Action::Converged,
            verdicts: Vec::new(),
            deleting: false,
        };
        let (s, _) = build_status(Some(&prev), 1, &nothing, &[], &[], Some(why), now);
        return (s, invalid);
    }
    let inputs: Vec<SiteInput> = desired
        .iter()
        .enumerate()
        .map(|(i, d)| SiteInput {
            name: d.site.clone(),
            desired_hash: d.hash.clone(),
            access: SiteAccess::Ok,
            observed: observed.get(i).cloned().flatten(),
            applied: applied.get(i).copied().flatten().map(|g| AppliedMark {
                hash: d.hash.clone(),
                generation: g,
                dropped: Vec::new(),
            }),
        })
        .collect();
    let details: Vec<SiteDetail> = inputs
        .iter()
        .zip(&desired)
        .map(|(i, d)| SiteDetail {
            site: i.name.clone(),
            namespace: Some(d.namespace.clone()),
            name: Some(d.name.clone()),
            phase: i.observed.as_ref().and_then(|o| o.phase.clone()),
            last_cluster_action: None,
            last_cluster_action_status: None,
            message: None,
            token_problem: None,
        })
        .collect();
    let p = plan::plan(&PlanInput {
        sites: inputs.clone(),
        deleting: false,
        delete_cassandra_cluster: false,
    });
    let (s, _) = build_status(Some(&prev), 1, &p, &inputs, &details, None, now);
    (s, None)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1200),
        ..ProptestConfig::default()
    })]

    #[test]
    fn fuzzed_specs_always_get_a_valid_condition_with_a_message(
        base in arb_base(),
        overrides in prop::collection::btree_map(arb_key(), arb_json(), 0..4),
        site_order in prop::option::of(prop::collection::vec(arb_key(), 0..4)),
        observed in prop::collection::vec(arb_observed(), 3),
        applied in prop::collection::vec(prop::option::of(0i64..6), 3),
    ) {
        let (status, invalid) =
            status_for(&base, &overrides, site_order.as_deref(), &observed, &applied);
        {
            let mut seen = SEEN.lock().unwrap();
            if invalid.is_some() { seen.1 += 1 } else { seen.0 += 1 }
            if (seen.0 + seen.1).is_multiple_of(300) {
                println!("{} valid and {} invalid specs so far", seen.0, seen.1);
            }
        }
        let valid = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Valid")
            .expect("a Valid condition");
        prop_assert!(!valid.message.trim().is_empty(), "Valid without a message: {valid:?}");
        match &invalid {
            Some(why) => {
                prop_assert_eq!(&valid.status, "False");
                prop_assert!(!why.trim().is_empty());
                prop_assert!(valid.message.contains(why.as_str()) || why.contains(valid.message.as_str()),
                    "Valid message {:?} does not carry the reason {:?}", valid.message, why);
            }
            None => prop_assert_eq!(&valid.status, "True"),
        }
        // An override naming no configured cluster is always invalid, and says which.
        if let Some(unknown) = overrides.keys().find(|k| !SITES.contains(&k.as_str())) {
            let why = invalid.as_deref().unwrap_or("");
            prop_assert!(why.contains(unknown.as_str()), "{why:?} does not name {unknown:?}");
        }
    }
}

/// 50 fuzzed MultiCasskops (fitting the CRD schema) through the real controller: each gets a
/// Valid condition with a message, the controller never panics and keeps rolling out a sane one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_multicasskops_all_get_a_valid_condition_and_the_controller_keeps_serving()
-> anyhow::Result<()> {
    let mut rng = Rng::from_env("fuzz_controller");
    let env = Env::start_with(
        &SITES,
        EnvOptions {
            casskop: CasskopOptions {
                ready_after: Duration::from_millis(200),
                react_after: Duration::from_millis(100),
            },
            controller_sa: CONTROLLER_SA.into(),
            local_cluster_admin: true,
        },
    )
    .await?;
    let sites: Vec<String> = env.names().to_vec();
    // On CassKop's real CRD, documents it refuses or prunes join the batch.
    let real_crd = env.use_real_casskop_crd()?;
    let mut ctl = spawn_controller(&env, "controller", "Info", &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let mut created = Vec::new();
    let mut refused = 0;
    for i in 0..50 {
        let name = format!("fuzz-{i:02}");
        let mut obj = json!({
            "apiVersion": "db.orange.com/v2",
            "kind": "MultiCasskop",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": random_mc_spec(&mut rng, &sites),
        });
        if rng.chance(0.2) {
            obj["spec"]["deleteCassandraCluster"] = json!(rng.chance(0.5));
        }
        match create_all(&api, vec![obj.clone()], 1).await {
            Ok(()) => created.push(name),
            Err(e) => {
                refused += 1;
                println!("refused by the API server: {e:#}");
            }
        }
    }
    let mut hostile = Vec::new();
    for i in 0..if real_crd { SCHEMA_HOSTILE_KINDS } else { 0 } {
        let name = format!("hostile-{i}");
        let (obj, path, fate) = schema_hostile_mc(i, &name, &sites);
        create_all(&api, vec![obj], 1).await?;
        created.push(name.clone());
        hostile.push((name, path, fate));
    }
    println!(
        "{} fuzzed MultiCasskops created, {refused} refused by the API",
        created.len()
    );
    let conditions = eventually(
        "a Valid condition with a message on every fuzzed MultiCasskop",
        Duration::from_secs(180),
        || async {
            let list = api.list(&Default::default()).await?;
            let mut found = BTreeMap::new();
            for o in list.items {
                let v = serde_json::to_value(&o)?;
                if let Some((status, reason, message)) = condition(&v, "Valid")
                    && !message.trim().is_empty()
                    && matches!(status.as_str(), "True" | "False")
                {
                    found.insert(
                        o.metadata.name.unwrap_or_default(),
                        (status, reason, message),
                    );
                }
            }
            Ok(created
                .iter()
                .all(|n| found.contains_key(n))
                .then_some(found))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::faults::failure_log(&ctl, "fuzz")))?;
    let invalid = conditions.values().filter(|c| c.0 == "False").count();
    println!(
        "Valid=False on {invalid}, Valid=True on {}; e.g. {:?}",
        conditions.len() - invalid,
        conditions.values().find(|c| c.0 == "False")
    );

    // Each document the real CRD refuses or prunes is reported on a site, naming the field.
    for (name, path, fate) in &hostile {
        let found = eventually(
            &format!("{name}: {path} reported as {fate:?}"),
            Duration::from_secs(120),
            || async {
                let o = serde_json::to_value(api.get(name).await?)?;
                let sites = o["status"]["sites"].as_array().cloned().unwrap_or_default();
                Ok(sites
                    .iter()
                    .find(|s| match fate {
                        SchemaFate::Refused => {
                            s["state"] == "Blocked"
                                && s["message"].as_str().is_some_and(|m| {
                                    m.contains("refused the desired CassandraCluster")
                                        && m.contains(path)
                                })
                        }
                        SchemaFate::Pruned => s["droppedFields"]
                            .as_array()
                            .is_some_and(|d| d.iter().any(|f| f == path)),
                    })
                    .map(|s| s["message"].clone()))
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::faults::failure_log(&ctl, "fuzz")))?;
        println!("{name}: {path} {fate:?}: {found}");
    }

    // The controller still serves a sane MultiCasskop.
    create_all(
        &api,
        vec![mc_object("sane", "sane", &sites, "cassandra:3.11.9")],
        1,
    )
    .await?;
    eventually(
        "the sane MultiCasskop Ready",
        Duration::from_secs(120),
        || async {
            let o = api.get("sane").await?;
            Ok(is_ready(&serde_json::to_value(&o)?).then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::faults::failure_log(&ctl, "fuzz")))?;
    assert!(ctl.exited().is_none(), "the controller kept running");
    assert_no_panic(&ctl.logs(), "controller");
    let user = Env::sa_user(CONTROLLER_SA);
    let written: BTreeSet<String> = env
        .sim
        .audit()
        .iter()
        .filter(|e| e.resource == "cassandraclusters" && e.user == user)
        .map(|e| e.name.clone())
        .collect();
    let names: Vec<String> = written.into_iter().collect();
    let r = check_invariants(&env, &names, &[user.as_str()], true);
    println!(
        "CassandraClusters written: {names:?}; {} creates",
        r.creates
    );
    let deletes: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.resource == "cassandraclusters" && e.verb == "delete")
        .collect();
    assert!(
        deletes.is_empty(),
        "nothing deleted (no MultiCasskop was): {deletes:?}"
    );
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    Ok(())
}
