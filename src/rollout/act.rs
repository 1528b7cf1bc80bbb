//! Act: carry out the planner's one action, one small function per action. The API calls are in
//! `apply`; here is what the controller does around them (metrics, Events, the applied mark, the
//! wait for the site cache) and what the report step needs to know of it.

use std::time::{Duration, Instant};

use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use crate::api::FINALIZER;
use crate::rollout::apply::{self, ApplyOutcome, ApplyResult, DeleteOutcome, WriteError};
use crate::rollout::context::{Context, Error, Target};
use crate::rollout::events::EventType;
use crate::rollout::observe::{Observation, SiteFacts};
use crate::rollout::plan::{
    self, Action, AppliedMark, FinalizerStep, ObservedCluster, Ownership, Plan, SiteAccess,
    SiteVerdict,
};
use crate::rollout::status::reason;

/// How long after a write a reconcile waits for the site cache to show it.
const CACHE_CATCH_UP_WAIT: Duration = Duration::from_secs(3);
/// Retry after a write found the site's object newer than our cache (normally the watch event
/// that brings it triggers the next reconcile first).
const STALE_RETRY: Duration = Duration::from_millis(500);

/// What carrying out the action did, for the report step.
pub(super) struct Acted {
    /// Outcome label for metrics.
    pub outcome: &'static str,
    /// The requeue unless the report step overrides it (failures back off).
    pub requeue: Requeue,
    /// The action failed or is blocked: retry with backoff.
    pub failed: bool,
    /// A site refused us or turned out foreign: the observation changed, plan again before
    /// reporting.
    pub replan: bool,
    /// The site this reconcile wrote to.
    pub wrote: Option<String>,
    /// The site whose readiness let this reconcile's write go to the next site: the write's
    /// Event says it is Ready.
    pub handed_off_from: Option<String>,
}

impl Acted {
    pub(super) fn new(ctx: &Context, outcome: &'static str) -> Self {
        Self {
            outcome,
            requeue: Requeue::requeue(ctx.resync),
            failed: false,
            replan: false,
            wrote: None,
            handed_off_from: None,
        }
    }
    fn retry_soon(ctx: &Context, outcome: &'static str) -> Self {
        Self {
            requeue: Requeue::requeue(STALE_RETRY),
            ..Self::new(ctx, outcome)
        }
    }
}

/// After the action: report, or the reconcile is over.
pub(super) enum Step {
    Acted(Acted),
    /// Nothing left to report (the finalizer is gone, or the plan named a site without client).
    Finished(Requeue, &'static str),
}

/// Add or remove the finalizer, or leave a deletion that is not ours alone.
pub(super) async fn finalizer(
    target: &Target<'_>,
    ctx: &Context,
    step: FinalizerStep,
) -> Result<(Requeue, &'static str), Error> {
    let add = match step {
        // Not ours to clean up: the CassandraClusters stay.
        FinalizerStep::LeaveAlone => return Ok((Requeue::await_change(), "deleting")),
        FinalizerStep::Add => true,
        FinalizerStep::Remove => false,
    };
    let rv = apply::set_finalizer(&target.api, target.mc, add).await?;
    ctx.remember_write(&target.key, rv);
    if add {
        info!("added finalizer {FINALIZER} (deleteCassandraCluster: true)");
    } else {
        info!("removed finalizer {FINALIZER} (deleteCassandraCluster is not true)");
    }
    // The update triggers the next reconcile.
    Ok((Requeue::await_change(), "finalizer"))
}

/// Carry out `planned.action`.
pub(super) async fn act(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    planned: &Plan,
) -> Result<Step, Error> {
    Ok(match &planned.action {
        Action::Apply { site } => apply_site(target, ctx, obs, planned, site).await,
        Action::Delete { site } => delete_site(target, ctx, obs, site).await,
        Action::ReleaseFinalizer => release_finalizer(target, ctx).await?,
        Action::Wait { .. } => Step::Acted(Acted::new(ctx, "waiting")),
        Action::Converged => Step::Acted(Acted::new(ctx, "converged")),
        Action::Blocked { site, reason } => {
            debug!(site = %site, "blocked: {reason}");
            Step::Acted(Acted {
                failed: true,
                ..Acted::new(ctx, "blocked")
            })
        }
    })
}

/// The planner only writes to reachable sites; refuse rather than panic.
fn no_client(target: &Target<'_>, ctx: &Context, site: &str, verb: &str) -> Step {
    warn!(site = %site, "planner asked to {verb} at a site without a client");
    Step::Finished(Requeue::requeue(ctx.next_backoff(&target.key)), "error")
}

/// Create or update the site's CassandraCluster.
async fn apply_site(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    planned: &Plan,
    site: &str,
) -> Step {
    let i = obs.index_of(site);
    let Some(client) = obs.facts[i].site.as_ref().map(|s| s.client.clone()) else {
        return no_client(target, ctx, site, "apply");
    };
    let f = &obs.facts[i];
    let result = apply::apply_cluster(site, &client, &f.desired, f.live.as_ref()).await;
    Step::Acted(match result {
        Ok(ApplyResult::Applied(done)) => {
            let after = serde_json::to_value(&done.after).unwrap_or_default();
            let dropped = plan::dropped_fields(&obs.facts[i].desired.object, &after);
            applied(target, ctx, obs, planned, i, &done, dropped).await
        }
        Err(e) if e.code() == Some(422) => rejected(target, ctx, obs, i, &e).await,
        Ok(ApplyResult::Stale) => {
            // Someone (CassKop) wrote since our cache's copy: its watch event brings the new
            // version and a new reconcile; this one is a safety net.
            debug!(site = %site, "CassandraCluster changed since our cached copy: planning again");
            Acted::retry_soon(ctx, "stale")
        }
        Ok(ApplyResult::Exists(found)) => exists(target, ctx, obs, i, &found).await,
        Err(e) => refused(target, ctx, obs, i, &e, reason::APPLY_FAILED, "Apply").await,
    })
}

/// Our write went through: record its mark, tell the user, let the cache catch up.
async fn applied(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    planned: &Plan,
    i: usize,
    done: &ApplyOutcome,
    dropped: Vec<String>,
) -> Acted {
    let site = obs.facts[i].name.clone();
    ctx.metrics.write(&site, "apply");
    if !dropped.is_empty() {
        report_dropped(target, ctx, obs, i, &dropped).await;
    }
    if !done.changed && !dropped.is_empty() {
        // We applied again only for fields the site never stores: record them, so the
        // comparison leaves them out from now on, and plan again with that known.
        let f = &obs.facts[i];
        let mut mark = AppliedMark::after_write(
            f.desired.hash.clone(),
            obs.input.sites[i].applied.as_ref(),
            Some(done.generation),
            done.generation,
            false,
        );
        mark.dropped = dropped;
        record_mark(obs, i, mark, done.generation_before.unwrap_or(0));
        if let Some(o) = obs.input.sites[i].observed.as_mut() {
            o.matches_desired = true;
        }
        return Acted {
            replan: true,
            ..Acted::new(ctx, "applied")
        };
    }
    if !done.changed {
        // Nothing changed: the planner's next look must not loop on us.
        debug!(site = %site, "apply changed nothing");
        return Acted {
            requeue: Requeue::requeue(ctx.next_backoff(&target.key)),
            ..Acted::new(ctx, "applied")
        };
    }
    let f = &obs.facts[i];
    let mut mark = AppliedMark::after_write(
        f.desired.hash.clone(),
        obs.input.sites[i].applied.as_ref(),
        done.generation_before,
        done.generation,
        done.spec_changed,
    );
    mark.dropped = dropped;
    let verb = if done.created { "Created" } else { "Updated" };
    let cc = format!("{}/{}", f.desired.namespace, f.desired.name);
    info!(site = %site, cassandracluster = %cc, generation = done.generation, "{} CassandraCluster", verb.to_lowercase());
    record_mark(obs, i, mark, done.generation_before.unwrap_or(0));
    let handed_off_from = handed_off_from(planned, i);
    if handed_off_from.is_some() {
        ctx.metrics.handoff();
    }
    let event_reason = if done.created {
        reason::CREATED
    } else {
        reason::UPDATED
    };
    let mut note = format!("{verb} CassandraCluster {cc} in site {site}");
    if let Some(ready) = &handed_off_from {
        note.push_str(&format!(" (site {ready} is Ready)"));
    }
    ctx.publish(target.mc, EventType::Normal, event_reason, "Apply", note)
        .await;
    wait_for_cache(ctx, &obs.facts[i], &done.resource_version, done.generation).await;
    Acted {
        wrote: Some(site),
        handed_off_from,
        ..Acted::new(ctx, "applied")
    }
}

/// The site before site `i` when every site before `i` is Ready: a write to `i` is a handoff.
fn handed_off_from(planned: &Plan, i: usize) -> Option<String> {
    let before = planned.verdicts.get(..i)?;
    let all_ready = before.iter().all(|(_, v)| *v == SiteVerdict::Ready);
    before.last().filter(|_| all_ready).map(|(s, _)| s.clone())
}

/// Our write to site `i` as the next plan and the status must know it.
fn record_mark(obs: &mut Observation, i: usize, mark: AppliedMark, from_generation: i64) {
    let site = obs.facts[i].name.clone();
    obs.input.sites[i].applied = Some(mark.clone());
    obs.new_marks.retain(|(s, _, _)| *s != site);
    obs.new_marks.push((site, mark, from_generation));
}

/// The site did not store fields of our write: say so (a Warning Event when the set is new, and
/// the site's status message), once per change of that set, never as a reason to write again.
async fn report_dropped(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    i: usize,
    dropped: &[String],
) {
    let f = &obs.facts[i];
    let cluster = format!("{}/{}", f.desired.namespace, f.desired.name);
    let spec = &target.mc.spec;
    let note = plan::dropped_note(
        &f.name,
        &cluster,
        dropped,
        &spec.base,
        spec.override_.get(&f.name),
    );
    obs.details[i].message = Some(note.clone());
    let known = obs.input.sites[i]
        .applied
        .as_ref()
        .is_some_and(|m| m.dropped == dropped);
    if known {
        return;
    }
    warn!(site = %f.name, cassandracluster = %cluster, "{note}");
    ctx.publish(
        target.mc,
        EventType::Warning,
        reason::FIELDS_DROPPED,
        "Apply",
        note,
    )
    .await;
}

/// The site refused our write as invalid (422): nothing changed there. The site is Blocked with
/// the server's message (it names the field) and the MultiCasskop field that set it; retried
/// with backoff, as its CRD may change.
async fn rejected(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    i: usize,
    e: &WriteError,
) -> Acted {
    let f = &obs.facts[i];
    let spec = &target.mc.spec;
    let sources: Vec<String> = e
        .causes()
        .into_iter()
        .filter_map(|field| {
            plan::where_set(&field, &spec.base, spec.override_.get(&f.name), &f.name)
        })
        .collect();
    let mut reason = e.to_string();
    if !sources.is_empty() {
        reason = format!(
            "{reason}; set by {} of this MultiCasskop",
            sources.join(", ")
        );
    }
    warn!("{reason}");
    obs.input.sites[i].access = SiteAccess::Rejected {
        reason: reason.clone(),
    };
    ctx.publish(
        target.mc,
        EventType::Warning,
        reason::SPEC_REJECTED,
        "Apply",
        reason,
    )
    .await;
    Acted {
        failed: true,
        replan: true,
        ..Acted::new(ctx, "rejected")
    }
}

/// A create found an object of that name our cache does not hold: another's object (refused,
/// and the status says whose), or ours and the cache is behind (plan again once it catches up).
async fn exists(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    i: usize,
    found: &kube::api::DynamicObject,
) -> Acted {
    let f = &obs.facts[i];
    let observed = ObservedCluster::from_live(found, &f.desired, &target.ns, &target.name);
    if !matches!(observed.ownership, Ownership::Foreign { .. }) {
        debug!(site = %f.name, "our CassandraCluster is not in the cache yet: planning again");
        return Acted::retry_soon(ctx, "stale");
    }
    let note = format!(
        "CassandraCluster {}/{} in site {} was not created by this MultiCasskop: refusing to take it over",
        f.desired.namespace, f.desired.name, f.name
    );
    obs.input.sites[i].observed = Some(observed);
    ctx.publish(
        target.mc,
        EventType::Warning,
        reason::FOREIGN_CASSANDRA_CLUSTER,
        "Apply",
        note,
    )
    .await;
    Acted {
        failed: true,
        replan: true,
        ..Acted::new(ctx, "blocked")
    }
}

/// The site refused our write: plan again with that known, so the status says Blocked on this
/// site and why, and nothing else moves meanwhile.
async fn refused(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    i: usize,
    e: &WriteError,
    event_reason: &str,
    action: &str,
) -> Acted {
    warn!("{e}");
    obs.input.sites[i].access = SiteAccess::Unavailable {
        reason: e.to_string(),
    };
    ctx.publish(
        target.mc,
        EventType::Warning,
        event_reason,
        action,
        e.to_string(),
    )
    .await;
    Acted {
        failed: true,
        replan: true,
        ..Acted::new(ctx, "site_write_error")
    }
}

/// Delete the site's CassandraCluster (deletion, last site first).
async fn delete_site(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    site: &str,
) -> Step {
    let i = obs.index_of(site);
    let Some(client) = obs.facts[i].site.as_ref().map(|s| s.client.clone()) else {
        return no_client(target, ctx, site, "delete");
    };
    let f = &obs.facts[i];
    let (namespace, name) = (&f.desired.namespace, &f.desired.name);
    let result =
        apply::delete_cluster(site, &client, namespace, name, &target.ns, &target.name).await;
    Step::Acted(match result {
        Ok(outcome) => {
            ctx.metrics.write(site, "delete");
            if outcome == DeleteOutcome::Requested {
                info!(site = %site, "deleting CassandraCluster {namespace}/{name}");
                let note = format!("Deleting CassandraCluster {namespace}/{name} in site {site}");
                ctx.publish(
                    target.mc,
                    EventType::Normal,
                    reason::DELETING,
                    "Delete",
                    note,
                )
                .await;
            }
            Acted::new(ctx, "deleted")
        }
        Err(e) => refused(target, ctx, obs, i, &e, reason::DELETE_FAILED, "Delete").await,
    })
}

/// Every CassandraCluster is gone: drop the finalizer, and with it our memory of the object.
async fn release_finalizer(target: &Target<'_>, ctx: &Context) -> Result<Step, Error> {
    apply::set_finalizer(&target.api, target.mc, false).await?;
    info!("every CassandraCluster is gone: finalizer removed");
    let note = "Every CassandraCluster of this MultiCasskop is gone".to_string();
    ctx.publish(
        target.mc,
        EventType::Normal,
        reason::DELETED,
        "Delete",
        note,
    )
    .await;
    ctx.reset_backoff(&target.key);
    ctx.written.forget(&target.key);
    Ok(Step::Finished(Requeue::await_change(), "released"))
}

/// Let the site cache show our write before the next reconcile reads it, so it does not act on
/// the object as it was before (bounded wait: the watch normally delivers in milliseconds).
async fn wait_for_cache(ctx: &Context, f: &SiteFacts, resource_version: &str, generation: i64) {
    let Some(site) = f.site.as_ref() else { return };
    let view = ctx.caches.view(site, &f.desired.namespace).await;
    let oref = ObjectRef::new(&f.desired.name).within(&f.desired.namespace);
    let deadline = Instant::now() + CACHE_CATCH_UP_WAIT;
    while Instant::now() < deadline {
        if let Some(o) = view.store.get(&oref)
            && (o.resource_version().as_deref() == Some(resource_version)
                || o.meta().generation.unwrap_or(0) > generation)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    debug!(site = %f.name, "cache did not show our write within {CACHE_CATCH_UP_WAIT:?}");
}
