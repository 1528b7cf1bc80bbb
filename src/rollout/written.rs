//! Our last write to each MultiCasskop, remembered until the controller's cache shows it.

use std::collections::HashMap;
use std::sync::Mutex;

/// resourceVersion of our last write to each MultiCasskop `ns/name`, until the controller's
/// cache shows it: a reconcile must never build on a status older than its own last write (it
/// would drop the applied mark just recorded and apply again).
#[derive(Default)]
pub struct WrittenVersions(Mutex<HashMap<String, String>>);

impl WrittenVersions {
    /// Remember the resourceVersion a write of ours returned.
    pub fn remember(&self, key: &str, resource_version: Option<String>) {
        if let Some(rv) = resource_version {
            self.0
                .lock()
                .expect("written lock")
                .insert(key.to_string(), rv);
        }
    }
    /// `Some(rv)` while the cached object (`cached_rv`) is not the one our last write made;
    /// forgets the write once the cache shows it.
    pub fn unseen(&self, key: &str, cached_rv: Option<&str>) -> Option<String> {
        let mut w = self.0.lock().expect("written lock");
        match w.get(key) {
            Some(rv) if Some(rv.as_str()) == cached_rv => {
                w.remove(key);
                None
            }
            other => other.cloned(),
        }
    }
    /// Forget an object (deleted).
    pub fn forget(&self, key: &str) {
        self.0.lock().expect("written lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_stays_unseen_until_the_cache_shows_its_version() {
        let w = WrittenVersions::default();
        assert_eq!(
            w.unseen("ns/a", Some("5")),
            None,
            "no write of ours: trust the cache"
        );
        w.remember("ns/a", Some("7".into()));
        assert_eq!(
            w.unseen("ns/a", Some("5")).as_deref(),
            Some("7"),
            "cache behind"
        );
        assert_eq!(
            w.unseen("ns/a", Some("5")).as_deref(),
            Some("7"),
            "still behind"
        );
        assert_eq!(w.unseen("ns/b", Some("5")), None, "per object");
        assert_eq!(w.unseen("ns/a", Some("7")), None, "cache caught up");
        assert_eq!(w.unseen("ns/a", Some("5")), None, "forgotten once seen");
        w.remember("ns/a", None);
        assert_eq!(
            w.unseen("ns/a", Some("5")),
            None,
            "no version returned: nothing to wait for"
        );
    }
}
