//! The NGSI-LD error types (ETSI GS CIM 009, clause 5.5.2) that every layer reports in; the HTTP edge turns them
//! into ProblemDetails with the status code the specification gives each type.

use std::fmt;

/// An NGSI-LD error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidRequest,
    BadRequestData,
    AlreadyExists,
    OperationNotSupported,
    ResourceNotFound,
    InternalError,
    TooComplexQuery,
    TooManyResults,
    LdContextNotAvailable,
    NoMultiTenantSupport,
    NonexistentTenant,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotAcceptable,
    /// urbantwin: the request needs credentials, or the ones it carries are not valid (401).
    Unauthenticated,
    /// urbantwin: the caller is known but may not do this (403).
    AccessDenied,
}

impl ErrorKind {
    /// The short name used in the error type URI.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "InvalidRequest",
            ErrorKind::BadRequestData => "BadRequestData",
            ErrorKind::AlreadyExists => "AlreadyExists",
            ErrorKind::OperationNotSupported => "OperationNotSupported",
            ErrorKind::ResourceNotFound => "ResourceNotFound",
            ErrorKind::InternalError => "InternalError",
            ErrorKind::TooComplexQuery => "TooComplexQuery",
            ErrorKind::TooManyResults => "TooManyResults",
            ErrorKind::LdContextNotAvailable => "LdContextNotAvailable",
            ErrorKind::NoMultiTenantSupport => "NoMultiTenantSupport",
            ErrorKind::NonexistentTenant => "NonexistentTenant",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::PayloadTooLarge => "PayloadTooLarge",
            ErrorKind::UnsupportedMediaType => "UnsupportedMediaType",
            ErrorKind::NotAcceptable => "NotAcceptable",
            ErrorKind::Unauthenticated => "Unauthenticated",
            ErrorKind::AccessDenied => "AccessDenied",
        }
    }

    /// The problem type URI (`https://uri.etsi.org/ngsi-ld/errors/...`).
    pub fn type_uri(self) -> String {
        format!("https://uri.etsi.org/ngsi-ld/errors/{}", self.name())
    }

    /// A human title for the type.
    pub fn title(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => {
                "The request associated to the operation is syntactically invalid"
            }
            ErrorKind::BadRequestData => {
                "The request includes input data which does not meet the requirements"
            }
            ErrorKind::AlreadyExists => "The referred element already exists",
            ErrorKind::OperationNotSupported => "The operation is not supported",
            ErrorKind::ResourceNotFound => "The referred resource has not been found",
            ErrorKind::InternalError => "There has been an error during the operation execution",
            ErrorKind::TooComplexQuery => "The query is too complex",
            ErrorKind::TooManyResults => "The query yields too many results",
            ErrorKind::LdContextNotAvailable => "A remote JSON-LD @context could not be retrieved",
            ErrorKind::NoMultiTenantSupport => "Multi-tenancy is not supported",
            ErrorKind::NonexistentTenant => "The tenant does not exist",
            ErrorKind::Conflict => "The request conflicts with the current state",
            ErrorKind::PayloadTooLarge => "The request body is too large",
            ErrorKind::UnsupportedMediaType => "The request content type is not supported",
            ErrorKind::NotAcceptable => "None of the accepted media types can be produced",
            ErrorKind::Unauthenticated => "The request needs valid credentials",
            ErrorKind::AccessDenied => "The caller may not do this",
        }
    }
}

/// An error in NGSI-LD terms: a type and a precise detail for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NgsiError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl NgsiError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> NgsiError {
        NgsiError {
            kind,
            detail: detail.into(),
        }
    }
    pub fn bad_data(detail: impl Into<String>) -> NgsiError {
        NgsiError::new(ErrorKind::BadRequestData, detail)
    }
    pub fn invalid(detail: impl Into<String>) -> NgsiError {
        NgsiError::new(ErrorKind::InvalidRequest, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> NgsiError {
        NgsiError::new(ErrorKind::ResourceNotFound, detail)
    }
    pub fn exists(detail: impl Into<String>) -> NgsiError {
        NgsiError::new(ErrorKind::AlreadyExists, detail)
    }
    pub fn internal(detail: impl Into<String>) -> NgsiError {
        NgsiError::new(ErrorKind::InternalError, detail)
    }
    pub fn unsupported(detail: impl Into<String>) -> NgsiError {
        NgsiError::new(ErrorKind::OperationNotSupported, detail)
    }
}

impl fmt::Display for NgsiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

impl std::error::Error for NgsiError {}

impl From<crate::query::QueryError> for NgsiError {
    fn from(e: crate::query::QueryError) -> Self {
        NgsiError::bad_data(e.0)
    }
}

pub type Result<T, E = NgsiError> = std::result::Result<T, E>;
