//! Browser sessions: a random token in an HttpOnly cookie (the store keeps only its hash), and a CSRF token derived
//! from it for state-changing requests.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{b64url, ct_eq, random_bytes, sha256_hex};

/// The session cookie's name.
pub const COOKIE: &str = "urbantwin_session";

/// A new session token (32 random bytes, base64url) and its SHA-256 hex (the store keeps only the hash).
pub fn new_token() -> (String, String) {
    let token = b64url(&random_bytes::<32>());
    let hash = hash(&token);
    (token, hash)
}

/// SHA-256 hex of a session token.
pub fn hash(token: &str) -> String {
    sha256_hex(token)
}

/// The CSRF token bound to a session: HMAC-SHA256 keyed with the session token over `"csrf"`, base64url. Only who
/// holds the session token (not another site posting with the browser's cookie) can compute it.
pub fn csrf_token(session_token: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(session_token.as_bytes()) else {
        // HMAC takes keys of any length; this branch is not reached.
        return String::new();
    };
    mac.update(b"csrf");
    b64url(&mac.finalize().into_bytes())
}

/// Whether `presented` is the CSRF token of `session_token`, compared in constant time.
pub fn verify_csrf(session_token: &str, presented: &str) -> bool {
    let expected = csrf_token(session_token);
    !expected.is_empty() && ct_eq(expected.as_bytes(), presented.as_bytes())
}

/// The `Set-Cookie` value that sets the session: HttpOnly, SameSite=Lax, Path=/, Max-Age in seconds, and Secure
/// when `secure` (served over HTTPS).
pub fn set_cookie(token: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", Duration::ZERO, secure)
}

/// Reads the session token from a `Cookie` header value (`a=1; urbantwin_session=...; b=2`). A value that is not
/// base64url (so not a token we issued) is ignored.
pub fn from_cookie_header(header: &str) -> Option<String> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| name.trim() == COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .find(|v| {
            !v.is_empty()
                && v.len() <= 256
                && v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (t, h) = new_token();
        assert_eq!(t.len(), 43);
        assert_eq!(h, hash(&t));
        assert_eq!(h.len(), 64);
        assert_ne!(new_token().0, t);
    }

    #[test]
    fn csrf_is_bound_to_the_session() {
        let (t, _) = new_token();
        let (u, _) = new_token();
        let c = csrf_token(&t);
        assert_eq!(c, csrf_token(&t), "deterministic");
        assert_eq!(c.len(), 43);
        assert!(verify_csrf(&t, &c));
        assert!(!verify_csrf(&u, &c));
        assert!(!verify_csrf(&t, ""));
        assert!(!verify_csrf(&t, &c[1..]));
        assert!(!verify_csrf(&t, &t));
    }

    #[test]
    fn cookies() {
        assert_eq!(
            set_cookie("abc", Duration::from_secs(3600), true),
            "urbantwin_session=abc; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            set_cookie("abc", Duration::from_secs(60), false),
            "urbantwin_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            clear_cookie(true),
            "urbantwin_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
        );
        let (t, _) = new_token();
        assert_eq!(
            from_cookie_header(&format!("urbantwin_session={t}")),
            Some(t.clone())
        );
        assert_eq!(
            from_cookie_header(&format!("theme=dark; urbantwin_session={t} ; lang=fi")),
            Some(t.clone())
        );
        assert_eq!(from_cookie_header("theme=dark; other_session=x"), None);
        assert_eq!(from_cookie_header("urbantwin_session="), None);
        assert_eq!(from_cookie_header("urbantwin_session=a b<script>"), None);
        assert_eq!(from_cookie_header("xurbantwin_session=abc"), None);
        assert_eq!(from_cookie_header(""), None);
    }
}
