//! The one retry policy of the controller: exponential delays on `backon`, reset on success.
//!
//! Three users: the requeue of a failing MultiCasskop, the CassandraCluster watch of a site and
//! the ClientConfig watch. Each holds one [`Backoff`] per thing it retries.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Exponential delays from `min` doubling up to `max`, never giving up.
#[derive(Debug)]
pub struct Backoff {
    policy: ExponentialBuilder,
    delays: ExponentialBackoff,
    max: Duration,
    /// When the delay last handed out by [`Backoff::failed`] ends.
    until: Option<Instant>,
}

impl Backoff {
    /// A policy starting at `min` and doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let policy = ExponentialBuilder::new()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_factor(2.0)
            .without_max_times();
        Self {
            policy,
            delays: policy.build(),
            max,
            until: None,
        }
    }

    /// The next delay: `min`, `2·min`, ... capped at `max`.
    pub fn next_delay(&mut self) -> Duration {
        // Without max times the iterator never ends; `max` only guards against that changing.
        self.delays.next().unwrap_or(self.max)
    }

    /// Record a failure at `now` and return the wait before the next try. A failure while the
    /// current delay still runs (a watch event woke the reconcile early: a storm of them when
    /// CassKop and the other sites are busy) does not lengthen the delay: only a failure after a
    /// full delay has passed moves to the next one, so the delay grows with time spent failing,
    /// not with the number of events.
    pub fn failed(&mut self, now: Instant) -> Duration {
        match self.until {
            Some(until) if now < until => until - now,
            _ => {
                let wait = self.next_delay();
                self.until = Some(now + wait);
                wait
            }
        }
    }

    /// Start over from `min` (the retried thing succeeded).
    pub fn reset(&mut self) {
        self.delays = self.policy.build();
        self.until = None;
    }
}
