//! Object semantics under the store lock: create/update/delete, system metadata, generation, finalizers, and the built-in controllers (namespace defaults, token controller, CRD serving, RBAC snapshot).
use std::cell::RefCell;
use std::sync::Arc;

use base64::Engine;
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::auth;
use crate::errors::ApiError;
use crate::patch;
use crate::rbac::RbacSnapshot;
use crate::resources::{self, GenRule, ResKey, ResourceDef};
use crate::schema;
use crate::store::{State, TokenEntry, TokenKind};
use crate::validation;
use crate::workloads::admission;

pub const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
pub const SA_NAME_ANN: &str = "kubernetes.io/service-account.name";
pub const SA_UID_ANN: &str = "kubernetes.io/service-account.uid";

/// Per-write context.
#[derive(Default)]
pub struct Ctx<'a> {
    pub ca_pem: &'a str,
    pub manager: String,
    pub dry_run: bool,
    pub now: String,
    /// What to do about fields a CRD schema prunes (the request's `fieldValidation`).
    pub field_validation: schema::FieldValidation,
    /// `Warning` header texts the write produced (unknown fields under `fieldValidation=Warn`).
    pub warnings: RefCell<Vec<String>>,
}

/// Prunes, defaults and validates a custom resource against its version's schema (no-op for
/// built-ins and schemaless resources): 400 for unknown fields under Strict, 422 for invalid values.
fn admit_schema(
    def: &ResourceDef,
    version: &str,
    obj: &mut Value,
    old: Option<&Value>,
    ctx: &Ctx<'_>,
) -> Result<(), ApiError> {
    let Some(s) = def.schemas.as_ref().and_then(|s| s.version(version)) else {
        return Ok(());
    };
    let (unknown, errs) = schema::admit(s, obj, old);
    // Stored objects carry the storage version's defaults too (kube applies them when it reads
    // back what it wrote, and returns that), whatever version the write came in at.
    if version != def.storage_version()
        && let Some(storage) = def
            .schemas
            .as_ref()
            .and_then(|s| s.version(def.storage_version()))
    {
        schema::default_stored(storage, obj);
    }
    if !unknown.is_empty() {
        match ctx.field_validation {
            schema::FieldValidation::Strict => {
                return Err(schema::strict_error(&def.kind, version, &unknown));
            }
            schema::FieldValidation::Warn => {
                ctx.warnings.borrow_mut().extend(schema::warnings(&unknown));
            }
            schema::FieldValidation::Ignore => {}
        }
    }
    if errs.is_empty() {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    Err(schema::invalid(&def.group, &def.kind, name, &errs))
}

/// Objects stored before their CRD (or a new version of it) declared defaults show them when
/// read, as kube defaults on read: filled in place, without a new resourceVersion or event.
fn default_stored(st: &mut State, def: &ResourceDef) {
    let Some(s) = def
        .schemas
        .as_ref()
        .and_then(|s| s.version(def.storage_version()))
        .filter(|s| s.has_defaults)
    else {
        return;
    };
    let Some(t) = st.tables.get_mut(&def.key()) else {
        return;
    };
    for o in t.objects.values_mut() {
        let mut v = (**o).clone();
        if schema::default_stored(s, &mut v) {
            *o = Arc::new(v);
        }
    }
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn b64(s: &str) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))
}

fn core(plural: &str) -> ResKey {
    ResKey {
        group: String::new(),
        plural: plural.into(),
    }
}

/// Checks apiVersion/kind of a body against the URL's resource and fills them in when absent.
pub fn check_type_meta(def: &ResourceDef, version: &str, obj: &mut Value) -> Result<(), ApiError> {
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON or YAML object",
        ));
    };
    let want_av = def.api_version(version);
    match o.get("apiVersion").and_then(Value::as_str) {
        Some("") | None => {
            o.insert("apiVersion".into(), Value::String(want_av));
        }
        Some(av)
            if av == want_av
                || (def.group == av.split('/').next().unwrap_or("")
                    && av.contains('/')
                    && def.versions.iter().any(|v| av.ends_with(&format!("/{v}")))) =>
        {
            o.insert("apiVersion".into(), Value::String(want_av));
        }
        Some(av) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
    }
    match o.get("kind").and_then(Value::as_str) {
        Some("") | None => {
            o.insert("kind".into(), Value::String(def.kind.clone()));
        }
        Some(k) if k == def.kind => {}
        Some(k) if def.custom => {
            // Custom resources decode whatever kind is sent; the strategy's ValidateTypeMeta then
            // refuses it (422), naming the group-kind the object claims.
            let name = o
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let cause = format!("kind: Invalid value: \"{k}\": must be {}", def.kind);
            return Err(ApiError::invalid(&def.group, k, name, "kind", &cause));
        }
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): kind {k} does not match the resource {}",
                def.kind, def.plural
            )));
        }
    }
    match o.get("metadata") {
        None | Some(Value::Null) => {
            o.insert("metadata".into(), Value::Object(Map::new()));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::bad_request("metadata: must be an object")),
    }
    check_shapes(def, obj)
}

/// Typed decoding in kube-apiserver refuses wrongly typed metadata and built-in fields; so do we,
/// or a single malformed object would break every typed client watching its resource.
fn check_shapes(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    let bad = |field: &str, want: &str| {
        Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: json: cannot unmarshal {field} into Go value of type {want}",
            def.kind,
            def.versions.first().map(String::as_str).unwrap_or("v1"),
            def.kind
        )))
    };
    let str_map = |v: &Value| {
        v.is_null()
            || v.as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
    };
    let m = &obj["metadata"];
    for k in [
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
    ] {
        if !(m[k].is_null() || m[k].is_string()) {
            return bad(&format!("metadata.{k}"), "string");
        }
    }
    for k in ["generation", "deletionGracePeriodSeconds"] {
        if !(m[k].is_null() || m[k].is_i64() || m[k].is_u64()) {
            return bad(&format!("metadata.{k}"), "int64");
        }
    }
    for k in ["labels", "annotations"] {
        if !str_map(&m[k]) {
            return bad(&format!("metadata.{k}"), "map[string]string");
        }
    }
    if !(m["finalizers"].is_null()
        || m["finalizers"]
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)))
    {
        return bad("metadata.finalizers", "[]string");
    }
    let refs_ok = m["ownerReferences"].is_null()
        || m["ownerReferences"].as_array().is_some_and(|a| {
            a.iter().all(|r| {
                ["apiVersion", "kind", "name", "uid"]
                    .iter()
                    .all(|k| r[*k].is_string())
            })
        });
    if !refs_ok {
        return bad("metadata.ownerReferences", "[]v1.OwnerReference");
    }
    if !(m["managedFields"].is_null()
        || m["managedFields"]
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_object)))
    {
        return bad("metadata.managedFields", "[]v1.ManagedFieldsEntry");
    }
    if !def.custom {
        for k in ["spec", "status"] {
            if !(obj[k].is_null() || obj[k].is_object()) {
                return bad(k, "object");
            }
        }
        if matches!(def.plural.as_str(), "configmaps" | "secrets") {
            for k in ["data", "stringData", "binaryData"] {
                if !str_map(&obj[k]) {
                    return bad(k, "map[string]string");
                }
            }
        }
    }
    Ok(())
}

fn meta(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

fn gen_name(prefix: &str) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

fn namespace_check(st: &State, ns: &str) -> Result<(), ApiError> {
    match st.get(&core("namespaces"), "", ns) {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => Err(ApiError::forbidden(
            format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
            "",
            "namespaces",
            ns,
        )),
        Some(_) => Ok(()),
    }
}

fn strip(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

/// A Secret's write-only `stringData` is merged into `data` (base64, overriding same keys) and never
/// stored, as the v1 -> internal conversion does.
pub fn fold_string_data(obj: &mut Value) {
    let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return;
    };
    if sd.is_empty() {
        return;
    }
    if !obj["data"].is_object() {
        obj["data"] = json!({});
    }
    for (k, v) in sd {
        obj["data"][k.as_str()] = b64(v.as_str().unwrap_or(""));
    }
}

/// Drops the metadata fields Go's ObjectMeta leaves out when empty (all `omitempty`), as the apiserver's
/// round trip through ObjectMeta does for built-ins and custom resources alike: a patch adding
/// `annotations: {}` is then no change, as with kube.
pub fn normalize_meta(obj: &mut Value) {
    let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    m.retain(|k, v| match k.as_str() {
        "labels" | "annotations" => v.as_object().is_some_and(|o| !o.is_empty()),
        "finalizers" | "ownerReferences" | "managedFields" => {
            v.as_array().is_some_and(|a| !a.is_empty())
        }
        "name" | "generateName" | "namespace" | "selfLink" | "uid" | "resourceVersion" => {
            v.as_str().is_some_and(|s| !s.is_empty())
        }
        "generation" => v.as_i64().is_some_and(|g| g != 0),
        "deletionTimestamp" | "deletionGracePeriodSeconds" => !v.is_null(),
        _ => true,
    });
}

/// Creates an object. `ns` is the URL namespace ("" for cluster-scoped).
pub fn create(
    st: &mut State,
    def: &Arc<ResourceDef>,
    version: &str,
    ns: &str,
    mut obj: Value,
    ctx: &Ctx<'_>,
) -> Result<Arc<Value>, ApiError> {
    check_type_meta(def, version, &mut obj)?;
    let m = meta(&mut obj);
    if def.namespaced {
        match m.get("namespace").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                m.insert("namespace".into(), Value::String(ns.into()));
            }
        }
    } else {
        m.remove("namespace");
    }
    let name = match m
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(n) => n.to_string(),
        None => match m
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(prefix) => {
                let mut n = gen_name(prefix);
                while st.get(&def.key(), ns, &n).is_some() {
                    n = gen_name(prefix);
                }
                n
            }
            None => {
                return Err(ApiError::invalid(
                    &def.group,
                    &def.kind,
                    "",
                    "metadata.name",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        },
    };
    if let Err(e) = validation::validate_name(&def.plural, &name) {
        return Err(ApiError::invalid(
            &def.group,
            &def.kind,
            &name,
            "metadata.name",
            &e,
        ));
    }
    if obj["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|rv| !rv.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if def.namespaced {
        namespace_check(st, ns)?;
    }
    if st.get(&def.key(), ns, &name).is_some() {
        return Err(ApiError::already_exists(&def.group, &def.plural, &name));
    }
    let m = meta(&mut obj);
    m.insert("name".into(), Value::String(name.clone()));
    m.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    m.insert("creationTimestamp".into(), Value::String(ctx.now.clone()));
    for k in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "resourceVersion",
        "selfLink",
    ] {
        m.remove(k);
    }
    if def.gen_rule == GenRule::None {
        m.remove("generation");
    } else {
        m.insert("generation".into(), json!(1));
    }
    if def.status {
        obj.as_object_mut().expect("object").remove("status");
    }
    normalize_meta(&mut obj);
    admit_schema(def, version, &mut obj, None, ctx)?;
    admission::admit(st, &def.group, &def.plural, &mut obj, None)?;
    defaults_on_create(st, def, ns, &name, &mut obj, ctx)?;
    if !ctx.manager.is_empty() {
        patch::track_update(None, &mut obj, &ctx.manager, None, &ctx.now);
    }
    if ctx.dry_run {
        return Ok(Arc::new(obj));
    }
    let stored = st.put(def, obj);
    after_write(st, def, &stored, ctx);
    Ok(stored)
}

fn defaults_on_create(
    st: &mut State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    obj: &mut Value,
    ctx: &Ctx<'_>,
) -> Result<(), ApiError> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            let m = meta(obj);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            labels["kubernetes.io/metadata.name"] = Value::String(name.into());
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "secrets") => {
            fold_string_data(obj);
            if obj["type"].as_str().is_none_or(str::is_empty) {
                obj["type"] = json!("Opaque");
            }
            if obj["type"] == SA_TOKEN_TYPE {
                if obj["metadata"]["annotations"][SA_NAME_ANN]
                    .as_str()
                    .is_none_or(str::is_empty)
                {
                    return Err(ApiError::invalid(
                        "",
                        "Secret",
                        name,
                        "metadata.annotations[kubernetes.io/service-account.name]",
                        "metadata.annotations[kubernetes.io/service-account.name]: Required value",
                    ));
                }
                if !ctx.dry_run {
                    fill_token_secret(st, ns, name, obj, ctx.ca_pem);
                }
            }
        }
        ("", "pods") => {
            crate::pod_admission::admit(st, ns, obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        ("apps", "statefulsets") => {
            obj["status"] = json!({"replicas": 0, "availableReplicas": 0});
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            crd_prepare(name, obj, &ctx.now)?;
        }
        _ => {}
    }
    Ok(())
}

fn crd_prepare(name: &str, obj: &mut Value, now: &str) -> Result<(), ApiError> {
    let def = resources::from_crd(obj).map_err(|e| {
        ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            name,
            "spec",
            &e,
        )
    })?;
    let want = format!("{}.{}", def.plural, def.group);
    if want != name {
        let msg = format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        );
        return Err(ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            name,
            "metadata.name",
            &msg,
        ));
    }
    let mut accepted = obj["spec"]["names"].clone();
    if accepted["singular"].as_str().is_none_or(str::is_empty) {
        accepted["singular"] = json!(def.singular);
    }
    if accepted["listKind"].as_str().is_none_or(str::is_empty) {
        accepted["listKind"] = json!(format!("{}List", def.kind));
    }
    obj["spec"]["names"] = accepted.clone();
    let storage = obj["spec"]["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["storage"].as_bool() == Some(true)))
        .and_then(|v| v["name"].as_str())
        .unwrap_or(def.storage_version())
        .to_string();
    obj["status"] = json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "storedVersions": [storage],
    });
    Ok(())
}

/// Token controller: fills a service-account token Secret when its ServiceAccount exists.
fn fill_token_secret(st: &mut State, ns: &str, name: &str, obj: &mut Value, ca_pem: &str) {
    let Some(sa_name) = obj["metadata"]["annotations"][SA_NAME_ANN]
        .as_str()
        .map(String::from)
    else {
        return;
    };
    if obj["data"]["token"].as_str().is_some_and(|t| !t.is_empty()) {
        return;
    }
    let Some(sa) = st.get(&core("serviceaccounts"), ns, &sa_name) else {
        return;
    };
    let token = auth::random_token("kubesim-sa");
    st.tokens.insert(
        token.clone(),
        TokenEntry {
            user: auth::sa_user(ns, &sa_name),
            kind: TokenKind::Secret {
                namespace: ns.into(),
                secret: name.into(),
                sa: sa_name.clone(),
            },
            expires: None,
        },
    );
    if !obj["data"].is_object() {
        obj["data"] = json!({});
    }
    obj["data"]["token"] = b64(&token);
    obj["data"]["ca.crt"] = b64(ca_pem);
    obj["data"]["namespace"] = b64(ns);
    obj["metadata"]["annotations"][SA_UID_ANN] = Value::String(auth::sa_uid(&sa));
}

fn after_write(st: &mut State, def: &ResourceDef, obj: &Arc<Value>, ctx: &Ctx<'_>) {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            let ns = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            if st.get(&core("serviceaccounts"), &ns, "default").is_none() {
                let reg = st.registry.clone();
                if let Some(sadef) = reg.find("", "v1", "serviceaccounts") {
                    let c = Ctx {
                        ca_pem: ctx.ca_pem,
                        manager: String::new(),
                        dry_run: false,
                        now: ctx.now.clone(),
                        ..Default::default()
                    };
                    let _ = create(
                        st,
                        &sadef,
                        "v1",
                        &ns,
                        json!({"metadata": {"name": "default"}}),
                        &c,
                    );
                }
            }
        }
        ("", "serviceaccounts") => {
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let sa = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            let pending: Vec<Arc<Value>> = st
                .range(&core("secrets"), Some(&ns), None)
                .into_iter()
                .filter(|s| {
                    s["type"] == SA_TOKEN_TYPE
                        && s["metadata"]["annotations"][SA_NAME_ANN].as_str() == Some(sa.as_str())
                        && s["data"]["token"].is_null()
                })
                .collect();
            let reg = st.registry.clone();
            if let Some(secdef) = reg.find("", "v1", "secrets") {
                for s in pending {
                    let mut s = (*s).clone();
                    let name = s["metadata"]["name"].as_str().unwrap_or("").to_string();
                    fill_token_secret(st, &ns, &name, &mut s, ctx.ca_pem);
                    st.put(&secdef, s);
                }
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            if let Ok(d) = resources::from_crd(obj) {
                default_stored(st, &d);
                st.registry = Arc::new(st.registry.with(d));
            }
        }
        ("rbac.authorization.k8s.io", _) => refresh_rbac(st),
        _ => {}
    }
}

pub fn refresh_rbac(st: &mut State) {
    let g = "rbac.authorization.k8s.io";
    let all = |st: &State, plural: &str| -> Vec<Value> {
        st.range(
            &ResKey {
                group: g.into(),
                plural: plural.into(),
            },
            None,
            None,
        )
        .iter()
        .map(|v| (**v).clone())
        .collect()
    };
    st.rbac = Arc::new(RbacSnapshot {
        roles: all(st, "roles"),
        role_bindings: all(st, "rolebindings"),
        cluster_roles: all(st, "clusterroles"),
        cluster_role_bindings: all(st, "clusterrolebindings"),
    });
}

/// How managedFields are handled on an update.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Managed {
    /// Record the manager's changes with patch::track_update.
    Track,
    /// The body already carries the managedFields to store (server-side apply).
    Keep,
}

/// Replaces an object (PUT, or the result of a patch). `sub` is Some("status") on the status subresource.
#[allow(clippy::too_many_arguments)]
pub fn update(
    st: &mut State,
    def: &Arc<ResourceDef>,
    version: &str,
    ns: &str,
    name: &str,
    mut obj: Value,
    sub: Option<&str>,
    ctx: &Ctx<'_>,
    require_rv: bool,
    managed: Managed,
) -> Result<Arc<Value>, ApiError> {
    check_type_meta(def, version, &mut obj)?;
    let m = meta(&mut obj);
    match m.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {
            m.insert("name".into(), Value::String(name.into()));
        }
    }
    if def.namespaced {
        match m.get("namespace").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                m.insert("namespace".into(), Value::String(ns.into()));
            }
        }
    }
    let old = st
        .get(&def.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    let body_rv = m
        .get("resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let old_rv = old["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if !body_rv.is_empty() && body_rv != old_rv {
        return Err(ApiError::conflict(&def.group, &def.plural, name));
    }
    if let Some(uid) = m
        .get("uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        && old["metadata"]["uid"].as_str() != Some(uid)
    {
        return Err(ApiError::conflict_msg(
            &def.group,
            &def.plural,
            name,
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old["metadata"]["uid"].as_str().unwrap_or("")
            ),
        ));
    }
    if body_rv.is_empty() && require_rv && def.custom {
        return Err(ApiError::invalid(
            &def.group,
            &def.kind,
            name,
            "metadata.resourceVersion",
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
        ));
    }
    let mut new = if sub == Some("status") {
        let mut n = (*old).clone();
        match obj.get("status") {
            Some(s) => n["status"] = s.clone(),
            None => {
                n.as_object_mut().expect("object").remove("status");
            }
        }
        if managed == Managed::Keep {
            n["metadata"]["managedFields"] = obj["metadata"]["managedFields"].clone();
        }
        if admission::status_writes_annotations(&def.group, &def.plural) {
            n["metadata"]["annotations"] = obj["metadata"]["annotations"].clone();
        }
        n
    } else {
        if def.status {
            match old.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    obj.as_object_mut().expect("object").remove("status");
                }
            }
        }
        let om = &old["metadata"];
        let m = meta(&mut obj);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match om.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        if m.get("managedFields").is_none_or(Value::is_null)
            && let Some(mf) = om.get("managedFields")
        {
            m.insert("managedFields".into(), mf.clone());
        }
        m.remove("selfLink");
        obj
    };
    normalize_meta(&mut new);
    if def.group.is_empty() && def.plural == "secrets" {
        fold_string_data(&mut new);
    }
    new["metadata"]["resourceVersion"] = Value::String(old_rv.clone());
    admit_schema(def, version, &mut new, Some(&old), ctx)?;
    if sub.is_none() {
        admission::admit(st, &def.group, &def.plural, &mut new, Some(&old))?;
    }
    if def.plural == "customresourcedefinitions" && sub.is_none() {
        crd_prepare(name, &mut new, &ctx.now)?;
        new["status"] = old["status"].clone();
    }
    let spec_changed = match def.gen_rule {
        GenRule::None => false,
        GenRule::Spec => {
            strip(&new, &["metadata", "status"]) != strip(&old, &["metadata", "status"])
        }
        GenRule::AllButMeta => strip(&new, &["metadata"]) != strip(&old, &["metadata"]),
    } || (sub.is_none()
        && admission::annotations_bump_generation(&def.group, &def.plural)
        && new["metadata"]["annotations"] != old["metadata"]["annotations"]);
    if spec_changed {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
        new["metadata"]["generation"] = json!(g + 1);
    }
    // kube-apiserver ignores managedFields timestamps when deciding whether a write changed anything.
    if same_ignoring_mf_times(&new, &old) {
        return Ok(old);
    }
    if managed == Managed::Track && !ctx.manager.is_empty() {
        patch::track_update(Some(&old), &mut new, &ctx.manager, sub, &ctx.now);
    }
    if ctx.dry_run {
        return Ok(Arc::new(new));
    }
    // As the generic registry's ShouldDeleteDuringUpdate: a graceful deletion still under way
    // (a pod its kubelet is stopping) is not completed by an update.
    let deleting = !new["metadata"]["deletionTimestamp"].is_null()
        && old["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .is_none_or(|g| g == 0)
        && new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
    if deleting {
        return Ok(finish_delete(st, def, ns, name, Some(new)));
    }
    let stored = st.put(def, new);
    after_write(st, def, &stored, ctx);
    Ok(stored)
}

/// Equality of two objects where managedFields entries may differ in `time` only (no copies made).
fn same_ignoring_mf_times(a: &Value, b: &Value) -> bool {
    fn maps_eq(
        a: &Map<String, Value>,
        b: &Map<String, Value>,
        f: &dyn Fn(&str, &Value, &Value) -> bool,
    ) -> bool {
        a.len() == b.len()
            && a.iter()
                .all(|(k, av)| b.get(k).is_some_and(|bv| f(k, av, bv)))
    }
    fn entry_eq(a: &Value, b: &Value) -> bool {
        match (a.as_object(), b.as_object()) {
            (Some(x), Some(y)) => maps_eq(x, y, &|k, p, q| k == "time" || p == q),
            _ => a == b,
        }
    }
    fn meta_eq(a: &Value, b: &Value) -> bool {
        match (a.as_object(), b.as_object()) {
            (Some(x), Some(y)) => maps_eq(x, y, &|k, p, q| match (k, p.as_array(), q.as_array()) {
                ("managedFields", Some(l), Some(r)) => {
                    l.len() == r.len() && l.iter().zip(r).all(|(e, f)| entry_eq(e, f))
                }
                _ => p == q,
            }),
            _ => a == b,
        }
    }
    match (a.as_object(), b.as_object()) {
        (Some(x), Some(y)) => maps_eq(x, y, &|k, p, q| {
            if k == "metadata" {
                meta_eq(p, q)
            } else {
                p == q
            }
        }),
        _ => a == b,
    }
}

/// Delete preconditions and options.
#[derive(Default)]
pub struct DeleteOpts {
    pub dry_run: bool,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// propagationPolicy=Orphan: dependents keep living.
    pub orphan: bool,
    /// DeleteOptions.gracePeriodSeconds (pods bound to a node are deleted gracefully).
    pub grace_period: Option<i64>,
    /// propagationPolicy=Foreground: an owner waits (finalizer `foregroundDeletion`) for the
    /// garbage collector to delete its dependents.
    pub foreground: bool,
}

/// The grace period of a pod's deletion, as the pod strategy's CheckGracefulDelete decides:
/// the request's, else the pod's terminationGracePeriodSeconds (30); 0 (at once) for a pod on
/// no node or already finished.
fn pod_grace(def: &ResourceDef, old: &Value, opts: &DeleteOpts) -> i64 {
    if !(def.group.is_empty() && def.plural == "pods") {
        return 0;
    }
    let unbound = old["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
    let done = matches!(
        old["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if unbound || done {
        return 0;
    }
    opts.grace_period
        .or_else(|| old["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30)
        .max(0)
}

pub fn delete(
    st: &mut State,
    def: &Arc<ResourceDef>,
    ns: &str,
    name: &str,
    ctx: &Ctx<'_>,
    opts: &DeleteOpts,
) -> Result<Arc<Value>, ApiError> {
    let old = st
        .get(&def.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    if let Some(uid) = &opts.uid
        && old["metadata"]["uid"].as_str() != Some(uid.as_str())
    {
        return Err(ApiError::conflict_msg(
            &def.group,
            &def.plural,
            name,
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old["metadata"]["uid"].as_str().unwrap_or("")
            ),
        ));
    }
    if let Some(rv) = &opts.resource_version
        && old["metadata"]["resourceVersion"].as_str() != Some(rv.as_str())
    {
        return Err(ApiError::conflict_msg(
            &def.group,
            &def.plural,
            name,
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                old["metadata"]["resourceVersion"].as_str().unwrap_or("")
            ),
        ));
    }
    let grace = pod_grace(def, &old, opts);
    if grace > 0 {
        // Graceful: marked for deletion; the kubelet deletes it (grace 0) once stopped. A
        // second request may only shorten the grace period.
        let current = old["metadata"]["deletionGracePeriodSeconds"].as_i64();
        if current.is_some_and(|c| c <= grace) {
            return Ok(old);
        }
        let mut new = (*old).clone();
        let at = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(grace))
            .unwrap_or_else(|_| jiff::Timestamp::now());
        new["metadata"]["deletionTimestamp"] =
            Value::String(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        if opts.dry_run {
            return Ok(Arc::new(new));
        }
        return Ok(st.put(def, new));
    }
    let has_dependents = old["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| st.owners.contains_key(u));
    let mut old = old;
    if opts.foreground && has_dependents && old["metadata"]["deletionTimestamp"].is_null() {
        let mut o = (*old).clone();
        let mut fins = o["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        fins.push(json!(admission::FOREGROUND_FINALIZER));
        o["metadata"]["finalizers"] = json!(fins);
        old = Arc::new(o);
    }
    let has_finalizers = old["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        if !old["metadata"]["deletionTimestamp"].is_null() {
            return Ok(old);
        }
        let mut new = (*old).clone();
        new["metadata"]["deletionTimestamp"] = Value::String(ctx.now.clone());
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if opts.dry_run {
            return Ok(Arc::new(new));
        }
        return Ok(st.put(def, new));
    }
    if opts.dry_run {
        return Ok(old);
    }
    let removed = finish_delete(st, def, ns, name, None);
    if opts.orphan {
        orphan_dependents(st, &removed);
    } else {
        collect_garbage(st, &removed, ctx);
    }
    Ok(removed)
}

/// Orphan propagation: the dependents stay, without their ownerReferences to `owner` (so that
/// a new owner, e.g. a Deployment of the same name, can adopt them).
fn orphan_dependents(st: &mut State, owner: &Value) {
    let Some(uid) = owner["metadata"]["uid"].as_str().filter(|u| !u.is_empty()) else {
        return;
    };
    let reg = st.registry.clone();
    for (rk, (n, name)) in st.owners.get(uid).cloned().unwrap_or_default() {
        let (Some(d), Some(dep)) = (reg.by_key(&rk), st.get(&rk, &n, &name)) else {
            continue;
        };
        let mut dep = (*dep).clone();
        if let Some(refs) = dep["metadata"]["ownerReferences"].as_array_mut() {
            refs.retain(|r| r["uid"].as_str() != Some(uid));
        }
        normalize_meta(&mut dep);
        st.put(&d, dep);
    }
}

/// Garbage collection (background propagation, done at once): objects whose only owner was
/// `owner` are deleted too (their finalizers are honoured).
fn collect_garbage(st: &mut State, owner: &Value, ctx: &Ctx<'_>) {
    let Some(uid) = owner["metadata"]["uid"].as_str().filter(|u| !u.is_empty()) else {
        return;
    };
    let Some(refs) = st.owners.get(uid).cloned() else {
        return;
    };
    let reg = st.registry.clone();
    for (rk, (n, name)) in refs {
        let Some(d) = reg.by_key(&rk) else { continue };
        let only_this_owner = st.get(&rk, &n, &name).is_some_and(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|r| r.iter().all(|r| r["uid"].as_str() == Some(uid)))
        });
        if only_this_owner {
            let _ = delete(st, &d, &n, &name, ctx, &DeleteOpts::default());
        }
    }
}

/// Removes an object for good, with what depends on it (namespace contents, CRD objects).
fn finish_delete(
    st: &mut State,
    def: &Arc<ResourceDef>,
    ns: &str,
    name: &str,
    last: Option<Value>,
) -> Arc<Value> {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            let reg = st.registry.clone();
            for d in reg.defs.iter().filter(|d| d.namespaced) {
                for o in st.range(&d.key(), Some(name), None) {
                    let n = o["metadata"]["name"].as_str().unwrap_or("").to_string();
                    st.remove(d, name, &n);
                }
            }
            refresh_rbac(st);
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            if let Some(old) = st.get(&def.key(), ns, name)
                && let Ok(d) = resources::from_crd(&old)
            {
                st.drop_table(&d.key());
                st.registry = Arc::new(st.registry.without(&d.key()));
            }
        }
        _ => {}
    }
    let finalized = last.is_some();
    if let Some(l) = last {
        // Store the final state first so the DELETED event carries it.
        st.put(def, l);
    }
    let removed = st
        .remove(def, ns, name)
        .unwrap_or_else(|| Arc::new(Value::Null));
    if def.group == "rbac.authorization.k8s.io" {
        refresh_rbac(st);
    }
    if finalized {
        let ctx = Ctx {
            ca_pem: "",
            manager: String::new(),
            dry_run: false,
            now: now_rfc3339(),
            ..Default::default()
        };
        collect_garbage(st, &removed, &ctx);
    }
    removed
}
