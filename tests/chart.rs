//! The Helm chart, checked with real Helm 4 (helm-python-sdk through scripts/helm.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("helm/multi-casskop")
}

/// Runs scripts/helm.py; returns (exit code, stdout, stderr).
fn helm(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("python3")
        .arg(root().join("scripts/helm.py"))
        .args(args)
        .output()
        .expect("python3 runs (the test command installs helm-python-sdk)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn render(sets: &[&str]) -> Result<Vec<Value>, String> {
    let chart = chart_dir();
    let mut args = vec![
        "render",
        chart.to_str().unwrap(),
        "--namespace",
        "cassandra",
    ];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    let (code, stdout, stderr) = helm(&args);
    if code != 0 {
        return Err(stderr);
    }
    let rendered: Value = serde_json::from_str(&stdout).expect("helm.py prints JSON");
    let mut docs = Vec::new();
    for (path, text) in rendered["manifests"].as_object().unwrap() {
        if !path.ends_with(".yaml") {
            continue;
        }
        for doc in text.as_str().unwrap_or_default().split("\n---") {
            let doc: Value = serde_saphyr::from_str(doc).unwrap_or(Value::Null);
            if !doc.is_null() {
                docs.push(doc);
            }
        }
    }
    Ok(docs)
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

#[test]
fn lint_reports_no_errors() {
    let chart = chart_dir();
    let (code, stdout, stderr) = helm(&["lint", chart.to_str().unwrap()]);
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
fn rbac_is_namespaced_and_uses_current_apis() {
    let docs = render(&["k8s.local=k8s-cluster1", "k8s.remote={k8s-cluster2}"]).unwrap();
    for doc in &docs {
        let api = doc["apiVersion"].as_str().unwrap();
        assert!(!api.contains("v1beta1"), "removed API {api} in {doc}");
        assert_ne!(
            doc["kind"], "ClusterRole",
            "the controller needs no cluster-wide rights"
        );
    }
    let role = find(&docs, "Role");
    let binding = find(&docs, "RoleBinding");
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
fn samples_are_multicasskops_naming_chart_sites() {
    let dir = root().join("samples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        seen += 1;
        let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["apiVersion"], "db.orange.com/v2", "{}", path.display());
        assert_eq!(doc["kind"], "MultiCasskop", "{}", path.display());
        assert!(
            doc["spec"]["base"]["metadata"]["name"].is_string(),
            "{}",
            path.display()
        );
        for site in doc["spec"]["override"].as_object().unwrap().keys() {
            assert!(
                site.starts_with("k8s-cluster"),
                "{}: {site}",
                path.display()
            );
        }
    }
    assert!(
        seen >= 3,
        "three samples expected in {}",
        Path::new(&dir).display()
    );
}
