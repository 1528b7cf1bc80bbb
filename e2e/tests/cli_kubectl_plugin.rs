//! The binary as the kubectl plugin `kubectl multicasskop`, found by real kubectl's plugin
//! discovery on a temporary PATH, and the shell completion scripts it prints.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};

use e2e::{Env, NAMESPACE, binary, retarget_sample, sample};
use kubesim::kubectl::kubectl_bin;

const MC: &str = "multi-casskop-demo";

/// Real kubectl with `PATH` = `plugins` then kubectl's own directory, `KUBECONFIG` = `kubeconfig`.
fn kubectl(plugins: &Path, kubeconfig: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let bin = kubectl_bin();
    let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
    let kubectl_dir = bin.parent().map(Path::to_path_buf).unwrap_or_default();
    let out = Command::new(&bin)
        .args(args)
        .env(
            "PATH",
            format!("{}:{}", plugins.display(), kubectl_dir.display()),
        )
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", plugins)
        .output()?;
    println!(
        "$ kubectl {} -> {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_runs_the_plugin_which_speaks_under_the_name_kubectl_multicasskop()
-> anyhow::Result<()> {
    let env = Env::start(&["k8s-cluster1", "k8s-cluster2"]).await?;
    let _ctl = env.start_controller("controller", &[])?;
    env.apply_yaml(&retarget_sample(
        &sample("multi-casskop.yaml")?,
        env.names(),
    ))?;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("multicasskop/{MC}"),
        "--timeout=240s",
    ])?;
    let plugins = tempfile::tempdir()?;
    symlink(binary()?, plugins.path().join("kubectl-multicasskop"))?;
    let admin = &env.admin_kubeconfig;
    let run = |args: &[&str]| kubectl(plugins.path(), admin, args);

    let list = run(&["plugin", "list"])?;
    assert!(
        text(&list.stdout).contains(&format!(
            "{}/kubectl-multicasskop",
            plugins.path().display()
        )),
        "kubectl plugin list does not show the plugin"
    );

    // KUBECONFIG from the environment; --context and -n as kubectl's, after the plugin name.
    let status = run(&[
        "multicasskop",
        "status",
        MC,
        "-n",
        NAMESPACE,
        "--context",
        "k8s-cluster1",
        "-r",
        "k8s-cluster2",
        "--use-kubeconfig-contexts",
    ])?;
    assert_eq!(status.status.code(), Some(0));
    let table = text(&status.stdout);
    assert!(table.contains("SITE") && table.contains("READY"), "{table}");
    for site in env.names() {
        let row = table.lines().find(|l| l.starts_with(site.as_str()));
        assert!(
            row.is_some_and(|r| r.contains("Running")),
            "no Running row for {site}:\n{table}"
        );
    }

    let help = run(&["multicasskop", "--help"])?;
    assert_eq!(help.status.code(), Some(0));
    let help = text(&help.stdout);
    assert!(
        help.contains("Usage: kubectl multicasskop <COMMAND>"),
        "{help}"
    );
    assert!(help.contains("status") && help.contains("ring") && help.contains("register"));
    let alone = run(&["multicasskop"])?;
    assert_eq!(alone.status.code(), Some(0), "alone: the help, as kubectl");
    assert!(text(&alone.stdout).contains("Usage: kubectl multicasskop"));
    let sub_help = text(&run(&["multicasskop", "status", "--help"])?.stdout);
    assert!(
        sub_help.contains("Usage: kubectl multicasskop status [OPTIONS] <NAME>")
            && sub_help.contains("kubectl multicasskop status cassandra-3dc -n cassandra"),
        "{sub_help}"
    );

    let missing = run(&["multicasskop", "status", "nope", "-n", NAMESPACE])?;
    assert_eq!(missing.status.code(), Some(1));
    let err = text(&missing.stderr);
    assert!(
        err.contains(&format!(
            "kubectl multicasskop status: MultiCasskop {NAMESPACE}/nope not found"
        )),
        "{err}"
    );
    let typo = run(&["multicasskop", "statsu"])?;
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains("Usage: kubectl multicasskop <COMMAND>"),
        "{}",
        text(&typo.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_completes_the_plugin_through_kubectl_complete_multicasskop() -> anyhow::Result<()>
{
    let env = Env::start(&["k8s-cluster1", "k8s-cluster2"]).await?;
    let admin = &env.admin_kubeconfig;
    // Both ways the README gives: a link to the binary, or the script it prints.
    for how in ["link", "script"] {
        let plugins = tempfile::tempdir()?;
        let dir = plugins.path();
        symlink(binary()?, dir.join("kubectl-multicasskop"))?;
        let helper = dir.join("kubectl_complete-multicasskop");
        if how == "link" {
            symlink(binary()?, &helper)?;
        } else {
            let script = Command::new(binary()?)
                .args(["completions", "kubectl-plugin"])
                .output()?;
            assert_eq!(script.status.code(), Some(0));
            std::fs::write(&helper, &script.stdout)?;
            Command::new("chmod").arg("+x").arg(&helper).status()?;
        }
        let subs = kubectl(dir, admin, &["__complete", "multicasskop", "st"])?;
        let subs = text(&subs.stdout);
        assert!(
            subs.lines().any(|l| l.starts_with("status\t")),
            "{how}: {subs}"
        );
        assert!(subs.ends_with(":4\n"), "{how}: {subs}");
        let outputs = kubectl(
            dir,
            admin,
            &["__complete", "multicasskop", "status", "x", "-o", ""],
        )?;
        let outputs = text(&outputs.stdout);
        for v in ["table", "wide", "json", "yaml"] {
            assert!(
                outputs.lines().any(|l| l.starts_with(v)),
                "{how}: {outputs}"
            );
        }
        let contexts = kubectl(
            dir,
            admin,
            &["__complete", "multicasskop", "status", "x", "--context", ""],
        )?;
        let contexts = text(&contexts.stdout);
        for c in env.names() {
            assert!(
                contexts.lines().any(|l| l == c),
                "{how}: kubeconfig contexts offered for --context: {contexts}"
            );
        }
    }
    Ok(())
}

#[test]
fn completion_scripts_name_every_command_and_bash_loads_one() -> anyhow::Result<()> {
    let script = |shell: &str| -> anyhow::Result<String> {
        let out = Command::new(binary()?)
            .args(["completions", shell])
            .output()?;
        assert_eq!(out.status.code(), Some(0), "completions {shell}");
        Ok(text(&out.stdout))
    };
    let (bash, zsh, fish) = (script("bash")?, script("zsh")?, script("fish")?);
    assert!(zsh.starts_with("#compdef multi-casskop"), "{zsh}");
    assert!(fish.contains("complete -c multi-casskop"), "{fish}");
    for sub in [
        "status",
        "ring",
        "register",
        "check",
        "export",
        "completions",
    ] {
        for (shell, s) in [("bash", &bash), ("zsh", &zsh), ("fish", &fish)] {
            assert!(s.contains(sub), "the {shell} script does not mention {sub}");
        }
    }
    assert!(bash.contains("--watch") && zsh.contains("--watch") && fish.contains("watch"));
    let bin = binary()?;
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source <('{}' completions bash); complete -p multi-casskop",
            bin.display()
        ))
        .output()?;
    assert_eq!(loaded.status.code(), Some(0), "{}", text(&loaded.stderr));
    assert!(
        text(&loaded.stdout).contains("multi-casskop"),
        "complete -p shows no completion for multi-casskop: {}",
        text(&loaded.stdout)
    );
    assert!(text(&loaded.stderr).is_empty(), "{}", text(&loaded.stderr));
    Ok(())
}
