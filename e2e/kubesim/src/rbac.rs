//! RBAC authorization as kube-apiserver evaluates it, its 403 message, and the bootstrap policy.
//!
//! Roles and bindings are read as stored JSON (rbac.authorization.k8s.io/v1). Aggregated
//! ClusterRoles are not expanded.

use serde_json::{Value, json};

use crate::validation::go_quote;

/// The identity a request was authenticated as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

/// What a request wants to do, as kube's `authorizer.Attributes` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestAttributes {
    /// get list watch create update patch delete deletecollection (or the HTTP verb, lowercased,
    /// for non-resource requests).
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The request path (used for non-resource requests such as `/version`).
    pub path: String,
    pub resource_request: bool,
}

/// The RBAC objects of one cluster at the time of a request.
#[derive(Debug, Clone, Default)]
pub struct RbacSnapshot {
    pub roles: Vec<Value>,
    pub role_bindings: Vec<Value>,
    pub cluster_roles: Vec<Value>,
    pub cluster_role_bindings: Vec<Value>,
}

/// The outcome of an authorization check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// The group whose members bypass RBAC, as in kube-apiserver.
pub const SYSTEM_MASTERS: &str = "system:masters";

/// Decides `attrs` for `user` from the RBAC objects: `system:masters` is always allowed;
/// ClusterRoleBindings grant ClusterRoles everywhere; RoleBindings grant Roles or ClusterRoles
/// in their own namespace (resource requests only).
pub fn authorize(user: &UserInfo, attrs: &RequestAttributes, rbac: &RbacSnapshot) -> Decision {
    if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
        return Decision::Allow;
    }
    let allowed = visible_rules(user, &attrs.namespace, rbac).any(|(rule, from_role_binding)| {
        if attrs.resource_request {
            resource_rule_allows(rule, attrs)
        } else {
            !from_role_binding && non_resource_rule_allows(rule, attrs)
        }
    });
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// Every rule that applies to `user` for requests in `namespace` ("" = cluster scope), with
/// whether it came through a RoleBinding (those never grant non-resource URLs).
fn visible_rules<'a>(
    user: &'a UserInfo,
    namespace: &'a str,
    rbac: &'a RbacSnapshot,
) -> impl Iterator<Item = (&'a Value, bool)> + 'a {
    let cluster = rbac
        .cluster_role_bindings
        .iter()
        .filter(move |b| binding_applies(b, user, ""))
        .filter_map(move |b| role_ref_rules(b, "", rbac))
        .flatten()
        .map(|r| (r, false));
    let namespaced = rbac
        .role_bindings
        .iter()
        .filter(move |b| !namespace.is_empty() && str_at(b, "/metadata/namespace") == namespace)
        .filter(move |b| binding_applies(b, user, namespace))
        .filter_map(move |b| role_ref_rules(b, namespace, rbac))
        .flatten()
        .map(|r| (r, true));
    cluster.chain(namespaced)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn binding_applies(binding: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .is_some_and(|subjects| {
            subjects
                .iter()
                .any(|s| subject_matches(s, user, binding_namespace))
        })
}

fn subject_matches(subject: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let name = str_at(subject, "/name");
    match str_at(subject, "/kind") {
        "User" => user.username == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = match str_at(subject, "/namespace") {
                "" => binding_namespace,
                ns => ns,
            };
            !ns.is_empty() && user.username == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn role_ref_rules<'a>(
    binding: &'a Value,
    namespace: &str,
    rbac: &'a RbacSnapshot,
) -> Option<impl Iterator<Item = &'a Value> + 'a> {
    let name = str_at(binding, "/roleRef/name");
    let role = match str_at(binding, "/roleRef/kind") {
        "ClusterRole" => rbac
            .cluster_roles
            .iter()
            .find(|r| str_at(r, "/metadata/name") == name)?,
        "Role" if !namespace.is_empty() => rbac.roles.iter().find(|r| {
            str_at(r, "/metadata/name") == name && str_at(r, "/metadata/namespace") == namespace
        })?,
        _ => return None,
    };
    Some(role.get("rules").and_then(Value::as_array)?.iter())
}

fn verb_matches(rule: &Value, verb: &str) -> bool {
    strings(rule, "verbs").iter().any(|v| v == "*" || v == verb)
}

fn resource_rule_allows(rule: &Value, attrs: &RequestAttributes) -> bool {
    if !verb_matches(rule, &attrs.verb) {
        return false;
    }
    if !strings(rule, "apiGroups")
        .iter()
        .any(|g| g == "*" || *g == attrs.api_group)
    {
        return false;
    }
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let resource_ok = strings(rule, "resources").iter().any(|r| {
        r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    });
    if !resource_ok {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&attrs.name)
}

fn non_resource_rule_allows(rule: &Value, attrs: &RequestAttributes) -> bool {
    verb_matches(rule, &attrs.verb)
        && strings(rule, "nonResourceURLs").iter().any(|u| {
            u == "*"
                || *u == attrs.path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| attrs.path.starts_with(prefix))
        })
}

/// The message of kube-apiserver's 403 Status for a denied request, e.g.
/// `secrets is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "secrets" in API group "" in the namespace "ns"`.
pub fn forbidden_message(user: &UserInfo, attrs: &RequestAttributes) -> String {
    let q = go_quote;
    if !attrs.resource_request {
        return format!(
            "forbidden: User {} cannot {} path {}",
            q(&user.username),
            attrs.verb,
            q(&attrs.path)
        );
    }
    let mut resource = attrs.resource.clone();
    if !attrs.subresource.is_empty() {
        resource = format!("{resource}/{}", attrs.subresource);
    }
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {}", q(&attrs.namespace))
    };
    let reason = format!(
        "User {} cannot {} resource {} in API group {} {scope}",
        q(&user.username),
        attrs.verb,
        q(&resource),
        q(&attrs.api_group)
    );
    let qualified = if attrs.api_group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    if qualified.is_empty() {
        format!("forbidden: {reason}")
    } else if attrs.name.is_empty() {
        format!("{qualified} is forbidden: {reason}")
    } else {
        format!("{qualified} {} is forbidden: {reason}", q(&attrs.name))
    }
}

/// The rules `user` holds in `namespace` ("" = cluster-wide only), as a SelfSubjectRulesReview
/// reports them: `(resourceRules, nonResourceRules)` as PolicyRule-shaped JSON.
pub fn rules_for(
    user: &UserInfo,
    namespace: &str,
    rbac: &RbacSnapshot,
) -> (Vec<Value>, Vec<Value>) {
    if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
        return (
            vec![json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})],
            vec![json!({"verbs": ["*"], "nonResourceURLs": ["*"]})],
        );
    }
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for (rule, from_role_binding) in visible_rules(user, namespace, rbac) {
        if rule.get("nonResourceURLs").is_some() {
            if !from_role_binding {
                non_resource_rules.push(json!({
                    "verbs": rule.get("verbs").cloned().unwrap_or(json!([])),
                    "nonResourceURLs": rule["nonResourceURLs"].clone(),
                }));
            }
        } else {
            let mut r = json!({
                "verbs": rule.get("verbs").cloned().unwrap_or(json!([])),
                "apiGroups": rule.get("apiGroups").cloned().unwrap_or(json!([])),
                "resources": rule.get("resources").cloned().unwrap_or(json!([])),
            });
            if let Some(names) = rule.get("resourceNames") {
                r["resourceNames"] = names.clone();
            }
            resource_rules.push(r);
        }
    }
    (resource_rules, non_resource_rules)
}

fn bootstrap_meta(name: &str) -> Value {
    json!({
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": bootstrap_meta(name),
        "rules": rules,
    })
}

fn cluster_role_binding(name: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": bootstrap_meta(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": subjects,
    })
}

/// The bootstrap policy kube-apiserver creates: cluster-admin (bound to system:masters),
/// system:discovery, system:basic-user and system:public-info-viewer (bound to
/// system:authenticated, the last also to system:unauthenticated). Metadata carries only name,
/// labels and annotations; the store fills uid, resourceVersion and creationTimestamp.
pub fn bootstrap_objects() -> Vec<Value> {
    vec![
        cluster_role(
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
        ),
        cluster_role_binding("cluster-admin", &["system:masters"]),
        cluster_role(
            "system:discovery",
            json!([{
                "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                    "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                "verbs": ["get"],
            }]),
        ),
        cluster_role_binding("system:discovery", &["system:authenticated"]),
        cluster_role(
            "system:basic-user",
            json!([
                {"apiGroups": ["authorization.k8s.io"],
                 "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                 "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"],
                 "resources": ["selfsubjectreviews"],
                 "verbs": ["create"]},
            ]),
        ),
        cluster_role_binding("system:basic-user", &["system:authenticated"]),
        cluster_role(
            "system:public-info-viewer",
            json!([{
                "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                "verbs": ["get"],
            }]),
        ),
        cluster_role_binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(ns: &str, name: &str) -> UserInfo {
        UserInfo {
            username: format!("system:serviceaccount:{ns}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        }
    }

    fn req(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> RequestAttributes {
        RequestAttributes {
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
            resource_request: true,
            ..Default::default()
        }
    }

    fn path_req(verb: &str, path: &str) -> RequestAttributes {
        RequestAttributes {
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    fn snapshot_with_bootstrap() -> RbacSnapshot {
        let mut s = RbacSnapshot::default();
        for o in bootstrap_objects() {
            match o["kind"].as_str().unwrap() {
                "ClusterRole" => s.cluster_roles.push(o),
                "ClusterRoleBinding" => s.cluster_role_bindings.push(o),
                _ => unreachable!(),
            }
        }
        s
    }

    /// A reader of cassandraclusters in namespace x, via a Role and a RoleBinding.
    fn reader_snapshot() -> RbacSnapshot {
        let mut s = snapshot_with_bootstrap();
        s.roles.push(json!({
            "metadata": {"name": "cc-reader", "namespace": "x"},
            "rules": [{"apiGroups": ["db.orange.com"], "resources": ["cassandraclusters"], "verbs": ["get", "list", "watch"]}],
        }));
        s.role_bindings.push(json!({
            "metadata": {"name": "cc-reader", "namespace": "x"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cc-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "mc", "namespace": "x"}],
        }));
        s
    }

    #[test]
    fn role_binding_grants_exactly_its_verbs_in_its_namespace() {
        let s = reader_snapshot();
        let u = sa("x", "mc");
        for verb in ["get", "list", "watch"] {
            assert_eq!(
                authorize(
                    &u,
                    &req(verb, "db.orange.com", "cassandraclusters", "x", ""),
                    &s
                ),
                Decision::Allow
            );
        }
        assert_eq!(
            authorize(
                &u,
                &req("create", "db.orange.com", "cassandraclusters", "x", ""),
                &s
            ),
            Decision::Deny
        );
        assert_eq!(
            authorize(
                &u,
                &req("get", "db.orange.com", "cassandraclusters", "y", "a"),
                &s
            ),
            Decision::Deny
        );
        assert_eq!(
            authorize(
                &u,
                &req("list", "db.orange.com", "cassandraclusters", "", ""),
                &s
            ),
            Decision::Deny
        );
        assert_eq!(
            authorize(&u, &req("list", "", "secrets", "x", ""), &s),
            Decision::Deny
        );
        assert_eq!(
            authorize(
                &sa("x", "other"),
                &req("get", "db.orange.com", "cassandraclusters", "x", "a"),
                &s
            ),
            Decision::Deny
        );
    }

    #[test]
    fn system_masters_bypass_rbac_entirely() {
        let admin = UserInfo {
            username: "kubesim:admin".into(),
            groups: vec!["system:masters".into()],
        };
        assert_eq!(
            authorize(
                &admin,
                &req("delete", "", "secrets", "x", "s"),
                &RbacSnapshot::default()
            ),
            Decision::Allow
        );
        assert_eq!(
            authorize(
                &admin,
                &path_req("get", "/anything"),
                &RbacSnapshot::default()
            ),
            Decision::Allow
        );
    }

    #[test]
    fn cluster_role_binding_grants_cluster_wide_and_role_binding_to_cluster_role_only_locally() {
        let mut s = snapshot_with_bootstrap();
        s.cluster_roles.push(json!({
            "metadata": {"name": "secret-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        }));
        s.role_bindings.push(json!({
            "metadata": {"name": "b", "namespace": "x"},
            "roleRef": {"kind": "ClusterRole", "name": "secret-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "mc"}],
        }));
        let u = sa("x", "mc");
        // subject namespace defaults to the binding's namespace
        assert_eq!(
            authorize(&u, &req("get", "", "secrets", "x", "s"), &s),
            Decision::Allow
        );
        assert_eq!(
            authorize(&u, &req("get", "", "secrets", "y", "s"), &s),
            Decision::Deny
        );
        s.cluster_role_bindings.push(json!({
            "metadata": {"name": "c"},
            "roleRef": {"kind": "ClusterRole", "name": "secret-reader"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:x"}],
        }));
        assert_eq!(
            authorize(&u, &req("get", "", "secrets", "y", "s"), &s),
            Decision::Allow
        );
        assert_eq!(
            authorize(&u, &req("get", "", "secrets", "", ""), &s),
            Decision::Allow
        );
    }

    #[test]
    fn service_account_subject_in_cluster_binding_needs_a_namespace() {
        let mut s = RbacSnapshot::default();
        s.cluster_roles.push(json!({"metadata": {"name": "all"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}));
        s.cluster_role_bindings.push(json!({
            "metadata": {"name": "c"}, "roleRef": {"kind": "ClusterRole", "name": "all"},
            "subjects": [{"kind": "ServiceAccount", "name": "mc"}],
        }));
        assert_eq!(
            authorize(&sa("x", "mc"), &req("get", "", "pods", "x", "p"), &s),
            Decision::Deny
        );
        s.cluster_role_bindings[0]["subjects"][0]["namespace"] = json!("x");
        assert_eq!(
            authorize(&sa("x", "mc"), &req("get", "", "pods", "x", "p"), &s),
            Decision::Allow
        );
        let user = UserInfo {
            username: "alice".into(),
            groups: vec![],
        };
        assert_eq!(
            authorize(&user, &req("get", "", "pods", "x", "p"), &s),
            Decision::Deny
        );
        s.cluster_role_bindings[0]["subjects"] = json!([{"kind": "User", "name": "alice"}]);
        assert_eq!(
            authorize(&user, &req("get", "", "pods", "x", "p"), &s),
            Decision::Allow
        );
    }

    #[test]
    fn subresources_need_explicit_or_star_slash_rules() {
        let mut s = RbacSnapshot::default();
        s.cluster_roles
            .push(json!({"metadata": {"name": "r"}, "rules": [
                {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create"]},
                {"apiGroups": ["db.orange.com"], "resources": ["*/status"], "verbs": ["patch"]},
            ]}));
        s.cluster_role_bindings.push(
            json!({"metadata": {"name": "r"}, "roleRef": {"kind": "ClusterRole", "name": "r"},
            "subjects": [{"kind": "User", "name": "u"}]}),
        );
        let u = UserInfo {
            username: "u".into(),
            groups: vec![],
        };
        let mut token = req("create", "", "serviceaccounts", "x", "sa");
        token.subresource = "token".into();
        assert_eq!(authorize(&u, &token, &s), Decision::Deny);
        assert_eq!(
            authorize(&u, &req("create", "", "serviceaccounts", "x", ""), &s),
            Decision::Allow
        );
        let mut status = req("patch", "db.orange.com", "cassandraclusters", "x", "cc");
        status.subresource = "status".into();
        assert_eq!(authorize(&u, &status, &s), Decision::Allow);
        assert_eq!(
            authorize(
                &u,
                &req("patch", "db.orange.com", "cassandraclusters", "x", "cc"),
                &s
            ),
            Decision::Deny
        );
    }

    #[test]
    fn resource_names_restrict_to_named_requests() {
        let mut s = RbacSnapshot::default();
        s.roles.push(json!({"metadata": {"name": "r", "namespace": "x"}, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tok"], "verbs": ["get", "list"]},
        ]}));
        s.role_bindings.push(json!({"metadata": {"name": "r", "namespace": "x"}, "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "mc", "namespace": "x"}]}));
        let u = sa("x", "mc");
        assert_eq!(
            authorize(&u, &req("get", "", "secrets", "x", "tok"), &s),
            Decision::Allow
        );
        assert_eq!(
            authorize(&u, &req("get", "", "secrets", "x", "other"), &s),
            Decision::Deny
        );
        assert_eq!(
            authorize(&u, &req("list", "", "secrets", "x", ""), &s),
            Decision::Deny
        );
    }

    #[test]
    fn bootstrap_policy_lets_any_authenticated_user_discover_and_self_review() {
        let s = snapshot_with_bootstrap();
        let u = sa("x", "nobody");
        for p in [
            "/version",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps/v1",
            "/openapi/v3",
            "/healthz",
        ] {
            assert_eq!(
                authorize(&u, &path_req("get", p), &s),
                Decision::Allow,
                "{p}"
            );
        }
        assert_eq!(
            authorize(&u, &path_req("post", "/version"), &s),
            Decision::Deny
        );
        assert_eq!(
            authorize(&u, &path_req("get", "/metrics"), &s),
            Decision::Deny
        );
        assert_eq!(
            authorize(
                &u,
                &req(
                    "create",
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews",
                    "",
                    ""
                ),
                &s
            ),
            Decision::Allow
        );
        assert_eq!(
            authorize(
                &u,
                &req(
                    "create",
                    "authentication.k8s.io",
                    "selfsubjectreviews",
                    "",
                    ""
                ),
                &s
            ),
            Decision::Allow
        );
        assert_eq!(
            authorize(&u, &req("list", "", "namespaces", "", ""), &s),
            Decision::Deny
        );
        let unauthenticated = UserInfo {
            username: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        };
        assert_eq!(
            authorize(&unauthenticated, &path_req("get", "/version"), &s),
            Decision::Allow
        );
        assert_eq!(
            authorize(&unauthenticated, &path_req("get", "/api"), &s),
            Decision::Deny
        );
    }

    #[test]
    fn role_bindings_never_grant_non_resource_urls() {
        let mut s = RbacSnapshot::default();
        s.cluster_roles.push(json!({"metadata": {"name": "urls"}, "rules": [{"nonResourceURLs": ["*"], "verbs": ["*"]}]}));
        s.role_bindings.push(json!({"metadata": {"name": "b", "namespace": "x"}, "roleRef": {"kind": "ClusterRole", "name": "urls"},
            "subjects": [{"kind": "User", "name": "u"}]}));
        let u = UserInfo {
            username: "u".into(),
            groups: vec![],
        };
        let mut a = path_req("get", "/version");
        a.namespace = "x".into();
        assert_eq!(authorize(&u, &a, &s), Decision::Deny);
    }

    #[test]
    fn forbidden_messages_have_kubes_exact_shapes() {
        let u = sa("ns", "sa");
        assert_eq!(
            forbidden_message(&u, &req("list", "", "secrets", "ns", "")),
            "secrets is forbidden: User \"system:serviceaccount:ns:sa\" cannot list resource \"secrets\" in API group \"\" in the namespace \"ns\""
        );
        assert_eq!(
            forbidden_message(&u, &req("get", "", "secrets", "ns", "foo")),
            "secrets \"foo\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot get resource \"secrets\" in API group \"\" in the namespace \"ns\""
        );
        assert_eq!(
            forbidden_message(&u, &req("list", "", "namespaces", "", "")),
            "namespaces is forbidden: User \"system:serviceaccount:ns:sa\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
        assert_eq!(
            forbidden_message(
                &u,
                &req("create", "db.orange.com", "cassandraclusters", "ns", "")
            ),
            "cassandraclusters.db.orange.com is forbidden: User \"system:serviceaccount:ns:sa\" cannot create resource \"cassandraclusters\" in API group \"db.orange.com\" in the namespace \"ns\""
        );
        let mut token = req("create", "", "serviceaccounts", "ns", "sa");
        token.subresource = "token".into();
        assert_eq!(
            forbidden_message(&u, &token),
            "serviceaccounts \"sa\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"ns\""
        );
        let x = UserInfo {
            username: "x".into(),
            groups: vec![],
        };
        assert_eq!(
            forbidden_message(&x, &path_req("get", "/foo")),
            "forbidden: User \"x\" cannot get path \"/foo\""
        );
    }

    #[test]
    fn rules_review_lists_what_a_user_holds_in_a_namespace() {
        let s = reader_snapshot();
        let (res, non) = rules_for(&sa("x", "mc"), "x", &s);
        assert!(
            res.iter()
                .any(|r| r["resources"] == json!(["cassandraclusters"]))
        );
        assert!(
            res.iter().any(|r| r["resources"]
                == json!(["selfsubjectaccessreviews", "selfsubjectrulesreviews"]))
        );
        assert!(non.iter().any(|r| {
            r["nonResourceURLs"]
                .as_array()
                .unwrap()
                .contains(&json!("/version"))
        }));
        let (res_y, _) = rules_for(&sa("x", "mc"), "y", &s);
        assert!(
            !res_y
                .iter()
                .any(|r| r["resources"] == json!(["cassandraclusters"]))
        );
    }
}
