//! Sites that left `spec.override`: scaled to 0 then deleted (`deleteCassandraCluster: true`),
//! or released; never a silent orphan.
//!
//! A site leaves when the status lists it and `override` no longer names it: the status entry
//! is the durable memory of the removal, kept (with the stage reached) until nothing of ours is
//! left there, so a controller restarted mid-removal carries on. `plan` decides (pure), `entries`
//! reports (pure), `observe` and `act` do the I/O. A site whose cluster is no longer configured
//! while `override` still names it is not leaving: the rollout reports it and waits.

mod act;
pub mod entries;
mod observe;
pub mod plan;
mod retry;

pub(super) use act::act;
pub use entries::Report;
pub(super) use observe::observe;
pub use plan::{Mode, combine};
pub(super) use retry::Retries;

/// Annotation on a released CassandraCluster: the MultiCasskop (`namespace/name`) that released it.
pub const RELEASED_BY_ANNOTATION: &str = "multicasskop.db.orange.com/released-by";
/// Annotation on a released CassandraCluster: when it was released (RFC 3339).
pub const RELEASED_AT_ANNOTATION: &str = "multicasskop.db.orange.com/released-at";

/// `state` values of a leaving site's status entry.
pub mod state {
    /// Being scaled down, deleted or released.
    pub const REMOVING: &str = "Removing";
    /// Cannot go on (CassKop refused the scale-down, the site is unreachable): the message says
    /// why and what to do.
    pub const BLOCKED: &str = "Blocked";
    /// Waits for another site (one site in progress at a time).
    pub const WAITING: &str = "Waiting";
    /// Its CassandraCluster was released: no longer ours, nothing deleted.
    pub const RELEASED: &str = "Released";
}

/// Reasons of the Events about leaving sites.
pub mod reason {
    /// A leaving site's removal started (scale-down, deletion or release).
    pub const SITE_REMOVING: &str = "SiteRemoving";
    /// We set a DC of a leaving site to 0 nodes.
    pub const SITE_SCALING_DOWN: &str = "SiteScalingDown";
    /// A leaving site's removal cannot go on (the message says why and what to do).
    pub const SITE_REMOVAL_BLOCKED: &str = "SiteRemovalBlocked";
    /// Nothing of ours is left at a leaving site.
    pub const SITE_REMOVED: &str = "SiteRemoved";
    /// A leaving site's CassandraCluster was released (owner labels removed, nothing deleted).
    pub const SITE_RELEASED: &str = "SiteReleased";
}
