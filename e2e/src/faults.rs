//! Fault-suite support: many-resource rollouts, a seeded random source, random JSON, and the
//! invariants checked on kubesim's audit log and final state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::{Value, json};

use crate::audit;
use crate::benchmark::{create_all, is_ready, mc_api, mc_object};
use crate::{Env, NAMESPACE};

/// A small seeded random source (xorshift64*), so a failing run can be replayed with its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `FAULTS_SEED` when set, else from the clock; the seed is printed.
    pub fn from_env(label: &str) -> Self {
        let seed = std::env::var("FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("{label}: FAULTS_SEED={seed}");
        Self::new(seed)
    }

    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi` (`lo` when empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }

    /// A random duration in `lo..hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
}

/// Strings a fuzzer should try: real field names, good and bad Kubernetes names, odd text.
const WORDS: [&str; 24] = [
    "metadata",
    "spec",
    "name",
    "namespace",
    "labels",
    "annotations",
    "apiVersion",
    "kind",
    "CassandraCluster",
    "db.orange.com/v2",
    "v1",
    "cassandraImage",
    "topology",
    "dc",
    "rack",
    "nodesPerRacks",
    "cc-1",
    "",
    "UPPER_case",
    "a.b.c",
    "ünïcødé",
    "-bad-",
    "finalizers",
    "status",
];

/// A random string: a word from [`WORDS`], a site name, or random characters (sometimes long).
pub fn random_string(rng: &mut Rng, sites: &[String]) -> String {
    match rng.range(0, 6) {
        0..=2 => rng.pick(&WORDS).to_string(),
        3 if !sites.is_empty() => rng.pick(sites).clone(),
        4 => {
            let n = rng.range(0, 12);
            (0..n)
                .map(|_| *rng.pick(&['a', 'z', '0', '-', '.', '_', 'Q', '/', ' ', 'é']))
                .collect()
        }
        _ => "x".repeat(rng.range(60, 300) as usize),
    }
}

/// Random JSON up to `depth` levels deep.
pub fn random_json(rng: &mut Rng, depth: u32, sites: &[String]) -> Value {
    let leaf = depth == 0 || rng.chance(0.35);
    match rng.range(0, if leaf { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(0.5)),
        2 => {
            if rng.chance(0.5) {
                json!(rng.next_u64() as i64)
            } else {
                json!((rng.next_u64() % 100_000) as f64 / 7.0)
            }
        }
        3 | 4 => Value::String(random_string(rng, sites)),
        5 => Value::Array(
            (0..rng.range(0, 4))
                .map(|_| random_json(rng, depth - 1, sites))
                .collect(),
        ),
        _ => random_object(rng, depth, sites),
    }
}

/// A random JSON object (keys from [`random_string`]) up to `depth` levels deep.
pub fn random_object(rng: &mut Rng, depth: u32, sites: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for _ in 0..rng.range(0, 5) {
        let k = random_string(rng, sites);
        let v = random_json(rng, depth.saturating_sub(1), sites);
        m.insert(k, v);
    }
    Value::Object(m)
}

/// A fuzzed MultiCasskop spec that still fits the CRD schema (an API server would refuse
/// anything else): `base` an object, `override` a map of objects; both with random content,
/// sometimes built around a plausible CassandraCluster so that deeper checks are reached.
pub fn random_mc_spec(rng: &mut Rng, sites: &[String]) -> Value {
    let mut base = random_object(rng, 4, sites);
    if rng.chance(0.6) {
        let b = base.as_object_mut().expect("an object");
        if rng.chance(0.8) {
            b.insert("apiVersion".into(), json!("db.orange.com/v2"));
            b.insert("kind".into(), json!("CassandraCluster"));
        }
        if rng.chance(0.8) {
            let name = if rng.chance(0.7) {
                json!(format!("fuzz-cc-{}", rng.range(0, 1000)))
            } else {
                random_json(rng, 1, sites)
            };
            let mut meta = match b.get("metadata") {
                Some(Value::Object(m)) if rng.chance(0.5) => m.clone(),
                _ => serde_json::Map::new(),
            };
            meta.insert("name".into(), name);
            b.insert("metadata".into(), Value::Object(meta));
        }
    }
    let mut overrides = serde_json::Map::new();
    for _ in 0..rng.range(0, 4) {
        let key = if rng.chance(0.7) && !sites.is_empty() {
            rng.pick(sites).clone()
        } else {
            random_string(rng, sites)
        };
        overrides.insert(key, random_object(rng, 3, sites));
    }
    json!({"base": base, "override": overrides})
}

/// CassandraClusters (db.orange.com/v2) of [`NAMESPACE`] through `client`.
pub fn cc_api(client: kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client,
        NAMESPACE,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("db.orange.com", "v2", "CassandraCluster"),
            "cassandraclusters",
        ),
    )
}

/// Set the base image of MultiCasskop `name` (a spec change that rolls out site by site).
pub async fn set_image(env: &Env, name: &str, image: &str) -> anyhow::Result<()> {
    mc_api(env.local().client().await)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"base": {"spec": {"cassandraImage": image}}}})),
        )
        .await
        .with_context(|| format!("patching the image of MultiCasskop {NAMESPACE}/{name}"))?;
    Ok(())
}

/// Wait until every MultiCasskop of `expected` (name -> image) is Ready and every one of its
/// CassandraClusters (same name, at every site of `env`) is Running/Done with that image.
pub async fn wait_converged(
    env: &Env,
    expected: &BTreeMap<String, String>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let problems = convergence_problems(env, expected).await?;
        if problems.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "not converged after {timeout:?}: {} problem(s), first: {:#?}",
                problems.len(),
                &problems[..problems.len().min(8)]
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Creates one MultiCasskop per name in `names` (its CassandraCluster named the same) over
/// `sites`, all with `image`, `concurrency` at a time. Returns name → image: what
/// [`wait_converged`] expects.
pub async fn create_fleet(
    api: &Api<DynamicObject>,
    names: impl IntoIterator<Item = String>,
    sites: &[String],
    image: &str,
    concurrency: usize,
) -> anyhow::Result<BTreeMap<String, String>> {
    let expected: BTreeMap<String, String> = names
        .into_iter()
        .map(|name| (name, image.to_string()))
        .collect();
    let objects = expected
        .keys()
        .map(|name| mc_object(name, name, sites, image))
        .collect();
    create_all(api, objects, concurrency).await?;
    Ok(expected)
}

/// What keeps `expected` from being converged (empty when it is).
pub async fn convergence_problems(
    env: &Env,
    expected: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mcs = mc_api(env.local().client().await)
        .list(&ListParams::default())
        .await
        .context("listing MultiCasskops in the local cluster")?;
    let by_name: BTreeMap<String, Value> = mcs
        .items
        .into_iter()
        .filter_map(|o| Some((o.metadata.name.clone()?, serde_json::to_value(o).ok()?)))
        .collect();
    for name in expected.keys() {
        match by_name.get(name) {
            None => problems.push(format!("MultiCasskop {name} is missing")),
            Some(mc) if !is_ready(mc) => problems.push(format!(
                "MultiCasskop {name} not Ready: {}",
                mc["status"]["conditions"]
            )),
            Some(_) => {}
        }
    }
    for site in env.names() {
        let ccs = cc_api(env.sim.cluster(site).client().await)
            .list(&ListParams::default())
            .await
            .with_context(|| format!("listing CassandraClusters in {site}"))?;
        let by_name: BTreeMap<String, DynamicObject> = ccs
            .items
            .into_iter()
            .filter_map(|o| Some((o.metadata.name.clone()?, o)))
            .collect();
        for (name, image) in expected {
            let Some(cc) = by_name.get(name) else {
                problems.push(format!("{site}: CassandraCluster {name} is missing"));
                continue;
            };
            let d = &cc.data;
            if d["spec"]["cassandraImage"] != json!(image)
                || d["status"]["phase"] != "Running"
                || d["status"]["lastClusterActionStatus"] != "Done"
            {
                problems.push(format!(
                    "{site}: CassandraCluster {name} has image {} phase {} action status {} (want {image} Running/Done)",
                    d["spec"]["cassandraImage"],
                    d["status"]["phase"],
                    d["status"]["lastClusterActionStatus"]
                ));
            }
        }
    }
    Ok(problems)
}

/// What the invariant check found (figures printed by the tests).
#[derive(Clone, Debug, Default)]
pub struct InvariantReport {
    pub controller_writes: usize,
    pub handoffs: usize,
    pub creates: usize,
    pub violations: Vec<String>,
}

/// Check the fault suite's invariants on the whole audit log for CassandraClusters `names`
/// (written by `controller_users`):
/// - never two sites of one MultiCasskop in progress together (a controller write to a site
///   while another site still waits for CassKop's Running/Done after our write);
/// - no CassandraCluster deleted (by anyone) unless `deletes_allowed`;
/// - no duplicate creates: each (cluster, namespace, name) created once, one uid throughout.
pub fn check_invariants(
    env: &Env,
    names: &[String],
    controller_users: &[&str],
    deletes_allowed: bool,
) -> InvariantReport {
    let entries = env.sim.audit();
    let mut r = InvariantReport::default();
    for name in names {
        let a = audit::analyze(&entries, controller_users, name, 0);
        r.handoffs += a.handoffs_us.len();
        r.violations
            .extend(a.violations.into_iter().map(|v| format!("{name}: {v}")));
    }
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut creates: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut uids: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for e in &entries {
        if e.resource != "cassandraclusters" || !(200..300).contains(&e.code) {
            continue;
        }
        let key = (e.cluster.clone(), e.namespace.clone(), e.name.clone());
        if matches!(e.verb.as_str(), "delete" | "deletecollection") && !deletes_allowed {
            r.violations.push(format!(
                "seq {}: {} {} CassandraCluster {}/{} in {} without deleteCassandraCluster",
                e.seq, e.user, e.verb, e.namespace, e.name, e.cluster
            ));
        }
        if !wanted.contains(e.name.as_str()) {
            continue;
        }
        if controller_users.contains(&e.user.as_str())
            && matches!(e.verb.as_str(), "create" | "update" | "patch")
        {
            r.controller_writes += 1;
        }
        if e.code == 201 {
            r.creates += 1;
            *creates.entry(key.clone()).or_default() += 1;
        }
        if let Some(uid) = e
            .object
            .as_ref()
            .and_then(|o| o["metadata"]["uid"].as_str())
        {
            uids.entry(key).or_default().insert(uid.to_string());
        }
    }
    for ((cluster, ns, name), n) in creates {
        if n > 1 {
            r.violations.push(format!(
                "CassandraCluster {ns}/{name} created {n} times in {cluster}"
            ));
        }
    }
    for ((cluster, ns, name), set) in uids {
        if set.len() > 1 {
            r.violations.push(format!(
                "CassandraCluster {ns}/{name} in {cluster} had {} different uids (re-created)",
                set.len()
            ));
        }
    }
    r
}

/// Keep a copy of a controller log under target/faults-logs/ (the test's temporary directory
/// goes away with it); returns the copy's path.
pub fn keep_log(ctl: &crate::ControllerProcess, name: &str) -> std::path::PathBuf {
    let dir = crate::workspace_root().join("target").join("faults-logs");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}.log"));
    let _ = std::fs::write(&path, ctl.logs());
    path
}

/// For a failure message: the controller's last lines and where its whole log was kept.
pub fn failure_log(ctl: &crate::ControllerProcess, name: &str) -> String {
    let path = keep_log(ctl, name);
    format!(
        "controller log kept in {}; its end:\n{}",
        path.display(),
        crate::controller_log_tail(&ctl.logs(), 40)
    )
}

/// The controller's log must not show a panic.
pub fn assert_no_panic(log: &str, label: &str) {
    let panics: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("panicked at") || l.contains("RUST_BACKTRACE"))
        .collect();
    assert!(
        panics.is_empty(),
        "{label} panicked:\n{}",
        panics.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_in_range() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..1000 {
            let x = a.range(3, 9);
            assert_eq!(x, b.range(3, 9));
            assert!((3..9).contains(&x));
        }
    }

    #[test]
    fn random_specs_fit_the_crd_schema() {
        let sites = vec!["a".to_string(), "b".to_string()];
        let mut rng = Rng::new(7);
        for _ in 0..500 {
            let s = random_mc_spec(&mut rng, &sites);
            assert!(s["base"].is_object());
            assert!(
                s["override"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(Value::is_object)
            );
        }
    }
}

/// What CassKop's real CassandraCluster CRD does with a document of [`schema_hostile_mc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaFate {
    /// Refused with 422: the first site is Blocked, its message names the field.
    Refused,
    /// Pruned: the first site stores the rest, `droppedFields` names the field.
    Pruned,
}

/// How many documents [`schema_hostile_mc`] knows.
pub const SCHEMA_HOSTILE_KINDS: usize = 8;

/// A MultiCasskop named `name` over `sites` (like [`crate::benchmark::mc_object`]) carrying one
/// field CassKop's real CRD refuses or prunes, the `which`-th of [`SCHEMA_HOSTILE_KINDS`]: the
/// field path as the site names it, and what the site does with it.
pub fn schema_hostile_mc(
    which: usize,
    name: &str,
    sites: &[String],
) -> (Value, &'static str, SchemaFate) {
    use SchemaFate::{Pruned, Refused};
    let choices: [(&str, Value, &str, SchemaFate); SCHEMA_HOSTILE_KINDS] = [
        ("nodesPerRacks", json!("abc"), "spec.nodesPerRacks", Refused),
        ("autoPilot", json!("yes"), "spec.autoPilot", Refused),
        ("dataCapacity", json!("a lot"), "spec.dataCapacity", Refused),
        (
            "cassandraImage",
            json!(["x"]),
            "spec.cassandraImage",
            Refused,
        ),
        (
            "topology",
            json!({"dc": [{"name": "dc-1", "rack": [{"name": "rack1"}]}]}),
            "spec.topology.dc[0].name",
            Refused,
        ),
        (
            "topology",
            json!({"dc": [{"name": "dc1", "nodesPerRack": 2, "rack": [{"name": "rack1"}]}]}),
            "spec.topology.dc[0].nodesPerRack",
            Pruned,
        ),
        (
            "topology",
            json!({"dc": [{"name": "dc1", "rack": [{"name": "rack1", "zone": "a"}]}]}),
            "spec.topology.dc[0].rack[0].zone",
            Pruned,
        ),
        (
            "resources",
            json!({"limits": {"memory": "512Mi"}, "limit": {"cpu": "1"}}),
            "spec.resources.limit",
            Pruned,
        ),
    ];
    let (key, value, path, fate) = choices[which % SCHEMA_HOSTILE_KINDS].clone();
    let mut mc = mc_object(name, name, sites, "cassandra:3.11.9");
    if key == "topology" {
        // The first site's own topology carries the field (an override wins over the base).
        mc["spec"]["override"][&sites[0]]["spec"]["topology"] = value;
    } else {
        mc["spec"]["base"]["spec"][key] = value;
    }
    (mc, path, fate)
}
