//! urbantwin's storage: the [`Store`] trait that every part of the twin reads and writes through, and its backends:
//! embedded SQLite (WAL, group commit, every acknowledged write durable) and PostgreSQL (several API nodes on one
//! database). Both share their backend-neutral logic (`common`), so they answer alike.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use twin_model::geoquery::GeoQuery;
use twin_model::query::{Query, ScopeQuery, TypeExpr};
use twin_model::{Attribute, Dataset, Entity, NgsiError};

mod common;
pub mod participation;
pub mod postgres;
pub mod retention;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trust;
pub use participation::{
    MarkQuery, PartError, PartOp, PartOutcome, PartQuery, ParticipationMark, ParticipationRecord,
    PutMode, Tally,
};
pub use postgres::PostgresStore;
pub use retention::{DownsampleLevel, PolicyRun, RetentionPolicy, RetentionReport};
pub use sqlite::SqliteStore;
pub use trust::{
    Account, ApiKeyRecord, AuditRecord, AuditVerification, SessionRecord, UsageQuery, UsageRecord,
    UsageSummaryRow,
};

pub type Result<T, E = NgsiError> = std::result::Result<T, E>;

/// A change to one entity, computed by the caller from the current state (None = the entity does not exist).
/// It returns the attribute instances it wrote, as `(expanded name, datasetId)`, which the store records as temporal
/// instances, or an error that leaves the entity unchanged.
pub type EntityChange = Box<dyn FnOnce(Option<Entity>) -> Result<ChangeOutcome> + Send>;

/// A change that stores `e` as it is, creating or replacing whatever was there, with every attribute instance
/// reported as written (tools and tests that load prepared entities).
pub fn store_as_is(e: Entity) -> EntityChange {
    Box::new(move |_| {
        let written = twin_model::ops::all_instances(&e);
        Ok(ChangeOutcome::Put {
            entity: e,
            written,
            removed: vec![],
            result: Value::Null,
        })
    })
}

/// What an [`EntityChange`] decided.
#[derive(Debug)]
pub enum ChangeOutcome {
    /// Write this entity (created when it did not exist); `written` lists the attribute instances that changed;
    /// `removed` the attribute instances deleted.
    Put {
        entity: Entity,
        written: Vec<(String, Option<String>)>,
        removed: Vec<String>,
        result: Value,
    },
    /// Delete the entity.
    Delete,
    /// Nothing to write; `result` is handed back to the caller.
    Nothing { result: Value },
}

/// One message of a [`Store::write_stream`].
pub enum StreamMsg {
    Change(String, EntityChange),
    Commit,
    Abort(NgsiError),
}

/// What a committed stream did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamSummary {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
}

/// What happened to an entity in one committed write, as recorded for subscriptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub seq: i64,
    pub entity_id: String,
    pub trigger: Trigger,
    /// Expanded names of the attributes written or removed.
    pub attributes: Vec<String>,
    /// The entity after the change (before it, for deletions).
    pub entity: Entity,
    /// The entity before the change, for updates (lets notifications show previous values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Entity>,
    pub at: DateTime<Utc>,
}

/// Where maps went stale: entities of one type had geometry (or what is drawn with it) written or removed inside
/// `bbox` (lon/lat `[west, south, east, north]`, the union of before and after) in the transaction `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapChange {
    pub seq: i64,
    pub type_name: String,
    pub bbox: [f64; 4],
}

/// The map changes after a point, for tile caches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MapChanges {
    /// The newest change recorded so far (poll again from here).
    pub head: i64,
    /// The changes after the point asked for, oldest first.
    pub changes: Vec<MapChange>,
    /// False when some changes after the point are no longer kept (or more than the limit asked): everything
    /// cached before `head` must be treated as stale.
    pub complete: bool,
}

/// Why a change happened, in the terms of NGSI-LD notification triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    EntityCreated,
    EntityUpdated,
    EntityDeleted,
}

/// The result of one write: the entity after it (None when deleted or unchanged) and what the change function said.
#[derive(Debug, Clone)]
pub struct WriteResult {
    pub created: bool,
    pub entity: Option<Entity>,
    pub result: Value,
}

/// A query over current entities. Every filter present must hold.
#[derive(Debug, Clone, Default)]
pub struct EntityQuery {
    pub ids: Option<Vec<String>>,
    pub id_pattern: Option<regex::Regex>,
    pub types: Option<TypeExpr>,
    /// Entities that have at least one of these attributes (expanded names).
    pub attrs: Option<Vec<String>>,
    pub q: Option<Query>,
    pub scope_q: Option<ScopeQuery>,
    pub geo: Option<GeoQuery>,
    /// Only entities of these urbantwin datasets (an entity without one belongs to
    /// [`twin_model::dataset::DEFAULT_DATASET`]); None = all. This is where dataset read policies are enforced:
    /// counts, temporal queries and aggregations (which embed an `EntityQuery`) never include an entity outside them
    /// (the history of an entity belongs to the dataset of the entity, or, once it is deleted, of its last state).
    pub datasets: Option<Vec<String>>,
    pub limit: usize,
    pub offset: usize,
    pub count: bool,
}

/// One page of query results.
#[derive(Debug, Clone, Default)]
pub struct QueryPage {
    pub entities: Vec<Entity>,
    /// Total number of matches when counting was asked for.
    pub count: Option<u64>,
}

/// When a dataset changed and what time its history spans (see [`Store::dataset_times`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetTimes {
    /// The latest `modifiedAt` of its entities.
    pub modified: Option<DateTime<Utc>>,
    /// The earliest and latest observation time (`observedAt`, else the time of writing) in their history.
    pub observed: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// An entity type with how many entities have it and which attributes they carry.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeInfo {
    pub type_name: String,
    pub entity_count: u64,
    /// attribute (expanded) → kinds seen (Property, Relationship...)
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// An attribute name with the types of entities that carry it and how many.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeInfo {
    pub name: String,
    pub attribute_count: u64,
    pub kinds: Vec<String>,
    pub type_names: Vec<String>,
}

/// The time relation of a temporal query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeRel {
    Before(DateTime<Utc>),
    After(DateTime<Utc>),
    Between(DateTime<Utc>, DateTime<Utc>),
}

/// Which time property temporal queries order and filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeProperty {
    #[default]
    ObservedAt,
    CreatedAt,
    ModifiedAt,
}

/// A query over temporal instances of entities.
#[derive(Debug, Clone, Default)]
pub struct TemporalQuery {
    pub entities: EntityQuery,
    pub timerel: Option<TimeRel>,
    pub timeproperty: TimeProperty,
    /// Attribute names (expanded) to return (None = all).
    pub attrs: Option<Vec<String>>,
    /// Most recent N instances per attribute.
    pub last_n: Option<usize>,
    /// Per attribute, at most this many instances (the server's page size).
    pub instance_limit: usize,
}

/// The history of one entity: its types and, per attribute, its instances in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct TemporalEntity {
    pub id: String,
    pub types: Vec<String>,
    pub scopes: Vec<String>,
    pub attrs: BTreeMap<String, Vec<Attribute>>,
}

/// An aggregation function of NGSI-LD temporal queries (`aggrMethods`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggrMethod {
    TotalCount,
    DistinctCount,
    Sum,
    Avg,
    Min,
    Max,
    Stddev,
    Sumsq,
}

impl AggrMethod {
    pub const ALL: [AggrMethod; 8] = [
        AggrMethod::TotalCount,
        AggrMethod::DistinctCount,
        AggrMethod::Sum,
        AggrMethod::Avg,
        AggrMethod::Min,
        AggrMethod::Max,
        AggrMethod::Stddev,
        AggrMethod::Sumsq,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AggrMethod::TotalCount => "totalCount",
            AggrMethod::DistinctCount => "distinctCount",
            AggrMethod::Sum => "sum",
            AggrMethod::Avg => "avg",
            AggrMethod::Min => "min",
            AggrMethod::Max => "max",
            AggrMethod::Stddev => "stddev",
            AggrMethod::Sumsq => "sumsq",
        }
    }

    pub fn parse(s: &str) -> Option<AggrMethod> {
        AggrMethod::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// What to aggregate: the methods and the period length (None = one period over the whole range).
#[derive(Debug, Clone)]
pub struct Aggregation {
    pub methods: Vec<AggrMethod>,
    pub period: Option<twin_model::duration::Duration>,
}

/// One aggregated period: `[value, startAt, endAt]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedValue {
    pub value: Value,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Aggregation results of one entity: attribute → method → periods.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedEntity {
    pub id: String,
    pub types: Vec<String>,
    pub attrs: BTreeMap<String, BTreeMap<AggrMethod, Vec<AggregatedValue>>>,
}

impl PartialOrd for AggrMethod {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AggrMethod {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}

/// A registered JSON-LD context (`/jsonldContexts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredContext {
    pub id: String,
    /// The URL clients name it by.
    pub url: String,
    /// `Hosted` (registered by a client), `Cached` (fetched or preloaded for a remote URL), `ImplicitlyCreated`.
    pub kind: String,
    pub document: Value,
    pub created_at: DateTime<Utc>,
    pub last_usage: Option<DateTime<Utc>>,
    pub number_of_hits: u64,
}

/// A subscription as stored: its id, its document (expanded form chosen by the subscription module) and its
/// delivery status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSubscription {
    pub id: String,
    pub document: Value,
    pub status: DeliveryStatus,
}

/// Delivery statistics of a subscription.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStatus {
    pub times_sent: u64,
    pub times_failed: u64,
    pub last_notification: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// A notification waiting to be delivered (the outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    pub id: i64,
    pub subscription_id: String,
    pub payload: Value,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
}

/// A traffic (or other model) scenario as stored: its id, its document (the edits, as the scenario module defines
/// them; the store does not look inside), the account that owns it and when it was created and last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredScenario {
    pub id: String,
    pub document: Value,
    /// The account that created it (None: created before scenarios had owners, or by a tool without an account).
    /// Set when the scenario is created; a replace keeps it.
    #[serde(default)]
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
}

/// Where a model run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Done,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Done, failed or cancelled: the run will not change any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Done | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// One run of a scenario as stored. Its per-link results are a separate document ([`Store::get_run_links`]), so that
/// listing and polling runs stays cheap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRun {
    pub id: String,
    pub scenario_id: String,
    pub status: RunStatus,
    /// 0 to 1.
    pub progress: f64,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What was asked: the options and the scenario as it was run (results say which inputs made them).
    pub request: Value,
    /// The totals once done (`null` before).
    pub summary: Value,
}

/// A queued run a node claimed ([`Store::claim_run`]): the run as it is now (running, with this attempt's start time),
/// and which attempt this is (1 for the first claim; a run whose node died is claimed again).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedRun {
    pub run: StoredRun,
    pub attempt: u32,
}

/// Where a running run's lease stands after a heartbeat ([`Store::renew_run_lease`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLease {
    /// This node still computes it, until the new expiry; `cancel_requested` when a node was asked to cancel it.
    Held { cancel_requested: bool },
    /// This node no longer holds it: its lease expired and the run was requeued (or claimed by another node), it
    /// ended, or it was deleted with its scenario. The node stops computing it and records nothing.
    Lost,
}

/// What [`Store::requeue_expired_runs`] did with the running runs whose lease had expired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Queued again for any node to claim.
    pub requeued: Vec<String>,
    /// Failed: they had used up their attempts.
    pub failed: Vec<String>,
    /// Cancelled: a cancel had been requested before their node died.
    pub cancelled: Vec<String>,
}

/// A message that could not be turned into entity updates, kept with the reason (ingestion's dead-letter table),
/// so that a data officer can see what a sensor sent and why it was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Assigned by the store (0 when handing one to [`Store::put_dead_letters`]).
    pub id: i64,
    pub received_at: DateTime<Utc>,
    /// Where it came from, e.g. `mqtt`.
    pub source: String,
    /// The topic (or file, or endpoint) it arrived on.
    pub topic: String,
    /// The payload as received.
    pub payload: Vec<u8>,
    pub reason: String,
}

/// The storage interface. Every method is atomic: it either happens entirely or not at all, and returns only once
/// the change is durable.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies a change to one entity atomically (read, decide, write, record temporal instances and the change
    /// journal entry, in one transaction).
    async fn write(&self, id: &str, change: EntityChange) -> Result<WriteResult>;

    /// Applies a stream of changes in ONE transaction, all or nothing (imports): it commits when `Commit` arrives;
    /// an `Abort`, a change that fails, or a stream that ends without `Commit` leaves the store as it was. Other
    /// writes wait while the stream runs.
    async fn write_stream(&self, rx: std::sync::mpsc::Receiver<StreamMsg>)
        -> Result<StreamSummary>;

    /// Applies many changes in one durable transaction; each succeeds or fails on its own.
    async fn write_batch(
        &self,
        changes: Vec<(String, EntityChange)>,
    ) -> Result<Vec<Result<WriteResult>>>;

    async fn get(&self, id: &str) -> Result<Option<Entity>>;

    async fn query(&self, q: &EntityQuery) -> Result<QueryPage>;

    /// The entity types with their counts and attributes; with `datasets`, of the entities of those datasets only
    /// (as [`EntityQuery::datasets`]), so that no type or attribute name only invisible entities have is revealed.
    async fn types(&self, datasets: Option<&[String]>) -> Result<Vec<TypeInfo>>;

    /// The attribute names with their counts, kinds and types; `datasets` as for [`Store::types`].
    async fn attributes(&self, datasets: Option<&[String]>) -> Result<Vec<AttributeInfo>>;

    // --- temporal ---
    async fn temporal_query(&self, q: &TemporalQuery) -> Result<Vec<TemporalEntity>>;

    /// Adds instances to an entity's history without changing its current state (`/temporal/entities`).
    /// Creates the temporal entity with `types` when it has no history.
    async fn temporal_append(
        &self,
        id: &str,
        types: Option<Vec<String>>,
        scopes: Vec<String>,
        attrs: BTreeMap<String, Vec<Attribute>>,
    ) -> Result<bool>;

    /// Aggregates the numeric (and, for counts, any) instances of the selected entities' attributes into periods.
    /// With `observedAt` as the time property, downsampled buckets ([`Store::apply_retention`]) are added in too;
    /// a bucket that does not fit inside one period of the aggregation makes it fail with `BadRequestData`.
    async fn temporal_aggregate(
        &self,
        q: &TemporalQuery,
        a: &Aggregation,
    ) -> Result<Vec<AggregatedEntity>>;

    /// Deletes the history of an entity, of one attribute (optionally one datasetId), or one instance.
    async fn temporal_delete(
        &self,
        id: &str,
        attr: Option<&str>,
        dataset_id: Option<&str>,
        instance_id: Option<&str>,
    ) -> Result<()>;

    /// Replaces one temporal instance's value.
    async fn temporal_modify_instance(
        &self,
        id: &str,
        attr: &str,
        instance_id: &str,
        value: Attribute,
    ) -> Result<()>;

    // --- contexts ---
    async fn put_context(&self, c: StoredContext) -> Result<()>;
    async fn get_context(&self, id_or_url: &str) -> Result<Option<StoredContext>>;
    async fn list_contexts(&self) -> Result<Vec<StoredContext>>;
    async fn delete_context(&self, id: &str) -> Result<bool>;

    // --- datasets ---
    async fn put_dataset(&self, d: Dataset) -> Result<()>;
    async fn get_dataset(&self, id: &str) -> Result<Option<Dataset>>;
    async fn list_datasets(&self) -> Result<Vec<Dataset>>;

    // --- subscriptions and their delivery ---
    /// Creates a subscription (`create`, with its status), or replaces the document of an existing one while keeping
    /// its delivery status, which only [`Store::finish_delivery`] changes (so no concurrent delivery is lost).
    async fn put_subscription(&self, s: StoredSubscription, create: bool) -> Result<()>;
    async fn get_subscription(&self, id: &str) -> Result<Option<StoredSubscription>>;
    async fn list_subscriptions(&self) -> Result<Vec<StoredSubscription>>;
    async fn delete_subscription(&self, id: &str) -> Result<bool>;
    /// Whether this store's node is the one that sends notifications: always with SQLite; on a database shared by
    /// several nodes, the one holding the notifier lock (only its [`Store::changes_since`] returns changes, and only
    /// it sends periodic notifications).
    async fn is_notifier(&self) -> Result<bool>;
    /// Changes committed since `after_seq` (oldest first), recorded while at least one subscription exists.
    async fn changes_since(&self, after_seq: i64, limit: usize) -> Result<Vec<ChangeRecord>>;
    /// Atomically: enqueue deliveries and forget the changes up to `upto_seq`.
    async fn enqueue_deliveries(
        &self,
        upto_seq: i64,
        deliveries: Vec<(String, Value)>,
    ) -> Result<()>;
    /// How many deliveries of a subscription wait in the outbox (due or scheduled for a retry).
    async fn pending_deliveries(&self, subscription_id: &str) -> Result<u64>;
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>>;
    /// Records the outcome of a delivery attempt: success removes it, failure reschedules it (or drops it after
    /// the last attempt, when `retry_at` is None), and the subscription's status is updated in the same transaction.
    async fn finish_delivery(
        &self,
        delivery_id: i64,
        subscription_id: &str,
        at: DateTime<Utc>,
        error: Option<String>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()>;
    // --- scenarios and model runs ---
    /// Creates a scenario (`create`; `AlreadyExists` when the id is taken) or replaces the document of an existing
    /// one (`ResourceNotFound` when there is none), keeping its creation time.
    async fn put_scenario(&self, s: StoredScenario, create: bool) -> Result<()>;
    async fn get_scenario(&self, id: &str) -> Result<Option<StoredScenario>>;
    /// Every scenario, oldest first.
    async fn list_scenarios(&self) -> Result<Vec<StoredScenario>>;
    /// Deletes a scenario with its runs and their results; false when there was none.
    async fn delete_scenario(&self, id: &str) -> Result<bool>;
    /// Creates a run (`create`; its scenario must exist) or updates one: its status, progress, message, times and
    /// summary, and its per-link results when `links` is given (else they stay). A run whose status is final (done,
    /// failed, cancelled) cannot be updated (`Conflict`), so a late writer never overwrites an outcome.
    async fn put_run(&self, run: StoredRun, links: Option<Value>, create: bool) -> Result<()>;
    async fn get_run(&self, id: &str) -> Result<Option<StoredRun>>;
    /// A run's per-link results (None when the run does not exist or has none).
    async fn get_run_links(&self, id: &str) -> Result<Option<Value>>;
    /// The runs of a scenario, oldest first.
    async fn list_runs(&self, scenario_id: &str) -> Result<Vec<StoredRun>>;

    // --- runs as jobs that any node computes ---
    // A run is created `queued` ([`Store::put_run`]); a node's worker claims it, renews its lease while computing
    // and records its outcome; a run whose node stopped renewing is requeued for another node, a bounded number of
    // times. Cancelling is a flag in the store that the computing node sees at its next heartbeat.

    /// Claims the oldest queued run for `node`, atomically: it becomes `running`, held by `node` until `now + lease`
    /// (`started_at` = now, progress 0, its attempt count one more), and no other caller gets it, on this or any
    /// other node (PostgreSQL: `FOR UPDATE SKIP LOCKED`). None when no run is queued.
    async fn claim_run(&self, node: &str, lease: std::time::Duration)
        -> Result<Option<ClaimedRun>>;

    /// The heartbeat of a running run: when `node` still holds it, extends its lease to `now + lease` and records
    /// `progress` (0 to 1), and says whether a cancel was requested; [`RunLease::Lost`] when `node` no longer holds
    /// it (expired and requeued, claimed by another node, ended, or deleted).
    async fn renew_run_lease(
        &self,
        id: &str,
        node: &str,
        lease: std::time::Duration,
        progress: f64,
    ) -> Result<RunLease>;

    /// Records how a run that `node` holds ended (its status must be final: done, failed or cancelled), with its
    /// per-link results when given, and releases it. `Conflict` when `node` does not hold it (any more): a node
    /// whose lease ran out never overwrites what another node computes; `ResourceNotFound` when it is gone.
    async fn finish_run(&self, node: &str, run: StoredRun, links: Option<Value>) -> Result<()>;

    /// Asks for a run to stop, from any node: a queued run is cancelled at once (no node computes it), a running
    /// one gets the cancel flag its node sees at its next heartbeat ([`Store::renew_run_lease`]); a run already
    /// ended is left as it is. Returns the run as it is afterwards (None when it does not exist).
    async fn request_run_cancel(&self, id: &str) -> Result<Option<StoredRun>>;

    /// Running runs whose lease expired before now (their node died or lost the database; also runs left running
    /// by a build without leases): those with a cancel requested are cancelled, those that have been claimed
    /// `max_attempts` times fail with a message that says so, and the others are queued again (progress 0) for any
    /// node to claim.
    async fn requeue_expired_runs(&self, max_attempts: u32) -> Result<Requeued>;

    /// Woken when a run may be waiting to be claimed: a run was queued or requeued, by this store or (on a
    /// shared database) by any other node. Workers also poll, so a missed wake-up only delays a run.
    fn job_signal(&self) -> Arc<tokio::sync::Notify>;

    // --- ingestion ---
    /// Keeps refused messages, in one durable transaction; their ids are assigned in order.
    async fn put_dead_letters(&self, letters: Vec<DeadLetter>) -> Result<()>;
    /// Dead letters, newest first: of one topic (`None` = all), with ids below `before_id` (`None` = from the
    /// newest), at most `limit`; and how many match in all (ignoring `before_id` and `limit`).
    async fn dead_letters(
        &self,
        topic: Option<&str>,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<(u64, Vec<DeadLetter>)>;
    /// Deletes the dead letters with these ids (all of them when `ids` is None); returns how many went.
    async fn delete_dead_letters(&self, ids: Option<Vec<i64>>) -> Result<u64>;

    // --- retention and downsampling (see the `retention` module for the rules) ---
    /// Creates or replaces a retention policy, after checking it ([`RetentionPolicy::plan`]); true when it was
    /// created. Policies live in the store, so every node on a shared database applies the same ones.
    async fn put_retention_policy(&self, p: RetentionPolicy) -> Result<bool>;
    async fn get_retention_policy(&self, id: &str) -> Result<Option<RetentionPolicy>>;
    /// Every retention policy, by id.
    async fn list_retention_policies(&self) -> Result<Vec<RetentionPolicy>>;
    /// Deletes a policy (the aggregates it made stay); false when there was none.
    async fn delete_retention_policy(&self, id: &str) -> Result<bool>;
    /// Applies the policies as of `now`: raw instances past their window are folded into UTC-aligned buckets and
    /// deleted, buckets past their level's time move to the next level or are deleted; each chunk of at most
    /// `chunk` rows is one transaction, so a crash leaves a consistent store and a re-run counts nothing twice.
    /// The report is kept for [`Store::retention_status`]. Safe to run on several nodes at once, though the server
    /// runs it on the notifier node only ([`Store::is_notifier`]).
    async fn apply_retention(&self, now: DateTime<Utc>, chunk: usize) -> Result<RetentionReport>;
    /// The report of the last [`Store::apply_retention`] on this store (any node), if any.
    async fn retention_status(&self) -> Result<Option<RetentionReport>>;

    /// Map changes recorded after `after_seq` (at most `limit`; `complete` is false beyond that), so that tile
    /// caches of this and other processes invalidate what changed.
    async fn map_changes_since(&self, after_seq: i64, limit: usize) -> Result<MapChanges>;
    /// Entities whose `modifiedAt` is at or after `since_ms` (milliseconds since the Unix epoch), oldest first, at
    /// most `limit`, each with that time: for live views that poll (they keep a little overlap and drop what they
    /// have seen, since writers stamp a change before it commits).
    async fn modified_since(&self, since_ms: i64, limit: usize) -> Result<Vec<(i64, Entity)>>;

    /// The lon/lat box around every geometry of the entities of a type (`None` when none has one), from the
    /// spatial index rather than by reading the entities (so rounded outwards to 32-bit floats); with `datasets`, of
    /// the entities of those datasets only (as [`EntityQuery::datasets`]).
    async fn type_extent(
        &self,
        type_name: &str,
        datasets: Option<&[String]>,
    ) -> Result<Option<[f64; 4]>>;

    /// When a dataset's entities last changed and the span of the observation times in their history (for the
    /// catalogue's `dct:modified` and `dct:temporal`); the default dataset includes entities with no dataset.
    async fn dataset_times(&self, dataset: &str) -> Result<DatasetTimes>;

    /// Woken after every commit that recorded changes or deliveries.
    fn change_signal(&self) -> Arc<tokio::sync::Notify>;

    /// A number that grows whenever the registered JSON-LD contexts, the datasets, the accounts or the API keys
    /// (revoked, re-scoped, removed) change, by this store or (on a shared database) by any other node, so that what
    /// is cached from them is rebuilt.
    fn config_epoch(&self) -> u64;

    /// Checks the store's integrity (used after crashes and in tests).
    async fn check_integrity(&self) -> Result<()>;

    // --- trust: accounts, API keys, sessions, the usage log, the audit log (see the `trust` module) ---
    // Read per request by the API of every node (no cache here): a change is seen by every node at once.

    /// Creates an account (`create`; `AlreadyExists` when the id is taken) or replaces one (`ResourceNotFound` when
    /// there is none), keeping its `created_at`. `BadRequestData` when the id is not a login name
    /// ([`trust::valid_account_id`]).
    async fn put_account(&self, a: Account, create: bool) -> Result<()>;
    async fn get_account(&self, id: &str) -> Result<Option<Account>>;
    /// Every account, by id.
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Deletes an account with its sessions and API keys; false when there was none.
    async fn delete_account(&self, id: &str) -> Result<bool>;
    async fn count_accounts(&self) -> Result<u64>;

    /// Creates or replaces an API key (by its id); `ResourceNotFound` when its account does not exist.
    async fn put_api_key(&self, k: ApiKeyRecord) -> Result<()>;
    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// The keys of one account (None = of all), by creation time then id.
    async fn list_api_keys(&self, account_id: Option<&str>) -> Result<Vec<ApiKeyRecord>>;
    /// Marks a key revoked at `at` (a key already revoked keeps its first time); false when there is no such key.
    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Records that a key was used at `at` (only moves `last_used_at` forward; a missing key is no error).
    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()>;

    /// Creates or replaces a session (by its hash); `ResourceNotFound` when its account does not exist.
    async fn put_session(&self, s: SessionRecord) -> Result<()>;
    /// A session by the hash of its token, expired or not (the caller checks `expires_at`).
    async fn get_session(&self, hash: &str) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, hash: &str) -> Result<bool>;
    /// Deletes the sessions that expired at or before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64>;

    /// Records reads of non-public data, in one transaction; ids are assigned in the order given (their `id` is
    /// ignored).
    async fn record_usage(&self, records: Vec<UsageRecord>) -> Result<()>;
    /// The usage records of `q.datasets` (and principal, time range) newest first: those with ids below
    /// `before_id`, at most `limit`; and how many match in all (ignoring `before_id` and `limit`).
    async fn usage(&self, q: &UsageQuery) -> Result<(u64, Vec<UsageRecord>)>;
    /// Requests and entities read per dataset, principal and operation, of `datasets`, at or after `since`; ordered
    /// by dataset, principal, operation.
    async fn usage_summary(
        &self,
        datasets: &[String],
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageSummaryRow>>;

    /// Appends a record to the audit log, stamped now (to the millisecond) and chained to the previous one; appends
    /// of every node are serialized so that the chain never forks. Returns the record as stored.
    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: Value,
    ) -> Result<AuditRecord>;
    /// Audit records with seq above `after_seq` (None = from the first), oldest first, at most `limit`.
    async fn audit(&self, after_seq: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>>;
    /// Walks the whole audit chain (in chunks, in one snapshot) and reports the first record whose stored hash
    /// differs from the recomputed one, whose prev_hash is not the previous record's hash, or that follows a gap in
    /// seq (also a chain that ends before the recorded head: the newest records were removed).
    async fn verify_audit(&self) -> Result<AuditVerification>;

    // ---- participation (consultations): see [`participation`] ----
    // Times are kept to the microsecond (finer parts are dropped); JSON objects may come back with their keys in
    // another order.

    /// Applies the operations in one transaction, in order; the outer error is a storage failure, the inner one the
    /// first operation that could not be applied (nothing is written then).
    async fn participation_write(
        &self,
        ops: Vec<PartOp>,
    ) -> Result<std::result::Result<Vec<PartOutcome>, PartError>>;
    async fn participation_get(&self, kind: &str, id: &str) -> Result<Option<ParticipationRecord>>;
    /// A page of records and, when `count`, how many match in all (ignoring limit and offset).
    async fn participation_list(
        &self,
        q: &PartQuery,
        count: bool,
    ) -> Result<(Vec<ParticipationRecord>, Option<u64>)>;
    async fn participation_marks(&self, q: &MarkQuery) -> Result<Vec<ParticipationMark>>;
    /// Marks of a kind counted per target (and per value when `by_value`; `Tally::value` is Null otherwise), over
    /// the given targets and/or scope (at least one of them is given; both must hold when both are). Ordered by
    /// target, then value (as JSON text); targets without marks are left out. `BadRequestData` when neither
    /// targets nor scope is given.
    async fn participation_tally(
        &self,
        kind: &str,
        targets: Option<&[String]>,
        scope: Option<&str>,
        by_value: bool,
    ) -> Result<Vec<Tally>>;
    /// How many distinct authors have records of `record_kinds` in the consultation or marks of `mark_kinds` with
    /// the consultation as their scope.
    async fn participation_authors(
        &self,
        consultation: &str,
        record_kinds: &[&str],
        mark_kinds: &[&str],
    ) -> Result<u64>;
}
