//! Audit log: every request of every cluster of a Sim, in order, optionally mirrored to a JSON-lines file.
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Global across the clusters of a Sim.
    pub seq: u64,
    pub time_us: i64,
    pub cluster: String,
    pub user: String,
    /// get list watch create update patch delete deletecollection (lowercase HTTP method for non-resource paths)
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub code: u16,
    /// The object after a successful write.
    pub object: Option<serde_json::Value>,
}

#[derive(Debug)]
pub struct AuditLog {
    seq: AtomicU64,
    entries: Mutex<Vec<AuditEntry>>,
    file: Option<Mutex<LineWriter<File>>>,
    /// Requests being handled, by ticket: what they did may already be visible (a stored
    /// object, a watch event) while their entry is not recorded yet.
    in_flight: Mutex<BTreeSet<u64>>,
    tickets: AtomicU64,
}

/// A request being handled, from its arrival until its entry is recorded (or it is dropped).
#[derive(Debug)]
pub struct Ticket {
    log: Arc<AuditLog>,
    id: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.log.in_flight().remove(&self.id);
    }
}

impl AuditLog {
    pub fn new(path: Option<&Path>) -> anyhow::Result<Self> {
        let file = match path {
            Some(p) => Some(Mutex::new(LineWriter::new(File::create(p).map_err(
                |e| anyhow::anyhow!("cannot create audit log {}: {e}", p.display()),
            )?))),
            None => None,
        };
        Ok(AuditLog {
            seq: AtomicU64::new(0),
            entries: Mutex::new(Vec::new()),
            file,
            in_flight: Mutex::default(),
            tickets: AtomicU64::new(0),
        })
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request arrived: its ticket stays open until [`Self::record_for`] records its entry.
    pub fn begin(self: &Arc<Self>) -> Ticket {
        let id = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        self.in_flight().insert(id);
        Ticket {
            log: self.clone(),
            id,
        }
    }

    /// Records the entry of the request holding `ticket`, closing it.
    pub fn record_for(&self, ticket: Ticket, e: AuditEntry) {
        self.record(e);
        drop(ticket);
    }

    /// Every entry, once each request that arrived before this call has its entry recorded
    /// (waiting at most `at_most` for requests a fault holds). A request's effects (the object
    /// it stored, the watch event that carried it) can be seen before its entry is written, as
    /// with kube-apiserver's audit log: a count taken right after seeing an object needs this.
    pub async fn settled(&self, at_most: Duration) -> Vec<AuditEntry> {
        let upto = self.tickets.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + at_most;
        while self.in_flight().first().is_some_and(|t| *t <= upto)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.all()
    }

    /// Stamps `seq` and `time_us` and appends.
    pub fn record(&self, mut e: AuditEntry) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        e.seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        e.time_us = jiff::Timestamp::now().as_microsecond();
        if let Some(f) = &self.file
            && let Ok(line) = serde_json::to_string(&e)
        {
            let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = writeln!(f, "{line}");
        }
        entries.push(e);
    }

    pub fn all(&self) -> Vec<AuditEntry> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn of_cluster(&self, cluster: &str) -> Vec<AuditEntry> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|e| e.cluster == cluster)
            .cloned()
            .collect()
    }
}
