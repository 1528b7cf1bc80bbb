//! The status report as text: a headline, the conditions and a kubectl-looking table.

use super::report::{NO_CREDENTIALS, SiteLine, StatusReport};
use crate::api::Condition;
use crate::cli::common::table::render_table;

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
    let rows: Vec<Vec<String>> = r.sites.iter().map(|s| site_row(s, wide, now)).collect();
    if rows.is_empty() {
        out.push_str("(no site: spec.override names none)\n");
    } else {
        out.push_str(&render_table(&table_header(wide), &rows));
    }
    out.push_str(&seed_lists(r));
    out
}

/// With `spec.autoSeedList`, the seed list each site's CassandraCluster holds, one line per
/// site (empty text when no site shows one).
pub(super) fn seed_lists(r: &StatusReport) -> String {
    if r.sites.iter().all(|s| s.seed_list.is_empty()) {
        return String::new();
    }
    let mut out = String::from("\nSEED LIST (spec.autoSeedList, status.seedlist of each site)\n");
    for s in &r.sites {
        let list = if s.seed_list.is_empty() {
            "-".to_string()
        } else {
            s.seed_list.join(",")
        };
        let note = if s.reachable { "" } else { " (last known)" };
        out.push_str(&format!("  {}: {list}{note}\n", s.site));
    }
    out
}

/// The column titles of the table.
pub(super) fn table_header(wide: bool) -> Vec<&'static str> {
    if wide {
        vec![
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
        ]
    } else {
        vec![
            "SITE",
            "PHASE",
            "ACTION",
            "STATUS",
            "READY",
            "LAST TRANSITION",
            "TOKEN EXPIRES",
            "MESSAGE",
        ]
    }
}

/// The MultiCasskop's phase, conditions and spec validity, one line each.
pub(super) fn headline(r: &StatusReport) -> String {
    let mut out = summary_line(r);
    out.push('\n');
    for c in &r.conditions {
        out.push_str(&condition_line(c));
        out.push('\n');
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

/// One condition, indented under the summary line.
pub(super) fn condition_line(c: &Condition) -> String {
    format!("  {}={} ({}): {}", c.type_, c.status, c.reason, c.message)
}

/// The first line: phase, site in progress, ready sites, and whether the status is current.
pub(super) fn summary_line(r: &StatusReport) -> String {
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
    out
}

/// One site's row of the table.
pub(super) fn site_row(s: &SiteLine, wide: bool, now: jiff::Timestamp) -> Vec<String> {
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

    #[test]
    fn seed_lists_follow_the_table_one_line_per_site() {
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        assert!(!render(&sample(), false, now).contains("SEED LIST"));
        let mut r = sample();
        r.sites[0].seed_list = vec![
            "c3-dc1-rack1-0.a.example.com".into(),
            "c3-dc2-rack1-0.c.example.com".into(),
        ];
        r.sites[1].seed_list = vec!["c3-dc1-rack1-0.a.example.com".into()];
        let out = render(&r, false, now);
        let lines: Vec<&str> = out.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("SEED LIST"))
            .expect("a seed list section");
        assert_eq!(
            lines[at + 1],
            "  a: c3-dc1-rack1-0.a.example.com,c3-dc2-rack1-0.c.example.com"
        );
        assert_eq!(
            lines[at + 2],
            "  c: c3-dc1-rack1-0.a.example.com (last known)"
        );
    }
}
