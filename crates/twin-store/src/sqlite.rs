//! The embedded SQLite backend: one file, WAL, `synchronous=FULL`, a single writer thread that group-commits
//! concurrent writes (each in its own savepoint) and acknowledges them only after the commit is on disk.
//!
//! Entities are stored whole (JSON of [`Entity`]) next to three indexes the query planner uses to narrow the
//! candidates before the exact evaluator in `twin-model` decides: entity types, an R-tree of GeoProperty bounding
//! boxes, and scalar attribute values (for `q`). Temporal instances live in their own table, indexed for time-range
//! scans and aggregation. What is not about SQLite (deciding changes, index values, the `q` prefilter, temporal
//! pages and aggregation) is shared with the PostgreSQL backend in `common`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use tokio::sync::{oneshot, Notify};
use twin_model::query::CmpOp;
use twin_model::{Attribute, Dataset, Entity};

use crate::common::*;
use crate::*;

mod participation;
mod trust;

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
-- dataset: the urbantwin dataset of the entity whose history this is (kept by the triggers of DATASET_INDEXES)
CREATE TABLE IF NOT EXISTS temporal_entities (
    id TEXT PRIMARY KEY,
    types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    dataset TEXT
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
    modified_ms INTEGER NOT NULL,
    -- the account that created it (NULL: only administrators change it); a database of an earlier build gains it on
    -- open
    owner TEXT
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
    links TEXT,
    -- runs as jobs: the node computing it, until when (its lease), how many times it was claimed, and whether a
    -- cancel was requested (see RUN_JOB_COLUMNS: a database of an earlier build gains them on open)
    node TEXT,
    lease_until_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS scenario_runs_scenario ON scenario_runs(scenario, created_ms);
CREATE INDEX IF NOT EXISTS scenario_runs_jobs ON scenario_runs(status, created_ms);
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
-- retention and downsampling: the policies, the last run's report, and the buckets raw instances were folded into
-- (count, sum, sum of squares, min, max of numeric values; dataset '' = no datasetId; period: ISO 8601, UTC-aligned)
CREATE TABLE IF NOT EXISTS retention_policies (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS retention_status (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS temporal_aggregates (
    entity TEXT NOT NULL,
    attr TEXT NOT NULL,
    dataset TEXT NOT NULL,
    period TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    sum REAL NOT NULL,
    sumsq REAL NOT NULL,
    vmin REAL NOT NULL,
    vmax REAL NOT NULL,
    PRIMARY KEY (entity, attr, dataset, period, start_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS temporal_aggregates_time ON temporal_aggregates(entity, attr, start_ms);
-- trust (see the `trust` module): accounts (roles and groups as JSON arrays), their API keys and sessions (tokens
-- only as SHA-256), the usage log of reads of non-public data, and the hash-chained, append-only audit log with its
-- head (the last seq and hash appended)
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    display_name TEXT,
    email TEXT,
    password_hash TEXT,
    roles TEXT NOT NULL,
    member_groups TEXT NOT NULL,
    organisation TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    revoked_ms INTEGER,
    last_used_ms INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys(account, created_ms);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    user_agent TEXT
);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions(account);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires_ms);
CREATE TABLE IF NOT EXISTS usage_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    dataset TEXT NOT NULL,
    principal TEXT NOT NULL,
    operation TEXT NOT NULL,
    entities INTEGER NOT NULL,
    purpose TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS usage_log_dataset ON usage_log(dataset, id);
CREATE INDEX IF NOT EXISTS usage_log_principal ON usage_log(principal, id);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT OR IGNORE INTO audit_head(id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
-- append-only: whoever can write the file can still drop these, which verify_audit then reveals
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
-- participation (see the `participation` module): records of consultations (JSON documents of a kind) and marks
-- (one per kind, target and author); times in microseconds since the epoch, JSON as text (marks' values with
-- their keys sorted, so that equal values compare equal)
CREATE TABLE IF NOT EXISTS participation_records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    consultation TEXT,
    parent TEXT,
    author TEXT,
    created_us INTEGER NOT NULL,
    modified_us INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS participation_records_consultation
    ON participation_records(kind, consultation, created_us, id);
-- a consultation's threads and their replies, in order (a page of threads merges one range per parent)
DROP INDEX IF EXISTS participation_records_parent;
CREATE INDEX IF NOT EXISTS participation_records_thread
    ON participation_records(kind, consultation, parent, created_us, id);
CREATE INDEX IF NOT EXISTS participation_records_author ON participation_records(kind, author);
CREATE INDEX IF NOT EXISTS participation_records_of_consultation ON participation_records(consultation);
CREATE TABLE IF NOT EXISTS participation_marks (
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    author TEXT NOT NULL,
    scope TEXT NOT NULL,
    value TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    PRIMARY KEY (kind, target, author)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS participation_marks_scope ON participation_marks(kind, scope, author);
CREATE INDEX IF NOT EXISTS participation_marks_author ON participation_marks(author);
CREATE INDEX IF NOT EXISTS participation_marks_of_scope ON participation_marks(scope);
"#;

/// Reads are filtered by dataset (`EntityQuery::datasets`): the dataset indexes, and the triggers that keep the
/// dataset of an entity's history (`temporal_entities.dataset`) that of the entity: when it is written into another
/// dataset, when it is created (again), and when its history starts (from the entity, if there is one; else NULL,
/// the default dataset). A deleted entity's history keeps the dataset it last had. Run after `temporal_entities`
/// gained its `dataset` column.
const DATASET_INDEXES: &str = r#"
CREATE INDEX IF NOT EXISTS entities_dataset ON entities(dataset);
CREATE INDEX IF NOT EXISTS temporal_entities_dataset ON temporal_entities(dataset);
CREATE TRIGGER IF NOT EXISTS entities_dataset_moved AFTER UPDATE OF dataset ON entities
    WHEN NEW.dataset IS NOT OLD.dataset
BEGIN
    UPDATE temporal_entities SET dataset = NEW.dataset WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS entities_dataset_created AFTER INSERT ON entities
BEGIN
    UPDATE temporal_entities SET dataset = NEW.dataset WHERE id = NEW.id AND dataset IS NOT NEW.dataset;
END;
CREATE TRIGGER IF NOT EXISTS temporal_entities_dataset_started AFTER INSERT ON temporal_entities
BEGIN
    UPDATE temporal_entities SET dataset = (SELECT dataset FROM entities WHERE id = NEW.id) WHERE id = NEW.id;
END;
"#;

/// The columns runs gained when they became jobs, with their definitions (added to a database of an earlier build
/// of schema 1 when it is opened).
const RUN_JOB_COLUMNS: &[(&str, &str)] = &[
    ("node", "TEXT"),
    ("lease_until_ms", "INTEGER"),
    ("attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("cancel_requested", "INTEGER NOT NULL DEFAULT 0"),
];

/// Adds the `columns` a table lacks, in one transaction; true when it added any.
fn add_missing_columns(conn: &Connection, table: &str, columns: &[(&str, &str)]) -> Result<bool> {
    let mut stmt = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .map_err(db_err)?;
    let have: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(db_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_err)?;
    let missing: Vec<String> = columns
        .iter()
        .filter(|(c, _)| !have.iter().any(|h| h == c))
        .map(|(c, def)| format!("ALTER TABLE {table} ADD COLUMN {c} {def};"))
        .collect();
    if missing.is_empty() {
        return Ok(false);
    }
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {} COMMIT;", missing.join(" ")))
        .map_err(|e| db_err(format!("cannot add the columns {table} lacks: {e}")))?;
    Ok(true)
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
    map_dirty: std::cell::RefCell<MapDirty>,
}

/// Writes the transaction's map changes (inside it, before COMMIT) and prunes old ones now and then.
fn flush_map_changes(conn: &Connection, state: &WriterState) -> Result<()> {
    let dirty = std::mem::take(&mut state.map_dirty.borrow_mut().0);
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
    /// See [`Store::job_signal`] (this process's runs: SQLite serves one node).
    jobs_signal: Arc<Notify>,
    jobs: Mutex<mpsc::Sender<Job>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    journal: Arc<AtomicBool>,
    signal: Arc<Notify>,
    /// See [`Store::config_epoch`] (this process's changes only: SQLite serves one node).
    epoch: std::sync::atomic::AtomicU64,
}

impl SqliteStore {
    fn config_changed<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_ok() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        r
    }

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
        add_missing_columns(&conn, "scenario_runs", RUN_JOB_COLUMNS)?;
        add_missing_columns(&conn, "scenarios", &[("owner", "TEXT")])?;
        if add_missing_columns(&conn, "temporal_entities", &[("dataset", "TEXT")])? {
            // histories recorded before datasets filtered reads take the dataset of their entity
            conn.execute_batch(
                "UPDATE temporal_entities SET dataset = (SELECT dataset FROM entities e WHERE e.id = temporal_entities.id)",
            )
            .map_err(db_err)?;
        }
        conn.execute_batch(&format!("BEGIN; {DATASET_INDEXES} COMMIT;"))
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
            jobs_signal: Arc::new(Notify::new()),
            jobs: Mutex::new(tx),
            readers: Arc::new(Mutex::new(Vec::new())),
            journal,
            signal,
            epoch: Default::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates or updates a run's row ([`Store::put_run`]).
    async fn put_run_row(&self, run: StoredRun, links: Option<Value>, create: bool) -> Result<()> {
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
            check_run_write(&run, create, current, || {
                Ok(conn
                    .query_row(
                        "SELECT 1 FROM scenarios WHERE id=?1",
                        [&run.scenario_id],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(db_err)?
                    .is_some())
            })?;
            if create {
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
            } else {
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
            Ok(())
        })
        .await
    }

    /// A run by its id.
    async fn run_by_id(&self, id: &str) -> Result<Option<StoredRun>> {
        let id = id.to_string();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {RUN_COLUMNS} FROM scenario_runs WHERE id=?1"),
                [&id],
                run_row,
            )
            .optional()
            .map_err(db_err)?
            .map(RunRow::into_run)
            .transpose()
        })
        .await
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
    state.map_dirty.borrow_mut().0.clear();
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
/// Marker of an attribute whose value the index cannot represent: every q term on it goes to the exact evaluator.
/// SQLite orders numbers < text < blobs, which the query planner uses.
const OPAQUE: &[u8] = b"\x01";

/// How an indexed value is kept in the dynamically typed `attr_values.v`.
fn sql_value(v: IndexValue) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        IndexValue::Num(x) => V::Real(x),
        IndexValue::Text(s) => V::Text(s),
        IndexValue::NoScalar => V::Blob(NO_SCALAR.to_vec()),
        IndexValue::Opaque => V::Blob(OPAQUE.to_vec()),
    }
}

/// Writes the entity row (`existing`: its row id when it is already stored) and refreshes its indexes; returns the
/// row id. GeoProperty boxes get R-tree ids gid = rid * GEO_PER_ENTITY + k.
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
    for (name, instances) in &e.attrs {
        for a in instances {
            for v in index_values(a) {
                ins_val
                    .execute(params![rid, name, sql_value(v), a.kind.as_str()])
                    .map_err(db_err)?;
            }
        }
    }
    let mut ins_geo = conn
        .prepare_cached("INSERT INTO entity_geo(gid, min_x, max_x, min_y, max_y, attr) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .map_err(db_err)?;
    // `common::decide` refused entities with more boxes than GEO_PER_ENTITY
    for (k, (name, [x0, y0, x1, y1])) in geo_boxes(e).enumerate() {
        ins_geo
            .execute(params![
                rid * GEO_PER_ENTITY as i64 + k as i64,
                x0,
                x1,
                y0,
                y1,
                name
            ])
            .map_err(db_err)?;
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
    for k in 0..GEO_PER_ENTITY as i64 {
        if del
            .execute([rid * GEO_PER_ENTITY as i64 + k])
            .map_err(db_err)?
            == 0
        {
            break;
        }
    }
    Ok(())
}

fn delete_entity_row(conn: &Connection, rid: i64) -> Result<()> {
    clear_indexes(conn, rid)?;
    conn.execute("DELETE FROM entities WHERE rid=?1", [rid])
        .map_err(db_err)?;
    Ok(())
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

fn record_instance(conn: &Connection, entity: &str, attr: &str, a: &Attribute) -> Result<()> {
    let r = instance_row(a)?;
    conn.prepare_cached(
        "INSERT INTO temporal(entity, attr, dataset_id, ts, sys_ms, num, doc) VALUES (?1,?2,?3,?4,?5,?6,?7)",
    )
    .map_err(db_err)?
    .execute(params![entity, attr, r.dataset_id, r.ts, r.sys, r.num, r.doc])
    .map_err(db_err)?;
    Ok(())
}

/// Applies one entity change inside the current transaction: `common::decide` decides, this writes.
fn apply_change(
    conn: &Connection,
    state: &WriterState,
    id: &str,
    change: EntityChange,
) -> Result<Decision> {
    let (rid, before) = match load_entity_row(conn, id)? {
        Some((rid, e)) => (Some(rid), Some(e)),
        None => (None, None),
    };
    let d = decide(id, before, state.journal.load(Ordering::Relaxed), change)?;
    match (&d.effect, rid) {
        (Effect::Nothing, _) => return Ok(d),
        (Effect::Delete, Some(rid)) => delete_entity_row(conn, rid)?,
        (Effect::Delete, None) => {}
        (
            Effect::Put {
                entity,
                instances,
                record_head,
            },
            rid,
        ) => {
            put_entity_row(conn, entity, rid)?;
            if *record_head {
                record_temporal_entity(conn, &entity.id, &entity.types, &entity.scopes)?;
            }
            for (name, a) in instances {
                record_instance(conn, &entity.id, name, a)?;
            }
        }
    }
    d.touch_map(&mut state.map_dirty.borrow_mut());
    if let Some(rec) = &d.journal {
        conn.prepare_cached("INSERT INTO changes(doc) VALUES (?1)")
            .map_err(db_err)?
            .execute([to_json(rec)?])
            .map_err(db_err)?;
    }
    Ok(d)
}
// ---------------------------------------------------------------------------------------------------------------
// query planning: SQL narrows the candidates (see `common::plan_parts`), the model's evaluators decide

/// A prefilter as SQL over `attr_values a` of the entity `e` (values marked opaque always pass).
fn prefilter_sql(p: &Prefilter, args: &mut Vec<rusqlite::types::Value>) -> String {
    use rusqlite::types::Value as V;
    let join = |items: &[Prefilter], sep: &str, args: &mut Vec<V>| {
        let parts: Vec<String> = items.iter().map(|i| prefilter_sql(i, args)).collect();
        format!("({})", parts.join(sep))
    };
    match p {
        Prefilter::And(items) => join(items, " AND ", args),
        Prefilter::Or(items) => join(items, " OR ", args),
        Prefilter::Attr(attr, cond) => {
            args.push(V::Text(attr.clone()));
            let cond = match cond {
                AttrCond::Exists => {
                    return "EXISTS (SELECT 1 FROM attr_values a WHERE a.rid=e.rid AND a.attr=?)"
                        .to_string()
                }
                AttrCond::In(items) => {
                    let conds = vec!["a.v=?"; items.len()].join(" OR ");
                    args.extend(items.iter().map(|s| match s {
                        Scalar::Num(n) => V::Real(*n),
                        Scalar::Text(t) => V::Text(t.clone()),
                    }));
                    format!("({conds})")
                }
                AttrCond::Between(a, b) => {
                    args.extend([V::Real(*a), V::Real(*b)]);
                    "a.v BETWEEN ? AND ?".to_string()
                }
                AttrCond::Cmp(op, n) => {
                    args.push(V::Real(*n));
                    // numbers sort below text and blobs: `< ''` keeps a lower bound to numbers
                    match op {
                        CmpOp::Gt => "a.v > ? AND a.v < ''",
                        CmpOp::Ge => "a.v >= ? AND a.v < ''",
                        CmpOp::Lt => "a.v < ?",
                        _ => "a.v <= ?",
                    }
                    .to_string()
                }
            };
            format!(
                "EXISTS (SELECT 1 FROM attr_values a WHERE a.rid=e.rid AND a.attr=? AND ({cond} OR a.v=X'01'))"
            )
        }
    }
}

/// Below this many entities of the asked types, the query starts from the type index; above it, it walks entities
/// in id order and probes the type of each (no large candidate list, and paging stops after `limit` matches).
const TYPE_DRIVEN_MAX: i64 = 2000;

/// The WHERE clause over `entities e` narrowing a query, its arguments, and whether it alone decides.
fn plan(conn: &Connection, q: &EntityQuery) -> Result<(String, Vec<rusqlite::types::Value>, bool)> {
    use rusqlite::types::Value as V;
    let parts = plan_parts(q);
    let mut conds: Vec<String> = Vec::new();
    let mut args: Vec<V> = Vec::new();
    let marks = |n: usize| vec!["?"; n].join(",");
    if let Some(ids) = &parts.ids {
        conds.push(format!("e.id IN ({})", marks(ids.len())));
        args.extend(ids.iter().map(|i| V::Text(i.clone())));
    }
    if let Some(list) = &parts.types {
        let marks = marks(list.len());
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
        args.extend(list.iter().map(|s| V::Text(s.clone())));
    }
    if let Some(attrs) = &parts.attrs {
        conds.push(format!(
            "EXISTS (SELECT 1 FROM attr_values a WHERE a.rid=e.rid AND a.attr IN ({}))",
            marks(attrs.len())
        ));
        args.extend(attrs.iter().map(|s| V::Text(s.clone())));
    }
    if let Some(p) = &parts.q {
        conds.push(prefilter_sql(p, &mut args));
    }
    if let Some(([x0, y0, x1, y1], attr)) = parts.geo {
        conds.push(format!(
            "e.rid IN (SELECT gid / {GEO_PER_ENTITY} FROM entity_geo \
             WHERE max_x>=? AND min_x<=? AND max_y>=? AND min_y<=? AND attr=?)"
        ));
        args.extend([
            V::Real(x0),
            V::Real(x1),
            V::Real(y0),
            V::Real(y1),
            V::Text(attr),
        ]);
    }
    if let Some(ds) = &q.datasets {
        // the ids, types or the spatial index narrow far better than the dataset index, which SQLite would
        // otherwise often pick for the IN list: `+` keeps the dataset test a filter on what they find
        let col = if conds.is_empty() {
            "e.dataset"
        } else {
            "+e.dataset"
        };
        conds.push(dataset_sql(col, ds, &mut args));
    }
    let where_ = if conds.is_empty() {
        "1".to_string()
    } else {
        conds.join(" AND ")
    };
    Ok((where_, args, parts.exact))
}

/// The condition that `col` is one of `datasets` (NULL being the default dataset), with its arguments.
fn dataset_sql(col: &str, datasets: &[String], args: &mut Vec<rusqlite::types::Value>) -> String {
    let f = DatasetFilter::new(datasets);
    let mut parts = Vec::new();
    if !f.ids.is_empty() {
        parts.push(format!("{col} IN ({})", vec!["?"; f.ids.len()].join(",")));
        args.extend(f.ids.into_iter().map(rusqlite::types::Value::Text));
    }
    if f.or_null {
        parts.push(format!("{col} IS NULL"));
    }
    if parts.is_empty() {
        "0".to_string()
    } else {
        format!("({})", parts.join(" OR "))
    }
}

/// For the listings of types, attributes and extents: a join of `entities e` on `rid_col` and the condition on
/// its dataset, or nothing when all datasets are visible.
fn dataset_join(
    rid_col: &str,
    datasets: Option<&[String]>,
    args: &mut Vec<rusqlite::types::Value>,
) -> (String, String) {
    match datasets {
        None => (String::new(), "1".to_string()),
        Some(ds) => (
            format!("JOIN entities e ON e.rid = {rid_col}"),
            dataset_sql("e.dataset", ds, args),
        ),
    }
}

fn run_query(conn: &Connection, q: &EntityQuery) -> Result<QueryPage> {
    if let Some(page) = nothing_visible(q) {
        return Ok(page);
    }
    let (sql, args, exact) = plan(conn, q)?;
    if exact {
        let mut page = QueryPage::default();
        if q.count {
            let n: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM entities e WHERE {sql}"),
                    rusqlite::params_from_iter(args.iter()),
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            page.count = Some(n as u64);
        }
        if q.limit == 0 {
            return Ok(page);
        }
        let mut args = args.clone();
        args.push(rusqlite::types::Value::Integer(q.limit as i64));
        args.push(rusqlite::types::Value::Integer(q.offset as i64));
        let mut stmt = conn
            .prepare(&format!(
                "SELECT e.doc FROM entities e WHERE {sql} ORDER BY e.id LIMIT ? OFFSET ?"
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
            "SELECT e.rid FROM entities e WHERE {sql} ORDER BY e.id"
        ))
        .map_err(db_err)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args.iter()))
        .map_err(db_err)?;
    let mut fetch = conn
        .prepare_cached("SELECT doc FROM entities WHERE rid=?1")
        .map_err(db_err)?;
    let mut pager = Pager::new(q);
    while let Some(row) = rows.next().map_err(db_err)? {
        let rid: i64 = row.get(0).map_err(db_err)?;
        let doc: String = fetch.query_row([rid], |r| r.get(0)).map_err(db_err)?;
        if !pager.offer(from_json(&doc)?) {
            break;
        }
    }
    Ok(pager.finish())
}
// ---------------------------------------------------------------------------------------------------------------
// temporal

fn temporal_entities_for(conn: &Connection, q: &TemporalQuery) -> Result<Vec<TemporalHead>> {
    // candidates: temporal entities, filtered by ids / types / pattern / scope; q and geo act on the current state
    let eq = &q.entities;
    let mut out = Vec::new();
    let mut conds = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(ids) = &eq.ids {
        conds.push(format!("id IN ({})", vec!["?"; ids.len()].join(",")));
        args.extend(ids.iter().map(|i| rusqlite::types::Value::Text(i.clone())));
    }
    if let Some(ds) = &eq.datasets {
        conds.push(dataset_sql("dataset", ds, &mut args));
    }
    let mut sql = "SELECT id, types, scopes FROM temporal_entities".to_string();
    if !conds.is_empty() {
        sql.push_str(&format!(" WHERE {}", conds.join(" AND ")));
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
    for row in rows {
        let (id, types, scopes) = row.map_err(db_err)?;
        let Some(head) = temporal_head(eq, id, &types, &scopes)? else {
            continue;
        };
        if needs_current(eq) && !current_matches(eq, load_entity(conn, &head.0)?.as_ref()) {
            continue;
        }
        out.push(head);
    }
    Ok(out)
}

/// The attributes of a temporal entity a query asks for (all with history when it names none).
fn temporal_attrs(conn: &Connection, q: &TemporalQuery, id: &str) -> Result<Vec<String>> {
    if let Some(a) = &q.attrs {
        return Ok(a.clone());
    }
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT attr FROM temporal WHERE entity=?1")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([id], |r| r.get::<_, String>(0))
        .map_err(db_err)?;
    rows.collect::<std::result::Result<_, _>>().map_err(db_err)
}

fn run_temporal_query(conn: &Connection, q: &TemporalQuery) -> Result<Vec<TemporalEntity>> {
    let col = time_column(q);
    let (lo, hi) = time_window(q);
    let (per_attr, newest_first) = per_attr(q);
    let order = if newest_first { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT iid, doc FROM temporal WHERE entity=?1 AND attr=?2 AND {col} >= ?3 AND {col} < ?4
         ORDER BY {col} {order}, iid {order} LIMIT {per_attr}"
    );
    let mut page = TemporalPage::new(q, temporal_entities_for(conn, q)?);
    while let Some(id) = page.next() {
        for attr in temporal_attrs(conn, q, &id)? {
            let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
            let rows = stmt
                .query_map(params![id, attr, lo, hi], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(db_err)?;
            let mut instances = Vec::new();
            for r in rows {
                let (iid, doc) = r.map_err(db_err)?;
                instances.push(instance_from_row(iid, &doc)?);
            }
            page.add(attr, instances);
        }
    }
    Ok(page.finish())
}

// ---------------------------------------------------------------------------------------------------------------

fn row_context(r: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    r.get(0)
}

/// Every row of a query without arguments.
fn rows<T: FromRow>(c: &Connection, sql: &str) -> Result<Vec<T>> {
    rows_with(c, sql, &[])
}

/// Every row of a query.
fn rows_with<T: FromRow>(
    c: &Connection,
    sql: &str,
    args: &[rusqlite::types::Value],
) -> Result<Vec<T>> {
    let mut stmt = c.prepare(sql).map_err(db_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), T::from_row)
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err)
}

trait FromRow: Sized {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

impl FromRow for (String,) {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((r.get(0)?,))
    }
}

impl FromRow for (String, i64) {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((r.get(0)?, r.get(1)?))
    }
}

impl FromRow for (String, String, String) {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, id: &str, change: EntityChange) -> Result<WriteResult> {
        let id = id.to_string();
        let d = self
            .write_job(true, move |conn, state| {
                apply_change(conn, state, &id, change)
            })
            .await?;
        Ok(d.result)
    }

    async fn write_stream(&self, rx: mpsc::Receiver<StreamMsg>) -> Result<StreamSummary> {
        self.submit(true, true, move |conn, state| {
            let mut summary = StreamSummary::default();
            loop {
                match rx.recv() {
                    Ok(StreamMsg::Change(id, change)) => {
                        apply_change(conn, state, &id, change)
                            .map_err(|e| stream_error(&id, e))?
                            .count(&mut summary);
                    }
                    Ok(StreamMsg::Commit) => return Ok(summary),
                    Ok(StreamMsg::Abort(e)) => return Err(e),
                    Err(_) => return Err(stream_unfinished()),
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
                    Ok(d) => out.push(Ok(d.result)),
                    Err(e) if fails_batch(&e) => return Err(e),
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

    async fn types(&self, datasets: Option<&[String]>) -> Result<Vec<TypeInfo>> {
        let mut args = Vec::new();
        let (join, cond) = dataset_join("t.rid", datasets, &mut args);
        self.read(move |c| {
            Ok(type_infos(
                rows_with(
                    c,
                    &format!("SELECT t.type, count(*) FROM entity_types t {join} WHERE {cond} GROUP BY t.type"),
                    &args,
                )?,
                rows_with(
                    c,
                    &format!(
                        "SELECT DISTINCT t.type, a.attr, a.kind FROM entity_types t JOIN attr_values a ON a.rid = t.rid
                         {join} WHERE {cond}"
                    ),
                    &args,
                )?,
            ))
        })
        .await
    }

    async fn attributes(&self, datasets: Option<&[String]>) -> Result<Vec<AttributeInfo>> {
        let mut args = Vec::new();
        let (join, cond) = dataset_join("a.rid", datasets, &mut args);
        self.read(move |c| {
            Ok(attribute_infos(
                rows_with(
                    c,
                    &format!(
                        "SELECT a.attr, count(DISTINCT a.rid) FROM attr_values a {join} WHERE {cond} GROUP BY a.attr"
                    ),
                    &args,
                )?,
                rows_with(
                    c,
                    &format!(
                        "SELECT DISTINCT a.attr, a.kind, t.type FROM attr_values a JOIN entity_types t ON a.rid = t.rid
                         {join} WHERE {cond}"
                    ),
                    &args,
                )?,
            ))
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
            let (types, scopes) = appended_head(&id, existing, types, scopes)?;
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
        let id = id.to_string();
        let cut = history_cut(attr, dataset_id, instance_id);
        self.write_job(false, move |conn, _| {
            let exists: bool = conn
                .query_row("SELECT 1 FROM temporal_entities WHERE id=?1", [&id], |_| {
                    Ok(true)
                })
                .optional()
                .map_err(db_err)?
                .unwrap_or(false);
            if !exists {
                return Err(no_temporal_entity(&id));
            }
            let n = match &cut {
                HistoryCut::Entity => {
                    conn.execute("DELETE FROM temporal WHERE entity=?1", [&id])
                        .map_err(db_err)?;
                    conn.execute("DELETE FROM temporal_aggregates WHERE entity=?1", [&id])
                        .map_err(db_err)?;
                    conn.execute("DELETE FROM temporal_entities WHERE id=?1", [&id])
                }
                HistoryCut::Instance(a, iid) => conn.execute(
                    "DELETE FROM temporal WHERE entity=?1 AND attr=?2 AND iid=?3",
                    params![id, a, iid],
                ),
                HistoryCut::Attribute(a, ds) => conn
                    .execute(
                        "DELETE FROM temporal WHERE entity=?1 AND attr=?2 AND (?3 IS NULL OR dataset_id=?3)",
                        params![id, a, ds],
                    )
                    .and_then(|n| {
                        Ok(n + conn.execute(
                            "DELETE FROM temporal_aggregates WHERE entity=?1 AND attr=?2 AND (?3 IS NULL OR dataset=?3)",
                            params![id, a, ds],
                        )?)
                    }),
                HistoryCut::Nothing => Ok(0),
            }
            .map_err(db_err)?;
            history_deleted(&id, n as u64)
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
                return Err(no_instance(&id, &attr, &inst));
            };
            let new = modified_instance(&doc, value)?;
            conn.execute(
                "UPDATE temporal SET doc=?1, num=?2, ts=?3, sys_ms=?4 WHERE iid=?5",
                params![new.doc, new.num, new.ts, new.sys, iid],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn put_context(&self, c: StoredContext) -> Result<()> {
        let r = self
            .write_job(false, move |conn, _| {
                conn.execute(
                    "INSERT INTO contexts(id, url, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET url=excluded.url, doc=excluded.doc",
                    params![c.id, c.url, to_json(&c)?],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        context_url_taken(&c.url)
                    }
                    e => db_err(e),
                })?;
                Ok(())
            })
            .await;
        self.config_changed(r)
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
        let r = self
            .write_job(false, move |conn, _| {
                Ok(conn
                    .execute("DELETE FROM contexts WHERE id=?1 OR url=?1", [&id])
                    .map_err(db_err)?
                    > 0)
            })
            .await;
        self.config_changed(r)
    }

    async fn put_dataset(&self, d: Dataset) -> Result<()> {
        let r = self.write_job(false, move |conn, _| {
            conn.execute(
                "INSERT INTO datasets(id, doc) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET doc=excluded.doc",
                params![d.id, to_json(&d)?],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await;
        self.config_changed(r)
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
            check_create("subscription", &s.id, create, exists)?;
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
            check_create("scenario", &sc.id, create, exists)?;
            match (create, exists) {
                (true, _) => conn
                    .execute(
                        "INSERT INTO scenarios(id, doc, created_ms, modified_ms, owner) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![sc.id, to_json(&sc.document)?, ms(sc.created_at), ms(sc.modified_at), sc.owner],
                    )
                    .map(|_| ())
                    .map_err(db_err),
                (false, _) => conn
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
                "SELECT id, doc, created_ms, modified_ms, owner FROM scenarios WHERE id=?1",
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
                .prepare("SELECT id, doc, created_ms, modified_ms, owner FROM scenarios ORDER BY created_ms, id")
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
        check_progress(&run)?;
        let queued = create && run.status == RunStatus::Queued;
        let r = self.put_run_row(run, links, create).await;
        if queued && r.is_ok() {
            self.jobs_signal.notify_one();
        }
        r
    }

    async fn get_run(&self, id: &str) -> Result<Option<StoredRun>> {
        self.run_by_id(id).await
    }

    async fn claim_run(
        &self,
        node: &str,
        lease: std::time::Duration,
    ) -> Result<Option<ClaimedRun>> {
        let node = node.to_string();
        self.write_job(false, move |conn, _| {
            let id: Option<String> = conn
                .query_row(
                    "SELECT id FROM scenario_runs WHERE status='queued' AND cancel_requested=0
                     ORDER BY created_ms, id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            let Some(id) = id else {
                return Ok(None);
            };
            conn.execute(
                "UPDATE scenario_runs SET status='running', node=?1, lease_until_ms=?2, attempts=attempts+1,
                 started_ms=?3, progress=0 WHERE id=?4",
                params![node, lease_until(lease), ms(Utc::now()), id],
            )
            .map_err(db_err)?;
            let (row, attempts): (RunRow, i64) = conn
                .query_row(
                    &format!("SELECT {RUN_COLUMNS}, attempts FROM scenario_runs WHERE id=?1"),
                    [&id],
                    |r| Ok((run_row(r)?, r.get(10)?)),
                )
                .map_err(db_err)?;
            Ok(Some(ClaimedRun {
                run: row.into_run()?,
                attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
            }))
        })
        .await
    }

    async fn renew_run_lease(
        &self,
        id: &str,
        node: &str,
        lease: std::time::Duration,
        progress: f64,
    ) -> Result<RunLease> {
        let (id, node) = (id.to_string(), node.to_string());
        let progress = check_fraction(&id, progress)?;
        self.write_job(false, move |conn, _| {
            let n = conn
                .execute(
                    "UPDATE scenario_runs SET lease_until_ms=?1, progress=?2
                     WHERE id=?3 AND status='running' AND node=?4",
                    params![lease_until(lease), progress, id, node],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Ok(RunLease::Lost);
            }
            let cancel: bool = conn
                .query_row(
                    "SELECT cancel_requested FROM scenario_runs WHERE id=?1",
                    [&id],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(RunLease::Held {
                cancel_requested: cancel,
            })
        })
        .await
    }

    async fn finish_run(&self, node: &str, run: StoredRun, links: Option<Value>) -> Result<()> {
        check_finish(&run)?;
        let node = node.to_string();
        self.write_job(false, move |conn, _| {
            let current: Option<(String, String, Option<String>)> = conn
                .query_row(
                    "SELECT scenario, status, node FROM scenario_runs WHERE id=?1",
                    [&run.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db_err)?;
            check_holder(&run, &node, current)?;
            let links = links.map(|l| to_json(&l)).transpose()?;
            conn.execute(
                "UPDATE scenario_runs SET status=?1, progress=?2, message=?3, finished_ms=?4, summary=?5,
                 links=coalesce(?6, links), lease_until_ms=NULL WHERE id=?7",
                params![
                    run.status.as_str(),
                    run.progress,
                    run.message,
                    run.finished_at.map(ms),
                    to_json(&run.summary)?,
                    links,
                    run.id
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn request_run_cancel(&self, id: &str) -> Result<Option<StoredRun>> {
        let id = id.to_string();
        let found = self
            .write_job(false, move |conn, _| {
                let status: Option<String> = conn
                    .query_row(
                        "SELECT status FROM scenario_runs WHERE id=?1",
                        [&id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db_err)?;
                match status.as_deref().and_then(RunStatus::parse) {
                    None => return Ok(None),
                    Some(RunStatus::Queued) => conn
                        .execute(
                            "UPDATE scenario_runs SET status='cancelled', message=?1, finished_ms=?2,
                             cancel_requested=1 WHERE id=?3",
                            params![CANCELLED, ms(Utc::now()), id],
                        )
                        .map_err(db_err)?,
                    Some(RunStatus::Running) => conn
                        .execute(
                            "UPDATE scenario_runs SET cancel_requested=1 WHERE id=?1",
                            [&id],
                        )
                        .map_err(db_err)?,
                    Some(_) => 0,
                };
                Ok(Some(id))
            })
            .await?;
        match found {
            Some(id) => self.run_by_id(&id).await,
            None => Ok(None),
        }
    }

    async fn requeue_expired_runs(&self, max_attempts: u32) -> Result<Requeued> {
        let r = self
            .write_job(false, move |conn, _| {
                let mut stmt = conn
                    .prepare(
                        "SELECT id, attempts, cancel_requested, node FROM scenario_runs
                         WHERE status='running' AND (lease_until_ms IS NULL OR lease_until_ms < ?1)",
                    )
                    .map_err(db_err)?;
                let expired: Vec<(String, i64, bool, Option<String>)> = stmt
                    .query_map([ms(Utc::now())], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .map_err(db_err)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(db_err)?;
                let mut out = Requeued::default();
                for (id, attempts, cancel, node) in expired {
                    let (status, message) =
                        expired_outcome(attempts, max_attempts, cancel, node.as_deref());
                    let finished = status.is_final().then(|| ms(Utc::now()));
                    conn.execute(
                        "UPDATE scenario_runs SET status=?1, message=?2, finished_ms=?3, lease_until_ms=NULL,
                         progress=CASE WHEN ?1='queued' THEN 0 ELSE progress END,
                         node=CASE WHEN ?1='queued' THEN NULL ELSE node END WHERE id=?4",
                        params![status.as_str(), message, finished, id],
                    )
                    .map_err(db_err)?;
                    match status {
                        RunStatus::Queued => out.requeued.push(id),
                        RunStatus::Cancelled => out.cancelled.push(id),
                        _ => out.failed.push(id),
                    }
                }
                Ok(out)
            })
            .await?;
        if !r.requeued.is_empty() {
            self.jobs_signal.notify_one();
        }
        Ok(r)
    }

    fn job_signal(&self) -> Arc<Notify> {
        self.jobs_signal.clone()
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
            rows.map(|r| r.map_err(db_err)?.into_run()).collect()
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

    async fn put_retention_policy(&self, p: RetentionPolicy) -> Result<bool> {
        p.plan()?;
        let doc = to_json(&p)?;
        self.write_job(false, move |conn, _| {
            let existed = conn
                .query_row(
                    "SELECT 1 FROM retention_policies WHERE id=?1",
                    [&p.id],
                    |_| Ok(()),
                )
                .optional()
                .map_err(db_err)?
                .is_some();
            conn.execute(
                "INSERT INTO retention_policies(id, doc) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET doc=excluded.doc",
                params![p.id, doc],
            )
            .map_err(db_err)?;
            Ok(!existed)
        })
        .await
    }

    async fn get_retention_policy(&self, id: &str) -> Result<Option<RetentionPolicy>> {
        let id = id.to_string();
        self.read(move |conn| {
            let doc: Option<String> = conn
                .query_row(
                    "SELECT doc FROM retention_policies WHERE id=?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            doc.map(|d| from_json(&d)).transpose()
        })
        .await
    }

    async fn list_retention_policies(&self) -> Result<Vec<RetentionPolicy>> {
        self.read(|conn| {
            rows::<(String,)>(conn, "SELECT doc FROM retention_policies ORDER BY id")?
                .into_iter()
                .map(|(d,)| from_json(&d))
                .collect()
        })
        .await
    }

    async fn delete_retention_policy(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write_job(false, move |conn, _| {
            let n = conn
                .execute("DELETE FROM retention_policies WHERE id=?1", [&id])
                .map_err(db_err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn apply_retention(&self, now: DateTime<Utc>, chunk: usize) -> Result<RetentionReport> {
        retention::run(self, now, chunk).await
    }

    async fn retention_status(&self) -> Result<Option<RetentionReport>> {
        self.read(|conn| {
            let doc: Option<String> = conn
                .query_row("SELECT doc FROM retention_status WHERE id=1", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err)?;
            doc.map(|d| from_json(&d)).transpose()
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
            Ok(map_changes_page(head, after_seq, limit, changes))
        })
        .await
    }

    async fn type_extent(
        &self,
        type_name: &str,
        datasets: Option<&[String]>,
    ) -> Result<Option<[f64; 4]>> {
        use rusqlite::types::Value as V;
        let mut args = vec![
            V::Text(type_name.to_string()),
            V::Integer(GEO_PER_ENTITY as i64),
        ];
        let (join, cond) = dataset_join("t.rid", datasets, &mut args);
        self.read(move |c| {
            let row: (Option<f64>, Option<f64>, Option<f64>, Option<f64>) = c
                .query_row(
                    // one pass over the R-tree's rows (gid ranges per entity would each scan it)
                    &format!(
                        "SELECT min(min_x), min(min_y), max(max_x), max(max_y) FROM entity_geo
                         WHERE gid / ?2 IN (SELECT t.rid FROM entity_types t {join} WHERE t.type = ?1 AND {cond})"
                    ),
                    rusqlite::params_from_iter(args.iter()),
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

    async fn dataset_times(&self, dataset: &str) -> Result<crate::DatasetTimes> {
        let dataset = dataset.to_string();
        self.read(move |c| {
            let mut args = Vec::new();
            let cond = dataset_sql("dataset", std::slice::from_ref(&dataset), &mut args);
            let modified: Option<i64> = c
                .query_row(
                    &format!("SELECT max(modified_ms) FROM entities WHERE {cond}"),
                    rusqlite::params_from_iter(args.iter()),
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            // each history's first and last time come from the (entity, attr, ts) index
            let span: (Option<i64>, Option<i64>) = c
                .query_row(
                    &format!(
                        "SELECT min(ts), max(ts) FROM temporal
                         WHERE entity IN (SELECT id FROM temporal_entities WHERE {cond})"
                    ),
                    rusqlite::params_from_iter(args.iter()),
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db_err)?;
            Ok(crate::DatasetTimes {
                modified: modified.map(from_ms),
                observed: match span {
                    (Some(a), Some(b)) => Some((from_ms(a), from_ms(b))),
                    _ => None,
                },
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

    async fn is_notifier(&self) -> Result<bool> {
        Ok(true)
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
                change_from_row(seq, &doc)
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
                delivery_from_row(id, sub, &payload, attempts, next)
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
                record_delivery(&mut st, at, &error);
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

    // --- trust (see the `trust` module) ---
    async fn put_account(&self, a: Account, create: bool) -> Result<()> {
        let r = self.trust_put_account(a, create).await;
        self.config_changed(r)
    }

    async fn get_account(&self, id: &str) -> Result<Option<Account>> {
        self.trust_get_account(id).await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.trust_list_accounts().await
    }

    async fn delete_account(&self, id: &str) -> Result<bool> {
        let r = self.trust_delete_account(id).await;
        self.config_changed(r)
    }

    async fn count_accounts(&self) -> Result<u64> {
        self.trust_count_accounts().await
    }

    async fn put_api_key(&self, k: ApiKeyRecord) -> Result<()> {
        self.trust_put_api_key(k).await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        self.trust_get_api_key(id).await
    }

    async fn list_api_keys(&self, account_id: Option<&str>) -> Result<Vec<ApiKeyRecord>> {
        self.trust_list_api_keys(account_id).await
    }

    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let r = self.trust_revoke_api_key(id, at).await;
        self.config_changed(r)
    }

    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.trust_touch_api_key(id, at).await
    }

    async fn put_session(&self, s: SessionRecord) -> Result<()> {
        self.trust_put_session(s).await
    }

    async fn get_session(&self, hash: &str) -> Result<Option<SessionRecord>> {
        self.trust_get_session(hash).await
    }

    async fn delete_session(&self, hash: &str) -> Result<bool> {
        self.trust_delete_session(hash).await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.trust_delete_expired_sessions(now).await
    }

    async fn record_usage(&self, records: Vec<UsageRecord>) -> Result<()> {
        self.trust_record_usage(records).await
    }

    async fn usage(&self, q: &UsageQuery) -> Result<(u64, Vec<UsageRecord>)> {
        self.trust_usage(q).await
    }

    async fn usage_summary(
        &self,
        datasets: &[String],
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageSummaryRow>> {
        self.trust_usage_summary(datasets, since).await
    }

    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: Value,
    ) -> Result<AuditRecord> {
        self.trust_append_audit(actor, action, target, detail).await
    }

    async fn audit(&self, after_seq: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>> {
        self.trust_audit(after_seq, limit).await
    }

    async fn verify_audit(&self) -> Result<AuditVerification> {
        self.trust_verify_audit().await
    }

    async fn participation_write(
        &self,
        ops: Vec<PartOp>,
    ) -> Result<std::result::Result<Vec<PartOutcome>, PartError>> {
        self.part_write(ops).await
    }

    async fn participation_get(&self, kind: &str, id: &str) -> Result<Option<ParticipationRecord>> {
        self.part_get(kind, id).await
    }

    async fn participation_list(
        &self,
        q: &PartQuery,
        count: bool,
    ) -> Result<(Vec<ParticipationRecord>, Option<u64>)> {
        self.part_list(q, count).await
    }

    async fn participation_marks(&self, q: &MarkQuery) -> Result<Vec<ParticipationMark>> {
        self.part_marks(q).await
    }

    async fn participation_tally(
        &self,
        kind: &str,
        targets: Option<&[String]>,
        scope: Option<&str>,
        by_value: bool,
    ) -> Result<Vec<Tally>> {
        self.part_tally(kind, targets, scope, by_value).await
    }

    async fn participation_authors(
        &self,
        consultation: &str,
        record_kinds: &[&str],
        mark_kinds: &[&str],
    ) -> Result<u64> {
        self.part_authors(consultation, record_kinds, mark_kinds)
            .await
    }

    fn config_epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
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
                check_type_rows(&e, n)?;
            }
            Ok(())
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------------------------
// scenarios and runs

type ScenarioRow = (String, String, i64, i64, Option<String>);

fn scenario_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScenarioRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
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

// ---------------------------------------------------------------------------------------------------------------
// temporal aggregation

fn run_aggregate(
    conn: &Connection,
    q: &TemporalQuery,
    a: &Aggregation,
) -> Result<Vec<AggregatedEntity>> {
    let col = time_column(q);
    let (lo, hi) = time_window(q);
    let span_sql = format!(
        "SELECT min({col}), max({col}) FROM temporal WHERE entity=?1 AND attr=?2 AND {col} >= ?3 AND {col} < ?4"
    );
    let rows_sql = format!(
        "SELECT {col}, num, CASE WHEN ?5 AND num IS NULL THEN doc END FROM temporal
         WHERE entity=?1 AND attr=?2 AND {col} >= ?3 AND {col} < ?4 ORDER BY {col}"
    );
    let with_stored = col == "ts";
    let mut page = AggregatePage::new(q, a, temporal_entities_for(conn, q)?);
    while let Some(id) = page.next() {
        let attrs = match (&q.attrs, with_stored) {
            (None, true) => {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT attr FROM temporal WHERE entity=?1
                         UNION SELECT attr FROM temporal_aggregates WHERE entity=?1",
                    )
                    .map_err(db_err)?;
                let names = stmt.query_map([&id], |r| r.get(0)).map_err(db_err)?;
                names
                    .collect::<rusqlite::Result<Vec<String>>>()
                    .map_err(db_err)?
            }
            _ => temporal_attrs(conn, q, &id)?,
        };
        for attr in attrs {
            let span = conn
                .query_row(&span_sql, params![id, attr, lo, hi], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(db_err)?;
            let stored = if with_stored {
                stored_buckets(conn, &id, &attr, lo, hi)?
            } else {
                Vec::new()
            };
            let Some(mut buckets) = page.buckets_with(span, &stored)? else {
                continue;
            };
            let mut stmt = conn.prepare_cached(&rows_sql).map_err(db_err)?;
            let mut rows = stmt
                .query(params![id, attr, lo, hi, buckets.want_distinct])
                .map_err(db_err)?;
            while let Some(r) = rows.next().map_err(db_err)? {
                let doc: Option<String> = r.get(2).map_err(db_err)?;
                let (t, num) = (r.get(0).map_err(db_err)?, r.get(1).map_err(db_err)?);
                if !buckets.add(t, num, doc.as_deref()) {
                    break;
                }
            }
            page.add(attr, buckets);
        }
    }
    Ok(page.finish())
}

/// The downsampled buckets of an attribute that overlap `[lo, hi)`, with their level.
fn stored_buckets(
    conn: &Connection,
    id: &str,
    attr: &str,
    lo: i64,
    hi: i64,
) -> Result<Vec<(String, retention::Bucket)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT period, start_ms, end_ms, count, sum, sumsq, vmin, vmax FROM temporal_aggregates
             WHERE entity=?1 AND attr=?2 AND end_ms > ?3 AND start_ms < ?4",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![id, attr, lo, hi], |r| {
            Ok((r.get(0)?, bucket_row(r, 1)?))
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err)
}

/// A bucket from its columns `start_ms, end_ms, count, sum, sumsq, vmin, vmax` from column `i` on.
fn bucket_row(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<retention::Bucket> {
    Ok(retention::Bucket {
        start: r.get(i)?,
        end: r.get(i + 1)?,
        agg: retention::Agg {
            count: r.get(i + 2)?,
            sum: r.get(i + 3)?,
            sumsq: r.get(i + 4)?,
            min: r.get(i + 5)?,
            max: r.get(i + 6)?,
        },
    })
}

// ---------------------------------------------------------------------------------------------------------------
// retention

const MERGE_BUCKET: &str = "INSERT INTO temporal_aggregates(entity, attr, dataset, period, start_ms, end_ms, count,
    sum, sumsq, vmin, vmax) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)
    ON CONFLICT(entity, attr, dataset, period, start_ms) DO UPDATE SET count = count + excluded.count,
    sum = sum + excluded.sum, sumsq = sumsq + excluded.sumsq, vmin = min(vmin, excluded.vmin),
    vmax = max(vmax, excluded.vmax)";

/// Merges buckets of a series' level into the stored ones.
fn merge_buckets(
    conn: &Connection,
    s: &retention::Series,
    p: &retention::Period,
    buckets: &[retention::Bucket],
) -> Result<()> {
    let mut stmt = conn.prepare_cached(MERGE_BUCKET).map_err(db_err)?;
    let period = p.name();
    for b in buckets {
        stmt.execute(params![
            s.entity,
            s.attr,
            s.dataset_key(),
            period,
            b.start,
            b.end,
            b.agg.count,
            b.agg.sum,
            b.agg.sumsq,
            b.agg.min,
            b.agg.max
        ])
        .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl retention::RetentionOps for SqliteStore {
    async fn retention_policies(&self) -> Result<Vec<RetentionPolicy>> {
        self.list_retention_policies().await
    }

    async fn retention_series(&self) -> Result<Vec<(retention::Series, Option<i64>)>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT s.entity, s.attr, s.dataset, min(s.oldest), e.types FROM (
                        SELECT entity, attr, coalesce(dataset_id, '') AS dataset, min(ts) AS oldest
                          FROM temporal GROUP BY entity, attr, dataset_id
                        UNION ALL
                        SELECT DISTINCT entity, attr, dataset, NULL FROM temporal_aggregates
                     ) s LEFT JOIN temporal_entities e ON e.id = s.entity
                     GROUP BY s.entity, s.attr, s.dataset ORDER BY s.entity, s.attr, s.dataset",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (entity, attr, dataset, oldest, types) = row.map_err(db_err)?;
                let types: Vec<String> = match types {
                    Some(t) => from_json(&t)?,
                    None => Vec::new(),
                };
                let dataset_id = (!dataset.is_empty()).then_some(dataset);
                out.push((
                    retention::Series {
                        entity,
                        types,
                        attr,
                        dataset_id,
                    },
                    oldest,
                ));
            }
            Ok(out)
        })
        .await
    }

    async fn downsample_raw(
        &self,
        s: &retention::Series,
        cut: i64,
        into: Option<retention::Period>,
        limit: usize,
    ) -> Result<retention::ChunkOutcome> {
        let s = s.clone();
        let limit = limit.min(i64::MAX as usize) as i64;
        self.submit(true, false, move |conn, _| {
            let mut stmt = conn
                .prepare_cached(
                    "DELETE FROM temporal WHERE iid IN (SELECT iid FROM temporal
                       WHERE entity=?1 AND attr=?2 AND dataset_id IS ?3 AND ts < ?4 ORDER BY ts LIMIT ?5)
                     RETURNING ts, num",
                )
                .map_err(db_err)?;
            let taken = stmt
                .query_map(params![s.entity, s.attr, s.dataset_id, cut, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<f64>>(1)?))
                })
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            let out = retention::ChunkOutcome::of_raw(&taken, into.is_some());
            if let Some(p) = into {
                merge_buckets(conn, &s, &p, &retention::fold_values(taken, &p))?;
            }
            Ok(out)
        })
        .await
    }

    async fn downsample_buckets(
        &self,
        s: &retention::Series,
        from: retention::Period,
        cut: i64,
        into: Option<retention::Period>,
        limit: usize,
    ) -> Result<retention::ChunkOutcome> {
        let s = s.clone();
        let limit = limit.min(i64::MAX as usize) as i64;
        self.submit(true, false, move |conn, _| {
            let mut stmt = conn
                .prepare_cached(
                    "DELETE FROM temporal_aggregates WHERE entity=?1 AND attr=?2 AND dataset=?3 AND period=?4
                       AND start_ms IN (SELECT start_ms FROM temporal_aggregates WHERE entity=?1 AND attr=?2
                         AND dataset=?3 AND period=?4 AND end_ms <= ?5 ORDER BY start_ms LIMIT ?6)
                     RETURNING start_ms, end_ms, count, sum, sumsq, vmin, vmax",
                )
                .map_err(db_err)?;
            let taken = stmt
                .query_map(
                    params![s.entity, s.attr, s.dataset_key(), from.name(), cut, limit],
                    |r| bucket_row(r, 0),
                )
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            let n = taken.len() as u64;
            if let Some(p) = into {
                merge_buckets(conn, &s, &p, &retention::fold_buckets(taken, &p))?;
            }
            Ok(retention::ChunkOutcome {
                taken: n,
                folded: if into.is_some() { n } else { 0 },
            })
        })
        .await
    }

    async fn save_retention_report(&self, r: &RetentionReport) -> Result<()> {
        let doc = to_json(r)?;
        self.write_job(false, move |conn, _| {
            conn.execute(
                "INSERT INTO retention_status(id, doc) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET doc=excluded.doc",
                [doc],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}
