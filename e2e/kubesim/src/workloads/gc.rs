//! The garbage collector's foreground deletion: an object deleted with `propagationPolicy: Foreground` keeps its `foregroundDeletion` finalizer until the dependents that block it (`blockOwnerDeletion`) are gone, which it deletes first.
use std::sync::Arc;

use serde_json::{Value, json};

use crate::store::State;

use super::admission::FOREGROUND_FINALIZER as FOREGROUND;
use super::util;
use super::writes;

fn waiting(v: &Value) -> bool {
    util::deleting(v)
        && v["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == FOREGROUND))
}

/// One pass over the objects waiting for their dependents.
pub fn collect(st: &mut State) {
    let mut owners: Vec<(String, String, Arc<Value>)> = vec![];
    for (key, table) in &st.tables {
        for o in table.objects.values().filter(|o| waiting(o)) {
            owners.push((key.group.clone(), key.plural.clone(), o.clone()));
        }
    }
    for (group, plural, owner) in owners {
        finish_when_free(st, &group, &plural, &owner);
    }
}

fn finish_when_free(st: &mut State, group: &str, plural: &str, owner: &Value) {
    let uid = util::uid(owner).to_string();
    let dependents = st.owners.get(&uid).cloned().unwrap_or_default();
    let mut blocking = 0;
    for (rk, (ns, name)) in dependents {
        let Some(dep) = st.get(&rk, &ns, &name) else {
            continue;
        };
        let blocks = dep["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["uid"] == uid.as_str() && r["blockOwnerDeletion"] == true);
        if !util::deleting(&dep) {
            // A dependent that owns things itself goes in the foreground too, as kube's GC does.
            let has_own = st.owners.contains_key(util::uid(&dep));
            writes::delete(st, &rk.group, &rk.plural, &ns, &name, has_own);
        }
        if blocks && st.get(&rk, &ns, &name).is_some() {
            blocking += 1;
        }
    }
    if blocking > 0 {
        return;
    }
    let ns = util::str_of(owner, "/metadata/namespace").to_string();
    let Some(def) = writes::def(st, group, plural) else {
        return;
    };
    let Some(fresh) = st.get(&def.key(), &ns, util::name(owner)) else {
        return;
    };
    let mut up = (*fresh).clone();
    let finalizers: Vec<Value> = up["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| *f != FOREGROUND)
        .cloned()
        .collect();
    up["metadata"]["finalizers"] = json!(finalizers);
    writes::update(st, group, plural, up, false);
}
