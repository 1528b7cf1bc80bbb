//! meta.k8s.io/v1 Table rendering for `kubectl get`: printer columns, ages and JSONPath.
//!
//! Covers the columns of the built-ins kubectl users see, CRD additionalPrinterColumns, kube's
//! age format and the small JSONPath dialect printer columns use.
//!
//! Columns whose `json_path` starts with `#` are computed like kube-apiserver's printers
//! (`#pod.ready`, `#age`, ...); the others are evaluated as JSONPath like the CRD table convertor.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// One column of a Table, as in a CRD's additionalPrinterColumns plus the path to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// string, integer, number, boolean or date.
    pub type_: String,
    /// e.g. "name" for the Name column.
    pub format: String,
    pub description: String,
    /// JSONPath (`.status.phase`) or a computed column (`#pod.status`).
    pub json_path: String,
    /// 0 for default columns, 1 for `-o wide`.
    pub priority: i32,
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn col(
    name: &str,
    type_: &str,
    description: &str,
    json_path: &str,
    priority: i32,
) -> PrinterColumn {
    PrinterColumn {
        name: name.to_string(),
        type_: type_.to_string(),
        format: String::new(),
        description: description.to_string(),
        json_path: json_path.to_string(),
        priority,
    }
}

/// The Name column every table starts with.
pub fn name_column() -> PrinterColumn {
    PrinterColumn {
        format: "name".into(),
        ..col("Name", "string", NAME_DESCRIPTION, ".metadata.name", 0)
    }
}

fn age_column() -> PrinterColumn {
    col("Age", "string", CREATION_TIMESTAMP_DESCRIPTION, "#age", 0)
}

/// The Age column a CRD gets when it declares no printer columns (a `date` JSONPath column).
fn custom_resource_age_column() -> PrinterColumn {
    col(
        "Age",
        "date",
        CREATION_TIMESTAMP_DESCRIPTION,
        ".metadata.creationTimestamp",
        0,
    )
}

fn created_at_column() -> PrinterColumn {
    col(
        "Created At",
        "date",
        CREATION_TIMESTAMP_DESCRIPTION,
        "#createdAt",
        0,
    )
}

/// The columns kube-apiserver prints for a built-in `kind` (Name first; priority-1 columns are
/// the `-o wide` ones). Unknown kinds (and custom resources without printer columns) get Name, Age.
pub fn default_columns(kind: &str) -> Vec<PrinterColumn> {
    let mut cols = vec![name_column()];
    match kind {
        "Pod" => cols.extend([
            col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.", "#pod.ready", 0),
            col("Status", "string", "The aggregate status of the containers in this pod.", "#pod.status", 0),
            col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", "#pod.restarts", 0),
            age_column(),
            col("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", "#pod.ip", 1),
            col("Node", "string", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename", "#pod.node", 1),
            col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.", "#pod.nominatedNode", 1),
            col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates", "#pod.readinessGates", 1),
        ]),
        "StatefulSet" => cols.extend([
            col("Ready", "string", "Number of the pod with ready state", "#sts.ready", 0),
            age_column(),
            col("Containers", "string", "Names of each container in the template.", "#template.containers", 1),
            col("Images", "string", "Images referenced by each container in the template.", "#template.images", 1),
        ]),
        "Secret" => cols.extend([
            col("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types", "#secret.type", 0),
            col("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4", "#data.count", 0),
            age_column(),
        ]),
        "ConfigMap" => cols.extend([
            col("Data", "string", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.", "#data.count", 0),
            age_column(),
        ]),
        "Namespace" => cols.extend([
            col("Status", "string", "The status of the namespace", "#namespace.status", 0),
            age_column(),
        ]),
        "ServiceAccount" => cols.extend([
            col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret", "#sa.secrets", 0),
            age_column(),
        ]),
        "Lease" => cols.extend([
            col("Holder", "string", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.", "#lease.holder", 0),
            age_column(),
        ]),
        "CustomResourceDefinition" | "Role" | "ClusterRole" => cols.push(created_at_column()),
        "RoleBinding" | "ClusterRoleBinding" => cols.extend([
            col("Role", "string", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.", "#binding.role", 0),
            age_column(),
            col("Users", "string", "Users in the roleBinding", "#binding.users", 1),
            col("Groups", "string", "Groups in the roleBinding", "#binding.groups", 1),
            col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding", "#binding.serviceaccounts", 1),
        ]),
        "Event" => {
            cols = vec![
                col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded.", "#event.lastSeen", 0),
                col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future", "#event.type", 0),
                col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", "#event.reason", 0),
                col("Object", "string", "The object that this event is about.", "#event.object", 0),
                col("Subobject", "string", "If the event is about an object, the field path of the subobject.", "#event.subobject", 1),
                col("Source", "string", "The component reporting this event. Should be a short machine understandable string.", "#event.source", 1),
                col("Message", "string", "A human-readable description of the status of this operation.", "#event.message", 0),
                col("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", "#event.firstSeen", 1),
                col("Count", "string", "The number of times this event has occurred.", "#event.count", 1),
                name_column(),
            ];
            cols.last_mut().expect("name column").priority = 1;
        }
        _ => match crate::workloads::printers::columns(kind) {
            Some(more) => cols.extend(
                more.into_iter()
                    .map(|(n, t, d, path, priority)| col(n, t, d, path, priority)),
            ),
            None => cols.push(custom_resource_age_column()),
        },
    }
    cols
}

/// The columns of a custom resource version from its CRD version entry (`spec.versions[i]`):
/// Name, then additionalPrinterColumns, or Age when there are none.
#[cfg(test)]
pub fn crd_columns(crd_version: &Value) -> Vec<PrinterColumn> {
    let mut cols = vec![name_column()];
    let extra = crd_version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if extra.is_empty() {
        cols.push(custom_resource_age_column());
        return cols;
    }
    for c in extra {
        let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let json_path = s("jsonPath");
        let description = match s("description") {
            d if d.is_empty() => {
                format!("Custom resource definition column (in JSONPath format): {json_path}")
            }
            d => d,
        };
        cols.push(PrinterColumn {
            name: s("name"),
            type_: s("type"),
            format: s("format"),
            description,
            json_path,
            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
        });
    }
    cols
}

/// Renders `objects` as a meta.k8s.io/v1 Table. `include_object` is kube's `includeObject`
/// parameter: "None", "Metadata" (the default, PartialObjectMetadata rows) or "Object".
pub fn render_table(
    objects: &[Value],
    columns: &[PrinterColumn],
    list_meta: &Value,
    include_object: &str,
) -> Value {
    render_table_at(
        objects,
        columns,
        list_meta,
        include_object,
        Timestamp::now(),
    )
}

/// [`render_table`] with an explicit "now" for ages.
pub fn render_table_at(
    objects: &[Value],
    columns: &[PrinterColumn],
    list_meta: &Value,
    include_object: &str,
    now: Timestamp,
) -> Value {
    let mut cols: Vec<PrinterColumn> = Vec::with_capacity(columns.len() + 1);
    if !columns.iter().any(|c| c.format == "name") {
        cols.push(name_column());
    }
    cols.extend(columns.iter().cloned());
    let definitions: Vec<Value> = cols
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.type_, "format": c.format,
                   "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = cols.iter().map(|c| cell(obj, c, now)).collect();
            let object = match include_object {
                "None" => Value::Null,
                "Object" => obj.clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    let metadata = match list_meta {
        Value::Object(_) => list_meta.clone(),
        _ => json!({}),
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// kube's `duration.HumanDuration` (`5s`, `3m2s`, `2d5h`, `3y20d`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Age of an RFC 3339 timestamp as kube prints it; `<unknown>` when absent, `<invalid>` if unparsable.
pub fn age_since(timestamp: Option<&str>, now: Timestamp) -> String {
    match timestamp {
        None | Some("") => "<unknown>".into(),
        Some(t) => match t.parse::<Timestamp>() {
            Ok(ts) => human_duration((now.as_millisecond() - ts.as_millisecond()) / 1000),
            Err(_) => "<invalid>".into(),
        },
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn none_if_empty(x: &str) -> Value {
    if x.is_empty() {
        json!("<none>")
    } else {
        json!(x)
    }
}

fn cell(obj: &Value, c: &PrinterColumn, now: Timestamp) -> Value {
    let creation = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str);
    match c.json_path.as_str() {
        "#age" => json!(age_since(creation, now)),
        "#createdAt" => match creation {
            Some(t) => json!(t),
            None => Value::Null,
        },
        "#pod.ready" => {
            let total = arr(obj, "/spec/containers").len();
            let ready = arr(obj, "/status/containerStatuses")
                .iter()
                .filter(|cs| cs["ready"] == true && cs.pointer("/state/running").is_some())
                .count();
            json!(format!("{ready}/{total}"))
        }
        "#pod.status" => json!(pod_status(obj)),
        "#pod.restarts" => json!(pod_restarts(obj, now)),
        "#pod.ip" => none_if_empty(s(obj, "/status/podIP")),
        "#pod.node" => none_if_empty(s(obj, "/spec/nodeName")),
        "#pod.nominatedNode" => none_if_empty(s(obj, "/status/nominatedNodeName")),
        "#pod.readinessGates" => {
            let gates = arr(obj, "/spec/readinessGates");
            if gates.is_empty() {
                return json!("<none>");
            }
            let conditions = arr(obj, "/status/conditions");
            let true_count = gates
                .iter()
                .filter(|g| {
                    conditions
                        .iter()
                        .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
                })
                .count();
            json!(format!("{true_count}/{}", gates.len()))
        }
        "#sts.ready" => {
            let ready = obj
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let desired = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            json!(format!("{ready}/{desired}"))
        }
        "#template.containers" | "#template.images" => {
            let key = if c.json_path.ends_with("containers") {
                "name"
            } else {
                "image"
            };
            let names: Vec<&str> = arr(obj, "/spec/template/spec/containers")
                .iter()
                .filter_map(|c| c.get(key).and_then(Value::as_str))
                .collect();
            json!(names.join(","))
        }
        "#secret.type" => json!(s(obj, "/type")),
        "#data.count" => {
            let n = |k: &str| obj.get(k).and_then(Value::as_object).map_or(0, Map::len);
            json!(n("data") + n("binaryData"))
        }
        "#namespace.status" => json!(s(obj, "/status/phase")),
        "#sa.secrets" => json!(arr(obj, "/secrets").len()),
        "#lease.holder" => json!(s(obj, "/spec/holderIdentity")),
        "#binding.role" => json!(format!(
            "{}/{}",
            s(obj, "/roleRef/kind"),
            s(obj, "/roleRef/name")
        )),
        "#binding.users" | "#binding.groups" | "#binding.serviceaccounts" => {
            let kind = match c.json_path.as_str() {
                "#binding.users" => "User",
                "#binding.groups" => "Group",
                _ => "ServiceAccount",
            };
            let names: Vec<String> = arr(obj, "/subjects")
                .iter()
                .filter(|sub| sub["kind"] == kind)
                .map(|sub| {
                    if kind == "ServiceAccount" {
                        format!("{}/{}", s(sub, "/namespace"), s(sub, "/name"))
                    } else {
                        s(sub, "/name").to_string()
                    }
                })
                .collect();
            json!(names.join(", "))
        }
        "#event.lastSeen" => {
            let t = [
                s(obj, "/lastTimestamp"),
                s(obj, "/eventTime"),
                s(obj, "/metadata/creationTimestamp"),
            ]
            .into_iter()
            .find(|t| !t.is_empty());
            json!(age_since(t, now))
        }
        "#event.firstSeen" => {
            let t = [s(obj, "/firstTimestamp"), s(obj, "/eventTime")]
                .into_iter()
                .find(|t| !t.is_empty());
            json!(age_since(t, now))
        }
        "#event.type" => json!(s(obj, "/type")),
        "#event.reason" => json!(s(obj, "/reason")),
        "#event.message" => json!(s(obj, "/message")),
        "#event.subobject" => json!(s(obj, "/involvedObject/fieldPath")),
        "#event.count" => json!(obj.get("count").and_then(Value::as_i64).unwrap_or(1)),
        "#event.object" => json!(format!(
            "{}/{}",
            s(obj, "/involvedObject/kind").to_lowercase(),
            s(obj, "/involvedObject/name")
        )),
        "#event.source" => {
            let component = match s(obj, "/source/component") {
                "" => s(obj, "/reportingComponent"),
                c => c,
            };
            match s(obj, "/source/host") {
                "" => json!(component),
                host => json!(format!("{component}, {host}")),
            }
        }
        path if path.starts_with('#') => {
            crate::workloads::printers::cell(obj, path).unwrap_or(Value::Null)
        }
        path => {
            let Some(value) = jsonpath(obj, path).into_iter().next() else {
                return Value::Null;
            };
            json_cell(&c.type_, value, now)
        }
    }
}

/// kube's CRD table convertor rendering of a JSONPath result for a column type.
fn json_cell(type_: &str, value: &Value, now: Timestamp) -> Value {
    match (type_, value) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(_)) => value.clone(),
        ("string", Value::Object(_) | Value::Array(_)) => json!(value.to_string()),
        ("string", Value::Number(n)) => json!(n.to_string()),
        ("string", Value::Bool(b)) => json!(b.to_string()),
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            None => json!(n.as_f64().map_or(0, |f| f as i64)),
        },
        ("number", Value::Number(n)) => json!(n.as_f64()),
        ("boolean", Value::Bool(_)) => value.clone(),
        ("date", Value::String(t)) => json!(age_since(Some(t), now)),
        _ => Value::Null,
    }
}

fn pod_status(obj: &Value) -> String {
    let mut reason = match s(obj, "/status/reason") {
        "" => s(obj, "/status/phase").to_string(),
        r => r.to_string(),
    };
    let init_specs = arr(obj, "/spec/initContainers").len();
    let mut initializing = false;
    for (i, cs) in arr(obj, "/status/initContainerStatuses").iter().enumerate() {
        let terminated = cs.pointer("/state/terminated");
        let waiting_reason = s(cs, "/state/waiting/reason");
        if terminated.is_some_and(|t| t["exitCode"].as_i64() == Some(0)) {
            continue;
        }
        initializing = true;
        reason = if let Some(t) = terminated {
            match s(t, "/reason") {
                "" => match t["signal"].as_i64() {
                    Some(sig) if sig != 0 => format!("Init:Signal:{sig}"),
                    _ => format!("Init:ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
                },
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{init_specs}")
        };
        break;
    }
    if !initializing {
        let mut has_running = false;
        for cs in arr(obj, "/status/containerStatuses").iter().rev() {
            let waiting = s(cs, "/state/waiting/reason");
            let terminated = cs.pointer("/state/terminated");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = match s(t, "/reason") {
                    "" => match t["signal"].as_i64() {
                        Some(sig) if sig != 0 => format!("Signal:{sig}"),
                        _ => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
                    },
                    r => r.to_string(),
                };
            } else if cs["ready"] == true && cs.pointer("/state/running").is_some() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            let ready = arr(obj, "/status/conditions")
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            reason = if ready { "Running" } else { "NotReady" }.to_string();
        }
    }
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        reason = if s(obj, "/status/reason") == "NodeLost" {
            "Unknown"
        } else {
            "Terminating"
        }
        .to_string();
    }
    reason
}

fn pod_restarts(obj: &Value, now: Timestamp) -> String {
    let statuses = arr(obj, "/status/containerStatuses");
    let restarts: i64 = statuses
        .iter()
        .map(|cs| cs["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let last = statuses
        .iter()
        .filter_map(|cs| {
            cs.pointer("/lastState/terminated/finishedAt")
                .and_then(Value::as_str)
        })
        .filter_map(|t| t.parse::<Timestamp>().ok())
        .max();
    match last {
        Some(t) if restarts != 0 => {
            format!("{restarts} ({} ago)", age_since(Some(&t.to_string()), now))
        }
        _ => restarts.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// JSONPath
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Wildcard,
    Index(i64),
    Filter {
        path: Vec<Step>,
        op: FilterOp,
        value: Value,
    },
    Exists(Vec<Step>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FilterOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Evaluates the JSONPath subset printer columns use (`.a.b`, `['a.b']`, `[0]`, `[-1]`, `[*]`,
/// `.*`, `[?(@.type=="Ready")]`, optional `{}` and `$`): all results, in document order.
pub fn jsonpath<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let Some(steps) = parse_jsonpath(path) else {
        return Vec::new();
    };
    eval_steps(obj, &steps)
}

fn eval_steps<'a>(obj: &'a Value, steps: &[Step]) -> Vec<&'a Value> {
    let mut cur = vec![obj];
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(f) => {
                    if let Some(x) = v.get(f.as_str()) {
                        next.push(x);
                    }
                }
                Step::Wildcard => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Index(i) => {
                    if let Value::Array(a) = v {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                            next.push(x);
                        }
                    }
                }
                Step::Filter { path, op, value } => {
                    if let Value::Array(a) = v {
                        next.extend(a.iter().filter(|item| {
                            eval_steps(item, path)
                                .first()
                                .is_some_and(|found| filter_matches(found, *op, value))
                        }));
                    }
                }
                Step::Exists(path) => {
                    if let Value::Array(a) = v {
                        next.extend(a.iter().filter(|item| !eval_steps(item, path).is_empty()));
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn filter_matches(found: &Value, op: FilterOp, want: &Value) -> bool {
    let ord = match (found, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) if a == b => Some(Equal),
        _ => None,
    };
    use std::cmp::Ordering::*;
    match op {
        FilterOp::Eq => ord == Some(Equal),
        FilterOp::Ne => ord != Some(Equal),
        FilterOp::Lt => ord == Some(Less),
        FilterOp::Gt => ord == Some(Greater),
        FilterOp::Le => matches!(ord, Some(Less | Equal)),
        FilterOp::Ge => matches!(ord, Some(Greater | Equal)),
    }
}

fn parse_jsonpath(path: &str) -> Option<Vec<Step>> {
    let mut p = path.trim();
    if let Some(inner) = p.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
        p = inner.trim();
    }
    p = p.strip_prefix('$').unwrap_or(p);
    let chars: Vec<char> = p.chars().collect();
    let (steps, end) = parse_steps(&chars, 0, false)?;
    (end == chars.len()).then_some(steps)
}

/// Parses steps from `i`; inside a filter (`in_filter`) stops at an operator or `)`.
fn parse_steps(c: &[char], mut i: usize, in_filter: bool) -> Option<(Vec<Step>, usize)> {
    let mut steps = Vec::new();
    while i < c.len() {
        match c[i] {
            '.' => {
                i += 1;
                if i < c.len() && c[i] == '*' {
                    steps.push(Step::Wildcard);
                    i += 1;
                    continue;
                }
                let start = i;
                while i < c.len() && !matches!(c[i], '.' | '[' | ' ' | '=' | '!' | '<' | '>' | ')')
                {
                    i += 1;
                }
                if i == start {
                    // a bare "." (the current object)
                    continue;
                }
                steps.push(Step::Field(c[start..i].iter().collect()));
            }
            '[' => {
                let close = find_bracket_end(c, i)?;
                let inner: String = c[i + 1..close].iter().collect();
                let inner = inner.trim();
                steps.push(parse_bracket(inner)?);
                i = close + 1;
            }
            _ if in_filter => break,
            _ => return None,
        }
    }
    Some((steps, i))
}

fn find_bracket_end(c: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (j, &ch) in c.iter().enumerate().skip(open) {
        match (quote, ch) {
            (Some(q), ch) if ch == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(ch),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::Wildcard);
    }
    if let Some(q) = inner
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
    {
        return Some(Step::Field(q.to_string()));
    }
    if let Ok(i) = inner.parse::<i64>() {
        return Some(Step::Index(i));
    }
    let expr = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let rest = expr.strip_prefix('@')?;
    let chars: Vec<char> = rest.chars().collect();
    let (path, end) = parse_steps(&chars, 0, true)?;
    let tail: String = chars[end..].iter().collect();
    let tail = tail.trim();
    if tail.is_empty() {
        return Some(Step::Exists(path));
    }
    let (op, literal) = [
        ("==", FilterOp::Eq),
        ("!=", FilterOp::Ne),
        ("<=", FilterOp::Le),
        (">=", FilterOp::Ge),
        ("<", FilterOp::Lt),
        (">", FilterOp::Gt),
    ]
    .iter()
    .find_map(|(tok, op)| tail.strip_prefix(tok).map(|l| (*op, l.trim())))?;
    let value = if let Some(s) = literal
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| {
            literal
                .strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
        }) {
        Value::String(s.to_string())
    } else {
        serde_json::from_str::<Value>(literal).ok()?
    };
    Some(Step::Filter { path, op, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-10T00:00:00Z".parse().unwrap()
    }

    fn names(t: &Value) -> Vec<&str> {
        t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn human_duration_matches_kube_thresholds() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (182, "3m2s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400 + 5 * 3600, "2d5h"),
            (3 * 86400, "3d"),
            (8 * 86400, "8d"),
            (400 * 86400, "400d"),
            (2 * 365 * 86400 + 20 * 86400, "2y20d"),
            (9 * 365 * 86400, "9y"),
        ];
        assert_eq!(age_since(Some("2026-01-10T00:00:01.5Z"), now()), "0s");
        assert_eq!(age_since(Some("garbage"), now()), "<invalid>");
        assert_eq!(age_since(None, now()), "<unknown>");
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn pod_table_has_kubectl_columns_and_computed_cells() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "cc-dc1-rack1-0", "namespace": "ns", "creationTimestamp": "2026-01-09T23:54:58Z"},
            "spec": {"containers": [{"name": "cassandra"}, {"name": "sidecar"}], "nodeName": "node-1"},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
                {"name": "cassandra", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"finishedAt": "2026-01-09T23:57:00Z"}}},
                {"name": "sidecar", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let t = render_table_at(
            &[pod],
            &default_columns("Pod"),
            &json!({"resourceVersion": "42"}),
            "Metadata",
            now(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "42");
        assert_eq!(
            names(&t),
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][5]["priority"], 1);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "cc-dc1-rack1-0",
                "1/2",
                "CrashLoopBackOff",
                "2 (3m ago)",
                "5m2s",
                "10.0.0.5",
                "node-1",
                "<none>",
                "<none>"
            ])
        );
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": "cc-dc1-rack1-0", "namespace": "ns", "creationTimestamp": "2026-01-09T23:54:58Z"}})
        );
    }

    #[test]
    fn pod_status_follows_init_containers_and_deletion() {
        let base = json!({"spec": {"containers": [{"name": "c"}], "initContainers": [{"name": "i"}]}, "status": {"phase": "Pending",
            "initContainerStatuses": [{"name": "i", "state": {"running": {}}}]}});
        assert_eq!(pod_status(&base), "Init:0/1");
        let mut done = base.clone();
        done["status"] = json!({"phase": "Running", "initContainerStatuses": [{"state": {"terminated": {"exitCode": 0}}}],
            "containerStatuses": [{"ready": true, "state": {"running": {}}}]});
        assert_eq!(pod_status(&done), "Running");
        done["metadata"] = json!({"deletionTimestamp": "2026-01-01T00:00:00Z"});
        assert_eq!(pod_status(&done), "Terminating");
        let failed = json!({"status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]}});
        assert_eq!(pod_status(&failed), "ExitCode:3");
    }

    #[test]
    fn builtin_kinds_render_their_kubectl_cells() {
        let ts = "2026-01-09T00:00:00Z";
        let sts = json!({"metadata": {"name": "s", "creationTimestamp": ts}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "cassandra", "image": "cassandra:3.11"}, {"name": "b", "image": "busybox"}]}}}, "status": {"readyReplicas": 2}});
        let t = render_table_at(
            &[sts],
            &default_columns("StatefulSet"),
            &json!({}),
            "None",
            now(),
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["s", "2/3", "24h", "cassandra,b", "cassandra:3.11,busybox"])
        );
        assert_eq!(t["rows"][0]["object"], Value::Null);

        let secret = json!({"metadata": {"name": "x", "creationTimestamp": ts}, "type": "Opaque", "data": {"a": "", "b": ""}});
        let t = render_table_at(
            &[secret],
            &default_columns("Secret"),
            &json!({}),
            "Metadata",
            now(),
        );
        assert_eq!(names(&t), ["Name", "Type", "Data", "Age"]);
        assert_eq!(t["rows"][0]["cells"], json!(["x", "Opaque", 2, "24h"]));

        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": ""}});
        assert_eq!(
            render_table_at(
                &[cm],
                &default_columns("ConfigMap"),
                &json!({}),
                "Metadata",
                now()
            )["rows"][0]["cells"],
            json!(["c", 2, "<unknown>"])
        );

        let ns = json!({"metadata": {"name": "db", "creationTimestamp": ts}, "status": {"phase": "Active"}});
        assert_eq!(
            render_table_at(
                &[ns],
                &default_columns("Namespace"),
                &json!({}),
                "Metadata",
                now()
            )["rows"][0]["cells"],
            json!(["db", "Active", "24h"])
        );

        let sa = json!({"metadata": {"name": "default", "creationTimestamp": ts}});
        assert_eq!(
            render_table_at(
                &[sa],
                &default_columns("ServiceAccount"),
                &json!({}),
                "Metadata",
                now()
            )["rows"][0]["cells"],
            json!(["default", 0, "24h"])
        );

        let lease = json!({"metadata": {"name": "l", "creationTimestamp": ts}, "spec": {"holderIdentity": "mc-0"}});
        assert_eq!(
            render_table_at(
                &[lease],
                &default_columns("Lease"),
                &json!({}),
                "Metadata",
                now()
            )["rows"][0]["cells"],
            json!(["l", "mc-0", "24h"])
        );

        let crd = json!({"metadata": {"name": "cassandraclusters.db.orange.com", "creationTimestamp": ts}});
        let t = render_table_at(
            &[crd],
            &default_columns("CustomResourceDefinition"),
            &json!({}),
            "Metadata",
            now(),
        );
        assert_eq!(names(&t), ["Name", "Created At"]);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["cassandraclusters.db.orange.com", ts])
        );

        let rb = json!({"metadata": {"name": "rb", "creationTimestamp": ts}, "roleRef": {"kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "mc", "namespace": "x"}, {"kind": "User", "name": "alice"}]});
        assert_eq!(
            render_table_at(
                &[rb],
                &default_columns("RoleBinding"),
                &json!({}),
                "Metadata",
                now()
            )["rows"][0]["cells"],
            json!(["rb", "Role/reader", "24h", "alice", "", "x/mc"])
        );
    }

    #[test]
    fn unknown_kinds_and_plain_custom_resources_show_name_and_age() {
        let obj = json!({"metadata": {"name": "o", "creationTimestamp": "2026-01-09T23:59:55Z"}});
        let t = render_table_at(
            std::slice::from_ref(&obj),
            &default_columns("Widget"),
            &json!({}),
            "Object",
            now(),
        );
        assert_eq!(names(&t), ["Name", "Age"]);
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["rows"][0]["cells"], json!(["o", "5s"]));
        assert_eq!(t["rows"][0]["object"], obj);
        assert_eq!(
            crd_columns(&json!({"name": "v2"})),
            default_columns("Widget")
        );
    }

    #[test]
    fn crd_printer_columns_are_evaluated_with_their_types() {
        let version = json!({"name": "v2", "additionalPrinterColumns": [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Action", "type": "string", "jsonPath": ".status.lastClusterAction", "priority": 1, "description": "last action"},
            {"name": "Nodes", "type": "integer", "jsonPath": ".spec.nodesPerRacks"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {"name": "First DC", "type": "string", "jsonPath": ".spec.topology.dc[0].name"},
            {"name": "Missing", "type": "string", "jsonPath": ".status.nope"}]});
        let cols = crd_columns(&version);
        assert_eq!(cols[2].description, "last action");
        assert_eq!(
            cols[1].description,
            "Custom resource definition column (in JSONPath format): .status.phase"
        );
        let cc = json!({"metadata": {"name": "cc", "creationTimestamp": "2026-01-07T00:00:00Z"},
            "spec": {"nodesPerRacks": 3, "topology": {"dc": [{"name": "dc1"}, {"name": "dc2"}]}},
            "status": {"phase": "Running", "lastClusterAction": "Initializing", "conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let t = render_table_at(
            &[cc],
            &cols,
            &json!({"resourceVersion": "9", "continue": ""}),
            "Metadata",
            now(),
        );
        assert_eq!(
            names(&t),
            [
                "Name", "Phase", "Action", "Nodes", "Ready", "Age", "First DC", "Missing"
            ]
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "cc",
                "Running",
                "Initializing",
                3,
                "True",
                "3d",
                "dc1",
                null
            ])
        );
        assert_eq!(t["columnDefinitions"][2]["priority"], 1);
    }

    #[test]
    fn name_column_is_added_once_when_columns_lack_it() {
        let cols = vec![PrinterColumn {
            name: "Phase".into(),
            type_: "string".into(),
            format: String::new(),
            description: String::new(),
            json_path: ".status.phase".into(),
            priority: 0,
        }];
        let t = render_table_at(
            &[json!({"metadata": {"name": "a"}, "status": {"phase": "P"}})],
            &cols,
            &json!({}),
            "Metadata",
            now(),
        );
        assert_eq!(names(&t), ["Name", "Phase"]);
        assert_eq!(t["rows"][0]["cells"], json!(["a", "P"]));
    }

    #[test]
    fn jsonpath_supports_printer_column_forms() {
        let v = json!({"metadata": {"labels": {"app.kubernetes.io/name": "c", "foo": "bar"}},
            "spec": {"x": {"y": 1.5}, "list": [1, 2, 3], "obj": {"a": [1]}},
            "status": {"conditions": [{"type": "A", "status": "1", "n": 1}, {"type": "Ready", "status": "True", "n": 5}]}});
        assert_eq!(jsonpath(&v, ".metadata.labels.foo"), [&json!("bar")]);
        assert_eq!(
            jsonpath(&v, "{.metadata.labels['app.kubernetes.io/name']}"),
            [&json!("c")]
        );
        assert_eq!(jsonpath(&v, "$.spec.x.y"), [&json!(1.5)]);
        assert_eq!(jsonpath(&v, ".spec.list[0]"), [&json!(1)]);
        assert_eq!(jsonpath(&v, ".spec.list[-1]"), [&json!(3)]);
        assert_eq!(jsonpath(&v, ".spec.list[*]").len(), 3);
        assert_eq!(
            jsonpath(&v, ".status.conditions[?(@.type==\"Ready\")].status"),
            [&json!("True")]
        );
        assert_eq!(
            jsonpath(&v, ".status.conditions[?(@.type=='A')].status"),
            [&json!("1")]
        );
        assert_eq!(
            jsonpath(&v, ".status.conditions[?(@.n > 2)].type"),
            [&json!("Ready")]
        );
        assert_eq!(
            jsonpath(&v, ".status.conditions[?(@.type != \"A\")].type"),
            [&json!("Ready")]
        );
        assert!(jsonpath(&v, ".status.missing.deeper").is_empty());
        assert!(jsonpath(&v, "not a path").is_empty());
        assert_eq!(
            json_cell("string", jsonpath(&v, ".spec.obj")[0], now()),
            json!("{\"a\":[1]}")
        );
        assert_eq!(json_cell("integer", &json!(2.0), now()), json!(2));
        assert_eq!(json_cell("number", &json!(2), now()), json!(2.0));
        assert_eq!(json_cell("boolean", &json!("x"), now()), Value::Null);
    }

    #[test]
    fn event_table_puts_last_seen_first_and_name_last() {
        let ev = json!({"metadata": {"name": "cc.17a", "creationTimestamp": "2026-01-09T23:59:00Z"}, "type": "Normal", "reason": "Created",
            "message": "created pod", "involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "casskop"},
            "lastTimestamp": "2026-01-09T23:59:50Z", "firstTimestamp": "2026-01-09T23:59:00Z", "count": 2});
        let t = render_table_at(
            &[ev],
            &default_columns("Event"),
            &json!({}),
            "Metadata",
            now(),
        );
        assert_eq!(
            names(&t),
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "10s",
                "Normal",
                "Created",
                "pod/p",
                "",
                "casskop",
                "created pod",
                "60s",
                2,
                "cc.17a"
            ])
        );
    }
}
