//! Observe: what one reconcile knows before planning. The MultiCasskop read afresh after our own
//! writes, the sites taking part with their desired CassandraClusters, and each site's access and
//! live object from its cache, gathered into the planner's input.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::api::lenient::Lenient;
use crate::api::{CassandraClusterView, MultiCasskop, MultiCasskopStatus};
use crate::merge::{self, DesiredCluster};
use crate::rollout::apply::WriteError;
use crate::rollout::context::{Context, Error, Target};
use crate::rollout::plan::{
    self, AppliedMark, ObservedCluster, Ownership, PlanInput, SiteAccess, SiteInput,
};
use crate::rollout::site_caches::WatchHealth;

/// How long a reconcile handed a copy older than our last write waits for the controller's
/// cache to show that write before reading the object instead.
const CACHE_CATCH_UP_WAIT: Duration = Duration::from_secs(1);
use crate::rollout::status::{self, SiteDetail};
use crate::sites::{Site, SiteState};

/// Per-site facts gathered for one reconcile.
pub(super) struct SiteFacts {
    pub name: String,
    pub desired: DesiredCluster,
    /// The site's client, when the site is reachable and its cache synced.
    pub site: Option<Arc<Site>>,
    /// Our cache's copy of the site's CassandraCluster.
    pub live: Option<DynamicObject>,
}

/// A write of ours the status does not record yet: the site, its mark and the generation the
/// write was computed from.
pub(super) type NewMark = (String, AppliedMark, i64);

/// Everything observed of a valid MultiCasskop.
pub(super) struct Observation {
    /// The status as the MultiCasskop carries it.
    pub prev: MultiCasskopStatus,
    /// `metadata.generation` of the MultiCasskop.
    pub generation: i64,
    /// The time this reconcile reports with.
    pub now: String,
    /// One entry per site taking part, in rollout order (same order as `input.sites`).
    pub facts: Vec<SiteFacts>,
    pub input: PlanInput,
    pub details: Vec<SiteDetail>,
    /// Marks to record in the status (recovered from objects, or of this reconcile's write).
    pub new_marks: Vec<NewMark>,
    /// The sites that left `override` and what their removal did (filled after planning).
    pub removal: crate::rollout::removal::entries::Report,
}

impl Observation {
    /// Index of `site` among the sites taking part.
    pub fn index_of(&self, site: &str) -> usize {
        self.facts
            .iter()
            .position(|f| f.name == site)
            .expect("the planner only names sites it was given")
    }
}

/// What observing found.
pub(super) enum Observed {
    /// The sites taking part, observed.
    Sites(Box<Observation>),
    /// The spec cannot be rolled out: nothing is created.
    Invalid { why: String },
}

/// The MultiCasskop to reconcile: the cached one, or, when the copy this reconcile was handed
/// is older than our last write (a reconcile must never build on a status older than its own
/// last write), the cache's copy once it shows that write (its watch event is normally
/// milliseconds away), else a fresh read. `None`: it is gone.
pub(super) async fn fresh<'a>(
    mc: &'a MultiCasskop,
    ctx: &Context,
    api: &Api<MultiCasskop>,
    key: &str,
) -> Result<Option<Cow<'a, MultiCasskop>>, Error> {
    let Some(ours) = ctx.written.unseen(key, mc.resource_version().as_deref()) else {
        return Ok(Some(Cow::Borrowed(mc)));
    };
    if let Some(cached) = cached_write(ctx, mc, &ours).await {
        ctx.written.unseen(key, Some(ours.as_str()));
        return Ok(Some(Cow::Owned(cached)));
    }
    let name = mc.name_any();
    let current = api.get_opt(&name).await.map_err(|source| {
        Error::Write(WriteError::Local {
            what: "re-read",
            namespace: mc.namespace().unwrap_or_default(),
            name: name.clone(),
            source,
        })
    })?;
    let Some(current) = current else {
        return Ok(None);
    };
    debug!(ours, fresh = ?current.resource_version(), "cache behind our last write: read afresh");
    // Wait for the cache to reach at least what we just read.
    ctx.remember_write(key, current.resource_version());
    Ok(Some(Cow::Owned(current)))
}

/// The controller cache's copy of `mc` once it is at version `ours` (our last write), within
/// [`CACHE_CATCH_UP_WAIT`].
async fn cached_write(ctx: &Context, mc: &MultiCasskop, ours: &str) -> Option<MultiCasskop> {
    let oref = ObjectRef::new(&mc.name_any()).within(&mc.namespace().unwrap_or_default());
    let deadline = Instant::now() + CACHE_CATCH_UP_WAIT;
    loop {
        if let Some(cached) = ctx.multicasskops.get(&oref)
            && cached.resource_version().as_deref() == Some(ours)
        {
            return match cached.decode() {
                Lenient::Decoded(mc) => Some(mc),
                Lenient::Poison(_) => None,
            };
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Observe every site taking part, or say why the spec is invalid.
pub(super) async fn observe(
    target: &Target<'_>,
    ctx: &Context,
    deleting: bool,
    delete_clusters: bool,
) -> Observed {
    let mc = target.mc;
    let prev = mc.status.clone().unwrap_or_default();
    let now = jiff::Timestamp::now().to_string();
    let mut facts = match desired_sites(target, ctx, &prev, deleting) {
        Ok(facts) => facts,
        Err(why) => return Observed::Invalid { why },
    };
    let mut sites = Vec::with_capacity(facts.len());
    let mut details = Vec::with_capacity(facts.len());
    let mut new_marks = Vec::new();
    for f in &mut facts {
        let dropped = status::applied_mark(Some(&prev), &f.name)
            .filter(|m| m.hash == f.desired.hash)
            .map(|m| m.dropped)
            .unwrap_or_default();
        let owners = (target.ns.as_str(), target.name.as_str());
        let (access, observed) = observe_site(ctx, owners, &dropped, f).await;
        ctx.metrics
            .set_site_reachable(&f.name, matches!(access, SiteAccess::Ok));
        let mut detail = site_detail(ctx, f, &access);
        if !dropped.is_empty() && detail.message.is_none() {
            let cluster = format!("{}/{}", f.desired.namespace, f.desired.name);
            let (base, over) = (&mc.spec.base, mc.spec.override_.get(&f.name));
            detail.message = Some(plan::dropped_note(&f.name, &cluster, &dropped, base, over));
        }
        details.push(detail);
        let applied = applied_mark(&prev, f, observed.as_ref(), &mut new_marks);
        sites.push(SiteInput {
            name: f.name.clone(),
            desired_hash: f.desired.hash.clone(),
            access,
            observed,
            applied,
        });
    }
    Observed::Sites(Box::new(Observation {
        generation: mc.metadata.generation.unwrap_or(0),
        now,
        prev,
        facts,
        input: PlanInput {
            sites,
            deleting,
            delete_cassandra_cluster: delete_clusters,
        },
        details,
        new_marks,
        removal: Default::default(),
    }))
}

/// The sites taking part, in rollout order, with their desired CassandraClusters; `Err` says
/// why the spec is invalid (unknown sites, merge errors).
fn desired_sites(
    target: &Target<'_>,
    ctx: &Context,
    prev: &MultiCasskopStatus,
    deleting: bool,
) -> Result<Vec<SiteFacts>, String> {
    let mc = target.mc;
    let registered = ctx.registry.order();
    let previous: Vec<&str> = prev.sites.iter().map(|s| s.name.as_str()).collect();
    let roster = match ctx.registry.client_configs_unknown() {
        None => plan::Roster::Known,
        Some(_) => plan::Roster::ClientConfigsUnknown,
    };
    let taking_part = plan::sites_taking_part(
        &registered,
        roster,
        &previous,
        &mc.spec.override_,
        mc.spec.site_order.as_deref(),
        deleting,
    )
    .map_err(|e| e.to_string())?;
    for site in &taking_part.left_in_place {
        warn!(site = %site, "site is no longer configured: its CassandraCluster is left in place");
    }
    let mut facts = Vec::with_capacity(taking_part.sites.len());
    for site in taking_part.sites {
        let desired = merge::desired_for_site(
            &mc.spec.base,
            taking_part.overrides.get(&site),
            &site,
            &target.ns,
            &target.name,
        )
        .map_err(|e| e.to_string())?;
        facts.push(SiteFacts {
            name: site,
            desired,
            site: None,
            live: None,
        });
    }
    // A deletion writes no seed list: it must not wait on one that cannot be computed.
    if mc.spec.auto_seed_list == Some(true) && !deleting {
        let mut sites: Vec<(&str, &mut DesiredCluster)> = facts
            .iter_mut()
            .map(|f| (f.name.as_str(), &mut f.desired))
            .collect();
        plan::seeds::write_federation_seeds(&mc.spec.base, &mc.spec.override_, &mut sites)
            .map_err(|e| e.to_string())?;
    }
    Ok(facts)
}

/// The site's access and CassandraCluster, from the registry and the site's cache.
async fn observe_site(
    ctx: &Context,
    owners: (&str, &str),
    dropped: &[String],
    f: &mut SiteFacts,
) -> (SiteAccess, Option<ObservedCluster>) {
    let site = match ctx.registry.get(&f.name) {
        None => {
            let access = match ctx.registry.client_configs_unknown() {
                Some(reason) => SiteAccess::Unlisted { reason },
                None => SiteAccess::NotConfigured,
            };
            return (access, None);
        }
        Some(SiteState::Unavailable { reason }) => {
            return (SiteAccess::Unavailable { reason }, None);
        }
        Some(SiteState::Ready(site)) => site,
    };
    let view = ctx.caches.view(&site, &f.desired.namespace).await;
    let reason = match &view.health {
        WatchHealth::Synced => None,
        WatchHealth::Syncing => Some(format!(
            "site {}: CassandraCluster cache in namespace {} not synced yet",
            f.name, f.desired.namespace
        )),
        WatchHealth::Failed(reason) => Some(
            ctx.registry
                .token_reports()
                .explain_unreachable(&f.name, reason.clone()),
        ),
    };
    if let Some(reason) = reason {
        return (SiteAccess::Unavailable { reason }, None);
    }
    f.site = Some(site.clone());
    let oref = ObjectRef::new(&f.desired.name).within(&f.desired.namespace);
    // The cache holds every object carrying our owner labels. One it does not hold (another's
    // under the same name) is found by the create that would collide with it (see
    // `apply::apply_cluster`): no read per site and reconcile.
    let Some(cached) = view.store.get(&oref) else {
        return (SiteAccess::Ok, None);
    };
    let live = match cached.object() {
        Ok(live) => live,
        Err(e) => {
            let reason = format!("site {}: {e}", f.name);
            return (SiteAccess::Unavailable { reason }, None);
        }
    };
    let live_json = serde_json::to_value(&live).unwrap_or(Value::Null);
    let observed =
        ObservedCluster::folding_into(&live, &live_json, &mut f.desired, dropped, owners);
    f.live = Some(live);
    (SiteAccess::Ok, Some(observed))
}

/// What the status shows of one site.
fn site_detail(ctx: &Context, f: &SiteFacts, access: &SiteAccess) -> SiteDetail {
    let view = f.live.as_ref().map(CassandraClusterView);
    let view = view.as_ref();
    let owned = |text: Option<&str>| text.map(str::to_string);
    SiteDetail {
        site: f.name.clone(),
        namespace: Some(f.desired.namespace.clone()),
        name: Some(f.desired.name.clone()),
        phase: owned(view.and_then(CassandraClusterView::phase)),
        last_cluster_action: owned(view.and_then(CassandraClusterView::last_cluster_action)),
        last_cluster_action_status: owned(
            view.and_then(CassandraClusterView::last_cluster_action_status),
        ),
        message: (*access == SiteAccess::NotConfigured).then(|| {
            format!(
                "site {} is no longer configured (no --remote flag or ClientConfig {}/{} names it any more); its CassandraCluster is left as it is",
                f.name,
                ctx.registry.config().namespace,
                f.name
            )
        }),
        token_problem: ctx
            .registry
            .token_reports()
            .get(&f.name)
            .and_then(|r| r.problem(&f.name)),
    }
}

/// Our last write to the site: the status's record, or a write of ours the status does not
/// record (the controller stopped, or the status write was refused, right after it), recovered
/// from the object itself before planning, so the planner neither writes again nor trusts a
/// stale status. A recovered mark is added to `new_marks`, to be recorded.
fn applied_mark(
    prev: &MultiCasskopStatus,
    f: &SiteFacts,
    observed: Option<&ObservedCluster>,
    new_marks: &mut Vec<NewMark>,
) -> Option<AppliedMark> {
    let recorded = status::applied_mark(Some(prev), &f.name);
    let ours = observed.is_some_and(|o| o.ownership == Ownership::Ours);
    let Some(live) = f.live.as_ref().filter(|_| ours) else {
        return recorded;
    };
    let recorded_from = status::applied_from(Some(prev), &f.name);
    match plan::recover_mark(live, &f.desired.hash, recorded.as_ref(), recorded_from) {
        Some((mark, from)) => {
            info!(
                site = %f.name,
                generation = mark.generation,
                "CassandraCluster carries a write the status does not record: recording it"
            );
            new_marks.push((f.name.clone(), mark.clone(), from));
            Some(mark)
        }
        None => recorded,
    }
}
