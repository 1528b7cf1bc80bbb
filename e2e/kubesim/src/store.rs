//! In-memory object store of one cluster: tables per resource, cluster-wide resourceVersion, watch history and fan-out.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::rbac::{RbacSnapshot, UserInfo};
use crate::resources::{Registry, ResKey, ResourceDef};

/// How a token was issued, which decides how long it stays valid.
#[derive(Debug, Clone)]
pub enum TokenKind {
    Admin,
    /// Lives as long as its Secret and its ServiceAccount.
    Secret {
        namespace: String,
        secret: String,
        sa: String,
    },
    /// TokenRequest: lives until expiry and while its ServiceAccount (same uid) exists.
    Request {
        namespace: String,
        sa: String,
        sa_uid: String,
    },
    /// Issued by a test through the library (not tied to stored objects).
    Issued,
}

#[derive(Debug, Clone)]
/// What a token stands for (the token itself is the map key, never stored here).
pub struct TokenEntry {
    pub user: UserInfo,
    pub kind: TokenKind,
    /// Unix seconds.
    pub expires: Option<i64>,
}

/// (namespace, name); namespace is "" for cluster-scoped objects.
pub type ObjKey = (String, String);

/// Events kept per resource for watches resuming from a resourceVersion.
pub const HISTORY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub kind: EventType,
    pub rv: u64,
    pub object: Arc<Value>,
    /// The object before a MODIFIED event (for selector transitions).
    pub prev: Option<Arc<Value>>,
}

#[derive(Debug, Clone)]
pub enum WatchMsg {
    Event(Arc<Event>),
    /// The watch is over: send a 410 Expired ERROR event and close.
    Expired,
    /// The resource stopped being served (CRD deleted): close.
    Closed,
}

#[derive(Debug)]
struct Watcher {
    namespace: Option<String>,
    tx: mpsc::UnboundedSender<WatchMsg>,
}

#[derive(Debug, Default)]
pub struct Table {
    pub objects: BTreeMap<ObjKey, Arc<Value>>,
    history: VecDeque<Arc<Event>>,
    /// Events with a resourceVersion at or below this may be missing from `history`.
    compacted: u64,
    watchers: Vec<Watcher>,
}

impl Table {
    fn publish(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        if self.history.len() >= HISTORY
            && let Some(old) = self.history.pop_front()
        {
            self.compacted = old.rv;
        }
        self.history.push_back(ev.clone());
        let ns = ev.object["metadata"]["namespace"].as_str().unwrap_or("");
        self.watchers.retain(|w| {
            if w.namespace.as_deref().is_some_and(|n| n != ns) {
                return !w.tx.is_closed();
            }
            w.tx.send(WatchMsg::Event(ev.clone())).is_ok()
        });
    }

    fn close_watchers(&mut self, msg: WatchMsg) {
        for w in self.watchers.drain(..) {
            let _ = w.tx.send(msg.clone());
        }
    }
}

/// What a watch starts with.
pub enum WatchStart {
    /// Replay: current objects as synthetic ADDED events (namespace-filtered), then live.
    Current(Vec<Arc<Value>>, u64),
    /// Resume after this resourceVersion: history events already queued.
    Resume,
}

pub struct State {
    pub rv: u64,
    pub tables: HashMap<ResKey, Table>,
    pub registry: Arc<Registry>,
    pub rbac: Arc<RbacSnapshot>,
    pub tokens: HashMap<String, TokenEntry>,
    pub revoked: HashSet<String>,
    /// `--service-account-max-token-expiration`: the longest lifetime a TokenRequest gets.
    pub max_token_expiration: Option<std::time::Duration>,
    /// Owner uid -> objects naming it in ownerReferences (for garbage collection).
    pub owners: HashMap<String, BTreeSet<(ResKey, ObjKey)>>,
}

fn owner_uids(v: &Value) -> impl Iterator<Item = &str> {
    v["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
}

pub struct Store {
    state: Mutex<State>,
}

impl std::fmt::Debug for Store {
    // No tokens in Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Store")
            .field("resourceVersion", &st.rv)
            .field("resources", &st.tables.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    pub fn new() -> Self {
        Store {
            state: Mutex::new(State {
                rv: 1,
                tables: HashMap::new(),
                registry: Arc::new(Registry::new()),
                rbac: Arc::new(RbacSnapshot::default()),
                tokens: HashMap::new(),
                revoked: HashSet::new(),
                max_token_expiration: None,
                owners: HashMap::new(),
            }),
        }
    }

    /// Locks the cluster state (a poisoned lock is recovered: state stays consistent per operation).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.lock().registry.clone()
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

pub fn obj_key(obj: &Value) -> ObjKey {
    let m = &obj["metadata"];
    (
        m["namespace"].as_str().unwrap_or("").to_string(),
        m["name"].as_str().unwrap_or("").to_string(),
    )
}

impl State {
    pub fn table(&mut self, key: &ResKey) -> &mut Table {
        if !self.tables.contains_key(key) {
            self.tables.insert(key.clone(), Table::default());
        }
        self.tables.get_mut(key).expect("table just inserted")
    }

    pub fn get(&self, key: &ResKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.tables
            .get(key)?
            .objects
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a resource, in key order, optionally in one namespace, starting after `after`.
    pub fn range(&self, key: &ResKey, ns: Option<&str>, after: Option<&ObjKey>) -> Vec<Arc<Value>> {
        let Some(t) = self.tables.get(key) else {
            return vec![];
        };
        use std::ops::Bound::*;
        let lower = match after {
            Some(k) => Excluded(k.clone()),
            None => match ns {
                Some(n) => Included((n.to_string(), String::new())),
                None => Unbounded,
            },
        };
        t.objects
            .range((lower, Unbounded))
            .take_while(|((n, _), _)| ns.is_none_or(|want| want == n))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Stores `obj` (new or replacing), stamping the next resourceVersion, and publishes the event.
    pub fn put(&mut self, def: &ResourceDef, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        obj["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let obj = Arc::new(obj);
        let k = obj_key(&obj);
        let rk = def.key();
        let table = self.table(&rk);
        let prev = table.objects.insert(k.clone(), obj.clone());
        self.index_owners(&rk, &k, prev.as_deref(), Some(&obj));
        let table = self.table(&rk);
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        table.publish(Event {
            kind,
            rv,
            object: obj.clone(),
            prev,
        });
        obj
    }

    /// Removes an object; the DELETED event carries a fresh resourceVersion.
    pub fn remove(&mut self, def: &ResourceDef, ns: &str, name: &str) -> Option<Arc<Value>> {
        let key = def.key();
        let table = self.tables.get_mut(&key)?;
        let k = (ns.to_string(), name.to_string());
        let old = table.objects.remove(&k)?;
        self.index_owners(&key, &k, Some(&old), None);
        self.rv += 1;
        let rv = self.rv;
        let mut last = (*old).clone();
        last["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let last = Arc::new(last);
        let table = self.table(&key);
        table.publish(Event {
            kind: EventType::Deleted,
            rv,
            object: last.clone(),
            prev: Some(old),
        });
        Some(last)
    }

    /// Drops a whole resource (its CRD was deleted): watchers are closed.
    pub fn drop_table(&mut self, key: &ResKey) {
        if let Some(mut t) = self.tables.remove(key) {
            for (k, o) in &t.objects {
                self.index_owners(key, k, Some(o), None);
            }
            t.close_watchers(WatchMsg::Closed);
        }
    }

    fn index_owners(
        &mut self,
        rk: &ResKey,
        k: &ObjKey,
        before: Option<&Value>,
        after: Option<&Value>,
    ) {
        if let Some(b) = before {
            for uid in owner_uids(b) {
                if let Some(set) = self.owners.get_mut(uid) {
                    set.remove(&(rk.clone(), k.clone()));
                    if set.is_empty() {
                        self.owners.remove(uid);
                    }
                }
            }
        }
        if let Some(a) = after {
            for uid in owner_uids(a) {
                self.owners
                    .entry(uid.to_string())
                    .or_default()
                    .insert((rk.clone(), k.clone()));
            }
        }
    }

    /// Registers a watcher. `from`: None = start with the current objects; Some(rv) = resume after rv.
    /// Err(compacted) when `rv` is older than the history kept.
    pub fn watch(
        &mut self,
        key: &ResKey,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> Result<(WatchStart, mpsc::UnboundedReceiver<WatchMsg>), u64> {
        let (tx, rx) = mpsc::unbounded_channel();
        let current_rv = self.rv;
        let ns_owned = namespace.map(String::from);
        let start = match from {
            None => {
                let objs = self.range(key, namespace, None);
                WatchStart::Current(objs, current_rv)
            }
            Some(rv) => {
                let table = self.table(key);
                if rv < table.compacted {
                    return Err(table.compacted);
                }
                for ev in table.history.iter().filter(|e| e.rv > rv) {
                    let ns = ev.object["metadata"]["namespace"].as_str().unwrap_or("");
                    if ns_owned.as_deref().is_none_or(|n| n == ns) {
                        let _ = tx.send(WatchMsg::Event(ev.clone()));
                    }
                }
                WatchStart::Resume
            }
        };
        self.table(key).watchers.push(Watcher {
            namespace: ns_owned,
            tx,
        });
        Ok((start, rx))
    }

    /// Fault: every open watch ends with 410, and every resourceVersion seen so far is too old.
    pub fn expire_watches(&mut self) {
        // Even a watch from the latest resourceVersion handed out must be refused: move past it.
        self.rv += 1;
        let rv = self.rv;
        for t in self.tables.values_mut() {
            t.compacted = rv;
            t.history.clear();
            t.close_watchers(WatchMsg::Expired);
        }
    }
}
