//! The planner's vocabulary: what it is given about each site, and what it answers.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::Value;

use crate::api::owner::OwnerLabels;
use crate::api::{CassandraClusterView, OWNER_NAME_LABEL, OWNER_NAMESPACE_LABEL};
use crate::merge::DesiredCluster;

/// How the controller can reach a site right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteAccess {
    /// Credentials loaded and the site's CassandraCluster cache is synced.
    Ok,
    /// The site is named in `override` but is not a configured cluster (no flag, no ClientConfig).
    NotConfigured,
    /// Configured but unusable: credentials missing/broken, API unreachable, 401/403, ...
    Unavailable { reason: String },
    /// No flag configures the site and the ClientConfig list has not succeeded (not yet since
    /// the start, or failing now): whether a ClientConfig defines it cannot be known.
    Unlisted { reason: String },
    /// Reachable, but its API server refused our write as invalid (422: its CRD's schema), so
    /// nothing changed there; `reason` gives the server's message and field paths.
    Rejected { reason: String },
}

/// Who owns a CassandraCluster found at a site under the desired name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Carries our owner labels for this MultiCasskop.
    Ours,
    /// Exists without our labels, or with another MultiCasskop's: never taken over.
    Foreign { owner: String },
}

/// The CassandraCluster as seen in a site's cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedCluster {
    pub ownership: Ownership,
    /// Live object already contains every field of the desired object (drift check).
    pub matches_desired: bool,
    /// `metadata.generation` (CassandraCluster has no status subresource: every status write bumps it).
    pub generation: i64,
    pub phase: Option<String>,
    pub last_cluster_action: Option<String>,
    pub last_cluster_action_status: Option<String>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

/// What we last wrote to a site (kept in the MultiCasskop status, survives restarts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppliedMark {
    /// Hash of the desired object applied.
    pub hash: String,
    /// CassandraCluster generation right after our write.
    pub generation: i64,
    /// Fields of that desired object the site did not store (its CRD pruned them), as field
    /// paths: left out when comparing desired with live while the desired hash is unchanged.
    pub dropped: Vec<String>,
}

/// One site taking part in the federation, in rollout order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteInput {
    pub name: String,
    /// Hash of the desired CassandraCluster for this site.
    pub desired_hash: String,
    pub access: SiteAccess,
    /// `None`: not found at the site (when `access == Ok`).
    ///
    /// When the site is not reachable, pass the last state seen (the reflector's cache) if there
    /// is one, else `None`: the planner uses it only to decide whether the site may still be in
    /// progress (see [`plan`]), never as a reason to write.
    pub observed: Option<ObservedCluster>,
    /// Our last write to this site, if any (build it with [`AppliedMark::after_write`]).
    pub applied: Option<AppliedMark>,
}

/// Everything the planner looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanInput {
    /// Sites taking part, in rollout order.
    pub sites: Vec<SiteInput>,
    /// The MultiCasskop is being deleted.
    pub deleting: bool,
    /// `spec.deleteCassandraCluster == true`.
    pub delete_cassandra_cluster: bool,
}

/// The one thing to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create or update the CassandraCluster at this site (server-side apply).
    Apply { site: String },
    /// A site is in progress: wait for its watch event.
    Wait { site: String, reason: String },
    /// Cannot go on until something outside changes (unreachable, foreign object, CassKop Error).
    Blocked { site: String, reason: String },
    /// Every site is Running/Done and up to date.
    Converged,
    /// Deletion: delete this site's CassandraCluster (reverse order).
    Delete { site: String },
    /// Deletion: every CassandraCluster we own is confirmed gone: drop the finalizer.
    ReleaseFinalizer,
}

/// Per-site verdict, for the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteVerdict {
    /// Running/Done with a status written after our last write, and up to date.
    Ready,
    /// Being created/changed, or CassKop is working on it.
    InProgress { reason: String },
    /// Not started yet (waits for earlier sites).
    Waiting,
    /// Stuck: unreachable, foreign, CassKop Error, not configured.
    Blocked { reason: String },
    /// Deletion: gone.
    Deleted,
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub action: Action,
    /// One verdict per input site, same order.
    pub verdicts: Vec<(String, SiteVerdict)>,
    /// Copied from [`PlanInput::deleting`] (the status shows phase Deleting).
    pub deleting: bool,
}

impl ObservedCluster {
    /// What the planner needs from a live CassandraCluster found at `site` under the desired
    /// name: ownership from its labels, the drift check (after folding in the fields the site
    /// owns, see [`crate::merge::preserve_site_owned_fields`]), generation, CassKop's status.
    pub fn from_live(
        live: &DynamicObject,
        desired: &DesiredCluster,
        owner_ns: &str,
        owner_name: &str,
    ) -> Self {
        let live_json = serde_json::to_value(live).unwrap_or(Value::Null);
        let mut want = desired.object.clone();
        crate::merge::preserve_site_owned_fields(&mut want, &live_json);
        let ownership = Ownership::from_labels(
            live.metadata.labels.as_ref(),
            owner_ns,
            owner_name,
            &desired.site,
        );
        Self::with(
            live,
            ownership,
            crate::merge::live_matches_desired(&want, &live_json),
        )
    }

    /// [`ObservedCluster::from_live`] for a reconcile's observation: `live_json` is `live` as
    /// JSON, and when the object is ours the fields the site owns are folded into `desired`
    /// itself (what is applied next keeps them), then compared, leaving out `dropped`: the
    /// fields the site did not store when we last wrote this desired object (see
    /// [`AppliedMark::dropped`]), which it will never show.
    pub fn folding_into(
        live: &DynamicObject,
        live_json: &Value,
        desired: &mut DesiredCluster,
        dropped: &[String],
        owners: (&str, &str),
    ) -> Self {
        let (owner_ns, owner_name) = owners;
        let ownership = Ownership::from_labels(
            live.metadata.labels.as_ref(),
            owner_ns,
            owner_name,
            &desired.site,
        );
        if ownership == Ownership::Ours {
            crate::merge::preserve_site_owned_fields(&mut desired.object, live_json);
        }
        let matches_desired = if dropped.is_empty() {
            crate::merge::live_matches_desired(&desired.object, live_json)
        } else {
            let kept = super::dropped::without_fields(&desired.object, dropped);
            crate::merge::live_matches_desired(&kept, live_json)
        };
        Self::with(live, ownership, matches_desired)
    }

    /// The rest of what the planner needs: generation and CassKop's status.
    fn with(live: &DynamicObject, ownership: Ownership, matches_desired: bool) -> Self {
        let view = CassandraClusterView(live);
        ObservedCluster {
            ownership,
            matches_desired,
            generation: live.metadata.generation.unwrap_or(0),
            phase: view.phase().map(str::to_string),
            last_cluster_action: view.last_cluster_action().map(str::to_string),
            last_cluster_action_status: view.last_cluster_action_status().map(str::to_string),
            deleting: live.metadata.deletion_timestamp.is_some(),
        }
    }
}

impl Ownership {
    /// Who owns a CassandraCluster, from its labels: ours when the owner labels name this
    /// MultiCasskop and the site label names this site. The `Foreign` text says whose it is, for
    /// the status message.
    pub fn from_labels(
        labels: Option<&BTreeMap<String, String>>,
        owner_ns: &str,
        owner_name: &str,
        site: &str,
    ) -> Ownership {
        let found = OwnerLabels::read(labels);
        match (found.namespace, found.name, found.site) {
            (Some(ns), Some(name), Some(s))
                if ns == owner_ns && name == owner_name && s == site =>
            {
                Ownership::Ours
            }
            (Some(ns), Some(name), s) if ns == owner_ns && name == owner_name => {
                Ownership::Foreign {
                    owner: format!(
                        "its labels give site {}, not {site}: do two site names point to the same cluster?",
                        s.unwrap_or("(none)")
                    ),
                }
            }
            (None, None, _) => Ownership::Foreign {
                owner: format!("it has no {OWNER_NAME_LABEL} / {OWNER_NAMESPACE_LABEL} labels"),
            },
            (ns, name, _) => Ownership::Foreign {
                owner: format!(
                    "its labels name MultiCasskop {}/{}",
                    ns.unwrap_or("(none)"),
                    name.unwrap_or("(none)")
                ),
            },
        }
    }
}
