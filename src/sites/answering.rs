//! Whether a site still answers: a watch that falls silent is checked with one cheap request
//! under the request deadline, so a site that accepts connections and answers nothing (a wedged
//! API server, a firewall dropping packets) is found within a probe period plus a deadline.
//!
//! A silent watch alone says nothing (an idle namespace sends no events, and bookmarks never
//! reach the watcher's stream), so the probe is what tells a quiet site from a frozen one.
//!
//! Over HTTP/2 with PING keep-alive (`--site-keepalive`) the connection under the watch is
//! checked without requests: a PING unanswered within the request deadline closes it and fails
//! the watch. A watch's first probe, as it starts, tells which: one that came back over HTTP/2
//! is the last; a site (or a proxy on the way) speaking only HTTP/1.1 is probed every period.

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

/// How a watch's connection is checked.
enum Check {
    /// The first probe, sent when the watch starts, is on its way: its answer says whether the
    /// site's connection is PING-checked.
    Learning(futures::future::BoxFuture<'static, Result<http::Version, NotAnswering>>),
    /// HTTP/2 with PING keep-alive: a quiet watch sends nothing.
    Pinged,
    /// HTTP/1.1 (or keep-alive off): a quiet watch probes every period.
    Probed,
}

/// A PING-checked HTTP/2 connection closed under a watch.
#[derive(thiserror::Error, Debug)]
#[error(
    "timed out or closed: its HTTP/2 connection was lost (a PING unanswered within {request}s closes it): {cause}"
)]
pub struct ConnectionLost {
    /// `--request-timeout`, in seconds.
    pub request: f64,
    /// What the watch stream met, in one line.
    pub cause: String,
}

/// `events` as they come; when nothing comes for the quiet-watch period (`--site-probe-period`),
/// the site is asked for its version, and an unanswered probe ends the stream with a watch
/// error naming it (the caller restarts the watch and reports the site unreachable). One probe
/// is sent as the watch starts (while the site is busy with its list anyway): when it comes
/// back over a PING-checked HTTP/2 connection, quiet periods send nothing, and a broken
/// watch stream says its connection was lost and why it may have been. That first probe
/// failing ends nothing: the watch's own list meets the same deadlines.
pub fn probed<S, T>(
    events: S,
    client: kube::Client,
) -> impl Stream<Item = Result<T, watcher::Error>> + Send
where
    S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
    T: Send,
{
    let events = Box::pin(events);
    let first = {
        let client = client.clone();
        Check::Learning(Box::pin(async move { probe(&client).await }))
    };
    futures::stream::unfold(Some((events, client, first)), |state| async move {
        let (mut events, client, mut check) = state?;
        let d = deadlines::current();
        loop {
            let next = match &mut check {
                Check::Learning(first) => tokio::select! {
                    item = events.next() => Ok(item),
                    version = first => {
                        let pinged = d.keepalive.is_some()
                            && version.is_ok_and(|v| v == http::Version::HTTP_2);
                        check = if pinged { Check::Pinged } else { Check::Probed };
                        continue;
                    }
                },
                Check::Pinged => Ok(events.next().await),
                Check::Probed => tokio::time::timeout(d.quiet_watch, events.next()).await,
            };
            match next {
                // A PING-checked connection that died takes its watch with it, saying only that
                // the stream broke: say why it may have (no probe here: it would keep the site
                // unreported for one more deadline while reconciles wait on it).
                Ok(Some(Err(watcher::Error::WatchFailed(kube::Error::ReadEvents(e)))))
                    if matches!(check, Check::Pinged) =>
                {
                    let lost = ConnectionLost {
                        request: d.request.as_secs_f64(),
                        cause: e.to_string(),
                    };
                    let failed = kube::Error::Service(Box::new(lost));
                    return Some((Err(watcher::Error::WatchFailed(failed)), None));
                }
                Ok(Some(item)) => return Some((item, Some((events, client, check)))),
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

/// One `GET /version` under the client's deadlines; the HTTP version it came back over.
pub async fn probe(client: &kube::Client) -> Result<http::Version, NotAnswering> {
    let not_answering = |cause: String| {
        let d = deadlines::current();
        NotAnswering {
            connect: d.connect.as_secs_f64(),
            request: d.request.as_secs_f64(),
            cause,
        }
    };
    let request = http::Request::get("/version")
        .body(kube::client::Body::empty())
        .map_err(|e| not_answering(e.to_string()))?;
    let response = client
        .send(request)
        .await
        .map_err(|e| not_answering(crate::kube_error::brief(&e)))?;
    let (status, version) = (response.status(), response.version());
    // Read to the end: an HTTP/1.1 connection is reused only once its response is consumed.
    let body = response.into_body().collect_bytes().await;
    if !status.is_success() {
        return Err(not_answering(format!("GET /version: HTTP {status}")));
    }
    body.map_err(|e| not_answering(crate::kube_error::brief(&e)))?;
    Ok(version)
}
