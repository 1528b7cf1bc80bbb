//! Liveness as progress: the reconciles in flight and the local watch's last sign of life,
//! judged by `/healthz` so that a kubelet restarts a wedged controller.
//!
//! Every call has a deadline (`sites::deadlines`) and every reconcile a bound, so in a healthy
//! process nothing stays stuck past `--liveness-timeout`. A reconcile running longer means the
//! runtime itself is wedged; a local MultiCasskop watch with no event and a local API server
//! that has not answered for that long means the controller can no longer see its work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};

/// Default of `--liveness-timeout`: twice the default reconcile bound (60 s), so a reconcile
/// that ends at its own deadline never fails the probe, and long enough that a local API
/// server restarting (tens of seconds) does not restart the controller too.
pub const DEFAULT_LIVENESS_TIMEOUT: Duration = Duration::from_secs(120);

/// What `/healthz` judges; shared by the controller, the local reachability check and the
/// probe server.
#[derive(Clone)]
pub struct Liveness {
    inner: Arc<Mutex<State>>,
    limit: Duration,
}

struct State {
    next_id: u64,
    /// In-flight reconciles: id -> (MultiCasskop `ns/name`, start).
    running: HashMap<u64, (String, Instant)>,
    /// The last event of the local watch or answer of the local API server.
    local_alive: Instant,
    /// Why the local API server last failed to answer, if it did since `local_alive`.
    local_error: Option<String>,
}

/// Why `/healthz` answers 500: what is stuck and for how long.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum Wedged {
    /// A reconcile has run past the liveness timeout although every call in it has a deadline.
    #[error(
        "the reconcile of MultiCasskop {key} has been running for {}s (limit {}s, --liveness-timeout)",
        .running.as_secs(), .limit.as_secs()
    )]
    Reconcile {
        /// The MultiCasskop `ns/name`.
        key: String,
        /// How long it has been running.
        running: Duration,
        /// The liveness timeout.
        limit: Duration,
    },
    /// The local MultiCasskop watch delivered nothing and the local API server did not answer.
    #[error(
        "the local MultiCasskop watch has shown no sign of life for {}s (no event, and the local API server has not answered{}; limit {}s, --liveness-timeout)",
        .silent.as_secs(),
        .last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default(),
        .limit.as_secs()
    )]
    LocalWatch {
        /// Time since the last event or answer.
        silent: Duration,
        /// The local API server's last failure.
        last_error: Option<String>,
        /// The liveness timeout.
        limit: Duration,
    },
}

/// Removes its reconcile from the in-flight set when the reconcile ends (or is dropped).
pub struct Running {
    liveness: Liveness,
    id: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.liveness.lock().running.remove(&self.id);
    }
}

impl Liveness {
    /// Nothing stuck yet; `limit` is `--liveness-timeout`.
    pub fn new(limit: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                next_id: 0,
                running: HashMap::new(),
                local_alive: Instant::now(),
                local_error: None,
            })),
            limit,
        }
    }

    /// The liveness timeout.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A reconcile of `key` starts; it counts as in flight until the guard is dropped.
    pub fn reconcile_started(&self, key: &str) -> Running {
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        s.running.insert(id, (key.to_string(), Instant::now()));
        Running {
            liveness: self.clone(),
            id,
        }
    }

    /// The local watch delivered something, or the local API server answered.
    pub fn local_alive(&self) {
        let mut s = self.lock();
        s.local_alive = Instant::now();
        s.local_error = None;
    }

    /// The local API server failed to answer (`why` names the request and the cause).
    pub fn local_failed(&self, why: String) {
        self.lock().local_error = Some(why);
    }

    /// Counts every item of the local MultiCasskop watch as a sign of life.
    pub fn follow_local_watch<S: Stream>(&self, stream: S) -> impl Stream<Item = S::Item> + use<S> {
        let liveness = self.clone();
        stream.inspect(move |_| liveness.local_alive())
    }

    /// `Ok` while nothing is stuck past the limit at `now`, else the oldest stuck thing.
    pub fn check(&self, now: Instant) -> Result<(), Wedged> {
        let s = self.lock();
        let oldest = s
            .running
            .values()
            .map(|(key, since)| (key, now.saturating_duration_since(*since)))
            .max_by_key(|(_, running)| *running);
        if let Some((key, running)) = oldest.filter(|(_, r)| *r > self.limit) {
            return Err(Wedged::Reconcile {
                key: key.clone(),
                running,
                limit: self.limit,
            });
        }
        let silent = now.saturating_duration_since(s.local_alive);
        if silent > self.limit {
            return Err(Wedged::LocalWatch {
                silent,
                last_error: s.local_error.clone(),
                limit: self.limit,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconcile_running_past_the_limit_is_reported_until_it_ends() {
        let l = Liveness::new(Duration::from_secs(10));
        let start = Instant::now();
        let running = l.reconcile_started("ns/stuck");
        l.local_alive();
        assert_eq!(l.check(start + Duration::from_secs(5)), Ok(()));
        let err = l.check(start + Duration::from_secs(30)).unwrap_err();
        assert!(
            err.to_string()
                .contains("reconcile of MultiCasskop ns/stuck has been running for"),
            "{err}"
        );
        drop(running);
        l.local_alive();
        assert_eq!(l.check(Instant::now()), Ok(()));
    }

    #[test]
    fn a_silent_local_watch_with_an_unanswering_api_server_is_reported_until_it_answers() {
        let l = Liveness::new(Duration::from_secs(10));
        let start = Instant::now();
        l.local_failed("GET /version: no response within 10s".into());
        let err = l.check(start + Duration::from_secs(11)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("local MultiCasskop watch has shown no sign of life")
                && text.contains("GET /version: no response within 10s"),
            "{text}"
        );
        l.local_alive();
        assert_eq!(l.check(Instant::now()), Ok(()));
    }
}
