//! Report: the status written when it changed, one Event per transition, and the requeue.

use std::time::Duration;

use kube::runtime::controller::Action as Requeue;

use crate::api::MultiCasskopStatus;
use crate::rollout::act::Acted;
use crate::rollout::apply;
use crate::rollout::context::{Context, Error, Target};
use crate::rollout::observe::Observation;
use crate::rollout::plan::{self, Action, Plan};
use crate::rollout::quiet;
use crate::rollout::removal;
use crate::rollout::seeds;
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
    // A MultiCasskop without status is reported for the first time: its rollout starting is
    // no news (the Created Event of its first site says it).
    let first = obs.prev == MultiCasskopStatus::default();
    let (mut status, mut transitions) = build_status(
        (!first).then_some(&obs.prev),
        obs.generation,
        &planned,
        &obs.input.sites,
        &obs.details,
        None,
        &obs.now,
    );
    drop_told(&mut transitions, &acted);
    let taking_part: Vec<String> = obs.input.sites.iter().map(|s| s.name.clone()).collect();
    let (leaving, told) =
        removal::entries::entries(&obs.prev, &taking_part, &obs.removal, &obs.now);
    status.sites.extend(leaving);
    transitions.extend(told);
    for (site, mark, from) in &obs.new_marks {
        status::set_applied(&mut status, site, mark, *from, &obs.now);
    }
    seeds::show_in_status(target.mc, &mut status, &obs, acted.wrote.as_deref());
    let now = obs.now.parse::<jiff::Timestamp>().ok();
    let deferred = finish(target, ctx, &obs.prev, status, transitions, now).await?;
    let requeue = if acted.failed {
        Requeue::requeue(ctx.next_backoff(&target.key))
    } else {
        if acted.outcome != "applied" {
            ctx.reset_backoff(&target.key);
        }
        deferred.map_or(acted.requeue, Requeue::requeue)
    };
    Ok((requeue, acted.outcome))
}

/// Leave out the Events another Event of this reconcile already tells: the site in progress
/// (the Created/Updated Event of our write says it), the site before it Ready (the same Event
/// says so), and the last site Ready (RolloutComplete says every site is).
fn drop_told(transitions: &mut Vec<Transition>, acted: &Acted) {
    let is = |t: &Transition, reason: &str, site: Option<&String>| {
        t.reason == reason && site.is_some_and(|s| t.site.as_ref() == Some(s))
    };
    transitions.retain(|t| {
        !is(t, reason::SITE_IN_PROGRESS, acted.wrote.as_ref())
            && !is(t, reason::SITE_READY, acted.handed_off_from.as_ref())
    });
    if transitions
        .iter()
        .any(|t| t.reason == reason::ROLLOUT_COMPLETE)
    {
        transitions.retain(|t| t.reason != reason::SITE_READY);
    }
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
    finish(target, ctx, &prev, status, transitions, None).await?;
    ctx.reset_backoff(&target.key);
    Ok((Requeue::requeue(ctx.resync), "invalid"))
}

/// Write the status when it changed, then publish one Event per transition. A change that is
/// only CassKop's progress on a site we just wrote to waits (see `quiet`): `Some(wait)` is when
/// to look again (`now`: the reconcile's time; `None` never waits).
pub(super) async fn finish(
    target: &Target<'_>,
    ctx: &Context,
    prev: &MultiCasskopStatus,
    status: MultiCasskopStatus,
    transitions: Vec<Transition>,
    now: Option<jiff::Timestamp>,
) -> Result<Option<Duration>, Error> {
    if &status != prev {
        let wait = now
            .filter(|_| transitions.is_empty())
            .and_then(|now| quiet::deferral(prev, &status, now));
        if wait.is_some() {
            return Ok(wait);
        }
        let rv = apply::write_status(&target.api, target.mc, &status).await?;
        ctx.remember_write(&target.key, rv);
    }
    for t in transitions {
        ctx.publish(target.mc, t.type_, &t.reason, "Reconcile", t.message)
            .await;
    }
    Ok(None)
}
