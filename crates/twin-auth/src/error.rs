//! What went wrong, said precisely and without the secret that was presented.

use chrono::{DateTime, Utc};

/// Why an identity was not established. The messages are meant for the client (and the log) and never contain a
/// password, a key or a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the password is too short: {min} characters at least")]
    PasswordTooShort { min: usize },
    #[error("the password is a single character repeated")]
    PasswordRepetitive,
    #[error("the password is among the most common passwords")]
    PasswordCommon,
    #[error("password hashing failed: {0}")]
    Hashing(String),

    #[error("the token is not a well-formed JWT: {0}")]
    MalformedToken(String),
    #[error("the signing algorithm {0:?} is not accepted")]
    AlgorithmNotAccepted(String),
    #[error("unknown signing key kid {0:?}")]
    UnknownKey(String),
    #[error("the token names no signing key (kid) and no key of the identity provider fits its algorithm {0}")]
    NoKeyFor(String),
    #[error("signature invalid")]
    SignatureInvalid,
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the token is not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    #[error("issuer {got} not accepted: expected {expected:?}")]
    Issuer { got: String, expected: String },
    #[error("audience {got} not accepted: expected {expected:?}")]
    Audience { got: String, expected: String },
    #[error("the token has no {0:?} claim")]
    MissingClaim(String),
    #[error("the token's {0:?} claim is malformed")]
    InvalidClaim(String),

    #[error("the identity provider's key set (JWKS) is unusable: {0}")]
    Jwks(String),
    #[error("the identity provider's key set (JWKS) could not be fetched from {url}: {reason}")]
    JwksFetch { url: String, reason: String },
    #[error("the OpenID Connect configuration is invalid: {0}")]
    Config(String),
}
