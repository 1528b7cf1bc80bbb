//! The deployment controller: one ReplicaSet per pod template (named by its hash, numbered by `deployment.kubernetes.io/revision`), rolled with the `RollingUpdate` (maxSurge/maxUnavailable) or `Recreate` strategy, old ones cleaned past `revisionHistoryLimit`, and the status (replica counts, Available and Progressing conditions) kubectl and Helm wait on.
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::resources::ResKey;
use crate::store::State;

use super::util::{
    self, DESIRED_REPLICAS_ANN, MAX_REPLICAS_ANN, NOT_COPIED_ANNS, POD_TEMPLATE_HASH, REVISION_ANN,
    REVISION_HISTORY_ANN, controller_ref, controller_uid, deleting, selector_matches,
    spec_replicas, without_hash,
};
use super::{replicaset, writes};

const COMPONENT: &str = "deployment-controller";

/// Condition reasons, as kube's deployment util names them.
mod reasons {
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    pub const RS_UPDATED: &str = "ReplicaSetUpdated";
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
    pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
    pub const PAUSED: &str = "DeploymentPaused";
    pub const RESUMED: &str = "DeploymentResumed";
}

fn key() -> ResKey {
    ResKey {
        group: "apps".into(),
        plural: "deployments".into(),
    }
}

pub fn sync_all(st: &mut State) {
    for d in st.range(&key(), None, None) {
        if !deleting(&d) {
            sync(st, &d);
        }
    }
}

fn revision(rs: &Value) -> i64 {
    util::str_of(
        rs,
        &format!("/metadata/annotations/{}", REVISION_ANN.replace('/', "~1")),
    )
    .parse()
    .unwrap_or(0)
}

fn is_recreate(d: &Value) -> bool {
    d["spec"]["strategy"]["type"] == "Recreate"
}

fn max_surge(d: &Value) -> i64 {
    if is_recreate(d) {
        return 0;
    }
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    let replicas = spec_replicas(d);
    let surge = util::scaled(&ru["maxSurge"], replicas, true);
    let unavailable = util::scaled(&ru["maxUnavailable"], replicas, false);
    if surge == 0 && unavailable == 0 {
        0
    } else {
        surge
    }
}

/// kube's `MaxUnavailable`: 0 for Recreate, at most the replicas, at least 1 when the surge
/// is 0 too (`ResolveFenceposts`).
fn max_unavailable(d: &Value) -> i64 {
    let replicas = spec_replicas(d);
    if is_recreate(d) || replicas == 0 {
        return 0;
    }
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    let surge = util::scaled(&ru["maxSurge"], replicas, true);
    let mut unavailable = util::scaled(&ru["maxUnavailable"], replicas, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    unavailable.min(replicas)
}

/// The ReplicaSets a Deployment controls, adopting orphans its selector picks.
fn owned_replicasets(st: &mut State, d: &Value) -> Vec<Value> {
    let ns = util::str_of(d, "/metadata/namespace").to_string();
    let uid = util::uid(d).to_string();
    let mut out = vec![];
    for rs in st.range(&replicaset::key(), Some(&ns), None) {
        match controller_uid(&rs) {
            Some(u) if u == uid => out.push((*rs).clone()),
            None if !deleting(&rs)
                && selector_matches(&d["spec"]["selector"], &rs["metadata"]["labels"]) =>
            {
                let mut r = (*rs).clone();
                let mut refs = r["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                refs.push(controller_ref(d, "apps/v1", "Deployment"));
                r["metadata"]["ownerReferences"] = json!(refs);
                if let Some(a) = writes::update(st, "apps", "replicasets", r, false) {
                    out.push((*a).clone());
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| {
        util::str_of(a, "/metadata/creationTimestamp")
            .cmp(util::str_of(b, "/metadata/creationTimestamp"))
            .then_with(|| util::name(a).cmp(util::name(b)))
    });
    out
}

/// One sync's view: the new ReplicaSet (template equal to the Deployment's, hash aside),
/// the old ones, and the status being built.
struct Rollout {
    d: Value,
    new: Option<Value>,
    old: Vec<Value>,
    conditions: Vec<Value>,
}

impl Rollout {
    fn all(&self) -> impl Iterator<Item = &Value> {
        self.new.iter().chain(self.old.iter())
    }
    fn spec_sum(&self) -> i64 {
        self.all().map(spec_replicas).sum()
    }
    fn ns(&self) -> String {
        util::str_of(&self.d, "/metadata/namespace").to_string()
    }
    fn set_condition(&mut self, type_: &str, status: &str, reason: &str, message: String) {
        if let Some(c) = self.conditions.iter().find(|c| c["type"] == type_)
            && c["status"] == status
            && c["reason"] == reason
        {
            return;
        }
        let now = util::now();
        self.conditions.retain(|c| c["type"] != type_);
        self.conditions.push(
            json!({"type": type_, "status": status, "lastUpdateTime": now,
            "lastTransitionTime": now, "reason": reason, "message": message}),
        );
    }
}

/// Scales one ReplicaSet (and records why), as the deployment controller's `scaleReplicaSet`.
fn scale(st: &mut State, r: &mut Rollout, rs: &Value, to: i64) -> Value {
    let from = spec_replicas(rs);
    let mut new = rs.clone();
    new["spec"]["replicas"] = json!(to);
    set_replica_annotations(&r.d, &mut new);
    if from == to && new == *rs {
        return rs.clone();
    }
    let Some(stored) = writes::update(st, "apps", "replicasets", new, false) else {
        return rs.clone();
    };
    if from != to {
        let dir = if to > from { "up" } else { "down" };
        let msg = format!(
            "Scaled {dir} replica set {} from {from} to {to}",
            util::name(rs)
        );
        writes::event(st, &r.d, COMPONENT, "Normal", "ScalingReplicaSet", &msg);
    }
    (*stored).clone()
}

fn set_replica_annotations(d: &Value, rs: &mut Value) {
    let ann = &mut rs["metadata"]["annotations"];
    if !ann.is_object() {
        *ann = json!({});
    }
    ann[DESIRED_REPLICAS_ANN] = json!(spec_replicas(d).to_string());
    ann[MAX_REPLICAS_ANN] = json!((spec_replicas(d) + max_surge(d)).to_string());
}

fn copied_annotations(d: &Value) -> Map<String, Value> {
    d["metadata"]["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !NOT_COPIED_ANNS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Brings the new ReplicaSet's annotations (revision, copied annotations, replica counts)
/// and minReadySeconds up to date, as `getNewReplicaSet` does for an existing one.
fn refresh_new(st: &mut State, r: &mut Rollout, new_revision: i64) {
    let Some(rs) = r.new.clone() else { return };
    let mut up = rs.clone();
    let old_rev = revision(&rs);
    let mut ann = copied_annotations(&r.d);
    if let Some(cur) = rs["metadata"]["annotations"].as_object() {
        for (k, v) in cur {
            ann.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if old_rev < new_revision {
        ann.insert(REVISION_ANN.into(), json!(new_revision.to_string()));
        if old_rev > 0 {
            let hist = match ann.get(REVISION_HISTORY_ANN).and_then(Value::as_str) {
                Some(h) if !h.is_empty() => format!("{h},{old_rev}"),
                _ => old_rev.to_string(),
            };
            ann.insert(REVISION_HISTORY_ANN.into(), json!(hist));
        }
    }
    up["metadata"]["annotations"] = Value::Object(ann);
    set_replica_annotations(&r.d, &mut up);
    up["spec"]["minReadySeconds"] = r.d["spec"]["minReadySeconds"].clone();
    if up["spec"]["minReadySeconds"].is_null() {
        up["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("minReadySeconds");
    }
    if up != rs
        && let Some(s) = writes::update(st, "apps", "replicasets", up, false)
    {
        r.new = Some((*s).clone());
    }
    if r.conditions.iter().all(|c| c["type"] != "Progressing") {
        let msg = format!("Found new replica set \"{}\"", util::name(&rs));
        r.set_condition("Progressing", "True", reasons::FOUND_NEW_RS, msg);
    }
}

/// Creates the ReplicaSet of the current template (`getNewReplicaSet` with createIfNotExisted).
fn create_new(st: &mut State, r: &mut Rollout, new_revision: i64, replicas: i64) {
    let d = &r.d;
    let collisions = d["status"]["collisionCount"].as_i64();
    let hash = util::template_hash(&d["spec"]["template"], collisions);
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut ann = copied_annotations(d);
    ann.insert(REVISION_ANN.into(), json!(new_revision.to_string()));
    let mut rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("{}-{hash}", util::name(d)), "namespace": d["metadata"]["namespace"],
            "labels": template["metadata"]["labels"], "annotations": ann,
            "ownerReferences": [controller_ref(d, "apps/v1", "Deployment")]},
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    });
    if let Some(m) = d["spec"]["minReadySeconds"].as_i64() {
        rs["spec"]["minReadySeconds"] = json!(m);
    }
    set_replica_annotations(d, &mut rs);
    let Some(created) = writes::create(st, "apps", "replicasets", rs) else {
        return;
    };
    let name = util::name(&created).to_string();
    if replicas > 0 {
        let msg = format!("Scaled up replica set {name} from 0 to {replicas}");
        writes::event(st, &r.d, COMPONENT, "Normal", "ScalingReplicaSet", &msg);
    }
    let msg = format!("Created new replica set \"{name}\"");
    r.set_condition("Progressing", "True", reasons::NEW_RS_CREATED, msg);
    r.new = Some((*created).clone());
}

/// `NewRSNewReplicas` of a rolling update: up to replicas + maxSurge pods in all.
fn rolling_new_replicas(r: &Rollout) -> i64 {
    let want = spec_replicas(&r.d);
    let current_new = r.new.as_ref().map_or(0, spec_replicas);
    let max_total = want + max_surge(&r.d);
    let current = r.spec_sum();
    if current >= max_total {
        return current_new;
    }
    current_new + (max_total - current).min(want - current_new).max(0)
}

fn rolling(st: &mut State, r: &mut Rollout, new_revision: i64) {
    if r.new.is_none() {
        let replicas = rolling_new_replicas(r);
        create_new(st, r, new_revision, replicas);
    }
    let want = spec_replicas(&r.d);
    if let Some(new) = r.new.clone() {
        let target = if spec_replicas(&new) > want {
            want
        } else {
            rolling_new_replicas(r)
        };
        if target != spec_replicas(&new) {
            r.new = Some(scale(st, r, &new, target));
        }
    }
    scale_down_old(st, r);
}

/// `reconcileOldReplicaSets`: old ReplicaSets shrink while at least replicas - maxUnavailable
/// pods stay available, unhealthy ones first.
fn scale_down_old(st: &mut State, r: &mut Rollout) {
    let old_count: i64 = r.old.iter().map(spec_replicas).sum();
    if old_count == 0 {
        return;
    }
    let min_available = spec_replicas(&r.d) - max_unavailable(&r.d);
    let new_unavailable = r.new.as_ref().map_or(0, |n| {
        spec_replicas(n) - util::int_of(n, "/status/availableReplicas")
    });
    let mut budget = r.spec_sum() - min_available - new_unavailable;
    if budget <= 0 {
        return;
    }
    for i in 0..r.old.len() {
        let rs = r.old[i].clone();
        let unhealthy = spec_replicas(&rs) - util::int_of(&rs, "/status/availableReplicas");
        if budget <= 0 || spec_replicas(&rs) == 0 || unhealthy <= 0 {
            continue;
        }
        let down = unhealthy.min(budget);
        budget -= down;
        r.old[i] = scale(st, r, &rs, spec_replicas(&rs) - down);
    }
    let available: i64 = r
        .all()
        .map(|rs| util::int_of(rs, "/status/availableReplicas"))
        .sum();
    let mut to_remove = available - min_available;
    for i in 0..r.old.len() {
        let rs = r.old[i].clone();
        if to_remove <= 0 || spec_replicas(&rs) == 0 {
            continue;
        }
        let down = spec_replicas(&rs).min(to_remove);
        to_remove -= down;
        r.old[i] = scale(st, r, &rs, spec_replicas(&rs) - down);
    }
}

/// Whether pods of the old ReplicaSets are still there and not finished (Recreate waits).
fn old_pods_running(st: &mut State, r: &Rollout) -> bool {
    let olds = r.old.clone();
    olds.iter().any(|rs| {
        replicaset::owned_pods(st, rs)
            .iter()
            .any(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
    })
}

fn recreate(st: &mut State, r: &mut Rollout, new_revision: i64) {
    for i in 0..r.old.len() {
        let rs = r.old[i].clone();
        if spec_replicas(&rs) > 0 {
            r.old[i] = scale(st, r, &rs, 0);
        }
    }
    if old_pods_running(st, r) {
        return;
    }
    let want = spec_replicas(&r.d);
    match r.new.clone() {
        None => create_new(st, r, new_revision, want),
        Some(new) if spec_replicas(&new) != want => r.new = Some(scale(st, r, &new, want)),
        Some(_) => {}
    }
}

/// `checkPausedConditions`: Progressing is Unknown while paused (`kubectl rollout pause`), and
/// says so once resumed, until the rollout moves again.
fn paused_condition(r: &mut Rollout, paused: bool) {
    if r.d["spec"]["progressDeadlineSeconds"].is_null() {
        return;
    }
    let reason = r
        .conditions
        .iter()
        .find(|c| c["type"] == "Progressing")
        .map(|c| c["reason"].as_str().unwrap_or("").to_string());
    if paused && reason.as_deref() != Some(reasons::PAUSED) {
        let msg = "Deployment is paused".to_string();
        r.set_condition("Progressing", "Unknown", reasons::PAUSED, msg);
    } else if !paused && reason.as_deref() == Some(reasons::PAUSED) {
        let msg = "Deployment is resumed".to_string();
        r.set_condition("Progressing", "Unknown", reasons::RESUMED, msg);
    }
}

/// Deletes the oldest unused ReplicaSets past `revisionHistoryLimit` once a rollout is done.
fn cleanup(st: &mut State, r: &Rollout) {
    let limit = r.d["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
    let mut idle: Vec<&Value> = r
        .old
        .iter()
        .filter(|rs| {
            spec_replicas(rs) == 0 && util::int_of(rs, "/status/replicas") == 0 && !deleting(rs)
        })
        .collect();
    if idle.len() as i64 <= limit {
        return;
    }
    idle.sort_by_key(|rs| revision(rs));
    let extra = idle.len() - limit as usize;
    let ns = r.ns();
    for rs in idle.into_iter().take(extra) {
        writes::delete(st, "apps", "replicasets", &ns, util::name(rs), false);
    }
}

fn sync(st: &mut State, d: &Arc<Value>) {
    let rss = owned_replicasets(st, d);
    let template = without_hash(&d["spec"]["template"]);
    let new_pos = rss
        .iter()
        .position(|rs| without_hash(&rs["spec"]["template"]) == template);
    let mut old = rss.clone();
    let new = new_pos.map(|i| old.remove(i));
    let mut r = Rollout {
        d: (**d).clone(),
        new,
        old,
        conditions: d["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    let new_revision = r.old.iter().map(revision).max().unwrap_or(0) + 1;
    let paused = d["spec"]["paused"] == true;
    paused_condition(&mut r, paused);
    if !paused {
        refresh_new(st, &mut r, new_revision);
        if is_recreate(d) {
            recreate(st, &mut r, new_revision);
        } else {
            rolling(st, &mut r, new_revision);
        }
    }
    let status = status_of(&mut r, paused);
    if complete(&r.d, &status) {
        cleanup(st, &r);
    }
    write_status(st, &r, status);
}

/// `DeploymentComplete`: every replica updated and available, the latest spec observed.
fn complete(d: &Value, s: &Value) -> bool {
    let want = spec_replicas(d);
    util::int_of(s, "/updatedReplicas") == want
        && util::int_of(s, "/replicas") == want
        && util::int_of(s, "/availableReplicas") == want
        && util::int_of(s, "/observedGeneration") >= util::int_of(d, "/metadata/generation")
}

/// `calculateStatus` and `syncRolloutStatus`: counts over all ReplicaSets, Available against
/// replicas - maxUnavailable, Progressing as the rollout moves, completes or times out.
fn status_of(r: &mut Rollout, paused: bool) -> Value {
    let sum = |r: &Rollout, p: &str| -> i64 { r.all().map(|rs| util::int_of(rs, p)).sum() };
    let want = spec_replicas(&r.d);
    let replicas = sum(r, "/status/replicas");
    let updated = r
        .new
        .as_ref()
        .map_or(0, |n| util::int_of(n, "/status/replicas"));
    let ready = sum(r, "/status/readyReplicas");
    let available = sum(r, "/status/availableReplicas");
    let unavailable = (r.spec_sum() - available).max(0);
    if available >= want - max_unavailable(&r.d) {
        r.set_condition(
            "Available",
            "True",
            reasons::MIN_AVAILABLE,
            "Deployment has minimum availability.".into(),
        );
    } else {
        r.set_condition(
            "Available",
            "False",
            reasons::MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
        );
    }
    let mut s = json!({"observedGeneration": r.d["metadata"]["generation"]});
    for (k, n) in [
        ("replicas", replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("unavailableReplicas", unavailable),
    ] {
        if n > 0 {
            s[k] = json!(n);
        }
    }
    if let Some(c) = r.d["status"].get("collisionCount") {
        s["collisionCount"] = c.clone();
    }
    if !paused {
        progressing(r, &s);
    }
    r.conditions.sort_by_key(|c| c["type"] != "Available");
    s["conditions"] = json!(r.conditions);
    s
}

fn progressing(r: &mut Rollout, s: &Value) {
    let Some(deadline) = r.d["spec"]["progressDeadlineSeconds"].as_i64() else {
        r.conditions.retain(|c| c["type"] != "Progressing");
        return;
    };
    let cur = r
        .conditions
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned();
    let done = util::int_of(s, "/replicas") == util::int_of(s, "/updatedReplicas")
        && cur
            .as_ref()
            .is_some_and(|c| c["reason"] == reasons::NEW_RS_AVAILABLE);
    if done {
        return;
    }
    let rs_name = r
        .new
        .as_ref()
        .map(|n| util::name(n).to_string())
        .unwrap_or_default();
    let old = &r.d["status"];
    let olds = |v: &Value| util::int_of(v, "/replicas") - util::int_of(v, "/updatedReplicas");
    let moved = util::int_of(s, "/updatedReplicas") > util::int_of(old, "/updatedReplicas")
        || olds(s) < olds(old)
        || util::int_of(s, "/readyReplicas") > util::int_of(old, "/readyReplicas")
        || util::int_of(s, "/availableReplicas") > util::int_of(old, "/availableReplicas");
    if complete(&r.d, s) {
        let msg = format!("ReplicaSet \"{rs_name}\" has successfully progressed.");
        r.set_condition("Progressing", "True", reasons::NEW_RS_AVAILABLE, msg);
    } else if moved {
        let now = util::now();
        let since = cur
            .as_ref()
            .filter(|c| c["status"] == "True")
            .map_or(json!(now), |c| c["lastTransitionTime"].clone());
        r.conditions.retain(|c| c["type"] != "Progressing");
        r.conditions.push(
            json!({"type": "Progressing", "status": "True", "lastUpdateTime": now,
            "lastTransitionTime": since, "reason": reasons::RS_UPDATED,
            "message": format!("ReplicaSet \"{rs_name}\" is progressing.")}),
        );
    } else if cur.as_ref().is_some_and(|c| {
        c["reason"] != reasons::TIMED_OUT
            && c["lastUpdateTime"]
                .as_str()
                .and_then(util::seconds_since)
                .is_some_and(|t| t > deadline)
    }) {
        let msg = format!("ReplicaSet \"{rs_name}\" has timed out progressing.");
        r.set_condition("Progressing", "False", reasons::TIMED_OUT, msg);
    }
}

/// Writes the status with the revision annotation through the status subresource (the
/// deployment controller's `UpdateStatus`: annotations ride along, generation stays).
fn write_status(st: &mut State, r: &Rollout, status: Value) {
    let ns = r.ns();
    let Some(fresh) = st.get(&key(), &ns, util::name(&r.d)) else {
        return;
    };
    let mut up = (*fresh).clone();
    if let Some(new) = &r.new {
        let rev = revision(new).to_string();
        if !up["metadata"]["annotations"].is_object() {
            up["metadata"]["annotations"] = json!({});
        }
        up["metadata"]["annotations"][REVISION_ANN] = json!(rev);
    }
    up["status"] = status;
    if up != *fresh {
        writes::update(st, "apps", "deployments", up, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: i64, surge: Value, unavailable: Value) -> Value {
        json!({"spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}})
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let d = deploy(3, json!("25%"), json!("25%"));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        let d = deploy(2, json!(0), json!(0));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
        let recreate = json!({"spec": {"replicas": 2, "strategy": {"type": "Recreate"}}});
        assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    }

    #[test]
    fn a_rolling_update_surges_only_up_to_max_surge() {
        let old = json!({"spec": {"replicas": 4}});
        let r = Rollout {
            d: deploy(4, json!(1), json!(0)),
            new: None,
            old: vec![old],
            conditions: vec![],
        };
        assert_eq!(rolling_new_replicas(&r), 1);
    }
}
