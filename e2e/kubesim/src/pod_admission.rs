//! What kube-apiserver does to a Pod on create before storing it: the defaults of the core/v1 Pod (SetDefaults_Pod, _PodSpec, _Container, _Probe, ...) and the ServiceAccount admission plugin's `kube-api-access-*` projected token volume.
use serde_json::{Value, json};

use crate::resources::ResKey;
use crate::store::State;

/// Where the ServiceAccount admission plugin mounts the token volume.
pub const SA_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn default(obj: &mut Value, key: &str, v: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj[key] = v;
    }
}

fn default_probe(p: &mut Value) {
    if !p.is_object() {
        return;
    }
    default(p, "timeoutSeconds", json!(1));
    default(p, "periodSeconds", json!(10));
    default(p, "successThreshold", json!(1));
    default(p, "failureThreshold", json!(3));
    if p["httpGet"].is_object() {
        default(&mut p["httpGet"], "path", json!("/"));
        default(&mut p["httpGet"], "scheme", json!("HTTP"));
    }
}

fn default_container(c: &mut Value) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    let image = c["image"].as_str().unwrap_or("");
    let tag = image
        .rsplit('/')
        .next()
        .and_then(|last| last.split_once(':'))
        .map(|(_, t)| t);
    let pull = if image.contains('@') || tag.is_some_and(|t| t != "latest") {
        "IfNotPresent"
    } else {
        "Always"
    };
    default(c, "imagePullPolicy", json!(pull));
    default(c, "resources", json!({}));
    for p in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = c.get_mut(p) {
            default_probe(probe);
        }
    }
    if let Some(ports) = c["ports"].as_array_mut() {
        for p in ports {
            default(p, "protocol", json!("TCP"));
        }
    }
}

fn default_volume(v: &mut Value) {
    for (source, mode) in [
        ("secret", true),
        ("configMap", true),
        ("projected", true),
        ("downwardAPI", true),
    ] {
        if v[source].is_object() && mode {
            default(&mut v[source], "defaultMode", json!(420));
        }
    }
}

/// Defaults and ServiceAccount admission, applied to a Pod being created in `ns`.
pub fn admit(st: &State, ns: &str, pod: &mut Value) {
    if !pod["spec"].is_object() {
        return;
    }
    let spec = &mut pod["spec"];
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "securityContext", json!({}));
    default(spec, "enableServiceLinks", json!(true));
    default(spec, "priority", json!(0));
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    let sa = spec["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| spec["serviceAccount"].as_str().filter(|s| !s.is_empty()))
        .unwrap_or("default")
        .to_string();
    spec["serviceAccountName"] = json!(sa);
    spec["serviceAccount"] = json!(sa);
    // The DefaultTolerationSeconds admission plugin.
    if spec["tolerations"].as_array().is_none_or(Vec::is_empty) {
        spec["tolerations"] = json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ]);
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec[list].as_array_mut() {
            cs.iter_mut().for_each(default_container);
        }
    }
    if let Some(vs) = spec["volumes"].as_array_mut() {
        vs.iter_mut().for_each(default_volume);
    }
    mount_service_account_token(st, ns, &sa, spec);
}

/// The ServiceAccount admission plugin: a projected volume with the token, the cluster CA and
/// the namespace, mounted read-only in every container, unless automount is off (pod first,
/// then ServiceAccount) or a container already mounts something there.
fn mount_service_account_token(st: &State, ns: &str, sa: &str, spec: &mut Value) {
    let sa_obj = st.get(
        &ResKey {
            group: String::new(),
            plural: "serviceaccounts".into(),
        },
        ns,
        sa,
    );
    let automount = spec["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| {
            sa_obj
                .as_ref()
                .and_then(|s| s["automountServiceAccountToken"].as_bool())
        })
        .unwrap_or(true);
    if !automount {
        return;
    }
    let suffix: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..5)
            .map(|_| b"bcdfghjklmnpqrstvwxz2456789"[rng.random_range(0..27)] as char)
            .collect()
    };
    let name = format!("kube-api-access-{suffix}");
    let mut mounted = false;
    for list in ["containers", "initContainers"] {
        let Some(cs) = spec[list].as_array_mut() else {
            continue;
        };
        for c in cs {
            let already = c["volumeMounts"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["mountPath"] == SA_MOUNT_PATH));
            if already {
                continue;
            }
            if !c["volumeMounts"].is_array() {
                c["volumeMounts"] = json!([]);
            }
            if let Some(m) = c["volumeMounts"].as_array_mut() {
                m.push(json!({"name": name, "readOnly": true, "mountPath": SA_MOUNT_PATH}));
            }
            mounted = true;
        }
    }
    if !mounted {
        return;
    }
    if !spec["volumes"].is_array() {
        spec["volumes"] = json!([]);
    }
    if let Some(vs) = spec["volumes"].as_array_mut() {
        vs.push(json!({"name": name, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}}));
    }
}
