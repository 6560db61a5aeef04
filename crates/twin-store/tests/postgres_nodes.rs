//! What only the PostgreSQL backend promises: versioned migrations (recorded, re-run as a no-op, a newer schema
//! refused) and several API nodes on one database (writes seen by every node, change signals across nodes,
//! notifications enqueued exactly once, no lost update between nodes, deliveries claimed by one node at a time).
//! Each test skips (one line on stderr) when PostgreSQL is unreachable outside CI.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use twin_model::{Attribute, Entity, ErrorKind};
use twin_store::testing::{fresh_postgres, TestDatabase};
use twin_store::*;

const N: &str = "https://uri.etsi.org/ngsi-ld/default-context/n";

fn counter(id: &str, n: i64) -> Entity {
    let mut e = Entity::new(id, "https://uri.etsi.org/ngsi-ld/default-context/Counter");
    e.attrs
        .insert(N.to_string(), vec![Attribute::property(json!(n))]);
    e
}

/// A change that adds one to the counter `n` (creating it at 1).
fn increment(id: &str) -> EntityChange {
    let id = id.to_string();
    Box::new(move |cur: Option<Entity>| {
        let n = cur
            .as_ref()
            .and_then(|e| e.attrs.get(N))
            .and_then(|a| a[0].value.as_i64())
            .unwrap_or(0);
        Ok(ChangeOutcome::Put {
            entity: counter(&id, n + 1),
            written: vec![(N.to_string(), None)],
            removed: vec![],
            result: Value::Null,
        })
    })
}

/// Creates a subscription, so that changes are journaled.
async fn subscribe(s: &PostgresStore, id: &str) {
    let sub = StoredSubscription {
        id: id.to_string(),
        document: json!({"type": "Subscription"}),
        status: DeliveryStatus::default(),
    };
    s.put_subscription(sub, true).await.unwrap();
}

async fn second_node(db: &TestDatabase) -> PostgresStore {
    PostgresStore::connect(db.url()).await.unwrap()
}

/// Waits for a store's change signal.
async fn woken(s: &dyn Store) -> bool {
    tokio::time::timeout(Duration::from_secs(5), s.change_signal().notified())
        .await
        .is_ok()
}

#[tokio::test]
async fn migrations_are_recorded_and_rerunning_them_changes_nothing() {
    let Some((s, db)) = fresh_postgres().await else {
        return;
    };
    let applied = s.applied_migrations().await.unwrap();
    assert_eq!(
        applied,
        vec![
            (1, "init".to_string()),
            (2, "entity_locks".to_string()),
            (3, "config_notify".to_string()),
            (4, "retention".to_string()),
            (5, "run_jobs".to_string()),
            (6, "trust".to_string()),
            (7, "scenario_owner".to_string()),
            (8, "credentials_notify".to_string()),
            (9, "participation".to_string()),
            (10, "participation_threads".to_string()),
        ]
    );
    assert_eq!(
        applied.last().unwrap().0,
        twin_store::postgres::SCHEMA_VERSION
    );
    s.write("urn:c:1", increment("urn:c:1")).await.unwrap();
    // a restart (or a second node) finds the schema in place and keeps the data
    let again = second_node(&db).await;
    assert_eq!(again.applied_migrations().await.unwrap(), applied);
    assert!(again.get("urn:c:1").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_on_an_empty_database_migrate_it_once() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(db.url()),
        PostgresStore::connect(db.url()),
        PostgresStore::connect(db.url())
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let applied = a.applied_migrations().await.unwrap();
    assert_eq!(
        applied.last().map(|m| m.0),
        Some(twin_store::postgres::SCHEMA_VERSION)
    );
    assert_eq!(b.applied_migrations().await.unwrap(), applied);
    assert_eq!(c.applied_migrations().await.unwrap(), applied);
}

#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused() {
    let Some((s, db)) = fresh_postgres().await else {
        return;
    };
    drop(s);
    let (c, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.execute(
        "INSERT INTO schema_migrations(version, name) VALUES (9999, 'from the future')",
        &[],
    )
    .await
    .unwrap();
    let err = PostgresStore::connect(db.url()).await.err().unwrap();
    assert!(err.detail.contains("newer"), "{}", err.detail);
    assert!(err.detail.contains("9999"), "{}", err.detail);
}

#[tokio::test]
async fn a_missing_migration_below_the_newest_is_applied() {
    // as when a database was migrated by a build that had migration 5 but not 3 (two lines of work each added one):
    // the next start applies 3, although 5 is newer
    let Some((s, db)) = fresh_postgres().await else {
        return;
    };
    let before = s.applied_migrations().await.unwrap();
    drop(s);
    let (c, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.batch_execute(
        "DROP TRIGGER contexts_changed ON contexts; DROP TRIGGER datasets_changed ON datasets;
         DROP FUNCTION urbantwin_config_changed() CASCADE; DELETE FROM schema_migrations WHERE version = 3;",
    )
    .await
    .unwrap();
    let again = PostgresStore::connect(db.url()).await.unwrap();
    assert_eq!(again.applied_migrations().await.unwrap(), before);
    let triggers: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgname IN ('contexts_changed', 'datasets_changed')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(triggers, 2);
    // a migration this build does not know (another line of work's) is refused, whatever its number: here one
    // below the newest (every version from 1 to the newest is known to this build, so 0 stands in for it)
    c.execute(
        "INSERT INTO schema_migrations(version, name) VALUES (0, 'unknown here')",
        &[],
    )
    .await
    .unwrap();
    drop(again);
    let err = PostgresStore::connect(db.url()).await.err().unwrap();
    assert!(err.detail.contains("migration 0"), "{}", err.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_see_each_others_writes_and_signals() {
    let Some((a, db)) = fresh_postgres().await else {
        return;
    };
    let b = second_node(&db).await;
    // each listener wakes once when it starts listening
    assert!(woken(&a).await && woken(&b).await);
    let sensor: Entity = {
        let mut e = counter("urn:s:1", 0);
        let mut loc = Attribute::property(json!({"type": "Point", "coordinates": [24.9, 60.2]}));
        loc.kind = twin_model::entity::AttrKind::GeoProperty;
        e.attrs
            .insert("https://uri.etsi.org/ngsi-ld/location".into(), vec![loc]);
        e
    };
    a.write("urn:s:1", store_as_is(sensor.clone()))
        .await
        .unwrap();
    assert_eq!(b.get("urn:s:1").await.unwrap().unwrap(), sensor);
    // the map change NOTIFYs every node: b's tile caches learn of it
    assert!(
        woken(&b).await,
        "the other node's change signal did not wake"
    );
    let m = b.map_changes_since(0, 10).await.unwrap();
    assert_eq!((m.head, m.changes.len(), m.complete), (1, 1, true));

    // the LISTEN connections drop (a restarted server, a network cut): they reconnect and listen again
    let (c, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let killed: i64 = c
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 2);
    assert!(woken(&b).await, "b's listener did not come back");
    a.write("urn:s:1", store_as_is(sensor)).await.unwrap();
    assert!(
        woken(&b).await,
        "b's listener does not hear a after reconnecting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_of_one_entity_from_two_nodes_lose_nothing() {
    let Some((a, db)) = fresh_postgres().await else {
        return;
    };
    let a = Arc::new(a);
    let b = Arc::new(second_node(&db).await);
    // node a: 200 single writes, 8 at a time; node b: 20 batches of 10 increments of the same entity
    let singles = {
        let a = a.clone();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..200 {
                let a = a.clone();
                tasks.spawn(async move { a.write("urn:c:x", increment("urn:c:x")).await });
                if i % 8 == 7 {
                    while let Some(r) = tasks.join_next().await {
                        r.unwrap().unwrap();
                    }
                }
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap().unwrap();
            }
        })
    };
    let batches = {
        let b = b.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let items = (0..10)
                    .map(|_| ("urn:c:x".to_string(), increment("urn:c:x")))
                    .collect();
                for r in b.write_batch(items).await.unwrap() {
                    r.unwrap();
                }
            }
        })
    };
    singles.await.unwrap();
    batches.await.unwrap();
    let e = a.get("urn:c:x").await.unwrap().unwrap();
    assert_eq!(e.attrs[N][0].value, json!(400));
    // every increment went into history too
    let h = b
        .temporal_query(&TemporalQuery {
            entities: EntityQuery {
                ids: Some(vec!["urn:c:x".into()]),
                ..Default::default()
            },
            instance_limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(h[0].attrs[N].len(), 400);
    a.check_integrity().await.unwrap();

    // the lock rows of entities that are gone, or never came, go too
    let refused: EntityChange = Box::new(|_| Err(twin_model::NgsiError::bad_data("no")));
    assert!(a.write("urn:c:none", refused).await.is_err());
    b.write("urn:c:x", Box::new(|_| Ok(ChangeOutcome::Delete)))
        .await
        .unwrap();
    let (c, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let locks: i64 = c
        .query_one("SELECT count(*) FROM entity_locks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_thousands_of_entities_fit_the_lock_table() {
    let Some((a, db)) = fresh_postgres().await else {
        return;
    };
    let b = second_node(&db).await;
    // 2 x 7000 entities at once: more than PostgreSQL's shared lock table holds by default (64 x 100 slots), had
    // each entity an advisory lock; half of them in both batches, so the batches also queue on each other
    let batch = |from: usize| -> Vec<(String, EntityChange)> {
        (from..from + 7000)
            .map(|i| {
                let id = format!("urn:c:{i:05}");
                let change = increment(&id);
                (id, change)
            })
            .collect()
    };
    let (ra, rb) = tokio::join!(a.write_batch(batch(0)), b.write_batch(batch(3500)));
    assert!(ra
        .unwrap()
        .iter()
        .chain(rb.unwrap().iter())
        .all(|r| r.is_ok()));
    for (i, n) in [(0, 1), (3500, 2), (6999, 2), (10499, 1)] {
        let e = a.get(&format!("urn:c:{i:05}")).await.unwrap().unwrap();
        assert_eq!(e.attrs[N][0].value, json!(n), "urn:c:{i:05}");
    }
}

/// A notifier as the API runs it: reads the journal after its cursor and turns it into deliveries.
async fn notifier(s: Arc<PostgresStore>, sub: String, done: Arc<AtomicBool>) -> usize {
    let mut cursor = 0;
    let mut enqueued = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let changes = s.changes_since(cursor, 37).await.unwrap();
        if changes.is_empty() {
            if done.load(Ordering::SeqCst) && s.pending_deliveries(&sub).await.unwrap() >= 300 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let upto = changes.last().unwrap().seq;
        let deliveries = changes
            .iter()
            .map(|c| (sub.clone(), json!({"seq": c.seq, "id": c.entity_id})))
            .collect();
        match s.enqueue_deliveries(upto, deliveries).await {
            Ok(()) => {
                enqueued += changes.len();
                cursor = upto;
            }
            Err(e) if e.kind == ErrorKind::Conflict => cursor = 0,
            Err(e) => panic!("{e:?}"),
        }
    }
    enqueued
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notifiers_enqueue_every_change_exactly_once() {
    let Some((a, db)) = fresh_postgres().await else {
        return;
    };
    let a = Arc::new(a);
    let b = Arc::new(second_node(&db).await);
    let sub = "urn:ngsi-ld:Subscription:1".to_string();
    subscribe(&a, &sub).await;
    let done = Arc::new(AtomicBool::new(false));
    let na = tokio::spawn(notifier(a.clone(), sub.clone(), done.clone()));
    let nb = tokio::spawn(notifier(b.clone(), sub.clone(), done.clone()));
    // 300 changes, written through both nodes while both notifiers run
    for i in 0..150 {
        let id = format!("urn:e:{}", i % 20);
        a.write(&id, increment(&id)).await.unwrap();
        let items = vec![(id.clone(), increment(&id))];
        b.write_batch(items).await.unwrap().pop().unwrap().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (ea, eb) = (na.await.unwrap(), nb.await.unwrap());
    assert_eq!(ea + eb, 300, "enqueued by a: {ea}, by b: {eb}");
    assert!(
        ea == 0 || eb == 0,
        "only the node holding the notifier lock reads the journal"
    );
    let due = a
        .due_deliveries(Utc::now() + chrono::Duration::hours(1), 1000)
        .await
        .unwrap();
    let seqs: HashSet<i64> = due
        .iter()
        .map(|d| d.payload["seq"].as_i64().unwrap())
        .collect();
    assert_eq!((due.len(), seqs.len()), (300, 300));
    assert_eq!(
        seqs,
        (1..=300).collect::<HashSet<i64>>(),
        "journal seqs are gapless"
    );
    // a's claim keeps them from b until finished (or until the claim runs out); a sees its claims again
    assert_eq!(
        a.due_deliveries(Utc::now() + chrono::Duration::hours(1), 1000)
            .await
            .unwrap()
            .len(),
        300
    );
    assert!(b
        .due_deliveries(Utc::now() + chrono::Duration::hours(1), 1000)
        .await
        .unwrap()
        .is_empty());
    a.finish_delivery(
        due[0].id,
        &sub,
        Utc::now(),
        Some("refused".into()),
        Some(Utc::now()),
    )
    .await
    .unwrap();
    let retried = b.due_deliveries(Utc::now(), 1000).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].id, retried[0].attempts), (due[0].id, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_that_lost_its_changes_is_told_to_read_again() {
    let Some((a, _db)) = fresh_postgres().await else {
        return;
    };
    subscribe(&a, "s").await;
    for _ in 0..3 {
        a.write("urn:c:1", increment("urn:c:1")).await.unwrap();
    }
    let read = a.changes_since(0, 10).await.unwrap();
    assert_eq!(read.len(), 3);
    // someone else forgot the first change meanwhile (as a node that took over the journal would have)
    a.enqueue_deliveries(1, vec![]).await.unwrap();
    let read = a.changes_since(0, 10).await.unwrap();
    assert_eq!(read.iter().map(|c| c.seq).collect::<Vec<_>>(), [2, 3]);
    let (c, conn) = tokio_postgres::connect(_db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.execute("DELETE FROM changes WHERE seq = 2", &[])
        .await
        .unwrap();
    let err = a
        .enqueue_deliveries(3, vec![("s".into(), json!({}))])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);
    // nothing of the refused enqueue stayed
    assert_eq!(a.pending_deliveries("s").await.unwrap(), 0);
    assert_eq!(a.changes_since(0, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_takes_the_journal_over_when_the_notifier_dies() {
    let Some((a, db)) = fresh_postgres().await else {
        return;
    };
    let b = second_node(&db).await;
    subscribe(&a, "s").await;
    a.write("urn:c:1", increment("urn:c:1")).await.unwrap();
    assert_eq!(a.changes_since(0, 10).await.unwrap().len(), 1);
    assert!(
        b.changes_since(0, 10).await.unwrap().is_empty(),
        "a holds the notifier lock"
    );
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = b.changes_since(0, 10).await.unwrap();
        if got.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "b never took the journal over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sensor reading: the counter `n` plus a location (so each update is also a map change).
fn reading(id: &str) -> EntityChange {
    let id = id.to_string();
    let inner = increment(&id);
    Box::new(move |cur: Option<Entity>| {
        let mut out = inner(cur)?;
        if let ChangeOutcome::Put { entity, .. } = &mut out {
            let mut loc =
                Attribute::property(json!({"type": "Point", "coordinates": [24.9, 60.2]}));
            loc.kind = twin_model::entity::AttrKind::GeoProperty;
            entity
                .attrs
                .insert("https://uri.etsi.org/ngsi-ld/location".into(), vec![loc]);
        }
        Ok(out)
    })
}

/// write_batch throughput into PostgreSQL, for updates that only go into history and for located ones journaled for
/// a subscription: `cargo test -p twin-store --release --test postgres_nodes -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn write_batch_throughput() {
    let Some((s, _db)) = fresh_postgres().await else {
        return;
    };
    let sensors = 2000;
    let batch = 1000;
    let rounds = 30;
    let make = |i: usize| format!("urn:ngsi-ld:Sensor:{i:05}");
    let load: Vec<(String, EntityChange)> = (0..sensors)
        .map(|i| (make(i), increment(&make(i))))
        .collect();
    s.write_batch(load).await.unwrap();
    for journaled in [false, true] {
        if journaled {
            subscribe(&s, "s").await;
        }
        let start = Instant::now();
        for r in 0..rounds {
            let items: Vec<(String, EntityChange)> = (0..batch)
                .map(|k| {
                    let id = make((r * batch + k) % sensors);
                    let change = if journaled {
                        reading(&id)
                    } else {
                        increment(&id)
                    };
                    (id, change)
                })
                .collect();
            for w in s.write_batch(items).await.unwrap() {
                w.unwrap();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let n = (rounds * batch) as f64;
        eprintln!(
            "write_batch{}: {n} updates in {secs:.2} s = {:.0} entities/s (batches of {batch})",
            if journaled {
                " (located, journaled)"
            } else {
                ""
            },
            n / secs
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_does_not_hold_the_journal_lock_until_it_reaches_an_entity_written_meanwhile() {
    let Some((s, db)) = fresh_postgres().await else {
        return;
    };
    subscribe(&s, "urn:sub:import").await;
    let other = second_node(&db).await;
    // a stream (an import) writes A, and stays open
    let (tx, rx) = std::sync::mpsc::channel::<StreamMsg>();
    let s = Arc::new(s);
    let stream = {
        let s = s.clone();
        tokio::spawn(async move { s.write_stream(rx).await })
    };
    tx.send(StreamMsg::Change("urn:c:a".into(), increment("urn:c:a")))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // another node writes B meanwhile (journaled): it must not wait for the import to commit
    tokio::time::timeout(
        Duration::from_secs(5),
        other.write("urn:c:b", increment("urn:c:b")),
    )
    .await
    .expect("a single write waited for an open import")
    .unwrap();
    // the import then reaches B too, and commits
    tx.send(StreamMsg::Change("urn:c:b".into(), increment("urn:c:b")))
        .unwrap();
    tx.send(StreamMsg::Commit).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(10), stream)
        .await
        .expect("the import finished")
        .unwrap()
        .unwrap();
    assert_eq!((summary.created, summary.updated), (1, 1));
    let b = s.get("urn:c:b").await.unwrap().unwrap();
    assert_eq!(b.attrs[N][0].value, json!(2));
    // every change journaled once, in commit order: B (single write), then the import's A and B
    let changes = s.changes_since(0, 10).await.unwrap();
    let order: Vec<(&str, i64)> = changes
        .iter()
        .map(|c| {
            (
                c.entity_id.as_str(),
                c.entity.attrs[N][0].value.as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(order, [("urn:c:b", 1), ("urn:c:a", 1), ("urn:c:b", 2)]);
    let seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_or_an_account_changed_on_one_node_moves_the_others_epoch() {
    let Some((a, db)) = fresh_postgres().await else {
        return;
    };
    let b = second_node(&db).await;
    let now = chrono::Utc::now();
    let account = twin_store::trust::Account {
        id: "ann".into(),
        display_name: None,
        email: None,
        password_hash: None,
        roles: vec!["planner".into()],
        groups: vec![],
        organisation: None,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    a.put_account(account.clone(), true).await.unwrap();
    a.put_api_key(twin_store::trust::ApiKeyRecord {
        id: "k1".into(),
        account_id: "ann".into(),
        name: "t".into(),
        hash: "h".into(),
        scopes: vec!["read".into()],
        created_at: now,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    })
    .await
    .unwrap();
    // node b learns of a change made on node a through the database's notification
    let moved = |before: u64| {
        let b = &b;
        async move {
            let start = std::time::Instant::now();
            while b.config_epoch() == before {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "node b's epoch did not move"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // the touch of a key's last use is not a change anyone caches
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = b.config_epoch();
    a.touch_api_key("k1", now).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.config_epoch(), before);
    let before = a.config_epoch();
    let before_b = b.config_epoch();
    assert!(a.revoke_api_key("k1", now).await.unwrap());
    // the node of the change at once, the other when notified
    assert!(a.config_epoch() > before);
    moved(before_b).await;
    let before_b = b.config_epoch();
    let mut disabled = account;
    disabled.disabled = true;
    a.put_account(disabled, false).await.unwrap();
    moved(before_b).await;
}
