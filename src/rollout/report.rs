//! Report: the status written when it changed, one Event per transition, and the requeue.

use kube::runtime::controller::Action as Requeue;

use crate::api::MultiCasskopStatus;
use crate::rollout::act::Acted;
use crate::rollout::apply;
use crate::rollout::context::{Context, Error, Target};
use crate::rollout::observe::Observation;
use crate::rollout::plan::{self, Action, Plan};
use crate::rollout::status::{self, Transition, build_status, reason};

/// Report a reconcile that acted (or waited): status, Events, and the requeue (failures back
/// off; progress resets the backoff).
pub(super) async fn report(
    target: &Target<'_>,
    ctx: &Context,
    obs: Observation,
    planned: Plan,
    acted: Acted,
) -> Result<(Requeue, &'static str), Error> {
    let planned = if acted.replan {
        plan::plan(&obs.input)
    } else {
        planned
    };
    let (mut status, mut transitions) = build_status(
        Some(&obs.prev),
        obs.generation,
        &planned,
        &obs.input.sites,
        &obs.details,
        None,
        &obs.now,
    );
    // The Created/Updated Event of this reconcile's write already says the site is in progress.
    if let Some(site) = &acted.wrote {
        transitions.retain(|t| {
            !(t.reason == reason::SITE_IN_PROGRESS && t.site.as_deref() == Some(site.as_str()))
        });
    }
    for (site, mark, from) in &obs.new_marks {
        status::set_applied(&mut status, site, mark, *from, &obs.now);
    }
    finish(target, ctx, &obs.prev, status, transitions).await?;
    let requeue = if acted.failed {
        Requeue::requeue(ctx.next_backoff(&target.key))
    } else {
        if acted.outcome != "applied" {
            ctx.reset_backoff(&target.key);
        }
        acted.requeue
    };
    Ok((requeue, acted.outcome))
}

/// Report an invalid spec: nothing is created; a site added to the configuration triggers a
/// reconcile, the resync is a safety net.
pub(super) async fn invalid(
    target: &Target<'_>,
    ctx: &Context,
    deleting: bool,
    why: &str,
) -> Result<(Requeue, &'static str), Error> {
    tracing::warn!("invalid MultiCasskop: {why}");
    let prev = target.mc.status.clone().unwrap_or_default();
    let nothing = Plan {
        action: Action::Converged,
        verdicts: Vec::new(),
        deleting,
    };
    let now = jiff::Timestamp::now().to_string();
    let generation = target.mc.metadata.generation.unwrap_or(0);
    let (status, transitions) =
        build_status(Some(&prev), generation, &nothing, &[], &[], Some(why), &now);
    finish(target, ctx, &prev, status, transitions).await?;
    ctx.reset_backoff(&target.key);
    Ok((Requeue::requeue(ctx.resync), "invalid"))
}

/// Write the status when it changed, then publish one Event per transition.
async fn finish(
    target: &Target<'_>,
    ctx: &Context,
    prev: &MultiCasskopStatus,
    status: MultiCasskopStatus,
    transitions: Vec<Transition>,
) -> Result<(), Error> {
    if &status != prev {
        let rv = apply::write_status(&target.api, target.mc, &status).await?;
        ctx.remember_write(&target.key, rv);
    }
    for t in transitions {
        ctx.publish(target.mc, t.type_, &t.reason, "Reconcile", t.message)
            .await;
    }
    Ok(())
}
