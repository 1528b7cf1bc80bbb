//! The MultiCasskop status built from a plan (phase, sites, conditions) and the Events to emit
//! for what changed since the previous status. Pure: the same inputs give the same status.

use crate::rollout::events::EventType;

use crate::api::{Condition, MultiCasskopStatus, SiteStatus};
use crate::rollout::plan::{
    Action, AppliedMark, Ownership, Plan, SiteAccess, SiteInput, SiteVerdict,
};

/// What the controller saw of one site's CassandraCluster, for the status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteDetail {
    pub site: String,
    /// Namespace of the site's CassandraCluster (the desired one).
    pub namespace: Option<String>,
    /// Name of the site's CassandraCluster.
    pub name: Option<String>,
    pub phase: Option<String>,
    pub last_cluster_action: Option<String>,
    pub last_cluster_action_status: Option<String>,
    /// Anything else worth showing, e.g. why the last write to this site failed.
    pub message: Option<String>,
    /// The site's token expired or fails to renew (with the fix): shown in the site's message,
    /// and a Warning Event when it appears or changes.
    pub token_problem: Option<String>,
}

/// An Event to emit on the MultiCasskop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub type_: EventType,
    /// CamelCase reason.
    pub reason: String,
    /// Names the site when there is one.
    pub message: String,
    /// The site concerned, if any.
    pub site: Option<String>,
}

/// Phase values of [`MultiCasskopStatus::phase`].
pub mod phase {
    pub const PENDING: &str = "Pending";
    pub const PROGRESSING: &str = "Progressing";
    pub const RUNNING: &str = "Running";
    pub const BLOCKED: &str = "Blocked";
    pub const INVALID: &str = "Invalid";
    pub const DELETING: &str = "Deleting";
}

/// Condition types.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const PROGRESSING: &str = "Progressing";
    pub const VALID: &str = "Valid";
    pub const SITES_REACHABLE: &str = "SitesReachable";
}

/// Reasons of the Events published on a MultiCasskop.
pub mod reason {
    /// The spec cannot be rolled out (the message says which field and why).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Every site is Running and up to date.
    pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
    /// The rollout moved on after having been complete or blocked.
    pub const ROLLOUT_PROGRESSING: &str = "RolloutProgressing";
    /// The MultiCasskop is being deleted (also: our DELETE of a site's CassandraCluster).
    pub const DELETING: &str = "Deleting";
    /// Every site is reachable again.
    pub const SITES_REACHABLE: &str = "SitesReachable";
    /// A site taking part stopped answering (the message names it and what failed).
    pub const SITES_UNREACHABLE: &str = "SitesUnreachable";
    /// Every CassandraCluster is gone: the finalizer is about to be removed.
    pub const FINALIZER_RELEASED: &str = "FinalizerReleased";
    /// The finalizer was removed.
    pub const DELETED: &str = "Deleted";
    /// A site became Ready.
    pub const SITE_READY: &str = "SiteReady";
    /// A site's CassandraCluster is being deleted.
    pub const SITE_DELETING: &str = "SiteDeleting";
    /// A site is being created or changed, or CassKop is working on it.
    pub const SITE_IN_PROGRESS: &str = "SiteInProgress";
    /// A site is stuck (the message says why).
    pub const SITE_BLOCKED: &str = "SiteBlocked";
    /// A site's CassandraCluster is gone.
    pub const SITE_DELETED: &str = "SiteDeleted";
    /// A site's token expired or its renewal fails (the message names the site and the fix).
    pub const SITE_TOKEN_PROBLEM: &str = "SiteTokenProblem";
    /// We created a site's CassandraCluster.
    pub const CREATED: &str = "Created";
    /// We updated a site's CassandraCluster.
    pub const UPDATED: &str = "Updated";
    /// A CassandraCluster we did not create holds the desired name at a site.
    pub const FOREIGN_CASSANDRA_CLUSTER: &str = "ForeignCassandraCluster";
    /// A site refused our write.
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// A site refused our write as invalid (422): its CRD's schema says which field.
    pub const SPEC_REJECTED: &str = "SpecRejected";
    /// A site did not store fields of our write (its CRD pruned them).
    pub const FIELDS_DROPPED: &str = "FieldsDropped";
    /// A site refused our delete.
    pub const DELETE_FAILED: &str = "DeleteFailed";
}

/// The applied mark recorded for `site` in a status, for [`SiteInput::applied`].
pub fn applied_mark(status: Option<&MultiCasskopStatus>, site: &str) -> Option<AppliedMark> {
    let s = status?.sites.iter().find(|s| s.name == site)?;
    Some(AppliedMark {
        hash: s.applied_hash.clone()?,
        generation: s.applied_generation?,
        dropped: s.dropped_fields.clone(),
    })
}

/// The generation our recorded write to `site` was computed from (see [`set_applied`]).
pub fn applied_from(status: Option<&MultiCasskopStatus>, site: &str) -> Option<i64> {
    status?
        .sites
        .iter()
        .find(|s| s.name == site)?
        .applied_from_generation
}

/// Records our write to `site` in `status` (creating the site entry if needed). Call it after
/// a successful apply, on the status [`build_status`] returned (or on the previous one before
/// building): `build_status` carries applied marks over unchanged.
pub fn set_applied(
    status: &mut MultiCasskopStatus,
    site: &str,
    mark: &AppliedMark,
    from_generation: i64,
    now: &str,
) {
    let entry = match status.sites.iter().position(|s| s.name == site) {
        Some(i) => &mut status.sites[i],
        None => {
            status.sites.push(SiteStatus {
                name: site.to_string(),
                ..SiteStatus::default()
            });
            status.sites.last_mut().expect("just pushed")
        }
    };
    entry.applied_hash = Some(mark.hash.clone());
    entry.applied_generation = Some(mark.generation);
    entry.applied_from_generation = Some(from_generation);
    entry.applied_time = Some(now.to_string());
    entry.dropped_fields = mark.dropped.clone();
}

fn verdict_state(v: &SiteVerdict) -> &'static str {
    match v {
        SiteVerdict::Ready => "Ready",
        SiteVerdict::InProgress { .. } => "InProgress",
        SiteVerdict::Waiting => "Waiting",
        SiteVerdict::Blocked { .. } => "Blocked",
        SiteVerdict::Deleted => "Deleted",
    }
}

fn verdict_message(
    site: &str,
    v: &SiteVerdict,
    input: Option<&SiteInput>,
    detail: Option<&SiteDetail>,
    deleting: bool,
) -> String {
    match v {
        SiteVerdict::Ready => match detail
            .and_then(|d| Some((d.namespace.as_ref()?, d.name.as_ref()?)))
        {
            Some((ns, name)) => {
                format!("site {site}: CassandraCluster {ns}/{name} is Running/Done and up to date")
            }
            None => format!("site {site}: Running/Done and up to date"),
        },
        SiteVerdict::InProgress { reason } | SiteVerdict::Blocked { reason } => reason.clone(),
        SiteVerdict::Waiting if deleting => {
            format!("site {site}: waits until the sites after it are deleted")
        }
        SiteVerdict::Waiting => format!("site {site}: waits for the sites before it"),
        SiteVerdict::Deleted => {
            let foreign = input
                .and_then(|i| i.observed.as_ref())
                .is_some_and(|o| o.ownership != Ownership::Ours);
            if foreign {
                format!(
                    "site {site}: its CassandraCluster was not created by this MultiCasskop: left in place"
                )
            } else {
                format!("site {site}: no CassandraCluster of this MultiCasskop left")
            }
        }
    }
}

fn condition(
    prev: &MultiCasskopStatus,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: i64,
    now: &str,
) -> Condition {
    let last_transition_time = prev
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_string());
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time,
        observed_generation: Some(generation),
    }
}

fn action_site(action: &Action) -> Option<&str> {
    match action {
        Action::Apply { site }
        | Action::Wait { site, .. }
        | Action::Blocked { site, .. }
        | Action::Delete { site } => Some(site),
        Action::Converged | Action::ReleaseFinalizer => None,
    }
}

/// Builds the status for `plan` and lists the Events for what changed since `prev`.
///
/// - `generation`: the MultiCasskop's `metadata.generation` (observedGeneration);
/// - `inputs`: what the plan was computed from (site reachability goes to SitesReachable);
/// - `observed_details`: one per site whose CassandraCluster was looked at. Sites not reachable
///   keep their last known namespace/phase/action from `prev`;
/// - `invalid`: `Some(message)` when the spec cannot be turned into sites (the plan is then
///   usually empty: the site entries of `prev` are kept, applied marks included);
/// - `now`: RFC 3339 time, used only where something changed (lastTransitionTime).
///
/// Applied marks are carried over from `prev`; record new writes with [`set_applied`].
pub fn build_status(
    prev: Option<&MultiCasskopStatus>,
    generation: i64,
    plan: &Plan,
    inputs: &[SiteInput],
    observed_details: &[SiteDetail],
    invalid: Option<&str>,
    now: &str,
) -> (MultiCasskopStatus, Vec<Transition>) {
    let empty = MultiCasskopStatus::default();
    let first_status = prev.is_none();
    let prev = prev.unwrap_or(&empty);
    let mut events = Vec::new();
    let keep_prev_sites = invalid.is_some() && plan.verdicts.is_empty();
    let sites: Vec<SiteStatus> = if keep_prev_sites {
        prev.sites.clone()
    } else {
        let report = SiteReport {
            prev,
            plan,
            inputs,
            details: observed_details,
            now,
        };
        plan.verdicts
            .iter()
            .map(|(name, verdict)| report.site(name, verdict, &mut events))
            .collect()
    };
    let summary = Summary::new(&sites, plan, invalid, first_status);
    let c = Conditions {
        prev,
        generation,
        now,
    };
    let valid = c.valid(&summary, invalid);
    let (ready, progressing) = c.ready_and_progressing(&summary, plan, invalid);
    let reachable = c.reachable(inputs, invalid);
    let mut overall = overall_events(prev, &summary, plan, invalid, &reachable, &progressing);
    overall.extend(events);
    let status = MultiCasskopStatus {
        phase: Some(summary.phase.to_string()),
        current_site: summary.current_site,
        ready_sites: Some(summary.ready_sites),
        observed_generation: Some(generation),
        sites,
        conditions: vec![ready, progressing, valid, reachable],
    };
    (status, overall)
}

/// What every site entry is built from.
struct SiteReport<'a> {
    prev: &'a MultiCasskopStatus,
    plan: &'a Plan,
    inputs: &'a [SiteInput],
    details: &'a [SiteDetail],
    now: &'a str,
}

impl SiteReport<'_> {
    /// The status entry of site `name`; an Event in `events` when its state changed or it is
    /// blocked for a new reason.
    fn site(
        &self,
        name: &String,
        verdict: &SiteVerdict,
        events: &mut Vec<Transition>,
    ) -> SiteStatus {
        let before = self.prev.sites.iter().find(|s| &s.name == name);
        let input = self.inputs.iter().find(|i| &i.name == name);
        let reachable = input.is_some_and(|i| i.access == SiteAccess::Ok);
        let detail = self.details.iter().find(|d| &d.site == name);
        let state = verdict_state(verdict);
        let mut message = verdict_message(name, verdict, input, detail, self.plan.deleting);
        if let Some(extra) = detail.and_then(|d| d.message.as_deref()) {
            message = format!("{message}; {extra}");
        }
        if let Some(problem) = detail.and_then(|d| d.token_problem.as_deref()) {
            let known = before
                .and_then(|b| b.message.as_deref())
                .is_some_and(|m| m.contains(problem));
            if !known {
                events.push(Transition {
                    type_: EventType::Warning,
                    reason: reason::SITE_TOKEN_PROBLEM.to_string(),
                    message: problem.to_string(),
                    site: Some(name.clone()),
                });
            }
            message = format!("{message}; {problem}");
        }
        let (namespace, phase, action, action_status) = last_known(reachable, detail, before);
        let last_transition_time = match before {
            Some(b) if b.state.as_deref() == Some(state) => b
                .last_transition_time
                .clone()
                .or_else(|| Some(self.now.to_string())),
            _ => Some(self.now.to_string()),
        };
        if let Some(t) = site_event(name, verdict, state, &message, before, self.plan.deleting) {
            events.push(t);
        }
        SiteStatus {
            name: name.clone(),
            namespace,
            phase,
            last_cluster_action: action,
            last_cluster_action_status: action_status,
            ready: matches!(verdict, SiteVerdict::Ready),
            state: Some(state.to_string()),
            message: Some(message),
            last_transition_time,
            applied_hash: before.and_then(|b| b.applied_hash.clone()),
            applied_generation: before.and_then(|b| b.applied_generation),
            applied_from_generation: before.and_then(|b| b.applied_from_generation),
            applied_time: before.and_then(|b| b.applied_time.clone()),
            dropped_fields: before.map(|b| b.dropped_fields.clone()).unwrap_or_default(),
            seed_list: before.map(|b| b.seed_list.clone()).unwrap_or_default(),
        }
    }
}

/// Namespace, phase, last action and its status of a site: as observed when it is reachable,
/// else as last reported.
fn last_known(
    reachable: bool,
    detail: Option<&SiteDetail>,
    before: Option<&SiteStatus>,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    match (reachable, detail, before) {
        (true, Some(d), _) => (
            d.namespace.clone(),
            d.phase.clone(),
            d.last_cluster_action.clone(),
            d.last_cluster_action_status.clone(),
        ),
        (true, None, _) => (None, None, None, None),
        (false, d, Some(b)) => (
            d.and_then(|d| d.namespace.clone())
                .or_else(|| b.namespace.clone()),
            b.phase.clone(),
            b.last_cluster_action.clone(),
            b.last_cluster_action_status.clone(),
        ),
        (false, d, None) => (d.and_then(|d| d.namespace.clone()), None, None, None),
    }
}

/// The Event of a site changing state, or of a new reason to be blocked.
fn site_event(
    name: &str,
    verdict: &SiteVerdict,
    state: &str,
    message: &String,
    before: Option<&SiteStatus>,
    deleting: bool,
) -> Option<Transition> {
    let prev_state = before.and_then(|b| b.state.as_deref());
    let changed = prev_state != Some(state);
    let new_block = state == "Blocked" && before.and_then(|b| b.message.as_ref()) != Some(message);
    // Waiting is not news: the site in progress has its own event.
    let (type_, reason) = match verdict {
        SiteVerdict::Ready => (EventType::Normal, reason::SITE_READY),
        SiteVerdict::InProgress { .. } if deleting => (EventType::Normal, reason::SITE_DELETING),
        SiteVerdict::InProgress { .. } => (EventType::Normal, reason::SITE_IN_PROGRESS),
        SiteVerdict::Blocked { .. } => (EventType::Warning, reason::SITE_BLOCKED),
        SiteVerdict::Deleted => (EventType::Normal, reason::SITE_DELETED),
        SiteVerdict::Waiting => return None,
    };
    (changed || new_block).then(|| Transition {
        type_,
        reason: reason.to_string(),
        message: message.clone(),
        site: Some(name.to_string()),
    })
}

/// The overall figures of a status, from its site entries and the plan.
struct Summary {
    first_status: bool,
    no_sites: bool,
    n: usize,
    /// "ready/total".
    ready_sites: String,
    /// The site names, comma-separated.
    names: String,
    phase: &'static str,
    current_site: Option<String>,
    /// What the action is about (the site's message, or the planner's reason).
    action_message: String,
}

impl Summary {
    fn new(sites: &[SiteStatus], plan: &Plan, invalid: Option<&str>, first_status: bool) -> Self {
        let n = sites.len();
        let ready_count = sites.iter().filter(|s| s.ready).count();
        let site_message = |site: &str| {
            sites
                .iter()
                .find(|s| s.name == site)
                .and_then(|s| s.message.clone())
                .unwrap_or_default()
        };
        let no_sites = plan.verdicts.is_empty();
        Summary {
            first_status,
            no_sites,
            n,
            ready_sites: format!("{ready_count}/{n}"),
            names: sites
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            phase: overall_phase(plan, invalid, no_sites),
            current_site: if invalid.is_some() {
                None
            } else {
                action_site(&plan.action).map(str::to_string)
            },
            action_message: match &plan.action {
                Action::Apply { site } | Action::Delete { site } => site_message(site),
                Action::Wait { reason, .. } | Action::Blocked { reason, .. } => reason.clone(),
                Action::Converged | Action::ReleaseFinalizer => String::new(),
            },
        }
    }
}

/// The overall phase.
fn overall_phase(plan: &Plan, invalid: Option<&str>, no_sites: bool) -> &'static str {
    if invalid.is_some() {
        phase::INVALID
    } else if plan.deleting {
        phase::DELETING
    } else if no_sites {
        phase::PENDING
    } else {
        match plan.action {
            Action::Converged => phase::RUNNING,
            Action::Apply { .. } | Action::Wait { .. } => phase::PROGRESSING,
            Action::Blocked { .. } => phase::BLOCKED,
            Action::Delete { .. } | Action::ReleaseFinalizer => phase::DELETING,
        }
    }
}

/// Builds conditions, keeping each one's lastTransitionTime while its status stays.
struct Conditions<'a> {
    prev: &'a MultiCasskopStatus,
    generation: i64,
    now: &'a str,
}

impl Conditions<'_> {
    fn c(&self, type_: &str, status: &str, reason: &str, message: String) -> Condition {
        condition(
            self.prev,
            type_,
            status,
            reason,
            message,
            self.generation,
            self.now,
        )
    }

    /// Valid: whether the spec can be turned into sites.
    fn valid(&self, summary: &Summary, invalid: Option<&str>) -> Condition {
        let (no_sites, n, names) = (summary.no_sites, summary.n, &summary.names);
        let c = |type_: &str, status: &str, reason: &str, message: String| {
            self.c(type_, status, reason, message)
        };
        match invalid {
            Some(msg) => c(condition::VALID, "False", "InvalidSpec", msg.to_string()),
            None if no_sites => c(
                condition::VALID,
                "True",
                "NoSites",
                "spec.override names no site: nothing to create".into(),
            ),
            None => c(
                condition::VALID,
                "True",
                "SpecValid",
                format!("{n} site(s) take part, in this order: {names}"),
            ),
        }
    }

    /// Ready and Progressing: how far the rollout (or the deletion) is.
    fn ready_and_progressing(
        &self,
        summary: &Summary,
        plan: &Plan,
        invalid: Option<&str>,
    ) -> (Condition, Condition) {
        let (no_sites, action_message) = (summary.no_sites, &summary.action_message);
        let c = |type_: &str, status: &str, reason: &str, message: String| {
            self.c(type_, status, reason, message)
        };
        if let Some(msg) = invalid {
            (
                c(
                    condition::READY,
                    "False",
                    "InvalidSpec",
                    format!("the spec is invalid: {msg}"),
                ),
                c(
                    condition::PROGRESSING,
                    "False",
                    "InvalidSpec",
                    "nothing is created or changed while the spec is invalid".into(),
                ),
            )
        } else if plan.deleting {
            self.deletion(plan, action_message)
        } else if no_sites {
            (
                c(
                    condition::READY,
                    "False",
                    "NoSites",
                    "spec.override names no site".into(),
                ),
                c(
                    condition::PROGRESSING,
                    "False",
                    "NoSites",
                    "nothing to roll out".into(),
                ),
            )
        } else {
            self.rollout(plan, summary)
        }
    }

    /// Ready and Progressing while deleting.
    fn deletion(&self, plan: &Plan, action_message: &str) -> (Condition, Condition) {
        let c = |type_: &str, status: &str, reason: &str, message: String| {
            self.c(type_, status, reason, message)
        };
        let deleted_all = plan
            .verdicts
            .iter()
            .all(|(_, v)| *v == SiteVerdict::Deleted);
        let ready = c(
            condition::READY,
            "False",
            "Deleting",
            "the MultiCasskop is being deleted".into(),
        );
        let progressing = match &plan.action {
            Action::Delete { .. } | Action::Wait { .. } => c(
                condition::PROGRESSING,
                "True",
                "Deleting",
                action_message.to_string(),
            ),
            Action::Blocked { .. } => c(
                condition::PROGRESSING,
                "False",
                "DeletionBlocked",
                action_message.to_string(),
            ),
            _ if deleted_all => c(
                condition::PROGRESSING,
                "False",
                "Deleted",
                "every CassandraCluster of this MultiCasskop is gone".into(),
            ),
            _ => c(
                condition::PROGRESSING,
                "False",
                "LeftInPlace",
                "deleteCassandraCluster is not true: the CassandraClusters stay".into(),
            ),
        };
        (ready, progressing)
    }

    /// Ready and Progressing of a rollout with sites.
    fn rollout(&self, plan: &Plan, summary: &Summary) -> (Condition, Condition) {
        let (n, names) = (summary.n, &summary.names);
        let (ready_sites, action_message) = (&summary.ready_sites, &summary.action_message);
        let c = |type_: &str, status: &str, reason: &str, message: String| {
            self.c(type_, status, reason, message)
        };
        match &plan.action {
            Action::Converged => (
                c(
                    condition::READY,
                    "True",
                    "AllSitesReady",
                    format!("all {n} site(s) are Running and up to date: {names}"),
                ),
                c(
                    condition::PROGRESSING,
                    "False",
                    "RolloutComplete",
                    format!("every site is up to date ({ready_sites})"),
                ),
            ),
            Action::Blocked { .. } => (
                c(
                    condition::READY,
                    "False",
                    "RolloutBlocked",
                    format!("{ready_sites} sites ready; {action_message}"),
                ),
                c(
                    condition::PROGRESSING,
                    "False",
                    "RolloutBlocked",
                    action_message.clone(),
                ),
            ),
            _ => (
                c(
                    condition::READY,
                    "False",
                    "RolloutInProgress",
                    format!("{ready_sites} sites ready; {action_message}"),
                ),
                c(
                    condition::PROGRESSING,
                    "True",
                    "SiteInProgress",
                    action_message.clone(),
                ),
            ),
        }
    }

    /// SitesReachable: every site taking part can be reached.
    fn reachable(&self, inputs: &[SiteInput], invalid: Option<&str>) -> Condition {
        let c = |type_: &str, status: &str, reason: &str, message: String| {
            self.c(type_, status, reason, message)
        };
        let unreachable: Vec<String> = inputs
            .iter()
            .filter_map(|i| match &i.access {
                // Reached: it answered, and refused what we sent.
                SiteAccess::Ok | SiteAccess::Rejected { .. } => None,
                SiteAccess::Unavailable { reason } | SiteAccess::Unlisted { reason } => {
                    Some(format!("site {}: {reason}", i.name))
                }
                SiteAccess::NotConfigured => {
                    Some(format!("site {}: not a configured cluster", i.name))
                }
            })
            .collect();
        if inputs.is_empty() {
            c(
                condition::SITES_REACHABLE,
                "Unknown",
                if invalid.is_some() {
                    "InvalidSpec"
                } else {
                    "NoSites"
                },
                "no site to reach".into(),
            )
        } else if unreachable.is_empty() {
            c(
                condition::SITES_REACHABLE,
                "True",
                "AllSitesReachable",
                format!("all {} site(s) reachable", inputs.len()),
            )
        } else {
            let any_unavailable = inputs
                .iter()
                .any(|i| matches!(i.access, SiteAccess::Unavailable { .. }));
            c(
                condition::SITES_REACHABLE,
                "False",
                if any_unavailable {
                    "SitesUnreachable"
                } else {
                    "SitesNotConfigured"
                },
                unreachable.join("; "),
            )
        }
    }
}

/// The overall Events (before the per-site ones, in site order): invalid spec, phase changes,
/// sites reachable again, finalizer released.
fn overall_events(
    prev: &MultiCasskopStatus,
    summary: &Summary,
    plan: &Plan,
    invalid: Option<&str>,
    reachable: &Condition,
    progressing: &Condition,
) -> Vec<Transition> {
    let mut overall = Vec::new();
    let prev_phase = prev.phase.as_deref();
    let prev_valid_msg = prev
        .conditions
        .iter()
        .find(|c| c.type_ == condition::VALID)
        .map(|c| c.message.as_str());
    if let Some(msg) = invalid
        && (prev_phase != Some(phase::INVALID) || prev_valid_msg != Some(msg))
    {
        overall.push(Transition {
            type_: EventType::Warning,
            reason: reason::INVALID_SPEC.into(),
            message: msg.to_string(),
            site: None,
        });
    }
    overall.extend(phase_event(prev_phase, summary));
    let was_unreachable = prev
        .conditions
        .iter()
        .any(|c| c.type_ == condition::SITES_REACHABLE && c.status == "False");
    if !was_unreachable && reachable.status == "False" && reachable.reason == "SitesUnreachable" {
        overall.push(Transition {
            type_: EventType::Warning,
            reason: reason::SITES_UNREACHABLE.into(),
            message: reachable.message.clone(),
            site: None,
        });
    }
    if was_unreachable && reachable.status == "True" {
        overall.push(Transition {
            type_: EventType::Normal,
            reason: reason::SITES_REACHABLE.into(),
            message: reachable.message.clone(),
            site: None,
        });
    }
    if plan.action == Action::ReleaseFinalizer && plan.deleting {
        // Emitted on every call that releases: the controller removes the finalizer right after.
        overall.push(Transition {
            type_: EventType::Normal,
            reason: reason::FINALIZER_RELEASED.into(),
            message: progressing.message.clone(),
            site: None,
        });
    }
    overall
}

/// The Event of a change of the overall phase, when it is news.
fn phase_event(prev_phase: Option<&str>, summary: &Summary) -> Option<Transition> {
    let (first_status, phase, n, names) = (
        summary.first_status,
        summary.phase,
        summary.n,
        &summary.names,
    );
    if prev_phase == Some(phase) {
        return None;
    }
    let (type_, reason, message) = match phase {
        phase::RUNNING => (
            EventType::Normal,
            reason::ROLLOUT_COMPLETE,
            format!("all {n} site(s) are Running and up to date: {names}"),
        ),
        phase::PROGRESSING if !first_status && prev_phase != Some(phase::PENDING) => (
            EventType::Normal,
            reason::ROLLOUT_PROGRESSING,
            summary.action_message.clone(),
        ),
        phase::DELETING => (
            EventType::Normal,
            reason::DELETING,
            "the MultiCasskop is being deleted".to_string(),
        ),
        // Invalid: the InvalidSpec event above says it; Blocked: the site's event says why.
        _ => return None,
    };
    Some(Transition {
        type_,
        reason: reason.into(),
        message,
        site: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::plan::{ObservedCluster, PlanInput, plan};

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:01:00Z";
    const T2: &str = "2026-01-01T00:02:00Z";

    fn observed(gen_: i64, phase: &str, status: &str) -> ObservedCluster {
        ObservedCluster {
            ownership: Ownership::Ours,
            matches_desired: true,
            generation: gen_,
            phase: Some(phase.into()),
            last_cluster_action: Some("Initializing".into()),
            last_cluster_action_status: Some(status.into()),
            deleting: false,
        }
    }

    fn input(name: &str, observed: Option<ObservedCluster>, applied: Option<i64>) -> SiteInput {
        SiteInput {
            name: name.into(),
            desired_hash: "h1".into(),
            access: SiteAccess::Ok,
            observed,
            applied: applied.map(|g| AppliedMark {
                hash: "h1".into(),
                generation: g,
                dropped: Vec::new(),
            }),
        }
    }

    fn details(inputs: &[SiteInput]) -> Vec<SiteDetail> {
        inputs
            .iter()
            .filter(|i| i.access == SiteAccess::Ok)
            .map(|i| SiteDetail {
                site: i.name.clone(),
                namespace: Some("cassandra".into()),
                name: Some("cassandra-demo".into()),
                phase: i.observed.as_ref().and_then(|o| o.phase.clone()),
                last_cluster_action: i
                    .observed
                    .as_ref()
                    .and_then(|o| o.last_cluster_action.clone()),
                last_cluster_action_status: i
                    .observed
                    .as_ref()
                    .and_then(|o| o.last_cluster_action_status.clone()),
                message: None,
                token_problem: None,
            })
            .collect()
    }

    fn build(
        prev: Option<&MultiCasskopStatus>,
        inputs: Vec<SiteInput>,
        now: &str,
    ) -> (MultiCasskopStatus, Vec<Transition>) {
        let p = plan(&PlanInput {
            sites: inputs.clone(),
            deleting: false,
            delete_cassandra_cluster: false,
        });
        build_status(prev, 3, &p, &inputs, &details(&inputs), None, now)
    }

    fn cond<'a>(s: &'a MultiCasskopStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    fn reasons(events: &[Transition]) -> Vec<&str> {
        events.iter().map(|e| e.reason.as_str()).collect()
    }

    #[test]
    fn a_token_problem_is_in_the_site_message_with_one_warning_event() {
        let inputs = vec![input("a", None, None), input("b", None, None)];
        let p = plan(&PlanInput {
            sites: inputs.clone(),
            deleting: false,
            delete_cassandra_cluster: false,
        });
        let mut d = details(&inputs);
        let problem =
            "site b: renewing the token ... refused; fix: grant create on serviceaccounts/token";
        d[1].token_problem = Some(problem.to_string());
        let (s1, events) = build_status(None, 3, &p, &inputs, &d, None, T0);
        assert!(
            s1.sites[1].message.as_deref().unwrap().ends_with(problem),
            "{:?}",
            s1.sites[1].message
        );
        let warning = events
            .iter()
            .find(|e| e.reason == "SiteTokenProblem")
            .expect("a SiteTokenProblem Event");
        assert_eq!(warning.type_, EventType::Warning);
        assert_eq!(warning.site.as_deref(), Some("b"));
        assert_eq!(warning.message, problem);
        // Unchanged: no second Event.
        let (_, again) = build_status(Some(&s1), 3, &p, &inputs, &d, None, T0);
        assert!(!reasons(&again).contains(&"SiteTokenProblem"), "{again:?}");
    }

    #[test]
    fn first_site_being_created() {
        let (s, events) = build(
            None,
            vec![input("a", None, None), input("b", None, None)],
            T0,
        );
        assert_eq!(s.phase.as_deref(), Some("Progressing"));
        assert_eq!(s.current_site.as_deref(), Some("a"));
        assert_eq!(s.ready_sites.as_deref(), Some("0/2"));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.sites[0].state.as_deref(), Some("InProgress"));
        assert_eq!(s.sites[1].state.as_deref(), Some("Waiting"));
        let ready = cond(&s, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "RolloutInProgress")
        );
        assert!(ready.message.contains("site a"), "{}", ready.message);
        assert_eq!(cond(&s, "Progressing").status, "True");
        assert_eq!(cond(&s, "Valid").status, "True");
        assert!(cond(&s, "Valid").message.contains("a, b"));
        assert_eq!(cond(&s, "SitesReachable").status, "True");
        assert_eq!(reasons(&events), ["SiteInProgress"]);
        assert_eq!(events[0].site.as_deref(), Some("a"));
    }

    #[test]
    fn unchanged_inputs_give_an_identical_status_and_no_events() {
        let inputs = vec![
            input("a", Some(observed(4, "Running", "Done")), Some(2)),
            input("b", None, None),
        ];
        let (s1, _) = build(None, inputs.clone(), T0);
        let (s2, events) = build(Some(&s1), inputs, T1);
        assert_eq!(s1, s2);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn transition_times_move_only_when_status_flips() {
        let creating = vec![input("a", None, None)];
        let (s1, _) = build(None, creating, T0);
        // a still in progress (stale window), later: nothing flips.
        let stale = vec![input("a", Some(observed(1, "Running", "Done")), Some(1))];
        let (s2, _) = build(Some(&s1), stale, T1);
        assert_eq!(cond(&s2, "Ready").last_transition_time, T0);
        assert_eq!(s2.sites[0].last_transition_time.as_deref(), Some(T0));
        // a Ready: Ready flips, the site's state too.
        let done = vec![input("a", Some(observed(3, "Running", "Done")), Some(1))];
        let (s3, events) = build(Some(&s2), done, T2);
        assert_eq!(s3.phase.as_deref(), Some("Running"));
        assert_eq!(s3.current_site, None);
        assert_eq!(s3.ready_sites.as_deref(), Some("1/1"));
        let ready = cond(&s3, "Ready");
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.last_transition_time.as_str()
            ),
            ("True", "AllSitesReady", T2)
        );
        assert_eq!(cond(&s3, "Valid").last_transition_time, T0);
        assert_eq!(s3.sites[0].last_transition_time.as_deref(), Some(T2));
        assert!(s3.sites[0].ready);
        assert_eq!(reasons(&events), ["RolloutComplete", "SiteReady"]);
        assert!(
            events[1].message.contains("cassandra/cassandra-demo"),
            "{}",
            events[1].message
        );
    }

    #[test]
    fn events_tell_the_rollout_story() {
        let ready = |n: &str| input(n, Some(observed(4, "Running", "Done")), Some(2));
        let outdated = |n: &str| {
            let mut i = ready(n);
            i.desired_hash = "h2".into();
            i.observed.as_mut().unwrap().matches_desired = false;
            i
        };
        let story = [
            (
                vec![input("a", None, None), input("b", None, None)],
                vec![("SiteInProgress", Some("a"))],
            ),
            (
                vec![ready("a"), input("b", None, None)],
                vec![("SiteReady", Some("a")), ("SiteInProgress", Some("b"))],
            ),
            (
                vec![ready("a"), ready("b")],
                vec![("RolloutComplete", None), ("SiteReady", Some("b"))],
            ),
            (vec![ready("a"), ready("b")], vec![]),
            (
                vec![outdated("a"), outdated("b")],
                vec![("RolloutProgressing", None), ("SiteInProgress", Some("a"))],
            ),
        ];
        let mut prev: Option<MultiCasskopStatus> = None;
        for (step, (inputs, expected)) in story.into_iter().enumerate() {
            let (s, events) = build(prev.as_ref(), inputs, T0);
            let got: Vec<(&str, Option<&str>)> = events
                .iter()
                .map(|e| (e.reason.as_str(), e.site.as_deref()))
                .collect();
            assert_eq!(got, expected, "step {step}: {events:?}");
            assert!(events.iter().all(|e| e.type_ == EventType::Normal));
            prev = Some(s);
        }
    }

    #[test]
    fn applied_marks_are_kept_and_set() {
        let (mut s, _) = build(None, vec![input("a", None, None)], T0);
        assert_eq!(applied_mark(Some(&s), "a"), None);
        let mark = AppliedMark {
            hash: "h1".into(),
            generation: 1,
            dropped: Vec::new(),
        };
        set_applied(&mut s, "a", &mark, 0, T0);
        assert_eq!(applied_from(Some(&s), "a"), Some(0));
        assert_eq!(applied_mark(Some(&s), "a"), Some(mark.clone()));
        let (s2, _) = build(
            Some(&s),
            vec![input("a", Some(observed(1, "Running", "Done")), Some(1))],
            T1,
        );
        assert_eq!(applied_mark(Some(&s2), "a"), Some(mark));
        assert_eq!(s2.sites[0].applied_time.as_deref(), Some(T0));
        // A site not yet in the status gets an entry.
        set_applied(
            &mut s,
            "z",
            &AppliedMark {
                hash: "x".into(),
                generation: 9,
                dropped: Vec::new(),
            },
            1,
            T1,
        );
        assert_eq!(applied_mark(Some(&s), "z").unwrap().generation, 9);
    }

    #[test]
    fn unreachable_site_keeps_last_known_state_and_says_why() {
        let inputs = vec![
            input("a", Some(observed(4, "Running", "Done")), Some(2)),
            input("b", Some(observed(4, "Running", "Done")), Some(2)),
        ];
        let (s1, _) = build(None, inputs.clone(), T0);
        let mut down = inputs;
        down[1].access = SiteAccess::Unavailable {
            reason: "401 Unauthorized from https://b:6443".into(),
        };
        down[1].observed = None;
        let (s2, events) = build(Some(&s1), down, T1);
        assert_eq!(s2.phase.as_deref(), Some("Blocked"));
        assert_eq!(s2.current_site.as_deref(), Some("b"));
        assert_eq!(
            s2.sites[1].phase.as_deref(),
            Some("Running"),
            "last known phase kept"
        );
        assert_eq!(s2.sites[1].namespace.as_deref(), Some("cassandra"));
        assert!(s2.sites[1].message.as_deref().unwrap().contains("401"));
        let r = cond(&s2, "SitesReachable");
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "SitesUnreachable")
        );
        assert!(r.message.contains("site b: 401"), "{}", r.message);
        assert_eq!(cond(&s2, "Ready").reason, "RolloutBlocked");
        assert!(
            events.iter().any(|e| e.type_ == EventType::Warning
                && e.reason == "SiteBlocked"
                && e.site.as_deref() == Some("b")),
            "{events:?}"
        );
        // Back.
        let (s3, events) = build(
            Some(&s2),
            {
                let mut v = vec![input("a", Some(observed(4, "Running", "Done")), Some(2))];
                v.push(input("b", Some(observed(4, "Running", "Done")), Some(2)));
                v
            },
            T2,
        );
        assert_eq!(cond(&s3, "SitesReachable").status, "True");
        assert!(reasons(&events).contains(&"SitesReachable"), "{events:?}");
    }

    #[test]
    fn a_site_that_refused_our_write_is_blocked_with_the_server_message_yet_reachable() {
        let inputs = vec![
            input("a", Some(observed(4, "Running", "Done")), Some(2)),
            input("b", Some(observed(4, "Running", "Done")), Some(2)),
        ];
        let (s1, _) = build(None, inputs.clone(), T0);
        let mut refused = inputs;
        refused[1].access = SiteAccess::Rejected {
            reason: "CassandraCluster.db.orange.com \"cc\" is invalid: spec.nodesPerRacks: \
                     Invalid value: \"string\" (422 Invalid)"
                .into(),
        };
        let (s2, events) = build(Some(&s1), refused, T1);
        assert_eq!(s2.sites[1].state.as_deref(), Some("Blocked"));
        let message = s2.sites[1].message.as_deref().unwrap();
        assert!(
            message.contains("site b refused the desired CassandraCluster")
                && message.contains("spec.nodesPerRacks: Invalid value"),
            "{message}"
        );
        assert_eq!(cond(&s2, "SitesReachable").status, "True");
        assert!(
            events.iter().any(|e| e.type_ == EventType::Warning
                && e.reason == "SiteBlocked"
                && e.site.as_deref() == Some("b")),
            "{events:?}"
        );
    }

    #[test]
    fn a_converged_site_that_stops_answering_is_a_warning_event_naming_it_once() {
        let inputs = vec![
            input("a", Some(observed(4, "Running", "Done")), Some(2)),
            input("b", Some(observed(4, "Running", "Done")), Some(2)),
        ];
        let (s1, _) = build(None, inputs.clone(), T0);
        let mut down = inputs;
        down[1].access = SiteAccess::Unavailable {
            reason: "not answering: GET /version: timed out".into(),
        };
        down[1].observed = None;
        let (s2, events) = build(Some(&s1), down.clone(), T1);
        let warning = events
            .iter()
            .find(|e| e.reason == "SitesUnreachable")
            .expect("an Event says the site stopped answering");
        assert_eq!(warning.type_, EventType::Warning);
        assert!(
            warning
                .message
                .contains("site b: not answering: GET /version: timed out"),
            "{}",
            warning.message
        );
        let (_, again) = build(Some(&s2), down, T2);
        assert!(
            !again.iter().any(|e| e.reason == "SitesUnreachable"),
            "not repeated while it stays down: {again:?}"
        );
    }

    #[test]
    fn invalid_spec_keeps_sites_and_marks() {
        let mut prev = MultiCasskopStatus::default();
        set_applied(
            &mut prev,
            "a",
            &AppliedMark {
                hash: "h1".into(),
                generation: 2,
                dropped: Vec::new(),
            },
            1,
            T0,
        );
        prev.sites[0].ready = true;
        let empty = Plan {
            action: Action::Converged,
            verdicts: vec![],
            deleting: false,
        };
        let msg =
            "spec.override names site typo, which is not a configured cluster (configured: a)";
        let (s, events) = build_status(Some(&prev), 4, &empty, &[], &[], Some(msg), T1);
        assert_eq!(s.phase.as_deref(), Some("Invalid"));
        assert_eq!(s.sites, prev.sites);
        assert_eq!(s.ready_sites.as_deref(), Some("1/1"));
        let v = cond(&s, "Valid");
        assert_eq!(
            (v.status.as_str(), v.reason.as_str(), v.message.as_str()),
            ("False", "InvalidSpec", msg)
        );
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(cond(&s, "SitesReachable").status, "Unknown");
        assert_eq!(reasons(&events), ["InvalidSpec"]);
        assert_eq!(events[0].type_, EventType::Warning);
        // The same invalid spec again: no new event.
        let (_, events) = build_status(Some(&s), 4, &empty, &[], &[], Some(msg), T2);
        assert!(events.is_empty());
    }

    #[test]
    fn deletion_phases_and_events() {
        let inputs = vec![
            input("a", Some(observed(4, "Running", "Done")), Some(2)),
            input("b", None, None),
        ];
        let (s0, _) = build(None, inputs.clone(), T0);
        let p = plan(&PlanInput {
            sites: inputs.clone(),
            deleting: true,
            delete_cassandra_cluster: true,
        });
        let (s1, events) = build_status(Some(&s0), 3, &p, &inputs, &details(&inputs), None, T1);
        assert_eq!(s1.phase.as_deref(), Some("Deleting"));
        assert_eq!(s1.current_site.as_deref(), Some("a"));
        assert_eq!(cond(&s1, "Progressing").reason, "Deleting");
        assert!(reasons(&events).contains(&"Deleting"));
        assert!(
            events
                .iter()
                .any(|e| e.reason == "SiteDeleting" && e.site.as_deref() == Some("a")),
            "{events:?}"
        );
        let gone = vec![input("a", None, Some(2)), input("b", None, None)];
        let p = plan(&PlanInput {
            sites: gone.clone(),
            deleting: true,
            delete_cassandra_cluster: true,
        });
        let (s2, events) = build_status(Some(&s1), 3, &p, &gone, &details(&gone), None, T2);
        assert_eq!(cond(&s2, "Progressing").reason, "Deleted");
        assert!(reasons(&events).contains(&"FinalizerReleased"));
        assert!(reasons(&events).contains(&"SiteDeleted"));
        // Without deleteCassandraCluster: left in place.
        let p = plan(&PlanInput {
            sites: inputs.clone(),
            deleting: true,
            delete_cassandra_cluster: false,
        });
        let (s3, _) = build_status(Some(&s0), 3, &p, &inputs, &details(&inputs), None, T1);
        assert_eq!(cond(&s3, "Progressing").reason, "LeftInPlace");
    }

    #[test]
    fn foreign_site_is_blocked_with_a_warning() {
        let mut b = input("b", Some(observed(4, "Running", "Done")), None);
        b.observed.as_mut().unwrap().ownership = Ownership::Foreign {
            owner: "its labels name MultiCasskop x/y".into(),
        };
        let inputs = vec![input("a", Some(observed(4, "Running", "Done")), Some(2)), b];
        let (s, events) = build(None, inputs, T0);
        assert_eq!(s.phase.as_deref(), Some("Blocked"));
        assert!(
            s.sites[1]
                .message
                .as_deref()
                .unwrap()
                .contains("refusing to take it over")
        );
        assert!(
            cond(&s, "Ready").message.contains("1/2 sites ready"),
            "{}",
            cond(&s, "Ready").message
        );
        let w: Vec<_> = events
            .iter()
            .filter(|e| e.type_ == EventType::Warning)
            .collect();
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("site b"));
    }

    #[test]
    fn detail_message_is_appended() {
        let inputs = vec![input("a", None, None)];
        let p = plan(&PlanInput {
            sites: inputs.clone(),
            deleting: false,
            delete_cassandra_cluster: false,
        });
        let mut d = details(&inputs);
        d[0].message = Some("apply failed: 403 Forbidden".into());
        let (s, _) = build_status(None, 1, &p, &inputs, &d, None, T0);
        let m = s.sites[0].message.as_deref().unwrap();
        assert!(m.contains("creating") && m.contains("403 Forbidden"), "{m}");
    }

    #[test]
    fn no_sites_is_pending() {
        let p = plan(&PlanInput {
            sites: vec![],
            deleting: false,
            delete_cassandra_cluster: false,
        });
        let (s, _) = build_status(None, 1, &p, &[], &[], None, T0);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(s.ready_sites.as_deref(), Some("0/0"));
        assert_eq!(cond(&s, "Ready").reason, "NoSites");
    }
}
