//! A MultiCasskop and its sites as `status` and `ring` load them, and the timed reads they make.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};

use super::sites::SiteArgs;
use crate::api::{MultiCasskop, cassandra::cassandra_cluster_resource};
use crate::kube_error;
use crate::merge::{DesiredCluster, InvalidSpec, desired_for_site};
use crate::rollout::plan::site_order;
use crate::sites::{CredentialError, credentials, local};
use crate::sites::{RegistryConfig, Site, SiteRegistry, SiteState};

/// How long one site may take to answer.
pub const SITE_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a site of the federation has no client.
#[derive(thiserror::Error, Debug, Clone)]
pub enum SiteUnavailable {
    /// The controller's credential lookup failed; `reason` is the registry's.
    #[error("{reason}")]
    Registry { reason: String },
    /// The kubeconfig context named after the site is broken.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// `--use-kubeconfig-contexts`, but no context is named after the site.
    #[error(
        "no context {name} in kubeconfig {kubeconfig} (--use-kubeconfig-contexts needs one context per site, named after it)"
    )]
    NoContext { name: String, kubeconfig: String },
    /// The MultiCasskop names a site no flag or ClientConfig configures.
    #[error("site {name} is not configured")]
    NotConfigured { name: String },
}

/// A read from a site that failed.
#[derive(thiserror::Error, Debug, Clone)]
pub enum SiteCallError {
    /// The API server answered with an error, or could not be reached.
    #[error("{what}: {reason}")]
    Failed { what: String, reason: String },
    /// No answer within [`SITE_TIMEOUT`].
    #[error("{what}: no answer within {}s", SITE_TIMEOUT.as_secs())]
    Timeout { what: String },
    /// The pods could not be listed with these credentials (they may read CassandraClusters).
    #[error("{call} (credentials: {credentials})")]
    Pods {
        call: Box<SiteCallError>,
        credentials: String,
    },
}

/// One site of the federation as loaded for `status` and `ring`.
pub struct FedSite {
    pub name: String,
    /// The site's client, or why there is none (credentials missing or broken).
    pub site: Result<Arc<Site>, SiteUnavailable>,
    /// The desired CassandraCluster (name, namespace, topology), or why it cannot be built.
    pub desired: Result<DesiredCluster, InvalidSpec>,
}

/// A MultiCasskop and its sites, in rollout order.
pub struct Federation {
    pub namespace: String,
    pub mc: MultiCasskop,
    pub local: String,
    /// The local cluster's client (the one the MultiCasskop was read with).
    pub local_client: kube::Client,
    pub sites: Vec<FedSite>,
}

/// Runs `fut` with [`SITE_TIMEOUT`], turning errors into text naming `what`.
pub async fn site_call<T>(
    what: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, SiteCallError> {
    match tokio::time::timeout(SITE_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SiteCallError::Failed {
            what: what.to_string(),
            reason: kube_error::brief(&e),
        }),
        Err(_) => Err(SiteCallError::Timeout {
            what: what.to_string(),
        }),
    }
}

/// Sites taking part, in rollout order: the order the controller recorded in the status, else
/// the configured order (`siteOrder`, local, remotes), then any other `override` key by name.
fn ordered_sites(mc: &MultiCasskop, configured: &[String]) -> Vec<String> {
    let overrides = &mc.spec.override_;
    let mut out: Vec<String> = vec![];
    let mut push = |s: &str| {
        if overrides.contains_key(s) && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    if let Some(st) = &mc.status {
        st.sites.iter().for_each(|s| push(&s.name));
    }
    match site_order(configured, mc.spec.site_order.as_deref(), overrides) {
        Ok(list) => list.iter().for_each(|s| push(s)),
        Err(_) => configured.iter().for_each(|s| push(s)),
    }
    overrides.keys().for_each(|s| push(s));
    out
}

/// Reads the MultiCasskop `name` from the local cluster and builds a client for each site it
/// names, the way the controller finds credentials.
///
/// `own_contexts`: reach every remote through the kubeconfig context named after it (the
/// caller's own credentials) instead of the controller's lookup.
pub async fn load(args: &SiteArgs, name: &str, own_contexts: bool) -> anyhow::Result<Federation> {
    let kubeconfig = args.kubeconfig.as_deref();
    let context = args.context.as_deref();
    let creds = local::credentials(kubeconfig, context)
        .await
        .map_err(|e| anyhow::anyhow!("local cluster: {e}"))?;
    let local_client = creds
        .client()
        .map_err(|e| anyhow::anyhow!("local cluster ({}): {e}", creds.source.describe()))?;
    let namespace = local::resolve_namespace(args.namespace.as_deref(), kubeconfig, context);
    let local_name = local_site_name(args);
    let where_ = format!("local cluster {local_name} ({})", creds.server());
    let mc = read_multicasskop(&local_client, &namespace, name, &where_).await?;
    let cfg = RegistryConfig {
        local: local_name.clone(),
        remotes: remotes_of(args, &mc, &local_name),
        namespace: namespace.clone(),
        imports_dir: args.imports_dir.clone(),
        kubeconfig: args.kubeconfig.clone(),
        local_context: args.context.clone(),
        kubeconfig_policy: args.kubeconfig_policy(),
    };
    let (configured, states) = if own_contexts {
        let local_site = Arc::new(Site {
            name: local_name.clone(),
            default_namespace: Some(local_client.default_namespace().to_string()),
            client: local_client.clone(),
            source: creds.source.clone(),
            revision: 1,
        });
        own_context_sites(local_site, &cfg).await
    } else {
        registry_sites(local_client.clone(), cfg).await
    };
    let mc_name = mc.metadata.name.clone().unwrap_or_else(|| name.to_string());
    let sites = ordered_sites(&mc, &configured)
        .into_iter()
        .map(|s| FedSite {
            site: states
                .get(&s)
                .cloned()
                .unwrap_or_else(|| Err(SiteUnavailable::NotConfigured { name: s.clone() })),
            desired: desired_for_site(
                &mc.spec.base,
                mc.spec.override_.get(&s),
                &s,
                &namespace,
                &mc_name,
            ),
            name: s,
        })
        .collect();
    Ok(Federation {
        namespace,
        mc,
        local: local_name,
        local_client,
        sites,
    })
}

/// Each site's client or why there is none, by site name.
type SiteStates = BTreeMap<String, Result<Arc<Site>, SiteUnavailable>>;

/// The local site's name: `--local`, else the kubeconfig context (given or current), else `local`.
fn local_site_name(args: &SiteArgs) -> String {
    match &args.local {
        Some(l) if !l.trim().is_empty() => l.trim().to_string(),
        _ => args
            .context
            .clone()
            .or_else(|| {
                credentials::read_local_kubeconfig(args.kubeconfig.as_deref())
                    .ok()
                    .flatten()
                    .and_then(|k| k.current_context)
            })
            .unwrap_or_else(|| "local".to_string()),
    }
}

/// Reads the MultiCasskop from the local cluster, with an error saying what to check.
async fn read_multicasskop(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    where_: &str,
) -> anyhow::Result<MultiCasskop> {
    let api: Api<MultiCasskop> = Api::namespaced(client.clone(), namespace);
    match tokio::time::timeout(SITE_TIMEOUT, api.get_opt(name)).await {
        Ok(Ok(Some(mc))) => Ok(mc),
        Ok(Ok(None)) => anyhow::bail!(
            "MultiCasskop {namespace}/{name} not found in the {where_}; list them with `kubectl get multicasskops -n {namespace}`"
        ),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => anyhow::bail!(
            "MultiCasskop {namespace}/{name} not found in the {where_}: {} (is the MultiCasskop CRD installed?)",
            s.message
        ),
        Ok(Err(e)) => Err(anyhow::anyhow!("{}", kube_error::brief(&e)))
            .with_context(|| format!("reading MultiCasskop {namespace}/{name} from the {where_}")),
        Err(_) => anyhow::bail!(
            "reading MultiCasskop {namespace}/{name} from the {where_}: no answer within {}s",
            SITE_TIMEOUT.as_secs()
        ),
    }
}

/// The remotes to load: `--remote` flags, then every other site the MultiCasskop overrides.
fn remotes_of(args: &SiteArgs, mc: &MultiCasskop, local_name: &str) -> Vec<String> {
    let mut remotes: Vec<String> = args
        .remotes
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    for site in mc.spec.override_.keys() {
        if *site != local_name && !remotes.contains(site) {
            remotes.push(site.clone());
        }
    }
    remotes
}

/// The local site as given, every remote through the kubeconfig context named after it.
async fn own_context_sites(
    local_site: Arc<Site>,
    cfg: &RegistryConfig,
) -> (Vec<String>, SiteStates) {
    let mut states = SiteStates::new();
    states.insert(cfg.local.clone(), Ok(local_site));
    for r in &cfg.remotes {
        states.insert(r.clone(), context_site(cfg.kubeconfig.as_deref(), r).await);
    }
    let configured = std::iter::once(cfg.local.clone())
        .chain(cfg.remotes.iter().cloned())
        .collect();
    (configured, states)
}

/// Every site as the controller's registry loads it, in the registry's order.
async fn registry_sites(
    local_client: kube::Client,
    cfg: RegistryConfig,
) -> (Vec<String>, SiteStates) {
    let registry = SiteRegistry::start(local_client, cfg).await;
    let states = registry
        .sites()
        .into_iter()
        .map(|(n, st)| {
            let st = match st {
                SiteState::Ready(site) => Ok(site),
                SiteState::Unavailable { reason } => Err(SiteUnavailable::Registry { reason }),
            };
            (n, st)
        })
        .collect();
    (registry.order(), states)
}

/// A hint for permission errors: the controller's credentials are not meant to read pods or exec.
pub fn forbidden_hint(e: &str) -> &'static str {
    if e.contains("403") || e.contains("forbidden") {
        "; with the controller's credentials, run with --use-kubeconfig-contexts to use your own"
    } else {
        ""
    }
}

/// A remote reached through the kubeconfig context of the same name.
async fn context_site(
    kubeconfig: Option<&std::path::Path>,
    name: &str,
) -> Result<Arc<Site>, SiteUnavailable> {
    let creds = credentials::from_local_context(kubeconfig, name)
        .await?
        .ok_or_else(|| SiteUnavailable::NoContext {
            name: name.to_string(),
            kubeconfig: credentials::kubeconfig_label(kubeconfig),
        })?;
    let client = creds.client()?;
    Ok(Arc::new(Site {
        name: name.to_string(),
        client,
        default_namespace: creds.default_namespace.clone(),
        source: creds.source.clone(),
        revision: 1,
    }))
}

/// A site's CassandraCluster and its Cassandra pods, read live.
pub struct LiveSite {
    pub cluster: Option<DynamicObject>,
    /// The pods, or why they cannot be listed (e.g. the credentials may read CassandraClusters
    /// but not pods): the site is reachable all the same.
    pub pods: Result<Vec<Pod>, SiteCallError>,
}

/// Reads the CassandraCluster `desired.name` in `desired.namespace` and its pods (labels CassKop sets).
pub async fn read_site(site: &Site, desired: &DesiredCluster) -> Result<LiveSite, SiteCallError> {
    let ccs: Api<DynamicObject> = Api::namespaced_with(
        site.client.clone(),
        &desired.namespace,
        &cassandra_cluster_resource(),
    );
    let what = format!(
        "site {}: reading CassandraCluster {}/{}",
        site.name, desired.namespace, desired.name
    );
    let cluster = site_call(&what, ccs.get_opt(&desired.name)).await?;
    let pods: Api<Pod> = Api::namespaced(site.client.clone(), &desired.namespace);
    let lp = ListParams::default().labels(&format!(
        "app=cassandracluster,cassandracluster={}",
        desired.name
    ));
    let what = format!(
        "site {}: listing the pods of CassandraCluster {}/{}",
        site.name, desired.namespace, desired.name
    );
    let pods = site_call(&what, pods.list(&lp))
        .await
        .map(|l| {
            let mut pods = l.items;
            pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            pods
        })
        .map_err(|e| SiteCallError::Pods {
            call: Box::new(e),
            credentials: site.source.describe(),
        });
    Ok(LiveSite { cluster, pods })
}
