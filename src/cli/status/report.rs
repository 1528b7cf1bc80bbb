//! The status report: the MultiCasskop's headline and one line per site, read live from the
//! local MultiCasskop and every site's CassandraCluster and pods.

use serde::Serialize;
use serde_json::Value;

use crate::api::{CassandraClusterView, Condition};
use crate::cli::common::federation::{FedSite, Federation, LiveSite, forbidden_hint, read_site};
use crate::cli::common::topology::{expand_topology, pod_ready};
use crate::merge::DesiredCluster;

pub(super) const NO_CREDENTIALS: &str = "no usable credentials";

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
    /// When the site's bound token expires (`expired ...` once it has), for credentials the
    /// controller renews; why it is not renewed otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_expiry: Option<String>,
    /// With `spec.autoSeedList`: the seed list the site's CassandraCluster holds
    /// (`status.seedlist`; as last recorded when the site cannot be read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seed_list: Vec<String>,
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

/// What the status shows of the site's token, read as the controller reads it.
async fn token_expiry(fed: &Federation, site: &crate::sites::Site) -> Option<String> {
    let local = fed
        .sites
        .iter()
        .find(|s| s.name == fed.local)
        .and_then(|s| s.site.as_ref().ok())?;
    if site.name == fed.local {
        return None;
    }
    let policy = crate::sites::KubeconfigPolicy::default();
    crate::sites::renewal::token_report_of(&local.client, site, &fed.namespace, policy)
        .await
        .map(|r| r.expiry_text())
}

async fn site_line(fed: &Federation, s: &FedSite) -> SiteLine {
    let mc = &fed.mc;
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
    let auto_seeds = mc.spec.auto_seed_list == Some(true);
    let last_known = |line: &mut SiteLine| {
        // Unreachable: show what the controller last recorded, marked as such by `reachable: false`.
        if auto_seeds {
            line.seed_list = recorded.map(|r| r.seed_list.clone()).unwrap_or_default();
        }
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
    line.token_expiry = token_expiry(fed, site).await;
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
            line.error = Some(e.to_string());
            last_known(&mut line);
        }
        Ok(live) => {
            fill_live(&mut line, &live, desired);
            if auto_seeds && let Some(cc) = &live.cluster {
                line.seed_list = crate::rollout::plan::seeds::seed_list_of(&cc.data);
            }
        }
    }
    line
}

/// Fills a reachable site's line from its live CassandraCluster and pods.
fn fill_live(line: &mut SiteLine, live: &LiveSite, desired: &DesiredCluster) {
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
        Ok(pods) => line.ready_pods = Some(pods.iter().filter(|p| pod_ready(p)).count() as u32),
        Err(e) => {
            line.error = Some(format!(
                "pods not readable: {e}{}",
                forbidden_hint(&e.to_string())
            ));
        }
    }
    match &live.cluster {
        Some(cc) => {
            let v = CassandraClusterView(cc);
            line.phase = v.phase().map(String::from);
            line.last_cluster_action = v.last_cluster_action().map(String::from);
            line.last_cluster_action_status = v.last_cluster_action_status().map(String::from);
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

/// Builds the report: the MultiCasskop's headline and one line per site (sites read concurrently).
pub async fn report(fed: &Federation) -> StatusReport {
    let mut lines = futures::future::join_all(fed.sites.iter().map(|s| site_line(fed, s))).await;
    let st = fed.mc.status.clone().unwrap_or_default();
    lines.extend(left_override(fed, &st));
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

/// The sites the controller still reports that `override` no longer names (being removed, or
/// released), as it recorded them: they are not read live.
fn left_override(fed: &Federation, st: &crate::api::MultiCasskopStatus) -> Vec<SiteLine> {
    st.sites
        .iter()
        .filter(|r| fed.sites.iter().all(|s| s.name != r.name))
        .map(|r| SiteLine {
            site: r.name.clone(),
            namespace: r.namespace.clone(),
            reachable: true,
            phase: r.phase.clone(),
            last_cluster_action: r.last_cluster_action.clone(),
            last_cluster_action_status: r.last_cluster_action_status.clone(),
            state: r.state.clone(),
            last_transition_time: r.last_transition_time.clone(),
            message: r.message.clone(),
            ..SiteLine::default()
        })
        .collect()
}
