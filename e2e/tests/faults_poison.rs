//! Fault suite: objects the API server accepted but the controller cannot decode (nesting deeper
//! than serde_json's 128 levels, a type our structs reject) stay alone. Created before the
//! controller starts, so they are in its very first lists: a MultiCasskop nesting 200 deep in
//! `base`, one whose `spec.siteOrder` is a string, a ClientConfig nesting 200 deep and an owned
//! CassandraCluster nesting 200 deep at a site. The healthy MultiCasskops next to them (one on a
//! `--remote` site, one on a ClientConfig site) roll out and become Ready; the undecodable
//! MultiCasskops get `Valid=False` naming the field; the undecodable ClientConfig's site is
//! reported; fixing an undecodable MultiCasskop lets it roll out.
//!
//! The MultiCasskop and ClientConfig CRDs are swapped for ones whose `spec` is open
//! (`x-kubernetes-preserve-unknown-fields`), as a hand-written or older CRD may be: with the
//! chart's CRDs the API server itself would refuse the wrong type or prune the deep field.

use std::time::Duration;

use e2e::benchmark::is_ready;
use e2e::chart::client_config_crd;
use e2e::clientconfigs::{
    apply, client_config, kubeconfig_for, kubeconfig_secret, multicasskop, start_controller_with,
    write_kubeconfig,
};
use e2e::faults::{check_invariants, failure_log};
use e2e::{ControllerProcess, Env, NAMESPACE, condition, eventually};
use serde::Deserialize;
use serde_json::{Value, json};

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";
const C3: &str = "k8s-cluster3";
/// A ClientConfig site whose ClientConfig cannot be decoded.
const POISON_SITE: &str = "k8s-poison";
const WAIT: Duration = Duration::from_secs(240);
const CTL_SA: &str = "multi-casskop";

/// `{"a":{"a":...1...}}`, `depth` levels.
fn nested(depth: usize) -> Value {
    let text = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    parse_unbounded(text.as_bytes())
}

/// serde_json without its recursion limit: the test reads back what the controller cannot.
fn parse_unbounded(bytes: &[u8]) -> Value {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    Value::deserialize(&mut de).expect("JSON")
}

/// POST `body` as JSON to `path` of `cluster`, not decoding the answer (it may be too deep).
async fn post_raw(cluster: &kubesim::Cluster, path: &str, body: &Value) -> anyhow::Result<()> {
    let req = http::Request::builder()
        .method("POST")
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body)?)?;
    cluster.client().await.request_text(req).await?;
    Ok(())
}

/// Replace CRD `name` by the same CRD with its `spec` schema left open.
fn open_spec(env: &Env, mut crd: Value) -> anyhow::Result<()> {
    for v in crd["spec"]["versions"].as_array_mut().expect("versions") {
        v["schema"]["openAPIV3Schema"]["properties"]["spec"] =
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    }
    env.kubectl_stdin(&["replace", "-f", "-"], crd.to_string().as_bytes())?;
    Ok(())
}

/// The status of MultiCasskop `name` (its object may be too deep for serde_json's default).
fn status_of(env: &Env, name: &str) -> anyhow::Result<Value> {
    let out = env.kubectl(&["get", "multicasskop", name, "-o", "json"])?;
    let mc = parse_unbounded(out.as_bytes());
    Ok(json!({"metadata": {"generation": mc["metadata"]["generation"]}, "status": mc["status"]}))
}

/// The message of condition `type_` of `name` when its status is "False".
async fn condition_false(env: &Env, name: &str, type_: &str) -> anyhow::Result<String> {
    eventually(&format!("{type_}=False on {name}"), WAIT, || async {
        let v = status_of(env, name)?;
        Ok(condition(&v, type_).and_then(|(s, _, m)| (s == "False").then_some(m)))
    })
    .await
}

async fn wait_ready(env: &Env, name: &str) -> anyhow::Result<()> {
    eventually(&format!("{name} Ready"), WAIT, || async {
        Ok(is_ready(&env.get_mc(name)?).then_some(()))
    })
    .await
}

/// Poison objects in place before the controller starts: its first lists carry them.
async fn plant_poison(env: &Env) -> anyhow::Result<()> {
    let local = env.sim.cluster(C1);
    let mcs = format!("/apis/db.orange.com/v2/namespaces/{NAMESPACE}/multicasskops");
    let mut deep = multicasskop("deep-base", "deep", "cassandra:3.11.9", &[C1, C2], None);
    deep["spec"]["base"]["spec"]["deep"] = nested(200);
    post_raw(local, &mcs, &deep).await?;
    let mut typed = multicasskop("typed", "typed", "cassandra:3.11.9", &[C1, C2], None);
    typed["spec"]["siteOrder"] = json!(C1);
    apply(env, &typed)?;

    let ccs = format!("/apis/config.k8ssandra.io/v1beta1/namespaces/{NAMESPACE}/clientconfigs");
    let mut cc = client_config(POISON_SITE, "nowhere", None);
    cc["spec"]["deep"] = nested(200);
    post_raw(local, &ccs, &cc).await?;

    // An owned CassandraCluster at C2 (owner: a MultiCasskop that does not exist).
    let cassandras = format!("/apis/db.orange.com/v2/namespaces/{NAMESPACE}/cassandraclusters");
    let labels = json!({
        "multicasskop.db.orange.com/owner-name": "ghost",
        "multicasskop.db.orange.com/owner-namespace": NAMESPACE,
        "multicasskop.db.orange.com/site": C2,
    });
    let ghost = json!({
        "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
        "metadata": {"name": "ghost", "namespace": NAMESPACE, "labels": labels},
        "spec": {"nodesPerRacks": 1, "deep": nested(200)},
    });
    post_raw(env.sim.cluster(C2), &cassandras, &ghost).await?;
    Ok(())
}

/// Three clusters; C3 comes from a ClientConfig; open CRDs; poison planted; controller started.
async fn setup() -> anyhow::Result<(Env, ControllerProcess)> {
    let env = Env::start(&[C1, C2, C3]).await?;
    let mc_crd = env.kubectl(&["get", "crd", "multicasskops.db.orange.com", "-o", "json"])?;
    open_spec(&env, serde_json::from_str(&mc_crd)?)?;
    apply(&env, &client_config_crd()?)?;
    let cc_crd = env.kubectl(&[
        "get",
        "crd",
        "clientconfigs.config.k8ssandra.io",
        "-o",
        "json",
    ])?;
    open_spec(&env, serde_json::from_str(&cc_crd)?)?;

    let c3 = env.sim.cluster(C3);
    let kc3 = kubeconfig_for(c3, C3, &c3.issue_token(NAMESPACE, "dc3-site", None));
    apply(&env, &kubeconfig_secret("dc3-kubeconfig", &kc3))?;
    apply(&env, &client_config(C3, "dc3-kubeconfig", None))?;
    plant_poison(&env).await?;

    let kc = env.dir.path().join("poison-kubeconfig");
    let (c1, c2) = (env.sim.cluster(C1), env.sim.cluster(C2));
    write_kubeconfig(
        &kc,
        &[
            (c1, c1.issue_token(NAMESPACE, CTL_SA, None)),
            (c2, c2.issue_token(NAMESPACE, CTL_SA, None)),
        ],
    )?;
    let ctl = start_controller_with(&env, "poison", &kc, C1, &[C2], &[])?;
    Ok((env, ctl))
}

async fn poison_objects_stay_alone(env: &Env) -> anyhow::Result<()> {
    // Healthy neighbours: on the --remote site (which holds the undecodable CassandraCluster)
    // and on the ClientConfig site (listed next to the undecodable ClientConfig).
    apply(
        env,
        &multicasskop("healthy-remote", "hr", "cassandra:3.11.9", &[C1, C2], None),
    )?;
    apply(
        env,
        &multicasskop("healthy-cc", "hc", "cassandra:3.11.9", &[C1, C3], None),
    )?;
    apply(
        env,
        &multicasskop(
            "on-poison",
            "op",
            "cassandra:3.11.9",
            &[C1, POISON_SITE],
            None,
        ),
    )?;
    wait_ready(env, "healthy-remote").await?;
    wait_ready(env, "healthy-cc").await?;
    assert!(env.get_cc(C2, "hr")?.is_some() && env.get_cc(C3, "hc")?.is_some());

    let deep = condition_false(env, "deep-base", "Valid").await?;
    assert_eq!(
        deep,
        format!(
            "MultiCasskop {NAMESPACE}/deep-base cannot be decoded: spec.base.spec.deep.… nests \
             deeper than 128 levels, the most this controller decodes"
        )
    );
    let typed = condition_false(env, "typed", "Valid").await?;
    assert_eq!(
        typed,
        format!(
            "MultiCasskop {NAMESPACE}/typed cannot be decoded: spec.siteOrder: invalid type: \
             string \"{C1}\", expected a sequence"
        )
    );
    eventually(
        "an Event naming the undecodable MultiCasskop",
        WAIT,
        || async {
            let out = env.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
            let events: Value = serde_json::from_str(&out)?;
            Ok(events["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| {
                    e["regarding"]["name"] == "deep-base"
                        && e["type"] == "Warning"
                        && e["note"].as_str() == Some(deep.as_str())
                })
                .map(|_| ()))
        },
    )
    .await?;
    // The site of the undecodable ClientConfig is reported on the MultiCasskop using it.
    let cc_site = eventually("on-poison naming its site", WAIT, || async {
        let v = env.get_mc("on-poison")?;
        let conds = v["status"]["conditions"].to_string();
        Ok(conds
            .contains(&format!(
                "ClientConfig {NAMESPACE}/{POISON_SITE} cannot be decoded: spec.deep.a.a.…"
            ))
            .then_some(conds))
    })
    .await?;
    println!("ClientConfig site reported: {cc_site}");
    // Nothing was created for the undecodable MultiCasskops, nothing of them at C2.
    assert!(env.get_cc(C1, "deep")?.is_none() && env.get_cc(C1, "typed")?.is_none());

    // Fixed, the undecodable MultiCasskop rolls out like any other.
    apply(
        env,
        &multicasskop(
            "typed",
            "typed",
            "cassandra:3.11.9",
            &[C1, C2],
            Some(&[C1, C2]),
        ),
    )?;
    wait_ready(env, "typed").await?;
    let valid = condition(&env.get_mc("typed")?, "Valid").map(|(s, _, _)| s);
    assert_eq!(valid.as_deref(), Some("True"));

    // The suite's invariants, and the undecodable CassandraCluster left as it was.
    let names = ["hr", "hc", "typed"].map(String::from);
    let users = [Env::sa_user(CTL_SA), Env::sa_user("dc3-site")];
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let r = check_invariants(env, &names, &users, false);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    let ghost = env.kubectl_raw(
        C2,
        &["get", "cassandracluster", "ghost", "-o", "name"],
        None,
    );
    assert!(
        ghost.success(),
        "the undecodable CassandraCluster is gone: {}",
        ghost.stderr
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_objects_never_stop_the_others() -> anyhow::Result<()> {
    let (env, ctl) = setup().await?;
    let result = poison_objects_stay_alone(&env).await;
    result.map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(&ctl, "poison")))
}
