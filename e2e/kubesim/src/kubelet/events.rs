//! The kubelet's Events about pods (source `kubelet` on the node), repeated ones folded into one Event whose count grows, as client-go's event correlator does.
use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// Event reasons the kubelet uses (its `events` package constants).
pub mod reasons {
    pub const PULLED: &str = "Pulled";
    pub const FAILED: &str = "Failed";
    pub const BACK_OFF: &str = "BackOff";
    pub const CREATED: &str = "Created";
    pub const STARTED: &str = "Started";
    pub const KILLING: &str = "Killing";
    pub const UNHEALTHY: &str = "Unhealthy";
    pub const FAILED_MOUNT: &str = "FailedMount";
    pub const FAILED_SANDBOX: &str = "FailedCreatePodSandBox";
    pub const SCHEDULED: &str = "Scheduled";
}

/// (namespace, pod uid, fieldPath, type, reason, message)
type Key = (String, String, String, String, String, String);

pub struct Recorder {
    client: kube::Client,
    node: String,
    seen: Mutex<HashMap<Key, (String, i32, String)>>,
}

impl Recorder {
    pub fn new(client: kube::Client, node: &str) -> Recorder {
        Recorder {
            client,
            node: node.to_string(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records one Event about `pod` (about one of its containers when `container` is given).
    pub async fn emit(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        message: &str,
    ) {
        self.emit_as(pod, container, warning, reason, message, "kubelet")
            .await;
    }

    pub async fn emit_as(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        message: &str,
        component: &str,
    ) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let field_path = container
            .map(|c| format!("spec.containers{{{c}}}"))
            .unwrap_or_default();
        let type_ = if warning { "Warning" } else { "Normal" };
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let key = (
            ns.clone(),
            uid.clone(),
            field_path.clone(),
            type_.into(),
            reason.into(),
            message.into(),
        );
        let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.client.clone(), &ns);
        let prior = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some((ev_name, count, first)) = prior {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            if api
                .patch(&ev_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.remember(key, ev_name, count + 1, first);
                return;
            }
        }
        let ev_name = format!("{name}.{:x}", jiff::Timestamp::now().as_nanosecond());
        let mut involved = json!({"kind": "Pod", "namespace": ns, "name": name, "uid": uid,
            "apiVersion": "v1", "resourceVersion": pod.metadata.resource_version});
        if !field_path.is_empty() {
            involved["fieldPath"] = json!(field_path);
        }
        let host = if component == "kubelet" {
            json!(self.node)
        } else {
            serde_json::Value::Null
        };
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": ev_name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason, "message": message, "type": type_,
            "source": {"component": component, "host": host},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": component,
            "reportingInstance": if component == "kubelet" { self.node.clone() } else { String::new() },
        });
        let Ok(ev) = serde_json::from_value(ev) else {
            return;
        };
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => self.remember(key, ev_name, 1, now),
            Err(e) => tracing::debug!("kubelet: recording Event {reason} for pod {ns}/{name}: {e}"),
        }
    }

    fn remember(&self, key: Key, name: String, count: i32, first: String) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (name, count, first));
    }

    /// The pod is gone: its Events stay in the API, but are no longer folded into.
    pub fn forget_pod(&self, uid: &str) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k, _| k.1 != uid);
    }
}
