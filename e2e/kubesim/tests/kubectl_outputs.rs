//! Real `kubectl` 1.32 against an in-process kubesim gives the outputs and exit codes a real cluster gives.
//!
//! Expected strings are what kubectl 1.32 prints against kube-apiserver 1.32; where the server's exact
//! answer is an assumption, a comment says so.
mod support;

use kubesim::fixtures::CASSANDRA_CRD_YAML as CASSANDRA_CRD;
use serde_json::json;
use support::{Env, WIDGET_CRD, widget_yaml};

fn age_like(s: &str) -> bool {
    // kubectl's HumanDuration: 0s, 5s, 2m3s, 10m, 3h ...
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_digit())
        && s.ends_with(['s', 'm', 'h', 'd', 'y'])
}

async fn with_widgets() -> Env {
    let env = Env::start(&["k1"]).await;
    let crd = env.file("crd.yaml", WIDGET_CRD);
    env.kubectl(&["apply", "-f", crd.to_str().unwrap()])
        .await
        .ok();
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_crd_then_object_then_reapply() {
    let env = Env::start(&["k1"]).await;
    let crd = env.file("crd.yaml", WIDGET_CRD);
    let crd = crd.to_str().unwrap();

    let r = env.kubectl(&["apply", "-f", crd]).await.ok();
    assert_eq!(
        r.stdout,
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created\n"
    );
    let r = env.kubectl(&["apply", "-f", crd]).await.ok();
    assert_eq!(
        r.stdout,
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com unchanged\n"
    );
    // What scripts do right after applying a CRD.
    let r = env
        .kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=30s",
        ])
        .await
        .ok();
    assert_eq!(
        r.stdout,
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met\n"
    );
    let r = env.kubectl(&["get", "crd"]).await.ok();
    let t = r.table();
    assert_eq!(t[0], ["NAME", "CREATED", "AT"]);
    assert_eq!(t[1][0], "widgets.example.com");
    assert!(
        t[1][1].ends_with('Z') && t[1][1].contains('T'),
        "CREATED AT is an RFC 3339 time: {:?}",
        t[1]
    );
    // The new resource shows up in discovery (kubectl api-resources reads it).
    let r = env
        .kubectl(&["api-resources", "--api-group=example.com"])
        .await
        .ok();
    let t = r.table();
    assert_eq!(
        t[0],
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    assert_eq!(t[1], ["widgets", "wd", "example.com/v1", "true", "Widget"]);

    let w = env.file("w1.yaml", &widget_yaml("default", "w1", 3));
    let w = w.to_str().unwrap();
    let r = env.kubectl(&["apply", "-f", w]).await.ok();
    assert_eq!(r.stdout, "widget.example.com/w1 created\n");
    let r = env.kubectl(&["apply", "-f", w]).await.ok();
    assert_eq!(r.stdout, "widget.example.com/w1 unchanged\n");
    env.file("w1.yaml", &widget_yaml("default", "w1", 4));
    let r = env.kubectl(&["apply", "-f", w]).await.ok();
    assert_eq!(r.stdout, "widget.example.com/w1 configured\n");
    let obj = env
        .kubectl(&["get", "widget", "w1", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(obj["spec"]["size"], 4);
    assert_eq!(
        obj["metadata"]["generation"], 2,
        "one spec change after create: {obj}"
    );
    let last = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap();
    let last: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(last["spec"], json!({"size": 4}));

    // From stdin, a second object and an unchanged one in one stream.
    let both = format!(
        "{}---\n{}",
        widget_yaml("default", "w1", 4),
        widget_yaml("default", "w2", 1)
    );
    let r = env.kubectl_stdin(&["apply", "-f", "-"], &both).await.ok();
    assert_eq!(
        r.stdout,
        "widget.example.com/w1 unchanged\nwidget.example.com/w2 created\n"
    );

    // Applying into a namespace that does not exist.
    let r = env
        .kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("nowhere", "w3", 1))
        .await
        .fails(1);
    assert!(
        r.stderr.contains("namespaces \"nowhere\" not found"),
        "{r:#?}"
    );

    // An object of a kind the server does not serve.
    let r = env
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n",
        )
        .await
        .fails(1);
    assert!(
        r.stderr
            .contains("resource mapping not found for name: \"g\"")
            && r.stderr
                .contains("no matches for kind \"Gadget\" in version \"example.com/v1\""),
        "{r:#?}"
    );
    // A body over kube-apiserver's 3 MiB limit (sent over HTTP/2 by kubectl): 413, and nothing stored.
    let big = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  x: \"{}\"\n",
        "a".repeat(3 * 1024 * 1024 + 100)
    );
    let big = env.file("big.yaml", &big);
    let r = env
        .kubectl(&["create", "-f", big.to_str().unwrap()])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (RequestEntityTooLarge): error when creating \"{}\": Request entity too large: limit is 3145728\n",
            big.display()
        )
    );
    env.kubectl(&["get", "configmap", "big"]).await.fails(1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_yaml_json_jsonpath_table_and_not_found() {
    let env = with_widgets().await;
    env.kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("default", "w1", 3))
        .await
        .ok();
    env.kubectl(&["create", "namespace", "other"]).await.ok();
    env.kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("other", "w9", 9))
        .await
        .ok();

    let r = env
        .kubectl(&["get", "widgets", "w1", "-o", "yaml"])
        .await
        .ok();
    assert!(
        r.stdout
            .starts_with("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\n  name: w1\n") && r.stdout.contains("\n  namespace: default\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\nspec:\n  size: 3\n"), "{}", r.stdout);
    // kubectl hides managedFields unless asked.
    assert!(!r.stdout.contains("managedFields"), "{}", r.stdout);
    let r = env
        .kubectl(&[
            "get",
            "widgets",
            "w1",
            "-o",
            "yaml",
            "--show-managed-fields",
        ])
        .await
        .ok();
    assert!(
        r.stdout.contains("managedFields:")
            && r.stdout.contains("manager: kubectl-client-side-apply"),
        "{}",
        r.stdout
    );

    let obj = env
        .kubectl(&["get", "wd", "w1", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(obj["apiVersion"], "example.com/v1");
    assert_eq!(obj["kind"], "Widget");
    assert_eq!(obj["metadata"]["generation"], 1);
    assert!(
        obj["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36),
        "{obj}"
    );
    assert!(
        obj["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| rv.parse::<u64>().is_ok()),
        "{obj}"
    );
    assert!(
        obj["status"].is_null(),
        "a fresh object with a status subresource has no status: {obj}"
    );

    let r = env
        .kubectl(&["get", "wd", "w1", "-o", "jsonpath={.spec.size}"])
        .await
        .ok();
    assert_eq!(r.stdout, "3");
    let r = env.kubectl(&["get", "wd", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.spec.size}{\"\\n\"}{end}"]).await.ok();
    assert_eq!(r.stdout, "default/w1=3\nother/w9=9\n");
    let r = env.kubectl(&["get", "wd", "-o", "name"]).await.ok();
    assert_eq!(r.stdout, "widget.example.com/w1\n");
    // A missing field prints nothing with jsonpath (no error).
    let r = env
        .kubectl(&["get", "wd", "w1", "-o", "jsonpath={.status.phase}"])
        .await
        .ok();
    assert_eq!(r.stdout, "");

    // The CRD's printer columns, then with -A the NAMESPACE column in front.
    let r = env.kubectl(&["get", "widgets"]).await.ok();
    let t = r.table();
    assert_eq!(t[0], ["NAME", "SIZE", "PHASE", "AGE"]);
    assert_eq!(t.len(), 2, "{}", r.stdout);
    assert_eq!(t[1][..2], ["w1", "3"]);
    assert!(age_like(&t[1][2]), "empty PHASE cell, then AGE: {:?}", t[1]);
    let r = env.kubectl(&["get", "widgets", "-A"]).await.ok();
    let t = r.table();
    assert_eq!(t[0], ["NAMESPACE", "NAME", "SIZE", "PHASE", "AGE"]);
    assert_eq!(t[1][..3], ["default", "w1", "3"]);
    assert_eq!(t[2][..3], ["other", "w9", "9"]);
    let r = env
        .kubectl(&["get", "widgets", "-o", "wide", "-n", "other"])
        .await
        .ok();
    assert_eq!(r.table()[0], ["NAME", "SIZE", "PHASE", "AGE"]);

    // Not found: exit code 1, kube's message on stderr, nothing on stdout.
    let r = env.kubectl(&["get", "wd", "nothere"]).await.fails(1);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): widgets.example.com \"nothere\" not found\n"
    );
    let r = env
        .kubectl(&["get", "secret", "nothere", "-o", "yaml"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): secrets \"nothere\" not found\n"
    );
    let r = env
        .kubectl(&["get", "wd", "nothere", "--ignore-not-found"])
        .await
        .ok();
    assert_eq!(r.stdout, "");
    // kubectl 1.32 follows a NotFound in a namespace that does not exist by reporting the namespace.
    let r = env
        .kubectl(&["get", "wd", "w1", "-n", "nowhere"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): namespaces \"nowhere\" not found\n"
    );
    let r = env.kubectl(&["get", "wd", "-n", "nowhere"]).await.ok();
    assert_eq!(r.stderr, "No resources found in nowhere namespace.\n");
    // An unknown resource type is a client-side discovery error.
    let r = env.kubectl(&["get", "gadgets"]).await.fails(1);
    assert_eq!(
        r.stderr,
        "error: the server doesn't have a resource type \"gadgets\"\n"
    );

    // Label selectors go to the server.
    env.kubectl(&["label", "wd", "w1", "tier=gold"]).await.ok();
    let r = env
        .kubectl(&["get", "wd", "-A", "-l", "tier=gold", "-o", "name"])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/w1\n");
    let r = env
        .kubectl(&["get", "wd", "-A", "-l", "tier!=gold", "-o", "name"])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/w9\n");
    let r = env
        .kubectl(&[
            "get",
            "wd",
            "-A",
            "--field-selector",
            "metadata.name=w9",
            "-o",
            "name",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/w9\n");
    // Paging: kubectl lists in chunks of --chunk-size and follows `continue`.
    for i in 0..5 {
        env.kubectl_stdin(
            &["apply", "-f", "-"],
            &widget_yaml("other", &format!("p{i}"), i),
        )
        .await
        .ok();
    }
    let r = env
        .kubectl(&["get", "wd", "-n", "other", "--chunk-size=2", "-o", "name"])
        .await
        .ok();
    assert_eq!(r.stdout.lines().count(), 6, "{}", r.stdout);
    let paged = env
        .sim
        .audit()
        .iter()
        .filter(|e| e.verb == "list" && e.resource == "widgets" && e.namespace == "other")
        .count();
    assert!(
        paged >= 3,
        "6 objects in chunks of 2 take 3 list calls, saw {paged}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_merge_json_and_status_subresource() {
    let env = with_widgets().await;
    env.kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("default", "w1", 3))
        .await
        .ok();

    let r = env
        .kubectl(&[
            "patch",
            "wd",
            "w1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":5,"color":"red"}}"#,
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/w1 patched\n");
    let r = env
        .kubectl(&[
            "patch",
            "wd",
            "w1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":5}}"#,
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/w1 patched (no change)\n");
    let obj = env
        .kubectl(&["get", "wd", "w1", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(obj["spec"], json!({"size": 5, "color": "red"}));
    assert_eq!(obj["metadata"]["generation"], 2);
    let rv_before = obj["metadata"]["resourceVersion"].clone();

    // With a status subresource, status written on the main resource is ignored...
    let r = env
        .kubectl(&[
            "patch",
            "wd",
            "w1",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"phase":"Sneaky"}}"#,
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/w1 patched (no change)\n");
    // ...and written through --subresource=status, where spec changes are ignored instead.
    let r = env
        .kubectl(&[
            "patch",
            "wd",
            "w1",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":99},"status":{"phase":"Ready"}}"#,
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/w1 patched\n");
    let obj = env
        .kubectl(&["get", "wd", "w1", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(obj["status"], json!({"phase": "Ready"}));
    assert_eq!(obj["spec"]["size"], 5);
    assert_eq!(
        obj["metadata"]["generation"], 2,
        "status writes do not move generation"
    );
    assert_ne!(obj["metadata"]["resourceVersion"], rv_before);
    let r = env.kubectl(&["get", "wd", "w1"]).await.ok();
    assert_eq!(r.table()[1][..3], ["w1", "5", "Ready"]);
    let r = env
        .kubectl(&[
            "get",
            "wd",
            "w1",
            "--subresource=status",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "Ready");

    // JSON patch, including a failing test op (422 from the server).
    let r = env
        .kubectl(&[
            "patch",
            "wd",
            "w1",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/color","value":"blue"}]"#,
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/w1 patched\n");
    let r = env
        .kubectl(&[
            "patch",
            "wd",
            "w1",
            "--type",
            "json",
            "-p",
            r#"[{"op":"test","path":"/spec/color","value":"green"}]"#,
        ])
        .await
        .fails(1);
    // kube-apiserver: NewGenericServerResponse(422) with empty details; kubectl adds "The request is invalid: ".
    assert_eq!(
        r.stderr,
        "The request is invalid: the server rejected our request due to an error in our request\n"
    );
    // Strategic merge (kubectl's default type) is refused on custom resources: 415.
    let r = env
        .kubectl(&["patch", "wd", "w1", "-p", r#"{"spec":{"size":6}}"#])
        .await
        .fails(1);
    assert!(
        r.stderr.contains("UnsupportedMediaType") || r.stderr.contains("unknown format"),
        "{r:#?}"
    );
    // ...but works on built-in kinds.
    env.kubectl(&["create", "configmap", "cm", "--from-literal=a=1"])
        .await
        .ok();
    let r = env
        .kubectl(&["patch", "configmap", "cm", "-p", r#"{"data":{"b":"2"}}"#])
        .await
        .ok();
    assert_eq!(r.stdout, "configmap/cm patched\n");
    let r = env
        .kubectl(&["get", "cm", "cm", "-o", "jsonpath={.data}"])
        .await
        .ok();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap(),
        json!({"a": "1", "b": "2"})
    );
    // Patching something that is not there.
    let r = env
        .kubectl(&["patch", "wd", "ghost", "--type", "merge", "-p", "{}"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): widgets.example.com \"ghost\" not found\n"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_and_without_finalizer() {
    let env = with_widgets().await;
    env.kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("default", "plain", 1))
        .await
        .ok();
    env.kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("default", "held", 1))
        .await
        .ok();

    let r = env.kubectl(&["delete", "wd", "plain"]).await.ok();
    assert_eq!(r.stdout, "widget.example.com \"plain\" deleted\n");
    env.kubectl(&["get", "wd", "plain"]).await.fails(1);
    let r = env.kubectl(&["delete", "wd", "plain"]).await.fails(1);
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): widgets.example.com \"plain\" not found\n"
    );
    let r = env
        .kubectl(&["delete", "wd", "plain", "--ignore-not-found"])
        .await
        .ok();
    assert_eq!(r.stdout, "");

    let r = env
        .kubectl(&[
            "patch",
            "wd",
            "held",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/held patched\n");
    // kubectl delete waits for the object to go: with a finalizer it times out (exit 1) and the object stays.
    let r = env
        .kubectl(&["delete", "wd", "held", "--timeout=2s"])
        .await
        .fails(1);
    assert!(
        r.stdout.contains("widget.example.com \"held\" deleted"),
        "{r:#?}"
    );
    assert!(
        r.stderr
            .contains("timed out waiting for the condition on widgets/held"),
        "{r:#?}"
    );
    let obj = env
        .kubectl(&["get", "wd", "held", "-o", "json"])
        .await
        .ok()
        .json();
    let ts = obj["metadata"]["deletionTimestamp"]
        .as_str()
        .expect("deletionTimestamp set");
    assert!(ts.ends_with('Z'), "{ts}");
    assert_eq!(obj["metadata"]["finalizers"], json!(["example.com/hold"]));
    assert_eq!(obj["metadata"]["deletionGracePeriodSeconds"], 0);
    // Deleting again changes nothing.
    let r = env
        .kubectl(&["delete", "wd", "held", "--wait=false"])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com \"held\" deleted\n");
    let again = env
        .kubectl(&["get", "wd", "held", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        again["metadata"]["deletionTimestamp"],
        obj["metadata"]["deletionTimestamp"]
    );
    assert_eq!(
        again["metadata"]["resourceVersion"],
        obj["metadata"]["resourceVersion"]
    );
    // Spec updates are still allowed while it waits.
    env.kubectl(&[
        "patch",
        "wd",
        "held",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":2}}"#,
    ])
    .await
    .ok();

    // kubectl wait --for=delete sees it go once the finalizer is patched away.
    let seen = env.sim.audit().last().map(|e| e.seq).unwrap_or(0);
    let waiter = {
        let kubectl = env.kubectl_runner();
        tokio::spawn(async move {
            kubectl
                .run(&["wait", "--for=delete", "wd/held", "--timeout=60s"])
                .await
        })
    };
    // Let the waiter see the object and start watching before it goes (else it returns at once, silently).
    for _ in 0..600 {
        if env
            .sim
            .audit()
            .iter()
            .any(|e| e.seq > seen && e.resource == "widgets" && e.verb == "watch")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = env
        .kubectl(&[
            "patch",
            "wd",
            "held",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/held patched\n");
    let w = waiter.await.unwrap().ok();
    assert_eq!(w.stdout, "widget.example.com/held condition met\n");
    let r = env.kubectl(&["get", "wd", "held"]).await.fails(1);
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): widgets.example.com \"held\" not found\n"
    );

    // Deleting a namespace takes its objects along.
    env.kubectl(&["create", "namespace", "gone"]).await.ok();
    env.kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("gone", "w", 1))
        .await
        .ok();
    let r = env.kubectl(&["delete", "namespace", "gone"]).await.ok();
    assert_eq!(r.stdout, "namespace \"gone\" deleted\n");
    let r = env.kubectl(&["get", "wd", "-n", "gone"]).await.ok();
    assert_eq!(r.stderr, "No resources found in gone namespace.\n");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_secret_generic() {
    let env = Env::start(&["k1"]).await;
    let f = env.file(
        "ca.crt",
        "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n",
    );
    let r = env
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "creds",
            "--from-literal=user=admin",
            "--from-literal=password=s3cr=t",
            &format!("--from-file={}", f.display()),
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "secret/creds created\n");
    let obj = env
        .kubectl(&["get", "secret", "creds", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(obj["type"], "Opaque");
    assert_eq!(obj["data"]["user"], "YWRtaW4=");
    assert_eq!(obj["data"]["password"], "czNjcj10");
    assert!(obj["data"]["ca.crt"].is_string(), "{obj}");
    assert!(
        obj["metadata"]["generation"].is_null(),
        "secrets have no generation: {obj}"
    );
    let r = env
        .kubectl(&["get", "secret", "creds", "-o", "jsonpath={.data.user}"])
        .await
        .ok();
    assert_eq!(r.stdout, "YWRtaW4=");
    let r = env.kubectl(&["get", "secrets"]).await.ok();
    let t = r.table();
    assert_eq!(t[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(t[1][..3], ["creds", "Opaque", "3"]);

    let r = env
        .kubectl(&["create", "secret", "generic", "creds", "--from-literal=a=b"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: failed to create secret secrets \"creds\" already exists\n"
    );
    let r = env
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "x",
            "-n",
            "nowhere",
            "--from-literal=a=b",
        ])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: failed to create secret namespaces \"nowhere\" not found\n"
    );
    let r = env
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "Bad_Name",
            "--from-literal=a=b",
        ])
        .await
        .fails(1);
    assert!(
        r.stderr.starts_with("error: failed to create secret Secret \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
        "{r:#?}"
    );
    // Typed secrets and server-side dry run.
    let r = env
        .kubectl(&[
            "create",
            "secret",
            "docker-registry",
            "pull",
            "--docker-server=r.example",
            "--docker-username=u",
            "--docker-password=p",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "secret/pull created\n");
    let r = env
        .kubectl(&["get", "secret", "pull", "-o", "jsonpath={.type}"])
        .await
        .ok();
    assert_eq!(r.stdout, "kubernetes.io/dockerconfigjson");
    let r = env
        .kubectl(&[
            "create",
            "secret",
            "generic",
            "dry",
            "--from-literal=a=b",
            "--dry-run=server",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "secret/dry created (server dry run)\n");
    env.kubectl(&["get", "secret", "dry"]).await.fails(1);
    let r = env.kubectl(&["delete", "secret", "creds"]).await.ok();
    assert_eq!(r.stdout, "secret \"creds\" deleted\n");
    // stringData is write-only: merged into data and never stored. So a re-apply always has a
    // patch to send ("configured", as against a real cluster), and data keeps the value.
    let s = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sd\nstringData:\n  user: bob\ndata:\n  pw: cHc=\n";
    let r = env.kubectl_stdin(&["apply", "-f", "-"], s).await.ok();
    assert_eq!(r.stdout, "secret/sd created\n");
    let obj = env
        .kubectl(&["get", "secret", "sd", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(obj["data"], json!({"pw": "cHc=", "user": "Ym9i"}));
    assert!(obj.get("stringData").is_none(), "{obj}");
    let r = env.kubectl_stdin(&["apply", "-f", "-"], s).await.ok();
    assert_eq!(r.stdout, "secret/sd configured\n");
    let after = env
        .kubectl(&["get", "secret", "sd", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(after["data"], obj["data"]);
    assert_eq!(
        after["metadata"]["resourceVersion"], obj["metadata"]["resourceVersion"],
        "nothing changed"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_jsonpath_and_condition() {
    let env = with_widgets().await;
    env.kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("default", "w1", 3))
        .await
        .ok();

    // Waits that can never be met time out with exit code 1.
    let r = env
        .kubectl(&[
            "wait",
            "wd/w1",
            "--for=jsonpath={.status.phase}=Ready",
            "--timeout=1s",
        ])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: timed out waiting for the condition on widgets/w1\n"
    );
    let r = env
        .kubectl(&["wait", "wd/w1", "--for=condition=Ready", "--timeout=1s"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: timed out waiting for the condition on widgets/w1\n"
    );

    // Start the waits, then write the status they wait for (a later write, seen through their watch).
    let spawn_wait = |args: Vec<String>| {
        let kubectl = env.kubectl_runner();
        tokio::spawn(async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            kubectl.run(&a).await
        })
    };
    let by_path = spawn_wait(vec![
        "wait".into(),
        "wd/w1".into(),
        "--for=jsonpath={.status.phase}=Ready".into(),
        "--timeout=60s".into(),
    ]);
    let by_cond = spawn_wait(vec![
        "wait".into(),
        "wd/w1".into(),
        "--for=condition=Available".into(),
        "--timeout=60s".into(),
    ]);
    let by_size = spawn_wait(vec![
        "wait".into(),
        "wd/w1".into(),
        "--for=jsonpath={.spec.size}=7".into(),
        "--timeout=60s".into(),
    ]);
    env.kubectl(&[
        "patch",
        "wd",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"phase":"Ready","conditions":[{"type":"Available","status":"True"}]}}"#,
    ])
    .await
    .ok();
    env.kubectl(&[
        "patch",
        "wd",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":7}}"#,
    ])
    .await
    .ok();
    for w in [by_path, by_cond, by_size] {
        let r = w.await.unwrap().ok();
        assert_eq!(r.stdout, "widget.example.com/w1 condition met\n");
    }
    // Already met: returns at once. A condition with status False is not met.
    env.kubectl(&[
        "wait",
        "wd/w1",
        "--for=condition=Available=True",
        "--timeout=5s",
    ])
    .await
    .ok();
    let r = env
        .kubectl(&[
            "wait",
            "wd/w1",
            "--for=condition=Available=False",
            "--timeout=1s",
        ])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: timed out waiting for the condition on widgets/w1\n"
    );
    // Waiting on an object that does not exist.
    let r = env
        .kubectl(&["wait", "wd/ghost", "--for=condition=Ready", "--timeout=1s"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): widgets.example.com \"ghost\" not found\n"
    );
    // Several objects by label: every one must meet it; the ones that do are reported.
    env.kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("default", "w2", 1))
        .await
        .ok();
    env.kubectl(&["label", "wd", "--all", "team=a"]).await.ok();
    let r = env
        .kubectl(&[
            "wait",
            "wd",
            "-l",
            "team=a",
            "--for=jsonpath={.status.phase}=Ready",
            "--timeout=2s",
        ])
        .await
        .fails(1);
    assert_eq!(r.stdout, "widget.example.com/w1 condition met\n");
    assert_eq!(
        r.stderr,
        "error: timed out waiting for the condition on widgets/w2\n"
    );
    env.kubectl(&[
        "patch",
        "wd",
        "w2",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"phase":"Ready"}}"#,
    ])
    .await
    .ok();
    let r = env
        .kubectl(&[
            "wait",
            "wd",
            "--all",
            "--for=jsonpath={.status.phase}=Ready",
            "--timeout=30s",
        ])
        .await
        .ok();
    assert_eq!(
        r.stdout,
        "widget.example.com/w1 condition met\nwidget.example.com/w2 condition met\n"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_can_i_with_service_account_token() {
    let env = Env::start(&["k1"]).await;
    let crd = env.file("cass.yaml", CASSANDRA_CRD);
    env.kubectl(&["apply", "-f", crd.to_str().unwrap()])
        .await
        .ok();
    env.kubectl(&["create", "namespace", "x"]).await.ok();
    env.kubectl(&["create", "serviceaccount", "reader", "-n", "x"])
        .await
        .ok();
    env.kubectl(&[
        "create",
        "role",
        "cass-reader",
        "-n",
        "x",
        "--verb=get,list,watch",
        "--resource=cassandraclusters.db.orange.com",
    ])
    .await
    .ok();
    let r = env
        .kubectl(&[
            "create",
            "rolebinding",
            "cass-reader",
            "-n",
            "x",
            "--role=cass-reader",
            "--serviceaccount=x:reader",
        ])
        .await
        .ok();
    assert_eq!(
        r.stdout,
        "rolebinding.rbac.authorization.k8s.io/cass-reader created\n"
    );

    // The admin (system:masters) may do anything.
    let r = env
        .kubectl(&["auth", "can-i", "create", "secrets", "-n", "x"])
        .await
        .ok();
    assert_eq!(r.stdout, "yes\n");
    let r = env.kubectl(&["auth", "can-i", "*", "*"]).await.ok();
    assert_eq!(r.stdout, "yes\n");

    // A TokenRequest token, as `kubectl create token` gets it.
    let token = env
        .kubectl(&["create", "token", "reader", "-n", "x", "--duration=1h"])
        .await
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(!token.is_empty());
    let tok = format!("--token={token}");
    let can = |verb: &'static str, res: &'static str, ns: &'static str| {
        let tok = tok.clone();
        let env = &env;
        async move {
            env.kubectl(&["auth", "can-i", verb, res, "-n", ns, &tok])
                .await
        }
    };
    for (verb, res, ns, yes) in [
        ("get", "cassandraclusters.db.orange.com", "x", true),
        ("list", "cassandraclusters", "x", true),
        ("watch", "cassc", "x", true),
        ("create", "cassandraclusters", "x", false),
        ("delete", "cassandraclusters", "x", false),
        ("list", "cassandraclusters", "default", false),
        ("get", "secrets", "x", false),
    ] {
        let r = can(verb, res, ns).await;
        assert_eq!(
            (r.code, r.stdout.as_str()),
            if yes { (0, "yes\n") } else { (1, "no\n") },
            "can-i {verb} {res} -n {ns}: {r:#?}"
        );
    }
    // --list (SelfSubjectRulesReview): the Role's rule, plus what every authenticated user may do.
    let r = env
        .kubectl(&["auth", "can-i", "--list", "-n", "x", &tok])
        .await
        .ok();
    let t = r.table();
    let row = |cells: &[&str]| cells.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        t[0],
        row(&[
            "Resources",
            "Non-Resource",
            "URLs",
            "Resource",
            "Names",
            "Verbs"
        ])
    );
    assert!(
        t.contains(&row(&[
            "cassandraclusters.db.orange.com",
            "[]",
            "[]",
            "[get",
            "list",
            "watch]"
        ])),
        "{}",
        r.stdout
    );
    assert!(
        t.contains(&row(&[
            "selfsubjectaccessreviews.authorization.k8s.io",
            "[]",
            "[]",
            "[create]"
        ])),
        "{}",
        r.stdout
    );
    assert!(
        t.iter()
            .any(|r| r.first().is_some_and(|c| c == "[/version]")),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("secrets"), "{}", r.stdout);
    let r = env
        .kubectl(&["auth", "can-i", "--list", "-n", "default", &tok])
        .await
        .ok();
    assert!(
        !r.stdout.contains("cassandraclusters"),
        "the Role is in x only: {}",
        r.stdout
    );
    let r = env
        .kubectl(&[
            "auth",
            "whoami",
            &tok,
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "system:serviceaccount:x:reader");

    // The same through a kubeconfig user, and with a token the library issues.
    env.add_token_context("reader", "k1", &token, "x").await;
    let r = env
        .kubectl(&[
            "--context",
            "reader",
            "auth",
            "can-i",
            "list",
            "cassandraclusters",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "yes\n");
    let r = env
        .kubectl(&[
            "--context",
            "reader",
            "auth",
            "can-i",
            "create",
            "cassandraclusters",
        ])
        .await
        .fails(1);
    assert_eq!(r.stdout, "no\n");
    let issued = env.cluster("k1").issue_token("x", "reader", None);
    env.add_token_context("issued", "k1", &issued, "x").await;
    let r = env
        .kubectl(&[
            "--context",
            "issued",
            "auth",
            "can-i",
            "watch",
            "cassandraclusters",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "yes\n");

    // A token the cluster does not know: 401 before any RBAC.
    let r = env
        .kubectl(&["auth", "can-i", "list", "pods", "--token=not-a-token"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: You must be logged in to the server (Unauthorized)\n"
    );
    // Deleting the service account invalidates its TokenRequest tokens.
    env.kubectl(&["delete", "serviceaccount", "reader", "-n", "x"])
        .await
        .ok();
    let r = env
        .kubectl(&[
            "--context",
            "reader",
            "auth",
            "can-i",
            "list",
            "cassandraclusters",
        ])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "error: You must be logged in to the server (Unauthorized)\n"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_and_diff() {
    let env = with_widgets().await;
    let w = env.file("w.yaml", &widget_yaml("default", "w1", 3));
    let w = w.to_str().unwrap();
    let r = env.kubectl(&["apply", "--server-side", "-f", w]).await.ok();
    assert_eq!(r.stdout, "widget.example.com/w1 serverside-applied\n");
    let r = env.kubectl(&["apply", "--server-side", "-f", w]).await.ok();
    assert_eq!(r.stdout, "widget.example.com/w1 serverside-applied\n");
    // Nothing to change: kubectl diff prints nothing and exits 0 (the dry-run patch's empty
    // `annotations: {}` must not show up as a change).
    let r = env.kubectl(&["diff", "-f", w]).await.ok();
    assert_eq!(r.stdout, "");
    let r = env.kubectl(&["diff", "--server-side", "-f", w]).await.ok();
    assert_eq!(r.stdout, "");

    // Another manager changing the field kubectl owns: 409 conflict, then forced.
    env.file("w.yaml", &widget_yaml("default", "w1", 4));
    let r = env
        .kubectl(&["apply", "--server-side", "--field-manager=other", "-f", w])
        .await
        .fails(1);
    assert!(
        r.stderr.starts_with(
            "error: Apply failed with 1 conflict: conflict with \"kubectl\": .spec.size\n"
        ),
        "{r:#?}"
    );
    let r = env.kubectl(&["diff", "-f", w]).await.fails(1);
    assert!(r.stdout.contains("\n-  size: 3\n+  size: 4\n"), "{r:#?}");
    assert!(
        r.stdout.contains("\n-  generation: 1\n+  generation: 2\n"),
        "{r:#?}"
    );
    let r = env
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            w,
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "widget.example.com/w1 serverside-applied\n");
    let obj = env
        .kubectl(&["get", "wd", "w1", "-o", "json", "--show-managed-fields"])
        .await
        .ok()
        .json();
    assert_eq!(obj["spec"]["size"], 4);
    let managers: Vec<&str> = obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"other"), "{managers:?}");
    // Dry runs write nothing.
    env.file("w.yaml", &widget_yaml("default", "w1", 5));
    let r = env
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--dry-run=server",
            "-f",
            w,
        ])
        .await
        .ok();
    assert_eq!(
        r.stdout,
        "widget.example.com/w1 serverside-applied (server dry run)\n"
    );
    let r = env
        .kubectl(&["get", "wd", "w1", "-o", "jsonpath={.spec.size}"])
        .await
        .ok();
    assert_eq!(r.stdout, "4");
    // create of something that exists.
    let r = env.kubectl(&["create", "-f", w]).await.fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (AlreadyExists): error when creating \"{w}\": widgets.example.com \"w1\" already exists\n"
        )
    );
    let r = env.kubectl(&["delete", "-f", w]).await.ok();
    assert_eq!(r.stdout, "widget.example.com \"w1\" deleted\n");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_the_objects_events() {
    let env = with_widgets().await;
    env.kubectl_stdin(&["apply", "-f", "-"], &widget_yaml("default", "w1", 4))
        .await
        .ok();
    let uid = env
        .kubectl(&["get", "wd", "w1", "-o", "jsonpath={.metadata.uid}"])
        .await
        .ok()
        .stdout;
    let event = format!(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: w1.ev1\n  namespace: default\ninvolvedObject:\n  apiVersion: example.com/v1\n  kind: Widget\n  name: w1\n  namespace: default\n  uid: {uid}\nreason: Scaled\nmessage: scaled to 4\ntype: Normal\nsource:\n  component: widget-controller\nfirstTimestamp: \"2020-01-01T00:00:00Z\"\nlastTimestamp: \"2020-01-01T00:00:00Z\"\ncount: 1\n"
    );
    let r = env.kubectl_stdin(&["create", "-f", "-"], &event).await.ok();
    assert_eq!(r.stdout, "event/w1.ev1 created\n");
    // describe lists the object's events with a field selector on involvedObject.*.
    let r = env.kubectl(&["describe", "wd", "w1"]).await.ok();
    assert!(
        r.stdout
            .starts_with("Name:         w1\nNamespace:    default\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\nSpec:\n  Size:  4\n"), "{}", r.stdout);
    let events = r
        .stdout
        .split("\nEvents:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Events section: {}", r.stdout));
    let rows: Vec<Vec<&str>> = events
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["Type", "Reason", "Age", "From", "Message"]);
    assert_eq!(rows[2][..2], ["Normal", "Scaled"]);
    assert_eq!(rows[2][3..], ["widget-controller", "scaled", "to", "4"]);
    let r = env
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=Widget,reason=Scaled",
            "-o",
            "name",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "event/w1.ev1\n");
    let r = env
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=other",
            "-o",
            "name",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "");
    // A secret: describe prints sizes, never values.
    env.kubectl(&["create", "secret", "generic", "s1", "--from-literal=a=bb"])
        .await
        .ok();
    let r = env.kubectl(&["describe", "secret", "s1"]).await.ok();
    assert!(
        r.stdout
            .contains("\nType:  Opaque\n\nData\n====\na:  2 bytes\n"),
        "{}",
        r.stdout
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resource_without_status_subresource() {
    // CassandraCluster as CassKop defines it: no status subresource, so status is written on the
    // main resource and moves metadata.generation like any change outside metadata.
    let env = Env::start(&["k1"]).await;
    let crd = env.file("cass.yaml", CASSANDRA_CRD);
    env.kubectl(&["apply", "-f", crd.to_str().unwrap()])
        .await
        .ok();
    let cc = "apiVersion: db.orange.com/v2\nkind: CassandraCluster\nmetadata:\n  name: c1\nspec:\n  nodesPerRacks: 1\n";
    let r = env.kubectl_stdin(&["apply", "-f", "-"], cc).await.ok();
    assert_eq!(r.stdout, "cassandracluster.db.orange.com/c1 created\n");
    let r = env
        .kubectl(&[
            "patch",
            "cassc",
            "c1",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"phase":"Running"}}"#,
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "cassandracluster.db.orange.com/c1 patched\n");
    let r = env
        .kubectl(&[
            "get",
            "cassc",
            "c1",
            "-o",
            "jsonpath={.metadata.generation} {.status.phase}",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "2 Running");
    // Metadata-only changes leave generation alone.
    env.kubectl(&["label", "cassc", "c1", "team=db"]).await.ok();
    let r = env
        .kubectl(&[
            "get",
            "cassc",
            "c1",
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "2");
    // There is no status subresource to patch.
    let r = env
        .kubectl(&[
            "patch",
            "cassc",
            "c1",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            r#"{"status":{"phase":"X"}}"#,
        ])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        "Error from server (NotFound): the server could not find the requested resource\n"
    );
    // Without printer columns: NAME and AGE.
    let r = env.kubectl(&["get", "cassandraclusters"]).await.ok();
    assert_eq!(r.table()[0], ["NAME", "AGE"]);
    assert_eq!(r.table()[1][0], "c1");
    // Unknown fields are kept (x-kubernetes-preserve-unknown-fields).
    env.kubectl(&[
        "patch",
        "cassc",
        "c1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"topology":{"dc":[{"name":"dc1"}]}}}"#,
    ])
    .await
    .ok();
    let r = env
        .kubectl(&[
            "get",
            "cassc",
            "c1",
            "-o",
            "jsonpath={.spec.topology.dc[0].name}",
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "dc1");
    env.shutdown().await;
}
