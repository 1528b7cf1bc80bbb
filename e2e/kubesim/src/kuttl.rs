//! Test support: a kuttl-style runner — a test suite's steps (`NN-*.yaml`) applied in order as kuttl applies them (create, or a JSON merge patch of the file into the live object), `TestStep` commands run with bash, `NN-assert.yaml` polled until every object listed is a subset of the live one.
//!
//! What kuttl does and this follows: one namespace per test case, objects without a namespace
//! go there; an existing object is merge-patched with the file's content and the live
//! resourceVersion (a conflict is retried); a script runs with `$NAMESPACE` set; an assert
//! lists objects by name and passes when each is a subset of the live one (maps: keys of the
//! expected side only; arrays: same length, element by element), polled until the step's
//! timeout (30 s unless a `TestAssert` sets one).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::Value;

/// kuttl's default assert timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One step of a test case: the files sharing an index prefix.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// The `NN` prefix.
    pub index: u32,
    /// `NN-<name>.yaml` files other than the assert, in name order.
    pub files: Vec<String>,
    /// Objects to create or merge, in file order.
    pub apply: Vec<Value>,
    /// `TestStep` commands (scripts or commands), in order.
    pub commands: Vec<String>,
    /// Objects the assert file lists.
    pub asserts: Vec<Value>,
    /// The assert's timeout.
    pub timeout: Duration,
}

/// A test case: a directory of steps.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub steps: Vec<Step>,
}

/// Read a kuttl test case directory.
pub fn load(dir: &Path) -> anyhow::Result<TestCase> {
    let mut steps: BTreeMap<u32, Step> = BTreeMap::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    names.sort();
    for path in names {
        let file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some((prefix, rest)) = file.split_once('-') else {
            continue;
        };
        let Ok(index) = prefix.parse::<u32>() else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        let step = steps.entry(index).or_insert_with(|| Step {
            index,
            timeout: DEFAULT_TIMEOUT,
            ..Step::default()
        });
        let is_assert = rest.starts_with("assert.");
        if !is_assert {
            step.files.push(file.clone());
        }
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
            let kuttl = doc
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|a| a.starts_with("kuttl.dev/"));
            match (kuttl, kind) {
                (true, "TestAssert") => {
                    if let Some(t) = doc.get("timeout").and_then(Value::as_u64) {
                        step.timeout = Duration::from_secs(t);
                    }
                }
                (true, "TestStep") => {
                    for c in doc
                        .get("commands")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let line = c
                            .get("script")
                            .or_else(|| c.get("command"))
                            .and_then(Value::as_str)
                            .with_context(|| {
                                format!("{file}: a command without script or command")
                            })?;
                        step.commands.push(line.to_owned());
                    }
                }
                (true, other) => {
                    bail!("{file}: kuttl kind {other} is not supported by this runner")
                }
                (false, _) if is_assert => step.asserts.push(doc),
                (false, _) => step.apply.push(doc),
            }
        }
    }
    Ok(TestCase {
        name: dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        steps: steps.into_values().collect(),
    })
}

/// kuttl's subset check: `Ok` when `expected` is a subset of `actual`, else the path and the
/// mismatch (`status.phase: value mismatch, expected: Running != actual: Pending`).
pub fn is_subset(expected: &Value, actual: &Value) -> Result<(), String> {
    fn walk(e: &Value, a: &Value, path: &str) -> Result<(), String> {
        let at = |msg: String| {
            if path.is_empty() {
                msg
            } else {
                format!("{path}: {msg}")
            }
        };
        match (e, a) {
            (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => Ok(()),
            _ if e == a => Ok(()),
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return Err(at(format!(
                        "slice length mismatch: {} != {}",
                        x.len(),
                        y.len()
                    )));
                }
                for (i, (xe, ye)) in x.iter().zip(y).enumerate() {
                    walk(xe, ye, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            (Value::Object(x), Value::Object(y)) => {
                for (k, xv) in x {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match y.get(k) {
                        None => return Err(format!("{p}: key is missing from map")),
                        Some(yv) => walk(xv, yv, &p)?,
                    }
                }
                Ok(())
            }
            _ if std::mem::discriminant(e) != std::mem::discriminant(a) => {
                Err(at(format!("type mismatch: {e} != {a}")))
            }
            _ => Err(at(format!("value mismatch, expected: {e} != actual: {a}"))),
        }
    }
    walk(expected, actual, "")
}

/// Where and how a test case runs.
pub struct Runner {
    pub client: kube::Client,
    /// kubeconfig the scripts' kubectl uses (its current context is the cluster).
    pub kubeconfig: PathBuf,
    /// How often an assert is checked (kuttl: every second).
    pub poll: Duration,
}

/// What became of one step.
#[derive(Debug)]
pub struct StepResult {
    pub index: u32,
    pub name: String,
    /// None when the step passed; else what failed (for an assert, the last subset diff).
    pub failure: Option<String>,
}

impl Runner {
    async fn api_for(
        &self,
        obj: &Value,
        namespace: &str,
    ) -> anyhow::Result<(Api<DynamicObject>, String)> {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps): (ApiResource, ApiCapabilities) =
            kube::discovery::pinned_kind(&self.client, &gvk)
                .await
                .with_context(|| format!("discovering {api_version} {kind}"))?;
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .with_context(|| format!("a {kind} without metadata.name"))?
            .to_owned();
        let api = match caps.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), &ar),
            Scope::Namespaced => {
                let ns = obj
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(namespace);
                Api::namespaced_with(self.client.clone(), ns, &ar)
            }
        };
        Ok((api, name))
    }

    /// Create `obj`, or merge it into the live object as kuttl does.
    async fn apply(&self, obj: &Value, namespace: &str) -> anyhow::Result<()> {
        let (api, name) = self.api_for(obj, namespace).await?;
        for _ in 0..10 {
            match api.get_opt(&name).await? {
                None => {
                    let o: DynamicObject = serde_json::from_value(obj.clone())?;
                    match api.create(&PostParams::default(), &o).await {
                        Err(kube::Error::Api(s)) if s.is_already_exists() => continue,
                        r => {
                            r.with_context(|| format!("creating {name}"))?;
                            return Ok(());
                        }
                    }
                }
                Some(live) => {
                    let mut patch = obj.clone();
                    patch["metadata"]["resourceVersion"] =
                        Value::from(live.metadata.resource_version.unwrap_or_default());
                    match api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Err(kube::Error::Api(s)) if s.code == 409 => continue,
                        r => {
                            r.with_context(|| format!("merging into {name}"))?;
                            return Ok(());
                        }
                    }
                }
            }
        }
        bail!("{name}: still conflicting after 10 attempts")
    }

    /// The first assert object that does not match yet, with why.
    async fn mismatch(&self, asserts: &[Value], namespace: &str) -> Option<String> {
        for exp in asserts {
            let kind = exp.get("kind").and_then(Value::as_str).unwrap_or_default();
            let (api, name) = match self.api_for(exp, namespace).await {
                Ok(x) => x,
                Err(e) => return Some(format!("{kind}: {e:#}")),
            };
            let live = match api.get_opt(&name).await {
                Ok(Some(o)) => serde_json::to_value(o).unwrap_or(Value::Null),
                Ok(None) => return Some(format!("{kind}:{namespace}/{name}: not found")),
                Err(e) => return Some(format!("{kind}:{namespace}/{name}: {e}")),
            };
            let mut want = exp.clone();
            if let Some(m) = want.get_mut("metadata").and_then(Value::as_object_mut)
                && !m.contains_key("namespace")
                && live.pointer("/metadata/namespace").is_some()
            {
                m.insert("namespace".into(), Value::from(namespace));
            }
            if let Err(diff) = is_subset(&want, &live) {
                let shown = serde_saphyr::to_string(&live.get("status")).unwrap_or_default();
                return Some(format!(
                    "{kind}:{namespace}/{name}: {diff}\n  live status:\n{}",
                    shown
                        .lines()
                        .map(|l| format!("    {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
        }
        None
    }

    async fn script(&self, script: &str, namespace: &str) -> anyhow::Result<()> {
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new("bash")
                .arg("-c")
                .arg(script)
                .env("NAMESPACE", namespace)
                .env("KUBECONFIG", &self.kubeconfig)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .context("script still running after 120 s")?
        .context("running bash")?;
        if !out.status.success() {
            bail!(
                "script exited with {}:\n{}\nstdout: {}\nstderr: {}",
                out.status,
                script.trim(),
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Run one step: apply, commands, then the assert polled until its timeout.
    pub async fn step(&self, step: &Step, namespace: &str) -> StepResult {
        let name = step
            .files
            .first()
            .cloned()
            .unwrap_or_else(|| format!("{:02}-assert.yaml", step.index));
        let fail = |f: String| StepResult {
            index: step.index,
            name: name.clone(),
            failure: Some(f),
        };
        for obj in &step.apply {
            if let Err(e) = self.apply(obj, namespace).await {
                return fail(format!("apply: {e:#}"));
            }
        }
        for c in &step.commands {
            if let Err(e) = self.script(c, namespace).await {
                return fail(format!("command: {e:#}"));
            }
        }
        let deadline = tokio::time::Instant::now() + step.timeout;
        loop {
            let Some(why) = self.mismatch(&step.asserts, namespace).await else {
                return StepResult {
                    index: step.index,
                    name,
                    failure: None,
                };
            };
            if tokio::time::Instant::now() >= deadline {
                return fail(format!("assert not met after {:?}: {why}", step.timeout));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Run a test case in `namespace` (created first); stops at the first failed step, as kuttl.
    pub async fn run(&self, case: &TestCase, namespace: &str) -> Vec<StepResult> {
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        if let Err(e) = self.apply(&ns, namespace).await {
            return vec![StepResult {
                index: 0,
                name: "namespace".into(),
                failure: Some(format!("creating namespace {namespace}: {e:#}")),
            }];
        }
        let mut out = vec![];
        for step in &case.steps {
            let r = self.step(step, namespace).await;
            let failed = r.failure.is_some();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_extra_keys_and_compares_arrays_by_element() {
        let live =
            json!({"status": {"phase": "Running", "replicas": 1, "x": [1, {"a": 1, "b": 2}]}});
        assert_eq!(
            is_subset(&json!({"status": {"phase": "Running"}}), &live),
            Ok(())
        );
        assert_eq!(
            is_subset(&json!({"status": {"replicas": 1.0}}), &live),
            Ok(())
        );
        assert_eq!(
            is_subset(&json!({"status": {"x": [1, {"a": 1}]}}), &live),
            Ok(())
        );
        assert_eq!(
            is_subset(&json!({"status": {"x": [1]}}), &live),
            Err("status.x: slice length mismatch: 1 != 2".into())
        );
        assert_eq!(
            is_subset(&json!({"status": {"phase": "Pending"}}), &live),
            Err(
                "status.phase: value mismatch, expected: \"Pending\" != actual: \"Running\"".into()
            )
        );
        assert_eq!(
            is_subset(&json!({"status": {"gone": 1}}), &live),
            Err("status.gone: key is missing from map".into())
        );
    }
}
