//! OpenID Connect bearer tokens: verifies a JWT's signature against the identity provider's published keys (JWKS)
//! and its claims against the configuration, and turns it into a [`Principal`].
//!
//! Accepted algorithms: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 and EdDSA. `alg: none` and the
//! HMAC algorithms (HS*) are rejected before any key is looked at: with public keys in play, HMAC would let anyone
//! sign with the public key as the secret. A key whose JWK names an `alg` is used with that algorithm only; keys
//! marked `"use": "enc"` and symmetric (`oct`) keys are ignored.
//!
//! Required claims: `exp`, `iss` (equal to the configured issuer), `aud` (containing the configured audience) and
//! `sub`; `nbf` is checked when present; both with the configured leeway.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use twin_model::policy::{AuthMethod, Principal, Role};

use crate::AuthError;

/// The algorithms accepted in a token's header.
pub const ACCEPTED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The least time between two fetches of the key set triggered by tokens naming an unknown key.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

fn default_leeway() -> u64 {
    60
}

/// The identity provider's settings (from the server's config).
#[derive(Debug, Clone, Deserialize)]
pub struct OidcConfig {
    /// The `iss` the tokens must carry, e.g. `https://login.example.org/realms/city`.
    pub issuer: String,
    /// The value `aud` must contain: this server's client id.
    pub audience: String,
    /// Where the key set is published (the provider's `jwks_uri`).
    pub jwks_url: Option<String>,
    /// Or a file holding the key set (for offline and test setups); takes precedence over `jwks_url`.
    pub jwks_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    /// The claim holding roles (e.g. `roles`, or Keycloak's `realm_access.roles`: a dotted path walks into
    /// objects). Values are read with [`Role::parse`]; unknown ones are ignored; with none, the principal is a
    /// citizen.
    pub roles_claim: Option<String>,
    /// The claim holding group names (a list or a single string; dotted path as above).
    pub groups_claim: Option<String>,
    /// The claim holding the organisation (a string, or the first of a list; dotted path as above).
    pub organisation_claim: Option<String>,
}

/// A usable key from the key set.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// The algorithm the JWK pins, if it names one.
    alg: Option<Algorithm>,
    /// The algorithms this kind of key can verify.
    fits: &'static [Algorithm],
    key: DecodingKey,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        self.fits.contains(&alg) && self.alg.is_none_or(|a| a == alg)
    }
}

/// Reads a JWKS document, keeping the keys usable for signatures and reporting why the others are left out.
fn parse_jwks(json: &str) -> Result<Vec<Key>, AuthError> {
    let doc: Value =
        serde_json::from_str(json).map_err(|e| AuthError::Jwks(format!("not JSON: {e}")))?;
    let Some(items) = doc.get("keys").and_then(Value::as_array) else {
        return Err(AuthError::Jwks("no \"keys\" array".into()));
    };
    let mut keys = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(item.clone()) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(index = i, error = %e, "JWKS: key skipped, not understood");
                continue;
            }
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let fits: &'static [Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => &ACCEPTED_ALGORITHMS[0..6],
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                jsonwebtoken::jwk::EllipticCurve::P256 => &[Algorithm::ES256],
                jsonwebtoken::jwk::EllipticCurve::P384 => &[Algorithm::ES384],
                _ => continue,
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                jsonwebtoken::jwk::EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
                _ => continue,
            },
            // symmetric keys never verify tokens here, nor do key types we do not know
            _ => continue,
        };
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(ka) => match Algorithm::try_from(ka) {
                Ok(a) if fits.contains(&a) => Some(a),
                // a key pinned to an algorithm we do not accept (or that does not fit its type) is not used
                _ => continue,
            },
        };
        let key = match DecodingKey::from_jwk(&jwk) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(index = i, kid = ?jwk.common.key_id, error = %e, "JWKS: key skipped, unusable");
                continue;
            }
        };
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            alg,
            fits,
            key,
        });
    }
    if keys.is_empty() {
        return Err(AuthError::Jwks("no usable signature key".into()));
    }
    Ok(keys)
}

/// Verifies bearer tokens of one identity provider. Cheap to share (`Arc`); verification does not block.
pub struct JwtVerifier {
    cfg: OidcConfig,
    http: Option<reqwest::Client>,
    keys: RwLock<Arc<Vec<Key>>>,
    /// When the key set was last fetched (serialises refetches).
    last_fetch: Mutex<Instant>,
    refetch_interval: Duration,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.cfg.issuer)
            .field("audience", &self.cfg.audience)
            .field("keys", &self.current_keys().len())
            .finish()
    }
}

fn check_config(cfg: &OidcConfig) -> Result<(), AuthError> {
    if cfg.issuer.trim().is_empty() {
        return Err(AuthError::Config("the issuer is empty".into()));
    }
    if cfg.audience.trim().is_empty() {
        return Err(AuthError::Config("the audience is empty".into()));
    }
    Ok(())
}

async fn fetch_jwks(http: &reqwest::Client, url: &str) -> Result<Vec<Key>, AuthError> {
    let fail = |reason: String| AuthError::JwksFetch {
        url: url.to_string(),
        reason,
    };
    let resp = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!("HTTP status {status}")));
    }
    let body = resp.text().await.map_err(|e| fail(e.to_string()))?;
    parse_jwks(&body)
}

impl JwtVerifier {
    /// Loads the key set from `jwks_file` or fetches it from `jwks_url` (with `http`, which also serves later
    /// refetches).
    pub async fn new(cfg: OidcConfig, http: reqwest::Client) -> Result<Self, AuthError> {
        check_config(&cfg)?;
        let keys = if let Some(path) = &cfg.jwks_file {
            let json = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| AuthError::Jwks(format!("cannot read {}: {e}", path.display())))?;
            parse_jwks(&json)?
        } else if let Some(url) = &cfg.jwks_url {
            fetch_jwks(&http, url).await?
        } else {
            return Err(AuthError::Config(
                "neither jwks_url nor jwks_file is set".into(),
            ));
        };
        let refetch = cfg.jwks_file.is_none();
        Ok(JwtVerifier {
            cfg,
            http: refetch.then_some(http),
            keys: RwLock::new(Arc::new(keys)),
            last_fetch: Mutex::new(Instant::now()),
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
        })
    }

    /// A verifier over a fixed key set (never refetched).
    pub fn from_jwks(cfg: OidcConfig, jwks_json: &str) -> Result<Self, AuthError> {
        check_config(&cfg)?;
        Ok(JwtVerifier {
            keys: RwLock::new(Arc::new(parse_jwks(jwks_json)?)),
            cfg,
            http: None,
            last_fetch: Mutex::new(Instant::now()),
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
        })
    }

    /// Changes the least time between two refetches of the key set (default [`DEFAULT_REFETCH_INTERVAL`]).
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    fn current_keys(&self) -> Arc<Vec<Key>> {
        match self.keys.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Refetches the key set if the last fetch is older than the refetch interval; true when it did.
    async fn refetch(&self, kid: &str) -> bool {
        let (Some(http), Some(url)) = (&self.http, &self.cfg.jwks_url) else {
            return false;
        };
        let mut last = self.last_fetch.lock().await;
        // another request may have refetched while this one waited
        if self
            .current_keys()
            .iter()
            .any(|k| k.kid.as_deref() == Some(kid))
        {
            return true;
        }
        if last.elapsed() < self.refetch_interval {
            return false;
        }
        *last = Instant::now();
        match fetch_jwks(http, url).await {
            Ok(keys) => {
                tracing::info!(%url, keys = keys.len(), %kid, "JWKS refetched for an unknown key id");
                match self.keys.write() {
                    Ok(mut k) => *k = Arc::new(keys),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refetch failed; keeping the keys we have");
                false
            }
        }
    }

    /// Verifies a bearer token and returns who it identifies: method `Jwt { issuer }`, subject the `sub` claim (the
    /// caller may qualify it with the issuer), roles from `roles_claim` (none known → citizen), groups from
    /// `groups_claim`, organisation from `organisation_claim`, no key scopes.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let token = token.trim();
        let (header_b64, payload_b64) = split_token(token)?;
        let alg = header_algorithm(header_b64)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::MalformedToken(format!("header: {e}")))?;

        let mut keys = self.current_keys();
        let candidates: Vec<Key> = match &header.kid {
            Some(kid) => {
                if !keys.iter().any(|k| k.kid.as_deref() == Some(kid.as_str()))
                    && self.refetch(kid).await
                {
                    keys = self.current_keys();
                }
                let found: Vec<Key> = keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                    .cloned()
                    .collect();
                if found.is_empty() {
                    return Err(AuthError::UnknownKey(truncate(kid)));
                }
                if !found.iter().any(|k| k.fits(alg)) {
                    return Err(AuthError::AlgorithmNotAccepted(format!(
                        "{alg:?} (the key {} is for another algorithm)",
                        truncate(kid)
                    )));
                }
                found.into_iter().filter(|k| k.fits(alg)).collect()
            }
            None => keys.iter().filter(|k| k.fits(alg)).cloned().collect(),
        };
        if candidates.is_empty() {
            return Err(AuthError::NoKeyFor(format!("{alg:?}")));
        }

        let mut validation = Validation::new(alg);
        validation.leeway = self.cfg.leeway_s;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[self.cfg.issuer.as_str()]);
        validation.set_audience(&[self.cfg.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);

        let mut last_err = AuthError::SignatureInvalid;
        for key in &candidates {
            match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
                Ok(data) => return self.principal(&data.claims),
                Err(e) => {
                    last_err = self.explain(e, payload_b64);
                    if !matches!(last_err, AuthError::SignatureInvalid) {
                        // the signature checked out: the claims are what is wrong
                        return Err(last_err);
                    }
                }
            }
        }
        Err(last_err)
    }

    /// Turns jsonwebtoken's error into ours; claim errors come only after the signature was verified, so reading
    /// the payload for the message is safe.
    fn explain(&self, e: jsonwebtoken::errors::Error, payload_b64: &str) -> AuthError {
        use jsonwebtoken::errors::ErrorKind as K;
        let claims = decode_segment(payload_b64).unwrap_or(Value::Null);
        let time = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_i64)
                .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        };
        match e.kind() {
            K::InvalidSignature => AuthError::SignatureInvalid,
            K::ExpiredSignature => AuthError::Expired(time("exp")),
            K::ImmatureSignature => AuthError::NotYetValid(time("nbf")),
            K::InvalidIssuer => AuthError::Issuer {
                got: truncate(&claims.get("iss").map(claim_text).unwrap_or_default()),
                expected: self.cfg.issuer.clone(),
            },
            K::InvalidAudience => AuthError::Audience {
                got: truncate(&claims.get("aud").map(claim_text).unwrap_or_default()),
                expected: self.cfg.audience.clone(),
            },
            K::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
            K::InvalidClaimFormat(c) => AuthError::InvalidClaim(c.clone()),
            K::InvalidAlgorithm => AuthError::AlgorithmNotAccepted("(does not fit the key)".into()),
            K::InvalidEcdsaKey | K::InvalidEddsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
                AuthError::Jwks(format!("a key is unusable: {e}"))
            }
            _ => AuthError::MalformedToken(e.to_string()),
        }
    }

    fn principal(&self, claims: &Value) -> Result<Principal, AuthError> {
        let sub = match claims.get("sub") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(_) => return Err(AuthError::InvalidClaim("sub".into())),
            None => return Err(AuthError::MissingClaim("sub".into())),
        };
        let strings = |path: &Option<String>| -> Vec<String> {
            path.as_deref()
                .and_then(|p| claim_at(claims, p))
                .map(strings_of)
                .unwrap_or_default()
        };
        let mut roles: std::collections::BTreeSet<Role> = strings(&self.cfg.roles_claim)
            .iter()
            .filter_map(|r| Role::parse(r))
            .collect();
        if roles.is_empty() {
            roles.insert(Role::Citizen);
        }
        let groups = strings(&self.cfg.groups_claim)
            .into_iter()
            .filter(|g| !g.trim().is_empty())
            .collect();
        let organisation = strings(&self.cfg.organisation_claim)
            .into_iter()
            .find(|o| !o.trim().is_empty());
        Ok(Principal {
            subject: Some(sub),
            roles,
            groups,
            organisation,
            method: AuthMethod::Jwt {
                issuer: self.cfg.issuer.clone(),
            },
            scopes: None,
        })
    }
}

/// The header and payload segments of a compact JWS, or why it is not one.
fn split_token(token: &str) -> Result<(&str, &str), AuthError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(_), None) if !h.is_empty() && !p.is_empty() => Ok((h, p)),
        _ => Err(AuthError::MalformedToken(
            "expected three dot-separated base64url segments".into(),
        )),
    }
}

fn decode_segment(seg: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(seg.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The header's `alg`, if it is one we accept.
fn header_algorithm(header_b64: &str) -> Result<Algorithm, AuthError> {
    let header = decode_segment(header_b64)
        .ok_or_else(|| AuthError::MalformedToken("the header is not base64url JSON".into()))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::MalformedToken("the header has no alg".into()))?;
    ACCEPTED_ALGORITHMS
        .iter()
        .copied()
        .find(|a| format!("{a:?}") == alg)
        .ok_or_else(|| AuthError::AlgorithmNotAccepted(truncate(alg)))
}

/// The claim at `path`: the key itself if present (claim names may contain dots, like URLs), else a dotted walk.
fn claim_at<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, seg| v.get(seg))
}

/// A claim's strings: a list's string items, or a single string (split on spaces and commas, as `scope` is).
fn strings_of(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::String(s) => s
            .split([' ', ','])
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// A claim for an error message: strings bare, lists joined.
fn claim_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => items.iter().map(claim_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Bounds text taken from a token before it goes into a message.
fn truncate(s: &str) -> String {
    if s.chars().count() <= 120 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(120).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ISS: &str = "https://login.example.org/realms/city";
    const AUD: &str = "urbantwin";

    /// A signing key and its public JWK.
    struct TestKey {
        alg: Algorithm,
        kid: String,
        enc: EncodingKey,
        jwk: Value,
    }

    fn ec_key(kid: &str) -> TestKey {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        test_key(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(&kp.serialize_der()),
        )
    }

    fn ed_key(kid: &str) -> TestKey {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let x = URL_SAFE_NO_PAD.encode(kp.public_key_raw());
        TestKey {
            alg: Algorithm::EdDSA,
            kid: kid.into(),
            enc: EncodingKey::from_ed_der(&kp.serialize_der()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
        }
    }

    /// An RSA key made by aws-lc-rs (PKCS#8), unwrapped to the PKCS#1 `RSAPrivateKey` jsonwebtoken signs with.
    fn rsa_key(kid: &str, alg: Algorithm) -> TestKey {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8: Pkcs8V1Der = kp.as_der().unwrap();
        test_key(
            kid,
            alg,
            EncodingKey::from_rsa_der(pkcs1_of_pkcs8(pkcs8.as_ref())),
        )
    }

    /// DER: (tag, content, rest).
    fn der(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let (tag, first) = (b[0], b[1]);
        let (len, start) = if first < 0x80 {
            (first as usize, 2)
        } else {
            let n = (first & 0x7f) as usize;
            (
                b[2..2 + n]
                    .iter()
                    .fold(0usize, |acc, x| acc << 8 | *x as usize),
                2 + n,
            )
        };
        (tag, &b[start..start + len], &b[start + len..])
    }

    /// PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE, privateKey OCTET STRING }
    fn pkcs1_of_pkcs8(p8: &[u8]) -> &[u8] {
        let (tag, info, _) = der(p8);
        assert_eq!(tag, 0x30);
        let (_, _, rest) = der(info); // version
        let (_, _, rest) = der(rest); // algorithm
        let (tag, key, _) = der(rest);
        assert_eq!(tag, 0x04);
        key
    }

    fn test_key(kid: &str, alg: Algorithm, enc: EncodingKey) -> TestKey {
        let mut jwk = Jwk::from_encoding_key(&enc, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        TestKey {
            alg,
            kid: kid.into(),
            enc,
            jwk: serde_json::to_value(jwk).unwrap(),
        }
    }

    fn jwks(keys: &[&TestKey]) -> String {
        json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
    }

    fn now() -> i64 {
        Utc::now().timestamp()
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": [AUD, "account"], "sub": "f00d-1", "exp": now() + 300, "iat": now(),
               "realm_access": {"roles": ["planner", "offline_access", "data-owner"]},
               "groups": ["energy", "transport"], "org": "city-of-example"})
    }

    fn sign(k: &TestKey, claims: &Value) -> String {
        let mut h = Header::new(k.alg);
        h.kid = Some(k.kid.clone());
        encode(&h, claims, &k.enc).unwrap()
    }

    fn cfg() -> OidcConfig {
        serde_json::from_value(
            json!({"issuer": ISS, "audience": AUD, "roles_claim": "realm_access.roles",
                                      "groups_claim": "groups", "organisation_claim": "org"}),
        )
        .unwrap()
    }

    fn with(mut c: Value, key: &str, v: Value) -> Value {
        c[key] = v;
        c
    }

    async fn err(v: &JwtVerifier, token: &str) -> AuthError {
        v.verify(token).await.unwrap_err()
    }

    #[tokio::test]
    async fn valid_token_gives_the_principal() {
        let k = ec_key("k1");
        let v = JwtVerifier::from_jwks(cfg(), &jwks(&[&k])).unwrap();
        assert_eq!(v.config().leeway_s, 60);
        let p = v.verify(&sign(&k, &claims())).await.unwrap();
        assert_eq!(p.subject.as_deref(), Some("f00d-1"));
        assert_eq!(
            p.roles,
            [Role::DataOwner, Role::Planner].into_iter().collect()
        );
        assert_eq!(
            p.groups,
            ["energy", "transport"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert_eq!(p.organisation.as_deref(), Some("city-of-example"));
        assert_eq!(p.method, AuthMethod::Jwt { issuer: ISS.into() });
        assert_eq!(p.scopes, None);
        // a plain string audience, roles as a top-level space-separated string
        let mut c = cfg();
        c.roles_claim = Some("roles".into());
        c.groups_claim = None;
        let v = JwtVerifier::from_jwks(c, &jwks(&[&k])).unwrap();
        let p = v
            .verify(&sign(
                &k,
                &with(
                    with(claims(), "aud", json!(AUD)),
                    "roles",
                    json!("admin citizen"),
                ),
            ))
            .await
            .unwrap();
        assert_eq!(p.roles, [Role::Admin, Role::Citizen].into_iter().collect());
        assert!(p.groups.is_empty());
    }

    #[tokio::test]
    async fn no_known_role_means_citizen_and_eddsa_works() {
        let k = ed_key("ed");
        let mut c = cfg();
        c.roles_claim = Some("https://example.org/roles".into());
        let v = JwtVerifier::from_jwks(c, &jwks(&[&k])).unwrap();
        let p = v
            .verify(&sign(
                &k,
                &with(claims(), "https://example.org/roles", json!(["superuser"])),
            ))
            .await
            .unwrap();
        assert_eq!(p.roles, [Role::Citizen].into_iter().collect());
        let p = v
            .verify(&sign(
                &k,
                &with(claims(), "https://example.org/roles", json!(["device"])),
            ))
            .await
            .unwrap();
        assert_eq!(p.roles, [Role::Device].into_iter().collect());
    }

    #[tokio::test]
    async fn rsa_keys_pkcs1_and_pss() {
        let rs = rsa_key("rs", Algorithm::RS256);
        let mut any_rsa = rsa_key("any", Algorithm::RS256);
        any_rsa.jwk.as_object_mut().unwrap().remove("alg");
        let v = JwtVerifier::from_jwks(cfg(), &jwks(&[&rs, &any_rsa])).unwrap();
        v.verify(&sign(&rs, &claims())).await.unwrap();
        // a JWK without alg verifies every RSA algorithm; one pinned to RS256 refuses PS256
        for alg in [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS512,
        ] {
            any_rsa.alg = alg;
            v.verify(&sign(&any_rsa, &claims())).await.unwrap();
        }
        let mut ps = rsa_key("rs", Algorithm::PS256);
        ps.enc = rs.enc.clone();
        let e = err(&v, &sign(&ps, &claims())).await;
        assert!(matches!(e, AuthError::AlgorithmNotAccepted(_)), "{e}");
        // an RSA key cannot verify an ES256 token
        let mut es = ec_key("any");
        es.kid = "any".into();
        assert!(matches!(
            err(&v, &sign(&es, &claims())).await,
            AuthError::AlgorithmNotAccepted(_)
        ));
        // forged with another RSA key under the same kid
        let forger = rsa_key("rs", Algorithm::RS256);
        assert!(matches!(
            err(&v, &sign(&forger, &claims())).await,
            AuthError::SignatureInvalid
        ));
    }

    #[tokio::test]
    async fn expiry_and_leeway() {
        let k = ec_key("k1");
        let v = JwtVerifier::from_jwks(cfg(), &jwks(&[&k])).unwrap();
        let exp = now() - 30;
        // 30 s past: within the 60 s leeway
        v.verify(&sign(&k, &with(claims(), "exp", json!(exp))))
            .await
            .unwrap();
        let exp = now() - 600;
        let e = err(&v, &sign(&k, &with(claims(), "exp", json!(exp)))).await;
        let at = DateTime::<Utc>::from_timestamp(exp, 0).unwrap();
        assert!(matches!(e, AuthError::Expired(t) if t == at), "{e}");
        assert_eq!(e.to_string(), format!("the token expired at {at}"));
        // no leeway: 30 s past is expired
        let mut c = cfg();
        c.leeway_s = 0;
        let strict = JwtVerifier::from_jwks(c, &jwks(&[&k])).unwrap();
        let e = err(
            &strict,
            &sign(&k, &with(claims(), "exp", json!(now() - 30))),
        )
        .await;
        assert!(matches!(e, AuthError::Expired(_)), "{e}");
        // exp is required
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        let e = err(&v, &sign(&k, &c)).await;
        assert!(
            matches!(&e, AuthError::MissingClaim(c) if c == "exp"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn not_before() {
        let k = ec_key("k1");
        let v = JwtVerifier::from_jwks(cfg(), &jwks(&[&k])).unwrap();
        let nbf = now() + 600;
        let e = err(&v, &sign(&k, &with(claims(), "nbf", json!(nbf)))).await;
        assert!(matches!(e, AuthError::NotYetValid(_)), "{e}");
        assert!(e.to_string().starts_with("the token is not valid before"));
        v.verify(&sign(&k, &with(claims(), "nbf", json!(now() + 30))))
            .await
            .unwrap();
        v.verify(&sign(&k, &with(claims(), "nbf", json!(now() - 30))))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn audience_issuer_and_subject() {
        let k = ec_key("k1");
        let v = JwtVerifier::from_jwks(cfg(), &jwks(&[&k])).unwrap();
        let e = err(&v, &sign(&k, &with(claims(), "aud", json!(["other-app"])))).await;
        assert_eq!(
            e.to_string(),
            "audience \"other-app\" not accepted: expected \"urbantwin\""
        );
        let mut c = claims();
        c.as_object_mut().unwrap().remove("aud");
        assert!(matches!(err(&v, &sign(&k, &c)).await, AuthError::MissingClaim(c) if c == "aud"));
        let e = err(
            &v,
            &sign(&k, &with(claims(), "iss", json!("https://evil.example"))),
        )
        .await;
        assert!(matches!(e, AuthError::Issuer { .. }), "{e}");
        assert!(e
            .to_string()
            .starts_with("issuer \"https://evil.example\" not accepted"));
        let mut c = claims();
        c.as_object_mut().unwrap().remove("iss");
        assert!(matches!(err(&v, &sign(&k, &c)).await, AuthError::MissingClaim(c) if c == "iss"));
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        assert!(matches!(err(&v, &sign(&k, &c)).await, AuthError::MissingClaim(c) if c == "sub"));
        let e = err(&v, &sign(&k, &with(claims(), "sub", json!("")))).await;
        assert!(matches!(e, AuthError::InvalidClaim(_)), "{e}");
    }

    #[tokio::test]
    async fn forged_and_tampered_tokens_are_rejected() {
        let k = ec_key("k1");
        let mallory = ec_key("k1"); // another key claiming the same kid
        let v = JwtVerifier::from_jwks(cfg(), &jwks(&[&k])).unwrap();
        let e = err(&v, &sign(&mallory, &claims())).await;
        assert!(matches!(e, AuthError::SignatureInvalid), "{e}");
        assert_eq!(e.to_string(), "signature invalid");
        // a payload swapped under a genuine signature
        let good = sign(&k, &claims());
        let evil = sign(&mallory, &with(claims(), "sub", json!("admin")));
        let parts: Vec<&str> = good.split('.').collect();
        let evil_parts: Vec<&str> = evil.split('.').collect();
        let spliced = format!("{}.{}.{}", parts[0], evil_parts[1], parts[2]);
        assert!(matches!(
            err(&v, &spliced).await,
            AuthError::SignatureInvalid
        ));
        // no kid: every key that fits the algorithm is tried, none verifies
        let mut h = Header::new(Algorithm::ES256);
        h.kid = None;
        let no_kid = encode(&h, &claims(), &mallory.enc).unwrap();
        assert!(matches!(
            err(&v, &no_kid).await,
            AuthError::SignatureInvalid
        ));
        let mut h = Header::new(Algorithm::ES256);
        h.kid = None;
        v.verify(&encode(&h, &claims(), &k.enc).unwrap())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn none_and_hmac_are_rejected() {
        let k = ec_key("k1");
        let v = JwtVerifier::from_jwks(cfg(), &jwks(&[&k])).unwrap();
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
            b64(&claims())
        );
        let e = err(&v, &none).await;
        assert_eq!(
            e.to_string(),
            "the signing algorithm \"none\" is not accepted"
        );
        // HS256 with the public key (as the JWK text, or its x coordinate) as the HMAC secret
        for secret in [k.jwk.to_string(), k.jwk["x"].as_str().unwrap().to_string()] {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("k1".into());
            let t = encode(&h, &claims(), &EncodingKey::from_secret(secret.as_bytes())).unwrap();
            let e = err(&v, &t).await;
            assert!(
                matches!(&e, AuthError::AlgorithmNotAccepted(a) if a == "HS256"),
                "{e}"
            );
        }
        // an ES256 key asked to verify an EdDSA signature
        let ed = ed_key("k1");
        let e = err(&v, &sign(&ed, &claims())).await;
        assert!(matches!(e, AuthError::AlgorithmNotAccepted(_)), "{e}");
        // a symmetric key in the key set is never used
        let oct = json!({"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}).to_string();
        assert!(matches!(
            JwtVerifier::from_jwks(cfg(), &oct),
            Err(AuthError::Jwks(_))
        ));
    }

    #[tokio::test]
    async fn unknown_kid_and_malformed_tokens() {
        let k = ec_key("k1");
        let v = JwtVerifier::from_jwks(cfg(), &jwks(&[&k])).unwrap();
        let other = ec_key("k2");
        let e = err(&v, &sign(&other, &claims())).await;
        assert_eq!(e.to_string(), "unknown signing key kid \"k2\"");
        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!.??.xx",
            "eyJhbGciOiJFUzI1NiJ9..sig",
        ] {
            let e = err(&v, bad).await;
            assert!(matches!(e, AuthError::MalformedToken(_)), "{bad}: {e}");
        }
        let token = sign(&k, &claims());
        let e = err(&v, &format!("{token}x")).await;
        assert!(
            matches!(
                e,
                AuthError::SignatureInvalid | AuthError::MalformedToken(_)
            ),
            "{e}"
        );
        assert!(!e.to_string().contains(&token), "no token in messages");
    }

    #[test]
    fn verifier_is_shareable_across_tasks() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let k = ec_key("k1");
        let v = JwtVerifier::from_jwks(cfg(), &jwks(&[&k])).unwrap();
        send_sync(&v);
        send(v.verify("a.b.c"));
        assert!(format!("{v:?}").contains("keys: 1"));
    }

    #[test]
    fn bad_key_sets_and_configs() {
        let k = ec_key("k1");
        for bad in [
            "",
            "{}",
            "{\"keys\": []}",
            "[1]",
            "{\"keys\": [{\"kty\": \"RSA\"}]}",
        ] {
            assert!(
                matches!(JwtVerifier::from_jwks(cfg(), bad), Err(AuthError::Jwks(_))),
                "{bad}"
            );
        }
        // unusable keys are skipped, usable ones kept
        let mixed = json!({"keys": [{"kty": "weird"}, {"kty": "EC", "crv": "P-256", "x": "AA", "use": "enc", "kid": "e"},
                                    k.jwk.clone()]});
        JwtVerifier::from_jwks(cfg(), &mixed.to_string()).unwrap();
        let mut c = cfg();
        c.audience = " ".into();
        assert!(matches!(
            JwtVerifier::from_jwks(c, &jwks(&[&k])),
            Err(AuthError::Config(_))
        ));
    }

    /// Serves `bodies` in turn (the last one repeatedly) to GETs on 127.0.0.1; counts the requests.
    async fn jwks_server(bodies: Vec<String>) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/realms/city/protocol/openid-connect/certs",
            listener.local_addr().unwrap()
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let body = bodies[n.min(bodies.len() - 1)].clone();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (url, hits)
    }

    #[tokio::test]
    async fn jwks_url_fetch_and_refetch_on_unknown_kid() {
        let old = ec_key("2025");
        let new = ec_key("2026");
        let (url, hits) =
            jwks_server(vec![jwks(&[&old]), jwks(&[&old]), jwks(&[&old, &new])]).await;
        let mut c = cfg();
        c.jwks_url = Some(url.clone());
        let http = reqwest::Client::new();

        // within the refetch interval: the unknown kid is rejected without asking the provider again
        let v = JwtVerifier::new(c.clone(), http.clone()).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        v.verify(&sign(&old, &claims())).await.unwrap();
        assert!(matches!(
            err(&v, &sign(&new, &claims())).await,
            AuthError::UnknownKey(_)
        ));
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "no refetch within the interval"
        );

        // after the interval: one refetch finds the rotated key
        let v = JwtVerifier::new(c.clone(), http.clone())
            .await
            .unwrap()
            .with_refetch_interval(Duration::ZERO);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        let p = v.verify(&sign(&new, &claims())).await.unwrap();
        assert_eq!(p.subject.as_deref(), Some("f00d-1"));
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        v.verify(&sign(&old, &claims())).await.unwrap();
        v.verify(&sign(&new, &claims())).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 3, "known keys need no fetch");
        // a kid the provider does not have either: refetched, still unknown
        assert!(matches!(
            err(&v, &sign(&ec_key("2099"), &claims())).await,
            AuthError::UnknownKey(_)
        ));
        assert_eq!(hits.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn jwks_file_and_fetch_failures() {
        let k = ec_key("k1");
        let dir = std::env::temp_dir().join(format!("twin-auth-jwks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("jwks.json");
        std::fs::write(&file, jwks(&[&k])).unwrap();
        let mut c = cfg();
        c.jwks_file = Some(file.clone());
        c.jwks_url = Some("http://127.0.0.1:9/never-asked".into());
        let v = JwtVerifier::new(c, reqwest::Client::new()).await.unwrap();
        v.verify(&sign(&k, &claims())).await.unwrap();
        assert!(matches!(
            err(&v, &sign(&ec_key("k9"), &claims())).await,
            AuthError::UnknownKey(_)
        ));
        std::fs::remove_dir_all(&dir).unwrap();

        let mut c = cfg();
        c.jwks_file = Some(dir.join("missing.json"));
        assert!(matches!(
            JwtVerifier::new(c, reqwest::Client::new()).await,
            Err(AuthError::Jwks(_))
        ));
        let e = JwtVerifier::new(cfg(), reqwest::Client::new())
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::Config(_)), "{e}");
        // nothing listens there
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = format!("http://{}/certs", listener.local_addr().unwrap());
        drop(listener);
        let mut c = cfg();
        c.jwks_url = Some(dead.clone());
        let e = JwtVerifier::new(c, reqwest::Client::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AuthError::JwksFetch { url, .. } if *url == dead),
            "{e}"
        );
    }
}
