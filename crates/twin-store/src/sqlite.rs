//! The embedded SQLite backend: one file, WAL, `synchronous=FULL`, a single writer thread that group-commits
//! concurrent writes (each in its own savepoint) and acknowledges them only after the commit is on disk.
//!
//! Entities are stored whole (JSON of [`Entity`]) next to three indexes the query planner uses to narrow the
//! candidates before the exact evaluator in `twin-model` decides: entity types, an R-tree of GeoProperty bounding
//! boxes, and scalar attribute values (for `q`). Temporal instances live in their own table, indexed for time-range
//! scans and aggregation.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use tokio::sync::{oneshot, Notify};
use twin_model::entity::AttrKind;
use twin_model::geoquery::{geojson_bbox, GeoRel};
use twin_model::query::{CmpOp, Literal, QValue, Query};
use twin_model::{Attribute, Dataset, Entity, NgsiError};

use crate::*;

const SCHEMA_VERSION: i64 = 1;

const MIGRATION_1: &str = r#"
CREATE TABLE IF NOT EXISTS entities (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    dataset TEXT,
    modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entity_types (
    type TEXT NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (type, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_types_rid ON entity_types(rid, type);
CREATE INDEX IF NOT EXISTS entities_modified ON entities(modified_ms);
-- gid = rid * 64 + k: an entity's boxes are one gid range, no mapping table needed
CREATE VIRTUAL TABLE IF NOT EXISTS entity_geo USING rtree(gid, min_x, max_x, min_y, max_y, +attr TEXT);
-- one row per (entity, attribute, scalar value): numbers as REAL, strings as TEXT (booleans both), and an empty
-- BLOB for attributes without a scalar value; SQLite orders numbers < text < blobs, which the query planner uses
CREATE TABLE IF NOT EXISTS attr_values (
    rid INTEGER NOT NULL,
    attr TEXT NOT NULL,
    v NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (rid, attr, v, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS temporal_entities (
    id TEXT PRIMARY KEY,
    types TEXT NOT NULL,
    scopes TEXT NOT NULL
) WITHOUT ROWID;
-- the row id is the instance id (urn:ngsi-ld:attribute:instance:ROWID); AUTOINCREMENT never reuses one
CREATE TABLE IF NOT EXISTS temporal (
    iid INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL,
    attr TEXT NOT NULL,
    dataset_id TEXT,
    ts INTEGER NOT NULL,
    sys_ms INTEGER NOT NULL,
    num REAL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS temporal_ts ON temporal(entity, attr, ts, num);
CREATE TABLE IF NOT EXISTS contexts (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_next ON deliveries(next_ms);
CREATE INDEX IF NOT EXISTS deliveries_subscription ON deliveries(subscription);
-- where maps went stale: per committed transaction and entity type, the box around every geometry written or
-- removed (tile caches of every process or node read it to invalidate exactly the tiles they must); pruned
CREATE TABLE IF NOT EXISTS map_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    min_x REAL NOT NULL,
    min_y REAL NOT NULL,
    max_x REAL NOT NULL,
    max_y REAL NOT NULL
);
-- scenarios (documents the model layer defines) and their runs; a run's per-link results are one JSON document
CREATE TABLE IF NOT EXISTS scenarios (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS scenario_runs (
    id TEXT PRIMARY KEY,
    scenario TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL,
    message TEXT,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER,
    request TEXT NOT NULL,
    summary TEXT NOT NULL,
    links TEXT
);
CREATE INDEX IF NOT EXISTS scenario_runs_scenario ON scenario_runs(scenario, created_ms);
-- messages ingestion refused, with the reason
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_topic ON dead_letters(topic, id);
"#;

/// How many map changes are kept for tile caches that poll; a cache further behind starts afresh.
const MAP_CHANGES_KEPT: i64 = 10_000;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn db_err(e: impl std::fmt::Display) -> NgsiError {
    NgsiError::internal(format!("storage: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(db_err)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(db_err)
}

/// What a job did inside its savepoint, and how to tell its caller once the commit is known.
struct JobOutcome {
    ok: bool,
    notify: bool,
    done: Box<dyn FnOnce(Result<()>) + Send>,
}

/// The work of a job: runs inside the writer's transaction and says how to answer its caller.
type JobFn = Box<dyn FnOnce(&Connection, &WriterState) -> JobOutcome + Send>;

/// A unit of work for the writer thread.
struct Job {
    /// Runs in a transaction of its own instead of sharing a group commit (large batches: a savepoint around
    /// thousands of statements makes SQLite's statement journal quadratic).
    alone: bool,
    run: JobFn,
}

/// State the writer thread shares with jobs.
struct WriterState {
    /// Record entity changes for subscriptions.
    journal: Arc<AtomicBool>,
    /// Geometry touched by the current transaction, per entity type (lon/lat box); written as `map_changes` rows
    /// just before it commits.
    map_dirty: std::cell::RefCell<BTreeMap<String, [f64; 4]>>,
}

impl WriterState {
    /// Notes that an entity's geometry (or the properties drawn with it) changed: its types and the boxes of its
    /// GeoProperties before and after.
    fn touch_map(&self, before: Option<&(Vec<String>, Option<[f64; 4]>)>, after: Option<&Entity>) {
        let after_box = after.and_then(entity_bbox);
        let before_box = before.and_then(|(_, b)| *b);
        let Some(bx) = union_box(before_box, after_box) else {
            return;
        };
        let mut dirty = self.map_dirty.borrow_mut();
        let types = before
            .map(|(t, _)| t.as_slice())
            .unwrap_or_default()
            .iter()
            .chain(after.map(|e| e.types.as_slice()).unwrap_or_default());
        for t in types {
            let slot = dirty.entry(t.clone()).or_insert(bx);
            *slot = union_box(Some(*slot), Some(bx)).unwrap_or(bx);
        }
    }
}

fn union_box(a: Option<[f64; 4]>, b: Option<[f64; 4]>) -> Option<[f64; 4]> {
    match (a, b) {
        (Some(a), Some(b)) => Some([
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[2].max(b[2]),
            a[3].max(b[3]),
        ]),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The box around every GeoProperty value of an entity.
fn entity_bbox(e: &Entity) -> Option<[f64; 4]> {
    let mut out = None;
    for instances in e.attrs.values() {
        for a in instances {
            if a.kind == AttrKind::GeoProperty {
                out = union_box(out, geojson_bbox(&a.value));
            }
        }
    }
    out
}

/// Writes the transaction's map changes (inside it, before COMMIT) and prunes old ones now and then.
fn flush_map_changes(conn: &Connection, state: &WriterState) -> Result<()> {
    let dirty = std::mem::take(&mut *state.map_dirty.borrow_mut());
    if dirty.is_empty() {
        return Ok(());
    }
    let mut ins = conn
        .prepare_cached(
            "INSERT INTO map_changes(type, min_x, min_y, max_x, max_y) VALUES (?1,?2,?3,?4,?5)",
        )
        .map_err(db_err)?;
    for (t, b) in dirty {
        ins.execute(params![t, b[0], b[1], b[2], b[3]])
            .map_err(db_err)?;
    }
    let last = conn.last_insert_rowid();
    if last % 256 == 0 {
        conn.prepare_cached("DELETE FROM map_changes WHERE seq <= ?1")
            .map_err(db_err)?
            .execute([last - MAP_CHANGES_KEPT])
            .map_err(db_err)?;
    }
    Ok(())
}

/// The SQLite store. Cheap to clone through `Arc`.
pub struct SqliteStore {
    path: PathBuf,
    jobs: Mutex<mpsc::Sender<Job>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    journal: Arc<AtomicBool>,
    signal: Arc<Notify>,
}

impl SqliteStore {
    /// Opens (creating when needed) the store at `path`, runs migrations and starts the writer thread.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| db_err(format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        let conn = Connection::open(&path)
            .map_err(|e| db_err(format!("cannot open {}: {e}", path.display())))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;
             PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY;",
        )
        .map_err(db_err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_err)?;
        if version > SCHEMA_VERSION {
            return Err(db_err(format!(
                "{} was written by a newer urbantwin (schema {version}, this one knows {SCHEMA_VERSION})",
                path.display()
            )));
        }
        // schema 1 is not released yet and still gains tables; every statement of it is `IF NOT EXISTS`, so running
        // it on each open brings a database made by an earlier build of schema 1 up to date
        conn.execute_batch(&format!(
            "BEGIN; {MIGRATION_1} PRAGMA user_version=1; COMMIT;"
        ))
        .map_err(db_err)?;
        let journal = Arc::new(AtomicBool::new(false));
        let has_subs: i64 = conn
            .query_row("SELECT count(*) FROM subscriptions", [], |r| r.get(0))
            .map_err(db_err)?;
        journal.store(has_subs > 0, Ordering::SeqCst);
        let signal = Arc::new(Notify::new());
        let (tx, rx) = mpsc::channel::<Job>();
        let state = WriterState {
            journal: journal.clone(),
            map_dirty: Default::default(),
        };
        let sig = signal.clone();
        std::thread::Builder::new()
            .name("urbantwin-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, state, sig))
            .map_err(db_err)?;
        Ok(SqliteStore {
            path,
            jobs: Mutex::new(tx),
            readers: Arc::new(Mutex::new(Vec::new())),
            journal,
            signal,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` as one job of the writer (in a savepoint of a group commit) and returns once it is durable.
    async fn write_job<R: Send + 'static>(
        &self,
        notify: bool,
        f: impl FnOnce(&Connection, &WriterState) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.submit(false, notify, f).await
    }

    /// Hands `f` to the writer thread and waits for its durable outcome.
    async fn submit<R: Send + 'static>(
        &self,
        alone: bool,
        notify: bool,
        f: impl FnOnce(&Connection, &WriterState) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let run = Box::new(move |conn: &Connection, state: &WriterState| {
            let r = f(conn, state);
            let ok = r.is_ok();
            JobOutcome {
                ok,
                notify,
                done: Box::new(move |commit| {
                    let _ = tx.send(match commit {
                        Ok(()) => r,
                        Err(e) => Err(e),
                    });
                }),
            }
        });
        let job = Job { alone, run };
        self.jobs
            .lock()
            .map_err(|_| db_err("writer lock poisoned"))?
            .send(job)
            .map_err(|_| db_err("the writer thread has stopped"))?;
        rx.await
            .map_err(|_| db_err("the writer thread dropped a job"))?
    }

    /// Runs a read on a pooled read-only connection, off the async runtime.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match readers
                .lock()
                .map_err(|_| db_err("reader pool poisoned"))?
                .pop()
            {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY
                            | OpenFlags::SQLITE_OPEN_NO_MUTEX
                            | OpenFlags::SQLITE_OPEN_URI,
                    )
                    .map_err(db_err)?;
                    c.execute_batch(
                        "PRAGMA busy_timeout=10000; PRAGMA cache_size=-32768; PRAGMA mmap_size=1073741824;",
                    )
                        .map_err(db_err)?;
                    c
                }
            };
            let r = f(&conn);
            if let Ok(mut pool) = readers.lock() {
                if pool.len() < 8 {
                    pool.push(conn);
                }
            }
            r
        })
        .await
        .map_err(db_err)?
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>, state: WriterState, signal: Arc<Notify>) {
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        while pending.len() < 512 {
            match rx.try_recv() {
                Ok(j) => pending.push(j),
                Err(_) => break,
            }
        }
        let mut group = Vec::new();
        for job in pending {
            if job.alone {
                commit_group(&conn, &state, &signal, std::mem::take(&mut group));
                commit_group(&conn, &state, &signal, vec![job]);
            } else {
                group.push(job);
            }
        }
        commit_group(&conn, &state, &signal, group);
    }
}

/// Runs jobs in one transaction and commits it; with several jobs each runs in a savepoint so that a failing one
/// leaves the others' writes in place. Callers hear back only after the commit.
fn commit_group(conn: &Connection, state: &WriterState, signal: &Notify, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // dropping the jobs drops their reply channels: each caller gets an error, nothing was written
        tracing::error!("cannot begin a transaction: {e}");
        return;
    }
    let savepoints = jobs.len() > 1;
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut poisoned = false;
    for job in jobs {
        if savepoints {
            if let Err(e) = conn.execute_batch("SAVEPOINT job") {
                tracing::error!("savepoint failed: {e}");
                poisoned = true;
            }
        }
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(conn, state)))
            .unwrap_or_else(|_| JobOutcome {
                ok: false,
                notify: false,
                done: Box::new(|_| {}),
            });
        if savepoints {
            let end = if out.ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            if let Err(e) = conn.execute_batch(end) {
                tracing::error!("savepoint end failed: {e}");
                poisoned = true;
            }
        } else if !out.ok {
            poisoned = true;
        }
        outcomes.push(out);
    }
    if !poisoned {
        if let Err(e) = flush_map_changes(conn, state) {
            tracing::error!("cannot record map changes: {}", e.detail);
            poisoned = true;
        }
    }
    state.map_dirty.borrow_mut().clear();
    let commit = if poisoned && !savepoints {
        // a lone job failed: nothing of it may stay
        let _ = conn.execute_batch("ROLLBACK");
        Ok(())
    } else if poisoned {
        let _ = conn.execute_batch("ROLLBACK");
        Err(db_err(
            "a savepoint could not be managed; the transaction was rolled back",
        ))
    } else {
        match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(db_err(format!("commit failed: {e}")))
            }
        }
    };
    let mut wake = false;
    for o in outcomes {
        wake |= o.ok && o.notify;
        (o.done)(commit.clone());
    }
    if wake && commit.is_ok() {
        signal.notify_one();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// entity rows and their indexes

fn load_entity(conn: &Connection, id: &str) -> Result<Option<Entity>> {
    Ok(load_entity_row(conn, id)?.map(|(_, e)| e))
}

/// The row id and the entity stored under `id`.
fn load_entity_row(conn: &Connection, id: &str) -> Result<Option<(i64, Entity)>> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT rid, doc FROM entities WHERE id=?1")
        .map_err(db_err)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db_err)?;
    row.map(|(rid, d)| Ok((rid, from_json(&d)?))).transpose()
}

/// Marker of an attribute that has no scalar value (GeoProperty, JsonProperty, compound values).
const NO_SCALAR: &[u8] = b"";
/// Marker of an attribute whose value the index cannot represent (too many or nested elements): every q term on
/// it must go to the exact evaluator.
const OPAQUE: &[u8] = b"\x01";
/// Elements of an array value indexed one by one; longer arrays are marked opaque.
const MAX_INDEXED_ELEMENTS: usize = 64;

/// The values under which an attribute is indexed for `q` (see the `attr_values` table).
fn index_values(attr: &Attribute, mut push: impl FnMut(rusqlite::types::Value)) {
    use rusqlite::types::Value as V;
    // false when the value holds something the index cannot represent
    fn scalar(v: &Value, push: &mut dyn FnMut(V)) -> bool {
        match v {
            Value::Number(n) => match n.as_f64() {
                Some(x) => push(V::Real(x)),
                None => return false,
            },
            Value::String(s) => push(V::Text(s.clone())),
            Value::Bool(b) => {
                push(V::Real(if *b { 1.0 } else { 0.0 }));
                push(V::Text(b.to_string()));
            }
            Value::Object(o) => match o.get("@value") {
                Some(inner) if !inner.is_object() && !inner.is_array() => {
                    return scalar(inner, push)
                }
                _ => return false,
            },
            Value::Null | Value::Array(_) => return false,
        }
        true
    }
    let mut rows = Vec::new();
    let mut collect = |x: V| rows.push(x);
    let representable = match attr.kind {
        AttrKind::GeoProperty | AttrKind::JsonProperty => {
            push(V::Blob(NO_SCALAR.to_vec()));
            return;
        }
        AttrKind::LanguageProperty => match attr.value.as_object() {
            Some(m) => m.values().all(|v| match v {
                Value::Array(items) => {
                    items.len() <= MAX_INDEXED_ELEMENTS
                        && items.iter().all(|i| scalar(i, &mut collect))
                }
                other => scalar(other, &mut collect),
            }),
            None => false,
        },
        _ => match &attr.value {
            Value::Array(items) => {
                items.len() <= MAX_INDEXED_ELEMENTS && items.iter().all(|i| scalar(i, &mut collect))
            }
            Value::Object(o) if !o.contains_key("@value") => {
                // a compound value: equality and comparisons never hold on it, paths into it are not indexed
                push(V::Blob(NO_SCALAR.to_vec()));
                return;
            }
            other => scalar(other, &mut collect),
        },
    };
    if !representable {
        push(V::Blob(OPAQUE.to_vec()));
        return;
    }
    if rows.is_empty() {
        push(V::Blob(NO_SCALAR.to_vec()));
    }
    for r in rows {
        push(r);
    }
}

/// Writes the entity row and refreshes its indexes; returns the row id.
/// Writes the entity row (`existing`: its row id when it is already stored) and refreshes its indexes.
/// GeoProperty instances one entity may have (each gets an R-tree box with gid = rid * this + k).
const GEO_PER_ENTITY: i64 = 64;

fn put_entity_row(conn: &Connection, e: &Entity, existing: Option<i64>) -> Result<i64> {
    let doc = to_json(e)?;
    let modified = e.modified_at.map(ms).unwrap_or(0);
    let rid = match existing {
        Some(rid) => {
            conn.prepare_cached(
                "UPDATE entities SET doc=?1, dataset=?2, modified_ms=?3 WHERE rid=?4",
            )
            .map_err(db_err)?
            .execute(params![doc, e.dataset, modified, rid])
            .map_err(db_err)?;
            clear_indexes(conn, rid)?;
            rid
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO entities(id, doc, dataset, modified_ms) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db_err)?
            .execute(params![e.id, doc, e.dataset, modified])
            .map_err(db_err)?;
            conn.last_insert_rowid()
        }
    };
    let mut ins_type = conn
        .prepare_cached("INSERT OR IGNORE INTO entity_types(type, rid) VALUES (?1, ?2)")
        .map_err(db_err)?;
    for t in &e.types {
        ins_type.execute(params![t, rid]).map_err(db_err)?;
    }
    let mut ins_val = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO attr_values(rid, attr, v, kind) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db_err)?;
    let mut ins_geo = conn
        .prepare_cached("INSERT INTO entity_geo(gid, min_x, max_x, min_y, max_y, attr) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .map_err(db_err)?;
    let mut boxes = 0i64;
    for (name, instances) in &e.attrs {
        for a in instances {
            let kind = a.kind.as_str();
            let mut err = None;
            index_values(a, |v| {
                if err.is_none() {
                    if let Err(e) = ins_val.execute(params![rid, name, v, kind]) {
                        err = Some(e);
                    }
                }
            });
            if let Some(e) = err {
                return Err(db_err(e));
            }
            if a.kind == AttrKind::GeoProperty {
                if let Some([x0, y0, x1, y1]) = geojson_bbox(&a.value) {
                    if boxes >= GEO_PER_ENTITY {
                        return Err(NgsiError::bad_data(format!(
                            "entity {} has more than {GEO_PER_ENTITY} GeoProperty instances",
                            e.id
                        )));
                    }
                    ins_geo
                        .execute(params![rid * GEO_PER_ENTITY + boxes, x0, x1, y0, y1, name])
                        .map_err(db_err)?;
                    boxes += 1;
                }
            }
        }
    }
    Ok(rid)
}

fn clear_indexes(conn: &Connection, rid: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM entity_types WHERE rid=?1")
        .map_err(db_err)?
        .execute([rid])
        .map_err(db_err)?;
    conn.prepare_cached("DELETE FROM attr_values WHERE rid=?1")
        .map_err(db_err)?
        .execute([rid])
        .map_err(db_err)?;
    // an entity's boxes are numbered from 0 without gaps; the R-tree answers only equality on gid quickly (a range
    // would scan the whole tree), so delete them one by one until the first that is not there
    let mut del = conn
        .prepare_cached("DELETE FROM entity_geo WHERE gid = ?1")
        .map_err(db_err)?;
    for k in 0..GEO_PER_ENTITY {
        if del.execute([rid * GEO_PER_ENTITY + k]).map_err(db_err)? == 0 {
            break;
        }
    }
    Ok(())
}

fn delete_entity_row(conn: &Connection, id: &str) -> Result<()> {
    let rid: Option<i64> = conn
        .query_row("SELECT rid FROM entities WHERE id=?1", [id], |r| r.get(0))
        .optional()
        .map_err(db_err)?;
    if let Some(rid) = rid {
        clear_indexes(conn, rid)?;
        conn.execute("DELETE FROM entities WHERE rid=?1", [rid])
            .map_err(db_err)?;
    }
    Ok(())
}

fn numeric_of(a: &Attribute) -> Option<f64> {
    match &a.value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Object(o) => o.get("@value").and_then(Value::as_f64),
        _ => None,
    }
}

fn record_temporal_entity(
    conn: &Connection,
    id: &str,
    types: &[String],
    scopes: &[String],
) -> Result<()> {
    let (types, scopes) = (to_json(&types)?, to_json(&scopes)?);
    let current: Option<(String, String)> = conn
        .prepare_cached("SELECT types, scopes FROM temporal_entities WHERE id=?1")
        .map_err(db_err)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db_err)?;
    match current {
        Some((t, s)) if t == types && s == scopes => {}
        Some(_) => {
            conn.prepare_cached("UPDATE temporal_entities SET types=?2, scopes=?3 WHERE id=?1")
                .map_err(db_err)?
                .execute(params![id, types, scopes])
                .map_err(db_err)?;
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO temporal_entities(id, types, scopes) VALUES (?1, ?2, ?3)",
            )
            .map_err(db_err)?
            .execute(params![id, types, scopes])
            .map_err(db_err)?;
        }
    }
    Ok(())
}

/// The instance id of a temporal row.
fn instance_id(iid: i64) -> String {
    format!("{INSTANCE_PREFIX}{iid}")
}

/// The temporal row of an instance id (None when it is not one of ours).
fn instance_rowid(instance: &str) -> Option<i64> {
    instance.strip_prefix(INSTANCE_PREFIX)?.parse().ok()
}

const INSTANCE_PREFIX: &str = "urn:ngsi-ld:attribute:instance:";

/// Reads a temporal row's attribute, with its instance id.
fn temporal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

fn instance_from_row((iid, doc): (i64, String)) -> Result<Attribute> {
    let mut a: Attribute = from_json(&doc)?;
    a.instance_id = Some(instance_id(iid));
    Ok(a)
}

fn record_instance(conn: &Connection, entity: &str, attr: &str, a: &Attribute) -> Result<String> {
    let mut inst = a.clone();
    inst.instance_id = None;
    let sys = inst
        .modified_at
        .or(inst.created_at)
        .map(ms)
        .unwrap_or_else(|| ms(Utc::now()));
    let ts = inst.observed_at.map(ms).unwrap_or(sys);
    conn.prepare_cached(
        "INSERT INTO temporal(entity, attr, dataset_id, ts, sys_ms, num, doc) VALUES (?1,?2,?3,?4,?5,?6,?7)",
    )
    .map_err(db_err)?
    .execute(params![entity, attr, inst.dataset_id, ts, sys, numeric_of(&inst), to_json(&inst)?])
    .map_err(db_err)?;
    Ok(instance_id(conn.last_insert_rowid()))
}

/// Applies one entity change inside the current transaction. The change function decides before anything is
/// written, so an error it returns leaves the store untouched.
fn apply_change(
    conn: &Connection,
    state: &WriterState,
    id: &str,
    change: EntityChange,
) -> Result<(WriteResult, bool)> {
    let (rid, before) = match load_entity_row(conn, id)? {
        Some((rid, e)) => (Some(rid), Some(e)),
        None => (None, None),
    };
    let existed = before.is_some();
    let before_map = before.as_ref().map(|b| (b.types.clone(), entity_bbox(b)));
    let before_copy = if state.journal.load(Ordering::Relaxed) {
        before.clone()
    } else {
        None
    };
    let outcome = change(before)?;
    let now = Utc::now();
    match outcome {
        ChangeOutcome::Nothing { result } => Ok((
            WriteResult {
                created: false,
                entity: None,
                result,
            },
            false,
        )),
        ChangeOutcome::Delete => {
            if !existed {
                return Err(NgsiError::not_found(format!("entity {id} does not exist")));
            }
            delete_entity_row(conn, id)?;
            state.touch_map(before_map.as_ref(), None);
            if let Some(b) = before_copy {
                journal(
                    conn,
                    id,
                    Trigger::EntityDeleted,
                    b.attrs.keys().cloned().collect(),
                    b,
                    None,
                    now,
                )?;
            }
            Ok((
                WriteResult {
                    created: false,
                    entity: None,
                    result: Value::Null,
                },
                true,
            ))
        }
        ChangeOutcome::Put {
            entity,
            written,
            removed,
            result,
        } => {
            if entity.id != id {
                return Err(NgsiError::bad_data(format!(
                    "entity id {} does not match {id}",
                    entity.id
                )));
            }
            put_entity_row(conn, &entity, rid)?;
            state.touch_map(before_map.as_ref(), Some(&entity));
            if !written.is_empty() {
                record_temporal_entity(conn, &entity.id, &entity.types, &entity.scopes)?;
            }
            for (name, ds) in &written {
                if let Some(a) = entity.instance(name, ds.as_deref()) {
                    record_instance(conn, &entity.id, name, a)?;
                }
            }
            if state.journal.load(Ordering::Relaxed) {
                let trigger = if existed {
                    Trigger::EntityUpdated
                } else {
                    Trigger::EntityCreated
                };
                // a new entity's attributes are all new, whether or not its values go into history
                let mut attrs: Vec<String> = if existed {
                    written.iter().map(|(n, _)| n.clone()).collect()
                } else {
                    entity.attrs.keys().cloned().collect()
                };
                attrs.extend(removed.iter().cloned());
                attrs.sort();
                attrs.dedup();
                journal(conn, id, trigger, attrs, entity.clone(), before_copy, now)?;
            }
            Ok((
                WriteResult {
                    created: !existed,
                    entity: Some(entity),
                    result,
                },
                true,
            ))
        }
    }
}

fn journal(
    conn: &Connection,
    id: &str,
    trigger: Trigger,
    attributes: Vec<String>,
    entity: Entity,
    previous: Option<Entity>,
    at: DateTime<Utc>,
) -> Result<()> {
    let rec = ChangeRecord {
        seq: 0,
        entity_id: id.to_string(),
        trigger,
        attributes,
        entity,
        previous,
        at,
    };
    conn.prepare_cached("INSERT INTO changes(doc) VALUES (?1)")
        .map_err(db_err)?
        .execute([to_json(&rec)?])
        .map_err(db_err)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// query planning: SQL narrows the candidates, the model's evaluators decide

struct Plan {
    sql: String,
    args: Vec<rusqlite::types::Value>,
    /// true when SQL alone decides (no exact evaluation needed): counting can be done in SQL
    exact: bool,
}

fn q_prefilter(q: &Query, args: &mut Vec<rusqlite::types::Value>) -> Option<String> {
    use rusqlite::types::Value as V;
    match q {
        Query::And(items) => {
            let parts: Vec<String> = items.iter().filter_map(|i| q_prefilter(i, args)).collect();
            if parts.is_empty() {
                None
            } else {
                Some(format!("({})", parts.join(" AND ")))
            }
        }
        Query::Or(items) => {
            // all-or-nothing: one branch that SQL cannot narrow makes the whole disjunction unnarrowable
            let mark = args.len();
            let mut parts = Vec::new();
            for i in items {
                match q_prefilter(i, args) {
                    Some(p) => parts.push(p),
                    None => {
                        args.truncate(mark);
                        return None;
                    }
                }
            }
            Some(format!("({})", parts.join(" OR ")))
        }
        Query::Term(t) => {
            if !t.path.sub_path.is_empty() || !t.path.compound.is_empty() || t.negated {
                return None;
            }
            let attr = t.path.attr.clone();
            // values the index could not represent (OPAQUE) always pass to the exact evaluator
            let sub = |cond: &str, args: &mut Vec<V>, vals: Vec<V>| {
                args.push(V::Text(attr.clone()));
                args.extend(vals);
                if cond == "1" {
                    "EXISTS (SELECT 1 FROM attr_values a WHERE a.rid=e.rid AND a.attr=?)"
                        .to_string()
                } else {
                    format!(
                        "EXISTS (SELECT 1 FROM attr_values a WHERE a.rid=e.rid AND a.attr=? AND ({cond} OR a.v=X'01'))"
                    )
                }
            };
            match &t.op {
                None => Some(sub("1", args, vec![])),
                Some((op, value)) => {
                    let num = |v: &Literal| match v {
                        Literal::Number(n) => Some(*n),
                        _ => None,
                    };
                    let text = |v: &Literal| match v {
                        Literal::Text {
                            text,
                            temporal: None,
                        } => Some(text.clone()),
                        Literal::Bool(b) => Some(b.to_string()),
                        _ => None,
                    };
                    match (op, value) {
                        (CmpOp::Eq, QValue::List(items)) => {
                            let mut conds = Vec::new();
                            let mut vals = Vec::new();
                            for i in items {
                                if let Some(n) = num(i) {
                                    conds.push("a.v=?");
                                    vals.push(V::Real(n));
                                } else if let Some(s) = text(i) {
                                    conds.push("a.v=?");
                                    vals.push(V::Text(s));
                                } else {
                                    return None;
                                }
                            }
                            Some(sub(&format!("({})", conds.join(" OR ")), args, vals))
                        }
                        (CmpOp::Eq, QValue::Range(a, b)) => match (num(a), num(b)) {
                            (Some(a), Some(b)) => Some(sub(
                                "a.v BETWEEN ? AND ?",
                                args,
                                vec![V::Real(a), V::Real(b)],
                            )),
                            _ => Some(sub("1", args, vec![])),
                        },
                        (CmpOp::Eq, QValue::One(v)) => {
                            if let Some(n) = num(v) {
                                Some(sub("a.v=?", args, vec![V::Real(n)]))
                            } else if let Some(s) = text(v) {
                                Some(sub("a.v=?", args, vec![V::Text(s)]))
                            } else {
                                Some(sub("1", args, vec![]))
                            }
                        }
                        (CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le, QValue::One(v)) => {
                            let Some(n) = num(v) else {
                                return Some(sub("1", args, vec![]));
                            };
                            // numbers sort below text and blobs: `< ''` keeps a lower bound to numbers
                            let cond = match op {
                                CmpOp::Gt => "a.v > ? AND a.v < ''",
                                CmpOp::Ge => "a.v >= ? AND a.v < ''",
                                CmpOp::Lt => "a.v < ?",
                                _ => "a.v <= ?",
                            };
                            Some(sub(cond, args, vec![V::Real(n)]))
                        }
                        // != and patterns need the attribute to exist
                        _ => Some(sub("1", args, vec![])),
                    }
                }
            }
        }
    }
}

/// Below this many entities of the asked types, the query starts from the type index; above it, it walks entities
/// in id order and probes the type of each (no large candidate list, and paging stops after `limit` matches).
const TYPE_DRIVEN_MAX: i64 = 2000;

fn plan(conn: &Connection, q: &EntityQuery) -> Result<Plan> {
    use rusqlite::types::Value as V;
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<V> = Vec::new();
    let mut exact = true;
    if let Some(ids) = &q.ids {
        conds.push(format!("e.id IN ({})", vec!["?"; ids.len()].join(",")));
        args.extend(ids.iter().map(|i| V::Text(i.clone())));
    }
    if q.id_pattern.is_some() {
        exact = false;
    }
    if let Some(t) = &q.types {
        match t.as_any_of() {
            Some(list) => {
                let marks = vec!["?"; list.len()].join(",");
                let few: i64 = conn
                    .prepare_cached(&format!(
                        "SELECT count(*) FROM (SELECT 1 FROM entity_types WHERE type IN ({marks}) LIMIT {TYPE_DRIVEN_MAX})"
                    ))
                    .map_err(db_err)?
                    .query_row(rusqlite::params_from_iter(list.iter()), |r| r.get(0))
                    .map_err(db_err)?;
                if few < TYPE_DRIVEN_MAX {
                    conds.push(format!(
                        "e.rid IN (SELECT rid FROM entity_types WHERE type IN ({marks}))"
                    ));
                } else {
                    conds.push(format!(
                        "EXISTS (SELECT 1 FROM entity_types t WHERE t.rid=e.rid AND t.type IN ({marks}))"
                    ));
                }
                args.extend(list.iter().map(|s| V::Text(s.to_string())));
            }
            None => exact = false,
        }
    }
    if let Some(attrs) = &q.attrs {
        conds.push(format!(
            "EXISTS (SELECT 1 FROM attr_values a WHERE a.rid=e.rid AND a.attr IN ({}))",
            vec!["?"; attrs.len()].join(",")
        ));
        args.extend(attrs.iter().map(|s| V::Text(s.clone())));
    }
    if let Some(qq) = &q.q {
        exact = false;
        if let Some(c) = q_prefilter(qq, &mut args) {
            conds.push(c);
        }
    }
    if q.scope_q.is_some() {
        exact = false;
    }
    if let Some(g) = &q.geo {
        exact = false;
        if !matches!(g.georel, GeoRel::Disjoint) {
            if let Some([x0, y0, x1, y1]) = g.search_window() {
                conds.push(format!(
                    "e.rid IN (SELECT gid / {GEO_PER_ENTITY} FROM entity_geo \
                     WHERE max_x>=? AND min_x<=? AND max_y>=? AND min_y<=? AND attr=?)"
                ));
                args.extend([
                    V::Real(x0),
                    V::Real(x1),
                    V::Real(y0),
                    V::Real(y1),
                    V::Text(g.geoproperty.clone()),
                ]);
            }
        }
    }
    let where_ = if conds.is_empty() {
        "1".to_string()
    } else {
        conds.join(" AND ")
    };
    Ok(Plan {
        sql: where_,
        args,
        exact,
    })
}

fn exact_match(q: &EntityQuery, e: &Entity) -> bool {
    if let Some(p) = &q.id_pattern {
        if !p.is_match(&e.id) {
            return false;
        }
    }
    if let Some(t) = &q.types {
        if !t.matches(&e.types) {
            return false;
        }
    }
    if let Some(qq) = &q.q {
        if !qq.matches(e) {
            return false;
        }
    }
    if let Some(s) = &q.scope_q {
        if !s.matches(&e.scopes) {
            return false;
        }
    }
    if let Some(g) = &q.geo {
        if !g.matches(e) {
            return false;
        }
    }
    true
}

fn run_query(conn: &Connection, q: &EntityQuery) -> Result<QueryPage> {
    let p = plan(conn, q)?;
    let mut page = QueryPage::default();
    if p.exact {
        if q.count {
            let n: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM entities e WHERE {}", p.sql),
                    rusqlite::params_from_iter(p.args.iter()),
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            page.count = Some(n as u64);
        }
        if q.limit == 0 {
            return Ok(page);
        }
        let mut args = p.args.clone();
        args.push(rusqlite::types::Value::Integer(q.limit as i64));
        args.push(rusqlite::types::Value::Integer(q.offset as i64));
        let mut stmt = conn
            .prepare(&format!(
                "SELECT e.doc FROM entities e WHERE {} ORDER BY e.id LIMIT ? OFFSET ?",
                p.sql
            ))
            .map_err(db_err)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                r.get::<_, String>(0)
            })
            .map_err(db_err)?;
        for row in rows {
            page.entities.push(from_json(&row.map_err(db_err)?)?);
        }
        return Ok(page);
    }
    // candidates in id order without their documents (sorting documents would copy them all), then each
    // document fetched by row id only when the evaluator needs it
    let mut stmt = conn
        .prepare(&format!(
            "SELECT e.rid FROM entities e WHERE {} ORDER BY e.id",
            p.sql
        ))
        .map_err(db_err)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(p.args.iter()))
        .map_err(db_err)?;
    let mut fetch = conn
        .prepare_cached("SELECT doc FROM entities WHERE rid=?1")
        .map_err(db_err)?;
    let mut matched = 0usize;
    while let Some(row) = rows.next().map_err(db_err)? {
        let rid: i64 = row.get(0).map_err(db_err)?;
        let doc: String = fetch.query_row([rid], |r| r.get(0)).map_err(db_err)?;
        let e: Entity = from_json(&doc)?;
        if !exact_match(q, &e) {
            continue;
        }
        if matched >= q.offset && page.entities.len() < q.limit {
            page.entities.push(e);
        }
        matched += 1;
        if !q.count && page.entities.len() >= q.limit {
            break;
        }
    }
    if q.count {
        page.count = Some(matched as u64);
    }
    Ok(page)
}

// ---------------------------------------------------------------------------------------------------------------
// temporal

/// A temporal entity's id, types and scopes.
type TemporalHead = (String, Vec<String>, Vec<String>);

fn temporal_entities_for(conn: &Connection, q: &TemporalQuery) -> Result<Vec<TemporalHead>> {
    // candidates: temporal entities, filtered by ids / types / pattern / scope; q and geo act on the current state
    let eq = &q.entities;
    let mut out = Vec::new();
    let mut sql = "SELECT id, types, scopes FROM temporal_entities".to_string();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(ids) = &eq.ids {
        sql.push_str(&format!(
            " WHERE id IN ({})",
            vec!["?"; ids.len()].join(",")
        ));
        args.extend(ids.iter().map(|i| rusqlite::types::Value::Text(i.clone())));
    }
    sql.push_str(" ORDER BY id");
    let mut stmt = conn.prepare(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(db_err)?;
    let needs_current = eq.q.is_some() || eq.geo.is_some();
    for row in rows {
        let (id, types, scopes) = row.map_err(db_err)?;
        let types: Vec<String> = from_json(&types)?;
        let scopes: Vec<String> = from_json(&scopes)?;
        if let Some(t) = &eq.types {
            if !t.matches(&types) {
                continue;
            }
        }
        if let Some(p) = &eq.id_pattern {
            if !p.is_match(&id) {
                continue;
            }
        }
        if let Some(s) = &eq.scope_q {
            if !s.matches(&scopes) {
                continue;
            }
        }
        if needs_current {
            match load_entity(conn, &id)? {
                Some(e) => {
                    if eq.q.as_ref().is_some_and(|qq| !qq.matches(&e))
                        || eq.geo.as_ref().is_some_and(|g| !g.matches(&e))
                    {
                        continue;
                    }
                }
                None => continue,
            }
        }
        out.push((id, types, scopes));
    }
    Ok(out)
}

fn run_temporal_query(conn: &Connection, q: &TemporalQuery) -> Result<Vec<TemporalEntity>> {
    let ents = temporal_entities_for(conn, q)?;
    let col = match q.timeproperty {
        TimeProperty::ObservedAt => "ts",
        _ => "sys_ms",
    };
    let mut result = Vec::new();
    let offset = q.entities.offset;
    let limit = if q.entities.limit == 0 {
        usize::MAX
    } else {
        q.entities.limit
    };
    for (id, types, scopes) in ents.into_iter().skip(offset) {
        if result.len() >= limit {
            break;
        }
        let attrs: Vec<String> = match &q.attrs {
            Some(a) => a.clone(),
            None => {
                let mut stmt = conn
                    .prepare_cached("SELECT DISTINCT attr FROM temporal WHERE entity=?1")
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map([&id], |r| r.get::<_, String>(0))
                    .map_err(db_err)?;
                rows.collect::<std::result::Result<_, _>>()
                    .map_err(db_err)?
            }
        };
        let mut map = BTreeMap::new();
        for attr in attrs {
            let (cond, a1, a2) = match q.timerel {
                None => ("1".to_string(), 0, 0),
                Some(TimeRel::Before(t)) => (format!("{col} < ?3"), ms(t), 0),
                Some(TimeRel::After(t)) => (format!("{col} >= ?3"), ms(t), 0),
                Some(TimeRel::Between(a, b)) => {
                    (format!("{col} >= ?3 AND {col} < ?4"), ms(a), ms(b))
                }
            };
            let per_attr = q.last_n.unwrap_or(q.instance_limit.max(1));
            let order = if q.last_n.is_some() { "DESC" } else { "ASC" };
            let sql = format!(
                "SELECT iid, doc FROM temporal WHERE entity=?1 AND attr=?2 AND {cond} AND (?3 IS NOT NULL) AND (?4 IS NOT NULL)
                 ORDER BY {col} {order}, iid {order} LIMIT {per_attr}"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
            let rows = stmt
                .query_map(params![id, attr, a1, a2], temporal_row)
                .map_err(db_err)?;
            let mut instances: Vec<Attribute> = Vec::new();
            for r in rows {
                instances.push(instance_from_row(r.map_err(db_err)?)?);
            }
            if q.last_n.is_some() {
                instances.reverse();
            }
            if !instances.is_empty() {
                map.insert(attr, instances);
            }
        }
        if map.is_empty() && (q.timerel.is_some() || q.attrs.is_some()) && q.entities.ids.is_none()
        {
            continue;
        }
        result.push(TemporalEntity {
            id,
            types,
            scopes,
            attrs: map,
        });
    }
    Ok(result)
}

// ---------------------------------------------------------------------------------------------------------------

fn row_context(r: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    r.get(0)
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, id: &str, change: EntityChange) -> Result<WriteResult> {
        let id = id.to_string();
        let (r, _) = self
            .write_job(true, move |conn, state| {
                apply_change(conn, state, &id, change)
            })
            .await?;
        Ok(r)
    }

    async fn write_stream(&self, rx: mpsc::Receiver<StreamMsg>) -> Result<StreamSummary> {
        self.submit(true, true, move |conn, state| {
            let mut summary = StreamSummary::default();
            loop {
                match rx.recv() {
                    Ok(StreamMsg::Change(id, change)) => {
                        let (r, wrote) = apply_change(conn, state, &id, change)
                            .map_err(|e| NgsiError::new(e.kind, format!("{id}: {}", e.detail)))?;
                        match (wrote, r.created, r.entity.is_some()) {
                            (false, _, _) => summary.unchanged += 1,
                            (true, true, _) => summary.created += 1,
                            (true, false, true) => summary.updated += 1,
                            (true, false, false) => summary.deleted += 1,
                        }
                    }
                    Ok(StreamMsg::Commit) => return Ok(summary),
                    Ok(StreamMsg::Abort(e)) => return Err(e),
                    Err(_) => {
                        return Err(NgsiError::internal(
                            "the stream ended without being committed",
                        ))
                    }
                }
            }
        })
        .await
    }

    async fn write_batch(
        &self,
        changes: Vec<(String, EntityChange)>,
    ) -> Result<Vec<Result<WriteResult>>> {
        // one transaction of its own; no savepoint per item: a change decides (and may fail) before it writes
        // anything, so a refused item has written nothing, and a storage error fails the whole batch
        self.submit(true, true, move |conn, state| {
            let mut out = Vec::with_capacity(changes.len());
            for (id, change) in changes {
                match apply_change(conn, state, &id, change) {
                    Ok((r, _)) => out.push(Ok(r)),
                    Err(e) if e.kind == twin_model::ErrorKind::InternalError => return Err(e),
                    Err(e) => out.push(Err(e)),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Entity>> {
        let id = id.to_string();
        self.read(move |c| load_entity(c, &id)).await
    }

    async fn query(&self, q: &EntityQuery) -> Result<QueryPage> {
        let q = q.clone();
        self.read(move |c| run_query(c, &q)).await
    }

    async fn types(&self) -> Result<Vec<TypeInfo>> {
        self.read(|c| {
            let mut out: BTreeMap<String, TypeInfo> = BTreeMap::new();
            let mut stmt = c.prepare("SELECT type, count(*) FROM entity_types GROUP BY type").map_err(db_err)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(db_err)?;
            for r in rows {
                let (t, n) = r.map_err(db_err)?;
                out.insert(t.clone(), TypeInfo { type_name: t, entity_count: n as u64, attributes: BTreeMap::new() });
            }
            let mut stmt = c
                .prepare(
                    "SELECT DISTINCT t.type, a.attr, a.kind FROM entity_types t JOIN attr_values a ON a.rid = t.rid",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
                .map_err(db_err)?;
            for r in rows {
                let (t, a, k) = r.map_err(db_err)?;
                if let Some(info) = out.get_mut(&t) {
                    let kinds = info.attributes.entry(a).or_default();
                    if !kinds.contains(&k) {
                        kinds.push(k);
                    }
                }
            }
            Ok(out.into_values().collect())
        })
        .await
    }

    async fn attributes(&self) -> Result<Vec<AttributeInfo>> {
        self.read(|c| {
            let mut out: BTreeMap<String, AttributeInfo> = BTreeMap::new();
            let mut stmt = c.prepare("SELECT attr, count(DISTINCT rid) FROM attr_values GROUP BY attr").map_err(db_err)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(db_err)?;
            for r in rows {
                let (a, n) = r.map_err(db_err)?;
                out.insert(
                    a.clone(),
                    AttributeInfo { name: a, attribute_count: n as u64, kinds: vec![], type_names: vec![] },
                );
            }
            let mut stmt = c
                .prepare("SELECT DISTINCT a.attr, a.kind, t.type FROM attr_values a JOIN entity_types t ON a.rid = t.rid")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
                .map_err(db_err)?;
            for r in rows {
                let (a, k, t) = r.map_err(db_err)?;
                if let Some(info) = out.get_mut(&a) {
                    if !info.kinds.contains(&k) {
                        info.kinds.push(k);
                    }
                    if !info.type_names.contains(&t) {
                        info.type_names.push(t);
                    }
                }
            }
            Ok(out.into_values().collect())
        })
        .await
    }

    async fn temporal_query(&self, q: &TemporalQuery) -> Result<Vec<TemporalEntity>> {
        let q = q.clone();
        self.read(move |c| run_temporal_query(c, &q)).await
    }

    async fn temporal_aggregate(
        &self,
        q: &TemporalQuery,
        a: &Aggregation,
    ) -> Result<Vec<AggregatedEntity>> {
        let (q, a) = (q.clone(), a.clone());
        self.read(move |c| run_aggregate(c, &q, &a)).await
    }

    async fn temporal_append(
        &self,
        id: &str,
        types: Option<Vec<String>>,
        scopes: Vec<String>,
        attrs: BTreeMap<String, Vec<Attribute>>,
    ) -> Result<bool> {
        let id = id.to_string();
        self.write_job(false, move |conn, _| {
            let existing: Option<(String, String)> = conn
                .query_row(
                    "SELECT types, scopes FROM temporal_entities WHERE id=?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err)?;
            let created = existing.is_none();
            let (types, scopes) = match (existing, types) {
                (None, None) => {
                    return Err(NgsiError::bad_data(format!(
                        "temporal entity {id} does not exist and no type was given"
                    )))
                }
                (None, Some(t)) => (t, scopes),
                (Some((old_t, old_s)), t) => {
                    let mut all: Vec<String> = from_json(&old_t)?;
                    for x in t.unwrap_or_default() {
                        if !all.contains(&x) {
                            all.push(x);
                        }
                    }
                    let s = if scopes.is_empty() {
                        from_json(&old_s)?
                    } else {
                        scopes
                    };
                    (all, s)
                }
            };
            record_temporal_entity(conn, &id, &types, &scopes)?;
            for (name, instances) in &attrs {
                for a in instances {
                    record_instance(conn, &id, name, a)?;
                }
            }
            Ok(created)
        })
        .await
    }

    async fn temporal_delete(
        &self,
        id: &str,
        attr: Option<&str>,
        dataset_id: Option<&str>,
        instance_id: Option<&str>,
    ) -> Result<()> {
        let (id, attr, ds, inst) = (
            id.to_string(),
            attr.map(String::from),
            dataset_id.map(String::from),
            instance_id.map(String::from),
        );
        self.write_job(false, move |conn, _| {
            let exists: bool = conn
                .query_row("SELECT 1 FROM temporal_entities WHERE id=?1", [&id], |_| {
                    Ok(true)
                })
                .optional()
                .map_err(db_err)?
                .unwrap_or(false);
            if !exists {
                return Err(NgsiError::not_found(format!(
                    "temporal entity {id} does not exist"
                )));
            }
            let n = match (&attr, &inst) {
                (None, _) => {
                    conn.execute("DELETE FROM temporal WHERE entity=?1", [&id])
                        .map_err(db_err)?;
                    conn.execute("DELETE FROM temporal_entities WHERE id=?1", [&id])
                        .map_err(db_err)?
                }
                (Some(a), Some(i)) => match instance_rowid(i) {
                    Some(iid) => conn
                        .execute(
                            "DELETE FROM temporal WHERE entity=?1 AND attr=?2 AND iid=?3",
                            params![id, a, iid],
                        )
                        .map_err(db_err)?,
                    None => 0,
                },
                (Some(a), None) => match &ds {
                    Some(d) => conn
                        .execute(
                            "DELETE FROM temporal WHERE entity=?1 AND attr=?2 AND dataset_id=?3",
                            params![id, a, d],
                        )
                        .map_err(db_err)?,
                    None => conn
                        .execute(
                            "DELETE FROM temporal WHERE entity=?1 AND attr=?2",
                            params![id, a],
                        )
                        .map_err(db_err)?,
                },
            };
            if n == 0 {
                return Err(NgsiError::not_found(format!(
                    "nothing to delete in the history of {id}"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn temporal_modify_instance(
        &self,
        id: &str,
        attr: &str,
        instance_id: &str,
        value: Attribute,
    ) -> Result<()> {
        let (id, attr, inst) = (id.to_string(), attr.to_string(), instance_id.to_string());
        self.write_job(false, move |conn, _| {
            let iid = instance_rowid(&inst).unwrap_or(-1);
            let doc: Option<String> = conn
                .query_row(
                    "SELECT doc FROM temporal WHERE entity=?1 AND attr=?2 AND iid=?3",
                    params![id, attr, iid],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            let Some(doc) = doc else {
                return Err(NgsiError::not_found(format!(
                    "instance {inst} of {attr} of {id} does not exist"
                )));
            };
            let old: Attribute = from_json(&doc)?;
            let mut new = value;
            new.instance_id = None;
            new.created_at = old.created_at;
            new.dataset_id = new.dataset_id.or(old.dataset_id);
            new.observed_at = new.observed_at.or(old.observed_at);
            let sys = new.modified_at.map(ms).unwrap_or_else(|| ms(Utc::now()));
            let ts = new.observed_at.map(ms).unwrap_or(sys);
            conn.execute(
                "UPDATE temporal SET doc=?1, num=?2, ts=?3, sys_ms=?4 WHERE iid=?5",
                params![to_json(&new)?, numeric_of(&new), ts, sys, iid],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn put_context(&self, c: StoredContext) -> Result<()> {
        self.write_job(false, move |conn, _| {
            conn.execute(
                "INSERT INTO contexts(id, url, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET url=excluded.url, doc=excluded.doc",
                params![c.id, c.url, to_json(&c)?],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    NgsiError::exists(format!(
                        "a context with URL {} is already registered",
                        c.url
                    ))
                }
                e => db_err(e),
            })?;
            Ok(())
        })
        .await
    }

    async fn get_context(&self, id_or_url: &str) -> Result<Option<StoredContext>> {
        let key = id_or_url.to_string();
        self.read(move |c| {
            let doc: Option<String> = c
                .query_row(
                    "SELECT doc FROM contexts WHERE id=?1 OR url=?1",
                    [&key],
                    row_context,
                )
                .optional()
                .map_err(db_err)?;
            doc.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list_contexts(&self) -> Result<Vec<StoredContext>> {
        self.read(|c| {
            let mut stmt = c
                .prepare("SELECT doc FROM contexts ORDER BY id")
                .map_err(db_err)?;
            let rows = stmt.query_map([], row_context).map_err(db_err)?;
            rows.map(|r| from_json(&r.map_err(db_err)?)).collect()
        })
        .await
    }

    async fn delete_context(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write_job(false, move |conn, _| {
            Ok(conn
                .execute("DELETE FROM contexts WHERE id=?1 OR url=?1", [&id])
                .map_err(db_err)?
                > 0)
        })
        .await
    }

    async fn put_dataset(&self, d: Dataset) -> Result<()> {
        self.write_job(false, move |conn, _| {
            conn.execute(
                "INSERT INTO datasets(id, doc) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET doc=excluded.doc",
                params![d.id, to_json(&d)?],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn get_dataset(&self, id: &str) -> Result<Option<Dataset>> {
        let id = id.to_string();
        self.read(move |c| {
            let doc: Option<String> = c
                .query_row("SELECT doc FROM datasets WHERE id=?1", [&id], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            doc.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list_datasets(&self) -> Result<Vec<Dataset>> {
        self.read(|c| {
            let mut stmt = c
                .prepare("SELECT doc FROM datasets ORDER BY id")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(db_err)?;
            rows.map(|r| from_json(&r.map_err(db_err)?)).collect()
        })
        .await
    }

    async fn put_subscription(&self, s: StoredSubscription, create: bool) -> Result<()> {
        let journal = self.journal.clone();
        self.write_job(false, move |conn, _| {
            let exists: bool = conn
                .query_row("SELECT 1 FROM subscriptions WHERE id=?1", [&s.id], |_| {
                    Ok(true)
                })
                .optional()
                .map_err(db_err)?
                .unwrap_or(false);
            if create && exists {
                return Err(NgsiError::exists(format!(
                    "subscription {} already exists",
                    s.id
                )));
            }
            if !create && !exists {
                return Err(NgsiError::not_found(format!(
                    "subscription {} does not exist",
                    s.id
                )));
            }
            if create {
                conn.execute(
                    "INSERT INTO subscriptions(id, doc, status) VALUES (?1, ?2, ?3)",
                    params![s.id, to_json(&s.document)?, to_json(&s.status)?],
                )
            } else {
                conn.execute(
                    "UPDATE subscriptions SET doc=?1 WHERE id=?2",
                    params![to_json(&s.document)?, s.id],
                )
            }
            .map_err(db_err)?;
            journal.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<StoredSubscription>> {
        let id = id.to_string();
        self.read(move |c| {
            let row: Option<(String, String)> = c
                .query_row(
                    "SELECT doc, status FROM subscriptions WHERE id=?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err)?;
            row.map(|(d, s)| {
                Ok(StoredSubscription {
                    id: id.clone(),
                    document: from_json(&d)?,
                    status: from_json(&s)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn list_subscriptions(&self) -> Result<Vec<StoredSubscription>> {
        self.read(|c| {
            let mut stmt = c
                .prepare("SELECT id, doc, status FROM subscriptions ORDER BY id")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(db_err)?;
            rows.map(|r| {
                let (id, d, s) = r.map_err(db_err)?;
                Ok(StoredSubscription {
                    id,
                    document: from_json(&d)?,
                    status: from_json(&s)?,
                })
            })
            .collect()
        })
        .await
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        let journal = self.journal.clone();
        self.write_job(false, move |conn, _| {
            let n = conn
                .execute("DELETE FROM subscriptions WHERE id=?1", [&id])
                .map_err(db_err)?;
            conn.execute("DELETE FROM deliveries WHERE subscription=?1", [&id])
                .map_err(db_err)?;
            let left: i64 = conn
                .query_row("SELECT count(*) FROM subscriptions", [], |r| r.get(0))
                .map_err(db_err)?;
            if left == 0 {
                journal.store(false, Ordering::SeqCst);
                conn.execute("DELETE FROM changes", []).map_err(db_err)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn put_scenario(&self, sc: StoredScenario, create: bool) -> Result<()> {
        self.write_job(false, move |conn, _| {
            let exists = conn
                .query_row("SELECT 1 FROM scenarios WHERE id=?1", [&sc.id], |_| Ok(()))
                .optional()
                .map_err(db_err)?
                .is_some();
            match (create, exists) {
                (true, true) => Err(NgsiError::exists(format!(
                    "scenario {} already exists",
                    sc.id
                ))),
                (false, false) => Err(NgsiError::not_found(format!(
                    "scenario {} does not exist",
                    sc.id
                ))),
                (true, false) => conn
                    .execute(
                        "INSERT INTO scenarios(id, doc, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4)",
                        params![sc.id, to_json(&sc.document)?, ms(sc.created_at), ms(sc.modified_at)],
                    )
                    .map(|_| ())
                    .map_err(db_err),
                (false, true) => conn
                    .execute(
                        "UPDATE scenarios SET doc=?1, modified_ms=?2 WHERE id=?3",
                        params![to_json(&sc.document)?, ms(sc.modified_at), sc.id],
                    )
                    .map(|_| ())
                    .map_err(db_err),
            }
        })
        .await
    }

    async fn get_scenario(&self, id: &str) -> Result<Option<StoredScenario>> {
        let id = id.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT id, doc, created_ms, modified_ms FROM scenarios WHERE id=?1",
                [&id],
                scenario_row,
            )
            .optional()
            .map_err(db_err)?
            .map(scenario_from_row)
            .transpose()
        })
        .await
    }

    async fn list_scenarios(&self) -> Result<Vec<StoredScenario>> {
        self.read(|c| {
            let mut stmt = c
                .prepare("SELECT id, doc, created_ms, modified_ms FROM scenarios ORDER BY created_ms, id")
                .map_err(db_err)?;
            let rows = stmt.query_map([], scenario_row).map_err(db_err)?;
            rows.map(|r| scenario_from_row(r.map_err(db_err)?)).collect()
        })
        .await
    }

    async fn delete_scenario(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write_job(false, move |conn, _| {
            conn.execute("DELETE FROM scenario_runs WHERE scenario=?1", [&id])
                .map_err(db_err)?;
            Ok(conn
                .execute("DELETE FROM scenarios WHERE id=?1", [&id])
                .map_err(db_err)?
                > 0)
        })
        .await
    }

    async fn put_run(&self, run: StoredRun, links: Option<Value>, create: bool) -> Result<()> {
        if !(run.progress.is_finite() && (0.0..=1.0).contains(&run.progress)) {
            return Err(NgsiError::bad_data(format!(
                "run {}: progress must be between 0 and 1, not {}",
                run.id, run.progress
            )));
        }
        self.write_job(false, move |conn, _| {
            let current: Option<(String, String)> = conn
                .query_row(
                    "SELECT scenario, status FROM scenario_runs WHERE id=?1",
                    [&run.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err)?;
            let links = links.map(|l| to_json(&l)).transpose()?;
            let times = (
                ms(run.created_at),
                run.started_at.map(ms),
                run.finished_at.map(ms),
            );
            match (create, current) {
                (true, Some(_)) => {
                    return Err(NgsiError::exists(format!("run {} already exists", run.id)))
                }
                (false, None) => {
                    return Err(NgsiError::not_found(format!(
                        "run {} does not exist",
                        run.id
                    )))
                }
                (true, None) => {
                    let scenario = conn
                        .query_row(
                            "SELECT 1 FROM scenarios WHERE id=?1",
                            [&run.scenario_id],
                            |_| Ok(()),
                        )
                        .optional()
                        .map_err(db_err)?;
                    if scenario.is_none() {
                        return Err(NgsiError::not_found(format!(
                            "scenario {} does not exist",
                            run.scenario_id
                        )));
                    }
                    conn.execute(
                        "INSERT INTO scenario_runs(id, scenario, status, progress, message, created_ms, started_ms,
                         finished_ms, request, summary, links) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                        params![
                            run.id,
                            run.scenario_id,
                            run.status.as_str(),
                            run.progress,
                            run.message,
                            times.0,
                            times.1,
                            times.2,
                            to_json(&run.request)?,
                            to_json(&run.summary)?,
                            links
                        ],
                    )
                    .map_err(db_err)?;
                }
                (false, Some((scenario, status))) => {
                    if scenario != run.scenario_id {
                        return Err(NgsiError::bad_data(format!(
                            "run {} belongs to scenario {scenario}, not {}",
                            run.id, run.scenario_id
                        )));
                    }
                    if RunStatus::parse(&status).is_some_and(RunStatus::is_final) {
                        return Err(NgsiError::new(
                            twin_model::ErrorKind::Conflict,
                            format!("run {} is already {status}", run.id),
                        ));
                    }
                    conn.execute(
                        "UPDATE scenario_runs SET status=?1, progress=?2, message=?3, created_ms=?4, started_ms=?5,
                         finished_ms=?6, request=?7, summary=?8, links=coalesce(?9, links) WHERE id=?10",
                        params![
                            run.status.as_str(),
                            run.progress,
                            run.message,
                            times.0,
                            times.1,
                            times.2,
                            to_json(&run.request)?,
                            to_json(&run.summary)?,
                            links,
                            run.id
                        ],
                    )
                    .map_err(db_err)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<StoredRun>> {
        let id = id.to_string();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {RUN_COLUMNS} FROM scenario_runs WHERE id=?1"),
                [&id],
                run_row,
            )
            .optional()
            .map_err(db_err)?
            .map(run_from_row)
            .transpose()
        })
        .await
    }

    async fn get_run_links(&self, id: &str) -> Result<Option<Value>> {
        let id = id.to_string();
        self.read(move |c| {
            let doc: Option<Option<String>> = c
                .query_row("SELECT links FROM scenario_runs WHERE id=?1", [&id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err)?;
            doc.flatten().map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list_runs(&self, scenario_id: &str) -> Result<Vec<StoredRun>> {
        let id = scenario_id.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {RUN_COLUMNS} FROM scenario_runs WHERE scenario=?1 ORDER BY created_ms, id"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map([&id], run_row).map_err(db_err)?;
            rows.map(|r| run_from_row(r.map_err(db_err)?)).collect()
        })
        .await
    }

    async fn put_dead_letters(&self, letters: Vec<DeadLetter>) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        self.write_job(false, move |conn, _| {
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO dead_letters(received_ms, source, topic, payload, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(db_err)?;
            for l in letters {
                stmt.execute(params![ms(l.received_at), l.source, l.topic, l.payload, l.reason])
                    .map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn dead_letters(
        &self,
        topic: Option<&str>,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<(u64, Vec<DeadLetter>)> {
        let topic = topic.map(str::to_string);
        self.read(move |c| {
            let total: i64 = c
                .query_row(
                    "SELECT count(*) FROM dead_letters WHERE ?1 IS NULL OR topic=?1",
                    [&topic],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            let mut stmt = c
                .prepare(
                    "SELECT id, received_ms, source, topic, payload, reason FROM dead_letters
                     WHERE (?1 IS NULL OR topic=?1) AND id < ?2 ORDER BY id DESC LIMIT ?3",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(
                    params![
                        topic,
                        before_id.unwrap_or(i64::MAX),
                        limit.min(i64::MAX as usize) as i64
                    ],
                    |r| {
                        Ok(DeadLetter {
                            id: r.get(0)?,
                            received_at: from_ms(r.get(1)?),
                            source: r.get(2)?,
                            topic: r.get(3)?,
                            payload: r.get(4)?,
                            reason: r.get(5)?,
                        })
                    },
                )
                .map_err(db_err)?;
            let letters = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)?;
            Ok((total as u64, letters))
        })
        .await
    }

    async fn delete_dead_letters(&self, ids: Option<Vec<i64>>) -> Result<u64> {
        self.write_job(false, move |conn, _| {
            let n = match ids {
                None => conn
                    .execute("DELETE FROM dead_letters", [])
                    .map_err(db_err)?,
                Some(ids) => {
                    let mut stmt = conn
                        .prepare_cached("DELETE FROM dead_letters WHERE id=?1")
                        .map_err(db_err)?;
                    let mut n = 0;
                    for id in ids {
                        n += stmt.execute([id]).map_err(db_err)?;
                    }
                    n
                }
            };
            Ok(n as u64)
        })
        .await
    }

    async fn map_changes_since(&self, after_seq: i64, limit: usize) -> Result<MapChanges> {
        self.read(move |c| {
            let head: i64 = c
                .query_row(
                    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name='map_changes'), 0)",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            if head <= after_seq {
                return Ok(MapChanges {
                    head,
                    changes: Vec::new(),
                    complete: true,
                });
            }
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, type, min_x, min_y, max_x, max_y FROM map_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(db_err)?;
            let changes = stmt
                .query_map(params![after_seq, limit as i64 + 1], |r| {
                    Ok(MapChange {
                        seq: r.get(0)?,
                        type_name: r.get(1)?,
                        bbox: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
                    })
                })
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            // seqs have no gaps (AUTOINCREMENT, rollbacks undo the counter too) except where old rows were pruned
            let complete = changes.len() <= limit
                && changes.first().map(|c| c.seq) == Some(after_seq + 1);
            Ok(MapChanges {
                head,
                changes,
                complete,
            })
        })
        .await
    }

    async fn type_extent(&self, type_name: &str) -> Result<Option<[f64; 4]>> {
        let t = type_name.to_string();
        self.read(move |c| {
            let row: (Option<f64>, Option<f64>, Option<f64>, Option<f64>) = c
                .query_row(
                    // one pass over the R-tree's rows (gid ranges per entity would each scan it)
                    "SELECT min(min_x), min(min_y), max(max_x), max(max_y) FROM entity_geo
                     WHERE gid / ?2 IN (SELECT rid FROM entity_types WHERE type = ?1)",
                    params![t, GEO_PER_ENTITY],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(db_err)?;
            Ok(match row {
                (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
                _ => None,
            })
        })
        .await
    }

    async fn modified_since(&self, since_ms: i64, limit: usize) -> Result<Vec<(i64, Entity)>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT modified_ms, doc FROM entities WHERE modified_ms >= ?1 ORDER BY modified_ms, rid LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![since_ms, limit.min(i64::MAX as usize) as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(db_err)?;
            rows.map(|r| {
                let (ms, doc) = r.map_err(db_err)?;
                Ok((ms, from_json(&doc)?))
            })
            .collect()
        })
        .await
    }

    async fn changes_since(&self, after_seq: i64, limit: usize) -> Result<Vec<ChangeRecord>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare("SELECT seq, doc FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![after_seq, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(db_err)?;
            rows.map(|r| {
                let (seq, doc) = r.map_err(db_err)?;
                let mut rec: ChangeRecord = from_json(&doc)?;
                rec.seq = seq;
                Ok(rec)
            })
            .collect()
        })
        .await
    }

    async fn enqueue_deliveries(
        &self,
        upto_seq: i64,
        deliveries: Vec<(String, Value)>,
    ) -> Result<()> {
        self.write_job(true, move |conn, _| {
            let now = ms(Utc::now());
            for (sub, payload) in &deliveries {
                conn.prepare_cached(
                    "INSERT INTO deliveries(subscription, payload, next_ms) VALUES (?1, ?2, ?3)",
                )
                .map_err(db_err)?
                .execute(params![sub, to_json(payload)?, now])
                .map_err(db_err)?;
            }
            conn.execute("DELETE FROM changes WHERE seq <= ?1", [upto_seq])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn pending_deliveries(&self, subscription_id: &str) -> Result<u64> {
        let sub = subscription_id.to_string();
        self.read(move |c| {
            let n: i64 = c
                .query_row(
                    "SELECT count(*) FROM deliveries WHERE subscription=?1",
                    [&sub],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, subscription, payload, attempts, next_ms FROM deliveries WHERE next_ms <= ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![ms(now), limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?))
                })
                .map_err(db_err)?;
            rows.map(|r| {
                let (id, sub, payload, attempts, next) = r.map_err(db_err)?;
                Ok(PendingDelivery {
                    id,
                    subscription_id: sub,
                    payload: from_json(&payload)?,
                    attempts: attempts as u32,
                    next_attempt_at: from_ms(next),
                })
            })
            .collect()
        })
        .await
    }

    async fn finish_delivery(
        &self,
        delivery_id: i64,
        subscription_id: &str,
        at: DateTime<Utc>,
        error: Option<String>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let sub = subscription_id.to_string();
        self.write_job(false, move |conn, _| {
            match (&error, retry_at) {
                (Some(_), Some(t)) => {
                    conn.execute(
                        "UPDATE deliveries SET attempts = attempts + 1, next_ms = ?1 WHERE id = ?2",
                        params![ms(t), delivery_id],
                    )
                    .map_err(db_err)?;
                }
                _ => {
                    conn.execute("DELETE FROM deliveries WHERE id = ?1", [delivery_id])
                        .map_err(db_err)?;
                }
            }
            let status: Option<String> = conn
                .query_row(
                    "SELECT status FROM subscriptions WHERE id=?1",
                    [&sub],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            if let Some(s) = status {
                let mut st: DeliveryStatus = from_json(&s)?;
                st.last_notification = Some(at);
                match &error {
                    None => {
                        st.times_sent += 1;
                        st.last_success = Some(at);
                    }
                    Some(e) => {
                        st.times_failed += 1;
                        st.last_failure = Some(at);
                        st.last_error = Some(e.clone());
                    }
                }
                conn.execute(
                    "UPDATE subscriptions SET status=?1 WHERE id=?2",
                    params![to_json(&st)?, sub],
                )
                .map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }

    fn change_signal(&self) -> Arc<Notify> {
        self.signal.clone()
    }

    async fn check_integrity(&self) -> Result<()> {
        self.read(|c| {
            let r: String = c
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(db_err)?;
            if r != "ok" {
                return Err(db_err(format!("integrity check failed: {r}")));
            }
            // every entity row parses and has its type index
            let mut stmt = c.prepare("SELECT rid, doc FROM entities").map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(db_err)?;
            for r in rows {
                let (rid, doc) = r.map_err(db_err)?;
                let e: Entity = from_json(&doc)?;
                let n: i64 = c
                    .query_row(
                        "SELECT count(*) FROM entity_types WHERE rid=?1",
                        [rid],
                        |r| r.get(0),
                    )
                    .map_err(db_err)?;
                if n as usize != e.types.len() {
                    return Err(db_err(format!(
                        "entity {} has {} types but {n} type index rows",
                        e.id,
                        e.types.len()
                    )));
                }
            }
            Ok(())
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------------
// scenarios and runs

type ScenarioRow = (String, String, i64, i64);

fn scenario_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScenarioRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn scenario_from_row((id, doc, created, modified): ScenarioRow) -> Result<StoredScenario> {
    Ok(StoredScenario {
        id,
        document: from_json(&doc)?,
        created_at: from_ms(created),
        modified_at: from_ms(modified),
    })
}

const RUN_COLUMNS: &str =
    "id, scenario, status, progress, message, created_ms, started_ms, finished_ms, request, summary";

struct RunRow {
    id: String,
    scenario: String,
    status: String,
    progress: f64,
    message: Option<String>,
    created: i64,
    started: Option<i64>,
    finished: Option<i64>,
    request: String,
    summary: String,
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        scenario: r.get(1)?,
        status: r.get(2)?,
        progress: r.get(3)?,
        message: r.get(4)?,
        created: r.get(5)?,
        started: r.get(6)?,
        finished: r.get(7)?,
        request: r.get(8)?,
        summary: r.get(9)?,
    })
}

fn run_from_row(r: RunRow) -> Result<StoredRun> {
    Ok(StoredRun {
        status: RunStatus::parse(&r.status)
            .ok_or_else(|| db_err(format!("run {} has an unknown status {}", r.id, r.status)))?,
        id: r.id,
        scenario_id: r.scenario,
        progress: r.progress,
        message: r.message,
        created_at: from_ms(r.created),
        started_at: r.started.map(from_ms),
        finished_at: r.finished.map(from_ms),
        request: from_json(&r.request)?,
        summary: from_json(&r.summary)?,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// temporal aggregation

#[derive(Default, Clone)]
struct Acc {
    count: u64,
    n: u64,
    sum: f64,
    sumsq: f64,
    min: Option<f64>,
    max: Option<f64>,
    distinct: HashSet<String>,
}

impl Acc {
    fn value(&self, m: AggrMethod) -> Value {
        let num = |x: f64| {
            serde_json::Number::from_f64(x)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        };
        match m {
            AggrMethod::TotalCount => Value::from(self.count),
            AggrMethod::DistinctCount => Value::from(self.distinct.len() as u64),
            AggrMethod::Sum => num(self.sum),
            AggrMethod::Sumsq => num(self.sumsq),
            AggrMethod::Avg if self.n > 0 => num(self.sum / self.n as f64),
            AggrMethod::Min => self.min.map(num).unwrap_or(Value::Null),
            AggrMethod::Max => self.max.map(num).unwrap_or(Value::Null),
            AggrMethod::Stddev if self.n > 1 => {
                // sample standard deviation, as PostgreSQL's stddev (and so Mintaka) computes it
                let n = self.n as f64;
                let var = ((self.sumsq - self.sum * self.sum / n) / (n - 1.0)).max(0.0);
                num(var.sqrt())
            }
            AggrMethod::Stddev if self.n == 1 => num(0.0),
            _ => Value::Null,
        }
    }
}

fn run_aggregate(
    conn: &Connection,
    q: &TemporalQuery,
    a: &Aggregation,
) -> Result<Vec<AggregatedEntity>> {
    let ents = temporal_entities_for(conn, q)?;
    let col = match q.timeproperty {
        TimeProperty::ObservedAt => "ts",
        _ => "sys_ms",
    };
    let (lo, hi) = match q.timerel {
        None => (i64::MIN, i64::MAX),
        Some(TimeRel::Before(t)) => (i64::MIN, ms(t)),
        Some(TimeRel::After(t)) => (ms(t), i64::MAX),
        Some(TimeRel::Between(x, y)) => (ms(x), ms(y)),
    };
    let want_distinct = a.methods.contains(&AggrMethod::DistinctCount);
    let mut out = Vec::new();
    let offset = q.entities.offset;
    let limit = if q.entities.limit == 0 {
        usize::MAX
    } else {
        q.entities.limit
    };
    for (id, types, _) in ents.into_iter().skip(offset).take(limit) {
        let attrs: Vec<String> = match &q.attrs {
            Some(x) => x.clone(),
            None => {
                let mut stmt = conn
                    .prepare_cached("SELECT DISTINCT attr FROM temporal WHERE entity=?1")
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map([&id], |r| r.get::<_, String>(0))
                    .map_err(db_err)?;
                rows.collect::<std::result::Result<_, _>>()
                    .map_err(db_err)?
            }
        };
        let mut amap = BTreeMap::new();
        for attr in attrs {
            // the first period starts at the query's start, or at the first instance
            let first: Option<i64> = conn
                .query_row(
                    &format!("SELECT min({col}) FROM temporal WHERE entity=?1 AND attr=?2 AND {col} >= ?3 AND {col} < ?4"),
                    params![id, attr, lo, hi],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            let Some(first) = first else { continue };
            let last: i64 = conn
                .query_row(
                    &format!("SELECT max({col}) FROM temporal WHERE entity=?1 AND attr=?2 AND {col} >= ?3 AND {col} < ?4"),
                    params![id, attr, lo, hi],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            let start = if lo == i64::MIN { first } else { lo };
            let overall_end = if hi == i64::MAX { last + 1 } else { hi };
            // period boundaries
            let bounds: Vec<i64> = match &a.period {
                None => vec![start, overall_end],
                Some(p) if p.is_zero() => vec![start, overall_end],
                Some(p) => {
                    let mut b = vec![start];
                    let mut t = from_ms(start);
                    while *b.last().unwrap_or(&i64::MAX) < overall_end && b.len() < 1_000_000 {
                        t = p.add_to(t);
                        let next = ms(t);
                        if next <= *b.last().unwrap_or(&i64::MIN) {
                            break;
                        }
                        b.push(next);
                    }
                    b
                }
            };
            let mut accs: BTreeMap<usize, Acc> = BTreeMap::new();
            let sql = if want_distinct {
                format!(
                    "SELECT {col}, num, CASE WHEN num IS NULL THEN json_extract(doc, '$.value') ELSE NULL END FROM temporal
                     WHERE entity=?1 AND attr=?2 AND {col} >= ?3 AND {col} < ?4 ORDER BY {col}"
                )
            } else {
                format!(
                    "SELECT {col}, num, NULL FROM temporal WHERE entity=?1 AND attr=?2 AND {col} >= ?3 AND {col} < ?4 ORDER BY {col}"
                )
            };
            let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
            let mut rows = stmt.query(params![id, attr, lo, hi]).map_err(db_err)?;
            let mut bucket = 0usize;
            while let Some(r) = rows.next().map_err(db_err)? {
                let t: i64 = r.get(0).map_err(db_err)?;
                while bucket + 1 < bounds.len() && t >= bounds[bucket + 1] {
                    bucket += 1;
                }
                if bucket + 1 >= bounds.len() {
                    break;
                }
                let acc = accs.entry(bucket).or_default();
                acc.count += 1;
                let num: Option<f64> = r.get(1).map_err(db_err)?;
                if let Some(x) = num {
                    acc.n += 1;
                    acc.sum += x;
                    acc.sumsq += x * x;
                    acc.min = Some(acc.min.map_or(x, |m| m.min(x)));
                    acc.max = Some(acc.max.map_or(x, |m| m.max(x)));
                }
                if want_distinct {
                    let key = match num {
                        Some(x) => format!("n{x}"),
                        None => format!(
                            "v{}",
                            r.get::<_, Option<String>>(2)
                                .ok()
                                .flatten()
                                .unwrap_or_default()
                        ),
                    };
                    acc.distinct.insert(key);
                }
            }
            let mut mmap = BTreeMap::new();
            for &m in &a.methods {
                let periods: Vec<AggregatedValue> = accs
                    .iter()
                    .map(|(b, acc)| AggregatedValue {
                        value: acc.value(m),
                        start: from_ms(bounds[*b]),
                        end: from_ms(bounds[*b + 1]),
                    })
                    .collect();
                mmap.insert(m, periods);
            }
            amap.insert(attr, mmap);
        }
        out.push(AggregatedEntity {
            id,
            types,
            attrs: amap,
        });
    }
    Ok(out)
}
