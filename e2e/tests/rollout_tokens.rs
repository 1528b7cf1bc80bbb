//! No token ever appears in the controller's logs, even at trace level.

use std::time::Duration;

use base64::Engine;
use e2e::{Env, NAMESPACE, eventually, sample};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_never_contain_a_token() -> anyhow::Result<()> {
    let env = Env::start(&["k8s-cluster1", "k8s-cluster2"]).await?;
    // The controller's own kubeconfig tokens, plus a remote reached through a Secret.
    let mut tokens = env.write_sa_kubeconfig(&env.kubeconfig, "multi-casskop")?;
    let c2 = env.sim.cluster("k8s-cluster2").clone();
    let secret_token = c2.issue_token(NAMESPACE, "remote-k8s-cluster2", None);
    let kubeconfig = kubesim::kubeconfig::render(&[(
        "k8s-cluster2".into(),
        c2.url(),
        c2.ca_pem(),
        secret_token.clone(),
    )]);
    env.apply_yaml(
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k8s-cluster2", "namespace": NAMESPACE},
                "data": {"config": base64::engine::general_purpose::STANDARD.encode(kubeconfig)}})
        .to_string(),
    )?;
    tokens.push(secret_token);

    let args: Vec<String> = vec![
        "--kubeconfig".into(),
        env.kubeconfig.display().to_string(),
        "--context".into(),
        "k8s-cluster1".into(),
        "-lk8s-cluster1".into(),
        "-rk8s-cluster2".into(),
        "--namespace".into(),
        NAMESPACE.into(),
        "--imports-dir".into(),
        env.dir.path().join("none").display().to_string(),
    ];
    let ctl =
        e2e::ControllerProcess::spawn(env.dir.path(), "trace", &args, &[("RUST_LOG", "trace")])?;
    eventually(
        "the controller to be ready",
        Duration::from_secs(60),
        || async { Ok(matches!(ctl.http_get("/readyz"), Ok((200, _))).then_some(())) },
    )
    .await?;
    env.apply_yaml(&sample("multi-casskop.yaml")?)?;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "multicasskop/multi-casskop-demo",
        "--timeout=240s",
    ])?;

    let logs = ctl.logs();
    let trace_lines = logs.lines().filter(|l| l.contains("TRACE")).count();
    println!(
        "{} log lines, {trace_lines} at trace level, {} tokens searched",
        logs.lines().count(),
        tokens.len()
    );
    assert!(
        trace_lines > 100,
        "the controller really logged at trace level"
    );
    for (i, t) in tokens.iter().enumerate() {
        assert!(!t.is_empty());
        assert!(!logs.contains(t.as_str()), "token #{i} appears in the logs");
        let b64 = base64::engine::general_purpose::STANDARD.encode(t);
        assert!(
            !logs.contains(&b64),
            "token #{i} appears base64-encoded in the logs"
        );
    }
    Ok(())
}
