//! One message the store keeps refusing does not stop ingestion: the batch that holds it is split until that message
//! alone fails, it is kept as a dead letter with the store's reason, and every other message is stored.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::*;
use serde_json::Value;
use twin_model::{Attribute, Dataset, Entity, NgsiError};
use twin_store::*;

/// A SQLite store whose batches fail, as a broken disk would, whenever they write one given entity.
struct Poisoned {
    inner: SqliteStore,
    poison: String,
}

#[async_trait]
impl Store for Poisoned {
    async fn write(&self, id: &str, change: EntityChange) -> Result<WriteResult> {
        self.inner.write(id, change).await
    }

    async fn write_stream(
        &self,
        rx: std::sync::mpsc::Receiver<StreamMsg>,
    ) -> Result<StreamSummary> {
        self.inner.write_stream(rx).await
    }

    async fn write_batch(
        &self,
        changes: Vec<(String, EntityChange)>,
    ) -> Result<Vec<Result<WriteResult>>> {
        if changes.iter().any(|(id, _)| id == &self.poison) {
            return Err(NgsiError::internal(
                "storage: disk I/O error (the test's poisoned entity)",
            ));
        }
        self.inner.write_batch(changes).await
    }

    async fn get(&self, id: &str) -> Result<Option<Entity>> {
        self.inner.get(id).await
    }

    async fn query(&self, q: &EntityQuery) -> Result<QueryPage> {
        self.inner.query(q).await
    }

    async fn types(&self, datasets: Option<&[String]>) -> Result<Vec<TypeInfo>> {
        self.inner.types(datasets).await
    }

    async fn attributes(&self, datasets: Option<&[String]>) -> Result<Vec<AttributeInfo>> {
        self.inner.attributes(datasets).await
    }

    async fn temporal_query(&self, q: &TemporalQuery) -> Result<Vec<TemporalEntity>> {
        self.inner.temporal_query(q).await
    }

    async fn temporal_append(
        &self,
        id: &str,
        types: Option<Vec<String>>,
        scopes: Vec<String>,
        attrs: BTreeMap<String, Vec<Attribute>>,
    ) -> Result<bool> {
        self.inner.temporal_append(id, types, scopes, attrs).await
    }

    async fn temporal_aggregate(
        &self,
        q: &TemporalQuery,
        a: &Aggregation,
    ) -> Result<Vec<AggregatedEntity>> {
        self.inner.temporal_aggregate(q, a).await
    }

    async fn temporal_delete(
        &self,
        id: &str,
        attr: Option<&str>,
        dataset_id: Option<&str>,
        instance_id: Option<&str>,
    ) -> Result<()> {
        self.inner
            .temporal_delete(id, attr, dataset_id, instance_id)
            .await
    }

    async fn temporal_modify_instance(
        &self,
        id: &str,
        attr: &str,
        instance_id: &str,
        value: Attribute,
    ) -> Result<()> {
        self.inner
            .temporal_modify_instance(id, attr, instance_id, value)
            .await
    }

    async fn put_context(&self, c: StoredContext) -> Result<()> {
        self.inner.put_context(c).await
    }

    async fn get_context(&self, id_or_url: &str) -> Result<Option<StoredContext>> {
        self.inner.get_context(id_or_url).await
    }

    async fn list_contexts(&self) -> Result<Vec<StoredContext>> {
        self.inner.list_contexts().await
    }

    async fn delete_context(&self, id: &str) -> Result<bool> {
        self.inner.delete_context(id).await
    }

    async fn put_dataset(&self, d: Dataset) -> Result<()> {
        self.inner.put_dataset(d).await
    }

    async fn get_dataset(&self, id: &str) -> Result<Option<Dataset>> {
        self.inner.get_dataset(id).await
    }

    async fn list_datasets(&self) -> Result<Vec<Dataset>> {
        self.inner.list_datasets().await
    }

    async fn put_subscription(&self, s: StoredSubscription, create: bool) -> Result<()> {
        self.inner.put_subscription(s, create).await
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<StoredSubscription>> {
        self.inner.get_subscription(id).await
    }

    async fn list_subscriptions(&self) -> Result<Vec<StoredSubscription>> {
        self.inner.list_subscriptions().await
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool> {
        self.inner.delete_subscription(id).await
    }

    async fn is_notifier(&self) -> Result<bool> {
        self.inner.is_notifier().await
    }

    async fn changes_since(&self, after_seq: i64, limit: usize) -> Result<Vec<ChangeRecord>> {
        self.inner.changes_since(after_seq, limit).await
    }

    async fn enqueue_deliveries(
        &self,
        upto_seq: i64,
        deliveries: Vec<(String, Value)>,
    ) -> Result<()> {
        self.inner.enqueue_deliveries(upto_seq, deliveries).await
    }

    async fn pending_deliveries(&self, subscription_id: &str) -> Result<u64> {
        self.inner.pending_deliveries(subscription_id).await
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>> {
        self.inner.due_deliveries(now, limit).await
    }

    async fn finish_delivery(
        &self,
        delivery_id: i64,
        subscription_id: &str,
        at: DateTime<Utc>,
        error: Option<String>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.inner
            .finish_delivery(delivery_id, subscription_id, at, error, retry_at)
            .await
    }

    async fn put_scenario(&self, s: StoredScenario, create: bool) -> Result<()> {
        self.inner.put_scenario(s, create).await
    }

    async fn get_scenario(&self, id: &str) -> Result<Option<StoredScenario>> {
        self.inner.get_scenario(id).await
    }

    async fn list_scenarios(&self) -> Result<Vec<StoredScenario>> {
        self.inner.list_scenarios().await
    }

    async fn delete_scenario(&self, id: &str) -> Result<bool> {
        self.inner.delete_scenario(id).await
    }

    async fn put_run(&self, run: StoredRun, links: Option<Value>, create: bool) -> Result<()> {
        self.inner.put_run(run, links, create).await
    }

    async fn get_run(&self, id: &str) -> Result<Option<StoredRun>> {
        self.inner.get_run(id).await
    }

    async fn get_run_links(&self, id: &str) -> Result<Option<Value>> {
        self.inner.get_run_links(id).await
    }

    async fn list_runs(&self, scenario_id: &str) -> Result<Vec<StoredRun>> {
        self.inner.list_runs(scenario_id).await
    }

    async fn claim_run(
        &self,
        node: &str,
        lease: std::time::Duration,
    ) -> Result<Option<ClaimedRun>> {
        self.inner.claim_run(node, lease).await
    }

    async fn renew_run_lease(
        &self,
        id: &str,
        node: &str,
        lease: std::time::Duration,
        progress: f64,
    ) -> Result<RunLease> {
        self.inner.renew_run_lease(id, node, lease, progress).await
    }

    async fn finish_run(&self, node: &str, run: StoredRun, links: Option<Value>) -> Result<()> {
        self.inner.finish_run(node, run, links).await
    }

    async fn request_run_cancel(&self, id: &str) -> Result<Option<StoredRun>> {
        self.inner.request_run_cancel(id).await
    }

    async fn requeue_expired_runs(&self, max_attempts: u32) -> Result<Requeued> {
        self.inner.requeue_expired_runs(max_attempts).await
    }

    fn job_signal(&self) -> Arc<tokio::sync::Notify> {
        self.inner.job_signal()
    }

    async fn put_dead_letters(&self, letters: Vec<DeadLetter>) -> Result<()> {
        self.inner.put_dead_letters(letters).await
    }

    async fn dead_letters(
        &self,
        topic: Option<&str>,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<(u64, Vec<DeadLetter>)> {
        self.inner.dead_letters(topic, before_id, limit).await
    }

    async fn delete_dead_letters(&self, ids: Option<Vec<i64>>) -> Result<u64> {
        self.inner.delete_dead_letters(ids).await
    }

    async fn put_retention_policy(&self, p: RetentionPolicy) -> Result<bool> {
        self.inner.put_retention_policy(p).await
    }

    async fn get_retention_policy(&self, id: &str) -> Result<Option<RetentionPolicy>> {
        self.inner.get_retention_policy(id).await
    }

    async fn list_retention_policies(&self) -> Result<Vec<RetentionPolicy>> {
        self.inner.list_retention_policies().await
    }

    async fn delete_retention_policy(&self, id: &str) -> Result<bool> {
        self.inner.delete_retention_policy(id).await
    }

    async fn apply_retention(&self, now: DateTime<Utc>, chunk: usize) -> Result<RetentionReport> {
        self.inner.apply_retention(now, chunk).await
    }

    async fn retention_status(&self) -> Result<Option<RetentionReport>> {
        self.inner.retention_status().await
    }

    async fn map_changes_since(&self, after_seq: i64, limit: usize) -> Result<MapChanges> {
        self.inner.map_changes_since(after_seq, limit).await
    }

    async fn modified_since(&self, since_ms: i64, limit: usize) -> Result<Vec<(i64, Entity)>> {
        self.inner.modified_since(since_ms, limit).await
    }

    async fn type_extent(
        &self,
        type_name: &str,
        datasets: Option<&[String]>,
    ) -> Result<Option<[f64; 4]>> {
        self.inner.type_extent(type_name, datasets).await
    }

    async fn dataset_times(&self, dataset: &str) -> Result<DatasetTimes> {
        self.inner.dataset_times(dataset).await
    }

    async fn put_account(&self, a: Account, create: bool) -> Result<()> {
        self.inner.put_account(a, create).await
    }

    async fn get_account(&self, id: &str) -> Result<Option<Account>> {
        self.inner.get_account(id).await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.inner.list_accounts().await
    }

    async fn delete_account(&self, id: &str) -> Result<bool> {
        self.inner.delete_account(id).await
    }

    async fn count_accounts(&self) -> Result<u64> {
        self.inner.count_accounts().await
    }

    async fn put_api_key(&self, k: ApiKeyRecord) -> Result<()> {
        self.inner.put_api_key(k).await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        self.inner.get_api_key(id).await
    }

    async fn list_api_keys(&self, account_id: Option<&str>) -> Result<Vec<ApiKeyRecord>> {
        self.inner.list_api_keys(account_id).await
    }

    async fn revoke_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        self.inner.revoke_api_key(id, at).await
    }

    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.inner.touch_api_key(id, at).await
    }

    async fn put_session(&self, s: SessionRecord) -> Result<()> {
        self.inner.put_session(s).await
    }

    async fn get_session(&self, hash: &str) -> Result<Option<SessionRecord>> {
        self.inner.get_session(hash).await
    }

    async fn delete_session(&self, hash: &str) -> Result<bool> {
        self.inner.delete_session(hash).await
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.inner.delete_expired_sessions(now).await
    }

    async fn record_usage(&self, records: Vec<UsageRecord>) -> Result<()> {
        self.inner.record_usage(records).await
    }

    async fn usage(&self, q: &UsageQuery) -> Result<(u64, Vec<UsageRecord>)> {
        self.inner.usage(q).await
    }

    async fn usage_summary(
        &self,
        datasets: &[String],
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageSummaryRow>> {
        self.inner.usage_summary(datasets, since).await
    }

    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: Value,
    ) -> Result<AuditRecord> {
        self.inner.append_audit(actor, action, target, detail).await
    }

    async fn audit(&self, after_seq: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>> {
        self.inner.audit(after_seq, limit).await
    }

    async fn verify_audit(&self) -> Result<AuditVerification> {
        self.inner.verify_audit().await
    }

    async fn participation_write(
        &self,
        ops: Vec<PartOp>,
    ) -> Result<std::result::Result<Vec<PartOutcome>, PartError>> {
        self.inner.participation_write(ops).await
    }

    async fn participation_get(&self, kind: &str, id: &str) -> Result<Option<ParticipationRecord>> {
        self.inner.participation_get(kind, id).await
    }

    async fn participation_list(
        &self,
        q: &PartQuery,
        count: bool,
    ) -> Result<(Vec<ParticipationRecord>, Option<u64>)> {
        self.inner.participation_list(q, count).await
    }

    async fn participation_marks(&self, q: &MarkQuery) -> Result<Vec<ParticipationMark>> {
        self.inner.participation_marks(q).await
    }

    async fn participation_tally(
        &self,
        kind: &str,
        targets: Option<&[String]>,
        scope: Option<&str>,
        by_value: bool,
    ) -> Result<Vec<Tally>> {
        self.inner
            .participation_tally(kind, targets, scope, by_value)
            .await
    }

    async fn participation_authors(
        &self,
        consultation: &str,
        record_kinds: &[&str],
        mark_kinds: &[&str],
    ) -> Result<u64> {
        self.inner
            .participation_authors(consultation, record_kinds, mark_kinds)
            .await
    }

    fn change_signal(&self) -> Arc<tokio::sync::Notify> {
        self.inner.change_signal()
    }

    fn config_epoch(&self) -> u64 {
        self.inner.config_epoch()
    }

    async fn check_integrity(&self) -> Result<()> {
        self.inner.check_integrity().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_the_store_refuses_is_a_dead_letter_and_the_rest_are_stored() {
    if !broker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("broker"));
    let store: Arc<dyn Store> = Arc::new(Poisoned {
        inner: SqliteStore::open(dir.path().join("twin.db")).unwrap(),
        poison: "urn:ngsi-ld:Sensor:bad".into(),
    });
    let config = twin_ingest::IngestConfig::parse(&format!(
        r#"[broker]
url = "{}"
client_id = "hub-poison"
[batch]
max_messages = 2000
max_wait_ms = 50
[[topic]]
filter = "p/+"
format = "json"
id = "urn:ngsi-ld:Sensor:{{$.s}}"
type = "Sensor"
observed_at = "$.ts"
[topic.attributes]
n = {{ path = "$.n", required = true }}
"#,
        broker.url()
    ))
    .unwrap();
    let ingest = twin_ingest::start(config, store.clone()).await.unwrap();
    let mut lines: Vec<String> = (0..200)
        .map(|i| {
            format!(
                r#"{{"s": "s{}", "n": {i}, "ts": {}}}"#,
                i % 20,
                1_780_000_000_000i64 + i
            )
        })
        .collect();
    lines.insert(
        117,
        r#"{"s": "bad", "n": 117, "ts": 1780000000117}"#.to_string(),
    );
    publish_all(broker.port, "p/x", lines).await;
    eventually(120, "201 messages handled", async || {
        ingest.stats.snapshot().acknowledged >= 201
    })
    .await;
    let (n, letters) = store.dead_letters(None, None, 10).await.unwrap();
    assert_eq!(n, 1);
    assert!(
        letters[0].reason.contains("disk I/O error"),
        "{}",
        letters[0].reason
    );
    assert!(String::from_utf8_lossy(&letters[0].payload).contains("\"bad\""));
    let s = ingest.stats.snapshot();
    let t = &s.topics["p/x"];
    assert_eq!((t.written, t.dead_lettered), (200, 1), "{t:?}");
    for k in 0..20 {
        let e = store
            .get(&format!("urn:ngsi-ld:Sensor:s{k}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            e.attrs["https://uri.etsi.org/ngsi-ld/default-context/n"][0].value,
            serde_json::json!(180 + k)
        );
    }
    assert!(store.get("urn:ngsi-ld:Sensor:bad").await.unwrap().is_none());
}
