//! Fault suite: credentials read through the API are data. A remote's Secret whose kubeconfig
//! runs an exec plugin, a mounted Secret directory whose kubeconfig reads a tokenFile and a
//! ClientConfig whose Secret's kubeconfig runs an auth-provider command are refused by the
//! controller and by `check`: the status, an Event, the log and a FAIL line name the site, the
//! source and the field; no plugin runs; the other sites roll out. With
//! `--insecure-kubeconfig-exec` the same credentials are used and the plugins run.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use e2e::benchmark::{
    CONTROLLER_SA, controller_args, create_all, is_ready, mc_api, mc_object, spawn_controller,
    wait_readyz,
};
use e2e::chart::client_config_crd;
use e2e::clientconfigs::{apply, client_config, kubeconfig_secret};
use e2e::faults::{assert_no_panic, failure_log};
use e2e::{ControllerProcess, Env, EnvOptions, NAMESPACE, binary, condition, eventually};
use kube::Api;
use kube::api::DynamicObject;
use kubesim::casskop::CasskopOptions;
use serde_json::json;

const SITES: [&str; 4] = ["site1", "site2", "site3", "site4"];
/// Its Secret's kubeconfig authenticates with an exec plugin.
const EXEC_SITE: &str = "site2";
/// Its mounted Secret directory's kubeconfig reads a tokenFile.
const FILE_SITE: &str = "site3";
/// A ClientConfig site (reaching site4's cluster) whose kubeconfig runs an auth-provider command.
const CC_SITE: &str = "dc5";
const LONG: Duration = Duration::from_secs(180);

/// A kubeconfig for `site` whose one user is `user` (YAML lines at user level).
fn kubeconfig(env: &Env, site: &str, user: &str) -> String {
    kubeconfig_as(env, site, site, user)
}

/// A kubeconfig whose context `name` reaches cluster `site` as `user`.
fn kubeconfig_as(env: &Env, site: &str, name: &str, user: &str) -> String {
    let c = env.sim.cluster(site);
    let ca = base64::engine::general_purpose::STANDARD.encode(c.ca_pem());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: {name}\n  user:\n{user}contexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n    namespace: {NAMESPACE}\ncurrent-context: {name}\n",
        c.url()
    )
}

/// A user whose exec plugin creates `marker` and then hands out `token`, as a real plugin would.
fn exec_user(marker: &Path, token: &str) -> String {
    let credential = json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    });
    let script = format!("touch '{}'; echo '{credential}'", marker.display());
    format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      interactiveMode: Never\n      command: /bin/sh\n      args: {}\n",
        json!(["-c", script])
    )
}

/// The SitesReachable message of `mc` once it is False and contains every one of `parts`.
async fn unreachable_saying(
    api: &Api<DynamicObject>,
    ctl: &ControllerProcess,
    mc: &str,
    parts: &[&str],
) -> anyhow::Result<String> {
    eventually(
        &format!("{mc} SitesReachable=False naming {parts:?}"),
        LONG,
        || async {
            let v = serde_json::to_value(api.get(mc).await?)?;
            Ok(
                condition(&v, "SitesReachable").and_then(|(status, _, message)| {
                    (status == "False" && parts.iter().all(|p| message.contains(p)))
                        .then_some(message)
                }),
            )
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(ctl, mc)))
}

async fn wait_ready(
    api: &Api<DynamicObject>,
    ctl: &ControllerProcess,
    mc: &str,
) -> anyhow::Result<()> {
    eventually(&format!("{mc} Ready"), LONG, || async {
        let v = serde_json::to_value(api.get(mc).await?)?;
        Ok(is_ready(&v).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(ctl, mc)))
}

/// `multi-casskop check` over every site, as an operator runs it with the controller's flags.
fn check(env: &Env, extra: &[&str]) -> anyhow::Result<(Option<i32>, String)> {
    let args = controller_args(env, extra);
    let out = Command::new(binary()?).arg("check").args(&args).output()?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
    ))
}

/// The table line of `site`'s `check`.
fn check_line<'a>(table: &'a str, site: &str, check: &str) -> &'a str {
    table
        .lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(site) && w.next() == Some(check)
        })
        .unwrap_or_else(|| panic!("no line for {site} {check} in\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_and_file_references_from_the_api_are_refused_by_name_unless_opted_in()
-> anyhow::Result<()> {
    let env = Env::start_with(
        &SITES,
        EnvOptions {
            casskop: CasskopOptions {
                ready_after: Duration::from_millis(400),
                react_after: Duration::from_millis(200),
            },
            controller_sa: CONTROLLER_SA.into(),
            local_cluster_admin: true,
        },
    )
    .await?;
    let marker = env.dir.path().join("exec-plugin-ran");
    // site2: a Secret read through the API, its kubeconfig running a plugin.
    let token2 = env
        .sim
        .cluster(EXEC_SITE)
        .issue_token(NAMESPACE, "remote-site2", None);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": EXEC_SITE, "namespace": NAMESPACE},
        "stringData": {"config": kubeconfig(&env, EXEC_SITE, &exec_user(&marker, &token2))},
    });
    env.apply_yaml(&secret.to_string())?;
    // site3: a mounted Secret directory (the controller's --imports-dir), its kubeconfig
    // reading a token file of the controller's host.
    let token3 = env
        .sim
        .cluster(FILE_SITE)
        .issue_token(NAMESPACE, "remote-site3", None);
    let token_file = env.dir.path().join("host-token");
    std::fs::write(&token_file, &token3)?;
    let mount = env.dir.path().join("no-imports").join(FILE_SITE);
    std::fs::create_dir_all(&mount)?;
    let file_user = format!("    tokenFile: {}\n", token_file.display());
    std::fs::write(
        mount.join("config"),
        kubeconfig(&env, FILE_SITE, &file_user),
    )?;

    // dc5: a ClientConfig whose Secret's kubeconfig runs a gcp auth-provider command.
    let cc_marker = env.dir.path().join("auth-provider-ran");
    let token5 = env
        .sim
        .cluster("site4")
        .issue_token(NAMESPACE, "remote-dc5", None);
    let script = env.dir.path().join("auth-provider.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\nprintf %s {token5}\n",
            cc_marker.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let provider_user = format!(
        "    auth-provider:\n      name: gcp\n      config: {{cmd-path: '{}'}}\n",
        script.display()
    );
    apply(&env, &client_config_crd()?)?;
    let cc_kubeconfig = kubeconfig_as(&env, "site4", CC_SITE, &provider_user);
    apply(&env, &kubeconfig_secret("dc5-kubeconfig", &cc_kubeconfig))?;
    apply(&env, &client_config(CC_SITE, "dc5-kubeconfig", None))?;

    let mut ctl = spawn_controller(&env, "strict", "Info", &[])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    let api = mc_api(env.local().client().await);
    let over = |sites: &[&str]| sites.iter().map(ToString::to_string).collect::<Vec<_>>();
    create_all(
        &api,
        vec![
            mc_object(
                "uses-exec",
                "uses-exec",
                &over(&["site1", EXEC_SITE]),
                "cassandra:3.11.9",
            ),
            mc_object(
                "uses-file",
                "uses-file",
                &over(&["site1", FILE_SITE]),
                "cassandra:3.11.9",
            ),
            mc_object(
                "uses-cc",
                "uses-cc",
                &over(&["site1", CC_SITE]),
                "cassandra:3.11.9",
            ),
            mc_object(
                "bystander",
                "bystander",
                &over(&["site1", "site4"]),
                "cassandra:3.11.9",
            ),
        ],
        1,
    )
    .await?;

    // The status names the site, the source and the field.
    let exec_field = "users[0].user.exec is refused";
    let msg = unreachable_saying(
        &api,
        &ctl,
        "uses-exec",
        &[
            &format!("site {EXEC_SITE}: kubeconfig in secret {NAMESPACE}/{EXEC_SITE} (key config)"),
            exec_field,
            "--insecure-kubeconfig-exec",
        ],
    )
    .await?;
    println!("uses-exec: {msg}");
    let msg = unreachable_saying(
        &api,
        &ctl,
        "uses-file",
        &[
            &format!(
                "site {FILE_SITE}: kubeconfig in mounted directory {}",
                mount.display()
            ),
            "users[0].user.tokenFile is refused",
        ],
    )
    .await?;
    println!("uses-file: {msg}");
    let msg = unreachable_saying(
        &api,
        &ctl,
        "uses-cc",
        &[
            &format!(
                "site {CC_SITE}: kubeconfig in ClientConfig {NAMESPACE}/{CC_SITE} (secret {NAMESPACE}/dc5-kubeconfig, context {CC_SITE}) (key kubeconfig)"
            ),
            "users[0].user.auth-provider is refused",
        ],
    )
    .await?;
    println!("uses-cc: {msg}");
    // The sites that are fine roll out meanwhile.
    wait_ready(&api, &ctl, "bystander").await?;
    assert!(
        env.get_cc("site1", "uses-exec")?.is_some(),
        "the first site of uses-exec was created"
    );
    // An Event says it once the refused site's turn comes, and so does the log.
    let event = eventually("a Warning Event naming the exec field", LONG, || async {
        Ok(env
            .events_of("uses-exec")?
            .into_iter()
            .find(|(t, _, note)| t == "Warning" && note.contains(exec_field)))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", failure_log(&ctl, "uses-exec")))?;
    println!("event: {event:?}");
    let log = ctl.logs();
    assert!(
        log.lines()
            .any(|l| l.contains(EXEC_SITE) && l.contains(exec_field)),
        "the log names site and field"
    );
    assert!(
        !log.contains(&token2) && !log.contains(&token3),
        "no token in the log"
    );

    // check: a FAIL line per refused site, exit 1, no "certificate trusted" for them.
    let (code, table) = check(&env, &[])?;
    println!("{table}");
    assert_eq!(code, Some(1), "{table}");
    let line = check_line(&table, EXEC_SITE, "credentials");
    assert!(line.contains("FAIL") && line.contains(exec_field), "{line}");
    let line = check_line(&table, FILE_SITE, "credentials");
    assert!(
        line.contains("FAIL") && line.contains("users[0].user.tokenFile"),
        "{line}"
    );
    let line = check_line(&table, CC_SITE, "credentials");
    assert!(
        line.contains("FAIL") && line.contains("users[0].user.auth-provider"),
        "{line}"
    );
    assert!(check_line(&table, EXEC_SITE, "tls").contains("skip"));
    assert!(check_line(&table, "site4", "tls").contains("certificate trusted"));
    assert!(
        !marker.exists(),
        "the exec plugin ran (controller or check)"
    );
    assert_no_panic(&ctl.logs(), "strict controller");
    ctl.terminate();

    // With the opt-in, the same credentials are used: the plugin runs, the file is read.
    let mut ctl = spawn_controller(&env, "opted-in", "Info", &["--insecure-kubeconfig-exec"])?;
    wait_readyz(&mut ctl, Duration::from_millis(50), Duration::from_secs(60)).await?;
    wait_ready(&api, &ctl, "uses-exec").await?;
    wait_ready(&api, &ctl, "uses-file").await?;
    assert!(
        marker.exists(),
        "with --insecure-kubeconfig-exec the plugin runs"
    );
    let (code, table) = check(&env, &["--insecure-kubeconfig-exec"])?;
    println!("{table}");
    assert_eq!(code, Some(0), "{table}");
    assert_no_panic(&ctl.logs(), "opted-in controller");
    ctl.terminate();

    // A kubeconfig that skips certificate verification: refused by `check` unless
    // --insecure-kubeconfig-tls, and even then never called "certificate trusted".
    let insecure = kubeconfig(&env, EXEC_SITE, &format!("    token: {token2}\n")).replace(
        "    certificate-authority-data:",
        "    insecure-skip-tls-verify: true\n    x-unused-ca:",
    );
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": EXEC_SITE, "namespace": NAMESPACE},
        "stringData": {"config": insecure},
    });
    env.apply_yaml(&secret.to_string())?;
    let (code, table) = check(&env, &["--insecure-kubeconfig-exec"])?;
    assert_eq!(code, Some(1), "{table}");
    let line = check_line(&table, EXEC_SITE, "credentials");
    assert!(
        line.contains("FAIL")
            && line.contains("clusters[0].cluster.insecure-skip-tls-verify is refused")
            && line.contains("--insecure-kubeconfig-tls"),
        "{line}"
    );
    let (code, table) = check(&env, &["--insecure-kubeconfig-tls"])?;
    println!("{table}");
    let line = check_line(&table, EXEC_SITE, "tls");
    assert!(
        line.contains("NOT verified (insecure-skip-tls-verify") && !line.contains("trusted"),
        "{line}"
    );
    assert_eq!(code, Some(1), "site3's tokenFile is still refused: {table}");
    Ok(())
}
