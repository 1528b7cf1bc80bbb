//! The names a removal shows: annotations on a released CassandraCluster, status states, Event
//! reasons.

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
