//! Server core driven by the real kubectl (found on PATH): apply/get/patch/wait/delete/create/auth can-i.
use kubesim::kubectl::Run;
use kubesim::{Sim, SimOptions};

/// kubectl with a kubeconfig of every cluster and a discovery cache of its own.
struct Kubectl {
    cli: kubesim::kubectl::Kubectl,
    _dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(sim: &Sim) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let cli = kubesim::kubectl::Kubectl::new(kubeconfig).cache_dir(&dir.path().join("cache"));
        Kubectl { cli, _dir: dir }
    }

    async fn run(&self, context: &str, args: &[&str], stdin: Option<&str>) -> Run {
        self.cli
            .clone()
            .context(context)
            .run_input(args, stdin.map(str::as_bytes))
            .await
    }

    /// Runs and asserts success; returns stdout.
    async fn ok(&self, context: &str, args: &[&str], stdin: Option<&str>) -> String {
        self.run(context, args, stdin).await.ok().stdout
    }
}

const CRD: &str = r"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Phase, type: string, jsonPath: .status.phase}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

const WIDGET: &str =
    "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n";

#[tokio::test]
async fn kubectl_crd_lifecycle() {
    let sim = Sim::start(&["c1", "c2"], SimOptions::default())
        .await
        .unwrap();
    let k = Kubectl::new(&sim);
    let out = k.ok("c1", &["get", "ns"], None).await;
    for ns in ["default", "kube-public", "kube-system"] {
        assert!(out.contains(ns), "{out}");
    }
    assert!(
        k.ok("c1", &["apply", "-f", "-"], Some(CRD))
            .await
            .contains("created")
    );
    k.ok(
        "c1",
        &[
            "wait",
            "--for",
            "condition=established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    assert!(
        k.ok("c1", &["apply", "-f", "-"], Some(WIDGET))
            .await
            .contains("widget.example.com/w1 created")
    );
    // Second apply: unchanged.
    assert!(
        k.ok("c1", &["apply", "-f", "-"], Some(WIDGET))
            .await
            .contains("unchanged")
    );

    // get: table with printer columns, yaml, json, jsonpath, short name.
    let table = k.ok("c1", &["get", "widgets"], None).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "PHASE"], "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("w1"), "{table}");
    let yaml = k.ok("c1", &["get", "wd", "w1", "-o", "yaml"], None).await;
    assert!(
        yaml.contains("kind: Widget") && yaml.contains("size: 3"),
        "{yaml}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &k.ok("c1", &["get", "widget", "w1", "-o", "json"], None)
            .await,
    )
    .unwrap();
    assert_eq!(json["metadata"]["generation"], 1);
    assert_eq!(
        k.ok(
            "c1",
            &["get", "widget", "w1", "-o", "jsonpath={.spec.size}"],
            None
        )
        .await,
        "3"
    );

    // Not found: exit code 1 and kube's message.
    let nf = k.run("c1", &["get", "widget", "nope"], None).await;
    assert_eq!(nf.code, 1);
    assert!(
        nf.stderr
            .contains(r#"widgets.example.com "nope" not found"#)
    );
    // The other cluster does not know the CRD.
    assert!(!k.run("c2", &["get", "widgets"], None).await.success());

    // patch (merge) on spec and on status.
    k.ok(
        "c1",
        &[
            "patch",
            "widget",
            "w1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":5}}"#,
        ],
        None,
    )
    .await;
    k.ok(
        "c1",
        &[
            "patch",
            "widget",
            "w1",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"phase":"Running"}}"#,
        ],
        None,
    )
    .await;
    assert_eq!(
        k.ok(
            "c1",
            &[
                "get",
                "widget",
                "w1",
                "-o",
                "jsonpath={.spec.size} {.status.phase} {.metadata.generation}"
            ],
            None
        )
        .await,
        "5 Running 2"
    );
    k.ok(
        "c1",
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "widget/w1",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    let table = k.ok("c1", &["get", "widgets"], None).await;
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            == ["w1", "5", "Running"],
        "{table}"
    );

    // wait on a change that happens later.
    let later = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        k.ok(
            "c1",
            &[
                "patch",
                "widget",
                "w1",
                "--subresource=status",
                "--type",
                "merge",
                "-p",
                r#"{"status":{"phase":"Done"}}"#,
            ],
            None,
        )
        .await;
    };
    let (w, _) = tokio::join!(
        k.run(
            "c1",
            &[
                "wait",
                "--for=jsonpath={.status.phase}=Done",
                "widget/w1",
                "--timeout=30s"
            ],
            None
        ),
        later
    );
    assert!(w.success(), "{}", w.stderr);

    // delete with a finalizer: marked, then gone once the finalizer is removed.
    k.ok(
        "c1",
        &[
            "patch",
            "widget",
            "w1",
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/metadata/finalizers","value":["example.com/hold"]}]"#,
        ],
        None,
    )
    .await;
    k.ok("c1", &["delete", "widget", "w1", "--wait=false"], None)
        .await;
    assert!(
        !k.ok(
            "c1",
            &[
                "get",
                "widget",
                "w1",
                "-o",
                "jsonpath={.metadata.deletionTimestamp}"
            ],
            None
        )
        .await
        .is_empty()
    );
    k.ok(
        "c1",
        &[
            "patch",
            "widget",
            "w1",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
        None,
    )
    .await;
    assert_eq!(k.run("c1", &["get", "widget", "w1"], None).await.code, 1);
    // delete without a finalizer (kubectl waits for it to be gone).
    k.ok("c1", &["apply", "-f", "-"], Some(WIDGET)).await;
    assert!(
        k.ok("c1", &["delete", "widget", "w1"], None)
            .await
            .contains("deleted")
    );
    k.ok("c1", &["delete", "crd", "widgets.example.com"], None)
        .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn kubectl_builtins_and_service_account_auth() {
    let sim = Sim::start(&["c1", "c2"], SimOptions::default())
        .await
        .unwrap();
    let k = Kubectl::new(&sim);
    k.ok(
        "c1",
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "--from-literal=user=admin",
            "--from-literal=pass=x",
        ],
        None,
    )
    .await;
    assert_eq!(
        k.ok(
            "c1",
            &["get", "secret", "s1", "-o", "jsonpath={.data.user}"],
            None
        )
        .await,
        "YWRtaW4="
    );
    k.ok("c1", &["create", "ns", "team"], None).await;
    k.ok(
        "c1",
        &[
            "create",
            "configmap",
            "cm",
            "-n",
            "team",
            "--from-literal=a=b",
        ],
        None,
    )
    .await;
    k.ok(
        "c1",
        &["label", "configmap", "cm", "-n", "team", "tier=x"],
        None,
    )
    .await;
    assert!(
        k.ok(
            "c1",
            &["get", "cm", "-n", "team", "-l", "tier=x", "-o", "name"],
            None
        )
        .await
        .contains("configmap/cm")
    );
    k.ok("c1", &["create", "sa", "reader", "-n", "team"], None)
        .await;
    k.ok(
        "c1",
        &[
            "create",
            "role",
            "read-secrets",
            "-n",
            "team",
            "--verb=get,list,watch",
            "--resource=secrets",
        ],
        None,
    )
    .await;
    k.ok(
        "c1",
        &[
            "create",
            "rolebinding",
            "rb",
            "-n",
            "team",
            "--role=read-secrets",
            "--serviceaccount=team:reader",
        ],
        None,
    )
    .await;
    let token = k
        .ok(
            "c1",
            &["create", "token", "reader", "-n", "team", "--duration=1h"],
            None,
        )
        .await
        .trim()
        .to_string();
    assert!(!token.is_empty());

    let can = |verb: &'static str, res: &'static str, ns: &'static str| {
        let token = token.clone();
        let k = &k;
        async move {
            k.run(
                "c1",
                &["auth", "can-i", verb, res, "-n", ns, "--token", &token],
                None,
            )
            .await
        }
    };
    let yes = can("list", "secrets", "team").await;
    assert_eq!((yes.code, yes.stdout.trim()), (0, "yes"));
    for (verb, res, ns) in [
        ("create", "secrets", "team"),
        ("list", "secrets", "default"),
        ("list", "configmaps", "team"),
    ] {
        let no = can(verb, res, ns).await;
        assert_eq!(
            (no.code, no.stdout.trim()),
            (1, "no"),
            "{verb} {res} in {ns}"
        );
    }
    // The token really works and is really limited; it is unknown to the other cluster.
    k.ok(
        "c1",
        &["get", "secrets", "-n", "team", "--token", &token],
        None,
    )
    .await;
    let denied = k
        .run(
            "c1",
            &["get", "configmaps", "-n", "team", "--token", &token],
            None,
        )
        .await;
    assert!(denied.stderr.contains("Forbidden"), "{}", denied.stderr);
    let other = k
        .run(
            "c2",
            &["get", "secrets", "-n", "team", "--token", &token],
            None,
        )
        .await;
    assert!(!other.success());
    assert!(
        other.stderr.contains("You must be logged in to the server"),
        "{}",
        other.stderr
    );

    let who = k
        .ok(
            "c1",
            &[
                "auth",
                "whoami",
                "--token",
                &token,
                "-o",
                "jsonpath={.status.userInfo.username}",
            ],
            None,
        )
        .await;
    assert_eq!(who, "system:serviceaccount:team:reader");
    // StatefulSet: apply, scale subresource, generation.
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: team}\nspec:\n  replicas: 2\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: c, image: cassandra}]}\n";
    k.ok("c1", &["apply", "-f", "-"], Some(sts)).await;
    k.ok(
        "c1",
        &["scale", "sts", "db", "-n", "team", "--replicas=3"],
        None,
    )
    .await;
    assert_eq!(
        k.ok(
            "c1",
            &[
                "get",
                "sts",
                "db",
                "-n",
                "team",
                "-o",
                "jsonpath={.spec.replicas} {.metadata.generation}"
            ],
            None
        )
        .await,
        "3 2"
    );
    k.ok("c1", &["delete", "ns", "team"], None).await;
    assert_eq!(k.run("c1", &["get", "ns", "team"], None).await.code, 1);
    sim.shutdown().await;
}
