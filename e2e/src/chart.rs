//! The Helm chart as real Helm renders it (scripts/helm.py), and the RBAC facts that compare
//! its Role with what the audit log shows the controller used.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{Context as _, bail};
use kubesim::AuditEntry;
use serde_json::Value;

use crate::{NAMESPACE, workspace_root};

/// The chart's directory, `helm/multi-casskop`.
pub fn chart_dir() -> PathBuf {
    workspace_root().join("helm/multi-casskop")
}

/// Runs scripts/helm.py (real Helm 4 through helm-python-sdk) with `args`; exit code not checked.
pub fn helm(args: &[&str]) -> anyhow::Result<Output> {
    Command::new("python3")
        .arg(workspace_root().join("scripts/helm.py"))
        .args(args)
        .output()
        .context("running python3 scripts/helm.py (scripts/test.sh installs helm-python-sdk)")
}

/// One YAML document of the rendered chart.
#[derive(Clone, Debug)]
pub struct RenderedDoc {
    /// The template it comes from, e.g. `multi-casskop/templates/rbac.yaml`.
    pub path: String,
    pub doc: Value,
    /// The document's YAML text as rendered.
    pub text: String,
}

/// Render `helm/multi-casskop` with scripts/helm.py (real Helm 4): every YAML document with
/// its template and text; Helm's error output as the error.
pub fn render_chart_docs(sets: &[&str], namespace: &str) -> anyhow::Result<Vec<RenderedDoc>> {
    let chart = chart_dir().display().to_string();
    let mut args = vec!["render", chart.as_str(), "--namespace", namespace];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = helm(&args)?;
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
        for text in text.as_str().unwrap_or_default().split("\n---") {
            let doc: Value = serde_saphyr::from_str(text)
                .with_context(|| format!("rendered {path} is not YAML"))?;
            if !doc.is_null() {
                docs.push(RenderedDoc {
                    path: path.clone(),
                    doc,
                    text: text.to_string(),
                });
            }
        }
    }
    Ok(docs)
}

/// Render `helm/multi-casskop` with scripts/helm.py (real Helm 4): every YAML document.
pub fn render_chart(sets: &[&str], namespace: &str) -> anyhow::Result<Vec<Value>> {
    Ok(render_chart_docs(sets, namespace)?
        .into_iter()
        .map(|d| d.doc)
        .collect())
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
