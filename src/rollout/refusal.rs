//! A change CassKop refused at a site taking part: it wrote the old values back
//! (`lastClusterAction: CorrectCRDConfig`). The site is Blocked naming what was put back and
//! CassKop's reason; the same change is tried again on the shared retry clock, a new one at once.
//!
//! Without this the planner sees the site outdated and applies the change again on every
//! reconcile, and CassKop puts it back every time: a write a second, forever. A refusal is our
//! applied mark naming the desired object we still want (so the user has not changed it since),
//! CassKop's last action `CorrectCRDConfig` after that write, and the live spec not holding it.

use std::time::Instant;

use kube::runtime::controller::Action as Requeue;
use serde_json::Value;

use crate::api::MultiCasskop;
use crate::rollout::act::{self, Acted, Step};
use crate::rollout::context::{Context, Error, Target};
use crate::rollout::observe::Observation;
use crate::rollout::plan::{self, Action, Ownership, Plan, SiteAccess, SiteInput, SiteVerdict};

/// CassKop's `lastClusterAction` when it put back values it refused.
const CORRECTED: &str = "CorrectCRDConfig";
/// At most this many fields are named in the message (a whole topology put back can be many).
const MAX_FIELDS: usize = 4;

/// A refused change at the site the plan acts on or waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub site: String,
    /// The status message and Blocked reason.
    pub reason: String,
    /// Our retry is written and CassKop has not answered it yet: nothing to do but wait.
    pub awaiting: bool,
}

/// Whether `site` may be refusing our change: CassKop corrected its spec after a write of ours
/// of the desired object we still want. (The planner's other checks decide the rest.)
fn corrected_after_our_write(site: &SiteInput) -> bool {
    let (Some(o), Some(mark)) = (&site.observed, &site.applied) else {
        return false;
    };
    site.access == SiteAccess::Ok
        && o.ownership == Ownership::Ours
        && !o.deleting
        && o.last_cluster_action.as_deref() == Some(CORRECTED)
        && mark.hash == site.desired_hash
        && o.generation >= mark.generation
}

/// The fields of `desired`'s spec that `live` does not hold as asked, as field paths
/// (`spec.topology.dc[0].rack`): a list of another length is named as a whole.
pub fn put_back_fields(desired: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(spec) = desired.get("spec") {
        walk(spec, live.get("spec"), "spec".to_string(), &mut out);
    }
    out
}

fn walk(want: &Value, have: Option<&Value>, path: String, out: &mut Vec<String>) {
    match (want, have) {
        (Value::Null, _) => {}
        (Value::Object(w), Some(Value::Object(h))) => {
            for (k, v) in w {
                walk(v, h.get(k), format!("{path}.{k}"), out);
            }
        }
        (Value::Array(w), Some(Value::Array(h))) if w.len() == h.len() => {
            for (i, (v, x)) in w.iter().zip(h).enumerate() {
                walk(v, Some(x), format!("{path}[{i}]"), out);
            }
        }
        (w, Some(h)) if w == h => {}
        _ => out.push(path),
    }
}

/// Why CassKop refuses a change of these fields, from its own checks (`CheckNonAllowedChanges`,
/// `CheckTopologyChanges`, `CheckNonAllowedScaleDown`).
pub fn casskop_reason(fields: &[String]) -> String {
    let mut why = Vec::new();
    if fields.iter().any(|f| f == "spec.nodesPerRacks") {
        why.push("a scale down of the whole cluster to 0 nodes is forbidden");
    }
    if fields
        .iter()
        .any(|f| f.ends_with("dataCapacity") || f.ends_with("dataStorageClass"))
    {
        why.push("the storage (dataCapacity, dataStorageClass) of an existing DC cannot change");
    }
    if fields.iter().any(|f| f.starts_with("spec.topology")) {
        why.push(
            "the topology accepts no change but a whole DC added or removed, one at a time (no \
             rack added to, removed from or renamed in an existing DC, no DC renamed), and a DC \
             goes to 0 nodes only once no keyspace replicates there",
        );
    }
    if why.is_empty() {
        return "CassKop does not allow this change".into();
    }
    why.join("; ")
}

/// The Blocked message: the site, the CassandraCluster, each field put back with the
/// MultiCasskop field that sets it, CassKop's reason and what happens next.
pub fn message(mc: &MultiCasskop, site: &str, cc: &str, fields: &[String]) -> String {
    let base = &mc.spec.base;
    let over = mc.spec.override_.get(site);
    let named: Vec<String> = fields
        .iter()
        .take(MAX_FIELDS)
        .map(|f| match plan::where_set(f, base, over, site) {
            Some(from) => format!("{f} (set by {from})"),
            None => f.clone(),
        })
        .collect();
    let more = fields.len().saturating_sub(MAX_FIELDS);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "site {site}: CassKop refused the change to CassandraCluster {cc} and put back {}{more} \
         (lastClusterAction {CORRECTED}): {}. Change the MultiCasskop so that CassKop accepts it \
         (a new change is tried at once); the same change is tried again by itself, less and \
         less often",
        named.join(", "),
        casskop_reason(fields)
    )
}

/// The refusal at the site `planned` acts on or waits for, if there is one. `retrying(site)`:
/// the retry clock runs for the site (our last write there was a retry).
pub(super) fn find(
    planned: &Plan,
    obs: &Observation,
    mc: &MultiCasskop,
    retrying: impl Fn(&str) -> bool,
) -> Option<Refused> {
    let (Action::Apply { site } | Action::Wait { site, .. }) = &planned.action else {
        return None;
    };
    let i = obs.facts.iter().position(|f| &f.name == site)?;
    let input = &obs.input.sites[i];
    if !corrected_after_our_write(input) {
        return None;
    }
    let (o, mark) = (input.observed.as_ref()?, input.applied.as_ref()?);
    let f = &obs.facts[i];
    let cc = format!("{}/{}", f.desired.namespace, f.desired.name);
    if o.generation == mark.generation {
        // Our write is not answered yet: a refusal only while it is our retry, with the
        // message the refusal had (the fields are ours again until CassKop answers).
        if !retrying(site) {
            return None;
        }
        let before = obs.prev.sites.iter().find(|s| &s.name == site);
        let reason = before
            .filter(|s| s.state.as_deref() == Some("Blocked"))
            .and_then(|s| s.message.clone())
            .unwrap_or_else(|| message(mc, site, &cc, &[]));
        return Some(Refused {
            site: site.clone(),
            reason,
            awaiting: true,
        });
    }
    if o.matches_desired {
        return None;
    }
    let live = serde_json::to_value(f.live.as_ref()?).ok()?;
    let desired = plan::without_fields(&f.desired.object, &mark.dropped);
    let fields = put_back_fields(&desired, &live);
    if fields.is_empty() {
        return None;
    }
    Some(Refused {
        site: site.clone(),
        reason: message(mc, site, &cc, &fields),
        awaiting: false,
    })
}

/// `planned` with the refusing site Blocked.
pub fn block(planned: Plan, r: &Refused) -> Plan {
    let verdicts = planned
        .verdicts
        .into_iter()
        .map(|(n, v)| {
            if n == r.site {
                let reason = r.reason.clone();
                (n, SiteVerdict::Blocked { reason })
            } else {
                (n, v)
            }
        })
        .collect();
    Plan {
        action: Action::Blocked {
            site: r.site.clone(),
            reason: r.reason.clone(),
        },
        verdicts,
        deleting: planned.deleting,
    }
}

/// The retry clock's key of a site.
fn retry_key(target: &Target<'_>, site: &str) -> String {
    format!("{}/{site}", target.key)
}

/// Forget the retry clock of every site not refusing (anymore): a new change, or CassKop
/// accepted, starts afresh.
pub(super) fn forget_settled(target: &Target<'_>, ctx: &Context, obs: &Observation) {
    for s in &obs.input.sites {
        if !corrected_after_our_write(s) {
            ctx.refused_changes.forget(&retry_key(target, &s.name));
        }
    }
}

/// Whether the retry clock runs for `site`.
pub(super) fn retrying(target: &Target<'_>, ctx: &Context, site: &str) -> bool {
    ctx.refused_changes.knows(&retry_key(target, site))
}

/// Blocked on a refusal: apply the same change again when the retry clock says so, else wait
/// for it (or for CassKop's answer to our retry).
pub(super) async fn act(
    target: &Target<'_>,
    ctx: &Context,
    obs: &mut Observation,
    planned: &Plan,
    r: &Refused,
) -> Result<Step, Error> {
    let blocked = |requeue: Requeue| {
        Step::Acted(Acted {
            requeue,
            ..Acted::new(ctx, "blocked")
        })
    };
    if r.awaiting {
        return Ok(blocked(Requeue::requeue(ctx.resync)));
    }
    let key = retry_key(target, &r.site);
    if let Some(wait) = ctx.refused_changes.due(&key, Instant::now()) {
        return Ok(blocked(Requeue::requeue(wait)));
    }
    let retry = Plan {
        action: Action::Apply {
            site: r.site.clone(),
        },
        ..planned.clone()
    };
    act::act(target, ctx, obs, &retry).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fields_put_back_are_named_a_list_of_another_length_as_a_whole() {
        let desired = json!({"spec": {"cassandraImage": "c:2", "topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "rack1"}, {"name": "rack2"}]}]}}});
        let live = json!({"spec": {"cassandraImage": "c:2", "nodesPerRacks": 1, "topology": {"dc": [
            {"name": "dc1", "rack": [{"name": "rack1"}]}]}}, "status": {}});
        assert_eq!(
            put_back_fields(&desired, &live),
            ["spec.topology.dc[0].rack"]
        );
        let desired = json!({"spec": {"dataCapacity": "2Gi", "nodesPerRacks": 0}});
        let live = json!({"spec": {"dataCapacity": "1Gi", "nodesPerRacks": 1}});
        assert_eq!(
            put_back_fields(&desired, &live),
            ["spec.dataCapacity", "spec.nodesPerRacks"]
        );
        assert!(put_back_fields(&desired, &desired).is_empty());
    }

    #[test]
    fn casskop_reason_follows_its_checks() {
        let topology = casskop_reason(&["spec.topology.dc[0].rack".into()]);
        assert!(topology.contains("no rack added to"), "{topology}");
        let storage = casskop_reason(&["spec.topology.dc[1].dataCapacity".into()]);
        assert!(storage.contains("storage"), "{storage}");
        assert!(casskop_reason(&["spec.nodesPerRacks".into()]).contains("to 0 nodes"));
        assert_eq!(
            casskop_reason(&["spec.other".into()]),
            "CassKop does not allow this change"
        );
    }

    #[test]
    fn the_message_names_site_cluster_fields_where_they_are_set_and_why() {
        let mc: MultiCasskop = serde_json::from_value(json!({
            "apiVersion": "db.orange.com/v2", "kind": "MultiCasskop",
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {"base": {"spec": {"nodesPerRacks": 1}},
                     "override": {"a": {"spec": {"topology": {"dc": [
                        {"name": "dc1", "rack": [{"name": "r1"}, {"name": "r2"}]}]}}}}}
        }))
        .expect("a MultiCasskop");
        let m = message(&mc, "a", "ns/cc", &["spec.topology.dc[0].rack".into()]);
        for part in [
            "site a:",
            "CassandraCluster ns/cc",
            "put back spec.topology.dc[0].rack (set by spec.override.a.spec.topology.dc[0].rack)",
            "lastClusterAction CorrectCRDConfig",
            "no rack added to",
            "a new change is tried at once",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
    }
}
