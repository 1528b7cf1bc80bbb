//! CassKop's pod operations: a Pod labelled `operation-name=<op>` and `operation-status=ToDo` gets the operation run on its node once the cluster's last action is done (`Ongoing`, then `Done`, with `operation-start`/`operation-end` labels), and its rack's `status.cassandraRackStatus.<dc-rack>.podLastOperation` follows.
use std::collections::BTreeMap;

use anyhow::Context as _;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::info;

use super::{
    APP_VALUE, Caches, ClusterView, ClusterWorker, FIELD_MANAGER, LABEL_APP, LABEL_CLUSTER,
    LABEL_DC, LABEL_RACK,
};

/// Operations the simulated nodes know; the others need an `operation-argument` CassKop
/// checks (`rebuild`, `remove`) or are CassKop's own (`decommission`), and end in `Error` here.
const KNOWN: [&str; 2] = ["cleanup", "upgradesstables"];

/// `k8s.LabelTime`: a label-safe UTC time, `20060102T150405`.
fn label_time() -> String {
    jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S").to_string()
}

fn label<'a>(p: &'a Value, k: &str) -> Option<&'a str> {
    p.pointer(&format!("/metadata/labels/{k}"))
        .and_then(Value::as_str)
}

impl ClusterWorker {
    /// Start the pod operations asked for and end those that ran long enough; when to look
    /// again.
    pub(super) async fn pod_operations(
        &mut self,
        view: &ClusterView,
        now: Instant,
    ) -> anyhow::Result<Option<Instant>> {
        if view.action_status.as_deref() != Some("Done") {
            return Ok(None);
        }
        let cached = Caches::of_cluster(&self.caches.pods, &self.namespace, &self.name);
        let asked = cached.values().any(|p| {
            p.metadata.labels.as_ref().is_some_and(|l| {
                matches!(
                    l.get("operation-status").map(String::as_str),
                    Some("ToDo" | "Ongoing")
                )
            })
        });
        if !asked {
            return Ok(None);
        }
        // The cache may not show our own label writes yet: the server has the last word.
        let selector = format!("{LABEL_APP}={APP_VALUE},{LABEL_CLUSTER}={}", self.name);
        let pods: BTreeMap<String, DynamicObject> = self
            .pods
            .list(&ListParams::default().labels(&selector))
            .await
            .with_context(|| format!("listing Pods of {}", self.ident()))?
            .items
            .into_iter()
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
            .collect();
        let mut rack_ops: BTreeMap<String, Value> = BTreeMap::new();
        let mut wake: Option<Instant> = None;
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        for (name, pod) in &pods {
            let p = serde_json::to_value(pod).unwrap_or(Value::Null);
            let (Some(op), Some(state)) =
                (label(&p, "operation-name"), label(&p, "operation-status"))
            else {
                continue;
            };
            let rack = format!(
                "{}-{}",
                label(&p, LABEL_DC).unwrap_or_default(),
                label(&p, LABEL_RACK).unwrap_or_default()
            );
            let running = p.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
            let labels = match state {
                "ToDo" if running => {
                    info!("{}: pod {name}: {op} Ongoing", self.ident());
                    self.ops_started.insert(name.clone(), now);
                    let entry = rack_ops.entry(rack).or_insert_with(|| {
                        json!({"name": op, "status": "Ongoing", "startTime": super::now_rfc3339(), "pods": [], "podsOK": [], "podsKO": []})
                    });
                    if let Some(a) = entry["pods"].as_array_mut() {
                        a.push(json!(name));
                    }
                    json!({"operation-status": "Ongoing", "operation-start": label_time(), "operation-end": ""})
                }
                "Ongoing" => {
                    let started = *self.ops_started.entry(name.clone()).or_insert(now);
                    let due = started + self.opts.ready_after;
                    if now < due {
                        wake = Some(wake.map_or(due, |w| w.min(due)));
                        continue;
                    }
                    self.ops_started.remove(name);
                    let ok = KNOWN.contains(&op);
                    info!(
                        "{}: pod {name}: {op} {}",
                        self.ident(),
                        if ok { "Done" } else { "Error" }
                    );
                    let entry = rack_ops.entry(rack).or_insert_with(|| {
                        json!({"name": op, "status": "Done", "endTime": super::now_rfc3339(), "pods": [], "podsOK": [], "podsKO": []})
                    });
                    if let Some(a) = entry[if ok { "podsOK" } else { "podsKO" }].as_array_mut() {
                        a.push(json!(name));
                    }
                    json!({"operation-status": if ok { "Done" } else { "Error" }, "operation-end": label_time()})
                }
                _ => continue,
            };
            self.pods
                .patch(
                    name,
                    &pp,
                    &Patch::Merge(&json!({"metadata": {"labels": labels}})),
                )
                .await
                .with_context(|| format!("labelling Pod {}/{name}", self.namespace))?;
        }
        if !rack_ops.is_empty() {
            let racks: serde_json::Map<String, Value> = rack_ops
                .into_iter()
                .map(|(k, v)| (k, json!({"podLastOperation": v})))
                .collect();
            let patch = json!({"status": {"cassandraRackStatus": racks}});
            self.patch_cluster(&patch, "podLastOperation").await?;
            // Look again soon: started operations end after ready_after.
            let next = now + self.opts.ready_after;
            wake = Some(wake.map_or(next, |w| w.min(next)));
        }
        Ok(wake)
    }
}
