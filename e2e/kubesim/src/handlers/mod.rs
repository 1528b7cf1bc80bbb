//! HTTP front of a simulated cluster: authentication, impersonation, faults, RBAC, non-resource paths (discovery, openapi, health), then dispatch of resource requests; every request audited.
mod bookmarks;
mod collection;
mod patch;
mod proto;
mod request;
mod resource;
mod scale;
mod virtual_objects;

use std::sync::Arc;

use http::{HeaderMap, Method, Request, Response, header};
use hyper::body::Incoming;

use crate::audit::AuditEntry;
use crate::auth;
use crate::cluster::ClusterInner;
use crate::errors::ApiError;
use crate::http::{Body, bytes_response, error_response, json_response};
use crate::rbac::{self, Decision, RequestAttributes, UserInfo};
use crate::{discovery, openapi};

use request::{Audit, parse_path, parse_query, selected_name, verb_of};
use resource::resource;

pub async fn handle(c: Arc<ClusterInner>, req: Request<Incoming>) -> Response<Body> {
    use futures::FutureExt;
    let ticket = c.audit.begin();
    let mut a = Audit::default();
    let routed = std::panic::AssertUnwindSafe(route(&c, req, &mut a))
        .catch_unwind()
        .await;
    let resp = match routed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&ApiError::internal(format!(
            "kubesim ({}) failed while handling the request",
            c.name
        ))),
    };
    let code = resp.status().as_u16();
    if let Some(run) = c.hooks.take(&a.verb, &a.resource, &a.name, code) {
        run().await;
    }
    c.audit.record_for(
        ticket,
        AuditEntry {
            seq: 0,
            time_us: 0,
            cluster: c.name.clone(),
            user: a.user,
            verb: a.verb,
            group: a.group,
            resource: a.resource,
            subresource: a.subresource,
            namespace: a.namespace,
            name: a.name,
            code,
            object: if code < 300 { a.object } else { None },
        },
    );
    resp
}

async fn route(
    c: &Arc<ClusterInner>,
    req: Request<Incoming>,
    a: &mut Audit,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let q = parse_query(&parts.uri);
    let parsed = parse_path(&path, &q);
    match &parsed {
        Some(Ok(r)) => {
            a.verb = verb_of(&parts.method, r).into();
            a.group = r.group.clone();
            a.resource = r.resource.clone();
            a.subresource = r.sub.clone().unwrap_or_default();
            a.namespace = r.namespace.clone().unwrap_or_default();
            a.name = r
                .name
                .clone()
                .or_else(|| selected_name(&a.verb, &q))
                .unwrap_or_default();
        }
        _ => {
            a.verb = parts.method.as_str().to_ascii_lowercase();
            a.resource = path.clone();
        }
    }
    let token = auth::bearer(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let user = {
        let st = c.store.lock();
        token
            .ok_or_else(ApiError::unauthorized)
            .and_then(|t| auth::authenticate(&st, t))?
    };
    let user = impersonate(c, user, &parts.headers)?;
    a.user = user.username.clone();
    let lat = c.faults.latency();
    if !lat.is_zero() {
        tokio::time::sleep(lat).await;
    }
    if let Some(code) = c.faults.pick_error() {
        return Err(ApiError::injected(code));
    }
    if let Some(code) = c.hooks.refusal(&a.resource) {
        return Err(ApiError::injected(code));
    }
    let admin = user.groups.iter().any(|g| g == "system:masters");
    match parsed {
        None => {
            if !admin {
                authorize(
                    c,
                    &user,
                    &RequestAttributes {
                        verb: a.verb.clone(),
                        path: path.clone(),
                        resource_request: false,
                        ..Default::default()
                    },
                )?;
            }
            non_resource(c, &parts.method, &path, &parts.headers)
        }
        Some(Err(e)) => Err(e),
        Some(Ok(r)) => {
            if !admin {
                let namespace = if r.resource == "namespaces" && r.group.is_empty() {
                    r.name.clone().unwrap_or_default()
                } else {
                    r.namespace.clone().unwrap_or_default()
                };
                authorize(
                    c,
                    &user,
                    &RequestAttributes {
                        verb: a.verb.clone(),
                        api_group: r.group.clone(),
                        resource: r.resource.clone(),
                        subresource: r.sub.clone().unwrap_or_default(),
                        namespace,
                        name: a.name.clone(),
                        path: path.clone(),
                        resource_request: true,
                    },
                )?;
            }
            resource(c, parts, body, q, r, &user, a).await
        }
    }
}

/// `Impersonate-User` / `Impersonate-Group` (kubectl --as / --as-group): the caller needs the
/// `impersonate` verb on users (serviceaccounts for system:serviceaccount:NS:NAME) and groups; the
/// request then runs as that identity, with the groups kube-apiserver's impersonation filter adds.
fn impersonate(
    c: &ClusterInner,
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let (as_user, as_groups) = (values("impersonate-user"), values("impersonate-group"));
    let Some(username) = as_user.first().cloned() else {
        if as_groups.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::bad_request(format!(
            "requested {as_groups:?} without impersonating a user"
        )));
    };
    let check = |resource: &str, namespace: &str, name: &str| {
        authorize(
            c,
            &user,
            &RequestAttributes {
                verb: "impersonate".into(),
                resource: resource.into(),
                namespace: namespace.into(),
                name: name.into(),
                resource_request: true,
                ..Default::default()
            },
        )
    };
    let sa = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'));
    match sa {
        Some((ns, name)) => check("serviceaccounts", ns, name)?,
        None => check("users", "", &username)?,
    }
    for g in &as_groups {
        check("groups", "", g)?;
    }
    let mut groups = as_groups;
    if let Some((ns, _)) = sa
        && groups.is_empty()
    {
        groups = vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ];
    }
    if username != "system:anonymous" && !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    Ok(UserInfo { username, groups })
}

fn authorize(c: &ClusterInner, user: &UserInfo, attrs: &RequestAttributes) -> Result<(), ApiError> {
    let snapshot = c.store.lock().rbac.clone();
    match rbac::authorize(user, attrs, &snapshot) {
        Decision::Allow => Ok(()),
        Decision::Deny => Err(ApiError::forbidden(
            rbac::forbidden_message(user, attrs),
            &attrs.api_group,
            &attrs.resource,
            &attrs.name,
        )),
    }
}

fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|acc| {
            acc.split(',').any(|mt| {
                let mt = mt.replace(' ', "");
                mt.contains("as=APIGroupDiscoveryList")
                    && mt.contains("v=v2")
                    && !mt.contains("v=v2beta1")
            })
        })
}

fn non_resource(
    c: &ClusterInner,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    if *method != Method::GET && *method != Method::HEAD {
        return Err(ApiError::method_not_allowed());
    }
    let reg = c.store.registry();
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Ok(json_response(200, &discovery::version())),
        ["healthz" | "livez" | "readyz"] => {
            Ok(bytes_response(200, "text/plain; charset=utf-8", "ok"))
        }
        ["api"] if wants_aggregated(headers) => Ok(bytes_response(
            200,
            discovery::AGGREGATED_CT,
            serde_json::to_vec(&discovery::aggregated(&reg, true)).unwrap_or_default(),
        )),
        ["api"] => Ok(json_response(
            200,
            &discovery::api_versions(&c.addr.to_string()),
        )),
        ["apis"] if wants_aggregated(headers) => Ok(bytes_response(
            200,
            discovery::AGGREGATED_CT,
            serde_json::to_vec(&discovery::aggregated(&reg, false)).unwrap_or_default(),
        )),
        ["apis"] => Ok(json_response(200, &discovery::api_group_list(&reg))),
        ["api", v] => discovery::resource_list(&reg, "", v)
            .map(|d| json_response(200, &d))
            .ok_or_else(ApiError::no_route),
        ["apis", g] => discovery::api_group(&reg, g)
            .map(|d| json_response(200, &d))
            .ok_or_else(ApiError::no_route),
        ["apis", g, v] => discovery::resource_list(&reg, g, v)
            .map(|d| json_response(200, &d))
            .ok_or_else(ApiError::no_route),
        ["openapi", "v2"] => Ok(openapi::v2(headers)),
        ["openapi", ..] => openapi::serve(&reg, path).ok_or_else(ApiError::no_route),
        _ => Err(ApiError::no_route()),
    }
}
