//! Validation of a custom resource against its structural schema, with kube-apiserver's field errors and wording.
use serde_json::{Map, Value};

use super::structural::{Additional, Node, Ty};
use crate::validation::go_quote;

/// One field error as kube's `field.Error`: cause reason, field path and the body after the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub reason: &'static str,
    pub field: String,
    pub body: String,
}

impl FieldError {
    /// `spec.x: Invalid value: ...` (kube prints a missing path as `<nil>`).
    pub fn message(&self) -> String {
        let f = if self.field.is_empty() {
            "<nil>"
        } else {
            &self.field
        };
        format!("{f}: {}", self.body)
    }
}

/// Go's `%v` of a float64: integral values below 1e21 without a fraction, others shortest.
pub fn go_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e21 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A bad value as `field.Error` prints it: strings quoted, numbers and booleans bare, null as `null`.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "\"null\"".into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => go_float(n.as_f64().unwrap_or(0.0)),
        },
        other => other.to_string(),
    }
}

/// The OpenAPI type name of a JSON value, as kube-openapi infers it.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

struct Walk<'a> {
    errs: &'a mut Vec<FieldError>,
}

impl Walk<'_> {
    fn invalid(&mut self, path: &str, value: &Value, detail: String) {
        self.errs.push(FieldError {
            reason: "FieldValueInvalid",
            field: path.to_string(),
            body: format!("Invalid value: {}: {detail}", shown(value)),
        });
    }
    fn type_invalid(&mut self, path: &str, want: &str, got: &str) {
        self.errs.push(FieldError {
            reason: "FieldValueTypeInvalid",
            field: path.to_string(),
            body: format!(
                "Invalid value: {}: {path} in body must be of type {want}: {}",
                go_quote(got),
                go_quote(got)
            ),
        });
    }
}

/// Validates `v` (a whole object) against `s`; on an update, `old` ratchets: a field whose value
/// did not change is not re-validated (CRDValidationRatcheting, on by default since 1.30).
pub fn validate_object(v: &Value, s: &Node, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut w = Walk { errs: &mut errs };
    if let Value::Object(m) = v {
        let mut path = String::new();
        w.object(m, s, old, &mut path, true);
    }
    errs
}

fn child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

impl Walk<'_> {
    fn value(&mut self, v: &Value, s: &Node, old: Option<&Value>, path: &mut String) {
        if old.is_some_and(|o| o == v) {
            return;
        }
        if !self.check_type(v, s, path) {
            self.enumeration(v, s, path);
            return;
        }
        match v {
            Value::Object(m) => self.object(m, s, old, path, false),
            Value::Array(a) => self.array(a, s, path),
            Value::String(st) => self.string(v, st, s, path),
            Value::Number(_) => self.number(v, s, path),
            _ => {}
        }
        self.enumeration(v, s, path);
        self.combinators(v, s, path);
    }

    /// The type check; false when it failed (the value's own checks are then skipped).
    fn check_type(&mut self, v: &Value, s: &Node, path: &str) -> bool {
        let got = type_of(v);
        if v.is_null() && (s.nullable || (s.ty == Ty::Any && !s.int_or_string)) {
            return true;
        }
        let ok = if s.int_or_string {
            matches!(got, "integer" | "string")
        } else {
            match s.ty {
                Ty::Any => true,
                Ty::Number => matches!(got, "integer" | "number"),
                Ty::Integer => {
                    got == "integer"
                        || v.as_f64()
                            .is_some_and(|x| got == "number" && x.fract() == 0.0)
                }
                t => t.name() == got,
            }
        };
        if !ok {
            let want = if s.int_or_string {
                "integer,string"
            } else {
                s.ty.name()
            };
            self.type_invalid(path, want, got);
        }
        ok
    }

    fn object(
        &mut self,
        m: &Map<String, Value>,
        s: &Node,
        old: Option<&Value>,
        path: &mut String,
        root: bool,
    ) {
        for r in &s.required {
            if !m.contains_key(r) {
                self.errs.push(FieldError {
                    reason: "FieldValueRequired",
                    field: child(path, r),
                    body: "Required value".into(),
                });
            }
        }
        if let Some(min) = s.min_properties
            && (m.len() as u64) < min
        {
            self.invalid(
                path,
                &Value::from(min),
                format!("{path} in body should have at least {min} properties"),
            );
        }
        if let Some(max) = s.max_properties
            && (m.len() as u64) > max
        {
            self.errs.push(FieldError {
                reason: "FieldValueTooMany",
                field: path.clone(),
                body: format!("Too many: {}: must have at most {max} items", m.len()),
            });
        }
        for (k, v) in m {
            if root && (k == "apiVersion" || k == "kind" || k == "metadata") {
                continue;
            }
            if s.embedded && (k == "apiVersion" || k == "kind" || k == "metadata") {
                continue;
            }
            let sub = match (s.properties.get(k), &s.additional) {
                (Some(p), _) => p,
                (None, Some(Additional::Schema(a))) => a,
                _ => continue,
            };
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            let o = old.and_then(|o| o.get(k));
            self.value(v, sub, o, path);
            path.truncate(len);
        }
        if s.embedded {
            for k in ["apiVersion", "kind"] {
                if m.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                    self.errs.push(FieldError {
                        reason: "FieldValueRequired",
                        field: child(path, k),
                        body: "Required value: must not be empty".into(),
                    });
                }
            }
        }
    }

    fn array(&mut self, a: &[Value], s: &Node, path: &mut String) {
        if let Some(is) = s.items.as_deref() {
            let len = path.len();
            for (i, item) in a.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                self.value(item, is, None, path);
                path.truncate(len);
            }
        }
        let n = a.len() as u64;
        if let Some(min) = s.min_items
            && n < min
        {
            self.invalid(
                path,
                &Value::from(n),
                format!("{path} in body should have at least {min} items"),
            );
        }
        if let Some(max) = s.max_items
            && n > max
        {
            self.errs.push(FieldError {
                reason: "FieldValueTooMany",
                field: path.clone(),
                body: format!("Too many: {n}: must have at most {max} items"),
            });
        }
    }

    fn string(&mut self, v: &Value, st: &str, s: &Node, path: &str) {
        let chars = st.chars().count() as u64;
        if let Some(max) = s.max_length
            && chars > max
        {
            let unit = if max == 1 { "byte" } else { "bytes" };
            self.errs.push(FieldError {
                reason: "FieldValueTooLong",
                field: path.to_string(),
                body: format!("Too long: may not be more than {max} {unit}"),
            });
        }
        if let Some(min) = s.min_length
            && chars < min
        {
            self.invalid(
                path,
                v,
                format!("{path} in body should be at least {min} chars long"),
            );
        }
        if let Some((p, re)) = &s.pattern
            && !re.is_match(st)
        {
            self.invalid(path, v, format!("{path} in body should match '{p}'"));
        }
        if let Some(fm) = &s.format
            && !super::formats::valid(fm, st)
        {
            self.type_invalid_value(path, fm, st);
        }
    }

    fn type_invalid_value(&mut self, path: &str, format: &str, value: &str) {
        self.errs.push(FieldError {
            reason: "FieldValueTypeInvalid",
            field: path.to_string(),
            body: format!(
                "Invalid value: {}: {path} in body must be of type {format}: {}",
                go_quote(value),
                go_quote(value)
            ),
        });
    }

    fn number(&mut self, v: &Value, s: &Node, path: &str) {
        let x = v.as_f64().unwrap_or(0.0);
        // Bounds print as integers for integer data (kube compares natively), as floats otherwise.
        let bound = |b: f64| {
            if v.is_i64() || v.is_u64() {
                (b as i64).to_string()
            } else {
                go_float(b)
            }
        };
        if let Some(m) = s.multiple_of
            && m != 0.0
            && (x / m).fract() != 0.0
        {
            self.invalid(
                path,
                v,
                format!("{path} in body should be a multiple of {}", bound(m)),
            );
        }
        if let Some(max) = s.maximum {
            if s.exclusive_maximum && x >= max {
                self.invalid(
                    path,
                    v,
                    format!("{path} in body should be less than {}", bound(max)),
                );
            } else if x > max {
                self.invalid(
                    path,
                    v,
                    format!(
                        "{path} in body should be less than or equal to {}",
                        bound(max)
                    ),
                );
            }
        }
        if let Some(min) = s.minimum {
            if s.exclusive_minimum && x <= min {
                self.invalid(
                    path,
                    v,
                    format!("{path} in body should be greater than {}", bound(min)),
                );
            } else if x < min {
                self.invalid(
                    path,
                    v,
                    format!(
                        "{path} in body should be greater than or equal to {}",
                        bound(min)
                    ),
                );
            }
        }
    }

    fn enumeration(&mut self, v: &Value, s: &Node, path: &str) {
        if s.enum_values.is_empty() || s.enum_values.iter().any(|e| e == v) {
            return;
        }
        let supported: Vec<String> = s
            .enum_values
            .iter()
            .map(|e| match e {
                Value::String(st) => go_quote(st),
                other => go_quote(&other.to_string()),
            })
            .collect();
        self.errs.push(FieldError {
            reason: "FieldValueNotSupported",
            field: path.to_string(),
            body: format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                supported.join(", ")
            ),
        });
    }

    fn combinators(&mut self, v: &Value, s: &Node, path: &mut String) {
        for a in &s.all_of {
            self.value(v, a, None, path);
        }
        let passes = |n: &Node, path: &mut String| {
            let mut scratch = Vec::new();
            let mut w = Walk { errs: &mut scratch };
            w.value(v, n, None, path);
            scratch.is_empty()
        };
        let nil = |errs: &mut Vec<FieldError>, msg: String| {
            errs.push(FieldError {
                reason: "FieldValueInvalid",
                field: String::new(),
                body: format!("Invalid value: \"\": {msg}"),
            });
        };
        if !s.any_of.is_empty() && !s.any_of.iter().any(|n| passes(n, path)) {
            nil(
                self.errs,
                format!("\"{path}\" must validate at least one schema (anyOf)"),
            );
        }
        if !s.one_of.is_empty() && s.one_of.iter().filter(|n| passes(n, path)).count() != 1 {
            nil(
                self.errs,
                format!("\"{path}\" must validate one and only one schema (oneOf)"),
            );
        }
        if let Some(n) = &s.not
            && passes(n, path)
        {
            nil(
                self.errs,
                format!("\"{path}\" must not validate the schema (not)"),
            );
        }
    }
}
