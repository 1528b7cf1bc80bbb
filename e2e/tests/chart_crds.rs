//! The chart's CRDs with real Helm 4 (helm-python-sdk) against kubesim: the MultiCasskop CRD is
//! a template rendered from the generated file, so `helm upgrade` adds a field an older chart's
//! CRD lacked (the ClientConfig CRD too); `helm uninstall` keeps both CRDs and the objects they
//! serve; a CRD Helm does not own yet (a crds/ install, Multi-CassKop's, kubectl's) is refused by
//! Helm until `--take-ownership` or the ownership label and annotations the README gives.
//!
//! Each test installs a chart made of the chart's own CRD templates, helpers, values and schema,
//! unchanged (e2e::helm_release::crd_only_chart); tests/chart_helm_release.rs installs the whole
//! chart.

use std::path::{Path, PathBuf};

use e2e::chart::render_chart_docs;
use e2e::helm_release::{HelmFlags, HelmSession, crd_only_chart, generated_crd};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kubesim::kubectl::Kubectl;
use kubesim::{Sim, SimOptions};
use serde_json::{Value, json};

const C1: &str = "k8s-cluster1";
const MC_CRD: &str = "multicasskops.db.orange.com";
const CC_CRD: &str = "clientconfigs.config.k8ssandra.io";
const RELEASE: &str = "multi-casskop";
const RELEASE_NS: &str = "default";
const PLAIN: HelmFlags = HelmFlags {
    take_ownership: false,
    force_conflicts: false,
};
const TAKE_OWNERSHIP: HelmFlags = HelmFlags {
    take_ownership: true,
    force_conflicts: false,
};

fn values() -> Value {
    json!({"k8s": {"local": C1}, "clientConfigCRD": {"install": true}})
}

/// The properties of `spec` in the first version's schema of a CRD (as JSON).
fn spec_fields(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
}

/// A kubesim cluster without any CRD of ours, its admin kubeconfig in `dir`.
async fn fresh_cluster(dir: &Path) -> (Sim, PathBuf) {
    let sim = Sim::start(
        &[C1],
        SimOptions {
            casskop: None,
            ..SimOptions::default()
        },
    )
    .await
    .expect("kubesim starts");
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    (sim, kubeconfig)
}

async fn crd(sim: &Sim, name: &str) -> Option<Value> {
    let api: Api<CustomResourceDefinition> = Api::all(sim.cluster(C1).client().await);
    let got = api.get_opt(name).await.expect("reading a CRD");
    got.map(|c| serde_json::to_value(c).expect("CRD as JSON"))
}

/// The generated CRD without `spec.siteOrder`: what an older chart shipped.
fn old_multicasskop_crd() -> Value {
    let mut crd = generated_crd().expect("the chart's CRD file");
    let versions = crd["spec"]["versions"].as_array_mut().unwrap();
    let fields = versions[0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        .as_object_mut()
        .unwrap();
    assert!(
        fields.remove("siteOrder").is_some(),
        "the CRD has siteOrder"
    );
    crd
}

/// The chart's CRD templates with both CRDs one field short: `spec.siteOrder` (MultiCasskop)
/// and `spec.contextName` (ClientConfig). With `crds_folder`, the MultiCasskop CRD sits in
/// crds/ as this chart had it before (installed once, never upgraded, not owned by the release).
fn old_chart(dir: &Path, crds_folder: bool) -> PathBuf {
    let chart = dir.join(if crds_folder { "old-crds" } else { "old" });
    crd_only_chart(&chart).expect("CRD-only chart");
    let crd_text = serde_json::to_string_pretty(&old_multicasskop_crd()).unwrap();
    if crds_folder {
        std::fs::remove_file(chart.join("templates/multicasskop-crd.yaml")).unwrap();
        std::fs::create_dir_all(chart.join("crds")).unwrap();
        std::fs::write(chart.join("crds").join(format!("{MC_CRD}.yaml")), crd_text).unwrap();
    } else {
        // JSON is YAML: the template's fromYaml reads it as it reads the generated file.
        std::fs::write(
            chart.join("files/multicasskops.db.orange.com.yaml"),
            crd_text,
        )
        .unwrap();
    }
    let cc = chart.join("templates/clientconfig-crd.yaml");
    let text = std::fs::read_to_string(&cc).unwrap();
    let field = "                contextName:\n                  description: Context of the kubeconfig to use; default the ClientConfig's name.\n                  type: string\n";
    assert!(text.contains(field), "the ClientConfig CRD has contextName");
    std::fs::write(&cc, text.replace(field, "")).unwrap();
    chart
}

fn new_chart(dir: &Path) -> PathBuf {
    let chart = dir.join("new");
    crd_only_chart(&chart).expect("CRD-only chart");
    chart
}

#[test]
fn crd_template_renders_the_generated_crd_with_helm_labels_kept_on_uninstall() {
    let docs = render_chart_docs(&["k8s.local=k8s-cluster1"], "cassandra").expect("renders");
    let rendered = docs
        .iter()
        .find(|d| {
            d.doc["kind"] == "CustomResourceDefinition" && d.doc["metadata"]["name"] == MC_CRD
        })
        .expect("the MultiCasskop CRD is rendered by default");
    assert_eq!(
        rendered.path,
        "multi-casskop/templates/multicasskop-crd.yaml"
    );
    let generated = generated_crd().unwrap();
    assert_eq!(
        rendered.doc["spec"], generated["spec"],
        "the template changes nothing in spec"
    );
    assert_eq!(rendered.doc["apiVersion"], generated["apiVersion"]);
    let meta = &rendered.doc["metadata"];
    assert_eq!(meta["annotations"]["helm.sh/resource-policy"], "keep");
    assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], "Helm");
    assert_eq!(meta["labels"]["app.kubernetes.io/instance"], RELEASE);
}

#[test]
fn crds_install_and_multi_casskops_create_custom_resource_both_turn_the_crd_off() {
    let has_crd = |sets: &[&str]| {
        let mut all = vec!["k8s.local=k8s-cluster1"];
        all.extend(sets);
        render_chart_docs(&all, "cassandra")
            .expect("renders")
            .iter()
            .any(|d| d.doc["metadata"]["name"] == MC_CRD)
    };
    assert!(has_crd(&[]));
    assert!(has_crd(&["crds.install=true", "createCustomResource=true"]));
    assert!(!has_crd(&["crds.install=false"]));
    assert!(!has_crd(&["createCustomResource=false"]));
    assert!(!has_crd(&[
        "crds.install=true",
        "createCustomResource=false"
    ]));
    assert!(!has_crd(&[
        "crds.install=false",
        "createCustomResource=true"
    ]));
    for (set, pointer) in [
        ("crds.install=yes", "/crds/install"),
        ("crds.instal=true", "/crds"),
    ] {
        let err = render_chart_docs(&["k8s.local=k8s-cluster1", set], "cassandra")
            .expect_err(&format!("{set} must be refused"));
        assert!(format!("{err:#}").contains(pointer), "{set}: {err:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_upgrade_adds_the_field_an_older_crd_lacked_and_uninstall_keeps_the_crds() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, kubeconfig) = fresh_cluster(dir.path()).await;
    let (old, new) = (old_chart(dir.path(), false), new_chart(dir.path()));
    let mut helm = HelmSession::start(&kubeconfig, C1, RELEASE_NS).unwrap();

    helm.install(RELEASE, &old, values(), PLAIN)
        .unwrap()
        .expect("helm install of the older chart");
    let mc = crd(&sim, MC_CRD).await.expect("install created the CRD");
    assert_eq!(
        spec_fields(&mc)["siteOrder"],
        Value::Null,
        "old CRD: no siteOrder"
    );
    let cc = crd(&sim, CC_CRD)
        .await
        .expect("install created the ClientConfig CRD");
    assert_eq!(spec_fields(&cc)["contextName"], Value::Null);

    // A MultiCasskop served by the old CRD, which must outlive the release.
    let api: Api<multi_casskop::api::MultiCasskop> =
        Api::namespaced(sim.cluster(C1).client().await, RELEASE_NS);
    let obj = serde_json::from_value(json!({
        "apiVersion": "db.orange.com/v2", "kind": "MultiCasskop",
        "metadata": {"name": "dc"},
        "spec": {"base": {"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
            "metadata": {"name": "dc"}, "spec": {}}, "override": {}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj)
        .await
        .expect("the old CRD serves MultiCasskops");

    helm.upgrade(RELEASE, &new, values(), PLAIN)
        .unwrap()
        .expect("helm upgrade to the current chart");
    let mc = crd(&sim, MC_CRD).await.unwrap();
    assert_eq!(
        spec_fields(&mc)["siteOrder"],
        spec_fields(&generated_crd().unwrap())["siteOrder"],
        "helm upgrade brought the CRD up to the generated one"
    );
    assert_eq!(
        mc["metadata"]["annotations"]["meta.helm.sh/release-name"],
        RELEASE
    );
    let cc = crd(&sim, CC_CRD).await.unwrap();
    assert_eq!(spec_fields(&cc)["contextName"]["type"], "string");

    let answer = helm.uninstall(RELEASE).unwrap().expect("helm uninstall");
    let info = answer["info"].as_str().unwrap_or_default();
    assert!(
        info.contains(MC_CRD) && info.contains(CC_CRD),
        "Helm says both are kept: {info}"
    );
    assert!(
        crd(&sim, MC_CRD).await.is_some(),
        "uninstall kept the MultiCasskop CRD"
    );
    assert!(
        crd(&sim, CC_CRD).await.is_some(),
        "uninstall kept the ClientConfig CRD"
    );
    api.get("dc")
        .await
        .expect("the MultiCasskop outlives the release");

    // The kept CRDs still name the release: installing it again takes them back as they are.
    helm.install(RELEASE, &new, values(), PLAIN)
        .unwrap()
        .expect("helm install again over the kept CRDs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_from_a_crds_folder_install_takes_the_crd_over_with_take_ownership() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, kubeconfig) = fresh_cluster(dir.path()).await;
    let (old, new) = (old_chart(dir.path(), true), new_chart(dir.path()));
    let mut helm = HelmSession::start(&kubeconfig, C1, RELEASE_NS).unwrap();

    helm.install(RELEASE, &old, values(), PLAIN)
        .unwrap()
        .expect("helm install of a chart with the CRD in crds/");
    let mc = crd(&sim, MC_CRD).await.expect("crds/ created the CRD");
    assert_eq!(
        mc["metadata"]["annotations"]["meta.helm.sh/release-name"],
        Value::Null
    );

    let refused = helm
        .upgrade(RELEASE, &new, values(), PLAIN)
        .unwrap()
        .expect_err("Helm refuses a CRD it did not create");
    for needed in [
        MC_CRD,
        "invalid ownership metadata",
        "app.kubernetes.io/managed-by",
        "meta.helm.sh/release-name",
        "meta.helm.sh/release-namespace",
    ] {
        assert!(
            refused.contains(needed),
            "Helm's refusal names {needed}: {refused}"
        );
    }
    assert_eq!(
        spec_fields(&crd(&sim, MC_CRD).await.unwrap())["siteOrder"],
        Value::Null
    );

    helm.upgrade(RELEASE, &new, values(), TAKE_OWNERSHIP)
        .unwrap()
        .expect("helm upgrade --take-ownership");
    let mc = crd(&sim, MC_CRD).await.unwrap();
    assert_eq!(spec_fields(&mc)["siteOrder"]["type"], "array");
    assert_eq!(
        mc["metadata"]["annotations"]["meta.helm.sh/release-name"],
        RELEASE
    );
    assert_eq!(
        mc["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_over_a_kubectl_applied_crd_takes_it_over_with_take_ownership_and_force_conflicts()
{
    let dir = tempfile::tempdir().unwrap();
    let (sim, kubeconfig) = fresh_cluster(dir.path()).await;
    // As `multi-casskop crd | kubectl apply -f -` of an older version left it: no Helm metadata,
    // every field owned by kubectl's field manager.
    let kubectl = Kubectl::new(&kubeconfig).context(C1).quiet();
    let old = serde_json::to_vec(&old_multicasskop_crd()).unwrap();
    let run = kubectl.run_blocking(&["apply", "-f", "-"], Some(&old));
    assert!(run.success(), "kubectl apply: {}", run.stderr);
    let new = new_chart(dir.path());
    let mut helm = HelmSession::start(&kubeconfig, C1, RELEASE_NS).unwrap();

    let refused = helm
        .install(RELEASE, &new, values(), PLAIN)
        .unwrap()
        .expect_err("Helm refuses a CRD it did not create");
    assert!(refused.contains("invalid ownership metadata"), "{refused}");

    // Server-side apply: `spec.versions` is an atomic list kubectl's manager owns.
    let conflict = helm
        .install(RELEASE, &new, values(), TAKE_OWNERSHIP)
        .unwrap()
        .expect_err("Helm's server-side apply conflicts with kubectl's fields");
    assert!(
        conflict.contains("conflict") && conflict.contains(".spec.versions"),
        "{conflict}"
    );
    assert_eq!(
        spec_fields(&crd(&sim, MC_CRD).await.unwrap())["siteOrder"],
        Value::Null
    );

    let adopt = HelmFlags {
        take_ownership: true,
        force_conflicts: true,
    };
    helm.upgrade(RELEASE, &new, values(), adopt)
        .unwrap()
        .expect("helm upgrade --install --take-ownership --force-conflicts");
    let mc = crd(&sim, MC_CRD).await.unwrap();
    assert_eq!(spec_fields(&mc)["siteOrder"]["type"], "array");
    assert_eq!(
        mc["metadata"]["annotations"]["meta.helm.sh/release-name"],
        RELEASE
    );
    assert_eq!(
        mc["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    assert_eq!(
        mc["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
}
