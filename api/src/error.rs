//! The API's error type and its one mapping to HTTP: `{"error": {"code", "message", "field"?}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not the shape expected.
    #[error("{message}")]
    BadRequest { message: String, field: Option<String> },
    /// The request is well-formed but a field's value is not acceptable.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        field: String,
    },
    #[error("missing or invalid API key: send Authorization: Bearer <key>")]
    Unauthorized,
    #[error("missing or invalid X-Hub-Signature-256")]
    BadSignature,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Unavailable(String),
    /// A tenant's model budget is spent until `retry_after` (the daily reset).
    #[error("{reason}")]
    BudgetExhausted {
        reason: String,
        retry_after: std::time::Duration,
    },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn field(code: &'static str, field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Unprocessable {
            code,
            message: message.into(),
            field: field.to_owned(),
        }
    }

    pub fn bad_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadSignature => "bad_signature",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::BudgetExhausted { .. } => "budget_exhausted",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<shared::models::QuotaError> for ApiError {
    fn from(e: shared::models::QuotaError) -> Self {
        match e {
            shared::models::QuotaError::Exhausted(x) => ApiError::BudgetExhausted {
                reason: x.reason,
                retry_after: x.retry_after,
            },
            store @ shared::models::QuotaError::Store(_) => ApiError::Unavailable(store.to_string()),
        }
    }
}

impl From<shared::db::DbError> for ApiError {
    fn from(e: shared::db::DbError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::intake::IntakeError> for ApiError {
    fn from(e: crate::intake::IntakeError) -> Self {
        match e {
            crate::intake::IntakeError::Db(e) => e.into(),
            stopped @ crate::intake::IntakeError::Stopped => ApiError::Unavailable(stopped.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized | ApiError::BadSignature => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BudgetExhausted { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            // The detail is logged (and reported to Sentry by the request middleware, with the
            // request's ids), never sent: it may describe infrastructure.
            tracing::error!(error = %detail, "internal error");
        }
        let mut body = json!({ "code": self.code(), "message": self.to_string() });
        let field = match self {
            ApiError::BadRequest { field, .. } => field.clone(),
            ApiError::Unprocessable { field, .. } => Some(field.clone()),
            _ => None,
        };
        if let Some(f) = field {
            body["field"] = json!(f);
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::BudgetExhausted { retry_after, .. } = self {
            resp.insert_header(("Retry-After", retry_after.as_secs().max(1).to_string()));
        }
        resp.json(json!({ "error": body }))
    }
}
