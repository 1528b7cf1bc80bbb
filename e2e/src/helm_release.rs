//! Real Helm 4 releases against a simulated cluster (scripts/helm_release.py), and the CRD-only
//! charts the CRD upgrade tests install.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::chart::chart_dir;
use crate::workspace_root;

/// One scripts/helm_release.py process: install, upgrade and uninstall through the same Helm
/// configuration, so the release history (Helm's memory driver) lasts as long as the session.
pub struct HelmSession {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// `--wait=watcher --timeout=Ns` on install, upgrade, rollback and uninstall.
    wait_secs: Option<u64>,
}

/// What Helm answered to one action: its result, or its error message.
pub type HelmAnswer = Result<Value, String>;

/// Flags of `helm install` and `helm upgrade` the tests use (all off by default).
#[derive(Clone, Copy, Debug, Default)]
pub struct HelmFlags {
    /// `--take-ownership`: adopt objects that exist without this release's ownership metadata.
    pub take_ownership: bool,
    /// `--force-conflicts`: server-side apply takes over fields another field manager owns.
    pub force_conflicts: bool,
}

impl HelmSession {
    /// A session on `context` of `kubeconfig`, releases in `namespace`.
    pub fn start(kubeconfig: &Path, context: &str, namespace: &str) -> anyhow::Result<Self> {
        Self::start_with_storage(kubeconfig, context, namespace, "memory")
    }

    /// A session whose release history lives in Helm storage `driver` ("secret": release
    /// Secrets in the namespace, as the `helm` command keeps them; "memory": this session only).
    pub fn start_with_storage(
        kubeconfig: &Path,
        context: &str,
        namespace: &str,
        driver: &str,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new("python3")
            .arg(workspace_root().join("scripts/helm_release.py"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--context", context, "--namespace", namespace])
            .args(["--storage-driver", driver])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("running python3 scripts/helm_release.py (the test command installs helm-python-sdk)")?;
        let stdin = child.stdin.take().context("helm_release.py stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("helm_release.py stdout")?);
        Ok(Self {
            child,
            stdin,
            stdout,
            wait_secs: None,
        })
    }

    /// Later actions wait as `helm --wait=watcher --timeout=SECS` does: until what they applied
    /// is ready (kstatus: Deployments rolled out, ...), failing after `secs`.
    pub fn wait(mut self, secs: u64) -> Self {
        self.wait_secs = Some(secs);
        self
    }

    fn with_wait(&self, mut cmd: Value) -> Value {
        if let Some(secs) = self.wait_secs {
            cmd["wait"] = json!("watcher");
            cmd["timeout"] = json!(secs);
        }
        cmd
    }

    fn call(&mut self, cmd: &Value) -> anyhow::Result<HelmAnswer> {
        writeln!(self.stdin, "{cmd}").context("writing to helm_release.py")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("helm_release.py ended without answering {cmd}");
        }
        let answer: Value = serde_json::from_str(&line).context("helm_release.py answer")?;
        Ok(if answer["ok"] == true {
            Ok(answer["result"].clone())
        } else {
            Err(answer["error"].as_str().unwrap_or_default().to_string())
        })
    }

    /// `helm install RELEASE CHART` with `values` and `flags`.
    pub fn install(
        &mut self,
        release: &str,
        chart: &Path,
        values: Value,
        flags: HelmFlags,
    ) -> anyhow::Result<HelmAnswer> {
        self.deploy("install", release, chart, values, flags)
    }

    /// `helm upgrade RELEASE CHART` with `values` and `flags`.
    pub fn upgrade(
        &mut self,
        release: &str,
        chart: &Path,
        values: Value,
        flags: HelmFlags,
    ) -> anyhow::Result<HelmAnswer> {
        self.deploy("upgrade", release, chart, values, flags)
    }

    /// An install or upgrade (`op`) of RELEASE from CHART.
    fn deploy(
        &mut self,
        op: &str,
        release: &str,
        chart: &Path,
        values: Value,
        flags: HelmFlags,
    ) -> anyhow::Result<HelmAnswer> {
        let cmd = self.with_wait(json!({
            "op": op, "name": release, "chart": chart, "values": values,
            "take_ownership": flags.take_ownership, "force_conflicts": flags.force_conflicts,
        }));
        self.call(&cmd)
    }

    /// `helm uninstall RELEASE`.
    pub fn uninstall(&mut self, release: &str) -> anyhow::Result<HelmAnswer> {
        let cmd = self.with_wait(json!({"op": "uninstall", "name": release}));
        self.call(&cmd)
    }

    /// `helm rollback RELEASE [REVISION]` (None: the previous revision).
    pub fn rollback(&mut self, release: &str, revision: Option<u32>) -> anyhow::Result<HelmAnswer> {
        let cmd = self.with_wait(json!({"op": "rollback", "name": release, "version": revision}));
        self.call(&cmd)
    }

    /// `helm status RELEASE`.
    pub fn status(&mut self, release: &str) -> anyhow::Result<HelmAnswer> {
        self.call(&json!({"op": "status", "name": release}))
    }

    /// `helm history RELEASE`: every revision, oldest first.
    pub fn history(&mut self, release: &str) -> anyhow::Result<HelmAnswer> {
        self.call(&json!({"op": "history", "name": release}))
    }

    /// `helm list --all`.
    pub fn list(&mut self) -> anyhow::Result<HelmAnswer> {
        self.call(&json!({"op": "list"}))
    }
}

impl Drop for HelmSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The chart's files a CRD-only chart keeps: its metadata, values and schema, helpers, the two
/// CRD templates and the generated CRD. The CRD tests install these templates alone, unchanged,
/// so that what they check is the CRDs' life cycle and nothing waits for a Deployment.
const CRD_CHART_FILES: &[&str] = &[
    "Chart.yaml",
    "values.yaml",
    "values.schema.json",
    "templates/_helpers.tpl",
    "templates/multicasskop-crd.yaml",
    "templates/clientconfig-crd.yaml",
    "files/multicasskops.db.orange.com.yaml",
];

/// Writes into `to` the chart's CRD templates alone (see [`CRD_CHART_FILES`]).
pub fn crd_only_chart(to: &Path) -> anyhow::Result<()> {
    for file in CRD_CHART_FILES {
        let (from, dst) = (chart_dir().join(file), to.join(file));
        std::fs::create_dir_all(dst.parent().expect("a chart file has a folder"))?;
        std::fs::copy(&from, &dst).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(())
}

/// The generated MultiCasskop CRD (the chart's file) as JSON.
pub fn generated_crd() -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(chart_dir().join("files/multicasskops.db.orange.com.yaml"))?;
    serde_saphyr::from_str(&text).context("the chart's CRD file is not YAML")
}
