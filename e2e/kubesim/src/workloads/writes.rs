//! The writes the simulated kube-controller-manager makes, through the same object semantics as API requests (admission, generation, managedFields as `kube-controller-manager`), and the Events it records.
use std::sync::Arc;

use serde_json::{Value, json};

use crate::objects::{self, Ctx, DeleteOpts, Managed};
use crate::resources::ResourceDef;
use crate::store::State;

use super::util;

/// The field manager kube-controller-manager's clients write with.
const MANAGER: &str = "kube-controller-manager";

fn ctx() -> Ctx<'static> {
    Ctx {
        ca_pem: "",
        manager: MANAGER.into(),
        dry_run: false,
        now: util::now(),
        ..Default::default()
    }
}

pub fn def(st: &State, group: &str, plural: &str) -> Option<Arc<ResourceDef>> {
    st.registry
        .defs
        .iter()
        .find(|d| d.group == group && d.plural == plural)
        .cloned()
}

/// Creates an object; a refusal is logged (the controller tries again on its next pass).
pub fn create(st: &mut State, group: &str, plural: &str, obj: Value) -> Option<Arc<Value>> {
    let d = def(st, group, plural)?;
    let ns = util::str_of(&obj, "/metadata/namespace").to_string();
    let version = d.storage_version().to_string();
    objects::create(st, &d, &version, &ns, obj, &ctx())
        .map_err(|e| {
            tracing::warn!(
                "kube-controller-manager: creating {plural} in {ns}: {}",
                e.message
            );
        })
        .ok()
}

/// Replaces an object (or its status when `status`), keeping the resourceVersion it was read at
/// so that a concurrent write is never overwritten.
pub fn update(
    st: &mut State,
    group: &str,
    plural: &str,
    obj: Value,
    status: bool,
) -> Option<Arc<Value>> {
    let d = def(st, group, plural)?;
    let ns = util::str_of(&obj, "/metadata/namespace").to_string();
    let name = util::name(&obj).to_string();
    let version = d.storage_version().to_string();
    let sub = status.then_some("status");
    objects::update(
        st,
        &d,
        &version,
        &ns,
        &name,
        obj,
        sub,
        &ctx(),
        false,
        Managed::Track,
    )
    .map_err(|e| {
        tracing::warn!(
            "kube-controller-manager: updating {plural} {ns}/{name}: {}",
            e.message
        );
    })
    .ok()
}

/// Deletes an object with the given propagation (`foreground`: dependents first).
pub fn delete(st: &mut State, group: &str, plural: &str, ns: &str, name: &str, foreground: bool) {
    let Some(d) = def(st, group, plural) else {
        return;
    };
    let opts = DeleteOpts {
        foreground,
        ..Default::default()
    };
    if let Err(e) = objects::delete(st, &d, ns, name, &ctx(), &opts) {
        tracing::debug!(
            "kube-controller-manager: deleting {plural} {ns}/{name}: {}",
            e.message
        );
    }
}

/// Records a core/v1 Event about `involved` from `component`, as client-go's event recorder.
pub fn event(
    st: &mut State,
    involved: &Value,
    component: &str,
    type_: &str,
    reason: &str,
    message: &str,
) {
    let now = util::now();
    let m = &involved["metadata"];
    let stamp = jiff::Timestamp::now().as_nanosecond();
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{}.{stamp:x}", util::name(involved)),
            "namespace": m["namespace"]},
        "involvedObject": {"kind": involved["kind"], "namespace": m["namespace"],
            "name": m["name"], "uid": m["uid"], "apiVersion": involved["apiVersion"],
            "resourceVersion": m["resourceVersion"]},
        "reason": reason, "message": message, "source": {"component": component},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": type_,
        "eventTime": null, "reportingComponent": component, "reportingInstance": "",
    });
    create(st, "", "events", ev);
}
