//! What every step of a reconcile shares: the Context (clients, caches, Events, metrics, the
//! requeue backoff and the write record), the MultiCasskop being reconciled, and the error type.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use tracing::debug;

use crate::api::MultiCasskop;
use crate::api::lenient::Packed;
use crate::backoff::Backoff;
use crate::rollout::apply::WriteError;
use crate::rollout::events::{EventType, NewEvent, Publisher};
use crate::rollout::site_caches::SiteCaches;
use crate::rollout::written::WrittenVersions;
use crate::runtime::metrics::Metrics;
use crate::sites::SiteRegistry;

/// First wait before retrying a blocked or failing MultiCasskop.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between retries of a blocked or failing MultiCasskop.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A reconcile failure that is retried with backoff. Names the object and the cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A write failed (site or local).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The MultiCasskop has no namespace (cannot happen for a namespaced CRD).
    #[error("MultiCasskop {0} has no namespace")]
    NoNamespace(String),
    /// The reconcile ran past `--reconcile-timeout` and was abandoned (its slot freed for the
    /// others); it is retried with backoff.
    #[error("reconcile of MultiCasskop {key} abandoned after {}s (--reconcile-timeout)", .after.as_secs())]
    TimedOut {
        /// The MultiCasskop `ns/name`.
        key: String,
        /// The bound that passed.
        after: Duration,
    },
}

impl Error {
    /// Short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Write(WriteError::Local { .. }) => "local_write_error",
            Error::Write(_) => "site_write_error",
            Error::NoNamespace(_) => "invalid_object",
            Error::TimedOut { .. } => "timed_out",
        }
    }
}

/// Everything a reconcile needs; shared by all reconciles.
pub struct Context {
    pub(super) local: Client,
    pub(super) registry: SiteRegistry,
    pub(super) caches: SiteCaches,
    pub(super) events: Publisher,
    pub(super) metrics: Arc<Metrics>,
    pub(super) resync: Duration,
    /// Requeue backoff per failing (errors or Blocked) MultiCasskop `ns/name`.
    failures: Mutex<HashMap<String, Backoff>>,
    /// Our last writes to MultiCasskops not yet seen in the controller's cache.
    pub(super) written: WrittenVersions,
    /// Undecodable MultiCasskops already reported, by version.
    pub(super) poisoned: crate::rollout::poison::Reported,
    /// The controller's cache of MultiCasskops (see `observe::fresh`).
    pub(super) multicasskops: Store<Packed<MultiCasskop>>,
    /// When each refused scale-down of a leaving site is tried again.
    pub(super) removal_retries: crate::rollout::removal::retry::Retries,
    /// When each change CassKop refused at a site taking part is applied again.
    pub(super) refused_changes: crate::rollout::removal::retry::Retries,
}

impl Context {
    pub(super) fn new(
        local: Client,
        registry: SiteRegistry,
        caches: SiteCaches,
        events: Publisher,
        metrics: Arc<Metrics>,
        resync: Duration,
        multicasskops: Store<Packed<MultiCasskop>>,
    ) -> Self {
        Self {
            local,
            registry,
            caches,
            events,
            metrics,
            resync,
            failures: Mutex::default(),
            written: WrittenVersions::default(),
            poisoned: Default::default(),
            multicasskops,
            removal_retries: Default::default(),
            refused_changes: Default::default(),
        }
    }

    /// Publish an Event on the MultiCasskop. Best effort: the status carries the same facts.
    pub(super) async fn publish(
        &self,
        mc: &MultiCasskop,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let reference = mc.object_ref(&());
        let ev = NewEvent {
            type_,
            reason,
            action,
            note: &note,
        };
        if let Err(e) = self.events.publish(&ev, &reference).await {
            debug!("could not publish Event {reason}: {e}");
        }
    }

    /// The wait before retrying MultiCasskop `key`, which failed or is blocked.
    pub(super) fn next_backoff(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().expect("failures lock");
        f.entry(key.to_string())
            .or_insert_with(requeue_backoff)
            .failed(Instant::now())
    }
    /// MultiCasskop `key` made progress: its next failure waits the shortest delay again.
    pub(super) fn reset_backoff(&self, key: &str) {
        self.failures.lock().expect("failures lock").remove(key);
    }
    pub(super) fn remember_write(&self, key: &str, resource_version: Option<String>) {
        self.written.remember(key, resource_version);
    }
}

/// The requeue policy of a failing MultiCasskop: 1 s, 2 s, 4 s, ... up to five minutes.
fn requeue_backoff() -> Backoff {
    Backoff::new(MIN_BACKOFF, MAX_BACKOFF)
}

/// The MultiCasskop one reconcile works on, with the names every step needs.
pub struct Target<'a> {
    pub mc: &'a MultiCasskop,
    pub ns: String,
    pub name: String,
    /// `ns/name`.
    pub key: String,
    pub api: Api<MultiCasskop>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_during_a_running_delay_do_not_lengthen_it() {
        let t0 = Instant::now();
        let mut b = requeue_backoff();
        assert_eq!(b.failed(t0), Duration::from_secs(1));
        // Twenty watch-triggered failures within the first second: still the same delay.
        for ms in (0..1000).step_by(50) {
            let left = b.failed(t0 + Duration::from_millis(ms));
            assert_eq!(left, Duration::from_millis(1000 - ms));
        }
        assert_eq!(
            b.failed(t0 + Duration::from_secs(1)),
            Duration::from_secs(2)
        );
        assert_eq!(
            b.failed(t0 + Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            b.failed(t0 + Duration::from_secs(3)),
            Duration::from_secs(4)
        );
    }

    /// The delay after `attempt` failures, each after the previous delay ran out.
    fn backoff_for(attempt: u32) -> Duration {
        let mut b = requeue_backoff();
        (1..attempt).for_each(|_| {
            b.next_delay();
        });
        b.next_delay()
    }

    #[test]
    fn backoff_doubles_and_caps_at_five_minutes() {
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(2), Duration::from_secs(2));
        assert_eq!(backoff_for(5), Duration::from_secs(16));
        assert_eq!(backoff_for(9), Duration::from_secs(256));
        assert_eq!(backoff_for(10), MAX_BACKOFF);
        assert_eq!(backoff_for(10_000), MAX_BACKOFF);
    }
}
