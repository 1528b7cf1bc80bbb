//! The chart's optional ClientConfig CRD (issue 8): off by default; when on, it renders a CRD
//! compatible with k8ssandra's that kubesim accepts, that `register --client-config` writes to,
//! and that the live site registry reads a site from.

mod registration_common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use multi_casskop::sites::client_config::{ClientConfigRef, client_config_resource};
use multi_casskop::sites::{RegistryConfig, SiteRegistry, SiteState};
use registration_common::{NS, env};
use serde_json::Value;

const C1: &str = "k8s-cluster1";
const C2: &str = "k8s-cluster2";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Renders the chart with scripts/helm.py (real Helm 4): every YAML document, or Helm's error.
fn render(sets: &[&str]) -> Result<Vec<(String, Value, String)>, String> {
    let chart = root().join("helm/multi-casskop");
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("scripts/helm.py"))
        .arg("render")
        .arg(&chart)
        .args(["--namespace", NS]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd
        .output()
        .expect("python3 runs (the test command installs helm-python-sdk)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let rendered: Value = serde_json::from_slice(&out.stdout).expect("helm.py prints JSON");
    let mut docs = Vec::new();
    for (path, text) in rendered["manifests"].as_object().unwrap() {
        if !path.ends_with(".yaml") {
            continue;
        }
        for text in text.as_str().unwrap_or_default().split("\n---") {
            let doc: Value = serde_saphyr::from_str(text).unwrap_or(Value::Null);
            if !doc.is_null() {
                docs.push((path.clone(), doc, text.to_string()));
            }
        }
    }
    Ok(docs)
}

fn is_client_config_crd(doc: &Value) -> bool {
    doc["kind"] == "CustomResourceDefinition"
        && doc["metadata"]["name"] == "clientconfigs.config.k8ssandra.io"
}

#[test]
fn client_config_crd_is_off_by_default_and_schema_checked() {
    let docs = render(&["k8s.local=k8s-cluster1"]).unwrap();
    assert!(
        !docs.iter().any(|(_, d, _)| is_client_config_crd(d)),
        "the ClientConfig CRD must not be installed unless asked (k8ssandra-operator ships it)"
    );
    let docs = render(&["k8s.local=k8s-cluster1", "clientConfigCRD.install=false"]).unwrap();
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
        let err = render(&sets).expect_err(&format!("{sets:?} must be refused"));
        assert!(err.contains(pointer), "{sets:?}: {err}");
    }
}

#[test]
fn client_config_crd_matches_k8ssandras_names_and_fields() {
    let docs = render(&["k8s.local=k8s-cluster1", "clientConfigCRD.install=true"]).unwrap();
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
    let docs = render(&["k8s.local=k8s-cluster1", "clientConfigCRD.install=true"]).unwrap();
    let (_, _, crd_yaml) = docs
        .iter()
        .find(|(_, d, _)| is_client_config_crd(d))
        .expect("CRD rendered");
    let env = env(&[C1, C2]).await;
    env.kubectl_ok(&["--context", C1, "apply", "-f", "-"], Some(crd_yaml))
        .await;

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
            NS,
            "--client-config",
        ])
        .await;
    assert!(out.status.success(), "register --client-config failed");

    // What the server stored, read back as the controller reads it.
    let local = env.sim.cluster(C1).client().await;
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(local.clone(), NS, &client_config_resource());
    let stored = api.get(C2).await.expect("the ClientConfig is stored");
    let cc = ClientConfigRef::from_object(&stored).unwrap();
    assert_eq!(cc.secret, Ok(C2.to_string()));
    assert_eq!(cc.context, C2);

    // The registry (no --remote flags) finds the site through the ClientConfig alone.
    let empty = env.path("empty-kubeconfig");
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
            namespace: NS.into(),
            imports_dir: env.path("no-imports"),
            kubeconfig: Some(empty),
            local_context: Some(C1.into()),
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
        NS,
        &multi_casskop::api::cassandra::cassandra_cluster_resource(),
    );
    let list = ccs
        .list(&Default::default())
        .await
        .expect("listing CassandraClusters in k8s-cluster2 through the ClientConfig site");
    assert!(list.items.is_empty());
}
