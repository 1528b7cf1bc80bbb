//! Rollout facts read back from kubesim's audit log: write order, one-site-at-a-time, handoff times.

use std::collections::BTreeMap;

use kubesim::AuditEntry;
use kubesim::casskop::acted_config;
use serde_json::Value;

/// The user the simulated CassKop writes as.
pub const CASSKOP_USER: &str = "system:serviceaccount:kube-system:casskop";

/// What happened to a site's CassandraCluster, in audit order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// The controller wrote it (create, update or patch; `verb` as audited).
    Write { verb: String },
    /// The controller deleted it.
    Delete,
    /// CassKop wrote status Running/Done after our last write: the site is settled.
    Settled,
}

/// One step of a rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub seq: u64,
    pub time_us: i64,
    pub site: String,
    pub kind: StepKind,
}

/// What the audit log says about one CassandraCluster's rollout.
#[derive(Clone, Debug, Default)]
pub struct RolloutReport {
    pub steps: Vec<Step>,
    /// Sites in the order of their first write.
    pub first_write_order: Vec<String>,
    /// Writes made while another site was still in progress (must stay empty).
    pub violations: Vec<String>,
    /// Time from a site settling to the controller's next write at a later site (µs).
    pub handoffs_us: Vec<i64>,
}

/// Whether CassandraCluster JSON has phase Running and lastClusterActionStatus Done.
pub fn running_done(obj: &Value) -> bool {
    obj["status"]["phase"] == "Running" && obj["status"]["lastClusterActionStatus"] == "Done"
}

/// Analyze the writes to CassandraCluster `cc_name` from `from_seq` on. `controller_users`:
/// the identities of the controller (replicas).
///
/// A controller write puts its site in progress only when it changed what CassKop acts on (the
/// spec or the seed list, [`acted_config`]): a write that changed nothing there (a no-op apply
/// after a lost response, a label) gets no reaction from CassKop, so waiting for one would flag
/// the next site's legitimate write. Entries before `from_seq` still count as the known state.
///
/// What a write changed is judged against the object as it was just before it at its site, in
/// the order the site stored them (`metadata.resourceVersion`), not in audit order: as with
/// kube-apiserver's audit log, an entry is recorded once its request is answered, so CassKop's
/// reaction to a create (written as soon as its watch shows the object) can be recorded before
/// the create itself.
pub fn analyze(
    entries: &[AuditEntry],
    controller_users: &[&str],
    cc_name: &str,
    from_seq: u64,
) -> RolloutReport {
    let mut report = RolloutReport::default();
    // Site -> seq of the controller write not yet followed by a settle.
    let mut in_progress: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_settle: Option<(String, i64)> = None;
    // Site -> what CassKop acts on, by the order the site stored the writes.
    let mut acted: BTreeMap<String, StoredConfigs> = BTreeMap::new();
    for e in entries {
        if e.resource != "cassandraclusters" || e.name != cc_name || !(200..300).contains(&e.code) {
            continue;
        }
        let site = e.cluster.clone();
        let changed = match &e.object {
            Some(obj) => acted
                .entry(site.clone())
                .or_default()
                .record(obj, e.verb == "create"),
            None => true,
        };
        if e.seq < from_seq {
            continue;
        }
        let by_controller = controller_users.contains(&e.user.as_str());
        let is_write = matches!(e.verb.as_str(), "create" | "update" | "patch");
        if by_controller && is_write {
            if let Some((other, since)) = in_progress.iter().find(|(s, _)| **s != site) {
                report.violations.push(format!(
                    "seq {}: {} write to {site} while {other} was in progress since seq {since}",
                    e.seq, e.verb
                ));
            }
            // A write that changes nothing at the settled site itself (a label, a no-op apply)
            // does not end the handoff: the next site's first write does.
            match last_settle.take() {
                Some((settled, at)) if settled != site => report.handoffs_us.push(e.time_us - at),
                Some(settle) if !changed => last_settle = Some(settle),
                _ => {}
            }
            if changed {
                in_progress.insert(site.clone(), e.seq);
            }
            if !report.first_write_order.contains(&site) {
                report.first_write_order.push(site.clone());
            }
            report.steps.push(Step {
                seq: e.seq,
                time_us: e.time_us,
                site,
                kind: StepKind::Write {
                    verb: e.verb.clone(),
                },
            });
        } else if by_controller && e.verb == "delete" {
            in_progress.remove(&site);
            report.steps.push(Step {
                seq: e.seq,
                time_us: e.time_us,
                site,
                kind: StepKind::Delete,
            });
        } else if e.user == CASSKOP_USER
            && is_write
            && e.object.as_ref().is_some_and(running_done)
            && in_progress.contains_key(&site)
        {
            in_progress.remove(&site);
            last_settle = Some((site.clone(), e.time_us));
            report.steps.push(Step {
                seq: e.seq,
                time_us: e.time_us,
                site,
                kind: StepKind::Settled,
            });
        }
    }
    report
}

/// What CassKop acts on ([`acted_config`]) in each stored version of one object at one site.
#[derive(Default)]
struct StoredConfigs {
    by_version: BTreeMap<u64, Value>,
    /// The latest one, in audit order, for entries without a numeric resourceVersion.
    last: Option<Value>,
}

impl StoredConfigs {
    /// Record `obj` (the object after a write, `created` by it); whether it changed what
    /// CassKop acts on compared with the version stored just before it. A create always does:
    /// CassKop starts on a new object whatever an earlier one of that name held.
    fn record(&mut self, obj: &Value, created: bool) -> bool {
        let now = acted_config(obj);
        let version = obj["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse::<u64>().ok());
        let before = match version {
            Some(v) => {
                let before = self
                    .by_version
                    .range(..v)
                    .next_back()
                    .map(|(_, c)| c.clone());
                self.by_version.insert(v, now.clone());
                before
            }
            None => self.last.clone(),
        };
        self.last = Some(now.clone());
        created || before.as_ref() != Some(&now)
    }
}

/// Whether CassKop wrote `action` Done on `cluster` strictly between audit seqs `after` and
/// `before` (e.g. the ScaleDown of a DC we set to 0, before we deleted the CassandraCluster).
pub fn casskop_finished_between(
    entries: &[AuditEntry],
    cluster: &str,
    action: &str,
    after: u64,
    before: u64,
) -> bool {
    entries.iter().any(|e| {
        e.cluster == cluster
            && e.user == CASSKOP_USER
            && e.seq > after
            && e.seq < before
            && e.object.as_ref().is_some_and(|o| {
                o["status"]["lastClusterAction"] == action
                    && o["status"]["lastClusterActionStatus"] == "Done"
            })
    })
}

/// Median and 99th percentile of `values` (µs), or `None` when empty.
pub fn median_p99(values: &[i64]) -> Option<(i64, i64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let median = v[v.len() / 2];
    let p99 = v[((v.len() as f64 * 0.99).ceil() as usize)
        .saturating_sub(1)
        .min(v.len() - 1)];
    Some((median, p99))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(seq: u64, cluster: &str, user: &str, verb: &str, obj: Option<Value>) -> AuditEntry {
        AuditEntry {
            seq,
            time_us: seq as i64 * 1000,
            cluster: cluster.into(),
            user: user.into(),
            verb: verb.into(),
            group: "db.orange.com".into(),
            resource: "cassandraclusters".into(),
            subresource: String::new(),
            namespace: "ns".into(),
            name: "cc".into(),
            code: 200,
            object: obj,
        }
    }

    fn status(phase: &str, st: &str) -> Option<Value> {
        Some(json!({"status": {"phase": phase, "lastClusterActionStatus": st}}))
    }

    const ME: &str = "system:serviceaccount:ns:mc";

    #[test]
    fn sequential_rollout_has_no_violation_and_measures_handoffs() {
        let log = vec![
            entry(1, "a", ME, "patch", None),
            entry(
                2,
                "a",
                CASSKOP_USER,
                "update",
                status("Initializing", "Ongoing"),
            ),
            entry(3, "a", CASSKOP_USER, "update", status("Running", "Done")),
            entry(5, "b", ME, "patch", None),
            entry(6, "b", CASSKOP_USER, "update", status("Running", "Done")),
        ];
        let r = analyze(&log, &[ME], "cc", 0);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.first_write_order, ["a", "b"]);
        assert_eq!(r.handoffs_us, [2000]);
    }

    #[test]
    fn write_during_another_sites_rollout_is_a_violation() {
        let log = vec![
            entry(1, "a", ME, "patch", None),
            entry(2, "a", CASSKOP_USER, "update", status("Pending", "Ongoing")),
            entry(3, "b", ME, "patch", None),
        ];
        let r = analyze(&log, &[ME], "cc", 0);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(r.violations[0].contains("while a was in progress"));
    }

    fn spec(image: &str) -> Option<Value> {
        Some(json!({"spec": {"cassandraImage": image}}))
    }

    fn settled(image: &str) -> Option<Value> {
        Some(json!({"spec": {"cassandraImage": image},
            "status": {"phase": "Running", "lastClusterActionStatus": "Done"}}))
    }

    #[test]
    fn a_write_that_changes_nothing_casskop_acts_on_starts_no_progress() {
        let log = vec![
            entry(1, "a", ME, "patch", spec("3.11.9")),
            entry(2, "a", CASSKOP_USER, "update", settled("3.11.9")),
            entry(3, "a", ME, "patch", spec("3.11.9")),
            entry(4, "b", ME, "patch", spec("3.11.9")),
        ];
        let r = analyze(&log, &[ME], "cc", 0);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.first_write_order, ["a", "b"]);
    }

    #[test]
    fn a_spec_change_still_holds_the_next_site_even_after_a_no_op_write() {
        let log = vec![
            entry(1, "a", ME, "patch", spec("3.11.9")),
            entry(2, "a", CASSKOP_USER, "update", settled("3.11.9")),
            entry(3, "a", ME, "patch", spec("3.11.10")),
            entry(4, "a", ME, "patch", spec("3.11.10")),
            entry(5, "b", ME, "patch", spec("3.11.10")),
        ];
        let r = analyze(&log, &[ME], "cc", 2);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(
            r.violations[0].contains("since seq 3"),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn stale_running_done_before_our_write_does_not_settle() {
        let log = vec![
            entry(1, "a", CASSKOP_USER, "update", status("Running", "Done")),
            entry(2, "a", ME, "patch", None),
            entry(3, "b", ME, "patch", None),
        ];
        assert_eq!(analyze(&log, &[ME], "cc", 0).violations.len(), 1);
    }

    fn stored(rv: u64, mut obj: Option<Value>) -> Option<Value> {
        if let Some(o) = obj.as_mut() {
            o["metadata"]["resourceVersion"] = json!(rv.to_string());
        }
        obj
    }

    #[test]
    fn casskops_reaction_recorded_before_our_create_still_awaits_its_settle() {
        let log = vec![
            entry(1, "a", ME, "create", stored(10, spec("3.11.9"))),
            entry(
                2,
                "a",
                CASSKOP_USER,
                "update",
                stored(11, settled("3.11.9")),
            ),
            // b's Initializing (stored after the create) is recorded before the create.
            entry(3, "b", CASSKOP_USER, "patch", stored(21, spec("3.11.9"))),
            entry(4, "b", ME, "create", stored(20, spec("3.11.9"))),
            entry(5, "b", CASSKOP_USER, "patch", stored(22, settled("3.11.9"))),
            entry(6, "c", ME, "create", stored(30, spec("3.11.9"))),
        ];
        let r = analyze(&log, &[ME], "cc", 0);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.handoffs_us, [2000, 1000]);
        let settled: Vec<_> = r
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Settled)
            .map(|s| s.site.as_str())
            .collect();
        assert_eq!(settled, ["a", "b"]);
    }

    #[test]
    fn a_no_op_write_at_the_settled_site_does_not_lose_the_handoff() {
        let log = vec![
            entry(1, "a", ME, "patch", spec("3.11.9")),
            entry(2, "a", CASSKOP_USER, "update", settled("3.11.9")),
            entry(3, "a", ME, "patch", spec("3.11.9")),
            entry(5, "b", ME, "patch", spec("3.11.9")),
        ];
        assert_eq!(analyze(&log, &[ME], "cc", 0).handoffs_us, [3000]);
    }

    #[test]
    fn a_create_after_a_delete_awaits_casskop_even_with_the_same_spec() {
        let log = vec![
            entry(1, "a", ME, "create", stored(10, spec("3.11.9"))),
            entry(
                2,
                "a",
                CASSKOP_USER,
                "update",
                stored(11, settled("3.11.9")),
            ),
            entry(3, "a", ME, "delete", None),
            entry(4, "a", ME, "create", stored(14, spec("3.11.9"))),
            entry(5, "b", ME, "create", stored(20, spec("3.11.9"))),
        ];
        let r = analyze(&log, &[ME], "cc", 0);
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    }

    #[test]
    fn median_p99_picks_the_nearest_rank() {
        assert_eq!(median_p99(&[]), None);
        assert_eq!(median_p99(&[5]), Some((5, 5)));
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(median_p99(&v), Some((51, 99)));
    }
}
