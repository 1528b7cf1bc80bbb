//! Support for the ClientConfig and chart scenarios: the chart rendered by real Helm, k8ssandra
//! ClientConfigs and their kubeconfig Secrets, MultiCasskop manifests, RBAC facts from the audit.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use kubesim::AuditEntry;
use serde_json::{Value, json};

use crate::{ControllerProcess, Env, NAMESPACE, workspace_root};

/// Render `helm/multi-casskop` with scripts/helm.py (real Helm 4): every YAML document.
pub fn render_chart(sets: &[&str], namespace: &str) -> anyhow::Result<Vec<Value>> {
    let root = workspace_root();
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("scripts/helm.py"))
        .arg("render")
        .arg(root.join("helm/multi-casskop"))
        .args(["--namespace", namespace]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd
        .output()
        .context("running python3 scripts/helm.py (scripts/test.sh installs helm-python-sdk)")?;
    if !out.status.success() {
        bail!(
            "helm render failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rendered: Value = serde_json::from_slice(&out.stdout).context("helm.py output")?;
    let mut docs = Vec::new();
    let manifests = rendered["manifests"]
        .as_object()
        .context("helm.py output has no manifests")?;
    for (path, text) in manifests {
        if !path.ends_with(".yaml") {
            continue;
        }
        for doc in text.as_str().unwrap_or_default().split("\n---") {
            let doc: Value = serde_saphyr::from_str(doc)
                .with_context(|| format!("rendered {path} is not YAML"))?;
            if !doc.is_null() {
                docs.push(doc);
            }
        }
    }
    Ok(docs)
}

/// The rendered document of `kind` (the first one).
pub fn doc_of_kind<'a>(docs: &'a [Value], kind: &str) -> anyhow::Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .with_context(|| format!("the chart rendered no {kind}"))
}

/// The chart's ClientConfig CRD (`clientConfigCRD.install=true`), as JSON.
pub fn client_config_crd() -> anyhow::Result<Value> {
    let docs = render_chart(
        &["k8s.local=k8s-cluster1", "clientConfigCRD.install=true"],
        NAMESPACE,
    )?;
    docs.into_iter()
        .find(|d| {
            d["kind"] == "CustomResourceDefinition"
                && d["metadata"]["name"] == "clientconfigs.config.k8ssandra.io"
        })
        .context("the chart rendered no ClientConfig CRD with clientConfigCRD.install=true")
}

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
    args.extend(extra.iter().map(|s| s.to_string()));
    ControllerProcess::spawn(
        env.dir.path(),
        label,
        &args,
        &[("WATCH_NAMESPACE", NAMESPACE), ("POD_NAME", label)],
    )
}

/// Whether CassandraCluster JSON has phase Running and lastClusterActionStatus Done.
pub fn running_done(cc: &Value) -> bool {
    cc["status"]["phase"] == "Running" && cc["status"]["lastClusterActionStatus"] == "Done"
}

/// The (group, resource[/subresource], verb) a request used.
pub type Access = (String, String, String);

fn access_of(e: &AuditEntry) -> Access {
    let resource = if e.subresource.is_empty() {
        e.resource.clone()
    } else {
        format!("{}/{}", e.resource, e.subresource)
    };
    (e.group.clone(), resource, e.verb.clone())
}

/// Every (group, resource, verb) `user` used in `cluster`, with whether any was refused (403).
pub fn accesses(
    entries: &[AuditEntry],
    cluster: &str,
    user: &str,
) -> (BTreeSet<Access>, Vec<String>) {
    let mut used = BTreeSet::new();
    let mut forbidden = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e.cluster == cluster && e.user == user)
    {
        if e.code == 403 {
            forbidden.push(format!(
                "seq {}: {} {}/{} {} {}/{}",
                e.seq, e.verb, e.group, e.resource, e.subresource, e.namespace, e.name
            ));
        }
        if e.resource.is_empty() || e.resource.starts_with('/') {
            continue; // discovery and other non-resource requests (system:discovery grants them)
        }
        used.insert(access_of(e));
    }
    (used, forbidden)
}

/// Every (group, resource, verb) a Role's rules grant.
pub fn granted(role: &Value) -> BTreeSet<Access> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        for g in rule["apiGroups"].as_array().into_iter().flatten() {
            for r in rule["resources"].as_array().into_iter().flatten() {
                for v in rule["verbs"].as_array().into_iter().flatten() {
                    out.insert((
                        g.as_str().unwrap_or("").to_string(),
                        r.as_str().unwrap_or("").to_string(),
                        v.as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
    }
    out
}
