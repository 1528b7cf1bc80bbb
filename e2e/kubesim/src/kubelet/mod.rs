//! The simulated kubelet (opt-in): one node per cluster that runs each Pod whose image maps to a local binary as a real process, as a container would, and reports it through the cluster's API like a kubelet.
//!
//! It is a client of the cluster's API like the real one (its writes are seen by watches and
//! in the audit log): it watches Pods, Secrets and ConfigMaps, binds unscheduled Pods to its
//! node (as the scheduler would, by setting `spec.nodeName`), and runs one worker per Pod
//! (`worker`). Pods the simulated CassKop runs (owned by a StatefulSet) are left to it.
//! Modules: `logs` (container logs and the pods/log subresource), `netns` (network
//! namespaces), `volumes`, `container` (program, env, mounts), `spawn` (the process),
//! `probe`, `events`, `worker`.
pub mod logs;

mod container;
mod events;
mod netns;
mod probe;
mod spawn;
mod volumes;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::rbac::UserInfo;
use crate::store::{Store, TokenEntry, TokenKind};
use crate::{auth, kubeconfig};
use logs::PodLogs;

/// Which local binary each image runs (`kubesim --kubelet IMAGE=PATH`, repeatable).
#[derive(Debug, Clone, Default)]
pub struct KubeletOptions {
    /// Image (exact, or without its tag) -> binary.
    pub images: BTreeMap<String, PathBuf>,
}

impl KubeletOptions {
    /// Reads one `IMAGE=PATH` mapping.
    pub fn parse_mapping(s: &str) -> Result<(String, PathBuf), String> {
        let (image, path) = s
            .split_once('=')
            .filter(|(i, p)| !i.is_empty() && !p.is_empty())
            .ok_or_else(|| format!("invalid --kubelet {s:?}: expected IMAGE=PATH"))?;
        Ok((image.to_string(), PathBuf::from(path)))
    }

    /// Why no kubelet can run on this machine (root and iproute2 are needed), if so.
    pub fn unavailable() -> Option<String> {
        netns::unavailable()
    }
}

/// One running kubelet (one node of one cluster).
pub struct Kubelet {
    ctx: Arc<worker::NodeCtx>,
    task: JoinHandle<()>,
    stopped: bool,
}

/// What a kubelet needs from its cluster.
pub struct ClusterAccess<'a> {
    pub name: &'a str,
    pub url: String,
    pub addr: SocketAddr,
    pub ca_pem: &'a str,
    pub store: &'a Arc<Store>,
    pub logs: Arc<PodLogs>,
}

static KUBELETS: AtomicU32 = AtomicU32::new(0);

async fn client_as(c: &ClusterAccess<'_>, user: UserInfo) -> anyhow::Result<kube::Client> {
    let token = auth::random_token("kubesim-node");
    c.store.lock().tokens.insert(
        token.clone(),
        TokenEntry {
            user,
            kind: TokenKind::Issued,
            expires: None,
        },
    );
    let yaml = kubeconfig::render(&[(
        c.name.to_string(),
        c.url.clone(),
        c.ca_pem.to_string(),
        token,
    )]);
    let kc = kube::config::Kubeconfig::from_yaml(&yaml)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await?;
    Ok(kube::Client::try_from(cfg)?)
}

/// Starts the kubelet of cluster `c`; `api_servers` are every simulated API server its pods
/// can reach.
pub async fn start(
    c: ClusterAccess<'_>,
    api_servers: Vec<SocketAddr>,
    opts: &KubeletOptions,
) -> anyhow::Result<Kubelet> {
    if let Some(why) = netns::unavailable() {
        anyhow::bail!("kubesim --kubelet in cluster {}: {why}", c.name);
    }
    netns::remove_stale();
    let node = format!("{}-node", c.name);
    // The kubelet's credentials: its node identity (a superuser here, as kubesim has no Node
    // authorizer), and the scheduler's for binding.
    let groups = |g: &str| {
        vec![
            g.to_string(),
            "system:masters".into(),
            "system:authenticated".into(),
        ]
    };
    let client = client_as(
        &c,
        UserInfo {
            username: format!("system:node:{node}"),
            groups: groups("system:nodes"),
        },
    )
    .await?;
    let scheduler = client_as(
        &c,
        UserInfo {
            username: "system:kube-scheduler".into(),
            groups: groups("system:kube-scheduler"),
        },
    )
    .await?;
    let stop = CancellationToken::new();
    let secrets = cache::<Secret>(client.clone(), &stop);
    let configmaps = cache::<ConfigMap>(client.clone(), &stop);
    let (secrets, configmaps) = (secrets.await?, configmaps.await?);
    let root = std::env::temp_dir().join(format!(
        "kubesim-kubelet-{}-{}",
        std::process::id(),
        KUBELETS.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let net = tokio::task::spawn_blocking(netns::NodeNet::create).await??;
    c.logs.enable();
    let ctx = Arc::new(worker::NodeCtx {
        node: node.clone(),
        images: opts.images.clone(),
        sources: volumes::Sources {
            secrets,
            configmaps,
            client: client.clone(),
            ca_pem: c.ca_pem.to_string(),
        },
        recorder: events::Recorder::new(client.clone(), &node),
        client,
        logs: c.logs.clone(),
        net,
        api_servers,
        own_api: c.addr,
        root,
        stop,
    });
    tokio::spawn(default_service_accounts(
        ctx.client.clone(),
        ctx.stop.clone(),
    ));
    let task = tokio::spawn(watch_pods(ctx.clone(), scheduler));
    Ok(Kubelet {
        ctx,
        task,
        stopped: false,
    })
}

/// A watch-filled cache of every object of kind K, ready (listed) when returned.
async fn cache<K>(
    client: kube::Client,
    stop: &CancellationToken,
) -> anyhow::Result<reflector::Store<K>>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(Api::<K>::all(client), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let stop = stop.clone();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        loop {
            tokio::select! {
                n = stream.next() => if n.is_none() { return },
                () = stop.cancelled() => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), reader.wait_until_ready())
        .await
        .context("the kubelet's cache did not fill in 30 s")??;
    Ok(reader)
}

/// The ServiceAccount controller's part pods need: a `default` ServiceAccount in every
/// namespace (kubesim starts none without a kubelet, so that nothing changes for other tests).
async fn default_service_accounts(client: kube::Client, stop: CancellationToken) {
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    let stream = watcher(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects();
    futures::pin_mut!(stream);
    loop {
        let ns = tokio::select! {
            n = stream.next() => n,
            () = stop.cancelled() => return,
        };
        let Some(ns) = ns else { return };
        let Ok(ns) = ns else { continue };
        if ns.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = ns.metadata.name.clone().unwrap_or_default();
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        if matches!(api.get_opt("default").await, Ok(None)) {
            let sa = serde_json::from_value(json!({"metadata": {"name": "default"}}));
            if let Ok(sa) = sa {
                let _ = api.create(&kube::api::PostParams::default(), &sa).await;
            }
        }
    }
}

/// Whether this node runs `pod`.
fn ours(pod: &Pod, node: &str) -> bool {
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("");
    let by_statefulset = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "StatefulSet");
    node_name == node || (node_name.is_empty() && !by_statefulset)
}

async fn bind(scheduler: &kube::Client, ctx: &worker::NodeCtx, pod: &Pod) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(scheduler.clone(), &ns);
    let patch = json!({"spec": {"nodeName": ctx.node}});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            let msg = format!("Successfully assigned {ns}/{name} to {}", ctx.node);
            ctx.recorder
                .emit_as(
                    pod,
                    None,
                    false,
                    events::reasons::SCHEDULED,
                    &msg,
                    "default-scheduler",
                )
                .await;
        }
        Err(e) => tracing::debug!("kubelet: binding pod {ns}/{name}: {e}"),
    }
}

async fn watch_pods(ctx: Arc<worker::NodeCtx>, scheduler: kube::Client) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut relisted: HashSet<String> = HashSet::new();
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            () = ctx.stop.cancelled() => None,
        };
        let Some(ev) = ev else { break };
        let Ok(ev) = ev else { continue };
        match ev {
            watcher::Event::Init => relisted.clear(),
            watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                relisted.insert(uid.clone());
                if !ours(&pod, &ctx.node) {
                    continue;
                }
                let unbound = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or("")
                    .is_empty();
                if unbound {
                    // The bound pod comes back through the watch.
                    bind(&scheduler, &ctx, &pod).await;
                    continue;
                }
                match workers.get(&uid) {
                    Some(tx) => {
                        let _ = tx.send(Some(pod));
                    }
                    None => {
                        let terminal = pod
                            .status
                            .as_ref()
                            .and_then(|s| s.phase.as_deref())
                            .is_some_and(|p| p == "Succeeded" || p == "Failed");
                        if terminal && pod.metadata.deletion_timestamp.is_none() {
                            continue;
                        }
                        let (tx, rx) = watch::channel(Some(pod));
                        tokio::spawn(worker::run(ctx.clone(), rx));
                        workers.insert(uid, tx);
                    }
                }
            }
            watcher::Event::Delete(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if let Some(tx) = workers.remove(&uid) {
                    let _ = tx.send(None);
                }
            }
            watcher::Event::InitDone => {
                workers.retain(|uid, tx| {
                    let keep = relisted.contains(uid);
                    if !keep {
                        let _ = tx.send(None);
                    }
                    keep
                });
            }
        }
        workers.retain(|_, tx| !tx.is_closed());
    }
}

impl Kubelet {
    /// Stops every pod (SIGKILL at once, as a node shutting down hard), removes the node's
    /// network namespaces and files.
    pub async fn stop(mut self) {
        self.ctx.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        // Workers stop on the same token; give them a moment to kill their processes.
        for _ in 0..50 {
            if Arc::strong_count(&self.ctx) <= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.cleanup();
        self.stopped = true;
    }

    fn cleanup(&self) {
        let prefix = format!("{}-p", self.ctx.net.netns);
        if let Ok(dir) = std::fs::read_dir("/run/netns") {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) {
                    let _ = netns::ip(&["netns", "del", &name]);
                }
            }
        }
        self.ctx.net.remove();
        let _ = std::fs::remove_dir_all(&self.ctx.root);
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if !self.stopped {
            self.ctx.stop.cancel();
            self.task.abort();
            self.cleanup();
        }
    }
}
