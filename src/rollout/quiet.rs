//! Status changes that wait for the next write: CassKop's first moves on a site we just wrote to.
//!
//! Right after our write to a site, CassKop answers it within moments (a new cluster goes
//! `Initializing`, a change `Pending/<action>/Ongoing`), and the next write of the status
//! (that site Ready and the next one started, or the rollout complete) follows soon after. A
//! status write for each of those moves doubled the writes of a rollout while telling the user
//! nothing they act on: the phase, the site in progress, the ready count and every condition's
//! status stay the same. So a change that is only such progress is written at the latest
//! [`FOLD_WINDOW`] after our write to the site, or with the next change that matters, whichever
//! comes first. Nothing is lost: every write recomputes the whole status.

use std::time::Duration;

use crate::api::MultiCasskopStatus;

/// How long after our write to a site its CassKop progress may wait for the next status write.
pub const FOLD_WINDOW: Duration = Duration::from_secs(5);

/// The `state` of a site in progress (see `status::verdict_state`).
const IN_PROGRESS: &str = "InProgress";

/// `Some(wait)` when `next` differs from `prev` only by what CassKop reports of sites in
/// progress (their phase, action, message, and the condition messages that quote them) and our
/// last write to such a site (its `appliedTime`) is younger than [`FOLD_WINDOW`] at `now`: the
/// write waits `wait` at most. `None`: write now.
pub fn deferral(
    prev: &MultiCasskopStatus,
    next: &MultiCasskopStatus,
    now: jiff::Timestamp,
) -> Option<Duration> {
    if masked(prev) != masked(next) {
        return None;
    }
    let last_write = prev
        .sites
        .iter()
        .filter(|s| s.state.as_deref() == Some(IN_PROGRESS))
        .filter_map(|s| s.applied_time.as_deref()?.parse::<jiff::Timestamp>().ok())
        .max()?;
    // A write stamped later than `now` (clocks of two replicas) counts as just made.
    let since = Duration::try_from(now.duration_since(last_write)).unwrap_or(Duration::ZERO);
    FOLD_WINDOW
        .checked_sub(since)
        .filter(|left| !left.is_zero())
}

/// The status without what CassKop's progress on sites in progress changes.
fn masked(status: &MultiCasskopStatus) -> MultiCasskopStatus {
    let mut s = status.clone();
    for site in &mut s.sites {
        if site.state.as_deref() == Some(IN_PROGRESS) {
            site.phase = None;
            site.last_cluster_action = None;
            site.last_cluster_action_status = None;
            site.message = None;
        }
    }
    for c in &mut s.conditions {
        c.message.clear();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Condition, SiteStatus};

    const WRITTEN: &str = "2026-01-01T00:00:00Z";

    fn at(secs: i64) -> jiff::Timestamp {
        WRITTEN.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_secs(secs)
    }

    fn status(state: &str, phase: Option<&str>, message: &str) -> MultiCasskopStatus {
        MultiCasskopStatus {
            phase: Some("Progressing".into()),
            current_site: Some("a".into()),
            ready_sites: Some("0/2".into()),
            observed_generation: Some(1),
            sites: vec![
                SiteStatus {
                    name: "a".into(),
                    state: Some(state.into()),
                    phase: phase.map(Into::into),
                    message: Some(message.into()),
                    applied_time: Some(WRITTEN.into()),
                    applied_generation: Some(1),
                    ..SiteStatus::default()
                },
                SiteStatus {
                    name: "b".into(),
                    state: Some("Waiting".into()),
                    ..SiteStatus::default()
                },
            ],
            conditions: vec![Condition {
                type_: "Progressing".into(),
                status: "True".into(),
                reason: "SiteInProgress".into(),
                message: message.into(),
                last_transition_time: WRITTEN.into(),
                observed_generation: Some(1),
            }],
        }
    }

    #[test]
    fn casskop_progress_right_after_our_write_waits_for_the_rest_of_the_window() {
        let created = status(
            "InProgress",
            None,
            "creating the CassandraCluster at site a",
        );
        let initializing = status("InProgress", Some("Initializing"), "site a: Initializing");
        assert_eq!(
            deferral(&created, &initializing, at(1)),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            deferral(&created, &initializing, at(-3)),
            Some(FOLD_WINDOW),
            "a write stamped in the future counts as just made"
        );
    }

    #[test]
    fn progress_is_written_once_the_window_is_over() {
        let created = status("InProgress", None, "creating");
        let initializing = status("InProgress", Some("Initializing"), "Initializing");
        assert_eq!(deferral(&created, &initializing, at(5)), None);
        assert_eq!(deferral(&created, &initializing, at(60)), None);
    }

    #[test]
    fn a_change_that_matters_is_written_at_once() {
        let in_progress = status("InProgress", Some("Initializing"), "Initializing");
        let ready = status("Ready", Some("Running"), "Running/Done");
        assert_eq!(deferral(&in_progress, &ready, at(1)), None, "state changed");
        let mut counted = in_progress.clone();
        counted.ready_sites = Some("1/2".into());
        assert_eq!(deferral(&in_progress, &counted, at(1)), None, "ready count");
        let mut condition = in_progress.clone();
        condition.conditions[0].status = "False".into();
        assert_eq!(deferral(&in_progress, &condition, at(1)), None, "condition");
        let mut waiting = in_progress.clone();
        waiting.sites[1].message = Some("site b: waits".into());
        assert_eq!(
            deferral(&in_progress, &waiting, at(1)),
            None,
            "a site not in progress"
        );
    }

    #[test]
    fn nothing_waits_without_a_write_of_ours_to_a_site_in_progress() {
        let mut prev = status("InProgress", None, "creating");
        prev.sites[0].applied_time = None;
        let next = status("InProgress", Some("Initializing"), "Initializing");
        assert_eq!(deferral(&prev, &next, at(1)), None);
    }
}
