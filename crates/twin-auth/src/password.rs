//! Account passwords: argon2id hashes in PHC string format, and a minimal strength check.
//!
//! The parameters are OWASP's recommendation for argon2id (m = 19 456 KiB, t = 2, p = 1). The PHC string carries
//! them, so hashes made with other parameters still verify after a change here.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::AuthError;

/// The shortest password accepted, in characters.
pub const MIN_LENGTH: usize = 12;

/// Passwords of 12 characters or more that lead the lists of leaked passwords (compared case-insensitively).
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456789abc",
    "1234567890qwerty",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "abc123456789",
    "abcdefghijkl",
    "abcd12345678",
    "administrator",
    "iloveyou1234",
    "letmein12345",
    "password1234",
    "password123!",
    "password12345",
    "passwordpassword",
    "qwerty123456",
    "qwertyuiop12",
    "qwertyuiop123",
    "qwertyuiopasdf",
    "qwertyuiopasdfghjkl",
    "welcome12345",
    "welcome123456",
    "changeme1234",
    "trustno1trustno1",
    "football1234",
    "baseball1234",
    "monkey123456",
    "dragon123456",
    "sunshine1234",
    "princess1234",
    "superman1234",
    "starwars1234",
    "urbantwin123",
    "urbantwin1234",
];

fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(19_456, 2, 1, None).map_err(|e| AuthError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password with argon2id and a random 16-byte salt into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub fn hash(password: &str) -> Result<String, AuthError> {
    let h = hasher()?
        .hash_password(password.as_bytes())
        .map_err(|e| AuthError::Hashing(e.to_string()))?;
    Ok(h.to_string())
}

/// Whether `password` matches the PHC string `phc` (false too when `phc` is not a valid argon2 PHC string).
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Refuses passwords shorter than [`MIN_LENGTH`] characters, made of one repeated character, or among the most
/// common passwords. (Length matters most; no composition rules, as NIST SP 800-63B advises.)
pub fn check_strength(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(AuthError::PasswordTooShort { min: MIN_LENGTH });
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err(AuthError::PasswordRepetitive);
        }
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(AuthError::PasswordCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapl", &phc));
        assert!(!verify("", &phc));
        let again = hash("correct horse battery staple").unwrap();
        assert_ne!(phc, again, "salted");
        assert!(verify("correct horse battery staple", &again));
    }

    #[test]
    fn verify_survives_garbage_hashes() {
        assert!(!verify("x", ""));
        assert!(!verify("x", "not a phc string"));
        assert!(!verify("x", "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB"));
        assert!(!verify("x", "$2b$12$abcdefghijklmnopqrstuv"));
    }

    #[test]
    fn strength() {
        let e = check_strength("short1!").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the password is too short: 12 characters at least"
        );
        assert!(!e.to_string().contains("short1!"));
        assert!(matches!(
            check_strength("ääääääääääää"),
            Err(AuthError::PasswordRepetitive)
        ));
        assert!(matches!(
            check_strength("Password1234"),
            Err(AuthError::PasswordCommon)
        ));
        assert!(matches!(
            check_strength("QWERTY123456"),
            Err(AuthError::PasswordCommon)
        ));
        // 11 multibyte characters are still too short; 12 are fine
        assert!(check_strength("ålandsöarna").is_err());
        check_strength("tram stop 42 kallio").unwrap();
        check_strength("äöäöäöäöäöäö").unwrap();
    }
}
