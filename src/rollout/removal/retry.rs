//! When a write CassKop refused (a leaving site's scale-down, a change at a site taking part) is
//! tried again: on the shared backoff policy, per MultiCasskop and site, forgotten once the
//! refusal is over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;

/// First wait before trying a refused scale-down again.
const MIN_RETRY: Duration = Duration::from_secs(2);
/// Longest wait between tries: the removal resumes at most this long after the replication
/// was changed.
const MAX_RETRY: Duration = Duration::from_secs(30);

struct Clock {
    delays: Backoff,
    next_try: Option<Instant>,
}

/// The retry clocks of refused writes, by `namespace/name/site`.
#[derive(Default)]
pub struct Retries {
    clocks: Mutex<HashMap<String, Clock>>,
}

impl Retries {
    /// `None`: try again now. `Some(wait)`: not yet. The first call after a refusal starts the
    /// wait; each try is followed by a longer one while CassKop keeps refusing.
    pub fn due(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut clocks = self.clocks.lock().expect("retries lock");
        let clock = clocks.entry(key.to_string()).or_insert_with(|| Clock {
            delays: Backoff::new(MIN_RETRY, MAX_RETRY),
            next_try: None,
        });
        match clock.next_try {
            None => {
                let wait = clock.delays.next_delay();
                clock.next_try = Some(now + wait);
                Some(wait)
            }
            Some(at) if now < at => Some(at - now),
            Some(_) => {
                clock.next_try = None;
                None
            }
        }
    }

    /// Whether a clock runs for `key` (a refusal seen and not forgotten).
    pub fn knows(&self, key: &str) -> bool {
        self.clocks.lock().expect("retries lock").contains_key(key)
    }

    /// The refusal is over (accepted, or the site is gone): start afresh next time.
    pub fn forget(&self, key: &str) {
        self.clocks.lock().expect("retries lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_scale_down_waits_then_is_due_then_waits_longer() {
        let r = Retries::default();
        let t0 = Instant::now();
        assert_eq!(r.due("k", t0), Some(MIN_RETRY));
        assert_eq!(
            r.due("k", t0 + Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            r.due("k", t0 + MIN_RETRY),
            None,
            "due once the wait is over"
        );
        let t1 = t0 + MIN_RETRY + Duration::from_millis(10);
        assert_eq!(
            r.due("k", t1),
            Some(2 * MIN_RETRY),
            "refused again: a longer wait"
        );
        r.forget("k");
        assert_eq!(r.due("k", t1), Some(MIN_RETRY));
    }
}
