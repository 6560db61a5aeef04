//! The PostgreSQL backend: the store of a twin served by several API nodes at once, all on one database.
//! It keeps the same tables as the SQLite backend and decides every change with the same shared code (`common`).
//!
//! # Design
//!
//! - **Schema.** Versioned migrations (`migrations/postgres/NNNN_name.sql`, embedded) run at start-up in one
//!   transaction under `pg_advisory_xact_lock(MIGRATION_LOCK)`, so nodes starting together do not race; each is
//!   recorded in `schema_migrations(version, name, applied_at)`. A database of a newer version is refused.
//!   Entities are stored whole (JSON text, ids in the "C" collation so that they sort as in SQLite) next to the
//!   indexes the planner narrows by: entity types, attribute values for `q`, and GeoProperty bounding boxes in
//!   PostgreSQL's built-in `box` type under a GiST index (PostGIS is not required; a `geometry` column can be added
//!   to `entity_geo` later, keyed the same way, for exact spatial predicates in SQL).
//! - **Read, decide, write.** `write`, `write_batch` and `write_stream` lock the entities they change for the rest
//!   of their transaction, then read the current state, run the change closures (shared `common::decide`) and
//!   write. The lock of an entity is its row in `entity_locks`, taken by one upsert in id order
//!   (`INSERT .. ON CONFLICT (id) DO UPDATE`), so it works for entities that do not exist yet, batches of
//!   overlapping entities queue instead of deadlocking, and thousands of entities per batch take no room in
//!   PostgreSQL's shared lock table (as one advisory lock per entity would: 64 x max_connections slots by
//!   default). Every writer of an entity takes its lock, so two nodes never lose an update. A batch costs a few
//!   round trips whatever its size: the locks and the current state in one (pipelined: the server reads once the
//!   locks are held), every write as a multi-row `unnest` statement in another, and the commit. Unlike SQLite's single writer, a `write_stream` does not hold other
//!   writers back: it holds the locks of the entities it has written until it commits (so it stays all or nothing
//!   and nobody sees half of it), and writers of other entities go on. A stream that locks entities chunk by chunk
//!   may deadlock with a concurrent batch on the same entities; PostgreSQL then aborts one of them, whose caller gets
//!   a storage error and nothing of it is written.
//! - **Journal order.** The change journal (`changes`) and `map_changes` are read by cursor (`seq > after`), so seq
//!   order must be commit order. Their seqs come from gapless counters (`counters` rows) updated at the very end of
//!   the transaction: the row lock of the counter is the journal lock, held until commit, so a lower seq never
//!   commits after a higher one is visible, and a rollback gives its numbers back.
//! - **Notifications exactly once.** Only the node holding the session-level advisory lock `NOTIFIER_LOCK` on a
//!   dedicated connection it keeps turns the journal into deliveries: `changes_since` on any other node answers
//!   nothing (the lock goes with the connection when a node dies, and the next caller of `changes_since` takes it
//!   over, reading from whatever the dead node had not forgotten yet).
//!   `enqueue_deliveries` checks, in its transaction, that every change it read up to `upto_seq` is still there to
//!   forget, else it fails with `Conflict` (the caller reads again). `due_deliveries` claims what it returns
//!   (`FOR UPDATE SKIP LOCKED`, `claimed_by` this store, `claimed_until`), so two nodes never send the same delivery
//!   at once, while the claiming node sees its claims again as with SQLite; a dead node's claims run out after
//!   [`CLAIM_MS`]. `finish_delivery` removes or reschedules (and releases) it.
//! - **Change signal.** Every transaction that journals changes, map changes or deliveries issues
//!   `NOTIFY urbantwin_changes`; each store keeps a `LISTEN` connection (reconnecting when it drops) that wakes its
//!   [`Store::change_signal`], so the caches of every node learn of changes made on any node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::{future::try_join_all, StreamExt};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls, Row};
use twin_model::query::CmpOp;
use twin_model::{Attribute, Dataset, Entity, ErrorKind, NgsiError};

use crate::common::*;
use crate::*;

mod migrate;
mod participation;
mod read;
mod retention;
mod trust;
mod write;

use migrate::migrate;
pub use migrate::SCHEMA_VERSION;
use write::{InstanceRows, INSERT_INSTANCES, LOCK_ENTITIES};

/// Advisory lock keys (the two-int4 key space, apart from the entity locks' bigint keys).
const LOCK_SPACE: i32 = 0x7574_7769; // "utwi"
const MIGRATION_LOCK: i32 = 1;
const NOTIFIER_LOCK: i32 = 2;
/// The key space of the locks of marks' limits (`participation`): `(PART_LOCK_SPACE, hash of kind, scope, author)`.
const PART_LOCK_SPACE: i32 = 0x7574_7770; // "utwp"

/// The channel of change notifications.
const CHANNEL: &str = "urbantwin_changes";
/// The channel on which contexts and datasets announce changes (a trigger, migration 3).
const CONFIG_CHANNEL: &str = "urbantwin_config";
/// The channel on which a queued (or requeued) run wakes the workers of every node (a trigger, migration 5).
const JOBS_CHANNEL: &str = "urbantwin_jobs";

/// How long a claimed delivery stays with the node that claimed it before another node may retry it.
pub const CLAIM_MS: i64 = 120_000;

/// Pooled connections of a store unless it says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Entity changes a stream applies per round of statements.
const STREAM_CHUNK: usize = 1000;

fn pg_err(e: tokio_postgres::Error) -> NgsiError {
    match e.as_db_error() {
        Some(d) => db_err(format!("{}: {}", d.code().code(), d.message())),
        None => db_err(e),
    }
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

type Param = Box<dyn ToSql + Sync + Send>;

/// Arguments of a statement built at run time.
#[derive(Default)]
struct Params(Vec<Param>);

impl Params {
    /// Adds an argument; returns its placeholder.
    fn add<T: ToSql + Sync + Send + 'static>(&mut self, v: T) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        refs(&self.0)
    }
}

/// Arguments as the client takes them.
fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// The connection that holds the notifier lock (or tries to).
#[derive(Default)]
struct NotifierLock {
    client: Option<tokio_postgres::Client>,
    held: bool,
    /// Seqs the last `changes_since` returned, which `enqueue_deliveries` must find still there.
    read: Vec<i64>,
}

/// The PostgreSQL store. Several may run on one database, in one process or on several nodes.
pub struct PostgresStore {
    /// This store's id, which its delivery claims carry.
    node: String,
    pool: Pool,
    config: tokio_postgres::Config,
    signal: Arc<Notify>,
    /// See [`Store::job_signal`]; woken by the LISTEN connection.
    jobs: Arc<Notify>,
    /// See [`Store::config_epoch`]; raised by the LISTEN connection.
    epoch: Arc<std::sync::atomic::AtomicU64>,
    notifier: tokio::sync::Mutex<NotifierLock>,
    /// The task that keeps the LISTEN connection.
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// A failed insert: `AlreadyExists` when it broke a unique key (the `what` called `id` exists), else a storage error.
fn taken_or_pg_err(e: tokio_postgres::Error, what: &str, id: &str) -> NgsiError {
    if is_unique_violation(&e) {
        NgsiError::exists(format!("{what} {id} already exists"))
    } else {
        pg_err(e)
    }
}

/// Opens a plain connection and drives it on the runtime.
async fn connect_plain(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    let (client, conn) = config.connect(NoTls).await.map_err(pg_err)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Keeps a LISTEN connection and wakes `signal` on every change notification, `jobs` on every queued run, and raises
/// `epoch` on every configuration change, reconnecting when it drops.
async fn listen_loop(
    config: tokio_postgres::Config,
    signal: Arc<Notify>,
    jobs: Arc<Notify>,
    epoch: Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::Ordering;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut conn)) => {
                // the channel each notification came on
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
                    while let Some(m) = messages.next().await {
                        match m {
                            Ok(AsyncMessage::Notification(n)) => {
                                let _ = tx.send(n.channel().to_string());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!(
                        "LISTEN {CHANNEL}; LISTEN {CONFIG_CHANNEL}; LISTEN {JOBS_CHANNEL}"
                    ))
                    .await
                    .is_ok()
                {
                    // whatever happened while not listening is unknown: wake once and drop the caches
                    epoch.fetch_add(1, Ordering::SeqCst);
                    signal.notify_one();
                    jobs.notify_one();
                    while let Some(channel) = rx.recv().await {
                        match channel.as_str() {
                            CONFIG_CHANNEL => {
                                epoch.fetch_add(1, Ordering::SeqCst);
                            }
                            JOBS_CHANNEL => jobs.notify_one(),
                            _ => signal.notify_one(),
                        }
                    }
                }
                driver.abort();
                tracing::warn!("the LISTEN connection to PostgreSQL dropped; reconnecting");
            }
            Err(e) => tracing::warn!("cannot open the LISTEN connection to PostgreSQL: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl PostgresStore {
    /// Raises this node's configuration epoch after a change that succeeded (the others raise theirs when the
    /// database's notification arrives), so a request right after the change is not judged by what was cached.
    fn config_changed<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_ok() {
            self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        r
    }

    /// Connects to the database at `url` (`postgres://user@host:port/db`), runs the migrations it lacks and starts
    /// listening for changes made by other nodes. Up to [`DEFAULT_POOL_SIZE`] pooled connections, plus one that
    /// listens and, on the node that turns the journal into deliveries, one that holds the notifier lock.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        PostgresStore::connect_with_pool_size(url, DEFAULT_POOL_SIZE).await
    }

    /// [`PostgresStore::connect`] with at most `pool_size` pooled connections.
    pub async fn connect_with_pool_size(url: &str, pool_size: usize) -> Result<PostgresStore> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| db_err(format!("bad PostgreSQL URL: {e}")))?;
        // a connection that dies silently (a network drop) is noticed within about a minute, not the system's two
        // hours: the LISTEN connection and the notifier lock's depend on it
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        let mgr = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(pool_size.max(1))
            .build()
            .map_err(db_err)?;
        let mut client = pool.get().await.map_err(db_err)?;
        migrate(&mut client).await?;
        drop(client);
        let signal = Arc::new(Notify::new());
        let epoch = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let jobs = Arc::new(Notify::new());
        let listener = tokio::spawn(listen_loop(
            config.clone(),
            signal.clone(),
            jobs.clone(),
            epoch.clone(),
        ));
        Ok(PostgresStore {
            node: uuid::Uuid::new_v4().to_string(),
            pool,
            config,
            signal,
            jobs,
            epoch,
            notifier: Default::default(),
            listener,
        })
    }

    /// The migrations recorded in the database: (version, name), oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<(i64, String)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT version, name FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(db_err)
    }

    /// Runs `f` in a transaction and commits it when it succeeds.
    async fn in_tx<R, F>(&self, f: F) -> Result<R>
    where
        F: for<'a> FnOnce(&'a Tx<'a>) -> Pin<Box<dyn Future<Output = Result<R>> + Send + 'a>>,
    {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        let r = f(&tx).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(r)
    }

    /// Rows of a query on a pooled connection.
    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(sql).await.map_err(pg_err)?;
        c.query(&stmt, params).await.map_err(pg_err)
    }

    /// Makes sure this node holds the notifier lock, if it can; true when it does.
    async fn hold_notifier(&self, n: &mut NotifierLock) -> Result<bool> {
        if n.client.as_ref().is_none_or(|c| c.is_closed()) {
            n.client = Some(connect_plain(&self.config).await?);
            n.held = false;
        }
        if !n.held {
            let c = n
                .client
                .as_ref()
                .ok_or_else(|| db_err("no notifier connection"))?;
            n.held = c
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&LOCK_SPACE, &NOTIFIER_LOCK],
                )
                .await
                .map_err(pg_err)?
                .get(0);
        }
        Ok(n.held)
    }
}

/// Adds a stream's change to the chunk; or says how the stream ends (`Ok`: commit, `Err`: abort).
fn take_msg(m: StreamMsg, chunk: &mut Vec<(String, EntityChange)>) -> Option<Result<()>> {
    match m {
        StreamMsg::Change(id, change) => {
            chunk.push((id, change));
            None
        }
        StreamMsg::Commit => Some(Ok(())),
        StreamMsg::Abort(e) => Some(Err(e)),
    }
}

fn conflict(detail: impl Into<String>) -> NgsiError {
    NgsiError::new(ErrorKind::Conflict, detail)
}

#[async_trait]
impl Store for PostgresStore {
    async fn write(&self, id: &str, change: EntityChange) -> Result<WriteResult> {
        let mut out = self
            .apply_and_commit(vec![(id.to_string(), change)])
            .await?;
        out.pop()
            .ok_or_else(|| db_err("a write answered nothing"))?
            .map(|d| d.result)
    }

    async fn write_stream(
        &self,
        rx: std::sync::mpsc::Receiver<StreamMsg>,
    ) -> Result<StreamSummary> {
        // the sender is synchronous: a blocking thread hands its messages over
        let (tx_msgs, mut msgs) = tokio::sync::mpsc::channel::<StreamMsg>(STREAM_CHUNK);
        tokio::task::spawn_blocking(move || {
            while let Ok(m) = rx.recv() {
                let end = !matches!(m, StreamMsg::Change(..));
                if tx_msgs.blocking_send(m).is_err() || end {
                    break;
                }
            }
        });
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        let mut summary = StreamSummary::default();
        let mut wrote = false;
        let mut deferred = write::Deferred::default();
        loop {
            let mut chunk = Vec::new();
            let mut end = match msgs.recv().await {
                None => return Err(stream_unfinished()),
                Some(m) => take_msg(m, &mut chunk),
            };
            while end.is_none() && chunk.len() < STREAM_CHUNK {
                match msgs.try_recv() {
                    Ok(m) => end = take_msg(m, &mut chunk),
                    Err(_) => break,
                }
            }
            if !chunk.is_empty() {
                for d in self.apply(&tx, chunk, true, Some(&mut deferred)).await? {
                    let d = d?;
                    wrote |= d.wrote;
                    d.count(&mut summary);
                }
            }
            match end {
                None => {}
                Some(Ok(())) => break,
                Some(Err(e)) => return Err(e),
            }
        }
        deferred.write(&tx).await?;
        tx.commit().await.map_err(pg_err)?;
        if wrote {
            self.signal.notify_one();
        }
        Ok(summary)
    }

    async fn write_batch(
        &self,
        changes: Vec<(String, EntityChange)>,
    ) -> Result<Vec<Result<WriteResult>>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .apply_and_commit(changes)
            .await?
            .into_iter()
            .map(|d| d.map(|d| d.result))
            .collect())
    }

    async fn get(&self, id: &str) -> Result<Option<Entity>> {
        self.load(id).await
    }

    async fn query(&self, q: &EntityQuery) -> Result<QueryPage> {
        self.run_query(q).await
    }

    async fn types(&self, datasets: Option<&[String]>) -> Result<Vec<TypeInfo>> {
        let mut params = Params::default();
        let (join, cond) = read::dataset_join("t.id", datasets, &mut params);
        let counts = self
            .rows(
                &format!("SELECT t.type, count(*) FROM entity_types t {join} WHERE {cond} GROUP BY t.type"),
                &params.refs(),
            )
            .await?;
        let kinds = self
            .rows(
                &format!(
                    "SELECT DISTINCT t.type, a.attr, a.kind FROM entity_types t JOIN attr_values a ON a.id = t.id
                     {join} WHERE {cond}"
                ),
                &params.refs(),
            )
            .await?;
        Ok(type_infos(
            counts.iter().map(|r| (r.get(0), r.get(1))).collect(),
            kinds
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        ))
    }

    async fn attributes(&self, datasets: Option<&[String]>) -> Result<Vec<AttributeInfo>> {
        let mut params = Params::default();
        let (join, cond) = read::dataset_join("a.id", datasets, &mut params);
        let counts = self
            .rows(
                &format!(
                    "SELECT a.attr, count(DISTINCT a.id) FROM attr_values a {join} WHERE {cond} GROUP BY a.attr"
                ),
                &params.refs(),
            )
            .await?;
        let kinds = self
            .rows(
                &format!(
                    "SELECT DISTINCT a.attr, a.kind, t.type FROM attr_values a JOIN entity_types t ON a.id = t.id
                     {join} WHERE {cond}"
                ),
                &params.refs(),
            )
            .await?;
        Ok(attribute_infos(
            counts.iter().map(|r| (r.get(0), r.get(1))).collect(),
            kinds
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        ))
    }

    async fn temporal_query(&self, q: &TemporalQuery) -> Result<Vec<TemporalEntity>> {
        self.run_temporal_query(q).await
    }

    async fn temporal_append(
        &self,
        id: &str,
        types: Option<Vec<String>>,
        scopes: Vec<String>,
        attrs: BTreeMap<String, Vec<Attribute>>,
    ) -> Result<bool> {
        let id = id.to_string();
        self.in_tx(move |tx| {
            Box::pin(async move {
                tx.execute(LOCK_ENTITIES, &[&vec![id.clone()]])
                    .await
                    .map_err(pg_err)?;
                let existing = tx
                    .query_opt("SELECT types, scopes FROM temporal_entities WHERE id = $1", &[&id])
                    .await
                    .map_err(pg_err)?
                    .map(|r| (r.get(0), r.get(1)));
                let created = existing.is_none();
                let (types, scopes) = appended_head(&id, existing, types, scopes)?;
                tx.execute(
                    "INSERT INTO temporal_entities(id, types, scopes) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET types = excluded.types, scopes = excluded.scopes",
                    &[&id, &to_json(&types)?, &to_json(&scopes)?],
                )
                .await
                .map_err(pg_err)?;
                let mut rows = InstanceRows::default();
                for (name, instances) in &attrs {
                    for a in instances {
                        rows.push(&id, name, a)?;
                    }
                }
                if !rows.entity.is_empty() {
                    let params = rows.params();
                    tx.execute(INSERT_INSTANCES, &refs(&params))
                        .await
                        .map_err(pg_err)?;
                }
                // the lock row stays only for an entity that exists
                tx.execute(
                    "DELETE FROM entity_locks WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM entities WHERE id = $1)",
                    &[&id],
                )
                .await
                .map_err(pg_err)?;
                Ok(created)
            })
        })
        .await
    }

    async fn temporal_aggregate(
        &self,
        q: &TemporalQuery,
        a: &Aggregation,
    ) -> Result<Vec<AggregatedEntity>> {
        self.run_aggregate(q, a).await
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
        self.in_tx(move |tx| {
            Box::pin(async move {
                // as every write of the entity, so that a concurrent write cannot leave instances without their head
                tx.execute(LOCK_ENTITIES, &[&vec![id.clone()]])
                    .await
                    .map_err(pg_err)?;
                let exists = tx
                    .query_opt("SELECT 1 FROM temporal_entities WHERE id = $1", &[&id])
                    .await
                    .map_err(pg_err)?
                    .is_some();
                if !exists {
                    return Err(no_temporal_entity(&id));
                }
                let n = match &cut {
                    HistoryCut::Entity => {
                        tx.execute("DELETE FROM temporal WHERE entity = $1", &[&id])
                            .await
                            .map_err(pg_err)?;
                        tx.execute("DELETE FROM temporal_aggregates WHERE entity = $1", &[&id])
                            .await
                            .map_err(pg_err)?;
                        tx.execute("DELETE FROM temporal_entities WHERE id = $1", &[&id])
                            .await
                    }
                    HistoryCut::Instance(a, iid) => {
                        tx.execute(
                            "DELETE FROM temporal WHERE entity = $1 AND attr = $2 AND iid = $3",
                            &[&id, a, iid],
                        )
                        .await
                    }
                    HistoryCut::Attribute(a, ds) => {
                        let raw = tx
                            .execute(
                                "DELETE FROM temporal WHERE entity = $1 AND attr = $2
                                 AND ($3::text IS NULL OR dataset_id = $3)",
                                &[&id, a, ds],
                            )
                            .await
                            .map_err(pg_err)?;
                        tx.execute(
                            "DELETE FROM temporal_aggregates WHERE entity = $1 AND attr = $2
                             AND ($3::text IS NULL OR dataset = $3)",
                            &[&id, a, ds],
                        )
                        .await
                        .map(|n| n + raw)
                    }
                    HistoryCut::Nothing => Ok(0),
                }
                .map_err(pg_err)?;
                history_deleted(&id, n)
            })
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
        self.in_tx(move |tx| {
            Box::pin(async move {
                tx.execute(LOCK_ENTITIES, &[&vec![id.clone()]])
                    .await
                    .map_err(pg_err)?;
                let iid = instance_rowid(&inst).unwrap_or(-1);
                let row = tx
                    .query_opt(
                        "SELECT doc FROM temporal WHERE entity = $1 AND attr = $2 AND iid = $3 FOR UPDATE",
                        &[&id, &attr, &iid],
                    )
                    .await
                    .map_err(pg_err)?;
                let Some(row) = row else {
                    return Err(no_instance(&id, &attr, &inst));
                };
                let new = modified_instance(row.get(0), value)?;
                tx.execute(
                    "UPDATE temporal SET doc = $1, num = $2, ts = $3, sys_ms = $4 WHERE iid = $5",
                    &[&new.doc, &new.num, &new.ts, &new.sys, &iid],
                )
                .await
                .map_err(pg_err)?;
                Ok(())
            })
        })
        .await
    }

    async fn put_context(&self, c: StoredContext) -> Result<()> {
        let doc = to_json(&c)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO contexts(id, url, doc) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, doc = excluded.doc",
                &[&c.id, &c.url, &doc],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    context_url_taken(&c.url)
                } else {
                    pg_err(e)
                }
            })?;
        Ok(())
    }

    async fn get_context(&self, id_or_url: &str) -> Result<Option<StoredContext>> {
        let rows = self
            .rows(
                "SELECT doc FROM contexts WHERE id = $1 OR url = $1 ORDER BY id LIMIT 1",
                &[&id_or_url],
            )
            .await?;
        rows.first()
            .map(|r| from_json(r.get::<_, &str>(0)))
            .transpose()
    }

    async fn list_contexts(&self) -> Result<Vec<StoredContext>> {
        let rows = self
            .rows("SELECT doc FROM contexts ORDER BY id", &[])
            .await?;
        rows.iter()
            .map(|r| from_json(r.get::<_, &str>(0)))
            .collect()
    }

    async fn delete_context(&self, id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute("DELETE FROM contexts WHERE id = $1 OR url = $1", &[&id])
            .await
            .map_err(pg_err)?;
        Ok(n > 0)
    }

    async fn put_dataset(&self, d: Dataset) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO datasets(id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            &[&d.id, &to_json(&d)?],
        )
        .await
        .map_err(pg_err)?;
        // this node's caches follow at once (others when the notification arrives): a request made right after
        // a policy change must not be judged by the old policy
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn get_dataset(&self, id: &str) -> Result<Option<Dataset>> {
        let rows = self
            .rows("SELECT doc FROM datasets WHERE id = $1", &[&id])
            .await?;
        rows.first()
            .map(|r| from_json(r.get::<_, &str>(0)))
            .transpose()
    }

    async fn list_datasets(&self) -> Result<Vec<Dataset>> {
        let rows = self
            .rows("SELECT doc FROM datasets ORDER BY id", &[])
            .await?;
        rows.iter()
            .map(|r| from_json(r.get::<_, &str>(0)))
            .collect()
    }

    async fn put_subscription(&self, s: StoredSubscription, create: bool) -> Result<()> {
        let (doc, status) = (to_json(&s.document)?, to_json(&s.status)?);
        self.in_tx(move |tx| {
            Box::pin(async move {
                let exists = tx
                    .query_opt(
                        "SELECT 1 FROM subscriptions WHERE id = $1 FOR UPDATE",
                        &[&s.id],
                    )
                    .await
                    .map_err(pg_err)?
                    .is_some();
                check_create("subscription", &s.id, create, exists)?;
                let r = if create {
                    tx.execute(
                        "INSERT INTO subscriptions(id, doc, status) VALUES ($1, $2, $3)",
                        &[&s.id, &doc, &status],
                    )
                    .await
                } else {
                    tx.execute(
                        "UPDATE subscriptions SET doc = $1 WHERE id = $2",
                        &[&doc, &s.id],
                    )
                    .await
                };
                r.map_err(|e| taken_or_pg_err(e, "subscription", &s.id))?;
                Ok(())
            })
        })
        .await
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<StoredSubscription>> {
        let rows = self
            .rows(
                "SELECT id, doc, status FROM subscriptions WHERE id = $1",
                &[&id],
            )
            .await?;
        rows.first().map(subscription_from_row).transpose()
    }

    async fn list_subscriptions(&self) -> Result<Vec<StoredSubscription>> {
        let rows = self
            .rows("SELECT id, doc, status FROM subscriptions ORDER BY id", &[])
            .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.in_tx(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute("DELETE FROM subscriptions WHERE id = $1", &[&id])
                    .await
                    .map_err(pg_err)?;
                tx.execute("DELETE FROM deliveries WHERE subscription = $1", &[&id])
                    .await
                    .map_err(pg_err)?;
                tx.execute(
                    "DELETE FROM changes WHERE NOT EXISTS (SELECT 1 FROM subscriptions)",
                    &[],
                )
                .await
                .map_err(pg_err)?;
                Ok(n > 0)
            })
        })
        .await
    }

    async fn is_notifier(&self) -> Result<bool> {
        let mut n = self.notifier.lock().await;
        self.hold_notifier(&mut n).await
    }

    async fn changes_since(&self, after_seq: i64, limit: usize) -> Result<Vec<ChangeRecord>> {
        let mut n = self.notifier.lock().await;
        if !self.hold_notifier(&mut n).await? {
            // another node turns the journal into deliveries
            n.read.clear();
            return Ok(Vec::new());
        }
        let rows = self
            .rows(
                "SELECT seq, doc FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after_seq, &(limit.min(i64::MAX as usize) as i64)],
            )
            .await?;
        let out = rows
            .iter()
            .map(|r| change_from_row(r.get(0), r.get(1)))
            .collect::<Result<Vec<_>>>()?;
        n.read = out.iter().map(|c| c.seq).collect();
        Ok(out)
    }

    async fn enqueue_deliveries(
        &self,
        upto_seq: i64,
        deliveries: Vec<(String, Value)>,
    ) -> Result<()> {
        let mut n = self.notifier.lock().await;
        let expected: Vec<i64> = n.read.iter().copied().filter(|s| *s <= upto_seq).collect();
        let (subs, payloads): (Vec<String>, Vec<Value>) = deliveries.into_iter().unzip();
        let payloads = payloads.iter().map(to_json).collect::<Result<Vec<_>>>()?;
        let now = ms(Utc::now());
        self.in_tx(move |tx| {
            Box::pin(async move {
                let gone: Vec<i64> = tx
                    .query("DELETE FROM changes WHERE seq <= $1 RETURNING seq", &[&upto_seq])
                    .await
                    .map_err(pg_err)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let gone: HashSet<i64> = gone.into_iter().collect();
                if let Some(missing) = expected.iter().find(|s| !gone.contains(s)) {
                    return Err(conflict(format!(
                        "change {missing} was already turned into deliveries (by another node?): read the journal again"
                    )));
                }
                if !subs.is_empty() {
                    tx.execute(
                        "INSERT INTO deliveries(subscription, payload, next_ms)
                         SELECT s, p, $3 FROM unnest($1::text[], $2::text[]) AS d(s, p)",
                        &[&subs, &payloads, &now],
                    )
                    .await
                    .map_err(pg_err)?;
                    tx.execute("SELECT pg_notify('urbantwin_changes', '')", &[])
                        .await
                        .map_err(pg_err)?;
                }
                Ok(())
            })
        })
        .await?;
        n.read.retain(|s| *s > upto_seq);
        self.signal.notify_one();
        Ok(())
    }

    async fn pending_deliveries(&self, subscription_id: &str) -> Result<u64> {
        let rows = self
            .rows(
                "SELECT count(*) FROM deliveries WHERE subscription = $1",
                &[&subscription_id],
            )
            .await?;
        Ok(rows[0].get::<_, i64>(0) as u64)
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>> {
        let wall = ms(Utc::now());
        let mut rows = self
            .rows(
                "UPDATE deliveries SET claimed_by = $5, claimed_until = $3 + $4 WHERE id IN (
                    SELECT id FROM deliveries WHERE next_ms <= $1 AND (claimed_until <= $3 OR claimed_by = $5)
                    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING id, subscription, payload, attempts, next_ms",
                &[
                    &ms(now),
                    &(limit.min(i64::MAX as usize) as i64),
                    &wall,
                    &CLAIM_MS,
                    &self.node,
                ],
            )
            .await?;
        rows.sort_by_key(|r| r.get::<_, i64>(0));
        rows.iter()
            .map(|r| {
                delivery_from_row(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get::<_, i32>(3) as i64,
                    r.get(4),
                )
            })
            .collect()
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
        self.in_tx(move |tx| {
            Box::pin(async move {
                match (&error, retry_at) {
                    (Some(_), Some(t)) => tx
                        .execute(
                            "UPDATE deliveries SET attempts = attempts + 1, next_ms = $1, claimed_by = NULL, claimed_until = 0
                             WHERE id = $2",
                            &[&ms(t), &delivery_id],
                        )
                        .await
                        .map_err(pg_err)?,
                    _ => tx
                        .execute("DELETE FROM deliveries WHERE id = $1", &[&delivery_id])
                        .await
                        .map_err(pg_err)?,
                };
                let status = tx
                    .query_opt(
                        "SELECT status FROM subscriptions WHERE id = $1 FOR UPDATE",
                        &[&sub],
                    )
                    .await
                    .map_err(pg_err)?;
                if let Some(row) = status {
                    let mut st: DeliveryStatus = from_json(row.get(0))?;
                    record_delivery(&mut st, at, &error);
                    tx.execute(
                        "UPDATE subscriptions SET status = $1 WHERE id = $2",
                        &[&to_json(&st)?, &sub],
                    )
                    .await
                    .map_err(pg_err)?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn put_scenario(&self, sc: StoredScenario, create: bool) -> Result<()> {
        let doc = to_json(&sc.document)?;
        self.in_tx(move |tx| {
            Box::pin(async move {
                let exists = tx
                    .query_opt("SELECT 1 FROM scenarios WHERE id = $1 FOR UPDATE", &[&sc.id])
                    .await
                    .map_err(pg_err)?
                    .is_some();
                check_create("scenario", &sc.id, create, exists)?;
                let r = if create {
                    tx.execute(
                        "INSERT INTO scenarios(id, doc, created_ms, modified_ms, owner) VALUES ($1, $2, $3, $4, $5)",
                        &[&sc.id, &doc, &ms(sc.created_at), &ms(sc.modified_at), &sc.owner],
                    )
                    .await
                } else {
                    tx.execute(
                        "UPDATE scenarios SET doc = $1, modified_ms = $2 WHERE id = $3",
                        &[&doc, &ms(sc.modified_at), &sc.id],
                    )
                    .await
                };
                r.map_err(|e| taken_or_pg_err(e, "scenario", &sc.id))?;
                Ok(())
            })
        })
        .await
    }

    async fn get_scenario(&self, id: &str) -> Result<Option<StoredScenario>> {
        let rows = self
            .rows(
                "SELECT id, doc, created_ms, modified_ms, owner FROM scenarios WHERE id = $1",
                &[&id],
            )
            .await?;
        rows.first()
            .map(|r| scenario_from_row((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
            .transpose()
    }

    async fn list_scenarios(&self) -> Result<Vec<StoredScenario>> {
        let rows = self
            .rows(
                "SELECT id, doc, created_ms, modified_ms, owner FROM scenarios ORDER BY created_ms, id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| scenario_from_row((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
            .collect()
    }

    async fn delete_scenario(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.in_tx(move |tx| {
            Box::pin(async move {
                // the scenario first: a run being created (which holds it FOR SHARE) commits before its runs are
                // deleted, or finds the scenario gone
                tx.execute("SELECT 1 FROM scenarios WHERE id = $1 FOR UPDATE", &[&id])
                    .await
                    .map_err(pg_err)?;
                tx.execute("DELETE FROM scenario_runs WHERE scenario = $1", &[&id])
                    .await
                    .map_err(pg_err)?;
                Ok(tx
                    .execute("DELETE FROM scenarios WHERE id = $1", &[&id])
                    .await
                    .map_err(pg_err)?
                    > 0)
            })
        })
        .await
    }

    async fn put_run(&self, run: StoredRun, links: Option<Value>, create: bool) -> Result<()> {
        check_progress(&run)?;
        let links = links.map(|l| to_json(&l)).transpose()?;
        let (request, summary) = (to_json(&run.request)?, to_json(&run.summary)?);
        self.in_tx(move |tx| {
            Box::pin(async move {
                let current = tx
                    .query_opt(
                        "SELECT scenario, status FROM scenario_runs WHERE id = $1 FOR UPDATE",
                        &[&run.id],
                    )
                    .await
                    .map_err(pg_err)?
                    .map(|r| (r.get(0), r.get(1)));
                // FOR SHARE: the scenario cannot be deleted under a run being created
                let scenario_exists = tx
                    .query_opt(
                        "SELECT 1 FROM scenarios WHERE id = $1 FOR SHARE",
                        &[&run.scenario_id],
                    )
                    .await
                    .map_err(pg_err)?
                    .is_some();
                check_run_write(&run, create, current, || Ok(scenario_exists))?;
                let (created, started, finished) = (
                    ms(run.created_at),
                    run.started_at.map(ms),
                    run.finished_at.map(ms),
                );
                let r = if create {
                    tx.execute(
                        "INSERT INTO scenario_runs(id, scenario, status, progress, message, created_ms, started_ms,
                         finished_ms, request, summary, links) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                        &[
                            &run.id,
                            &run.scenario_id,
                            &run.status.as_str(),
                            &run.progress,
                            &run.message,
                            &created,
                            &started,
                            &finished,
                            &request,
                            &summary,
                            &links,
                        ],
                    )
                    .await
                } else {
                    tx.execute(
                        "UPDATE scenario_runs SET status = $1, progress = $2, message = $3, created_ms = $4,
                         started_ms = $5, finished_ms = $6, request = $7, summary = $8, links = coalesce($9, links)
                         WHERE id = $10",
                        &[
                            &run.status.as_str(),
                            &run.progress,
                            &run.message,
                            &created,
                            &started,
                            &finished,
                            &request,
                            &summary,
                            &links,
                            &run.id,
                        ],
                    )
                    .await
                };
                r.map_err(|e| taken_or_pg_err(e, "run", &run.id))?;
                Ok(())
            })
        })
        .await
    }

    async fn get_run(&self, id: &str) -> Result<Option<StoredRun>> {
        let rows = self
            .rows(
                &format!("SELECT {RUN_COLUMNS} FROM scenario_runs WHERE id = $1"),
                &[&id],
            )
            .await?;
        rows.first().map(|r| run_from_row(r).into_run()).transpose()
    }

    async fn claim_run(&self, node: &str, lease: Duration) -> Result<Option<ClaimedRun>> {
        let node = node.to_string();
        self.in_tx(move |tx| {
            Box::pin(async move {
                // the oldest queued run no other transaction holds: two nodes claiming at once get two runs
                let Some(row) = tx
                    .query_opt(
                        "SELECT id FROM scenario_runs WHERE status = 'queued' AND NOT cancel_requested
                         ORDER BY created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED",
                        &[],
                    )
                    .await
                    .map_err(pg_err)?
                else {
                    return Ok(None);
                };
                let id: String = row.get(0);
                let row = tx
                    .query_one(
                        &format!(
                            "UPDATE scenario_runs SET status = 'running', node = $1, lease_until_ms = $2,
                             attempts = attempts + 1, started_ms = $3, progress = 0 WHERE id = $4
                             RETURNING {RUN_COLUMNS}, attempts"
                        ),
                        &[&node, &lease_until(lease), &ms(Utc::now()), &id],
                    )
                    .await
                    .map_err(pg_err)?;
                let attempts: i32 = row.get(10);
                Ok(Some(ClaimedRun {
                    run: run_from_row(&row).into_run()?,
                    attempt: u32::try_from(attempts).unwrap_or(0),
                }))
            })
        })
        .await
    }

    async fn renew_run_lease(
        &self,
        id: &str,
        node: &str,
        lease: Duration,
        progress: f64,
    ) -> Result<RunLease> {
        let progress = check_fraction(id, progress)?;
        let rows = self
            .rows(
                "UPDATE scenario_runs SET lease_until_ms = $1, progress = $2
                 WHERE id = $3 AND status = 'running' AND node = $4 RETURNING cancel_requested",
                &[&lease_until(lease), &progress, &id, &node],
            )
            .await?;
        Ok(match rows.first() {
            Some(r) => RunLease::Held {
                cancel_requested: r.get(0),
            },
            None => RunLease::Lost,
        })
    }

    async fn finish_run(&self, node: &str, run: StoredRun, links: Option<Value>) -> Result<()> {
        check_finish(&run)?;
        let node = node.to_string();
        let links = links.map(|l| to_json(&l)).transpose()?;
        let summary = to_json(&run.summary)?;
        self.in_tx(move |tx| {
            Box::pin(async move {
                let current = tx
                    .query_opt(
                        "SELECT scenario, status, node FROM scenario_runs WHERE id = $1 FOR UPDATE",
                        &[&run.id],
                    )
                    .await
                    .map_err(pg_err)?
                    .map(|r| (r.get(0), r.get(1), r.get(2)));
                check_holder(&run, &node, current)?;
                tx.execute(
                    "UPDATE scenario_runs SET status = $1, progress = $2, message = $3, finished_ms = $4,
                     summary = $5, links = coalesce($6, links), lease_until_ms = NULL WHERE id = $7",
                    &[
                        &run.status.as_str(),
                        &run.progress,
                        &run.message,
                        &run.finished_at.map(ms),
                        &summary,
                        &links,
                        &run.id,
                    ],
                )
                .await
                .map_err(pg_err)?;
                Ok(())
            })
        })
        .await
    }

    async fn request_run_cancel(&self, id: &str) -> Result<Option<StoredRun>> {
        let id = id.to_string();
        self.in_tx(move |tx| {
            Box::pin(async move {
                let Some(row) = tx
                    .query_opt(
                        "SELECT status FROM scenario_runs WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await
                    .map_err(pg_err)?
                else {
                    return Ok(None);
                };
                let status: String = row.get(0);
                match RunStatus::parse(&status) {
                    Some(RunStatus::Queued) => {
                        tx.execute(
                            "UPDATE scenario_runs SET status = 'cancelled', message = $1, finished_ms = $2,
                             cancel_requested = true WHERE id = $3",
                            &[&CANCELLED, &ms(Utc::now()), &id],
                        )
                        .await
                        .map_err(pg_err)?;
                    }
                    Some(RunStatus::Running) => {
                        tx.execute(
                            "UPDATE scenario_runs SET cancel_requested = true WHERE id = $1",
                            &[&id],
                        )
                        .await
                        .map_err(pg_err)?;
                    }
                    _ => {}
                }
                let row = tx
                    .query_one(
                        &format!("SELECT {RUN_COLUMNS} FROM scenario_runs WHERE id = $1"),
                        &[&id],
                    )
                    .await
                    .map_err(pg_err)?;
                run_from_row(&row).into_run().map(Some)
            })
        })
        .await
    }

    async fn requeue_expired_runs(&self, max_attempts: u32) -> Result<Requeued> {
        self.in_tx(move |tx| {
            Box::pin(async move {
                // SKIP LOCKED: a run another node is requeueing (or finishing, or renewing) right now is its business
                let expired = tx
                    .query(
                        "SELECT id, attempts, cancel_requested, node FROM scenario_runs
                         WHERE status = 'running' AND (lease_until_ms IS NULL OR lease_until_ms < $1)
                         FOR UPDATE SKIP LOCKED",
                        &[&ms(Utc::now())],
                    )
                    .await
                    .map_err(pg_err)?;
                let mut out = Requeued::default();
                for r in expired {
                    let (id, attempts, cancel, node): (String, i32, bool, Option<String>) =
                        (r.get(0), r.get(1), r.get(2), r.get(3));
                    let (status, message) =
                        expired_outcome(i64::from(attempts), max_attempts, cancel, node.as_deref());
                    let finished = status.is_final().then(|| ms(Utc::now()));
                    // (requeued: the trigger of migration 5 wakes every node's worker)
                    tx.execute(
                        "UPDATE scenario_runs SET status = $1, message = $2, finished_ms = $3, lease_until_ms = NULL,
                         progress = CASE WHEN $1 = 'queued' THEN 0 ELSE progress END,
                         node = CASE WHEN $1 = 'queued' THEN NULL ELSE node END WHERE id = $4",
                        &[&status.as_str(), &message, &finished, &id],
                    )
                    .await
                    .map_err(pg_err)?;
                    match status {
                        RunStatus::Queued => out.requeued.push(id),
                        RunStatus::Cancelled => out.cancelled.push(id),
                        _ => out.failed.push(id),
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    fn job_signal(&self) -> Arc<Notify> {
        self.jobs.clone()
    }

    async fn get_run_links(&self, id: &str) -> Result<Option<Value>> {
        let rows = self
            .rows("SELECT links FROM scenario_runs WHERE id = $1", &[&id])
            .await?;
        rows.first()
            .and_then(|r| r.get::<_, Option<&str>>(0))
            .map(from_json)
            .transpose()
    }

    async fn list_runs(&self, scenario_id: &str) -> Result<Vec<StoredRun>> {
        let rows = self
            .rows(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM scenario_runs WHERE scenario = $1 ORDER BY created_ms, id"
                ),
                &[&scenario_id],
            )
            .await?;
        rows.iter().map(|r| run_from_row(r).into_run()).collect()
    }

    async fn put_dead_letters(&self, letters: Vec<DeadLetter>) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let received: Vec<i64> = letters.iter().map(|l| ms(l.received_at)).collect();
        let source: Vec<&str> = letters.iter().map(|l| l.source.as_str()).collect();
        let topic: Vec<&str> = letters.iter().map(|l| l.topic.as_str()).collect();
        let payload: Vec<&[u8]> = letters.iter().map(|l| l.payload.as_slice()).collect();
        let reason: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
        let c = self.client().await?;
        // ids follow the order given (WITH ORDINALITY, inserted in that order)
        c.execute(
            "INSERT INTO dead_letters(received_ms, source, topic, payload, reason)
             SELECT r, s, t, p, w FROM unnest($1::int8[], $2::text[], $3::text[], $4::bytea[], $5::text[])
             WITH ORDINALITY AS d(r, s, t, p, w, o) ORDER BY o",
            &[&received, &source, &topic, &payload, &reason],
        )
        .await
        .map_err(pg_err)?;
        Ok(())
    }

    async fn dead_letters(
        &self,
        topic: Option<&str>,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<(u64, Vec<DeadLetter>)> {
        let total: i64 = self
            .rows(
                "SELECT count(*) FROM dead_letters WHERE $1::text IS NULL OR topic = $1",
                &[&topic],
            )
            .await?[0]
            .get(0);
        let rows = self
            .rows(
                "SELECT id, received_ms, source, topic, payload, reason FROM dead_letters
                 WHERE ($1::text IS NULL OR topic = $1) AND id < $2 ORDER BY id DESC LIMIT $3",
                &[
                    &topic,
                    &before_id.unwrap_or(i64::MAX),
                    &(limit.min(i64::MAX as usize) as i64),
                ],
            )
            .await?;
        let letters = rows
            .iter()
            .map(|r| DeadLetter {
                id: r.get(0),
                received_at: from_ms(r.get(1)),
                source: r.get(2),
                topic: r.get(3),
                payload: r.get(4),
                reason: r.get(5),
            })
            .collect();
        Ok((total as u64, letters))
    }

    async fn delete_dead_letters(&self, ids: Option<Vec<i64>>) -> Result<u64> {
        let c = self.client().await?;
        let n = match ids {
            None => c.execute("DELETE FROM dead_letters", &[]).await,
            Some(ids) => {
                c.execute("DELETE FROM dead_letters WHERE id = ANY($1)", &[&ids])
                    .await
            }
        }
        .map_err(pg_err)?;
        Ok(n)
    }

    async fn put_retention_policy(&self, p: RetentionPolicy) -> Result<bool> {
        self.put_policy(p).await
    }

    async fn get_retention_policy(&self, id: &str) -> Result<Option<RetentionPolicy>> {
        self.get_policy(id).await
    }

    async fn list_retention_policies(&self) -> Result<Vec<RetentionPolicy>> {
        self.list_policies().await
    }

    async fn delete_retention_policy(&self, id: &str) -> Result<bool> {
        self.delete_policy(id).await
    }

    async fn apply_retention(&self, now: DateTime<Utc>, chunk: usize) -> Result<RetentionReport> {
        crate::retention::run(self, now, chunk).await
    }

    async fn retention_status(&self) -> Result<Option<RetentionReport>> {
        self.last_report().await
    }

    async fn map_changes_since(&self, after_seq: i64, limit: usize) -> Result<MapChanges> {
        let c = self.client().await?;
        let head: i64 = c
            .query_one("SELECT value FROM counters WHERE name = 'map_changes'", &[])
            .await
            .map_err(pg_err)?
            .get(0);
        if head <= after_seq {
            return Ok(MapChanges {
                head,
                changes: Vec::new(),
                complete: true,
            });
        }
        // only what committed up to `head` (a writer holding the journal lock has not committed its seqs yet)
        let rows = c
            .query(
                "SELECT seq, type, min_x, min_y, max_x, max_y FROM map_changes
                 WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
                &[
                    &after_seq,
                    &head,
                    &(limit.min(i64::MAX as usize - 1) as i64 + 1),
                ],
            )
            .await
            .map_err(pg_err)?;
        let changes = rows
            .iter()
            .map(|r| MapChange {
                seq: r.get(0),
                type_name: r.get(1),
                bbox: [r.get(2), r.get(3), r.get(4), r.get(5)],
            })
            .collect();
        Ok(map_changes_page(head, after_seq, limit, changes))
    }

    async fn modified_since(&self, since_ms: i64, limit: usize) -> Result<Vec<(i64, Entity)>> {
        let rows = self
            .rows(
                "SELECT modified_ms, doc FROM entities WHERE modified_ms >= $1 ORDER BY modified_ms, rid LIMIT $2",
                &[&since_ms, &(limit.min(i64::MAX as usize) as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.get(0), from_json(r.get::<_, &str>(1))?)))
            .collect()
    }

    async fn type_extent(
        &self,
        type_name: &str,
        datasets: Option<&[String]>,
    ) -> Result<Option<[f64; 4]>> {
        let mut params = Params::default();
        let t = params.add(type_name.to_string());
        let (join, cond) = read::dataset_join("t.id", datasets, &mut params);
        let rows = self
            .rows(
                &format!(
                    "SELECT min(least((bbox[0])[0], (bbox[1])[0])), min(least((bbox[0])[1], (bbox[1])[1])),
                            max(greatest((bbox[0])[0], (bbox[1])[0])), max(greatest((bbox[0])[1], (bbox[1])[1]))
                     FROM entity_geo WHERE id IN (SELECT t.id FROM entity_types t {join} WHERE t.type = {t} AND {cond})"
                ),
                &params.refs(),
            )
            .await?;
        let r = &rows[0];
        Ok(match (r.get(0), r.get(1), r.get(2), r.get(3)) {
            (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
            _ => None,
        })
    }

    async fn dataset_times(&self, dataset: &str) -> Result<crate::DatasetTimes> {
        let mut params = Params::default();
        let cond = read::dataset_sql(
            "dataset",
            std::slice::from_ref(&dataset.to_string()),
            &mut params,
        );
        let rows = self
            .rows(
                &format!(
                    "SELECT (SELECT max(modified_ms) FROM entities WHERE {cond}),
                            min(ts), max(ts)
                     FROM temporal WHERE entity IN (SELECT id FROM temporal_entities WHERE {cond})"
                ),
                &params.refs(),
            )
            .await?;
        let r = &rows[0];
        let (modified, first, last): (Option<i64>, Option<i64>, Option<i64>) =
            (r.get(0), r.get(1), r.get(2));
        Ok(crate::DatasetTimes {
            modified: modified.map(from_ms),
            observed: match (first, last) {
                (Some(a), Some(b)) => Some((from_ms(a), from_ms(b))),
                _ => None,
            },
        })
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
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn change_signal(&self) -> Arc<Notify> {
        self.signal.clone()
    }

    async fn check_integrity(&self) -> Result<()> {
        let rows = self
            .rows(
                "SELECT e.doc, (SELECT count(*) FROM entity_types t WHERE t.id = e.id) FROM entities e",
                &[],
            )
            .await?;
        for r in rows {
            let e: Entity = from_json(r.get::<_, &str>(0))?;
            check_type_rows(&e, r.get(1))?;
        }
        // the seq counters are ahead of every row they numbered
        let behind = self
            .rows(
                "SELECT name FROM counters c WHERE value < coalesce(CASE name
                    WHEN 'changes' THEN (SELECT max(seq) FROM changes)
                    WHEN 'map_changes' THEN (SELECT max(seq) FROM map_changes) END, 0)",
                &[],
            )
            .await?;
        if let Some(r) = behind.first() {
            return Err(db_err(format!(
                "the {} counter is behind its rows",
                r.get::<_, &str>(0)
            )));
        }
        Ok(())
    }
}

fn subscription_from_row(r: &Row) -> Result<StoredSubscription> {
    Ok(StoredSubscription {
        id: r.get(0),
        document: from_json(r.get::<_, &str>(1))?,
        status: from_json(r.get::<_, &str>(2))?,
    })
}

fn run_from_row(r: &Row) -> RunRow {
    RunRow {
        id: r.get(0),
        scenario: r.get(1),
        status: r.get(2),
        progress: r.get(3),
        message: r.get(4),
        created: r.get(5),
        started: r.get(6),
        finished: r.get(7),
        request: r.get(8),
        summary: r.get(9),
    }
}
