//! Test support standing in for a kubelet where none runs: a task that marks every Pending pod of a namespace Running and Ready with an IP, through the pods' status subresource as a kubelet writes it.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tokio::task::JoinHandle;

/// The status a started, ready pod gets (its containers running since `now`).
fn ready_status(pod: &Pod, ip: &str, now: &str) -> serde_json::Value {
    let containers: Vec<serde_json::Value> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            json!({"name": c.name, "ready": true, "restartCount": 0, "started": true,
                "image": c.image, "imageID": "", "state": {"running": {"startedAt": now}}})
        })
        .collect();
    json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
        "containerStatuses": containers}})
}

/// Marks the Pending pods of `namespace` ready every 150 ms while `on` holds (pods being
/// deleted are left alone). Abort the task to stop it.
pub fn mark_pods_ready(
    client: kube::Client,
    namespace: &str,
    on: Arc<AtomicBool>,
) -> JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    tokio::spawn(async move {
        let mut n: u32 = 10;
        loop {
            tokio::time::sleep(Duration::from_millis(150)).await;
            if !on.load(Ordering::SeqCst) {
                continue;
            }
            let Ok(list) = pods.list(&ListParams::default()).await else {
                continue;
            };
            for p in list.items {
                let pending = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
                if !pending || p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                n += 1;
                let ip = format!("10.244.{}.{}", n / 250, n % 250 + 2);
                let now = jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%SZ")
                    .to_string();
                let status = ready_status(&p, &ip, &now);
                let name = p.metadata.name.clone().unwrap_or_default();
                let _ = pods
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
        }
    })
}
