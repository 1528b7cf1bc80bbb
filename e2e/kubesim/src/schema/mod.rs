//! CRD structural schemas: parsed once per served version when a CRD is registered, then pruning, defaulting and validation of custom resources as kube-apiserver does them, and the `fieldValidation` directive.
//!
//! Hand-written rather than a JSON Schema crate: kube uses its own OpenAPI v3 subset (nullable,
//! int-or-string, preserve-unknown-fields, embedded resources), its own error wording and paths, and
//! pruning/defaulting walks no validator crate offers.
mod default;
mod formats;
mod prune;
pub mod structural;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

pub use structural::{Node, SchemaError};
pub use validate::FieldError;

use crate::errors::ApiError;
use crate::validation::go_quote;

/// The parsed schema of every served version of one CRD.
#[derive(Debug, Default)]
pub struct CrdSchemas {
    versions: HashMap<String, Arc<Node>>,
    /// The schemas as written, for the OpenAPI v3 documents kubectl explain reads.
    raw: HashMap<String, Value>,
}

impl CrdSchemas {
    /// Parses every version's `schema.openAPIV3Schema`; the errors name the version's field path as
    /// kube-apiserver does (`spec.versions[1].schema.openAPIV3Schema.properties[spec].type`).
    pub fn from_crd(crd: &Value) -> Result<CrdSchemas, Vec<SchemaError>> {
        let mut versions = HashMap::new();
        let mut raw = HashMap::new();
        let mut errs = Vec::new();
        let vs = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, v) in vs.iter().enumerate() {
            let Some(name) = v["name"].as_str() else {
                continue;
            };
            let base = format!("spec.versions[{i}].schema.openAPIV3Schema");
            match v.pointer("/schema/openAPIV3Schema") {
                Some(s) if s.is_object() => {
                    let mut local = Vec::new();
                    let node = structural::parse(s, "", &mut local);
                    if node.ty != structural::Ty::Object && local.is_empty() {
                        local.push(SchemaError {
                            field: "type".into(),
                            message: "Invalid value: \"\": must be object at the root".into(),
                        });
                    }
                    errs.extend(local.into_iter().map(|e| SchemaError {
                        field: format!("{base}.{}", e.field),
                        message: e.message,
                    }));
                    versions.insert(name.to_string(), Arc::new(node));
                    raw.insert(name.to_string(), s.clone());
                }
                _ => errs.push(SchemaError {
                    field: base,
                    message: "Required value: schemas are required".into(),
                }),
            }
        }
        if errs.is_empty() {
            Ok(CrdSchemas { versions, raw })
        } else {
            Err(errs)
        }
    }

    pub fn version(&self, v: &str) -> Option<&Arc<Node>> {
        self.versions.get(v)
    }

    pub fn raw(&self, v: &str) -> Option<&Value> {
        self.raw.get(v)
    }
}

/// The `fieldValidation` directive: what to do about fields the schema drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    /// kube-apiserver's default when a request names none (kube-rs clients, for instance).
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn from_query(v: Option<&str>) -> Result<FieldValidation, ApiError> {
        match v {
            None | Some("") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {}: supported values: \"Ignore\", \"Strict\", \"Warn\"",
                go_quote(other)
            ))),
        }
    }
}

/// Prunes, defaults and validates a custom resource written at a version whose schema is `s`, as
/// kube-apiserver decodes then validates it: the pruned paths (for `fieldValidation`) and the
/// field errors. `old` (updates) ratchets validation.
pub fn admit(s: &Node, obj: &mut Value, old: Option<&Value>) -> (Vec<String>, Vec<FieldError>) {
    let pruned = prune::prune_object(obj, s);
    default::apply(obj, s);
    (pruned, validate::validate_object(obj, s, old))
}

/// Defaults an object read from storage (kube defaults on read with the storage version's schema);
/// returns whether anything was filled in.
pub fn default_stored(s: &Node, obj: &mut Value) -> bool {
    default::apply(obj, s)
}

/// The 400 kube-apiserver answers a strict write with unknown fields.
pub fn strict_error(kind: &str, version: &str, unknown: &[String]) -> ApiError {
    let fields: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field {}", go_quote(p)))
        .collect();
    ApiError::bad_request(format!(
        "{kind} in version {} cannot be handled as a {kind}: strict decoding error: {}",
        go_quote(version),
        fields.join(", ")
    ))
}

/// The fields of a server-side apply configuration its version's schema does not declare, as
/// structured-merge-diff paths (`.spec.topology.dc[0].nodesPerRack`).
pub fn undeclared(s: &Node, body: &Value) -> Vec<String> {
    let mut copy = body.clone();
    prune::prune_object(&mut copy, s)
        .into_iter()
        .map(|p| format!(".{p}"))
        .collect()
}

/// The answer to an apply configuration with undeclared fields: apply is always strict, and
/// kube-apiserver 1.32 reports it as a plain error (500, no reason), whatever `fieldValidation` says.
pub fn apply_error(
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
    undeclared: &[String],
) -> ApiError {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let errs: Vec<String> = undeclared
        .iter()
        .map(|p| format!("{p}: field not declared in schema"))
        .collect();
    let detail = if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("errors:\n  {}", errs.join("\n  "))
    };
    ApiError::new(
        500,
        "",
        format!(
            "failed to create typed patch object ({ns}/{name}; {group}/{version}, Kind={kind}): {detail}"
        ),
    )
}

/// The `Warning` header texts for unknown fields under `fieldValidation=Warn`.
pub fn warnings(unknown: &[String]) -> Vec<String> {
    unknown
        .iter()
        .map(|p| format!("unknown field {}", go_quote(p)))
        .collect()
}

/// The 422 for schema errors: `Kind.group "name" is invalid: [e1, e2]`, one cause per error.
pub fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> ApiError {
    let causes: Vec<(&str, &str, &str)> = errs
        .iter()
        .map(|e| (e.reason, e.field.as_str(), e.body.as_str()))
        .collect();
    let messages: Vec<String> = errs.iter().map(FieldError::message).collect();
    ApiError::invalid_causes(group, kind, name, &causes, &messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas(schema: Value) -> CrdSchemas {
        CrdSchemas::from_crd(
            &json!({"spec": {"versions": [{"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": schema}}]}}),
        )
        .expect("structural")
    }

    fn messages(schema: Value, mut obj: Value) -> Vec<String> {
        let s = schemas(schema);
        let (_, errs) = admit(s.version("v1").unwrap(), &mut obj, None);
        errs.iter().map(FieldError::message).collect()
    }

    fn spec(props: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})
    }

    #[test]
    fn a_string_for_an_integer_is_a_type_error_naming_the_path() {
        let m = messages(
            spec(json!({"nodesPerRacks": {"type": "integer", "format": "int32"}})),
            json!({"spec": {"nodesPerRacks": "abc"}}),
        );
        assert_eq!(
            m,
            vec![
                "spec.nodesPerRacks: Invalid value: \"string\": spec.nodesPerRacks in body must be of type integer: \"string\""
            ]
        );
    }

    #[test]
    fn enum_pattern_bounds_lengths_and_required_use_kube_wording() {
        let m = messages(
            json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["name"], "properties": {
                "serverType": {"type": "string", "enum": ["cassandra", "dse"]},
                "id": {"type": "string", "pattern": "^[a-z]+$", "minLength": 3, "maxLength": 5},
                "n": {"type": "integer", "minimum": 1, "maximum": 10},
                "r": {"type": "number", "maximum": 2.5, "exclusiveMaximum": true},
                "l": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
                "name": {"type": "string"}}}}}),
            json!({"spec": {"serverType": "scylla", "id": "AB", "n": 0, "r": 2.5, "l": ["a", "b", "c"]}}),
        );
        assert_eq!(
            m,
            vec![
                "spec.name: Required value",
                "spec.serverType: Unsupported value: \"scylla\": supported values: \"cassandra\", \"dse\"",
                "spec.id: Invalid value: \"AB\": spec.id in body should be at least 3 chars long",
                "spec.id: Invalid value: \"AB\": spec.id in body should match '^[a-z]+$'",
                "spec.n: Invalid value: 0: spec.n in body should be greater than or equal to 1",
                "spec.r: Invalid value: 2.5: spec.r in body should be less than 2.5",
                "spec.l: Too many: 3: must have at most 2 items",
            ]
        );
    }

    #[test]
    fn int_or_string_nullable_and_array_item_nulls() {
        let m = messages(
            spec(json!({"port": {"x-kubernetes-int-or-string": true},
                "opt": {"type": "string", "nullable": true},
                "tags": {"type": "array", "items": {"type": "string"}}})),
            json!({"spec": {"port": true, "opt": null, "tags": ["a", null]}}),
        );
        assert_eq!(
            m,
            vec![
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
                "spec.tags[1]: Invalid value: \"null\": spec.tags[1] in body must be of type string: \"null\"",
            ]
        );
    }

    #[test]
    fn ratcheting_lets_an_update_keep_an_unchanged_invalid_field() {
        let s = schemas(spec(
            json!({"n": {"type": "integer", "maximum": 3}, "m": {"type": "integer"}}),
        ));
        let old = json!({"spec": {"n": 9, "m": 1}});
        let mut new = json!({"spec": {"n": 9, "m": 2}});
        assert!(
            admit(s.version("v1").unwrap(), &mut new, Some(&old))
                .1
                .is_empty()
        );
        let mut worse = json!({"spec": {"n": 10, "m": 2}});
        assert_eq!(
            admit(s.version("v1").unwrap(), &mut worse, Some(&old))
                .1
                .len(),
            1
        );
    }

    #[test]
    fn non_structural_schemas_are_refused_with_their_paths() {
        let e = CrdSchemas::from_crd(&json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema":
            {"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}}}]}}))
        .unwrap_err();
        assert_eq!(
            e,
            vec![SchemaError {
                field: "spec.versions[0].schema.openAPIV3Schema.properties[spec].type".into(),
                message: "Required value: must not be empty for specified object fields".into()
            }]
        );
    }
}
