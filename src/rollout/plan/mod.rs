//! The planner: a pure function from (desired sites, observed sites) to the one next action.
//!
//! No I/O here. Every sequencing rule of the product lives in this file and is tested
//! exhaustively (table tests and property tests) without any server.
//!
//! Submodules: `marks` (what a write of ours did, recovered from the object when the status lost
//! it) and `participants` (which sites take part, what the finalizer needs first).

mod dropped;
#[cfg(test)]
pub(crate) mod fixtures;
mod marks;
mod participants;
pub mod seeds;
mod types;
pub use dropped::{dropped_fields, dropped_note, undeclared_fields, where_set, without_fields};
pub use marks::{casskop_will_react, recover_mark};
pub use participants::{
    FinalizerStep, Roster, TakingPart, finalizer_step, site_order, sites_taking_part,
};
pub use types::{
    Action, AppliedMark, ObservedCluster, Ownership, Plan, PlanInput, SiteAccess, SiteInput,
    SiteVerdict,
};

/// What the planner knows about one site.
enum State {
    /// Not reachable (or not configured): its current state is unknown.
    Unknown {
        why: String,
        maybe_in_progress: bool,
    },
    /// Reachable, no CassandraCluster of that name.
    Missing,
    /// A CassandraCluster we did not create.
    Foreign {
        why: String,
    },
    Ours(OursState),
}

struct OursState {
    /// Running/Done after our last write, and up to date.
    ready: bool,
    /// The live object is not what we want there (or we cannot tell it is).
    needs_apply: bool,
    deleting: bool,
    /// `Some(why)`: the site is in progress (CassKop working, our write not yet noticed, being
    /// deleted, or CassKop reported an Error).
    busy: Option<String>,
    /// CassKop reported Error after our last write.
    error: Option<String>,
}

impl State {
    fn is_ready(&self) -> bool {
        matches!(self, State::Ours(o) if o.ready)
    }
    fn maybe_in_progress(&self) -> bool {
        match self {
            State::Unknown {
                maybe_in_progress, ..
            } => *maybe_in_progress,
            State::Ours(o) => o.busy.is_some(),
            State::Missing | State::Foreign { .. } => false,
        }
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

/// "phase Pending, UpdateDockerImage Ongoing" (what CassKop last wrote).
fn describe(o: &ObservedCluster) -> String {
    if o.phase.is_none() && o.last_cluster_action_status.is_none() {
        return "no status written by CassKop yet".into();
    }
    format!(
        "phase {}, {} {}",
        opt(&o.phase),
        opt(&o.last_cluster_action),
        opt(&o.last_cluster_action_status)
    )
}

fn ours_state(site: &SiteInput, o: &ObservedCluster) -> OursState {
    let name = &site.name;
    // A generation below our mark: the object was deleted and created again by someone else
    // since our write. Our mark says nothing about it; treat it as never written by us.
    let replaced = site
        .applied
        .as_ref()
        .is_some_and(|a| o.generation < a.generation);
    let mark = if replaced {
        None
    } else {
        site.applied.as_ref()
    };
    let past_our_write = mark.is_none_or(|a| o.generation > a.generation);
    let running_done = o.phase.as_deref() == Some("Running")
        && o.last_cluster_action_status.as_deref() == Some("Done");
    let needs_apply =
        !o.matches_desired || replaced || mark.is_some_and(|a| a.hash != site.desired_hash);
    let error = (past_our_write && o.last_cluster_action_status.as_deref() == Some("Error"))
        .then(|| {
            format!(
                "CassKop's action {} failed at site {name} (lastClusterActionStatus Error, phase {}): \
                 fix it at the site or change this site's spec",
                opt(&o.last_cluster_action),
                opt(&o.phase)
            )
        });
    let busy = if o.deleting {
        Some(format!(
            "the CassandraCluster at site {name} is being deleted (not by this MultiCasskop); \
             it is created again once gone"
        ))
    } else if !past_our_write {
        Some(format!(
            "site {name}: waiting for CassKop to pick up our last change (its status predates it: {})",
            describe(o)
        ))
    } else if error.is_some() {
        error.clone()
    } else if !running_done {
        Some(format!(
            "site {name}: CassKop is working on it ({})",
            describe(o)
        ))
    } else {
        None
    };
    OursState {
        ready: busy.is_none() && !needs_apply,
        needs_apply,
        deleting: o.deleting,
        busy,
        error,
    }
}

fn classify(site: &SiteInput) -> State {
    let name = &site.name;
    let foreign_why = |owner: &str| {
        format!(
            "the CassandraCluster at site {name} exists but was not created by this MultiCasskop \
             ({owner}): refusing to take it over"
        )
    };
    match &site.access {
        SiteAccess::Ok => match &site.observed {
            None => State::Missing,
            Some(o) => match &o.ownership {
                Ownership::Ours => State::Ours(ours_state(site, o)),
                Ownership::Foreign { owner } => State::Foreign {
                    why: foreign_why(owner),
                },
            },
        },
        access => {
            let why = match access {
                SiteAccess::Unavailable { reason } => {
                    format!("site {name} is unreachable: {reason}")
                }
                SiteAccess::Unlisted { reason } => {
                    format!("whether site {name} is still configured cannot be known: {reason}")
                }
                SiteAccess::Rejected { reason } => {
                    format!("site {name} refused the desired CassandraCluster: {reason}")
                }
                _ => format!(
                    "site {name} is not a configured cluster (no --local/--remote flag or ClientConfig names it)"
                ),
            };
            let maybe_in_progress = match &site.observed {
                Some(o) if o.ownership == Ownership::Ours => ours_state(site, o).busy.is_some(),
                Some(_) => false,
                None => site.applied.is_some(),
            };
            State::Unknown {
                why,
                maybe_in_progress,
            }
        }
    }
}

/// Verdict of a site the action does not target.
fn passive_verdict(state: &State) -> SiteVerdict {
    match state {
        State::Ours(o) if o.ready => SiteVerdict::Ready,
        State::Unknown {
            why,
            maybe_in_progress: true,
        } => SiteVerdict::Blocked {
            reason: format!("{why} (it may still be in progress)"),
        },
        State::Unknown { why, .. } | State::Foreign { why } => SiteVerdict::Blocked {
            reason: why.clone(),
        },
        State::Ours(OursState { error: Some(e), .. }) => SiteVerdict::Blocked { reason: e.clone() },
        State::Ours(OursState { busy: Some(b), .. }) => {
            SiteVerdict::InProgress { reason: b.clone() }
        }
        State::Missing | State::Ours(_) => SiteVerdict::Waiting,
    }
}

/// Why we apply to a site (the status message while our write is on its way).
fn apply_reason(site: &SiteInput, state: &State) -> String {
    let name = &site.name;
    match state {
        State::Ours(o) if o.error.is_some() => {
            format!("applying the changed spec to site {name}, where CassKop's last action failed")
        }
        State::Ours(_) => match (&site.applied, &site.observed) {
            (Some(a), Some(o)) if a.hash == site.desired_hash && !o.matches_desired => format!(
                "the CassandraCluster at site {name} drifted from the desired one: applying it again"
            ),
            _ => format!("updating the CassandraCluster at site {name}"),
        },
        _ => format!("creating the CassandraCluster at site {name}"),
    }
}

/// The action that waits on (or reports) site `i`, in progress or stuck.
fn hold_on(sites: &[SiteInput], states: &[State], i: usize, waiting: Option<usize>) -> Action {
    let site = sites[i].name.clone();
    let then = waiting
        .filter(|&w| w != i)
        .map(|w| {
            format!(
                "; site {} waits for it (one site in progress at a time)",
                sites[w].name
            )
        })
        .unwrap_or_default();
    match &states[i] {
        State::Unknown { why, .. } => Action::Blocked {
            site,
            reason: format!(
                "{why}; we wrote to it and have not seen it settle, so it may still be in progress: \
                 no other site is started until it is back{then}"
            ),
        },
        State::Ours(OursState { error: Some(e), .. }) => Action::Blocked {
            site,
            reason: format!("{e}{then}"),
        },
        State::Ours(OursState { busy: Some(b), .. }) => Action::Wait {
            site,
            reason: format!("{b}{then}"),
        },
        State::Foreign { why } => Action::Blocked {
            site,
            reason: why.clone(),
        },
        State::Missing | State::Ours(_) => {
            unreachable!("hold_on is only called on sites in progress")
        }
    }
}

fn plan_rollout(sites: &[SiteInput], states: &[State]) -> (Action, Vec<SiteVerdict>) {
    let Some(first_not_ready) = states.iter().position(|s| !s.is_ready()) else {
        return (Action::Converged, vec![SiteVerdict::Ready; sites.len()]);
    };
    let in_progress: Vec<usize> = (0..states.len())
        .filter(|&i| states[i].maybe_in_progress())
        .collect();
    let action = match in_progress.split_first() {
        // Something is (or may be) in progress: nothing else starts. The earliest such site
        // may receive a newer desired object (it stays the only one in progress) when every
        // site before it is Ready and nothing else is in progress.
        Some((&b, others)) => match &states[b] {
            State::Ours(o)
                if o.needs_apply && !o.deleting && first_not_ready == b && others.is_empty() =>
            {
                Action::Apply {
                    site: sites[b].name.clone(),
                }
            }
            State::Ours(o) if o.needs_apply && !o.deleting && first_not_ready == b => {
                hold_on(sites, states, others[0], Some(b))
            }
            _ => hold_on(sites, states, b, Some(first_not_ready)),
        },
        // Nothing in progress: act on the first site that is not Ready.
        None => {
            let site = sites[first_not_ready].name.clone();
            match &states[first_not_ready] {
                State::Unknown { why, .. } => Action::Blocked {
                    site,
                    reason: format!("{why}; the sites after it wait for it"),
                },
                State::Foreign { why } => Action::Blocked {
                    site,
                    reason: format!("{why}; the sites after it wait for it"),
                },
                State::Missing | State::Ours(_) => Action::Apply { site },
            }
        }
    };
    let verdicts = sites
        .iter()
        .zip(states)
        .map(|(site, state)| match &action {
            Action::Apply { site: s } if *s == site.name => SiteVerdict::InProgress {
                reason: apply_reason(site, state),
            },
            Action::Wait { site: s, reason } if *s == site.name => SiteVerdict::InProgress {
                reason: reason.clone(),
            },
            Action::Blocked { site: s, reason } if *s == site.name => SiteVerdict::Blocked {
                reason: reason.clone(),
            },
            _ => passive_verdict(state),
        })
        .collect();
    (action, verdicts)
}

fn plan_deletion(sites: &[SiteInput], states: &[State]) -> (Action, Vec<SiteVerdict>) {
    let mut verdicts = vec![SiteVerdict::Waiting; sites.len()];
    for i in (0..sites.len()).rev() {
        let name = &sites[i].name;
        match &states[i] {
            State::Unknown { why, .. } => {
                let reason = format!(
                    "{why}: cannot delete its CassandraCluster or confirm it is gone, so the \
                     finalizer stays (remove spec.override.{name} to leave that site's \
                     CassandraCluster in place)"
                );
                verdicts[i] = SiteVerdict::Blocked {
                    reason: reason.clone(),
                };
                return (
                    Action::Blocked {
                        site: name.clone(),
                        reason,
                    },
                    verdicts,
                );
            }
            // Not ours: left in place, never deleted.
            State::Missing | State::Foreign { .. } => verdicts[i] = SiteVerdict::Deleted,
            State::Ours(o) if o.deleting => {
                let reason = format!(
                    "waiting for the CassandraCluster at site {name} to be gone (deletion requested)"
                );
                verdicts[i] = SiteVerdict::InProgress {
                    reason: reason.clone(),
                };
                return (
                    Action::Wait {
                        site: name.clone(),
                        reason,
                    },
                    verdicts,
                );
            }
            State::Ours(_) => {
                verdicts[i] = SiteVerdict::InProgress {
                    reason: format!("deleting the CassandraCluster at site {name}"),
                };
                return (Action::Delete { site: name.clone() }, verdicts);
            }
        }
    }
    (Action::ReleaseFinalizer, verdicts)
}

/// True when `site` is (or may be) in progress: CassKop has not settled on our last write, or
/// the site cannot be seen and we wrote to it (see [`plan`]). Nothing else may start meanwhile.
pub fn maybe_in_progress(site: &SiteInput) -> bool {
    classify(site).maybe_in_progress()
}

/// True when `site` is ours and CassKop settled after our last write (Running/Done, no Error),
/// whether or not a newer desired object waits for it.
pub fn settled(site: &SiteInput) -> bool {
    matches!(classify(site), State::Ours(o) if o.busy.is_none())
}

/// Decide the next action. Pure.
///
/// # Rollout (not deleting)
/// - A site is **Ready** when its CassandraCluster is ours, matches the desired object, is
///   `Running`/`Done`, and that status was written after our last write to it (its generation
///   moved past our [`AppliedMark`]); with no mark (status lost), `Running`/`Done` suffices.
/// - A site is **in progress** when it is ours and not settled: CassKop has not picked up our
///   last write yet (the stale `Running`/`Done` window), is working (`Pending`, `Ongoing`, ...),
///   reported `Error` after our write, or the object is being deleted.
/// - **At most one site in progress.** While any site is in progress, nothing is started
///   anywhere else: the action waits on (or reports) the earliest one. That site alone may get a
///   newer desired object (the usual way out of a CassKop `Error`, and what a user expects when
///   editing mid-change), but only when every site before it is Ready and no other site is in
///   progress.
/// - Otherwise the first site that is not Ready is acted on: created when missing, updated when
///   outdated or drifted. Site k+1 is never touched before sites 1..k are Ready, for creation and
///   for every later change alike.
/// - A CassandraCluster we did not create (no or other owner labels) is never taken over: that
///   site is Blocked and the sites after it wait.
///
/// # Unreachable and unconfigured sites
/// Their state is unknown, so they are never Ready: the rollout never passes them (the sites
/// after one wait, Blocked on it). Sites *before* an unreachable one keep progressing, with one
/// limit: if the unreachable site may be in progress, no other site is started, since we could
/// otherwise end up with two sites in progress. It may be in progress when its last observation
/// (passed in `observed`) shows it unsettled, or, with no observation, when we have written to
/// it (an applied mark) and cannot see whether CassKop finished. The controller passes no
/// observation for a site it cannot reach: the status it last wrote could predate a write whose
/// record was lost, so "Ready when last seen" is not proof enough. A site we never wrote to, or
/// last saw settled, does not hold earlier sites back. This keeps "one site
/// in progress" true at the price of pausing a rollout during an outage that follows a write
/// to the unreachable site.
///
/// # Deletion
/// `deleteCassandraCluster` false: release the finalizer at once, nothing is deleted. True: our
/// CassandraClusters are deleted last site first, one at a time (the next only once the previous
/// is confirmed gone); absent sites and CassandraClusters we did not create are skipped (never
/// deleted); an unreachable site stops the deletion there and keeps the finalizer. Once every
/// site is confirmed clear, the finalizer is released.
pub fn plan(input: &PlanInput) -> Plan {
    let states: Vec<State> = input.sites.iter().map(classify).collect();
    let (action, verdicts) = match (input.deleting, input.delete_cassandra_cluster) {
        (false, _) => plan_rollout(&input.sites, &states),
        (true, true) => plan_deletion(&input.sites, &states),
        (true, false) => (
            Action::ReleaseFinalizer,
            states.iter().map(passive_verdict).collect(),
        ),
    };
    Plan {
        action,
        verdicts: input
            .sites
            .iter()
            .map(|s| s.name.clone())
            .zip(verdicts)
            .collect(),
        deleting: input.deleting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL, SITE_LABEL};
    use kube::api::DynamicObject;
    use serde_json::Value;
    use std::collections::BTreeMap;

    use super::fixtures::new_site as site;

    fn observed(gen_: i64, phase: &str, action: &str, status: &str) -> ObservedCluster {
        ObservedCluster {
            ownership: Ownership::Ours,
            matches_desired: true,
            generation: gen_,
            phase: Some(phase.into()),
            last_cluster_action: Some(action.into()),
            last_cluster_action_status: Some(status.into()),
            deleting: false,
        }
    }

    /// Ours, Running/Done, written by CassKop after our write of "h1" at generation 2.
    fn ready(name: &str) -> SiteInput {
        SiteInput {
            observed: Some(observed(4, "Running", "Initializing", "Done")),
            applied: Some(AppliedMark {
                hash: "h1".into(),
                generation: 2,
                dropped: Vec::new(),
            }),
            ..site(name)
        }
    }

    /// Just written by us: generation == mark, CassKop's old Running/Done still there.
    fn stale(name: &str) -> SiteInput {
        SiteInput {
            observed: Some(observed(5, "Running", "Initializing", "Done")),
            applied: Some(AppliedMark {
                hash: "h1".into(),
                generation: 5,
                dropped: Vec::new(),
            }),
            ..site(name)
        }
    }

    /// Ready under the old desired object "h1", now "h2" is wanted.
    fn outdated(name: &str) -> SiteInput {
        let mut s = ready(name);
        s.desired_hash = "h2".into();
        s.observed.as_mut().unwrap().matches_desired = false;
        s
    }

    fn working(name: &str) -> SiteInput {
        SiteInput {
            observed: Some(observed(6, "Pending", "UpdateDockerImage", "Ongoing")),
            ..ready(name)
        }
    }

    fn unreachable_(mut s: SiteInput) -> SiteInput {
        s.access = SiteAccess::Unavailable {
            reason: "connection refused".into(),
        };
        s
    }

    fn foreign(name: &str) -> SiteInput {
        let mut s = ready(name);
        s.applied = None;
        s.observed.as_mut().unwrap().ownership = Ownership::Foreign {
            owner: "it has no owner labels".into(),
        };
        s
    }

    fn run(sites: Vec<SiteInput>) -> Plan {
        plan(&PlanInput {
            sites,
            deleting: false,
            delete_cassandra_cluster: false,
        })
    }

    fn apply(s: &str) -> Action {
        Action::Apply { site: s.into() }
    }

    fn kinds(p: &Plan) -> Vec<&'static str> {
        p.verdicts
            .iter()
            .map(|(_, v)| match v {
                SiteVerdict::Ready => "Ready",
                SiteVerdict::InProgress { .. } => "InProgress",
                SiteVerdict::Waiting => "Waiting",
                SiteVerdict::Blocked { .. } => "Blocked",
                SiteVerdict::Deleted => "Deleted",
            })
            .collect()
    }

    fn wait_site(p: &Plan) -> &str {
        match &p.action {
            Action::Wait { site, .. } => site,
            other => panic!("expected Wait, got {other:?}"),
        }
    }

    fn blocked(p: &Plan) -> (&str, &str) {
        match &p.action {
            Action::Blocked { site, reason } => (site, reason),
            other => panic!("expected Blocked, got {other:?}"),
        }
    }

    #[test]
    fn creates_the_first_site_first() {
        let p = run(vec![site("a"), site("b"), site("c")]);
        assert_eq!(p.action, apply("a"));
        assert_eq!(kinds(&p), ["InProgress", "Waiting", "Waiting"]);
        assert!(!p.deleting);
    }

    #[test]
    fn never_advances_during_the_stale_running_done_window() {
        let p = run(vec![stale("a"), site("b")]);
        assert_eq!(wait_site(&p), "a");
        assert_eq!(kinds(&p), ["InProgress", "Waiting"]);
        // Freshly created: no status at all yet.
        let mut fresh = site("a");
        fresh.observed = Some(ObservedCluster {
            phase: None,
            last_cluster_action: None,
            last_cluster_action_status: None,
            generation: 1,
            ..observed(1, "", "", "")
        });
        fresh.applied = Some(AppliedMark::after_write("h1", None, None, 1, true));
        let p = run(vec![fresh, site("b")]);
        assert_eq!(wait_site(&p), "a");
    }

    #[test]
    fn advances_only_after_previous_site_running() {
        let p = run(vec![ready("a"), site("b"), site("c")]);
        assert_eq!(p.action, apply("b"));
        assert_eq!(kinds(&p), ["Ready", "InProgress", "Waiting"]);
    }

    #[test]
    fn waits_while_casskop_works() {
        let p = run(vec![ready("a"), working("b"), site("c")]);
        assert_eq!(wait_site(&p), "b");
        let Action::Wait { reason, .. } = &p.action else {
            unreachable!()
        };
        assert!(reason.contains("UpdateDockerImage Ongoing"), "{reason}");
        assert_eq!(kinds(&p), ["Ready", "InProgress", "Waiting"]);
    }

    #[test]
    fn converged_when_every_site_is_ready() {
        let p = run(vec![ready("a"), ready("b")]);
        assert_eq!(p.action, Action::Converged);
        assert_eq!(kinds(&p), ["Ready", "Ready"]);
        assert_eq!(run(vec![]).action, Action::Converged);
    }

    #[test]
    fn a_change_rolls_out_from_the_first_site() {
        let p = run(vec![outdated("a"), outdated("b"), outdated("c")]);
        assert_eq!(p.action, apply("a"));
        assert_eq!(kinds(&p), ["InProgress", "Waiting", "Waiting"]);
        // Our write to a: hash h2, generation bumped to 5; the status is stale.
        let mut a = stale("a");
        a.desired_hash = "h2".into();
        a.applied.as_mut().unwrap().hash = "h2".into();
        let p = run(vec![a.clone(), outdated("b"), outdated("c")]);
        assert_eq!(wait_site(&p), "a");
        // CassKop wrote Running/Done after our write: on to b.
        a.observed.as_mut().unwrap().generation = 7;
        let p = run(vec![a, outdated("b"), outdated("c")]);
        assert_eq!(p.action, apply("b"));
        assert_eq!(kinds(&p), ["Ready", "InProgress", "Waiting"]);
    }

    #[test]
    fn seedlist_change_waits_for_casskop_like_a_spec_change() {
        let obj = |spec: Value, seeds: Value| {
            let mut o =
                DynamicObject::new("c", &crate::api::cassandra::cassandra_cluster_resource());
            o.data = serde_json::json!({"spec": spec, "status": {"seedlist": seeds, "phase": "Running"}});
            o
        };
        let before = obj(
            serde_json::json!({"nodesPerRacks": 1}),
            serde_json::json!(["a"]),
        );
        let seeds = obj(
            serde_json::json!({"nodesPerRacks": 1}),
            serde_json::json!(["a", "b"]),
        );
        let spec = obj(
            serde_json::json!({"nodesPerRacks": 2}),
            serde_json::json!(["a"]),
        );
        assert!(
            casskop_will_react(Some(&before), &seeds),
            "CassKop runs UpdateSeedList"
        );
        assert!(casskop_will_react(Some(&before), &spec));
        assert!(casskop_will_react(None, &before), "a create");
        let mut labelled = before.clone();
        labelled.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        assert!(!casskop_will_react(Some(&before), &labelled));
        let mut phase_only = before.clone();
        phase_only.data["status"]["phase"] = serde_json::json!("Pending");
        assert!(
            !casskop_will_react(Some(&before), &phase_only),
            "CassKop's own status"
        );
        // The mark after a seed-list-only write waits for CassKop's next status write.
        let mark = AppliedMark::after_apply("h", None, Some(&before), &{
            let mut s = seeds.clone();
            s.metadata.generation = Some(5);
            s
        });
        assert_eq!(mark.generation, 5);
    }

    #[test]
    fn metadata_only_write_counts_at_once() {
        // A label-only change does not bump the generation and CassKop does not react.
        let mark = AppliedMark::after_write("h1", None, Some(4), 4, false);
        assert_eq!(mark.generation, 3);
        let mut a = ready("a");
        a.applied = Some(mark);
        let p = run(vec![a, site("b")]);
        assert_eq!(p.action, apply("b"));
        // A write CassKop does not act on but that bumps the generation (no status
        // subresource) does not wait either.
        assert_eq!(
            AppliedMark::after_write("h", None, Some(4), 5, false).generation,
            4
        );
        // A spec write bumps the generation: CassKop must write after it.
        assert_eq!(
            AppliedMark::after_write("h", None, Some(4), 5, true).generation,
            5
        );
        assert_eq!(
            AppliedMark::after_write("h", None, None, 1, true).generation,
            1
        );
        // A metadata-only write while our previous spec write is still unnoticed keeps waiting.
        let pending = AppliedMark::after_write("h", None, Some(4), 5, true);
        assert_eq!(
            AppliedMark::after_write("h2", Some(&pending), Some(5), 5, false).generation,
            5
        );
        // ... and one after CassKop noticed it does not.
        assert_eq!(
            AppliedMark::after_write("h2", Some(&pending), Some(7), 7, false).generation,
            6
        );
    }

    #[test]
    fn a_later_site_in_progress_holds_back_an_earlier_change() {
        let p = run(vec![outdated("a"), working("b")]);
        assert_eq!(wait_site(&p), "b");
        assert_eq!(kinds(&p), ["Waiting", "InProgress"]);
    }

    #[test]
    fn the_site_in_progress_may_receive_a_newer_change() {
        let mut b = stale("b");
        b.desired_hash = "h2".into();
        b.observed.as_mut().unwrap().matches_desired = false;
        let p = run(vec![ready("a"), b.clone()]);
        assert_eq!(p.action, apply("b"));
        // ... but not while another site is in progress too.
        let p = run(vec![ready("a"), b.clone(), working("c")]);
        assert_eq!(wait_site(&p), "c");
        // ... nor before earlier sites are ready.
        let p = run(vec![outdated("a"), b]);
        assert_eq!(wait_site(&p), "b");
    }

    #[test]
    fn casskop_error_blocks_and_names_the_action() {
        let mut b = ready("b");
        b.observed = Some(observed(9, "Pending", "UpdateDockerImage", "Error"));
        let p = run(vec![ready("a"), b.clone(), site("c")]);
        let (s, reason) = blocked(&p);
        assert_eq!(s, "b");
        assert!(
            reason.contains("UpdateDockerImage") && reason.contains("site b"),
            "{reason}"
        );
        assert_eq!(kinds(&p), ["Ready", "Blocked", "Waiting"]);
        // An earlier site's change waits for the error to be fixed.
        let p = run(vec![outdated("a"), b.clone()]);
        let (s, reason) = blocked(&p);
        assert_eq!(s, "b");
        assert!(reason.contains("site a waits"), "{reason}");
        // A changed spec for the failed site is applied: the way out of an Error.
        b.desired_hash = "h2".into();
        b.observed.as_mut().unwrap().matches_desired = false;
        let p = run(vec![ready("a"), b.clone()]);
        assert_eq!(p.action, apply("b"));
        // Once written, the old Error predates our write: wait, not blocked.
        b.applied = Some(AppliedMark::after_write(
            "h2",
            b.applied.as_ref(),
            Some(9),
            10,
            true,
        ));
        b.observed.as_mut().unwrap().generation = 10;
        b.observed.as_mut().unwrap().matches_desired = true;
        let p = run(vec![ready("a"), b]);
        assert_eq!(wait_site(&p), "b");
    }

    #[test]
    fn foreign_cluster_is_never_taken_over() {
        let p = run(vec![ready("a"), foreign("b"), site("c")]);
        let (s, reason) = blocked(&p);
        assert_eq!(s, "b");
        assert!(
            reason.contains("refusing to take it over") && reason.contains("site b"),
            "{reason}"
        );
        assert_eq!(kinds(&p), ["Ready", "Blocked", "Waiting"]);
        let p = run(vec![foreign("a"), site("b")]);
        assert_eq!(blocked(&p).0, "a");
    }

    #[test]
    fn unreachable_next_site_blocks_the_ones_after_it() {
        let p = run(vec![ready("a"), unreachable_(site("b")), site("c")]);
        let (s, reason) = blocked(&p);
        assert_eq!(s, "b");
        assert!(reason.contains("connection refused"), "{reason}");
        assert_eq!(kinds(&p), ["Ready", "Blocked", "Waiting"]);
        // Back: the rollout goes on.
        assert_eq!(
            run(vec![ready("a"), site("b"), site("c")]).action,
            apply("b")
        );
    }

    #[test]
    fn unreachable_later_site_never_written_does_not_stop_earlier_ones() {
        let p = run(vec![site("a"), unreachable_(site("b"))]);
        assert_eq!(p.action, apply("a"));
        assert_eq!(kinds(&p), ["InProgress", "Blocked"]);
        // A site last seen settled does not either.
        let p = run(vec![outdated("a"), unreachable_(ready("b"))]);
        assert_eq!(p.action, apply("a"));
    }

    #[test]
    fn unreachable_site_that_may_be_in_progress_starts_nothing_else() {
        // Written by us, cache lost: cannot know whether CassKop finished.
        let mut b = unreachable_(ready("b"));
        b.observed = None;
        let p = run(vec![outdated("a"), b]);
        let (s, reason) = blocked(&p);
        assert_eq!(s, "b");
        assert!(reason.contains("may still be in progress"), "{reason}");
        // Last seen working.
        let p = run(vec![outdated("a"), unreachable_(working("b"))]);
        assert_eq!(blocked(&p).0, "b");
        // But an earlier site already in progress is still followed.
        let p = run(vec![working("a"), unreachable_(working("b"))]);
        assert_eq!(wait_site(&p), "a");
    }

    #[test]
    fn a_site_that_refused_the_desired_object_blocks_the_ones_after_it() {
        let mut b = outdated("b");
        b.access = SiteAccess::Rejected {
            reason: "spec.nodesPerRacks: Invalid value: \"string\"".into(),
        };
        let p = run(vec![ready("a"), b.clone(), ready("c")]);
        let (s, reason) = blocked(&p);
        assert_eq!(s, "b");
        assert!(
            reason.contains("site b refused the desired CassandraCluster: spec.nodesPerRacks"),
            "{reason}"
        );
        assert_eq!(kinds(&p), ["Ready", "Blocked", "Ready"]);
        // Refused while CassKop still works on our previous change: nothing else starts.
        let mut w = working("b");
        w.access = b.access.clone();
        let p = run(vec![outdated("a"), w]);
        assert_eq!(blocked(&p).0, "b");
    }

    #[test]
    fn unconfigured_site_is_reported() {
        let mut b = site("b");
        b.access = SiteAccess::NotConfigured;
        let p = run(vec![ready("a"), b]);
        let (s, reason) = blocked(&p);
        assert_eq!(s, "b");
        assert!(reason.contains("not a configured cluster"), "{reason}");
    }

    #[test]
    fn a_cluster_deleted_by_someone_else_is_created_again_once_gone() {
        let mut a = ready("a");
        a.observed.as_mut().unwrap().deleting = true;
        let p = run(vec![a, site("b")]);
        assert_eq!(wait_site(&p), "a");
        assert_eq!(kinds(&p), ["InProgress", "Waiting"]);
        let mut gone = site("a");
        gone.applied = Some(AppliedMark {
            hash: "h1".into(),
            generation: 2,
            dropped: Vec::new(),
        });
        assert_eq!(run(vec![gone, site("b")]).action, apply("a"));
    }

    #[test]
    fn drift_and_replaced_objects_are_applied_again_in_order() {
        let mut a = ready("a");
        a.observed.as_mut().unwrap().matches_desired = false;
        let p = run(vec![a, ready("b")]);
        assert_eq!(p.action, apply("a"));
        let SiteVerdict::InProgress { reason } = &p.verdicts[0].1 else {
            panic!()
        };
        assert!(reason.contains("drifted"), "{reason}");
        // Generation below our mark: deleted and re-created by someone else since our write.
        let mut a = ready("a");
        a.observed.as_mut().unwrap().generation = 1;
        let p = run(vec![a, ready("b")]);
        assert_eq!(p.action, apply("a"));
    }

    #[test]
    fn without_applied_mark_running_done_is_ready() {
        let mut a = ready("a");
        a.applied = None;
        assert_eq!(run(vec![a, site("b")]).action, apply("b"));
    }

    fn deleting(sites: Vec<SiteInput>, delete_cc: bool) -> Plan {
        plan(&PlanInput {
            sites,
            deleting: true,
            delete_cassandra_cluster: delete_cc,
        })
    }

    #[test]
    fn deletion_without_delete_flag_releases_at_once() {
        let p = deleting(vec![ready("a"), working("b"), site("c")], false);
        assert_eq!(p.action, Action::ReleaseFinalizer);
        assert!(p.deleting);
    }

    #[test]
    fn deletion_goes_last_site_first_one_at_a_time() {
        let p = deleting(vec![ready("a"), ready("b"), ready("c")], true);
        assert_eq!(p.action, Action::Delete { site: "c".into() });
        assert_eq!(kinds(&p), ["Waiting", "Waiting", "InProgress"]);
        let mut c = ready("c");
        c.observed.as_mut().unwrap().deleting = true;
        let p = deleting(vec![ready("a"), ready("b"), c], true);
        assert_eq!(wait_site(&p), "c");
        let p = deleting(vec![ready("a"), ready("b"), site("c")], true);
        assert_eq!(p.action, Action::Delete { site: "b".into() });
        assert_eq!(kinds(&p), ["Waiting", "InProgress", "Deleted"]);
        let p = deleting(vec![site("a"), site("b"), site("c")], true);
        assert_eq!(p.action, Action::ReleaseFinalizer);
        assert_eq!(kinds(&p), ["Deleted", "Deleted", "Deleted"]);
    }

    #[test]
    fn deletion_skips_foreign_and_absent_clusters() {
        let p = deleting(vec![ready("a"), foreign("b"), site("c")], true);
        assert_eq!(p.action, Action::Delete { site: "a".into() });
        assert_eq!(kinds(&p), ["InProgress", "Deleted", "Deleted"]);
        let p = deleting(vec![site("a"), foreign("b")], true);
        assert_eq!(p.action, Action::ReleaseFinalizer);
    }

    #[test]
    fn unreachable_site_keeps_the_finalizer() {
        let p = deleting(vec![ready("a"), ready("b"), unreachable_(site("c"))], true);
        let (s, reason) = blocked(&p);
        assert_eq!(s, "c");
        assert!(reason.contains("finalizer stays"), "{reason}");
        assert_eq!(kinds(&p), ["Waiting", "Waiting", "Blocked"]);
    }

    #[test]
    fn a_site_whose_client_config_cannot_be_listed_keeps_the_finalizer() {
        let mut c = site("c");
        c.access = SiteAccess::Unlisted {
            reason: "ClientConfigs in namespace ns cannot be listed: list failed".into(),
        };
        let p = deleting(vec![ready("a"), c], true);
        let (s, reason) = blocked(&p);
        assert_eq!(s, "c");
        assert!(reason.contains("finalizer stays"), "{reason}");
        assert!(reason.contains("cannot be listed"), "{reason}");
    }

    #[test]
    fn observed_cluster_from_a_live_object() {
        use crate::merge::desired_for_site;
        let base = serde_json::json!({
            "metadata": {"name": "cassandra-demo"},
            "spec": {"cassandraImage": "cassandra:3.11", "topology": {"dc": [{"name": "dc1", "rack": [{"name": "r1"}]}]}},
        });
        let desired = desired_for_site(&base, None, "a", "ns", "demo").unwrap();
        let mut live_json = desired.object.clone();
        live_json["metadata"]["generation"] = serde_json::json!(7);
        live_json["metadata"]["resourceVersion"] = serde_json::json!("42");
        // CassKop reset a rack's rollingRestart and defaulted runAsUser: not drift.
        live_json["spec"]["topology"]["dc"][0]["rack"][0]["rollingRestart"] =
            serde_json::json!(false);
        live_json["spec"]["runAsUser"] = serde_json::json!(999);
        live_json["status"] = serde_json::json!({"phase": "Running", "lastClusterAction": "Initializing", "lastClusterActionStatus": "Done"});
        let live: DynamicObject = serde_json::from_value(live_json.clone()).unwrap();
        let o = ObservedCluster::from_live(&live, &desired, "ns", "demo");
        assert_eq!(o.ownership, Ownership::Ours);
        assert!(o.matches_desired);
        assert_eq!(o.generation, 7);
        assert_eq!(o.phase.as_deref(), Some("Running"));
        assert_eq!(o.last_cluster_action_status.as_deref(), Some("Done"));
        assert!(!o.deleting);
        // Someone changed the image: drift.
        live_json["spec"]["cassandraImage"] = serde_json::json!("cassandra:4");
        live_json["metadata"]["deletionTimestamp"] = serde_json::json!("2026-01-01T00:00:00Z");
        let live2: DynamicObject = serde_json::from_value(live_json).unwrap();
        let o = ObservedCluster::from_live(&live2, &desired, "ns", "other");
        assert!(!o.matches_desired);
        assert!(o.deleting);
        assert!(matches!(o.ownership, Ownership::Foreign { .. }));
        // Marks from the objects: a spec change waits for CassKop, a label change does not.
        let mark = AppliedMark::after_apply("h", None, Some(&live), &live2);
        assert_eq!(
            mark.generation, 7,
            "spec changed: wait for a CassKop write after 7"
        );
        let mark = AppliedMark::after_apply("h", None, Some(&live), &live);
        assert_eq!(
            mark.generation, 6,
            "nothing CassKop reacts to: counts at once"
        );
        assert_eq!(
            AppliedMark::after_apply("h", None, None, &live).generation,
            7
        );
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    fn overrides(v: &[&str]) -> BTreeMap<String, Value> {
        v.iter()
            .map(|s| (s.to_string(), serde_json::json!({})))
            .collect()
    }

    #[test]
    fn site_order_default_explicit_and_invalid() {
        let configured = names(&["local", "r1", "r2", "cc-a"]);
        let o = overrides(&["cc-a", "r2", "local"]);
        assert_eq!(
            site_order(&configured, None, &o).unwrap(),
            ["local", "r2", "cc-a"]
        );
        let explicit = names(&["cc-a", "local", "r2"]);
        assert_eq!(
            site_order(&configured, Some(&explicit), &o).unwrap(),
            ["cc-a", "local", "r2"]
        );
        // Partial order: the rest follows in default order; non-participants are ignored.
        let partial = names(&["r2", "r1"]);
        assert_eq!(
            site_order(&configured, Some(&partial), &o).unwrap(),
            ["r2", "local", "cc-a"]
        );
        let e = site_order(&configured, None, &overrides(&["local", "typo"])).unwrap_err();
        assert!(
            e.to_string().contains("typo") && e.to_string().contains("configured: local, r1"),
            "{e}"
        );
        let e = site_order(&configured, Some(&names(&["local", "nope"])), &o).unwrap_err();
        assert!(
            e.to_string().contains("spec.siteOrder[1]") && e.to_string().contains("nope"),
            "{e}"
        );
        let e = site_order(&configured, Some(&names(&["r2", "r2"])), &o).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert!(
            site_order(&configured, None, &BTreeMap::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn ownership_from_labels() {
        let labels = |ns: &str, name: &str, site: &str| -> BTreeMap<String, String> {
            [
                (OWNER_NAMESPACE_LABEL, ns),
                (OWNER_NAME_LABEL, name),
                (SITE_LABEL, site),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let o = |l: Option<&BTreeMap<String, String>>| Ownership::from_labels(l, "ns", "demo", "a");
        assert_eq!(o(Some(&labels("ns", "demo", "a"))), Ownership::Ours);
        let Ownership::Foreign { owner } = o(Some(&labels("ns", "other", "a"))) else {
            panic!()
        };
        assert!(owner.contains("ns/other"), "{owner}");
        let Ownership::Foreign { owner } = o(Some(&labels("ns", "demo", "b"))) else {
            panic!()
        };
        assert!(owner.contains("site b"), "{owner}");
        let Ownership::Foreign { owner } = o(None) else {
            panic!()
        };
        assert!(owner.contains("no"), "{owner}");
    }
}

/// Property tests: a simulated federation (sites with a simulated CassKop, outages, edits,
/// foreign objects, a controller that restarts) driven by the planner's own actions.
#[cfg(test)]
mod simulation {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum CassKop {
        /// Nothing to do: status Running/Done (or Error fixed by a human).
        Idle,
        /// Our write is there, CassKop has not noticed it: the old status is still shown.
        Noticing {
            created: bool,
        },
        Working,
        Error,
    }

    #[derive(Clone, Debug)]
    struct SimSite {
        reachable: bool,
        /// A CassandraCluster of that name that we did not create.
        foreign: bool,
        /// Our CassandraCluster exists.
        exists: bool,
        generation: i64,
        live_spec: u32,
        live_meta: u32,
        live_seed: u32,
        /// A human changed metadata we own (no generation bump, CassKop does not react).
        drifted: bool,
        casskop: CassKop,
        phase: Option<&'static str>,
        action: Option<&'static str>,
        status: Option<&'static str>,
        deleting: bool,
        /// `deleting` because of our Delete (not a human's).
        deleted_by_us: bool,
        /// In the MultiCasskop status.
        applied: Option<AppliedMark>,
        /// Reflector cache: last observation while reachable.
        cache: Option<Option<ObservedCluster>>,
        want_spec: u32,
        want_meta: u32,
        want_seed: u32,
    }

    impl SimSite {
        fn new() -> Self {
            SimSite {
                reachable: true,
                foreign: false,
                exists: false,
                generation: 0,
                live_spec: 0,
                live_meta: 0,
                live_seed: 0,
                drifted: false,
                casskop: CassKop::Idle,
                phase: None,
                action: None,
                status: None,
                deleting: false,
                deleted_by_us: false,
                applied: None,
                cache: None,
                want_spec: 1,
                want_meta: 1,
                want_seed: 1,
            }
        }
        fn desired_hash(&self) -> String {
            format!("{}-{}-{}", self.want_spec, self.want_meta, self.want_seed)
        }
        fn matches(&self) -> bool {
            self.live_spec == self.want_spec
                && self.live_meta == self.want_meta
                && self.live_seed == self.want_seed
                && !self.drifted
        }
        /// Ground truth: the site is changing (or stuck changing).
        fn in_progress(&self) -> bool {
            self.exists && (self.casskop != CassKop::Idle || self.deleting)
        }
        /// Ground truth: settled on what is wanted now.
        fn ready(&self) -> bool {
            self.exists
                && !self.deleting
                && self.casskop == CassKop::Idle
                && self.matches()
                && self.phase == Some("Running")
                && self.status == Some("Done")
        }
        fn observe(&self) -> Option<ObservedCluster> {
            if self.foreign {
                return Some(ObservedCluster {
                    ownership: Ownership::Foreign {
                        owner: "no labels".into(),
                    },
                    matches_desired: false,
                    generation: 3,
                    phase: Some("Running".into()),
                    last_cluster_action: Some("Initializing".into()),
                    last_cluster_action_status: Some("Done".into()),
                    deleting: false,
                });
            }
            self.exists.then(|| ObservedCluster {
                ownership: Ownership::Ours,
                matches_desired: self.matches(),
                generation: self.generation,
                phase: self.phase.map(Into::into),
                last_cluster_action: self.action.map(Into::into),
                last_cluster_action_status: self.status.map(Into::into),
                deleting: self.deleting,
            })
        }
        /// Our server-side apply.
        fn apply(&mut self) {
            let before = self.exists.then_some(self.generation);
            // What CassKop acts on: the spec, and status.seedlist (UpdateSeedList).
            let spec_changed = self.live_spec != self.want_spec || self.live_seed != self.want_seed;
            if !self.exists {
                self.exists = true;
                self.generation = 1;
                self.phase = None;
                self.action = None;
                self.status = None;
                self.casskop = CassKop::Noticing { created: true };
            } else if spec_changed {
                self.generation += 1;
                self.casskop = CassKop::Noticing { created: false };
            }
            self.live_seed = self.want_seed;
            self.live_spec = self.want_spec;
            self.live_meta = self.want_meta;
            self.drifted = false;
            self.applied = Some(AppliedMark::after_write(
                self.desired_hash(),
                self.applied.as_ref(),
                before,
                self.generation,
                spec_changed,
            ));
        }
        /// One move of the site's CassKop (it runs whether we can reach the site or not).
        fn casskop_step(&mut self, roll: u8, errors: bool) {
            if !self.exists {
                return;
            }
            if self.deleting {
                self.exists = false;
                self.deleting = false;
                self.deleted_by_us = false;
                self.generation = 0;
                self.casskop = CassKop::Idle;
                return;
            }
            let write = |s: &mut Self, phase, action, status, next| {
                s.phase = Some(phase);
                s.action = Some(action);
                s.status = Some(status);
                s.generation += 1;
                s.casskop = next;
            };
            match self.casskop {
                CassKop::Noticing { .. } if roll.is_multiple_of(4) => {
                    // Quick action: only the final status is seen.
                    let action = self.action.unwrap_or("Initializing");
                    write(self, "Running", action, "Done", CassKop::Idle);
                }
                CassKop::Noticing { created: true } => write(
                    self,
                    "Initializing",
                    "Initializing",
                    "Ongoing",
                    CassKop::Working,
                ),
                CassKop::Noticing { created: false } => write(
                    self,
                    "Pending",
                    "UpdateDockerImage",
                    "Ongoing",
                    CassKop::Working,
                ),
                CassKop::Working if errors && roll.is_multiple_of(7) => {
                    let action = self.action.unwrap_or("Initializing");
                    write(self, "Pending", action, "Error", CassKop::Error);
                }
                CassKop::Working => {
                    let action = self.action.unwrap_or("Initializing");
                    write(self, "Running", action, "Done", CassKop::Idle);
                }
                CassKop::Idle | CassKop::Error => {}
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Ev {
        Plan,
        CassKop {
            site: usize,
            roll: u8,
        },
        Reach {
            site: usize,
            up: bool,
        },
        /// The user edits base (`site: None`) or one override: `kind` 0 spec (CassKop reacts),
        /// 1 labels/annotations, 2 status.seedlist.
        Edit {
            site: Option<usize>,
            kind: u8,
        },
        Foreign {
            site: usize,
            present: bool,
        },
        ExternalDelete {
            site: usize,
        },
        Drift {
            site: usize,
        },
        HumanFix {
            site: usize,
        },
        /// Controller restart: reflector caches are gone.
        Restart,
    }

    fn ev() -> impl Strategy<Value = Ev> {
        prop_oneof![
            8 => Just(Ev::Plan),
            6 => (0..4usize, any::<u8>()).prop_map(|(site, roll)| Ev::CassKop { site, roll }),
            2 => (0..4usize, any::<bool>()).prop_map(|(site, up)| Ev::Reach { site, up }),
            2 => (proptest::option::of(0..4usize), 0..3u8)
                .prop_map(|(site, kind)| Ev::Edit { site, kind }),
            1 => (0..4usize, any::<bool>()).prop_map(|(site, present)| Ev::Foreign { site, present }),
            1 => (0..4usize).prop_map(|site| Ev::ExternalDelete { site }),
            1 => (0..4usize).prop_map(|site| Ev::Drift { site }),
            1 => (0..4usize).prop_map(|site| Ev::HumanFix { site }),
            1 => Just(Ev::Restart),
        ]
    }

    struct World {
        sites: Vec<SimSite>,
        deleting: bool,
        delete_cc: bool,
    }

    impl World {
        fn new(n: usize) -> Self {
            World {
                sites: vec![SimSite::new(); n],
                deleting: false,
                delete_cc: false,
            }
        }

        fn input(&mut self) -> PlanInput {
            let sites = self
                .sites
                .iter_mut()
                .enumerate()
                .map(|(i, s)| {
                    let (access, observed) = if s.reachable {
                        let o = s.observe();
                        s.cache = Some(o.clone());
                        (SiteAccess::Ok, o)
                    } else {
                        let reason = "connection refused".to_string();
                        (
                            SiteAccess::Unavailable { reason },
                            s.cache.clone().flatten(),
                        )
                    };
                    SiteInput {
                        name: format!("s{i}"),
                        desired_hash: s.desired_hash(),
                        access,
                        observed,
                        applied: s.applied.clone(),
                    }
                })
                .collect();
            PlanInput {
                sites,
                deleting: self.deleting,
                delete_cassandra_cluster: self.delete_cc,
            }
        }

        fn index(&self, site: &str) -> usize {
            site[1..].parse().unwrap()
        }

        /// Runs the planner, checks the invariants against the ground truth, carries out the
        /// action. Returns the action.
        fn plan_step(&mut self) -> Result<Action, TestCaseError> {
            let input = self.input();
            let p = plan(&input);
            prop_assert_eq!(p.verdicts.len(), self.sites.len());
            match &p.action {
                Action::Apply { site } => {
                    let i = self.index(site);
                    prop_assert!(!self.deleting, "Apply during deletion");
                    prop_assert!(self.sites[i].reachable && !self.sites[i].foreign);
                    for (j, other) in self.sites.iter().enumerate() {
                        prop_assert!(
                            j == i || !other.in_progress(),
                            "Apply on s{} while s{} is in progress: {:?}",
                            i,
                            j,
                            other
                        );
                        prop_assert!(
                            j >= i || other.ready(),
                            "Apply on s{} before s{} is ready: {:?}",
                            i,
                            j,
                            other
                        );
                    }
                    self.sites[i].apply();
                }
                Action::Delete { site } => {
                    let i = self.index(site);
                    prop_assert!(self.deleting && self.delete_cc, "Delete when not asked");
                    let s = &self.sites[i];
                    prop_assert!(s.reachable && s.exists && !s.foreign && !s.deleting);
                    for (j, other) in self.sites.iter().enumerate() {
                        prop_assert!(
                            j <= i || !other.exists,
                            "Delete s{} before s{} is gone",
                            i,
                            j
                        );
                        prop_assert!(j == i || !other.deleted_by_us, "two deletions at once");
                    }
                    self.sites[i].deleting = true;
                    self.sites[i].deleted_by_us = true;
                }
                Action::ReleaseFinalizer => {
                    prop_assert!(self.deleting);
                    if self.delete_cc {
                        prop_assert!(
                            self.sites.iter().all(|s| !s.exists),
                            "finalizer released while a CassandraCluster of ours remains"
                        );
                    }
                }
                Action::Converged => {
                    prop_assert!(!self.deleting);
                    prop_assert!(self.sites.iter().all(SimSite::ready), "Converged too early");
                }
                Action::Wait { .. } | Action::Blocked { .. } => {}
            }
            Ok(p.action)
        }

        fn event(&mut self, e: &Ev) -> Result<(), TestCaseError> {
            let n = self.sites.len();
            match *e {
                Ev::Plan => {
                    self.plan_step()?;
                }
                Ev::CassKop { site, roll } => {
                    self.sites[site % n].casskop_step(roll, !self.deleting);
                }
                Ev::Reach { site, up } => self.sites[site % n].reachable = up,
                Ev::Edit { site, kind } => {
                    for (i, s) in self.sites.iter_mut().enumerate() {
                        if site.is_none_or(|k| k % n == i) {
                            match kind {
                                0 => s.want_spec += 1,
                                1 => s.want_meta += 1,
                                _ => s.want_seed += 1,
                            }
                        }
                    }
                }
                Ev::Foreign { site, present } => {
                    let s = &mut self.sites[site % n];
                    if !s.exists {
                        s.foreign = present;
                    }
                }
                // Things a human does at a site we can see (while we cannot see a site, only
                // CassKop moves there: a stale cache is never less busy than the truth).
                Ev::ExternalDelete { site } => {
                    let s = &mut self.sites[site % n];
                    if s.reachable && s.exists && !self.deleting {
                        s.deleting = true;
                    }
                }
                Ev::Drift { site } => {
                    let s = &mut self.sites[site % n];
                    if s.reachable && s.exists {
                        s.drifted = true;
                    }
                }
                Ev::HumanFix { site } => {
                    let s = &mut self.sites[site % n];
                    if s.casskop == CassKop::Error {
                        s.phase = Some("Running");
                        s.status = Some("Done");
                        s.generation += 1;
                        s.casskop = CassKop::Idle;
                    }
                }
                Ev::Restart => self.sites.iter_mut().for_each(|s| s.cache = None),
            }
            // The reflectors follow every reachable site.
            for s in self.sites.iter_mut().filter(|s| s.reachable) {
                s.cache = Some(s.observe());
            }
            Ok(())
        }

        /// Everything reachable, no foreign objects, errors fixed: the planner must finish.
        fn settle(&mut self) -> Result<Action, TestCaseError> {
            for s in &mut self.sites {
                s.reachable = true;
                s.foreign = false;
                if s.casskop == CassKop::Error {
                    s.phase = Some("Running");
                    s.status = Some("Done");
                    s.generation += 1;
                    s.casskop = CassKop::Idle;
                }
            }
            for _ in 0..200 {
                let action = self.plan_step()?;
                match action {
                    Action::Converged | Action::ReleaseFinalizer => return Ok(action),
                    Action::Apply { .. } | Action::Delete { .. } => {}
                    Action::Wait { .. } => {
                        for s in &mut self.sites {
                            s.casskop_step(1, false);
                        }
                    }
                    Action::Blocked { site, reason } => {
                        return Err(TestCaseError::fail(format!(
                            "blocked on {site} with every site reachable: {reason}"
                        )));
                    }
                }
            }
            Err(TestCaseError::fail("did not converge in 200 steps"))
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn one_site_at_a_time_in_order_and_converges(
            n in 1..=4usize,
            events in proptest::collection::vec(ev(), 0..150),
        ) {
            let mut w = World::new(n);
            for e in &events {
                w.event(e)?;
            }
            let end = w.settle()?;
            prop_assert_eq!(end, Action::Converged);
            for s in &w.sites {
                prop_assert!(s.ready());
                prop_assert_eq!(s.applied.as_ref().map(|a| a.hash.clone()), Some(s.desired_hash()));
            }
        }

        #[test]
        fn deletion_is_reverse_order_and_keeps_foreign_clusters(
            n in 1..=4usize,
            before in proptest::collection::vec(ev(), 0..100),
            delete_cc in any::<bool>(),
            during in proptest::collection::vec(ev(), 0..100),
        ) {
            let mut w = World::new(n);
            for e in &before {
                w.event(e)?;
            }
            w.deleting = true;
            w.delete_cc = delete_cc;
            // Sites a human is deleting may vanish; the others must stay without the flag.
            let existed: Vec<bool> = w.sites.iter().map(|s| s.exists && !s.deleting).collect();
            for e in &during {
                // No more edits to the rollout; foreign objects and outages still come and go.
                if !matches!(e, Ev::Edit { .. } | Ev::Drift { .. } | Ev::ExternalDelete { .. }) {
                    w.event(e)?;
                }
            }
            if !delete_cc {
                let action = w.plan_step()?;
                prop_assert_eq!(action, Action::ReleaseFinalizer);
                for (s, e) in w.sites.iter().zip(existed) {
                    prop_assert!(!e || s.exists, "nothing is deleted without deleteCassandraCluster");
                }
                return Ok(());
            }
            let foreign_before: Vec<bool> = w.sites.iter().map(|s| s.foreign).collect();
            for s in &mut w.sites {
                s.reachable = true;
            }
            for _ in 0..100 {
                match w.plan_step()? {
                    Action::ReleaseFinalizer => break,
                    Action::Wait { .. } | Action::Delete { .. } => {
                        for s in &mut w.sites {
                            if s.deleting {
                                s.casskop_step(0, false);
                            }
                        }
                    }
                    other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
                }
            }
            prop_assert!(w.sites.iter().all(|s| !s.exists));
            let foreign_after: Vec<bool> = w.sites.iter().map(|s| s.foreign).collect();
            prop_assert_eq!(foreign_before, foreign_after);
        }
    }
}
