//! Whether a site still answers: a watch that falls silent is checked with one cheap request
//! under the request deadline, so a site that accepts connections and answers nothing (a wedged
//! API server, a firewall dropping packets) is found within a probe period plus a deadline.
//!
//! A silent watch alone says nothing (an idle namespace sends no events, and bookmarks never
//! reach the watcher's stream), so the probe is what tells a quiet site from a frozen one.

use std::time::Duration;

use futures::{Stream, StreamExt};

/// Default of `--site-probe-period`: a watch quiet this long is checked. With the default
/// request deadline (10 s) a frozen site is reported within 20 s, inside the 30 s promised,
/// at the cost of one `GET /version` per quiet watch every 10 s.
pub const DEFAULT_PROBE_PERIOD: Duration = Duration::from_secs(10);

/// The next item of `events`; when nothing comes for `period`, the site is asked for its
/// version: `Err` (the request and why it failed) when it does not answer, else the wait goes
/// on.
pub async fn next_or_unanswered<S>(
    events: &mut S,
    client: &kube::Client,
    period: Duration,
) -> Result<Option<S::Item>, String>
where
    S: Stream + Unpin,
{
    loop {
        match tokio::time::timeout(period, events.next()).await {
            Ok(next) => return Ok(next),
            Err(_quiet) => probe(client).await?,
        }
    }
}

/// One `GET /version` under the client's deadlines; `Err` names the request, the deadlines and
/// the cause (a connect deadline's own words, "deadline has elapsed", say little alone).
pub async fn probe(client: &kube::Client) -> Result<(), String> {
    client.apiserver_version().await.map(drop).map_err(|e| {
        let d = crate::sites::deadlines::current();
        format!(
            "not answering GET /version within the deadlines (connect {}s, request {}s): {}",
            d.connect.as_secs_f64(),
            d.request.as_secs_f64(),
            crate::kube_error::brief(&e)
        )
    })
}
