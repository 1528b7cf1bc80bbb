//! Kubernetes `Status` errors with kube-apiserver's codes, reasons and message shapes.
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

/// `secrets` or `cassandraclusters.db.orange.com`, as kube qualifies a resource in messages.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }
    fn with_details(mut self, group: &str, resource: &str, name: &str) -> Self {
        let mut d = json!({"name": name, "kind": resource});
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        self.details = Some(d);
        self
    }
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, resource)),
        )
        .with_details(group, resource, name)
    }
    pub fn no_route() -> Self {
        ApiError {
            details: Some(json!({})),
            ..ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, resource)),
        )
        .with_details(group, resource, name)
    }
    pub fn conflict(group: &str, resource: &str, name: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, resource)
            ),
        )
        .with_details(group, resource, name)
    }
    pub fn conflict_msg(group: &str, resource: &str, name: &str, message: String) -> Self {
        ApiError {
            message,
            ..ApiError::new(409, "Conflict", "")
        }
        .with_details(group, resource, name)
    }
    /// 422: `Kind.group "name" is invalid: field: reason`.
    pub fn invalid(group: &str, kind: &str, name: &str, field: &str, cause: &str) -> Self {
        let qk = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!("{qk} \"{name}\" is invalid: {cause}"),
        );
        let mut d = json!({"name": name, "kind": kind, "causes": [{"reason": "FieldValueInvalid", "message": cause, "field": field}]});
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        e.details = Some(d);
        e
    }
    /// 422 with one cause per field error (`causes[].message` is the text after the field path,
    /// as kube's `ErrorBody`); the message aggregates them like kube's `ErrorList`.
    pub fn invalid_causes(
        group: &str,
        kind: &str,
        name: &str,
        causes: &[(&str, &str, &str)],
        messages: &[String],
    ) -> Self {
        let qk = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let agg = crate::validation::aggregate(messages.to_vec())
            .err()
            .unwrap_or_default();
        let mut e = ApiError::new(422, "Invalid", format!("{qk} \"{name}\" is invalid: {agg}"));
        let causes: Vec<Value> = causes
            .iter()
            .map(|(reason, field, body)| json!({"reason": reason, "message": body, "field": field}))
            .collect();
        let mut d = json!({"name": name, "kind": kind, "causes": causes});
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        e.details = Some(d);
        e
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }
    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }
    pub fn forbidden(message: String, group: &str, resource: &str, name: &str) -> Self {
        ApiError::new(403, "Forbidden", message).with_details(group, resource, name)
    }
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }
    pub fn not_acceptable() -> Self {
        ApiError::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io",
        )
    }
    pub fn unsupported_media(accepted: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}"
            ),
        )
    }
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }
    pub fn gone(message: String) -> Self {
        ApiError::new(410, "Expired", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }
    /// Injected faults use the reasons the apiserver uses for these codes.
    pub fn injected(code: u16) -> Self {
        match code {
            429 => ApiError {
                details: Some(json!({"retryAfterSeconds": 1})),
                ..ApiError::new(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                )
            },
            503 => ApiError::new(
                503,
                "ServiceUnavailable",
                "The server is currently unable to handle the request (injected fault)",
            ),
            500 => ApiError::internal("injected fault"),
            c => ApiError::new(c, reason_for(c), format!("injected fault {c}")),
        }
    }
    pub fn status_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        if self.reason.is_empty() {
            // metav1.Status.Reason is omitempty (StatusReasonUnknown).
            v.as_object_mut().expect("status object").remove("reason");
        }
        v
    }
}

pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}
