//! The HTTP stack under the kube clients this process builds: kube's own layers (base URI,
//! retries of 429/503 when asked, authorization, extra headers, tracing) over a hyper client
//! that offers HTTP/2 by ALPN and checks its HTTP/2 connections with PING frames.
//!
//! Why not kube's `ClientBuilder::try_from`: its connector offers HTTP/1.1 only, and over
//! HTTP/1.1 a connection that falls silent (a frozen API server, a firewall dropping packets)
//! can only be told from a quiet one by sending a request, which is what the quiet-watch probe
//! of `answering` costs (a `GET /version` per site watch and period). Over HTTP/2 a PING
//! unanswered within the request deadline closes the connection and fails every request on it,
//! watches included, as client-go does (`ReadIdleTimeout`, `PingTimeout`); PING frames are not
//! API requests.
//!
//! TLS and credentials are kube's, unchanged: the rustls configuration (CA, client identity,
//! server name) and the authorization layer come from kube's `ConfigExt`; only the ALPN offer
//! differs. Credentials from an exec plugin (a client certificate with an expiry kube tracks)
//! and proxies keep kube's own stack, HTTP/1.1.

use std::time::Duration;

use http::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::{Body, ClientBuilder, ConfigExt, DynBody};
use tower::util::BoxService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_http::ServiceExt as _;
use tower_http::trace::TraceLayer;

/// kube's service type: what the client's layers are stacked on.
pub type Service = BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

/// HTTP/2 PING keep-alive of a client's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// A PING is sent when nothing was received on a connection for this long.
    pub interval: Duration,
    /// A PING unanswered this long closes the connection (every request on it fails).
    pub timeout: Duration,
}

/// kube's client stack for `config`; with `keepalive`, HTTP/2 offered by ALPN and its
/// connections PING-checked, else HTTP/1.1 only (as kube's own builder).
pub fn builder(
    config: kube::Config,
    keepalive: Option<Keepalive>,
) -> Result<ClientBuilder<Service>, kube::Error> {
    let kube_own = config.proxy_url.is_some() || config.auth_info.exec.is_some();
    let Some(keepalive) = keepalive.filter(|_| !kube_own) else {
        return ClientBuilder::try_from(config);
    };
    let hyper_client = Split {
        multiplexed: hyper_client(&config, Some(keepalive))?,
        upgradable: hyper_client(&config, None)?,
    };
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.default_retry.then(|| {
            tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry())
        }))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(span)
                .on_request(on_request)
                .on_response(on_response)
                .on_body_chunk(())
                .on_eos(on_eos)
                .on_failure(on_failure),
        )
        .map_err(BoxError::from)
        .service(hyper_client)
        .map_response_body(|body| {
            Box::new(http_body_util::BodyExt::map_err(body, BoxError::from)) as Box<DynBody>
        })
        .boxed();
    Ok(ClientBuilder::new(service, config.default_namespace))
}

/// The two hyper clients under one client's layers: requests asking to switch protocols
/// (`pods/exec`, `attach`, `portforward` over WebSocket) go over HTTP/1.1 connections of their
/// own, the others over connections that may speak HTTP/2. HTTP/2 has no `Upgrade` (RFC 9113
/// 8.2.2: a server must refuse it), so an exec sent on an HTTP/2 connection reaches the API
/// server without it and is refused; client-go keeps a separate HTTP/1.1 transport for these
/// requests too.
#[derive(Clone)]
struct Split {
    multiplexed: HyperClient,
    upgradable: HyperClient,
}

impl tower::Service<Request<Body>> for Split {
    type Response = Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // hyper's legacy client is always ready: it queues on its pool, per request.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if request.headers().contains_key(http::header::UPGRADE) {
            self.upgradable.request(request)
        } else {
            self.multiplexed.request(request)
        }
    }
}

/// hyper's client over kube's TLS settings, with kube's connect/read/write timeouts; with
/// `keepalive`, HTTP/2 offered by ALPN and its connections PING-checked, else HTTP/1.1 only.
fn hyper_client(
    config: &kube::Config,
    keepalive: Option<Keepalive>,
) -> Result<HyperClient, kube::Error> {
    let mut timed = hyper_timeout::TimeoutConnector::new(connector(config, keepalive.is_some())?);
    timed.set_connect_timeout(config.connect_timeout);
    timed.set_read_timeout(config.read_timeout);
    timed.set_write_timeout(config.write_timeout);
    timed.set_reset_reader_on_write(config.reset_reader_on_write);
    let mut builder = hyper_util::client::legacy::Builder::new(TokioExecutor::new());
    if let Some(keepalive) = keepalive {
        builder
            // hyper's HTTP/2 keep-alive needs a timer; without one no PING is ever sent.
            .timer(TokioTimer::new())
            .http2_keep_alive_interval(keepalive.interval)
            .http2_keep_alive_timeout(keepalive.timeout)
            // A site watch is an open stream, but a connection whose streams all ended is
            // checked too: the next request would otherwise be the one to find it dead.
            .http2_keep_alive_while_idle(true);
    }
    Ok(builder.build(timed))
}

type HyperClient = hyper_util::client::legacy::Client<
    hyper_timeout::TimeoutConnector<hyper_rustls::HttpsConnector<HttpConnector>>,
    Body,
>;

/// kube's TLS connector settings with ALPN offering HTTP/2 then HTTP/1.1 (the server picks),
/// or HTTP/1.1 only.
fn connector(
    config: &kube::Config,
    http2: bool,
) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, kube::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    // Without it an HTTP/2 request costs 40 ms more: its HEADERS and DATA frames leave in two
    // writes, Nagle holds the second until the first is acknowledged, and the server delays
    // that acknowledgement (HTTP/1.1 writes a request at once, so kube's stack never noticed).
    http.set_nodelay(true);
    let tls = config.rustls_client_config()?;
    let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(kube::client::RustlsTlsError::InvalidServerName)
            .map_err(kube::Error::RustlsTls)?;
        builder =
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    Ok(if http2 {
        builder.enable_all_versions().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    })
}

/// kube's own tracing of a request, kept as kube's builder has it: a debug span `HTTP` with
/// method, URL and status, and an error event for a failure (5xx, or no response).
fn span(req: &Request<Body>) -> tracing::Span {
    tracing::debug_span!(
        "HTTP",
        http.method = %req.method(),
        http.url = %req.uri(),
        http.status_code = tracing::field::Empty,
        otel.name = req.extensions().get::<&'static str>().unwrap_or(&"HTTP"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
    )
}

fn on_request(_req: &Request<Body>, _span: &tracing::Span) {
    tracing::debug!("requesting");
}

fn on_response(res: &Response<hyper::body::Incoming>, _latency: Duration, span: &tracing::Span) {
    let status = res.status();
    span.record("http.status_code", status.as_u16());
    if status.is_client_error() || status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

fn on_eos(_trailers: Option<&http::HeaderMap>, _duration: Duration, _span: &tracing::Span) {
    tracing::debug!("stream closed");
}

fn on_failure(
    class: tower_http::classify::ServerErrorsFailureClass,
    _latency: Duration,
    span: &tracing::Span,
) {
    span.record("otel.status_code", "ERROR");
    match class {
        tower_http::classify::ServerErrorsFailureClass::StatusCode(status) => {
            span.record("http.status_code", status.as_u16());
            tracing::error!("failed with status {status}");
        }
        tower_http::classify::ServerErrorsFailureClass::Error(err) => {
            tracing::error!("failed with error {err}");
        }
    }
}
