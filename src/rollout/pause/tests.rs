use super::*;
use crate::rollout::plan::PlanInput;
use crate::rollout::plan::fixtures::new_site as site;

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:01:00Z";

/// Two sites, none created: the plan creates the first.
fn creating() -> (PlanInput, Plan) {
    let input = PlanInput {
        sites: vec![site("a"), site("b")],
        deleting: false,
        delete_cassandra_cluster: false,
    };
    let planned = plan::plan(&input);
    assert_eq!(
        planned.action,
        Action::Apply { site: "a".into() },
        "the fixture creates site a"
    );
    (input, planned)
}

fn paused_status(
    prev: Option<&MultiCasskopStatus>,
    now: &str,
) -> (MultiCasskopStatus, Vec<Transition>) {
    let (input, planned) = creating();
    let (planned, held) = hold(planned);
    let (mut status, transitions) = build_status(prev, 1, &planned, &input.sites, &[], None, now);
    let empty = MultiCasskopStatus::default();
    let transitions = overlay(&mut status, transitions, prev.unwrap_or(&empty), &held, now);
    (status, transitions)
}

fn cond<'a>(status: &'a MultiCasskopStatus, type_: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition: {:?}", status.conditions))
}

#[test]
fn a_held_write_leaves_its_site_waiting_and_names_it() {
    let (_, planned) = creating();
    let (held_plan, held) = hold(planned);
    let Action::Wait { site, reason } = &held_plan.action else {
        panic!("a paused plan writes nothing: {:?}", held_plan.action);
    };
    assert_eq!(site, "a");
    assert!(reason.starts_with("held until resumed: "), "{reason}");
    assert_eq!(held.site.as_deref(), Some("a"));
    assert!(
        held_plan
            .verdicts
            .iter()
            .all(|(_, v)| *v == SiteVerdict::Waiting)
    );
}

#[test]
fn a_held_deletion_or_finalizer_writes_nothing() {
    let delete = Plan {
        action: Action::Delete { site: "b".into() },
        verdicts: vec![
            ("a".into(), SiteVerdict::Waiting),
            (
                "b".into(),
                SiteVerdict::InProgress {
                    reason: "deleting".into(),
                },
            ),
        ],
        deleting: true,
    };
    let (held_plan, held) = hold(delete);
    assert!(
        matches!(held_plan.action, Action::Wait { .. }),
        "{:?}",
        held_plan.action
    );
    assert!(
        held.note
            .contains("site b: its CassandraCluster to be deleted"),
        "{}",
        held.note
    );
    let release = Plan {
        action: Action::ReleaseFinalizer,
        verdicts: vec![("a".into(), SiteVerdict::Deleted)],
        deleting: true,
    };
    let (_, held) = hold(release);
    assert!(held.note.contains("finalizer"), "{}", held.note);
}

#[test]
fn paused_status_shows_phase_condition_and_what_waits() {
    let (status, transitions) = paused_status(None, T0);
    assert_eq!(status.phase.as_deref(), Some(PHASE));
    assert_eq!(status.current_site.as_deref(), Some("a"));
    let paused = cond(&status, CONDITION);
    assert_eq!(
        (paused.status.as_str(), paused.reason.as_str()),
        ("True", REASON)
    );
    assert!(
        paused.message.starts_with(
            "spec.paused is true: nothing is written to any site; held until resumed: "
        ),
        "{}",
        paused.message
    );
    let progressing = cond(&status, "Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("False", REASON)
    );
    let a = &status.sites[0];
    assert_eq!(a.state.as_deref(), Some("Waiting"));
    assert!(
        a.message
            .as_deref()
            .unwrap()
            .ends_with("(spec.paused is true)"),
        "{:?}",
        a.message
    );
    let reasons: Vec<&str> = transitions.iter().map(|t| t.reason.as_str()).collect();
    assert_eq!(reasons, [REASON], "one Event: paused");

    // Still paused a minute later: no new Event, the condition keeps its time.
    let (again, transitions) = paused_status(Some(&status), T1);
    assert!(transitions.is_empty(), "{transitions:?}");
    assert_eq!(cond(&again, CONDITION).last_transition_time, T0);
    assert_eq!(again, status);
}
