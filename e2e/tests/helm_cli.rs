//! `scripts/helm`, the Helm 4 command line for machines without the helm binary, as a user types
//! it: every subcommand the README names, against a simulated cluster, with helm's output
//! shapes and exit codes.
use std::path::Path;
use std::process::Command;

use e2e::workspace_root;
use kubesim::{Sim, SimOptions};

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn helm(kubeconfig: &Path, args: &[&str]) -> Ran {
    let out = Command::new(workspace_root().join("scripts/helm"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("running scripts/helm");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let r = helm(kubeconfig, args);
    assert_eq!(
        r.code,
        0,
        "helm {} failed:\n{}{}",
        args.join(" "),
        r.stdout,
        r.stderr
    );
    r.stdout
}

fn helm_sdk_present() -> bool {
    Command::new("python3")
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_helm_installs_upgrades_rolls_back_and_uninstalls_with_helms_output()
-> anyhow::Result<()> {
    if !helm_sdk_present() {
        println!("SKIPPED: python3 with helm-python-sdk is missing (the test command installs it)");
        return Ok(());
    }
    let sim = Sim::start(&["c1"], SimOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc)?;
    let chart = workspace_root().join("helm/multi-casskop");
    let chart = chart.to_str().expect("utf-8 path");
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, "resyncPeriod: 3m\nk8s:\n  local: c1\n")?;

    let out = ok(
        &kc,
        &[
            "install",
            "mc",
            chart,
            "-n",
            "ops",
            "--create-namespace",
            "--set",
            "k8s.local=c1",
        ],
    );
    assert!(out.contains("NAME: mc"), "{out}");
    assert!(out.contains("NAMESPACE: ops"), "{out}");
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(out.contains("REVISION: 1"), "{out}");
    assert!(out.contains("NOTES:"), "the chart's NOTES are shown: {out}");

    let list = ok(&kc, &["list", "-n", "ops"]);
    let header: Vec<&str> = list
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "NAMESPACE",
            "REVISION",
            "UPDATED",
            "STATUS",
            "CHART",
            "APP",
            "VERSION"
        ],
        "{list}"
    );
    assert!(list.contains("multi-casskop-0.2.0"), "{list}");

    let out = ok(
        &kc,
        &[
            "upgrade",
            "mc",
            chart,
            "-n",
            "ops",
            "-f",
            values.to_str().expect("utf-8"),
            "--set-string",
            "k8s.remote={7,8}",
        ],
    );
    assert!(out.contains("has been upgraded"), "{out}");
    assert!(out.contains("REVISION: 2"), "{out}");
    let got = ok(&kc, &["get", "values", "mc", "-n", "ops"]);
    let got: serde_json::Value = serde_json::from_str(&got)?;
    assert_eq!(got["resyncPeriod"], "3m", "values file applied: {got}");
    assert_eq!(
        got["k8s"]["remote"],
        serde_json::json!(["7", "8"]),
        "--set-string keeps strings: {got}"
    );

    let out = ok(&kc, &["rollback", "mc", "1", "-n", "ops"]);
    assert!(out.contains("Rollback was a success"), "{out}");
    let history = ok(&kc, &["history", "mc", "-n", "ops"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2", "3"], "{history}");
    let status = ok(&kc, &["status", "mc", "-n", "ops"]);
    assert!(status.contains("REVISION: 3"), "{status}");

    let out = ok(&kc, &["uninstall", "mc", "-n", "ops"]);
    assert!(out.contains("release \"mc\" uninstalled"), "{out}");
    let list = ok(&kc, &["list", "-n", "ops"]);
    assert_eq!(list.lines().count(), 1, "only the header is left: {list}");

    let missing = helm(&kc, &["status", "mc", "-n", "ops"]);
    assert_eq!(missing.code, 1, "{}{}", missing.stdout, missing.stderr);
    assert!(missing.stderr.starts_with("Error: "), "{}", missing.stderr);
    sim.shutdown().await;
    Ok(())
}

#[test]
fn scripts_helm_renders_lints_and_refuses_bad_flags_as_helm_does() {
    if !helm_sdk_present() {
        println!("SKIPPED: python3 with helm-python-sdk is missing (the test command installs it)");
        return;
    }
    let chart = workspace_root().join("helm/multi-casskop");
    let chart = chart.to_str().expect("utf-8 path");
    let none = Path::new("/nonexistent-kubeconfig");
    let out = ok(
        none,
        &[
            "template",
            "mc",
            chart,
            "--set",
            "k8s.local=a",
            "--set",
            "k8s.remote={b,c}",
        ],
    );
    assert!(
        out.contains("# Source: multi-casskop/templates/deployment.yaml"),
        "{out}"
    );
    for arg in ["- -la", "- -rb", "- -rc"] {
        assert!(out.contains(arg), "the Deployment runs {arg}: {out}");
    }
    let lint = ok(none, &["lint", chart]);
    assert!(
        lint.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{lint}"
    );

    let bad = helm(none, &["install", "mc", chart, "--timeout", "5x"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr
            .contains(r#"invalid argument "5x" for "--timeout" flag"#),
        "{}",
        bad.stderr
    );
    let refused = helm(
        none,
        &[
            "template",
            "mc",
            chart,
            "--set",
            "replicaCount=2",
            "--set",
            "leaderElection.enabled=false",
        ],
    );
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .starts_with("Error: values don't meet the specifications")
            && refused.stderr.contains("/leaderElection/enabled"),
        "the chart's values schema refusal reaches the user, naming the field: {}",
        refused.stderr
    );
}
