//! A service account allowed get/list/watch on cassandraclusters in one namespace can do exactly that, through kubectl and kube-rs; everything else is 403 with kube-apiserver's message.
mod support;

use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kubesim::fixtures::CASSANDRA_CRD_YAML as CASSANDRA_CRD;
use serde_json::json;
use support::Env;

const SA: &str = "system:serviceaccount:x:reader";

fn cass_yaml(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: db.orange.com/v2\nkind: CassandraCluster\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  nodesPerRacks: 1\n"
    )
}

fn cass_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("db.orange.com", "v2", "CassandraCluster"),
        "cassandraclusters",
    )
}

/// kube-apiserver's forbidden message (RBAC authorizer + `forbidden` responsewriter) for a namespaced request.
fn forbidden(
    verb: &str,
    resource: &str,
    group: &str,
    name: Option<&str>,
    ns: Option<&str>,
) -> String {
    let gr = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let subject = match name {
        Some(n) => format!("{gr} \"{n}\""),
        None => gr,
    };
    let scope = match ns {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    format!(
        "{subject} is forbidden: User \"{SA}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
    )
}

/// Namespaces x and other (not "y": YAML 1.1 reads it as a bool) with one CassandraCluster each, a secret in x, the SA x/reader bound to a Role
/// allowing get/list/watch on cassandraclusters in x only.
async fn setup() -> Env {
    let env = Env::start(&["k1"]).await;
    let crd = env.file("cass.yaml", CASSANDRA_CRD);
    env.kubectl(&["apply", "-f", crd.to_str().unwrap()])
        .await
        .ok();
    for ns in ["x", "other"] {
        env.kubectl(&["create", "namespace", ns]).await.ok();
        env.kubectl_stdin(&["apply", "-f", "-"], &cass_yaml(ns, &format!("c-{ns}")))
            .await
            .ok();
    }
    env.kubectl(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "x",
        "--from-literal=a=b",
    ])
    .await
    .ok();
    env.kubectl(&["create", "serviceaccount", "reader", "-n", "x"])
        .await
        .ok();
    let role = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: cass-reader
  namespace: x
rules:
- apiGroups: ["db.orange.com"]
  resources: ["cassandraclusters"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: cass-reader
  namespace: x
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: cass-reader
subjects:
- kind: ServiceAccount
  name: reader
  namespace: x
"#;
    let r = env.kubectl_stdin(&["apply", "-f", "-"], role).await.ok();
    assert_eq!(
        r.stdout,
        "role.rbac.authorization.k8s.io/cass-reader created\nrolebinding.rbac.authorization.k8s.io/cass-reader created\n"
    );
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_through_kubectl() {
    let env = setup().await;
    let token = env
        .kubectl(&["create", "token", "reader", "-n", "x"])
        .await
        .ok()
        .stdout
        .trim()
        .to_string();
    env.add_token_context("reader", "k1", &token, "x").await;
    let k = |args: &[&str]| {
        let mut a = vec!["--context", "reader"];
        a.extend_from_slice(args);
        let a: Vec<String> = a.into_iter().map(String::from).collect();
        let env = &env;
        async move {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            env.kubectl(&a).await
        }
    };

    // Allowed: get, list, watch in x.
    let r = k(&[
        "get",
        "cassandraclusters",
        "c-x",
        "-o",
        "jsonpath={.metadata.name}",
    ])
    .await
    .ok();
    assert_eq!(r.stdout, "c-x");
    let r = k(&["get", "cassc", "-o", "name"]).await.ok();
    assert_eq!(r.stdout, "cassandracluster.db.orange.com/c-x\n");
    // kubectl wait lists and watches: it sees a later change made by the admin.
    let waiter = {
        let kubectl = env.kubectl_runner();
        tokio::spawn(async move {
            kubectl
                .run(&[
                    "--context",
                    "reader",
                    "wait",
                    "cassc/c-x",
                    "--for=jsonpath={.spec.nodesPerRacks}=3",
                    "--timeout=60s",
                ])
                .await
        })
    };
    env.kubectl(&[
        "patch",
        "cassc",
        "c-x",
        "-n",
        "x",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"nodesPerRacks":3}}"#,
    ])
    .await
    .ok();
    let r = waiter.await.unwrap().ok();
    assert_eq!(
        r.stdout,
        "cassandracluster.db.orange.com/c-x condition met\n"
    );
    assert!(
        env.sim.audit().iter().any(|e| e.user == SA
            && e.verb == "watch"
            && e.resource == "cassandraclusters"
            && e.code == 200),
        "the reader's watch is in the audit log"
    );

    // Denied: create, patch, delete in x.
    let r = env
        .kubectl_stdin(
            &["--context", "reader", "create", "-f", "-"],
            &cass_yaml("x", "new"),
        )
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): error when creating \"STDIN\": {}\n",
            forbidden(
                "create",
                "cassandraclusters",
                "db.orange.com",
                None,
                Some("x")
            )
        )
    );
    let r = k(&[
        "patch",
        "cassc",
        "c-x",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"nodesPerRacks":5}}"#,
    ])
    .await
    .fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): {}\n",
            forbidden(
                "patch",
                "cassandraclusters",
                "db.orange.com",
                Some("c-x"),
                Some("x")
            )
        )
    );
    let r = k(&["delete", "cassc", "c-x"]).await.fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): {}\n",
            forbidden(
                "delete",
                "cassandraclusters",
                "db.orange.com",
                Some("c-x"),
                Some("x")
            )
        )
    );
    // Denied: another namespace, all namespaces.
    let r = k(&["get", "cassc", "c-other", "-n", "other"])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): {}\n",
            forbidden(
                "get",
                "cassandraclusters",
                "db.orange.com",
                Some("c-other"),
                Some("other")
            )
        )
    );
    let r = k(&["get", "cassc", "-n", "other"]).await.fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): {}\n",
            forbidden(
                "list",
                "cassandraclusters",
                "db.orange.com",
                None,
                Some("other")
            )
        )
    );
    let r = k(&["get", "cassc", "-A"]).await.fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): {}\n",
            forbidden("list", "cassandraclusters", "db.orange.com", None, None)
        )
    );
    // Denied: secrets, even in x.
    let r = k(&["get", "secret", "s"]).await.fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): {}\n",
            forbidden("get", "secrets", "", Some("s"), Some("x"))
        )
    );
    let r = k(&["get", "secrets"]).await.fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): {}\n",
            forbidden("list", "secrets", "", None, Some("x"))
        )
    );
    let r = env
        .kubectl(&[
            "--context",
            "reader",
            "create",
            "secret",
            "generic",
            "t",
            "--from-literal=a=b",
        ])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "error: failed to create secret {}\n",
            forbidden("create", "secrets", "", None, Some("x"))
        )
    );
    // Nothing was written by the reader.
    let writes: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| {
            e.user == SA && e.code < 300 && !["get", "list", "watch"].contains(&e.verb.as_str())
        })
        .collect();
    assert!(writes.iter().all(|e| e.resource == "selfsubjectaccessreviews" || e.resource == "selfsubjectreviews"), "{writes:#?}");
    assert_eq!(
        env.kubectl(&[
            "get",
            "cassc",
            "c-x",
            "-n",
            "x",
            "-o",
            "jsonpath={.spec.nodesPerRacks}"
        ])
        .await
        .ok()
        .stdout,
        "3"
    );

    // Removing the binding takes the access away at once.
    env.kubectl(&["delete", "rolebinding", "cass-reader", "-n", "x"])
        .await
        .ok();
    let r = k(&["get", "cassc", "c-x"]).await.fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): {}\n",
            forbidden(
                "get",
                "cassandraclusters",
                "db.orange.com",
                Some("c-x"),
                Some("x")
            )
        )
    );
    // A RoleBinding to a ClusterRole grants it within x only.
    env.kubectl(&[
        "create",
        "clusterrole",
        "cass-view",
        "--verb=get,list,watch",
        "--resource=cassandraclusters.db.orange.com",
    ])
    .await
    .ok();
    env.kubectl(&[
        "create",
        "rolebinding",
        "via-cr",
        "-n",
        "x",
        "--clusterrole=cass-view",
        "--serviceaccount=x:reader",
    ])
    .await
    .ok();
    k(&["get", "cassc", "c-x"]).await.ok();
    k(&["get", "cassc", "c-other", "-n", "other"])
        .await
        .fails(1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_through_kube_rs() {
    let env = setup().await;
    let admin = env.cluster("k1").client().await;
    // A token from a service-account token Secret, filled in by the simulated token controller.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(admin.clone(), "x");
    let sec: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "reader-token", "annotations": {"kubernetes.io/service-account.name": "reader"}},
        "type": "kubernetes.io/service-account-token"
    }))
    .unwrap();
    let sec = secrets
        .create(&PostParams::default(), &sec)
        .await
        .expect("token secret created");
    let token = String::from_utf8(
        sec.data
            .as_ref()
            .and_then(|d| d.get("token"))
            .expect("token filled in")
            .0
            .clone(),
    )
    .unwrap();
    let reader = env.cluster("k1").client_with_token(&token).await.unwrap();

    let ar = cass_resource();
    let in_x: Api<DynamicObject> = Api::namespaced_with(reader.clone(), "x", &ar);
    let in_other: Api<DynamicObject> = Api::namespaced_with(reader.clone(), "other", &ar);
    let all: Api<DynamicObject> = Api::all_with(reader.clone(), &ar);

    // Allowed.
    let c = in_x.get("c-x").await.expect("get in x");
    assert_eq!(c.data["spec"]["nodesPerRacks"], 1);
    let list = in_x.list(&ListParams::default()).await.expect("list in x");
    assert_eq!(
        list.items
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["c-x"]
    );
    let rv = list.metadata.resource_version.clone().unwrap();
    let mut stream = in_x
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch in x")
        .boxed();
    let admin_x: Api<DynamicObject> = Api::namespaced_with(admin.clone(), "x", &ar);
    admin_x
        .patch(
            "c-x",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"nodesPerRacks": 2}})),
        )
        .await
        .unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(60), stream.try_next());
    match next
        .await
        .expect("an event within 60 s")
        .expect("watch stream")
    {
        Some(WatchEvent::Modified(o)) => assert_eq!(o.data["spec"]["nodesPerRacks"], 2),
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    let denied = |r: Result<DynamicObject, kube::Error>| match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected a 403, got {other:?}"),
    };
    let check =
        |s: kube::core::Status, msg: String, name: Option<&str>, group: &str, kind: &str| {
            assert_eq!(s.code, 403, "{s:?}");
            assert_eq!(s.reason, "Forbidden", "{s:?}");
            assert_eq!(s.message, msg);
            let d = s.details.expect("403 carries details");
            assert_eq!(d.name, name.unwrap_or(""));
            assert_eq!(d.group, group);
            assert_eq!(d.kind, kind);
        };
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "db.orange.com/v2", "kind": "CassandraCluster", "metadata": {"name": "new"}, "spec": {}
    }))
    .unwrap();
    let s = denied(in_x.create(&PostParams::default(), &obj).await);
    check(
        s,
        forbidden(
            "create",
            "cassandraclusters",
            "db.orange.com",
            None,
            Some("x"),
        ),
        None,
        "db.orange.com",
        "cassandraclusters",
    );
    let s = denied(
        in_x.patch("c-x", &PatchParams::apply("reader"), &Patch::Apply(&obj))
            .await,
    );
    check(
        s,
        forbidden(
            "patch",
            "cassandraclusters",
            "db.orange.com",
            Some("c-x"),
            Some("x"),
        ),
        Some("c-x"),
        "db.orange.com",
        "cassandraclusters",
    );
    let s = denied(in_x.replace("c-x", &PostParams::default(), &c).await);
    check(
        s,
        forbidden(
            "update",
            "cassandraclusters",
            "db.orange.com",
            Some("c-x"),
            Some("x"),
        ),
        Some("c-x"),
        "db.orange.com",
        "cassandraclusters",
    );
    let s = denied(in_other.get("c-other").await);
    check(
        s,
        forbidden(
            "get",
            "cassandraclusters",
            "db.orange.com",
            Some("c-other"),
            Some("other"),
        ),
        Some("c-other"),
        "db.orange.com",
        "cassandraclusters",
    );
    match in_other.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => check(
            *s,
            forbidden(
                "list",
                "cassandraclusters",
                "db.orange.com",
                None,
                Some("other"),
            ),
            None,
            "db.orange.com",
            "cassandraclusters",
        ),
        other => panic!("expected a 403, got {other:?}"),
    }
    match all.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => check(
            *s,
            forbidden("list", "cassandraclusters", "db.orange.com", None, None),
            None,
            "db.orange.com",
            "cassandraclusters",
        ),
        other => panic!("expected a 403, got {other:?}"),
    }
    match in_other.watch(&WatchParams::default(), "0").await {
        Err(kube::Error::Api(s)) => check(
            *s,
            forbidden(
                "watch",
                "cassandraclusters",
                "db.orange.com",
                None,
                Some("other"),
            ),
            None,
            "db.orange.com",
            "cassandraclusters",
        ),
        Err(e) => panic!("expected a 403, got {e:?}"),
        Ok(_) => panic!("expected a 403, the watch started"),
    }
    let reader_secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(reader.clone(), "x");
    match reader_secrets.get("s").await {
        Err(kube::Error::Api(s)) => check(
            *s,
            forbidden("get", "secrets", "", Some("s"), Some("x")),
            Some("s"),
            "",
            "secrets",
        ),
        other => panic!("expected a 403, got {other:?}"),
    }
    match reader_secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => check(
            *s,
            forbidden("list", "secrets", "", None, Some("x")),
            None,
            "",
            "secrets",
        ),
        other => panic!("expected a 403, got {other:?}"),
    }
    // The token Secret going away revokes its token: 401.
    secrets
        .delete("reader-token", &Default::default())
        .await
        .unwrap();
    match in_x.get("c-x").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(
                (s.code, s.reason.as_str(), s.message.as_str()),
                (401, "Unauthorized", "Unauthorized"),
                "{s:?}"
            );
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    let denied_entries: Vec<_> = env
        .sim
        .audit()
        .into_iter()
        .filter(|e| e.user == SA && e.code == 403)
        .map(|e| e.verb)
        .collect();
    assert_eq!(
        denied_entries,
        [
            "create", "patch", "update", "get", "list", "list", "watch", "get", "list"
        ]
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonating_the_reader_through_kubectl() {
    // kubectl --as: the admin may impersonate, and the request is then judged as the service account.
    let env = setup().await;
    let r = env
        .kubectl(&[
            "auth",
            "can-i",
            "list",
            "cassandraclusters",
            "-n",
            "x",
            &format!("--as={SA}"),
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "yes\n");
    let r = env
        .kubectl(&[
            "auth",
            "can-i",
            "create",
            "cassandraclusters",
            "-n",
            "x",
            &format!("--as={SA}"),
        ])
        .await
        .fails(1);
    assert_eq!(r.stdout, "no\n");
    let r = env
        .kubectl(&[
            "get",
            "cassc",
            "-n",
            "x",
            "-o",
            "name",
            &format!("--as={SA}"),
        ])
        .await
        .ok();
    assert_eq!(r.stdout, "cassandracluster.db.orange.com/c-x\n");
    let r = env
        .kubectl(&["get", "secrets", "-n", "x", &format!("--as={SA}")])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): {}\n",
            forbidden("list", "secrets", "", None, Some("x"))
        )
    );
    let r = env
        .kubectl(&["auth", "whoami", &format!("--as={SA}"), "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        r["status"]["userInfo"],
        json!({"username": SA, "groups": ["system:serviceaccounts", "system:serviceaccounts:x", "system:authenticated"]})
    );
    let r = env
        .kubectl(&[
            "auth",
            "whoami",
            "--as=jane",
            "--as-group=devs",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(
        r["status"]["userInfo"],
        json!({"username": "jane", "groups": ["devs", "system:authenticated"]})
    );
    // The reader itself may not impersonate anyone.
    let token = env
        .kubectl(&["create", "token", "reader", "-n", "x"])
        .await
        .ok()
        .stdout
        .trim()
        .to_string();
    let r = env
        .kubectl(&[
            "get",
            "cassc",
            "-n",
            "x",
            &format!("--token={token}"),
            "--as=jane",
        ])
        .await
        .fails(1);
    assert_eq!(
        r.stderr,
        format!(
            "Error from server (Forbidden): users \"jane\" is forbidden: User \"{SA}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope\n"
        )
    );
    let audited = env.sim.audit();
    assert!(
        audited
            .iter()
            .any(|e| e.user == SA && e.resource == "secrets" && e.code == 403),
        "the impersonated identity is audited"
    );
    env.shutdown().await;
}

/// kube-apiserver authorizes a list or watch whose fieldSelector pins `metadata.name` as a
/// request for that name: a Role limited by `resourceNames` allows exactly those, and the
/// audit log names the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_names_allow_a_list_and_watch_pinned_to_that_name() {
    let env = Env::start(&["k1"]).await;
    env.kubectl(&["create", "namespace", "x"]).await.ok();
    for name in ["mine", "other"] {
        env.kubectl(&[
            "create",
            "secret",
            "generic",
            name,
            "-n",
            "x",
            "--from-literal=a=b",
        ])
        .await
        .ok();
    }
    env.kubectl(&["create", "serviceaccount", "reader", "-n", "x"])
        .await
        .ok();
    let role = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: one-secret, namespace: x}
rules:
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: ["mine"]
  verbs: ["list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: one-secret, namespace: x}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: one-secret}
subjects: [{kind: ServiceAccount, name: reader, namespace: x}]
"#;
    env.kubectl_stdin(&["apply", "-f", "-"], role).await.ok();
    let token = env.cluster("k1").issue_token("x", "reader", None);
    let reader = env.cluster("k1").client_with_token(&token).await.unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(reader, "x");

    let mine = secrets
        .list(&ListParams::default().fields("metadata.name=mine"))
        .await
        .expect("a list pinned to the granted name");
    assert_eq!(mine.items.len(), 1);
    let rv = mine.metadata.resource_version.clone().unwrap();
    let watch = secrets
        .watch(
            &WatchParams::default()
                .fields("metadata.name=mine")
                .timeout(1),
            &rv,
        )
        .await;
    assert!(watch.is_ok(), "a watch pinned to the granted name");
    for (params, what) in [
        (ListParams::default(), "every secret"),
        (
            ListParams::default().fields("metadata.name=other"),
            "another name",
        ),
        (
            ListParams::default().fields("metadata.name!=other"),
            "a negated name",
        ),
    ] {
        let err = secrets.list(&params).await.expect_err(what);
        assert!(
            matches!(&err, kube::Error::Api(s) if s.code == 403),
            "{what}: {err}"
        );
    }
    let audited: Vec<(String, String, u16)> = env
        .cluster("k1")
        .audit()
        .into_iter()
        .filter(|e| e.user == SA && e.resource == "secrets")
        .map(|e| (e.verb, e.name, e.code))
        .collect();
    assert_eq!(
        audited[..3],
        [
            ("list".to_string(), "mine".to_string(), 200),
            ("watch".to_string(), "mine".to_string(), 200),
            ("list".to_string(), String::new(), 403),
        ],
        "{audited:?}"
    );
}
