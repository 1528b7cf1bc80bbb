//! The controller binary's command line: Multi-CassKop's flags, JSON logs, the CRD subcommand.

use std::process::Command;

#[test]
fn json_logs_with_log_type_json_and_a_clear_startup_error() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .args([
            "-lk8s-cluster1",
            "-rk8s-cluster2",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("LOG_TYPE", "json")
        .env("LOG_LEVEL", "Info")
        .env_remove("RUST_LOG")
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("/nonexistent/kubeconfig"))
        .expect("the error names the file");
    let v: serde_json::Value = serde_json::from_str(line)?;
    assert_eq!(v["level"], "ERROR");
    Ok(())
}

#[test]
fn missing_local_cluster_is_refused_naming_the_flag() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .args(["-rk8s-cluster2"])
        .env_remove("MULTI_CASSKOP_LOCAL")
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--local"), "{stderr}");
    Ok(())
}

#[test]
fn help_explains_the_controller_flags_with_examples() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .arg("--help")
        .output()?;
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--local",
        "--remote",
        "--namespace",
        "--leader-elect",
        "--metrics-addr",
        "--resync",
        "LOG_LEVEL",
        "LOG_TYPE",
    ] {
        assert!(help.contains(flag), "--help misses {flag}:\n{help}");
    }
    assert!(help.contains("Example"), "{help}");
    Ok(())
}

#[test]
fn crd_subcommand_prints_the_multicasskop_crd() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .arg("crd")
        .output()?;
    assert!(out.status.success());
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(
        yaml.contains("kind: CustomResourceDefinition")
            && yaml.contains("multicasskops.db.orange.com"),
        "{yaml}"
    );
    Ok(())
}

#[test]
fn help_documents_the_leader_election_timings_and_their_defaults() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .arg("--help")
        .output()?;
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, default) in [
        ("--leader-elect-lease-duration", "[default: 15s]"),
        ("--leader-elect-renew-deadline", "[default: 10s]"),
        ("--leader-elect-retry-period", "[default: 2s]"),
    ] {
        let at = help
            .find(flag)
            .unwrap_or_else(|| panic!("--help misses {flag}:\n{help}"));
        let next = help[at + flag.len()..]
            .find("\n  -")
            .map_or(help.len(), |n| at + flag.len() + n);
        assert!(
            help[at..next].contains(default),
            "{flag} {default}:\n{help}"
        );
    }
    Ok(())
}

#[test]
fn a_renew_deadline_not_shorter_than_the_lease_is_refused_naming_both_flags() -> anyhow::Result<()>
{
    let out = Command::new(env!("CARGO_BIN_EXE_multi-casskop"))
        .args([
            "-lk8s-cluster1",
            "--leader-elect",
            "--leader-elect-lease-duration",
            "10s",
            "--leader-elect-renew-deadline",
            "10s",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env_remove("RUST_LOG")
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--leader-elect-renew-deadline (10s) must be shorter than --leader-elect-lease-duration (10s)"
        ),
        "{stderr}"
    );
    Ok(())
}
