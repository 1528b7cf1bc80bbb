//! A CRD version's `openAPIV3Schema`, parsed once (when the CRD is registered) into the structural tree the walks use.
use std::collections::BTreeMap;

use serde_json::Value;

/// The JSON type a node declares (`type:`), or none (only with int-or-string or preserve-unknown-fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Any,
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Any => "",
            Ty::Object => "object",
            Ty::Array => "array",
            Ty::String => "string",
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::Boolean => "boolean",
        }
    }
}

/// `additionalProperties`: a schema for every value, or a plain allow/deny.
#[derive(Debug, Clone)]
pub enum Additional {
    Schema(Box<Node>),
    Allows(bool),
}

/// One structural schema node with the value validations kube-apiserver runs for CRDs.
#[derive(Debug, Clone)]
pub struct Node {
    pub ty: Ty,
    pub int_or_string: bool,
    pub nullable: bool,
    pub preserve: bool,
    pub embedded: bool,
    /// String formats kube-apiserver checks (integer/number formats are stripped before validation).
    pub format: Option<String>,
    pub enum_values: Vec<Value>,
    pub pattern: Option<(String, regex::Regex)>,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub multiple_of: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub required: Vec<String>,
    pub properties: BTreeMap<String, Node>,
    pub additional: Option<Additional>,
    pub items: Option<Box<Node>>,
    pub default: Option<Value>,
    /// Some node at or below this one has a default (lets the defaulting walk skip whole subtrees).
    pub has_defaults: bool,
    /// `allOf`/`anyOf`/`oneOf`/`not` value validations (structural schemas allow them without types).
    pub all_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub not: Option<Box<Node>>,
}

/// Formats whose strings kube-apiserver validates in custom resources; others are ignored.
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "date-time",
];

/// Why a schema is not structural, as kube-apiserver words it (field path relative to the schema root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub field: String,
    pub message: String,
}

fn u(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}
fn f(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}
fn b(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// Parses a schema node; `path` names it in errors (`properties[spec].properties[x]`, as kube does).
pub fn parse(v: &Value, path: &str, errs: &mut Vec<SchemaError>) -> Node {
    let err = |errs: &mut Vec<SchemaError>, field: &str, message: &str| {
        errs.push(SchemaError {
            field: if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            },
            message: message.to_string(),
        });
    };
    let int_or_string = b(v, "x-kubernetes-int-or-string");
    let preserve = b(v, "x-kubernetes-preserve-unknown-fields");
    let embedded = b(v, "x-kubernetes-embedded-resource");
    let ty = match v.get("type").and_then(Value::as_str) {
        Some("object") => Ty::Object,
        Some("array") => Ty::Array,
        Some("string") => Ty::String,
        Some("integer") => Ty::Integer,
        Some("number") => Ty::Number,
        Some("boolean") => Ty::Boolean,
        Some("") | None => {
            if !int_or_string
                && !preserve
                && !path.contains("allOf")
                && !path.contains("anyOf")
                && !path.contains("oneOf")
                && !path.contains(".not")
            {
                err(
                    errs,
                    "type",
                    "Required value: must not be empty for specified object fields",
                );
            }
            Ty::Any
        }
        Some(other) => {
            err(
                errs,
                "type",
                &format!(
                    "Unsupported value: \"{other}\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
                ),
            );
            Ty::Any
        }
    };
    let child = |seg: &str| {
        if path.is_empty() {
            seg.to_string()
        } else {
            format!("{path}.{seg}")
        }
    };
    let mut properties = BTreeMap::new();
    if let Some(props) = v.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            properties.insert(
                k.clone(),
                parse(p, &child(&format!("properties[{k}]")), errs),
            );
        }
    }
    let additional = match v.get("additionalProperties") {
        Some(Value::Bool(a)) => Some(Additional::Allows(*a)),
        Some(s @ Value::Object(_)) => Some(Additional::Schema(Box::new(parse(
            s,
            &child("additionalProperties"),
            errs,
        )))),
        _ => None,
    };
    if !properties.is_empty() && additional.is_some() {
        err(
            errs,
            "additionalProperties",
            "Forbidden: additionalProperties and properties are mutual exclusive",
        );
    }
    if matches!(additional, Some(Additional::Allows(false))) {
        err(errs, "additionalProperties", "Forbidden: must not be false");
    }
    let items = v
        .get("items")
        .filter(|i| i.is_object())
        .map(|i| Box::new(parse(i, &child("items"), errs)));
    if ty == Ty::Array && items.is_none() {
        err(errs, "items", "Required value: must be specified");
    }
    if b(v, "uniqueItems") {
        err(
            errs,
            "uniqueItems",
            "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        );
    }
    let pattern =
        v.get("pattern")
            .and_then(Value::as_str)
            .and_then(|p| match regex::Regex::new(p) {
                Ok(re) => Some((p.to_string(), re)),
                Err(_) => {
                    err(
                        errs,
                        "pattern",
                        &format!(
                            "Invalid value: {}: must be a valid regular expression",
                            crate::validation::go_quote(p)
                        ),
                    );
                    None
                }
            });
    let list = |k: &str, errs: &mut Vec<SchemaError>| -> Vec<Node> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .enumerate()
                    .map(|(i, s)| parse(s, &child(&format!("{k}[{i}]")), errs))
                    .collect()
            })
            .unwrap_or_default()
    };
    let all_of = list("allOf", errs);
    let any_of = list("anyOf", errs);
    let one_of = list("oneOf", errs);
    let not = v
        .get("not")
        .filter(|n| n.is_object())
        .map(|n| Box::new(parse(n, &child("not"), errs)));
    let format = v
        .get("format")
        .and_then(Value::as_str)
        .filter(|fm| STRING_FORMATS.contains(fm))
        .map(String::from);
    let default = v.get("default").cloned();
    let has_defaults = default.is_some()
        || properties.values().any(|p| p.has_defaults)
        || items.as_ref().is_some_and(|i| i.has_defaults)
        || matches!(&additional, Some(Additional::Schema(s)) if s.has_defaults);
    Node {
        ty,
        int_or_string,
        nullable: b(v, "nullable"),
        preserve,
        embedded,
        format,
        enum_values: v
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        pattern,
        minimum: f(v, "minimum"),
        exclusive_minimum: b(v, "exclusiveMinimum"),
        maximum: f(v, "maximum"),
        exclusive_maximum: b(v, "exclusiveMaximum"),
        multiple_of: f(v, "multipleOf"),
        min_length: u(v, "minLength"),
        max_length: u(v, "maxLength"),
        min_items: u(v, "minItems"),
        max_items: u(v, "maxItems"),
        min_properties: u(v, "minProperties"),
        max_properties: u(v, "maxProperties"),
        required: v
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        properties,
        additional,
        items,
        default,
        has_defaults,
        all_of,
        any_of,
        one_of,
        not,
    }
}
