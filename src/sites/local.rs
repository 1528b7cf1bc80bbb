//! The local (control-plane) cluster: its credentials and the namespace to work in, found the same way by `run`, `check`, `status` and `ring`.

use std::path::Path;

use super::config::RegistryConfig;
use super::credentials::CredentialSource;
use super::credentials::{
    CredentialError, Credentials, read_local_kubeconfig, require_local_context,
};

/// Default location of the in-cluster namespace file.
pub const IN_CLUSTER_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// True when running in a pod with a service account (in-cluster config available).
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        && Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()
}

/// The local site's credentials: `--kubeconfig`/`--context` when given, else in-cluster when in
/// a pod, else the current context of the local kubeconfig.
pub async fn credentials(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Credentials, CredentialError> {
    if kubeconfig.is_none() && context.is_none() && in_cluster() {
        let config = kube::Config::incluster().map_err(|e| CredentialError::InClusterUnusable {
            reason: e.to_string(),
        })?;
        let ns = config.default_namespace.clone();
        return Ok(Credentials {
            config,
            default_namespace: Some(ns),
            source: CredentialSource::InCluster,
            fingerprint: 0,
        });
    }
    require_local_context(kubeconfig, context).await
}

/// The namespace to work in: `flag`, else `$WATCH_NAMESPACE`, else the in-cluster namespace file,
/// else the namespace of the kubeconfig context (`context` or current), else `default`.
pub fn resolve_namespace(
    flag: Option<&str>,
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> String {
    resolve_namespace_from(
        flag,
        std::env::var("WATCH_NAMESPACE").ok().as_deref(),
        Path::new(IN_CLUSTER_NAMESPACE_FILE),
        kubeconfig,
        context,
    )
}

/// The watch namespace: `--namespace`, else `$WATCH_NAMESPACE`, else what the local credentials
/// imply (in-cluster namespace or the kubeconfig context's), else `default`.
pub fn choose_namespace(flag: Option<&str>, env: Option<&str>, inferred: &str) -> String {
    [flag, env]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or(if inferred.is_empty() {
            "default"
        } else {
            inferred
        })
        .to_string()
}

/// [`resolve_namespace`] with its environment passed in (tests).
pub fn resolve_namespace_from(
    flag: Option<&str>,
    watch_namespace: Option<&str>,
    ns_file: &Path,
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> String {
    let inferred = std::fs::read_to_string(ns_file)
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| context_namespace(kubeconfig, context))
        .unwrap_or_default();
    choose_namespace(flag, watch_namespace, &inferred)
}

/// The namespace of kubeconfig context `context` (else the current one), when it sets one.
fn context_namespace(kubeconfig: Option<&Path>, context: Option<&str>) -> Option<String> {
    let kc = read_local_kubeconfig(kubeconfig).ok().flatten()?;
    let name = context.map(str::to_string).or(kc.current_context.clone())?;
    kc.contexts
        .into_iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context)
        .and_then(|c| c.namespace)
        .filter(|s| !s.is_empty())
}

pub fn source(cfg: &RegistryConfig) -> CredentialSource {
    if let Some(c) = &cfg.local_context {
        return CredentialSource::KubeconfigContext { context: c.clone() };
    }
    if cfg.kubeconfig.is_none() && in_cluster() {
        return CredentialSource::InCluster;
    }
    let current = read_local_kubeconfig(cfg.kubeconfig.as_deref())
        .ok()
        .flatten()
        .and_then(|k| k.current_context)
        .unwrap_or_else(|| "(current)".to_string());
    CredentialSource::KubeconfigContext { context: current }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig_text(ctx: &str, server: &str, ca_b64: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_b64}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: {ctx}\n  context:\n    cluster: c\n    user: u\n    namespace: cassandra\ncurrent-context: {ctx}\n"
        )
    }

    #[test]
    fn namespace_flag_then_watch_namespace_then_inferred() {
        assert_eq!(choose_namespace(Some("a"), Some("b"), "c"), "a");
        assert_eq!(choose_namespace(None, Some("b"), "c"), "b");
        assert_eq!(choose_namespace(None, Some(""), "c"), "c");
        assert_eq!(choose_namespace(Some(" "), None, "c"), "c");
        assert_eq!(choose_namespace(None, None, ""), "default");
    }

    #[test]
    fn namespace_resolution_order() {
        let d = tempfile::tempdir().unwrap();
        let kc = d.path().join("kc");
        std::fs::write(&kc, kubeconfig_text("a", "https://h:1", "")).unwrap();
        let nsfile = d.path().join("ns");
        let none = d.path().join("absent");
        assert_eq!(
            resolve_namespace_from(Some("flag"), Some("env"), &nsfile, Some(&kc), None),
            "flag"
        );
        assert_eq!(
            resolve_namespace_from(None, Some("env"), &nsfile, Some(&kc), None),
            "env"
        );
        std::fs::write(&nsfile, "incluster\n").unwrap();
        assert_eq!(
            resolve_namespace_from(None, None, &nsfile, Some(&kc), None),
            "incluster"
        );
        assert_eq!(
            resolve_namespace_from(None, Some(""), &none, Some(&kc), None),
            "cassandra"
        );
        assert_eq!(
            resolve_namespace_from(None, None, &none, Some(&kc), Some("other")),
            "default"
        );
        assert_eq!(
            resolve_namespace_from(None, None, &none, Some(&none), None),
            "default"
        );
    }
}
