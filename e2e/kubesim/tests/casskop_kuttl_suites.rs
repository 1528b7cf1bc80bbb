//! kubesim's CassKop against CassKop's own kuttl e2e suites (`../shared/upstream/casskop-kuttl`), run as kuttl runs them, on CassKop's real CassandraCluster CRD: every step of every suite passes.
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams};
use kubesim::casskop::CasskopOptions;
use kubesim::kuttl::{self, Runner};
use kubesim::{Sim, SimOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casskops_own_kuttl_suites_pass_every_step() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let Some(crd_path) = kubesim::fixtures::upstream_file("casskop-cassandraclusters-crd.yaml")
    else {
        return;
    };
    let upstream = crd_path
        .parent()
        .expect("the upstream folder")
        .to_path_buf();
    let sim = Sim::start(
        &["k8s-cluster1"],
        SimOptions {
            casskop: Some(CasskopOptions::default()),
            ..SimOptions::default()
        },
    )
    .await
    .unwrap();
    let client = sim.clusters()[0].client().await;
    let text = std::fs::read_to_string(&crd_path).unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).unwrap();
    kubesim::casskop::install_crd_object(client.clone(), crd)
        .await
        .expect("CassKop's real CRD installed and served");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let runner = Runner {
        client: client.clone(),
        kubeconfig,
        poll: Duration::from_secs(1),
    };
    let suites_dir = upstream.join("casskop-kuttl");
    let mut suites: Vec<PathBuf> = std::fs::read_dir(&suites_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    // KUTTL_SUITE=<name> runs that suite only (while working on it; the total then fails).
    if let Ok(only) = std::env::var("KUTTL_SUITE") {
        suites.retain(|p| p.file_name().is_some_and(|n| n == only.as_str()));
    }
    suites.sort();
    let (mut passed, mut total) = (0, 0);
    let mut report = String::new();
    for dir in &suites {
        let case = kuttl::load(dir).unwrap();
        let namespace = format!("kuttl-test-{}", case.name);
        let results = runner.run(&case, &namespace).await;
        let ok = results.iter().filter(|r| r.failure.is_none()).count();
        passed += ok;
        total += case.steps.len();
        report.push_str(&format!(
            "suite {}: steps passed: {ok}/{}\n",
            case.name,
            case.steps.len()
        ));
        for r in &results {
            match &r.failure {
                None => report.push_str(&format!("  step {:02} {}: passed\n", r.index, r.name)),
                Some(f) => report.push_str(&format!(
                    "  step {:02} {}: FAILED\n    {}\n",
                    r.index,
                    r.name,
                    f.replace('\n', "\n    ")
                )),
            }
        }
        // Like kuttl: the test case's namespace goes away with it.
        let ccs: Api<kube::api::DynamicObject> = Api::namespaced_with(
            client.clone(),
            &namespace,
            &kubesim::casskop::api_resource(),
        );
        let _ = ccs
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await;
        let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let _ = nss.delete(&namespace, &DeleteParams::default()).await;
    }
    report.push_str(&format!("steps passed: {passed}/{total}\n"));
    eprintln!("{report}");
    assert_eq!(total, 13, "CassKop's suites have 13 steps\n{report}");
    assert_eq!(passed, total, "{report}");
}
