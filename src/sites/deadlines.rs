//! Request deadlines of every client this process builds: connect, time to response headers.
//!
//! kube's client has no deadline by default: a site that accepts connections and never answers
//! (a wedged API server, a firewall dropping packets) would hold the caller forever. Every client
//! is built by [`build_client`], which bounds the connection (TCP and TLS) and the time from
//! sending a request to its response headers. Watches are long requests: only their start is
//! bounded here; a watch that falls silent is restarted by kube's watcher (the short server
//! timeout of [`watch_config`] plus a margin) and, for sites, by the site watch's probe (see
//! `rollout::site_caches`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use std::time::Instant;

use tower::{BoxError, Layer, Service};

use super::transport::{self, Keepalive};

/// Default bound on TCP connect plus TLS handshake. API servers answer a handshake in
/// milliseconds; 5 s leaves room for a lost SYN (retransmitted after 1 s, then 3 s).
pub const DEFAULT_CONNECT: Duration = Duration::from_secs(5);
/// Default bound from sending a request to its response headers. An API server answers
/// reads and writes of single objects well under a second; 10 s tolerates a loaded one while
/// keeping "site stops answering" to "reported" within 30 s (probe period + this + a reconcile).
pub const DEFAULT_REQUEST: Duration = Duration::from_secs(10);

/// Default of `--site-probe-period`: a site watch quiet this long is checked. With the default
/// request deadline a frozen site is reported within 20 s, inside the 30 s promised, at the
/// cost of one `GET /version` per quiet site watch every 10 s over HTTP/1.1 (over HTTP/2 PINGs
/// do it: see [`DEFAULT_KEEPALIVE`]).
pub const DEFAULT_QUIET_WATCH: Duration = Duration::from_secs(10);

/// Default of `--site-keepalive`: an HTTP/2 connection that received nothing for this long is
/// sent a PING, and one unanswered within the request deadline closes the connection (its
/// watches fail, the site is reported). With the default request deadline a frozen site is
/// found within 20 s, as by the quiet-watch probe, for one PING frame per connection and 10 s
/// instead of one `GET /version` per site watch and 10 s.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);

/// The deadlines applied to every client built afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// TCP connect plus TLS handshake.
    pub connect: Duration,
    /// From sending a request to its response headers (retries of 429/503 included).
    pub request: Duration,
    /// A site watch quiet this long checks that its site still answers (see `answering`).
    pub quiet_watch: Duration,
    /// HTTP/2 offered, its connections sent a PING when they received nothing for this long
    /// (unanswered within `request`: closed); `None`: HTTP/1.1 only.
    pub keepalive: Option<Duration>,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            connect: DEFAULT_CONNECT,
            request: DEFAULT_REQUEST,
            quiet_watch: DEFAULT_QUIET_WATCH,
            keepalive: Some(DEFAULT_KEEPALIVE),
        }
    }
}

/// How long the API server keeps one watch request open (`timeoutSeconds`). kube's watcher
/// takes a watch silent for this plus 5 s as a dead connection and starts a new one from where
/// it was (no re-list): a watch whose connection died without a close (a partition that
/// dropped packets, a NAT entry gone) resumes within about a minute, well before `/healthz`
/// would give up on it, instead of kube's default of about five minutes. The cost is one watch
/// request per watch and minute.
pub const WATCH_TIMEOUT_SECS: u32 = 60;

/// The watcher configuration every watch of this process starts from (see
/// [`WATCH_TIMEOUT_SECS`]).
pub fn watch_config() -> kube::runtime::watcher::Config {
    kube::runtime::watcher::Config::default().timeout(WATCH_TIMEOUT_SECS)
}

static INSTALLED: OnceLock<Deadlines> = OnceLock::new();

/// Set the deadlines of this process (the command's flags), before any client is built. Only
/// the first call counts: clients built earlier would otherwise disagree with later ones.
pub fn install(deadlines: Deadlines) {
    let _ = INSTALLED.set(deadlines);
}

/// The deadlines clients are built with: the installed ones, else the defaults.
pub fn current() -> Deadlines {
    INSTALLED.get().copied().unwrap_or_default()
}

/// A kube client for `config` with the [`current`] deadlines.
pub fn build_client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    build_client_with(config, current())
}

/// A kube client for `config` with deadlines `d`.
pub fn build_client_with(
    mut config: kube::Config,
    d: Deadlines,
) -> Result<kube::Client, kube::Error> {
    config.connect_timeout = Some(d.connect);
    // A server that stops reading (full socket buffers) must not hold a write either.
    config.write_timeout = Some(d.request);
    let keepalive = d.keepalive.map(|interval| Keepalive {
        interval,
        timeout: d.request,
    });
    let builder = transport::builder(config, keepalive)?;
    Ok(builder
        .with_layer(&DeadlineLayer {
            after: d.request,
            server: Arc::default(),
        })
        .build())
}

/// A request that got no response headers within its deadline.
#[derive(thiserror::Error, Debug)]
#[error("{method} {path}: timed out: no response within {}s (request deadline, --request-timeout)", .after.as_secs_f64())]
pub struct NoResponse {
    /// The request's method.
    pub method: String,
    /// The request's path (no query: it can be long and says little).
    pub path: String,
    /// The deadline that passed.
    pub after: Duration,
}

/// Requests that may wait on a server that has answered none of them; more wait for its first
/// answer (at most [`UNANSWERED_WAIT`]) instead of being sent. A healthy server answers in
/// milliseconds, so a burst only waits one round trip; a frozen one then holds only this many
/// callers (reconcile slots) until their deadline, the others at most [`UNANSWERED_WAIT`].
pub const MAX_UNANSWERED: usize = 4;
/// How long a request waits for a silent server's first answer before it is refused.
pub const UNANSWERED_WAIT: Duration = Duration::from_secs(1);

/// A request not sent because earlier ones to the same server have had no answer: it does not
/// answer (frozen, or packets dropped), and one more caller waiting the whole deadline on it
/// would only hold one more of the controller's reconcile slots.
#[derive(thiserror::Error, Debug)]
#[error("{method} {path}: not sent: timed out: {waiting} earlier request(s) to this API server have had no answer for {}s", .waited.as_secs_f64().round())]
pub struct NotAnswering {
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// How long the oldest unanswered request has waited.
    pub waited: Duration,
    /// Requests waiting for their response headers.
    pub waiting: usize,
}

/// What one client knows of its server's answers: requests waiting for their headers (watches
/// apart: they are long) and when headers last came back.
#[derive(Debug)]
struct Silence {
    next: u64,
    waiting: BTreeMap<u64, Instant>,
    last_answer: Instant,
}

impl Default for Silence {
    fn default() -> Self {
        Self {
            next: 0,
            waiting: BTreeMap::new(),
            last_answer: Instant::now(),
        }
    }
}

/// Whether a request may be sent now.
enum Verdict {
    Send,
    /// Wait this long at most for an answer to an earlier request, then ask again.
    WaitFor(Duration),
    /// Refuse: (how long the oldest unanswered request has waited, requests waiting).
    Refuse(Duration, usize),
}

impl Silence {
    /// Refuse when the server has answered nothing for a quarter of the deadline while a
    /// request waits since at least as long (a slow but working server keeps answering the
    /// others), or when [`MAX_UNANSWERED`] requests sent since its last answer wait on it.
    fn verdict(&self, now: Instant, deadline: Duration) -> Verdict {
        let unanswered: Vec<Instant> = self
            .waiting
            .values()
            .copied()
            .filter(|sent| *sent >= self.last_answer)
            .collect();
        let Some(oldest) = self.waiting.values().min().copied() else {
            return Verdict::Send;
        };
        let quiet = deadline / 4;
        let silent = now.saturating_duration_since(self.last_answer);
        let oldest_age = now.saturating_duration_since(oldest);
        if oldest_age >= quiet && silent >= quiet {
            return Verdict::Refuse(oldest_age.min(silent), self.waiting.len());
        }
        if unanswered.len() < MAX_UNANSWERED {
            return Verdict::Send;
        }
        let first = unanswered.iter().min().copied().unwrap_or(now);
        let age = now.saturating_duration_since(first);
        if age >= UNANSWERED_WAIT {
            Verdict::Refuse(age, self.waiting.len())
        } else {
            Verdict::WaitFor(UNANSWERED_WAIT - age)
        }
    }
}

/// One client's view of its server, shared by its requests.
#[derive(Debug)]
struct Server {
    silence: Mutex<Silence>,
    /// Counts answers, so a request waiting for one wakes when it comes.
    answers: tokio::sync::watch::Sender<u64>,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            silence: Mutex::default(),
            answers: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Server {
    fn lock(&self) -> std::sync::MutexGuard<'_, Silence> {
        self.silence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until the request may be sent (registering it as waiting), or refuses it.
    async fn admit(self: Arc<Self>, request: &Request) -> Result<Waiting, NotAnswering> {
        if request.watch {
            return Ok(Waiting {
                server: self,
                id: None,
            });
        }
        let mut answers = self.answers.subscribe();
        loop {
            answers.borrow_and_update();
            let verdict = self.lock().verdict(Instant::now(), request.deadline);
            match verdict {
                Verdict::Send => {
                    let mut s = self.lock();
                    s.next += 1;
                    let id = s.next;
                    s.waiting.insert(id, Instant::now());
                    drop(s);
                    return Ok(Waiting {
                        server: self,
                        id: Some(id),
                    });
                }
                Verdict::WaitFor(at_most) => {
                    let _ = tokio::time::timeout(at_most, answers.changed()).await;
                }
                Verdict::Refuse(waited, waiting) => {
                    return Err(NotAnswering {
                        method: request.method.clone(),
                        path: request.path.clone(),
                        waited,
                        waiting,
                    });
                }
            }
        }
    }
}

/// Forgets a waiting request when it ends (answered, failed or dropped).
struct Waiting {
    server: Arc<Server>,
    id: Option<u64>,
}

impl Waiting {
    fn answered(&self) {
        self.server.lock().last_answer = Instant::now();
        self.server.answers.send_modify(|n| *n += 1);
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.server.lock().waiting.remove(&id);
        }
    }
}

/// What the deadline layer needs of a request.
struct Request {
    method: String,
    path: String,
    /// A watch: long by design, so not counted as waiting.
    watch: bool,
    deadline: Duration,
}

impl Request {
    fn of<B>(req: &http::Request<B>, deadline: Duration) -> Self {
        Self {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            watch: req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1")),
            deadline,
        }
    }
}

/// Bounds each request's time to response headers, and holds back requests to a server that
/// answers none of those already sent (see [`Silence::verdict`]).
#[derive(Clone, Debug)]
struct DeadlineLayer {
    after: Duration,
    server: Arc<Server>,
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            after: self.after,
            server: self.server.clone(),
        }
    }
}

struct Deadline<S> {
    inner: S,
    after: Duration,
    server: Arc<Server>,
}

type Answer<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Answer<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let request = Request::of(&req, self.after);
        // The client's futures send nothing until polled: one refused here is never sent.
        let answer = self.inner.call(req);
        let server = self.server.clone();
        Box::pin(async move {
            let waiting = server.admit(&request).await.map_err(Box::new)?;
            match tokio::time::timeout(request.deadline, answer).await {
                Ok(r) => {
                    waiting.answered();
                    r.map_err(Into::into)
                }
                Err(_) => Err(Box::new(NoResponse {
                    method: request.method,
                    path: request.path,
                    after: request.deadline,
                }) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that accepts connections and never answers a byte.
    async fn silent_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_silent_server_with_requests_waiting_gets_no_more_requests_until_it_answers() {
        let (addr, _server) = silent_server().await;
        let mut config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        config.default_retry = false;
        let deadlines = Deadlines {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(2),
            ..Deadlines::default()
        };
        let client = build_client_with(config, deadlines).unwrap();
        let first = tokio::spawn({
            let client = client.clone();
            async move { client.apiserver_version().await }
        });
        tokio::time::sleep(Duration::from_millis(800)).await;
        let second = client.apiserver_version().await.unwrap_err();
        let text = crate::kube_error::brief(&second);
        assert!(
            text.contains("GET /version: not sent: timed out: 1 earlier request(s) to this API server have had no answer"),
            "{text}"
        );
        let first = first.await.unwrap().unwrap_err();
        assert!(crate::kube_error::brief(&first).contains("no response within 2s"));
    }

    #[tokio::test]
    async fn a_silent_server_holds_only_a_few_requests_the_others_are_refused() {
        let (addr, _server) = silent_server().await;
        let mut config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        config.default_retry = false;
        let deadlines = Deadlines {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(30),
            ..Deadlines::default()
        };
        let client = build_client_with(config, deadlines).unwrap();
        let held: Vec<_> = (0..MAX_UNANSWERED)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.apiserver_version().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let refused = client.apiserver_version().await.unwrap_err();
        let text = crate::kube_error::brief(&refused);
        assert!(
            text.contains("GET /version: not sent: timed out: 4 earlier request(s)"),
            "{text}"
        );
        assert!(
            held.iter().all(|h| !h.is_finished()),
            "the first ones still wait"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_fails_the_request_at_its_deadline() {
        let (addr, _server) = silent_server().await;
        let mut config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        config.default_retry = false;
        let deadlines = Deadlines {
            connect: Duration::from_secs(1),
            request: Duration::from_millis(300),
            ..Deadlines::default()
        };
        let client = build_client_with(config, deadlines).unwrap();
        let outcome =
            tokio::time::timeout(Duration::from_secs(20), client.apiserver_version()).await;
        let err = outcome.expect("the request ended by itself").unwrap_err();
        let text = crate::kube_error::brief(&err);
        assert!(
            text.contains("GET /version: timed out: no response within 0.3s"),
            "{text}"
        );
    }
}
