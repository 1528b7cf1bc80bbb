//! When a remote's bound token expires and when to renew it: JWT claims read as data, the renew point.
//!
//! A bound service-account token is a JWT. Its claims are read without verifying the signature:
//! they only schedule the next renewal and name the service account to ask a new token for
//! (a wrong claim makes that TokenRequest fail, which is reported; it grants nothing). After a
//! renewal the schedule comes from the expiry the API server returned, never from the lifetime
//! asked for: servers shorten lifetimes (`--service-account-max-token-expiration`).

use std::time::Duration;

use base64::Engine;
use jiff::Timestamp;

/// Lifetime `register`, `export` and the renewals ask for. A server may grant less.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Renew when this fraction of the lifetime is left: 8 h of a 24 h token. That leaves hours of
/// retries (and alerts) for a failing renewal before the old token stops working, while a
/// token is still replaced only once per 16 h. The kubelet renews projected tokens at 80% of
/// their lifetime; a remote cluster is further away and its RBAC can be broken by hand, hence
/// the larger margin.
pub const RENEW_WHEN_LEFT: f64 = 1.0 / 3.0;

/// Why a token's expiry cannot be read.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ClaimsError {
    /// Not three dot-separated parts: an opaque token (a legacy token Secret of another
    /// issuer, a cloud provider's token). It cannot be scheduled for renewal.
    #[error("the token is not a JWT (not three dot-separated parts)")]
    NotJwt,
    /// The payload is not base64url JSON.
    #[error("the token's claims cannot be decoded: {0}")]
    Undecodable(String),
    /// A JWT without `exp`: a legacy service-account token, valid until its Secret is deleted.
    #[error("the token has no exp claim (a legacy token that never expires)")]
    NoExpiry,
}

/// The claims of a bound token that renewal reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenClaims {
    /// `exp`, Unix seconds.
    pub expires: i64,
    /// `iat`, Unix seconds, when present.
    pub issued: Option<i64>,
    /// The service account the token belongs to (`kubernetes.io` claim, else `sub`).
    pub service_account: Option<ServiceAccountRef>,
}

/// A service account by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ServiceAccountRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Reads the claims of `token` (as data: the signature is not checked, see the module doc).
pub fn claims(token: &str) -> Result<TokenClaims, ClaimsError> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(ClaimsError::NotJwt);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|e| ClaimsError::Undecodable(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ClaimsError::Undecodable(e.to_string()))?;
    let expires = v["exp"].as_i64().ok_or(ClaimsError::NoExpiry)?;
    Ok(TokenClaims {
        expires,
        issued: v["iat"].as_i64(),
        service_account: service_account_of(&v),
    })
}

fn service_account_of(v: &serde_json::Value) -> Option<ServiceAccountRef> {
    let k = &v["kubernetes.io"];
    if let (Some(namespace), Some(name)) = (
        k["namespace"].as_str(),
        k["serviceaccount"]["name"].as_str(),
    ) {
        return Some(ServiceAccountRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
        });
    }
    let sub = v["sub"].as_str()?;
    let rest = sub.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    Some(ServiceAccountRef {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// When a token valid from `issued` to `expires` (Unix seconds) is renewed: when
/// [`RENEW_WHEN_LEFT`] of its lifetime is left. Without `issued` the lifetime is unknown and
/// [`DEFAULT_TOKEN_LIFETIME`] is assumed (renewing at once when that point has passed).
pub fn renew_at(issued: Option<i64>, expires: i64) -> i64 {
    let lifetime = match issued {
        Some(iat) if iat < expires => expires - iat,
        _ => DEFAULT_TOKEN_LIFETIME.as_secs() as i64,
    };
    expires - (lifetime as f64 * RENEW_WHEN_LEFT).round() as i64
}

/// The renew point after a TokenRequest sent at `sent` (Unix seconds) answered with
/// `status.expirationTimestamp` `returned`: the lifetime is what the server granted.
pub fn renew_after_request(sent: i64, returned: Timestamp) -> i64 {
    renew_at(Some(sent), returned.as_second())
}

/// `expires` (Unix seconds) as RFC 3339 (`2026-01-02T03:04:05Z`).
pub fn rfc3339(unix: i64) -> String {
    Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// The current time, Unix seconds.
pub fn now() -> i64 {
    Timestamp::now().as_second()
}

/// A JWT-shaped token carrying `claims` (unsigned), as tests of token handling need them.
#[cfg(test)]
pub(crate) fn test_jwt(claims: &serde_json::Value) -> String {
    let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b(br#"{"alg":"RS256"}"#),
        b(claims.to_string().as_bytes()),
        b(b"signature")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_service_account_are_read_from_the_claims_as_data() {
        let t = test_jwt(&serde_json::json!({
            "exp": 1_700_086_400, "iat": 1_700_000_000,
            "kubernetes.io": {"namespace": "cassandra", "serviceaccount": {"name": "multi-casskop", "uid": "u"}},
            "sub": "system:serviceaccount:other:ignored",
        }));
        let c = claims(&t).unwrap();
        assert_eq!(c.expires, 1_700_086_400);
        assert_eq!(c.issued, Some(1_700_000_000));
        assert_eq!(
            c.service_account.unwrap().to_string(),
            "cassandra/multi-casskop"
        );
        let sub_only =
            test_jwt(&serde_json::json!({"exp": 5, "sub": "system:serviceaccount:ns:sa"}));
        assert_eq!(
            claims(&sub_only)
                .unwrap()
                .service_account
                .unwrap()
                .to_string(),
            "ns/sa"
        );
    }

    #[test]
    fn malformed_tokens_give_no_schedule_and_say_why() {
        assert_eq!(claims("kubesim-sa.opaque"), Err(ClaimsError::NotJwt));
        assert!(matches!(
            claims("a.!!!.c"),
            Err(ClaimsError::Undecodable(_))
        ));
        let not_json = format!(
            "a.{}.c",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"not json")
        );
        assert!(matches!(
            claims(&not_json),
            Err(ClaimsError::Undecodable(_))
        ));
        let legacy = test_jwt(&serde_json::json!({"sub": "system:serviceaccount:ns:sa"}));
        assert_eq!(claims(&legacy), Err(ClaimsError::NoExpiry));
        assert!(ClaimsError::NoExpiry.to_string().contains("never expires"));
    }

    #[test]
    fn renewal_comes_when_a_third_of_the_lifetime_is_left() {
        // A 24 h token is renewed 8 h before it expires.
        assert_eq!(renew_at(Some(0), 86_400), 57_600);
        // A 20 s token (a short cap) at 13 s.
        assert_eq!(renew_at(Some(100), 120), 113);
        // No iat: the default lifetime is assumed.
        assert_eq!(renew_at(None, 86_400), 57_600);
    }

    #[test]
    fn the_schedule_follows_the_returned_expiry_never_the_asked_lifetime() {
        // 24 h asked, the server capped it to 1 h: renewed 20 min before the 1 h expiry, not
        // 16 h later (long after the token died).
        let sent = 1_000_000;
        let returned = Timestamp::from_second(sent + 3600).unwrap();
        let at = renew_after_request(sent, returned);
        assert_eq!(at, sent + 2400);
        assert!(at < sent + 3600);
        // A 20 s cap below kube-apiserver's 10 minute minimum request still schedules sanely.
        let returned = Timestamp::from_second(sent + 20).unwrap();
        assert_eq!(renew_after_request(sent, returned), sent + 13);
    }

    #[test]
    fn expiry_is_shown_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
