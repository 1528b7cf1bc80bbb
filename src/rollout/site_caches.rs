//! One CassandraCluster cache per (site, namespace) in use: a reflector on the objects our
//! MultiCasskops own, started on demand, restarted when the site's client is rebuilt, its events
//! mapped back to the owning MultiCasskop.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store, reflector, store::Writer};
use kube::runtime::watcher;
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::api::MultiCasskop;
use crate::api::cassandra::{self, CachedCluster, cassandra_cluster_resource};
use crate::api::lenient::{self, Lenient, Poison};
use crate::api::owner;
use crate::backoff::Backoff;
use crate::kube_error;
use crate::runtime::metrics::Metrics;
use crate::sites::{Site, SiteRegistry, SiteState, answering, deadlines};

/// How long a reconcile waits for a freshly started site cache to sync before reporting it.
const CACHE_SYNC_WAIT: Duration = Duration::from_secs(5);
/// First retry delay of a failed site watch.
const WATCH_MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest retry delay of a failed site watch.
const WATCH_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One watch event for a site cache.
type CacheEvent = Result<watcher::Event<CachedCluster>, watcher::Error>;

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
    store: Arc<Mutex<Store<CachedCluster>>>,
    health: watch::Receiver<WatchHealth>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CacheEntry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A snapshot of one site cache for one reconcile.
pub(super) struct CacheView {
    pub(super) store: Store<CachedCluster>,
    pub(super) health: WatchHealth,
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
pub(super) struct WatchSignals {
    pub(super) reconcile_one: mpsc::UnboundedSender<ObjectRef<MultiCasskop>>,
    pub(super) reconcile_all: mpsc::UnboundedSender<()>,
    pub(super) metrics: Arc<Metrics>,
}

impl SiteCaches {
    pub(super) fn new(owner_ns: &str, signals: WatchSignals) -> Self {
        Self {
            inner: Arc::default(),
            owner_ns: owner_ns.to_string(),
            signals,
        }
    }

    /// The cache of `site`'s CassandraClusters in `namespace`, started if missing or built on an
    /// older client revision. Waits up to [`CACHE_SYNC_WAIT`] for a new cache's first list.
    pub(super) async fn view(&self, site: &Site, namespace: &str) -> CacheView {
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
        let writer = Writer::default();
        let store = Arc::new(Mutex::new(writer.as_reader()));
        let (health_tx, health_rx) = watch::channel(WatchHealth::Syncing);
        debug!(site = %site.name, namespace, "starting CassandraCluster watch");
        let task = tokio::spawn(
            watch_site(
                site.name.clone(),
                site.client.clone(),
                namespace.to_string(),
                owner::owned_selector(&self.owner_ns),
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
    pub(super) fn refresh(&self, registry: &SiteRegistry) {
        let mut map = self.inner.lock().expect("caches lock");
        map.retain(|key, entry| match registry.get(&key.site) {
            Some(SiteState::Ready(site)) => site.revision == entry.revision,
            _ => false,
        });
    }
}

/// The watch of `site`'s CassandraClusters matching `selector`, as the cache keeps them.
fn owned_cassandras(
    client: &Client,
    namespace: &str,
    selector: &str,
    site: &str,
) -> impl futures::Stream<Item = CacheEvent> + Send + use<> {
    let api: Api<Lenient<DynamicObject>> =
        Api::namespaced_with(client.clone(), namespace, &cassandra_cluster_resource());
    let cfg = deadlines::watch_config().labels(selector);
    let site = site.to_string();
    for_cache(watcher(api, cfg), move |p| {
        cassandra::report_poison(&site, p);
    })
}

/// Watch events as a site cache keeps them: an undecodable object is left out and told to
/// `poisoned`, the others are cached with only what the controller reads (no managedFields, none
/// of CassKop's progress fields of the status: for 1,000 resources x 3 sites this is most of the
/// controller's memory), as compact text (see [`CachedCluster`]).
fn for_cache<S, P>(
    events: S,
    poisoned: P,
) -> impl futures::Stream<Item = CacheEvent> + Send + use<S, P>
where
    S: futures::Stream<Item = Result<watcher::Event<Lenient<DynamicObject>>, watcher::Error>>
        + Send,
    P: FnMut(&Poison) + Send,
{
    lenient::sifted(events, cassandra::placeholder, poisoned).map_ok(|event| {
        use watcher::Event;
        let keep = |mut o: DynamicObject| {
            cassandra::slim_for_cache(&mut o);
            CachedCluster::new(&o)
        };
        match event {
            Event::Init => Event::Init,
            Event::InitApply(o) => Event::InitApply(keep(o)),
            Event::InitDone => Event::InitDone,
            Event::Apply(o) => Event::Apply(keep(o)),
            Event::Delete(o) => Event::Delete(keep(o)),
        }
    })
}

#[allow(clippy::too_many_arguments)]
async fn watch_site(
    site: String,
    client: Client,
    namespace: String,
    selector: String,
    first_writer: Writer<CachedCluster>,
    store_slot: Arc<Mutex<Store<CachedCluster>>>,
    health: watch::Sender<WatchHealth>,
    signals: WatchSignals,
) {
    let WatchSignals {
        reconcile_one,
        reconcile_all,
        metrics,
    } = signals;
    let mut writer = Some(first_writer);
    let mut backoff = Backoff::new(WATCH_MIN_BACKOFF, WATCH_MAX_BACKOFF);
    loop {
        let writer = match writer.take() {
            Some(w) => w,
            None => {
                let w = Writer::default();
                *store_slot.lock().expect("store lock") = w.as_reader();
                w
            }
        };
        let stream = owned_cassandras(&client, &namespace, &selector, &site);
        let stream = answering::probed(stream, client.clone());
        let mut events = pin!(reflector(writer, stream));
        let failure = loop {
            match events.next().await {
                None => break Some("the watch stream ended".to_string()),
                Some(Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o))) => {
                    if let Some(owner) = o.owner_labels().owner_ref() {
                        let _ = reconcile_one.unbounded_send(owner);
                    }
                }
                Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
                Some(Ok(watcher::Event::InitDone)) => {
                    backoff.reset();
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
        let delay = backoff.next_delay();
        warn!("{reason}; retrying in {delay:?}");
        let was = health.send_replace(WatchHealth::Failed(reason));
        metrics.set_site_reachable(&site, false);
        if !matches!(was, WatchHealth::Failed(_)) {
            let _ = reconcile_all.unbounded_send(());
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MultiCasskop;
    use kube::{Resource, ResourceExt};
    use serde_json::json;

    /// A CassandraCluster of ours as a site lists it, with `spec` (JSON text).
    fn cluster(name: &str, rv: &str, spec: &str) -> String {
        let doc = json!({
            "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv,
                         "generation": 2, "uid": format!("u-{name}"),
                         "managedFields": [{"manager": "multi-casskop"}],
                         "labels": {"multicasskop.db.orange.com/owner-name": "m",
                                    "multicasskop.db.orange.com/owner-namespace": "mns",
                                    "multicasskop.db.orange.com/site": "dc1"}},
            "spec": "SPEC",
            "status": {"phase": "Running", "lastClusterActionStatus": "Done",
                       "cassandraRackStatus": {"dc1-rack1": {"phase": "Running"}}}
        });
        // Spliced in as text: a spec too deep to decode cannot be built as a Value.
        doc.to_string().replace(r#""SPEC""#, spec)
    }

    fn delivered(
        events: Vec<watcher::Event<Lenient<DynamicObject>>>,
    ) -> (Vec<watcher::Event<CachedCluster>>, Vec<String>) {
        let mut heard = Vec::new();
        let out = futures::executor::block_on(
            for_cache(futures::stream::iter(events.into_iter().map(Ok)), |p| {
                heard.push(format!("{}: {}", p.key(), p.error));
            })
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
        );
        (out, heard)
    }

    #[test]
    fn the_cache_reads_back_what_the_watch_delivered_minus_the_slimmed_fields() {
        let spec = r#"{"nodesPerRacks": 3, "topology": {"dc": [{"name": "dc1"}]}}"#;
        let text = cluster("c", "7", spec);
        let (out, heard) = delivered(vec![watcher::Event::Apply(Lenient::from_json(&text))]);
        assert!(heard.is_empty());
        let [watcher::Event::Apply(cached)] = &out[..] else {
            panic!("one Apply expected: {out:?}");
        };
        let mut expected: DynamicObject = serde_json::from_str(&text).unwrap();
        cassandra::slim_for_cache(&mut expected);
        assert_eq!(cached.object().unwrap(), expected);
        assert!(expected.metadata.managed_fields.is_none());
        assert!(expected.data["status"].get("cassandraRackStatus").is_none());
        assert_eq!(expected.data["status"]["phase"], "Running");
        let meta = cached.meta();
        assert_eq!(meta.name.as_deref(), Some("c"));
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert_eq!(meta.generation, Some(2));
        let owner = cached.owner_labels();
        assert_eq!(owner.site, Some("dc1"));
        assert_eq!(
            owner.owner_ref(),
            Some(ObjectRef::<MultiCasskop>::new("m").within("mns"))
        );
    }

    #[test]
    fn an_undecodable_cluster_is_left_out_and_reported() {
        let ok = cluster("ok", "1", r#"{"nodesPerRacks": 1}"#);
        let deep_spec = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        let deep = cluster("deep", "2", &deep_spec);
        let (out, heard) = delivered(vec![
            watcher::Event::Init,
            watcher::Event::InitApply(Lenient::from_json(&ok)),
            watcher::Event::InitApply(Lenient::from_json(&deep)),
            watcher::Event::InitDone,
            // An update that cannot be decoded removes the version the cache holds.
            watcher::Event::Apply(Lenient::from_json(&cluster("ok", "3", &deep_spec))),
        ]);
        let names: Vec<String> = out
            .iter()
            .map(|e| match e {
                watcher::Event::Init => "Init".to_string(),
                watcher::Event::InitDone => "InitDone".to_string(),
                watcher::Event::InitApply(o) => format!("InitApply {}", o.name_any()),
                watcher::Event::Apply(o) => format!("Apply {}", o.name_any()),
                watcher::Event::Delete(o) => format!("Delete {}", o.name_any()),
            })
            .collect();
        assert_eq!(names, ["Init", "InitApply ok", "InitDone", "Delete ok"]);
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert!(heard[0].starts_with("ns/deep: spec.a.a.a"), "{heard:?}");
        assert!(heard[1].starts_with("ns/ok: spec.a.a.a"), "{heard:?}");
    }

    #[test]
    fn cached_clusters_are_keyed_as_cassandra_clusters() {
        let text = cluster("c", "7", "{}");
        let cached = CachedCluster::new(&serde_json::from_str(&text).unwrap());
        let key = ObjectRef::from_obj(&cached);
        assert_eq!(key, ObjectRef::new("c").within("ns"));
        let ar = cassandra_cluster_resource();
        assert_eq!(
            (
                ar.group.as_str(),
                ar.version.as_str(),
                ar.api_version.as_str()
            ),
            ("db.orange.com", "v2", "db.orange.com/v2")
        );
        assert_eq!(
            (ar.kind.as_str(), ar.plural.as_str()),
            ("CassandraCluster", "cassandraclusters")
        );
    }
}
