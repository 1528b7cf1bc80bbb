//! The probe and metrics endpoint: `/healthz`, `/readyz` and `/metrics` (port 8081 by default).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::runtime::liveness::Liveness;
use crate::runtime::metrics::Metrics;

/// What `/readyz` answers; shared between the controller and the HTTP server.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Mutex<ReadyState>>,
}

#[derive(Clone, Debug, Default)]
struct ReadyState {
    local_reachable: bool,
    /// `None`: this replica is not running the controller (standby, or no election), so caches
    /// do not count. `Some(false)`: leader whose caches are not synced yet.
    caches_synced: Option<bool>,
    reason: Option<String>,
}

impl Readiness {
    /// The local cluster answered (or stopped answering, with the reason).
    pub fn set_local_reachable(&self, reachable: bool, reason: Option<String>) {
        let mut s = self.inner.lock().expect("readiness lock");
        s.local_reachable = reachable;
        s.reason = reason;
    }
    /// The controller runs here; `synced` tells whether its MultiCasskop cache is synced.
    pub fn set_caches_synced(&self, synced: bool) {
        self.inner.lock().expect("readiness lock").caches_synced = Some(synced);
    }
    /// `Ok(())` when ready, else why not.
    pub fn check(&self) -> Result<(), NotReady> {
        let s = self.inner.lock().expect("readiness lock").clone();
        if !s.local_reachable {
            return Err(NotReady::LocalUnreachable { reason: s.reason });
        }
        if s.caches_synced == Some(false) {
            return Err(NotReady::CacheNotSynced);
        }
        Ok(())
    }
}

/// Why `/readyz` answers 503.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The local cluster's API server has not answered (yet, or any more).
    #[error("{}", .reason.as_deref().unwrap_or("local cluster not reached yet"))]
    LocalUnreachable { reason: Option<String> },
    /// The controller's MultiCasskop cache has not finished its first list.
    #[error("MultiCasskop cache not synced yet")]
    CacheNotSynced,
}

/// Checks the local cluster answers; at start until it does, then every 30 s for `/readyz`
/// (more often when the liveness timeout is short, so a quiet but healthy cluster stays live).
pub fn watch_local_reachability(
    client: kube::Client,
    readiness: Readiness,
    liveness: Liveness,
    local: String,
) {
    let period_up = std::time::Duration::from_secs(30).min(liveness.limit() / 4);
    tokio::spawn(async move {
        let mut was_up = None;
        loop {
            let up = match client.apiserver_version().await {
                Ok(_) => {
                    readiness.set_local_reachable(true, None);
                    liveness.local_alive();
                    true
                }
                Err(e) => {
                    let reason = format!(
                        "local cluster {local} unreachable: {}",
                        crate::kube_error::brief(&e)
                    );
                    if was_up != Some(false) {
                        tracing::warn!("{reason}");
                    }
                    liveness.local_failed(reason.clone());
                    readiness.set_local_reachable(false, Some(reason));
                    false
                }
            };
            if up && was_up != Some(true) {
                tracing::info!("local cluster {local} reachable");
            }
            was_up = Some(up);
            let wait = if up {
                period_up
            } else {
                std::time::Duration::from_secs(2)
            };
            tokio::time::sleep(wait).await;
        }
    });
}

#[derive(Clone)]
struct AppState {
    readiness: Readiness,
    liveness: Liveness,
    metrics: Arc<Metrics>,
}

/// The router serving the three endpoints (separate from [`serve`] so tests can call it).
pub fn router(readiness: Readiness, liveness: Liveness, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState {
            readiness,
            liveness,
            metrics,
        })
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.liveness.check(std::time::Instant::now()) {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(wedged) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("wedged: {wedged}"),
        ),
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.readiness.check() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        ),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Bind `addr` and serve until the process ends. Binding errors are returned (port in use).
pub async fn serve(
    addr: SocketAddr,
    readiness: Readiness,
    liveness: Liveness,
    metrics: Arc<Metrics>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr} for /healthz, /readyz, /metrics: {e}")
    })?;
    let app = router(readiness, liveness, metrics);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("probe server on {addr} stopped: {e}");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_local_reachable_then_until_caches_synced() {
        let r = Readiness::default();
        assert!(r.check().unwrap_err().to_string().contains("local cluster"));
        r.set_local_reachable(true, None);
        assert!(
            r.check().is_ok(),
            "standby replica is ready once local is reachable"
        );
        r.set_caches_synced(false);
        assert!(r.check().unwrap_err().to_string().contains("cache"));
        r.set_caches_synced(true);
        assert!(r.check().is_ok());
        r.set_local_reachable(
            false,
            Some("local cluster k8s-cluster1: connection refused".into()),
        );
        assert!(
            r.check()
                .unwrap_err()
                .to_string()
                .contains("connection refused")
        );
    }

    #[tokio::test]
    async fn serves_probes_and_metrics_over_http() {
        let r = Readiness::default();
        let m = Arc::new(Metrics::new());
        m.write("a", "apply");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let l = Liveness::new(std::time::Duration::from_secs(60));
        tokio::spawn(async move { axum::serve(listener, router(r, l, m)).await.unwrap() });
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        let ready = get("/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        let metrics = get("/metrics").await;
        assert!(
            metrics.contains(r#"multicasskop_site_writes_total{site="a",verb="apply"} 1"#),
            "{metrics}"
        );
    }
}
