//! Fault suite: a site that stops answering without closing anything (kubesim's `freeze` fault,
//! and a second kubesim process stopped with SIGSTOP). MultiCasskops that do not use it roll out
//! as usual; those that use it say so (SitesReachable=False naming it, an Event, the site gauge,
//! `status` and `check`) within 30 s; once it answers again everything converges in order,
//! without a restart. And `/healthz` fails while the local cluster is frozen, saying what is
//! stuck, then recovers.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use e2e::benchmark::{CONTROLLER_SA, create_all, is_ready, mc_api, mc_object, wait_readyz};
use e2e::faults::{
    assert_no_panic, cc_api, check_invariants, create_fleet, failure_log, set_image, wait_converged,
};
use e2e::{ControllerProcess, Env, EnvOptions, NAMESPACE, binary, condition, eventually};
use kube::api::{DynamicObject, ListParams};
use kubesim::casskop::CasskopOptions;
use serde_json::{Value, json};

const NEW_IMAGE: &str = "cassandra:3.11.10";

fn fast_casskop() -> EnvOptions {
    EnvOptions {
        casskop: CasskopOptions {
            ready_after: Duration::from_millis(400),
            react_after: Duration::from_millis(200),
        },
        controller_sa: CONTROLLER_SA.into(),
        local_cluster_admin: true,
    }
}

/// The controller with `kubeconfig`, local `sites[0]`, remotes the others, plus `extra`.
fn controller(
    env: &Env,
    kubeconfig: &Path,
    sites: &[&str],
    extra: &[&str],
) -> anyhow::Result<ControllerProcess> {
    let mut args: Vec<String> = vec![
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--context".into(),
        sites[0].into(),
        format!("-l{}", sites[0]),
        format!("-r{}", sites[1..].join(",")),
        "--namespace".into(),
        NAMESPACE.into(),
        "--imports-dir".into(),
        env.dir.path().join("no-imports").display().to_string(),
    ];
    args.extend(extra.iter().map(ToString::to_string));
    ControllerProcess::spawn(
        env.dir.path(),
        "controller",
        &args,
        &[("LOG_LEVEL", "Info")],
    )
}

/// Waits until every MultiCasskop of `names` has SitesReachable=False naming `site`; returns
/// one of the messages.
async fn all_report_unreachable(
    env: &Env,
    names: &[String],
    site: &str,
    ctl: &ControllerProcess,
) -> anyhow::Result<String> {
    let api = mc_api(env.local().client().await);
    eventually(
        &format!("SitesReachable=False naming {site} on every MultiCasskop using it"),
        Duration::from_secs(90),
        || async {
            let list = api.list(&ListParams::default()).await?;
            let mut messages = BTreeMap::new();
            for o in list.items {
                let v = serde_json::to_value(&o)?;
                let name = v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Some((status, _, message)) = condition(&v, "SitesReachable")
                    && status == "False"
                    && message.contains(&format!("site {site}"))
                {
                    messages.insert(name, message);
                }
            }
            Ok(names
                .iter()
                .all(|n| messages.contains_key(n))
                .then(|| messages.into_values().next().unwrap_or_default()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(ctl, "freeze")))
}

/// Waits until every MultiCasskop of `names` is Ready.
async fn all_ready(env: &Env, names: &[String], ctl: &ControllerProcess) -> anyhow::Result<()> {
    let api = mc_api(env.local().client().await);
    eventually("the bystanders Ready", Duration::from_secs(180), || async {
        for n in names {
            let o = api.get(n).await?;
            if !is_ready(&serde_json::to_value(&o)?) {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(ctl, "freeze")))
}

/// A Warning Event `SitesUnreachable` in the local namespace whose note names `site`.
fn event_naming(env: &Env, site: &str) -> anyhow::Result<Option<String>> {
    let out = env.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(v["items"].as_array().into_iter().flatten().find_map(|e| {
        let note = e["note"].as_str()?;
        (e["reason"] == "SitesUnreachable"
            && e["type"] == "Warning"
            && note.contains(&format!("site {site}:")))
        .then(|| note.to_string())
    }))
}

/// `multi-casskop ARGS` with the deadline flags short, as an operator in a hurry would.
fn cli(args: &[String]) -> anyhow::Result<(Option<i32>, String)> {
    let out = Command::new(binary()?)
        .args(args)
        .env_remove("RUST_LOG")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code(), text))
}

/// `status` and `check` while `frozen` does not answer: both end, name it with the timeout,
/// and still show the other sites.
fn cli_reports_frozen(
    env: &Env,
    kubeconfig: &Path,
    sites: &[&str],
    mc: &str,
    frozen: &str,
) -> anyhow::Result<()> {
    let common = |cmd: &str| -> Vec<String> {
        let mut a: Vec<String> = vec![cmd.into()];
        if cmd == "status" {
            a.push(mc.into());
            a.push("--use-kubeconfig-contexts".into());
        }
        a.extend([
            "-n".into(),
            NAMESPACE.into(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--context".into(),
            sites[0].into(),
            format!("-l{}", sites[0]),
            format!("-r{}", sites[1..].join(",")),
            "--imports-dir".into(),
            env.dir.path().join("no-imports").display().to_string(),
            "--request-timeout".into(),
            "3s".into(),
        ]);
        a
    };
    let started = Instant::now();
    let (code, status) = cli(&common("status"))?;
    println!(
        "status while {frozen} frozen ({:.1} s, exit {code:?}):\n{status}",
        started.elapsed().as_secs_f64()
    );
    let frozen_line = status
        .lines()
        .find(|l| l.starts_with(frozen))
        .with_context(|| format!("status shows no line for {frozen}:\n{status}"))?;
    assert!(
        frozen_line.contains("timed out") || frozen_line.contains("no answer"),
        "{frozen_line}"
    );
    for s in sites.iter().filter(|s| **s != frozen) {
        let line = status.lines().find(|l| l.starts_with(s));
        assert!(
            line.is_some_and(|l| l.contains("Running")),
            "status shows {s} too:\n{status}"
        );
    }
    let started = Instant::now();
    let (code, check) = cli(&common("check"))?;
    println!(
        "check while {frozen} frozen ({:.1} s, exit {code:?}):\n{check}",
        started.elapsed().as_secs_f64()
    );
    assert_ne!(code, Some(0), "check fails while a site does not answer");
    assert!(
        check.contains(frozen) && check.contains("timed out"),
        "check names the frozen site and the timeout:\n{check}"
    );
    for s in sites.iter().filter(|s| **s != frozen) {
        assert!(check.contains(s), "check shows {s} too:\n{check}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_site_is_reported_others_roll_out_and_all_converge_once_it_answers()
-> anyhow::Result<()> {
    const SITES: [&str; 3] = ["site1", "site2", "site3"];
    const FROZEN: &str = "site3";
    let env = Env::start_with(&SITES, fast_casskop()).await?;
    let sites: Vec<String> = env.names().to_vec();
    let mut ctl = controller(&env, &env.kubeconfig, &SITES, &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let mut expected = create_fleet(
        &api,
        (0..6).map(|i| format!("frozen-{i}")),
        &sites,
        "cassandra:3.11.9",
        2,
    )
    .await?;
    wait_converged(&env, &expected, Duration::from_secs(240)).await?;
    let users: Vec<String> = expected.keys().cloned().collect();

    env.sim.cluster(FROZEN).faults().set_frozen(true);
    let frozen_at = Instant::now();
    println!("{FROZEN} frozen");
    // Every MultiCasskop using it is told, with what failed.
    let message = all_report_unreachable(&env, &users, FROZEN, &ctl).await?;
    println!(
        "all {} report {FROZEN} after {:.1} s: {message}",
        users.len(),
        frozen_at.elapsed().as_secs_f64()
    );
    assert!(
        message.contains("not answering") || message.contains("timed out"),
        "{message}"
    );
    let event = eventually(
        "an Event naming the frozen site",
        Duration::from_secs(60),
        || async { event_naming(&env, FROZEN) },
    )
    .await?;
    println!("event: {event}");
    let (_, metrics) = ctl.http_get("/metrics")?;
    assert!(
        metrics.contains(&format!(
            "multicasskop_site_reachable{{site=\"{FROZEN}\"}} 0"
        )),
        "{metrics}"
    );
    cli_reports_frozen(&env, &env.kubeconfig, &SITES, "frozen-0", FROZEN)?;

    // While it is frozen: MultiCasskops not using it roll out, and a change of the others
    // rolls out to the healthy sites and waits at the frozen one.
    let bystanders: Vec<String> = (0..4).map(|i| format!("bystander-{i}")).collect();
    let healthy = vec!["site1".to_string(), "site2".to_string()];
    create_all(
        &api,
        bystanders
            .iter()
            .map(|n| mc_object(n, n, &healthy, "cassandra:3.11.9"))
            .collect(),
        2,
    )
    .await?;
    for name in expected.keys() {
        set_image(&env, name, NEW_IMAGE).await?;
    }
    all_ready(&env, &bystanders, &ctl).await?;
    println!(
        "bystanders Ready {:.1} s after the freeze",
        frozen_at.elapsed().as_secs_f64()
    );

    env.sim.cluster(FROZEN).faults().set_frozen(false);
    let back = Instant::now();
    for image in expected.values_mut() {
        *image = NEW_IMAGE.to_string();
    }
    wait_converged(&env, &expected, Duration::from_secs(400))
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(&ctl, "freeze")))?;
    println!(
        "converged {:.1} s after {FROZEN} answered again",
        back.elapsed().as_secs_f64()
    );
    assert!(ctl.exited().is_none(), "the controller kept running");
    assert_no_panic(&ctl.logs(), "controller");
    let mut names = users.clone();
    names.extend(bystanders.iter().cloned());
    let user = Env::sa_user(CONTROLLER_SA);
    let r = check_invariants(&env, &names, &[user.as_str()], false);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    assert_eq!(r.creates, 6 * 3 + 4 * 2, "one create per resource and site");
    Ok(())
}

/// A second kubesim process holding one site, stopped and continued with signals.
struct SecondSim {
    child: Child,
    kubeconfig: std::path::PathBuf,
}

impl SecondSim {
    fn start(dir: &Path, cluster: &str) -> anyhow::Result<Self> {
        use std::io::BufRead;
        let exe = binary()?.with_file_name("kubesim");
        let kubeconfig = dir.join(format!("{cluster}.kubeconfig"));
        let mut child = Command::new(&exe)
            .args([
                "--clusters",
                cluster,
                "--casskop",
                "--casskop-ready-after",
                "400ms",
            ])
            .args(["--casskop-react-after", "200ms", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (cargo build --workspace --bins)",
                    exe.display()
                )
            })?;
        let stdout = child.stdout.take().context("kubesim stdout")?;
        let ready = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l == "kubesim ready");
        anyhow::ensure!(ready, "the second kubesim exited before it was ready");
        Ok(Self { child, kubeconfig })
    }

    fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()?
            .success();
        anyhow::ensure!(ok, "kill -{sig} {}", self.child.id());
        Ok(())
    }

    /// Its one cluster: (server, CA PEM, admin token), from the kubeconfig it wrote.
    fn entry(&self) -> anyhow::Result<(String, String, String)> {
        use base64::Engine;
        let text = std::fs::read_to_string(&self.kubeconfig)?;
        let v: Value = serde_saphyr::from_str(&text)?;
        let server = v["clusters"][0]["cluster"]["server"]
            .as_str()
            .context("server")?;
        let ca = v["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .context("CA")?;
        let ca = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(ca)?)?;
        let token = v["users"][0]["user"]["token"].as_str().context("token")?;
        Ok((server.to_string(), ca, token.to_string()))
    }
}

impl Drop for SecondSim {
    fn drop(&mut self) {
        let _ = self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CassandraClusters `names` at a site of the second process are Running/Done with `image`.
async fn converged_at(client: kube::Client, names: &[String], image: &str) -> anyhow::Result<bool> {
    let ccs = cc_api(client).list(&ListParams::default()).await?;
    let by_name: BTreeMap<String, DynamicObject> = ccs
        .items
        .into_iter()
        .filter_map(|o| Some((o.metadata.name.clone()?, o)))
        .collect();
    Ok(names.iter().all(|n| {
        by_name.get(n).is_some_and(|cc| {
            cc.data["spec"]["cassandraImage"] == json!(image)
                && cc.data["status"]["phase"] == "Running"
                && cc.data["status"]["lastClusterActionStatus"] == "Done"
        })
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_in_a_stopped_process_is_reported_while_the_others_roll_out_then_all_converge()
-> anyhow::Result<()> {
    const SITES: [&str; 3] = ["site1", "site2", "site3"];
    const STOPPED: &str = "site3";
    let env = Env::start_with(&SITES[..2], fast_casskop()).await?;
    let second = SecondSim::start(env.dir.path(), STOPPED)?;
    let (server, ca, token) = second.entry()?;
    // One kubeconfig: the controller's service account in the first process, the second
    // process's admin in the other.
    let mut entries = Vec::new();
    for c in env.sim.clusters() {
        let t = c.issue_token(NAMESPACE, CONTROLLER_SA, None);
        entries.push((c.name().to_string(), c.url(), c.ca_pem(), t));
    }
    entries.push((STOPPED.to_string(), server, ca, token));
    let kubeconfig = env.dir.path().join("federation.kubeconfig");
    std::fs::write(&kubeconfig, kubesim::kubeconfig::render(&entries))?;
    let second_kc = kube::config::Kubeconfig::read_from(&second.kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(second_kc, &Default::default()).await?;
    let stopped_client = kube::Client::try_from(cfg)?;
    let nss: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(stopped_client.clone());
    nss.create(
        &Default::default(),
        &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?,
    )
    .await?;

    let mut ctl = controller(&env, &kubeconfig, &SITES, &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let all: Vec<String> = SITES.iter().map(ToString::to_string).collect();
    let users: Vec<String> = (0..20).map(|i| format!("stopped-{i}")).collect();
    create_all(
        &api,
        users
            .iter()
            .map(|n| mc_object(n, n, &all, "cassandra:3.11.9"))
            .collect(),
        4,
    )
    .await?;
    all_ready(&env, &users, &ctl).await?;

    second.signal("STOP")?;
    let stopped_at = Instant::now();
    println!("{STOPPED} process stopped");
    for name in &users {
        set_image(&env, name, NEW_IMAGE).await?;
    }
    let bystanders: Vec<String> = (0..10).map(|i| format!("healthy-{i}")).collect();
    let healthy: Vec<String> = SITES[..2].iter().map(ToString::to_string).collect();
    create_all(
        &api,
        bystanders
            .iter()
            .map(|n| mc_object(n, n, &healthy, "cassandra:3.11.9"))
            .collect(),
        4,
    )
    .await?;
    all_ready(&env, &bystanders, &ctl).await?;
    println!(
        "{} bystanders Ready {:.1} s after the stop",
        bystanders.len(),
        stopped_at.elapsed().as_secs_f64()
    );
    let message = all_report_unreachable(&env, &users, STOPPED, &ctl).await?;
    println!(
        "all {} report {STOPPED} {:.1} s after the stop: {message}",
        users.len(),
        stopped_at.elapsed().as_secs_f64()
    );

    second.signal("CONT")?;
    let back = Instant::now();
    let expected: BTreeMap<String, String> = users
        .iter()
        .map(|n| (n.clone(), NEW_IMAGE.to_string()))
        .collect();
    wait_converged(&env, &expected, Duration::from_secs(400))
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(&ctl, "sigstop")))?;
    eventually(
        "the stopped site converged",
        Duration::from_secs(240),
        || async {
            Ok(converged_at(stopped_client.clone(), &users, NEW_IMAGE)
                .await?
                .then_some(()))
        },
    )
    .await?;
    all_ready(&env, &users, &ctl).await?;
    println!(
        "converged {:.1} s after SIGCONT",
        back.elapsed().as_secs_f64()
    );
    assert!(ctl.exited().is_none(), "the controller kept running");
    assert_no_panic(&ctl.logs(), "controller");
    let mut names = users.clone();
    names.extend(bystanders.iter().cloned());
    let user = Env::sa_user(CONTROLLER_SA);
    let r = check_invariants(&env, &names, &[user.as_str()], false);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_local_cluster_fails_healthz_saying_what_is_stuck_then_recovers()
-> anyhow::Result<()> {
    const SITES: [&str; 2] = ["site1", "site2"];
    let env = Env::start_with(&SITES, fast_casskop()).await?;
    let mut ctl = controller(
        &env,
        &env.kubeconfig,
        &SITES,
        &["--liveness-timeout", "8s", "--request-timeout", "3s"],
    )?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let (code, body) = ctl.http_get("/healthz")?;
    assert_eq!((code, body.as_str()), (200, "ok"));

    env.local().faults().set_frozen(true);
    let wedged = eventually("/healthz failing", Duration::from_secs(90), || async {
        let (code, body) = ctl.http_get("/healthz")?;
        Ok((code == 500).then_some(body))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(&ctl, "liveness")))?;
    println!("/healthz while the local cluster is frozen: {wedged}");
    assert!(
        wedged.contains("local MultiCasskop watch has shown no sign of life")
            && wedged.contains("timed out"),
        "{wedged}"
    );

    env.local().faults().set_frozen(false);
    eventually("/healthz ok again", Duration::from_secs(90), || async {
        let (code, body) = ctl.http_get("/healthz")?;
        Ok((code == 200 && body == "ok").then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(&ctl, "liveness")))?;
    // And the controller still works: a MultiCasskop created now rolls out.
    let api = mc_api(env.local().client().await);
    let all: Vec<String> = SITES.iter().map(ToString::to_string).collect();
    create_all(
        &api,
        vec![mc_object("after", "after", &all, "cassandra:3.11.9")],
        1,
    )
    .await?;
    all_ready(&env, &["after".to_string()], &ctl).await?;
    assert!(ctl.exited().is_none(), "the controller kept running");
    Ok(())
}

/// `GET /version` requests `cluster` received since audit sequence `since`.
fn version_requests(env: &Env, cluster: &str, since: u64) -> usize {
    env.sim
        .audit()
        .iter()
        .filter(|e| e.seq >= since && e.cluster == cluster)
        .filter(|e| e.verb == "get" && e.resource == "/version")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_http2_sites_get_no_version_probes_http1_only_ones_do_and_a_frozen_http2_site_is_reported()
-> anyhow::Result<()> {
    const SITES: [&str; 3] = ["site1", "site2", "site3"];
    const HTTP2: &str = "site2";
    const HTTP1: &str = "site3";
    let env = Env::start_with(&SITES, fast_casskop()).await?;
    env.sim.cluster(HTTP1).faults().set_http1_only(true);
    let sites: Vec<String> = env.names().to_vec();
    // A short probe period: an HTTP/1.1 site is probed several times in a few seconds.
    let mut ctl = controller(
        &env,
        &env.kubeconfig,
        &SITES,
        &["--site-probe-period", "2s"],
    )?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let expected = create_fleet(
        &api,
        (0..3).map(|i| format!("quiet-{i}")),
        &sites,
        "cassandra:3.11.9",
        2,
    )
    .await?;
    wait_converged(&env, &expected, Duration::from_secs(240)).await?;
    let users: Vec<String> = expected.keys().cloned().collect();
    // Each site watch is probed once when it first falls quiet; over HTTP/2 that is the last.
    eventually(
        "the first probe of the HTTP/2 site's watch",
        Duration::from_secs(60),
        || async { Ok((version_requests(&env, HTTP2, 0) > 0).then_some(())) },
    )
    .await?;
    let since = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (http2, http1) = (
        version_requests(&env, HTTP2, since),
        version_requests(&env, HTTP1, since),
    );
    println!("GET /version in 10 s quiet: {HTTP2} (HTTP/2) {http2}, {HTTP1} (HTTP/1.1) {http1}");
    assert_eq!(
        http2, 0,
        "a quiet HTTP/2 site is checked by PING frames only"
    );
    assert!(
        http1 >= 2,
        "a quiet HTTP/1.1-only site is still probed ({http1})"
    );

    env.sim.cluster(HTTP2).faults().set_frozen(true);
    let frozen_at = Instant::now();
    let message = all_report_unreachable(&env, &users, HTTP2, &ctl).await?;
    println!(
        "all {} report {HTTP2} after {:.1} s: {message}",
        users.len(),
        frozen_at.elapsed().as_secs_f64()
    );
    let (_, metrics) = ctl.http_get("/metrics")?;
    assert!(
        metrics.contains(&format!(
            "multicasskop_site_reachable{{site=\"{HTTP2}\"}} 0"
        )),
        "{metrics}"
    );
    env.sim.cluster(HTTP2).faults().set_frozen(false);
    wait_converged(&env, &expected, Duration::from_secs(240))
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(&ctl, "keepalive")))?;
    assert_no_panic(&ctl.logs(), "controller");
    Ok(())
}
