//! Talking to a site to find out what works: error classification, access reviews, discovery.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

/// What kind of failure a request met, so messages can say what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Connection refused, DNS, timeout: the API server was not reached.
    Unreachable,
    /// TLS handshake failed: the CA does not match the server's certificate.
    Tls,
    /// 401: the token (or client certificate) was not accepted.
    Unauthorized,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404.
    NotFound,
    /// Anything else.
    Other,
}

/// A classified failure; `message` is safe to print (no token).
#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Classifies a kube client error by walking its source chain.
pub fn classify(err: &kube::Error) -> Failure {
    if let kube::Error::Api(s) = err {
        let kind = match s.code {
            401 => FailureKind::Unauthorized,
            403 => FailureKind::Forbidden,
            404 => FailureKind::NotFound,
            _ => FailureKind::Other,
        };
        let message = if s.message.is_empty() {
            format!("HTTP {} {}", s.code, s.reason)
        } else {
            format!("{} (HTTP {})", s.message, s.code)
        };
        return Failure { kind, message };
    }
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        chain.push(e.to_string());
        cur = e.source();
    }
    let deepest = chain.last().cloned().unwrap_or_default();
    let all = chain.join(": ").to_lowercase();
    let kind = if all.contains("certificate")
        || all.contains("unknownissuer")
        || all.contains("invalid peer")
        || all.contains("tls")
        || all.contains("handshake")
    {
        FailureKind::Tls
    } else if all.contains("connection refused")
        || all.contains("connect")
        || all.contains("timed out")
        || all.contains("dns")
        || all.contains("unreachable")
        || all.contains("connection reset")
    {
        FailureKind::Unreachable
    } else {
        FailureKind::Other
    };
    Failure {
        kind,
        message: deepest,
    }
}

/// One permission the controller needs on a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
}

impl Permission {
    const fn new(verb: &'static str, group: &'static str, resource: &'static str) -> Self {
        Self {
            verb,
            group,
            resource,
            subresource: "",
        }
    }
    const fn sub(
        verb: &'static str,
        group: &'static str,
        resource: &'static str,
        sub: &'static str,
    ) -> Self {
        Self {
            verb,
            group,
            resource,
            subresource: sub,
        }
    }
    /// `verb resource[/sub].group`, as `kubectl auth can-i` spells it.
    pub fn describe(&self) -> String {
        let mut r = self.resource.to_string();
        if !self.group.is_empty() {
            r = format!("{r}.{}", self.group);
        }
        if !self.subresource.is_empty() {
            r = format!("{r} --subresource={}", self.subresource);
        }
        format!("{} {r}", self.verb)
    }
}

/// Verbs the controller uses on CassandraClusters in every site: it reads them through a
/// watch (get, list, watch), writes them with server-side apply (patch, and create since an
/// apply may create), and deletes them only for `deleteCassandraCluster: true`. It never
/// uses update (PUT), so that verb is not required.
pub const SITE_PERMISSIONS: &[Permission] = &[
    Permission::new("get", "db.orange.com", "cassandraclusters"),
    Permission::new("list", "db.orange.com", "cassandraclusters"),
    Permission::new("watch", "db.orange.com", "cassandraclusters"),
    Permission::new("create", "db.orange.com", "cassandraclusters"),
    Permission::new("patch", "db.orange.com", "cassandraclusters"),
    Permission::new("delete", "db.orange.com", "cassandraclusters"),
];

/// Extra verbs the controller needs in its own (local) namespace: MultiCasskops (watched;
/// finalizer added and removed by patch), their status (server-side apply) and the Events it
/// records. Matches the chart's Role. The credential Secrets are not here: the controller
/// reads each one by name (a list and watch pinned to it, which RBAC `resourceNames` can
/// grant), so `check` proves that access by reading each Secret the same way.
pub const LOCAL_PERMISSIONS: &[Permission] = &[
    Permission::new("get", "db.orange.com", "multicasskops"),
    Permission::new("list", "db.orange.com", "multicasskops"),
    Permission::new("watch", "db.orange.com", "multicasskops"),
    Permission::new("patch", "db.orange.com", "multicasskops"),
    Permission::sub("patch", "db.orange.com", "multicasskops", "status"),
    Permission::new("create", "events.k8s.io", "events"),
    Permission::new("patch", "events.k8s.io", "events"),
];

/// Asks the site whether the caller may do `perm` in `namespace`.
/// `Ok(None)` when allowed; `Ok(Some(reason))` when denied.
pub async fn can_i(
    client: &kube::Client,
    namespace: &str,
    perm: &Permission,
) -> Result<Option<String>, Failure> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some(perm.verb.to_string()),
                group: Some(perm.group.to_string()),
                resource: Some(perm.resource.to_string()),
                subresource: (!perm.subresource.is_empty()).then(|| perm.subresource.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| classify(&e))?;
    let status = answer.status.unwrap_or_default();
    if status.allowed {
        Ok(None)
    } else {
        let why = status
            .reason
            .filter(|r| !r.is_empty())
            .or(status.evaluation_error.filter(|r| !r.is_empty()))
            .unwrap_or_else(|| "no RBAC rule allows it".to_string());
        Ok(Some(why))
    }
}

/// Whether `group/version` serves `plural` (discovery). `Ok(false)` when the group or the
/// resource is not served.
pub async fn serves(
    client: &kube::Client,
    group_version: &str,
    plural: &str,
) -> Result<bool, Failure> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(e) => {
            let f = classify(&e);
            if f.kind == FailureKind::NotFound {
                Ok(false)
            } else {
                Err(f)
            }
        }
    }
}

/// Whether a namespace exists. `Ok(None)` when the caller may not read it (cannot tell).
pub async fn namespace_exists(
    client: &kube::Client,
    namespace: &str,
) -> Result<Option<bool>, Failure> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.get(namespace).await {
        Ok(_) => Ok(Some(true)),
        Err(e) => {
            let f = classify(&e);
            match f.kind {
                FailureKind::NotFound => Ok(Some(false)),
                FailureKind::Forbidden => Ok(None),
                _ => Err(f),
            }
        }
    }
}

/// The cluster's identity: the UID of its `kube-system` namespace (`None` if unreadable).
pub async fn cluster_uid(client: &kube::Client) -> Option<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.get("kube-system").await.ok()?.metadata.uid
}

/// Reaches the API server (`/version`): proves the network path and TLS trust.
pub async fn reach(client: &kube::Client) -> Result<String, Failure> {
    client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .map_err(|e| classify(&e))
}

/// What to do about a failure kind, for `server` of `cluster`.
pub fn fix_for(kind: FailureKind, cluster: &str, server: &str) -> String {
    match kind {
        FailureKind::Unreachable => format!(
            "check that {server} is the right address of {cluster} and reachable from here (network, firewall, --override-src-ip/--override-src-port)"
        ),
        FailureKind::Tls => format!(
            "the CA in the credentials does not match the certificate served by {server}: export or register {cluster} again"
        ),
        FailureKind::Unauthorized => format!(
            "the token was rejected by {cluster} (expired, revoked or from another cluster): run multi-casskop register again to refresh it"
        ),
        FailureKind::Forbidden => format!(
            "the identity lacks RBAC rights on {cluster}: run multi-casskop register (it creates the Role and RoleBinding) or ask an admin"
        ),
        FailureKind::NotFound | FailureKind::Other => {
            format!("see the message above ({cluster} at {server})")
        }
    }
}
