//! kubesim's built-in CassandraCluster CRD against CassKop's real one (`../shared/upstream`): every field it declares exists in the real CRD with the same type, format and default, in every served version.

use serde_json::Value;

/// Every declared field path of a schema (`spec.topology.dc[].name`, `status.cassandraRackStatus{}.phase`).
fn paths(schema: &Value, at: &str, out: &mut Vec<(String, Value)>) {
    out.push((at.to_owned(), schema.clone()));
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            paths(v, &p, out);
        }
    }
    if let Some(items) = schema.get("items") {
        paths(items, &format!("{at}[]"), out);
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        paths(extra, &format!("{at}{{}}"), out);
    }
}

fn lookup<'a>(schema: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = schema;
    if path.is_empty() {
        return Some(cur);
    }
    for part in path.split('.') {
        let (name, suffix) = match part.find(['[', '{']) {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        cur = cur.get("properties")?.get(name)?;
        for c in suffix.chars() {
            match c {
                '[' => cur = cur.get("items")?,
                '{' => cur = cur.get("additionalProperties")?,
                _ => {}
            }
        }
    }
    Some(cur)
}

#[test]
fn built_in_crd_declares_only_what_casskops_crd_declares_with_the_same_types() {
    let Some(real) = kubesim::fixtures::upstream_file("casskop-cassandraclusters-crd.yaml") else {
        return;
    };
    let real: Value = serde_saphyr::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    let ours: Value = serde_saphyr::from_str(kubesim::casskop::CRD_YAML).unwrap();
    let versions = |crd: &Value| -> Vec<(String, bool, bool, Value)> {
        crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                assert!(
                    v.get("subresources").is_none(),
                    "no status subresource: {v}"
                );
                (
                    v["name"].as_str().unwrap().to_owned(),
                    v["served"].as_bool().unwrap(),
                    v["storage"].as_bool().unwrap(),
                    v["schema"]["openAPIV3Schema"].clone(),
                )
            })
            .collect()
    };
    let (real_versions, our_versions) = (versions(&real), versions(&ours));
    let mut problems = vec![];
    let mut checked = 0;
    for (name, served, storage, schema) in &our_versions {
        let Some((_, rs, rst, rschema)) = real_versions.iter().find(|v| &v.0 == name) else {
            problems.push(format!("version {name} is not in CassKop's CRD"));
            continue;
        };
        if (served, storage) != (rs, rst) {
            problems.push(format!(
                "version {name}: served/storage {served}/{storage}, CassKop's {rs}/{rst}"
            ));
        }
        let mut all = vec![];
        paths(schema, "", &mut all);
        for (path, ours) in all {
            checked += 1;
            let Some(theirs) = lookup(rschema, &path) else {
                problems.push(format!("{name}: {path} is not declared by CassKop's CRD"));
                continue;
            };
            for key in [
                "type",
                "format",
                "default",
                "enum",
                "pattern",
                "minimum",
                "x-kubernetes-int-or-string",
            ] {
                if ours.get(key) != theirs.get(key) {
                    problems.push(format!(
                        "{name}: {path}: {key} {:?} here, {:?} in CassKop's CRD",
                        ours.get(key),
                        theirs.get(key)
                    ));
                }
            }
        }
    }
    // Where CassKop's CRD keeps unknown fields, so does ours (only spec and the config maps).
    let spec = lookup(&our_versions[0].3, "spec").unwrap();
    assert_eq!(spec["x-kubernetes-preserve-unknown-fields"], true);
    assert!(checked > 120, "only {checked} paths compared");
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
