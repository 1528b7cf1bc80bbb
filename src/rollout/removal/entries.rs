//! The status entries and Events of sites that left `spec.override`: each stage shown in
//! `status.sites[]`, a released CassandraCluster remembered there. Pure.

use crate::api::{MultiCasskopStatus, SiteStatus};
use crate::rollout::events::EventType;
use crate::rollout::status::Transition;

use super::names::{reason, state};
use super::plan::{LeavingInput, Removal, Stage, describe};

/// What the report step needs of this reconcile's removals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The leaving sites as observed, in status order.
    pub leaving: Vec<LeavingInput>,
    /// The removal's verdicts.
    pub removal: Removal,
    /// Sites whose CassandraCluster this reconcile released, with the status line to keep.
    pub released: Vec<(String, String)>,
    /// A removal write failed at this site (the message names it): shown as Blocked.
    pub failed: Option<(String, String)>,
}

/// The entries of leaving and released sites, to add to `status.sites` after the sites taking
/// part (`taking_part`: their names), and the Events of what changed since `prev`.
pub fn entries(
    prev: &MultiCasskopStatus,
    taking_part: &[String],
    report: &Report,
    now: &str,
) -> (Vec<SiteStatus>, Vec<Transition>) {
    let mut out = Vec::new();
    let mut events = Vec::new();
    for before in &prev.sites {
        let name = &before.name;
        if taking_part.contains(name) {
            continue;
        }
        if let Some((_, line)) = report.released.iter().find(|(s, _)| s == name) {
            out.push(released_entry(before, line, now));
            continue;
        }
        if before.state.as_deref() == Some(state::RELEASED) {
            out.push(before.clone());
            continue;
        }
        let Some((_, stage, waits)) = report.removal.stages.iter().find(|(s, ..)| s == name) else {
            continue;
        };
        let input = report.leaving.iter().find(|l| &l.name == name);
        if *stage == Stage::Done {
            if before.applied_hash.is_some() {
                events.push(Transition {
                    type_: EventType::Normal,
                    reason: reason::SITE_REMOVED.into(),
                    message: format!(
                        "site {name} left the federation: no CassandraCluster of this MultiCasskop is left there"
                    ),
                    site: Some(name.clone()),
                });
            }
            continue;
        }
        let failed = report.failed.as_ref().filter(|(s, _)| s == name);
        let (entry, event) = leaving_entry(before, input, stage, *waits, failed, report, now);
        events.extend(event);
        out.push(entry);
    }
    (out, events)
}

/// While the MultiCasskop is paused nothing is removed or released: the entries of the sites
/// that left `override` (and of released ones) stay as they were, so the removal resumes from
/// them once unpaused.
pub fn kept_while_paused(prev: &MultiCasskopStatus, taking_part: &[String]) -> Vec<SiteStatus> {
    prev.sites
        .iter()
        .filter(|s| !taking_part.contains(&s.name))
        .cloned()
        .collect()
}

/// A leaving site's entry: its stage as state and message, CassKop's status as last seen.
fn leaving_entry(
    before: &SiteStatus,
    input: Option<&LeavingInput>,
    stage: &Stage,
    waits: bool,
    failed: Option<&(String, String)>,
    report: &Report,
    now: &str,
) -> (SiteStatus, Option<Transition>) {
    let name = &before.name;
    let found = input.and_then(|i| i.found.as_ref());
    let cc = found.map(|c| format!("{}/{}", c.namespace, c.name));
    let (st, message) = match (failed, stage) {
        (Some((_, why)), _) => (state::BLOCKED, why.clone()),
        (None, Stage::Refused { .. } | Stage::Stuck { .. }) => {
            (state::BLOCKED, describe(name, stage, cc.as_deref()))
        }
        (None, _) if waits => {
            let current = report
                .removal
                .current
                .as_ref()
                .map_or("another site", |(s, _)| s.as_str());
            (
                state::WAITING,
                format!(
                    "site {name} left spec.override; it waits for {current} (one site in progress at a time): {}",
                    describe(name, stage, cc.as_deref())
                ),
            )
        }
        (None, _) => (state::REMOVING, describe(name, stage, cc.as_deref())),
    };
    let changed = before.state.as_deref() != Some(st);
    let new_block = st == state::BLOCKED && before.message.as_deref() != Some(message.as_str());
    let event = match st {
        state::BLOCKED if changed || new_block => {
            Some((EventType::Warning, reason::SITE_REMOVAL_BLOCKED))
        }
        state::REMOVING if changed => Some((EventType::Normal, reason::SITE_REMOVING)),
        _ => None,
    }
    .map(|(type_, reason)| Transition {
        type_,
        reason: reason.into(),
        message: message.clone(),
        site: Some(name.clone()),
    });
    let mut entry = before.clone();
    if let Some(c) = found {
        entry.namespace = Some(c.namespace.clone());
        entry.phase = c.phase.clone();
        entry.last_cluster_action = c.last_cluster_action.clone();
        entry.last_cluster_action_status = c.last_cluster_action_status.clone();
    }
    entry.ready = false;
    if changed {
        entry.last_transition_time = Some(now.to_string());
    }
    entry.state = Some(st.to_string());
    entry.message = Some(message);
    (entry, event)
}

/// The entry kept for a released CassandraCluster: no applied marks (it is no longer ours).
fn released_entry(before: &SiteStatus, line: &str, now: &str) -> SiteStatus {
    SiteStatus {
        name: before.name.clone(),
        namespace: before.namespace.clone(),
        phase: before.phase.clone(),
        last_cluster_action: before.last_cluster_action.clone(),
        last_cluster_action_status: before.last_cluster_action_status.clone(),
        ready: false,
        state: Some(state::RELEASED.to_string()),
        message: Some(line.to_string()),
        last_transition_time: Some(now.to_string()),
        ..SiteStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::plan::SiteAccess;
    use crate::rollout::removal::plan::{LeavingCluster, RemovalMark, Step};

    fn entry(name: &str, state: &str) -> SiteStatus {
        SiteStatus {
            name: name.into(),
            state: Some(state.into()),
            message: Some("before".into()),
            applied_hash: Some("h".into()),
            applied_generation: Some(3),
            ..SiteStatus::default()
        }
    }

    fn leaving(name: &str) -> LeavingInput {
        LeavingInput {
            name: name.into(),
            access: SiteAccess::Ok,
            found: Some(LeavingCluster {
                namespace: "ns".into(),
                name: "cc".into(),
                generation: 5,
                dcs: vec![("dc4".into(), 0)],
                phase: Some("Pending".into()),
                last_cluster_action: Some("ScaleDown".into()),
                last_cluster_action_status: Some("Ongoing".into()),
                deleting: false,
            }),
            mark: Some(RemovalMark {
                hash: "scale-down:dc4".into(),
                generation: 4,
            }),
        }
    }

    fn status(sites: Vec<SiteStatus>) -> MultiCasskopStatus {
        MultiCasskopStatus {
            sites,
            ..MultiCasskopStatus::default()
        }
    }

    #[test]
    fn a_leaving_site_shows_its_stage_and_an_event_when_it_starts() {
        let prev = status(vec![entry("a", "Ready"), entry("d", "Ready")]);
        let stage = Stage::Busy("site d: CassKop is scaling down".into());
        let report = Report {
            leaving: vec![leaving("d")],
            removal: Removal {
                stages: vec![("d".into(), stage.clone(), false)],
                current: Some(("d".into(), stage)),
            },
            ..Report::default()
        };
        let (out, events) = entries(&prev, &["a".into()], &report, "now");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state.as_deref(), Some(state::REMOVING));
        assert_eq!(out[0].phase.as_deref(), Some("Pending"));
        assert_eq!(out[0].applied_generation, Some(3), "marks carried over");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, reason::SITE_REMOVING);
    }

    #[test]
    fn a_refused_scale_down_is_blocked_with_a_warning_once_per_message() {
        let prev = status(vec![entry("d", state::REMOVING)]);
        let stage = Stage::Refused {
            dc: "dc4".into(),
            reason: "keyspaces still replicate in dc4".into(),
        };
        let report = Report {
            leaving: vec![leaving("d")],
            removal: Removal {
                stages: vec![("d".into(), stage.clone(), false)],
                current: Some(("d".into(), stage)),
            },
            ..Report::default()
        };
        let (out, events) = entries(&prev, &[], &report, "now");
        assert_eq!(out[0].state.as_deref(), Some(state::BLOCKED));
        assert_eq!(
            out[0].message.as_deref(),
            Some("keyspaces still replicate in dc4")
        );
        assert_eq!(events[0].reason, reason::SITE_REMOVAL_BLOCKED);
        assert_eq!(events[0].type_, EventType::Warning);
        let (_, again) = entries(&status(out), &[], &report, "later");
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_pause_keeps_the_entries_of_leaving_and_released_sites_as_they_were() {
        let prev = status(vec![
            entry("a", "Ready"),
            entry("d", state::BLOCKED),
            entry("old", state::RELEASED),
        ]);
        let kept = kept_while_paused(&prev, &["a".into()]);
        assert_eq!(kept, prev.sites[1..].to_vec());
    }

    #[test]
    fn a_finished_removal_drops_the_entry_and_a_release_is_remembered() {
        let prev = status(vec![
            entry("d", state::REMOVING),
            entry("e", "Ready"),
            entry("old", state::RELEASED),
        ]);
        let report = Report {
            removal: Removal {
                stages: vec![
                    ("d".into(), Stage::Done, false),
                    ("e".into(), Stage::Act(Step::Release), false),
                ],
                current: Some(("e".into(), Stage::Act(Step::Release))),
            },
            released: vec![("e".into(), "released at now".into())],
            ..Report::default()
        };
        let (out, events) = entries(&prev, &[], &report, "now");
        let names: Vec<&str> = out.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["e", "old"]);
        assert_eq!(out[0].state.as_deref(), Some(state::RELEASED));
        assert_eq!(out[0].applied_hash, None);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, reason::SITE_REMOVED);
        assert!(events[0].message.contains("site d left the federation"));
    }
}
