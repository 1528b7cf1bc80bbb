//! `status --watch`: the table followed as the MultiCasskop and its sites change, until Ready.
//!
//! Driven by watches, never by polling: the MultiCasskop (local cluster, by name), and at each
//! site its CassandraCluster and its pods (what the table shows). Any event re-reads the table
//! (the same reads as `status`, each under the request deadline); a burst of events is read once.
//! Every watch starts from `watch_config()`: the API server ends it after a minute and kube's
//! watcher takes a longer silence as a dead connection and resumes, so a cut connection never
//! freezes the view; failing watches are retried with the project's backoff.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::args::{StatusArgs, StatusOutput};
use super::render::{condition_line, render, site_row, summary_line, table_header};
use super::report::{StatusReport, report};
use crate::api::{MultiCasskop, cassandra::cassandra_cluster_resource};
use crate::backoff::Backoff;
use crate::cli::common::federation::{self, Federation};
use crate::cli::common::table::render_table;
use crate::rollout::status::condition;
use crate::sites::deadlines;

/// The exit code shells give a command ended by SIGINT (128 + 2).
const INTERRUPTED: u8 = 130;
/// Events closer than this are one change: one re-read of the sites.
const SETTLE: Duration = Duration::from_millis(200);
/// How often a terminal view refreshes the LAST TRANSITION ages.
const AGE_TICK: Duration = Duration::from_secs(1);

/// What a watch saw.
#[derive(Debug)]
enum Seen {
    /// The MultiCasskop as it is now.
    MultiCasskop(Box<MultiCasskop>),
    /// The MultiCasskop is gone.
    Deleted,
    /// A site's CassandraCluster or one of its pods changed.
    Site,
}

/// Whether the MultiCasskop is Ready: its `Ready` condition is `True` and was written for the
/// current spec (the condition's `observedGeneration`, else the status's, equals
/// `metadata.generation`). A Ready written before the last spec change says nothing about it.
pub fn is_ready(mc: &MultiCasskop) -> bool {
    let Some(st) = &mc.status else { return false };
    let generation = mc.metadata.generation;
    st.conditions.iter().any(|c| {
        c.type_ == condition::READY
            && c.status == "True"
            && c.observed_generation.or(st.observed_generation) == generation
    })
}

/// What the Ready condition says, for the last line (Ready) or a timeout (not Ready).
fn ready_text(mc: &MultiCasskop) -> String {
    let c = mc
        .status
        .as_ref()
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == condition::READY));
    match c {
        Some(c) if is_ready(mc) || c.status != "True" => format!("{}: {}", c.reason, c.message),
        Some(c) => format!(
            "{}: {} (written for generation {}, the spec is at generation {})",
            c.reason,
            c.message,
            c.observed_generation
                .map_or_else(|| "?".into(), |g| g.to_string()),
            mc.metadata
                .generation
                .map_or_else(|| "?".into(), |g| g.to_string())
        ),
        None => "no Ready condition from the controller yet".into(),
    }
}

/// `status NAME --watch`.
pub async fn run(args: &StatusArgs, fed: Federation) -> anyhow::Result<ExitCode> {
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let (tx, mut rx) = mpsc::channel(256);
    let _mc_watch = Task(tokio::spawn(watch_multicasskop(
        fed.local_client.clone(),
        fed.namespace.clone(),
        args.name.clone(),
        tx.clone(),
    )));
    let mut w = Watch {
        site_watches: watch_sites(&fed, &tx),
        view: View::new(args.output),
        fed,
        tx,
    };
    w.view.show(&report(&w.fed).await);
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut ages = tokio::time::interval(AGE_TICK);
    while !is_ready(&w.fed.mc) {
        tokio::select! {
            _ = sigint.recv() => {
                w.view.interrupted();
                return Ok(ExitCode::from(INTERRUPTED));
            }
            () = sleep_until(deadline) => {
                w.view.stopped();
                anyhow::bail!(
                    "MultiCasskop {}/{} is not Ready after {:?} (--timeout): {}",
                    w.fed.namespace, args.name, args.timeout.unwrap_or_default(), ready_text(&w.fed.mc)
                );
            }
            _ = ages.tick() => w.view.tick(),
            seen = rx.recv() => {
                let mut batch = vec![seen];
                tokio::time::sleep(SETTLE).await;
                while let Ok(s) = rx.try_recv() {
                    batch.push(Some(s));
                }
                w.take(batch, args).await?;
                w.view.show(&report(&w.fed).await);
            }
        }
    }
    w.view.ready(&w.fed.mc);
    Ok(ExitCode::SUCCESS)
}

/// The state of a running watch.
struct Watch {
    fed: Federation,
    view: View,
    site_watches: Vec<Task>,
    tx: mpsc::Sender<Seen>,
}

impl Watch {
    /// Takes in what the watches saw (`None`: every sender is gone, which cannot happen while
    /// the MultiCasskop watch runs, so it counts as the end of it).
    async fn take(&mut self, batch: Vec<Option<Seen>>, args: &StatusArgs) -> anyhow::Result<()> {
        for seen in batch {
            match seen {
                Some(Seen::MultiCasskop(mc)) => {
                    if mc.metadata.generation != self.fed.mc.metadata.generation {
                        // The spec changed: the sites and their desired objects may have too.
                        self.fed =
                            federation::load(&args.sites, &args.name, args.use_kubeconfig_contexts)
                                .await?;
                        self.site_watches = watch_sites(&self.fed, &self.tx);
                    }
                    self.fed.mc = *mc;
                }
                Some(Seen::Deleted) | None => {
                    self.view.stopped();
                    let phase = self.fed.mc.status.as_ref().and_then(|s| s.phase.clone());
                    anyhow::bail!(
                        "MultiCasskop {}/{} was deleted from the local cluster {} while watching it (last phase: {})",
                        self.fed.namespace,
                        args.name,
                        self.fed.local,
                        phase.as_deref().unwrap_or("-")
                    );
                }
                Some(Seen::Site) => {}
            }
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A spawned watch, stopped when dropped (the sites changed, or the command ends).
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches the MultiCasskop `name`: every version of it, and its deletion (also a deletion
/// missed while the watch was down: a re-list without it).
async fn watch_multicasskop(
    client: kube::Client,
    namespace: String,
    name: String,
    tx: mpsc::Sender<Seen>,
) {
    let api: Api<MultiCasskop> = Api::namespaced(client, &namespace);
    let cfg = deadlines::watch_config().fields(&format!("metadata.name={name}"));
    let mut listed = false;
    follow(
        api,
        cfg,
        &format!("MultiCasskop {namespace}/{name}"),
        |event| {
            let seen = match event {
                Event::Init => {
                    listed = false;
                    return None;
                }
                Event::InitApply(mc) | Event::Apply(mc) => {
                    listed = true;
                    Seen::MultiCasskop(Box::new(mc))
                }
                Event::InitDone if listed => return None,
                Event::InitDone | Event::Delete(_) => Seen::Deleted,
            };
            Some(seen)
        },
        &tx,
    )
    .await;
}

/// At every reachable site: a watch on its CassandraCluster and one on its pods.
fn watch_sites(fed: &Federation, tx: &mpsc::Sender<Seen>) -> Vec<Task> {
    let mut tasks = vec![];
    for s in &fed.sites {
        let (Ok(site), Ok(desired)) = (&s.site, &s.desired) else {
            continue;
        };
        let ccs: Api<DynamicObject> = Api::namespaced_with(
            site.client.clone(),
            &desired.namespace,
            &cassandra_cluster_resource(),
        );
        let what = format!(
            "site {}: CassandraCluster {}/{}",
            s.name, desired.namespace, desired.name
        );
        let cfg = deadlines::watch_config().fields(&format!("metadata.name={}", desired.name));
        let tx2 = tx.clone();
        tasks.push(Task(tokio::spawn(async move {
            follow(ccs, cfg, &what, |_| Some(Seen::Site), &tx2).await;
        })));
        let pods: Api<Pod> = Api::namespaced(site.client.clone(), &desired.namespace);
        let what = format!(
            "site {}: pods of CassandraCluster {}/{}",
            s.name, desired.namespace, desired.name
        );
        let cfg = deadlines::watch_config().labels(&format!(
            "app=cassandracluster,cassandracluster={}",
            desired.name
        ));
        let tx2 = tx.clone();
        tasks.push(Task(tokio::spawn(async move {
            follow(pods, cfg, &what, |_| Some(Seen::Site), &tx2).await;
        })));
    }
    tasks
}

/// Runs a watch until the receiver is gone, sending what `on_event` makes of each event; a
/// failing watch waits out the backoff before kube's watcher tries again.
async fn follow<K, F>(
    api: Api<K>,
    cfg: watcher::Config,
    what: &str,
    mut on_event: F,
    tx: &mpsc::Sender<Seen>,
) where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    F: FnMut(Event<K>) -> Option<Seen>,
{
    let mut stream = watcher(api, cfg).boxed();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    while let Some(event) = stream.next().await {
        match event {
            Ok(e) => {
                backoff.reset();
                if let Some(seen) = on_event(e)
                    && tx.send(seen).await.is_err()
                {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!("watching {what}: {e}; retrying");
                tokio::time::sleep(backoff.failed(std::time::Instant::now())).await;
            }
        }
    }
}

/// Where the watch is shown.
enum View {
    /// A terminal: the whole view redrawn in place.
    Terminal {
        bar: ProgressBar,
        wide: bool,
        last: Option<StatusReport>,
    },
    /// A pipe or file, table forms: the first view whole, then the lines that changed.
    Lines {
        wide: bool,
        last: Option<StatusReport>,
    },
    /// JSON or YAML: one document per change.
    Documents {
        yaml: bool,
        last: Option<StatusReport>,
    },
}

impl View {
    fn new(output: StatusOutput) -> Self {
        let wide = output == StatusOutput::Wide;
        match output {
            StatusOutput::Json | StatusOutput::Yaml => Self::Documents {
                yaml: output == StatusOutput::Yaml,
                last: None,
            },
            _ if std::io::stdout().is_terminal() => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
                let style = ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                Self::Terminal {
                    bar,
                    wide,
                    last: None,
                }
            }
            _ => Self::Lines { wide, last: None },
        }
    }

    /// Shows `r` if it differs from what is shown.
    fn show(&mut self, r: &StatusReport) {
        let now = jiff::Timestamp::now();
        match self {
            Self::Terminal { bar, wide, last } => {
                bar.set_message(render(r, *wide, now).trim_end().to_string());
                *last = Some(r.clone());
            }
            Self::Lines { wide, last } => {
                let text = match last {
                    None => render(r, *wide, now),
                    Some(prev) => changed_lines(prev, r, *wide, now),
                };
                print_flush(&text);
                *last = Some(r.clone());
            }
            Self::Documents { yaml, last } => {
                if last.as_ref() == Some(r) {
                    return;
                }
                let doc = if *yaml {
                    serde_saphyr::to_string(r)
                        .map(|y| format!("---\n{y}"))
                        .unwrap_or_else(|e| format!("# cannot write YAML: {e}\n"))
                } else {
                    serde_json::to_string_pretty(r)
                        .map(|j| format!("{j}\n"))
                        .unwrap_or_else(|e| format!("cannot write JSON: {e}\n"))
                };
                print_flush(&doc);
                *last = Some(r.clone());
            }
        }
    }

    /// A terminal's ages move on with the clock.
    fn tick(&mut self) {
        if let Self::Terminal { bar, wide, last } = self
            && let Some(r) = last
        {
            bar.set_message(
                render(r, *wide, jiff::Timestamp::now())
                    .trim_end()
                    .to_string(),
            );
        }
    }

    /// Ready: the view as it is, then a line saying so (table forms).
    fn ready(&mut self, mc: &MultiCasskop) {
        self.stopped();
        if !matches!(self, Self::Documents { .. }) {
            let ns = mc.metadata.namespace.as_deref().unwrap_or_default();
            let name = mc.metadata.name.as_deref().unwrap_or_default();
            print_flush(&format!(
                "MultiCasskop {ns}/{name} is Ready: {}\n",
                ready_text(mc)
            ));
        }
    }

    /// The view ends (Ready, deleted, timeout): a terminal keeps the last table on screen.
    fn stopped(&mut self) {
        if let Self::Terminal { bar, .. } = self {
            bar.finish();
        }
    }

    /// Ctrl-C: as [`Self::stopped`], and the shell prompt starts on a fresh line.
    fn interrupted(&mut self) {
        if let Self::Terminal { bar, .. } = self {
            bar.abandon();
            println!();
        }
    }
}

fn print_flush(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The lines of `r` that differ from `prev`: the summary line, conditions, and site rows (in
/// the table's columns, without the header), as `kubectl get -w` prints only what changed.
fn changed_lines(
    prev: &StatusReport,
    r: &StatusReport,
    wide: bool,
    now: jiff::Timestamp,
) -> String {
    let mut out = String::new();
    if summary_line(prev) != summary_line(r) {
        out.push_str(&summary_line(r));
        out.push('\n');
    }
    for c in &r.conditions {
        let same = |p: &crate::api::Condition| {
            (&p.type_, &p.status, &p.reason, &p.message)
                == (&c.type_, &c.status, &c.reason, &c.message)
        };
        if !prev.conditions.iter().any(same) {
            out.push_str(&condition_line(c));
            out.push('\n');
        }
    }
    let rows: Vec<Vec<String>> = r
        .sites
        .iter()
        .filter(|s| !prev.sites.contains(s))
        .map(|s| site_row(s, wide, now))
        .collect();
    if !rows.is_empty() {
        let table = render_table(&table_header(wide), &rows);
        out.extend(table.lines().skip(1).map(|l| format!("{l}\n")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Condition;
    use crate::cli::status::report::SiteLine;

    fn mc(generation: i64, ready: &str, observed: Option<i64>) -> MultiCasskop {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "db.orange.com/v2", "kind": "MultiCasskop",
            "metadata": {"name": "c3", "namespace": "ns", "generation": generation},
            "spec": {"base": {}, "override": {}},
            "status": {"observedGeneration": observed, "conditions": [{
                "type": "Ready", "status": ready, "reason": "AllSitesReady",
                "message": "all 2 site(s) are Running and up to date: a, b",
                "lastTransitionTime": "2026-01-01T11:00:00Z"}]}
        }))
        .expect("a valid MultiCasskop")
    }

    #[test]
    fn ready_means_ready_true_written_for_the_current_generation() {
        assert!(is_ready(&mc(2, "True", Some(2))));
        assert!(!is_ready(&mc(2, "False", Some(2))));
        assert!(!is_ready(&mc(3, "True", Some(2))), "stale Ready");
        assert!(
            ready_text(&mc(3, "True", Some(2))).contains("spec is at generation 3"),
            "{}",
            ready_text(&mc(3, "True", Some(2)))
        );
    }

    #[test]
    fn a_pipe_gets_only_the_lines_that_changed() {
        let site = |name: &str, phase: &str| SiteLine {
            site: name.into(),
            reachable: true,
            phase: Some(phase.into()),
            ..Default::default()
        };
        let before = StatusReport {
            name: "c3".into(),
            namespace: "ns".into(),
            phase: Some("Progressing".into()),
            sites: vec![site("a", "Running"), site("b", "Initializing")],
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "RolloutInProgress".into(),
                message: "1/2".into(),
                last_transition_time: "2026-01-01T11:00:00Z".into(),
                observed_generation: None,
            }],
            ..Default::default()
        };
        let now: jiff::Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        assert_eq!(changed_lines(&before, &before, false, now), "");
        let mut after = before.clone();
        after.sites[1].phase = Some("Running".into());
        let text = changed_lines(&before, &after, false, now);
        assert!(text.starts_with("b      Running   "), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        after.phase = Some("Running".into());
        after.conditions[0].status = "True".into();
        let text = changed_lines(&before, &after, false, now);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("MultiCasskop ns/c3: phase Running"),
            "{text}"
        );
        assert_eq!(lines[1], "  Ready=True (RolloutInProgress): 1/2");
        assert!(!text.contains('\u{1b}'), "no escape codes in a pipe");
    }
}
