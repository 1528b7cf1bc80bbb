//! The simulated CassKop: a Kubernetes-API-only operator moving CassandraCluster status, StatefulSets and Pods as CassKop does.
//!
//! It talks to its cluster only through `kube::Client` (watchers on `cassandraclusters`, and on
//! the StatefulSets and Pods labelled `app=cassandracluster`, in all namespaces, feeding caches
//! as CassKop's informers do; plus plain writes), so it would behave the same against a real
//! API server.
//!
//! Lifecycle of one CassandraCluster:
//! - new (no acted-on annotation, no `status.phase`): `Initializing/Initializing/Ongoing` at once,
//!   its StatefulSets and (not yet ready) Pods created; after `ready_after`:
//!   `Running/Initializing/Done`, Pods Running/Ready.
//! - a later change of `spec` or `status.seedlist` (compared with the configuration kept in the
//!   annotation [`ACTED_CONFIG_ANNOTATION`]) is noticed only `react_after` after it was first
//!   seen; nothing is written meanwhile. Then `Pending/<action>/Ongoing`, and after `ready_after`
//!   the StatefulSets and Pods are brought in line and the status becomes `Running/<action>/Done`.
//!   A change arriving while an action is ongoing restarts it the same way.
//! - test hooks (annotations): [`HOLD_ANNOTATION`] keeps an ongoing action ongoing, phase
//!   `Pending` (a new cluster moves from `Initializing` to `Pending` when it would have become
//!   ready), until the annotation goes away; [`FAIL_ANNOTATION`] `"true"` ends the action with status `Error`
//!   (phase `Pending`); removing it retries the action.
//! - before a change becomes an action, CassKop's checks run in its order ([`checks`]): what
//!   it refuses is written back into the spec with `lastClusterAction: CorrectCRDConfig` (status
//!   otherwise unchanged); a DC at 0 removed from the topology is deleted (`ActionDeleteDC`); a
//!   DC asked to go to 0 is first checked through pod exec for keyspaces still replicating there
//!   ([`keyspaces`]). A DC added is `Initializing` for its own racks only (phase Initializing),
//!   the other racks keep their status.
//! - with `spec.autoUpdateSeedList`, `status.seedlist` follows the topology (written at creation
//!   and with a DC added; after a DC goes to 0, an `UpdateSeedList` action `react_after` later).
//! - Pods labelled `operation-name`/`operation-status=ToDo` get the operation run ([`pod_ops`])
//!   once the last action is done; the worker looks again every 5 s, as CassKop requeues.
//! - deleting the CassandraCluster deletes its StatefulSets and Pods.
//!
//! Status goes through the main resource (the CRD has no status subresource) as a JSON merge patch
//! of `status` (and the annotation) only, with field manager `casskop`: spec fields set by others
//! are never touched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

mod checks;
mod keyspaces;
mod pod_ops;

use checks::Verdict;

/// The CassandraCluster CRD the simulated CassKop installs (also usable with `kubectl apply -f`).
pub const CRD_YAML: &str = include_str!("../../crds/cassandraclusters.db.orange.com.yaml");
/// Name of the CassandraCluster CRD.
pub const CRD_NAME: &str = "cassandraclusters.db.orange.com";
/// Field manager of every write the simulated CassKop makes.
pub const FIELD_MANAGER: &str = "casskop";
/// Annotation holding the configuration (spec + status.seedlist, JSON) the last action acted on.
pub const ACTED_CONFIG_ANNOTATION: &str = "kubesim.casskop/last-applied-configuration";
/// Test hook: while present (value `Pending`), an ongoing action never completes: it stays
/// `Pending/<action>/Ongoing` (a new cluster goes `Initializing` -> `Pending` after `ready_after`).
pub const HOLD_ANNOTATION: &str = "kubesim.casskop/hold";
/// Test hook: `"true"` makes the current action end in status `Error` (phase `Pending`).
pub const FAIL_ANNOTATION: &str = "kubesim.casskop/fail";

/// Labels CassKop puts on the StatefulSets and Pods it manages.
pub const LABEL_APP: &str = "app";
pub const LABEL_CLUSTER: &str = "cassandracluster";
pub const LABEL_DC: &str = "cassandraclusters.db.orange.com.dc";
pub const LABEL_RACK: &str = "cassandraclusters.db.orange.com.rack";
const APP_VALUE: &str = "cassandracluster";
/// Annotation on Pods/StatefulSets: hash of the pod template they were made from.
const TEMPLATE_HASH_ANNOTATION: &str = "kubesim.casskop/template-hash";
const DEFAULT_IMAGE: &str = "cassandra:3.11";
/// CassKop reconciles every cluster again after this long, changed or not.
const RESYNC: Duration = Duration::from_secs(5);
/// Pause before re-trying after a failed API call.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Timing of the simulated CassKop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasskopOptions {
    /// How long an action stays `Ongoing` before it is `Done`.
    pub ready_after: Duration,
    /// How long after a spec change is first seen before CassKop notices it (the stale window).
    pub react_after: Duration,
}

impl Default for CasskopOptions {
    fn default() -> Self {
        Self {
            ready_after: Duration::from_secs(2),
            react_after: Duration::from_secs(1),
        }
    }
}

/// `db.orange.com/v2` `CassandraCluster`, plural `cassandraclusters`.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", "CassandraCluster"),
        "cassandraclusters",
    )
}

/// The CassandraCluster CRD, parsed from [`CRD_YAML`].
pub fn crd() -> anyhow::Result<CustomResourceDefinition> {
    serde_saphyr::from_str(CRD_YAML).context("parsing the embedded CassandraCluster CRD")
}

/// Create (or replace) the CassandraCluster CRD and wait until it is established and served.
pub async fn install_crd(client: kube::Client) -> anyhow::Result<()> {
    install_crd_object(client, crd()?).await
}

/// [`install_crd`] with another CassandraCluster CRD, e.g. CassKop's real one (see
/// [`crate::fixtures::upstream_file`]).
pub async fn install_crd_object(
    client: kube::Client,
    crd: CustomResourceDefinition,
) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match crds
        .get_opt(CRD_NAME)
        .await
        .with_context(|| format!("reading CRD {CRD_NAME}"))?
    {
        None => match crds.create(&pp, &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_already_exists() => {}
            Err(e) => return Err(e).with_context(|| format!("creating CRD {CRD_NAME}")),
        },
        Some(live) => {
            let mut desired = crd.clone();
            desired.metadata.resource_version = live.metadata.resource_version;
            crds.replace(CRD_NAME, &pp, &desired)
                .await
                .with_context(|| format!("replacing CRD {CRD_NAME}"))?;
        }
    }
    let established = kube::runtime::wait::await_condition(
        crds,
        CRD_NAME,
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .with_context(|| format!("CRD {CRD_NAME} not established after 30s"))?
        .with_context(|| format!("waiting for CRD {CRD_NAME} to be established"))?;
    // Established is set before discovery necessarily serves the resource on a real server.
    let clusters: Api<DynamicObject> = Api::all_with(client, &api_resource());
    let mut last_err = None;
    for _ in 0..100 {
        match clusters.list(&ListParams::default().limit(1)).await {
            Ok(_) => return Ok(()),
            Err(e) => last_err = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(anyhow::anyhow!(
        "CRD {CRD_NAME} established but cassandraclusters not served: {}",
        last_err.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// Run the simulated CassKop until the returned future is dropped (or its task aborted).
///
/// Watches CassandraClusters in all namespaces; each cluster gets its own worker task.
pub async fn run(client: kube::Client, opts: CasskopOptions) -> anyhow::Result<()> {
    let clusters: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource());
    let stream = watcher(clusters, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    // Like CassKop's informers: StatefulSets and Pods are read from watch-fed caches.
    let (caches, feed, sts_stream, pod_stream) = CacheFeed::start(&client);
    futures::pin_mut!(sts_stream);
    futures::pin_mut!(pod_stream);
    let mut workers = Workers {
        client,
        opts,
        caches,
        tasks: JoinSet::new(),
        senders: HashMap::new(),
        keys: HashMap::new(),
    };
    let mut relisted: Option<HashSet<ObjKey>> = None;
    info!("simulated CassKop watching cassandraclusters in all namespaces");
    loop {
        let event = tokio::select! {
            event = stream.next() => match event {
                Some(event) => event,
                None => break,
            },
            Some(ended) = workers.tasks.join_next_with_id() => {
                workers.restart(ended);
                continue;
            }
            Some(res) = sts_stream.next() => {
                feed.apply(&feed.caches.statefulsets, "statefulsets", res);
                continue;
            }
            Some(res) = pod_stream.next() => {
                feed.apply(&feed.caches.pods, "pods", res);
                continue;
            }
        };
        let event = match event {
            Ok(ev) => ev,
            Err(e) => {
                warn!(error = %e, "simulated CassKop: watch on cassandraclusters failed, retrying");
                continue;
            }
        };
        match event {
            watcher::Event::Init => relisted = Some(HashSet::new()),
            watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                let key = obj_key(&obj);
                if let Some(seen) = relisted.as_mut() {
                    seen.insert(key.clone());
                }
                workers.send(key, Some(obj));
            }
            watcher::Event::Delete(obj) => {
                if let Some(tx) = workers.senders.get(&obj_key(&obj)) {
                    tx.send_replace(None);
                }
            }
            watcher::Event::InitDone => {
                // Objects that vanished while the watch was down never get a Delete event.
                if let Some(seen) = relisted.take() {
                    for (key, tx) in &workers.senders {
                        if !seen.contains(key) && tx.borrow().is_some() {
                            tx.send_replace(None);
                        }
                    }
                }
            }
        }
    }
    Err(anyhow::anyhow!(
        "simulated CassKop: watch stream on cassandraclusters ended"
    ))
}

/// One task per CassandraCluster, fed the newest object through a watch channel.
struct Workers {
    client: kube::Client,
    opts: CasskopOptions,
    caches: Caches,
    /// Dropping the JoinSet (when `run` is dropped) aborts every worker.
    tasks: JoinSet<()>,
    senders: HashMap<ObjKey, watch::Sender<Option<DynamicObject>>>,
    keys: HashMap<tokio::task::Id, ObjKey>,
}

impl Workers {
    fn send(&mut self, key: ObjKey, obj: Option<DynamicObject>) {
        match self.senders.get(&key) {
            Some(tx) => {
                tx.send_replace(obj);
            }
            None => self.spawn(key, obj),
        }
    }

    fn spawn(&mut self, key: ObjKey, obj: Option<DynamicObject>) {
        let (tx, rx) = watch::channel(obj);
        let worker = ClusterWorker::new(
            self.client.clone(),
            self.caches.clone(),
            &key,
            self.opts.clone(),
        );
        let span = info_span!("casskop", namespace = %key.0, cassandracluster = %key.1);
        let handle = self.tasks.spawn(worker.run(rx).instrument(span));
        self.keys.insert(handle.id(), key.clone());
        self.senders.insert(key, tx);
    }

    /// A worker only ends by panicking (a bug): say so and start a fresh one from the newest object.
    fn restart(&mut self, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match &ended {
            Ok((id, ())) => *id,
            Err(e) => e.id(),
        };
        let Some(key) = self.keys.remove(&id) else {
            return;
        };
        let latest = self.senders.remove(&key).and_then(|tx| tx.borrow().clone());
        warn!(
            "simulated CassKop: worker for CassandraCluster {}/{} ended ({}); restarting it",
            key.0,
            key.1,
            match &ended {
                Ok(_) => "returned".to_owned(),
                Err(e) => e.to_string(),
            }
        );
        self.spawn(key, latest);
    }
}

/// Caches of the StatefulSets and Pods labelled `app=cassandracluster`, in all namespaces,
/// indexed by (namespace, CassandraCluster) so a worker's lookup does not scan them all.
#[derive(Clone)]
struct Caches {
    statefulsets: Arc<Mutex<ChildIndex>>,
    pods: Arc<Mutex<ChildIndex>>,
    /// How many of the two caches have been filled once.
    filled: watch::Receiver<u8>,
}

type CacheStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send>,
>;

/// The objects of one kind, by (namespace, CassandraCluster label), then by name.
#[derive(Default)]
struct ChildIndex {
    live: HashMap<ObjKey, HashMap<String, Arc<DynamicObject>>>,
    /// Objects of a re-list in progress (they replace `live` once it is complete).
    relist: Option<HashMap<ObjKey, HashMap<String, Arc<DynamicObject>>>>,
}

impl ChildIndex {
    fn key(o: &DynamicObject) -> Option<(ObjKey, String)> {
        let cluster = o.metadata.labels.as_ref()?.get(LABEL_CLUSTER)?.clone();
        let namespace = o.metadata.namespace.clone()?;
        Some(((namespace, cluster), o.metadata.name.clone()?))
    }

    /// Apply one watcher event; true when a (re-)list has just completed.
    fn apply(&mut self, event: watcher::Event<DynamicObject>) -> bool {
        match event {
            watcher::Event::Init => self.relist = Some(HashMap::new()),
            watcher::Event::InitApply(o) => {
                if let (Some(relist), Some((k, name))) = (self.relist.as_mut(), Self::key(&o)) {
                    relist.entry(k).or_default().insert(name, Arc::new(o));
                }
            }
            watcher::Event::InitDone => {
                self.live = self.relist.take().unwrap_or_default();
                return true;
            }
            watcher::Event::Apply(o) => {
                if let Some((k, name)) = Self::key(&o) {
                    self.live.entry(k).or_default().insert(name, Arc::new(o));
                }
            }
            watcher::Event::Delete(o) => {
                if let Some((k, name)) = Self::key(&o)
                    && let Some(objs) = self.live.get_mut(&k)
                {
                    objs.remove(&name);
                    if objs.is_empty() {
                        self.live.remove(&k);
                    }
                }
            }
        }
        false
    }
}

/// Fills the caches from their watch streams (polled by [`run`]).
struct CacheFeed {
    caches: Caches,
    filled: watch::Sender<u8>,
}

impl CacheFeed {
    /// The caches, what fills them, and the streams to poll.
    fn start(client: &kube::Client) -> (Caches, CacheFeed, CacheStream, CacheStream) {
        let config = watcher::Config::default().labels(&format!("{LABEL_APP}={APP_VALUE}"));
        let stream = |ar: ApiResource| -> CacheStream {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            watcher(api, config.clone()).default_backoff().boxed()
        };
        let (filled_tx, filled_rx) = watch::channel(0);
        let caches = Caches {
            statefulsets: Arc::default(),
            pods: Arc::default(),
            filled: filled_rx,
        };
        let feed = CacheFeed {
            caches: caches.clone(),
            filled: filled_tx,
        };
        (
            caches,
            feed,
            stream(ApiResource::erase::<StatefulSet>(&())),
            stream(ApiResource::erase::<Pod>(&())),
        )
    }

    fn apply(
        &self,
        index: &Mutex<ChildIndex>,
        kind: &str,
        res: Result<watcher::Event<DynamicObject>, watcher::Error>,
    ) {
        match res {
            Ok(event) => {
                let listed = index
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .apply(event);
                if listed {
                    self.filled.send_modify(|n| *n = (*n + 1).min(2));
                }
            }
            Err(e) => warn!(error = %e, "simulated CassKop: watch on {kind} failed, retrying"),
        }
    }
}

impl Caches {
    /// Wait until both caches have been filled once.
    async fn ready(&self) -> anyhow::Result<()> {
        let mut filled = self.filled.clone();
        filled
            .wait_for(|n| *n >= 2)
            .await
            .context("the StatefulSet and Pod caches are gone")?;
        Ok(())
    }

    /// Cached objects of CassandraCluster `name` in `namespace`, by name.
    fn of_cluster(
        index: &Mutex<ChildIndex>,
        namespace: &str,
        name: &str,
    ) -> HashMap<String, Arc<DynamicObject>> {
        let index = index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        index
            .live
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default()
    }
}

/// (namespace, name)
type ObjKey = (String, String);

fn obj_key(obj: &DynamicObject) -> ObjKey {
    (
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    )
}

// ---------------------------------------------------------------------------------------------
// Pure helpers: topology, naming, classification.

/// One dc-rack of a CassandraCluster with its node count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RackPlacement {
    pub dc: String,
    pub rack: String,
    pub nodes: i32,
}

impl RackPlacement {
    /// Key used in `status.cassandraRackStatus`: `<dc>-<rack>`.
    pub fn status_key(&self) -> String {
        format!("{}-{}", self.dc, self.rack)
    }
}

fn nodes_value(v: Option<&Value>) -> Option<i32> {
    let v = v?;
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .map(|n| n.clamp(0, i64::from(i32::MAX)) as i32)
}

/// Expand `spec.topology` into dc-racks: a dc's `nodesPerRacks` overrides `spec.nodesPerRacks`
/// (default 1); a dc without racks gets `rack1`; no topology at all means `dc1`/`rack1`.
pub fn expand_topology(spec: &Value) -> Vec<RackPlacement> {
    let default_nodes = nodes_value(spec.get("nodesPerRacks")).unwrap_or(1);
    let dcs = spec
        .pointer("/topology/dc")
        .and_then(Value::as_array)
        .filter(|dcs| !dcs.is_empty());
    let Some(dcs) = dcs else {
        return vec![RackPlacement {
            dc: "dc1".into(),
            rack: "rack1".into(),
            nodes: default_nodes,
        }];
    };
    let mut out = Vec::new();
    for (i, dc) in dcs.iter().enumerate() {
        let dc_name = dc
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("dc{}", i + 1));
        let nodes = nodes_value(dc.get("nodesPerRacks")).unwrap_or(default_nodes);
        let racks: Vec<String> = dc
            .get("rack")
            .and_then(Value::as_array)
            .map(|racks| {
                racks
                    .iter()
                    .enumerate()
                    .map(|(j, r)| {
                        r.get("name")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .unwrap_or_else(|| format!("rack{}", j + 1))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let racks = if racks.is_empty() {
            vec!["rack1".to_owned()]
        } else {
            racks
        };
        for rack in racks {
            out.push(RackPlacement {
                dc: dc_name.clone(),
                rack,
                nodes,
            });
        }
    }
    out
}

/// StatefulSet name CassKop uses: `<cluster>-<dc>-<rack>`.
pub fn statefulset_name(cluster: &str, dc: &str, rack: &str) -> String {
    format!("{cluster}-{dc}-{rack}")
}

/// Pod name of ordinal `i` of a StatefulSet: `<statefulset>-<i>`.
pub fn pod_name(statefulset: &str, i: i32) -> String {
    format!("{statefulset}-{i}")
}

/// Labels CassKop sets on the StatefulSet and Pods of one dc-rack.
pub fn rack_labels(cluster: &str, dc: &str, rack: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_APP.to_owned(), APP_VALUE.to_owned()),
        (LABEL_CLUSTER.to_owned(), cluster.to_owned()),
        (LABEL_DC.to_owned(), dc.to_owned()),
        (LABEL_RACK.to_owned(), rack.to_owned()),
    ])
}

/// The part of a CassandraCluster whose changes make CassKop act: the spec and the seed list
/// (which Multi-CassKop writes into the status).
pub fn acted_config(obj: &Value) -> Value {
    json!({
        "spec": obj.get("spec").cloned().unwrap_or(Value::Null),
        "seedlist": obj.pointer("/status/seedlist").cloned().unwrap_or(Value::Null),
    })
}

fn rolling_restart_racks(spec: &Value) -> HashSet<(String, String)> {
    let mut out = HashSet::new();
    for dc in spec
        .pointer("/topology/dc")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let dc_name = dc.get("name").and_then(Value::as_str).unwrap_or_default();
        for rack in dc
            .get("rack")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if rack.get("rollingRestart").and_then(Value::as_bool) == Some(true) {
                let rack_name = rack.get("name").and_then(Value::as_str).unwrap_or_default();
                out.insert((dc_name.to_owned(), rack_name.to_owned()));
            }
        }
    }
    out
}

/// The `lastClusterAction` CassKop starts for a change from `old` to `new` (both as returned by
/// [`acted_config`]). The first matching rule wins, in CassKop's own order of checks: config
/// map, image, DC/rack removal, node counts, seed list, rolling restart; then resources, and
/// anything else is a StatefulSet update.
pub fn classify_change(old: &Value, new: &Value) -> &'static str {
    let (old_spec, new_spec) = (&old["spec"], &new["spec"]);
    if old_spec.get("configMapName") != new_spec.get("configMapName") {
        return "UpdateConfigMap";
    }
    if old_spec.get("cassandraImage") != new_spec.get("cassandraImage") {
        return "UpdateDockerImage";
    }
    let (old_top, new_top) = (expand_topology(old_spec), expand_topology(new_spec));
    let new_dcs: HashSet<&str> = new_top.iter().map(|p| p.dc.as_str()).collect();
    if old_top.iter().any(|p| !new_dcs.contains(p.dc.as_str())) {
        return "ActionDeleteDC";
    }
    let find = |top: &[RackPlacement], p: &RackPlacement| {
        top.iter()
            .find(|q| q.dc == p.dc && q.rack == p.rack)
            .map(|q| q.nodes)
    };
    if old_top.iter().any(|p| find(&new_top, p).is_none()) {
        return "ActionDeleteRack";
    }
    let grows = new_top
        .iter()
        .any(|p| find(&old_top, p).is_none_or(|old_nodes| p.nodes > old_nodes));
    if grows {
        return "ScaleUp";
    }
    if new_top
        .iter()
        .any(|p| find(&old_top, p).is_some_and(|old_nodes| p.nodes < old_nodes))
    {
        return "ScaleDown";
    }
    if old["seedlist"] != new["seedlist"] {
        return "UpdateSeedList";
    }
    let (old_rr, new_rr) = (
        rolling_restart_racks(old_spec),
        rolling_restart_racks(new_spec),
    );
    if new_rr.difference(&old_rr).next().is_some() {
        return "RollingRestart";
    }
    if old_spec.get("resources") != new_spec.get("resources") {
        return "UpdateResources";
    }
    "UpdateStatefulSet"
}

/// Compare two resourceVersions: true when `candidate` is not older than `current`.
/// They are opaque to clients, but both kube-apiserver and kubesim use increasing integers;
/// anything unparsable is taken as newer.
fn rv_not_older(candidate: Option<&str>, current: Option<&str>) -> bool {
    match (
        candidate.and_then(|s| s.parse::<u64>().ok()),
        current.and_then(|s| s.parse::<u64>().ok()),
    ) {
        (Some(c), Some(cur)) => c >= cur,
        _ => true,
    }
}

/// FNV-1a, so template hashes are stable across processes and Rust versions.
fn stable_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// `resources` as a valid ResourceRequirements: quantities as strings, unknown keys dropped.
fn sanitize_resources(resources: Option<&Value>) -> Value {
    let mut out = Map::new();
    for key in ["limits", "requests"] {
        if let Some(m) = resources
            .and_then(|r| r.get(key))
            .and_then(Value::as_object)
        {
            let q: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k.clone(), Value::String(s.clone()))),
                    Value::Number(n) => Some((k.clone(), Value::String(n.to_string()))),
                    _ => None,
                })
                .collect();
            out.insert(key.to_owned(), Value::Object(q));
        }
    }
    Value::Object(out)
}

/// The pod template of every rack of a cluster (same image/resources/config map everywhere).
fn pod_template(cluster: &str, spec: &Value) -> Value {
    let image = spec
        .get("cassandraImage")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_IMAGE);
    let mut container = json!({
        "name": "cassandra",
        "image": image,
        "ports": [
            {"name": "intra-node", "containerPort": 7000, "protocol": "TCP"},
            {"name": "jmx-port", "containerPort": 7199, "protocol": "TCP"},
            {"name": "cql", "containerPort": 9042, "protocol": "TCP"},
        ],
        "resources": sanitize_resources(spec.get("resources")),
    });
    let mut pod_spec = json!({ "subdomain": cluster, "containers": [] });
    if let Some(cm) = spec.get("configMapName").and_then(Value::as_str) {
        container["volumeMounts"] = json!([{"name": "bootstrap", "mountPath": "/configmap"}]);
        pod_spec["volumes"] = json!([{"name": "bootstrap", "configMap": {"name": cm}}]);
    }
    pod_spec["containers"] = json!([container]);
    pod_spec
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

static NEXT_POD_IP: AtomicU32 = AtomicU32::new(0);

/// A fresh pod IP in 10.244.0.0/16 (then 10.245...), unique within this process.
fn allocate_pod_ip() -> String {
    let n = NEXT_POD_IP.fetch_add(1, Ordering::Relaxed);
    let host = n % 250 + 2;
    let subnet = n / 250;
    format!("10.{}.{}.{}", 244 + (subnet / 256) % 10, subnet % 256, host)
}

fn ready_pod_status(pod_ip: &str, image: &str, pod: &str, now: &str) -> Value {
    let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    json!({
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        "qosClass": "BestEffort",
        "containerStatuses": [{
            "name": "cassandra",
            "ready": true,
            "started": true,
            "restartCount": 0,
            "image": image,
            "imageID": format!("docker.io/library/{image}"),
            "containerID": format!("containerd://{}", stable_hash(&format!("{pod}{now}"))),
            "state": {"running": {"startedAt": now}},
        }],
    })
}

fn pod_is_ready(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
}

fn annotation<'a>(obj: &'a DynamicObject, key: &str) -> Option<&'a str> {
    obj.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

/// One status write of the worker: the cluster's phase and last action, which racks it
/// concerns, and anything else to merge into the same patch.
struct StatusWrite<'a> {
    phase: &'a str,
    action: &'a str,
    action_status: &'a str,
    /// A new action: start times restart and the acted-on annotation is rewritten.
    new_action: bool,
    /// Only these racks (`<dc>-<rack>`) take the action; the others keep their entry.
    only: Option<Vec<String>>,
    extra: Option<Value>,
}

impl<'a> StatusWrite<'a> {
    fn new(phase: &'a str, action: &'a str, action_status: &'a str) -> Self {
        Self {
            phase,
            action,
            action_status,
            new_action: false,
            only: None,
            extra: None,
        }
    }
    fn fresh(mut self) -> Self {
        self.new_action = true;
        self
    }
    fn with(mut self, extra: Option<Value>) -> Self {
        self.extra = extra;
        self
    }
}

/// `spec.autoUpdateSeedList`: CassKop keeps `status.seedlist` in line with the topology.
fn auto_seed_list(spec: &Value) -> bool {
    spec.get("autoUpdateSeedList").and_then(Value::as_bool) == Some(true)
}

/// What one CassandraCluster looks like to CassKop.
struct ClusterView {
    /// The whole object as JSON.
    value: Value,
    /// Configuration the last action acted on (annotation), if any.
    acted: Option<Value>,
    /// Current configuration.
    current: Value,
    phase: Option<String>,
    action: Option<String>,
    action_status: Option<String>,
    held: bool,
    failing: bool,
}

impl ClusterView {
    fn new(obj: &DynamicObject) -> Self {
        let value = serde_json::to_value(obj).unwrap_or(Value::Null);
        let acted =
            annotation(obj, ACTED_CONFIG_ANNOTATION).and_then(|s| serde_json::from_str(s).ok());
        let current = acted_config(&value);
        let text = |p: &str| {
            value
                .pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let held = annotation(obj, HOLD_ANNOTATION)
            .is_some_and(|v| !v.is_empty() && !v.eq_ignore_ascii_case("false"));
        let failing =
            annotation(obj, FAIL_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Self {
            phase: text("/status/phase"),
            action: text("/status/lastClusterAction"),
            action_status: text("/status/lastClusterActionStatus"),
            value,
            acted,
            current,
            held,
            failing,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One worker per CassandraCluster.

struct ClusterWorker {
    namespace: String,
    name: String,
    opts: CasskopOptions,
    caches: Caches,
    clusters: Api<DynamicObject>,
    statefulsets: Api<DynamicObject>,
    pods: Api<DynamicObject>,
    sts_resource: ApiResource,
    pod_resource: ApiResource,
    /// Newest version of the object known (from the watch or from our own write's response);
    /// None once deleted.
    latest: Option<DynamicObject>,
    /// uid of the object the timers below belong to.
    uid: Option<String>,
    /// Children removed after the object went away.
    cleaned: bool,
    /// When a spec change first seen gets noticed.
    notice_at: Option<Instant>,
    /// When the ongoing action completes.
    complete_at: Option<Instant>,
    /// When CassKop looks at a stale seed list again (autoUpdateSeedList).
    seeds_at: Option<Instant>,
    /// Pods whose operation (`operation-name` label) was started, and when.
    ops_started: HashMap<String, Instant>,
}

impl ClusterWorker {
    fn new(client: kube::Client, caches: Caches, key: &ObjKey, opts: CasskopOptions) -> Self {
        let sts_resource = ApiResource::erase::<StatefulSet>(&());
        let pod_resource = ApiResource::erase::<Pod>(&());
        Self {
            namespace: key.0.clone(),
            name: key.1.clone(),
            opts,
            caches,
            clusters: Api::namespaced_with(client.clone(), &key.0, &api_resource()),
            statefulsets: Api::namespaced_with(client.clone(), &key.0, &sts_resource),
            pods: Api::namespaced_with(client, &key.0, &pod_resource),
            sts_resource,
            pod_resource,
            latest: None,
            uid: None,
            cleaned: true,
            notice_at: None,
            complete_at: None,
            seeds_at: None,
            ops_started: HashMap::new(),
        }
    }

    async fn run(mut self, mut rx: watch::Receiver<Option<DynamicObject>>) {
        self.accept(rx.borrow_and_update().clone());
        loop {
            let wake = self.evaluate().await;
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let obj = rx.borrow_and_update().clone();
                    self.accept(obj);
                }
                _ = sleep_until_opt(wake) => {}
            }
        }
    }

    /// Take an object from the watch unless our own write already gave us a newer version.
    fn accept(&mut self, obj: Option<DynamicObject>) {
        match (obj, &self.latest) {
            (None, _) => self.latest = None,
            (Some(new), Some(cur))
                if new.metadata.uid == cur.metadata.uid
                    && !rv_not_older(
                        new.metadata.resource_version.as_deref(),
                        cur.metadata.resource_version.as_deref(),
                    ) => {}
            (Some(new), _) => self.latest = Some(new),
        }
    }

    fn ident(&self) -> String {
        format!("CassandraCluster {}/{}", self.namespace, self.name)
    }

    /// Act on the newest known state; returns when to look again (besides watch changes).
    async fn evaluate(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let Some(obj) = self.latest.clone() else {
            self.uid = None;
            self.notice_at = None;
            self.complete_at = None;
            if !self.cleaned {
                if let Err(e) = self.delete_children(None).await {
                    warn!(error = %format!("{e:#}"), "deleting children of {} failed", self.ident());
                    return Some(now + RETRY_AFTER);
                }
                info!(
                    "{} deleted: its StatefulSets and Pods are gone",
                    self.ident()
                );
                self.cleaned = true;
            }
            return None;
        };
        if self.uid.is_some() && self.uid != obj.metadata.uid {
            // Deleted and re-created faster than the watch could tell us.
            if let Err(e) = self.delete_children(obj.metadata.uid.as_deref()).await {
                warn!(error = %format!("{e:#}"), "deleting children of the previous {} failed", self.ident());
                return Some(now + RETRY_AFTER);
            }
            self.notice_at = None;
            self.complete_at = None;
        }
        self.uid = obj.metadata.uid.clone();
        self.cleaned = false;
        match self.step(&obj, now).await {
            Ok(wake) => wake,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "simulated CassKop: {} (will retry)", self.ident());
                Some(now + RETRY_AFTER)
            }
        }
    }

    async fn step(&mut self, obj: &DynamicObject, now: Instant) -> anyhow::Result<Option<Instant>> {
        let view = ClusterView::new(obj);
        if view.acted.is_none() && view.phase.is_none() {
            info!("new {}: Initializing", self.ident());
            self.ensure_children(&view, false).await?;
            // Like CassKop's defaults, a new cluster gets its seed list (kept up to date by
            // CassKop only with autoUpdateSeedList; Multi-CassKop writes it otherwise).
            let extra = (auto_seed_list(&view.current["spec"])
                && view.value.pointer("/status/seedlist").is_none())
            .then(|| json!({"status": {"seedlist": self.seeds(&view)}}));
            self.write_status(
                &view,
                StatusWrite::new("Initializing", "Initializing", "Ongoing")
                    .fresh()
                    .with(extra),
            )
            .await?;
            self.notice_at = None;
            self.complete_at = Some(now + self.opts.ready_after);
            return Ok(self.complete_at);
        }
        if view.acted.as_ref() != Some(&view.current) {
            // Stale window: the old status stays untouched until react_after has passed.
            let at = *self.notice_at.get_or_insert(now + self.opts.react_after);
            if now < at {
                debug!(
                    "change of {} seen; noticed at the end of the react window",
                    self.ident()
                );
                return Ok(Some(at));
            }
            self.notice_at = None;
            if let Some(acted) = &view.acted
                && self.refused_or_deleted(&view, acted).await?
            {
                self.complete_at = None;
                return Ok(None);
            }
            let new_racks = self.new_racks(&view);
            let (phase, action, scope) = if !new_racks.is_empty() {
                ("Initializing", "Initializing", Some(new_racks))
            } else {
                let action = match &view.acted {
                    Some(acted) => classify_change(acted, &view.current),
                    None => "UpdateStatefulSet",
                };
                ("Pending", action, None)
            };
            info!("{}: change noticed, {action} Ongoing", self.ident());
            self.seeds_at = None;
            // The seeds of a DC added are written with its Initializing (real CassKop follows
            // with an UpdateSeedList of the other racks, not modelled).
            let extra = (action == "Initializing" && auto_seed_list(&view.current["spec"]))
                .then(|| json!({"status": {"seedlist": self.seeds(&view)}}));
            let mut w = StatusWrite::new(phase, action, "Ongoing")
                .fresh()
                .with(extra);
            w.only = scope;
            self.write_status(&view, w).await?;
            self.complete_at = Some(now + self.opts.ready_after);
            return Ok(self.complete_at);
        }
        self.notice_at = None;
        let action = view.action.clone().unwrap_or_else(|| "Initializing".into());
        match view.action_status.as_deref() {
            Some("Ongoing") => {
                let due = *self.complete_at.get_or_insert(now + self.opts.ready_after);
                if now < due {
                    return Ok(Some(due));
                }
                if view.held {
                    // Due but held: Pending/<action>/Ongoing until the annotation goes.
                    if view.phase.as_deref() != Some("Pending") {
                        self.write_status(&view, StatusWrite::new("Pending", &action, "Ongoing"))
                            .await?;
                    }
                    debug!("{}: {action} held by {HOLD_ANNOTATION}", self.ident());
                    return Ok(None);
                }
                let phase = if view.failing {
                    info!(
                        "{}: {action} ends in Error ({FAIL_ANNOTATION})",
                        self.ident()
                    );
                    self.write_status(&view, StatusWrite::new("Pending", &action, "Error"))
                        .await?;
                    "Pending"
                } else {
                    self.ensure_children(&view, true).await?;
                    self.write_status(&view, StatusWrite::new("Running", &action, "Done"))
                        .await?;
                    info!("{}: {action} Done, Running", self.ident());
                    "Running"
                };
                debug!("{}: phase {phase}", self.ident());
                self.complete_at = None;
                Ok(self.seed_list_due(&view, now))
            }
            Some("Error") if !view.failing => {
                info!("{}: retrying {action}", self.ident());
                self.write_status(&view, StatusWrite::new("Pending", &action, "Ongoing"))
                    .await?;
                self.complete_at = Some(now + self.opts.ready_after);
                Ok(self.complete_at)
            }
            _ => {
                self.complete_at = None;
                let seeds = self.update_seed_list(&view, now).await?;
                if self.complete_at.is_some() {
                    return Ok(seeds);
                }
                let ops = self.pod_operations(&view, now).await?;
                // Like CassKop's periodic reconcile: Pod labels asking for an operation are
                // seen without a change of the CassandraCluster.
                let resync = now + RESYNC;
                Ok([seeds, ops].into_iter().flatten().chain([resync]).min())
            }
        }
    }

    /// The seed list CassKop computes for this cluster's spec, merged into the current one.
    fn seeds(&self, view: &ClusterView) -> Vec<String> {
        let wanted = checks::seed_list(&self.name, &self.namespace, &view.current["spec"]);
        let old: Vec<String> = view
            .value
            .pointer("/status/seedlist")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        checks::merge_seeds(&old, &wanted)
    }

    fn seed_list_stale(&self, view: &ClusterView) -> bool {
        auto_seed_list(&view.current["spec"])
            && view.value.pointer("/status/seedlist") != Some(&json!(self.seeds(view)))
    }

    /// After an action, CassKop looks at the seed list again on its next reconcile.
    fn seed_list_due(&mut self, view: &ClusterView, now: Instant) -> Option<Instant> {
        if !self.seed_list_stale(view) {
            return None;
        }
        Some(*self.seeds_at.get_or_insert(now + self.opts.react_after))
    }

    /// With autoUpdateSeedList, a topology whose seeds changed (a DC added, or scaled to 0)
    /// gets its seed list rewritten by an `UpdateSeedList` action.
    async fn update_seed_list(
        &mut self,
        view: &ClusterView,
        now: Instant,
    ) -> anyhow::Result<Option<Instant>> {
        let Some(at) = self.seed_list_due(view, now) else {
            self.seeds_at = None;
            return Ok(None);
        };
        if now < at {
            return Ok(Some(at));
        }
        self.seeds_at = None;
        info!(
            "{}: seed list changed, UpdateSeedList Ongoing",
            self.ident()
        );
        let extra = json!({"status": {"seedlist": self.seeds(view)}});
        self.write_status(
            view,
            StatusWrite::new("Pending", "UpdateSeedList", "Ongoing")
                .fresh()
                .with(Some(extra)),
        )
        .await?;
        self.complete_at = Some(now + self.opts.ready_after);
        Ok(self.complete_at)
    }

    /// dc-racks of the spec that have no entry in `status.cassandraRackStatus` yet (a DC added
    /// to a running cluster).
    fn new_racks(&self, view: &ClusterView) -> Vec<String> {
        let Some(known) = view
            .value
            .pointer("/status/cassandraRackStatus")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
        else {
            return vec![];
        };
        expand_topology(&view.current["spec"])
            .iter()
            .map(RackPlacement::status_key)
            .filter(|k| !known.contains_key(k))
            .collect()
    }

    /// CassKop's checks of a change: a refused change is put back (`CorrectCRDConfig`), a
    /// removed DC deleted (`ActionDeleteDC`); true when the change was handled so.
    async fn refused_or_deleted(
        &mut self,
        view: &ClusterView,
        acted: &Value,
    ) -> anyhow::Result<bool> {
        let status = view.value.get("status").cloned().unwrap_or(Value::Null);
        let (old, new) = (&acted["spec"], &view.current["spec"]);
        let refusal = match checks::check(old, new, &status) {
            Verdict::Accept => None,
            Verdict::Refuse { spec, reason } => Some((spec, reason)),
            Verdict::ScaleDcToZero { dc, rack } => {
                self.scale_to_zero_refusal(old, new, &dc, &rack).await
            }
            Verdict::DeleteDc { dc, racks } => {
                self.delete_dc(view, &dc, &racks).await?;
                return Ok(true);
            }
        };
        let Some((spec, reason)) = refusal else {
            return Ok(false);
        };
        warn!(
            "{}: the operator has refused the change: {reason}; spec put back (CorrectCRDConfig)",
            self.ident()
        );
        let mut extra = json!({"status": {"lastClusterAction": "CorrectCRDConfig"}});
        if let Some(d) = checks::merge_diff(new, &spec) {
            extra["spec"] = d;
        }
        let patch = self.annotated(view, extra);
        self.patch_cluster(&patch, "CorrectCRDConfig").await?;
        Ok(true)
    }

    /// A DC asked to go to 0 is refused (topology put back) while a keyspace still replicates
    /// there, or when no node of its first rack can tell.
    async fn scale_to_zero_refusal(
        &self,
        old: &Value,
        new: &Value,
        dc: &str,
        rack: &str,
    ) -> Option<(Value, String)> {
        let mut spec = new.clone();
        spec["topology"] = old.get("topology").cloned().unwrap_or(Value::Null);
        let selector = format!(
            "{LABEL_APP}={APP_VALUE},{LABEL_CLUSTER}={},{LABEL_DC}={dc},{LABEL_RACK}={rack}",
            self.name
        );
        let pods = match self
            .pods
            .list(&ListParams::default().labels(&selector))
            .await
        {
            Ok(p) => p.items,
            Err(e) => {
                return Some((
                    spec,
                    format!("ScaleDown of DC {dc} to 0: no pod found ({e})"),
                ));
            }
        };
        let Some(pod) = pods.iter().find(|p| {
            p.data.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
                && p.metadata.deletion_timestamp.is_none()
        }) else {
            // No node left in the DC: nothing to ask, nothing replicated there.
            return None;
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let pod_api: Api<Pod> = Api::namespaced(self.pods.clone().into_client(), &self.namespace);
        match keyspaces::with_data_in_dc(&pod_api, &pod_name, dc).await {
            Ok(ks) if ks.is_empty() => {
                info!(
                    "{}: no more replicated data in DC {dc}, it can scale down to 0",
                    self.ident()
                );
                None
            }
            Ok(ks) => Some((
                spec,
                format!("ScaleDown of DC {dc} to 0: keyspaces still having data {ks:?}"),
            )),
            Err(e) => Some((
                spec,
                format!("ScaleDown of DC {dc} to 0: asking {pod_name} failed: {e:#}"),
            )),
        }
    }

    /// Delete the StatefulSets and Services of a removed DC's racks and drop them from the status.
    async fn delete_dc(
        &mut self,
        view: &ClusterView,
        dc: &str,
        racks: &[String],
    ) -> anyhow::Result<()> {
        info!("{}: removing DC {dc} (ActionDeleteDC)", self.ident());
        let services: Api<DynamicObject> = Api::namespaced_with(
            self.pods.clone().into_client(),
            &self.namespace,
            &ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
        );
        let svc_resource = ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&());
        for rack in racks {
            let sts = format!("{}-{rack}", self.name);
            self.delete_one(&self.statefulsets, &self.sts_resource, &sts)
                .await?;
            for svc in [
                format!("{}-{dc}", self.name),
                sts.clone(),
                format!("{}-{dc}-exporter-jmx", self.name),
            ] {
                self.delete_one(&services, &svc_resource, &svc).await?;
            }
            let selector = format!("{LABEL_APP}={APP_VALUE},{LABEL_CLUSTER}={}", self.name);
            for p in self
                .pods
                .list(&ListParams::default().labels(&selector))
                .await?
                .items
            {
                let owned = p
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.name == sts);
                if owned {
                    self.delete_pod(p.metadata.name.as_deref().unwrap_or_default())
                        .await?;
                }
            }
        }
        let extra = json!({"status": {
            "lastClusterAction": "ActionDeleteDC",
            "cassandraRackStatus": checks::removed_racks(racks),
        }});
        let patch = self.annotated(view, extra);
        self.patch_cluster(&patch, "ActionDeleteDC").await
    }

    /// `extra` plus the acted-on annotation of the object as it will be once `extra` is applied.
    fn annotated(&self, view: &ClusterView, mut extra: Value) -> Value {
        let mut after = view.value.clone();
        json_patch::merge(&mut after, &extra);
        extra["metadata"] =
            json!({"annotations": {ACTED_CONFIG_ANNOTATION: acted_config(&after).to_string()}});
        extra
    }

    async fn patch_cluster(&mut self, patch: &Value, what: &str) -> anyhow::Result<()> {
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let updated = self
            .clusters
            .patch(&self.name, &pp, &Patch::Merge(patch))
            .await
            .with_context(|| format!("writing {what} to {}", self.ident()))?;
        self.latest = Some(updated);
        Ok(())
    }

    /// Merge-patch `status` (and, for a new action, the acted-on annotation) of the object.
    async fn write_status(&mut self, view: &ClusterView, w: StatusWrite<'_>) -> anyhow::Result<()> {
        let StatusWrite {
            phase,
            action,
            action_status,
            new_action,
            only,
            extra,
        } = w;
        let now = now_rfc3339();
        let placements = expand_topology(&view.current["spec"]);
        let old_racks = view
            .value
            .pointer("/status/cassandraRackStatus")
            .and_then(Value::as_object);
        let mut racks = Map::new();
        if let Some(old) = old_racks {
            for key in old.keys() {
                racks.insert(key.clone(), Value::Null);
            }
        }
        let rack_phase = match (phase, action) {
            ("Initializing", _) => "Initializing",
            ("Running", _) => "Running",
            _ => "Pending",
        };
        for p in &placements {
            let key = p.status_key();
            let old_entry = old_racks.and_then(|o| o.get(&key));
            // Racks outside this action keep their entry: those not listed for a new action,
            // and, when it ends, those whose own last action was already done.
            let untouched = match &only {
                Some(keys) => !keys.contains(&key),
                None => {
                    !new_action
                        && action_status != "Ongoing"
                        && old_entry
                            .and_then(|r| r.pointer("/cassandraLastAction/status"))
                            .and_then(Value::as_str)
                            == Some("Done")
                }
            };
            if untouched && let Some(entry) = old_entry {
                racks.insert(key, entry.clone());
                continue;
            }
            let old_start = old_entry
                .and_then(|r| r.pointer("/cassandraLastAction/startTime"))
                .and_then(Value::as_str);
            let start = if new_action {
                now.clone()
            } else {
                old_start.map(str::to_owned).unwrap_or_else(|| now.clone())
            };
            let mut last_action =
                json!({"name": action, "status": action_status, "startTime": start});
            if action_status == "Done" || action_status == "Error" {
                last_action["endTime"] = json!(now);
            }
            racks.insert(
                key,
                json!({"phase": rack_phase, "cassandraLastAction": last_action, "podLastOperation": {}}),
            );
        }
        let mut patch = json!({
            "status": {
                "phase": phase,
                "lastClusterAction": action,
                "lastClusterActionStatus": action_status,
                "cassandraRackStatus": racks,
            }
        });
        if let Some(extra) = extra {
            json_patch::merge(&mut patch, &extra);
        }
        if new_action {
            patch = self.annotated(view, patch);
        }
        self.patch_cluster(&patch, &format!("status {phase}/{action}/{action_status}"))
            .await
    }

    fn owner_reference(&self, view: &ClusterView) -> Value {
        json!([{
            "apiVersion": "db.orange.com/v2",
            "kind": "CassandraCluster",
            "name": self.name,
            "uid": view.value.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
            "controller": true,
            "blockOwnerDeletion": true,
        }])
    }

    /// Bring StatefulSets and Pods in line with the spec; with `ready`, Pods become
    /// Running/Ready and the StatefulSets report them ready.
    async fn ensure_children(&self, view: &ClusterView, ready: bool) -> anyhow::Result<()> {
        let spec = &view.current["spec"];
        let placements = expand_topology(spec);
        let template = pod_template(&self.name, spec);
        let template_hash = stable_hash(&template.to_string());
        let image = template
            .pointer("/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_IMAGE)
            .to_owned();
        self.caches.ready().await?;
        let live_sts = Caches::of_cluster(&self.caches.statefulsets, &self.namespace, &self.name);
        let live_pods = Caches::of_cluster(&self.caches.pods, &self.namespace, &self.name);
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let patch_params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let now = now_rfc3339();
        let mut wanted_sts = HashSet::new();
        let mut wanted_pods = HashSet::new();
        for p in &placements {
            let sts_name = statefulset_name(&self.name, &p.dc, &p.rack);
            wanted_sts.insert(sts_name.clone());
            let labels = rack_labels(&self.name, &p.dc, &p.rack);
            let sts_spec = json!({
                "replicas": p.nodes,
                "serviceName": self.name,
                "podManagementPolicy": "OrderedReady",
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": template},
            });
            // The cache may lag behind our own writes: ask the server when it knows nothing.
            let cached = match live_sts.get(&sts_name) {
                Some(c) => Some(DynamicObject::clone(c)),
                None => self
                    .statefulsets
                    .get_opt(&sts_name)
                    .await
                    .with_context(|| {
                        format!("reading StatefulSet {}/{sts_name}", self.namespace)
                    })?,
            };
            let sts_obj = match cached.as_ref() {
                None => {
                    let obj: DynamicObject = serde_json::from_value(json!({
                        "apiVersion": "apps/v1",
                        "kind": "StatefulSet",
                        "metadata": {
                            "name": sts_name,
                            "namespace": self.namespace,
                            "labels": labels,
                            "annotations": {TEMPLATE_HASH_ANNOTATION: template_hash},
                            "ownerReferences": self.owner_reference(view),
                        },
                        "spec": sts_spec,
                    }))?;
                    self.statefulsets.create(&pp, &obj).await.with_context(|| {
                        format!("creating StatefulSet {}/{sts_name}", self.namespace)
                    })?
                }
                Some(live) => {
                    let live_replicas = live.data.pointer("/spec/replicas").and_then(Value::as_i64);
                    let live_hash = annotation(live, TEMPLATE_HASH_ANNOTATION);
                    if live_replicas != Some(i64::from(p.nodes))
                        || live_hash != Some(&template_hash)
                    {
                        let patch = json!({
                            "metadata": {"annotations": {TEMPLATE_HASH_ANNOTATION: template_hash}},
                            "spec": {"replicas": p.nodes, "template": sts_spec["template"]},
                        });
                        self.statefulsets
                            .patch(&sts_name, &patch_params, &Patch::Merge(&patch))
                            .await
                            .with_context(|| {
                                format!("updating StatefulSet {}/{sts_name}", self.namespace)
                            })?
                    } else {
                        live.clone()
                    }
                }
            };
            for i in 0..p.nodes {
                let name = pod_name(&sts_name, i);
                wanted_pods.insert(name.clone());
                let hash_of = |l: &DynamicObject| {
                    annotation(l, TEMPLATE_HASH_ANNOTATION) == Some(template_hash.as_str())
                };
                // Missing or outdated in the cache: the server has the last word.
                let live = match live_pods.get(&name) {
                    Some(c) if hash_of(c) => Some(DynamicObject::clone(c)),
                    _ => self
                        .pods
                        .get_opt(&name)
                        .await
                        .with_context(|| format!("reading Pod {}/{name}", self.namespace))?,
                };
                let live = live.as_ref();
                let up_to_date = live.is_some_and(hash_of);
                let mut pod_ip = live
                    .and_then(|l| l.data.pointer("/status/podIP"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let mut is_ready = live.is_some_and(|l| pod_is_ready(&l.data));
                if !up_to_date {
                    if live.is_some() {
                        self.delete_pod(&name).await?;
                    }
                    let mut pod_labels = labels.clone();
                    pod_labels.insert("statefulset.kubernetes.io/pod-name".into(), name.clone());
                    pod_labels.insert("apps.kubernetes.io/pod-index".into(), i.to_string());
                    let mut pod_spec = template.clone();
                    pod_spec["hostname"] = json!(name);
                    let obj: DynamicObject = serde_json::from_value(json!({
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": name,
                            "namespace": self.namespace,
                            "labels": pod_labels,
                            "annotations": {TEMPLATE_HASH_ANNOTATION: template_hash},
                            "ownerReferences": [{
                                "apiVersion": "apps/v1",
                                "kind": "StatefulSet",
                                "name": sts_name,
                                "uid": sts_obj.metadata.uid,
                                "controller": true,
                                "blockOwnerDeletion": true,
                            }],
                        },
                        "spec": pod_spec,
                    }))?;
                    self.pods
                        .create(&pp, &obj)
                        .await
                        .with_context(|| format!("creating Pod {}/{name}", self.namespace))?;
                    is_ready = false;
                    pod_ip = pod_ip.or_else(|| Some(allocate_pod_ip()));
                }
                if ready && !is_ready {
                    let ip = pod_ip.unwrap_or_else(allocate_pod_ip);
                    let status = json!({"status": ready_pod_status(&ip, &image, &name, &now)});
                    self.pods
                        .patch_status(&name, &patch_params, &Patch::Merge(&status))
                        .await
                        .with_context(|| {
                            format!("writing status of Pod {}/{name}", self.namespace)
                        })?;
                }
            }
            if ready {
                let status = json!({"status": {
                    "observedGeneration": sts_obj.metadata.generation,
                    "replicas": p.nodes,
                    "readyReplicas": p.nodes,
                    "currentReplicas": p.nodes,
                    "updatedReplicas": p.nodes,
                    "availableReplicas": p.nodes,
                    "collisionCount": 0,
                }});
                self.statefulsets
                    .patch_status(&sts_name, &patch_params, &Patch::Merge(&status))
                    .await
                    .with_context(|| {
                        format!(
                            "writing status of StatefulSet {}/{sts_name}",
                            self.namespace
                        )
                    })?;
            }
        }
        for name in live_pods.keys().filter(|n| !wanted_pods.contains(*n)) {
            self.delete_pod(name).await?;
        }
        for name in live_sts.keys().filter(|n| !wanted_sts.contains(*n)) {
            self.delete_one(&self.statefulsets, &self.sts_resource, name)
                .await?;
        }
        Ok(())
    }

    async fn delete_pod(&self, name: &str) -> anyhow::Result<()> {
        self.delete_one(&self.pods, &self.pod_resource, name).await
    }

    async fn delete_one(
        &self,
        api: &Api<DynamicObject>,
        resource: &ApiResource,
        name: &str,
    ) -> anyhow::Result<()> {
        match api
            .delete(name, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e)
                .with_context(|| format!("deleting {} {}/{name}", resource.kind, self.namespace)),
        }
    }

    /// Delete the StatefulSets and Pods of this cluster, except those owned by `keep_owner`
    /// (the uid of a re-created object of the same name).
    async fn delete_children(&self, keep_owner: Option<&str>) -> anyhow::Result<()> {
        let selector = format!("{LABEL_APP}={APP_VALUE},{LABEL_CLUSTER}={}", self.name);
        let lp = ListParams::default().labels(&selector);
        let sts = self
            .statefulsets
            .list(&lp)
            .await
            .with_context(|| format!("listing StatefulSets of {}", self.ident()))?;
        let mut doomed_sts = HashSet::new();
        for s in sts.items {
            let owned_by_keep = keep_owner.is_some_and(|uid| {
                s.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid)
            });
            if !owned_by_keep {
                let name = s.metadata.name.clone().unwrap_or_default();
                self.delete_one(&self.statefulsets, &self.sts_resource, &name)
                    .await?;
                doomed_sts.insert(name);
            }
        }
        let pods = self
            .pods
            .list(&lp)
            .await
            .with_context(|| format!("listing Pods of {}", self.ident()))?;
        for p in pods.items {
            let owner_gone = keep_owner.is_none()
                || p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| doomed_sts.contains(&o.name));
            if owner_gone {
                self.delete_pod(p.metadata.name.as_deref().unwrap_or_default())
                    .await?;
            }
        }
        Ok(())
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(spec: Value) -> Value {
        acted_config(&json!({ "spec": spec }))
    }

    #[test]
    fn no_topology_means_dc1_rack1_with_spec_nodes() {
        assert_eq!(
            expand_topology(&json!({})),
            vec![RackPlacement {
                dc: "dc1".into(),
                rack: "rack1".into(),
                nodes: 1
            }]
        );
        assert_eq!(expand_topology(&json!({"nodesPerRacks": 3}))[0].nodes, 3);
    }

    #[test]
    fn dc_nodes_per_racks_overrides_spec_and_racks_default_to_rack1() {
        let spec = json!({
            "nodesPerRacks": 2,
            "topology": {"dc": [
                {"name": "dc1", "nodesPerRacks": 3, "rack": [{"name": "r1"}, {"name": "r2"}]},
                {"name": "dc2"},
            ]}
        });
        let top = expand_topology(&spec);
        let got: Vec<(&str, &str, i32)> = top
            .iter()
            .map(|p| (p.dc.as_str(), p.rack.as_str(), p.nodes))
            .collect();
        assert_eq!(
            got,
            vec![("dc1", "r1", 3), ("dc1", "r2", 3), ("dc2", "rack1", 2)]
        );
        assert_eq!(top[2].status_key(), "dc2-rack1");
    }

    #[test]
    fn names_follow_casskop() {
        let sts = statefulset_name("cassandra-demo", "dc1", "rack1");
        assert_eq!(sts, "cassandra-demo-dc1-rack1");
        assert_eq!(pod_name(&sts, 2), "cassandra-demo-dc1-rack1-2");
        let labels = rack_labels("cassandra-demo", "dc1", "rack1");
        assert_eq!(labels["app"], "cassandracluster");
        assert_eq!(labels["cassandracluster"], "cassandra-demo");
        assert_eq!(labels["cassandraclusters.db.orange.com.dc"], "dc1");
        assert_eq!(labels["cassandraclusters.db.orange.com.rack"], "rack1");
    }

    #[test]
    fn classifies_each_kind_of_change() {
        let base = json!({
            "cassandraImage": "cassandra:3.11.6",
            "nodesPerRacks": 2,
            "configMapName": "cm1",
            "resources": {"limits": {"cpu": "1"}},
            "topology": {"dc": [{"name": "dc1", "rack": [{"name": "rack1"}]}, {"name": "dc2"}]},
        });
        let with = |f: &dyn Fn(&mut Value)| {
            let mut s = base.clone();
            f(&mut s);
            cfg(s)
        };
        let old = cfg(base.clone());
        let cases: Vec<(Value, &str)> = vec![
            (
                with(&|s| s["cassandraImage"] = json!("cassandra:3.11.7")),
                "UpdateDockerImage",
            ),
            (with(&|s| s["nodesPerRacks"] = json!(3)), "ScaleUp"),
            (
                with(&|s| s["topology"]["dc"][1]["nodesPerRacks"] = json!(1)),
                "ScaleDown",
            ),
            (
                with(&|s| {
                    s["topology"]["dc"][0]["rack"] = json!([{"name": "rack1"}, {"name": "rack2"}]);
                }),
                "ScaleUp",
            ),
            (
                with(&|s| {
                    s["topology"]["dc"] = json!([{"name": "dc1", "rack": [{"name": "rack1"}]}]);
                }),
                "ActionDeleteDC",
            ),
            (
                with(&|s| s["topology"]["dc"][0]["rack"] = json!([{"name": "rack9"}])),
                "ActionDeleteRack",
            ),
            (
                with(&|s| s["resources"]["limits"]["cpu"] = json!("2")),
                "UpdateResources",
            ),
            (
                with(&|s| s["configMapName"] = json!("cm2")),
                "UpdateConfigMap",
            ),
            (
                with(&|s| s["topology"]["dc"][0]["rack"][0]["rollingRestart"] = json!(true)),
                "RollingRestart",
            ),
            (
                with(&|s| s["maxPodUnavailable"] = json!(2)),
                "UpdateStatefulSet",
            ),
        ];
        for (new, want) in cases {
            assert_eq!(classify_change(&old, &new), want, "change to {new}");
        }
        let mut seeded = old.clone();
        seeded["seedlist"] = json!(["a.b.c"]);
        assert_eq!(classify_change(&old, &seeded), "UpdateSeedList");
    }

    #[test]
    fn combined_changes_follow_casskops_order_of_checks() {
        let old = cfg(json!({"cassandraImage": "a", "nodesPerRacks": 1, "configMapName": "x"}));
        let new = cfg(json!({"cassandraImage": "b", "nodesPerRacks": 3, "configMapName": "x"}));
        assert_eq!(classify_change(&old, &new), "UpdateDockerImage");
        let new = cfg(json!({"cassandraImage": "b", "nodesPerRacks": 3, "configMapName": "y"}));
        assert_eq!(classify_change(&old, &new), "UpdateConfigMap");
        let mut new = cfg(json!({"cassandraImage": "a", "nodesPerRacks": 2, "configMapName": "x"}));
        new["seedlist"] = json!(["s1"]);
        assert_eq!(classify_change(&old, &new), "ScaleUp");
        let mut new = cfg(
            json!({"cassandraImage": "a", "nodesPerRacks": 1, "configMapName": "x", "resources": {}}),
        );
        new["seedlist"] = json!(["s1"]);
        assert_eq!(classify_change(&old, &new), "UpdateSeedList");
    }

    #[test]
    fn acted_config_covers_spec_and_seedlist_only() {
        let a = acted_config(
            &json!({"spec": {"x": 1}, "status": {"seedlist": ["s"], "phase": "Running"}}),
        );
        let b = acted_config(
            &json!({"spec": {"x": 1}, "status": {"seedlist": ["s"], "phase": "Pending"}}),
        );
        assert_eq!(a, b);
        let c = acted_config(&json!({"spec": {"x": 1}, "status": {"seedlist": ["t"]}}));
        assert_ne!(a, c);
    }

    #[test]
    fn resource_versions_compare_numerically() {
        assert!(rv_not_older(Some("10"), Some("9")));
        assert!(rv_not_older(Some("9"), Some("9")));
        assert!(!rv_not_older(Some("9"), Some("10")));
        assert!(rv_not_older(Some("abc"), Some("10")));
        assert!(rv_not_older(None, Some("10")));
    }

    #[test]
    fn resources_become_valid_quantities() {
        let r = sanitize_resources(Some(
            &json!({"limits": {"cpu": 2, "memory": "1Gi"}, "bogus": 1}),
        ));
        assert_eq!(r, json!({"limits": {"cpu": "2", "memory": "1Gi"}}));
    }

    #[test]
    fn template_follows_image_resources_and_config_map() {
        let t = pod_template(
            "c",
            &json!({"cassandraImage": "img:1", "configMapName": "cm"}),
        );
        assert_eq!(t["containers"][0]["image"], "img:1");
        assert_eq!(t["volumes"][0]["configMap"]["name"], "cm");
        let d = pod_template("c", &json!({}));
        assert_eq!(d["containers"][0]["image"], DEFAULT_IMAGE);
        assert_ne!(stable_hash(&t.to_string()), stable_hash(&d.to_string()));
    }

    #[test]
    fn pod_ips_are_unique() {
        let ips: HashSet<String> = (0..1000).map(|_| allocate_pod_ip()).collect();
        assert_eq!(ips.len(), 1000);
    }

    #[test]
    fn embedded_crd_is_namespaced_v2_without_status_subresource() {
        let crd = crd().unwrap();
        assert_eq!(crd.metadata.name.as_deref(), Some(CRD_NAME));
        assert_eq!(crd.spec.group, "db.orange.com");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["cassc".to_owned()]));
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v2");
        assert!(v.subresources.is_none());
        let schema = v
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap();
        // Typed: only `spec` keeps unknown fields, as in CassKop's CRD.
        assert_eq!(schema.x_kubernetes_preserve_unknown_fields, None);
        let props = schema.properties.as_ref().unwrap();
        assert_eq!(
            props["spec"].x_kubernetes_preserve_unknown_fields,
            Some(true)
        );
        assert_eq!(props["status"].x_kubernetes_preserve_unknown_fields, None);
        let spec = props["spec"].properties.as_ref().unwrap();
        assert_eq!(spec["nodesPerRacks"].type_.as_deref(), Some("integer"));
        assert_eq!(
            spec["runAsUser"].default.as_ref().map(|d| d.0.clone()),
            Some(json!(999))
        );
        let served: Vec<(&str, bool, bool)> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage))
            .collect();
        assert_eq!(served, vec![("v2", true, true), ("v1alpha1", true, false)]);
        let cols: Vec<&str> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.json_path.as_str())
            .collect();
        assert!(cols.contains(&".status.phase"));
        assert!(cols.contains(&".status.lastClusterAction"));
    }
}
