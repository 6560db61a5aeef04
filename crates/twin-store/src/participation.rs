//! Participation records: what consultations keep (consultations, comments, proposals, notifications, moderation
//! log entries...) as JSON documents of a kind, and marks (votes, supports, flags, follows, survey responses): one
//! per author and target. The store keeps them and writes a list of them atomically; their meaning lives in
//! `twin_model::participation`.
//!
//! # Why documents and marks
//! The rules of a consultation (phases, depth of threads, who may do what) belong to the model and change with it;
//! the store needs only what makes them safe under concurrency: a record's identity (`kind`, `id`), the columns that
//! are queried (`consultation`, `parent`, `author`, `created_at`), and marks that are unique per `(kind, target,
//! author)` with an optional per-author limit per scope checked in the same transaction as the insert (the support
//! limit cannot be beaten by two requests at once).
//!
//! # Storage
//! Both backends keep times to the microsecond (finer parts are dropped; `created_after` compares at that
//! precision) and documents and values as JSON (`jsonb` in PostgreSQL, text in SQLite): objects may come back with
//! their keys in another order, and PostgreSQL refuses the character U+0000 in them (a storage error: callers
//! leave it out). Replacing a record (or a mark) replaces all of it, `created_at` included.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A participation record: one document of a kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipationRecord {
    /// What it is: "consultation", "comment", "proposal", "notification", "moderation", "email", "email-code"...
    pub kind: String,
    /// Unique within the kind.
    pub id: String,
    /// The consultation it belongs to (None for records that belong to none, e.g. a consultation itself).
    pub consultation: Option<String>,
    /// The record it answers (a comment's parent comment), if any.
    pub parent: Option<String>,
    /// The account that wrote it, or for a notification the account it is for (None once erased).
    pub author: Option<String>,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    /// The rest, as the model defines it for the kind.
    pub doc: Value,
}

/// A mark: one author's vote, support, flag, follow or response on a target; unique per `(kind, target, author)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipationMark {
    /// "comment-vote", "support", "flag", "follow", "survey"...
    pub kind: String,
    /// What it is on (a comment id, a proposal id, "comment:<id>", a consultation id, "<consultation>/<survey>").
    pub target: String,
    pub author: String,
    /// What limits count over (the consultation id, for all marks of a consultation).
    pub scope: String,
    /// The mark's value: `1`/`-1` for a vote, the answers of a survey, a flag's reason...
    pub value: Value,
    pub at: DateTime<Utc>,
}

/// How a [`PartOp::Put`] treats an existing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Fails with [`PartError::AlreadyExists`] when the record exists.
    Create,
    /// Fails with [`PartError::NotFound`] when it does not.
    Replace,
    /// Creates or replaces.
    Upsert,
}

/// One operation of [`Store::participation_write`](crate::Store::participation_write). All the operations of one
/// call are applied in one transaction, in order: the first that fails rolls back the others.
#[derive(Debug, Clone, PartialEq)]
pub enum PartOp {
    Put {
        record: ParticipationRecord,
        mode: PutMode,
    },
    /// Deletes a record (the outcome says whether there was one).
    Delete { kind: String, id: String },
    /// Deletes the records of a consultation (the consultation record itself is not one of them: it has no
    /// `consultation`); the outcome's count says how many.
    DeleteConsultation { consultation: String },
    /// Inserts or replaces a mark. With `limit: Some(n)`, fails with `TooMany` (and writes nothing) when the author
    /// already has `n` or more other marks (other targets) of this kind in this scope and has none on this target.
    Mark {
        mark: ParticipationMark,
        limit: Option<u64>,
    },
    /// Deletes one author's mark on a target.
    Unmark {
        kind: String,
        target: String,
        author: String,
    },
    /// Deletes every mark of a kind on a target (e.g. the flags of a comment once a moderator decided).
    UnmarkTarget { kind: String, target: String },
    /// Deletes every mark of an author (erasure).
    UnmarkAuthor { author: String },
    /// Deletes every mark of a scope (a consultation being deleted).
    UnmarkScope { scope: String },
}

/// What one [`PartOp`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartOutcome {
    /// Put: true when it created the record (false: replaced). Mark: true when it inserted the mark (false:
    /// replaced). Delete, Unmark: true when there was something to delete.
    pub created: bool,
    /// How many rows it changed (records or marks).
    pub count: u64,
}

/// Why a [`Store::participation_write`](crate::Store::participation_write) failed, besides storage errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartError {
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: String, id: String },
    #[error("{kind} {id} does not exist")]
    NotFound { kind: String, id: String },
    /// A mark's limit was reached.
    #[error("at most {limit} {kind} per person here")]
    TooMany { kind: String, limit: u64 },
}

/// Which records [`Store::participation_list`](crate::Store::participation_list) returns. Every filter present must
/// hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartQuery {
    pub kind: String,
    pub consultation: Option<String>,
    /// `Some(None)`: records without a parent (thread roots); `Some(Some(id))`: the children of `id`.
    pub parent: Option<Option<String>>,
    /// Records whose parent is one of these (the replies of several threads in one query).
    pub parents: Option<Vec<String>>,
    pub author: Option<String>,
    pub ids: Option<Vec<String>>,
    /// Only records created strictly after this.
    pub created_after: Option<DateTime<Utc>>,
    /// Newest first (by `created_at`, then `id`) when true; oldest first otherwise.
    pub newest_first: bool,
    /// 0 = no limit.
    pub limit: usize,
    pub offset: usize,
}

/// Which marks [`Store::participation_marks`](crate::Store::participation_marks) returns. Every filter present must
/// hold; results are ordered by `at`, then kind, target and author.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MarkQuery {
    pub kind: Option<String>,
    pub targets: Option<Vec<String>>,
    pub author: Option<String>,
    pub scope: Option<String>,
    /// 0 = no limit.
    pub limit: usize,
}

/// How many marks of a kind a target has with one value (see
/// [`Store::participation_tally`](crate::Store::participation_tally)).
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub target: String,
    /// The value (compared as JSON text), or `Value::Null` when tallied without values.
    pub value: Value,
    pub count: u64,
}

// ---------------------------------------------------------------------------------------------------------------
// what both backends share

/// A time as the participation tables keep it: microseconds since the epoch (finer parts are dropped).
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A time the participation tables kept; a storage error when it is out of range.
pub(crate) fn from_micros(v: i64) -> crate::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| crate::common::db_err(format!("participation: time {v} µs out of range")))
}

/// A value as JSON text with the keys of every object sorted, so that equal values have equal texts (SQLite
/// compares marks' values as text).
pub(crate) fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// A tally's rows in the order both backends return them: by target, then value (as canonical JSON text).
pub(crate) fn sort_tally(rows: &mut [Tally]) {
    rows.sort_by_cached_key(|t| (t.target.clone(), canonical_json(&t.value)));
}

/// The error of a tally over neither targets nor a scope.
pub(crate) fn check_tally(targets: Option<&[String]>, scope: Option<&str>) -> crate::Result<()> {
    if targets.is_none() && scope.is_none() {
        return Err(twin_model::NgsiError::bad_data(
            "a tally of marks needs targets or a scope",
        ));
    }
    Ok(())
}

/// The `(kind, scope, author)` of every limited mark of a call, sorted and without repeats: the order in which
/// PostgreSQL takes their locks (one order for every call, so that two calls never wait on each other in a cycle).
pub(crate) fn limit_keys(ops: &[PartOp]) -> Vec<(String, String, String)> {
    let mut keys: Vec<_> = ops
        .iter()
        .filter_map(|op| match op {
            PartOp::Mark {
                mark,
                limit: Some(_),
            } => Some((mark.kind.clone(), mark.scope.clone(), mark.author.clone())),
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
