//! The caller's kubeconfig contexts and certificates, as `register` and `export` read them.

use crate::sites::credentials;

/// Encodes DER certificates as PEM.
pub fn der_to_pem(ders: &[Vec<u8>]) -> Vec<u8> {
    use base64::Engine;
    let mut out = String::new();
    for der in ders {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b = base64::engine::general_purpose::STANDARD.encode(der);
        for chunk in b.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}

/// Fix text for a failed context lookup.
pub fn context_fix(kubeconfig: Option<&std::path::Path>) -> String {
    let names = credentials::local_context_names(kubeconfig);
    format!(
        "pick one of the contexts in {} ({}); `kubectl config get-contexts` lists them",
        credentials::kubeconfig_label(kubeconfig),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )
}
