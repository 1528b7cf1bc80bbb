//! The write fence: every kube client of a leader-elected controller refuses writes once the Lease is not vouched for.
//!
//! Leader election alone does not stop a leader that lost contact with the local API server from
//! acting on its stale caches: its remote sites may still answer. So each client the controller
//! builds (the local one and every site's) sends its requests through [`WriteFence::wrap`], one
//! choke point no write path can go around. Reads (GET, LIST and WATCH are all `GET`) always
//! pass; a write passes only while the fence is open, and a write still in flight when the fence
//! closes is abandoned (the caller gets [`FenceError::ClosedInFlight`]).
//!
//! The fence is open until `start of the last successful renew + renew deadline`
//! ([`super::leader::LeaseTiming`]); a candidate takes over at the earliest `lease duration` after
//! it saw that renew land, which is after the renew started. With the renew deadline shorter than
//! the lease duration, the leader's writes stop before any other replica's can begin.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kube::client::Body;
use tokio::sync::watch;
use tokio::time::Instant;

/// Whether `method` only reads (GET also carries LIST and WATCH): reads never need the fence.
pub fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether writes may be sent at `now`, given the instant the fence is open until (pure).
pub fn allows_writes(open_until: Option<Instant>, now: Instant) -> bool {
    open_until.is_some_and(|until| now < until)
}

/// A write the fence refused.
#[derive(thiserror::Error, Debug)]
pub enum FenceError {
    /// The write was not sent: this replica's lease was not renewed within the renew deadline
    /// (or was never acquired, or was lost).
    #[error(
        "site {site}: refused {method} {path}: this replica no longer holds {lease} (not renewed within the renew deadline); another replica may be leading"
    )]
    Closed {
        site: String,
        method: Method,
        path: String,
        lease: String,
    },
    /// The write was sent but had no answer yet when the fence closed: the wait was abandoned.
    #[error(
        "site {site}: abandoned {method} {path} in flight: this replica stopped holding {lease} before the answer came"
    )]
    ClosedInFlight {
        site: String,
        method: Method,
        path: String,
        lease: String,
    },
}

/// The shared gate; cheap to clone. Starts closed: nothing is written before the lease is held.
#[derive(Clone, Debug)]
pub struct WriteFence {
    open_until: Arc<watch::Sender<Option<Instant>>>,
    /// `Lease ns/name`, for messages.
    lease: Arc<str>,
}

impl WriteFence {
    /// A closed fence for the Lease `namespace/name`.
    pub fn closed(namespace: &str, name: &str) -> Self {
        Self {
            open_until: Arc::new(watch::Sender::new(None)),
            lease: format!("Lease {namespace}/{name}").into(),
        }
    }

    /// Opens the fence until `until` (never moves it backwards: a slow renew that started
    /// earlier cannot shorten what a later one granted).
    pub fn open_until(&self, until: Instant) {
        self.open_until.send_if_modified(|current| {
            if current.is_some_and(|c| c >= until) {
                return false;
            }
            *current = Some(until);
            true
        });
    }

    /// Closes the fence for good: the lease is lost or given up.
    pub fn close(&self) {
        self.open_until.send_replace(None);
    }

    /// The instant the fence is open until (`None`: closed).
    pub fn deadline(&self) -> Option<Instant> {
        *self.open_until.borrow()
    }

    /// Whether writes may be sent now.
    pub fn is_open(&self) -> bool {
        allows_writes(*self.open_until.borrow(), Instant::now())
    }

    /// `client`, with every write checked by this fence; `site` names it in refusals.
    pub fn wrap(&self, site: &str, client: kube::Client) -> kube::Client {
        let valid_until = *client.valid_until();
        let namespace = client.default_namespace().to_string();
        let fenced = Fenced {
            client,
            fence: self.clone(),
            site: site.into(),
        };
        kube::Client::new(fenced, namespace).with_valid_until(valid_until)
    }

    /// Runs `fut` while the fence stays open; `Err(())` as soon as it closes first. The deadline
    /// is re-read whenever it passes or changes, since a renew keeps moving it forward.
    async fn while_open<F: Future>(&self, fut: F) -> Result<F::Output, ()> {
        let mut changes = self.open_until.subscribe();
        let mut fut = std::pin::pin!(fut);
        loop {
            let until = *changes.borrow_and_update();
            let Some(until) = until.filter(|u| Instant::now() < *u) else {
                return Err(());
            };
            tokio::select! {
                out = &mut fut => return Ok(out),
                () = tokio::time::sleep_until(until) => {}
                _ = changes.changed() => {}
            }
        }
    }

    fn error(&self, site: &str, method: Method, path: String, in_flight: bool) -> FenceError {
        let (site, lease) = (site.to_string(), self.lease.to_string());
        if in_flight {
            FenceError::ClosedInFlight {
                site,
                method,
                path,
                lease,
            }
        } else {
            FenceError::Closed {
                site,
                method,
                path,
                lease,
            }
        }
    }
}

/// The service under a fenced client: the unfenced client, asked only when the fence allows.
#[derive(Clone)]
struct Fenced {
    client: kube::Client,
    fence: WriteFence,
    site: Arc<str>,
}

impl tower::Service<Request<Body>> for Fenced {
    type Response = Response<Body>;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, tower::BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if is_read(request.method()) {
                return Ok(this.client.send(request).await?);
            }
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            if !this.fence.is_open() {
                tracing::warn!(site = %this.site, %method, %path, "write refused: leadership not confirmed");
                return Err(this.fence.error(&this.site, method, path, false).into());
            }
            match this.fence.while_open(this.client.send(request)).await {
                Ok(answer) => Ok(answer?),
                Err(()) => {
                    tracing::warn!(site = %this.site, %method, %path, "write abandoned: leadership not confirmed");
                    Err(this.fence.error(&this.site, method, path, true).into())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reads_are_get_head_and_options_only() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(is_read(&m), "{m}");
        }
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(!is_read(&m), "{m}");
        }
    }

    #[test]
    fn writes_are_allowed_strictly_before_the_deadline_and_never_without_one() {
        let now = Instant::now();
        assert!(!allows_writes(None, now));
        assert!(allows_writes(Some(now + Duration::from_millis(1)), now));
        assert!(!allows_writes(Some(now), now));
        assert!(!allows_writes(Some(now - Duration::from_secs(1)), now));
    }

    #[tokio::test]
    async fn the_fence_never_moves_backwards_and_closes_for_good() {
        let fence = WriteFence::closed("ns", "lease");
        assert!(!fence.is_open(), "closed until the lease is held");
        let now = Instant::now();
        fence.open_until(now + Duration::from_secs(10));
        fence.open_until(now + Duration::from_secs(5));
        assert_eq!(
            fence.deadline(),
            Some(now + Duration::from_secs(10)),
            "an older renew does not shorten the fence"
        );
        assert!(fence.is_open());
        fence.close();
        assert!(!fence.is_open());
        assert_eq!(fence.deadline(), None);
    }

    #[tokio::test]
    async fn a_write_in_flight_is_abandoned_when_the_fence_closes_but_survives_renewals() {
        let ms = Duration::from_millis;
        let fence = WriteFence::closed("ns", "lease");
        fence.open_until(Instant::now() + ms(400));
        let renewer = fence.clone();
        // Renewed at 100 ms for 600 ms more: a 500 ms write completes.
        tokio::spawn(async move {
            tokio::time::sleep(ms(100)).await;
            renewer.open_until(Instant::now() + ms(600));
        });
        let slow = tokio::time::sleep(ms(500));
        assert_eq!(fence.while_open(slow).await, Ok(()));
        // No renewal after that: the fence closes under a write that never answers.
        let hung = std::future::pending::<()>();
        assert_eq!(fence.while_open(hung).await, Err(()));
        assert!(!fence.is_open());
    }

    #[tokio::test]
    async fn a_fenced_client_refuses_writes_naming_site_and_path_but_reads_pass() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::api::{Api, PostParams};

        // Nothing listens there: whatever passes the fence fails to connect instead.
        let config = kube::Config::new("http://127.0.0.1:1".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let fence = WriteFence::closed("cassandra", "multi-casskop");
        let api: Api<ConfigMap> = Api::namespaced(fence.wrap("k8s-cluster2", client), "cassandra");
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "cm"}}))
            .expect("ConfigMap");

        let refused = api.create(&PostParams::default(), &cm).await.unwrap_err();
        assert!(
            refused.to_string().contains(
                "site k8s-cluster2: refused POST /api/v1/namespaces/cassandra/configmaps: this replica no longer holds Lease cassandra/multi-casskop"
            ),
            "{refused}"
        );
        let read = api.get("cm").await.unwrap_err().to_string();
        assert!(!read.contains("refused"), "reads are not fenced: {read}");

        fence.open_until(Instant::now() + Duration::from_secs(60));
        let sent = api
            .create(&PostParams::default(), &cm)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            !sent.contains("refused"),
            "an open fence lets writes out: {sent}"
        );
    }
}
