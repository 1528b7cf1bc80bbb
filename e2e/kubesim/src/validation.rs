//! Name, label and annotation validation with kube-apiserver's exact error wording.
//!
//! Messages follow `k8s.io/apimachinery/pkg/util/validation` and `field.Error`:
//! `metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain must ...`.
//! Several errors on one object are joined like kube's `ErrorList.ToAggregate()`:
//! one error as is, more as `[e1, e2]`.

#[cfg(test)]
use serde_json::{Map, Value};

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// Maximum length of a DNS-1123 label (namespace names, label values, name parts).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Maximum length of a DNS-1123 subdomain (most object names).
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Maximum total size of an object's annotations, as kube-apiserver enforces it.
#[cfg(test)]
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Which rule kube-apiserver applies to the `metadata.name` of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain, at most 253 characters (secrets, configmaps, pods, CRs, ...).
    Subdomain,
    /// DNS-1123 label, at most 63 characters (namespaces).
    Label,
    /// DNS-1035 label (services).
    Dns1035,
    /// Path segment only: not `.`/`..`, no `/` or `%` (RBAC objects such as `system:discovery`).
    PathSegment,
}

/// The name rule kube-apiserver uses for `resource` (plural, e.g. "namespaces", or kind, e.g. "Namespace").
pub fn name_rule(resource: &str) -> NameRule {
    match resource.to_ascii_lowercase().as_str() {
        "namespaces" | "namespace" => NameRule::Label,
        "services" | "service" => NameRule::Dns1035,
        "roles"
        | "role"
        | "rolebindings"
        | "rolebinding"
        | "clusterroles"
        | "clusterrole"
        | "clusterrolebindings"
        | "clusterrolebinding" => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Validates `metadata.name` for `resource` like kube-apiserver; the error is the field-error
/// text (`metadata.name: Invalid value: "Foo": ...`) that kube puts after `Kind "Foo" is invalid: `.
pub fn validate_name(resource: &str, name: &str) -> Result<(), String> {
    aggregate(name_errors(resource, name))
}

fn name_errors(resource: &str, name: &str) -> Vec<String> {
    if name.is_empty() {
        return vec!["metadata.name: Required value: name or generateName is required".to_string()];
    }
    let mut msgs = path_segment_errors(name);
    if msgs.is_empty() {
        msgs = match name_rule(resource) {
            NameRule::Subdomain => dns1123_subdomain_errors(name),
            NameRule::Label => dns1123_label_errors(name),
            NameRule::Dns1035 => dns1035_label_errors(name),
            NameRule::PathSegment => Vec::new(),
        };
    }
    msgs.iter()
        .map(|m| invalid("metadata.name", name, m))
        .collect()
}

/// Validates `metadata.generateName`'s prefix: kube checks the prefix as a name with a
/// trailing random suffix, so a trailing `-` is allowed.
#[cfg(test)]
pub fn validate_generate_name(resource: &str, prefix: &str) -> Result<(), String> {
    aggregate(generate_name_errors(resource, prefix))
}

#[cfg(test)]
fn generate_name_errors(resource: &str, prefix: &str) -> Vec<String> {
    let candidate = format!("{prefix}a");
    let mut msgs = path_segment_errors(prefix);
    if msgs.is_empty() {
        msgs = match name_rule(resource) {
            NameRule::Subdomain => dns1123_subdomain_errors(&candidate),
            NameRule::Label => dns1123_label_errors(&candidate),
            NameRule::Dns1035 => dns1035_label_errors(&candidate),
            NameRule::PathSegment => Vec::new(),
        };
    }
    msgs.iter()
        .map(|m| invalid("metadata.generateName", prefix, m))
        .collect()
}

/// Validates `metadata.labels` keys (qualified names) and values, like kube's `ValidateLabels`.
#[cfg(test)]
pub fn validate_labels(labels: &Map<String, Value>) -> Result<(), String> {
    aggregate(label_errors(labels))
}

#[cfg(test)]
fn label_errors(labels: &Map<String, Value>) -> Vec<String> {
    let mut errors = Vec::new();
    for (key, value) in labels {
        for msg in qualified_name_errors(key) {
            errors.push(invalid("metadata.labels", key, &msg));
        }
        match value.as_str() {
            Some(v) => {
                for msg in label_value_errors(v) {
                    errors.push(invalid("metadata.labels", v, &msg));
                }
            }
            None => errors.push(format!(
                "metadata.labels: Invalid value: {value}: label values must be strings"
            )),
        }
    }
    errors
}

/// Validates `metadata.annotations` keys (qualified names, case-insensitive) and total size.
#[cfg(test)]
pub fn validate_annotations(annotations: &Map<String, Value>) -> Result<(), String> {
    aggregate(annotation_errors(annotations))
}

#[cfg(test)]
fn annotation_errors(annotations: &Map<String, Value>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut total = 0usize;
    for (key, value) in annotations {
        for msg in qualified_name_errors(&key.to_ascii_lowercase()) {
            errors.push(invalid("metadata.annotations", key, &msg));
        }
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errors.push(format!(
            "metadata.annotations: Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"
        ));
    }
    errors
}

/// Validates an object's metadata as kube's `ValidateObjectMeta` does for `resource`: the name
/// (or generateName when no name is set), label keys and values, annotation keys and size. The
/// error is the aggregated field-error text kube puts after `Kind "name" is invalid: `.
#[cfg(test)]
pub fn validate_metadata(resource: &str, obj: &Value) -> Result<(), String> {
    let meta = obj.get("metadata").cloned().unwrap_or(Value::Null);
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut errors = if name.is_empty() && !generate.is_empty() {
        generate_name_errors(resource, generate)
    } else {
        name_errors(resource, name)
    };
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        errors.extend(label_errors(labels));
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        errors.extend(annotation_errors(annotations));
    }
    aggregate(errors)
}

/// Validates the parts of a CustomResourceDefinition kube-apiserver checks first: the name is
/// `<plural>.<group>`, the group has a dot, plural and kind are set, the scope is known and
/// exactly one version is the storage version.
#[cfg(test)]
pub fn validate_crd(crd: &Value) -> Result<(), String> {
    let st = |p: &str| crd.pointer(p).and_then(Value::as_str).unwrap_or("");
    let (name, group, plural, kind, scope) = (
        st("/metadata/name"),
        st("/spec/group"),
        st("/spec/names/plural"),
        st("/spec/names/kind"),
        st("/spec/scope"),
    );
    let mut errors = Vec::new();
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        errors.push(invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errors.push("spec.group: Required value".to_string());
    } else {
        for msg in dns1123_subdomain_errors(group) {
            errors.push(invalid("spec.group", group, &msg));
        }
        if !group.contains('.') {
            errors.push(invalid(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    if plural.is_empty() {
        errors.push("spec.names.plural: Required value".to_string());
    } else {
        for msg in dns1123_label_errors(plural) {
            errors.push(invalid("spec.names.plural", plural, &msg));
        }
    }
    if kind.is_empty() {
        errors.push("spec.names.kind: Required value".to_string());
    }
    match scope {
        "Namespaced" | "Cluster" => {}
        "" => errors.push("spec.scope: Required value".to_string()),
        other => errors.push(format!(
            "spec.scope: Unsupported value: {}: supported values: \"Cluster\", \"Namespaced\"",
            go_quote(other)
        )),
    }
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    match versions {
        None => errors.push("spec.versions: Invalid value: \"null\": must have exactly one version marked as storage version".to_string()),
        Some(vs) => {
            let storage = vs.iter().filter(|v| v["storage"] == true).count();
            if storage != 1 {
                let names: Vec<&str> = vs.iter().filter_map(|v| v["name"].as_str()).collect();
                errors.push(format!(
                    "spec.versions: Invalid value: {}: must have exactly one version marked as storage version",
                    go_quote(&names.join(","))
                ));
            }
        }
    }
    aggregate(errors)
}

/// kube's `IsDNS1123Subdomain`: the error messages, empty when valid.
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !is_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// kube's `IsDNS1123Label`: the error messages, empty when valid.
pub fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !is_dns1123_label(value) {
        errs.push(regex_error(
            DNS1123_LABEL_ERR,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// kube's `IsDNS1035Label`: the error messages, empty when valid.
pub fn dns1035_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    let starts_alpha = value.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if !(is_dns1123_label(value) && starts_alpha) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// kube's `IsQualifiedName` (label and annotation keys: optional DNS subdomain prefix and `/`).
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for msg in dns1123_subdomain_errors(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > DNS1123_LABEL_MAX {
        errs.push(format!("name part {}", max_len_error(DNS1123_LABEL_MAX)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// kube's `IsValidLabelValue`: the error messages, empty when valid.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !(value.is_empty() || is_qualified_name_part(value)) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// kube's `ValidatePathSegmentName`: names that cannot appear in a URL path segment.
pub fn path_segment_errors(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// One `field.Invalid` error rendered like kube's `field.Error.Error()`.
pub fn invalid(field: &str, value: &str, msg: &str) -> String {
    format!("{field}: Invalid value: {}: {msg}", go_quote(value))
}

/// Joins field errors like kube's `ErrorList.ToAggregate().Error()` (deduplicated; `[a, b]` when several).
pub fn aggregate(errors: Vec<String>) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => Ok(()),
        1 => Err(seen.remove(0)),
        _ => Err(format!("[{}]", seen.join(", "))),
    }
}

/// Go's `%q` for a string: double quotes, backslash escapes for quotes, backslashes and controls.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// kube's `RegexError`, including its quirky double space between examples.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{ex}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_dns1123_label)
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
        && b.iter()
            .all(|c| alnum(c) || *c == b'-' || *c == b'_' || *c == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uppercase_secret_name_gets_kubes_subdomain_message() {
        let err = validate_name("secrets", "Foo").unwrap_err();
        assert_eq!(
            err,
            "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
    }

    #[test]
    fn namespace_names_are_dns_labels_with_the_double_space_quirk() {
        let err = validate_name("namespaces", "a.b").unwrap_err();
        assert_eq!(
            err,
            "metadata.name: Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        assert!(validate_name("Namespace", "kube-system").is_ok());
    }

    #[test]
    fn dotted_names_are_valid_subdomains_but_not_labels() {
        assert!(
            validate_name(
                "customresourcedefinitions",
                "cassandraclusters.db.orange.com"
            )
            .is_ok()
        );
        assert!(validate_name("namespaces", "db.orange").is_err());
    }

    #[test]
    fn too_long_names_report_length_then_nothing_else_when_pattern_ok() {
        let long = "a".repeat(254);
        assert_eq!(
            validate_name("configmaps", &long).unwrap_err(),
            format!(
                "metadata.name: Invalid value: \"{long}\": must be no more than 253 characters"
            )
        );
        assert!(validate_name("configmaps", &"a".repeat(253)).is_ok());
        let ns = "a".repeat(64);
        assert!(
            validate_name("namespaces", &ns)
                .unwrap_err()
                .ends_with("must be no more than 63 characters")
        );
    }

    #[test]
    fn long_and_malformed_name_aggregates_two_errors_in_brackets() {
        let bad = format!("-{}", "a".repeat(260));
        let err = validate_name("pods", &bad).unwrap_err();
        assert!(err.starts_with("[metadata.name: Invalid value: "), "{err}");
        assert!(err.contains("must be no more than 253 characters, metadata.name: Invalid value:"));
        assert!(err.ends_with(")]"));
    }

    #[test]
    fn empty_name_is_required() {
        assert_eq!(
            validate_name("pods", "").unwrap_err(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn rbac_names_may_contain_colons_but_not_slashes() {
        assert!(validate_name("clusterroles", "system:discovery").is_ok());
        assert_eq!(
            validate_name("clusterroles", "a/b").unwrap_err(),
            "metadata.name: Invalid value: \"a/b\": may not contain '/'"
        );
        assert_eq!(
            validate_name("roles", "..").unwrap_err(),
            "metadata.name: Invalid value: \"..\": may not be '..'"
        );
    }

    #[test]
    fn service_names_must_start_with_a_letter() {
        assert!(validate_name("services", "web").is_ok());
        assert!(
            validate_name("services", "1web")
                .unwrap_err()
                .contains("DNS-1035 label")
        );
    }

    #[test]
    fn generate_name_prefix_may_end_with_dash() {
        assert!(validate_generate_name("pods", "web-").is_ok());
        assert!(validate_generate_name("pods", "Web-").is_err());
    }

    #[test]
    fn label_keys_and_values_use_qualified_name_rules() {
        let ok = json!({"app.kubernetes.io/name": "cassandra", "tier": "", "x_y": "A.b-1"});
        assert!(validate_labels(ok.as_object().unwrap()).is_ok());
        let bad_value = json!({"app": "-x"});
        assert_eq!(
            validate_labels(bad_value.as_object().unwrap()).unwrap_err(),
            "metadata.labels: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        let bad_prefix = json!({"/app": "x"});
        assert_eq!(
            validate_labels(bad_prefix.as_object().unwrap()).unwrap_err(),
            "metadata.labels: Invalid value: \"/app\": prefix part must be non-empty"
        );
        let too_many = json!({"a/b/c": "x"});
        assert!(
            validate_labels(too_many.as_object().unwrap())
                .unwrap_err()
                .contains(
                    "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
                )
        );
    }

    #[test]
    fn annotation_keys_are_checked_case_insensitively_and_size_limited() {
        let ok = json!({"Example.COM/Foo": "anything at all: {json}"});
        assert!(validate_annotations(ok.as_object().unwrap()).is_ok());
        let big = json!({"a": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)});
        assert!(
            validate_annotations(big.as_object().unwrap())
                .unwrap_err()
                .contains("Too long: may not be more than 262144 bytes")
        );
    }

    #[test]
    fn metadata_validation_aggregates_name_labels_and_annotations() {
        let ok = json!({"metadata": {"name": "cc", "labels": {"app": "x"}, "annotations": {"a/b": "{}"}}});
        assert!(validate_metadata("cassandraclusters", &ok).is_ok());
        let generated = json!({"metadata": {"generateName": "cc-"}});
        assert!(validate_metadata("pods", &generated).is_ok());
        let bad = json!({"metadata": {"name": "Bad", "labels": {"app": "-x"}}});
        let err = validate_metadata("configmaps", &bad).unwrap_err();
        assert!(
            err.starts_with(
                "[metadata.name: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain"
            ),
            "{err}"
        );
        assert!(
            err.contains(", metadata.labels: Invalid value: \"-x\": a valid label"),
            "{err}"
        );
        assert!(err.ends_with("]"));
        let unnamed = json!({"metadata": {}});
        assert_eq!(
            validate_metadata("pods", &unnamed).unwrap_err(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn crd_must_be_named_plural_dot_group_with_one_storage_version() {
        let crd = json!({"metadata": {"name": "cassandraclusters.db.orange.com"}, "spec": {"group": "db.orange.com",
            "names": {"plural": "cassandraclusters", "kind": "CassandraCluster"}, "scope": "Namespaced",
            "versions": [{"name": "v2", "served": true, "storage": true}]}});
        assert!(validate_crd(&crd).is_ok());
        let mut wrong = crd.clone();
        wrong["metadata"]["name"] = json!("cc.db.orange.com");
        assert_eq!(
            validate_crd(&wrong).unwrap_err(),
            "metadata.name: Invalid value: \"cc.db.orange.com\": must be spec.names.plural+\".\"+spec.group"
        );
        let mut scope = crd.clone();
        scope["spec"]["scope"] = json!("Global");
        assert_eq!(
            validate_crd(&scope).unwrap_err(),
            "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""
        );
        let mut two = crd.clone();
        two["spec"]["versions"] =
            json!([{"name": "v1", "storage": true}, {"name": "v2", "storage": true}]);
        assert!(
            validate_crd(&two)
                .unwrap_err()
                .ends_with("must have exactly one version marked as storage version")
        );
    }

    #[test]
    fn go_quote_escapes_like_percent_q() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("é"), "\"é\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
    }
}
