//! k8ssandra `ClientConfig` (config.k8ssandra.io/v1beta1): a remote site defined by an object.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use crate::api::lenient::Lenient;

/// API group of k8ssandra's ClientConfig.
pub const GROUP: &str = "config.k8ssandra.io";
/// API version of k8ssandra's ClientConfig.
pub const VERSION: &str = "v1beta1";

/// config.k8ssandra.io/v1beta1 ClientConfig, namespaced.
pub fn client_config_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, VERSION, "ClientConfig"),
        "clientconfigs",
    )
}

/// A ClientConfig that cannot define a site.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ClientConfigError {
    /// `spec.kubeConfigSecret.name` is missing or empty.
    #[error("ClientConfig {namespace}/{name} has no spec.kubeConfigSecret.name")]
    NoSecretName { namespace: String, name: String },
    /// The object cannot be decoded; `reason` names the field and what was wrong.
    #[error("ClientConfig {namespace}/{name} cannot be decoded: {reason}")]
    Undecodable {
        namespace: String,
        name: String,
        reason: String,
    },
}

/// What a ClientConfig says: the site `name` uses Secret `secret` (key `kubeconfig`), context
/// `context` (default: the ClientConfig's name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfigRef {
    /// The ClientConfig's (and the site's) name.
    pub name: String,
    /// `spec.kubeConfigSecret.name`; `Err` holds why the object is unusable.
    pub secret: Result<String, ClientConfigError>,
    /// `spec.contextName`, else the ClientConfig's name.
    pub context: String,
}

impl ClientConfigRef {
    /// Reads the fields we use from a ClientConfig object.
    pub fn from_object(obj: &DynamicObject) -> Option<Self> {
        let name = obj.metadata.name.clone()?;
        let ns = obj.metadata.namespace.clone().unwrap_or_default();
        let spec = obj.data.get("spec");
        let secret = spec
            .and_then(|s| s.get("kubeConfigSecret"))
            .and_then(|s| s.get("name"))
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ClientConfigError::NoSecretName {
                namespace: ns,
                name: name.clone(),
            });
        let context = spec
            .and_then(|s| s.get("contextName"))
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or(&name)
            .to_string();
        Some(Self {
            name,
            secret,
            context,
        })
    }

    /// Like [`Self::from_object`]; an undecodable ClientConfig still defines its site, which is
    /// then unavailable and says why.
    pub fn from_lenient(obj: &Lenient<DynamicObject>) -> Option<Self> {
        let poison = match obj {
            Lenient::Decoded(o) => return Self::from_object(o),
            Lenient::Poison(p) => p,
        };
        let name = poison.meta.name.clone()?;
        Some(Self {
            secret: Err(ClientConfigError::Undecodable {
                namespace: poison.meta.namespace.clone().unwrap_or_default(),
                name: name.clone(),
                reason: poison.error.to_string(),
            }),
            context: name.clone(),
            name,
        })
    }

    /// The ClientConfig object `register --client-config` creates.
    pub fn manifest(name: &str, namespace: &str, secret: &str, context: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "ClientConfig",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"kubeConfigSecret": {"name": secret}, "contextName": context},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: serde_json::Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn context_defaults_to_the_client_config_name() {
        let c = ClientConfigRef::from_object(&obj(serde_json::json!({
            "apiVersion": "config.k8ssandra.io/v1beta1", "kind": "ClientConfig",
            "metadata": {"name": "k8s-cluster3", "namespace": "cassandra"},
            "spec": {"kubeConfigSecret": {"name": "k8s-cluster3-config"}}
        })))
        .unwrap();
        assert_eq!(c.secret, Ok("k8s-cluster3-config".to_string()));
        assert_eq!(c.context, "k8s-cluster3");
    }

    #[test]
    fn undecodable_client_config_names_its_site_and_the_field() {
        let deep = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        let text = format!(
            r#"{{"apiVersion":"config.k8ssandra.io/v1beta1","kind":"ClientConfig",
               "metadata":{{"name":"dc9","namespace":"cassandra"}},"spec":{{"x":{deep}}}}}"#
        );
        let c = ClientConfigRef::from_lenient(&Lenient::from_json(&text)).unwrap();
        assert_eq!(c.name, "dc9");
        assert_eq!(
            c.secret.map_err(|e| e.to_string()),
            Err(
                "ClientConfig cassandra/dc9 cannot be decoded: spec.x.a.a.… nests deeper than \
                 128 levels, the most this controller decodes"
                    .to_string()
            )
        );
    }

    #[test]
    fn missing_secret_reference_is_reported() {
        let c = ClientConfigRef::from_object(&obj(serde_json::json!({
            "apiVersion": "config.k8ssandra.io/v1beta1", "kind": "ClientConfig",
            "metadata": {"name": "dc3", "namespace": "cassandra"},
            "spec": {"contextName": "ctx3"}
        })))
        .unwrap();
        assert_eq!(c.context, "ctx3");
        assert_eq!(
            c.secret.map_err(|e| e.to_string()),
            Err("ClientConfig cassandra/dc3 has no spec.kubeConfigSecret.name".to_string())
        );
    }
}
