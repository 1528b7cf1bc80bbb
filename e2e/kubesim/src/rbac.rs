//! RBAC evaluation (PLACEHOLDER until A2's module lands): rule walk, forbidden message, bootstrap roles.
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RequestAttributes {
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
    pub resource_request: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RbacSnapshot {
    pub roles: Vec<Value>,
    pub role_bindings: Vec<Value>,
    pub cluster_roles: Vec<Value>,
    pub cluster_role_bindings: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

fn subject_matches(user: &UserInfo, s: &Value, binding_ns: &str) -> bool {
    let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = s.get("name").and_then(Value::as_str).unwrap_or("");
    match kind {
        "User" => user.username == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = s
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(binding_ns);
            user.username == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn has(list: Option<&Value>, want: &str) -> bool {
    list.and_then(Value::as_array).is_some_and(|a| {
        a.iter()
            .any(|v| v.as_str().is_some_and(|s| s == "*" || s == want))
    })
}

fn rule_allows(rule: &Value, a: &RequestAttributes) -> bool {
    if !has(rule.get("verbs"), &a.verb) {
        return false;
    }
    if !a.resource_request {
        return rule
            .get("nonResourceURLs")
            .and_then(Value::as_array)
            .is_some_and(|urls| {
                urls.iter().filter_map(Value::as_str).any(|u| {
                    u == "*"
                        || u == a.path
                        || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
                })
            });
    }
    let res = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    if !has(rule.get("apiGroups"), &a.api_group) || !has(rule.get("resources"), &res) {
        return false;
    }
    match rule.get("resourceNames").and_then(Value::as_array) {
        Some(names) if !names.is_empty() => {
            names.iter().any(|n| n.as_str() == Some(a.name.as_str()))
        }
        _ => true,
    }
}

fn role_rules<'a>(rbac: &'a RbacSnapshot, role_ref: &Value, ns: &str) -> Vec<&'a Value> {
    let kind = role_ref.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
    let pool: &[Value] = if kind == "ClusterRole" {
        &rbac.cluster_roles
    } else {
        &rbac.roles
    };
    pool.iter()
        .filter(|r| {
            r["metadata"]["name"].as_str() == Some(name)
                && (kind == "ClusterRole" || r["metadata"]["namespace"].as_str() == Some(ns))
        })
        .flat_map(|r| {
            r.get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .collect()
}

pub fn authorize(user: &UserInfo, attrs: &RequestAttributes, rbac: &RbacSnapshot) -> Decision {
    if user.groups.iter().any(|g| g == "system:masters") {
        return Decision::Allow;
    }
    for b in &rbac.cluster_role_bindings {
        let subjects = b
            .get("subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if subjects.iter().any(|s| subject_matches(user, s, ""))
            && role_rules(rbac, &b["roleRef"], "")
                .iter()
                .any(|r| rule_allows(r, attrs))
        {
            return Decision::Allow;
        }
    }
    if attrs.resource_request && !attrs.namespace.is_empty() {
        for b in &rbac.role_bindings {
            let ns = b["metadata"]["namespace"].as_str().unwrap_or("");
            if ns != attrs.namespace {
                continue;
            }
            let subjects = b
                .get("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if subjects.iter().any(|s| subject_matches(user, s, ns))
                && role_rules(rbac, &b["roleRef"], ns)
                    .iter()
                    .any(|r| rule_allows(r, attrs))
            {
                return Decision::Allow;
            }
        }
    }
    Decision::Deny
}

pub fn forbidden_message(user: &UserInfo, attrs: &RequestAttributes) -> String {
    if !attrs.resource_request {
        return format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.username, attrs.verb, attrs.path
        );
    }
    let res = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let qualified = if attrs.api_group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    let head = if attrs.name.is_empty() {
        format!("{qualified} is forbidden")
    } else {
        format!("{qualified} \"{}\" is forbidden", attrs.name)
    };
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", attrs.namespace)
    };
    format!(
        "{head}: User \"{}\" cannot {} resource \"{res}\" in API group \"{}\" {scope}",
        user.username, attrs.verb, attrs.api_group
    )
}

pub fn bootstrap_objects() -> Vec<Value> {
    let cr = |name: &str, rules: Value| {
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole",
        "metadata":{"name":name,"labels":{"kubernetes.io/bootstrapping":"rbac-defaults"}},"rules":rules})
    };
    let crb = |name: &str, group: &str| {
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
        "metadata":{"name":name,"labels":{"kubernetes.io/bootstrapping":"rbac-defaults"}},
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":name},
        "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":group}]})
    };
    vec![
        cr(
            "cluster-admin",
            json!([{"apiGroups":["*"],"resources":["*"],"verbs":["*"]},{"nonResourceURLs":["*"],"verbs":["*"]}]),
        ),
        cr(
            "system:discovery",
            json!([{"nonResourceURLs":["/api","/api/*","/apis","/apis/*","/healthz","/livez","/readyz","/openapi","/openapi/*","/version","/version/"],"verbs":["get"]}]),
        ),
        cr(
            "system:basic-user",
            json!([
            {"apiGroups":["authorization.k8s.io"],"resources":["selfsubjectaccessreviews","selfsubjectrulesreviews"],"verbs":["create"]},
            {"apiGroups":["authentication.k8s.io"],"resources":["selfsubjectreviews"],"verbs":["create"]}]),
        ),
        crb("cluster-admin", "system:masters"),
        crb("system:discovery", "system:authenticated"),
        crb("system:basic-user", "system:authenticated"),
    ]
}
