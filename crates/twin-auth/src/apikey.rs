//! API keys for programs and devices: `utk_<id>_<secret>`, shown once, stored as a SHA-256 hash.
//!
//! The id (12 base64url characters) is public: it names the key in lists and logs and finds its record. The secret
//! is 32 random bytes. Because the token carries 256 bits of entropy, nobody can guess it from its hash, so a fast
//! hash is right here: a slow password hash (argon2) protects low-entropy human secrets and would only make every
//! API request cost tens of milliseconds.

use std::fmt;

use crate::{b64url, ct_eq, random_bytes, sha256_hex};

/// The token's prefix: recognisable in logs and by secret scanners.
pub const PREFIX: &str = "utk_";
/// Characters in a key id.
pub const ID_LEN: usize = 12;
/// Characters in the secret part (32 bytes in base64url without padding).
const SECRET_LEN: usize = 43;
/// Characters in a whole token.
pub const TOKEN_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN;

/// A new key: the full token to show the user once, and the record fields to store.
#[derive(Clone)]
pub struct NewKey {
    /// The public key id.
    pub id: String,
    /// The full token `utk_<id>_<secret>`: show once, never store.
    pub secret: String,
    /// SHA-256 hex of the full token: store this.
    pub hash: String,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("hash", &self.hash)
            .finish()
    }
}

/// Makes a new key.
pub fn generate() -> NewKey {
    let id = b64url(&random_bytes::<9>());
    let secret = format!("{PREFIX}{id}_{}", b64url(&random_bytes::<32>()));
    let hash = hash(&secret);
    NewKey { id, secret, hash }
}

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// Splits a presented token into (key id, the full token to verify), or None when it does not have the shape of
/// a key: the prefix, then fixed-length base64url id and secret. Cheap; no secret-dependent branching beyond the
/// shape.
pub fn parse(token: &str) -> Option<(String, &str)> {
    let b = token.as_bytes();
    if b.len() != TOKEN_LEN || !token.starts_with(PREFIX) {
        return None;
    }
    let sep = PREFIX.len() + ID_LEN;
    let shape_ok = b[PREFIX.len()..]
        .iter()
        .enumerate()
        .fold(b[sep] == b'_', |ok, (i, &c)| {
            ok & (i + PREFIX.len() == sep || is_b64url(c))
        });
    shape_ok.then(|| (token[PREFIX.len()..sep].to_string(), token))
}

/// SHA-256 hex of the full token (see the module documentation for why a fast hash).
pub fn hash(token: &str) -> String {
    sha256_hex(token)
}

/// Whether `token` hashes to `stored_hash`, compared in constant time.
pub fn verify(token: &str, stored_hash: &str) -> bool {
    ct_eq(hash(token).as_bytes(), stored_hash.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_parse_verify() {
        let k = generate();
        assert_eq!(k.id.len(), ID_LEN);
        assert_eq!(k.secret.len(), TOKEN_LEN);
        assert!(k.secret.starts_with(&format!("utk_{}_", k.id)));
        assert_eq!(k.hash.len(), 64);
        assert_eq!(k.hash, hash(&k.secret));
        let (id, token) = parse(&k.secret).unwrap();
        assert_eq!(id, k.id);
        assert_eq!(token, k.secret);
        assert!(verify(token, &k.hash));
        assert!(
            !format!("{k:?}").contains(&k.secret[20..]),
            "Debug hides the secret"
        );
        let other = generate();
        assert_ne!(other.id, k.id);
        assert_ne!(other.secret, k.secret);
        assert!(!verify(&other.secret, &k.hash));
    }

    #[test]
    fn tampered_and_malformed() {
        let k = generate();
        // flip one character of the secret: same shape, wrong hash
        let mut t = k.secret.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).unwrap();
        assert!(parse(&t).is_some());
        assert!(!verify(&t, &k.hash));
        assert!(!verify(&k.secret, ""));
        assert!(!verify(&k.secret, &k.hash.to_uppercase()));
        for bad in [
            String::new(),
            "utk_".into(),
            k.secret[..k.secret.len() - 1].to_string(),
            format!("{}A", k.secret),
            k.secret.replacen("utk_", "utx_", 1),
            format!("utk_{}-{}", &k.secret[4..16], &k.secret[17..]),
            format!("{}!", &k.secret[..k.secret.len() - 1]),
            format!("Bearer {}", &k.secret[7..]),
            format!("{}é", &k.secret[..k.secret.len() - 2]),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }
}
