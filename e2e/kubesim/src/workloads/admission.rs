//! What kube-apiserver does to Deployments, ReplicaSets and Services on every write before storing them: defaults, validation, selector immutability, ClusterIP and NodePort allocation.
use rand::Rng;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::resources::ResKey;
use crate::store::State;

use super::util::{format_selector, selector_is_empty, selector_matches};

/// The service CIDR ClusterIPs come from (kube-apiserver's default `--service-cluster-ip-range`
/// of kind and kubeadm clusters); `.1` is the `kubernetes` Service's.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The finalizer kube-apiserver adds to an object deleted with `propagationPolicy: Foreground`;
/// the garbage collector removes it once the dependents that block it are gone.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// Whether a write to the `status` subresource of this resource may also change annotations
/// (the deployment controller records `deployment.kubernetes.io/revision` with its status).
pub fn status_writes_annotations(group: &str, plural: &str) -> bool {
    group == "apps" && matches!(plural, "deployments" | "replicasets")
}

/// Whether an update of this resource moves `metadata.generation` on annotation changes too
/// (Deployments: their annotations are copied to their ReplicaSets).
pub fn annotations_bump_generation(group: &str, plural: &str) -> bool {
    group == "apps" && plural == "deployments"
}

/// Defaults and validates a write of a workload kind or Service (other kinds pass untouched).
/// `old` is the stored object on updates.
pub fn admit(
    st: &State,
    group: &str,
    plural: &str,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    match (group, plural) {
        ("apps", "deployments") => {
            default_deployment(obj);
            validate_workload(obj, old, "Deployment")
        }
        ("apps", "replicasets") => {
            if let Some(spec) = object(obj, "spec") {
                set_default(spec, "replicas", json!(1));
                if let Some(t) = object(spec, "template") {
                    default_pod_template(t);
                }
            }
            validate_workload(obj, old, "ReplicaSet")
        }
        ("", "services") => admit_service(st, obj, old),
        _ => Ok(()),
    }
}

/// The items of the list at `key`, without creating the key when absent (`v[key]` would).
fn items<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// The object at `key` when there is one.
fn object<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    v.get_mut(key).filter(|x| x.is_object())
}

fn set_default(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.entry(key).or_insert(v);
    }
}

fn default_deployment(d: &mut Value) {
    if !d["spec"].is_object() {
        d["spec"] = json!({});
    }
    let spec = &mut d["spec"];
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    set_default(spec, "strategy", json!({}));
    set_default(&mut spec["strategy"], "type", json!("RollingUpdate"));
    if spec["strategy"]["type"] == "RollingUpdate" {
        set_default(&mut spec["strategy"], "rollingUpdate", json!({}));
        let ru = &mut spec["strategy"]["rollingUpdate"];
        set_default(ru, "maxUnavailable", json!("25%"));
        set_default(ru, "maxSurge", json!("25%"));
    }
    if let Some(t) = object(spec, "template") {
        default_pod_template(t);
    }
}

/// `SetDefaults_PodSpec` and its containers', as a template is stored (and copied into pods).
fn default_pod_template(t: &mut Value) {
    if !t.is_object() {
        return;
    }
    // A template's metadata is stored as ObjectMeta: the `creationTimestamp: null` typed clients
    // send (`kubectl rollout undo`) is no value, so that equal templates compare equal.
    if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|_, v| !v.is_null());
    }
    if !t["spec"].is_object() {
        t["spec"] = json!({});
    }
    let spec = &mut t["spec"];
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers"] {
        items(spec, key).for_each(default_container);
    }
    for v in items(spec, "volumes") {
        for src in ["secret", "configMap"] {
            if let Some(o) = object(v, src) {
                set_default(o, "defaultMode", json!(420));
            }
        }
    }
}

fn default_container(c: &mut Value) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "resources", json!({}));
    let image = c["image"].as_str().unwrap_or("");
    let last = image.rsplit('/').next().unwrap_or("");
    let pull = if image.contains('@') || (last.contains(':') && !last.ends_with(":latest")) {
        "IfNotPresent"
    } else {
        "Always"
    };
    set_default(c, "imagePullPolicy", json!(pull));
    for p in items(c, "ports") {
        set_default(p, "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(p) = object(c, probe) else { continue };
        set_default(p, "timeoutSeconds", json!(1));
        set_default(p, "periodSeconds", json!(10));
        set_default(p, "successThreshold", json!(1));
        set_default(p, "failureThreshold", json!(3));
        if let Some(h) = object(p, "httpGet") {
            set_default(h, "scheme", json!("HTTP"));
        }
    }
    for e in items(c, "env") {
        if let Some(f) = object(e, "valueFrom").and_then(|v| object(v, "fieldRef")) {
            set_default(f, "apiVersion", json!("v1"));
        }
    }
}

/// Go's `%#v` of a string map, as kube's messages print template labels.
fn go_map(m: &Value) -> String {
    let Some(m) = m.as_object() else {
        return "map[string]string(nil)".into();
    };
    let mut kv: Vec<(&String, &Value)> = m.iter().collect();
    kv.sort_by_key(|(k, _)| *k);
    let body: Vec<String> = kv
        .iter()
        .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or("")))
        .collect();
    format!("map[string]string{{{}}}", body.join(", "))
}

/// A 422 with one field error: `message` is kube's `field: detail` text, the cause carries
/// the detail alone (kubectl prints `field: detail` from it).
fn field_error(group: &str, kind: &str, obj: &Value, field: &str, message: String) -> ApiError {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let detail = message
        .strip_prefix(&format!("{field}: "))
        .unwrap_or(&message);
    let reason = match detail {
        d if d.starts_with("Required value") => "FieldValueRequired",
        d if d.starts_with("Forbidden") => "FieldValueForbidden",
        d if d.starts_with("Unsupported value") => "FieldValueNotSupported",
        _ => "FieldValueInvalid",
    };
    ApiError::invalid_causes(
        group,
        kind,
        name,
        &[(reason, field, detail)],
        std::slice::from_ref(&message),
    )
}

fn invalid(kind: &str, obj: &Value, field: &str, cause: String) -> ApiError {
    field_error("apps", kind, obj, field, cause)
}

/// `ValidateDeployment`/`ValidateReplicaSet`: the selector exists, selects the template's
/// labels and never changes; there is a container; the strategy is consistent.
fn validate_workload(obj: &Value, old: Option<&Value>, kind: &str) -> Result<(), ApiError> {
    let spec = &obj["spec"];
    let selector = &spec["selector"];
    if selector.is_null() {
        return Err(invalid(
            kind,
            obj,
            "spec.selector",
            "spec.selector: Required value".into(),
        ));
    }
    if selector_is_empty(selector) {
        return Err(invalid(
            kind,
            obj,
            "spec.selector",
            format!(
                "spec.selector: Invalid value: \"{}\": empty selector is invalid for deployment",
                format_selector(selector)
            ),
        ));
    }
    let labels = &spec["template"]["metadata"]["labels"];
    if !selector_matches(selector, labels) {
        return Err(invalid(
            kind,
            obj,
            "spec.template.metadata.labels",
            format!(
                "spec.template.metadata.labels: Invalid value: {}: `selector` does not match template `labels`",
                go_map(labels)
            ),
        ));
    }
    if let Some(o) = old
        && o["spec"]["selector"] != *selector
    {
        return Err(invalid(
            kind,
            obj,
            "spec.selector",
            format!(
                "spec.selector: Invalid value: \"{}\": field is immutable",
                format_selector(selector)
            ),
        ));
    }
    if spec["template"]["spec"]["containers"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        return Err(invalid(
            kind,
            obj,
            "spec.template.spec.containers",
            "spec.template.spec.containers: Required value".into(),
        ));
    }
    if let Some(r) = spec["replicas"].as_i64().filter(|r| *r < 0) {
        return Err(invalid(
            kind,
            obj,
            "spec.replicas",
            format!("spec.replicas: Invalid value: {r}: must be greater than or equal to 0"),
        ));
    }
    let policy = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always");
    if policy != "Always" {
        return Err(invalid(
            kind,
            obj,
            "spec.template.spec.restartPolicy",
            format!(
                "spec.template.spec.restartPolicy: Unsupported value: \"{policy}\": supported values: \"Always\""
            ),
        ));
    }
    validate_strategy(obj, kind)
}

fn validate_strategy(obj: &Value, kind: &str) -> Result<(), ApiError> {
    let strategy = &obj["spec"]["strategy"];
    match strategy["type"].as_str() {
        None => Ok(()),
        Some("Recreate") if !strategy["rollingUpdate"].is_null() => Err(invalid(
            kind,
            obj,
            "spec.strategy.rollingUpdate",
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'".into(),
        )),
        Some("Recreate") => Ok(()),
        Some("RollingUpdate") => {
            let ru = &strategy["rollingUpdate"];
            let zero = |v: &Value| v == &json!(0) || v == &json!("0%");
            if zero(&ru["maxSurge"]) && zero(&ru["maxUnavailable"]) {
                return Err(invalid(
                    kind,
                    obj,
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0".into(),
                ));
            }
            Ok(())
        }
        Some(t) => Err(invalid(
            kind,
            obj,
            "spec.strategy.type",
            format!(
                "spec.strategy.type: Unsupported value: \"{t}\": supported values: \"Recreate\", \"RollingUpdate\""
            ),
        )),
    }
}

fn service_invalid(obj: &Value, field: &str, cause: String) -> ApiError {
    field_error("", "Service", obj, field, cause)
}

/// ClusterIPs and NodePorts held by the Services of the cluster (but `except`'s own).
fn allocated(st: &State, except: Option<&Value>) -> (Vec<String>, Vec<i64>) {
    let key = ResKey {
        group: String::new(),
        plural: "services".into(),
    };
    let except_uid = except.and_then(|o| o["metadata"]["uid"].as_str());
    let mut ips = vec![];
    let mut ports = vec![];
    for s in st.range(&key, None, None) {
        if except_uid.is_some() && s["metadata"]["uid"].as_str() == except_uid {
            continue;
        }
        if let Some(ip) = s["spec"]["clusterIP"].as_str() {
            ips.push(ip.to_string());
        }
        for p in s["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(n) = p["nodePort"].as_i64() {
                ports.push(n);
            }
        }
    }
    (ips, ports)
}

fn admit_service(st: &State, svc: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    if !svc["spec"].is_object() {
        svc["spec"] = json!({});
    }
    // Values the server allocated stay when a write leaves them out (kube's patchAllocatedValues),
    // so that `helm upgrade` and `kubectl apply` never lose the ClusterIP.
    if let Some(o) = old {
        let spec = &mut svc["spec"];
        if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
            spec["clusterIP"] = o["spec"]["clusterIP"].clone();
            spec["clusterIPs"] = o["spec"]["clusterIPs"].clone();
        }
        let old_ports = o["spec"]["ports"].as_array().cloned().unwrap_or_default();
        for p in items(spec, "ports") {
            if p["nodePort"].is_null()
                && let Some(n) = old_ports
                    .iter()
                    .find(|q| q["port"] == p["port"])
                    .and_then(|q| q["nodePort"].as_i64())
            {
                p["nodePort"] = json!(n);
            }
        }
        if o["spec"]["clusterIP"] != svc["spec"]["clusterIP"] {
            return Err(service_invalid(
                svc,
                "spec.clusterIPs[0]",
                format!(
                    "spec.clusterIPs[0]: Invalid value: {:?}: may not change once set",
                    svc["spec"]["clusterIP"].as_str().unwrap_or("")
                ),
            ));
        }
    }
    default_service(svc);
    validate_service_ports(svc)?;
    let (ips, node_ports) = allocated(st, old);
    allocate_cluster_ip(svc, &ips)?;
    allocate_node_ports(svc, &node_ports);
    if old.is_none() {
        svc["status"] = json!({"loadBalancer": {}});
    }
    Ok(())
}

fn default_service(svc: &mut Value) {
    let spec = &mut svc["spec"];
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let external = spec["type"] == "ExternalName";
    if !external {
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    for p in items(spec, "ports") {
        set_default(p, "protocol", json!("TCP"));
        let port = p["port"].clone();
        set_default(p, "targetPort", port);
    }
}

fn validate_service_ports(svc: &Value) -> Result<(), ApiError> {
    let spec = &svc["spec"];
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    let headless = spec["clusterIP"] == "None";
    if ports.is_empty() && !headless && spec["type"] != "ExternalName" {
        return Err(service_invalid(
            svc,
            "spec.ports",
            "spec.ports: Required value".into(),
        ));
    }
    for (i, p) in ports.iter().enumerate() {
        if !p["port"].as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
            return Err(service_invalid(
                svc,
                &format!("spec.ports[{i}].port"),
                format!(
                    "spec.ports[{i}].port: Invalid value: {}: must be between 1 and 65535, inclusive",
                    p["port"]
                ),
            ));
        }
        if ports.len() > 1 && p["name"].as_str().is_none_or(str::is_empty) {
            return Err(service_invalid(
                svc,
                &format!("spec.ports[{i}].name"),
                format!("spec.ports[{i}].name: Required value"),
            ));
        }
    }
    Ok(())
}

fn allocate_cluster_ip(svc: &mut Value, taken: &[String]) -> Result<(), ApiError> {
    let spec = &mut svc["spec"];
    if spec["type"] == "ExternalName" {
        return Ok(());
    }
    let wanted = spec["clusterIP"].as_str().unwrap_or("").to_string();
    let ip = match wanted.as_str() {
        "None" => "None".to_string(),
        "" => {
            let mut rng = rand::rng();
            loop {
                let ip = format!(
                    "10.96.{}.{}",
                    rng.random_range(0..=255),
                    rng.random_range(1..=254)
                );
                if ip != "10.96.0.1" && !taken.contains(&ip) {
                    break ip;
                }
            }
        }
        ip if taken.iter().any(|t| t == ip) => {
            return Err(service_invalid(
                svc,
                "spec.clusterIPs",
                format!(
                    "spec.clusterIPs: Invalid value: []string{{{ip:?}}}: failed to allocate IP {ip}: provided IP is already allocated"
                ),
            ));
        }
        ip if !ip.starts_with("10.96.") => {
            return Err(service_invalid(
                svc,
                "spec.clusterIPs",
                format!(
                    "spec.clusterIPs: Invalid value: []string{{{ip:?}}}: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
                ),
            ));
        }
        ip => ip.to_string(),
    };
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    Ok(())
}

fn allocate_node_ports(svc: &mut Value, taken: &[i64]) {
    if !matches!(
        svc["spec"]["type"].as_str(),
        Some("NodePort" | "LoadBalancer")
    ) {
        return;
    }
    let mut used: Vec<i64> = taken.to_vec();
    let mut rng = rand::rng();
    for p in items(&mut svc["spec"], "ports") {
        if p["nodePort"].is_null() {
            let n = loop {
                let n = rng.random_range(NODE_PORTS);
                if !used.contains(&n) {
                    break n;
                }
            };
            used.push(n);
            p["nodePort"] = json!(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_defaults_fill_strategy_and_template() {
        let mut d = json!({"spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 80}]}]}}}});
        default_deployment(&mut d);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["replicas"], 1);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn a_selector_that_misses_the_template_labels_is_invalid() {
        let d = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "c"}}, "spec": {"containers": [{"name": "c"}]}}}});
        let e = validate_workload(&d, None, "Deployment").unwrap_err();
        assert_eq!(e.code, 422);
        assert!(
            e.message
                .contains("`selector` does not match template `labels`"),
            "{}",
            e.message
        );
    }
}
