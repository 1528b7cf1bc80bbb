//! The live SiteRegistry on kubesim: Secrets, mounted directories and ClientConfigs come and go
//! while it runs; each change rebuilds or retires exactly the site concerned.

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use multi_casskop::sites::{CredentialSource, RegistryConfig, SiteRegistry, SiteState};
use support::registration::*;

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";
const C3: &str = "k8s-cluster3";

/// Waits (bounded, generous: shared machine) until `pred` holds for the site's state.
async fn wait_for(
    reg: &SiteRegistry,
    name: &str,
    what: &str,
    pred: impl Fn(Option<SiteState>) -> bool,
) -> Option<SiteState> {
    let mut rx = reg.changes();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = reg.get(name);
        if pred(s.clone()) {
            return s;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting for {name}: {what}; last state {s:?}"
        );
        let _ = tokio::time::timeout(left.min(Duration::from_secs(3)), rx.changed()).await;
    }
}

fn revision(s: &Option<SiteState>) -> Option<u64> {
    match s {
        Some(SiteState::Ready(site)) => Some(site.revision),
        _ => None,
    }
}

fn reason(s: &Option<SiteState>) -> String {
    match s {
        Some(SiteState::Unavailable { reason }) => reason.clone(),
        other => format!("{other:?}"),
    }
}

/// The four-key Secret for `cluster` with `token`, as kubemcsa writes it.
fn four_key_secret(name: &str, env: &Env, cluster: &str, token: &str) -> Secret {
    let c = env.sim.cluster(cluster);
    let mut data = std::collections::BTreeMap::new();
    for (k, v) in [
        ("server", c.url()),
        ("token", token.to_string()),
        ("ca.crt", c.ca_pem()),
        ("namespace", NS.to_string()),
    ] {
        data.insert(k.to_string(), k8s_openapi::ByteString(v.into_bytes()));
    }
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

async fn grant_list(env: &Env, cluster: &str, sa: &str) {
    env.kubectl_ok(
        &[
            "--context",
            cluster,
            "-n",
            NS,
            "create",
            "role",
            &format!("r-{sa}"),
            "--verb=get,list,watch",
            "--resource=cassandraclusters.db.orange.com",
        ],
        None,
    )
    .await;
    env.kubectl_ok(
        &[
            "--context",
            cluster,
            "-n",
            NS,
            "create",
            "rolebinding",
            &format!("r-{sa}"),
            &format!("--role=r-{sa}"),
            &format!("--serviceaccount={NS}:{sa}"),
        ],
        None,
    )
    .await;
}

async fn site_lists(state: &Option<SiteState>) -> Result<usize, String> {
    let Some(SiteState::Ready(site)) = state else {
        return Err(format!("not ready: {state:?}"));
    };
    let api: Api<DynamicObject> = Api::namespaced_with(
        site.client.clone(),
        NS,
        &multi_casskop::api::cassandra::cassandra_cluster_resource(),
    );
    api.list(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .map_err(|e| e.to_string())
}

async fn start(env: &Env, remotes: &[&str], imports: &Path) -> SiteRegistry {
    let local = env.sim.cluster(C1).client().await;
    // An empty kubeconfig: context-named fallback must not mask the Secret/dir sources here.
    let empty = env.path("empty-kubeconfig");
    std::fs::write(
        &empty,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    SiteRegistry::start(
        local,
        RegistryConfig {
            local: C1.into(),
            remotes: remotes.iter().map(ToString::to_string).collect(),
            namespace: NS.into(),
            imports_dir: imports.to_path_buf(),
            kubeconfig: Some(empty),
            local_context: Some(C1.into()),
            kubeconfig_policy: Default::default(),
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_created_rotated_and_deleted_while_running() {
    let env = env(&[C1, C2]).await;
    grant_list(&env, C2, "mc").await;
    let reg = start(&env, &[C2], &env.path("imports")).await;
    assert_eq!(reg.order(), vec![C1.to_string(), C2.to_string()]);
    assert!(matches!(reg.get(C1), Some(SiteState::Ready(_))));
    assert!(reg.get("nope").is_none());

    // Broken at start: Unavailable with a reason naming every source, never fatal.
    let s = reg.get(C2);
    assert!(
        reason(&s).starts_with("no credentials for remote k8s-cluster2: no directory"),
        "{}",
        reason(&s)
    );

    // The Secret appears: Ready without restart, and it works.
    let secrets: Api<Secret> = Api::namespaced(env.sim.cluster(C1).client().await, NS);
    let t1 = env.sim.cluster(C2).issue_token(NS, "mc", None);
    secrets
        .create(&PostParams::default(), &four_key_secret(C2, &env, C2, &t1))
        .await
        .unwrap();
    let s = wait_for(&reg, C2, "ready", |s| {
        matches!(s, Some(SiteState::Ready(_)))
    })
    .await;
    let r1 = revision(&s).unwrap();
    match &s {
        Some(SiteState::Ready(site)) => {
            assert_eq!(
                site.source,
                CredentialSource::Secret {
                    namespace: NS.into(),
                    name: C2.into()
                }
            );
            assert_eq!(site.default_namespace.as_deref(), Some(NS));
        }
        _ => unreachable!(),
    }
    assert_eq!(site_lists(&s).await, Ok(0));

    // Rotation: new token, old one revoked; the client is rebuilt (revision bumps) and works.
    let t2 = env.sim.cluster(C2).issue_token(NS, "mc", None);
    let mut sec = secrets.get(C2).await.unwrap();
    sec.data
        .as_mut()
        .unwrap()
        .insert("token".into(), k8s_openapi::ByteString(t2.into_bytes()));
    secrets
        .replace(C2, &PostParams::default(), &sec)
        .await
        .unwrap();
    env.sim.cluster(C2).faults().revoke_token(&t1);
    let s = wait_for(&reg, C2, "rebuilt", |s| {
        revision(&s).is_some_and(|r| r > r1)
    })
    .await;
    assert_eq!(site_lists(&s).await, Ok(0));

    // An unrelated Secret change does not rebuild the site.
    let r2 = revision(&s).unwrap();
    let other = four_key_secret("unrelated", &env, C2, "x");
    secrets
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    reg.reload().await;
    assert_eq!(revision(&reg.get(C2)), Some(r2));

    // The local API server expires every watch (410): the registry re-lists and keeps going.
    env.sim.cluster(C1).faults().expire_watches();
    reg.reload().await;
    assert_eq!(
        revision(&reg.get(C2)),
        Some(r2),
        "a re-list alone rebuilds nothing"
    );

    // The local API server goes away for a while: remotes keep their last good credentials.
    env.sim.cluster(C1).faults().set_unreachable(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    reg.reload().await;
    assert_eq!(
        revision(&reg.get(C2)),
        Some(r2),
        "an API outage retires nothing"
    );
    env.sim.cluster(C1).faults().set_unreachable(false);

    // A broken Secret: Unavailable with its own message.
    let mut sec = secrets.get(C2).await.unwrap();
    sec.data.as_mut().unwrap().insert(
        "ca.crt".into(),
        k8s_openapi::ByteString(b"not pem".to_vec()),
    );
    secrets
        .replace(C2, &PostParams::default(), &sec)
        .await
        .unwrap();
    let s = wait_for(&reg, C2, "broken", |s| {
        matches!(s, Some(SiteState::Unavailable { .. }))
    })
    .await;
    assert_eq!(
        reason(&s),
        "ca.crt in secret cassandra/k8s-cluster2 is not PEM: no -----BEGIN CERTIFICATE----- block"
    );

    // Deleted, no other source: Unavailable again, still configured.
    secrets.delete(C2, &DeleteParams::default()).await.unwrap();
    let s = wait_for(&reg, C2, "gone", |s| {
        reason(&s).starts_with("no credentials")
    })
    .await;
    assert!(
        reason(&s).contains("no secret cassandra/k8s-cluster2"),
        "{}",
        reason(&s)
    );
    assert_eq!(reg.order(), vec![C1.to_string(), C2.to_string()]);
}

/// Lays out a mounted Secret like the kubelet: `..data` -> timestamped dir, keys -> `..data/key`.
fn mount(dir: &Path, generation: u32, files: &[(&str, String)]) {
    std::fs::create_dir_all(dir).unwrap();
    let ts = format!("..2026_11_21_{generation:04}");
    std::fs::create_dir_all(dir.join(&ts)).unwrap();
    for (k, v) in files {
        std::fs::write(dir.join(&ts).join(k), v).unwrap();
    }
    // Atomic swap of ..data, as the kubelet does.
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&ts, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (k, _) in files {
        let link = dir.join(k);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{k}"), &link).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_directory_wins_and_reloads_on_kubelet_symlink_swap() {
    let env = env(&[C1, C2]).await;
    grant_list(&env, C2, "mc").await;
    let imports = env.path("imports");
    std::fs::create_dir_all(&imports).unwrap();
    let c2 = env.sim.cluster(C2).clone();
    let t1 = c2.issue_token(NS, "mc", None);
    let kc = |t: &str| {
        multi_casskop::sites::exported::kubeconfig_yaml(
            C2,
            &c2.url(),
            c2.ca_pem().as_bytes(),
            t,
            NS,
        )
        .unwrap()
    };
    mount(&imports.join(C2), 1, &[("config", kc(&t1))]);
    // A Secret of the same name exists too: the mount must win.
    let secrets: Api<Secret> = Api::namespaced(env.sim.cluster(C1).client().await, NS);
    secrets
        .create(
            &PostParams::default(),
            &four_key_secret(C2, &env, C2, "other"),
        )
        .await
        .unwrap();

    let reg = start(&env, &[C2], &imports).await;
    let s = wait_for(&reg, C2, "ready", |s| {
        matches!(s, Some(SiteState::Ready(_)))
    })
    .await;
    match &s {
        Some(SiteState::Ready(site)) => assert_eq!(
            site.source,
            CredentialSource::MountedDir {
                path: imports.join(C2)
            }
        ),
        _ => unreachable!(),
    }
    assert_eq!(site_lists(&s).await, Ok(0));
    let r1 = revision(&s).unwrap();

    let t2 = c2.issue_token(NS, "mc", None);
    mount(&imports.join(C2), 2, &[("config", kc(&t2))]);
    c2.faults().revoke_token(&t1);
    let s = wait_for(&reg, C2, "reloaded", |s| {
        revision(&s).is_some_and(|r| r > r1)
    })
    .await;
    assert_eq!(site_lists(&s).await, Ok(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_configs_add_and_remove_sites_live() {
    let env = env(&[C1, C2, C3]).await;
    env.kubectl_ok(
        &["--context", C1, "apply", "-f", "-"],
        Some(CLIENT_CONFIG_CRD),
    )
    .await;
    grant_list(&env, C3, "mc").await;
    let reg = start(&env, &[C2], &env.path("imports")).await;
    assert_eq!(reg.order(), vec![C1.to_string(), C2.to_string()]);

    // k8ssandra style: a Secret with a `kubeconfig` key whose context is named after the site.
    let c3 = env.sim.cluster(C3).clone();
    let token = c3.issue_token(NS, "mc", None);
    let kc = multi_casskop::sites::exported::kubeconfig_yaml(
        "ctx3",
        &c3.url(),
        c3.ca_pem().as_bytes(),
        &token,
        NS,
    )
    .unwrap();
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: c3-kubeconfig, namespace: {NS}}}\nstringData:\n  kubeconfig: |\n{}",
        kc.lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    env.kubectl_ok(&["--context", C1, "apply", "-f", "-"], Some(&secret))
        .await;
    let cc = format!(
        "apiVersion: config.k8ssandra.io/v1beta1\nkind: ClientConfig\nmetadata: {{name: {C3}, namespace: {NS}}}\nspec:\n  kubeConfigSecret: {{name: c3-kubeconfig}}\n  contextName: ctx3\n"
    );
    env.kubectl_ok(&["--context", C1, "apply", "-f", "-"], Some(&cc))
        .await;
    let s = wait_for(&reg, C3, "ready", |s| {
        matches!(s, Some(SiteState::Ready(_)))
    })
    .await;
    assert_eq!(site_lists(&s).await, Ok(0));
    assert_eq!(
        reg.order(),
        vec![C1.to_string(), C2.to_string(), C3.to_string()]
    );

    // A ClientConfig named like a --remote: the site is Unavailable and says why.
    let dup = format!(
        "apiVersion: config.k8ssandra.io/v1beta1\nkind: ClientConfig\nmetadata: {{name: {C2}, namespace: {NS}}}\nspec:\n  kubeConfigSecret: {{name: c3-kubeconfig}}\n"
    );
    env.kubectl_ok(&["--context", C1, "apply", "-f", "-"], Some(&dup))
        .await;
    let s = wait_for(&reg, C2, "duplicate", |s| {
        reason(&s).contains("defined twice")
    })
    .await;
    assert_eq!(
        reason(&s),
        "site k8s-cluster2 is defined twice: by --remote k8s-cluster2 and by ClientConfig cassandra/k8s-cluster2; remove one"
    );
    assert_eq!(
        reg.order(),
        vec![C1.to_string(), C2.to_string(), C3.to_string()]
    );
    env.kubectl_ok(
        &[
            "--context",
            C1,
            "-n",
            NS,
            "delete",
            "clientconfigs.config.k8ssandra.io",
            C2,
        ],
        None,
    )
    .await;
    wait_for(&reg, C2, "duplicate gone", |s| {
        !reason(&s).contains("defined twice")
    })
    .await;

    // A ClientConfig named like the local site: the local site is refused too.
    let dup_local = format!(
        "apiVersion: config.k8ssandra.io/v1beta1\nkind: ClientConfig\nmetadata: {{name: {C1}, namespace: {NS}}}\nspec:\n  kubeConfigSecret: {{name: c3-kubeconfig}}\n"
    );
    env.kubectl_ok(&["--context", C1, "apply", "-f", "-"], Some(&dup_local))
        .await;
    let s = wait_for(&reg, C1, "local duplicate", |s| {
        reason(&s).contains("defined twice")
    })
    .await;
    assert_eq!(
        reason(&s),
        "site k8s-cluster1 is defined twice: by --local k8s-cluster1 and by ClientConfig cassandra/k8s-cluster1; remove one"
    );
    env.kubectl_ok(
        &[
            "--context",
            C1,
            "-n",
            NS,
            "delete",
            "clientconfigs.config.k8ssandra.io",
            C1,
        ],
        None,
    )
    .await;
    wait_for(&reg, C1, "local back", |s| {
        matches!(s, Some(SiteState::Ready(_)))
    })
    .await;

    // Deleting the ClientConfig removes the site (not configured any more).
    env.kubectl_ok(
        &[
            "--context",
            C1,
            "-n",
            NS,
            "delete",
            "clientconfigs.config.k8ssandra.io",
            C3,
        ],
        None,
    )
    .await;
    wait_for(&reg, C3, "removed", |s| s.is_none()).await;
    assert_eq!(reg.order(), vec![C1.to_string(), C2.to_string()]);
}

/// Collects every log line (all targets, trace level) in memory.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_never_logs_a_token_even_at_trace_level() {
    use base64::Engine;
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // Global: the registry's tasks run on other worker threads. Only this test sets it.
    tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");

    let env = env(&[C1, C2]).await;
    grant_list(&env, C2, "mc").await;
    let secrets: Api<Secret> = Api::namespaced(env.sim.cluster(C1).client().await, NS);
    let t1 = env.sim.cluster(C2).issue_token(NS, "mc", None);
    secrets
        .create(&PostParams::default(), &four_key_secret(C2, &env, C2, &t1))
        .await
        .unwrap();
    let reg = start(&env, &[C2, "k8s-broken"], &env.path("imports")).await;
    let s = wait_for(&reg, C2, "ready", |s| {
        matches!(s, Some(SiteState::Ready(_)))
    })
    .await;
    assert_eq!(site_lists(&s).await, Ok(0));
    // A broken Secret holding a token in an unparseable kubeconfig.
    let t2 = env.sim.cluster(C2).issue_token(NS, "mc", None);
    let mut broken = four_key_secret("k8s-broken", &env, C2, &t2);
    broken.data.as_mut().unwrap().insert(
        "config".into(),
        k8s_openapi::ByteString(format!("users: [\n  token: {t2}\n  - {{{{").into_bytes()),
    );
    secrets
        .create(&PostParams::default(), &broken)
        .await
        .unwrap();
    let s = wait_for(&reg, "k8s-broken", "broken", |s| {
        reason(&s).contains("not valid YAML")
    })
    .await;
    // Rotation.
    let t3 = env.sim.cluster(C2).issue_token(NS, "mc", None);
    let mut sec = secrets.get(C2).await.unwrap();
    sec.data.as_mut().unwrap().insert(
        "token".into(),
        k8s_openapi::ByteString(t3.clone().into_bytes()),
    );
    secrets
        .replace(C2, &PostParams::default(), &sec)
        .await
        .unwrap();
    let s2 = wait_for(&reg, C2, "rebuilt", |s| revision(&s).is_some_and(|r| r > 1)).await;
    assert_eq!(site_lists(&s2).await, Ok(0));
    drop(reg);

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    eprintln!(
        "{} bytes of logs captured; reason: {}",
        text.len(),
        reason(&s)
    );
    assert!(
        text.contains("site credentials loaded"),
        "the registry's own logs were captured"
    );
    for t in [&t1, &t2, &t3] {
        let b64 = base64::engine::general_purpose::STANDARD.encode(t);
        assert!(!text.contains(t.as_str()), "token found in logs");
        assert!(!text.contains(&b64), "base64 token found in logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_secrets_sites_name_are_listed_and_watched() {
    let env = env(&[C1, C2, C3]).await;
    env.kubectl_ok(
        &["--context", C1, "apply", "-f", "-"],
        Some(CLIENT_CONFIG_CRD),
    )
    .await;
    grant_list(&env, C2, "mc").await;
    grant_list(&env, C3, "mc").await;
    let secrets: Api<Secret> = Api::namespaced(env.sim.cluster(C1).client().await, NS);
    // A Secret no site names, there before the registry starts and changed while it runs.
    let t2 = env.sim.cluster(C2).issue_token(NS, "mc", None);
    let mut unrelated = four_key_secret("unrelated", &env, C2, &t2);
    secrets
        .create(&PostParams::default(), &unrelated)
        .await
        .unwrap();
    // A --remote Secret, and a ClientConfig site with its own Secret.
    secrets
        .create(&PostParams::default(), &four_key_secret(C2, &env, C2, &t2))
        .await
        .unwrap();
    let c3 = env.sim.cluster(C3).clone();
    let t3 = c3.issue_token(NS, "mc", None);
    let kc = multi_casskop::sites::exported::kubeconfig_yaml(
        C3,
        &c3.url(),
        c3.ca_pem().as_bytes(),
        &t3,
        NS,
    )
    .unwrap();
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: c3-creds, namespace: {NS}}}\nstringData:\n  kubeconfig: |\n{}",
        kc.lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    env.kubectl_ok(&["--context", C1, "apply", "-f", "-"], Some(&secret))
        .await;
    let cc = format!(
        "apiVersion: config.k8ssandra.io/v1beta1\nkind: ClientConfig\nmetadata: {{name: {C3}, namespace: {NS}}}\nspec:\n  kubeConfigSecret: {{name: c3-creds}}\n"
    );
    env.kubectl_ok(&["--context", C1, "apply", "-f", "-"], Some(&cc))
        .await;
    let from = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    let reg = start(&env, &[C2], &env.path("imports")).await;
    for site in [C2, C3] {
        wait_for(&reg, site, "ready", |s| {
            matches!(s, Some(SiteState::Ready(_)))
        })
        .await;
    }
    unrelated.metadata.labels = Some([("touched".to_string(), "yes".to_string())].into());
    secrets
        .replace("unrelated", &PostParams::default(), &unrelated)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // kube-apiserver (and kubesim) audit a list or watch pinned to one name with that name.
    let requests: Vec<(String, String)> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= from && e.cluster == C1 && e.resource == "secrets")
        // The registry only reads; the test's own update of the unrelated Secret is not its.
        .filter(|e| matches!(e.verb.as_str(), "get" | "list" | "watch"))
        .map(|e| (e.verb, e.name))
        .collect();
    println!("the registry's Secret requests: {requests:?}");
    for name in [C2, "c3-creds"] {
        for verb in ["list", "watch"] {
            assert!(
                requests.iter().any(|(v, n)| v == verb && n == name),
                "{verb} of Secret {name}: {requests:?}"
            );
        }
    }
    assert!(
        requests.iter().all(|(_, n)| n == C2 || n == "c3-creds"),
        "only the named Secrets, never the namespace's others: {requests:?}"
    );
    drop(reg);
}
