//! Kube errors in one line each: the API server's message and code, or the transport's cause.

use kube::runtime::watcher;

/// A kube error in one line: the API server's message and code, not the whole Status dump.
pub fn brief(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => {
            format!("{} ({} {})", s.message, s.code, s.reason)
        }
        other => {
            // Transport errors hide the cause (connection refused, certificate) in the chain.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let more = s.to_string();
                if !text.contains(&more) {
                    text = format!("{text}: {more}");
                }
                source = s.source();
            }
            text
        }
    }
}

/// A watch failure in one line (the API server's message, not a Status dump).
pub fn watch_brief(e: &watcher::Error) -> String {
    match e {
        watcher::Error::InitialListFailed(e) => format!("list failed: {}", brief(e)),
        watcher::Error::WatchStartFailed(e) => format!("watch failed to start: {}", brief(e)),
        watcher::Error::WatchFailed(e) => format!("watch failed: {}", brief(e)),
        watcher::Error::WatchError(s) => {
            format!("watch error: {} ({} {})", s.message, s.code, s.reason)
        }
        other => other.to_string(),
    }
}

/// The API server answered 410 Gone (resourceVersion too old): a re-list, not a failure.
pub fn is_gone(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code == 410,
        watcher::Error::WatchError(s) => s.code == 410,
        _ => false,
    }
}

/// The list itself answered 404: the API does not serve the resource (its CRD is absent).
pub fn is_not_served(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::InitialListFailed(kube::Error::Api(s)) if s.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> kube::core::Status {
        let mut s = kube::core::Status::failure(message, "Expired");
        s.code = code;
        s
    }

    #[test]
    fn gone_is_told_apart_from_real_watch_failures() {
        let gone =
            watcher::Error::WatchStartFailed(kube::Error::Api(Box::new(status(410, "too old"))));
        assert!(is_gone(&gone));
        assert!(is_gone(&watcher::Error::WatchError(Box::new(status(
            410, "too old"
        )))));
        let denied =
            watcher::Error::InitialListFailed(kube::Error::Api(Box::new(status(403, "forbidden"))));
        assert!(!is_gone(&denied));
        let text = watch_brief(&denied);
        assert!(text.starts_with("list failed: forbidden (403"), "{text}");
    }
}
