//! Credential loading for remote sites and kubeconfig contexts: mounted Secret directories, Secrets, kubeconfigs.
//!
//! One place decides where a site's credentials come from and turns them into a `kube::Config`;
//! the controller's registry, `check` and `status` all go through it. Every error names the
//! source that was tried and what is wrong with it, and never contains a token.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use base64::Engine;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

use super::untrusted::{self, KubeconfigPolicy, Refusal, RefusedField};

/// Where a site's credentials came from (shown in status/check, never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    InCluster,
    KubeconfigContext {
        context: String,
    },
    MountedDir {
        path: PathBuf,
    },
    Secret {
        namespace: String,
        name: String,
    },
    ClientConfig {
        namespace: String,
        name: String,
        secret: String,
        context: String,
    },
}

/// Kubeconfig keys read from a Secret or a mounted directory, in order of preference
/// (`config`: kubemcsa; `kubeconfig`: k8ssandra).
pub const KUBECONFIG_KEYS: [&str; 2] = ["config", "kubeconfig"];

/// A credential problem, phrased for a human: which source, what is wrong, no secret values.
///
/// `location` fields name where the credentials were read, as [`CredentialSource::describe`]
/// words it (`secret cassandra/k8s-cluster2`, `kubeconfig in secret ... (key config)`).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// The credentials parsed, but no client could be built from them (bad certificate bytes).
    #[error("credentials from {location}: cannot build a client: {reason}")]
    Client { location: String, reason: String },
    /// The mounted Secret path of a remote is a file, not a directory.
    #[error("mounted directory {} is not a directory", .dir.display())]
    NotADirectory { dir: PathBuf },
    /// The mounted Secret directory of a remote could not be opened.
    #[error("mounted directory {} cannot be read: {reason}", .dir.display())]
    DirectoryUnreadable { dir: PathBuf, reason: String },
    /// The mounted Secret directory of a remote could not be listed.
    #[error("mounted directory {} cannot be listed: {reason}", .dir.display())]
    DirectoryUnlistable { dir: PathBuf, reason: String },
    /// One key file of a mounted Secret directory could not be read.
    #[error("mounted file {} cannot be read: {reason}", .path.display())]
    FileUnreadable { path: PathBuf, reason: String },
    /// A key of a Secret or mounted directory holds bytes that are not UTF-8 text.
    #[error("key {key} in {location} is not UTF-8 text")]
    NotText { key: String, location: String },
    /// A Secret or mounted directory has neither a kubeconfig key nor server+token+ca.crt.
    #[error(
        "{location} has no key config, kubeconfig or server+token+ca.crt (missing: {}; keys found: {})",
        .missing.join(", "),
        list_or_none(.found)
    )]
    NoKnownKeys {
        location: String,
        missing: Vec<String>,
        found: Vec<String>,
    },
    /// The `server` key of a Secret or mounted directory is not a usable URL.
    #[error("server in {location} {problem}")]
    Server {
        location: String,
        problem: ServerProblem,
    },
    /// The `token` key is empty.
    #[error("token in {location} is empty")]
    EmptyToken { location: String },
    /// The `token` key contains whitespace (typically still base64-encoded).
    #[error("token in {location} contains whitespace (is it still base64-encoded twice?)")]
    TokenWhitespace { location: String },
    /// The `ca.crt` key holds no usable PEM certificate.
    #[error("ca.crt in {location} is not PEM: {problem}")]
    CaNotPem {
        location: String,
        problem: PemProblem,
    },
    /// A kubeconfig is empty.
    #[error("{location} is empty")]
    EmptyKubeconfig { location: String },
    /// A kubeconfig is not YAML; `reason` is the parser's first line, scrubbed of secrets.
    #[error("{location} is not valid YAML: {reason}")]
    KubeconfigYaml { location: String, reason: String },
    /// A YAML document without clusters or contexts.
    #[error("{location} is not a kubeconfig: it has no clusters and no contexts")]
    NotAKubeconfig { location: String },
    /// No context named and no current-context to fall back on among several.
    #[error(
        "{location} has no current-context and {} contexts ({}); name one",
        .contexts.len(),
        .contexts.join(", ")
    )]
    NoCurrentContext {
        location: String,
        contexts: Vec<String>,
    },
    /// The context asked for is not in the kubeconfig.
    #[error("context {context} not found in {location} (contexts: {})", list_or_none(.contexts))]
    ContextNotFound {
        context: String,
        location: String,
        contexts: Vec<String>,
    },
    /// The context names a cluster the kubeconfig does not define.
    #[error("context {context} in {location} refers to cluster {cluster:?}, which is not defined")]
    UndefinedCluster {
        context: String,
        location: String,
        cluster: String,
    },
    /// The cluster's `server` is not a usable URL.
    #[error("server of cluster {cluster} in {location} {problem}")]
    ClusterServer {
        cluster: String,
        location: String,
        problem: ServerProblem,
    },
    /// The cluster's `certificate-authority-data` is not base64.
    #[error(
        "certificate-authority-data of cluster {cluster} in {location} is not valid base64: {reason}"
    )]
    CaDataNotBase64 {
        cluster: String,
        location: String,
        reason: String,
    },
    /// The cluster's `certificate-authority-data` decodes to no usable PEM certificate.
    #[error("certificate-authority-data of cluster {cluster} in {location} is not PEM: {problem}")]
    CaDataNotPem {
        cluster: String,
        location: String,
        problem: PemProblem,
    },
    /// The context names a user the kubeconfig does not define.
    #[error("context {context} in {location} refers to user {user:?}, which is not defined")]
    UndefinedUser {
        context: String,
        location: String,
        user: String,
    },
    /// A kubeconfig (or `server` key) read through the API uses what only the operator's own
    /// kubeconfig may: a plugin, a local file, unverified or plain-text transport.
    #[error("{location}: {}", join_refusals(.refusals))]
    Refused {
        location: String,
        refusals: Vec<Refusal>,
    },
    /// kube-rs refused the context (auth plugin, proxy, ...).
    #[error("context {context} in {location} is unusable: {reason}")]
    UnusableContext {
        context: String,
        location: String,
        reason: String,
    },
    /// The `--kubeconfig` file given does not exist.
    #[error("kubeconfig file {} does not exist", .path.display())]
    KubeconfigMissing { path: PathBuf },
    /// The kubeconfig file(s) could not be read or parsed.
    #[error("kubeconfig {label} cannot be read: {reason}")]
    KubeconfigUnreadable { label: String, reason: String },
    /// No kubeconfig file at all where one is required.
    #[error("no kubeconfig file found ({label})")]
    NoKubeconfig { label: String },
    /// Running in a pod, but the service account's credentials cannot be used.
    #[error("in-cluster service account is unusable: {reason}")]
    InClusterUnusable { reason: String },
    /// A remote found in none of its sources; each field says what was found there.
    #[error(
        "no credentials for remote {remote}: {directory}, {secret}, no context {remote} in kubeconfig {kubeconfig}"
    )]
    NoRemoteCredentials {
        remote: String,
        /// `no directory <path>` or `empty directory <path>`.
        directory: String,
        /// `no secret <ns>/<name>` or `secret <ns>/<name> unreadable (<why>)`.
        secret: String,
        /// The kubeconfig searched for a context named after the remote.
        kubeconfig: String,
    },
    /// The Secret a ClientConfig references has no kubeconfig key.
    #[error(
        "secret {namespace}/{secret} referenced by ClientConfig {client_config} has no key kubeconfig or config (keys found: {})",
        list_or_none(.found)
    )]
    ClientConfigSecretKeys {
        namespace: String,
        secret: String,
        client_config: String,
        found: Vec<String>,
    },
    /// The Secret a ClientConfig references does not exist.
    #[error(
        "secret {namespace}/{secret} referenced by ClientConfig {client_config} does not exist"
    )]
    ClientConfigSecretMissing {
        namespace: String,
        secret: String,
        client_config: String,
    },
    /// The Secret a ClientConfig references could not be read.
    #[error(
        "secret {namespace}/{secret} referenced by ClientConfig {client_config} cannot be read: {reason}"
    )]
    ClientConfigSecretUnreadable {
        namespace: String,
        secret: String,
        client_config: String,
        reason: String,
    },
}

/// What is wrong with an API server URL (completes "server in ... ").
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ServerProblem {
    /// No URL at all.
    #[error("is empty")]
    Empty,
    /// Not parseable as a URI.
    #[error("is not a URL ({reason}): {server:?}")]
    NotUrl { server: String, reason: String },
    /// A scheme other than http or https (or none).
    #[error("is not an http(s) URL: {server:?}")]
    NotHttp { server: String },
    /// No host part.
    #[error("has no host: {server:?}")]
    NoHost { server: String },
}

/// What is wrong with PEM certificate data.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PemProblem {
    /// Binary data (DER?) rather than text.
    #[error("not text (DER or binary data?)")]
    NotText,
    /// A certificate block is not closed.
    #[error("a BEGIN CERTIFICATE block has no END CERTIFICATE line")]
    Unterminated,
    /// The body of certificate `index` (from 1) is not base64.
    #[error("certificate {index} has an invalid base64 body: {reason}")]
    BadBase64 { index: usize, reason: String },
    /// No certificate block at all.
    #[error("no -----BEGIN CERTIFICATE----- block")]
    NoCertificate,
}

/// Every refusal, `; `-separated.
fn join_refusals(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `a, b, c`, or `none` for an empty list.
fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// Credentials ready to build a client with. `Debug` shows where they point and how they
/// authenticate, never a token, key, password or plugin setting.
#[derive(Clone)]
pub struct Credentials {
    /// Connection settings (the token lives in a `SecretString` inside, redacted in Debug).
    pub config: kube::Config,
    /// Namespace the credentials point at (secret `namespace` key or the context's namespace).
    pub default_namespace: Option<String>,
    /// Where they came from.
    pub source: CredentialSource,
    /// Hash of the raw inputs: equal fingerprints mean nothing changed (no client rebuild).
    pub fingerprint: u64,
}

impl Credentials {
    /// Builds a client; fails only on local TLS setup problems (bad certificate bytes).
    pub fn client(&self) -> Result<kube::Client, CredentialError> {
        crate::sites::deadlines::build_client(self.config.clone()).map_err(|e| {
            CredentialError::Client {
                location: self.source.describe(),
                reason: e.to_string(),
            }
        })
    }

    /// The API server URL these credentials point at.
    pub fn server(&self) -> String {
        self.config.cluster_url.to_string()
    }

    /// Builds the client on a blocking thread, bounded by `deadline`: TLS setup reads
    /// certificates and an allowed exec plugin runs a command right there, neither of which may
    /// hold an async worker thread (nor, when it hangs, the caller forever).
    pub async fn build_client(
        &self,
        deadline: std::time::Duration,
    ) -> Result<kube::Client, CredentialError> {
        let creds = self.clone();
        let task = tokio::task::spawn_blocking(move || creds.client());
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(built)) => built,
            Ok(Err(join)) => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(CredentialError::Client {
                location: self.source.describe(),
                reason: format!(
                    "building the client took longer than {deadline:?} (a credential plugin that does not return?)"
                ),
            }),
        }
    }

    /// How these credentials authenticate, by kind only (for `Debug`).
    fn auth_kinds(&self) -> Vec<&'static str> {
        let a = &self.config.auth_info;
        let mut kinds = Vec::new();
        let mut add = |present: bool, kind| {
            if present {
                kinds.push(kind);
            }
        };
        add(a.token.is_some(), "token");
        add(a.token_file.is_some(), "tokenFile");
        add(a.username.is_some() || a.password.is_some(), "basic");
        add(
            a.client_certificate.is_some() || a.client_certificate_data.is_some(),
            "client-certificate",
        );
        add(a.exec.is_some(), "exec");
        add(a.auth_provider.is_some(), "auth-provider");
        kinds
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server())
            .field("auth", &self.auth_kinds())
            .field("default_namespace", &self.default_namespace)
            .field("source", &self.source)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl CredentialSource {
    /// Human wording of the source, e.g. `secret cassandra/k8s-cluster2`.
    pub fn describe(&self) -> String {
        match self {
            CredentialSource::InCluster => "the in-cluster service account".to_string(),
            CredentialSource::KubeconfigContext { context } => {
                format!("kubeconfig context {context}")
            }
            CredentialSource::MountedDir { path } => {
                format!("mounted directory {}", path.display())
            }
            CredentialSource::Secret { namespace, name } => format!("secret {namespace}/{name}"),
            CredentialSource::ClientConfig {
                namespace,
                name,
                secret,
                context,
            } => format!(
                "ClientConfig {namespace}/{name} (secret {namespace}/{secret}, context {context})"
            ),
        }
    }
}

/// What a Secret lookup gave (from a watch cache or a GET). `Debug` shows key names only.
#[derive(Clone)]
pub enum SecretLookup {
    /// The Secret exists; its data keys (`stringData` already folded in by the API server).
    Found(BTreeMap<String, Vec<u8>>),
    /// No such Secret.
    NotFound,
    /// It could not be read (forbidden, unreachable, ...): the reason.
    Failed(String),
}

impl std::fmt::Debug for SecretLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretLookup::Found(keys) => f
                .debug_tuple("Found")
                .field(&keys.keys().collect::<Vec<_>>())
                .finish(),
            SecretLookup::NotFound => f.write_str("NotFound"),
            SecretLookup::Failed(why) => f.debug_tuple("Failed").field(why).finish(),
        }
    }
}

impl SecretLookup {
    /// From a Secret object.
    pub fn from_secret(secret: &k8s_openapi::api::core::v1::Secret) -> Self {
        SecretLookup::Found(secret_keys(secret))
    }
}

/// The data keys of a Secret (`data`, plus `stringData` if a client left it in the object).
pub fn secret_keys(secret: &k8s_openapi::api::core::v1::Secret) -> BTreeMap<String, Vec<u8>> {
    let mut keys: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        keys.insert(k.clone(), v.clone().into_bytes());
    }
    keys
}

/// Reads a mounted Secret directory: one file per key. Hidden entries (Kubernetes' `..data`
/// symlink and timestamped directories) are skipped; symlinks are followed.
/// `Ok(None)` when the directory does not exist.
pub fn read_secret_dir(dir: &Path) -> Result<Option<BTreeMap<String, Vec<u8>>>, CredentialError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(CredentialError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(CredentialError::DirectoryUnreadable {
                dir: dir.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let mut keys = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| CredentialError::DirectoryUnlistable {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // metadata() follows symlinks (key -> ..data/key).
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            _ => continue,
        }
        let bytes = std::fs::read(&path).map_err(|e| CredentialError::FileUnreadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        keys.insert(name, bytes);
    }
    Ok(Some(keys))
}

/// Fingerprint of raw credential inputs (keys, values, context): change detection only.
pub fn fingerprint(keys: &BTreeMap<String, Vec<u8>>, context: Option<&str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    keys.hash(&mut h);
    context.hash(&mut h);
    h.finish()
}

/// Parses the keys of a Secret or mounted directory into credentials.
///
/// `origin` is the source, used in every message. `context`: the kubeconfig context to use
/// (ClientConfig `contextName`); default: the kubeconfig's current context, or its only one.
/// The keys came through the API: what `policy` does not allow is refused before kube-rs
/// sees it (see [`untrusted`]).
pub async fn from_keys(
    keys: &BTreeMap<String, Vec<u8>>,
    origin: CredentialSource,
    context: Option<&str>,
    policy: KubeconfigPolicy,
) -> Result<Credentials, CredentialError> {
    let what = origin.describe();
    let fp = fingerprint(keys, context);
    let kubeconfig_key = KUBECONFIG_KEYS.iter().find(|k| keys.contains_key(**k));
    if let Some(key) = kubeconfig_key {
        let text = std::str::from_utf8(&keys[*key]).map_err(|_| CredentialError::NotText {
            key: key.to_string(),
            location: what.clone(),
        })?;
        let where_ = format!("kubeconfig in {what} (key {key})");
        let mut creds = from_untrusted_kubeconfig(text, context, &where_, policy).await?;
        creds.source = origin;
        creds.fingerprint = fp;
        return Ok(creds);
    }
    let four = ["server", "token", "ca.crt"];
    let missing: Vec<&str> = four
        .iter()
        .copied()
        .filter(|k| !keys.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(CredentialError::NoKnownKeys {
            location: what,
            missing: missing.iter().map(ToString::to_string).collect(),
            found: keys.keys().cloned().collect(),
        });
    }
    let text = |k: &str| -> Result<String, CredentialError> {
        std::str::from_utf8(&keys[k])
            .map(|s| s.trim().to_string())
            .map_err(|_| CredentialError::NotText {
                key: k.to_string(),
                location: what.clone(),
            })
    };
    let server = text("server")?;
    validate_server(&server).map_err(|problem| CredentialError::Server {
        location: what.clone(),
        problem,
    })?;
    if untrusted::is_plain_http(&server) && !policy.allow_insecure_tls {
        return Err(CredentialError::Refused {
            location: what,
            refusals: vec![Refusal {
                field: "server".to_string(),
                kind: RefusedField::PlainHttp,
            }],
        });
    }
    let token = text("token")?;
    if token.is_empty() {
        return Err(CredentialError::EmptyToken { location: what });
    }
    if token.chars().any(char::is_whitespace) {
        return Err(CredentialError::TokenWhitespace { location: what });
    }
    let ca = &keys["ca.crt"];
    check_pem(ca).map_err(|problem| CredentialError::CaNotPem {
        location: what.clone(),
        problem,
    })?;
    let namespace = match keys.get("namespace") {
        Some(_) => Some(text("namespace")?).filter(|s| !s.is_empty()),
        None => None,
    };
    let kc = kubeconfig_for("site", &server, ca, &token, namespace.as_deref());
    let mut creds = from_kubeconfig(kc, Some("site"), &what).await?;
    creds.source = origin;
    creds.fingerprint = fp;
    creds.default_namespace = namespace;
    Ok(creds)
}

/// Parses and vets kubeconfig text read through the API (`where_` names it), then produces
/// credentials: what `policy` does not allow never reaches kube-rs, which would run or read it.
async fn from_untrusted_kubeconfig(
    text: &str,
    context: Option<&str>,
    where_: &str,
    policy: KubeconfigPolicy,
) -> Result<Credentials, CredentialError> {
    let kc = parse_kubeconfig_text(text, where_)?;
    let ctx_name = pick_context(&kc, context, where_)?;
    let refusals = untrusted::vet(&kc, &ctx_name, policy);
    if !refusals.is_empty() {
        return Err(CredentialError::Refused {
            location: where_.to_string(),
            refusals,
        });
    }
    from_kubeconfig(kc, Some(&ctx_name), where_).await
}

/// Builds an in-memory kubeconfig with one cluster, user and context all named `name`.
pub fn kubeconfig_for(
    name: &str,
    server: &str,
    ca_pem: &[u8],
    token: &str,
    namespace: Option<&str>,
) -> Kubeconfig {
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.to_string(),
            cluster: Some(Cluster {
                server: Some(server.to_string()),
                certificate_authority_data: Some(
                    base64::engine::general_purpose::STANDARD.encode(ca_pem),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.to_string(),
            auth_info: Some(AuthInfo {
                token: Some(token.to_string().into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: name.to_string(),
            context: Some(Context {
                cluster: name.to_string(),
                user: Some(name.to_string()),
                namespace: namespace.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(name.to_string()),
        api_version: Some("v1".to_string()),
        kind: Some("Config".to_string()),
        ..Default::default()
    }
}

/// Parses kubeconfig YAML; `where_` names it in the error. Parser messages are scrubbed of
/// every long word of the input, so a token or key quoted by the parser never leaks.
pub fn parse_kubeconfig_text(text: &str, where_: &str) -> Result<Kubeconfig, CredentialError> {
    if text.trim().is_empty() {
        return Err(CredentialError::EmptyKubeconfig {
            location: where_.to_string(),
        });
    }
    let kc = Kubeconfig::from_yaml(text).map_err(|e| {
        CredentialError::KubeconfigYaml {
            location: where_.to_string(),
            // The parser appends a snippet of the input (which may hold the token): keep line 1.
            reason: scrub(e.to_string().lines().next().unwrap_or_default(), text),
        }
    })?;
    if kc.contexts.is_empty() && kc.clusters.is_empty() {
        return Err(CredentialError::NotAKubeconfig {
            location: where_.to_string(),
        });
    }
    Ok(kc)
}

/// Replaces in `msg` every word of `input` long enough to be a secret.
pub fn scrub(msg: &str, input: &str) -> String {
    let mut out = msg.to_string();
    let mut words: Vec<&str> = input
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',' || c == ':')
        .filter(|w| w.len() >= 12)
        .collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    for w in words {
        if out.contains(w) {
            out = out.replace(w, "<redacted>");
        }
    }
    out
}

fn validate_server(server: &str) -> Result<(), ServerProblem> {
    if server.is_empty() {
        return Err(ServerProblem::Empty);
    }
    let uri: http::Uri =
        server
            .parse()
            .map_err(|e: http::uri::InvalidUri| ServerProblem::NotUrl {
                server: server.to_string(),
                reason: e.to_string(),
            })?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => {
            return Err(ServerProblem::NotHttp {
                server: server.to_string(),
            });
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ServerProblem::NoHost {
            server: server.to_string(),
        });
    }
    Ok(())
}

/// Checks that `data` holds at least one PEM CERTIFICATE block with a base64 body.
pub fn check_pem(data: &[u8]) -> Result<(), PemProblem> {
    let text = std::str::from_utf8(data).map_err(|_| PemProblem::NotText)?;
    let mut found = 0;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let after = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = after
            .find("-----END CERTIFICATE-----")
            .ok_or(PemProblem::Unterminated)?;
        let body: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| PemProblem::BadBase64 {
                index: found + 1,
                reason: e.to_string(),
            })?;
        found += 1;
        rest = &after[end..];
        rest = &rest["-----END CERTIFICATE-----".len()..];
    }
    if found == 0 {
        return Err(PemProblem::NoCertificate);
    }
    Ok(())
}

/// Picks the context, validates it and produces credentials (source: a kubeconfig context).
pub async fn from_kubeconfig(
    kc: Kubeconfig,
    context: Option<&str>,
    where_: &str,
) -> Result<Credentials, CredentialError> {
    let ctx_name = pick_context(&kc, context, where_)?;
    let ctx = validate_context(&kc, &ctx_name, where_)?;
    let default_namespace = ctx.namespace.clone().filter(|s| !s.is_empty());
    let opts = KubeConfigOptions {
        context: Some(ctx_name.clone()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| CredentialError::UnusableContext {
            context: ctx_name.clone(),
            location: where_.to_string(),
            reason: e.to_string(),
        })?;
    Ok(Credentials {
        config,
        default_namespace,
        source: CredentialSource::KubeconfigContext { context: ctx_name },
        fingerprint: 0,
    })
}

/// The context to use: `context`, else the current one, else the only one.
fn pick_context(
    kc: &Kubeconfig,
    context: Option<&str>,
    where_: &str,
) -> Result<String, CredentialError> {
    if let Some(c) = context {
        return Ok(c.to_string());
    }
    let names: Vec<String> = kc.contexts.iter().map(|c| c.name.clone()).collect();
    match (&kc.current_context, names.as_slice()) {
        (Some(c), _) if !c.is_empty() => Ok(c.clone()),
        (_, [only]) => Ok(only.clone()),
        _ => Err(CredentialError::NoCurrentContext {
            location: where_.to_string(),
            contexts: names,
        }),
    }
}

/// Checks that context `ctx_name` exists and that its cluster (server, CA) and user are usable.
fn validate_context(
    kc: &Kubeconfig,
    ctx_name: &str,
    where_: &str,
) -> Result<Context, CredentialError> {
    let Some(ctx) = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.clone())
    else {
        return Err(CredentialError::ContextNotFound {
            context: ctx_name.to_string(),
            location: where_.to_string(),
            contexts: kc.contexts.iter().map(|c| c.name.clone()).collect(),
        });
    };
    let Some(cluster) = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
    else {
        return Err(CredentialError::UndefinedCluster {
            context: ctx_name.to_string(),
            location: where_.to_string(),
            cluster: ctx.cluster.clone(),
        });
    };
    validate_cluster(&cluster, &ctx.cluster, where_)?;
    if let Some(user) = &ctx.user
        && !kc.auth_infos.iter().any(|u| &u.name == user)
    {
        return Err(CredentialError::UndefinedUser {
            context: ctx_name.to_string(),
            location: where_.to_string(),
            user: user.clone(),
        });
    }
    Ok(ctx)
}

/// Checks a kubeconfig cluster's server URL and, when present, its CA data.
fn validate_cluster(cluster: &Cluster, name: &str, where_: &str) -> Result<(), CredentialError> {
    let server = cluster.server.clone().unwrap_or_default();
    validate_server(&server).map_err(|problem| CredentialError::ClusterServer {
        cluster: name.to_string(),
        location: where_.to_string(),
        problem,
    })?;
    let Some(data) = &cluster.certificate_authority_data else {
        return Ok(());
    };
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim().as_bytes())
        .map_err(|e| CredentialError::CaDataNotBase64 {
            cluster: name.to_string(),
            location: where_.to_string(),
            reason: e.to_string(),
        })?;
    check_pem(&pem).map_err(|problem| CredentialError::CaDataNotPem {
        cluster: name.to_string(),
        location: where_.to_string(),
        problem,
    })
}

/// The kubeconfig file in use: `explicit`, else the first of `$KUBECONFIG`, else ~/.kube/config.
pub fn kubeconfig_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(v) = std::env::var_os("KUBECONFIG")
        && let Some(p) = std::env::split_paths(&v).find(|p| !p.as_os_str().is_empty())
    {
        return Some(p);
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
}

/// Describes the kubeconfig in use for messages (`$KUBECONFIG` lists are shown whole).
pub fn kubeconfig_label(explicit: Option<&Path>) -> String {
    match explicit {
        Some(p) => p.display().to_string(),
        None => match std::env::var("KUBECONFIG") {
            Ok(v) if !v.is_empty() => v,
            _ => kubeconfig_path(None)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "~/.kube/config".to_string()),
        },
    }
}

/// Reads the local kubeconfig (`explicit` file, else `$KUBECONFIG` merged, else ~/.kube/config).
/// `Ok(None)` when there is no kubeconfig file at all.
pub fn read_local_kubeconfig(
    explicit: Option<&Path>,
) -> Result<Option<Kubeconfig>, CredentialError> {
    let label = kubeconfig_label(explicit);
    let result = match explicit {
        Some(p) => {
            if !p.exists() {
                return Err(CredentialError::KubeconfigMissing {
                    path: p.to_path_buf(),
                });
            }
            Kubeconfig::read_from(p)
        }
        None => match Kubeconfig::from_env() {
            Ok(Some(kc)) => Ok(kc),
            Ok(None) => match kubeconfig_path(None) {
                Some(p) if p.exists() => Kubeconfig::read_from(p),
                _ => return Ok(None),
            },
            Err(e) => Err(e),
        },
    };
    result
        .map(Some)
        .map_err(|e| CredentialError::KubeconfigUnreadable {
            label,
            reason: e.to_string(),
        })
}

/// Credentials of kubeconfig context `context` in the local kubeconfig.
/// `Ok(None)` when the file or the context does not exist (the caller decides if that is fatal).
pub async fn from_local_context(
    explicit: Option<&Path>,
    context: &str,
) -> Result<Option<Credentials>, CredentialError> {
    let Some(kc) = read_local_kubeconfig(explicit)? else {
        return Ok(None);
    };
    if !kc.contexts.iter().any(|c| c.name == context) {
        return Ok(None);
    }
    let raw = serde_json::to_vec(&kc).unwrap_or_default();
    let where_ = format!("kubeconfig {}", kubeconfig_label(explicit));
    let mut creds = from_kubeconfig(kc, Some(context), &where_).await?;
    let mut keys = BTreeMap::new();
    keys.insert("kubeconfig".to_string(), raw);
    creds.fingerprint = fingerprint(&keys, Some(context));
    Ok(Some(creds))
}

/// Names of the contexts in the local kubeconfig (for "did you mean" messages).
pub fn local_context_names(explicit: Option<&Path>) -> Vec<String> {
    match read_local_kubeconfig(explicit) {
        Ok(Some(kc)) => kc.contexts.into_iter().map(|c| c.name).collect(),
        _ => Vec::new(),
    }
}

/// Credentials of kubeconfig context `context` (or the current one), with an error naming the
/// file and the contexts it has when the context is missing.
pub async fn require_local_context(
    explicit: Option<&Path>,
    context: Option<&str>,
) -> Result<Credentials, CredentialError> {
    let label = kubeconfig_label(explicit);
    let Some(kc) = read_local_kubeconfig(explicit)? else {
        return Err(CredentialError::NoKubeconfig { label });
    };
    let where_ = format!("kubeconfig {label}");
    if let Some(c) = context
        && !kc.contexts.iter().any(|n| n.name == c)
    {
        return Err(CredentialError::ContextNotFound {
            context: c.to_string(),
            location: label,
            contexts: kc.contexts.iter().map(|c| c.name.clone()).collect(),
        });
    }
    from_kubeconfig(kc, context, &where_).await
}

/// Where to look for remote `name`'s credentials.
#[derive(Clone, Debug)]
pub struct RemoteLookup {
    /// Remote (site) name.
    pub name: String,
    /// Multi-CassKop's mount root; the remote's directory is `<imports_dir>/<name>`.
    pub imports_dir: PathBuf,
    /// Namespace of the controller (where Secret `name` lives).
    pub namespace: String,
    /// Local kubeconfig file for context-named remotes (`None`: $KUBECONFIG / ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
}

/// Loads remote credentials in the documented order: mounted directory, Secret, kubeconfig
/// context. The first source that exists is used; if it is broken, that is the error (no silent
/// fallback to another source). When none exists, the error lists every source tried.
/// The directory and the Secret came through the API and are vetted under `policy`; the
/// operator's kubeconfig context is not.
pub async fn load_remote(
    lookup: &RemoteLookup,
    secret: SecretLookup,
    policy: KubeconfigPolicy,
) -> Result<Credentials, CredentialError> {
    let name = &lookup.name;
    let dir = lookup.imports_dir.join(name);
    // An empty directory is what the kubelet mounts for an optional Secret that does not exist
    // (the chart mounts them optional): treat it as absent and read the Secret through the API.
    let dir_note = match read_secret_dir(&dir)? {
        Some(keys) if !keys.is_empty() => {
            let origin = CredentialSource::MountedDir { path: dir };
            return from_keys(&keys, origin, None, policy).await;
        }
        Some(_) => format!("empty directory {}", dir.display()),
        None => format!("no directory {}", dir.display()),
    };
    let secret_note = match secret {
        SecretLookup::Found(keys) => {
            let origin = CredentialSource::Secret {
                namespace: lookup.namespace.clone(),
                name: name.clone(),
            };
            return from_keys(&keys, origin, None, policy).await;
        }
        SecretLookup::NotFound => format!("no secret {}/{name}", lookup.namespace),
        SecretLookup::Failed(why) => {
            format!("secret {}/{name} unreadable ({why})", lookup.namespace)
        }
    };
    if let Some(creds) = from_local_context(lookup.kubeconfig.as_deref(), name).await? {
        return Ok(creds);
    }
    Err(CredentialError::NoRemoteCredentials {
        remote: name.clone(),
        directory: dir_note,
        secret: secret_note,
        kubeconfig: kubeconfig_label(lookup.kubeconfig.as_deref()),
    })
}

/// Credentials of a ClientConfig site: the referenced Secret's kubeconfig (key `kubeconfig`,
/// or `config`) and context `context`, vetted under `policy`.
pub async fn load_client_config(
    namespace: &str,
    client_config: &str,
    secret_name: &str,
    context: &str,
    secret: SecretLookup,
    policy: KubeconfigPolicy,
) -> Result<Credentials, CredentialError> {
    let origin = CredentialSource::ClientConfig {
        namespace: namespace.to_string(),
        name: client_config.to_string(),
        secret: secret_name.to_string(),
        context: context.to_string(),
    };
    match secret {
        SecretLookup::Found(keys) => {
            if !KUBECONFIG_KEYS.iter().any(|k| keys.contains_key(*k)) {
                return Err(CredentialError::ClientConfigSecretKeys {
                    namespace: namespace.to_string(),
                    secret: secret_name.to_string(),
                    client_config: client_config.to_string(),
                    found: keys.keys().cloned().collect(),
                });
            }
            from_keys(&keys, origin, Some(context), policy).await
        }
        SecretLookup::NotFound => Err(CredentialError::ClientConfigSecretMissing {
            namespace: namespace.to_string(),
            secret: secret_name.to_string(),
            client_config: client_config.to_string(),
        }),
        SecretLookup::Failed(why) => Err(CredentialError::ClientConfigSecretUnreadable {
            namespace: namespace.to_string(),
            secret: secret_name.to_string(),
            client_config: client_config.to_string(),
            reason: why,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: KubeconfigPolicy = KubeconfigPolicy {
        allow_exec: false,
        allow_insecure_tls: false,
    };

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN-VALUE-never-print";

    fn ca_pem() -> String {
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .unwrap()
            .cert
            .pem()
    }

    fn secret_origin() -> CredentialSource {
        CredentialSource::Secret {
            namespace: "cassandra".into(),
            name: "k8s-cluster2".into(),
        }
    }

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn kubeconfig_text(ctx: &str, server: &str, ca_b64: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_b64}\nusers:\n- name: u\n  user:\n    token: {TOKEN}\ncontexts:\n- name: {ctx}\n  context:\n    cluster: c\n    user: u\n    namespace: cassandra\ncurrent-context: {ctx}\n"
        )
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    async fn err(k: &BTreeMap<String, Vec<u8>>) -> String {
        let e = from_keys(k, secret_origin(), None, STRICT)
            .await
            .expect_err("must fail")
            .to_string();
        assert!(
            !e.contains(TOKEN) && !e.contains("SECRET-TOKEN"),
            "token leaked in: {e}"
        );
        e
    }

    #[tokio::test]
    async fn four_keys_give_credentials_with_namespace() {
        let ca = ca_pem();
        let k = keys(&[
            ("server", "https://10.0.0.2:6443\n"),
            ("token", TOKEN),
            ("ca.crt", &ca),
            ("namespace", "cassandra"),
        ]);
        let c = from_keys(&k, secret_origin(), None, STRICT).await.unwrap();
        assert_eq!(c.server(), "https://10.0.0.2:6443/");
        assert_eq!(c.default_namespace.as_deref(), Some("cassandra"));
        assert_eq!(c.source, secret_origin());
        assert!(c.config.root_cert.as_ref().is_some_and(|r| r.len() == 1));
        assert!(
            !format!("{c:?}").contains("SECRET-TOKEN"),
            "Debug must not show the token"
        );
        c.client().expect("client builds");
    }

    #[tokio::test]
    async fn kubeconfig_under_config_or_kubeconfig_key() {
        let text = kubeconfig_text("k8s-cluster2", "https://10.0.0.2:6443", &b64(&ca_pem()));
        for key in ["config", "kubeconfig"] {
            let c = from_keys(&keys(&[(key, &text)]), secret_origin(), None, STRICT)
                .await
                .unwrap();
            assert_eq!(c.server(), "https://10.0.0.2:6443/");
            assert_eq!(c.default_namespace.as_deref(), Some("cassandra"));
        }
        // `config` wins over the four keys (kubemcsa puts both).
        let k = keys(&[
            ("config", &text),
            ("server", "https://other:1"),
            ("token", "x"),
            ("ca.crt", "junk"),
        ]);
        assert_eq!(
            from_keys(&k, secret_origin(), None, STRICT)
                .await
                .unwrap()
                .server(),
            "https://10.0.0.2:6443/"
        );
    }

    #[tokio::test]
    async fn fingerprint_changes_with_the_token_only() {
        let ca = ca_pem();
        let a = keys(&[("server", "https://h:1"), ("token", "a"), ("ca.crt", &ca)]);
        let b = keys(&[("server", "https://h:1"), ("token", "b"), ("ca.crt", &ca)]);
        let fa = from_keys(&a, secret_origin(), None, STRICT)
            .await
            .unwrap()
            .fingerprint;
        let fa2 = from_keys(&a, secret_origin(), None, STRICT)
            .await
            .unwrap()
            .fingerprint;
        let fb = from_keys(&b, secret_origin(), None, STRICT)
            .await
            .unwrap()
            .fingerprint;
        assert_eq!(fa, fa2);
        assert_ne!(fa, fb);
    }

    #[tokio::test]
    async fn secret_without_any_known_key() {
        let e = err(&keys(&[("foo", "bar")])).await;
        assert!(
            e.starts_with(
                "secret cassandra/k8s-cluster2 has no key config, kubeconfig or server+token+ca.crt"
            ),
            "{e}"
        );
        assert!(e.contains("keys found: foo"), "{e}");
    }

    #[tokio::test]
    async fn secret_missing_ca() {
        let e = err(&keys(&[("server", "https://h:1"), ("token", TOKEN)])).await;
        assert!(e.contains("(missing: ca.crt;"), "{e}");
    }

    #[tokio::test]
    async fn ca_that_is_not_pem() {
        let e = err(&keys(&[
            ("server", "https://h:1"),
            ("token", TOKEN),
            ("ca.crt", "not a certificate"),
        ]))
        .await;
        assert_eq!(
            e,
            "ca.crt in secret cassandra/k8s-cluster2 is not PEM: no -----BEGIN CERTIFICATE----- block"
        );
        let e = err(&keys(&[
            ("server", "https://h:1"),
            ("token", TOKEN),
            (
                "ca.crt",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            ),
        ]))
        .await;
        assert!(e.contains("invalid base64 body"), "{e}");
    }

    #[tokio::test]
    async fn empty_token() {
        let e = err(&keys(&[
            ("server", "https://h:1"),
            ("token", "  \n"),
            ("ca.crt", &ca_pem()),
        ]))
        .await;
        assert_eq!(e, "token in secret cassandra/k8s-cluster2 is empty");
    }

    #[tokio::test]
    async fn server_that_is_not_a_url() {
        let e = err(&keys(&[
            ("server", "10.0.0.2:6443"),
            ("token", TOKEN),
            ("ca.crt", &ca_pem()),
        ]))
        .await;
        assert!(
            e.starts_with("server in secret cassandra/k8s-cluster2 is not an http(s) URL"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn kubeconfig_that_is_not_yaml() {
        let text = format!("clusters: [\n  token: {TOKEN}\n  - {{{{");
        let e = err(&keys(&[("config", &text)])).await;
        assert!(
            e.starts_with(
                "kubeconfig in secret cassandra/k8s-cluster2 (key config) is not valid YAML: "
            ),
            "{e}"
        );
        assert!(!e.contains('\n'), "one line, no input snippet: {e}");
    }

    #[tokio::test]
    async fn kubeconfig_without_the_context() {
        let text = kubeconfig_text("k8s-cluster2", "https://h:1", &b64(&ca_pem()));
        let e = from_keys(
            &keys(&[("kubeconfig", &text)]),
            secret_origin(),
            Some("dc3"),
            STRICT,
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "context dc3 not found in kubeconfig in secret cassandra/k8s-cluster2 (key kubeconfig) (contexts: k8s-cluster2)"
        );
    }

    #[tokio::test]
    async fn kubeconfig_with_bad_ca_data() {
        let text = kubeconfig_text("k8s-cluster2", "https://h:1", "abc$def");
        let e = err(&keys(&[("config", &text)])).await;
        assert!(e.starts_with("certificate-authority-data of cluster c in kubeconfig in secret cassandra/k8s-cluster2 (key config) is not valid base64"), "{e}");
        let text = kubeconfig_text("k8s-cluster2", "https://h:1", &b64("plain text"));
        let e = err(&keys(&[("config", &text)])).await;
        assert!(e.contains("is not PEM"), "{e}");
    }

    #[tokio::test]
    async fn kubeconfig_without_current_context_and_several_contexts() {
        let text = "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: 'https://h:1'}\ncontexts:\n- name: a\n  context: {cluster: c}\n- name: b\n  context: {cluster: c}\n";
        let e = err(&keys(&[("config", text)])).await;
        assert!(
            e.contains("has no current-context and 2 contexts (a, b)"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn kubeconfig_context_pointing_at_a_missing_cluster() {
        let text = "apiVersion: v1\nclusters: []\ncontexts:\n- name: a\n  context: {cluster: gone}\ncurrent-context: a\n";
        let e = err(&keys(&[("config", text)])).await;
        assert!(
            e.contains("refers to cluster \"gone\", which is not defined"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn kubeconfig_key_that_is_not_text() {
        let mut k = BTreeMap::new();
        k.insert("config".to_string(), vec![0xff, 0xfe, 0x00]);
        assert_eq!(
            err(&k).await,
            "key config in secret cassandra/k8s-cluster2 is not UTF-8 text"
        );
    }

    #[test]
    fn scrub_removes_long_words_of_the_input() {
        let input = format!("token: {TOKEN}");
        assert_eq!(
            scrub(&format!("bad value {TOKEN} at line 1"), &input),
            "bad value <redacted> at line 1"
        );
    }

    #[test]
    fn mounted_dir_follows_kubernetes_data_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("k8s-cluster2");
        let ts = dir.join("..2026_11_21_12_00_00.1");
        std::fs::create_dir_all(&ts).unwrap();
        std::fs::write(ts.join("config"), "x").unwrap();
        std::fs::write(ts.join("token"), "t").unwrap();
        std::os::unix::fs::symlink("..2026_11_21_12_00_00.1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/config", dir.join("config")).unwrap();
        std::os::unix::fs::symlink("..data/token", dir.join("token")).unwrap();
        let k = read_secret_dir(&dir).unwrap().unwrap();
        assert_eq!(k.keys().collect::<Vec<_>>(), ["config", "token"]);
        assert_eq!(k["config"], b"x");
        assert!(read_secret_dir(&d.path().join("absent")).unwrap().is_none());
    }

    #[tokio::test]
    async fn remote_lookup_order_dir_then_secret_then_context() {
        let d = tempfile::tempdir().unwrap();
        let ca = ca_pem();
        let kc_path = d.path().join("kubeconfig");
        std::fs::write(
            &kc_path,
            kubeconfig_text("k8s-cluster2", "https://ctx:3", &b64(&ca)),
        )
        .unwrap();
        let lookup = RemoteLookup {
            name: "k8s-cluster2".into(),
            imports_dir: d.path().join("imports"),
            namespace: "cassandra".into(),
            kubeconfig: Some(kc_path.clone()),
        };
        let secret = SecretLookup::Found(keys(&[
            ("server", "https://secret:2"),
            ("token", "t"),
            ("ca.crt", &ca),
        ]));

        // Context only.
        let c = load_remote(&lookup, SecretLookup::NotFound, STRICT)
            .await
            .unwrap();
        assert_eq!(c.server(), "https://ctx:3/");
        assert_eq!(
            c.source,
            CredentialSource::KubeconfigContext {
                context: "k8s-cluster2".into()
            }
        );
        // Secret beats context.
        let c = load_remote(&lookup, secret.clone(), STRICT).await.unwrap();
        assert_eq!(c.server(), "https://secret:2/");
        // Mounted dir beats both.
        let dir = d.path().join("imports").join("k8s-cluster2");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("server"), "https://dir:1").unwrap();
        std::fs::write(dir.join("token"), "t").unwrap();
        std::fs::write(dir.join("ca.crt"), &ca).unwrap();
        let c = load_remote(&lookup, secret.clone(), STRICT).await.unwrap();
        assert_eq!(c.server(), "https://dir:1/");
        assert_eq!(c.source, CredentialSource::MountedDir { path: dir.clone() });
        // A broken first source is the error: no silent fallback.
        std::fs::write(dir.join("ca.crt"), "garbage").unwrap();
        let e = load_remote(&lookup, secret, STRICT)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "ca.crt in mounted directory {} is not PEM",
                dir.display()
            )),
            "{e}"
        );
    }

    #[tokio::test]
    async fn remote_without_any_source_lists_every_source_tried() {
        let d = tempfile::tempdir().unwrap();
        let kc_path = d.path().join("kubeconfig");
        std::fs::write(
            &kc_path,
            kubeconfig_text("k8s-cluster1", "https://ctx:3", &b64(&ca_pem())),
        )
        .unwrap();
        let lookup = RemoteLookup {
            name: "k8s-cluster2".into(),
            imports_dir: d.path().join("imports"),
            namespace: "cassandra".into(),
            kubeconfig: Some(kc_path.clone()),
        };
        let e = load_remote(&lookup, SecretLookup::NotFound, STRICT)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "no credentials for remote k8s-cluster2: no directory {}, no secret cassandra/k8s-cluster2, no context k8s-cluster2 in kubeconfig {}",
                d.path().join("imports/k8s-cluster2").display(),
                kc_path.display()
            )
        );
        std::fs::create_dir_all(d.path().join("imports/k8s-cluster2")).unwrap();
        let e = load_remote(&lookup, SecretLookup::NotFound, STRICT)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(": empty directory "),
            "an empty mount counts as absent: {e}"
        );
        let e = load_remote(&lookup, SecretLookup::Failed("forbidden".into()), STRICT)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("secret cassandra/k8s-cluster2 unreadable (forbidden)"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn client_config_secret_problems() {
        let e = load_client_config(
            "cassandra",
            "dc3",
            "dc3-kc",
            "dc3",
            SecretLookup::NotFound,
            STRICT,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret cassandra/dc3-kc referenced by ClientConfig dc3 does not exist"
        );
        let e = load_client_config(
            "cassandra",
            "dc3",
            "dc3-kc",
            "dc3",
            SecretLookup::Found(keys(&[("token", TOKEN)])),
            STRICT,
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret cassandra/dc3-kc referenced by ClientConfig dc3 has no key kubeconfig or config (keys found: token)"
        );
        let text = kubeconfig_text("ctx-a", "https://h:1", &b64(&ca_pem()));
        let c = load_client_config(
            "cassandra",
            "dc3",
            "dc3-kc",
            "ctx-a",
            SecretLookup::Found(keys(&[("kubeconfig", &text)])),
            STRICT,
        )
        .await
        .unwrap();
        assert!(
            matches!(c.source, CredentialSource::ClientConfig { ref context, .. } if context == "ctx-a")
        );
        let e = load_client_config(
            "cassandra",
            "dc3",
            "dc3-kc",
            "dc3",
            SecretLookup::Found(keys(&[("kubeconfig", &text)])),
            STRICT,
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("context dc3 not found in kubeconfig in ClientConfig cassandra/dc3"),
            "{e}"
        );
    }

    /// A kubeconfig whose user runs `sh -c 'touch <marker>; echo <ExecCredential>'`.
    fn exec_kubeconfig(marker: &Path) -> String {
        let ca = b64(&ca_pem());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://h:1\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      interactiveMode: Never\n      command: /bin/sh\n      args:\n      - -c\n      - touch '{}'; echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"from-exec\"}}}}'\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n",
            marker.display()
        )
    }

    #[tokio::test]
    async fn exec_plugin_in_a_secret_is_refused_and_never_runs() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("exec-ran");
        let k = keys(&[("config", &exec_kubeconfig(&marker))]);
        let e = from_keys(&k, secret_origin(), None, STRICT)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "kubeconfig in secret cassandra/k8s-cluster2 (key config): users[0].user.exec is refused: an exec plugin would run a command as the controller (allowed only with --insecure-kubeconfig-exec)"
        );
        assert!(!marker.exists(), "the exec plugin ran");
    }

    #[tokio::test]
    async fn exec_plugin_runs_only_with_the_opt_in() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("exec-ran");
        let k = keys(&[("config", &exec_kubeconfig(&marker))]);
        let allow = KubeconfigPolicy {
            allow_exec: true,
            allow_insecure_tls: false,
        };
        let c = from_keys(&k, secret_origin(), None, allow).await.unwrap();
        assert!(
            !marker.exists(),
            "loading credentials must not run the plugin"
        );
        c.build_client(std::time::Duration::from_secs(30))
            .await
            .expect("client builds with the plugin's token");
        assert!(marker.exists(), "with the opt-in the plugin runs");
    }

    #[tokio::test]
    async fn token_file_in_a_client_config_secret_is_refused_and_never_read() {
        let d = tempfile::tempdir().unwrap();
        // A path that does not exist: reading it would fail with kube-rs' own error, so the
        // refusal proves nothing tried to read it; with the opt-in the read is attempted.
        let path = d.path().join("stolen-token");
        let text = format!(
            "apiVersion: v1\nclusters:\n- name: c\n  cluster: {{server: 'https://h:1'}}\nusers:\n- name: u\n  user: {{tokenFile: '{}'}}\ncontexts:\n- name: dc3\n  context: {{cluster: c, user: u}}\n",
            path.display()
        );
        let secret = SecretLookup::Found(keys(&[("kubeconfig", &text)]));
        let e = load_client_config("cassandra", "dc3", "dc3-kc", "dc3", secret.clone(), STRICT)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "kubeconfig in ClientConfig cassandra/dc3 (secret cassandra/dc3-kc, context dc3) (key kubeconfig): users[0].user.tokenFile is refused: a tokenFile would read a file of the controller's host (allowed only with --insecure-kubeconfig-exec)"
        );
        let allow = KubeconfigPolicy {
            allow_exec: true,
            allow_insecure_tls: false,
        };
        let c = load_client_config("cassandra", "dc3", "dc3-kc", "dc3", secret, allow)
            .await
            .unwrap();
        let Err(e) = c.build_client(std::time::Duration::from_secs(30)).await else {
            panic!("a missing tokenFile cannot give a client");
        };
        assert!(e.to_string().contains("cannot build a client"), "{e}");
    }

    #[tokio::test]
    async fn mounted_directory_kubeconfig_with_several_refusals_names_each_field() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("k8s-cluster2");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config"),
            "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: 'http://h:1', insecure-skip-tls-verify: true, certificate-authority: /etc/ca.pem}\nusers:\n- name: u\n  user: {client-certificate: /etc/c.pem, client-key: /etc/k.pem}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n",
        )
        .unwrap();
        let lookup = RemoteLookup {
            name: "k8s-cluster2".into(),
            imports_dir: d.path().to_path_buf(),
            namespace: "cassandra".into(),
            kubeconfig: None,
        };
        let e = load_remote(&lookup, SecretLookup::NotFound, STRICT)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "kubeconfig in mounted directory {} (key config): clusters[0].cluster.server is refused",
                dir.display()
            )),
            "{e}"
        );
        for field in [
            "clusters[0].cluster.insecure-skip-tls-verify is refused",
            "clusters[0].cluster.certificate-authority is refused",
            "users[0].user.client-certificate is refused",
            "users[0].user.client-key is refused",
            "--insecure-kubeconfig-tls",
        ] {
            assert!(e.contains(field), "{field} missing from: {e}");
        }
    }

    #[tokio::test]
    async fn http_server_key_is_refused_unless_tls_opt_in() {
        let k = keys(&[
            ("server", "http://10.0.0.2:8080"),
            ("token", TOKEN),
            ("ca.crt", &ca_pem()),
        ]);
        assert_eq!(
            err(&k).await,
            "secret cassandra/k8s-cluster2: server is refused: an http:// server would get the token in clear text (allowed only with --insecure-kubeconfig-tls)"
        );
        let allow = KubeconfigPolicy {
            allow_exec: false,
            allow_insecure_tls: true,
        };
        let c = from_keys(&k, secret_origin(), None, allow).await.unwrap();
        assert!(untrusted::unverified_tls(&c.config).is_some());
    }

    #[tokio::test]
    async fn operator_kubeconfig_context_keeps_exec() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("exec-ran");
        let path = d.path().join("kubeconfig");
        std::fs::write(&path, exec_kubeconfig(&marker)).unwrap();
        let c = from_local_context(Some(&path), "x").await.unwrap().unwrap();
        c.build_client(std::time::Duration::from_secs(30))
            .await
            .unwrap();
        assert!(
            marker.exists(),
            "the operator's own kubeconfig may run plugins"
        );
    }

    #[tokio::test]
    async fn debug_never_shows_tokens_keys_passwords_or_plugin_settings() {
        let text = format!(
            "apiVersion: v1\nclusters:\n- name: c\n  cluster: {{server: 'https://h:1'}}\nusers:\n- name: u\n  user:\n    token: {TOKEN}\n    username: admin\n    password: PASSWORD-never-print\n    client-certificate-data: {}\n    client-key-data: S0VZLW5ldmVyLXByaW50\n    auth-provider:\n      name: oidc\n      config: {{id-token: IDTOKEN-never-print, refresh-token: REFRESH-never-print}}\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/true\n      env: [{{name: SECRET, value: ENV-never-print}}]\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\n",
            b64(&ca_pem())
        );
        let all = KubeconfigPolicy {
            allow_exec: true,
            allow_insecure_tls: true,
        };
        let k = keys(&[("config", &text)]);
        let c = from_keys(&k, secret_origin(), None, all).await.unwrap();
        let shown = format!("{c:?} {:#?}", SecretLookup::Found(k));
        for secret in [
            "SECRET-TOKEN",
            "PASSWORD-never-print",
            "S0VZLW5ldmVyLXByaW50",
            "IDTOKEN-never-print",
            "REFRESH-never-print",
            "ENV-never-print",
            "BEGIN CERTIFICATE",
        ] {
            assert!(!shown.contains(secret), "{secret} shown in: {shown}");
        }
        assert!(shown.contains("https://h:1/"), "{shown}");
        assert!(shown.contains("\"exec\""), "auth kinds are shown: {shown}");
        assert!(shown.contains("\"config\""), "key names are shown: {shown}");
    }

    /// On a single-threaded runtime a plugin run on the worker would hold the timer too: the
    /// deadline firing while the plugin still sleeps proves the build runs elsewhere.
    #[tokio::test(flavor = "current_thread")]
    async fn a_plugin_that_hangs_fails_the_build_at_the_deadline_off_the_worker() {
        let text = exec_kubeconfig(Path::new("/nonexistent/dir/marker"))
            .replace("touch '/nonexistent/dir/marker';", "sleep 2;");
        let allow = KubeconfigPolicy {
            allow_exec: true,
            allow_insecure_tls: false,
        };
        let k = keys(&[("config", &text)]);
        let c = from_keys(&k, secret_origin(), None, allow).await.unwrap();
        let Err(e) = c.build_client(std::time::Duration::from_millis(300)).await else {
            panic!("the build must stop at the deadline");
        };
        assert_eq!(
            e.to_string(),
            "credentials from secret cassandra/k8s-cluster2: cannot build a client: building the client took longer than 300ms (a credential plugin that does not return?)"
        );
    }
}
