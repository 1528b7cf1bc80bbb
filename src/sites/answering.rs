//! Whether a site still answers: a watch that falls silent is checked with one cheap request
//! under the request deadline, so a site that accepts connections and answers nothing (a wedged
//! API server, a firewall dropping packets) is found within a probe period plus a deadline.
//!
//! A silent watch alone says nothing (an idle namespace sends no events, and bookmarks never
//! reach the watcher's stream), so the probe is what tells a quiet site from a frozen one.

use futures::{Stream, StreamExt};
use kube::runtime::watcher;

use crate::sites::deadlines;

/// A site that did not answer the probe of a quiet watch.
#[derive(thiserror::Error, Debug)]
#[error(
    "not answering GET /version within the deadlines (connect {connect}s, request {request}s): {cause}"
)]
pub struct NotAnswering {
    /// `--connect-timeout`, in seconds.
    pub connect: f64,
    /// `--request-timeout`, in seconds.
    pub request: f64,
    /// What the request met, in one line.
    pub cause: String,
}

/// `events` as they come; when nothing comes for the quiet-watch period (`--site-probe-period`),
/// the site is asked for its version, and an unanswered probe ends the stream with a watch
/// error naming it (the caller restarts the watch and reports the site unreachable).
pub fn probed<S, T>(
    events: S,
    client: kube::Client,
) -> impl Stream<Item = Result<T, watcher::Error>> + Send
where
    S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
    T: Send,
{
    let events = Box::pin(events);
    futures::stream::unfold(Some((events, client)), |state| async move {
        let (mut events, client) = state?;
        let period = deadlines::current().quiet_watch;
        loop {
            match tokio::time::timeout(period, events.next()).await {
                Ok(Some(item)) => return Some((item, Some((events, client)))),
                Ok(None) => return None,
                Err(_quiet) => {
                    if let Err(e) = probe(&client).await {
                        let failed = kube::Error::Service(Box::new(e));
                        return Some((Err(watcher::Error::WatchFailed(failed)), None));
                    }
                }
            }
        }
    })
}

/// One `GET /version` under the client's deadlines.
pub async fn probe(client: &kube::Client) -> Result<(), NotAnswering> {
    client.apiserver_version().await.map(drop).map_err(|e| {
        let d = deadlines::current();
        NotAnswering {
            connect: d.connect.as_secs_f64(),
            request: d.request.as_secs_f64(),
            cause: crate::kube_error::brief(&e),
        }
    })
}
