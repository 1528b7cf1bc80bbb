//! The controller: the kube-runtime wiring, and one reconcile as four steps:
//! observe (caches and live reads -> the planner's input), plan (pure, `plan`), act (one small
//! function per action, `act`), report (status, Events, requeue, `report`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::channel::mpsc;
use kube::api::Api;
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::reflector::{ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::api::lenient::{Lenient, Packed};
use crate::api::{FINALIZER, MultiCasskop};
use crate::rollout::act::{self, Step};
use crate::rollout::context::{Context, Error, Target};
use crate::rollout::events::Publisher;
use crate::rollout::joining;
use crate::rollout::observe::{self, Observed};
use crate::rollout::pause;
use crate::rollout::plan;
use crate::rollout::poison;
use crate::rollout::refusal;
use crate::rollout::removal;
use crate::rollout::report;
use crate::rollout::site_caches::{SiteCaches, WatchSignals};
use crate::runtime::health::Readiness;
use crate::runtime::liveness::Liveness;
use crate::runtime::metrics::Metrics;
use crate::sites::{SiteRegistry, SiteState, deadlines};

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
    /// Longest one reconcile may take before it is abandoned and retried (`--reconcile-timeout`).
    pub reconcile_timeout: Duration,
}

/// Run the controller until `shutdown` resolves. Progress is watch-driven: MultiCasskop changes,
/// CassandraCluster events at any site and site registry changes all trigger reconciles.
pub async fn run(
    local: Client,
    registry: SiteRegistry,
    cfg: ControllerConfig,
    metrics: Arc<Metrics>,
    probes: (Readiness, Liveness),
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (readiness, liveness) = probes;
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
    let registry_task = follow_registry(&registry, &caches, &metrics, all_tx);
    let events = Publisher::new(local.clone(), "multi-casskop", &cfg.instance);
    // As Controller::new, the cache holding each MultiCasskop as its text without managedFields
    // (never read; often half an object), see `Packed`: 1,000 decoded ones were 12 MiB.
    let (reader, writer) = kube::runtime::reflector::store();
    let ctx = Arc::new(Context::new(
        local.clone(),
        registry,
        caches,
        events,
        metrics,
        cfg.resync,
        reader.clone(),
    ));
    let bounds = Arc::new(Bounds {
        liveness: liveness.clone(),
        reconcile_timeout: cfg.reconcile_timeout,
    });

    // Each MultiCasskop is kept as its text and decoded on its own by its reconcile: one that
    // cannot be is reported, never fails the list or watch that carries the others.
    let api: Api<Packed<MultiCasskop>> = Api::namespaced(local, &cfg.namespace);
    let mcs = watcher(api, deadlines::watch_config());
    let mcs = liveness.follow_local_watch(mcs);
    let controller = Controller::for_stream(reflector(writer, mcs).applied_objects(), reader);
    report_cache_sync(controller.store(), readiness);
    info!(namespace = %cfg.namespace, "controller started: watching MultiCasskops");
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(cfg.concurrency))
        .reconcile_on(one_rx.map(|r| lenient_ref(&r)))
        .reconcile_all_on(all_rx)
        .graceful_shutdown_on(shutdown)
        .run(
            move |mc, ctx| bounded(mc, ctx, bounds.clone()),
            error_policy,
            ctx,
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!("controller: {e}");
            }
        })
        .await;
    registry_task.abort();
    info!("controller stopped");
}

/// Follow the site registry: keep the reachable gauge current, drop caches of rebuilt or removed
/// sites, and reconcile every MultiCasskop on each change.
fn follow_registry(
    registry: &SiteRegistry,
    caches: &SiteCaches,
    metrics: &Arc<Metrics>,
    reconcile_all: mpsc::UnboundedSender<()>,
) -> tokio::task::JoinHandle<()> {
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
            debug!("site registry changed: refreshing caches and reconciling every MultiCasskop");
            caches.refresh(&registry);
            let _ = reconcile_all.unbounded_send(());
        }
    })
}

/// The same object, as the controller's (lenient) MultiCasskops are keyed.
fn lenient_ref(r: &ObjectRef<MultiCasskop>) -> ObjectRef<Packed<MultiCasskop>> {
    let named = ObjectRef::new(&r.name);
    match &r.namespace {
        Some(ns) => named.within(ns),
        None => named,
    }
}

/// Readiness follows the MultiCasskop cache's first list.
fn report_cache_sync(store: Store<Packed<MultiCasskop>>, readiness: Readiness) {
    readiness.set_caches_synced(false);
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
}

fn object_key(mc: &Packed<MultiCasskop>) -> String {
    format!("{}/{}", mc.namespace().unwrap_or_default(), mc.name_any())
}

/// Requeue policy after a failed reconcile: exponential backoff per object, capped.
fn error_policy(mc: Arc<Packed<MultiCasskop>>, err: &Error, ctx: Arc<Context>) -> Requeue {
    let key = object_key(&mc);
    let wait = ctx.next_backoff(&key);
    warn!(multicasskop = %key, "reconcile failed: {err}; retrying in {wait:?}");
    Requeue::requeue(wait)
}

/// What bounds every reconcile: its deadline, and the in-flight record `/healthz` judges.
struct Bounds {
    liveness: Liveness,
    reconcile_timeout: Duration,
}

/// A reconcile under its deadline: past it, the reconcile is dropped (every write it made is
/// recorded on the object itself, see `plan::marks`) so no hung call holds a slot that the
/// other MultiCasskops need.
async fn bounded(
    mc: Arc<Packed<MultiCasskop>>,
    ctx: Arc<Context>,
    bounds: Arc<Bounds>,
) -> Result<Requeue, Error> {
    let key = object_key(&mc);
    let _running = bounds.liveness.reconcile_started(&key);
    let after = bounds.reconcile_timeout;
    match tokio::time::timeout(after, reconcile(mc, ctx.clone(), &key)).await {
        Ok(result) => result,
        Err(_) => {
            ctx.metrics.reconciled("timed_out", after);
            Err(Error::TimedOut { key, after })
        }
    }
}

async fn reconcile(
    mc: Arc<Packed<MultiCasskop>>,
    ctx: Arc<Context>,
    key: &str,
) -> Result<Requeue, Error> {
    let started = Instant::now();
    let span = info_span!("reconcile", multicasskop = %key);
    let result = match &mc.decode() {
        Lenient::Decoded(mc) => reconcile_one(mc, &ctx).instrument(span).await,
        Lenient::Poison(p) => {
            let reporter = poison::Reporter {
                local: &ctx.local,
                events: &ctx.events,
                reported: &ctx.poisoned,
            };
            Ok(poison::report(p, reporter).instrument(span).await)
        }
    };
    let label = match &result {
        Ok((_, outcome)) => *outcome,
        Err(e) => e.metric_label(),
    };
    ctx.metrics.reconciled(label, started.elapsed());
    result.map(|(requeue, _)| requeue)
}

/// One reconcile: observe, plan, act, report. Returns the requeue and the outcome label.
async fn reconcile_one(mc: &MultiCasskop, ctx: &Context) -> Result<(Requeue, &'static str), Error> {
    let name = mc.name_any();
    let ns = mc
        .namespace()
        .ok_or_else(|| Error::NoNamespace(name.clone()))?;
    let api: Api<MultiCasskop> = Api::namespaced(ctx.local.clone(), &ns);
    let key = format!("{ns}/{name}");
    // The cache may still hold the object as it was before our last write: read it afresh.
    let Some(mc) = observe::fresh(mc, ctx, &api, &key).await? else {
        return Ok((Requeue::await_change(), "gone"));
    };
    let target = Target {
        mc: &mc,
        ns,
        name,
        key,
        api,
    };
    let deleting = mc.metadata.deletion_timestamp.is_some();
    let has_finalizer = mc.finalizers().iter().any(|f| f == FINALIZER);
    let delete_clusters = mc.spec.delete_cassandra_cluster == Some(true);
    if pause::is_paused(&mc) {
        return pause::reconcile(&target, ctx, deleting, delete_clusters).await;
    }
    if let Some(step) = plan::finalizer_step(deleting, delete_clusters, has_finalizer) {
        return act::finalizer(&target, ctx, step).await;
    }

    let observed = match observe::observe(&target, ctx, deleting, delete_clusters).await {
        Observed::Invalid { why } => return report::invalid(&target, ctx, deleting, &why).await,
        Observed::Sites(observation) => *observation,
    };
    let mut observation = observed;
    joining::put_joining_sites_in_place(&mut observation);
    let (planned, step) = plan_and_act(&target, ctx, &mut observation, delete_clusters).await?;
    match step {
        Step::Finished(requeue, outcome) => Ok((requeue, outcome)),
        Step::Acted(acted) => report::report(&target, ctx, observation, planned, acted).await,
    }
}

/// Plan the sites taking part and the sites that left `override` together, and carry out the
/// one action: a removal's when it goes first, else the rollout's.
async fn plan_and_act(
    target: &Target<'_>,
    ctx: &Context,
    observation: &mut observe::Observation,
    delete_clusters: bool,
) -> Result<(plan::Plan, Step), Error> {
    let leaving = removal::observe(target, ctx, observation).await;
    let mode = if delete_clusters {
        removal::Mode::Delete
    } else {
        removal::Mode::Release
    };
    let inputs: Vec<_> = leaving.iter().map(|l| l.input.clone()).collect();
    let main = plan::plan(&observation.input);
    refusal::forget_settled(target, ctx, observation);
    let refused = refusal::find(&main, observation, target.mc, |s| {
        refusal::retrying(target, ctx, s)
    });
    let main = match &refused {
        Some(r) => refusal::block(main, r),
        None => main,
    };
    let (planned, removing) = removal::combine(main, &observation.input.sites, &inputs, mode);
    debug!(action = ?planned.action, "planned");
    let mut report = removal::Report {
        leaving: inputs,
        removal: removing,
        ..Default::default()
    };
    let step = if report.removal.current.is_some() {
        removal::act(target, ctx, observation, &leaving, &mut report).await
    } else if let Some(r) = &refused {
        refusal::act(target, ctx, observation, &planned, r).await?
    } else {
        act::act(target, ctx, observation, &planned).await?
    };
    observation.removal = report;
    Ok((planned, step))
}
