//! `multi-casskop ring`: runs `nodetool status` in a Cassandra pod of every site through the exec API, parses it, and checks that every site sees every expected DC with every node Up/Normal.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::common::federation::{self, FedSite, Federation, SITE_TIMEOUT};
use super::common::table::render_table;
use super::common::topology::{expected_pods, pod_ready};
use crate::cli::common::sites::SiteArgs;
use crate::kube_error;
use crate::merge::DesiredCluster;
use crate::sites::Site;

const EXAMPLE: &str = "\
Example:
  multi-casskop ring cassandra-3dc -n cassandra --use-kubeconfig-contexts \\
      --context k8s-cluster1 -l k8s-cluster1 -r k8s-cluster2,k8s-cluster3

In every site it finds a Running pod of the site's CassandraCluster, runs `nodetool status` in it
through the Kubernetes exec API (needs `create` on pods/exec), and prints one table: every node
with its state as seen from each site. Exit code 0 only when every DC of every site's topology is
present in every site's view with every node UN; 2 otherwise, each problem named with the site
whose point of view shows it (a site that cannot be reached or read is named as such); 1 when the
MultiCasskop or the local cluster cannot be read. Needs `list` on pods and `create` on pods/exec
in each site: the controller's service accounts usually lack them, so pass
--use-kubeconfig-contexts to use your own kubeconfig contexts (one per site, named after it).";

/// Output format of `ring`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RingOutput {
    /// The combined table and the verdict.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// Arguments of `multi-casskop ring`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    about = "Check the Cassandra ring from every site: nodetool status in one pod per site, every DC present, every node UN",
    after_help = EXAMPLE
)]
pub struct RingArgs {
    /// Name of the MultiCasskop.
    pub name: String,
    #[command(flatten)]
    pub sites: SiteArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = RingOutput::Table)]
    pub output: RingOutput,
    /// Reach every remote site through the kubeconfig context named after it (your own
    /// credentials) instead of the controller's (mounted directory, Secret, then context). The
    /// controller's service account may not exec into pods; `ring` needs `list` on pods and
    /// `create` on pods/exec.
    #[arg(long)]
    pub use_kubeconfig_contexts: bool,
}

/// One node line of `nodetool status`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct NodeLine {
    /// `U`p or `D`own.
    pub status: char,
    /// `N`ormal, `L`eaving, `J`oining or `M`oving.
    pub state: char,
    pub address: Option<String>,
    pub load: Option<String>,
    pub tokens: Option<u32>,
    pub owns: Option<String>,
    pub host_id: Option<String>,
    pub rack: String,
}

impl NodeLine {
    /// `UN`, `DN`, `UJ`, ...
    pub fn code(&self) -> String {
        format!("{}{}", self.status, self.state)
    }
}

/// One `Datacenter:` block.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct DcBlock {
    pub name: String,
    pub nodes: Vec<NodeLine>,
}

/// `nodetool status` output that cannot be read.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum StatusParseError {
    /// A node line whose columns do not fit the known layouts.
    #[error("unreadable node line {line:?}: {why}")]
    NodeLine { line: String, why: &'static str },
    /// `Datacenter:` with nothing after it.
    #[error("a `Datacenter:` line without a name")]
    UnnamedDatacenter,
    /// A node line before the first `Datacenter:` line.
    #[error("node line {line:?} before any `Datacenter:` line")]
    NodeBeforeDatacenter { line: String },
    /// No `Datacenter:` line at all (not nodetool status output).
    #[error("no `Datacenter:` block in the nodetool output")]
    NoDatacenter,
}

/// Running `nodetool status` in a pod failed.
#[derive(thiserror::Error, Debug)]
pub enum NodetoolError {
    /// The exec failed or nodetool exited with an error.
    #[error("pod {pod}: {problem}")]
    Exec { pod: String, problem: ExecProblem },
    /// No answer within [`SITE_TIMEOUT`].
    #[error("pod {pod}: nodetool status gave no answer within {}s", SITE_TIMEOUT.as_secs())]
    Timeout { pod: String },
    /// nodetool answered, but not with a status we can read.
    #[error("unreadable nodetool output: {0}")]
    Unreadable(#[from] StatusParseError),
}

/// What went wrong inside one exec of `nodetool status`.
#[derive(thiserror::Error, Debug)]
pub enum ExecProblem {
    /// The API server refused the exec (RBAC, no such pod or container).
    #[error("exec refused: {0}")]
    Refused(String),
    /// The exec session lacks a stream it was asked for (`stdout`, `stderr`, `status`).
    #[error("no {0} stream")]
    NoStream(&'static str),
    /// Reading stdout or stderr failed.
    #[error("reading the exec streams: {0}")]
    Read(String),
    /// nodetool ran and failed: its message and stderr.
    #[error("nodetool status failed: {0}")]
    Failed(String),
}

const LOAD_UNITS: [&str; 10] = [
    "bytes", "B", "KB", "KiB", "MB", "MiB", "GB", "GiB", "TB", "TiB",
];

fn parse_node(line: &str) -> Result<NodeLine, StatusParseError> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let bad = |why: &'static str| StatusParseError::NodeLine {
        line: line.to_string(),
        why,
    };
    if t.len() < 3 {
        return Err(bad("too few columns"));
    }
    let code: Vec<char> = t[0].chars().collect();
    let (status, state) = match code.as_slice() {
        [s @ ('U' | 'D' | '?'), st @ ('N' | 'L' | 'J' | 'M' | '?')] => (*s, *st),
        _ => return Err(bad("the first column is not a status like UN or DN")),
    };
    let rack = t[t.len() - 1].to_string();
    let host_id = Some(t[t.len() - 2].to_string());
    let mut mid: Vec<&str> = t[1..t.len() - 2].to_vec();
    let mut owns = None;
    if mid.last().is_some_and(|o| o.ends_with('%') || *o == "?") {
        owns = mid.pop().map(String::from);
    }
    // The token count is a bare integer (a load always has a unit, or is `?`).
    let tokens = mid.last().and_then(|x| x.parse::<u32>().ok());
    if tokens.is_some() {
        mid.pop();
    }
    let is_unit = |s: &str| LOAD_UNITS.contains(&s);
    let (address, load) = match mid.as_slice() {
        [] => (None, None),
        [one] if *one == "?" || one.parse::<f64>().is_ok() => (None, Some(one.to_string())),
        [one] => (Some(one.to_string()), None),
        [num, unit] if is_unit(unit) => (None, Some(format!("{num} {unit}"))),
        [addr, load] => (Some(addr.to_string()), Some(load.to_string())),
        [addr, num, unit] if is_unit(unit) => {
            (Some(addr.to_string()), Some(format!("{num} {unit}")))
        }
        _ => return Err(bad("cannot tell the address, load and token columns apart")),
    };
    Ok(NodeLine {
        status,
        state,
        address,
        load,
        tokens,
        owns,
        host_id,
        rack,
    })
}

/// Parses `nodetool status` output (Cassandra 2.x to 4.x): one block per `Datacenter:` line,
/// one node per line starting with a status code; legends, headers, notes and warnings skipped.
pub fn parse_status(text: &str) -> Result<Vec<DcBlock>, StatusParseError> {
    let mut dcs: Vec<DcBlock> = vec![];
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("Datacenter:") {
            let name = name.trim();
            if name.is_empty() {
                return Err(StatusParseError::UnnamedDatacenter);
            }
            dcs.push(DcBlock {
                name: name.to_string(),
                nodes: vec![],
            });
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        let code: Vec<char> = first.chars().collect();
        let is_node = matches!(code.as_slice(), ['U' | 'D', 'N' | 'L' | 'J' | 'M' | '?']);
        if !is_node {
            continue;
        }
        let node = parse_node(line)?;
        match dcs.last_mut() {
            Some(dc) => dc.nodes.push(node),
            None => {
                return Err(StatusParseError::NodeBeforeDatacenter {
                    line: line.to_string(),
                });
            }
        }
    }
    if dcs.is_empty() {
        return Err(StatusParseError::NoDatacenter);
    }
    Ok(dcs)
}

/// What one site's pod sees.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    pub site: String,
    /// The pod nodetool ran in.
    pub pod: Option<String>,
    /// Why there is no view (site unreachable, no Running pod, exec refused, unreadable output).
    pub error: Option<String>,
    pub datacenters: Vec<DcBlock>,
}

/// A node the topology of some site expects.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedNode {
    pub site: String,
    pub dc: String,
    pub rack: String,
    pub pod: String,
    /// Pod IP when the site could be read and the pod has one.
    pub address: Option<String>,
}

/// One row of the combined table.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RingRow {
    pub dc: String,
    pub node: String,
    pub address: Option<String>,
    pub rack: Option<String>,
    pub load: Option<String>,
    pub owns: Option<String>,
    /// Site -> state in that site's view (`UN`, `DN`, ...; absent: not in that view).
    pub seen_from: BTreeMap<String, String>,
}

/// The ring check's result.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct RingReport {
    pub name: String,
    pub namespace: String,
    pub ok: bool,
    pub views: Vec<SiteView>,
    pub expected: Vec<ExpectedNode>,
    pub nodes: Vec<RingRow>,
    pub problems: Vec<String>,
}

/// Checks the views against the expected topology (pure). `site_errors`: sites whose expected
/// topology could not be established (no CassandraCluster, invalid spec).
pub fn check(
    name: &str,
    namespace: &str,
    views: Vec<SiteView>,
    expected: Vec<ExpectedNode>,
    site_errors: Vec<String>,
) -> RingReport {
    let mut problems = site_errors;
    let names = NodeNames::new(&expected);
    let mut by_dc: BTreeMap<&str, Vec<&ExpectedNode>> = BTreeMap::new();
    for e in &expected {
        by_dc.entry(e.dc.as_str()).or_default().push(e);
    }
    for v in &views {
        problems.extend(view_problems(v, &by_dc, &names));
    }
    // Expected nodes that have no pod (or no IP) at a reachable site.
    for e in &expected {
        if e.address.is_none() && !views.iter().any(|v| v.site == e.site && v.error.is_some()) {
            problems.push(format!(
                "site {}: pod {} (DC {}) does not exist or has no IP",
                e.site, e.pod, e.dc
            ));
        }
    }
    let nodes = combined_rows(&views, &expected, &names);
    RingReport {
        name: name.to_string(),
        namespace: namespace.to_string(),
        ok: problems.is_empty(),
        views,
        expected,
        nodes,
        problems,
    }
}

/// Names nodes after the expected pod with their address, else by the address itself.
struct NodeNames<'a> {
    pod_of: BTreeMap<&'a str, &'a ExpectedNode>,
}

impl<'a> NodeNames<'a> {
    fn new(expected: &'a [ExpectedNode]) -> Self {
        Self {
            pod_of: expected
                .iter()
                .filter_map(|e| e.address.as_deref().map(|a| (a, e)))
                .collect(),
        }
    }

    fn name(&self, addr: Option<&str>) -> String {
        match addr {
            Some(a) => self
                .pod_of
                .get(a)
                .map(|e| e.pod.clone())
                .unwrap_or_else(|| a.to_string()),
            None => "(no address)".into(),
        }
    }
}

/// What is wrong in one site's view: its error, or every expected DC checked in it.
fn view_problems(
    v: &SiteView,
    by_dc: &BTreeMap<&str, Vec<&ExpectedNode>>,
    names: &NodeNames<'_>,
) -> Vec<String> {
    if let Some(err) = &v.error {
        return vec![format!("site {}: {err}", v.site)];
    }
    let pov = format!(
        "from {}'s point of view (pod {})",
        v.site,
        v.pod.as_deref().unwrap_or("?")
    );
    let mut problems = vec![];
    for (dc, want) in by_dc {
        let owners: BTreeSet<&str> = want.iter().map(|e| e.site.as_str()).collect();
        let owners = owners.into_iter().collect::<Vec<_>>().join(", ");
        match v.datacenters.iter().find(|d| d.name == *dc) {
            None => problems.push(format!("{pov}: DC {dc} (site {owners}) is missing")),
            Some(block) => problems.extend(dc_problems(&pov, dc, want, block, names)),
        }
    }
    problems
}

/// What is wrong with DC `dc` as one view shows it: nodes not UN, nodes missing.
fn dc_problems(
    pov: &str,
    dc: &str,
    want: &[&ExpectedNode],
    block: &DcBlock,
    names: &NodeNames<'_>,
) -> Vec<String> {
    let mut problems = vec![];
    for n in &block.nodes {
        if n.code() != "UN" {
            problems.push(format!(
                "{pov}: node {} ({}, DC {dc}, rack {}) is {}, not UN",
                names.name(n.address.as_deref()),
                n.address.as_deref().unwrap_or("?"),
                n.rack,
                n.code()
            ));
        }
    }
    // Nodes are matched by address (the pod IP, or the host IP with hostNetwork). When
    // no address of the DC matches (nodes broadcast other addresses, or the output has no
    // address column), only the count of nodes can be checked.
    let shown = |a: &str| block.nodes.iter().any(|n| n.address.as_deref() == Some(a));
    let any_match = want.iter().any(|e| e.address.as_deref().is_some_and(shown));
    let mut missing_named = 0;
    for e in want.iter().filter(|_| any_match) {
        if let Some(a) = &e.address
            && !shown(a)
        {
            missing_named += 1;
            problems.push(format!(
                "{pov}: node {} ({a}, DC {dc}, site {}) is missing",
                e.pod, e.site
            ));
        }
    }
    if missing_named == 0 && block.nodes.len() < want.len() {
        problems.push(format!(
            "{pov}: DC {dc} shows {} of its {} expected nodes",
            block.nodes.len(),
            want.len()
        ));
    }
    problems
}

/// The combined table: every node any view shows, plus expected nodes nobody shows.
fn combined_rows(
    views: &[SiteView],
    expected: &[ExpectedNode],
    names: &NodeNames<'_>,
) -> Vec<RingRow> {
    let mut rows: BTreeMap<(String, String), RingRow> = BTreeMap::new();
    for v in views {
        for dc in &v.datacenters {
            for n in &dc.nodes {
                let node = names.name(n.address.as_deref());
                let row = rows
                    .entry((dc.name.clone(), node.clone()))
                    .or_insert_with(|| RingRow {
                        dc: dc.name.clone(),
                        node,
                        address: n.address.clone(),
                        rack: Some(n.rack.clone()),
                        load: n.load.clone(),
                        owns: n.owns.clone(),
                        seen_from: BTreeMap::new(),
                    });
                row.seen_from.insert(v.site.clone(), n.code());
            }
        }
    }
    let mut rows: Vec<RingRow> = rows.into_values().collect();
    for e in expected {
        if let Some(a) = &e.address {
            if rows
                .iter()
                .any(|r| r.address.as_deref() == Some(a.as_str()))
            {
                continue;
            }
        } else if let Some(r) = rows.iter_mut().find(|r| {
            // Pod IPs of an unreachable site are unknown: name its DC's unnamed nodes after
            // the expected pods, rack by rack.
            r.dc == e.dc
                && r.rack.as_deref() == Some(e.rack.as_str())
                && r.address.as_deref() == Some(r.node.as_str())
        }) {
            r.node = e.pod.clone();
            continue;
        }
        rows.push(RingRow {
            dc: e.dc.clone(),
            node: e.pod.clone(),
            address: e.address.clone(),
            rack: Some(e.rack.clone()),
            load: None,
            owns: None,
            seen_from: BTreeMap::new(),
        });
    }
    rows.sort_by(|a, b| (&a.dc, &a.node).cmp(&(&b.dc, &b.node)));
    rows
}

/// The human-readable report.
pub fn render(r: &RingReport) -> String {
    let sites: Vec<&str> = r.views.iter().map(|v| v.site.as_str()).collect();
    let mut header = vec!["DC", "NODE", "ADDRESS", "RACK", "LOAD", "OWNS"];
    let seen: Vec<String> = sites.iter().map(|s| format!("FROM {s}")).collect();
    header.extend(seen.iter().map(String::as_str));
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = r
        .nodes
        .iter()
        .map(|n| {
            let mut row = vec![
                n.dc.clone(),
                n.node.clone(),
                dash(&n.address),
                dash(&n.rack),
                dash(&n.load),
                dash(&n.owns),
            ];
            for v in &r.views {
                let cell = if v.error.is_some() {
                    "?".to_string()
                } else {
                    n.seen_from
                        .get(&v.site)
                        .cloned()
                        .unwrap_or_else(|| "missing".into())
                };
                row.push(cell);
            }
            row
        })
        .collect();
    let mut out = format!(
        "Cassandra ring of MultiCasskop {}/{}, as nodetool status shows it in each site\n\n",
        r.namespace, r.name
    );
    out.push_str(&render_table(&header, &rows));
    out.push('\n');
    for v in &r.views {
        match (&v.pod, &v.error) {
            (_, Some(e)) => out.push_str(&format!("{}: no view: {e}\n", v.site)),
            (Some(p), None) => out.push_str(&format!("{}: nodetool status in pod {p}\n", v.site)),
            _ => {}
        }
    }
    let dcs: BTreeSet<&str> = r.expected.iter().map(|e| e.dc.as_str()).collect();
    if r.ok {
        out.push_str(&format!(
            "\nring OK: {} DCs, {} nodes, all UN from every site's point of view ({})\n",
            dcs.len(),
            r.expected.len(),
            sites.join(", ")
        ));
    } else {
        out.push_str(&format!("\nring NOT OK ({} problems):\n", r.problems.len()));
        for p in &r.problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    out
}

/// Runs `nodetool status` in `pod` through the exec API; Ok(stdout) only for exit code 0.
async fn nodetool_status(pods: &Api<Pod>, pod: &Pod) -> Result<String, NodetoolError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let container = pod
        .spec
        .as_ref()
        .and_then(|s| {
            s.containers
                .iter()
                .find(|c| c.name == "cassandra")
                .or(s.containers.first())
        })
        .map(|c| c.name.clone());
    let mut ap = AttachParams::default().stdout(true).stderr(true);
    if let Some(c) = container {
        ap = ap.container(c);
    }
    let run = async {
        let mut a = pods
            .exec(&name, vec!["nodetool", "status"], &ap)
            .await
            .map_err(|e| ExecProblem::Refused(kube_error::brief(&e)))?;
        let (mut so, mut se) = (
            a.stdout().ok_or(ExecProblem::NoStream("stdout"))?,
            a.stderr().ok_or(ExecProblem::NoStream("stderr"))?,
        );
        let status = a.take_status().ok_or(ExecProblem::NoStream("status"))?;
        let (mut out, mut err) = (String::new(), String::new());
        let (r1, r2) = tokio::join!(so.read_to_string(&mut out), se.read_to_string(&mut err));
        r1.and(r2).map_err(|e| ExecProblem::Read(e.to_string()))?;
        let st = status.await;
        let _ = a.join().await;
        match st {
            Some(s) if s.status.as_deref() == Some("Success") => Ok(out),
            Some(s) => Err(ExecProblem::Failed(format!(
                "{}{}",
                s.message.unwrap_or_default(),
                if err.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", err.trim())
                }
            ))),
            None if err.trim().is_empty() => Ok(out),
            None => Err(ExecProblem::Failed(err.trim().to_string())),
        }
    };
    match tokio::time::timeout(SITE_TIMEOUT, run).await {
        Ok(r) => r.map_err(|problem| NodetoolError::Exec { pod: name, problem }),
        Err(_) => Err(NodetoolError::Timeout { pod: name }),
    }
}

/// Reads one site: its expected nodes and its view of the ring.
async fn site_view(s: &FedSite) -> (SiteView, Vec<ExpectedNode>, Option<String>) {
    let mut view = SiteView {
        site: s.name.clone(),
        pod: None,
        error: None,
        datacenters: vec![],
    };
    let expected_from = |spec: &Value, name: &str, live: &BTreeMap<String, String>| {
        expected_nodes(&s.name, spec, name, live)
    };
    let desired = match &s.desired {
        Ok(d) => d,
        Err(e) => {
            view.error = Some(format!("invalid spec for this site: {e}"));
            return (view, vec![], None);
        }
    };
    let desired_spec = desired.object.get("spec").cloned().unwrap_or(Value::Null);
    let site = match &s.site {
        Ok(site) => site,
        Err(reason) => {
            view.error = Some(format!("unreachable: no usable credentials: {reason}"));
            return (
                view,
                expected_from(&desired_spec, &desired.name, &BTreeMap::new()),
                None,
            );
        }
    };
    let live = match federation::read_site(site, desired).await {
        Ok(l) => l,
        Err(e) => {
            view.error = Some(format!("unreachable: {e}"));
            return (
                view,
                expected_from(&desired_spec, &desired.name, &BTreeMap::new()),
                None,
            );
        }
    };
    let Some(cc) = &live.cluster else {
        view.error = Some(format!(
            "no CassandraCluster {}/{} in this site",
            desired.namespace, desired.name
        ));
        let note = format!(
            "site {}: no CassandraCluster {}/{}, so its DC cannot be checked",
            s.name, desired.namespace, desired.name
        );
        return (
            view,
            expected_from(&desired_spec, &desired.name, &BTreeMap::new()),
            Some(note),
        );
    };
    let spec = cc.data.get("spec").cloned().unwrap_or(desired_spec);
    let all_pods = match live.pods {
        Ok(p) => p,
        Err(e) => {
            view.error = Some(format!(
                "cannot list the Cassandra pods: {e}{}",
                federation::forbidden_hint(&e.to_string())
            ));
            return (
                view,
                expected_from(&spec, &desired.name, &BTreeMap::new()),
                None,
            );
        }
    };
    let expected = expected_from(&spec, &desired.name, &pod_ips(&all_pods));
    if let Err(e) = run_nodetool(site, desired, &all_pods, &mut view).await {
        view.error = Some(e.to_string());
    }
    (view, expected, None)
}

/// The nodes CassandraCluster `cluster` of site `site` should have, with their live addresses.
fn expected_nodes(
    site: &str,
    spec: &Value,
    cluster: &str,
    live: &BTreeMap<String, String>,
) -> Vec<ExpectedNode> {
    expected_pods(cluster, spec)
        .into_iter()
        .map(|(pod, dc, rack)| ExpectedNode {
            site: site.to_string(),
            dc,
            rack,
            address: live.get(&pod).cloned(),
            pod,
        })
        .collect()
}

/// Each pod's address as Cassandra shows it: the pod IP, or the host IP with hostNetwork.
fn pod_ips(pods: &[Pod]) -> BTreeMap<String, String> {
    pods.iter()
        .filter_map(|p| {
            let st = p.status.as_ref()?;
            let host_network = p.spec.as_ref().and_then(|s| s.host_network) == Some(true);
            let ip = if host_network {
                st.host_ip.clone()
            } else {
                st.pod_ip.clone()
            };
            Some((p.metadata.name.clone()?, ip.filter(|ip| !ip.is_empty())?))
        })
        .collect()
}

/// Runs nodetool in a Running and Ready pod (the next one when a node is down, at most three)
/// and fills the view with what it shows; `Err`: why no pod could tell.
async fn run_nodetool(
    site: &Site,
    desired: &DesiredCluster,
    all_pods: &[Pod],
    view: &mut SiteView,
) -> Result<(), NoView> {
    let pods: Api<Pod> = Api::namespaced(site.client.clone(), &desired.namespace);
    let running: Vec<&Pod> = all_pods.iter().filter(|p| pod_ready(p)).collect();
    if running.is_empty() {
        return Err(NoView::NoReadyPod {
            namespace: desired.namespace.clone(),
            name: desired.name.clone(),
        });
    }
    let mut errors = vec![];
    for p in running.into_iter().take(3) {
        match nodetool_status(&pods, p)
            .await
            .and_then(|out| Ok(parse_status(&out)?))
        {
            Ok(dcs) => {
                view.pod = p.metadata.name.clone();
                view.datacenters = dcs;
                return Ok(());
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(NoView::EveryPodFailed(errors))
}

/// Why no pod of a site could show the ring.
#[derive(thiserror::Error, Debug)]
enum NoView {
    /// No pod is Running and Ready.
    #[error("no Running and Ready pod of CassandraCluster {namespace}/{name} to run nodetool in")]
    NoReadyPod { namespace: String, name: String },
    /// Each pod tried failed; the failures in order.
    #[error("{}", with_forbidden_hint(.0))]
    EveryPodFailed(Vec<String>),
}

/// The failures joined, with the hint for permission errors.
fn with_forbidden_hint(errors: &[String]) -> String {
    let joined = errors.join("; ");
    format!("{joined}{}", federation::forbidden_hint(&joined))
}

/// Collects every site's view and checks the ring.
pub async fn ring_report(fed: &Federation) -> RingReport {
    let results = futures::future::join_all(fed.sites.iter().map(site_view)).await;
    let mut views = vec![];
    let mut expected = vec![];
    let mut notes = vec![];
    for (v, e, n) in results {
        views.push(v);
        expected.extend(e);
        notes.extend(n);
    }
    let name = fed.mc.metadata.name.clone().unwrap_or_default();
    check(&name, &fed.namespace, views, expected, notes)
}

/// `multi-casskop ring`.
pub async fn run(args: RingArgs) -> anyhow::Result<ExitCode> {
    args.sites.deadlines.install();
    let fed = federation::load(&args.sites, &args.name, args.use_kubeconfig_contexts).await?;
    if fed.sites.is_empty() {
        anyhow::bail!(
            "MultiCasskop {}/{} names no site in spec.override: no ring to check",
            fed.namespace,
            args.name
        );
    }
    let r = ring_report(&fed).await;
    match args.output {
        RingOutput::Table => print!("{}", render(&r)),
        RingOutput::Json => println!("{}", serde_json::to_string_pretty(&r)?),
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed sample (Multi-CassKop's documentation, as published: the address column lost).
    const SEED: &str = "cassandra@cassandra-e2e-dc1-rack2-0:/$ nodetool status
Datacenter: dc1
|/ State=Normal/Leaving/Joining/Moving
-- Address Load Tokens Owns (effective) Host ID Rack
UN 93.95 KiB 256 49.8% cfabcef2-3f1b-492d-b028-0621eb672ec7 rack2
UN 108.65 KiB 256 48.3% d1185b37-af0a-42f9-ac3f-234e541f14f0 rack1
Datacenter: dc2
|/ State=Normal/Leaving/Joining/Moving
-- Address Load Tokens Owns (effective) Host ID Rack
UN 69.89 KiB 256 51.4% ec9003e0-aa53-4150-b4bb-85193d9fa180 rack5
UN 107.89 KiB 256 50.5% a28c3c59-786f-41b6-8eca-ca7d7d14b6df rack4
";

    /// Cassandra 3.11's full layout, with a down node and a joining one.
    const REAL: &str = "Datacenter: dc1
===============
Status=Up/Down
|/ State=Normal/Leaving/Joining/Moving
--  Address      Load       Tokens       Owns (effective)  Host ID                               Rack
UN  10.244.1.12  93.95 KiB  256          49.8%             cfabcef2-3f1b-492d-b028-0621eb672ec7  rack2
DN  10.244.2.7   ?          256          50.2%             d1185b37-af0a-42f9-ac3f-234e541f14f0  rack1

Datacenter: dc2
===============
Status=Up/Down
|/ State=Normal/Leaving/Joining/Moving
--  Address      Load       Tokens       Owns (effective)  Host ID                               Rack
UJ  10.245.0.3   1.2 MiB    256          ?                 ec9003e0-aa53-4150-b4bb-85193d9fa180  rack1

Note: Non-system keyspaces don't have the same replication settings, effective ownership information is meaningless
";

    #[test]
    fn parses_the_seed_sample() {
        let dcs = parse_status(SEED).unwrap();
        assert_eq!(dcs.len(), 2);
        assert_eq!(dcs[0].name, "dc1");
        assert_eq!(dcs[1].name, "dc2");
        assert_eq!(dcs[0].nodes.len(), 2);
        let n = &dcs[0].nodes[0];
        assert_eq!(n.code(), "UN");
        assert_eq!(n.address, None);
        assert_eq!(n.load.as_deref(), Some("93.95 KiB"));
        assert_eq!(n.tokens, Some(256));
        assert_eq!(n.owns.as_deref(), Some("49.8%"));
        assert_eq!(
            n.host_id.as_deref(),
            Some("cfabcef2-3f1b-492d-b028-0621eb672ec7")
        );
        assert_eq!(n.rack, "rack2");
        assert_eq!(dcs[1].nodes[1].rack, "rack4");
    }

    #[test]
    fn parses_the_real_layout_with_down_and_joining_nodes() {
        let dcs = parse_status(REAL).unwrap();
        assert_eq!(dcs.len(), 2);
        let down = &dcs[0].nodes[1];
        assert_eq!(down.code(), "DN");
        assert_eq!(down.address.as_deref(), Some("10.244.2.7"));
        assert_eq!(down.load.as_deref(), Some("?"));
        assert_eq!(down.tokens, Some(256));
        let j = &dcs[1].nodes[0];
        assert_eq!(
            (j.code().as_str(), j.load.as_deref(), j.owns.as_deref()),
            ("UJ", Some("1.2 MiB"), Some("?"))
        );
        assert_eq!(dcs[0].nodes[0].address.as_deref(), Some("10.244.1.12"));
    }

    #[test]
    fn parses_what_kubesim_prints() {
        let nodes = vec![
            kubesim_node("dc1", "10.0.0.1", true),
            kubesim_node("dc2", "10.0.1.1", false),
        ];
        let text = kubesim::nodetool::render_status(&nodes);
        let dcs = parse_status(&text).unwrap();
        assert_eq!(dcs.len(), 2);
        assert_eq!(dcs[1].nodes[0].code(), "DN");
        assert_eq!(dcs[1].nodes[0].address.as_deref(), Some("10.0.1.1"));
        assert_eq!(dcs[0].nodes[0].owns.as_deref(), Some("100.0%"));
    }

    fn kubesim_node(dc: &str, address: &str, up: bool) -> kubesim::nodetool::RingNode {
        kubesim::nodetool::RingNode {
            dc: dc.into(),
            rack: "rack1".into(),
            address: address.into(),
            up,
            load_kib: 80.5,
            tokens: 256,
            host_id: "a28c3c59-786f-41b6-8eca-ca7d7d14b6df".into(),
        }
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(
            parse_status("")
                .unwrap_err()
                .to_string()
                .contains("no `Datacenter:` block")
        );
        assert!(parse_status("nodetool: Failed to connect").is_err());
        assert!(
            parse_status("UN 1.2.3.4 1 KiB 256 10% x rack1\n")
                .unwrap_err()
                .to_string()
                .contains("before any")
        );
        assert!(
            parse_status("Datacenter: dc1\nUX 1.2.3.4 rack\n").is_ok(),
            "UX is not a node line"
        );
        assert!(parse_status("Datacenter:\n").is_err());
    }

    fn exp(site: &str, dc: &str, pod: &str, ip: &str) -> ExpectedNode {
        ExpectedNode {
            site: site.into(),
            dc: dc.into(),
            rack: "rack1".into(),
            pod: pod.into(),
            address: Some(ip.into()),
        }
    }

    fn view(site: &str, text: &str) -> SiteView {
        SiteView {
            site: site.into(),
            pod: Some(format!("{site}-pod")),
            error: None,
            datacenters: parse_status(text).unwrap(),
        }
    }

    fn two_dc_text(dc2_state: &str, with_dc2: bool) -> String {
        let mut t = String::from(
            "Datacenter: dc1\n--  Address  Load  Tokens  Owns  Host ID  Rack\nUN  10.0.0.1  90.00 KiB  256  100.0%  h1  rack1\n",
        );
        if with_dc2 {
            t.push_str(&format!(
                "Datacenter: dc2\n{dc2_state}  10.0.1.1  90.00 KiB  256  100.0%  h2  rack1\n"
            ));
        }
        t
    }

    #[test]
    fn check_passes_and_names_each_problem_with_its_point_of_view() {
        let expected = || {
            vec![
                exp("a", "dc1", "c-dc1-rack1-0", "10.0.0.1"),
                exp("b", "dc2", "c-dc2-rack1-0", "10.0.1.1"),
            ]
        };
        let ok = check(
            "c",
            "ns",
            vec![
                view("a", &two_dc_text("UN", true)),
                view("b", &two_dc_text("UN", true)),
            ],
            expected(),
            vec![],
        );
        assert!(ok.ok, "{:?}", ok.problems);
        assert_eq!(ok.nodes.len(), 2);
        assert_eq!(ok.nodes[1].node, "c-dc2-rack1-0");
        assert_eq!(ok.nodes[1].seen_from["a"], "UN");
        let out = render(&ok);
        assert!(out.contains("ring OK: 2 DCs, 2 nodes"), "{out}");

        let down = check(
            "c",
            "ns",
            vec![
                view("a", &two_dc_text("DN", true)),
                view("b", &two_dc_text("UN", true)),
            ],
            expected(),
            vec![],
        );
        assert!(!down.ok);
        assert_eq!(
            down.problems,
            vec![
                "from a's point of view (pod a-pod): node c-dc2-rack1-0 (10.0.1.1, DC dc2, rack rack1) is DN, not UN"
            ]
        );

        let hidden = check(
            "c",
            "ns",
            vec![
                view("a", &two_dc_text("UN", true)),
                view("b", &two_dc_text("UN", false)),
            ],
            expected(),
            vec![],
        );
        assert_eq!(
            hidden.problems,
            vec!["from b's point of view (pod b-pod): DC dc2 (site b) is missing"]
        );
        assert!(render(&hidden).contains("missing"));

        let unreachable = SiteView {
            site: "b".into(),
            pod: None,
            error: Some("unreachable: connection refused".into()),
            datacenters: vec![],
        };
        let mut exp_b = expected();
        exp_b[1].address = None;
        let r = check(
            "c",
            "ns",
            vec![view("a", &two_dc_text("UN", true)), unreachable],
            exp_b,
            vec![],
        );
        assert_eq!(r.problems, vec!["site b: unreachable: connection refused"]);
        assert!(render(&r).contains("b: no view: unreachable"));

        // Addresses that match no pod IP (another broadcast address): the count is checked.
        let mut other = expected();
        other[1].address = Some("192.168.9.9".into());
        let c = check(
            "c",
            "ns",
            vec![view("a", &two_dc_text("UN", true))],
            other.clone(),
            vec![],
        );
        assert!(c.ok, "{:?}", c.problems);
        other.push(exp("b", "dc2", "c-dc2-rack2-0", "192.168.9.10"));
        let c = check(
            "c",
            "ns",
            vec![view("a", &two_dc_text("UN", true))],
            other,
            vec![],
        );
        assert_eq!(
            c.problems,
            vec!["from a's point of view (pod a-pod): DC dc2 shows 1 of its 2 expected nodes"]
        );

        let mut missing = expected();
        missing.push(exp("b", "dc2", "c-dc2-rack2-0", "10.0.1.2"));
        let m = check(
            "c",
            "ns",
            vec![view("a", &two_dc_text("UN", true))],
            missing,
            vec![],
        );
        assert_eq!(
            m.problems,
            vec![
                "from a's point of view (pod a-pod): node c-dc2-rack2-0 (10.0.1.2, DC dc2, site b) is missing"
            ]
        );
    }
}
