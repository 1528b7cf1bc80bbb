//! Reports a MultiCasskop that cannot be decoded: `Valid=False` naming the field (a merge patch of
//! its status, the only write that needs no decoded object), an Event and a log line; the object
//! is then left alone until it changes.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Client, Resource};
use serde_json::json;
use tracing::warn;

use crate::api::lenient::{Lenient, Poison};
use crate::api::{FIELD_MANAGER, MultiCasskop};
use crate::rollout::events::{EventType, NewEvent, Publisher};
use crate::rollout::status::{condition, phase, reason};

/// Reason of the `Valid=False` condition, `Ready=False` condition and Event of an undecodable
/// MultiCasskop.
pub const UNDECODABLE: &str = "Undecodable";

/// The resourceVersion each undecodable MultiCasskop (`ns/name`) had when we last reported it,
/// and the one our own status write gave it: reporting again on either would loop on our write.
#[derive(Default)]
pub(super) struct Reported(Mutex<HashMap<String, Versions>>);

/// The resourceVersions of one reported MultiCasskop.
struct Versions {
    /// As we found it.
    seen: Option<String>,
    /// As our status write left it.
    ours: Option<String>,
}

impl Reported {
    fn already(&self, key: &str, rv: Option<&String>) -> bool {
        let map = self.0.lock().expect("poison record lock");
        map.get(key)
            .is_some_and(|v| rv.is_some() && (v.seen.as_ref() == rv || v.ours.as_ref() == rv))
    }

    fn record(&self, key: &str, seen: Option<String>, ours: Option<String>) {
        let mut map = self.0.lock().expect("poison record lock");
        map.insert(key.to_string(), Versions { seen, ours });
    }
}

/// What reporting needs: the local client, the Event publisher, the record of what was reported.
pub(super) struct Reporter<'a> {
    pub(super) local: &'a Client,
    pub(super) events: &'a Publisher,
    pub(super) reported: &'a Reported,
}

/// Report `poison` once per version of the object; never fails the reconcile (nothing to retry:
/// only an edit of the object can change the outcome, and that triggers a reconcile).
pub(super) async fn report(poison: &Poison, ctx: Reporter<'_>) -> (Requeue, &'static str) {
    let key = poison.key();
    let rv = poison.meta.resource_version.clone();
    if ctx.reported.already(&key, rv.as_ref()) {
        return (Requeue::await_change(), "undecodable");
    }
    let why = format!("MultiCasskop {key} cannot be decoded: {}", poison.error);
    warn!(multicasskop = %key, "{why}; it is left alone until it changes");
    let ours = match write_status(poison, ctx.local, &why).await {
        Ok(rv) => rv,
        Err(e) => {
            warn!(multicasskop = %key, "cannot write the status of undecodable MultiCasskop {key}: {e}");
            None
        }
    };
    publish(poison, ctx.events, &why).await;
    ctx.reported.record(&key, rv, ours);
    (Requeue::await_change(), "undecodable")
}

/// Merge-patch the status: phase Invalid, `Valid=False` and `Ready=False` with the reason.
/// Returns the resourceVersion our write gave the object.
async fn write_status(
    poison: &Poison,
    local: &Client,
    why: &str,
) -> Result<Option<String>, kube::Error> {
    let (Some(name), Some(ns)) = (&poison.meta.name, &poison.meta.namespace) else {
        return Ok(None);
    };
    let now = jiff::Timestamp::now().to_string();
    let cond = |type_: &str| {
        json!({"type": type_, "status": "False", "reason": UNDECODABLE, "message": why,
               "lastTransitionTime": now, "observedGeneration": poison.meta.generation})
    };
    let patch = json!({"status": {
        "phase": phase::INVALID,
        "observedGeneration": poison.meta.generation,
        "conditions": [cond(condition::VALID), cond(condition::READY)],
    }});
    let api: Api<Lenient<MultiCasskop>> = Api::namespaced(local.clone(), ns);
    let params = PatchParams::apply(FIELD_MANAGER);
    let written = api
        .patch_status(name, &params, &Patch::Merge(&patch))
        .await?;
    Ok(written.meta().resource_version.clone())
}

async fn publish(poison: &Poison, events: &Publisher, why: &str) {
    let reference = ObjectReference {
        api_version: Some(MultiCasskop::api_version(&()).to_string()),
        kind: Some(MultiCasskop::kind(&()).to_string()),
        name: poison.meta.name.clone(),
        namespace: poison.meta.namespace.clone(),
        uid: poison.meta.uid.clone(),
        ..ObjectReference::default()
    };
    let ev = NewEvent {
        type_: EventType::Warning,
        reason: reason::INVALID_SPEC,
        action: "Decode",
        note: why,
    };
    if let Err(e) = events.publish(&ev, &reference).await {
        warn!(multicasskop = %poison.key(), "could not publish Event {UNDECODABLE}: {e}");
    }
}
