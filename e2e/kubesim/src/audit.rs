//! Audit log: every request of every cluster of a Sim, in order, optionally mirrored to a JSON-lines file.
use std::fs::File;
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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
        })
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
