//! ProblemDetails responses: every error of the API leaves as RFC 7807 JSON with an NGSI-LD error type and the
//! status code clause 6.3.2 of the specification gives that type.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use twin_model::{ErrorKind, NgsiError};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub NgsiError);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<NgsiError> for ApiError {
    fn from(e: NgsiError) -> Self {
        ApiError(e)
    }
}

impl From<twin_model::query::QueryError> for ApiError {
    fn from(e: twin_model::query::QueryError) -> Self {
        ApiError(e.into())
    }
}

impl ApiError {
    pub fn bad_data(d: impl Into<String>) -> ApiError {
        ApiError(NgsiError::bad_data(d))
    }
    pub fn invalid(d: impl Into<String>) -> ApiError {
        ApiError(NgsiError::invalid(d))
    }
    pub fn not_found(d: impl Into<String>) -> ApiError {
        ApiError(NgsiError::not_found(d))
    }
    pub fn new(kind: ErrorKind, d: impl Into<String>) -> ApiError {
        ApiError(NgsiError::new(kind, d))
    }
}

/// The HTTP status of an NGSI-LD error type.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::BadRequestData => StatusCode::BAD_REQUEST,
        ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::OperationNotSupported => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::ResourceNotFound | ErrorKind::NonexistentTenant => StatusCode::NOT_FOUND,
        ErrorKind::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::TooComplexQuery | ErrorKind::TooManyResults => StatusCode::FORBIDDEN,
        ErrorKind::LdContextNotAvailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::NoMultiTenantSupport => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::AccessDenied => StatusCode::FORBIDDEN,
    }
}

/// The ProblemDetails body of an error.
pub fn problem_json(e: &NgsiError) -> serde_json::Value {
    json!({
        "type": e.kind.type_uri(),
        "title": e.kind.title(),
        "status": status_of(e.kind).as_u16(),
        "detail": e.detail,
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.0.kind);
        if status.is_server_error() {
            tracing::error!(kind = self.0.kind.name(), detail = %self.0.detail, "request failed");
        } else {
            tracing::debug!(kind = self.0.kind.name(), detail = %self.0.detail, "request rejected");
        }
        let body = problem_json(&self.0).to_string();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
