//! When a watch that allows bookmarks gets one, as kube-apiserver's watch cache sends them:
//! roughly every minute, and 2 s before the watch's deadline (`timeoutSeconds`), so a client
//! resumes from a recent resourceVersion (the cacher's `nextBookmarkTime`).

use std::time::Duration;

use tokio::time::Instant;

/// How often an open watch gets a bookmark (kube-apiserver's `defaultBookmarkFrequency`).
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// How long before its deadline a watch gets its last bookmark.
pub const BEFORE_DEADLINE: Duration = Duration::from_secs(2);

/// The next bookmark after `now` for a watch ending at `deadline`, or `None` when the
/// pre-deadline bookmark is already past.
pub fn next(now: Instant, deadline: Instant) -> Option<Instant> {
    let heartbeat = now + BOOKMARK_EVERY;
    let pretimeout = deadline.checked_sub(BEFORE_DEADLINE)?;
    let at = heartbeat.min(pretimeout);
    (at > now).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_watch_gets_one_bookmark_two_seconds_before_its_deadline() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(10);
        assert_eq!(next(now, deadline), Some(now + Duration::from_secs(8)));
        assert_eq!(next(now + Duration::from_secs(8), deadline), None);
    }

    #[test]
    fn a_long_watch_gets_a_bookmark_every_minute_then_one_before_its_deadline() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(150);
        let first = next(now, deadline).unwrap();
        assert_eq!(first, now + BOOKMARK_EVERY);
        let second = next(first, deadline).unwrap();
        assert_eq!(second, now + 2 * BOOKMARK_EVERY);
        assert_eq!(next(second, deadline), Some(now + Duration::from_secs(148)));
    }
}
