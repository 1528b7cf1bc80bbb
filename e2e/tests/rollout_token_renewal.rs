//! Remote tokens renew themselves: with kubesim capping TokenRequests at seconds
//! (`--service-account-max-token-expiration`), a federation registered with `register` runs for
//! several token lifetimes without a refused request or a restart; a token whose renewal is
//! forbidden is reported with the fix while it still works, then as expired, and a new
//! `register` recovers the site without a restart.

use std::time::{Duration, Instant};

use base64::Engine;
use e2e::clientconfigs::{apply, multicasskop};
use e2e::{ControllerProcess, Env, NAMESPACE, binary, condition, controller_log_tail, eventually};
use serde_json::Value;

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";
const C3: &str = "k8s-cluster3";
const WAIT: Duration = Duration::from_secs(240);
const CC: &str = "cassandra-renewal";

/// Starts `names`, caps TokenRequests of the remotes at `cap`, removes the e2e's blanket rights
/// there (only what `register` grants is left) and registers each remote.
async fn registered_env(names: &[&str], cap: Duration) -> anyhow::Result<Env> {
    let env = Env::start(names).await?;
    for c in &names[1..] {
        env.sim.cluster(c).set_max_token_expiration(Some(cap));
        env.kubectl_in(c, &["delete", "clusterrolebinding", "e2e-controllers"])?;
        let out = env.register(c, &[])?;
        anyhow::ensure!(
            out.status.success(),
            "register {c} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(env)
}

/// The `token` key of the credentials Secret of remote `site` in the local cluster.
fn secret_token(env: &Env, site: &str) -> anyhow::Result<String> {
    let b64 = env.kubectl(&[
        "-n",
        NAMESPACE,
        "get",
        "secret",
        site,
        "-o",
        "jsonpath={.data.token}",
    ])?;
    Ok(String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(b64.trim())?,
    )?)
}

/// A JWT's claims (the test reads `exp` and `iat` as the controller does: as data).
fn claims(token: &str) -> anyhow::Result<Value> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("not a JWT"))?;
    Ok(serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?,
    )?)
}

/// The status message of `site` in MultiCasskop `mc`.
fn site_message(env: &Env, mc: &str, site: &str) -> anyhow::Result<String> {
    let v = env.get_mc(mc)?;
    Ok(v["status"]["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == site)
        .and_then(|s| s["message"].as_str())
        .unwrap_or("")
        .to_string())
}

async fn wait_ready(env: &Env, ctl: &ControllerProcess, mc: &str) -> anyhow::Result<()> {
    eventually(&format!("{mc} Ready"), WAIT, || async {
        let v = env.get_mc(mc)?;
        Ok(condition(&v, "Ready")
            .is_some_and(|(s, ..)| s == "True")
            .then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 40)))
}

/// `multi-casskop` with the controller's kubeconfig and sites.
fn cli(env: &Env, args: &[&str], remotes: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new(binary()?)
        .args(args)
        .args([
            "--kubeconfig",
            &env.kubeconfig.display().to_string(),
            "--context",
            C1,
            "-n",
            NAMESPACE,
            &format!("-l{C1}"),
            &format!("-r{remotes}"),
            "--imports-dir",
            &env.dir.path().join("no-imports").display().to_string(),
        ])
        .output()?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// `2026-01-02T03:04:05Z`.
fn is_rfc3339(word: &str) -> bool {
    word.len() == 20 && word.ends_with('Z') && word.parse::<jiff::Timestamp>().is_ok()
}

fn metric(ctl: &ControllerProcess, series: &str) -> f64 {
    let (_, body) = ctl.http_get("/metrics").unwrap_or_default();
    body.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federation_outlives_many_token_lifetimes_without_a_refused_request_or_restart()
-> anyhow::Result<()> {
    let env = registered_env(&[C1, C2, C3], Duration::from_secs(20)).await?;
    let first = secret_token(&env, C2)?;
    let c = claims(&first)?;
    let lifetime = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
    assert!(
        lifetime <= 20,
        "register asked 24 h, the server granted {lifetime} s"
    );
    let mut ctl = env.start_controller("renewal", &[])?;
    let started = Instant::now();
    let mut seen: Vec<String> = vec![first];
    let mut note = |env: &Env| -> anyhow::Result<()> {
        let t = secret_token(env, C2)?;
        if seen.last() != Some(&t) {
            seen.push(t);
        }
        Ok(())
    };

    let mut mc = multicasskop("renewal", CC, "cassandra:3.11.9", &[C1, C2, C3], None);
    apply(&env, &mc)?;
    wait_ready(&env, &ctl, "renewal").await?;
    note(&env)?;
    mc["spec"]["base"]["spec"]["cassandraImage"] = "cassandra:3.11.10".into();
    apply(&env, &mc)?;
    eventually("the change rolled out to every site", WAIT, || async {
        let mut done = true;
        for s in [C1, C2, C3] {
            done &= env.get_cc(s, CC)?.is_some_and(|cc| {
                cc["spec"]["cassandraImage"] == "cassandra:3.11.10"
                    && cc["status"]["phase"] == "Running"
            });
        }
        Ok(done.then_some(()))
    })
    .await?;
    wait_ready(&env, &ctl, "renewal").await?;
    // Idle until the federation has lived through several token lifetimes.
    while started.elapsed() < Duration::from_secs(75) {
        note(&env)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    note(&env)?;

    println!("C2's Secret held {} tokens", seen.len());
    assert!(
        seen.len() >= 4,
        "the token was renewed and written back several times: {} tokens seen",
        seen.len()
    );
    assert!(ctl.exited().is_none(), "the controller never restarted");
    let refused: Vec<String> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.code == 401)
        .map(|e| {
            format!(
                "{} {} {}/{} {}",
                e.cluster, e.verb, e.resource, e.name, e.code
            )
        })
        .collect();
    assert!(
        refused.is_empty(),
        "requests refused as unauthenticated: {refused:?}"
    );
    let renewed = metric(
        &ctl,
        &format!("multicasskop_site_token_renewals_total{{site=\"{C2}\",result=\"success\"}}"),
    );
    assert!(renewed >= 3.0, "renewals counted: {renewed}");
    assert!(
        metric(
            &ctl,
            &format!("multicasskop_site_token_expiry_timestamp_seconds{{site=\"{C3}\"}}")
        ) > 0.0
    );
    let v = env.get_mc("renewal")?;
    assert_eq!(condition(&v, "Ready").map(|c| c.0).as_deref(), Some("True"));
    assert_eq!(
        condition(&v, "SitesReachable").map(|c| c.0).as_deref(),
        Some("True")
    );

    // What a user sees of the tokens: their expiry, in check and status.
    let check = cli(&env, &["check"], &format!("{C2},{C3}"))?;
    println!("{check}");
    let line = check
        .lines()
        .find(|l| l.starts_with(C2) && l.contains(" token "))
        .unwrap_or_default();
    assert!(line.contains("accepted; expires 20"), "{check}");
    let status = cli(&env, &["status", "renewal"], &format!("{C2},{C3}"))?;
    println!("{status}");
    assert!(status.contains("TOKEN EXPIRES"), "{status}");
    let row = status
        .lines()
        .find(|l| l.starts_with(C2))
        .unwrap_or_default();
    assert!(
        row.split_whitespace().any(is_rfc3339),
        "the expiry is shown: {row}"
    );
    ctl.terminate();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_cannot_be_renewed_is_reported_with_the_fix_and_used_until_it_expires()
-> anyhow::Result<()> {
    let env = registered_env(&[C1, C2], Duration::from_secs(45)).await?;
    let mut ctl = env.start_controller("unrenewable", &[])?;
    let mc = multicasskop("unrenewable", CC, "cassandra:3.11.9", &[C1, C2], None);
    apply(&env, &mc)?;
    wait_ready(&env, &ctl, "unrenewable").await?;

    // The remote's admin takes the renewal right away from the controller.
    env.kubectl_in(
        C2,
        &[
            "-n",
            NAMESPACE,
            "patch",
            "role",
            "multi-casskop",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/rules/2"}]"#,
        ],
    )?;
    let from = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    // A renewal may have landed just before the patch: the token held once it is gone for sure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = secret_token(&env, C2)?;
    let exp = claims(&held)?["exp"].as_i64().unwrap();

    // Reported while the token still works, naming the site and what to grant.
    let message = eventually("the renewal failure in the site's status", WAIT, || async {
        let m = site_message(&env, "unrenewable", C2)?;
        Ok(m.contains("grant create on serviceaccounts/token")
            .then_some(m))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 40)))?;
    let seen_at = jiff::Timestamp::now().as_second();
    println!("reported: {message}");
    assert!(
        message.contains(&format!("site {C2}"))
            && message.contains("resourceNames [multi-casskop]")
            && message.contains("re-run `multi-casskop register`")
            && message.contains("the current token is used until it expires"),
        "{message}"
    );
    assert!(
        seen_at < exp,
        "reported before the token expired ({seen_at} < {exp})"
    );
    let events = env.kubectl(&["get", "events.events.k8s.io", "-o", "json"])?;
    let events: Value = serde_json::from_str(&events)?;
    assert!(
        events["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "SiteTokenProblem"
                && e["type"] == "Warning"
                && e["regarding"]["name"] == "unrenewable"
                && e["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("serviceaccounts/token"))
        }),
        "a Warning Event names the problem: {events}"
    );
    // Nothing was lost: the Secret still holds the working token, which still authenticates
    // (the refused renewals themselves are 403s, not 401s).
    assert_eq!(secret_token(&env, C2)?, held);
    let sa = Env::sa_user("multi-casskop");
    let audit: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= from && e.cluster == C2)
        .collect();
    assert!(
        audit
            .iter()
            .any(|e| e.user == sa && e.resource == "serviceaccounts" && e.code == 403),
        "renewals were tried with the old token"
    );
    assert!(
        audit
            .iter()
            .all(|e| e.code != 401 || e.time_us / 1_000_000 >= exp),
        "no request refused before the token expired"
    );

    // Past its expiry the site says so.
    let expired = eventually("the site reported with its expired token", WAIT, || async {
        let m = site_message(&env, "unrenewable", C2)?;
        Ok(m.contains("token expired at").then_some(m))
    })
    .await?;
    println!("expired: {expired}");
    assert!(
        expired.contains(&format!("site {C2}: token expired at 20")),
        "{expired}"
    );
    let status = cli(&env, &["status", "unrenewable"], C2)?;
    println!("{status}");
    assert!(status.contains("expired 20"), "{status}");

    // A new registration (which grants the renewal again) recovers the site, no restart.
    let out = env.register(C2, &[])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let registered = secret_token(&env, C2)?;
    eventually(
        "the site healthy and its token renewed again",
        WAIT,
        || async {
            let m = site_message(&env, "unrenewable", C2)?;
            let renewed = secret_token(&env, C2)? != registered;
            Ok((renewed && !m.contains("token")).then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 40)))?;
    wait_ready(&env, &ctl, "unrenewable").await?;
    assert!(ctl.exited().is_none(), "the controller never restarted");
    ctl.terminate();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_token_is_capped_by_the_max_token_expiration() -> anyhow::Result<()> {
    let env = Env::start(&[C1]).await?;
    env.sim
        .cluster(C1)
        .set_max_token_expiration(Some(Duration::from_secs(20)));
    env.kubectl(&["-n", NAMESPACE, "create", "serviceaccount", "capped"])?;
    let token = env.kubectl(&[
        "-n",
        NAMESPACE,
        "create",
        "token",
        "capped",
        "--duration=1h",
    ])?;
    let c = claims(token.trim())?;
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        20,
        "{c}"
    );
    assert_eq!(
        c["sub"],
        format!("system:serviceaccount:{NAMESPACE}:capped")
    );
    let short = env.kubectl(&[
        "-n",
        NAMESPACE,
        "create",
        "token",
        "capped",
        "--duration=5m",
    ]);
    let err = short
        .expect_err("a request under 10 minutes is refused")
        .to_string();
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );
    Ok(())
}
