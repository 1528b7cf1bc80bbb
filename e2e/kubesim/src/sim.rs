//! A Sim: its simulated clusters started and bootstrapped (namespaces, RBAC, admin token, optional CassKop), and the Cluster handle tests drive them with.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::audit::{AuditEntry, AuditLog};
use crate::cluster::ClusterInner;
use crate::exec::{ExecContext, RingFaults};
use crate::faults::Faults;
use crate::hooks::Hooks;
use crate::kubelet::{self, Kubelet, KubeletOptions};
use crate::objects::{self, Ctx};
use crate::store::{Store, TokenEntry, TokenKind};
use crate::{auth, casskop, kubeconfig, rbac, server, tls, workloads};

/// Only `Default` is derived, so that `casskop::CasskopOptions` needs no derives.
#[derive(Default)]
pub struct SimOptions {
    /// Run the simulated CassKop in every cluster.
    pub casskop: Option<casskop::CasskopOptions>,
    /// Mirror the audit log to this file as JSON lines.
    pub audit_log: Option<PathBuf>,
    /// kube-apiserver's `--service-account-max-token-expiration`: TokenRequests get at most
    /// this lifetime (any duration, so that expiry is testable in seconds).
    pub max_token_expiration: Option<Duration>,
}

/// A set of simulated clusters sharing one audit log.
pub struct Sim {
    clusters: Vec<Cluster>,
    audit: Arc<AuditLog>,
    tasks: Vec<JoinHandle<()>>,
    kubelets: Vec<Kubelet>,
}

/// Cheap handle to one simulated cluster.
#[derive(Clone, Debug)]
pub struct Cluster {
    inner: Arc<ClusterInner>,
}

/// The namespaces every cluster starts with.
pub const DEFAULT_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

fn bootstrap(store: &Store, ca_pem: &str) -> anyhow::Result<()> {
    let mut st = store.lock();
    let reg = st.registry.clone();
    let ctx = Ctx {
        ca_pem,
        manager: String::new(),
        dry_run: false,
        now: objects::now_rfc3339(),
        ..Default::default()
    };
    let nsdef = reg
        .find("", "v1", "namespaces")
        .context("namespaces resource")?;
    for ns in DEFAULT_NAMESPACES {
        objects::create(
            &mut st,
            &nsdef,
            "v1",
            "",
            json!({"metadata": {"name": ns}}),
            &ctx,
        )
        .map_err(|e| anyhow::anyhow!("bootstrap namespace {ns}: {}", e.message))?;
    }
    for obj in rbac::bootstrap_objects() {
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let def = reg
            .defs
            .iter()
            .find(|d| d.group == "rbac.authorization.k8s.io" && d.kind == kind)
            .cloned()
            .with_context(|| format!("bootstrap object of unknown kind {kind}"))?;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        objects::create(&mut st, &def, "v1", &ns, obj, &ctx)
            .map_err(|e| anyhow::anyhow!("bootstrap RBAC: {}", e.message))?;
    }
    Ok(())
}

impl Sim {
    /// Starts one HTTPS API server per name, each with its own CA, port and admin token.
    pub async fn start(names: &[&str], opts: SimOptions) -> anyhow::Result<Sim> {
        if names.is_empty() {
            anyhow::bail!("kubesim: at least one cluster name is needed");
        }
        let audit = Arc::new(AuditLog::new(opts.audit_log.as_deref())?);
        let mut clusters: Vec<Cluster> = vec![];
        let mut tasks = vec![];
        for name in names {
            if clusters.iter().any(|c| c.name() == *name) {
                anyhow::bail!("kubesim: cluster name {name} given twice");
            }
            let t =
                tls::generate(name).with_context(|| format!("TLS material for cluster {name}"))?;
            let store = Arc::new(Store::new());
            store.lock().max_token_expiration = opts.max_token_expiration;
            bootstrap(&store, &t.ca_pem)
                .with_context(|| format!("bootstrapping cluster {name}"))?;
            let admin_token = auth::random_token("kubesim-admin");
            store.lock().tokens.insert(
                admin_token.clone(),
                TokenEntry {
                    user: auth::admin_user(),
                    kind: TokenKind::Admin,
                    expires: None,
                },
            );
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .with_context(|| format!("binding a port for cluster {name}"))?;
            let addr = listener.local_addr()?;
            let inner = Arc::new(ClusterInner {
                name: name.to_string(),
                addr,
                ca_pem: t.ca_pem.clone(),
                admin_token,
                faults: Faults::new(store.clone()),
                hooks: Hooks::default(),
                exec: Arc::new(ExecContext::new(name, store.clone())),
                pod_logs: Arc::default(),
                store,
                audit: audit.clone(),
                shutdown: CancellationToken::new(),
            });
            tasks.push(tokio::spawn(workloads::run(
                inner.store.clone(),
                inner.shutdown.clone(),
            )));
            tasks.push(tokio::spawn(server::serve(
                inner.clone(),
                listener,
                t.server_config.clone(),
            )));
            clusters.push(Cluster { inner });
        }
        let peers: Vec<_> = clusters
            .iter()
            .map(|c| Arc::downgrade(&c.inner.exec))
            .collect();
        for c in &clusters {
            c.inner.exec.set_peers(peers.clone());
        }
        let mut sim = Sim {
            clusters,
            audit,
            tasks,
            kubelets: vec![],
        };
        if let Some(copts) = opts.casskop {
            for c in sim.clusters.clone() {
                let client = c
                    .casskop_client()
                    .await
                    .with_context(|| format!("casskop client for cluster {}", c.name()))?;
                casskop::install_crd(client.clone())
                    .await
                    .with_context(|| {
                        format!(
                            "installing the CassandraCluster CRD in cluster {}",
                            c.name()
                        )
                    })?;
                let o = casskop::CasskopOptions {
                    ready_after: copts.ready_after,
                    react_after: copts.react_after,
                };
                let name = c.name().to_string();
                sim.tasks.push(tokio::spawn(async move {
                    if let Err(e) = casskop::run(client, o).await {
                        tracing::error!("simulated CassKop of cluster {name} stopped: {e:#}");
                    }
                }));
            }
        }
        Ok(sim)
    }

    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// Panics on an unknown name (meant for tests).
    pub fn cluster(&self, name: &str) -> &Cluster {
        self.clusters
            .iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("kubesim: no cluster named {name}"))
    }

    pub fn kubeconfig_yaml(&self) -> String {
        let entries: Vec<_> = self
            .clusters
            .iter()
            .map(|c| (c.name().to_string(), c.url(), c.ca_pem(), c.admin_token()))
            .collect();
        kubeconfig::render(&entries)
    }

    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
            .with_context(|| format!("writing kubeconfig {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }

    /// All clusters' requests, ordered by seq.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.audit.all()
    }

    /// All clusters' requests, ordered by seq, once every request that arrived before this
    /// call is recorded (see [`AuditLog::settled`]): for counts taken right after seeing an
    /// object that a request wrote.
    pub async fn settled_audit(&self) -> Vec<AuditEntry> {
        self.audit.settled(Duration::from_secs(5)).await
    }

    pub(crate) fn audit_log(&self) -> Arc<AuditLog> {
        self.audit.clone()
    }

    /// Starts a simulated kubelet (one node) in every cluster: pods whose image `opts` maps to
    /// a binary run as processes (needs root and iproute2; see `KubeletOptions::unavailable`).
    pub async fn start_kubelet(&mut self, opts: &KubeletOptions) -> anyhow::Result<()> {
        if !self.kubelets.is_empty() {
            anyhow::bail!("kubesim: the kubelets are already started");
        }
        let servers: Vec<_> = self.clusters.iter().map(|c| c.inner.addr).collect();
        for c in &self.clusters {
            let i = &c.inner;
            let access = kubelet::ClusterAccess {
                name: &i.name,
                url: c.url(),
                addr: i.addr,
                ca_pem: &i.ca_pem,
                store: &i.store,
                logs: i.pod_logs.clone(),
            };
            let k = kubelet::start(access, servers.clone(), opts)
                .await
                .with_context(|| format!("starting the kubelet of cluster {}", c.name()))?;
            self.kubelets.push(k);
        }
        Ok(())
    }

    pub async fn shutdown(mut self) {
        for k in std::mem::take(&mut self.kubelets) {
            k.stop().await;
        }
        for c in &self.clusters {
            c.inner.shutdown.cancel();
        }
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Cluster {
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    /// https://127.0.0.1:PORT
    pub fn url(&self) -> String {
        format!("https://{}", self.inner.addr)
    }
    pub fn ca_pem(&self) -> String {
        self.inner.ca_pem.clone()
    }
    pub fn admin_token(&self) -> String {
        self.inner.admin_token.clone()
    }
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }
    /// One-shot hooks run before an answer leaves (deterministic races).
    pub fn hooks(&self) -> &Hooks {
        &self.inner.hooks
    }
    /// Faults of the simulated Cassandra ring (`nodetool status` in pod exec).
    pub fn ring_faults(&self) -> &RingFaults {
        &self.inner.exec.ring_faults
    }
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.inner.audit.of_cluster(&self.inner.name)
    }

    /// Admin client trusting this cluster's CA.
    pub async fn client(&self) -> kube::Client {
        self.client_with_token(&self.inner.admin_token)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "kubesim: building a client for cluster {}: {e:#}",
                    self.name()
                )
            })
    }

    /// A client of this cluster authenticating with `token`.
    pub async fn client_with_token(&self, token: &str) -> anyhow::Result<kube::Client> {
        Ok(kube::Client::try_from(
            self.config_with_token(token).await?,
        )?)
    }

    /// The kube-rs config of a client authenticating with `token` (e.g. to turn off kube's
    /// built-in retry of 429/503/504, which retries up to 15 times with growing delays).
    pub async fn config_with_token(&self, token: &str) -> anyhow::Result<kube::Config> {
        let yaml = kubeconfig::render(&[(
            self.name().to_string(),
            self.url(),
            self.ca_pem(),
            token.to_string(),
        )]);
        let kc = kube::config::Kubeconfig::from_yaml(&yaml)?;
        Ok(
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?,
        )
    }

    /// Sets `--service-account-max-token-expiration` (None: no cap) for later TokenRequests.
    pub fn set_max_token_expiration(&self, cap: Option<Duration>) {
        self.inner.store.lock().max_token_expiration = cap;
    }

    /// A token for `system:serviceaccount:NS:SA` (the ServiceAccount need not exist); expires after `ttl`.
    pub fn issue_token(&self, namespace: &str, sa: &str, ttl: Option<Duration>) -> String {
        let token = auth::random_token("kubesim-test");
        let expires = ttl.map(|t| auth::now_unix() + t.as_secs().max(1) as i64);
        self.inner.store.lock().tokens.insert(
            token.clone(),
            TokenEntry {
                user: auth::sa_user(namespace, sa),
                kind: TokenKind::Issued,
                expires,
            },
        );
        token
    }

    /// Creates kube-system/casskop bound to cluster-admin and returns a client authenticating as it.
    async fn casskop_client(&self) -> anyhow::Result<kube::Client> {
        {
            let mut st = self.inner.store.lock();
            let reg = st.registry.clone();
            let ctx = Ctx {
                ca_pem: &self.inner.ca_pem,
                manager: String::new(),
                dry_run: false,
                now: objects::now_rfc3339(),
                ..Default::default()
            };
            let sa = reg
                .find("", "v1", "serviceaccounts")
                .context("serviceaccounts resource")?;
            let crb = reg
                .find("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
                .context("clusterrolebindings resource")?;
            let _ = objects::create(
                &mut st,
                &sa,
                "v1",
                "kube-system",
                json!({"metadata": {"name": "casskop"}}),
                &ctx,
            );
            let _ = objects::create(
                &mut st,
                &crb,
                "v1",
                "",
                json!({"metadata": {"name": "kubesim-casskop"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "ServiceAccount", "name": "casskop", "namespace": "kube-system"}]}),
                &ctx,
            );
        }
        let token = self.issue_token("kube-system", "casskop", None);
        self.client_with_token(&token).await
    }
}
