//! Creating a site's CassandraCluster: a create that never takes over an object someone else
//! made under that name, and whose fields become ours as server-side apply at our first apply
//! (a field dropped from the spec later is pruned).

use std::time::Duration;

use e2e::{ControllerProcess, Env, NAMESPACE, condition, controller_log_tail, eventually};
use kube::api::{Api, DynamicObject, PostParams};
use kubesim::fixtures::cc_resource;
use serde_json::{Value, json};

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";
const WAIT: Duration = Duration::from_secs(240);

fn tail(ctl: &ControllerProcess) -> String {
    controller_log_tail(&ctl.logs(), 60)
}

fn multicasskop(name: &str, cc: &str, spec: &Value) -> Value {
    json!({
        "apiVersion": "db.orange.com/v2",
        "kind": "MultiCasskop",
        "metadata": {"name": name},
        "spec": {
            "base": {
                "apiVersion": "db.orange.com/v2",
                "kind": "CassandraCluster",
                "metadata": {"name": cc},
                "spec": spec
            },
            "override": {
                C1: {"spec": {"topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}]}}},
                C2: {"spec": {"topology": {"dc": [{"name": "dc2", "rack": [{"name": "rack1"}]}]}}}
            }
        }
    })
}

async fn ready(ctl: &ControllerProcess) -> anyhow::Result<()> {
    eventually(
        "the controller to be ready",
        Duration::from_secs(60),
        || async { Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(())) },
    )
    .await
}

/// The CassandraCluster `name` at `site` with its managedFields (kubectl hides them).
async fn cc_with_managed_fields(
    env: &Env,
    site: &str,
    name: &str,
) -> anyhow::Result<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        env.sim.cluster(site).client().await,
        NAMESPACE,
        &cc_resource(),
    );
    Ok(api.get(name).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_someone_else_created_under_the_name_is_never_taken_over() -> anyhow::Result<()> {
    let env = Env::start(&[C1, C2]).await?;
    // Someone else's CassandraCluster under the name the controller will create at site 2. It
    // carries none of our owner labels, so the controller's site cache never holds it: only
    // the create finds it.
    let foreign = json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
        "metadata": {"name": "cassandra-race", "namespace": NAMESPACE},
        "spec": {"cassandraImage": "cassandra:4.0", "nodesPerRacks": 1}});
    let api: Api<DynamicObject> = Api::namespaced_with(
        env.sim.cluster(C2).client().await,
        NAMESPACE,
        &cc_resource(),
    );
    let object: DynamicObject = serde_json::from_value(foreign)?;
    api.create(&PostParams::default(), &object).await?;
    let ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    env.apply_yaml(
        &multicasskop(
            "race",
            "cassandra-race",
            &json!({"cassandraImage": "cassandra:3.11.9", "nodesPerRacks": 1}),
        )
        .to_string(),
    )?;
    let (_, reason, message) = eventually(
        "the rollout to block on the foreign object",
        WAIT,
        || async {
            let mc = env.get_mc("race")?;
            Ok(
                (mc["status"]["phase"] == "Blocked" && mc["status"]["currentSite"] == C2)
                    .then(|| condition(&mc, "Progressing"))
                    .flatten(),
            )
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl)))?;
    println!("Progressing: {reason}: {message}");
    let mc = env.get_mc("race")?;
    let site2 = mc["status"]["sites"][1]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        site2.contains("not created by this MultiCasskop") && site2.contains(C2),
        "the site says the object is someone else's: {site2}"
    );

    // The controller's only write to that name at site 2 is a create refused with 409.
    let user = Env::sa_user("multi-casskop");
    let audit = env.sim.cluster(C2).audit();
    let writes: Vec<(String, u16)> = audit
        .into_iter()
        .filter(|e| {
            e.user == user
                && e.resource == "cassandraclusters"
                // A create names no object in its path (the audit log has it when it succeeded).
                && (e.name == "cassandra-race" || e.name.is_empty())
                && matches!(e.verb.as_str(), "create" | "update" | "patch" | "delete")
        })
        .map(|e| (e.verb, e.code))
        .collect();
    println!("controller writes to cassandra-race at {C2}: {writes:?}");
    assert!(!writes.is_empty(), "the controller tried to create it");
    assert!(
        writes
            .iter()
            .all(|(verb, code)| verb == "create" && *code == 409),
        "only creates answered 409 AlreadyExists: {writes:?}"
    );
    let cc = cc_with_managed_fields(&env, C2, "cassandra-race").await?;
    assert_eq!(
        cc.data["spec"]["cassandraImage"], "cassandra:4.0",
        "left untouched"
    );
    assert!(
        cc.metadata.labels.unwrap_or_default().is_empty(),
        "no owner labels added"
    );
    assert!(
        !cc.metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|m| m.manager.as_deref() == Some("multi-casskop")),
        "no field of it is ours"
    );
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_dropped_from_the_spec_after_the_create_is_pruned() -> anyhow::Result<()> {
    let env = Env::start(&[C1, C2]).await?;
    let ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    let with =
        json!({"cassandraImage": "cassandra:3.11.9", "nodesPerRacks": 1, "maxPodUnavailable": 1});
    env.apply_yaml(&multicasskop("prune", "cassandra-prune", &with).to_string())?;
    let settled = |generation: i64| {
        let env = &env;
        move || async move {
            let mc = env.get_mc("prune")?;
            Ok((mc["status"]["observedGeneration"] == generation
                && condition(&mc, "Ready").is_some_and(|c| c.0 == "True"))
            .then_some(()))
        }
    };
    eventually("the first rollout", WAIT, settled(1))
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl)))?;
    for site in [C1, C2] {
        let cc = env.get_cc(site, "cassandra-prune")?.expect("created");
        assert_eq!(cc["spec"]["maxPodUnavailable"], 1, "{site}");
    }
    let without = json!({"cassandraImage": "cassandra:3.11.9", "nodesPerRacks": 1});
    env.apply_yaml(&multicasskop("prune", "cassandra-prune", &without).to_string())?;
    eventually("the change rollout", WAIT, settled(2))
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl)))?;
    for site in [C1, C2] {
        let cc = cc_with_managed_fields(&env, site, "cassandra-prune").await?;
        let ours: Vec<String> = cc
            .metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .filter(|m| m.manager.as_deref() == Some("multi-casskop"))
            .map(|m| format!("{:?}/{:?}", m.operation, m.subresource))
            .collect();
        assert_eq!(
            ours,
            ["Some(\"Apply\")/None"],
            "{site}: the create's fields are owned as an apply"
        );
        assert!(
            cc.data["spec"].get("maxPodUnavailable").is_none(),
            "{site}: the dropped field is pruned: {}",
            cc.data["spec"]
        );
    }
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}

/// Whether the CassandraCluster JSON says Running/Done.
fn running_done(cc: &Value) -> bool {
    cc["status"]["phase"] == "Running" && cc["status"]["lastClusterActionStatus"] == "Done"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casskop_finishing_before_our_create_is_answered_still_counts_the_site_done()
-> anyhow::Result<()> {
    let env = Env::start(&[C1, C2]).await?;
    // The create is stored, but its answer waits until CassKop has finished with the new object:
    // CassKop writes nothing more after the answer. The site must count as done all the same.
    let client1 = env.sim.cluster(C1).client().await;
    env.sim.cluster(C1).hooks().before_answer(
        "create",
        "cassandraclusters",
        "cassandra-late",
        201,
        Box::new(move || {
            Box::pin(async move {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client1, NAMESPACE, &cc_resource());
                for _ in 0..100 {
                    if let Ok(Some(cc)) = api.get_opt("cassandra-late").await
                        && running_done(&serde_json::to_value(&cc).unwrap_or_default())
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        }),
    );
    let ctl = env.start_controller("controller", &[])?;
    ready(&ctl).await?;
    env.apply_yaml(
        &multicasskop(
            "late",
            "cassandra-late",
            &json!({"cassandraImage": "cassandra:3.11.9", "nodesPerRacks": 1}),
        )
        .to_string(),
    )?;
    eventually("the MultiCasskop to be Ready", WAIT, || async {
        let mc = env.get_mc("late")?;
        Ok(condition(&mc, "Ready").filter(|(status, _, _)| status == "True"))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&ctl)))?;
    let cc = cc_with_managed_fields(&env, C1, "cassandra-late").await?;
    let ours: Vec<String> = cc
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter(|m| m.manager.as_deref() == Some("multi-casskop"))
        .filter_map(|m| m.operation.clone())
        .collect();
    assert_eq!(
        ours,
        ["Update"],
        "nothing written after the create: its fields become an apply's at our first apply"
    );
    assert!(
        env.get_cc(C2, "cassandra-late")?.is_some(),
        "site 2 followed"
    );
    assert!(!ctl.logs().contains("panicked"), "the controller panicked");
    Ok(())
}
