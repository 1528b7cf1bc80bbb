//! The live site registry: loads every site, watches Secrets, ClientConfigs and the imports dir.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use tokio::sync::{Mutex, Notify, watch};
use tokio_util::sync::CancellationToken;

use super::client_config::{ClientConfigRef, client_config_resource};
use super::config::RegistryConfig;
use super::credentials::{self, RemoteLookup, SecretLookup};
use super::deadlines;
use super::secret_watch::{OnEvent, SecretWatches};
use super::site::{Site, SiteError, SiteState};
use super::token_report::{TokenReport, TokenReports};
use crate::api::lenient::Lenient;
use crate::backoff::Backoff;
use crate::kube_error;

/// Poll period: catches mounted-file swaps notify missed, kubeconfig edits, and retries.
const POLL: Duration = Duration::from_secs(2);
/// How long `start` waits for the first Secret / ClientConfig list before loading sites anyway.
const INITIAL_SYNC: Duration = Duration::from_secs(5);
/// Longest wait for one site's client to be built (an allowed exec plugin runs then): a plugin
/// that never returns makes that site Unavailable instead of stopping every reload.
const CLIENT_BUILD_DEADLINE: Duration = Duration::from_secs(30);

/// Applied to every site client the registry builds, before any request is sent through it
/// (the controller puts its write fence there).
pub type ClientHook = Arc<dyn Fn(&str, kube::Client) -> kube::Client + Send + Sync>;

/// A watched collection: objects by name, and whether the first list succeeded.
struct Cache<T> {
    synced: bool,
    error: Option<String>,
    /// Why the last list failed, until a list succeeds again (a failed watch is retried from
    /// where it was; a failed list leaves `items` as they were before it).
    list_error: Option<String>,
    items: BTreeMap<String, T>,
    /// Objects received since the last `Init` (a re-list replaces `items` atomically).
    buffer: BTreeMap<String, T>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Self {
            synced: false,
            error: None,
            list_error: None,
            items: BTreeMap::new(),
            buffer: BTreeMap::new(),
        }
    }
}

struct Entry {
    state: SiteState,
    fingerprint: Option<u64>,
    revision: u64,
}

/// What a reload found for one site, its client (if new credentials need one) already built.
enum Loaded {
    /// The same credentials as the site's current client: nothing to rebuild.
    Unchanged,
    /// New credentials, and the client built from them or why none could be.
    Built(
        Box<credentials::Credentials>,
        Result<kube::Client, credentials::CredentialError>,
    ),
    /// No usable credentials.
    Unusable(SiteError),
}

impl Entry {
    /// Whether `creds` are the ones this entry's current client was built from.
    fn is_current(&self, creds: &credentials::Credentials) -> bool {
        self.fingerprint == Some(creds.fingerprint) && matches!(self.state, SiteState::Ready(_))
    }

    /// Moves the site to what `loaded` says; true when its state changed.
    fn update(&mut self, name: &str, loaded: Loaded) -> bool {
        let new_state = match loaded {
            Loaded::Unchanged => return false,
            Loaded::Built(creds, Ok(client)) => {
                self.revision += 1;
                self.fingerprint = Some(creds.fingerprint);
                tracing::info!(site = %name, source = %creds.source.describe(), revision = self.revision, "site credentials loaded");
                SiteState::Ready(Arc::new(Site {
                    name: name.to_string(),
                    client,
                    default_namespace: creds.default_namespace.clone(),
                    source: creds.source.clone(),
                    revision: self.revision,
                }))
            }
            Loaded::Built(_, Err(e)) => SiteState::Unavailable {
                reason: e.to_string(),
            },
            Loaded::Unusable(e) => SiteState::Unavailable {
                reason: e.to_string(),
            },
        };
        if let SiteState::Unavailable { reason } = &new_state {
            if matches!(&self.state, SiteState::Unavailable { reason: old } if old == reason) {
                return false;
            }
            self.fingerprint = None;
            tracing::warn!(site = %name, %reason, "site unavailable");
        }
        self.state = new_state;
        true
    }
}

pub(super) struct Inner {
    cfg: RegistryConfig,
    local: Arc<Site>,
    /// The Secrets sites name, each from its own watch (never the namespace's other Secrets).
    secrets: RwLock<BTreeMap<String, Arc<RwLock<Cache<Secret>>>>>,
    secret_watches: SecretWatches,
    on_secret_event: OnEvent,
    /// Told after every event of a watch, so `start` can wait for the first lists.
    synced: Arc<Notify>,
    client_configs: RwLock<Cache<ClientConfigRef>>,
    sites: RwLock<BTreeMap<String, Entry>>,
    changes: watch::Sender<u64>,
    kick: Notify,
    reload_lock: Mutex<()>,
    cancel: CancellationToken,
    client_hook: ClientHook,
    /// Each remote's token expiry and renewal problems (written by the renewal).
    tokens: TokenReports,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Inner {
    pub(super) async fn start(
        local: kube::Client,
        cfg: RegistryConfig,
        client_hook: ClientHook,
    ) -> Arc<Self> {
        let local_site = Arc::new(Site {
            name: cfg.local.clone(),
            default_namespace: Some(local.default_namespace().to_string()),
            client: local.clone(),
            source: super::local::source(&cfg),
            revision: 1,
        });
        let (changes, _) = watch::channel(0);
        let cancel = CancellationToken::new();
        let synced = Arc::new(Notify::new());
        let secrets_api = Api::namespaced(local.clone(), &cfg.namespace);
        let inner = Arc::new_cyclic(|weak: &Weak<Self>| Self {
            local: local_site,
            secrets: RwLock::new(BTreeMap::new()),
            secret_watches: SecretWatches::new(secrets_api, cancel.clone()),
            on_secret_event: secret_event_handler(weak.clone()),
            synced: synced.clone(),
            client_configs: RwLock::new(Cache::default()),
            sites: RwLock::new(BTreeMap::new()),
            changes,
            kick: Notify::new(),
            reload_lock: Mutex::new(()),
            cancel,
            client_hook,
            tokens: TokenReports::default(),
            cfg,
        });
        spawn_client_config_watch(&inner, local.clone(), synced.clone());
        spawn_dir_watch(&inner);
        spawn_reloader(&inner);
        // Wait (bounded) for the first lists (ClientConfigs, then the Secrets sites name) so
        // sites do not flap Unavailable -> Ready at start.
        let wait = async {
            loop {
                let notified = synced.notified();
                inner.watch_named_secrets();
                if inner.initial_sync_done() {
                    break;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(INITIAL_SYNC, wait).await;
        inner.reload().await;
        inner
    }

    fn initial_sync_done(&self) -> bool {
        let secrets_done = self.secrets.read().unwrap().values().all(|s| {
            let s = s.read().unwrap();
            s.synced || s.error.is_some()
        });
        let c = self.client_configs.read().unwrap();
        secrets_done && (c.synced || c.error.is_some())
    }

    /// The Secrets sites name: one per `--remote` flag (credentials through the API) and the
    /// one each ClientConfig references.
    fn named_secrets(&self) -> std::collections::BTreeSet<String> {
        let mut names: std::collections::BTreeSet<String> = self
            .flag_remotes()
            .into_iter()
            .filter(|r| *r != self.cfg.local)
            .collect();
        let ccs = self.client_configs.read().unwrap();
        names.extend(ccs.items.values().filter_map(|c| c.secret.clone().ok()));
        names
    }

    /// Watch exactly the Secrets sites name now (each cache in place before its watch starts);
    /// forget what stopped watches had cached.
    fn watch_named_secrets(&self) {
        let names = self.named_secrets();
        {
            let mut secrets = self.secrets.write().unwrap();
            for name in &names {
                secrets.entry(name.clone()).or_default();
            }
        }
        let stopped = self
            .secret_watches
            .watch_only(&names, &self.on_secret_event);
        let mut secrets = self.secrets.write().unwrap();
        for name in stopped {
            secrets.remove(&name);
        }
    }

    pub(super) fn config(&self) -> &RegistryConfig {
        &self.cfg
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn bump(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// Flag remotes without duplicates, in flag order.
    fn flag_remotes(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        self.cfg
            .remotes
            .iter()
            .filter(|r| !r.is_empty() && seen.insert(r.as_str()))
            .cloned()
            .collect()
    }

    pub(super) fn order(&self) -> Vec<String> {
        let mut order = vec![self.cfg.local.clone()];
        for r in self.flag_remotes() {
            if !order.contains(&r) {
                order.push(r);
            }
        }
        let sites = self.sites.read().unwrap();
        for name in self.client_configs.read().unwrap().items.keys() {
            if !order.contains(name) && sites.contains_key(name) {
                order.push(name.clone());
            }
        }
        order
    }

    pub(super) fn get(&self, name: &str) -> Option<SiteState> {
        if name == self.cfg.local {
            if self.flag_remotes().iter().any(|r| r == name) {
                return Some(SiteState::Unavailable {
                    reason: SiteError::LocalAndRemote {
                        name: name.to_string(),
                    }
                    .to_string(),
                });
            }
            if self.client_configs.read().unwrap().items.contains_key(name) {
                return Some(SiteState::Unavailable {
                    reason: SiteError::LocalAndClientConfig {
                        name: name.to_string(),
                        namespace: self.cfg.namespace.clone(),
                    }
                    .to_string(),
                });
            }
            return Some(SiteState::Ready(self.local.clone()));
        }
        self.sites
            .read()
            .unwrap()
            .get(name)
            .map(|e| e.state.clone())
    }

    /// Why the set of ClientConfig sites is not known now (see [`SiteRegistry::client_configs_unknown`]).
    pub(super) fn client_configs_unknown(&self) -> Option<String> {
        let c = self.client_configs.read().unwrap();
        let ns = &self.cfg.namespace;
        match (&c.list_error, c.synced) {
            (Some(e), _) => Some(format!(
                "ClientConfigs (config.k8ssandra.io) in namespace {ns} cannot be listed: {e}"
            )),
            (None, false) => Some(format!(
                "ClientConfigs (config.k8ssandra.io) in namespace {ns} have not been listed yet"
            )),
            (None, true) => None,
        }
    }

    fn secret_lookup(&self, name: &str) -> SecretLookup {
        let Some(cache) = self.secrets.read().unwrap().get(name).cloned() else {
            return SecretLookup::Failed("secret list not received yet".to_string());
        };
        let cache = cache.read().unwrap();
        if let Some(s) = cache.items.get(name) {
            return SecretLookup::from_secret(s);
        }
        if !cache.synced {
            return SecretLookup::Failed(match &cache.error {
                Some(e) => format!(
                    "Secret {name} in namespace {} cannot be listed: {e}",
                    self.cfg.namespace
                ),
                None => "secret list not received yet".to_string(),
            });
        }
        SecretLookup::NotFound
    }

    /// Re-reads every source and updates sites whose credentials changed. Idempotent.
    ///
    /// Clients are built before the site map is locked (reconciles read it), each on a
    /// blocking thread: TLS setup reads certificates and an allowed exec plugin runs then.
    pub(super) async fn reload(&self) {
        let _guard = self.reload_lock.lock().await;
        self.watch_named_secrets();
        let desired = self.desired_sites().await;
        // Built side by side: one slow credential plugin does not delay the other sites.
        let loads = desired.into_iter().map(|(name, result)| async move {
            let loaded = self.load(&name, result).await;
            (name, loaded)
        });
        let loaded: BTreeMap<String, Loaded> =
            futures::future::join_all(loads).await.into_iter().collect();
        let mut changed = false;
        {
            let mut sites = self.sites.write().unwrap();
            let before = sites.len();
            sites.retain(|name, _| loaded.contains_key(name));
            if sites.len() != before {
                changed = true;
            }
            for (name, loaded) in loaded {
                let entry = sites.entry(name.clone()).or_insert_with(|| {
                    changed = true;
                    Entry {
                        state: SiteState::Unavailable {
                            reason: String::new(),
                        },
                        fingerprint: None,
                        revision: 0,
                    }
                });
                changed |= entry.update(&name, loaded);
            }
        }
        if changed {
            self.bump();
        }
    }

    /// Builds site `name`'s client when its credentials changed (no lock held meanwhile).
    async fn load(
        &self,
        name: &str,
        result: Result<credentials::Credentials, SiteError>,
    ) -> Loaded {
        let creds = match result {
            Ok(creds) => creds,
            Err(e) => return Loaded::Unusable(e),
        };
        let current = self
            .sites
            .read()
            .unwrap()
            .get(name)
            .is_some_and(|e| e.is_current(&creds));
        if current {
            return Loaded::Unchanged;
        }
        let client = creds
            .build_client(CLIENT_BUILD_DEADLINE)
            .await
            .map(|client| (self.client_hook)(name, client));
        Loaded::Built(Box::new(creds), client)
    }

    /// Every remote site's credentials (or why they are unusable) as the sources say now.
    async fn desired_sites(&self) -> BTreeMap<String, Result<credentials::Credentials, SiteError>> {
        let flag_remotes = self.flag_remotes();
        let client_configs: BTreeMap<String, ClientConfigRef> =
            self.client_configs.read().unwrap().items.clone();
        let ns = self.cfg.namespace.clone();
        let policy = self.cfg.kubeconfig_policy;

        let mut desired: BTreeMap<String, Result<credentials::Credentials, SiteError>> =
            BTreeMap::new();
        for name in &flag_remotes {
            if *name == self.cfg.local {
                continue; // reported by get()
            }
            let result = if client_configs.contains_key(name) {
                Err(SiteError::RemoteAndClientConfig {
                    name: name.clone(),
                    namespace: ns.clone(),
                })
            } else {
                let lookup = RemoteLookup {
                    name: name.clone(),
                    imports_dir: self.cfg.imports_dir.clone(),
                    namespace: ns.clone(),
                    kubeconfig: self.cfg.kubeconfig.clone(),
                };
                let secret = self.secret_lookup(name);
                off_runtime(async move { credentials::load_remote(&lookup, secret, policy).await })
                    .await
                    .map_err(SiteError::from)
            };
            desired.insert(name.clone(), result);
        }
        for (name, cc) in &client_configs {
            if flag_remotes.contains(name) {
                continue;
            }
            let result = if *name == self.cfg.local {
                Err(SiteError::LocalAndClientConfig {
                    name: name.clone(),
                    namespace: ns.clone(),
                })
            } else {
                match &cc.secret {
                    Err(e) => Err(SiteError::from(e.clone())),
                    Ok(secret) => {
                        let lookup = self.secret_lookup(secret);
                        let (ns, name, secret) = (ns.clone(), name.clone(), secret.clone());
                        let context = cc.context.clone();
                        off_runtime(async move {
                            credentials::load_client_config(
                                &ns, &name, &secret, &context, lookup, policy,
                            )
                            .await
                        })
                        .await
                        .map_err(SiteError::from)
                    }
                }
            };
            desired.insert(name.clone(), result);
        }
        desired
    }
}

/// Runs a credential load on a blocking thread: it reads files (a mounted Secret, the
/// operator's kubeconfig and the files it names) that must not stall an async worker.
async fn off_runtime<T: Send + 'static>(load: impl Future<Output = T> + Send + 'static) -> T {
    let handle = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || handle.block_on(load)).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// What the watch of one named Secret does with its events: into that Secret's cache, then a
/// reload.
fn secret_event_handler(weak: Weak<Inner>) -> OnEvent {
    Arc::new(move |name, ev| {
        let Some(inner) = weak.upgrade() else { return };
        let Some(cache) = inner.secrets.read().unwrap().get(name).cloned() else {
            return;
        };
        apply_event(
            &cache,
            ev,
            |s: &Secret| s.metadata.name.clone(),
            "secrets",
            &inner.cfg.namespace,
        );
        inner.kick.notify_one();
        inner.synced.notify_waiters();
    })
}

/// First retry delay of the ClientConfig watch after an error.
const CLIENT_CONFIG_MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay of the ClientConfig watch (e.g. while the CRD is not installed).
const CLIENT_CONFIG_MAX_BACKOFF: Duration = Duration::from_secs(300);

fn spawn_client_config_watch(inner: &Arc<Inner>, client: kube::Client, synced: Arc<Notify>) {
    let weak = Arc::downgrade(inner);
    let cancel = inner.cancel.clone();
    let api: Api<Lenient<DynamicObject>> =
        Api::namespaced_with(client, &inner.cfg.namespace, &client_config_resource());
    tokio::spawn(async move {
        // Our own backoff rather than kube-runtime's default one: that one is reset by the
        // `Init` event every re-list starts with, so a missing ClientConfig CRD (404 on every
        // list) would be re-listed about once a second forever. Here the delay only resets
        // once a list fully succeeded (`InitDone`), and grows to CLIENT_CONFIG_MAX_BACKOFF.
        let stream = watcher(api, deadlines::watch_config());
        let mut stream = std::pin::pin!(stream);
        let mut backoff = Backoff::new(CLIENT_CONFIG_MIN_BACKOFF, CLIENT_CONFIG_MAX_BACKOFF);
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return,
                ev = stream.next() => ev,
            };
            let Some(ev) = ev else { return };
            match &ev {
                Ok(watcher::Event::InitDone) => backoff.reset(),
                Err(_) => {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
                Ok(_) => {}
            }
            let Some(inner) = weak.upgrade() else { return };
            let ev = ev.map(|e| match e {
                watcher::Event::Apply(o) => {
                    ClientConfigRef::from_lenient(&o).map(watcher::Event::Apply)
                }
                watcher::Event::Delete(o) => {
                    ClientConfigRef::from_lenient(&o).map(watcher::Event::Delete)
                }
                watcher::Event::InitApply(o) => {
                    ClientConfigRef::from_lenient(&o).map(watcher::Event::InitApply)
                }
                watcher::Event::Init => Some(watcher::Event::Init),
                watcher::Event::InitDone => Some(watcher::Event::InitDone),
            });
            let ev = match ev {
                Ok(Some(e)) => Ok(e),
                Ok(None) => continue,
                // The API does not serve ClientConfigs (no CRD): a list of none. Deleting a CRD
                // deletes its objects, so no ClientConfig can exist while it is absent.
                Err(e) if kube_error::is_not_served(&e) => {
                    apply_event(
                        &inner.client_configs,
                        Ok(watcher::Event::Init),
                        |c: &ClientConfigRef| Some(c.name.clone()),
                        "clientconfigs",
                        &inner.cfg.namespace,
                    );
                    Ok(watcher::Event::InitDone)
                }
                Err(e) => Err(e),
            };
            apply_event(
                &inner.client_configs,
                ev,
                |c: &ClientConfigRef| Some(c.name.clone()),
                "clientconfigs",
                &inner.cfg.namespace,
            );
            inner.kick.notify_one();
            synced.notify_waiters();
        }
    });
}

fn apply_event<T: Clone>(
    cache: &RwLock<Cache<T>>,
    ev: Result<watcher::Event<T>, watcher::Error>,
    name_of: impl Fn(&T) -> Option<String>,
    what: &str,
    namespace: &str,
) {
    let mut c = cache.write().unwrap();
    match ev {
        Ok(watcher::Event::Init) => c.buffer.clear(),
        Ok(watcher::Event::InitApply(o)) => {
            if let Some(n) = name_of(&o) {
                c.buffer.insert(n, o);
            }
        }
        Ok(watcher::Event::InitDone) => {
            c.items = std::mem::take(&mut c.buffer);
            c.synced = true;
            c.error = None;
            c.list_error = None;
        }
        Ok(watcher::Event::Apply(o)) => {
            if let Some(n) = name_of(&o) {
                c.items.insert(n, o);
            }
        }
        Ok(watcher::Event::Delete(o)) => {
            if let Some(n) = name_of(&o) {
                c.items.remove(&n);
            }
        }
        Err(e) => {
            let text = kube_error::watch_brief(&e);
            if matches!(e, watcher::Error::InitialListFailed(_)) {
                c.list_error = Some(text.clone());
            }
            if c.error.as_deref() != Some(text.as_str()) {
                // ClientConfigs are optional (no k8ssandra CRD): keep that quiet.
                if what == "clientconfigs" {
                    tracing::debug!(namespace, error = %text, "cannot watch {what}");
                } else {
                    tracing::warn!(namespace, error = %text, "cannot watch {what}");
                }
            }
            c.error = Some(text);
        }
    }
}

fn spawn_dir_watch(inner: &Arc<Inner>) {
    use notify::Watcher;
    let dir = inner.cfg.imports_dir.clone();
    if !dir.is_dir() {
        return; // the poll covers a directory that appears later
    }
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let cancel = inner.cancel.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = tx.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch imports directory; polling every 2 s");
            return;
        }
    };
    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::Recursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch imports directory; polling every 2 s");
        return;
    }
    tokio::spawn(async move {
        let _watcher = watcher; // dropped (unwatched) when the task ends
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                got = rx.recv() => if got.is_none() { return },
            }
            // Let an atomic ..data swap finish before reading.
            tokio::time::sleep(Duration::from_millis(100)).await;
            while rx.try_recv().is_ok() {}
            let Some(inner) = weak.upgrade() else { return };
            inner.kick.notify_one();
        }
    });
}

fn spawn_reloader(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let cancel = inner.cancel.clone();
    tokio::spawn(async move {
        loop {
            let Some(strong) = weak.upgrade() else { return };
            let kicked = async {
                strong.kick.notified().await;
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = kicked => {},
                _ = tokio::time::sleep(POLL) => {},
            }
            strong.reload().await;
            drop(strong);
        }
    });
}

/// Live set of sites; cheap to clone.
///
/// Remotes come from `--remote` flags (credentials: mounted directory, Secret, kubeconfig
/// context) and from k8ssandra `ClientConfig` objects in the controller namespace; both can
/// change while the controller runs. A Secret watch, a ClientConfig watch, a file watch on the
/// imports directory and a 2 s poll all trigger the same idempotent reload: a site's client is
/// rebuilt only when its raw credentials changed.
#[derive(Clone)]
pub struct SiteRegistry {
    inner: Arc<Inner>,
}

impl SiteRegistry {
    /// Load every site, spawn the reload tasks (Secret watch, imports dir watch). Never fails
    /// because of a remote: a broken remote is `Unavailable` and retried.
    pub async fn start(local: kube::Client, cfg: RegistryConfig) -> Self {
        Self::start_with_hook(local, cfg, Arc::new(|_, client| client)).await
    }
    /// [`Self::start`], with `hook` applied to every site client built (`local` is used as
    /// given).
    pub async fn start_with_hook(
        local: kube::Client,
        cfg: RegistryConfig,
        hook: ClientHook,
    ) -> Self {
        Self {
            inner: Inner::start(local, cfg, hook).await,
        }
    }
    /// Configured site names in default rollout order: the local site, `--remote` flags in
    /// order, then ClientConfig sites by name.
    pub fn order(&self) -> Vec<String> {
        self.inner.order()
    }
    /// `None`: no such site configured.
    pub fn get(&self, name: &str) -> Option<SiteState> {
        self.inner.get(name)
    }
    /// Changes whenever any site is added, removed, rebuilt or becomes unavailable.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.subscribe()
    }
    /// Every configured site with its state, in [`Self::order`].
    pub fn sites(&self) -> Vec<(String, SiteState)> {
        self.order()
            .into_iter()
            .filter_map(|n| self.get(&n).map(|s| (n, s)))
            .collect()
    }
    /// Why the set of ClientConfig sites is not known now: no ClientConfig list has succeeded
    /// since the start, or the last one failed. `None`: a site that neither a flag nor the last
    /// ClientConfig list names is not configured. (A ClientConfig CRD the API does not serve
    /// counts as a list of none.)
    pub fn client_configs_unknown(&self) -> Option<String> {
        self.inner.client_configs_unknown()
    }
    /// The registry's configuration.
    pub fn config(&self) -> &RegistryConfig {
        self.inner.config()
    }
    /// Re-reads every source now (the background tasks do this on every change and every 2 s).
    pub async fn reload(&self) {
        self.inner.reload().await;
    }
    /// Each remote's token expiry and renewal problems.
    pub fn token_reports(&self) -> &TokenReports {
        &self.inner.tokens
    }
    /// Records `site`'s token report; a change of what users are shown counts as a change of
    /// the sites (MultiCasskops using it are reconciled and report it).
    pub fn report_token(&self, site: &str, report: TokenReport) {
        if self.inner.tokens.set(site, report) {
            self.inner.bump();
        }
    }
}
