//! Renews each remote's bound token before it expires and writes it back to the Secret it came from.
//!
//! For every remote whose credentials came through the API (a Secret named after the remote, a
//! ClientConfig's Secret, or the mounted directory of Secret NAME), the token in use is read
//! when the site's client is built, its `exp` claim schedules the first renewal, and each
//! renewal is a TokenRequest on that remote, for the token's own service account, with the
//! token itself. The new token replaces the old one in the same Secret (the mounted directory's
//! Secret too: the kubelet refreshes the mount), and the registry's Secret watch rebuilds the
//! site's client from it like any other credential change. The next renewal is scheduled from
//! the expiry the server returned.
//!
//! A failed renewal changes nothing: the old token stays in use until it expires, the renewal is
//! retried with backoff, and the failure (with its fix) goes to every MultiCasskop using the
//! site through the registry's token reports.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use secrecy::ExposeSecret;
use tracing::{info, warn};

use super::credentials::{self, CredentialSource};
use super::exported;
use super::probe::{FailureKind, classify};
use super::registry::SiteRegistry;
use super::site::Site;
use super::token_expiry::{self, DEFAULT_TOKEN_LIFETIME, ServiceAccountRef};
use super::token_report::TokenReport;
use crate::backoff::Backoff;
use crate::runtime::metrics::Metrics;

/// Longest sleep between two looks at the schedules (a changed site wakes the renewal earlier).
const MAX_WAIT: Duration = Duration::from_secs(60);
/// First retry delay of a failed renewal.
const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay of a failed renewal: a 24 h token renewed 8 h early gets hundreds of
/// tries before it expires.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Why a renewal failed. Every message names the site, the object and the fix.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum RenewalError {
    /// The credentials' Secret (or mounted directory) could not be read.
    #[error(
        "cannot read the credentials of site {site} from {location} to renew its token: {reason}; fix: let the controller get that Secret (Helm chart: list it in k8s.remote or clientConfigs.secretNames)"
    )]
    Read {
        site: String,
        location: String,
        reason: String,
    },
    /// The token names no service account (neither `kubernetes.io` nor `sub` claims).
    #[error(
        "the token of site {site} names no service account (no kubernetes.io or sub claim): it cannot be renewed; fix: re-run `multi-casskop register` for this site"
    )]
    NoServiceAccount { site: String },
    /// The remote refused the TokenRequest as forbidden (RBAC).
    #[error(
        "renewing the token of service account {sa} on site {site} was refused: {reason}; fix: grant create on serviceaccounts/token with resourceNames [{name}] in namespace {namespace} on {site} (re-run `multi-casskop register` for this site: its Role has that rule)",
        name = .sa.name, namespace = .sa.namespace
    )]
    Forbidden {
        site: String,
        sa: ServiceAccountRef,
        reason: String,
    },
    /// The remote no longer accepts the token (expired or revoked).
    #[error(
        "renewing the token of service account {sa} on site {site} failed: the token is no longer accepted ({reason}); fix: re-run `multi-casskop register` for this site"
    )]
    Unauthorized {
        site: String,
        sa: ServiceAccountRef,
        reason: String,
    },
    /// Any other TokenRequest failure (unreachable, 5xx): retried.
    #[error("renewing the token of service account {sa} on site {site} failed: {reason}")]
    Request {
        site: String,
        sa: ServiceAccountRef,
        reason: String,
    },
    /// The renewed token could not be written back.
    #[error(
        "the renewed token of site {site} cannot be written to Secret {namespace}/{secret}: {reason}; fix: let the controller get and update Secret {secret} (Helm chart: list it in k8s.remote or clientConfigs.secretNames)"
    )]
    Write {
        site: String,
        namespace: String,
        secret: String,
        reason: String,
    },
}

/// The Secret a site's credentials live in, and how they are read.
struct Home {
    /// Namespace and name of the Secret the renewed token is written to.
    namespace: String,
    secret: String,
    /// Where the credentials in use are read (the mounted directory, when that is the source).
    source: CredentialSource,
    /// Kubeconfig context to use (ClientConfig `contextName`).
    context: Option<String>,
}

impl Home {
    /// The Secret behind `site`'s credentials; `None` for the operator's own credentials (a
    /// kubeconfig context, in-cluster), which the controller does not rewrite.
    fn of(site: &Site, controller_ns: &str) -> Option<Home> {
        let (namespace, secret, context) = match &site.source {
            CredentialSource::Secret { namespace, name } => (namespace.clone(), name.clone(), None),
            CredentialSource::ClientConfig {
                namespace,
                secret,
                context,
                ..
            } => (namespace.clone(), secret.clone(), Some(context.clone())),
            // The chart mounts Secret NAME at <imports-dir>/NAME.
            CredentialSource::MountedDir { .. } => {
                (controller_ns.to_string(), site.name.clone(), None)
            }
            CredentialSource::InCluster | CredentialSource::KubeconfigContext { .. } => {
                return None;
            }
        };
        Some(Home {
            namespace,
            secret,
            source: site.source.clone(),
            context,
        })
    }
}

/// One site's renewal schedule. Holds the token in use (never printed: no `Debug`).
struct Schedule {
    /// Site client revision whose token was read last.
    revision: u64,
    token: String,
    token_hash: u64,
    /// The token our last renewal replaced: a mounted directory shows it until the kubelet
    /// refreshes the mount, which is no reason to renew again.
    superseded: Option<u64>,
    expires: Option<i64>,
    renew_at: Option<i64>,
    sa: Option<ServiceAccountRef>,
    unscheduled: Option<String>,
    /// The last renewal failed (cleared by one that works, or by a new token).
    failed: Option<String>,
    /// The credentials could not be read (cleared by the next read that works).
    unreadable: Option<String>,
    retry_at: Option<Instant>,
    backoff: Backoff,
}

fn hash_of(token: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    h.finish()
}

impl Schedule {
    fn new() -> Self {
        Self {
            revision: 0,
            token: String::new(),
            token_hash: 0,
            superseded: None,
            expires: None,
            renew_at: None,
            sa: None,
            unscheduled: None,
            failed: None,
            unreadable: None,
            retry_at: None,
            backoff: Backoff::new(RETRY_MIN, RETRY_MAX),
        }
    }

    /// Takes in the token the site's credentials hold now: scheduled from its `exp` claim,
    /// unless it is the one our last renewal wrote (scheduled from the server's answer) or the
    /// one it replaced (the mount has not caught up yet).
    fn observe(&mut self, token: &str) {
        let h = hash_of(token);
        if h == self.token_hash || Some(h) == self.superseded {
            return;
        }
        self.token = token.to_string();
        self.token_hash = h;
        self.superseded = None;
        self.failed = None;
        self.retry_at = None;
        self.backoff.reset();
        match token_expiry::claims(token) {
            Ok(c) => {
                self.expires = Some(c.expires);
                self.renew_at = Some(token_expiry::renew_at(c.issued, c.expires));
                self.sa = c.service_account;
                self.unscheduled = None;
            }
            Err(e) => {
                self.expires = None;
                self.renew_at = None;
                self.sa = None;
                self.unscheduled = Some(e.to_string());
            }
        }
    }

    /// Whether a renewal is due now.
    fn due(&self, now: i64) -> bool {
        match (self.retry_at, self.renew_at) {
            (Some(retry), Some(_)) => Instant::now() >= retry,
            (None, Some(at)) => now >= at,
            (_, None) => false,
        }
    }

    /// How long until something changes: the renewal or its retry is due, or the token expires
    /// (the report then says so).
    fn wait(&self, now: i64) -> Duration {
        let secs = |t: i64| Duration::from_secs(t.saturating_sub(now).max(0) as u64);
        let mut wait = MAX_WAIT;
        if let Some(retry) = self.retry_at {
            wait = wait.min(retry.saturating_duration_since(Instant::now()));
        } else if let Some(at) = self.renew_at {
            wait = wait.min(secs(at));
        }
        if let Some(exp) = self.expires.filter(|e| *e >= now) {
            wait = wait.min(secs(exp) + Duration::from_millis(100));
        }
        wait
    }

    /// Records a renewal that worked: the new token, scheduled from the returned expiry.
    fn renewed(&mut self, token: String, sent: i64, returned: jiff::Timestamp) {
        self.superseded = Some(self.token_hash);
        self.token_hash = hash_of(&token);
        self.token = token;
        self.expires = Some(returned.as_second());
        self.renew_at = Some(token_expiry::renew_after_request(sent, returned));
        self.failed = None;
        self.retry_at = None;
        self.backoff.reset();
    }

    /// Records a failed renewal: the old token stays, the renewal is retried after a backoff.
    fn failed(&mut self, error: &RenewalError) {
        self.failed = Some(error.to_string());
        self.retry_at = Some(Instant::now() + self.backoff.failed(Instant::now()));
    }

    fn report(&self) -> TokenReport {
        TokenReport {
            expires: self.expires,
            unscheduled: self.unscheduled.clone(),
            renewal_failed: self.failed.clone().or_else(|| self.unreadable.clone()),
        }
    }
}

/// What `check` and `status` show of `site`'s token: its expiry (or why none is known), read
/// where the controller reads it (`local` reads the Secret). `None`: credentials that are not
/// the controller's to renew (a kubeconfig context, in-cluster).
pub async fn token_report_of(
    local: &kube::Client,
    site: &Site,
    controller_ns: &str,
    policy: super::KubeconfigPolicy,
) -> Option<TokenReport> {
    let home = Home::of(site, controller_ns)?;
    let mut sched = Schedule::new();
    match read_token(local, &site.name, &home, policy).await {
        Ok(token) => sched.observe(&token),
        Err(e) => sched.unreadable = Some(e.to_string()),
    }
    let mut report = sched.report();
    if let Some(why) = sched.unreadable {
        report.unscheduled = Some(why);
        report.renewal_failed = None;
    }
    Some(report)
}

/// Starts renewing the tokens of `registry`'s remotes; `local` writes the renewed tokens to
/// their Secrets (the controller's fenced client: only the leader renews).
pub fn spawn(registry: SiteRegistry, local: kube::Client, metrics: Arc<Metrics>) {
    let renewer = Renewer {
        registry,
        local,
        metrics,
        schedules: HashMap::new(),
    };
    tokio::spawn(renewer.run());
}

struct Renewer {
    registry: SiteRegistry,
    local: kube::Client,
    metrics: Arc<Metrics>,
    schedules: HashMap<String, Schedule>,
}

impl Renewer {
    async fn run(mut self) {
        let mut changes = self.registry.changes();
        loop {
            let wait = self.pass().await;
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Looks at every remote once (renewing those due); returns how long to sleep.
    async fn pass(&mut self) -> Duration {
        let cfg = self.registry.config();
        let (local, namespace) = (cfg.local.clone(), cfg.namespace.clone());
        let remotes: BTreeMap<String, Arc<Site>> = self
            .registry
            .sites()
            .into_iter()
            .filter(|(name, _)| *name != local)
            .filter_map(|(name, state)| state.ready().cloned().map(|s| (name, s)))
            .collect();
        self.schedules.retain(|name, _| remotes.contains_key(name));
        self.registry
            .token_reports()
            .retain(|name| remotes.contains_key(name));
        let mut wait = MAX_WAIT;
        for site in remotes.into_values() {
            let Some(home) = Home::of(&site, &namespace) else {
                continue;
            };
            wait = wait.min(self.tend(&site, &home).await);
        }
        wait
    }

    /// Reads the site's token when its client changed, renews it when due, reports it.
    async fn tend(&mut self, site: &Site, home: &Home) -> Duration {
        let policy = self.registry.config().kubeconfig_policy;
        let metrics = &self.metrics;
        let sched = self.schedules.entry(site.name.clone()).or_insert_with(|| {
            metrics.token_renewals_tracked(&site.name);
            Schedule::new()
        });
        if sched.revision != site.revision {
            match read_token(&self.local, &site.name, home, policy).await {
                Ok(token) => {
                    sched.revision = site.revision;
                    sched.unreadable = None;
                    sched.observe(&token);
                }
                Err(e) => {
                    warn!(site = %site.name, error = %e, "cannot read the site's token");
                    sched.unreadable = Some(e.to_string());
                }
            }
        }
        let now = token_expiry::now();
        if sched.due(now) {
            let sent = now;
            match renew(&self.local, site, home, sched).await {
                Ok((token, returned)) => {
                    info!(site = %site.name, expires = %returned, "token renewed");
                    sched.renewed(token, sent, returned);
                    self.metrics.token_renewal(&site.name, "success");
                }
                Err(e) => {
                    warn!(site = %site.name, error = %e, "token renewal failed; the current token stays in use");
                    sched.failed(&e);
                    self.metrics.token_renewal(&site.name, "failure");
                }
            }
        }
        if let Some(exp) = sched.expires {
            self.metrics.set_token_expiry(&site.name, exp);
        }
        self.registry.report_token(&site.name, sched.report());
        sched.wait(token_expiry::now())
    }
}

/// The token the site's credentials hold, read where the registry read them.
async fn read_token(
    local: &kube::Client,
    site: &str,
    home: &Home,
    policy: super::KubeconfigPolicy,
) -> Result<String, RenewalError> {
    let location = home.source.describe();
    let failed = |reason: String| RenewalError::Read {
        site: site.to_string(),
        location: location.clone(),
        reason,
    };
    let keys = match &home.source {
        CredentialSource::MountedDir { path } => credentials::read_secret_dir(path)
            .map_err(|e| failed(e.to_string()))?
            .unwrap_or_default(),
        _ => {
            let api: Api<Secret> = Api::namespaced(local.clone(), &home.namespace);
            let secret = api
                .get(&home.secret)
                .await
                .map_err(|e| failed(classify(&e).message))?;
            credentials::secret_keys(&secret)
        }
    };
    let creds = credentials::from_keys(&keys, home.source.clone(), home.context.as_deref(), policy)
        .await
        .map_err(|e| failed(e.to_string()))?;
    creds
        .config
        .auth_info
        .token
        .as_ref()
        .map(|t| t.expose_secret().to_string())
        .ok_or_else(|| failed("the credentials hold no bearer token".to_string()))
}

/// One renewal: a TokenRequest on the site, then the new token written to the Secret. Returns
/// the new token and the expiry the server returned.
async fn renew(
    local: &kube::Client,
    site: &Site,
    home: &Home,
    sched: &Schedule,
) -> Result<(String, jiff::Timestamp), RenewalError> {
    let name = site.name.clone();
    let sa = sched
        .sa
        .clone()
        .ok_or_else(|| RenewalError::NoServiceAccount { site: name.clone() })?;
    let issued = exported::request_token(
        &site.client,
        &sa.namespace,
        &sa.name,
        DEFAULT_TOKEN_LIFETIME,
    )
    .await
    .map_err(|f| {
        let (site, sa, reason) = (name.clone(), sa.clone(), f.message);
        match f.kind {
            FailureKind::Forbidden => RenewalError::Forbidden { site, sa, reason },
            FailureKind::Unauthorized => RenewalError::Unauthorized { site, sa, reason },
            _ => RenewalError::Request { site, sa, reason },
        }
    })?;
    let returned = issued
        .expires
        .as_deref()
        .and_then(|e| e.parse::<jiff::Timestamp>().ok())
        .ok_or_else(|| RenewalError::Request {
            site: name.clone(),
            sa: sa.clone(),
            reason: "the TokenRequest answer has no status.expirationTimestamp".to_string(),
        })?;
    write_back(local, &name, home, &sched.token, &issued.token).await?;
    Ok((issued.token, returned))
}

/// Replaces `old` by `new` in the Secret's `token`, `config` and `kubeconfig` keys (the other
/// keys and the kubeconfig's other settings stay as written), guarded by the resourceVersion
/// read: a Secret changed meanwhile (a re-registration) is left alone.
async fn write_back(
    local: &kube::Client,
    site: &str,
    home: &Home,
    old: &str,
    new: &str,
) -> Result<(), RenewalError> {
    let failed = |reason: String| RenewalError::Write {
        site: site.to_string(),
        namespace: home.namespace.clone(),
        secret: home.secret.clone(),
        reason,
    };
    let api: Api<Secret> = Api::namespaced(local.clone(), &home.namespace);
    let mut secret = api
        .get(&home.secret)
        .await
        .map_err(|e| failed(classify(&e).message))?;
    let mut replaced = false;
    for (key, value) in secret.data.iter_mut().flatten() {
        if !matches!(key.as_str(), "token" | "config" | "kubeconfig") {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&value.0) else {
            continue;
        };
        if text.contains(old) {
            value.0 = text.replace(old, new).into_bytes();
            replaced = true;
        }
    }
    if !replaced {
        return Err(failed(
            "it no longer holds the token in use (changed since it was read, e.g. by a new `multi-casskop register`); the site reloads what it holds now".to_string(),
        ));
    }
    api.replace(&home.secret, &PostParams::default(), &secret)
        .await
        .map_err(|e| failed(classify(&e).message))?;
    info!(site, secret = %format!("{}/{}", home.namespace, home.secret), "renewed token written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::token_expiry::test_jwt as jwt;

    #[test]
    fn a_token_read_at_start_is_scheduled_from_its_exp_claim() {
        let now = token_expiry::now();
        let mut s = Schedule::new();
        s.observe(&jwt(
            &serde_json::json!({"iat": now - 100, "exp": now + 200, "sub": "system:serviceaccount:ns:sa"}),
        ));
        assert_eq!(s.expires, Some(now + 200));
        assert_eq!(s.renew_at, Some(now + 100));
        assert!(!s.due(now));
        assert!(s.due(now + 100));
        assert_eq!(s.sa.as_ref().unwrap().to_string(), "ns/sa");
    }

    #[test]
    fn an_opaque_token_is_never_renewed_and_says_why() {
        let mut s = Schedule::new();
        s.observe("kubesim-sa.opaque");
        assert!(!s.due(i64::MAX));
        let r = s.report();
        assert_eq!(r.expires, None);
        assert!(r.expiry_text().contains("not a JWT"), "{}", r.expiry_text());
    }

    #[test]
    fn after_a_renewal_the_replaced_token_seen_again_does_not_reschedule() {
        let now = token_expiry::now();
        let old = jwt(
            &serde_json::json!({"iat": now - 100, "exp": now + 10, "sub": "system:serviceaccount:ns:sa"}),
        );
        let mut s = Schedule::new();
        s.observe(&old);
        assert!(s.due(now));
        let returned = jiff::Timestamp::from_second(now + 3600).unwrap();
        s.renewed("new-token".into(), now, returned);
        // A mounted directory still shows the old token: still scheduled from the answer.
        s.observe(&old);
        assert_eq!(s.expires, Some(now + 3600));
        assert_eq!(s.renew_at, Some(now + 2400));
        assert!(!s.due(now));
    }

    #[test]
    fn a_failed_renewal_keeps_the_token_and_retries_later() {
        let now = token_expiry::now();
        let mut s = Schedule::new();
        s.observe(&jwt(&serde_json::json!({"iat": now - 100, "exp": now + 10, "sub": "system:serviceaccount:ns:sa"})));
        let token = s.token.clone();
        let e = RenewalError::Forbidden {
            site: "dc2".into(),
            sa: ServiceAccountRef {
                namespace: "ns".into(),
                name: "sa".into(),
            },
            reason: "forbidden".into(),
        };
        s.failed(&e);
        assert_eq!(s.token, token);
        assert!(!s.due(now), "retried only after the backoff");
        let r = s.report();
        assert_eq!(r.expires, Some(now + 10));
        let p = r.problem("dc2").unwrap();
        assert!(
            p.contains("grant create on serviceaccounts/token with resourceNames [sa] in namespace ns on dc2"),
            "{p}"
        );
        assert!(
            p.contains("the current token is used until it expires"),
            "{p}"
        );
    }
}
