//! `multi-casskop status`: one table of a federation, read live from the local MultiCasskop and every site's CassandraCluster and pods (also the site loading `ring` shares).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use serde::Serialize;
use serde_json::Value;

use super::SiteArgs;
use crate::api::{
    CassandraClusterView, Condition, MultiCasskop, cassandra::cassandra_cluster_resource,
};
use crate::kube_error;
use crate::merge::{DesiredCluster, desired_for_site};
use crate::rollout::plan::site_order;
use crate::sites::credentials;
use crate::sites::{RegistryConfig, Site, SiteRegistry, SiteState};

const EXAMPLE: &str = "\
Example:
  multi-casskop status cassandra-3dc -n cassandra --use-kubeconfig-contexts \\
      --context k8s-cluster1 -l k8s-cluster1 -r k8s-cluster2,k8s-cluster3

Reads the MultiCasskop from the local cluster, then each site's CassandraCluster and its pods
directly (credentials found as the controller finds them: mounted directory under --imports-dir,
Secret NAME in the namespace, kubeconfig context NAME; with --use-kubeconfig-contexts, your own
kubeconfig context NAME, since the controller's service accounts may not read pods). Sites the
MultiCasskop names in `override`
need no --remote flag: their credentials are looked up the same way. Without --local the local
site is named after the kubeconfig context. Exit code 0 when the table could be printed (even with
unreachable sites), 1 when the MultiCasskop or the local cluster cannot be read.";

/// Output format of `status`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusOutput {
    /// One line per site.
    #[default]
    Table,
    /// The table with namespace, rollout state and credential source.
    Wide,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// Arguments of `multi-casskop status`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    about = "Show a MultiCasskop's federation: per site the phase, current action, ready pods, last transition and message",
    after_help = EXAMPLE
)]
pub struct StatusArgs {
    /// Name of the MultiCasskop.
    pub name: String,
    #[command(flatten)]
    pub sites: SiteArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = StatusOutput::Table)]
    pub output: StatusOutput,
    /// Reach every remote site through the kubeconfig context named after it (your own
    /// credentials) instead of the controller's (mounted directory, Secret, then context).
    #[arg(long)]
    pub use_kubeconfig_contexts: bool,
}

const NO_CREDENTIALS: &str = "no usable credentials";

/// How long one site may take to answer.
pub const SITE_TIMEOUT: Duration = Duration::from_secs(15);

/// One site of the federation as loaded for `status` and `ring`.
pub struct FedSite {
    pub name: String,
    /// The site's client, or why there is none (credentials missing or broken).
    pub site: Result<Arc<Site>, String>,
    /// The desired CassandraCluster (name, namespace, topology), or why it cannot be built.
    pub desired: Result<DesiredCluster, String>,
}

/// A MultiCasskop and its sites, in rollout order.
pub struct Federation {
    pub namespace: String,
    pub mc: MultiCasskop,
    pub local: String,
    pub sites: Vec<FedSite>,
}

/// Runs `fut` with [`SITE_TIMEOUT`], turning errors into text naming `what`.
pub async fn site_call<T>(
    what: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(SITE_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {}", kube_error::brief(&e))),
        Err(_) => Err(format!(
            "{what}: no answer within {}s",
            SITE_TIMEOUT.as_secs()
        )),
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
    let creds = credentials::local_credentials(kubeconfig, context)
        .await
        .map_err(|e| anyhow::anyhow!("local cluster: {e}"))?;
    let local_client = creds
        .client()
        .map_err(|e| anyhow::anyhow!("local cluster ({}): {e}", creds.source.describe()))?;
    let namespace = credentials::resolve_namespace(args.namespace.as_deref(), kubeconfig, context);
    let local_name = match &args.local {
        Some(l) if !l.trim().is_empty() => l.trim().to_string(),
        _ => context
            .map(str::to_string)
            .or_else(|| {
                credentials::read_local_kubeconfig(kubeconfig)
                    .ok()
                    .flatten()
                    .and_then(|k| k.current_context)
            })
            .unwrap_or_else(|| "local".to_string()),
    };
    let api: Api<MultiCasskop> = Api::namespaced(local_client.clone(), &namespace);
    let where_ = format!("local cluster {local_name} ({})", creds.server());
    let mc = match tokio::time::timeout(SITE_TIMEOUT, api.get_opt(name)).await {
        Ok(Ok(Some(mc))) => mc,
        Ok(Ok(None)) => anyhow::bail!(
            "MultiCasskop {namespace}/{name} not found in the {where_}; list them with `kubectl get multicasskops -n {namespace}`"
        ),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => anyhow::bail!(
            "MultiCasskop {namespace}/{name} not found in the {where_}: {} (is the MultiCasskop CRD installed?)",
            s.message
        ),
        Ok(Err(e)) => {
            return Err(anyhow::anyhow!("{}", kube_error::brief(&e))).with_context(|| {
                format!("reading MultiCasskop {namespace}/{name} from the {where_}")
            });
        }
        Err(_) => anyhow::bail!(
            "reading MultiCasskop {namespace}/{name} from the {where_}: no answer within {}s",
            SITE_TIMEOUT.as_secs()
        ),
    };

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
    let cfg = RegistryConfig {
        local: local_name.clone(),
        remotes,
        namespace: namespace.clone(),
        imports_dir: args.imports_dir.clone(),
        kubeconfig: args.kubeconfig.clone(),
        local_context: args.context.clone(),
    };
    let mut states: BTreeMap<String, Result<Arc<Site>, String>> = BTreeMap::new();
    let configured = if own_contexts {
        let local_site = Arc::new(Site {
            name: local_name.clone(),
            default_namespace: Some(local_client.default_namespace().to_string()),
            client: local_client,
            source: creds.source.clone(),
            revision: 1,
        });
        states.insert(local_name.clone(), Ok(local_site));
        for r in &cfg.remotes {
            states.insert(r.clone(), context_site(kubeconfig, r).await);
        }
        std::iter::once(local_name.clone())
            .chain(cfg.remotes.iter().cloned())
            .collect::<Vec<_>>()
    } else {
        let registry = SiteRegistry::start(local_client, cfg).await;
        for (n, st) in registry.sites() {
            let st = match st {
                SiteState::Ready(site) => Ok(site),
                SiteState::Unavailable { reason } => Err(reason),
            };
            states.insert(n, st);
        }
        registry.order()
    };
    let mc_name = mc.metadata.name.clone().unwrap_or_else(|| name.to_string());
    let sites = ordered_sites(&mc, &configured)
        .into_iter()
        .map(|s| {
            let site = states
                .get(&s)
                .cloned()
                .unwrap_or_else(|| Err(format!("site {s} is not configured")));
            let desired = desired_for_site(
                &mc.spec.base,
                mc.spec.override_.get(&s),
                &s,
                &namespace,
                &mc_name,
            )
            .map_err(|e| e.to_string());
            FedSite {
                name: s,
                site,
                desired,
            }
        })
        .collect();
    Ok(Federation {
        namespace,
        mc,
        local: local_name,
        sites,
    })
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
) -> Result<Arc<Site>, String> {
    let creds = credentials::from_local_context(kubeconfig, name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no context {name} in kubeconfig {} (--use-kubeconfig-contexts needs one context per site, named after it)",
                credentials::kubeconfig_label(kubeconfig)
            )
        })?;
    let client = creds.client().map_err(|e| e.to_string())?;
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
    pub pods: Result<Vec<Pod>, String>,
}

/// Reads the CassandraCluster `desired.name` in `desired.namespace` and its pods (labels CassKop sets).
pub async fn read_site(site: &Site, desired: &DesiredCluster) -> Result<LiveSite, String> {
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
        .map_err(|e| format!("{e} (credentials: {})", site.source.describe()));
    Ok(LiveSite { cluster, pods })
}

/// One DC-rack of a CassandraCluster topology (CassKop's defaults: `dc1`, `rack1`, 1 node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RackPlacement {
    pub dc: String,
    pub rack: String,
    pub nodes: u32,
}

fn nodes_value(v: Option<&Value>) -> Option<u32> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .map(|n| n.min(u32::MAX as u64) as u32)
}

/// Expands `spec.topology` as CassKop does: a DC's `nodesPerRacks` overrides `spec.nodesPerRacks`
/// (default 1); a DC without racks has `rack1`; no topology means `dc1`/`rack1`.
pub fn expand_topology(spec: &Value) -> Vec<RackPlacement> {
    let default_nodes = nodes_value(spec.get("nodesPerRacks")).unwrap_or(1);
    let Some(dcs) = spec
        .pointer("/topology/dc")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
    else {
        return vec![RackPlacement {
            dc: "dc1".into(),
            rack: "rack1".into(),
            nodes: default_nodes,
        }];
    };
    let mut out = vec![];
    for (i, dc) in dcs.iter().enumerate() {
        let name = dc
            .get("name")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("dc{}", i + 1));
        let nodes = nodes_value(dc.get("nodesPerRacks")).unwrap_or(default_nodes);
        let mut racks: Vec<String> = dc
            .get("rack")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(j, r)| {
                        r.get("name")
                            .and_then(Value::as_str)
                            .map(String::from)
                            .unwrap_or_else(|| format!("rack{}", j + 1))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if racks.is_empty() {
            racks.push("rack1".into());
        }
        out.extend(racks.into_iter().map(|rack| RackPlacement {
            dc: name.clone(),
            rack,
            nodes,
        }));
    }
    out
}

/// Expected pods of a CassandraCluster named `cluster`: `<cluster>-<dc>-<rack>-<i>`, with their DC and rack.
pub fn expected_pods(cluster: &str, spec: &Value) -> Vec<(String, String, String)> {
    expand_topology(spec)
        .into_iter()
        .flat_map(|p| {
            (0..p.nodes).map(move |i| {
                (
                    format!("{cluster}-{}-{}-{i}", p.dc, p.rack),
                    p.dc.clone(),
                    p.rack.clone(),
                )
            })
        })
        .collect()
}

/// True when the pod is Running with its Ready condition True.
pub fn pod_ready(p: &Pod) -> bool {
    let Some(st) = &p.status else { return false };
    st.phase.as_deref() == Some("Running")
        && st
            .conditions
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One line of the status table.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SiteLine {
    pub site: String,
    pub namespace: Option<String>,
    pub reachable: bool,
    /// Why the site could not be read (credentials, network, RBAC), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub phase: Option<String>,
    pub last_cluster_action: Option<String>,
    pub last_cluster_action_status: Option<String>,
    pub ready_pods: Option<u32>,
    pub desired_pods: Option<u32>,
    /// The site's rollout state as the controller recorded it (Ready, InProgress, Waiting, ...).
    pub state: Option<String>,
    pub last_transition_time: Option<String>,
    pub message: Option<String>,
    pub source: Option<String>,
}

/// The whole status report.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub name: String,
    pub namespace: String,
    pub phase: Option<String>,
    pub current_site: Option<String>,
    pub ready_sites: Option<String>,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
    pub sites: Vec<SiteLine>,
}

async fn site_line(mc: &MultiCasskop, s: &FedSite) -> SiteLine {
    let recorded = mc
        .status
        .as_ref()
        .and_then(|st| st.sites.iter().find(|x| x.name == s.name));
    let mut line = SiteLine {
        site: s.name.clone(),
        namespace: s
            .desired
            .as_ref()
            .ok()
            .map(|d| d.namespace.clone())
            .or_else(|| recorded.and_then(|r| r.namespace.clone())),
        state: recorded.and_then(|r| r.state.clone()),
        last_transition_time: recorded.and_then(|r| r.last_transition_time.clone()),
        message: recorded.and_then(|r| r.message.clone()),
        ..Default::default()
    };
    let last_known = |line: &mut SiteLine| {
        // Unreachable: show what the controller last recorded, marked as such by `reachable: false`.
        line.phase = recorded.and_then(|r| r.phase.clone());
        line.last_cluster_action = recorded.and_then(|r| r.last_cluster_action.clone());
        line.last_cluster_action_status =
            recorded.and_then(|r| r.last_cluster_action_status.clone());
    };
    let site = match &s.site {
        Ok(site) => site,
        Err(reason) => {
            line.error = Some(format!("{NO_CREDENTIALS}: {reason}"));
            last_known(&mut line);
            return line;
        }
    };
    line.source = Some(site.source.describe());
    let desired = match &s.desired {
        Ok(d) => d,
        Err(e) => {
            line.reachable = true;
            line.error = Some(format!("invalid spec for this site: {e}"));
            return line;
        }
    };
    match read_site(site, desired).await {
        Err(e) => {
            line.error = Some(e);
            last_known(&mut line);
        }
        Ok(live) => {
            line.reachable = true;
            let spec = live
                .cluster
                .as_ref()
                .and_then(|c| c.data.get("spec"))
                .or(desired.object.get("spec"))
                .cloned()
                .unwrap_or(Value::Null);
            line.desired_pods = Some(expand_topology(&spec).iter().map(|p| p.nodes).sum());
            match &live.pods {
                Ok(pods) => {
                    line.ready_pods = Some(pods.iter().filter(|p| pod_ready(p)).count() as u32)
                }
                Err(e) => line.error = Some(format!("pods not readable: {e}{}", forbidden_hint(e))),
            }
            match &live.cluster {
                Some(cc) => {
                    let v = CassandraClusterView(cc);
                    line.phase = v.phase().map(String::from);
                    line.last_cluster_action = v.last_cluster_action().map(String::from);
                    line.last_cluster_action_status =
                        v.last_cluster_action_status().map(String::from);
                }
                None => {
                    if line.message.is_none() {
                        line.message = Some(format!(
                            "no CassandraCluster {}/{} yet",
                            desired.namespace, desired.name
                        ));
                    }
                }
            }
        }
    }
    line
}

/// Builds the report: the MultiCasskop's headline and one line per site (sites read concurrently).
pub async fn report(fed: &Federation) -> StatusReport {
    let lines = futures::future::join_all(fed.sites.iter().map(|s| site_line(&fed.mc, s))).await;
    let st = fed.mc.status.clone().unwrap_or_default();
    StatusReport {
        name: fed.mc.metadata.name.clone().unwrap_or_default(),
        namespace: fed.namespace.clone(),
        phase: st.phase,
        current_site: st.current_site,
        ready_sites: st.ready_sites,
        generation: fed.mc.metadata.generation,
        observed_generation: st.observed_generation,
        conditions: st.conditions,
        sites: lines,
    }
}

/// "3m12s"-style age of an RFC 3339 time, relative to `now`.
pub fn age(time: &str, now: jiff::Timestamp) -> String {
    let Ok(t) = time.parse::<jiff::Timestamp>() else {
        return time.to_string();
    };
    let secs = (now.as_second() - t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m{}s ago", s / 60, s % 60),
        s if s < 48 * 3600 => format!("{}h{}m ago", s / 3600, (s % 3600) / 60),
        s => format!("{}d ago", s / 86400),
    }
}

/// Renders rows as a left-aligned table with 3 spaces between columns (kubectl's look).
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut l = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            l.push_str(c);
            if i + 1 < n {
                l.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

fn dash(v: &Option<String>) -> String {
    v.clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// The human-readable report.
pub fn render(r: &StatusReport, wide: bool, now: jiff::Timestamp) -> String {
    let mut out = format!(
        "MultiCasskop {}/{}: phase {}, site in progress {}, ready sites {}",
        r.namespace,
        r.name,
        dash(&r.phase),
        dash(&r.current_site),
        dash(&r.ready_sites)
    );
    match (r.generation, r.observed_generation) {
        (Some(g), Some(o)) if g != o => out.push_str(&format!(
            " (status describes generation {o}, spec is at {g})"
        )),
        (Some(_), None) if r.phase.is_none() => {
            out.push_str(" (no status from the controller yet)")
        }
        _ => {}
    }
    out.push('\n');
    for c in &r.conditions {
        out.push_str(&format!(
            "  {}={} ({}): {}\n",
            c.type_, c.status, c.reason, c.message
        ));
    }
    if let Some(v) = r
        .conditions
        .iter()
        .find(|c| c.type_ == "Valid" && c.status == "False")
    {
        out.push_str(&format!(
            "INVALID SPEC: {} — nothing is created or changed until it is fixed\n",
            v.message
        ));
    }
    out.push('\n');
    let mut header = vec![
        "SITE",
        "PHASE",
        "ACTION",
        "STATUS",
        "READY",
        "LAST TRANSITION",
        "MESSAGE",
    ];
    if wide {
        header = vec![
            "SITE",
            "NAMESPACE",
            "STATE",
            "PHASE",
            "ACTION",
            "STATUS",
            "READY",
            "LAST TRANSITION",
            "CREDENTIALS",
            "MESSAGE",
        ];
    }
    let rows: Vec<Vec<String>> = r
        .sites
        .iter()
        .map(|s| {
            let ready = match (s.ready_pods, s.desired_pods) {
                (Some(a), Some(b)) => format!("{a}/{b}"),
                _ => "?".into(),
            };
            let mut phase = dash(&s.phase);
            if !s.reachable && s.phase.is_some() {
                phase.push_str(" (last known)");
            }
            let message = match (&s.error, &s.message) {
                (Some(e), _) if !s.reachable && !e.starts_with(NO_CREDENTIALS) => {
                    format!("UNREACHABLE: {e}")
                }
                (Some(e), Some(m)) => format!("{m} ({e})"),
                (Some(e), None) => e.clone(),
                (None, m) => dash(m),
            };
            let when = s
                .last_transition_time
                .as_deref()
                .map(|t| age(t, now))
                .unwrap_or_else(|| "-".into());
            let mut row = vec![
                s.site.clone(),
                phase,
                dash(&s.last_cluster_action),
                dash(&s.last_cluster_action_status),
                ready,
                when,
            ];
            if wide {
                row.insert(1, dash(&s.namespace));
                row.insert(2, dash(&s.state));
                row.push(dash(&s.source));
            }
            row.push(message);
            row
        })
        .collect();
    if rows.is_empty() {
        out.push_str("(no site: spec.override names none)\n");
    } else {
        out.push_str(&render_table(&header, &rows));
    }
    out
}

/// `multi-casskop status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let fed = load(&args.sites, &args.name, args.use_kubeconfig_contexts).await?;
    let r = report(&fed).await;
    match args.output {
        StatusOutput::Table | StatusOutput::Wide => {
            print!(
                "{}",
                render(
                    &r,
                    args.output == StatusOutput::Wide,
                    jiff::Timestamp::now()
                )
            )
        }
        StatusOutput::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        StatusOutput::Yaml => print!("{}", serde_saphyr::to_string(&r)?),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topology_expansion_follows_casskop() {
        assert_eq!(
            expand_topology(&json!({})),
            vec![RackPlacement {
                dc: "dc1".into(),
                rack: "rack1".into(),
                nodes: 1
            }]
        );
        let spec = json!({"nodesPerRacks": 2, "topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "r1"}, {"name": "r2"}]},
            {"name": "dc2", "nodesPerRacks": "3"}]}});
        let t = expand_topology(&spec);
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[1].dc.as_str(), t[1].rack.as_str(), t[1].nodes),
            ("dc1", "r2", 2)
        );
        assert_eq!(
            (t[2].dc.as_str(), t[2].rack.as_str(), t[2].nodes),
            ("dc2", "rack1", 3)
        );
        let pods = expected_pods("c", &spec);
        assert_eq!(pods.len(), 7);
        assert_eq!(pods[0].0, "c-dc1-r1-0");
        assert_eq!(pods[6].0, "c-dc2-rack1-2");
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        assert_eq!(age("2026-01-01T11:59:30Z", now), "30s ago");
        assert_eq!(age("2026-01-01T11:55:00Z", now), "5m0s ago");
        assert_eq!(age("2026-01-01T09:30:00Z", now), "2h30m ago");
        assert_eq!(age("not a time", now), "not a time");
    }

    fn sample() -> StatusReport {
        StatusReport {
            name: "c3".into(),
            namespace: "ns".into(),
            phase: Some("Progressing".into()),
            current_site: Some("b".into()),
            ready_sites: Some("1/3".into()),
            generation: Some(2),
            observed_generation: Some(2),
            conditions: vec![Condition {
                type_: "Valid".into(),
                status: "True".into(),
                reason: "SpecValid".into(),
                message: "ok".into(),
                last_transition_time: "2026-01-01T11:00:00Z".into(),
                observed_generation: None,
            }],
            sites: vec![
                SiteLine {
                    site: "a".into(),
                    reachable: true,
                    phase: Some("Running".into()),
                    last_cluster_action: Some("Initializing".into()),
                    last_cluster_action_status: Some("Done".into()),
                    ready_pods: Some(2),
                    desired_pods: Some(2),
                    last_transition_time: Some("2026-01-01T11:59:00Z".into()),
                    message: Some("Running".into()),
                    ..Default::default()
                },
                SiteLine {
                    site: "c".into(),
                    reachable: false,
                    error: Some("site c: connection refused".into()),
                    phase: Some("Initializing".into()),
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn table_shows_each_site_and_the_headline() {
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let out = render(&sample(), false, now);
        println!("{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "MultiCasskop ns/c3: phase Progressing, site in progress b, ready sites 1/3"
        );
        assert_eq!(lines[1], "  Valid=True (SpecValid): ok");
        assert!(lines[3].starts_with("SITE   PHASE"), "{}", lines[3]);
        assert!(lines[4].starts_with("a      Running  "), "{}", lines[4]);
        assert!(
            lines[4].contains("2/2") && lines[4].contains("60s ago"),
            "{}",
            lines[4]
        );
        assert!(
            lines[5].contains("Initializing (last known)")
                && lines[5].contains("UNREACHABLE: site c: connection refused"),
            "{}",
            lines[5]
        );
        let wide = render(&sample(), true, now);
        assert!(wide.contains("CREDENTIALS"));
    }
}
