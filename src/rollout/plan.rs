//! The planner: a pure function from (desired sites, observed sites) to the one next action.
//!
//! No I/O here. Every sequencing rule of the product lives in this file and is tested
//! exhaustively (table tests and property tests) without any server.
//! INTERFACE FROZEN BY THE LEAD: the types below are shared with the controller wiring.
//! Add fields or variants if you must, but do not rename or remove.

/// How the controller can reach a site right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteAccess {
    /// Credentials loaded and the site's CassandraCluster cache is synced.
    Ok,
    /// The site is named in `override` but is not a configured cluster (no flag, no ClientConfig).
    NotConfigured,
    /// Configured but unusable: credentials missing/broken, API unreachable, 401/403, ...
    Unavailable { reason: String },
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedMark {
    /// Hash of the desired object applied.
    pub hash: String,
    /// CassandraCluster generation right after our write.
    pub generation: i64,
}

/// One site taking part in the federation, in rollout order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteInput {
    pub name: String,
    /// Hash of the desired CassandraCluster for this site.
    pub desired_hash: String,
    pub access: SiteAccess,
    /// `None`: not found at the site (only meaningful when `access == Ok`).
    pub observed: Option<ObservedCluster>,
    /// Our last write to this site, if any.
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
}

/// Decide the next action. Pure.
pub fn plan(input: &PlanInput) -> Plan {
    let _ = input;
    todo!("planner: see the controller issue's rollout rules")
}
