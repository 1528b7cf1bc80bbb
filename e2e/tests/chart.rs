//! The Helm chart, rendered and linted by real Helm 4 (helm-python-sdk through scripts/helm.py):
//! values become the Deployment's arguments, mounts and probes; pods run locked down; the values
//! schema refuses bad values naming them; without leader election there is never more than one
//! controller pod, even during an upgrade; the optional ClientConfig CRD is off by default and,
//! when on, matches k8ssandra's, is accepted by kubesim, is written by `register
//! --client-config` and read by the live site registry.

use std::time::Duration;

use e2e::chart::{chart_dir, helm, render_chart, render_chart_docs};
use e2e::{Env, NAMESPACE};
use multi_casskop::sites::client_config::{ClientConfigRef, client_config_resource};
use multi_casskop::sites::{RegistryConfig, SiteRegistry, SiteState};
use serde_json::Value;

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";

/// Renders the chart in namespace `cassandra`: every YAML document, or Helm's error.
fn render(sets: &[&str]) -> Result<Vec<Value>, String> {
    render_chart(sets, "cassandra").map_err(|e| format!("{e:#}"))
}

/// [`render`] keeping each document's template path and YAML text.
fn render_files(sets: &[&str]) -> Result<Vec<(String, Value, String)>, String> {
    let docs = render_chart_docs(sets, "cassandra").map_err(|e| format!("{e:#}"))?;
    Ok(docs.into_iter().map(|d| (d.path, d.doc, d.text)).collect())
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn is_client_config_crd(doc: &Value) -> bool {
    doc["kind"] == "CustomResourceDefinition"
        && doc["metadata"]["name"] == "clientconfigs.config.k8ssandra.io"
}

#[test]
fn lint_reports_no_errors() {
    let chart = chart_dir();
    let out = helm(&["lint", chart.to_str().unwrap()])
        .expect("python3 runs (the test command installs helm-python-sdk)");
    let code = out.status.code().unwrap_or(-1);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    let errors: Vec<_> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_i64() >= Some(2))
        .collect();
    assert!(errors.is_empty(), "lint warnings/errors: {errors:?}");
}

#[test]
fn remotes_become_arguments_and_mounted_secrets() {
    let docs = render(&[
        "k8s.local=k8s-cluster1",
        "k8s.remote={k8s-cluster2,k8s-cluster3}",
    ])
    .unwrap();
    let deploy = find(&docs, "Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"-lk8s-cluster1"), "{args:?}");
    assert!(args.contains(&"-rk8s-cluster2"), "{args:?}");
    assert!(args.contains(&"-rk8s-cluster3"), "{args:?}");
    assert!(args.contains(&"--concurrency=16"), "{args:?}");
    let r2 = args.iter().position(|a| *a == "-rk8s-cluster2").unwrap();
    let r3 = args.iter().position(|a| *a == "-rk8s-cluster3").unwrap();
    assert!(r2 < r3, "remotes keep their order: {args:?}");

    for remote in ["k8s-cluster2", "k8s-cluster3"] {
        let mount = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["mountPath"]
                    == format!("/var/run/secrets/admiralty.io/serviceaccountimports/{remote}")
            })
            .unwrap_or_else(|| panic!("no mount for {remote}"));
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        assert_eq!(volume["secret"]["secretName"], remote);
    }
    let env = container["env"].as_array().unwrap();
    let watch = env.iter().find(|e| e["name"] == "WATCH_NAMESPACE").unwrap();
    assert_eq!(
        watch["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], 8081);
}

/// The Deployment's container arguments for `sets`.
fn container_args(sets: &[&str]) -> Vec<String> {
    let docs = render(sets).unwrap();
    find(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn insecure_kubeconfig_opt_ins_are_off_by_default_and_become_flags() {
    let args = container_args(&["k8s.local=k8s-cluster1"]);
    assert!(
        !args.iter().any(|a| a.starts_with("--insecure-kubeconfig")),
        "{args:?}"
    );
    let args = container_args(&["k8s.local=k8s-cluster1", "insecureKubeconfig.exec=true"]);
    assert!(
        args.contains(&"--insecure-kubeconfig-exec".to_string()),
        "{args:?}"
    );
    assert!(
        !args.contains(&"--insecure-kubeconfig-tls".to_string()),
        "{args:?}"
    );
    let args = container_args(&["k8s.local=k8s-cluster1", "insecureKubeconfig.tls=true"]);
    assert!(
        args.contains(&"--insecure-kubeconfig-tls".to_string()),
        "{args:?}"
    );
    assert!(
        !args.contains(&"--insecure-kubeconfig-exec".to_string()),
        "{args:?}"
    );
    for (sets, pointer) in [
        (
            ["k8s.local=k8s-cluster1", "insecureKubeconfig.exec=yes"],
            "/insecureKubeconfig/exec",
        ),
        (
            ["k8s.local=k8s-cluster1", "insecureKubeconfig.typo=true"],
            "/insecureKubeconfig",
        ),
    ] {
        let err = render(&sets).expect_err(&format!("{sets:?} must be refused"));
        assert!(err.contains(pointer), "{sets:?}: {err}");
    }
}

#[test]
fn pods_run_non_root_read_only_without_capabilities() {
    let docs = render(&["k8s.local=k8s-cluster1"]).unwrap();
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let sc = &pod["containers"][0]["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
}

#[test]
fn without_leader_election_an_upgrade_stops_the_old_pod_before_starting_the_new_one() {
    let strategy = |sets: &[&str]| {
        let docs = render(sets).expect("renders");
        find(&docs, "Deployment")["spec"]["strategy"].clone()
    };
    assert_eq!(
        strategy(&["k8s.local=k8s-cluster1", "leaderElection.enabled=false"])["type"],
        "Recreate"
    );
    // With a Lease the replicas stay apart by themselves: Kubernetes' rolling update is kept.
    assert_eq!(strategy(&["k8s.local=k8s-cluster1"]), Value::Null);
}

/// Copies `from` into `to`, leaving out the file named `skip`.
fn copy_dir_without(from: &std::path::Path, to: &std::path::Path, skip: &str) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the chart") {
        let entry = entry.expect("chart entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == skip {
            continue;
        }
        if src.is_dir() {
            copy_dir_without(&src, &dst, skip);
        } else {
            std::fs::copy(&src, &dst).expect("copy a chart file");
        }
    }
}

#[test]
fn the_template_refuses_two_replicas_without_leader_election_even_without_the_schema() {
    // `helm install --skip-schema-validation` (or a chart repackaged without its schema) must
    // still not start two controllers that would both write to the sites.
    let dir = tempfile::tempdir().expect("tempdir");
    let chart = dir.path().join("multi-casskop");
    copy_dir_without(&chart_dir(), &chart, "values.schema.json");
    let chart = chart.display().to_string();
    let render = |sets: &[&str]| {
        let mut args = vec!["render", chart.as_str(), "--namespace", "cassandra"];
        for s in sets {
            args.extend(["--set", s]);
        }
        helm(&args).expect("helm.py runs")
    };
    let out = render(&[
        "k8s.local=k8s-cluster1",
        "replicaCount=2",
        "leaderElection.enabled=false",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "must be refused: {stderr}");
    assert!(
        stderr.contains("replicaCount=2 needs leaderElection.enabled=true"),
        "the refusal names both values: {stderr}"
    );
    let ok = render(&["k8s.local=k8s-cluster1", "replicaCount=2"]);
    assert!(
        ok.status.success(),
        "two replicas with leader election render: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn schema_rejects_bad_values_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["k8s.local=K8s_Cluster1"], "/k8s/local"),
        (
            &["k8s.local=k8s-cluster1", "k8s.remote={Bad_Remote}"],
            "/k8s/remote/0",
        ),
        (
            &["k8s.local=k8s-cluster1", "image.pullPolicy=Sometimes"],
            "/image/pullPolicy",
        ),
        (
            &[
                "k8s.local=k8s-cluster1",
                "replicaCount=2",
                "leaderElection.enabled=false",
            ],
            "/leaderElection/enabled",
        ),
        (
            &["k8s.local=k8s-cluster1", "logging.format=xml"],
            "/logging/format",
        ),
        (&["k8s.local=k8s-cluster1", "concurrency=0"], "/concurrency"),
    ];
    for (sets, pointer) in cases {
        let err = render(sets).expect_err(&format!("{sets:?} must be refused"));
        assert!(
            err.contains(pointer),
            "{sets:?}: message should point at {pointer}: {err}"
        );
    }
}

#[test]
fn client_config_crd_is_off_by_default_and_schema_checked() {
    let docs = render_files(&["k8s.local=k8s-cluster1"]).unwrap();
    assert!(
        !docs.iter().any(|(_, d, _)| is_client_config_crd(d)),
        "the ClientConfig CRD must not be installed unless asked (k8ssandra-operator ships it)"
    );
    let docs = render_files(&["k8s.local=k8s-cluster1", "clientConfigCRD.install=false"]).unwrap();
    assert!(!docs.iter().any(|(_, d, _)| is_client_config_crd(d)));

    for (sets, pointer) in [
        (
            ["k8s.local=k8s-cluster1", "clientConfigCRD.install=yes"],
            "/clientConfigCRD/install",
        ),
        (
            ["k8s.local=k8s-cluster1", "clientConfigCRD.instal=true"],
            "/clientConfigCRD",
        ),
    ] {
        let err = render_files(&sets).expect_err(&format!("{sets:?} must be refused"));
        assert!(err.contains(pointer), "{sets:?}: {err}");
    }
}

#[test]
fn client_config_crd_matches_k8ssandras_names_and_fields() {
    let docs = render_files(&["k8s.local=k8s-cluster1", "clientConfigCRD.install=true"]).unwrap();
    let (path, crd, _) = docs
        .iter()
        .find(|(_, d, _)| is_client_config_crd(d))
        .expect("the ClientConfig CRD is rendered when clientConfigCRD.install=true");
    assert!(path.contains("templates/"), "{path}");
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    // Kept on `helm uninstall`: deleting a CRD deletes every ClientConfig with it.
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let spec = &crd["spec"];
    let res = client_config_resource();
    assert_eq!(spec["group"], res.group);
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], res.kind);
    assert_eq!(spec["names"]["plural"], res.plural);
    let versions = spec["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!(v["name"], res.version);
    assert_eq!(v["served"], true);
    assert_eq!(v["storage"], true);
    let fields = &v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(fields["contextName"]["type"], "string");
    assert_eq!(
        fields["kubeConfigSecret"]["properties"]["name"]["type"],
        "string"
    );
}

/// The rendered CRD, applied with kubectl into kubesim, accepts what `register --client-config`
/// writes, and the site registry turns that ClientConfig into a usable site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_crd_serves_register_and_the_registry() {
    let docs = render_files(&["k8s.local=k8s-cluster1", "clientConfigCRD.install=true"]).unwrap();
    let (_, _, crd_yaml) = docs
        .iter()
        .find(|(_, d, _)| is_client_config_crd(d))
        .expect("CRD rendered");
    let env = Env::start(&[C1, C2]).await.expect("kubesim starts");
    env.kubectl_stdin(&["apply", "-f", "-"], crd_yaml.as_bytes())
        .expect("kubectl apply of the rendered CRD");

    let out = env
        .register(C2, &["--client-config"])
        .expect("multi-casskop register runs");
    eprintln!(
        "$ multi-casskop register {C2} --client-config\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "register --client-config failed");

    // What the server stored, read back as the controller reads it.
    let local = env.sim.cluster(C1).client().await;
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(local.clone(), NAMESPACE, &client_config_resource());
    let stored = api.get(C2).await.expect("the ClientConfig is stored");
    let cc = ClientConfigRef::from_object(&stored).unwrap();
    assert_eq!(cc.secret, Ok(C2.to_string()));
    assert_eq!(cc.context, C2);

    // The registry (no --remote flags) finds the site through the ClientConfig alone.
    let empty = env.dir.path().join("empty-kubeconfig");
    std::fs::write(
        &empty,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    let reg = SiteRegistry::start(
        local,
        RegistryConfig {
            local: C1.into(),
            remotes: Vec::new(),
            namespace: NAMESPACE.into(),
            imports_dir: env.dir.path().join("no-imports"),
            kubeconfig: Some(empty),
            local_context: Some(C1.into()),
            kubeconfig_policy: Default::default(),
        },
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let site = loop {
        if let Some(SiteState::Ready(site)) = reg.get(C2) {
            break site;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "site {C2} never became ready from its ClientConfig: {:?}",
            reg.get(C2)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(reg.order(), vec![C1.to_string(), C2.to_string()]);
    // The site's client reaches cluster 2 with the registered rights.
    let ccs: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        site.client.clone(),
        NAMESPACE,
        &multi_casskop::api::cassandra::cassandra_cluster_resource(),
    );
    let list = ccs
        .list(&Default::default())
        .await
        .expect("listing CassandraClusters in k8s-cluster2 through the ClientConfig site");
    assert!(list.items.is_empty());
}
