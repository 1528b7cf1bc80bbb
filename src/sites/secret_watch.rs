//! Watches of the Secrets sites name, one per Secret (a field selector on its name): the namespace's other Secrets are never listed, watched or cached.
//!
//! A watch pinned to one name is authorized by kube-apiserver against RBAC `resourceNames`, so
//! the controller's Role can name the Secrets it reads instead of granting every Secret of its
//! namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;

use crate::api::lenient::{self, Lenient};
use crate::sites::deadlines;

/// Called with every event (or error) of the watch of the named Secret.
pub(super) type OnEvent =
    Arc<dyn Fn(&str, Result<watcher::Event<Secret>, watcher::Error>) + Send + Sync>;

/// The running watches, by Secret name.
pub(super) struct SecretWatches {
    api: Api<Lenient<Secret>>,
    parent: CancellationToken,
    running: Mutex<BTreeMap<String, CancellationToken>>,
}

impl SecretWatches {
    /// Watches of Secrets through `api` (the controller's namespace), all stopped with `parent`.
    pub(super) fn new(api: Api<Lenient<Secret>>, parent: CancellationToken) -> Self {
        Self {
            api,
            parent,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Watch exactly `names`: start the missing watches, stop those of other names. Returns the
    /// names whose watch stopped (their cached state is stale).
    pub(super) fn watch_only(&self, names: &BTreeSet<String>, on_event: &OnEvent) -> Vec<String> {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stopped: Vec<String> = running
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for name in &stopped {
            if let Some(stop) = running.remove(name) {
                stop.cancel();
            }
        }
        for name in names {
            if !running.contains_key(name) {
                let stop = self.parent.child_token();
                spawn_watch(
                    self.api.clone(),
                    name.clone(),
                    stop.clone(),
                    on_event.clone(),
                );
                running.insert(name.clone(), stop);
            }
        }
        stopped
    }
}

fn secret_placeholder(metadata: kube::api::ObjectMeta) -> Secret {
    Secret {
        metadata,
        ..Secret::default()
    }
}

fn spawn_watch(
    api: Api<Lenient<Secret>>,
    name: String,
    stop: CancellationToken,
    on_event: OnEvent,
) {
    tokio::spawn(async move {
        let config = deadlines::watch_config().fields(&format!("metadata.name={name}"));
        let stream = watcher(api, config).default_backoff();
        // A Secret that cannot be decoded is kept as an empty one (the site says which keys
        // it lacks) and never stops the watch.
        let stream = lenient::sifted(stream, secret_placeholder, |p| {
            tracing::warn!(secret = %p.key(), "Secret {} cannot be decoded, ignored: {}", p.key(), p.error);
        });
        let mut stream = std::pin::pin!(stream);
        loop {
            let ev = tokio::select! {
                () = stop.cancelled() => return,
                ev = stream.next() => ev,
            };
            let Some(ev) = ev else { return };
            on_event(&name, ev);
        }
    });
}
