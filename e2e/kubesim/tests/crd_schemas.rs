//! CRD structural schemas enforced as kube-apiserver does, seen through the real kubectl: validation (422 with
//! kube's wording), pruning, defaulting, versions, the status subresource, dry-run and `fieldValidation`,
//! with CassKop's and k8ssandra's real CRDs (from `../shared/upstream`, skipped when absent) and small ones.
mod support;

use support::Env;

/// The text of `../shared/upstream/<file>`, or None (after saying why the test skips).
fn upstream(file: &str) -> Option<String> {
    let path = kubesim::fixtures::upstream_file(file)?;
    Some(std::fs::read_to_string(path).expect("readable upstream file"))
}

/// A cluster with CassKop's real CassandraCluster CRD applied by kubectl.
async fn casskop_env() -> Option<Env> {
    let crd = upstream("casskop-cassandraclusters-crd.yaml")?;
    let env = Env::start(&["c1"]).await;
    env.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &crd)
        .await
        .ok();
    env.kubectl(&[
        "wait",
        "--for=condition=established",
        "crd/cassandraclusters.db.orange.com",
        "--timeout=30s",
    ])
    .await
    .ok();
    Some(env)
}

fn cc(api_version: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: db.orange.com/{api_version}\nkind: CassandraCluster\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n{spec}"
    )
}

async fn get_json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    env.kubectl(&a).await.ok().json()
}

#[tokio::test]
async fn a_string_for_nodes_per_racks_is_refused_with_kubes_422_message() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let run = env
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &cc("v2", "x", "  nodesPerRacks: \"abc\"\n"),
        )
        .await
        .fails(1);
    assert!(
        run.stderr.contains(
            "The CassandraCluster \"x\" is invalid: spec.nodesPerRacks: Invalid value: \"string\": spec.nodesPerRacks in body must be of type integer: \"string\""
        ),
        "{run:#?}"
    );
    let gone = env
        .kubectl(&["get", "cassandracluster", "x"])
        .await
        .fails(1);
    assert!(gone.stderr.contains("NotFound"), "{gone:#?}");
}

#[tokio::test]
async fn the_422_status_carries_kind_group_and_one_cause_per_field() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let client = env.cluster("c1").client().await;
    let body = serde_json::json!({"apiVersion": "db.orange.com/v2", "kind": "CassandraCluster",
        "metadata": {"name": "x"}, "spec": {"nodesPerRacks": "abc", "serverType": "scylla"}});
    let r = support::raw(
        &client,
        "POST",
        "/apis/db.orange.com/v2/namespaces/default/cassandraclusters",
        Some("application/json"),
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(r.code, 422);
    let s = r.json();
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["details"]["group"], "db.orange.com");
    assert_eq!(s["details"]["kind"], "CassandraCluster");
    assert_eq!(s["details"]["name"], "x");
    assert_eq!(
        s["message"],
        "CassandraCluster.db.orange.com \"x\" is invalid: [spec.nodesPerRacks: Invalid value: \"string\": spec.nodesPerRacks in body must be of type integer: \"string\", spec.serverType: Unsupported value: \"scylla\": supported values: \"cassandra\", \"dse\"]"
    );
    assert_eq!(
        s["details"]["causes"],
        serde_json::json!([
            {"reason": "FieldValueTypeInvalid", "field": "spec.nodesPerRacks",
             "message": "Invalid value: \"string\": spec.nodesPerRacks in body must be of type integer: \"string\""},
            {"reason": "FieldValueNotSupported", "field": "spec.serverType",
             "message": "Unsupported value: \"scylla\": supported values: \"cassandra\", \"dse\""}
        ])
    );
}

#[tokio::test]
async fn a_typo_in_a_dc_and_an_unknown_status_field_are_pruned() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let doc = format!(
        "{}status:\n  phase: Pending\n  bogus: 1\n",
        cc(
            "v2",
            "typo",
            "  nodesPerRacks: 1\n  somethingNew: kept\n  topology:\n    dc:\n    - name: dc1\n      nodesPerRack: 3\n      rack:\n      - name: r1\n        nodesPerRack: 2\n"
        )
    );
    env.kubectl_stdin(&["apply", "--validate=false", "-f", "-"], &doc)
        .await
        .ok();
    let o = get_json(&env, &["cassandracluster", "typo"]).await;
    assert_eq!(
        o["spec"]["topology"]["dc"][0],
        serde_json::json!({"name": "dc1", "rack": [{"name": "r1"}]})
    );
    assert_eq!(
        o["status"],
        serde_json::json!({"phase": "Pending"}),
        "{o:#}"
    );
    // spec itself preserves unknown fields in CassKop's v2 schema.
    assert_eq!(o["spec"]["somethingNew"], "kept");
}

#[tokio::test]
async fn casskop_schema_defaults_are_filled_in() {
    let Some(env) = casskop_env().await else {
        return;
    };
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &cc("v2", "d", "  nodesPerRacks: 1\n"),
    )
    .await
    .ok();
    let o = get_json(&env, &["cassandracluster", "d"]).await;
    assert_eq!(o["spec"]["runAsUser"], 999);
    assert_eq!(o["spec"]["fsGroup"], 1);
    assert_eq!(o["spec"]["serverType"], "cassandra");
}

#[tokio::test]
async fn defaults_inside_array_items_fill_each_item() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let spec = "  sidecarConfigs:\n  - name: s\n    image: busybox\n    ports:\n    - containerPort: 80\n    - containerPort: 81\n      protocol: UDP\n";
    env.kubectl_stdin(&["apply", "-f", "-"], &cc("v2", "ports", spec))
        .await
        .ok();
    let o = get_json(&env, &["cassandracluster", "ports"]).await;
    let ports = &o["spec"]["sidecarConfigs"][0]["ports"];
    assert_eq!(ports[0]["protocol"], "TCP");
    assert_eq!(ports[1]["protocol"], "UDP");
}

#[tokio::test]
async fn an_unknown_server_type_is_refused_with_the_supported_values() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let run = env
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &cc("v2", "e", "  serverType: scylla\n"),
        )
        .await
        .fails(1);
    assert!(
        run.stderr.contains(
            "The CassandraCluster \"e\" is invalid: spec.serverType: Unsupported value: \"scylla\": supported values: \"cassandra\", \"dse\""
        ),
        "{run:#?}"
    );
}

#[tokio::test]
async fn a_dc_name_against_the_pattern_is_refused() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let run = env
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &cc("v2", "p", "  topology:\n    dc:\n    - name: dc-1\n"),
        )
        .await
        .fails(1);
    assert!(
        run.stderr.contains(
            "spec.topology.dc[0].name: Invalid value: \"dc-1\": spec.topology.dc[0].name in body should match '^[^-]+$'"
        ),
        "{run:#?}"
    );
}

#[tokio::test]
async fn an_int32_field_above_two_to_the_31_is_accepted_as_kube_ignores_integer_formats() {
    let Some(env) = casskop_env().await else {
        return;
    };
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &cc("v2", "big", "  nodesPerRacks: 3000000000\n"),
    )
    .await
    .ok();
    let o = get_json(&env, &["cassandracluster", "big"]).await;
    assert_eq!(o["spec"]["nodesPerRacks"], 3000000000_i64);
}

#[tokio::test]
async fn v1alpha1_is_served_and_reads_back_through_v2_with_storage_defaults() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let out = env
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &cc("v1alpha1", "old", "  nodesPerRacks: 2\n"),
        )
        .await
        .ok();
    assert!(out.stdout.contains("created"), "{out:#?}");
    let v1 = get_json(&env, &["cassandraclusters.v1alpha1.db.orange.com", "old"]).await;
    assert_eq!(v1["apiVersion"], "db.orange.com/v1alpha1");
    let v2 = get_json(&env, &["cassandraclusters.v2.db.orange.com", "old"]).await;
    assert_eq!(v2["apiVersion"], "db.orange.com/v2");
    assert_eq!(v2["spec"]["nodesPerRacks"], 2);
    assert_eq!(v2["spec"]["runAsUser"], 999);
    // The storage version (v2) declares serverType's default; kube applies it on read.
    assert_eq!(v2["spec"]["serverType"], "cassandra");
    // v1alpha1's own schema is enforced on writes at v1alpha1.
    let run = env
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &cc("v1alpha1", "old2", "  nodesPerRacks: \"two\"\n"),
        )
        .await
        .fails(1);
    assert!(
        run.stderr
            .contains("spec.nodesPerRacks in body must be of type integer"),
        "{run:#?}"
    );
}

#[tokio::test]
async fn without_a_status_subresource_status_is_written_through_the_object_and_slash_status_is_404()
{
    let Some(env) = casskop_env().await else {
        return;
    };
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &format!(
            "{}status:\n  phase: Running\n",
            cc("v2", "s", "  nodesPerRacks: 1\n")
        ),
    )
    .await
    .ok();
    let o = get_json(&env, &["cassandracluster", "s"]).await;
    assert_eq!(o["status"]["phase"], "Running");
    let run = env
        .kubectl(&["get", "cassandracluster", "s", "--subresource=status"])
        .await
        .fails(1);
    assert!(
        run.stderr.contains("NotFound") || run.stderr.contains("not found"),
        "{run:#?}"
    );
}

#[tokio::test]
async fn server_dry_run_validates_and_defaults_but_stores_nothing() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let bad = env
        .kubectl_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            &cc("v2", "dry", "  nodesPerRacks: \"abc\"\n"),
        )
        .await
        .fails(1);
    assert!(
        bad.stderr
            .contains("spec.nodesPerRacks in body must be of type integer"),
        "{bad:#?}"
    );
    let good = env
        .kubectl_stdin(
            &["apply", "--dry-run=server", "-o", "json", "-f", "-"],
            &cc("v2", "dry", "  nodesPerRacks: 1\n"),
        )
        .await
        .ok()
        .json();
    assert_eq!(good["spec"]["serverType"], "cassandra");
    env.kubectl(&["get", "cassandracluster", "dry"])
        .await
        .fails(1);
}

#[tokio::test]
async fn kubectl_strict_field_validation_refuses_unknown_fields_naming_them() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let run = env
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &cc(
                "v2",
                "strict",
                "  topology:\n    dc:\n    - name: dc1\n      nodesPerRack: 3\n",
            ),
        )
        .await
        .fails(1);
    assert!(
        run.stderr.contains(
            "CassandraCluster in version \"v2\" cannot be handled as a CassandraCluster: strict decoding error: unknown field \"spec.topology.dc[0].nodesPerRack\""
        ),
        "{run:#?}"
    );
}

#[tokio::test]
async fn warn_field_validation_prunes_and_kubectl_prints_the_warning() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let run = env
        .kubectl_stdin(
            &["apply", "--validate=warn", "-f", "-"],
            &cc(
                "v2",
                "warn",
                "  topology:\n    dc:\n    - name: dc1\n      nodesPerRack: 3\n",
            ),
        )
        .await
        .ok();
    assert!(
        run.stderr
            .contains("Warning: unknown field \"spec.topology.dc[0].nodesPerRack\""),
        "{run:#?}"
    );
    let o = get_json(&env, &["cassandracluster", "warn"]).await;
    assert_eq!(
        o["spec"]["topology"]["dc"][0],
        serde_json::json!({"name": "dc1"})
    );
}

#[tokio::test]
async fn k8ssandra_clientconfig_crd_is_enforced() {
    let Some(crd) = upstream("k8ssandra-clientconfigs-crd.yaml") else {
        return;
    };
    let env = Env::start(&["c1"]).await;
    env.kubectl_stdin(&["apply", "-f", "-"], &crd).await.ok();
    env.kubectl(&[
        "wait",
        "--for=condition=established",
        "crd/clientconfigs.config.k8ssandra.io",
        "--timeout=30s",
    ])
    .await
    .ok();
    let doc = "apiVersion: config.k8ssandra.io/v1beta1\nkind: ClientConfig\nmetadata:\n  name: k8s-cluster2\n  namespace: default\nspec:\n  contextName: 5\n";
    let run = env.kubectl_stdin(&["apply", "-f", "-"], doc).await.fails(1);
    assert!(
        run.stderr.contains(
            "The ClientConfig \"k8s-cluster2\" is invalid: spec.contextName: Invalid value: \"integer\": spec.contextName in body must be of type string: \"integer\""
        ),
        "{run:#?}"
    );
    let ok = "apiVersion: config.k8ssandra.io/v1beta1\nkind: ClientConfig\nmetadata:\n  name: k8s-cluster2\n  namespace: default\nspec:\n  contextName: c2\n  kubeConfigSecret:\n    name: s\n  typo: 1\n";
    env.kubectl_stdin(&["apply", "--validate=false", "-f", "-"], ok)
        .await
        .ok();
    let o = get_json(&env, &["clientconfig", "k8s-cluster2"]).await;
    assert_eq!(
        o["spec"],
        serde_json::json!({"contextName": "c2", "kubeConfigSecret": {"name": "s"}})
    );
}

const GADGET_CRD: &str = r"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
              ratio: {type: number, maximum: 1.5, exclusiveMaximum: true}
              code: {type: string, minLength: 2, maxLength: 4}
              port: {x-kubernetes-int-or-string: true}
              note: {type: string, nullable: true}
              plain: {type: string}
              labels:
                type: object
                additionalProperties: {type: string}
              limits:
                type: object
                additionalProperties:
                  type: object
                  properties:
                    max: {type: integer}
              free:
                type: object
                x-kubernetes-preserve-unknown-fields: true
              when: {type: string, format: date-time}
              tags:
                type: array
                maxItems: 2
                items: {type: string}
          status:
            type: object
            properties:
              phase: {type: string}
";

async fn gadget_env() -> Env {
    let env = Env::start(&["c1"]).await;
    env.kubectl_stdin(&["apply", "-f", "-"], GADGET_CRD)
        .await
        .ok();
    env.kubectl(&[
        "wait",
        "--for=condition=established",
        "crd/gadgets.example.com",
        "--timeout=30s",
    ])
    .await
    .ok();
    env
}

fn gadget(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n{spec}"
    )
}

async fn refused(env: &Env, doc: &str) -> String {
    env.kubectl_stdin(&["apply", "-f", "-"], doc)
        .await
        .fails(1)
        .stderr
}

#[tokio::test]
async fn minimum_maximum_and_exclusive_bounds_use_kube_wording() {
    let env = gadget_env().await;
    let e = refused(&env, &gadget("g", "  size: 11\n  ratio: 1.5\n")).await;
    assert!(
        e.contains(
            "The Gadget \"g\" is invalid: \n* spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5\n* spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10\n"
        ),
        "{e}"
    );
    let e = refused(&env, &gadget("g", "  size: 0\n")).await;
    assert!(
        e.contains(
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
        ),
        "{e}"
    );
}

#[tokio::test]
async fn a_missing_required_field_is_a_required_value() {
    let env = gadget_env().await;
    let e = refused(&env, &gadget("g", "  code: ab\n")).await;
    assert!(
        e.contains("The Gadget \"g\" is invalid: spec.size: Required value"),
        "{e}"
    );
}

#[tokio::test]
async fn string_lengths_are_checked_in_characters() {
    let env = gadget_env().await;
    let e = refused(&env, &gadget("g", "  size: 1\n  code: a\n")).await;
    assert!(
        e.contains(
            "spec.code: Invalid value: \"a\": spec.code in body should be at least 2 chars long"
        ),
        "{e}"
    );
    let e = refused(&env, &gadget("g", "  size: 1\n  code: abcde\n")).await;
    assert!(
        e.contains("spec.code: Too long: may not be more than 4 bytes"),
        "{e}"
    );
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &gadget("g", "  size: 1\n  code: \"éééé\"\n"),
    )
    .await
    .ok();
}

#[tokio::test]
async fn int_or_string_takes_both_and_nothing_else() {
    let env = gadget_env().await;
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &gadget("a", "  size: 1\n  port: 8080\n"),
    )
    .await
    .ok();
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &gadget("b", "  size: 1\n  port: http\n"),
    )
    .await
    .ok();
    let e = refused(&env, &gadget("c", "  size: 1\n  port: true\n")).await;
    assert!(
        e.contains("spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""),
        "{e}"
    );
}

#[tokio::test]
async fn nulls_are_kept_where_nullable_and_dropped_elsewhere() {
    let env = gadget_env().await;
    env.kubectl_stdin(
        &["create", "-f", "-"],
        &gadget("nul", "  size: 1\n  note: null\n  plain: null\n"),
    )
    .await
    .ok();
    let o = get_json(&env, &["gadget", "nul"]).await;
    let spec = o["spec"].as_object().unwrap();
    assert!(
        spec.get("note").is_some_and(serde_json::Value::is_null),
        "{o:#}"
    );
    assert!(!spec.contains_key("plain"), "{o:#}");
}

#[tokio::test]
async fn additional_properties_schemas_validate_and_prune_each_value() {
    let env = gadget_env().await;
    let e = refused(&env, &gadget("g", "  size: 1\n  labels:\n    a: 1\n")).await;
    assert!(
        e.contains("spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""),
        "{e}"
    );
    env.kubectl_stdin(
        &["apply", "--validate=false", "-f", "-"],
        &gadget(
            "g",
            "  size: 1\n  limits:\n    cpu:\n      max: 2\n      min: 1\n",
        ),
    )
    .await
    .ok();
    let o = get_json(&env, &["gadget", "g"]).await;
    assert_eq!(o["spec"]["limits"], serde_json::json!({"cpu": {"max": 2}}));
}

#[tokio::test]
async fn preserve_unknown_fields_keeps_everything_below_it() {
    let env = gadget_env().await;
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &gadget(
            "g",
            "  size: 1\n  free:\n    any:\n      deep: [1, {x: \"y\"}]\n",
        ),
    )
    .await
    .ok();
    let o = get_json(&env, &["gadget", "g"]).await;
    assert_eq!(
        o["spec"]["free"],
        serde_json::json!({"any": {"deep": [1, {"x": "y"}]}})
    );
}

#[tokio::test]
async fn date_time_format_and_max_items_are_enforced() {
    let env = gadget_env().await;
    let e = refused(
        &env,
        &gadget("g", "  size: 1\n  when: yesterday\n  tags: [a, b, c]\n"),
    )
    .await;
    assert!(
        e.contains("spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\""),
        "{e}"
    );
    assert!(
        e.contains("spec.tags: Too many: 3: must have at most 2 items"),
        "{e}"
    );
}

#[tokio::test]
async fn an_update_is_validated_and_the_status_subresource_ignores_spec() {
    let env = gadget_env().await;
    env.kubectl_stdin(&["apply", "-f", "-"], &gadget("g", "  size: 1\n"))
        .await
        .ok();
    let e = env
        .kubectl(&[
            "patch",
            "gadget",
            "g",
            "--type=merge",
            "-p",
            "{\"spec\":{\"size\":\"big\"}}",
        ])
        .await
        .fails(1)
        .stderr;
    assert!(
        e.contains("spec.size in body must be of type integer: \"string\""),
        "{e}"
    );
    let e = env
        .kubectl(&[
            "patch",
            "gadget",
            "g",
            "--type=json",
            "-p",
            "[{\"op\":\"remove\",\"path\":\"/spec/size\"}]",
        ])
        .await
        .fails(1)
        .stderr;
    assert!(e.contains("spec.size: Required value"), "{e}");
    env.kubectl(&[
        "patch",
        "gadget",
        "g",
        "--subresource=status",
        "--type=merge",
        "-p",
        "{\"status\":{\"phase\":\"Ready\",\"junk\":1},\"spec\":{\"size\":5}}",
    ])
    .await
    .ok();
    let o = get_json(&env, &["gadget", "g"]).await;
    assert_eq!(o["status"], serde_json::json!({"phase": "Ready"}));
    assert_eq!(o["spec"]["size"], 1);
    assert_eq!(o["metadata"]["generation"], 1);
}

#[tokio::test]
async fn a_non_structural_crd_is_refused_with_kubes_message() {
    let env = Env::start(&["c1"]).await;
    let crd = GADGET_CRD.replace(
        "          spec:\n            type: object\n            required: [size]\n",
        "          spec:\n            required: [size]\n",
    );
    let run = env
        .kubectl_stdin(&["apply", "-f", "-"], &crd)
        .await
        .fails(1);
    assert!(
        run.stderr.contains(
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
        ),
        "{run:#?}"
    );
}

#[tokio::test]
async fn kubectl_explain_reads_the_crd_schema() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let out = env
        .kubectl(&["explain", "cassandracluster.spec.topology.dc"])
        .await
        .ok()
        .stdout;
    assert!(out.contains("KIND:       CassandraCluster"), "{out}");
    assert!(out.contains("VERSION:    v2"), "{out}");
    assert!(out.contains("FIELD: dc <[]Object>"), "{out}");
    assert!(out.contains("nodesPerRacks\t<integer>"), "{out}");
}

#[tokio::test]
async fn an_object_stored_before_its_crd_declared_a_default_shows_it_without_a_new_write() {
    let env = gadget_env().await;
    env.kubectl_stdin(&["apply", "-f", "-"], &gadget("old", "  size: 1\n"))
        .await
        .ok();
    let before = get_json(&env, &["gadget", "old"]).await;
    assert!(before["spec"].get("plain").is_none());
    let crd = GADGET_CRD.replace(
        "              plain: {type: string}\n",
        "              plain: {type: string, default: filled}\n",
    );
    env.kubectl_stdin(&["apply", "-f", "-"], &crd).await.ok();
    let after = get_json(&env, &["gadget", "old"]).await;
    assert_eq!(after["spec"]["plain"], "filled");
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    let listed = get_json(&env, &["gadgets"]).await;
    assert_eq!(listed["items"][0]["spec"]["plain"], "filled");
}

#[tokio::test]
async fn server_side_apply_refuses_undeclared_fields_whatever_field_validation_says() {
    let Some(env) = casskop_env().await else {
        return;
    };
    let doc = cc(
        "v2",
        "ssa",
        "  topology:\n    dc:\n    - name: dc1\n      nodesPerRack: 3\n",
    );
    for validate in ["--validate=strict", "--validate=false"] {
        let run = env
            .kubectl_stdin(&["apply", "--server-side", validate, "-f", "-"], &doc)
            .await
            .fails(1);
        assert!(
            run.stderr.contains(
                "Error from server: failed to create typed patch object (default/ssa; db.orange.com/v2, Kind=CassandraCluster): .spec.topology.dc[0].nodesPerRack: field not declared in schema"
            ),
            "{run:#?}"
        );
    }
    // Under spec's preserve-unknown-fields, an unknown top-level spec field is fine.
    env.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &cc("v2", "ssa", "  somethingNew: 1\n"),
    )
    .await
    .ok();
}
