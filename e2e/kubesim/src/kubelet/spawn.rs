//! Starting a container's process: in the pod's network namespace, in a mount and UTS namespace of its own with the pod's volumes at their paths, its output captured as the container log.
//!
//! The process is started with util-linux's `setpriv` (dies with kubesim), `nsenter` (the pod's
//! network namespace), `unshare` (private mount and UTS namespaces) and a short `/bin/sh`
//! prologue that mounts the volumes with `mount -n` (no utab writes) and then `exec`s the
//! container's command, so that the pid kubesim signals is the container's own. A mount path
//! whose directory does not exist on the host is made inside a tmpfs laid over its nearest
//! existing ancestor, whose entries are bound back first: nothing on the host changes.
use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use tokio::sync::oneshot;

use super::logs::LogBuf;

/// One volume mount of a container.
#[derive(Debug, Clone)]
pub struct Mount {
    pub host_dir: PathBuf,
    pub path: PathBuf,
    pub read_only: bool,
}

/// Who the process runs as (from the container's and the pod's securityContext).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// (uid, gid, supplementary groups: fsGroup and supplementalGroups); None: root.
    pub user: Option<(i64, i64, Vec<i64>)>,
    /// allowPrivilegeEscalation: false.
    pub no_new_privs: bool,
}

/// Everything needed to start one container's process.
#[derive(Debug)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    pub read_only_root: bool,
    pub hostname: String,
    pub netns: String,
    /// A directory of kubesim's where the shadowed ancestors of mount paths are bound.
    pub stage_dir: PathBuf,
    /// Who the process runs as (set after the mounts, which need root).
    pub identity: Identity,
}

/// How a container's process ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// As container runtimes report it: the exit code, or 128 + the signal.
    pub code: i32,
    pub signal: Option<i32>,
}

/// A running container process.
#[derive(Debug)]
pub struct Running {
    pub pid: u32,
    pub exited: oneshot::Receiver<Exit>,
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `shadow DIR STAGE`: lays a tmpfs over DIR after binding its entries back from STAGE.
const PROLOGUE: &str = r#"set -e
shadow() {
  mount -n --rbind "$1" "$2"
  # Pods must not hold other pods' network namespaces (ip netns keeps them mounted in /run/netns).
  if [ -d "$2/netns" ]; then umount -n -R -l "$2/netns" 2>/dev/null || true; fi
  mount -n -t tmpfs -o mode=755 tmpfs "$1"
  for e in "$2"/* "$2"/.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    b=${e##*/}
    if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$1/$b"
    elif [ -d "$e" ]; then mkdir -p "$1/$b"; mount -n --rbind "$e" "$1/$b"
    else : > "$1/$b"; mount -n --bind "$e" "$1/$b"; fi
  done
}
"#;

/// The prologue script mounting `spec`'s volumes, decided from what exists on the host now.
fn mount_script(spec: &ProcessSpec) -> anyhow::Result<String> {
    let mut script = String::from(PROLOGUE);
    // Directories that are kubesim's own tmpfs (or made inside one): creating below is free.
    let mut ours: BTreeSet<PathBuf> = BTreeSet::new();
    let mut shadowed: Vec<PathBuf> = vec![];
    let mut mounts = spec.mounts.clone();
    mounts.sort_by_key(|m| m.path.components().count());
    for (i, m) in mounts.iter().enumerate() {
        let (ancestor, rest) = nearest_existing(&m.path, &ours)?;
        let target = ancestor.join(&rest);
        if rest.as_os_str().is_empty() {
            // The path exists: mount over it.
        } else {
            let in_ours = ours.iter().any(|o| ancestor.starts_with(o));
            if !in_ours {
                let stage = spec.stage_dir.join(format!("shadow{i}"));
                std::fs::create_dir_all(&stage)
                    .with_context(|| format!("creating {}", stage.display()))?;
                script.push_str(&format!(
                    "shadow {} {}\n",
                    sh_quote(&ancestor.to_string_lossy()),
                    sh_quote(&stage.to_string_lossy())
                ));
                ours.insert(ancestor.clone());
                shadowed.push(ancestor.clone());
            }
            script.push_str(&format!(
                "mkdir -p {}\n",
                sh_quote(&target.to_string_lossy())
            ));
            let mut p = ancestor.clone();
            for c in rest.components() {
                p.push(c);
                ours.insert(p.clone());
            }
        }
        let t = sh_quote(&target.to_string_lossy());
        script.push_str(&format!(
            "mount -n --bind {} {t}\n",
            sh_quote(&m.host_dir.to_string_lossy())
        ));
        if m.read_only {
            script.push_str(&format!("mount -n -o remount,bind,ro {t}\n"));
        }
    }
    if spec.read_only_root {
        for s in &shadowed {
            script.push_str(&format!(
                "mount -n -o remount,ro {}\n",
                sh_quote(&s.to_string_lossy())
            ));
        }
        script.push_str("mount -n -o remount,bind,ro /\n");
    }
    script.push_str(&format!(
        "echo {} > /proc/sys/kernel/hostname\n",
        sh_quote(&spec.hostname)
    ));
    if let Some(wd) = &spec.working_dir {
        script.push_str(&format!("cd {}\n", sh_quote(wd)));
    }
    let mut drop = vec![];
    if let Some((uid, gid, groups)) = &spec.identity.user {
        drop.push(format!("--reuid={uid} --regid={gid}"));
        if groups.is_empty() {
            drop.push("--clear-groups".into());
        } else {
            let g: Vec<String> = groups.iter().map(ToString::to_string).collect();
            drop.push(format!("--groups={}", g.join(",")));
        }
    }
    if spec.identity.no_new_privs {
        drop.push("--no-new-privs".into());
    }
    if drop.is_empty() {
        script.push_str("exec \"$@\"\n");
    } else {
        // A credential change clears the parent-death signal: set it again.
        script.push_str(&format!(
            "exec setpriv {} --pdeathsig KILL -- \"$@\"\n",
            drop.join(" ")
        ));
    }
    Ok(script)
}

/// The deepest existing ancestor of `path` (symlinks resolved) and the part below it.
fn nearest_existing(path: &Path, ours: &BTreeSet<PathBuf>) -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut rest = vec![];
    let mut p = path.to_path_buf();
    loop {
        if ours.contains(&p) {
            break;
        }
        if p.exists() {
            p = std::fs::canonicalize(&p).with_context(|| format!("resolving {}", p.display()))?;
            break;
        }
        let Some(name) = p.file_name().map(ToOwned::to_owned) else {
            anyhow::bail!("mount path {} has no existing ancestor", path.display());
        };
        rest.push(name);
        p.pop();
    }
    let rest: PathBuf = rest.iter().rev().collect();
    Ok((p, rest))
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Every process is started from one long-lived thread: `setpriv --pdeathsig` ties a process
/// to the thread that started it, and this one lives as long as kubesim.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("kubelet-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok();
        Mutex::new(tx)
    })
}

/// Starts the process; its stdout and stderr lines go to `log`, its end to `Running::exited`.
pub fn start(spec: &ProcessSpec, log: Arc<LogBuf>) -> anyhow::Result<Running> {
    let script = mount_script(spec)?;
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "KILL", "--", "nsenter"])
        .arg(format!("--net=/run/netns/{}", spec.netns))
        .args([
            "--",
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
        ])
        .args(["/bin/sh", "-c", &script, "kubesim-container"])
        .arg(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send((cmd, tx))
        .context("the spawner thread is gone")?;
    let mut child = rx
        .recv()
        .context("the spawner thread is gone")?
        .context("starting setpriv/nsenter/unshare (util-linux)")?;
    let pid = child.id();
    // The log ends when the last stream closes (a leftover grandchild may hold it open
    // after the main process exits, until the group is killed).
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(2));
    for r in [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ] {
        let log = log.clone();
        let open = open.clone();
        std::thread::spawn(move || {
            if let Some(mut r) = r {
                // As the CRI log: whole lines, and a partial one as soon as it is written.
                let mut buf = [0u8; 8192];
                loop {
                    let n = match r.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    for piece in buf[..n].split_inclusive(|b| *b == b'\n') {
                        log.push(piece.to_vec());
                    }
                }
            }
            if open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                log.end();
            }
        });
    }
    let (exit_tx, exited) = oneshot::channel();
    std::thread::spawn(move || {
        let exit = match child.wait() {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(c), _) => Exit {
                    code: c,
                    signal: None,
                },
                (None, Some(sig)) => Exit {
                    code: 128 + sig,
                    signal: Some(sig),
                },
                _ => Exit {
                    code: 1,
                    signal: None,
                },
            },
            Err(_) => Exit {
                code: 1,
                signal: None,
            },
        };
        // Give the readers a moment to take the last lines, as the runtime's log file has
        // them before the container's exit is reported.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let _ = exit_tx.send(exit);
    });
    Ok(Running { pid, exited })
}

/// SIGTERM to the container's main process, as the runtime's stop does first.
pub fn terminate(pid: u32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    }
}

/// SIGKILL to every process of the container (its process group).
pub fn kill(pid: u32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_mount_paths_are_made_in_one_tmpfs_over_their_nearest_existing_ancestor() {
        let stage = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        let m = |p: &str| Mount {
            host_dir: host.path().to_path_buf(),
            path: PathBuf::from(p),
            read_only: true,
        };
        let spec = ProcessSpec {
            program: "/bin/true".into(),
            args: vec![],
            env: vec![],
            working_dir: None,
            mounts: vec![
                m("/var/run/secrets/admiralty.io/serviceaccountimports/site2"),
                m("/var/run/secrets/kubernetes.io/serviceaccount"),
            ],
            read_only_root: true,
            hostname: "pod".into(),
            netns: "unused".into(),
            stage_dir: stage.path().to_path_buf(),
            identity: Identity::default(),
        };
        let script = mount_script(&spec).unwrap();
        let run = std::fs::canonicalize("/var/run").unwrap();
        let run = run.to_string_lossy();
        assert_eq!(script.matches("\nshadow ").count(), 1, "{script}");
        assert!(script.contains(&format!("shadow '{run}' ")), "{script}");
        assert!(script.contains(&format!(
            "mkdir -p '{run}/secrets/admiralty.io/serviceaccountimports/site2'"
        )));
        assert!(script.contains(&format!(
            "mount -n -o remount,bind,ro '{run}/secrets/kubernetes.io/serviceaccount'"
        )));
        assert!(script.ends_with("mount -n -o remount,bind,ro /\necho 'pod' > /proc/sys/kernel/hostname\nexec \"$@\"\n"), "{script}");
    }
}
