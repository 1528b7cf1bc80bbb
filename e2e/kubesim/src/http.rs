//! HTTP response building shared by every endpoint: the body type, JSON/YAML/bytes responses and Status error bodies.
use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use serde_json::Value;

use crate::errors::ApiError;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;
/// kube-apiserver's request body limit.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed_unsync()
}

pub fn bytes_response(code: u16, ct: &str, b: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(b));
    *r.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = header::HeaderValue::from_str(ct) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    bytes_response(
        code,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.status_json());
    if e.code == 429
        && let Ok(v) = header::HeaderValue::from_str("1")
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

pub fn to_yaml(v: &Value) -> Vec<u8> {
    serde_saphyr::to_string(v)
        .map(String::into_bytes)
        .unwrap_or_else(|_| serde_json::to_vec(v).unwrap_or_default())
}
