//! Fault injection per cluster: unreachable listener, frozen connections, HTTP/1.1 only, latency, error share, revoked tokens, expired watches.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use crate::freeze::FreezeGate;
use crate::store::Store;

#[derive(Debug)]
pub struct Faults {
    unreachable: tokio::sync::watch::Sender<bool>,
    freeze: Arc<FreezeGate>,
    http1_only: AtomicBool,
    latency_us: AtomicU64,
    errors: Mutex<(f64, Vec<u16>)>,
    store: Arc<Store>,
}

impl Faults {
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Faults {
            unreachable: tokio::sync::watch::channel(false).0,
            freeze: Arc::default(),
            http1_only: AtomicBool::new(false),
            latency_us: AtomicU64::new(0),
            errors: Mutex::new((0.0, vec![])),
            store,
        }
    }

    /// Listener closed (connection refused) and open connections dropped while on.
    pub fn set_unreachable(&self, on: bool) {
        self.unreachable.send_replace(on);
    }
    /// Connections accepted and kept, nothing read or answered, open watches silent while on
    /// (see `freeze`); everything resumes when it goes off.
    pub fn set_frozen(&self, on: bool) {
        self.freeze.set(on);
    }
    pub fn is_frozen(&self) -> bool {
        self.freeze.is_frozen()
    }
    /// New connections are offered HTTP/1.1 only (ALPN without `h2`), as an API server behind
    /// a proxy that speaks only HTTP/1.1; open connections keep their protocol.
    pub fn set_http1_only(&self, on: bool) {
        self.http1_only.store(on, Ordering::Relaxed);
    }
    pub fn is_http1_only(&self) -> bool {
        self.http1_only.load(Ordering::Relaxed)
    }
    pub fn set_latency(&self, d: Duration) {
        self.latency_us
            .store(d.as_micros() as u64, Ordering::Relaxed);
    }
    /// A share (0..=1) of requests is answered with one of `codes` (picked at random).
    pub fn set_error_rate(&self, share: f64, codes: Vec<u16>) {
        *self
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (share.clamp(0.0, 1.0), codes);
    }
    pub fn revoke_token(&self, token: &str) {
        self.store.lock().revoked.insert(token.to_string());
    }
    /// Open watches get a 410 ERROR event; every resourceVersion handed out so far becomes too old.
    pub fn expire_watches(&self) {
        self.store.lock().expire_watches();
    }
    pub fn clear(&self) {
        self.set_unreachable(false);
        self.set_frozen(false);
        self.set_http1_only(false);
        self.set_latency(Duration::ZERO);
        self.set_error_rate(0.0, vec![]);
        self.store.lock().revoked.clear();
    }

    pub(crate) fn unreachable_rx(&self) -> tokio::sync::watch::Receiver<bool> {
        self.unreachable.subscribe()
    }
    pub(crate) fn freeze_gate(&self) -> Arc<FreezeGate> {
        self.freeze.clone()
    }
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }
    /// The injected error code for this request, if any.
    pub(crate) fn pick_error(&self) -> Option<u16> {
        let e = self
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if e.0 <= 0.0 || e.1.is_empty() {
            return None;
        }
        let mut rng = rand::rng();
        (rng.random::<f64>() < e.0).then(|| e.1[rng.random_range(0..e.1.len())])
    }
}
