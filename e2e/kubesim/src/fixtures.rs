//! Test fixtures shared across crates: a CassandraCluster with its Running pods and status, written through the API the way CassKop would (for pod exec, ring and status tests).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

pub const CC_CRD: &str = "cassandraclusters.db.orange.com";

/// The CassandraCluster CRD as CassKop ships it, reduced to what discovery, kubectl and RBAC
/// tests need: db.orange.com/v2, namespaced, no status subresource, unknown fields preserved.
pub const CASSANDRA_CRD_YAML: &str = r"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: cassandraclusters.db.orange.com
spec:
  group: db.orange.com
  scope: Namespaced
  names:
    plural: cassandraclusters
    singular: cassandracluster
    kind: CassandraCluster
    listKind: CassandraClusterList
    shortNames: [cassc, cassandracluster]
  versions:
  - name: v2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";

/// `../shared/upstream/<name>` beside the repository (real artifacts of CassKop, Multi-CassKop
/// and k8ssandra, read by tests and never copied into the project). `None`, after printing that
/// the caller skips and why, when that file is absent (a checkout without `shared` beside it).
pub fn upstream_file(name: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/upstream")
        .join(name);
    if path.is_file() {
        return Some(path);
    }
    println!(
        "SKIPPED: {} is absent: this test needs that real upstream artifact from the shared \
         folder beside the repository",
        path.display()
    );
    None
}

pub fn cc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", "CassandraCluster"),
        "cassandraclusters",
    )
}

/// Creates the CassandraCluster CRD unless present (the simulated CassKop installs it when enabled).
pub async fn ensure_crd(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    if crds.get_opt(CC_CRD).await.expect("reading CRDs").is_some() {
        return;
    }
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": CC_CRD},
        "spec": {"group": "db.orange.com", "scope": "Namespaced",
            "names": {"kind": "CassandraCluster", "plural": "cassandraclusters", "singular": "cassandracluster", "listKind": "CassandraClusterList", "shortNames": ["cassc"]},
            "versions": [{"name": "v2", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .expect("CRD");
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating CRD: {e}"),
    }
    let ccs: Api<DynamicObject> = Api::all_with(client.clone(), &cc_resource());
    for _ in 0..100 {
        if ccs.list(&Default::default()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cassandraclusters never served");
}

pub async fn ensure_namespace(client: &kube::Client, ns: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    if nss.get_opt(ns).await.expect("reading namespaces").is_none() {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        let _ = nss.create(&PostParams::default(), &n).await;
    }
}

/// One DC of a site: its name, racks and nodes per rack.
pub struct Dc<'a> {
    pub name: &'a str,
    pub racks: &'a [&'a str],
    pub nodes: u32,
}

/// Creates (or updates) CassandraCluster `name` in `ns` with `dcs` as topology and status
/// `phase`/`action`/`action_status`, and (when `pods`) its pods Running with IP
/// `10.<subnet>.<dc>.<n>`; returns the pod names.
pub async fn seed_cluster(
    client: &kube::Client,
    ns: &str,
    name: &str,
    dcs: &[Dc<'_>],
    status: (&str, &str, &str),
    subnet: u8,
    pods: bool,
) -> Vec<String> {
    ensure_crd(client).await;
    ensure_namespace(client, ns).await;
    let topology: Vec<Value> = dcs
        .iter()
        .map(|d| json!({"name": d.name, "nodesPerRacks": d.nodes, "rack": d.racks.iter().map(|r| json!({"name": r})).collect::<Vec<_>>()}))
        .collect();
    let ccs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &cc_resource());
    let obj = json!({
        "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodesPerRacks": 1, "cassandraImage": "cassandra:3.11.9", "topology": {"dc": topology}},
    });
    ccs.patch(
        name,
        &PatchParams::apply("test-casskop").force(),
        &Patch::Apply(&obj),
    )
    .await
    .expect("apply CassandraCluster");
    set_cc_status(client, ns, name, status).await;
    let mut names = vec![];
    if !pods {
        return names;
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    for (di, d) in dcs.iter().enumerate() {
        let mut n = 0;
        for rack in d.racks {
            for i in 0..d.nodes {
                n += 1;
                let pod = format!("{name}-{}-{rack}-{i}", d.name);
                let ip = format!("10.{subnet}.{}.{n}", di + 1);
                let p: Pod = serde_json::from_value(json!({
                    "metadata": {"name": pod, "namespace": ns, "labels": {
                        "app": "cassandracluster", "cassandracluster": name,
                        "cassandraclusters.db.orange.com.dc": d.name, "cassandraclusters.db.orange.com.rack": rack}},
                    "spec": {"containers": [{"name": "cassandra", "image": "cassandra:3.11.9"}]},
                }))
                .unwrap();
                match api.create(&PostParams::default(), &p).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => panic!("creating pod {pod}: {e}"),
                }
                let st = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "cassandra", "ready": true, "restartCount": 0, "image": "cassandra:3.11.9", "imageID": "", "state": {"running": {}}}]}});
                api.patch_status(&pod, &PatchParams::default(), &Patch::Merge(&st))
                    .await
                    .expect("pod status");
                names.push(pod);
            }
        }
    }
    names
}

/// Writes the CassandraCluster status (CassKop's CRD has no status subresource).
pub async fn set_cc_status(
    client: &kube::Client,
    ns: &str,
    name: &str,
    (phase, action, action_status): (&str, &str, &str),
) {
    let ccs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &cc_resource());
    let st = json!({"status": {"phase": phase, "lastClusterAction": action, "lastClusterActionStatus": action_status}});
    ccs.patch(name, &PatchParams::default(), &Patch::Merge(&st))
        .await
        .expect("CassandraCluster status");
}
