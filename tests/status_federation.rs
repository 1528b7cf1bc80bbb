//! `multi-casskop status` (the real binary) against three kubesim clusters: a rollout in
//! progress, all sites ready, a site unreachable, an invalid spec and a missing MultiCasskop each
//! show what a user needs to see.

mod support;

use serde_json::{Value, json};
use support::status::*;

#[tokio::test]
async fn shows_the_site_in_progress_then_every_site_ready() {
    let fed = start().await;
    site_running(&fed, 0).await;
    // Site 2 is being created: CassandraCluster Initializing, one pod of two Running.
    let c2 = fed.sim.cluster(SITES[1]).client().await;
    seed_cluster(
        &c2,
        NS,
        MC,
        &[Dc {
            name: "dc2",
            racks: &["rack1"],
            nodes: 1,
        }],
        ("Initializing", "Initializing", "Ongoing"),
        21,
        true,
    )
    .await;
    // ...while its topology asks for two racks.
    seed_cluster(
        &c2,
        NS,
        MC,
        &[topology(1)],
        ("Initializing", "Initializing", "Ongoing"),
        21,
        false,
    )
    .await;
    set_mc_status(
        &fed,
        json!({"phase": "Progressing", "currentSite": "k8s-cluster2", "readySites": "1/3", "observedGeneration": 1,
            "sites": [
                site_status("k8s-cluster1", "Running", "Initializing", "Done", true, "Ready", "Running/Done"),
                site_status("k8s-cluster2", "Initializing", "Initializing", "Ongoing", false, "InProgress", "waiting for CassKop: Initializing/Ongoing"),
                {"name": "k8s-cluster3", "namespace": NS, "ready": false, "state": "Waiting", "message": "waits for k8s-cluster2"}],
            "conditions": [
                condition("Ready", "False", "Progressing", "1/3 sites ready"),
                condition("Progressing", "True", "SiteInProgress", "k8s-cluster2 is rolling out"),
                condition("Valid", "True", "Valid", "spec is valid"),
                condition("SitesReachable", "True", "AllReachable", "every site answers")]}),
    )
    .await;
    let (out, stdout, _) = run(&fed, &["status", MC]).await;
    assert!(out.status.success());
    assert!(stdout.starts_with("MultiCasskop cassandra/cassandra-3dc: phase Progressing, site in progress k8s-cluster2, ready sites 1/3\n"), "{stdout}");
    assert!(stdout.contains("  Progressing=True (SiteInProgress): k8s-cluster2 is rolling out"));
    let l1 = line_of(&stdout, "k8s-cluster1");
    assert!(
        l1.contains("Running")
            && l1.contains("Initializing")
            && l1.contains("Done")
            && l1.contains("2/2"),
        "{l1}"
    );
    let l2 = line_of(&stdout, "k8s-cluster2");
    assert!(
        l2.contains("Initializing")
            && l2.contains("Ongoing")
            && l2.contains(" 1/2 ")
            && l2.contains("waiting for CassKop"),
        "{l2}"
    );
    let l3 = line_of(&stdout, "k8s-cluster3");
    assert!(
        l3.contains(" 0/1 ") && l3.contains("waits for k8s-cluster2"),
        "{l3}"
    );
    // Sites in rollout order.
    let pos = |s: &str| stdout.find(&format!("\n{s} ")).unwrap();
    assert!(pos("k8s-cluster1") < pos("k8s-cluster2") && pos("k8s-cluster2") < pos("k8s-cluster3"));

    // Everything Running.
    site_running(&fed, 1).await;
    set_cc_status(&c2, NS, MC, ("Running", "Initializing", "Done")).await;
    site_running(&fed, 2).await;
    set_mc_status(
        &fed,
        json!({"phase": "Running", "currentSite": null, "readySites": "3/3",
            "sites": [
                site_status("k8s-cluster1", "Running", "Initializing", "Done", true, "Ready", "Running/Done"),
                site_status("k8s-cluster2", "Running", "Initializing", "Done", true, "Ready", "Running/Done"),
                site_status("k8s-cluster3", "Running", "Initializing", "Done", true, "Ready", "Running/Done")],
            "conditions": [condition("Ready", "True", "AllSitesReady", "3/3 sites ready")]}),
    )
    .await;
    let (out, stdout, _) = run(&fed, &["status", MC, "-o", "wide"]).await;
    assert!(out.status.success());
    assert!(
        stdout.contains("phase Running, site in progress -, ready sites 3/3"),
        "{stdout}"
    );
    assert!(stdout.contains("NAMESPACE") && stdout.contains("CREDENTIALS"));
    for (i, s) in SITES.iter().enumerate() {
        let l = line_of(&stdout, s);
        let want = if i == 2 { "1/1" } else { "2/2" };
        assert!(
            l.contains("Running")
                && l.contains(want)
                && l.contains("Ready")
                && l.contains(&format!("kubeconfig context {s}")),
            "{l}"
        );
    }

    // JSON and YAML carry the same facts.
    let (_, stdout, _) = run(&fed, &["status", MC, "-o", "json"]).await;
    let v: Value = serde_json::from_str(&stdout).expect("json output");
    assert_eq!(v["readySites"], "3/3");
    assert_eq!(v["sites"].as_array().unwrap().len(), 3);
    assert_eq!(v["sites"][1]["readyPods"], 2);
    assert_eq!(v["sites"][1]["desiredPods"], 2);
    assert_eq!(v["sites"][2]["reachable"], true);
    let (out, stdout, _) = run(&fed, &["status", MC, "-o", "yaml"]).await;
    assert!(out.status.success());
    assert!(stdout.contains("readySites: 3/3"), "{stdout}");
    fed.sim.shutdown().await;
}

#[tokio::test]
async fn unreachable_site_is_named_and_the_others_still_print() {
    let fed = start().await;
    for i in 0..3 {
        site_running(&fed, i).await;
    }
    set_mc_status(
        &fed,
        json!({"phase": "Running", "readySites": "3/3",
            "sites": [
                site_status("k8s-cluster1", "Running", "Initializing", "Done", true, "Ready", "Running/Done"),
                site_status("k8s-cluster2", "Running", "Initializing", "Done", true, "Ready", "Running/Done"),
                site_status("k8s-cluster3", "Running", "Initializing", "Done", true, "Ready", "Running/Done")]}),
    )
    .await;
    fed.sim
        .cluster("k8s-cluster2")
        .faults()
        .set_unreachable(true);
    let (out, stdout, _) = run(&fed, &["status", MC]).await;
    assert!(out.status.success(), "status prints even with a site down");
    let l2 = line_of(&stdout, "k8s-cluster2");
    assert!(
        l2.contains("UNREACHABLE")
            && l2.contains("site k8s-cluster2")
            && l2.contains("Running (last known)"),
        "{l2}"
    );
    assert!(
        l2.contains("onnect") || l2.contains("refused"),
        "says why: {l2}"
    );
    assert!(line_of(&stdout, "k8s-cluster1").contains("2/2"));
    assert!(line_of(&stdout, "k8s-cluster3").contains("1/1"));
    assert!(!line_of(&stdout, "k8s-cluster3").contains("UNREACHABLE"));
    let (_, stdout, _) = run(&fed, &["status", MC, "-o", "json"]).await;
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["sites"][1]["reachable"], false);
    assert!(
        v["sites"][1]["error"]
            .as_str()
            .unwrap()
            .contains("k8s-cluster2")
    );
    fed.sim.shutdown().await;
}

#[tokio::test]
async fn invalid_spec_shows_the_valid_condition() {
    let fed = start().await;
    // An override naming a cluster the controller does not know.
    let local = fed.sim.cluster(SITES[0]).client().await;
    let mcs: kube::Api<multi_casskop::api::MultiCasskop> = kube::Api::namespaced(local, NS);
    let patch = json!({"spec": {"override": {"k8s-cluster9": {"spec": {"topology": {"dc": [{"name": "dc9"}]}}}}}});
    mcs.patch(
        MC,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let msg = "spec.override names k8s-cluster9, which is not a configured cluster (configured: k8s-cluster1, k8s-cluster2, k8s-cluster3)";
    set_mc_status(
        &fed,
        json!({"phase": "Invalid", "readySites": "0/4", "observedGeneration": 2,
            "conditions": [condition("Valid", "False", "UnknownSite", msg), condition("Ready", "False", "Invalid", "the spec is invalid")]}),
    )
    .await;
    let (out, stdout, _) = run(&fed, &["status", MC]).await;
    assert!(out.status.success());
    assert!(stdout.contains("phase Invalid"), "{stdout}");
    assert!(
        stdout.contains(&format!("  Valid=False (UnknownSite): {msg}")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("INVALID SPEC: {msg}")), "{stdout}");
    let l9 = line_of(&stdout, "k8s-cluster9");
    assert!(
        l9.contains("no usable credentials") && l9.contains("k8s-cluster9"),
        "{l9}"
    );
    fed.sim.shutdown().await;
}

#[tokio::test]
async fn missing_multicasskop_is_a_clear_error() {
    let fed = start().await;
    let (out, stdout, stderr) = run(&fed, &["status", "nope"]).await;
    assert!(!out.status.success());
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("MultiCasskop cassandra/nope not found in the local cluster k8s-cluster1"),
        "{stderr}"
    );
    let (out, _, stderr) = run(&fed, &["ring", "nope"]).await;
    assert!(!out.status.success());
    assert!(
        stderr.contains("MultiCasskop cassandra/nope not found"),
        "{stderr}"
    );
    fed.sim.shutdown().await;
}

/// The controller's credentials for k8s-cluster2 (a Secret in the control plane) may read
/// CassandraClusters but not pods: status still shows the site, says the pods are not readable
/// and with which credentials; `--use-kubeconfig-contexts` reads them with the user's own.
#[tokio::test]
async fn credentials_without_pod_rights_still_show_the_site_and_say_pods_are_not_readable() {
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let fed = start().await;
    for i in 0..3 {
        site_running(&fed, i).await;
    }
    let k2 = fed.sim.cluster("k8s-cluster2");
    let admin2 = k2.client().await;
    let role: Role = serde_json::from_value(json!({"metadata": {"name": "mc", "namespace": NS},
        "rules": [{"apiGroups": ["db.orange.com"], "resources": ["cassandraclusters"], "verbs": ["get", "list", "watch", "patch", "create", "delete"]}]}))
    .unwrap();
    kube::Api::<Role>::namespaced(admin2.clone(), NS)
        .create(&Default::default(), &role)
        .await
        .unwrap();
    let rb: RoleBinding =
        serde_json::from_value(json!({"metadata": {"name": "mc", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mc"},
        "subjects": [{"kind": "ServiceAccount", "name": "multi-casskop", "namespace": NS}]}))
        .unwrap();
    kube::Api::<RoleBinding>::namespaced(admin2, NS)
        .create(&Default::default(), &rb)
        .await
        .unwrap();
    let token = k2.issue_token(NS, "multi-casskop", None);
    let config = kubesim::kubeconfig::render(&[(
        "k8s-cluster2".into(),
        k2.url(),
        k2.ca_pem(),
        token.clone(),
    )]);
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "k8s-cluster2", "namespace": NS}, "stringData": {"config": config}})).unwrap();
    let local = fed.sim.cluster(SITES[0]).client().await;
    kube::Api::<Secret>::namespaced(local, NS)
        .create(&Default::default(), &secret)
        .await
        .unwrap();

    let (out, stdout, stderr) = run(&fed, &["status", MC, "-o", "wide"]).await;
    assert!(out.status.success());
    assert!(
        !stdout.contains(&token) && !stderr.contains(&token),
        "a token was printed"
    );
    let l2 = line_of(&stdout, "k8s-cluster2");
    assert!(
        l2.contains("secret cassandra/k8s-cluster2"),
        "the controller's source is used: {l2}"
    );
    assert!(l2.contains("Running") && l2.contains(" ? "), "{l2}");
    assert!(
        l2.contains("pods not readable")
            && l2.contains("403")
            && l2.contains("--use-kubeconfig-contexts"),
        "{l2}"
    );
    let (_, stdout, _) = run(&fed, &["ring", MC]).await;
    assert!(
        stdout.contains("site k8s-cluster2: cannot list the Cassandra pods"),
        "{stdout}"
    );

    let (out, stdout, _) = run(
        &fed,
        &["status", MC, "-o", "wide", "--use-kubeconfig-contexts"],
    )
    .await;
    assert!(out.status.success());
    let l2 = line_of(&stdout, "k8s-cluster2");
    assert!(
        l2.contains("kubeconfig context k8s-cluster2") && l2.contains(" 2/2 "),
        "{l2}"
    );
    let (out, stdout, _) = run(&fed, &["ring", MC, "--use-kubeconfig-contexts"]).await;
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    fed.sim.shutdown().await;
}
