//! `spec.paused`: a paused MultiCasskop is observed, planned and reported, and nothing of the
//! plan is carried out: no CassandraCluster created, changed or deleted, no finalizer added or
//! removed. Unpaused, the next reconcile plans from what it observes and goes on from there,
//! one site at a time, as after a restart.

use kube::runtime::controller::Action as Requeue;

use crate::api::{Condition, MultiCasskop, MultiCasskopStatus};
use crate::rollout::context::{Context, Error, Target};
use crate::rollout::events::EventType;
use crate::rollout::observe::{self, Observed};
use crate::rollout::plan::{self, Action, Plan, SiteVerdict};
use crate::rollout::removal;
use crate::rollout::report;
use crate::rollout::seeds;
use crate::rollout::status::{self, Transition, build_status, condition, reason};

/// The phase of a paused MultiCasskop.
pub const PHASE: &str = "Paused";
/// The condition type present (status True) while paused.
pub const CONDITION: &str = "Paused";
/// Reason of the Paused condition, of Progressing while paused, and of the Event on pausing.
pub const REASON: &str = "Paused";

/// Whether `spec.paused` holds every write of this MultiCasskop back.
pub fn is_paused(mc: &MultiCasskop) -> bool {
    mc.spec.paused == Some(true)
}

/// A reconcile of a paused MultiCasskop: observe, plan, and report what the plan would do
/// next, without doing it. Only the MultiCasskop's status and Events are written.
pub(super) async fn reconcile(
    target: &Target<'_>,
    ctx: &Context,
    deleting: bool,
    delete_clusters: bool,
) -> Result<(Requeue, &'static str), Error> {
    let obs = match observe::observe(target, ctx, deleting, delete_clusters).await {
        Observed::Invalid { why } => return report::invalid(target, ctx, deleting, &why).await,
        Observed::Sites(observation) => *observation,
    };
    let (planned, held) = hold(plan::plan(&obs.input));
    let first = obs.prev == MultiCasskopStatus::default();
    let (mut status, transitions) = build_status(
        (!first).then_some(&obs.prev),
        obs.generation,
        &planned,
        &obs.input.sites,
        &obs.details,
        None,
        &obs.now,
    );
    let taking_part: Vec<String> = obs.input.sites.iter().map(|s| s.name.clone()).collect();
    status
        .sites
        .extend(removal::entries::kept_while_paused(&obs.prev, &taking_part));
    for (site, mark, from) in &obs.new_marks {
        status::set_applied(&mut status, site, mark, *from, &obs.now);
    }
    seeds::show_in_status(target.mc, &mut status, &obs, None);
    let transitions = overlay(&mut status, transitions, &obs.prev, &held, &obs.now);
    report::finish(target, ctx, &obs.prev, status, transitions, None).await?;
    ctx.reset_backoff(&target.key);
    Ok((Requeue::requeue(ctx.resync), "paused"))
}

/// The plan with its write held back: the site it would write to waits, and what the status
/// says is held (or, when the plan writes nothing, what goes on meanwhile).
pub fn hold(mut planned: Plan) -> (Plan, Held) {
    let held = match &planned.action {
        Action::Apply { site } => {
            let verdict = planned.verdicts.iter().find(|(s, _)| s == site);
            let what = match verdict {
                Some((_, SiteVerdict::InProgress { reason })) => reason.clone(),
                _ => format!("site {site}: to be created or updated"),
            };
            (site.clone(), what)
        }
        Action::Delete { site } => (
            site.clone(),
            format!("site {site}: its CassandraCluster to be deleted"),
        ),
        Action::ReleaseFinalizer if planned.deleting => {
            let note =
                "held until resumed: the finalizer's removal (every CassandraCluster is gone)";
            return (planned, Held::note(note));
        }
        Action::Wait { reason, .. } | Action::Blocked { reason, .. } => {
            let note = format!("meanwhile: {reason}");
            return (planned, Held::note(&note));
        }
        _ => return (planned, Held::note("nothing is waiting to be written")),
    };
    let (site, what) = held;
    let site_name = site.clone();
    for (s, v) in &mut planned.verdicts {
        if *s == site {
            *v = SiteVerdict::Waiting;
        }
    }
    planned.action = Action::Wait {
        site,
        reason: format!("held until resumed: {what}"),
    };
    let note = format!("held until resumed: {what}");
    let held = Held {
        note,
        site: Some(site_name),
    };
    (planned, held)
}

/// What a paused reconcile holds back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// What the status says is held (or goes on meanwhile).
    pub note: String,
    /// The site the held write was for.
    pub site: Option<String>,
}

impl Held {
    fn note(note: &str) -> Self {
        Held {
            note: note.to_string(),
            site: None,
        }
    }
}

/// Marks `status` paused (phase, the Paused condition, Progressing False) and keeps, of
/// `transitions`, what observation alone tells (sites, reachability); adds the Event of pausing.
pub fn overlay(
    status: &mut MultiCasskopStatus,
    transitions: Vec<Transition>,
    prev: &MultiCasskopStatus,
    held: &Held,
    now: &str,
) -> Vec<Transition> {
    let message = format!(
        "spec.paused is true: nothing is written to any site; {}",
        held.note
    );
    if let Some(site) = &held.site
        && let Some(entry) = status.sites.iter_mut().find(|s| &s.name == site)
    {
        entry.message = Some(format!("{} (spec.paused is true)", held.note));
    }
    let generation = status.observed_generation;
    let since = |type_: &str, value: &str| {
        prev.conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == value)
            .map_or_else(|| now.to_string(), |c| c.last_transition_time.clone())
    };
    let paused = Condition {
        type_: CONDITION.into(),
        status: "True".into(),
        reason: REASON.into(),
        message: message.clone(),
        last_transition_time: since(CONDITION, "True"),
        observed_generation: generation,
    };
    for c in &mut status.conditions {
        if c.type_ == condition::PROGRESSING {
            c.status = "False".into();
            c.reason = REASON.into();
            c.message = message.clone();
            c.last_transition_time = since(condition::PROGRESSING, "False");
        }
    }
    status.conditions.push(paused);
    status.phase = Some(PHASE.into());
    let told_by_observing = [reason::SITES_UNREACHABLE, reason::SITES_REACHABLE];
    let mut kept: Vec<Transition> = transitions
        .into_iter()
        .filter(|t| t.site.is_some() || told_by_observing.contains(&t.reason.as_str()))
        .collect();
    if prev.phase.as_deref() != Some(PHASE) {
        kept.insert(
            0,
            Transition {
                type_: EventType::Normal,
                reason: REASON.into(),
                message,
                site: None,
            },
        );
    }
    kept
}

#[cfg(test)]
mod tests;
