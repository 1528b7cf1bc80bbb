//! Real TLS and per-cluster tokens: untrusted CA fails, the kubeconfig works, tokens do not cross clusters.

use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kubesim::kubectl::Kubectl;
use kubesim::{Sim, SimOptions};

const A: &str = "k8s-cluster1";
const B: &str = "k8s-cluster2";

/// A one-context kubeconfig; `ca_pem: None` leaves the system trust store in charge.
fn kubeconfig(server: &str, ca_pem: Option<&str>, token: &str) -> String {
    let ca = ca_pem
        .map(|pem| {
            format!(
                "\n    certificate-authority-data: {}",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: {server}{ca}\nusers:\n- name: test\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n"
    )
}

async fn client_from(yaml: &str, context: Option<&str>) -> kube::Client {
    let kc = Kubeconfig::from_yaml(yaml).expect("kubeconfig parses");
    let opts = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .expect("kubeconfig loads");
    kube::Client::try_from(config).expect("client builds")
}

async fn list_namespaces(client: kube::Client) -> Result<Vec<String>, kube::Error> {
    let list = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect())
}

/// The error and all its sources, so the TLS reason shows.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

async fn start() -> Sim {
    Sim::start(&[A, B], SimOptions::default())
        .await
        .expect("kubesim starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_cluster_ca_fails() {
    let sim = start().await;
    let a = sim.cluster(A);
    let b = sim.cluster(B);

    let no_ca = client_from(&kubeconfig(&a.url(), None, &a.admin_token()), None).await;
    let err = list_namespaces(no_ca)
        .await
        .expect_err("an unknown CA must not be trusted");
    let why = chain(&err);
    println!("without the CA: {why}");
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "the TLS handshake should fail before any HTTP answer: {why}"
    );
    assert!(
        why.contains("certificate"),
        "not a certificate failure: {why}"
    );

    // B's CA does not vouch for A's certificate either.
    let wrong_ca = client_from(
        &kubeconfig(&a.url(), Some(&b.ca_pem()), &a.admin_token()),
        None,
    )
    .await;
    let err = list_namespaces(wrong_ca)
        .await
        .expect_err("another cluster's CA must not be trusted");
    let why = chain(&err);
    println!("with cluster B's CA: {why}");
    assert!(!matches!(err, kube::Error::Api(_)), "{why}");
    assert!(
        why.contains("certificate"),
        "not a certificate failure: {why}"
    );

    // The right CA works.
    let right = client_from(
        &kubeconfig(&a.url(), Some(&a.ca_pem()), &a.admin_token()),
        None,
    )
    .await;
    assert!(
        list_namespaces(right)
            .await
            .unwrap()
            .contains(&"default".to_owned())
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_written_kubeconfig_has_one_working_context_per_cluster() {
    let sim = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).unwrap();
    let kc = Kubeconfig::read_from(&path).unwrap();
    let mut contexts: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
    contexts.sort();
    assert_eq!(contexts, vec![A, B]);

    for name in [A, B] {
        let client = client_from(&std::fs::read_to_string(&path).unwrap(), Some(name)).await;
        let namespaces = list_namespaces(client)
            .await
            .unwrap_or_else(|e| panic!("context {name}: {e}"));
        assert!(
            namespaces.contains(&"default".to_owned()),
            "{name}: {namespaces:?}"
        );
        assert!(
            namespaces.contains(&"kube-system".to_owned()),
            "{name}: {namespaces:?}"
        );
    }
    // Each context reaches its own cluster.
    let marker: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "only-on-a"}})).unwrap();
    Api::<Namespace>::all(sim.cluster(A).client().await)
        .create(&Default::default(), &marker)
        .await
        .unwrap();
    let yaml = std::fs::read_to_string(&path).unwrap();
    let on_a = list_namespaces(client_from(&yaml, Some(A)).await)
        .await
        .unwrap();
    let on_b = list_namespaces(client_from(&yaml, Some(B)).await)
        .await
        .unwrap();
    assert!(on_a.contains(&"only-on-a".to_owned()));
    assert!(!on_b.contains(&"only-on-a".to_owned()));

    // kubectl reads it too.
    let out = Kubectl::new(&path)
        .context(A)
        .run(&["get", "namespace", "only-on-a", "-o", "name"])
        .await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "namespace/only-on-a");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_cluster_a_gets_401_from_cluster_b() {
    let sim = start().await;
    let a = sim.cluster(A);
    let b = sim.cluster(B);

    let a_admin_on_b = client_from(
        &kubeconfig(&b.url(), Some(&b.ca_pem()), &a.admin_token()),
        None,
    )
    .await;
    match list_namespaces(a_admin_on_b).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 401, "{s:?}");
            assert_eq!(s.reason, "Unauthorized", "{s:?}");
        }
        other => panic!("cluster A's admin token on cluster B: expected 401, got {other:?}"),
    }

    // A service-account token issued by A: known to A (RBAC may forbid, but it authenticates),
    // unknown to B.
    let sa_token = a.issue_token("default", "default", None);
    let on_a = client_from(&kubeconfig(&a.url(), Some(&a.ca_pem()), &sa_token), None).await;
    match list_namespaces(on_a).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "token of A on A: {s:?}"),
        Err(e) => panic!("token of A on A: {e}"),
    }
    let on_b = client_from(&kubeconfig(&b.url(), Some(&b.ca_pem()), &sa_token), None).await;
    match list_namespaces(on_b).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 401, "{s:?}"),
        other => panic!("token of A on B: expected 401, got {other:?}"),
    }

    // A made-up token gets 401 as well; B's own admin token works.
    let bogus = client_from(
        &kubeconfig(&b.url(), Some(&b.ca_pem()), "not-a-token"),
        None,
    )
    .await;
    assert!(matches!(list_namespaces(bogus).await, Err(kube::Error::Api(s)) if s.code == 401));
    let good = client_from(
        &kubeconfig(&b.url(), Some(&b.ca_pem()), &b.admin_token()),
        None,
    )
    .await;
    list_namespaces(good).await.unwrap();
    let rejected = b.audit().iter().filter(|e| e.code == 401).count();
    assert!(
        rejected >= 3,
        "cluster B audited {rejected} rejected requests"
    );
    sim.shutdown().await;
}
