//! One pod's worker, as the kubelet's pod workers: sandbox (network namespace), volumes, containers started, probed, restarted with back-off and stopped, and the pod's status and Events written through the API.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::container;
use super::events::{Recorder, reasons};
use super::logs::PodLogs;
use super::netns::{NodeNet, PodNet};
use super::probe::{Prober, Verdict};
use super::spawn::{self, Exit, ProcessSpec};
use super::volumes::{MountFailure, Sources, Volumes};

/// What every pod worker of one kubelet shares.
pub struct NodeCtx {
    pub node: String,
    pub images: BTreeMap<String, PathBuf>,
    pub client: kube::Client,
    pub sources: Sources,
    pub recorder: Recorder,
    pub logs: Arc<PodLogs>,
    pub net: NodeNet,
    /// Every simulated API server of the Sim (relayed into each pod).
    pub api_servers: Vec<SocketAddr>,
    /// This cluster's API server (KUBERNETES_SERVICE_HOST/PORT).
    pub own_api: SocketAddr,
    pub root: PathBuf,
    pub stop: CancellationToken,
}

/// The kubelet's container restart back-off: 10 s doubling to 5 min, forgotten after 10 min
/// of a container running well.
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_RESET: Duration = Duration::from_secs(600);
const TICK: Duration = Duration::from_millis(200);
const VOLUME_RESYNC: Duration = Duration::from_secs(1);
const MOUNT_REPORT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Terminated {
    exit: Exit,
    reason: &'static str,
    started_at: String,
    finished_at: String,
    container_id: String,
}

struct Run {
    pid: u32,
    exited: tokio::sync::oneshot::Receiver<Exit>,
    started_at: String,
    since: Instant,
    container_id: String,
    ready: bool,
    liveness: Option<Prober>,
    readiness: Option<Prober>,
}

#[derive(Default)]
struct Ctr {
    restarts: i32,
    ever_started: bool,
    run: Option<Run>,
    last: Option<Terminated>,
    waiting: Option<(String, String)>,
    backoff: Option<Duration>,
    not_before: Option<Instant>,
    /// A back-off Event was recorded for the current window.
    backoff_reported: bool,
}

struct Worker {
    ctx: Arc<NodeCtx>,
    pod: Pod,
    net: Option<PodNet>,
    relays: CancellationToken,
    volumes: Volumes,
    volumes_ok: Option<Result<(), MountFailure>>,
    volumes_synced: Option<Instant>,
    mount_reported: Option<Instant>,
    sandbox_retry: Option<Instant>,
    ctrs: BTreeMap<String, Ctr>,
    conditions: BTreeMap<&'static str, (bool, String)>,
    sent: Value,
    start_time: String,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn pod_id(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

fn containers(pod: &Pod) -> Vec<Container> {
    pod.spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default()
}

fn grace(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(secs.max(0) as u64)
}

/// Runs one pod until it is deleted or the kubelet stops.
pub async fn run(ctx: Arc<NodeCtx>, mut rx: watch::Receiver<Option<Pod>>) {
    let Some(pod) = rx.borrow_and_update().clone() else {
        return;
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let dir = ctx.root.join("pods").join(&uid);
    let mut w = Worker {
        volumes: Volumes::new(dir.clone()),
        ctx: ctx.clone(),
        pod,
        net: None,
        relays: CancellationToken::new(),
        volumes_ok: None,
        volumes_synced: None,
        mount_reported: None,
        sandbox_retry: None,
        ctrs: BTreeMap::new(),
        conditions: BTreeMap::new(),
        sent: Value::Null,
        start_time: now(),
    };
    loop {
        tokio::select! {
            r = rx.changed() => {
                if r.is_err() {
                    break;
                }
            }
            () = tokio::time::sleep(TICK) => {}
            () = ctx.stop.cancelled() => {
                w.stop_all(Duration::ZERO).await;
                w.teardown(&dir);
                return;
            }
        }
        let latest = rx.borrow_and_update().clone();
        match latest {
            None => break,
            Some(p) if p.metadata.deletion_timestamp.is_some() => {
                w.pod = p;
                w.stop_all(grace(&w.pod)).await;
                w.finish_deletion().await;
                w.teardown(&dir);
                return;
            }
            Some(p) => {
                w.pod = p;
                w.sync().await;
            }
        }
    }
    // Gone from the API without a graceful deletion (namespace deleted, forced): stop anyway.
    // The kubelet stopping also ends the watch: then stop at once.
    let g = if ctx.stop.is_cancelled() {
        Duration::ZERO
    } else {
        grace(&w.pod)
    };
    w.stop_all(g).await;
    w.teardown(&dir);
}

impl Worker {
    async fn sync(&mut self) {
        if self.net.is_none() && !self.create_sandbox().await {
            self.write_status().await;
            return;
        }
        let due = self
            .volumes_synced
            .is_none_or(|t| t.elapsed() >= VOLUME_RESYNC);
        if due {
            self.volumes_synced = Some(Instant::now());
            let r = self.volumes.sync(&self.pod, &self.ctx.sources).await;
            if let Err(f) = &r {
                let repeat = self
                    .volumes_ok
                    .as_ref()
                    .is_some_and(|p| p.as_ref().err() == Some(f));
                // The kubelet retries a failed mount with back-off and reports each attempt;
                // one Event per ~10 s here (folded into one whose count grows).
                if !repeat
                    || self
                        .mount_reported
                        .is_none_or(|t| t.elapsed() >= MOUNT_REPORT)
                {
                    self.mount_reported = Some(Instant::now());
                    self.ctx
                        .recorder
                        .emit(&self.pod, None, true, reasons::FAILED_MOUNT, &f.to_string())
                        .await;
                }
            }
            self.volumes_ok = Some(r);
        }
        for c in containers(&self.pod) {
            self.sync_container(&c).await;
        }
        self.write_status().await;
    }

    async fn create_sandbox(&mut self) -> bool {
        if self.sandbox_retry.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let ctx = self.ctx.clone();
        let r = tokio::task::spawn_blocking(move || ctx.net.add_pod())
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r);
        let r =
            r.and_then(
                |net| match net.relay_api_servers(&self.ctx.api_servers, &self.relays) {
                    Ok(()) => Ok(net),
                    Err(e) => {
                        net.remove();
                        Err(e)
                    }
                },
            );
        match r {
            Ok(net) => {
                self.net = Some(net);
                self.conditions
                    .insert("PodReadyToStartContainers", (true, now()));
                true
            }
            Err(e) => {
                self.sandbox_retry = Some(Instant::now() + Duration::from_secs(5));
                let msg = format!("Failed to create pod sandbox: {e:#}");
                self.ctx
                    .recorder
                    .emit(&self.pod, None, true, reasons::FAILED_SANDBOX, &msg)
                    .await;
                false
            }
        }
    }

    async fn sync_container(&mut self, c: &Container) {
        let name = c.name.clone();
        let mut ctr = self.ctrs.remove(&name).unwrap_or_default();
        Self::check_exit(&mut ctr);
        if ctr.run.is_some() {
            self.probe(c, &mut ctr).await;
        } else {
            self.maybe_start(c, &mut ctr).await;
        }
        self.ctrs.insert(name, ctr);
    }

    fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    fn check_exit(ctr: &mut Ctr) {
        let Some(run) = ctr.run.as_mut() else { return };
        let Ok(exit) = run.exited.try_recv() else {
            return;
        };
        Self::record_exit(ctr, exit);
    }

    /// The current run ended with `exit`: it becomes the last state, and the next start waits
    /// for the back-off.
    fn record_exit(ctr: &mut Ctr, exit: Exit) {
        let Some(run) = ctr.run.take() else { return };
        let ran = run.since.elapsed();
        ctr.last = Some(Terminated {
            exit,
            reason: if exit.code == 0 { "Completed" } else { "Error" },
            started_at: run.started_at,
            finished_at: now(),
            container_id: run.container_id,
        });
        if ran >= BACKOFF_RESET {
            ctr.backoff = None;
        }
        // The first restart is at once; each later one waits the back-off, which doubles.
        match ctr.backoff {
            None => {
                ctr.backoff = Some(BACKOFF_START);
                ctr.not_before = None;
            }
            Some(b) => {
                ctr.not_before = Some(Instant::now() + b);
                ctr.backoff = Some((b * 2).min(BACKOFF_MAX));
            }
        }
        ctr.backoff_reported = false;
    }

    async fn maybe_start(&mut self, c: &Container, ctr: &mut Ctr) {
        let policy = self.restart_policy().to_string();
        if let Some(last) = &ctr.last {
            let restart = match policy.as_str() {
                "Never" => false,
                "OnFailure" => last.exit.code != 0,
                _ => true,
            };
            if !restart {
                ctr.waiting = None;
                return;
            }
        }
        let image = c.image.clone().unwrap_or_default();
        let Some(binary) = container::image_binary(&self.ctx.images, &image).cloned() else {
            self.image_not_mapped(c, ctr, &image).await;
            return;
        };
        match &self.volumes_ok {
            Some(Ok(())) => {}
            _ => {
                if !ctr.ever_started {
                    ctr.waiting = Some(("ContainerCreating".into(), String::new()));
                }
                return;
            }
        }
        if let Some(t) = ctr.not_before
            && Instant::now() < t
        {
            let wait = ctr
                .backoff
                .map_or(BACKOFF_START, |b| (b / 2).max(BACKOFF_START));
            let msg = format!(
                "back-off {} restarting failed container={} pod={}",
                fmt_secs(wait),
                c.name,
                pod_id(&self.pod)
            );
            ctr.waiting = Some(("CrashLoopBackOff".into(), msg));
            if !ctr.backoff_reported {
                ctr.backoff_reported = true;
                let ev = format!(
                    "Back-off restarting failed container {} in pod {}",
                    c.name,
                    pod_id(&self.pod)
                );
                self.ctx
                    .recorder
                    .emit(&self.pod, Some(&c.name), true, reasons::BACK_OFF, &ev)
                    .await;
            }
            return;
        }
        self.start(c, ctr, &binary, &image).await;
    }

    async fn image_not_mapped(&self, c: &Container, ctr: &mut Ctr, image: &str) {
        let due = ctr.not_before.is_none_or(|t| Instant::now() >= t);
        let pull_err = format!(
            "kubesim's kubelet maps no binary to image \"{image}\" (map one with kubesim --kubelet IMAGE=PATH)"
        );
        if due {
            let b = ctr.backoff.unwrap_or(BACKOFF_START);
            ctr.not_before = Some(Instant::now() + b);
            ctr.backoff = Some((b * 2).min(BACKOFF_MAX));
            ctr.waiting = Some(("ErrImagePull".into(), pull_err.clone()));
            let r = &self.ctx.recorder;
            r.emit(
                &self.pod,
                Some(&c.name),
                false,
                "Pulling",
                &format!("Pulling image \"{image}\""),
            )
            .await;
            r.emit(
                &self.pod,
                Some(&c.name),
                true,
                reasons::FAILED,
                &format!("Failed to pull image \"{image}\": {pull_err}"),
            )
            .await;
            r.emit(
                &self.pod,
                Some(&c.name),
                true,
                reasons::FAILED,
                "Error: ErrImagePull",
            )
            .await;
        } else if ctr.waiting.as_ref().is_some_and(|w| w.0 == "ErrImagePull") {
            ctr.waiting = Some((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image \"{image}\": ErrImagePull: {pull_err}"),
            ));
            let r = &self.ctx.recorder;
            r.emit(
                &self.pod,
                Some(&c.name),
                false,
                reasons::BACK_OFF,
                &format!("Back-off pulling image \"{image}\""),
            )
            .await;
            r.emit(
                &self.pod,
                Some(&c.name),
                true,
                reasons::FAILED,
                "Error: ImagePullBackOff",
            )
            .await;
        }
    }

    async fn start(&mut self, c: &Container, ctr: &mut Ctr, binary: &std::path::Path, image: &str) {
        let Some(net) = self.net.clone() else { return };
        let r = &self.ctx.recorder;
        // The downward API sees the pod's addresses before its status is written.
        let mut pod = self.pod.clone();
        let status = pod.status.get_or_insert_with(Default::default);
        status.pod_ip = Some(net.ip.to_string());
        status.host_ip = Some("127.0.0.1".into());
        let env = match container::environment(&pod, c, &self.ctx.sources, self.ctx.own_api) {
            Ok(env) => env,
            Err(msg) => {
                ctr.waiting = Some(("CreateContainerConfigError".into(), msg.clone()));
                r.emit(
                    &self.pod,
                    Some(&c.name),
                    true,
                    reasons::FAILED,
                    &format!("Error: {msg}"),
                )
                .await;
                return;
            }
        };
        let identity = match container::identity(&self.pod, c) {
            Ok(i) => i,
            Err(msg) => {
                ctr.waiting = Some(("CreateContainerConfigError".into(), msg.clone()));
                r.emit(
                    &self.pod,
                    Some(&c.name),
                    true,
                    reasons::FAILED,
                    &format!("Error: {msg}"),
                )
                .await;
                return;
            }
        };
        let env_map = env.iter().cloned().collect();
        let (program, args) = container::program(c, binary, &env_map);
        let spec = ProcessSpec {
            program,
            args,
            env,
            working_dir: c.working_dir.clone(),
            mounts: container::mounts(&self.pod, c, |v| self.volumes.host_dir(v)),
            read_only_root: c
                .security_context
                .as_ref()
                .and_then(|s| s.read_only_root_filesystem)
                .unwrap_or(false),
            hostname: self.pod.metadata.name.clone().unwrap_or_default(),
            netns: net.netns.clone(),
            identity,
            stage_dir: self
                .ctx
                .root
                .join("pods")
                .join(self.pod.metadata.uid.as_deref().unwrap_or(""))
                .join("stage")
                .join(&c.name),
        };
        r.emit(
            &self.pod,
            Some(&c.name),
            false,
            reasons::PULLED,
            &format!("Container image \"{image}\" already present on machine"),
        )
        .await;
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let uid = self.pod.metadata.uid.clone().unwrap_or_default();
        let log = self.ctx.logs.start_run(&ns, &uid, &c.name);
        match spawn::start(&spec, log) {
            Ok(running) => {
                r.emit(
                    &self.pod,
                    Some(&c.name),
                    false,
                    reasons::CREATED,
                    &format!("Created container: {}", c.name),
                )
                .await;
                r.emit(
                    &self.pod,
                    Some(&c.name),
                    false,
                    reasons::STARTED,
                    &format!("Started container {}", c.name),
                )
                .await;
                if ctr.ever_started {
                    ctr.restarts += 1;
                }
                ctr.ever_started = true;
                ctr.waiting = None;
                let since = Instant::now();
                ctr.run = Some(Run {
                    pid: running.pid,
                    exited: running.exited,
                    started_at: now(),
                    since,
                    container_id: format!(
                        "kubesim://{:x}{:08x}",
                        jiff::Timestamp::now().as_nanosecond(),
                        running.pid
                    ),
                    ready: c.readiness_probe.is_none(),
                    liveness: c.liveness_probe.as_ref().map(|p| Prober::new(p, c, since)),
                    readiness: c.readiness_probe.as_ref().map(|p| Prober::new(p, c, since)),
                });
            }
            Err(e) => {
                let msg = format!("failed to start container \"{}\": {e:#}", c.name);
                ctr.waiting = Some(("RunContainerError".into(), msg.clone()));
                r.emit(
                    &self.pod,
                    Some(&c.name),
                    true,
                    reasons::FAILED,
                    &format!("Error: {msg}"),
                )
                .await;
            }
        }
    }

    async fn probe(&mut self, c: &Container, ctr: &mut Ctr) {
        let Some(net) = self.net.clone() else { return };
        let node_netns = self.ctx.net.netns.clone();
        let Some(run) = ctr.run.as_mut() else { return };
        let now_i = Instant::now();
        if let Some(p) = run.readiness.as_mut().filter(|p| p.due(now_i)) {
            match p.run(&node_netns, net.ip).await {
                Verdict::Healthy => run.ready = true,
                Verdict::Failed { message, threshold } => {
                    let msg = format!("Readiness probe failed: {message}");
                    self.ctx
                        .recorder
                        .emit(&self.pod, Some(&c.name), true, reasons::UNHEALTHY, &msg)
                        .await;
                    if threshold {
                        run.ready = false;
                    }
                }
                Verdict::Unchanged => {}
            }
        }
        let mut kill = false;
        if let Some(p) = run.liveness.as_mut().filter(|p| p.due(now_i))
            && let Verdict::Failed { message, threshold } = p.run(&node_netns, net.ip).await
        {
            {
                let msg = format!("Liveness probe failed: {message}");
                self.ctx
                    .recorder
                    .emit(&self.pod, Some(&c.name), true, reasons::UNHEALTHY, &msg)
                    .await;
                kill = threshold;
            }
        }
        if kill {
            let msg = format!(
                "Container {} failed liveness probe, will be restarted",
                c.name
            );
            self.ctx
                .recorder
                .emit(&self.pod, Some(&c.name), false, reasons::KILLING, &msg)
                .await;
            let g = grace(&self.pod);
            if let Some(run) = ctr.run.as_mut() {
                run.ready = false;
                let pid = run.pid;
                let exit = stop_process(pid, &mut run.exited, g).await;
                Self::record_exit(ctr, exit);
            }
        }
    }

    /// Stops every container: SIGTERM, then SIGKILL after `grace`.
    async fn stop_all(&mut self, grace: Duration) {
        let mut waits = vec![];
        let pod = self.pod.clone();
        for (name, ctr) in &mut self.ctrs {
            let Some(run) = ctr.run.take() else { continue };
            if !grace.is_zero() {
                let msg = format!("Stopping container {name}");
                self.ctx
                    .recorder
                    .emit(&pod, Some(name), false, reasons::KILLING, &msg)
                    .await;
            }
            waits.push(async move {
                let mut exited = run.exited;
                let _ = stop_process(run.pid, &mut exited, grace).await;
            });
        }
        futures::future::join_all(waits).await;
    }

    /// The pod's containers are gone: the deletion the API server waits for is completed.
    async fn finish_deletion(&self) {
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: self.pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        if let Err(e) = api.delete(&name, &dp).await {
            tracing::debug!("kubelet: deleting pod {ns}/{name}: {e}");
        }
    }

    fn teardown(&mut self, dir: &std::path::Path) {
        self.relays.cancel();
        if let Some(net) = self.net.take() {
            net.remove();
        }
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let uid = self.pod.metadata.uid.clone().unwrap_or_default();
        self.ctx.logs.forget_pod(&ns, &uid);
        self.ctx.recorder.forget_pod(&uid);
        let _ = std::fs::remove_dir_all(dir);
    }

    async fn write_status(&mut self) {
        let status = self.status();
        if status == self.sent {
            return;
        }
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            Ok(_) => self.sent = status,
            Err(e) => tracing::debug!("kubelet: writing the status of pod {ns}/{name}: {e}"),
        }
    }

    fn set_condition(&mut self, t: &'static str, v: bool) {
        match self.conditions.get(t) {
            Some((old, _)) if *old == v => {}
            _ => {
                self.conditions.insert(t, (v, now()));
            }
        }
    }

    fn status(&mut self) -> Value {
        let specs = containers(&self.pod);
        let mut statuses = vec![];
        let mut unready = vec![];
        let mut all_started = true;
        let mut all_done = true;
        let mut any_failed = false;
        for c in &specs {
            let ctr = self.ctrs.get(&c.name);
            let st = container_status(c, ctr, &self.ctx.images);
            if st["ready"] != true {
                unready.push(c.name.clone());
            }
            all_started &= ctr.is_some_and(|c| c.ever_started);
            let done =
                ctr.is_some_and(|c| c.run.is_none() && c.waiting.is_none() && c.last.is_some());
            all_done &= done;
            any_failed |= ctr
                .and_then(|c| c.last.as_ref())
                .is_some_and(|l| l.exit.code != 0);
            statuses.push(st);
        }
        let phase = if !all_started {
            "Pending"
        } else if all_done && self.restart_policy() != "Always" {
            if any_failed { "Failed" } else { "Succeeded" }
        } else {
            "Running"
        };
        let ready = unready.is_empty() && phase == "Running";
        self.set_condition("PodReadyToStartContainers", self.net.is_some());
        self.set_condition("Initialized", true);
        self.set_condition("ContainersReady", ready);
        self.set_condition("Ready", ready);
        self.set_condition("PodScheduled", true);
        let not_ready_msg = format!("containers with unready status: [{}]", unready.join(" "));
        let conditions: Vec<Value> = [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ]
        .iter()
        .map(|t| {
            let (v, at) = self.conditions.get(t).cloned().unwrap_or((false, now()));
            let mut c = json!({"type": t, "status": if v { "True" } else { "False" },
                    "lastProbeTime": null, "lastTransitionTime": at});
            if !v && (*t == "Ready" || *t == "ContainersReady") {
                c["reason"] = json!("ContainersNotReady");
                c["message"] = json!(not_ready_msg);
            }
            c
        })
        .collect();
        let ip = self.net.as_ref().map(|n| n.ip.to_string());
        json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": ip,
            "podIPs": ip.as_ref().map(|i| vec![json!({"ip": i})]),
            "startTime": self.start_time,
            "qosClass": qos_class(&specs),
            "containerStatuses": statuses,
        })
    }
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{}m0s", s / 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn qos_class(specs: &[Container]) -> &'static str {
    let any = specs.iter().any(|c| {
        c.resources.as_ref().is_some_and(|r| {
            r.requests.as_ref().is_some_and(|m| !m.is_empty())
                || r.limits.as_ref().is_some_and(|m| !m.is_empty())
        })
    });
    if any { "Burstable" } else { "BestEffort" }
}

fn terminated_json(t: &Terminated) -> Value {
    let mut v = json!({"exitCode": t.exit.code, "reason": t.reason, "startedAt": t.started_at,
        "finishedAt": t.finished_at, "containerID": t.container_id});
    if let Some(sig) = t.exit.signal {
        v["signal"] = json!(sig);
    }
    v
}

fn container_status(c: &Container, ctr: Option<&Ctr>, images: &BTreeMap<String, PathBuf>) -> Value {
    let image = c.image.clone().unwrap_or_default();
    let image_id = container::image_binary(images, &image)
        .map(|p| format!("file://{}", p.display()))
        .unwrap_or_default();
    let default = Ctr::default();
    let ctr = ctr.unwrap_or(&default);
    let state = if let Some(r) = &ctr.run {
        json!({"running": {"startedAt": r.started_at}})
    } else if let Some((reason, msg)) = &ctr.waiting {
        let mut w = json!({"reason": reason});
        if !msg.is_empty() {
            w["message"] = json!(msg);
        }
        json!({"waiting": w})
    } else if let Some(t) = &ctr.last {
        json!({"terminated": terminated_json(t)})
    } else {
        json!({"waiting": {"reason": "ContainerCreating"}})
    };
    // lastState is the run before the current one (empty while the last run is the state).
    let last_state = match (&ctr.last, ctr.run.is_some() || ctr.waiting.is_some()) {
        (Some(t), true) => json!({"terminated": terminated_json(t)}),
        _ => json!({}),
    };
    let mut v = json!({
        "name": c.name,
        "image": image,
        "imageID": image_id,
        "ready": ctr.run.as_ref().is_some_and(|r| r.ready),
        "restartCount": ctr.restarts,
        "started": ctr.run.is_some(),
        "state": state,
        "lastState": last_state,
    });
    let id = ctr
        .run
        .as_ref()
        .map(|r| r.container_id.clone())
        .or_else(|| ctr.last.as_ref().map(|t| t.container_id.clone()));
    if let Some(id) = id {
        v["containerID"] = json!(id);
    }
    v
}

/// SIGTERM, then SIGKILL to the container's processes if still running after `grace`; how the
/// process ended.
async fn stop_process(
    pid: u32,
    exited: &mut tokio::sync::oneshot::Receiver<Exit>,
    grace: Duration,
) -> Exit {
    spawn::terminate(pid);
    if !grace.is_zero()
        && let Ok(r) = tokio::time::timeout(grace, &mut *exited).await
    {
        spawn::kill(pid);
        return r.unwrap_or(Exit {
            code: 143,
            signal: Some(15),
        });
    }
    spawn::kill(pid);
    match tokio::time::timeout(Duration::from_secs(5), exited).await {
        Ok(Ok(e)) => e,
        _ => Exit {
            code: 137,
            signal: Some(9),
        },
    }
}
