//! `export`, `register` and `check` run as a user would: the real binary and real kubectl on kubesim.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams};
use multi_casskop::sites::CredentialSource;
use multi_casskop::sites::credentials::{self, SecretLookup};
use support::registration::*;

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";

async fn register(env: &Env, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "register",
        "--source-context",
        C2,
        "--dest-context",
        C1,
        "--source-namespace",
        NS,
        "--dest-namespace",
        NS,
    ];
    args.extend_from_slice(extra);
    env.mc(&args).await
}

async fn list_cassandraclusters_with(env: &Env, secret_on_c1: &str) -> Result<usize, String> {
    let c1 = env.sim.cluster(C1).client().await;
    let s: Secret = Api::namespaced(c1, NS)
        .get(secret_on_c1)
        .await
        .map_err(|e| e.to_string())?;
    let origin = CredentialSource::Secret {
        namespace: NS.into(),
        name: secret_on_c1.into(),
    };
    let creds = credentials::from_keys(
        &credentials::secret_keys(&s),
        origin,
        None,
        Default::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let client = creds.client().map_err(|e| e.to_string())?;
    let api: Api<DynamicObject> = Api::namespaced_with(
        client,
        NS,
        &multi_casskop::api::cassandra::cassandra_cluster_resource(),
    );
    api.list(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_piped_into_kubectl_apply_gives_a_working_secret() {
    let env = env(&[C1, C2]).await;
    // The data-plane side a user prepares for kubemcsa: a service account with a Role.
    env.kubectl_ok(
        &[
            "--context",
            C2,
            "-n",
            NS,
            "create",
            "serviceaccount",
            "multi-casskop",
        ],
        None,
    )
    .await;
    env.kubectl_ok(
        &[
            "--context",
            C2,
            "-n",
            NS,
            "create",
            "role",
            "cc",
            "--verb=get,list,watch",
            "--resource=cassandraclusters.db.orange.com",
        ],
        None,
    )
    .await;
    env.kubectl_ok(
        &[
            "--context",
            C2,
            "-n",
            NS,
            "create",
            "rolebinding",
            "cc",
            "--role=cc",
            "--serviceaccount=cassandra:multi-casskop",
        ],
        None,
    )
    .await;

    let out = env
        .mc(&[
            "export",
            "--context",
            C2,
            "-n",
            NS,
            "multi-casskop",
            "--as",
            C2,
            "--legacy-token",
        ])
        .await;
    assert!(out.status.success());
    let yaml = stdout(&out);
    assert!(yaml.contains("kind: Secret"), "{yaml}");
    let err = stderr(&out);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("export: [")).count(),
        4,
        "one line per step: {err}"
    );
    env.kubectl_ok(
        &["--context", C1, "-n", NS, "apply", "-f", "-"],
        Some(&yaml),
    )
    .await;

    // kubemcsa keys + k8ssandra's kubeconfig key.
    let keys = env
        .kubectl_ok(
            &[
                "--context",
                C1,
                "-n",
                NS,
                "get",
                "secret",
                C2,
                "-o",
                "jsonpath={.data}",
            ],
            None,
        )
        .await;
    for k in [
        "\"server\"",
        "\"ca.crt\"",
        "\"namespace\"",
        "\"token\"",
        "\"config\"",
        "\"kubeconfig\"",
    ] {
        assert!(keys.contains(k), "key {k} missing in {keys}");
    }
    assert_eq!(
        env.secret_key(C1, C2, "server").await,
        env.sim.cluster(C2).url()
    );
    assert_eq!(env.secret_key(C1, C2, "namespace").await, NS);

    // kubectl with the kubeconfig from the `config` key reaches the remote.
    let cfg = env.path("exported-config");
    std::fs::write(&cfg, env.secret_key(C1, C2, "config").await).unwrap();
    let kc = cfg.to_str().unwrap();
    assert_eq!(
        env.kubectl_ok(&["--kubeconfig", kc, "config", "current-context"], None)
            .await
            .trim(),
        C2
    );
    let o = env
        .kubectl(
            &["--kubeconfig", kc, "get", "cassandraclusters.db.orange.com"],
            None,
        )
        .await;
    assert!(o.success(), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("No resources found in cassandra namespace"),
        "{}",
        o.stderr
    );

    // And so does the controller's credential loading (Secret read through the API).
    assert_eq!(list_cassandraclusters_with(&env, C2).await, Ok(0));
    let empty = env.path("empty-kubeconfig");
    std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").unwrap();
    let registry = multi_casskop::sites::SiteRegistry::start(
        env.sim.cluster(C1).client().await,
        multi_casskop::sites::RegistryConfig {
            local: C1.into(),
            remotes: vec![C2.into()],
            namespace: NS.into(),
            imports_dir: env.path("no-imports"),
            kubeconfig: Some(empty),
            local_context: Some(C1.into()),
            kubeconfig_policy: Default::default(),
        },
    )
    .await;
    match registry.get(C2) {
        Some(multi_casskop::sites::SiteState::Ready(site)) => {
            assert_eq!(
                site.source,
                CredentialSource::Secret {
                    namespace: NS.into(),
                    name: C2.into()
                }
            );
            let api: Api<DynamicObject> = Api::namespaced_with(
                site.client.clone(),
                NS,
                &multi_casskop::api::cassandra::cassandra_cluster_resource(),
            );
            assert_eq!(
                api.list(&ListParams::default()).await.unwrap().items.len(),
                0
            );
        }
        other => panic!("the controller's registry cannot use the exported Secret: {other:?}"),
    }

    // A second legacy export reuses the same token Secret (nothing rotated behind the user's back).
    let again = env
        .mc(&[
            "export",
            "--context",
            C2,
            "-n",
            NS,
            "multi-casskop",
            "--as",
            C2,
            "--legacy-token",
        ])
        .await;
    assert!(again.status.success());
    let token_of = |y: &str| {
        y.lines()
            .find(|l| l.trim_start().starts_with("token:"))
            .map(str::to_string)
    };
    assert_eq!(token_of(&yaml), token_of(&stdout(&again)));

    // Without --legacy-token (here with --token-ttl) the token comes from the TokenRequest API.
    let ttl = env
        .mc(&[
            "export",
            "--context",
            C2,
            "-n",
            NS,
            "multi-casskop",
            "--as",
            C2,
            "--token-ttl",
            "1h",
        ])
        .await;
    assert!(ttl.status.success());
    assert!(
        stderr(&ttl).contains("TokenRequest token valid until"),
        "{}",
        stderr(&ttl)
    );
    assert_ne!(token_of(&yaml), token_of(&stdout(&ttl)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_of_a_missing_service_account_says_how_to_create_it() {
    let env = env(&[C1, C2]).await;
    let out = env
        .mc(&["export", "--context", C2, "-n", NS, "ghost", "--as", C2])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("FAILED on cluster k8s-cluster2: service account cassandra/ghost not found"),
        "{err}"
    );
    assert!(
        err.contains("kubectl --context k8s-cluster2 -n cassandra create serviceaccount ghost"),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "nothing to apply on failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_end_to_end_and_again_replaces_the_token() {
    let env = env(&[C1, C2]).await;
    let out = register(&env, &["--legacy-token"]).await;
    assert!(out.status.success());
    let err = stderr(&out);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("register: [")).count(),
        13,
        "one line per step: {err}"
    );
    assert!(
        err.contains("service account cassandra/multi-casskop created"),
        "{err}"
    );
    assert!(
        err.contains(
            "Role cassandra/multi-casskop created, RoleBinding cassandra/multi-casskop created"
        ),
        "{err}"
    );
    assert!(
        err.contains("may list cassandraclusters in cassandra"),
        "{err}"
    );

    // The Role is exactly what the controller needs.
    let rules = env
        .kubectl_ok(
            &[
                "--context",
                C2,
                "-n",
                NS,
                "get",
                "role",
                "multi-casskop",
                "-o",
                "jsonpath={.rules}",
            ],
            None,
        )
        .await;
    let rules: serde_json::Value = serde_json::from_str(&rules).unwrap();
    assert_eq!(
        rules[0]["resources"],
        serde_json::json!(["cassandraclusters"])
    );
    assert_eq!(
        rules[0]["verbs"],
        serde_json::json!(["get", "list", "watch", "create", "patch", "delete"])
    );
    assert_eq!(
        rules[2],
        serde_json::json!({"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": ["multi-casskop"], "verbs": ["create"]}),
        "the controller may renew its own token, and only its own"
    );
    assert_eq!(rules.as_array().unwrap().len(), 3, "{rules}");
    assert_eq!(list_cassandraclusters_with(&env, C2).await, Ok(0));
    let token1 = env.secret_key(C1, C2, "token").await;

    // Second run (at trace level): succeeds, new token, the old one no longer works.
    let out = env
        .mc_env(
            &[
                "register",
                "--source-context",
                C2,
                "--dest-context",
                C1,
                "--source-namespace",
                NS,
                "--dest-namespace",
                NS,
                "--legacy-token",
            ],
            &[("RUST_LOG", "trace"), ("LOG_LEVEL", "Debug")],
        )
        .await;
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("Secret cassandra/k8s-cluster2 updated"),
        "{}",
        stderr(&out)
    );
    let token2 = env.secret_key(C1, C2, "token").await;
    assert_ne!(token1, token2);
    assert_eq!(list_cassandraclusters_with(&env, C2).await, Ok(0));
    let old = env
        .sim
        .cluster(C2)
        .client_with_token(&token1)
        .await
        .unwrap();
    let err = old
        .apiserver_version()
        .await
        .expect_err("old token must be revoked");
    assert!(err.to_string().contains("401"), "{err}");
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&token2)
    };
    let all = format!("{}{}", stderr(&out), stdout(&out));
    eprintln!("register at trace level wrote {} bytes", all.len());
    for t in [&token1, &token2, &b64] {
        assert!(!all.contains(t.as_str()), "token printed");
    }

    // Switching to a bound token retires the long-lived one.
    let out = register(&env, &["--token-ttl", "1h"]).await;
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("TokenRequest token valid until"),
        "{}",
        stderr(&out)
    );
    assert_eq!(list_cassandraclusters_with(&env, C2).await, Ok(0));
    let old = env
        .sim
        .cluster(C2)
        .client_with_token(&token2)
        .await
        .unwrap();
    assert!(
        old.apiserver_version().await.is_err(),
        "long-lived token must be revoked"
    );
    let left = env
        .kubectl_ok(
            &[
                "--context",
                C2,
                "-n",
                NS,
                "get",
                "secrets",
                "-l",
                "multicasskop.db.orange.com/exported-as=k8s-cluster2",
                "-o",
                "name",
            ],
            None,
        )
        .await;
    assert_eq!(left.trim(), "", "token Secrets left: {left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_with_client_config_writes_a_client_config_that_check_accepts() {
    let env = env(&[C1, C2]).await;
    env.kubectl_ok(
        &["--context", C1, "apply", "-f", "-"],
        Some(CLIENT_CONFIG_CRD),
    )
    .await;
    let out = register(
        &env,
        &[
            "--client-config",
            "--destination-name",
            "dc2",
            "--token-ttl",
            "24h",
        ],
    )
    .await;
    assert!(out.status.success());
    let spec = env
        .kubectl_ok(
            &[
                "--context",
                C1,
                "-n",
                NS,
                "get",
                "clientconfigs.config.k8ssandra.io",
                "dc2",
                "-o",
                "jsonpath={.spec}",
            ],
            None,
        )
        .await;
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(
        spec,
        serde_json::json!({"kubeConfigSecret": {"name": "dc2"}, "contextName": "dc2"})
    );
    assert_eq!(list_cassandraclusters_with(&env, "dc2").await, Ok(0));

    // check finds ClientConfig sites by itself (no --remote).
    let out = env
        .mc(&[
            "check",
            "--context",
            C1,
            "-n",
            NS,
            "--local",
            C1,
            "--imports-dir",
            "/nonexistent",
        ])
        .await;
    let table = stdout(&out);
    assert!(out.status.success(), "{table}");
    assert!(
        check_line(&table, "dc2", "credentials")
            .contains("from ClientConfig cassandra/dc2 (secret cassandra/dc2, context dc2)"),
        "{table}"
    );
    assert!(
        check_line(&table, "dc2", "rbac").contains(" ok "),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_refuses_a_cluster_registered_to_itself() {
    let env = env(&[C1, C2]).await;
    let before = env.writes().len();
    let out = env
        .mc(&["register", "--source-context", C1, "--dest-context", C1])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("refuse self-registration: FAILED on cluster k8s-cluster1"),
        "{err}"
    );
    assert!(
        err.contains("a cluster cannot be registered to itself"),
        "{err}"
    );
    assert!(
        err.contains("fix: pass the data-plane cluster as --source-context"),
        "{err}"
    );
    assert_eq!(env.writes().len(), before);

    // The same cluster under another address and context name is recognised too.
    let c1 = env.sim.cluster(C1).clone();
    let alias = multi_casskop::sites::exported::kubeconfig_yaml(
        "alias1",
        &c1.url().replace("127.0.0.1", "localhost"),
        c1.ca_pem().as_bytes(),
        &c1.admin_token(),
        NS,
    )
    .unwrap();
    let alias_path = env.path("alias-kubeconfig");
    std::fs::write(&alias_path, alias).unwrap();
    let out = env
        .mc(&[
            "register",
            "--source-context",
            "alias1",
            "--source-kubeconfig",
            alias_path.to_str().unwrap(),
            "--dest-context",
            C1,
            "--source-namespace",
            NS,
            "--dest-namespace",
            NS,
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("are the same cluster (kube-system namespace uid"),
        "{err}"
    );
    assert_eq!(env.writes().len(), before, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_dry_run_changes_nothing() {
    let env = env(&[C1, C2]).await;
    let before = env.writes().len();
    let seen = env.sim.audit().len();
    let out = register(&env, &["--dry-run", "--client-config"]).await;
    assert!(out.status.success());
    let plan = stdout(&out);
    for kind in [
        "kind: ServiceAccount",
        "kind: Role",
        "kind: RoleBinding",
        "kind: Secret",
        "kind: ClientConfig",
    ] {
        assert!(plan.contains(kind), "{kind} missing from plan:\n{plan}");
    }
    assert!(
        stderr(&out).contains("(dry run) would create service account cassandra/multi-casskop")
    );
    let audit = env.sim.audit();
    assert!(audit.len() > seen, "the dry run did read the clusters");
    let writes: Vec<_> = env.writes().into_iter().skip(before).collect();
    assert!(writes.is_empty(), "dry run wrote: {writes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_failures_name_the_step_and_the_fix() {
    let env = env(&[C1, C2]).await;

    // Unknown context.
    let out = env
        .mc(&[
            "register",
            "--source-context",
            "k8s-cluster9",
            "--dest-context",
            C1,
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("[1/13] load source context: FAILED on cluster k8s-cluster9: context k8s-cluster9 not found in"), "{err}");
    assert!(
        err.contains("fix: pick one of the contexts in")
            && err.contains("(k8s-cluster1, k8s-cluster2)"),
        "{err}"
    );

    // Missing namespace.
    let out = env
        .mc(&[
            "register",
            "--source-context",
            C2,
            "--dest-context",
            C1,
            "--source-namespace",
            "nowhere",
            "--dest-namespace",
            NS,
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("check source namespace: FAILED on cluster k8s-cluster2: namespace nowhere does not exist"), "{err}");
    assert!(
        err.contains("fix: create it (kubectl --context k8s-cluster2 create namespace nowhere)"),
        "{err}"
    );
    let out = env
        .mc(&[
            "register",
            "--source-context",
            C2,
            "--dest-context",
            C1,
            "--source-namespace",
            NS,
            "--dest-namespace",
            "nowhere",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("check destination namespace: FAILED on cluster k8s-cluster1: namespace nowhere does not exist"));

    // Missing service account, and an identity that may read but not create service accounts.
    env.kubectl_ok(
        &[
            "--context",
            C2,
            "-n",
            NS,
            "create",
            "role",
            "sa-reader",
            "--verb=get,list",
            "--resource=serviceaccounts,namespaces",
        ],
        None,
    )
    .await;
    env.kubectl_ok(
        &[
            "--context",
            C2,
            "-n",
            NS,
            "create",
            "rolebinding",
            "sa-reader",
            "--role=sa-reader",
            "--serviceaccount=cassandra:limited",
        ],
        None,
    )
    .await;
    let token = env.sim.cluster(C2).issue_token(NS, "limited", None);
    let limited = env.kubeconfig_with_token("limited-kc", "limited2", C2, &token);
    let out = env
        .mc(&[
            "register",
            "--source-context",
            "limited2",
            "--source-kubeconfig",
            limited.to_str().unwrap(),
            "--dest-context",
            C1,
            "--source-namespace",
            NS,
            "--dest-namespace",
            NS,
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("ensure service account: FAILED on cluster limited2: service account cassandra/multi-casskop is missing and could not be created"),
        "{err}"
    );
    assert!(err.contains("ask an admin to run `kubectl --context limited2 -n cassandra create serviceaccount multi-casskop`"), "{err}");
    assert!(!err.contains(&token), "token printed");

    // Unreachable cluster.
    env.sim.cluster(C2).faults().set_unreachable(true);
    let out = register(&env, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("reach source cluster: FAILED on cluster k8s-cluster2"),
        "{err}"
    );
    assert!(
        err.contains(&format!("fix: check that {}", env.sim.cluster(C2).url())),
        "{err}"
    );
}

async fn check(env: &Env, remotes: &str, json: bool) -> std::process::Output {
    let mut args = vec![
        "check",
        "--context",
        C1,
        "-n",
        NS,
        "--local",
        C1,
        "--remote",
        remotes,
    ];
    let imports = env.path("no-imports");
    let imports = imports.to_str().unwrap().to_string();
    args.extend_from_slice(&["--imports-dir", &imports]);
    if json {
        args.extend_from_slice(&["-o", "json"]);
    }
    env.mc(&args).await
}

fn check_line(out: &str, site: &str, check: &str) -> String {
    out.lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(site) && w.next() == Some(check)
        })
        .unwrap_or_else(|| panic!("no line for {site} {check} in\n{out}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_is_green_on_a_registered_setup_and_names_each_failure() {
    let env = env(&[C1, C2]).await;
    assert!(register(&env, &[]).await.status.success());

    // All green.
    let out = check(&env, C2, false).await;
    assert!(out.status.success());
    let table = stdout(&out);
    assert!(
        table.contains("all checks passed (2 sites, namespace cassandra)"),
        "{table}"
    );
    for c in ["credentials", "tls", "token", "rbac", "crd", "namespace"] {
        assert!(check_line(&table, C2, c).contains(" ok "), "{c}: {table}");
    }
    assert!(
        check_line(&table, C2, "credentials").contains("from secret cassandra/k8s-cluster2"),
        "{table}"
    );

    // JSON.
    let out = check(&env, C2, true).await;
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["sites"][1]["site"], C2);
    assert_eq!(v["sites"][1]["checks"].as_array().unwrap().len(), 6);

    // Missing secret (and no context of that name).
    let out = check(&env, "k8s-cluster3", false).await;
    assert_eq!(out.status.code(), Some(1));
    let line = check_line(&stdout(&out), "k8s-cluster3", "credentials");
    assert!(
        line.contains("FAIL") && line.contains("no secret cassandra/k8s-cluster3"),
        "{line}"
    );
    assert!(
        line.contains("fix: register it: multi-casskop register --source-context k8s-cluster3"),
        "{line}"
    );

    // Wrong CA: cluster2's server and token with cluster1's CA.
    let token = env.secret_key(C1, C2, "token").await;
    let wrong = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: wrongca, namespace: {NS}}}\nstringData:\n  server: {}\n  token: {token}\n  ca.crt: |\n{}",
        env.sim.cluster(C2).url(),
        env.sim
            .cluster(C1)
            .ca_pem()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    env.kubectl_ok(&["--context", C1, "apply", "-f", "-"], Some(&wrong))
        .await;
    let out = check(&env, "wrongca", false).await;
    assert_eq!(out.status.code(), Some(1));
    let line = check_line(&stdout(&out), "wrongca", "tls");
    assert!(
        line.contains("FAIL") && line.contains("not signed by the CA in the credentials"),
        "{line}"
    );
    assert!(!stdout(&out).contains(&token), "token printed");

    // Missing RBAC verb.
    env.kubectl_ok(
        &[
            "--context", C2, "-n", NS, "patch", "role", "multi-casskop", "--type", "json", "-p",
            r#"[{"op":"replace","path":"/rules/0/verbs","value":["get","list","watch","create","patch"]}]"#,
        ],
        None,
    )
    .await;
    let out = check(&env, C2, false).await;
    assert_eq!(out.status.code(), Some(1));
    let line = check_line(&stdout(&out), C2, "rbac");
    assert!(
        line.contains("FAIL")
            && line.contains(
                "not allowed in namespace cassandra: delete cassandraclusters.db.orange.com"
            ),
        "{line}"
    );

    // CRD not installed.
    env.kubectl_ok(
        &[
            "--context",
            C2,
            "delete",
            "crd",
            "cassandraclusters.db.orange.com",
        ],
        None,
    )
    .await;
    let out = check(&env, C2, false).await;
    assert_eq!(out.status.code(), Some(1));
    let line = check_line(&stdout(&out), C2, "crd");
    assert!(
        line.contains("FAIL")
            && line.contains(
                "CRD (cassandraclusters.db.orange.com/v2) is not installed on k8s-cluster2"
            ),
        "{line}"
    );

    // Revoked token.
    env.sim.cluster(C2).faults().revoke_token(&token);
    let out = check(&env, C2, false).await;
    assert_eq!(out.status.code(), Some(1));
    let table = stdout(&out);
    let line = check_line(&table, C2, "token");
    assert!(
        line.contains("FAIL")
            && line.contains("k8s-cluster2 rejected the token from secret cassandra/k8s-cluster2"),
        "{line}"
    );
    assert!(line.contains("run multi-casskop register again"), "{line}");
    assert!(check_line(&table, C2, "rbac").contains("skip"), "{table}");
    assert!(!table.contains(&token), "token printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_explains_its_flags_with_an_example() {
    let env = env(&[C1]).await;
    let expect: [(&str, &[&str]); 3] = [
        (
            "export",
            &[
                "--context",
                "--kubeconfig",
                "--namespace",
                "<SERVICEACCOUNT>",
                "--as",
                "--token-ttl",
            ],
        ),
        (
            "register",
            &[
                "--source-context",
                "--dest-context",
                "--source-kubeconfig",
                "--dest-kubeconfig",
                "--source-namespace",
                "--dest-namespace",
                "--serviceaccount-name",
                "--destination-name",
                "--override-src-ip",
                "--override-src-port",
                "--token-ttl",
                "--dry-run",
                "--no-rbac",
                "--client-config",
            ],
        ),
        (
            "check",
            &[
                "--local",
                "--remote",
                "--namespace",
                "--kubeconfig",
                "--context",
                "--imports-dir",
                "--output",
            ],
        ),
    ];
    // --override-src-ip and --override-src-port go together.
    let out = env
        .mc(&[
            "register",
            "--source-context",
            "a",
            "--dest-context",
            "b",
            "--override-src-ip",
            "10.0.0.2",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--override-src-port"),
        "{}",
        stderr(&out)
    );
    for (cmd, flags) in expect {
        let out = env.mc(&[cmd, "--help"]).await;
        assert!(out.status.success());
        let help = stdout(&out);
        assert!(help.contains("Example:\n  multi-casskop "), "{cmd}: {help}");
        for f in flags {
            let lines: Vec<&str> = help.lines().collect();
            let i = lines
                .iter()
                .position(|l| l.trim_start().starts_with(['-', '<']) && l.contains(f))
                .unwrap_or_else(|| panic!("{cmd} --help lacks {f}"));
            // The explanation follows on the same line, or on the next (clap's long layout).
            let same = lines[i].split(f).nth(1).unwrap_or("").trim().to_string();
            let next = lines
                .get(i + 1)
                .map(|l| l.trim())
                .filter(|l| !l.starts_with('-'))
                .unwrap_or("");
            let explained =
                same.trim_start_matches(|c: char| c != ' ').trim().len() > 10 || next.len() > 10;
            assert!(explained, "{cmd} {f} unexplained: {}", lines[i]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_lookup_uses_the_api_when_no_mount_exists() {
    // The same lookup the controller uses, here through the library with the Secret read by check.
    let env = env(&[C1, C2]).await;
    assert!(register(&env, &[]).await.status.success());
    let lookup = credentials::RemoteLookup {
        name: C2.into(),
        imports_dir: env.path("none"),
        namespace: NS.into(),
        kubeconfig: Some(env.path("absent-kubeconfig")),
    };
    let c1 = env.sim.cluster(C1).client().await;
    let s: Secret = Api::namespaced(c1, NS).get(C2).await.unwrap();
    let creds =
        credentials::load_remote(&lookup, SecretLookup::from_secret(&s), Default::default())
            .await
            .unwrap();
    assert_eq!(
        creds.source,
        CredentialSource::Secret {
            namespace: NS.into(),
            name: C2.into()
        }
    );
    assert_eq!(creds.default_namespace.as_deref(), Some(NS));
}
