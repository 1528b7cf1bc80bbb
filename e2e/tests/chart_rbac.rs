//! The chart's RBAC: a namespaced Role on current APIs, the Lease rule only with leader
//! election; applied into kubesim (RBAC enforced for service accounts), it is all the real
//! controller needs for a rollout, leader election, Events, status and deletion: the audit log
//! shows no request refused and every rule of the Role used (with a TokenRequest token of the
//! chart's ServiceAccount, a ClientConfig site and a deletion).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use e2e::audit::{self, running_done};
use e2e::chart::{Access, accesses, chart_dir, doc_of_kind, granted, helm, render_chart};
use e2e::clientconfigs::{apply, multicasskop, write_kubeconfig};
use e2e::{
    ControllerProcess, Env, EnvOptions, NAMESPACE, binary, condition, controller_log_tail,
    eventually, sample,
};
use kubesim::kubectl::Kubectl;
use serde_json::Value;

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";
const C3: &str = "k8s-cluster3";
const WAIT: Duration = Duration::from_secs(180);
const MC: &str = "chart-rbac";
const CC: &str = "cassandra-chart";

/// Verbs of the Role whose use depends on timing, with the code path that needs them.
const TIMING_DEPENDENT: &[(&str, &str, &str, &str)] = &[
    (
        "db.orange.com",
        "multicasskops",
        "get",
        "reconcile_one re-reads a MultiCasskop when the controller's cache has not shown its own \
         last write yet (usual during a rollout, not guaranteed)",
    ),
    (
        "",
        "secrets",
        "update",
        "a renewed remote token is written back when a third of its lifetime is left (here \
         about 13 s after `register`, with the 20 s cap; a short run may end before)",
    ),
];

/// `multi-casskop register` as a user runs it, with the admin kubeconfig.
fn register(env: &Env, source: &str, extra: &[&str]) -> anyhow::Result<()> {
    let out = env.register(source, extra)?;
    anyhow::ensure!(
        out.status.success(),
        "register {source} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn rendered_args(deploy: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    let args = c["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let envs = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect();
    (args, envs)
}

async fn wait_image(env: &Env, ctl: &ControllerProcess, image: &str) -> anyhow::Result<()> {
    eventually(&format!("{image} rolled out"), WAIT, || async {
        let m = env.get_mc(MC)?;
        let mut ok = m["status"]["observedGeneration"] == m["metadata"]["generation"]
            && condition(&m, "Ready").is_some_and(|c| c.0 == "True");
        for s in [C1, C2, C3] {
            ok &= env
                .get_cc(s, CC)?
                .is_some_and(|c| c["spec"]["cassandraImage"] == image && running_done(&c));
        }
        Ok(ok.then_some(()))
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\ncontroller log:\n{}",
            controller_log_tail(&ctl.logs(), 40)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rbac_is_sufficient_and_every_rule_is_used() -> anyhow::Result<()> {
    let env = Env::start(&[C1, C2, C3]).await?;
    // No blanket rights: only what the chart and `register` grant.
    for c in [C1, C2, C3] {
        env.kubectl_in(c, &["delete", "clusterrolebinding", "e2e-controllers"])?;
    }

    // The chart as `helm install multi-casskop --set k8s.local=C1 --set k8s.remote={C2}
    // --set clientConfigCRD.install=true --set clientConfigs.secretNames={C3} -n NAMESPACE`
    // renders it (C3's ClientConfig, made by `register --client-config`, names Secret C3).
    let docs = render_chart(
        &[
            &format!("k8s.local={C1}"),
            &format!("k8s.remote={{{C2}}}"),
            "clientConfigCRD.install=true",
            &format!("clientConfigs.secretNames={{{C3}}}"),
        ],
        NAMESPACE,
    )?;
    let sa = doc_of_kind(&docs, "ServiceAccount")?;
    let role = doc_of_kind(&docs, "Role")?;
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    ] {
        apply(&env, doc_of_kind(&docs, kind)?)?;
    }
    let sa_name = sa["metadata"]["name"].as_str().unwrap().to_string();
    let user = format!("system:serviceaccount:{NAMESPACE}:{sa_name}");

    // A token for the chart's ServiceAccount through the TokenRequest API, in a kubeconfig.
    let token = env.kubectl(&["create", "token", &sa_name, "--duration=1h"])?;
    let token = token.trim().to_string();
    anyhow::ensure!(!token.is_empty(), "kubectl create token gave no token");
    let kc = env.dir.path().join("chart-sa-kubeconfig");
    write_kubeconfig(&kc, &[(env.sim.cluster(C1), token)])?;

    // `multi-casskop check` as the controller's identity: the rights it verifies for the local
    // site are exactly granted by the chart's Role.
    let check = Command::new(binary()?)
        .args([
            "check",
            "--kubeconfig",
            &kc.display().to_string(),
            "--context",
            C1,
        ])
        .args(["-n", NAMESPACE, &format!("-l{C1}"), "-o", "json"])
        .output()?;
    println!("check: {}", String::from_utf8_lossy(&check.stdout));
    anyhow::ensure!(
        check.status.success(),
        "check as the chart's ServiceAccount failed: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // Remotes as a user registers them: C2 as a --remote Secret, C3 k8ssandra style. Their
    // bound tokens live 20 s, so the controller renews them (and writes them back) meanwhile.
    for c in [C2, C3] {
        env.sim
            .cluster(c)
            .set_max_token_expiration(Some(Duration::from_secs(20)));
    }
    register(&env, C2, &[])?;
    register(&env, C3, &["--client-config"])?;

    // The controller with the Deployment's own arguments and environment.
    let deploy = doc_of_kind(&docs, "Deployment")?;
    let (mut args, envs) = rendered_args(deploy);
    assert!(args.contains(&"--leader-elect".to_string()), "{args:?}");
    args.extend([
        "--kubeconfig".to_string(),
        kc.display().to_string(),
        "--context".to_string(),
        C1.to_string(),
        "--imports-dir".to_string(),
        env.dir.path().join("no-imports").display().to_string(),
    ]);
    let mut envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    envs.push(("WATCH_NAMESPACE", NAMESPACE));
    envs.push(("POD_NAME", "multi-casskop-0"));
    println!("controller: multi-casskop {}", args.join(" "));
    // The controller's requests start here (check's own, above, are not the controller's).
    let from = env.sim.audit().last().map_or(0, |e| e.seq + 1);
    let ctl = ControllerProcess::spawn(env.dir.path(), "chart-controller", &args, &envs)?;

    // A rollout over the three sites, two edits (repeated Events), then deletion of everything.
    let mut mc = multicasskop(MC, CC, "cassandra:3.11.9", &[C1, C2, C3], None);
    mc["spec"]["deleteCassandraCluster"] = true.into();
    apply(&env, &mc)?;
    wait_image(&env, &ctl, "cassandra:3.11.9").await?;
    for image in ["cassandra:3.11.10", "cassandra:3.11.11"] {
        mc["spec"]["base"]["spec"]["cassandraImage"] = image.into();
        apply(&env, &mc)?;
        wait_image(&env, &ctl, image).await?;
    }
    let rollout = audit::analyze(
        &env.sim.audit(),
        &[
            user.as_str(),
            &Env::sa_user("multi-casskop"), // the identity `register` created on C2 and C3
        ],
        CC,
        0,
    );
    assert!(rollout.violations.is_empty(), "{:?}", rollout.violations);
    assert_eq!(rollout.first_write_order, [C1, C2, C3]);
    env.kubectl(&["delete", "multicasskop", MC, "--wait=false"])?;
    eventually(
        "the MultiCasskop and its CassandraClusters gone",
        WAIT,
        || async {
            let gone = env
                .kubectl(&[
                    "get",
                    "multicasskop",
                    MC,
                    "--ignore-not-found",
                    "-o",
                    "name",
                ])?
                .trim()
                .is_empty();
            let mut all = gone;
            for s in [C1, C2, C3] {
                all &= env.get_cc(s, CC)?.is_none();
            }
            Ok(all.then_some(()))
        },
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\ncontroller log:\n{}",
            controller_log_tail(&ctl.logs(), 40)
        )
    })?;

    // What the chart's identity did in the local cluster.
    let entries: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.seq >= from)
        .collect();
    let (used, forbidden) = accesses(&entries, C1, &user);
    assert!(
        forbidden.is_empty(),
        "requests refused by the chart's RBAC:\n{}",
        forbidden.join("\n")
    );
    let grants = granted(role);
    // A server-side apply that creates is authorized as `create` by kube-apiserver (on top of
    // `patch`); kubesim audits it as a patch answered 201.
    let mut used_or_implied: BTreeSet<Access> = used.clone();
    for e in entries
        .iter()
        .filter(|e| e.cluster == C1 && e.user == user && e.verb == "patch" && e.code == 201)
    {
        used_or_implied.insert((e.group.clone(), e.resource.clone(), "create".to_string()));
    }
    println!("chart Role: granted (group, resource, verb) -> used by the controller:");
    for g in &grants {
        println!("  {g:?} -> {}", used_or_implied.contains(g));
    }
    let not_granted: Vec<&Access> = used.iter().filter(|u| !grants.contains(u)).collect();
    assert!(
        not_granted.is_empty(),
        "used but not granted: {not_granted:?}"
    );
    let unused: Vec<&Access> = grants
        .iter()
        .filter(|g| !used_or_implied.contains(g))
        .filter(|(g, r, v)| {
            match TIMING_DEPENDENT
                .iter()
                .find(|(tg, tr, tv, _)| tg == g && tr == r && tv == v)
            {
                Some((.., why)) => {
                    println!("  not seen this run: {g}/{r} {v}: {why}");
                    false
                }
                None => true,
            }
        })
        .collect();
    assert!(unused.is_empty(), "granted but never used: {unused:?}");
    for rule in role["rules"].as_array().unwrap() {
        let one: BTreeSet<Access> = granted(&serde_json::json!({"rules": [rule]}));
        assert!(
            one.iter().any(|g| used_or_implied.contains(g)),
            "rule never used: {rule}"
        );
    }
    Ok(())
}

/// The Lease rule follows `leaderElection.enabled`, like the `--leader-elect` argument.
#[test]
fn leases_are_granted_only_with_leader_election() -> anyhow::Result<()> {
    for enabled in [true, false] {
        let docs = render_chart(
            &[
                &format!("k8s.local={C1}"),
                &format!("leaderElection.enabled={enabled}"),
            ],
            NAMESPACE,
        )?;
        let leases = granted(doc_of_kind(&docs, "Role")?)
            .iter()
            .any(|(g, r, _)| g == "coordination.k8s.io" && r == "leases");
        let (args, _) = rendered_args(doc_of_kind(&docs, "Deployment")?);
        assert_eq!(
            leases, enabled,
            "leases rule with leaderElection.enabled={enabled}"
        );
        assert_eq!(
            args.contains(&"--leader-elect".to_string()),
            enabled,
            "{args:?}"
        );
    }
    Ok(())
}

/// The Secrets rule names its Secrets (the k8s.remote ones and clientConfigs.secretNames), and
/// is absent when there are none: never every Secret of the namespace.
#[test]
fn secrets_are_granted_only_by_name() -> anyhow::Result<()> {
    let secrets_rules = |values: &[&str]| -> anyhow::Result<Vec<Value>> {
        let docs = render_chart(values, NAMESPACE)?;
        Ok(doc_of_kind(&docs, "Role")?["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["resources"].to_string().contains("secrets"))
            .collect())
    };
    let rules = secrets_rules(&[
        &format!("k8s.local={C1}"),
        &format!("k8s.remote={{{C2},{C3}}}"),
        "clientConfigs.secretNames={dc4-kubeconfig,k8s-cluster3}",
    ])?;
    // One rule to read them (pinned watches), one to write a renewed token back.
    assert_eq!(rules.len(), 2, "{rules:?}");
    for rule in &rules {
        assert_eq!(
            rule["resourceNames"],
            serde_json::json!([C2, C3, "dc4-kubeconfig"]),
            "{rule}"
        );
    }
    assert_eq!(rules[0]["verbs"], serde_json::json!(["list", "watch"]));
    assert_eq!(rules[1]["verbs"], serde_json::json!(["get", "update"]));
    let none = secrets_rules(&[&format!("k8s.local={C1}")])?;
    assert!(
        none.is_empty(),
        "no Secret to read, no Secrets rule: {none:?}"
    );
    Ok(())
}

#[test]
fn rbac_is_namespaced_and_uses_current_apis() {
    let docs = render_chart(
        &["k8s.local=k8s-cluster1", "k8s.remote={k8s-cluster2}"],
        "cassandra",
    )
    .unwrap();
    for doc in &docs {
        let api = doc["apiVersion"].as_str().unwrap();
        assert!(!api.contains("v1beta1"), "removed API {api} in {doc}");
        assert_ne!(
            doc["kind"], "ClusterRole",
            "the controller needs no cluster-wide rights"
        );
    }
    let role = doc_of_kind(&docs, "Role").unwrap();
    let binding = doc_of_kind(&docs, "RoleBinding").unwrap();
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], "cassandra");
    for rule in role["rules"].as_array().unwrap() {
        let verbs = rule["verbs"].as_array().unwrap();
        assert!(
            !verbs.contains(&Value::from("*")),
            "no wildcard verbs: {rule}"
        );
    }
}

/// The chart's rbac.yaml rendered by real Helm (scripts/helm.py) for release `multi-casskop`.
fn rendered_rbac_yaml() -> anyhow::Result<String> {
    let chart = chart_dir().display().to_string();
    let out = helm(&[
        "render",
        &chart,
        "--set",
        "k8s.local=k8s-cluster1",
        "--set",
        "k8s.remote={k8s-cluster2}",
        "--name",
        "multi-casskop",
        "--namespace",
        NAMESPACE,
    ])?;
    anyhow::ensure!(
        out.status.success(),
        "helm render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered: Value = serde_json::from_slice(&out.stdout)?;
    let rbac = rendered["manifests"]["multi-casskop/templates/rbac.yaml"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no rbac.yaml in the rendered chart"))?;
    Ok(rbac.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_needs_nothing_beyond_the_charts_role() -> anyhow::Result<()> {
    let opts = EnvOptions {
        local_cluster_admin: false,
        ..EnvOptions::default()
    };
    let env = Env::start_with(&["k8s-cluster1", "k8s-cluster2"], opts).await?;
    // Control: without the Role, the controller's identity is refused (RBAC is enforced).
    let denied = Kubectl::new(&env.kubeconfig)
        .context("k8s-cluster1")
        .namespace(NAMESPACE)
        .run(&["get", "multicasskops"])
        .await;
    assert!(!denied.success());
    assert!(denied.stderr.contains("forbidden"), "{}", denied.stderr);
    env.apply_yaml(&rendered_rbac_yaml()?)?;
    let from_seq = env.sim.audit().last().map(|e| e.seq + 1).unwrap_or(0);
    let ctl = env.start_controller("controller", &["--leader-elect"])?;
    eventually(
        "the controller to lead and be ready",
        Duration::from_secs(60),
        || async {
            Ok((ctl.logs().contains("became leader")
                && matches!(ctl.http_get("/readyz"), Ok((200, _))))
            .then_some(()))
        },
    )
    .await?;
    env.apply_yaml(&sample("multi-casskop-delete.yaml")?)?;
    env.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "multicasskop/cassandra-ephemeral",
        "--timeout=240s",
    ])
    .map_err(|e| anyhow::anyhow!("{e}\n{}", controller_log_tail(&ctl.logs(), 60)))?;
    env.kubectl(&[
        "delete",
        "multicasskop",
        "cassandra-ephemeral",
        "--timeout=240s",
    ])?;
    for site in ["k8s-cluster1", "k8s-cluster2"] {
        assert!(env.get_cc(site, "cassandra-ephemeral")?.is_none(), "{site}");
    }
    let user = Env::sa_user("multi-casskop");
    let refused: Vec<String> = env
        .local()
        .audit()
        .into_iter()
        .filter(|e| e.seq >= from_seq && e.user == user && e.code == 403)
        .map(|e| format!("{} {}/{} {}", e.verb, e.group, e.resource, e.name))
        .collect();
    let requests = env
        .local()
        .audit()
        .iter()
        .filter(|e| e.user == user)
        .count();
    println!("{requests} requests from the controller to the local cluster, refused: {refused:?}");
    assert!(requests > 10);
    assert!(
        refused.is_empty(),
        "the chart's Role must allow every request: {refused:?}"
    );
    Ok(())
}
