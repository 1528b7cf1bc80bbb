//! Vetting of kubeconfigs read through the API: what in them would run, read local files or weaken TLS.
//!
//! Anyone who can write a Secret (or a ClientConfig) in the controller's namespace chooses what
//! such a kubeconfig says, so it is data: an `exec` or `auth-provider` plugin would run a command
//! as the controller (or as whoever runs `multi-casskop check`), `tokenFile` and the file forms
//! of `certificate-authority`, `client-certificate` and `client-key` would read files of the
//! controller's host (its own service-account token included), and `insecure-skip-tls-verify`,
//! `http://` servers and `proxy-url` would send the site's token where anyone on the path can
//! take it. Each is refused here, before kube-rs sees the kubeconfig, unless the operator opted
//! in. The operator's own `--kubeconfig` is never vetted: it is trusted as kubectl trusts it.

use kube::config::{AuthInfo, Cluster, Kubeconfig};

/// The flag that allows plugins and file references in API-sourced kubeconfigs.
pub const EXEC_FLAG: &str = "--insecure-kubeconfig-exec";
/// The flag that allows unverified or plain-text connections in API-sourced kubeconfigs.
pub const TLS_FLAG: &str = "--insecure-kubeconfig-tls";

/// What a kubeconfig read through the API may use beyond plain data: the operator's opt-ins.
/// The default refuses everything [`RefusedField`] lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KubeconfigPolicy {
    /// `--insecure-kubeconfig-exec`: `exec` and `auth-provider` plugins, `tokenFile`, and the
    /// file forms of `certificate-authority`, `client-certificate` and `client-key`.
    pub allow_exec: bool,
    /// `--insecure-kubeconfig-tls`: `insecure-skip-tls-verify: true`, `http://` servers and
    /// `proxy-url`.
    pub allow_insecure_tls: bool,
}

/// A kubeconfig feature refused in credentials read through the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedField {
    /// `users[].user.exec`: a credential plugin command.
    Exec,
    /// `users[].user.auth-provider`: a cloud auth plugin (runs commands, refreshes tokens).
    AuthProvider,
    /// `users[].user.tokenFile`: a token read from a local file.
    TokenFile,
    /// `clusters[].cluster.certificate-authority`: a CA read from a local file.
    CertificateAuthorityFile,
    /// `users[].user.client-certificate`: a client certificate read from a local file.
    ClientCertificateFile,
    /// `users[].user.client-key`: a client key read from a local file.
    ClientKeyFile,
    /// `clusters[].cluster.proxy-url`: the connection sent through another host.
    ProxyUrl,
    /// `clusters[].cluster.insecure-skip-tls-verify: true`: any certificate accepted.
    InsecureSkipTlsVerify,
    /// An `http://` server: the token sent in clear text.
    PlainHttp,
}

impl RefusedField {
    /// What honouring it would do, for the message.
    pub fn why(self) -> &'static str {
        match self {
            RefusedField::Exec => "an exec plugin would run a command as the controller",
            RefusedField::AuthProvider => {
                "an auth-provider plugin would run commands and read files as the controller"
            }
            RefusedField::TokenFile => "a tokenFile would read a file of the controller's host",
            RefusedField::CertificateAuthorityFile
            | RefusedField::ClientCertificateFile
            | RefusedField::ClientKeyFile => {
                "a file path would read a file of the controller's host (use the -data form)"
            }
            RefusedField::ProxyUrl => "a proxy-url would send the connection through another host",
            RefusedField::InsecureSkipTlsVerify => {
                "insecure-skip-tls-verify would accept any server certificate"
            }
            RefusedField::PlainHttp => "an http:// server would get the token in clear text",
        }
    }

    /// The opt-in flag that allows it.
    pub fn flag(self) -> &'static str {
        match self {
            RefusedField::ProxyUrl
            | RefusedField::InsecureSkipTlsVerify
            | RefusedField::PlainHttp => TLS_FLAG,
            _ => EXEC_FLAG,
        }
    }

    fn allowed_by(self, policy: KubeconfigPolicy) -> bool {
        if self.flag() == TLS_FLAG {
            policy.allow_insecure_tls
        } else {
            policy.allow_exec
        }
    }
}

/// One refused field: where it is in the kubeconfig (`users[0].user.exec`) and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Path of the field in the kubeconfig, as kubectl's jsonpath would name it.
    pub field: String,
    /// What the field is.
    pub kind: RefusedField,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is refused: {} (allowed only with {})",
            self.field,
            self.kind.why(),
            self.kind.flag()
        )
    }
}

/// Every refused field of the cluster and user that context `context` uses (kube-rs takes the
/// first entry of a name, and so does this). Empty when the context is missing: the caller's
/// context check reports that.
pub fn vet(kc: &Kubeconfig, context: &str, policy: KubeconfigPolicy) -> Vec<Refusal> {
    let Some(ctx) = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if let Some((i, cluster)) = kc
        .clusters
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == ctx.cluster)
        .and_then(|(i, c)| c.cluster.as_ref().map(|c| (i, c)))
    {
        found.extend(cluster_fields(cluster, &format!("clusters[{i}].cluster")));
    }
    if let Some(user) = &ctx.user
        && let Some((i, auth)) = kc
            .auth_infos
            .iter()
            .enumerate()
            .find(|(_, u)| &u.name == user)
            .and_then(|(i, u)| u.auth_info.as_ref().map(|a| (i, a)))
    {
        found.extend(user_fields(auth, &format!("users[{i}].user")));
    }
    found
        .into_iter()
        .filter(|r| !r.kind.allowed_by(policy))
        .collect()
}

/// The refused fields of a cluster entry at `path`.
fn cluster_fields(cluster: &Cluster, path: &str) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut add = |name: &str, kind| {
        out.push(Refusal {
            field: format!("{path}.{name}"),
            kind,
        });
    };
    if cluster.server.as_deref().is_some_and(is_plain_http) {
        add("server", RefusedField::PlainHttp);
    }
    if cluster.insecure_skip_tls_verify == Some(true) {
        add(
            "insecure-skip-tls-verify",
            RefusedField::InsecureSkipTlsVerify,
        );
    }
    if present(cluster.certificate_authority.as_deref()) {
        add(
            "certificate-authority",
            RefusedField::CertificateAuthorityFile,
        );
    }
    if present(cluster.proxy_url.as_deref()) {
        add("proxy-url", RefusedField::ProxyUrl);
    }
    out
}

/// The refused fields of a user entry at `path`.
fn user_fields(user: &AuthInfo, path: &str) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut add = |name: &str, kind| {
        out.push(Refusal {
            field: format!("{path}.{name}"),
            kind,
        });
    };
    if user.exec.is_some() {
        add("exec", RefusedField::Exec);
    }
    if user.auth_provider.is_some() {
        add("auth-provider", RefusedField::AuthProvider);
    }
    if present(user.token_file.as_deref()) {
        add("tokenFile", RefusedField::TokenFile);
    }
    if present(user.client_certificate.as_deref()) {
        add("client-certificate", RefusedField::ClientCertificateFile);
    }
    if present(user.client_key.as_deref()) {
        add("client-key", RefusedField::ClientKeyFile);
    }
    out
}

/// kube-rs reads a file for any non-empty path.
fn present(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// A server URL without TLS (the scheme compared as URL schemes are: case-insensitively).
pub fn is_plain_http(server: &str) -> bool {
    server
        .trim()
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

/// Why a client built from `config` does not verify the server it talks to, if it does not;
/// `check` says so instead of "certificate trusted".
pub fn unverified_tls(config: &kube::Config) -> Option<&'static str> {
    if config
        .cluster_url
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http"))
    {
        Some("plain http: no TLS, the server is not verified and the token travels in clear text")
    } else if config.accept_invalid_certs {
        Some("insecure-skip-tls-verify: the server's certificate is not verified")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: KubeconfigPolicy = KubeconfigPolicy {
        allow_exec: false,
        allow_insecure_tls: false,
    };

    /// A kubeconfig whose context `ctx` uses cluster `c` and user `u` (each second in its list,
    /// after a decoy entry that must not be looked at), with `cluster` and `user` spliced in.
    fn kc(cluster: &str, user: &str) -> Kubeconfig {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: http://decoy:1\n    insecure-skip-tls-verify: true\n- name: c\n  cluster:\n    server: https://h:6443\n{cluster}users:\n- name: other\n  user:\n    tokenFile: /decoy\n- name: u\n  user:\n{user}contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\ncurrent-context: ctx\n"
        );
        Kubeconfig::from_yaml(&text).unwrap()
    }

    fn fields(refusals: &[Refusal]) -> Vec<&str> {
        refusals.iter().map(|r| r.field.as_str()).collect()
    }

    #[test]
    fn plain_token_and_ca_data_pass() {
        let k = kc(
            "    certificate-authority-data: Zm9v\n",
            "    token: abc\n    client-certificate-data: Zm9v\n    client-key-data: Zm9v\n",
        );
        assert_eq!(vet(&k, "ctx", STRICT), Vec::new());
    }

    #[test]
    fn exec_plugin_is_refused_naming_users_exec() {
        let k = kc(
            "",
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n",
        );
        let r = vet(&k, "ctx", STRICT);
        assert_eq!(fields(&r), ["users[1].user.exec"]);
        assert_eq!(r[0].kind, RefusedField::Exec);
        assert_eq!(
            r[0].to_string(),
            "users[1].user.exec is refused: an exec plugin would run a command as the controller (allowed only with --insecure-kubeconfig-exec)"
        );
    }

    #[test]
    fn auth_provider_is_refused_naming_users_auth_provider() {
        let k = kc(
            "",
            "    auth-provider:\n      name: gcp\n      config: {cmd-path: /bin/sh}\n",
        );
        assert_eq!(
            fields(&vet(&k, "ctx", STRICT)),
            ["users[1].user.auth-provider"]
        );
    }

    #[test]
    fn token_file_is_refused_naming_users_token_file() {
        let k = kc(
            "",
            "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
        );
        let r = vet(&k, "ctx", STRICT);
        assert_eq!(fields(&r), ["users[1].user.tokenFile"]);
        assert_eq!(r[0].kind.flag(), EXEC_FLAG);
    }

    #[test]
    fn client_certificate_and_key_files_are_refused_by_name() {
        let k = kc(
            "",
            "    client-certificate: /etc/cert.pem\n    client-key: /etc/key.pem\n",
        );
        assert_eq!(
            fields(&vet(&k, "ctx", STRICT)),
            [
                "users[1].user.client-certificate",
                "users[1].user.client-key"
            ]
        );
    }

    #[test]
    fn certificate_authority_file_is_refused_naming_clusters_field() {
        let k = kc("    certificate-authority: /etc/ca.pem\n", "    token: t\n");
        assert_eq!(
            fields(&vet(&k, "ctx", STRICT)),
            ["clusters[1].cluster.certificate-authority"]
        );
    }

    #[test]
    fn proxy_url_is_refused_as_a_tls_weakening() {
        let k = kc("    proxy-url: socks5://proxy:1080\n", "    token: t\n");
        let r = vet(&k, "ctx", STRICT);
        assert_eq!(fields(&r), ["clusters[1].cluster.proxy-url"]);
        assert_eq!(r[0].kind.flag(), TLS_FLAG);
    }

    #[test]
    fn insecure_skip_tls_verify_true_is_refused_and_false_is_not() {
        let k = kc("    insecure-skip-tls-verify: true\n", "    token: t\n");
        assert_eq!(
            fields(&vet(&k, "ctx", STRICT)),
            ["clusters[1].cluster.insecure-skip-tls-verify"]
        );
        let k = kc("    insecure-skip-tls-verify: false\n", "    token: t\n");
        assert!(vet(&k, "ctx", STRICT).is_empty());
    }

    #[test]
    fn http_server_is_refused_naming_clusters_server() {
        let text = "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: 'HTTP://h:8080'}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: ctx\n  context: {cluster: c, user: u}\n";
        let k = Kubeconfig::from_yaml(text).unwrap();
        let r = vet(&k, "ctx", STRICT);
        assert_eq!(fields(&r), ["clusters[0].cluster.server"]);
        assert_eq!(r[0].kind, RefusedField::PlainHttp);
    }

    #[test]
    fn each_flag_allows_only_its_own_fields() {
        let k = kc(
            "    insecure-skip-tls-verify: true\n",
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: x\n",
        );
        let exec_only = KubeconfigPolicy {
            allow_exec: true,
            allow_insecure_tls: false,
        };
        assert_eq!(
            fields(&vet(&k, "ctx", exec_only)),
            ["clusters[1].cluster.insecure-skip-tls-verify"]
        );
        let tls_only = KubeconfigPolicy {
            allow_exec: false,
            allow_insecure_tls: true,
        };
        assert_eq!(fields(&vet(&k, "ctx", tls_only)), ["users[1].user.exec"]);
        let both = KubeconfigPolicy {
            allow_exec: true,
            allow_insecure_tls: true,
        };
        assert!(vet(&k, "ctx", both).is_empty());
    }

    #[test]
    fn entries_of_other_contexts_are_not_vetted() {
        // The decoy cluster and user (http, insecure, tokenFile) belong to no context used.
        let k = kc("", "    token: t\n");
        assert!(vet(&k, "ctx", STRICT).is_empty());
        assert!(vet(&k, "missing", STRICT).is_empty());
    }

    #[test]
    fn unverified_tls_names_http_and_skip_verify() {
        let mut c = kube::Config::new("https://h:1".parse().unwrap());
        assert_eq!(unverified_tls(&c), None);
        c.accept_invalid_certs = true;
        assert!(
            unverified_tls(&c)
                .unwrap()
                .starts_with("insecure-skip-tls-verify")
        );
        let c = kube::Config::new("http://h:1".parse().unwrap());
        assert!(unverified_tls(&c).unwrap().starts_with("plain http"));
    }
}
