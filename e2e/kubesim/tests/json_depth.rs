//! Request bodies nest as deep as kube-apiserver allows: its JSON decoder (Go's encoding/json
//! scanner, forked in sigs.k8s.io/json) takes 10,000 levels and refuses the next with a 400
//! "invalid character '{' exceeded max depth"; serde_json's default limit (128) is not the server's.
mod support;

use serde::Deserialize;
use serde_json::Value;
use support::{Env, WIDGET_CRD, assert_status, raw};

const JSON: Option<&str> = Some("application/json");
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";

fn widget(name: &str, depth: usize) -> String {
    let nested = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    format!(
        r#"{{"apiVersion":"example.com/v1","kind":"Widget","metadata":{{"name":"{name}"}},"spec":{{"deep":{nested}}}}}"#
    )
}

/// How many `a` levels `spec.deep` of a widget holds.
fn deep_levels(v: &Value) -> usize {
    let mut at = &v["spec"]["deep"];
    let mut n = 0;
    while let Some(next) = at.get("a") {
        at = next;
        n += 1;
    }
    n
}

fn parse_unbounded(bytes: &[u8]) -> Value {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    Value::deserialize(&mut de).expect("the answer is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_nesting_200_deep_are_stored_and_served_back() {
    let env = Env::start(&["k1"]).await;
    let client = env.cluster("k1").client().await;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let a = raw(
        &client,
        "POST",
        crds,
        Some("application/yaml"),
        WIDGET_CRD.into(),
    )
    .await;
    assert_eq!(a.code, 201, "{}", a.text());

    let a = raw(&client, "POST", WIDGETS, JSON, widget("deep", 200).into()).await;
    assert_eq!(a.code, 201, "{}", a.text());
    let got = raw(&client, "GET", &format!("{WIDGETS}/deep"), None, vec![]).await;
    assert_eq!(got.code, 200);
    assert_eq!(deep_levels(&parse_unbounded(&got.body)), 200);
    let list = raw(&client, "GET", WIDGETS, None, vec![]).await;
    assert_eq!(list.code, 200);
    assert_eq!(deep_levels(&parse_unbounded(&list.body)["items"][0]), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_nesting_past_10000_levels_are_refused_as_kube_apiserver_does() {
    let env = Env::start(&["k1"]).await;
    let client = env.cluster("k1").client().await;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let a = raw(
        &client,
        "POST",
        crds,
        Some("application/yaml"),
        WIDGET_CRD.into(),
    )
    .await;
    assert_eq!(a.code, 201, "{}", a.text());

    // The document's root and spec are two levels, spec.deep's 9,999 make 10,001.
    let body = widget("too-deep", 9_999);
    let a = raw(&client, "POST", WIDGETS, JSON, body.clone().into()).await;
    let msg = assert_status(&a.json(), 400, "BadRequest");
    assert_eq!(
        msg,
        format!(
            "the object provided is unrecognized (must be of type Widget): couldn't get \
             version/kind; json parse error: invalid character '{{' exceeded max depth ({} ...)",
            &body[..30]
        )
    );
    let gone = raw(&client, "GET", &format!("{WIDGETS}/too-deep"), None, vec![]).await;
    assert_eq!(gone.code, 404, "a refused body was stored: {}", gone.text());
}
