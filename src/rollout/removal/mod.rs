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
pub mod names;
mod observe;
pub mod plan;
pub mod retry;

pub(super) use act::act;
pub use entries::Report;
pub(super) use observe::observe;
pub use plan::{Mode, combine};
