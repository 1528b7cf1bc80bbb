//! Resource definitions: the built-in kinds kubesim serves and those CustomResourceDefinitions add.
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::schema::CrdSchemas;
use crate::table::{self, PrinterColumn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenRule {
    /// No metadata.generation (ConfigMaps, Secrets, ...).
    None,
    /// Moves when anything but metadata and status changes.
    Spec,
    /// Moves when anything but metadata changes (CRDs without a status subresource).
    AllButMeta,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResKey {
    pub group: String,
    pub plural: String,
}

#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub group: String,
    /// Served versions, the preferred (storage) one first.
    pub versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<&'static str>,
    /// Subresources: (name, kind, verbs).
    pub subresources: Vec<(&'static str, String, Vec<&'static str>)>,
    pub status: bool,
    pub gen_rule: GenRule,
    /// Served from a CustomResourceDefinition.
    pub custom: bool,
    /// Per served version: printer columns (first one is Name).
    pub columns: HashMap<String, Vec<PrinterColumn>>,
    /// Virtual resources (reviews, token requests): create-only, never stored.
    pub virtual_create: bool,
    /// A CRD's structural schema per served version, parsed once when the CRD is registered.
    pub schemas: Option<Arc<CrdSchemas>>,
}

pub const ALL_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceDef {
    pub fn key(&self) -> ResKey {
        ResKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }
    pub fn storage_version(&self) -> &str {
        &self.versions[0]
    }
    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|(n, _, _)| *n == name)
    }
    pub fn columns_for(&self, version: &str) -> Vec<PrinterColumn> {
        self.columns
            .get(version)
            .cloned()
            .unwrap_or_else(|| table::default_columns(&self.kind))
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    categories: &[&str],
    gen_rule: GenRule,
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        versions: vec![version.into()],
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(ToString::to_string).collect(),
        categories: categories.iter().map(ToString::to_string).collect(),
        verbs: ALL_VERBS.to_vec(),
        subresources: vec![],
        status: false,
        gen_rule,
        custom: false,
        columns: HashMap::new(),
        virtual_create: false,
        schemas: None,
    }
}

fn with_status(mut d: ResourceDef) -> ResourceDef {
    d.status = true;
    d.subresources
        .push(("status", d.kind.clone(), vec!["get", "patch", "update"]));
    d
}

fn review(group: &str, kind: &str, plural: &str) -> ResourceDef {
    let mut d = builtin(group, "v1", kind, plural, false, &[], &[], GenRule::None);
    d.verbs = vec!["create"];
    d.virtual_create = true;
    d
}

/// The built-in resources every simulated cluster serves.
pub fn builtins() -> Vec<ResourceDef> {
    let mut ns = with_status(builtin(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        &[],
        GenRule::None,
    ));
    ns.verbs = vec![
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    ns.subresources
        .push(("finalize", "Namespace".into(), vec!["update"]));
    let mut sa = builtin(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        &[],
        GenRule::None,
    );
    sa.subresources
        .push(("token", "TokenRequest".into(), vec!["create"]));
    let mut pods = with_status(builtin(
        "",
        "v1",
        "Pod",
        "pods",
        true,
        &["po"],
        &["all"],
        GenRule::Spec,
    ));
    pods.subresources
        .push(("exec", "PodExecOptions".into(), vec!["create", "get"]));
    pods.subresources.push(("log", "Pod".into(), vec!["get"]));
    let mut sts = with_status(builtin(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        &["all"],
        GenRule::Spec,
    ));
    sts.subresources
        .push(("scale", "Scale".into(), vec!["get", "patch", "update"]));
    let scaled = |kind: &str, plural: &str, short: &[&str]| {
        let mut d = with_status(builtin(
            "apps",
            "v1",
            kind,
            plural,
            true,
            short,
            &["all"],
            GenRule::Spec,
        ));
        d.subresources
            .push(("scale", "Scale".into(), vec!["get", "patch", "update"]));
        d
    };
    let workloads = [
        scaled("Deployment", "deployments", &["deploy"]),
        scaled("ReplicaSet", "replicasets", &["rs"]),
        with_status(builtin(
            "",
            "v1",
            "Service",
            "services",
            true,
            &["svc"],
            &["all"],
            GenRule::None,
        )),
        builtin(
            "",
            "v1",
            "Endpoints",
            "endpoints",
            true,
            &["ep"],
            &[],
            GenRule::None,
        ),
        builtin(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            &[],
            &[],
            GenRule::None,
        ),
    ];
    let mut crd = with_status(builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        GenRule::Spec,
    ));
    crd.singular = "customresourcedefinition".into();
    vec![
        ns,
        builtin("", "v1", "Secret", "secrets", true, &[], &[], GenRule::None),
        sa,
        builtin(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            &[],
            GenRule::None,
        ),
        builtin(
            "",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            &[],
            GenRule::None,
        ),
        pods,
        sts,
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            &[],
            GenRule::None,
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            &[],
            GenRule::None,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            &[],
            &[],
            GenRule::None,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
            &[],
            GenRule::None,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
            &[],
            GenRule::None,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            &[],
            GenRule::None,
        ),
        review(
            "authorization.k8s.io",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
        ),
        review(
            "authentication.k8s.io",
            "SelfSubjectReview",
            "selfsubjectreviews",
        ),
        review(
            "authorization.k8s.io",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
        ),
        crd,
    ]
    .into_iter()
    .chain(workloads)
    .collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The resource a CustomResourceDefinition serves, or a reason it cannot be served.
pub fn from_crd(crd: &Value) -> Result<ResourceDef, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let group = spec["group"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("spec.group: Required value")?;
    let names = &spec["names"];
    let plural = names["plural"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("spec.names.plural: Required value")?;
    let kind = names["kind"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("spec.names.kind: Required value")?;
    let singular = names["singular"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = match spec["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope: Unsupported value: must be Namespaced or Cluster".into()),
    };
    let versions = spec["versions"]
        .as_array()
        .filter(|v| !v.is_empty())
        .ok_or(
            "spec.versions: Invalid value: must have exactly one version marked as storage version",
        )?;
    let mut served: Vec<&Value> = versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .collect();
    served.sort_by_key(|v| !v["storage"].as_bool().unwrap_or(false));
    if served.is_empty() {
        return Err("spec.versions: Invalid value: no version is served".into());
    }
    let status = served
        .iter()
        .any(|v| v["subresources"]["status"].is_object());
    let schemas = CrdSchemas::from_crd(crd).map_err(|errs| {
        let msgs = errs
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        crate::validation::aggregate(msgs).err().unwrap_or_default()
    })?;
    let mut columns = HashMap::new();
    for v in &served {
        let name = v["name"].as_str().unwrap_or("v1").to_string();
        let cols = v["additionalPrinterColumns"]
            .as_array()
            .filter(|c| !c.is_empty())
            .map(|cols| {
                let mut out = vec![PrinterColumn {
                    name: "Name".into(),
                    type_: "string".into(),
                    format: "name".into(),
                    description: "Name must be unique within a namespace.".into(),
                    json_path: ".metadata.name".into(),
                    priority: 0,
                }];
                out.extend(cols.iter().map(|c| PrinterColumn {
                    name: c["name"].as_str().unwrap_or("").into(),
                    type_: c["type"].as_str().unwrap_or("string").into(),
                    format: c["format"].as_str().unwrap_or("").into(),
                    description: c["description"].as_str().unwrap_or("").into(),
                    json_path: c["jsonPath"].as_str().unwrap_or("").into(),
                    priority: c["priority"].as_i64().unwrap_or(0) as i32,
                }));
                out
            });
        if let Some(c) = cols {
            columns.insert(name, c);
        }
    }
    let mut def = ResourceDef {
        group: group.into(),
        versions: served
            .iter()
            .map(|v| v["name"].as_str().unwrap_or("v1").to_string())
            .collect(),
        kind: kind.into(),
        plural: plural.into(),
        singular,
        namespaced,
        short_names: strs(&names["shortNames"]),
        categories: strs(&names["categories"]),
        verbs: ALL_VERBS.to_vec(),
        subresources: vec![],
        status: false,
        gen_rule: if status {
            GenRule::Spec
        } else {
            GenRule::AllButMeta
        },
        custom: true,
        columns,
        virtual_create: false,
        schemas: Some(Arc::new(schemas)),
    };
    if status {
        def = with_status(def);
    }
    Ok(def)
}

/// All resources a cluster serves right now (immutable snapshot; replaced when CRDs change).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub defs: Vec<Arc<ResourceDef>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            defs: builtins().into_iter().map(Arc::new).collect(),
        }
    }
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .iter()
            .find(|d| {
                d.group == group && d.plural == plural && d.versions.iter().any(|v| v == version)
            })
            .cloned()
    }
    pub fn by_key(&self, key: &ResKey) -> Option<Arc<ResourceDef>> {
        self.defs
            .iter()
            .find(|d| d.group == key.group && d.plural == key.plural)
            .cloned()
    }
    pub fn with(&self, def: ResourceDef) -> Registry {
        let mut defs: Vec<_> = self
            .defs
            .iter()
            .filter(|d| !(d.group == def.group && d.plural == def.plural))
            .cloned()
            .collect();
        defs.push(Arc::new(def));
        Registry { defs }
    }
    pub fn without(&self, key: &ResKey) -> Registry {
        Registry {
            defs: self
                .defs
                .iter()
                .filter(|d| !(d.group == key.group && d.plural == key.plural))
                .cloned()
                .collect(),
        }
    }
    /// (group, versions) in a stable order: core first, then built-in groups, then CRD groups.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = vec![];
        for d in &self.defs {
            match out.iter_mut().find(|(g, _)| *g == d.group) {
                Some((_, vs)) => {
                    for v in &d.versions {
                        if !vs.contains(v) {
                            vs.push(v.clone());
                        }
                    }
                }
                None => out.push((d.group.clone(), d.versions.clone())),
            }
        }
        out
    }
}
