//! urbantwin's identities: password hashing, API keys, session and CSRF tokens, and verification of OpenID Connect
//! bearer tokens (JWT) against an identity provider's keys. Pure building blocks: no HTTP handlers, no storage.
//!
//! Every function here turns what a request presented into a yes, a no or a [`Principal`](twin_model::policy::Principal);
//! the HTTP layer decides what to do with it, and the stores keep only hashes. No error message contains a secret.

pub mod apikey;
pub mod error;
pub mod jwt;
pub mod password;
pub mod session;

pub use error::AuthError;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};

/// `n` bytes from the thread-local CSPRNG (ChaCha, seeded and periodically reseeded from the operating system).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    buf
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `s`, lower-case hex.
pub(crate) fn sha256_hex(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    out
}

/// Constant-time equality of two byte strings (the length is not hidden; the hashes compared have a fixed length).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
