//! Decoding of `application/vnd.kubernetes.protobuf` request bodies for the built-in kinds kubectl's typed
//! clients send that way (`kubectl create secret|configmap|namespace|serviceaccount|token|role...`, `auth can-i`),
//! the Deployments and Services of `kubectl create deployment` and `kubectl expose`, and the DeleteOptions of
//! client-go's typed deletes (Helm's release Secrets).
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::errors::ApiError;

#[derive(Clone, Copy)]
enum T {
    Str,
    I64,
    Bool,
    Time,
    Msg(&'static [F]),
    RepStr,
    RepMsg(&'static [F]),
    MapStrStr,
    MapStrBytes,
    /// intstr.IntOrString: {type, intVal, strVal} becomes a JSON number or string.
    IntOrStr,
}

type F = (u32, &'static str, T);

const TIME: &[F] = &[];
const OWNER_REF: &[F] = &[
    (1, "kind", T::Str),
    (3, "name", T::Str),
    (4, "uid", T::Str),
    (5, "apiVersion", T::Str),
    (6, "controller", T::Bool),
    (7, "blockOwnerDeletion", T::Bool),
];
const META: &[F] = &[
    (1, "name", T::Str),
    (2, "generateName", T::Str),
    (3, "namespace", T::Str),
    (5, "uid", T::Str),
    (6, "resourceVersion", T::Str),
    (7, "generation", T::I64),
    (8, "creationTimestamp", T::Time),
    (9, "deletionTimestamp", T::Time),
    (10, "deletionGracePeriodSeconds", T::I64),
    (11, "labels", T::MapStrStr),
    (12, "annotations", T::MapStrStr),
    (13, "ownerReferences", T::RepMsg(OWNER_REF)),
    (14, "finalizers", T::RepStr),
];
const SECRET: &[F] = &[
    (1, "metadata", T::Msg(META)),
    (2, "data", T::MapStrBytes),
    (3, "type", T::Str),
    (4, "stringData", T::MapStrStr),
    (5, "immutable", T::Bool),
];
const CONFIGMAP: &[F] = &[
    (1, "metadata", T::Msg(META)),
    (2, "data", T::MapStrStr),
    (3, "binaryData", T::MapStrBytes),
    (4, "immutable", T::Bool),
];
const NS_SPEC: &[F] = &[(1, "finalizers", T::RepStr)];
const NAMESPACE: &[F] = &[(1, "metadata", T::Msg(META)), (2, "spec", T::Msg(NS_SPEC))];
const OBJECT_REF: &[F] = &[
    (1, "kind", T::Str),
    (2, "namespace", T::Str),
    (3, "name", T::Str),
    (4, "uid", T::Str),
    (5, "apiVersion", T::Str),
    (6, "resourceVersion", T::Str),
    (7, "fieldPath", T::Str),
];
const LOCAL_REF: &[F] = &[(1, "name", T::Str)];
const SERVICE_ACCOUNT: &[F] = &[
    (1, "metadata", T::Msg(META)),
    (2, "secrets", T::RepMsg(OBJECT_REF)),
    (3, "imagePullSecrets", T::RepMsg(LOCAL_REF)),
    (4, "automountServiceAccountToken", T::Bool),
];
const BOUND_REF: &[F] = &[
    (1, "kind", T::Str),
    (2, "apiVersion", T::Str),
    (3, "name", T::Str),
    (4, "uid", T::Str),
];
const TR_SPEC: &[F] = &[
    (1, "audiences", T::RepStr),
    (3, "boundObjectRef", T::Msg(BOUND_REF)),
    (4, "expirationSeconds", T::I64),
];
const TOKEN_REQUEST: &[F] = &[(1, "metadata", T::Msg(META)), (2, "spec", T::Msg(TR_SPEC))];
const RES_ATTR: &[F] = &[
    (1, "namespace", T::Str),
    (2, "verb", T::Str),
    (3, "group", T::Str),
    (4, "version", T::Str),
    (5, "resource", T::Str),
    (6, "subresource", T::Str),
    (7, "name", T::Str),
];
const NONRES_ATTR: &[F] = &[(1, "path", T::Str), (2, "verb", T::Str)];
const SSAR_SPEC: &[F] = &[
    (1, "resourceAttributes", T::Msg(RES_ATTR)),
    (2, "nonResourceAttributes", T::Msg(NONRES_ATTR)),
];
const SSAR: &[F] = &[
    (1, "metadata", T::Msg(META)),
    (2, "spec", T::Msg(SSAR_SPEC)),
];
const SSR: &[F] = &[(1, "metadata", T::Msg(META))];
const SSRR_SPEC: &[F] = &[(1, "namespace", T::Str)];
const SSRR: &[F] = &[
    (1, "metadata", T::Msg(META)),
    (2, "spec", T::Msg(SSRR_SPEC)),
];
const POLICY_RULE: &[F] = &[
    (1, "verbs", T::RepStr),
    (2, "apiGroups", T::RepStr),
    (3, "resources", T::RepStr),
    (4, "resourceNames", T::RepStr),
    (5, "nonResourceURLs", T::RepStr),
];
const ROLE: &[F] = &[
    (1, "metadata", T::Msg(META)),
    (2, "rules", T::RepMsg(POLICY_RULE)),
];
const SUBJECT: &[F] = &[
    (1, "kind", T::Str),
    (2, "apiGroup", T::Str),
    (3, "name", T::Str),
    (4, "namespace", T::Str),
];
const ROLE_REF: &[F] = &[
    (1, "apiGroup", T::Str),
    (2, "kind", T::Str),
    (3, "name", T::Str),
];
const BINDING: &[F] = &[
    (1, "metadata", T::Msg(META)),
    (2, "subjects", T::RepMsg(SUBJECT)),
    (3, "roleRef", T::Msg(ROLE_REF)),
];
const PRECONDITIONS: &[F] = &[(1, "uid", T::Str), (2, "resourceVersion", T::Str)];
const DELETE_OPTIONS: &[F] = &[
    (1, "gracePeriodSeconds", T::I64),
    (2, "preconditions", T::Msg(PRECONDITIONS)),
    (3, "orphanDependents", T::Bool),
    (4, "propagationPolicy", T::Str),
    (5, "dryRun", T::RepStr),
];
// Workloads as `kubectl create deployment` and `kubectl expose` send them (what those commands
// set; other fields are skipped, as for the kinds above).
const SELECTOR_REQ: &[F] = &[
    (1, "key", T::Str),
    (2, "operator", T::Str),
    (3, "values", T::RepStr),
];
const LABEL_SELECTOR: &[F] = &[
    (1, "matchLabels", T::MapStrStr),
    (2, "matchExpressions", T::RepMsg(SELECTOR_REQ)),
];
const CONTAINER_PORT: &[F] = &[
    (1, "name", T::Str),
    (2, "hostPort", T::I64),
    (3, "containerPort", T::I64),
    (4, "protocol", T::Str),
    (5, "hostIP", T::Str),
];
const ENV_VAR: &[F] = &[(1, "name", T::Str), (2, "value", T::Str)];
const RESOURCES: &[F] = &[];
const CONTAINER: &[F] = &[
    (1, "name", T::Str),
    (2, "image", T::Str),
    (3, "command", T::RepStr),
    (4, "args", T::RepStr),
    (5, "workingDir", T::Str),
    (6, "ports", T::RepMsg(CONTAINER_PORT)),
    (7, "env", T::RepMsg(ENV_VAR)),
    (8, "resources", T::Msg(RESOURCES)),
    (13, "terminationMessagePath", T::Str),
    (14, "imagePullPolicy", T::Str),
    (20, "terminationMessagePolicy", T::Str),
];
const POD_SPEC: &[F] = &[
    (2, "containers", T::RepMsg(CONTAINER)),
    (3, "restartPolicy", T::Str),
    (4, "terminationGracePeriodSeconds", T::I64),
    (6, "dnsPolicy", T::Str),
    (7, "nodeSelector", T::MapStrStr),
    (8, "serviceAccountName", T::Str),
    (10, "nodeName", T::Str),
    (19, "schedulerName", T::Str),
    (20, "initContainers", T::RepMsg(CONTAINER)),
];
const POD_TEMPLATE: &[F] = &[(1, "metadata", T::Msg(META)), (2, "spec", T::Msg(POD_SPEC))];
const ROLLING_UPDATE: &[F] = &[
    (1, "maxUnavailable", T::IntOrStr),
    (2, "maxSurge", T::IntOrStr),
];
const STRATEGY: &[F] = &[
    (1, "type", T::Str),
    (2, "rollingUpdate", T::Msg(ROLLING_UPDATE)),
];
const DEPLOYMENT_SPEC: &[F] = &[
    (1, "replicas", T::I64),
    (2, "selector", T::Msg(LABEL_SELECTOR)),
    (3, "template", T::Msg(POD_TEMPLATE)),
    (4, "strategy", T::Msg(STRATEGY)),
    (5, "minReadySeconds", T::I64),
    (6, "revisionHistoryLimit", T::I64),
    (7, "paused", T::Bool),
    (9, "progressDeadlineSeconds", T::I64),
];
const DEPLOYMENT: &[F] = &[
    (1, "metadata", T::Msg(META)),
    (2, "spec", T::Msg(DEPLOYMENT_SPEC)),
];
const SERVICE_PORT: &[F] = &[
    (1, "name", T::Str),
    (2, "protocol", T::Str),
    (3, "port", T::I64),
    (4, "targetPort", T::IntOrStr),
    (5, "nodePort", T::I64),
    (6, "appProtocol", T::Str),
];
const SERVICE_SPEC: &[F] = &[
    (1, "ports", T::RepMsg(SERVICE_PORT)),
    (2, "selector", T::MapStrStr),
    (3, "clusterIP", T::Str),
    (4, "type", T::Str),
    (5, "externalIPs", T::RepStr),
    (7, "sessionAffinity", T::Str),
    (10, "externalName", T::Str),
    (13, "publishNotReadyAddresses", T::Bool),
    (18, "clusterIPs", T::RepStr),
];
const SERVICE: &[F] = &[
    (1, "metadata", T::Msg(META)),
    (2, "spec", T::Msg(SERVICE_SPEC)),
];
/// Go fields without a pointer that protobuf carries even when zero and JSON omits (`omitempty`).
const OMITTED_WHEN_ZERO: [&str; 6] = [
    "minReadySeconds",
    "nodePort",
    "hostPort",
    "paused",
    "publishNotReadyAddresses",
    "generation",
];
const TYPE_META: &[F] = &[(1, "apiVersion", T::Str), (2, "kind", T::Str)];

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn bad(what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to decode the protobuf request body: {what}"
    ))
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ApiError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(bad("varint too long"))
}

fn fields(buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, ApiError> {
    let mut pos = 0;
    let mut out = vec![];
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wt) = ((key >> 3) as u32, key & 7);
        let w = match wt {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            1 | 5 => {
                let n = if wt == 1 { 8 } else { 4 };
                if pos + n > buf.len() {
                    return Err(bad("truncated fixed field"));
                }
                pos += n;
                Wire::Fixed
            }
            2 => {
                let len = varint(buf, &mut pos)? as usize;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or_else(|| bad("truncated field"))?;
                let s = &buf[pos..end];
                pos = end;
                Wire::Bytes(s)
            }
            _ => return Err(bad("unsupported wire type")),
        };
        out.push((num, w));
    }
    Ok(out)
}

fn string(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("invalid UTF-8 in a string field"))
}

fn map_entry(b: &[u8]) -> Result<(String, &[u8]), ApiError> {
    let (mut k, mut v): (String, &[u8]) = (String::new(), &[]);
    for (n, w) in fields(b)? {
        if let Wire::Bytes(x) = w {
            match n {
                1 => k = string(x)?,
                2 => v = x,
                _ => {}
            }
        }
    }
    Ok((k, v))
}

fn time(b: &[u8]) -> Result<Value, ApiError> {
    let mut secs = 0i64;
    for (n, w) in fields(b)? {
        if let (1, Wire::Varint(v)) = (n, w) {
            secs = v as i64;
        }
    }
    if secs == 0 {
        return Ok(Value::Null);
    }
    Ok(jiff::Timestamp::from_second(secs)
        .map(|t| Value::String(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
        .unwrap_or(Value::Null))
}

fn int_or_string(b: &[u8]) -> Result<Value, ApiError> {
    let (mut is_str, mut int, mut text) = (false, 0i64, String::new());
    for (n, w) in fields(b)? {
        match (n, w) {
            (1, Wire::Varint(t)) => is_str = t == 1,
            (2, Wire::Varint(v)) => int = v as i64,
            (3, Wire::Bytes(x)) => text = string(x)?,
            _ => {}
        }
    }
    Ok(if is_str { json!(text) } else { json!(int) })
}

fn message(buf: &[u8], schema: &'static [F]) -> Result<Value, ApiError> {
    let _ = TIME;
    let mut obj = Map::new();
    for (num, w) in fields(buf)? {
        let Some((_, name, t)) = schema.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = name.to_string();
        match (t, w) {
            // Go's JSON omits empty strings and zero generations; protobuf carries them.
            (T::Str, Wire::Bytes(b)) => {
                if !b.is_empty() {
                    obj.insert(name, Value::String(string(b)?));
                }
            }
            (T::I64 | T::Bool, Wire::Varint(0)) if OMITTED_WHEN_ZERO.contains(&name.as_str()) => {}
            (T::I64, Wire::Varint(v)) => {
                obj.insert(name, json!(v as i64));
            }
            (T::Bool, Wire::Varint(v)) => {
                obj.insert(name, json!(v != 0));
            }
            // A zero Time (a template's creationTimestamp) is no time: JSON has null, left out.
            (T::Time, Wire::Bytes(b)) => {
                let t = time(b)?;
                if !t.is_null() {
                    obj.insert(name, t);
                }
            }
            (T::IntOrStr, Wire::Bytes(b)) => {
                obj.insert(name, int_or_string(b)?);
            }
            (T::Msg(s), Wire::Bytes(b)) => {
                obj.insert(name, message(b, s)?);
            }
            (T::RepStr, Wire::Bytes(b)) => {
                let s = Value::String(string(b)?);
                if let Some(a) = obj.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    a.push(s);
                }
            }
            (T::RepMsg(s), Wire::Bytes(b)) => {
                let m = message(b, s)?;
                if let Some(a) = obj.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    a.push(m);
                }
            }
            (T::MapStrStr, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b)?;
                let v = Value::String(string(v)?);
                if let Some(m) = obj.entry(name).or_insert_with(|| json!({})).as_object_mut() {
                    m.insert(k, v);
                }
            }
            (T::MapStrBytes, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b)?;
                let v = Value::String(base64::engine::general_purpose::STANDARD.encode(v));
                if let Some(m) = obj.entry(name).or_insert_with(|| json!({})).as_object_mut() {
                    m.insert(k, v);
                }
            }
            (_, Wire::Fixed) => {}
            _ => return Err(bad(&format!("field {name} has an unexpected wire type"))),
        }
    }
    Ok(Value::Object(obj))
}

/// Decodes a `k8s\0`-prefixed protobuf envelope (runtime.Unknown) into the JSON object it stands for.
pub fn decode(bytes: &[u8]) -> Result<Value, ApiError> {
    let body = bytes
        .strip_prefix(b"k8s\x00")
        .ok_or_else(|| bad("missing the k8s protobuf magic prefix"))?;
    let (mut type_meta, mut raw): (Value, &[u8]) = (json!({}), &[]);
    for (n, w) in fields(body)? {
        match (n, w) {
            (1, Wire::Bytes(b)) => type_meta = message(b, TYPE_META)?,
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let kind = type_meta["kind"].as_str().unwrap_or("").to_string();
    let schema = match kind.as_str() {
        "Secret" => SECRET,
        "ConfigMap" => CONFIGMAP,
        "Namespace" => NAMESPACE,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "TokenRequest" => TOKEN_REQUEST,
        "SelfSubjectAccessReview" => SSAR,
        "SelfSubjectReview" => SSR,
        "SelfSubjectRulesReview" => SSRR,
        "Role" | "ClusterRole" => ROLE,
        "RoleBinding" | "ClusterRoleBinding" => BINDING,
        "DeleteOptions" => DELETE_OPTIONS,
        "Deployment" => DEPLOYMENT,
        "Service" => SERVICE,
        _ => {
            return Err(ApiError::unsupported_media(
                "application/json, application/yaml (kubesim decodes protobuf only for the kinds kubectl creates)",
            ));
        }
    };
    let mut obj = message(raw, schema)?;
    obj["apiVersion"] = type_meta["apiVersion"].clone();
    obj["kind"] = Value::String(kind);
    Ok(obj)
}
