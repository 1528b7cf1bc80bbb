//! `multi-casskop status`: one table of a federation, read live from the local MultiCasskop and every site's CassandraCluster and pods.

use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use super::common::federation::{self, FedSite, Federation, LiveSite, forbidden_hint, read_site};
use super::common::table::render_table;
use super::common::topology::{expand_topology, pod_ready};
use crate::api::{CassandraClusterView, Condition};
use crate::cli::common::sites::SiteArgs;
use crate::merge::DesiredCluster;

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
        Ok(live) => fill_live(&mut line, &live, desired),
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
    let lines = futures::future::join_all(fed.sites.iter().map(|s| site_line(fed, s))).await;
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

fn dash(v: &Option<String>) -> String {
    v.clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// The human-readable report.
pub fn render(r: &StatusReport, wide: bool, now: jiff::Timestamp) -> String {
    let mut out = headline(r);
    out.push('\n');
    let mut header = vec![
        "SITE",
        "PHASE",
        "ACTION",
        "STATUS",
        "READY",
        "LAST TRANSITION",
        "TOKEN EXPIRES",
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
            "TOKEN EXPIRES",
            "MESSAGE",
        ];
    }
    let rows: Vec<Vec<String>> = r.sites.iter().map(|s| site_row(s, wide, now)).collect();
    if rows.is_empty() {
        out.push_str("(no site: spec.override names none)\n");
    } else {
        out.push_str(&render_table(&header, &rows));
    }
    out
}

/// The MultiCasskop's phase, conditions and spec validity, one line each.
fn headline(r: &StatusReport) -> String {
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
            out.push_str(" (no status from the controller yet)");
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
    out
}

/// One site's row of the table.
fn site_row(s: &SiteLine, wide: bool, now: jiff::Timestamp) -> Vec<String> {
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
    row.push(dash(&s.token_expiry));
    row.push(message);
    row
}

/// `multi-casskop status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    args.sites.deadlines.install();
    let fed = federation::load(&args.sites, &args.name, args.use_kubeconfig_contexts).await?;
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
            );
        }
        StatusOutput::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        StatusOutput::Yaml => print!("{}", serde_saphyr::to_string(&r)?),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

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
