//! Bearer-token authentication: admin, service-account secret tokens, TokenRequest (JWT-shaped, expiring) and test tokens.
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::Value;

use crate::errors::ApiError;
use crate::rbac::UserInfo;
use crate::resources::ResKey;
use crate::store::{State, TokenKind};

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh opaque token (no structure clients could rely on).
pub fn random_token(prefix: &str) -> String {
    let mut rng = rand::rng();
    let s: String = (0..40)
        .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
        .collect();
    format!("{prefix}.{s}")
}

/// The bound service-account token kube-apiserver issues for a TokenRequest: a JWT whose claims
/// clients may read (`exp`, `iat`, `nbf`, `sub`, `kubernetes.io`); the signature is random
/// bytes, since kubesim looks tokens up instead of verifying them.
pub fn bound_token(
    namespace: &str,
    sa: &str,
    sa_uid: &str,
    audiences: &[Value],
    iat: i64,
    exp: i64,
) -> String {
    use base64::Engine;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let header = serde_json::json!({"alg": "RS256", "kid": "kubesim"});
    let claims = serde_json::json!({
        "aud": audiences,
        "exp": exp,
        "iat": iat,
        "nbf": iat,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "jti": random_token("jti"),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": sa, "uid": sa_uid},
        },
        "sub": format!("system:serviceaccount:{namespace}:{sa}"),
    });
    let mut rng = rand::rng();
    let signature: Vec<u8> = (0..64).map(|_| rng.random::<u8>()).collect();
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(&signature)
    )
}

pub fn admin_user() -> UserInfo {
    UserInfo {
        username: "kubesim:admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
    }
}

pub fn sa_user(namespace: &str, sa: &str) -> UserInfo {
    UserInfo {
        username: format!("system:serviceaccount:{namespace}:{sa}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ],
    }
}

fn core(plural: &str) -> ResKey {
    ResKey {
        group: String::new(),
        plural: plural.into(),
    }
}

/// Resolves a bearer token to its identity, or 401.
pub fn authenticate(state: &State, token: &str) -> Result<UserInfo, ApiError> {
    if state.revoked.contains(token) {
        return Err(ApiError::unauthorized());
    }
    let entry = state.tokens.get(token).ok_or_else(ApiError::unauthorized)?;
    if entry.expires.is_some_and(|e| e <= now_unix()) {
        return Err(ApiError::unauthorized());
    }
    match &entry.kind {
        TokenKind::Admin | TokenKind::Issued => {}
        TokenKind::Secret {
            namespace,
            secret,
            sa,
        } => {
            let s = state
                .get(&core("secrets"), namespace, secret)
                .ok_or_else(ApiError::unauthorized)?;
            let holds = s["data"]["token"].as_str().is_some_and(|t| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(t)
                    .is_ok_and(|d| d == token.as_bytes())
            });
            if !holds || state.get(&core("serviceaccounts"), namespace, sa).is_none() {
                return Err(ApiError::unauthorized());
            }
        }
        TokenKind::Request {
            namespace,
            sa,
            sa_uid,
        } => {
            let live = state
                .get(&core("serviceaccounts"), namespace, sa)
                .ok_or_else(ApiError::unauthorized)?;
            if live["metadata"]["uid"].as_str() != Some(sa_uid.as_str()) {
                return Err(ApiError::unauthorized());
            }
        }
    }
    Ok(entry.user.clone())
}

/// Extracts the bearer token from an Authorization header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, tok) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| tok.trim())
        .filter(|t| !t.is_empty())
}

pub fn sa_uid(sa: &Value) -> String {
    sa["metadata"]["uid"].as_str().unwrap_or("").to_string()
}
