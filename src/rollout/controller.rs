//! The controller wiring: per-site CassandraCluster caches, the reconcile loop, requeue policy,
//! status writes and Events. Decisions come from the pure planner; writes go through `apply`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::reflector::{ObjectRef, Store, reflector, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::api::cassandra::cassandra_cluster_resource;
use crate::api::{
    CassandraClusterView, FINALIZER, MultiCasskop, MultiCasskopStatus, OWNER_NAME_LABEL,
    OWNER_NAMESPACE_LABEL,
};
use crate::runtime::health::Readiness;
use crate::kube_error;
use crate::merge::{self, DesiredCluster};
use crate::runtime::metrics::Metrics;
use crate::rollout::apply::{self, ApplyResult, DeleteOutcome, WriteError};
use crate::rollout::events::{EventType, NewEvent, Publisher};
use crate::rollout::plan::{
    self, Action, AppliedMark, ObservedCluster, Ownership, Plan, PlanInput, SiteAccess, SiteInput,
    SiteVerdict,
};
use crate::sites::{Site, SiteRegistry, SiteState};

use crate::rollout::status::{self, SiteDetail, Transition, build_status};

/// Longest wait between retries of a blocked or failing MultiCasskop.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a reconcile waits for a freshly started site cache to sync before reporting it.
const CACHE_SYNC_WAIT: Duration = Duration::from_secs(5);
/// How long after a write a reconcile waits for the site cache to show it.
const CACHE_CATCH_UP_WAIT: Duration = Duration::from_secs(3);
/// Retry after a write found the site's object newer than our cache (normally the watch event
/// that brings it triggers the next reconcile first).
const STALE_RETRY: Duration = Duration::from_millis(500);

/// Settings of the controller loop.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Namespace watched for MultiCasskops (also where Events go).
    pub namespace: String,
    /// Safety-net requeue of settled MultiCasskops (progress is watch-driven).
    pub resync: Duration,
    /// MultiCasskops reconciled at the same time.
    pub concurrency: u16,
    /// Reporting instance for Events (pod name / identity).
    pub instance: String,
}

/// A reconcile failure that is retried with backoff. Names the object and the cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A write failed (site or local).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The MultiCasskop has no namespace (cannot happen for a namespaced CRD).
    #[error("MultiCasskop {0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    /// Short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Write(WriteError::Local { .. }) => "local_write_error",
            Error::Write(_) => "site_write_error",
            Error::NoNamespace(_) => "invalid_object",
        }
    }
}

/// Everything a reconcile needs; shared by all reconciles.
pub struct Context {
    local: Client,
    registry: SiteRegistry,
    caches: SiteCaches,
    events: Publisher,
    metrics: Arc<Metrics>,
    resync: Duration,
    /// Consecutive failures (errors or Blocked) per MultiCasskop `ns/name`, for the backoff.
    failures: Mutex<HashMap<String, Backoff>>,
    /// Our last writes to MultiCasskops not yet seen in the controller's cache.
    written: WrittenVersions,
}

/// resourceVersion of our last write to each MultiCasskop `ns/name`, until the controller's
/// cache shows it: a reconcile must never build on a status older than its own last write (it
/// would drop the applied mark just recorded and apply again).
#[derive(Default)]
pub struct WrittenVersions(Mutex<HashMap<String, String>>);

impl WrittenVersions {
    /// Remember the resourceVersion a write of ours returned.
    pub fn remember(&self, key: &str, resource_version: Option<String>) {
        if let Some(rv) = resource_version {
            self.0
                .lock()
                .expect("written lock")
                .insert(key.to_string(), rv);
        }
    }
    /// `Some(rv)` while the cached object (`cached_rv`) is not the one our last write made;
    /// forgets the write once the cache shows it.
    pub fn unseen(&self, key: &str, cached_rv: Option<&str>) -> Option<String> {
        let mut w = self.0.lock().expect("written lock");
        match w.get(key) {
            Some(rv) if Some(rv.as_str()) == cached_rv => {
                w.remove(key);
                None
            }
            other => other.cloned(),
        }
    }
    /// Forget an object (deleted).
    pub fn forget(&self, key: &str) {
        self.0.lock().expect("written lock").remove(key);
    }
}

impl Context {
    fn next_backoff(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().expect("failures lock");
        f.entry(key.to_string()).or_default().failed(Instant::now())
    }
    fn reset_backoff(&self, key: &str) {
        self.failures.lock().expect("failures lock").remove(key);
    }
    fn remember_write(&self, key: &str, resource_version: Option<String>) {
        self.written.remember(key, resource_version);
    }
    fn unseen_write(&self, key: &str, cached_rv: Option<&str>) -> Option<String> {
        self.written.unseen(key, cached_rv)
    }
}

/// Backoff state of one MultiCasskop: failures counted, and when the current delay ends.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
    until: Option<Instant>,
}

impl Backoff {
    /// Record a failure at `now`, return the delay before the next try. A failure while the
    /// current delay still runs (a watch event woke the reconcile early: a storm of them when
    /// CassKop and the other sites are busy) does not lengthen the delay: only a failure after a
    /// full delay has passed doubles it, so the delay grows with time spent failing, not with
    /// the number of events.
    pub fn failed(&mut self, now: Instant) -> Duration {
        match self.until {
            Some(until) if now < until => until - now,
            _ => {
                self.attempt = self.attempt.saturating_add(1);
                let wait = backoff_for(self.attempt);
                self.until = Some(now + wait);
                wait
            }
        }
    }
}

/// Exponential backoff: 1 s, 2 s, 4 s, ... capped at [`MAX_BACKOFF`].
pub fn backoff_for(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// The MultiCasskop owning a CassandraCluster, from its owner labels.
pub fn owner_of(obj: &DynamicObject) -> Option<ObjectRef<MultiCasskop>> {
    let labels = obj.labels();
    let name = labels.get(OWNER_NAME_LABEL)?;
    let ns = labels.get(OWNER_NAMESPACE_LABEL)?;
    if name.is_empty() || ns.is_empty() {
        return None;
    }
    Some(ObjectRef::new(name).within(ns))
}

/// Label selector of the CassandraClusters created by MultiCasskops of namespace `owner_ns`.
pub fn owned_selector(owner_ns: &str) -> String {
    format!("{OWNER_NAMESPACE_LABEL}={owner_ns},{OWNER_NAME_LABEL}")
}

/// State of one site cache's watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchHealth {
    /// Listing for the first time.
    Syncing,
    /// Listed and watching.
    Synced,
    /// The last list/watch failed; being retried. The reason names site and namespace.
    Failed(String),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct CacheKey {
    site: String,
    namespace: String,
}

struct CacheEntry {
    revision: u64,
    store: Arc<Mutex<Store<DynamicObject>>>,
    health: watch::Receiver<WatchHealth>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CacheEntry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A snapshot of one site cache for one reconcile.
struct CacheView {
    store: Store<DynamicObject>,
    health: WatchHealth,
}

/// One reflector per (site, namespace) in use, on the CassandraClusters our MultiCasskops own.
/// Started on demand, restarted when the site's client is rebuilt. Events are mapped to the
/// owning MultiCasskop and fed to the controller.
#[derive(Clone)]
pub struct SiteCaches {
    inner: Arc<Mutex<HashMap<CacheKey, CacheEntry>>>,
    owner_ns: String,
    signals: WatchSignals,
}

/// Where a site watch reports: reconcile one MultiCasskop, reconcile all, the reachable gauge.
#[derive(Clone)]
struct WatchSignals {
    reconcile_one: mpsc::UnboundedSender<ObjectRef<MultiCasskop>>,
    reconcile_all: mpsc::UnboundedSender<()>,
    metrics: Arc<Metrics>,
}

impl SiteCaches {
    fn new(owner_ns: &str, signals: WatchSignals) -> Self {
        Self {
            inner: Arc::default(),
            owner_ns: owner_ns.to_string(),
            signals,
        }
    }

    /// The cache of `site`'s CassandraClusters in `namespace`, started if missing or built on an
    /// older client revision. Waits up to [`CACHE_SYNC_WAIT`] for a new cache's first list.
    async fn view(&self, site: &Site, namespace: &str) -> CacheView {
        let key = CacheKey {
            site: site.name.clone(),
            namespace: namespace.to_string(),
        };
        let (store, mut health) = {
            let mut map = self.inner.lock().expect("caches lock");
            let stale = map.get(&key).is_some_and(|e| e.revision != site.revision);
            if stale {
                info!(site = %site.name, namespace, "site client was rebuilt: restarting its CassandraCluster watch");
                map.remove(&key);
            }
            let entry = map
                .entry(key.clone())
                .or_insert_with(|| self.start(site, namespace));
            (entry.store.clone(), entry.health.clone())
        };
        if *health.borrow() == WatchHealth::Syncing {
            let _ = tokio::time::timeout(
                CACHE_SYNC_WAIT,
                health.wait_for(|h| *h != WatchHealth::Syncing),
            )
            .await;
        }
        let health = health.borrow().clone();
        let store = store.lock().expect("store lock").clone();
        CacheView { store, health }
    }

    fn start(&self, site: &Site, namespace: &str) -> CacheEntry {
        let ar = cassandra_cluster_resource();
        let writer = Writer::new(ar.clone());
        let store = Arc::new(Mutex::new(writer.as_reader()));
        let (health_tx, health_rx) = watch::channel(WatchHealth::Syncing);
        debug!(site = %site.name, namespace, "starting CassandraCluster watch");
        let task = tokio::spawn(
            watch_site(
                site.name.clone(),
                site.client.clone(),
                namespace.to_string(),
                owned_selector(&self.owner_ns),
                writer,
                store.clone(),
                health_tx,
                self.signals.clone(),
            )
            .instrument(info_span!("site_watch", site = %site.name, namespace)),
        );
        CacheEntry {
            revision: site.revision,
            store,
            health: health_rx,
            task,
        }
    }

    /// Drop caches whose site was rebuilt, removed or became unavailable (their next use starts a
    /// fresh one on the new client).
    fn refresh(&self, registry: &SiteRegistry) {
        let mut map = self.inner.lock().expect("caches lock");
        map.retain(|key, entry| match registry.get(&key.site) {
            Some(SiteState::Ready(site)) => site.revision == entry.revision,
            _ => false,
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn watch_site(
    site: String,
    client: Client,
    namespace: String,
    selector: String,
    first_writer: Writer<DynamicObject>,
    store_slot: Arc<Mutex<Store<DynamicObject>>>,
    health: watch::Sender<WatchHealth>,
    signals: WatchSignals,
) {
    let WatchSignals {
        reconcile_one,
        reconcile_all,
        metrics,
    } = signals;
    let ar = cassandra_cluster_resource();
    let mut writer = Some(first_writer);
    let mut delay = Duration::from_millis(250);
    loop {
        let writer = match writer.take() {
            Some(w) => w,
            None => {
                let w = Writer::new(ar.clone());
                *store_slot.lock().expect("store lock") = w.as_reader();
                w
            }
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &ar);
        let cfg = watcher::Config::default().labels(&selector);
        // Only what the controller reads is cached (no managedFields, CassKop's progress fields
        // of the status): for 1,000 resources x 3 sites this is most of the controller's memory.
        let stream = watcher::watcher(api, cfg).modify(crate::api::cassandra::slim_for_cache);
        let mut events = pin!(reflector(writer, stream));
        let failure = loop {
            match events.next().await {
                None => break Some("the watch stream ended".to_string()),
                Some(Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o))) => {
                    if let Some(owner) = owner_of(&o) {
                        let _ = reconcile_one.unbounded_send(owner);
                    }
                }
                Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
                Some(Ok(watcher::Event::InitDone)) => {
                    delay = Duration::from_millis(250);
                    let was = health.send_replace(WatchHealth::Synced);
                    metrics.set_site_reachable(&site, true);
                    debug!(previous = ?was, "CassandraCluster cache synced");
                    // A (re)list may have found or lost objects without per-object events.
                    let _ = reconcile_all.unbounded_send(());
                }
                // 410 Gone as a watch event: the watcher re-lists by itself.
                Some(Err(watcher::Error::WatchError(s))) if s.code == 410 => {
                    debug!("watch expired (410): re-listing");
                }
                // 410 Gone when (re)starting the watch: start over with a fresh list at once;
                // an expired resourceVersion says nothing about the site's health.
                Some(Err(e)) if kube_error::is_gone(&e) => break None,
                Some(Err(e)) => break Some(kube_error::watch_brief(&e)),
            }
        };
        let Some(failure) = failure else {
            debug!("watch expired (410) at start: re-listing");
            // The next cache starts empty: readers wait for its list (see `SiteCaches::view`).
            health.send_replace(WatchHealth::Syncing);
            continue;
        };
        let reason = format!(
            "cannot watch CassandraClusters in site {site}, namespace {namespace}: {failure}"
        );
        warn!("{reason}; retrying in {delay:?}");
        let was = health.send_replace(WatchHealth::Failed(reason));
        metrics.set_site_reachable(&site, false);
        if !matches!(was, WatchHealth::Failed(_)) {
            let _ = reconcile_all.unbounded_send(());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Run the controller until `shutdown` resolves. Progress is watch-driven: MultiCasskop changes,
/// CassandraCluster events at any site and site registry changes all trigger reconciles.
pub async fn run(
    local: Client,
    registry: SiteRegistry,
    cfg: ControllerConfig,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (one_tx, one_rx) = mpsc::unbounded::<ObjectRef<MultiCasskop>>();
    let (all_tx, all_rx) = mpsc::unbounded::<()>();
    let caches = SiteCaches::new(
        &cfg.namespace,
        WatchSignals {
            reconcile_one: one_tx,
            reconcile_all: all_tx.clone(),
            metrics: metrics.clone(),
        },
    );

    let registry_task = {
        let (registry, caches, metrics) = (registry.clone(), caches.clone(), metrics.clone());
        let mut changes = registry.changes();
        tokio::spawn(async move {
            loop {
                for name in registry.order() {
                    let up = matches!(registry.get(&name), Some(SiteState::Ready(_)));
                    metrics.set_site_reachable(&name, up);
                }
                if changes.changed().await.is_err() {
                    break;
                }
                debug!(
                    "site registry changed: refreshing caches and reconciling every MultiCasskop"
                );
                caches.refresh(&registry);
                let _ = all_tx.unbounded_send(());
            }
        })
    };

    let ctx = Arc::new(Context {
        local: local.clone(),
        registry,
        caches,
        events: Publisher::new(local.clone(), "multi-casskop", &cfg.instance),
        metrics,
        resync: cfg.resync,
        failures: Mutex::default(),
        written: WrittenVersions::default(),
    });

    let api: Api<MultiCasskop> = Api::namespaced(local, &cfg.namespace);
    // As Controller::new, minus managedFields in the cache (never read; often half an object).
    let (reader, writer) = kube::runtime::reflector::store();
    let mcs = watcher::watcher(api, watcher::Config::default())
        .modify(|o| o.metadata.managed_fields = None);
    let controller = Controller::for_stream(reflector(writer, mcs).applied_objects(), reader);
    readiness.set_caches_synced(false);
    let store = controller.store();
    tokio::spawn(async move {
        // The store's readiness signal keeps only the latest waiter's waker (the controller's
        // own), so look again periodically instead of waiting once.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
                Ok(Ok(())) => break readiness.set_caches_synced(true),
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
    });
    info!(namespace = %cfg.namespace, "controller started: watching MultiCasskops");
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(cfg.concurrency))
        .reconcile_on(one_rx)
        .reconcile_all_on(all_rx)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!("controller: {e}");
            }
        })
        .await;
    registry_task.abort();
    info!("controller stopped");
}

fn object_key(mc: &MultiCasskop) -> String {
    format!("{}/{}", mc.namespace().unwrap_or_default(), mc.name_any())
}

/// Requeue policy after a failed reconcile: exponential backoff per object, capped.
fn error_policy(mc: Arc<MultiCasskop>, err: &Error, ctx: Arc<Context>) -> Requeue {
    let key = object_key(&mc);
    let wait = ctx.next_backoff(&key);
    warn!(multicasskop = %key, "reconcile failed: {err}; retrying in {wait:?}");
    Requeue::requeue(wait)
}

async fn reconcile(mc: Arc<MultiCasskop>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let key = object_key(&mc);
    let span = info_span!("reconcile", multicasskop = %key);
    let result = reconcile_one(&mc, &ctx).instrument(span).await;
    let label = match &result {
        Ok((_, outcome)) => *outcome,
        Err(e) => e.metric_label(),
    };
    ctx.metrics.reconciled(label, started.elapsed());
    result.map(|(requeue, _)| requeue)
}

/// Per-site facts gathered for one reconcile.
struct SiteFacts {
    name: String,
    desired: DesiredCluster,
    site: Option<Arc<Site>>,
    live: Option<DynamicObject>,
}

async fn reconcile_one(mc: &MultiCasskop, ctx: &Context) -> Result<(Requeue, &'static str), Error> {
    let name = mc.name_any();
    let ns = mc
        .namespace()
        .ok_or_else(|| Error::NoNamespace(name.clone()))?;
    let key = format!("{ns}/{name}");
    let mc_api: Api<MultiCasskop> = Api::namespaced(ctx.local.clone(), &ns);
    // The cache may still hold the object as it was before our last write: read it afresh.
    let fresh;
    let mc = match ctx.unseen_write(&key, mc.resource_version().as_deref()) {
        None => mc,
        Some(ours) => {
            let Some(current) = mc_api.get_opt(&name).await.map_err(|source| {
                Error::Write(WriteError::Local {
                    what: "re-read",
                    namespace: ns.clone(),
                    name: name.clone(),
                    source,
                })
            })?
            else {
                return Ok((Requeue::await_change(), "gone"));
            };
            debug!(ours, fresh = ?current.resource_version(), "cache behind our last write: read afresh");
            // Wait for the cache to reach at least what we just read.
            ctx.remember_write(&key, current.resource_version());
            fresh = current;
            &fresh
        }
    };
    let deleting = mc.metadata.deletion_timestamp.is_some();
    let delete_clusters = mc.spec.delete_cassandra_cluster == Some(true);
    let has_finalizer = mc.finalizers().iter().any(|f| f == FINALIZER);

    // The finalizer follows deleteCassandraCluster; without it deletion leaves the clusters.
    if !deleting && delete_clusters && !has_finalizer {
        let rv = apply::set_finalizer(&mc_api, mc, true).await?;
        ctx.remember_write(&key, rv);
        info!("added finalizer {FINALIZER} (deleteCassandraCluster: true)");
        // The update triggers the next reconcile.
        return Ok((Requeue::await_change(), "finalizer"));
    }
    if has_finalizer && !delete_clusters {
        let rv = apply::set_finalizer(&mc_api, mc, false).await?;
        ctx.remember_write(&key, rv);
        info!("removed finalizer {FINALIZER} (deleteCassandraCluster is not true)");
        return Ok((Requeue::await_change(), "finalizer"));
    }
    if deleting && !has_finalizer {
        // Not ours to clean up: the CassandraClusters stay.
        return Ok((Requeue::await_change(), "deleting"));
    }

    let prev = mc.status.clone().unwrap_or_default();
    let generation = mc.metadata.generation.unwrap_or(0);
    let now = jiff::Timestamp::now().to_string();

    // Validation: unknown sites and merge errors make the resource invalid; nothing is created.
    let registered = ctx.registry.order();
    let mut configured = registered.clone();
    // A site this MultiCasskop already had in its status that is no longer configured (its
    // ClientConfig or Secret deleted, a flag dropped) still takes part: it is reported as no
    // longer configured and holds the rollout there, instead of turning the whole resource
    // Invalid. Its CassandraCluster is left as it is; re-configuring the site resumes.
    // While deleting, such a site is skipped instead (below).
    let gone: Vec<String> = prev
        .sites
        .iter()
        .map(|s| s.name.clone())
        .filter(|s| !configured.contains(s) && mc.spec.override_.contains_key(s))
        .collect();
    if !deleting {
        configured.extend(gone.iter().cloned());
    }
    let mut invalid = None;
    let mut facts = Vec::new();
    // While deleting, a site no longer configured cannot be cleaned up by us and must not hold
    // the deletion of the others hostage.
    let mut overrides = mc.spec.override_.clone();
    if deleting {
        overrides.retain(|site, _| {
            let known = registered.contains(site);
            if !known {
                warn!(site = %site, "site is no longer configured: its CassandraCluster is left in place");
            }
            known
        });
    }
    let site_order: Option<Vec<String>> = mc.spec.site_order.as_ref().map(|order| {
        order
            .iter()
            .filter(|s| !deleting || registered.contains(s))
            .cloned()
            .collect()
    });
    match plan::site_order(&configured, site_order.as_deref(), &overrides) {
        Err(why) => invalid = Some(why.to_string()),
        Ok(sites) => {
            for site in sites {
                match merge::desired_for_site(
                    &mc.spec.base,
                    overrides.get(&site),
                    &site,
                    &ns,
                    &name,
                ) {
                    Ok(desired) => facts.push(SiteFacts {
                        name: site,
                        desired,
                        site: None,
                        live: None,
                    }),
                    Err(e) => {
                        invalid = Some(e.to_string());
                        break;
                    }
                }
            }
        }
    }
    if let Some(why) = invalid {
        warn!("invalid MultiCasskop: {why}");
        let nothing = Plan {
            action: Action::Converged,
            verdicts: Vec::new(),
            deleting,
        };
        let (status, transitions) = build_status(
            Some(&prev),
            generation,
            &nothing,
            &[],
            &[],
            Some(&why),
            &now,
        );
        finish(mc, &mc_api, ctx, &prev, status, transitions).await?;
        ctx.reset_backoff(&key);
        // A site added to the configuration triggers a reconcile; the resync is a safety net.
        return Ok((Requeue::requeue(ctx.resync), "invalid"));
    }

    // Observe every site: access from the registry and the cache health, the object from the cache.
    let mut inputs = Vec::with_capacity(facts.len());
    let mut details = Vec::with_capacity(facts.len());
    // (site, mark, generation the write was computed from) to record in the status.
    let mut new_marks: Vec<(String, AppliedMark, i64)> = Vec::new();
    for f in facts.iter_mut() {
        let (access, observed) = observe_site(ctx, &ns, &name, f).await;
        ctx.metrics
            .set_site_reachable(&f.name, matches!(access, SiteAccess::Ok));
        let applied = status::applied_mark(Some(&prev), &f.name);
        let view = f.live.as_ref().map(CassandraClusterView);
        details.push(SiteDetail {
            site: f.name.clone(),
            namespace: Some(f.desired.namespace.clone()),
            name: Some(f.desired.name.clone()),
            phase: view.as_ref().and_then(|v| v.phase()).map(str::to_string),
            last_cluster_action: view
                .as_ref()
                .and_then(|v| v.last_cluster_action())
                .map(str::to_string),
            last_cluster_action_status: view
                .as_ref()
                .and_then(|v| v.last_cluster_action_status())
                .map(str::to_string),
            message: (access == SiteAccess::NotConfigured).then(|| {
                format!(
                    "site {} is no longer configured (no --remote flag or ClientConfig {}/{} names it any more); its CassandraCluster is left as it is",
                    f.name,
                    ctx.registry.config().namespace,
                    f.name
                )
            }),
        });
        // A write of ours the status does not record (the controller stopped, or the status
        // write was refused, right after it): its mark is recovered from the object itself,
        // before planning, so the planner neither writes again nor trusts a stale status.
        let applied = match f.live.as_ref().filter(|_| {
            observed
                .as_ref()
                .is_some_and(|o| o.ownership == Ownership::Ours)
        }) {
            Some(live) => match apply::recover_mark(
                live,
                &f.desired.hash,
                applied.as_ref(),
                status::applied_from(Some(&prev), &f.name),
            ) {
                Some((mark, from)) => {
                    info!(
                        site = %f.name,
                        generation = mark.generation,
                        "CassandraCluster carries a write the status does not record: recording it"
                    );
                    new_marks.push((f.name.clone(), mark.clone(), from));
                    Some(mark)
                }
                None => applied,
            },
            None => applied,
        };
        inputs.push(SiteInput {
            name: f.name.clone(),
            desired_hash: f.desired.hash.clone(),
            access,
            observed,
            applied,
        });
    }
    let mut input = PlanInput {
        sites: inputs,
        deleting,
        delete_cassandra_cluster: delete_clusters,
    };
    let planned: Plan = plan::plan(&input);
    debug!(action = ?planned.action, "planned");

    // Carry out the one action.
    let mut outcome = "waiting";
    let mut requeue = Requeue::requeue(ctx.resync);
    let mut failed = false;
    let mut refused = false;
    let mut wrote: Option<String> = None;
    match &planned.action {
        Action::Apply { site } => {
            let i = index_of(&facts, site);
            let f = &facts[i];
            let Some(client) = f.site.as_ref().map(|s| s.client.clone()) else {
                // The planner only writes to reachable sites; refuse rather than panic.
                warn!(site = %site, "planner asked to apply at a site without a client");
                return Ok((Requeue::requeue(ctx.next_backoff(&key)), "error"));
            };
            let client = &client;
            match apply::apply_cluster(site, client, &f.desired, f.live.as_ref()).await {
                Ok(ApplyResult::Applied(done)) => {
                    ctx.metrics.write(site, "apply");
                    outcome = "applied";
                    if done.changed {
                        let mark = AppliedMark::after_write(
                            f.desired.hash.clone(),
                            input.sites[i].applied.as_ref(),
                            done.generation_before,
                            done.generation,
                            done.spec_changed,
                        );
                        info!(
                            site = %site,
                            cassandracluster = %format!("{}/{}", f.desired.namespace, f.desired.name),
                            generation = done.generation,
                            "{} CassandraCluster",
                            if done.created { "created" } else { "updated" }
                        );
                        input.sites[i].applied = Some(mark.clone());
                        wrote = Some(site.clone());
                        new_marks.retain(|(s, _, _)| s != site);
                        new_marks.push((site.clone(), mark, done.generation_before.unwrap_or(0)));
                        if i > 0
                            && planned.verdicts[..i]
                                .iter()
                                .all(|(_, v)| *v == SiteVerdict::Ready)
                        {
                            ctx.metrics.handoff();
                        }
                        publish(
                            ctx,
                            mc,
                            EventType::Normal,
                            if done.created { "Created" } else { "Updated" },
                            "Apply",
                            format!(
                                "{} CassandraCluster {}/{} in site {site}",
                                if done.created { "Created" } else { "Updated" },
                                f.desired.namespace,
                                f.desired.name
                            ),
                        )
                        .await;
                        wait_for_cache(ctx, f, &done.resource_version, done.generation).await;
                    } else {
                        // Nothing changed: the planner's next look must not loop on us.
                        debug!(site = %site, "apply changed nothing");
                        requeue = Requeue::requeue(ctx.next_backoff(&key));
                    }
                }
                Ok(ApplyResult::Stale) => {
                    // Someone (CassKop) wrote since our cache's copy: its watch event brings the
                    // new version and a new reconcile; this one is a safety net.
                    debug!(site = %site, "CassandraCluster changed since our cached copy: planning again");
                    outcome = "stale";
                    requeue = Requeue::requeue(STALE_RETRY);
                }
                Ok(ApplyResult::Exists(found)) => {
                    // Not in our cache: another's object (refused, and the status says whose),
                    // or ours and the cache is behind (plan again once it catches up).
                    let observed = ObservedCluster::from_live(&found, &f.desired, &ns, &name);
                    if matches!(observed.ownership, Ownership::Foreign { .. }) {
                        failed = true;
                        outcome = "blocked";
                        input.sites[i].observed = Some(observed);
                        refused = true;
                        publish(
                            ctx,
                            mc,
                            EventType::Warning,
                            "ForeignCassandraCluster",
                            "Apply",
                            format!(
                                "CassandraCluster {}/{} in site {site} was not created by this MultiCasskop: refusing to take it over",
                                f.desired.namespace, f.desired.name
                            ),
                        )
                        .await;
                    } else {
                        debug!(site = %site, "our CassandraCluster is not in the cache yet: planning again");
                        outcome = "stale";
                        requeue = Requeue::requeue(STALE_RETRY);
                    }
                }
                Err(e) => {
                    failed = true;
                    outcome = "site_write_error";
                    warn!("{e}");
                    // The site refused us: plan again with that known, so the status says
                    // Blocked on this site and why, and nothing else moves meanwhile.
                    input.sites[i].access = SiteAccess::Unavailable {
                        reason: e.to_string(),
                    };
                    refused = true;
                    publish(
                        ctx,
                        mc,
                        EventType::Warning,
                        "ApplyFailed",
                        "Apply",
                        e.to_string(),
                    )
                    .await;
                }
            }
        }
        Action::Delete { site } => {
            let i = index_of(&facts, site);
            let f = &facts[i];
            let Some(client) = f.site.as_ref().map(|s| s.client.clone()) else {
                // The planner only writes to reachable sites; refuse rather than panic.
                warn!(site = %site, "planner asked to delete at a site without a client");
                return Ok((Requeue::requeue(ctx.next_backoff(&key)), "error"));
            };
            let client = &client;
            match apply::delete_cluster(
                site,
                client,
                &f.desired.namespace,
                &f.desired.name,
                &ns,
                &name,
            )
            .await
            {
                Ok(result) => {
                    ctx.metrics.write(site, "delete");
                    outcome = "deleted";
                    if result == DeleteOutcome::Requested {
                        info!(site = %site, "deleting CassandraCluster {}/{}", f.desired.namespace, f.desired.name);
                        publish(
                            ctx,
                            mc,
                            EventType::Normal,
                            "Deleting",
                            "Delete",
                            format!(
                                "Deleting CassandraCluster {}/{} in site {site}",
                                f.desired.namespace, f.desired.name
                            ),
                        )
                        .await;
                    }
                }
                Err(e) => {
                    failed = true;
                    outcome = "site_write_error";
                    warn!("{e}");
                    // The site refused us: plan again with that known, so the status says
                    // Blocked on this site and why, and nothing else moves meanwhile.
                    input.sites[i].access = SiteAccess::Unavailable {
                        reason: e.to_string(),
                    };
                    refused = true;
                    publish(
                        ctx,
                        mc,
                        EventType::Warning,
                        "DeleteFailed",
                        "Delete",
                        e.to_string(),
                    )
                    .await;
                }
            }
        }
        Action::ReleaseFinalizer => {
            apply::set_finalizer(&mc_api, mc, false).await?;
            info!("every CassandraCluster is gone: finalizer removed");
            publish(
                ctx,
                mc,
                EventType::Normal,
                "Deleted",
                "Delete",
                "Every CassandraCluster of this MultiCasskop is gone".to_string(),
            )
            .await;
            ctx.reset_backoff(&key);
            ctx.written.forget(&key);
            return Ok((Requeue::await_change(), "released"));
        }
        Action::Wait { .. } => {}
        Action::Converged => outcome = "converged",
        Action::Blocked { site, reason } => {
            outcome = "blocked";
            failed = true;
            debug!(site = %site, "blocked: {reason}");
        }
    }

    let planned = if refused { plan::plan(&input) } else { planned };
    let (mut status, mut transitions) = build_status(
        Some(&prev),
        generation,
        &planned,
        &input.sites,
        &details,
        None,
        &now,
    );
    // The Created/Updated Event of this reconcile's write already says the site is in progress.
    if let Some(site) = &wrote {
        transitions.retain(|t| {
            !(t.reason == "SiteInProgress" && t.site.as_deref() == Some(site.as_str()))
        });
    }
    for (site, mark, from) in &new_marks {
        status::set_applied(&mut status, site, mark, *from, &now);
    }
    finish(mc, &mc_api, ctx, &prev, status, transitions).await?;
    if failed {
        requeue = Requeue::requeue(ctx.next_backoff(&key));
    } else if outcome != "applied" {
        ctx.reset_backoff(&key);
    }
    Ok((requeue, outcome))
}

fn index_of(facts: &[SiteFacts], site: &str) -> usize {
    facts
        .iter()
        .position(|f| f.name == site)
        .expect("the planner only names sites it was given")
}

/// Let the site cache show our write before the next reconcile reads it, so it does not act on
/// the object as it was before (bounded wait: the watch normally delivers in milliseconds).
async fn wait_for_cache(ctx: &Context, f: &SiteFacts, resource_version: &str, generation: i64) {
    let Some(site) = f.site.as_ref() else { return };
    let view = ctx.caches.view(site, &f.desired.namespace).await;
    let oref = ObjectRef::new_with(&f.desired.name, cassandra_cluster_resource())
        .within(&f.desired.namespace);
    let deadline = Instant::now() + CACHE_CATCH_UP_WAIT;
    while Instant::now() < deadline {
        if let Some(o) = view.store.get(&oref)
            && (o.resource_version().as_deref() == Some(resource_version)
                || o.metadata.generation.unwrap_or(0) > generation)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    debug!(site = %f.name, "cache did not show our write within {CACHE_CATCH_UP_WAIT:?}");
}

async fn observe_site(
    ctx: &Context,
    owner_ns: &str,
    owner_name: &str,
    f: &mut SiteFacts,
) -> (SiteAccess, Option<ObservedCluster>) {
    let site = match ctx.registry.get(&f.name) {
        None => return (SiteAccess::NotConfigured, None),
        Some(SiteState::Unavailable { reason }) => {
            return (SiteAccess::Unavailable { reason }, None);
        }
        Some(SiteState::Ready(site)) => site,
    };
    let view = ctx.caches.view(&site, &f.desired.namespace).await;
    match &view.health {
        WatchHealth::Synced => {}
        WatchHealth::Syncing => {
            return (
                SiteAccess::Unavailable {
                    reason: format!(
                        "site {}: CassandraCluster cache in namespace {} not synced yet",
                        f.name, f.desired.namespace
                    ),
                },
                None,
            );
        }
        WatchHealth::Failed(reason) => {
            return (
                SiteAccess::Unavailable {
                    reason: reason.clone(),
                },
                None,
            );
        }
    }
    f.site = Some(site.clone());
    let oref = ObjectRef::new_with(&f.desired.name, cassandra_cluster_resource())
        .within(&f.desired.namespace);
    // The cache holds every object carrying our owner labels. One it does not hold (another's
    // under the same name) is found by the create that would collide with it (see
    // `apply::apply_cluster`): no read per site and reconcile.
    let live = view.store.get(&oref).map(|o| (*o).clone());
    let Some(live) = live else {
        return (SiteAccess::Ok, None);
    };
    let ownership =
        Ownership::from_labels(live.metadata.labels.as_ref(), owner_ns, owner_name, &f.name);
    let live_value = serde_json::to_value(&live).unwrap_or(Value::Null);
    if ownership == Ownership::Ours {
        merge::preserve_site_owned_fields(&mut f.desired.object, &live_value);
    }
    let view = CassandraClusterView(&live);
    let observed = ObservedCluster {
        matches_desired: merge::live_matches_desired(&f.desired.object, &live_value),
        ownership,
        generation: live.metadata.generation.unwrap_or(0),
        phase: view.phase().map(str::to_string),
        last_cluster_action: view.last_cluster_action().map(str::to_string),
        last_cluster_action_status: view.last_cluster_action_status().map(str::to_string),
        deleting: live.metadata.deletion_timestamp.is_some(),
    };
    f.live = Some(live);
    (SiteAccess::Ok, Some(observed))
}

/// Write the status when it changed, then publish one Event per transition.
async fn finish(
    mc: &MultiCasskop,
    api: &Api<MultiCasskop>,
    ctx: &Context,
    prev: &MultiCasskopStatus,
    status: MultiCasskopStatus,
    transitions: Vec<Transition>,
) -> Result<(), Error> {
    if &status != prev {
        let rv = apply::write_status(api, mc, &status).await?;
        ctx.remember_write(&object_key(mc), rv);
    }
    for t in transitions {
        publish(ctx, mc, t.type_, &t.reason, "Reconcile", t.message).await;
    }
    Ok(())
}

async fn publish(
    ctx: &Context,
    mc: &MultiCasskop,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let reference: ObjectReference = mc.object_ref(&());
    let ev = NewEvent {
        type_,
        reason,
        action,
        note: &note,
    };
    if let Err(e) = ctx.events.publish(&ev, &reference).await {
        // Events are best effort: the status carries the same facts.
        debug!("could not publish Event {reason}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(labels: &[(&str, &str)]) -> DynamicObject {
        let mut o =
            DynamicObject::new("cassandra-demo", &cassandra_cluster_resource()).within("cassandra");
        for (k, v) in labels {
            o.labels_mut().insert(k.to_string(), v.to_string());
        }
        o
    }

    #[test]
    fn owner_labels_map_to_the_multicasskop_reference() {
        let o = cc(&[(OWNER_NAME_LABEL, "demo"), (OWNER_NAMESPACE_LABEL, "ops")]);
        let r = owner_of(&o).unwrap();
        assert_eq!(r.name, "demo");
        assert_eq!(r.namespace.as_deref(), Some("ops"));
    }

    #[test]
    fn objects_without_both_owner_labels_map_to_nothing() {
        assert!(owner_of(&cc(&[])).is_none());
        assert!(owner_of(&cc(&[(OWNER_NAME_LABEL, "demo")])).is_none());
        assert!(
            owner_of(&cc(&[
                (OWNER_NAME_LABEL, ""),
                (OWNER_NAMESPACE_LABEL, "ops")
            ]))
            .is_none()
        );
    }

    #[test]
    fn selector_matches_only_our_namespace_owners() {
        assert_eq!(
            owned_selector("ops"),
            format!("{OWNER_NAMESPACE_LABEL}=ops,{OWNER_NAME_LABEL}")
        );
    }

    #[test]
    fn a_write_stays_unseen_until_the_cache_shows_its_version() {
        let w = WrittenVersions::default();
        assert_eq!(
            w.unseen("ns/a", Some("5")),
            None,
            "no write of ours: trust the cache"
        );
        w.remember("ns/a", Some("7".into()));
        assert_eq!(
            w.unseen("ns/a", Some("5")).as_deref(),
            Some("7"),
            "cache behind"
        );
        assert_eq!(
            w.unseen("ns/a", Some("5")).as_deref(),
            Some("7"),
            "still behind"
        );
        assert_eq!(w.unseen("ns/b", Some("5")), None, "per object");
        assert_eq!(w.unseen("ns/a", Some("7")), None, "cache caught up");
        assert_eq!(w.unseen("ns/a", Some("5")), None, "forgotten once seen");
        w.remember("ns/a", None);
        assert_eq!(
            w.unseen("ns/a", Some("5")),
            None,
            "no version returned: nothing to wait for"
        );
    }

    #[test]
    fn failures_during_a_running_delay_do_not_lengthen_it() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.failed(t0), Duration::from_secs(1));
        // Twenty watch-triggered failures within the first second: still the same delay.
        for ms in (0..1000).step_by(50) {
            let left = b.failed(t0 + Duration::from_millis(ms));
            assert_eq!(left, Duration::from_millis(1000 - ms));
        }
        assert_eq!(
            b.failed(t0 + Duration::from_secs(1)),
            Duration::from_secs(2)
        );
        assert_eq!(
            b.failed(t0 + Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            b.failed(t0 + Duration::from_secs(3)),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn backoff_doubles_and_caps_at_five_minutes() {
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(2), Duration::from_secs(2));
        assert_eq!(backoff_for(5), Duration::from_secs(16));
        assert_eq!(backoff_for(9), Duration::from_secs(256));
        assert_eq!(backoff_for(10), MAX_BACKOFF);
        assert_eq!(backoff_for(u32::MAX), MAX_BACKOFF);
    }
}
