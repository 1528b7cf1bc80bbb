//! Create-only virtual objects answered without storing anything: access reviews (SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview) and ServiceAccount TokenRequests.
use serde_json::{Value, json};

use crate::auth;
use crate::cluster::ClusterInner;
use crate::errors::ApiError;
use crate::objects;
use crate::rbac::{self, Decision, RequestAttributes, UserInfo};
use crate::resources::{ResKey, ResourceDef};
use crate::store::{TokenEntry, TokenKind};

pub(super) fn virtual_create(
    c: &ClusterInner,
    def: &ResourceDef,
    version: &str,
    mut obj: Value,
    user: &UserInfo,
) -> Result<Value, ApiError> {
    objects::check_type_meta(def, version, &mut obj)?;
    match def.kind.as_str() {
        "SelfSubjectAccessReview" => {
            let spec = &obj["spec"];
            let attrs = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
                let s = |k: &str| ra[k].as_str().unwrap_or("").to_string();
                RequestAttributes {
                    verb: s("verb"),
                    api_group: s("group"),
                    resource: s("resource"),
                    subresource: s("subresource"),
                    namespace: s("namespace"),
                    name: s("name"),
                    path: String::new(),
                    resource_request: true,
                }
            } else if let Some(na) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
                RequestAttributes {
                    verb: na["verb"].as_str().unwrap_or("").into(),
                    path: na["path"].as_str().unwrap_or("").into(),
                    resource_request: false,
                    ..Default::default()
                }
            } else {
                return Err(ApiError::invalid(
                    "authorization.k8s.io",
                    "SelfSubjectAccessReview",
                    "",
                    "spec.resourceAttributes",
                    "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
                ));
            };
            let snapshot = c.store.lock().rbac.clone();
            let allowed = rbac::authorize(user, &attrs, &snapshot) == Decision::Allow;
            obj["metadata"]["creationTimestamp"] = Value::Null;
            obj["status"] = if allowed {
                json!({"allowed": true})
            } else {
                json!({"allowed": false})
            };
            Ok(obj)
        }
        "SelfSubjectRulesReview" => {
            // `kubectl auth can-i --list`: the caller's rules in spec.namespace.
            let ns = obj["spec"]["namespace"].as_str().unwrap_or("").to_string();
            let snapshot = c.store.lock().rbac.clone();
            let (resource_rules, non_resource_rules) = rbac::rules_for(user, &ns, &snapshot);
            obj["metadata"]["creationTimestamp"] = Value::Null;
            obj["status"] = json!({
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": false,
            });
            Ok(obj)
        }
        "SelfSubjectReview" => {
            obj["metadata"]["creationTimestamp"] = Value::Null;
            obj["status"] = json!({"userInfo": {"username": user.username, "groups": user.groups}});
            Ok(obj)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

pub(super) fn token_request(
    c: &ClusterInner,
    ns: &str,
    sa: &str,
    body: Value,
    dry: bool,
) -> Result<Value, ApiError> {
    let secs = match &body["spec"]["expirationSeconds"] {
        Value::Null => 3600,
        v => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    if secs < 600 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            sa,
            "spec.expirationSeconds",
            &format!(
                "spec.expirationSeconds: Invalid value: {secs}: may not specify a duration less than 10 minutes"
            ),
        ));
    }
    if secs > 1 << 32 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            sa,
            "spec.expirationSeconds",
            &format!(
                "spec.expirationSeconds: Invalid value: {secs}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let mut st = c.store.lock();
    let sa_obj = st
        .get(
            &ResKey {
                group: String::new(),
                plural: "serviceaccounts".into(),
            },
            ns,
            sa,
        )
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", sa))?;
    // kube-apiserver shortens (never refuses) a request longer than
    // --service-account-max-token-expiration; the answer says what was granted.
    let secs = match st.max_token_expiration {
        Some(cap) => secs.min((cap.as_secs() as i64).max(1)),
        None => secs,
    };
    let audiences = body["spec"]["audiences"]
        .as_array()
        .filter(|a| !a.is_empty())
        .cloned()
        .unwrap_or_else(|| vec![json!("https://kubernetes.default.svc.cluster.local")]);
    let iat = auth::now_unix();
    let expires = iat + secs;
    let sa_uid = auth::sa_uid(&sa_obj);
    let token = auth::bound_token(ns, sa, &sa_uid, &audiences, iat, expires);
    if !dry {
        st.tokens.insert(
            token.clone(),
            TokenEntry {
                user: auth::sa_user(ns, sa),
                kind: TokenKind::Request {
                    namespace: ns.into(),
                    sa: sa.into(),
                    sa_uid,
                },
                expires: Some(expires),
            },
        );
    }
    let exp = jiff::Timestamp::from_second(expires)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    Ok(json!({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": sa, "namespace": ns, "creationTimestamp": objects::now_rfc3339()},
        "spec": {"audiences": audiences, "expirationSeconds": secs, "boundObjectRef": body["spec"]["boundObjectRef"]},
        "status": {"token": token, "expirationTimestamp": exp},
    }))
}
