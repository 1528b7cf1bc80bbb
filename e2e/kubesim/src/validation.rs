//! Object name validation (PLACEHOLDER until A2's module lands): DNS-1123 names with kube's messages.

pub fn validate_name(resource: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("metadata.name: Required value: name or generateName is required".into());
    }
    if matches!(
        resource,
        "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings"
    ) {
        if name == "." || name == ".." || name.contains('/') || name.contains('%') {
            return Err(format!(
                "metadata.name: Invalid value: \"{name}\": may not contain '/' or '%' and may not be '.' or '..'"
            ));
        }
        return Ok(());
    }
    let label_only = resource == "namespaces";
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if label_only {
        if !ok_label(name) {
            return Err(format!(
                "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ));
        }
    } else if name.len() > 253 || !name.split('.').all(ok_label) {
        return Err(format!(
            "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ));
    }
    Ok(())
}
