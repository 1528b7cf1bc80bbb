//! The controller runs with exactly the Helm chart's least-privilege Role in the local cluster:
//! rollout, leader election, Events, status and deletion, and not one request refused.

use std::process::Command;
use std::time::Duration;

use e2e::{Env, EnvOptions, NAMESPACE, eventually, sample, workspace_root};
use kubesim::kubectl::Kubectl;
use serde_json::Value;

/// The chart's rbac.yaml rendered by real Helm (scripts/helm.py) for release `multi-casskop`.
fn chart_rbac() -> anyhow::Result<String> {
    let root = workspace_root();
    let out = Command::new("python3")
        .arg(root.join("scripts/helm.py"))
        .args([
            "render",
            &root.join("helm/multi-casskop").display().to_string(),
        ])
        .args([
            "--set",
            "k8s.local=k8s-cluster1",
            "--set",
            "k8s.remote={k8s-cluster2}",
        ])
        .args(["--name", "multi-casskop", "--namespace", NAMESPACE])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "helm render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered: Value = serde_json::from_slice(&out.stdout)?;
    let rbac = rendered["manifests"]["multi-casskop/templates/rbac.yaml"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no rbac.yaml in the rendered chart"))?;
    Ok(rbac.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_needs_nothing_beyond_the_charts_role() -> anyhow::Result<()> {
    let opts = EnvOptions {
        local_cluster_admin: false,
        ..EnvOptions::default()
    };
    let env = Env::start_with(&["k8s-cluster1", "k8s-cluster2"], opts).await?;
    // Control: without the Role, the controller's identity is refused (RBAC is enforced).
    let denied = Kubectl::new(&env.kubeconfig)
        .context("k8s-cluster1")
        .namespace(NAMESPACE)
        .run(&["get", "multicasskops"])
        .await;
    assert!(!denied.success());
    assert!(denied.stderr.contains("forbidden"), "{}", denied.stderr);
    env.apply_yaml(&chart_rbac()?)?;
    let from_seq = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    let ctl = env.start_controller("controller", &["--leader-elect"])?;
    eventually(
        "the controller to lead and be ready",
        Duration::from_secs(60),
        || async {
            Ok((ctl.logs().contains("became leader")
                && matches!(ctl.http_get("/readyz"), Ok((200, _))))
            .then_some(()))
        },
    )
    .await?;
    env.apply_yaml(&sample("multi-casskop-delete.yaml")?)?;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "multicasskop/cassandra-ephemeral",
        "--timeout=240s",
    ])
    .map_err(|e| anyhow::anyhow!("{e}\n{}", e2e::controller_log_tail(&ctl.logs(), 60)))?;
    env.kubectl(&[
        "delete",
        "multicasskop",
        "cassandra-ephemeral",
        "--timeout=240s",
    ])?;
    for site in ["k8s-cluster1", "k8s-cluster2"] {
        assert!(env.get_cc(site, "cassandra-ephemeral")?.is_none(), "{site}");
    }
    let user = Env::sa_user("multi-casskop");
    let refused: Vec<String> = env
        .local()
        .audit()
        .into_iter()
        .filter(|e| e.seq >= from_seq && e.user == user && e.code == 403)
        .map(|e| format!("{} {}/{} {}", e.verb, e.group, e.resource, e.name))
        .collect();
    let requests = env
        .local()
        .audit()
        .iter()
        .filter(|e| e.user == user)
        .count();
    println!("{requests} requests from the controller to the local cluster, refused: {refused:?}");
    assert!(requests > 10);
    assert!(
        refused.is_empty(),
        "the chart's Role must allow every request: {refused:?}"
    );
    Ok(())
}
