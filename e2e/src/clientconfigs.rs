//! k8ssandra ClientConfigs and their kubeconfig Secrets, MultiCasskop manifests, and the
//! controller started with a hand-written kubeconfig, for the ClientConfig and chart scenarios.

use std::path::Path;

use serde_json::{Value, json};

use crate::{ControllerProcess, Env, NAMESPACE};

/// A kubeconfig with one context `context` for `cluster`, authenticating with `token`.
pub fn kubeconfig_for(cluster: &kubesim::Cluster, context: &str, token: &str) -> String {
    kubesim::kubeconfig::render(&[(
        context.to_string(),
        cluster.url(),
        cluster.ca_pem(),
        token.to_string(),
    )])
}

/// A kubeconfig with a context per (cluster, token), each context named after its cluster.
pub fn write_kubeconfig(
    path: &Path,
    entries: &[(&kubesim::Cluster, String)],
) -> anyhow::Result<()> {
    let rows: Vec<_> = entries
        .iter()
        .map(|(c, token)| (c.name().to_string(), c.url(), c.ca_pem(), token.clone()))
        .collect();
    std::fs::write(path, kubesim::kubeconfig::render(&rows))?;
    Ok(())
}

/// k8ssandra's credentials Secret: the kubeconfig under key `kubeconfig`.
pub fn kubeconfig_secret(name: &str, kubeconfig: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": {"kubeconfig": kubeconfig},
    })
}

/// A k8ssandra ClientConfig: site `name` from Secret `secret`, context `context` (default: `name`).
pub fn client_config(name: &str, secret: &str, context: Option<&str>) -> Value {
    let mut spec = json!({"kubeConfigSecret": {"name": secret}});
    if let Some(c) = context {
        spec["contextName"] = json!(c);
    }
    json!({
        "apiVersion": "config.k8ssandra.io/v1beta1", "kind": "ClientConfig",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    })
}

/// A MultiCasskop `name` whose CassandraCluster `cc` (image `image`) goes to `sites` (one DC
/// each), optionally with `spec.siteOrder`.
pub fn multicasskop(
    name: &str,
    cc: &str,
    image: &str,
    sites: &[&str],
    site_order: Option<&[&str]>,
) -> Value {
    let mut overrides = serde_json::Map::new();
    for (i, s) in sites.iter().enumerate() {
        overrides.insert(
            s.to_string(),
            json!({"spec": {"topology": {"dc": [{"name": format!("dc{}", i + 1), "rack": [{"name": "rack1"}]}]}}}),
        );
    }
    let mut mc = json!({
        "apiVersion": "db.orange.com/v2", "kind": "MultiCasskop",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "base": {
                "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
                "metadata": {"name": cc},
                "spec": {"cassandraImage": image, "nodesPerRacks": 1, "dataCapacity": "1Gi"},
            },
            "override": overrides,
        },
    });
    if let Some(order) = site_order {
        mc["spec"]["siteOrder"] = json!(order);
    }
    mc
}

/// `kubectl apply -f -` of a JSON object in the local cluster.
pub fn apply(env: &Env, obj: &Value) -> anyhow::Result<String> {
    env.kubectl_stdin(&["apply", "-f", "-"], obj.to_string().as_bytes())
}

/// Start the controller as a user would run it outside a cluster: `kubeconfig` (context
/// `local`), `-l local`, one `-r` per remote, the namespace from WATCH_NAMESPACE, plus `extra`.
pub fn start_controller_with(
    env: &Env,
    label: &str,
    kubeconfig: &Path,
    local: &str,
    remotes: &[&str],
    extra: &[&str],
) -> anyhow::Result<ControllerProcess> {
    let mut args: Vec<String> = vec![
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--context".into(),
        local.into(),
        format!("-l{local}"),
        "--imports-dir".into(),
        env.dir.path().join("no-imports").display().to_string(),
    ];
    args.extend(remotes.iter().map(|r| format!("-r{r}")));
    args.extend(extra.iter().map(ToString::to_string));
    ControllerProcess::spawn(
        env.dir.path(),
        label,
        &args,
        &[("WATCH_NAMESPACE", NAMESPACE), ("POD_NAME", label)],
    )
}
