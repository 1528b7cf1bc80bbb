//! `multi-casskop status NAME --watch` in a pipe, as a user sees it: the lines of each change of a
//! real rollout and a last line once Ready (exit 0); a clear error when the MultiCasskop is
//! deleted or missing; exit 130 on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;
use e2e::{Env, EnvOptions, NAMESPACE, binary, retarget_sample, sample};
use kubesim::casskop::CasskopOptions;

const MC: &str = "multi-casskop-demo";
/// Generous: these tests assert outcomes, never how long they took.
const PATIENCE: Duration = Duration::from_secs(300);

/// A running `multi-casskop status NAME --watch`, its stdout and stderr in files (a pipe: no TTY).
struct Watching {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Watching {
    fn start(env: &Env, name: &str, dir: &Path) -> anyhow::Result<Watching> {
        Self::start_with(env, name, dir, &[])
    }

    fn start_with(env: &Env, name: &str, dir: &Path, extra: &[&str]) -> anyhow::Result<Watching> {
        let label = format!("{name}-{}", e2e::free_port()?);
        let (out, err) = (
            dir.join(format!("{label}.out")),
            dir.join(format!("{label}.err")),
        );
        let child = Command::new(binary()?)
            .args(["status", name, "--watch", "-n", NAMESPACE, "--context"])
            .arg(&env.names()[0])
            .arg("--kubeconfig")
            .arg(&env.admin_kubeconfig)
            .arg("--use-kubeconfig-contexts")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?)
            .spawn()?;
        Ok(Watching { child, out, err })
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until stdout contains `text`; fails if the process ends first.
    fn until_printed(&mut self, text: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while !self.stdout().contains(text) {
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "exited ({st}) before printing {text:?}:\n{}\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            if Instant::now() > deadline {
                bail!("never printed {text:?}:\n{}", self.stdout());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The exit code once it ends by itself.
    fn exit_code(&mut self) -> anyhow::Result<Option<i32>> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.child.try_wait()? {
                println!(
                    "exit {:?}\n--- stdout:\n{}--- stderr:\n{}",
                    st.code(),
                    self.stdout(),
                    self.stderr()
                );
                return Ok(st.code());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("still watching after {PATIENCE:?}:\n{}", self.stdout());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn env_options() -> EnvOptions {
    EnvOptions {
        // Slow enough that the rollout is seen moving, step by step.
        casskop: CasskopOptions {
            ready_after: Duration::from_secs(3),
            react_after: Duration::from_secs(1),
        },
        ..EnvOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_in_a_pipe_prints_each_change_of_the_rollout_and_ends_ready() -> anyhow::Result<()> {
    let env = Env::start_with(&["k8s-cluster1", "k8s-cluster2"], env_options()).await?;
    let _ctl = env.start_controller("controller", &[])?;
    env.apply_yaml(&retarget_sample(
        &sample("multi-casskop.yaml")?,
        env.names(),
    ))?;
    let scratch = tempfile::tempdir()?;
    let mut w = Watching::start(&env, MC, scratch.path())?;
    assert_eq!(w.exit_code()?, Some(0), "{}", w.stderr());
    let out = w.stdout();
    assert!(!out.contains('\u{1b}'), "escape codes in a pipe:\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some(
            format!(
                "MultiCasskop {NAMESPACE}/{MC} is Ready: AllSitesReady: all 2 site(s) are Running and up to date: k8s-cluster1, k8s-cluster2"
            )
            .as_str()
        ),
        "{out}"
    );
    let summaries = lines
        .iter()
        .filter(|l| l.starts_with(&format!("MultiCasskop {NAMESPACE}/{MC}: phase")))
        .count();
    assert!(
        summaries >= 2,
        "the rollout's progress was printed as it moved:\n{out}"
    );
    for site in env.names() {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(site.as_str()) && l.contains("Running")),
            "no line shows {site} Running:\n{out}"
        );
    }
    // Each printed block says something new: no line repeats the one before it.
    assert!(lines.windows(2).all(|w| w[0] != w[1]), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ends_with_an_error_on_deletion_a_missing_name_or_its_timeout_and_130_on_ctrl_c()
-> anyhow::Result<()> {
    // No controller: the MultiCasskop never becomes Ready and has no finalizer to wait for.
    let env = Env::start_with(&["k8s-cluster1", "k8s-cluster2"], env_options()).await?;
    env.apply_yaml(&retarget_sample(
        &sample("multi-casskop.yaml")?,
        env.names(),
    ))?;
    let scratch = tempfile::tempdir()?;

    let mut deleted = Watching::start(&env, MC, scratch.path())?;
    deleted.until_printed("SITE")?;
    env.kubectl(&["delete", "multicasskop", MC])?;
    assert_eq!(deleted.exit_code()?, Some(1));
    assert!(
        deleted.stderr().contains(&format!(
            "MultiCasskop {NAMESPACE}/{MC} was deleted from the local cluster k8s-cluster1 while watching it"
        )),
        "{}",
        deleted.stderr()
    );

    let mut missing = Watching::start(&env, "nope", scratch.path())?;
    assert_eq!(missing.exit_code()?, Some(1));
    assert!(
        missing
            .stderr()
            .contains(&format!("MultiCasskop {NAMESPACE}/nope not found")),
        "{}",
        missing.stderr()
    );

    env.apply_yaml(&retarget_sample(
        &sample("multi-casskop.yaml")?,
        env.names(),
    ))?;
    let mut timed_out = Watching::start_with(&env, MC, scratch.path(), &["--timeout", "2s"])?;
    assert_eq!(timed_out.exit_code()?, Some(1));
    assert!(
        timed_out.stderr().contains(&format!(
            "MultiCasskop {NAMESPACE}/{MC} is not Ready after 2s (--timeout): no Ready condition from the controller yet"
        )),
        "{}",
        timed_out.stderr()
    );

    let mut interrupted = Watching::start(&env, MC, scratch.path())?;
    interrupted.until_printed("SITE")?;
    let pid = interrupted.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()?
            .success()
    );
    assert_eq!(interrupted.exit_code()?, Some(130), "as shells expect");
    Ok(())
}
