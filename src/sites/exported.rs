//! Exported service-account credentials: tokens, the kubemcsa/k8ssandra Secret, and the source RBAC.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use super::probe::{Failure, FailureKind, classify};
use crate::duration::{self, DurationError};

/// Label on token Secrets we create: the name the credentials are exported as.
pub const EXPORTED_AS_LABEL: &str = "multicasskop.db.orange.com/exported-as";
/// Label on objects `register` writes (Secrets, ClientConfigs, Roles, RoleBindings).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "multi-casskop";
/// How long we wait for the token controller to fill a token Secret.
pub const TOKEN_WAIT: Duration = Duration::from_secs(30);

/// An object that cannot be rendered for `kubectl apply`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The object does not serialise to JSON.
    #[error("{0}")]
    Json(String),
    /// The kubeconfig of an exported Secret does not serialise to YAML.
    #[error("cannot render kubeconfig YAML: {0}")]
    KubeconfigYaml(String),
    /// The object does not serialise to YAML.
    #[error("cannot render YAML: {0}")]
    Yaml(String),
}

/// A token for a service account, with the CA the cluster published next to it (if any).
pub struct IssuedToken {
    pub token: String,
    pub ca_pem: Option<Vec<u8>>,
    /// Token Secret holding it (None for a TokenRequest token).
    pub secret_name: Option<String>,
    /// Expiry (TokenRequest only).
    pub expires: Option<String>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("secret_name", &self.secret_name)
            .field("expires", &self.expires)
            .finish()
    }
}

/// Kubernetes refuses tokens valid less than this.
pub const MIN_TOKEN_TTL: Duration = Duration::from_secs(600);

/// A `--token-ttl` that cannot be used.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TokenTtlError {
    /// Not a duration at all.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// Shorter than [`MIN_TOKEN_TTL`].
    #[error("token TTL {text:?} is too short: Kubernetes requires at least 10m")]
    TooShort {
        /// The TTL as given.
        text: String,
    },
}

/// Parses a token TTL (`24h`, `30m`, `7d`, `1h30m`): a duration of at least [`MIN_TOKEN_TTL`].
pub fn parse_token_ttl(text: &str) -> Result<Duration, TokenTtlError> {
    let ttl = duration::parse(text)?;
    if ttl < MIN_TOKEN_TTL {
        return Err(TokenTtlError::TooShort {
            text: text.trim().to_string(),
        });
    }
    Ok(ttl)
}

/// The lifetime to ask a bound token for: `ttl`, else 24 h; `None` with `legacy` (a
/// never-expiring token Secret instead).
pub fn token_lifetime(ttl: Option<Duration>, legacy: bool) -> Option<Duration> {
    (!legacy).then(|| ttl.unwrap_or(super::token_expiry::DEFAULT_TOKEN_LIFETIME))
}

/// A bound token from the TokenRequest API.
pub async fn request_token(
    client: &kube::Client,
    namespace: &str,
    sa: &str,
    ttl: Duration,
) -> Result<IssuedToken, Failure> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let req = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(ttl.as_secs() as i64),
            audiences: Vec::new(),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create_token_request(sa, &PostParams::default(), &req)
        .await
        .map_err(|e| classify(&e))?;
    let status = answer.status.ok_or_else(|| Failure {
        kind: FailureKind::Other,
        message: "the TokenRequest answer has no status".to_string(),
    })?;
    Ok(IssuedToken {
        token: status.token,
        ca_pem: None,
        secret_name: None,
        expires: Some(status.expiration_timestamp.0.to_string()),
    })
}

/// Token Secrets of `sa` labelled as exported as `exported_as`, newest first.
pub async fn exported_token_secrets(
    client: &kube::Client,
    namespace: &str,
    sa: &str,
    exported_as: &str,
) -> Result<Vec<Secret>, Failure> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().labels(&format!("{EXPORTED_AS_LABEL}={exported_as}"));
    let list = api.list(&lp).await.map_err(|e| classify(&e))?;
    let mut items: Vec<Secret> = list
        .items
        .into_iter()
        .filter(|s| s.type_.as_deref() == Some("kubernetes.io/service-account-token"))
        .filter(|s| {
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .map(String::as_str)
                == Some(sa)
        })
        .collect();
    items.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
            .then(b.metadata.name.cmp(&a.metadata.name))
    });
    Ok(items)
}

fn token_of(secret: &Secret) -> Option<IssuedToken> {
    let data = secret.data.as_ref()?;
    let token = data
        .get("token")
        .and_then(|t| String::from_utf8(t.0.clone()).ok())?;
    if token.trim().is_empty() {
        return None;
    }
    Some(IssuedToken {
        token: token.trim().to_string(),
        ca_pem: data.get("ca.crt").map(|c| c.0.clone()),
        secret_name: secret.metadata.name.clone(),
        expires: None,
    })
}

/// Name of a new token Secret: unique per call so a rotation never overwrites the live one.
pub fn new_token_secret_name(sa: &str, exported_as: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let suffix = format!("{:x}", (nanos as u64) & 0xff_ffff);
    let mut base = format!("{sa}-{exported_as}-token");
    base.truncate(240);
    format!("{base}-{suffix}")
}

/// The token Secret manifest (filled by the cluster's token controller).
pub fn token_secret_manifest(name: &str, namespace: &str, sa: &str, exported_as: &str) -> Secret {
    let mut labels = BTreeMap::new();
    labels.insert(EXPORTED_AS_LABEL.to_string(), exported_as.to_string());
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string());
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "kubernetes.io/service-account.name".to_string(),
        sa.to_string(),
    );
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        type_: Some("kubernetes.io/service-account-token".to_string()),
        ..Default::default()
    }
}

/// Creates a token Secret for `sa` and waits until the token controller filled it.
pub async fn create_token_secret(
    client: &kube::Client,
    namespace: &str,
    sa: &str,
    exported_as: &str,
) -> Result<IssuedToken, Failure> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let name = new_token_secret_name(sa, exported_as);
    api.create(
        &PostParams::default(),
        &token_secret_manifest(&name, namespace, sa, exported_as),
    )
    .await
    .map_err(|e| classify(&e))?;
    let deadline = tokio::time::Instant::now() + TOKEN_WAIT;
    loop {
        let s = api.get(&name).await.map_err(|e| classify(&e))?;
        if let Some(t) = token_of(&s) {
            return Ok(t);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure {
                kind: FailureKind::Other,
                message: format!(
                    "token secret {namespace}/{name} was not filled by the token controller within {} s (is kube-controller-manager running?); drop --legacy-token to get a TokenRequest token instead",
                    TOKEN_WAIT.as_secs()
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reuses the newest filled token Secret exported as `exported_as`, else creates one.
pub async fn find_or_create_token_secret(
    client: &kube::Client,
    namespace: &str,
    sa: &str,
    exported_as: &str,
) -> Result<IssuedToken, Failure> {
    for s in exported_token_secrets(client, namespace, sa, exported_as).await? {
        if let Some(t) = token_of(&s) {
            return Ok(t);
        }
    }
    create_token_secret(client, namespace, sa, exported_as).await
}

/// Deletes token Secrets exported as `exported_as` other than `keep` (revokes old tokens).
pub async fn delete_old_token_secrets(
    client: &kube::Client,
    namespace: &str,
    sa: &str,
    exported_as: &str,
    keep: &str,
) -> Result<Vec<String>, Failure> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut deleted = Vec::new();
    for s in exported_token_secrets(client, namespace, sa, exported_as).await? {
        let Some(name) = s.metadata.name else {
            continue;
        };
        if name == keep {
            continue;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => deleted.push(name),
            Err(e) => {
                let f = classify(&e);
                if f.kind != FailureKind::NotFound {
                    return Err(f);
                }
            }
        }
    }
    Ok(deleted)
}

/// The cluster CA as published in `kube-root-ca.crt` in `namespace` (every namespace has it).
pub async fn root_ca_from_configmap(client: &kube::Client, namespace: &str) -> Option<Vec<u8>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = api.get("kube-root-ca.crt").await.ok()?;
    cm.data?.get("ca.crt").map(|s| s.clone().into_bytes())
}

/// The exported Secret `name`: kubemcsa keys (`server`, `ca.crt`, `namespace`, `token`,
/// `config`) and k8ssandra's `kubeconfig` (same kubeconfig as `config`).
pub fn exported_secret(
    name: &str,
    namespace: Option<&str>,
    server: &str,
    ca_pem: &[u8],
    token: &str,
    token_namespace: &str,
) -> Result<Secret, RenderError> {
    let kubeconfig = kubeconfig_yaml(name, server, ca_pem, token, token_namespace)?;
    let mut data = BTreeMap::new();
    let b = |v: &[u8]| k8s_openapi::ByteString(v.to_vec());
    data.insert("server".to_string(), b(server.as_bytes()));
    data.insert("ca.crt".to_string(), b(ca_pem));
    data.insert("namespace".to_string(), b(token_namespace.as_bytes()));
    data.insert("token".to_string(), b(token.as_bytes()));
    data.insert("config".to_string(), b(kubeconfig.as_bytes()));
    data.insert("kubeconfig".to_string(), b(kubeconfig.as_bytes()));
    let mut labels = BTreeMap::new();
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string());
    Ok(Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: namespace.map(str::to_string),
            labels: Some(labels),
            ..Default::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(data),
        ..Default::default()
    })
}

/// A kubeconfig whose cluster, user and context are all named `name`.
pub fn kubeconfig_yaml(
    name: &str,
    server: &str,
    ca_pem: &[u8],
    token: &str,
    namespace: &str,
) -> Result<String, RenderError> {
    let v = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server,
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        }}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    });
    serde_saphyr::to_string(&v).map_err(|e| RenderError::KubeconfigYaml(e.to_string()))
}

/// A DNS-1123 label made from a context name (`gke_proj_zone_c1` -> `gke-proj-zone-c1`).
pub fn dns_safe(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_string();
    out.truncate(63);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "remote".to_string()
    } else {
        out
    }
}

/// Renders an object as a YAML document for `kubectl apply -f -`.
pub fn to_yaml<T: serde::Serialize>(obj: &T) -> Result<String, RenderError> {
    let v = serde_json::to_value(obj).map_err(|e| RenderError::Json(e.to_string()))?;
    serde_saphyr::to_string(&v).map_err(|e| RenderError::Yaml(e.to_string()))
}

/// The Role the controller needs on a site, in `namespace` (least privilege, each rule
/// explained in `register --help`).
pub fn site_role(name: &str, namespace: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "rules": [
            // CassandraClusters: watched (get/list/watch), written by server-side apply
            // (patch, and create: an apply may create), deleted only for deleteCassandraCluster: true.
            {"apiGroups": ["db.orange.com"], "resources": ["cassandraclusters"],
             "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
            // Read-only, this namespace only: lets `multi-casskop check` confirm it exists.
            {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [namespace], "verbs": ["get"]},
            // The controller renews its own bound token before it expires (kube-apiserver
            // authorizes a TokenRequest as create on serviceaccounts/token named after the
            // service account): this one service account only.
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": [name], "verbs": ["create"]},
        ],
    })
}

/// Binds [`site_role`] to the service account.
pub fn site_role_binding(name: &str, namespace: &str, sa: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_kubectl() {
        assert_eq!(parse_token_ttl("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_token_ttl("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_token_ttl("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(
            parse_token_ttl("5m")
                .unwrap_err()
                .to_string()
                .contains("at least 10m")
        );
        assert!(
            parse_token_ttl("24")
                .unwrap_err()
                .to_string()
                .contains("unit is missing")
        );
        assert!(
            parse_token_ttl("2w")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
    }

    #[test]
    fn destination_names_are_dns_labels() {
        assert_eq!(
            dns_safe("gke_my-proj_europe-west1_Cluster2"),
            "gke-my-proj-europe-west1-cluster2"
        );
        assert_eq!(
            dns_safe("arn:aws:eks:eu-west-1:123:cluster/dc2"),
            "arn-aws-eks-eu-west-1-123-cluster-dc2"
        );
        assert_eq!(dns_safe("k8s-cluster2"), "k8s-cluster2");
        assert_eq!(dns_safe("___"), "remote");
    }

    #[test]
    fn exported_secret_has_kubemcsa_and_k8ssandra_keys() {
        let s = exported_secret(
            "k8s-cluster2",
            None,
            "https://10.0.0.2:6443",
            b"PEM",
            "tok",
            "cassandra",
        )
        .unwrap();
        let data = s.data.unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "ca.crt",
                "config",
                "kubeconfig",
                "namespace",
                "server",
                "token"
            ]
        );
        assert_eq!(data["config"], data["kubeconfig"]);
        let kc =
            kube::config::Kubeconfig::from_yaml(std::str::from_utf8(&data["config"].0).unwrap())
                .unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("k8s-cluster2"));
        assert_eq!(kc.clusters[0].name, "k8s-cluster2");
        assert_eq!(kc.auth_infos[0].name, "k8s-cluster2");
        let ctx = kc.contexts[0].context.clone().unwrap();
        assert_eq!(ctx.namespace.as_deref(), Some("cassandra"));
        assert_eq!(ctx.cluster, "k8s-cluster2");
    }
}
