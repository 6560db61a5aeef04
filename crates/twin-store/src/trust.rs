//! Trust records: accounts, API keys, sessions, the usage log of reads of non-public data, and the hash-chained,
//! append-only audit log. The records and the rules both backends share (what an account id may be, how an audit
//! record is hashed, how the chain is verified) live here; the [`Store`](crate::Store) methods keep them.
//!
//! # The audit chain
//!
//! Every audit record carries `hash = sha256_hex(prev_hash || canonical_json({action, actor, at, detail, seq,
//! target}))` ([`audit_hash`]), where `prev_hash` is the previous record's hash ([`GENESIS_HASH`], 64 zeros, for
//! the first), `at` is RFC 3339 in UTC with milliseconds, and canonical JSON has its object keys sorted and no
//! whitespace. Records are numbered 1, 2, 3... without gaps. Appends are serialized (SQLite: its single writer;
//! PostgreSQL: the row lock of the one-row chain head, `audit_head`, held until commit), so the chain never forks,
//! and the head records the last seq and hash, so that losing the newest records shows too.
//!
//! No store method updates or deletes an audit record, and triggers refuse UPDATE and DELETE on the table in both
//! backends. Someone with direct write access to the database (a PostgreSQL superuser or the table's owner, or anyone
//! who can write the SQLite file) can still drop the triggers and rewrite records: [`Store::verify_audit`]
//! (crate::Store::verify_audit) then reports the first record whose hash or link does not match, or the first gap.
//! Rewriting the whole chain from the altered record onwards, head included, is not detectable from the database
//! alone; an external copy of a recent head hash (e.g. exported regularly) detects that too.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use twin_model::NgsiError;

use crate::Result;

/// An account: a person, service or device that signs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// The login name, `[a-z0-9._-]{2,64}` ([`valid_account_id`]).
    pub id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// A PHC string; None for accounts that sign in only with OIDC or API keys.
    pub password_hash: Option<String>,
    /// "admin", "data_owner", "planner", "moderator", "citizen", "device": stored as given.
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub organisation: Option<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An API key as stored: never the token, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    /// The public key id.
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// SHA-256 (lowercase hex) of the token.
    pub hash: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A browser session as stored: never the cookie token, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// SHA-256 (lowercase hex) of the cookie token.
    pub hash: String,
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub user_agent: Option<String>,
}

/// One read of non-public data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    /// Assigned by the store (ignored by [`Store::record_usage`](crate::Store::record_usage)).
    pub id: i64,
    pub at: DateTime<Utc>,
    pub dataset: String,
    /// An account id, `key:<id>`, `jwt:<iss>#<sub>` or `anonymous`.
    pub principal: String,
    /// e.g. `ngsi-ld.query`, `ogc.items`, `tiles`, `temporal`, `notification`, `export`, `simulation`.
    pub operation: String,
    /// How many entities were read.
    pub entities: u64,
    pub purpose: Option<String>,
    pub detail: Option<String>,
}

/// Which usage records to list ([`Store::usage`](crate::Store::usage)).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsageQuery {
    /// The datasets whose log the caller may see; required (an empty list matches nothing).
    pub datasets: Vec<String>,
    pub principal: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// Only records with ids below this one (paging, newest first).
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// Usage per dataset, principal and operation ([`Store::usage_summary`](crate::Store::usage_summary)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageSummaryRow {
    pub dataset: String,
    pub principal: String,
    pub operation: String,
    pub requests: u64,
    pub entities: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// One record of the audit log (see the module documentation for the chain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// 1, 2, 3... without gaps.
    pub seq: i64,
    /// Milliseconds precision.
    pub at: DateTime<Utc>,
    pub actor: String,
    /// e.g. `account.create`, `key.revoke`, `dataset.policy`.
    pub action: String,
    pub target: String,
    pub detail: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// What [`Store::verify_audit`](crate::Store::verify_audit) found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    /// How many records were checked.
    pub records: u64,
    pub ok: bool,
    /// The first record whose hash or link does not match (or that follows a gap).
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

/// The `prev_hash` of the first audit record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Whether `id` may name an account: 2 to 64 of `a-z`, `0-9`, `.`, `_`, `-`.
pub fn valid_account_id(id: &str) -> bool {
    (2..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Refuses an account the store cannot keep (an id that is not a login name).
pub(crate) fn check_account(a: &Account) -> Result<()> {
    if valid_account_id(&a.id) {
        Ok(())
    } else {
        Err(NgsiError::bad_data(format!(
            "account id {:?} is not 2 to 64 of a-z, 0-9, '.', '_', '-'",
            a.id
        )))
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `v` as canonical JSON: object keys sorted (by their UTF-8 bytes), no whitespace, strings and numbers as
/// serde_json writes them.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// An audit time as hashed: RFC 3339, UTC, milliseconds (`2024-01-01T00:00:00.000Z`).
pub fn audit_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The hash of an audit record: `sha256_hex(prev_hash || canonical_json({seq, at, actor, action, target, detail}))`.
pub fn audit_hash(
    prev_hash: &str,
    seq: i64,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &Value,
) -> String {
    let body = serde_json::json!({
        "seq": seq,
        "at": audit_time(at),
        "actor": actor,
        "action": action,
        "target": target,
        "detail": detail,
    });
    let mut bytes = prev_hash.as_bytes().to_vec();
    bytes.extend_from_slice(canonical_json(&body).as_bytes());
    sha256_hex(&bytes)
}

impl AuditRecord {
    /// The next record of a chain whose last record has `prev` (seq, hash); `at` is cut to milliseconds.
    pub(crate) fn next(
        prev: (i64, &str),
        at: DateTime<Utc>,
        actor: &str,
        action: &str,
        target: &str,
        detail: Value,
    ) -> AuditRecord {
        let at = crate::common::from_ms(crate::common::ms(at));
        let seq = prev.0 + 1;
        let hash = audit_hash(prev.1, seq, at, actor, action, target, &detail);
        AuditRecord {
            seq,
            at,
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
            prev_hash: prev.1.to_string(),
            hash,
        }
    }

    /// The hash this record's content gives.
    pub fn recomputed_hash(&self) -> String {
        audit_hash(
            &self.prev_hash,
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            &self.target,
            &self.detail,
        )
    }
}

/// Walks an audit chain record by record, oldest first, and remembers the first fault.
pub(crate) struct ChainCheck {
    last: (i64, String),
    records: u64,
    bad: Option<(i64, String)>,
}

impl ChainCheck {
    pub(crate) fn new() -> ChainCheck {
        ChainCheck {
            last: (0, GENESIS_HASH.to_string()),
            records: 0,
            bad: None,
        }
    }

    /// Checks the next record; false once a fault was found (the walk may stop).
    pub(crate) fn check(&mut self, r: &AuditRecord) -> bool {
        if self.bad.is_some() {
            return false;
        }
        self.records += 1;
        let (last_seq, last_hash) = &self.last;
        let fault = if r.seq != last_seq + 1 {
            Some(if *last_seq == 0 {
                format!(
                    "the chain starts at seq {} instead of 1: records are missing",
                    r.seq
                )
            } else {
                format!("seq {} follows seq {last_seq}: records are missing", r.seq)
            })
        } else if r.prev_hash != *last_hash {
            Some(if *last_seq == 0 {
                "prev_hash of the first record is not the genesis hash".to_string()
            } else {
                format!("prev_hash does not equal the hash of seq {last_seq}")
            })
        } else if r.recomputed_hash() != r.hash {
            Some("the stored hash does not match the record's content".to_string())
        } else {
            None
        };
        if let Some(f) = fault {
            self.bad = Some((r.seq, f));
            return false;
        }
        self.last = (r.seq, r.hash.clone());
        true
    }

    /// The verdict, given the chain head as stored (the last seq and hash appended).
    pub(crate) fn finish(mut self, head: (i64, String)) -> AuditVerification {
        if self.bad.is_none() && self.last != head {
            let (last_seq, _) = self.last;
            let (head_seq, _) = head;
            self.bad = Some(if head_seq > last_seq {
                (
                    last_seq + 1,
                    format!(
                        "the chain head says seq {head_seq} was appended, but the log ends at seq {last_seq}: \
                         records are missing"
                    ),
                )
            } else {
                (
                    head_seq.max(1),
                    format!(
                        "the chain head (seq {head_seq}) does not match the last record (seq {last_seq})"
                    ),
                )
            });
        }
        AuditVerification {
            records: self.records,
            ok: self.bad.is_none(),
            first_bad_seq: self.bad.as_ref().map(|b| b.0),
            reason: self.bad.map(|b| b.1),
        }
    }
}

/// An error for a key or session of an account that does not exist.
pub(crate) fn no_account(id: &str) -> NgsiError {
    NgsiError::not_found(format!("account {id} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": "é\"\n"}], "c": null}, "A": 1.5});
        assert_eq!(
            canonical_json(&v),
            r#"{"A":1.5,"a":{"c":null,"z":[1,{"x":"é\"\n","y":2}]},"b":1}"#
        );
    }

    #[test]
    fn audit_hashes_are_sha256_over_the_previous_hash_and_the_canonical_record() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(audit_time(at), "2024-01-01T00:00:00.000Z");
        let h = audit_hash(
            GENESIS_HASH,
            1,
            at,
            "alice",
            "account.create",
            "bob",
            &json!({"k": 1}),
        );
        let body = r#"{"action":"account.create","actor":"alice","at":"2024-01-01T00:00:00.000Z","detail":{"k":1},"seq":1,"target":"bob"}"#;
        assert_eq!(h, sha256_hex(format!("{GENESIS_HASH}{body}").as_bytes()));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn account_ids_are_login_names() {
        for ok in ["ab", "alice", "a.b_c-9", &"x".repeat(64)] {
            assert!(valid_account_id(ok), "{ok}");
        }
        for bad in ["a", "Alice", "a b", "ä1", "", &"x".repeat(65), "key:1"] {
            assert!(!valid_account_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_chain_check_names_the_first_fault() {
        let at = Utc::now();
        let a = AuditRecord::next((0, GENESIS_HASH), at, "a", "x", "t", json!(1));
        let b = AuditRecord::next((a.seq, &a.hash), at, "a", "x", "t", json!(2));
        let c = AuditRecord::next((b.seq, &b.hash), at, "a", "x", "t", json!(3));
        let mut k = ChainCheck::new();
        assert!(k.check(&a) && k.check(&b) && k.check(&c));
        assert!(k.finish((3, c.hash.clone())).ok);
        // a gap
        let mut k = ChainCheck::new();
        assert!(k.check(&a) && !k.check(&c));
        let v = k.finish((3, c.hash.clone()));
        assert_eq!((v.ok, v.first_bad_seq), (false, Some(3)));
        // the newest record lost
        let mut k = ChainCheck::new();
        assert!(k.check(&a) && k.check(&b));
        let v = k.finish((3, c.hash.clone()));
        assert_eq!(v.first_bad_seq, Some(3));
        // altered content
        let mut b2 = b.clone();
        b2.detail = json!(20);
        let mut k = ChainCheck::new();
        assert!(k.check(&a) && !k.check(&b2));
        assert_eq!(k.finish((3, c.hash.clone())).first_bad_seq, Some(2));
    }
}
