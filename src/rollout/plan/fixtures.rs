//! Plan inputs the rollout's unit tests share: a site not created yet, and one whose
//! CassandraCluster is ours, applied and in a given CassKop phase.
use super::{AppliedMark, ObservedCluster, Ownership, SiteAccess, SiteInput};

/// A reachable site with nothing observed or applied yet.
pub(crate) fn new_site(name: &str) -> SiteInput {
    SiteInput {
        name: name.into(),
        desired_hash: "h1".into(),
        access: SiteAccess::Ok,
        observed: None,
        applied: None,
    }
}

/// A site whose CassandraCluster is ours, matches the desired object we applied (generation 2,
/// now 4) and reports `phase` with last action Initializing in `status`.
pub(crate) fn applied_site(name: &str, phase: &str, status: &str) -> SiteInput {
    SiteInput {
        observed: Some(ObservedCluster {
            ownership: Ownership::Ours,
            matches_desired: true,
            generation: 4,
            phase: Some(phase.into()),
            last_cluster_action: Some("Initializing".into()),
            last_cluster_action_status: Some(status.into()),
            deleting: false,
        }),
        applied: Some(AppliedMark {
            hash: "h1".into(),
            generation: 2,
            dropped: Vec::new(),
        }),
        ..new_site(name)
    }
}
