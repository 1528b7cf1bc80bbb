//! Fixtures of the registration and site-registry tests: a kubesim, a kubeconfig, and runners
//! for the real `multi-casskop` binary and real `kubectl`.

use std::path::{Path, PathBuf};
use std::process::Output;

use kubesim::kubectl::{Kubectl, Run};
use kubesim::{Sim, SimOptions};

use kubesim::fixtures::CASSANDRA_CRD_YAML as CASSANDRA_CRD;

/// Minimal k8ssandra ClientConfig CRD.
pub const CLIENT_CONFIG_CRD: &str = r"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clientconfigs.config.k8ssandra.io
spec:
  group: config.k8ssandra.io
  scope: Namespaced
  names: {kind: ClientConfig, listKind: ClientConfigList, plural: clientconfigs, singular: clientconfig}
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

pub const NS: &str = "cassandra";

pub struct Env {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// Starts `names` clusters, writes a kubeconfig (one context per cluster), creates namespace
/// `cassandra` and the CassandraCluster CRD everywhere, and the MultiCasskop CRD in the first.
pub async fn env(names: &[&str]) -> Env {
    let sim = Sim::start(names, SimOptions::default())
        .await
        .expect("kubesim starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let env = Env {
        sim,
        dir,
        kubeconfig,
    };
    for n in names {
        env.kubectl_ok(&["--context", n, "create", "namespace", NS], None)
            .await;
        env.kubectl_ok(&["--context", n, "apply", "-f", "-"], Some(CASSANDRA_CRD))
            .await;
    }
    let mc_crd = serde_saphyr::to_string(
        &serde_json::to_value(<multi_casskop::api::MultiCasskop as kube::CustomResourceExt>::crd())
            .unwrap(),
    )
    .unwrap();
    env.kubectl_ok(&["--context", names[0], "apply", "-f", "-"], Some(&mc_crd))
        .await;
    env
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Env {
    async fn run(&self, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_env(program, args, stdin, &[]).await
    }

    async fn run_env(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
        envs: &[(&str, &str)],
    ) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(program);
        cmd.envs(envs.iter().copied());
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .env_remove("WATCH_NAMESPACE")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        if let Some(input) = stdin {
            let mut si = child.stdin.take().unwrap();
            si.write_all(input.as_bytes()).await.unwrap();
            drop(si);
        }
        child.wait_with_output().await.unwrap()
    }

    /// Runs `multi-casskop ARGS`.
    pub async fn mc(&self, args: &[&str]) -> Output {
        let o = self
            .run(env!("CARGO_BIN_EXE_multi-casskop"), args, None)
            .await;
        eprintln!("$ multi-casskop {}\n{}", args.join(" "), show(&o));
        o
    }

    /// Runs `multi-casskop ARGS` with extra environment variables; output not echoed.
    pub async fn mc_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        self.run_env(env!("CARGO_BIN_EXE_multi-casskop"), args, None, envs)
            .await
    }

    /// Runs `kubectl ARGS` with `stdin` (HOME and caches in the tempdir).
    pub async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Run {
        Kubectl::new(&self.kubeconfig)
            .home(self.dir.path())
            .run_input(args, stdin.map(str::as_bytes))
            .await
    }

    /// Runs kubectl and insists on success; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.kubectl(args, stdin).await.ok().stdout
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A kubeconfig file with one context `context` for cluster `cluster` using `token`.
    pub fn kubeconfig_with_token(
        &self,
        file: &str,
        context: &str,
        cluster: &str,
        token: &str,
    ) -> PathBuf {
        let c = self.sim.cluster(cluster);
        let kc = multi_casskop::sites::exported::kubeconfig_yaml(
            context,
            &c.url(),
            c.ca_pem().as_bytes(),
            token,
            NS,
        )
        .unwrap();
        let p = self.path(file);
        std::fs::write(&p, kc).unwrap();
        p
    }

    /// Data key `key` of Secret `name` in `cassandra` on `context`, decoded.
    pub async fn secret_key(&self, context: &str, name: &str, key: &str) -> String {
        let jp = format!("jsonpath={{.data.{}}}", key.replace('.', "\\."));
        let b64 = self
            .kubectl_ok(
                &[
                    "--context",
                    context,
                    "-n",
                    NS,
                    "get",
                    "secret",
                    name,
                    "-o",
                    &jp,
                ],
                None,
            )
            .await;
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap(),
        )
        .unwrap()
    }

    /// Audit entries that changed something.
    pub fn writes(&self) -> Vec<kubesim::AuditEntry> {
        self.sim
            .audit()
            .into_iter()
            .filter(|e| {
                matches!(
                    e.verb.as_str(),
                    "create" | "update" | "patch" | "delete" | "deletecollection"
                )
            })
            .collect()
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
