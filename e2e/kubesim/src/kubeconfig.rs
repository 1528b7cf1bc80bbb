//! kubeconfig for a Sim: one cluster, user (`<cluster>-admin`) and context per simulated cluster.
use base64::Engine;

/// (name, server url, CA PEM, admin token)
pub fn render(clusters: &[(String, String, String, String)]) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let mut out = String::from("apiVersion: v1\nkind: Config\npreferences: {}\n");
    out.push_str(&format!(
        "current-context: {}\n",
        clusters.first().map(|c| c.0.as_str()).unwrap_or("")
    ));
    out.push_str("clusters:\n");
    for (name, url, ca, _) in clusters {
        out.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\n",
            b64(ca)
        ));
    }
    out.push_str("users:\n");
    for (name, _, _, token) in clusters {
        out.push_str(&format!(
            "- name: {name}-admin\n  user:\n    token: {token}\n"
        ));
    }
    out.push_str("contexts:\n");
    for (name, _, _, _) in clusters {
        out.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {name}\n    user: {name}-admin\n    namespace: default\n"
        ));
    }
    out
}
