//! Scenarios and model runs in the store (part of the conformance suite every backend must pass): documents kept as
//! given, create vs replace, runs with progress and a final status that cannot be overwritten, per-link results
//! kept apart from the run, and deletion of a scenario with its runs; all durable across a reopen. Runs as jobs:
//! claimed once however many nodes claim, leases renewed by their node and requeued when they expire (a bounded
//! number of times), a cancel flag any node sets and the computing node reads, outcomes recorded only by the node
//! holding the run, and workers woken when a run is queued.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use twin_model::ErrorKind;
use twin_store::*;

mod common;
use common::Opened;

on_both_backends!(
    scenarios_are_created_replaced_listed_and_deleted,
    runs_report_progress_and_keep_their_outcome,
    concurrent_claimers_never_get_the_same_run,
    expired_leases_requeue_runs_until_their_attempts_are_used_up,
    cancelling_is_a_flag_the_computing_node_reads,
    only_the_node_holding_a_run_finishes_it,
    a_queued_run_wakes_the_workers,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn scenario(id: &str, name: &str, at: DateTime<Utc>) -> StoredScenario {
    StoredScenario {
        id: id.into(),
        document: json!({"name": name, "edits": [{"kind": "closeStreet", "name": "Fabianinkatu"}]}),
        owner: Some("alice".into()),
        created_at: at,
        modified_at: at,
    }
}

fn run(id: &str, scenario: &str, at: DateTime<Utc>) -> StoredRun {
    StoredRun {
        id: id.into(),
        scenario_id: scenario.into(),
        status: RunStatus::Queued,
        progress: 0.0,
        message: None,
        created_at: at,
        started_at: None,
        finished_at: None,
        request: json!({"gap": 1e-8}),
        summary: Value::Null,
    }
}

async fn scenarios_are_created_replaced_listed_and_deleted(o: Opened) {
    let s = o.store.clone();
    assert!(s.list_scenarios().await.unwrap().is_empty());
    assert!(s.get_scenario("urn:s:1").await.unwrap().is_none());
    let a = scenario("urn:s:1", "closure", t0());
    s.put_scenario(a.clone(), true).await.unwrap();
    assert_eq!(s.get_scenario("urn:s:1").await.unwrap().unwrap(), a);
    let err = s.put_scenario(a.clone(), true).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    // replacing keeps the creation time and the owner
    let mut b = scenario("urn:s:1", "closure, revised", t0() + Duration::hours(1));
    b.created_at = t0() + Duration::days(9);
    b.owner = Some("mallory".into());
    s.put_scenario(b.clone(), false).await.unwrap();
    let got = s.get_scenario("urn:s:1").await.unwrap().unwrap();
    assert_eq!(got.document["name"], "closure, revised");
    assert_eq!(got.owner.as_deref(), Some("alice"));
    assert_eq!(
        (got.created_at, got.modified_at),
        (t0(), t0() + Duration::hours(1))
    );
    let err = s
        .put_scenario(scenario("urn:s:none", "x", t0()), false)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    // oldest first; a scenario may have no owner
    let mut older = scenario("urn:s:0", "older", t0() - Duration::hours(1));
    older.owner = None;
    s.put_scenario(older.clone(), true).await.unwrap();
    assert_eq!(s.get_scenario("urn:s:0").await.unwrap().unwrap(), older);
    let ids: Vec<String> = s
        .list_scenarios()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["urn:s:0", "urn:s:1"]);
    assert!(s.delete_scenario("urn:s:0").await.unwrap());
    assert!(!s.delete_scenario("urn:s:0").await.unwrap());
    assert_eq!(s.list_scenarios().await.unwrap().len(), 1);
    s.check_integrity().await.unwrap();
}

async fn runs_report_progress_and_keep_their_outcome(o: Opened) {
    let s = o.store.clone();
    s.put_scenario(scenario("urn:s:1", "closure", t0()), true)
        .await
        .unwrap();
    // a run needs its scenario
    let err = s
        .put_run(run("urn:r:x", "urn:s:none", t0()), None, true)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    let mut r = run("urn:r:1", "urn:s:1", t0());
    s.put_run(r.clone(), None, true).await.unwrap();
    assert_eq!(s.get_run("urn:r:1").await.unwrap().unwrap(), r);
    assert_eq!(s.get_run_links("urn:r:1").await.unwrap(), None);
    assert_eq!(
        s.put_run(r.clone(), None, true).await.unwrap_err().kind,
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        s.put_run(run("urn:r:2", "urn:s:1", t0()), None, false)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::ResourceNotFound
    );
    // progress must be a fraction
    r.progress = f64::NAN;
    assert_eq!(
        s.put_run(r.clone(), None, false).await.unwrap_err().kind,
        ErrorKind::BadRequestData
    );
    r.progress = 1.5;
    assert!(s.put_run(r.clone(), None, false).await.is_err());
    // running, then done with results
    r.status = RunStatus::Running;
    r.progress = 0.4;
    r.started_at = Some(t0() + Duration::seconds(1));
    s.put_run(r.clone(), None, false).await.unwrap();
    assert_eq!(s.get_run("urn:r:1").await.unwrap().unwrap(), r);
    let links = json!({"links": {"urn:ngsi-ld:RoadLink:1": {"flow": 12.5, "deltaPct": null}}});
    r.status = RunStatus::Done;
    r.progress = 1.0;
    r.finished_at = Some(t0() + Duration::seconds(3));
    r.summary = json!({"vehicleHours": 87.8, "unservedPairs": []});
    r.message = Some("converged".into());
    s.put_run(r.clone(), Some(links.clone()), false)
        .await
        .unwrap();
    assert_eq!(s.get_run("urn:r:1").await.unwrap().unwrap(), r);
    assert_eq!(
        s.get_run_links("urn:r:1").await.unwrap(),
        Some(links.clone())
    );
    // a final status is final: a late writer gets a conflict and changes nothing
    let mut late = r.clone();
    late.status = RunStatus::Cancelled;
    assert_eq!(
        s.put_run(late, None, false).await.unwrap_err().kind,
        ErrorKind::Conflict
    );
    assert_eq!(
        s.get_run("urn:r:1").await.unwrap().unwrap().status,
        RunStatus::Done
    );
    // a run stays with its scenario
    let mut moved = run("urn:r:3", "urn:s:1", t0() + Duration::seconds(5));
    s.put_run(moved.clone(), None, true).await.unwrap();
    moved.scenario_id = "urn:s:other".into();
    assert_eq!(
        s.put_run(moved, None, false).await.unwrap_err().kind,
        ErrorKind::BadRequestData
    );
    // listed oldest first, without their results
    let runs = s.list_runs("urn:s:1").await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["urn:r:1", "urn:r:3"]);
    assert!(s.list_runs("urn:s:none").await.unwrap().is_empty());

    // durable across a reopen
    drop(s);
    let s = o.reopen().await;
    assert_eq!(s.get_run("urn:r:1").await.unwrap().unwrap(), r);
    assert_eq!(s.get_run_links("urn:r:1").await.unwrap(), Some(links));
    // deleting the scenario deletes its runs and their results
    assert!(s.delete_scenario("urn:s:1").await.unwrap());
    assert!(s.get_run("urn:r:1").await.unwrap().is_none());
    assert!(s.get_run_links("urn:r:1").await.unwrap().is_none());
    assert!(s.list_runs("urn:s:1").await.unwrap().is_empty());
    // and a runner that writes after the deletion does not bring the run back
    assert_eq!(
        s.put_run(run("urn:r:3", "urn:s:1", t0()), None, false)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::ResourceNotFound
    );
    s.check_integrity().await.unwrap();
}

#[test]
fn run_statuses() {
    for st in [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Done,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ] {
        assert_eq!(RunStatus::parse(st.as_str()), Some(st));
        assert_eq!(serde_json::to_value(st).unwrap(), json!(st.as_str()));
    }
    assert!(RunStatus::Done.is_final() && !RunStatus::Running.is_final());
    assert_eq!(RunStatus::parse("finished"), None);
}

const LONG: std::time::Duration = std::time::Duration::from_secs(60);

/// A scenario with `n` queued runs, created a second apart (so the oldest is `urn:r:0`).
async fn queued_runs(s: &Arc<dyn Store>, n: usize) -> Vec<String> {
    s.put_scenario(scenario("urn:s:1", "closure", t0()), true)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("urn:r:{i}");
        s.put_run(
            run(&id, "urn:s:1", t0() + Duration::seconds(i as i64)),
            None,
            true,
        )
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

/// Lets a run's lease run out: renewed by its node for a millisecond, then a little wait.
async fn expire(s: &Arc<dyn Store>, id: &str, node: &str) {
    let held = s
        .renew_run_lease(id, node, std::time::Duration::from_millis(1), 0.5)
        .await
        .unwrap();
    assert!(matches!(held, RunLease::Held { .. }), "{held:?}");
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
}

async fn concurrent_claimers_never_get_the_same_run(o: Opened) {
    const RUNS: usize = 24;
    let a = o.store.clone();
    let ids = queued_runs(&a, RUNS).await;
    // a second node on the same data (PostgreSQL), or a second store on the same file (SQLite)
    let b = o.reopen().await;
    let mut tasks = Vec::new();
    for (i, s) in [a.clone(), b.clone(), a.clone(), b.clone(), a.clone(), b]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{i}");
            let mut got = Vec::new();
            while let Some(c) = s.claim_run(&node, LONG).await.unwrap() {
                assert_eq!(c.attempt, 1);
                assert_eq!(c.run.status, RunStatus::Running);
                got.push((c.run.id, node.clone()));
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let distinct: HashSet<&String> = claimed.iter().map(|(id, _)| id).collect();
    assert_eq!(
        claimed.len(),
        RUNS,
        "every run claimed exactly once: {claimed:?}"
    );
    assert_eq!(distinct.len(), RUNS);
    // each is running, held by the node that claimed it (only that node renews it)
    for (id, node) in &claimed {
        let r = a.get_run(id).await.unwrap().unwrap();
        assert_eq!(r.status, RunStatus::Running);
        assert!(r.started_at.is_some());
        assert!(matches!(
            a.renew_run_lease(id, node, LONG, 0.1).await.unwrap(),
            RunLease::Held { .. }
        ));
        assert_eq!(
            a.renew_run_lease(id, "someone-else", LONG, 0.1)
                .await
                .unwrap(),
            RunLease::Lost
        );
    }
    assert!(a.claim_run("late", LONG).await.unwrap().is_none());
    assert_eq!(ids.len(), RUNS);
    // nothing expired: nothing requeued
    assert_eq!(
        a.requeue_expired_runs(3).await.unwrap(),
        Requeued::default()
    );
}

async fn expired_leases_requeue_runs_until_their_attempts_are_used_up(o: Opened) {
    let s = o.store.clone();
    let ids = queued_runs(&s, 2).await;
    // the oldest queued run is claimed first
    let c = s.claim_run("a", LONG).await.unwrap().unwrap();
    assert_eq!((c.run.id.as_str(), c.attempt), ("urn:r:0", 1));
    assert_eq!(c.run.progress, 0.0);
    // the heartbeat writes the progress
    assert_eq!(
        s.renew_run_lease(&ids[0], "a", LONG, 0.25).await.unwrap(),
        RunLease::Held {
            cancel_requested: false
        }
    );
    assert_eq!(s.get_run(&ids[0]).await.unwrap().unwrap().progress, 0.25);
    assert_eq!(
        s.renew_run_lease(&ids[0], "a", LONG, 1.5)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::BadRequestData
    );
    // node a dies: its lease runs out and the run is queued again, from the start
    expire(&s, &ids[0], "a").await;
    let r = s.requeue_expired_runs(3).await.unwrap();
    assert_eq!(r.requeued, [ids[0].clone()]);
    assert!(r.failed.is_empty() && r.cancelled.is_empty());
    let q = s.get_run(&ids[0]).await.unwrap().unwrap();
    assert_eq!((q.status, q.progress), (RunStatus::Queued, 0.0));
    assert!(q.message.as_deref().unwrap().contains("requeued"), "{q:?}");
    // a node that comes back finds it lost, and cannot record an outcome
    assert_eq!(
        s.renew_run_lease(&ids[0], "a", LONG, 0.9).await.unwrap(),
        RunLease::Lost
    );
    let mut late = q.clone();
    late.status = RunStatus::Done;
    assert_eq!(
        s.finish_run("a", late, None).await.unwrap_err().kind,
        ErrorKind::Conflict
    );
    // claimed again (before the younger run: it is older), by another node, as attempt 2, then 3
    for (node, attempt) in [("b", 2), ("c", 3)] {
        let c = s.claim_run(node, LONG).await.unwrap().unwrap();
        assert_eq!((c.run.id.as_str(), c.attempt), (ids[0].as_str(), attempt));
        expire(&s, &ids[0], node).await;
        let r = s.requeue_expired_runs(3).await.unwrap();
        if attempt < 3 {
            assert_eq!(r.requeued, [ids[0].clone()]);
        } else {
            // its attempts are used up: failed, saying why
            assert_eq!(r.failed, [ids[0].clone()]);
            assert!(r.requeued.is_empty());
        }
    }
    let f = s.get_run(&ids[0]).await.unwrap().unwrap();
    assert_eq!(f.status, RunStatus::Failed);
    assert!(f.finished_at.is_some());
    let why = f.message.unwrap();
    assert!(why.contains("3 time") && why.contains("node"), "{why}");
    // the other run is next; then nothing is left
    assert_eq!(
        s.claim_run("b", LONG).await.unwrap().unwrap().run.id,
        ids[1]
    );
    assert!(s.claim_run("b", LONG).await.unwrap().is_none());
    s.check_integrity().await.unwrap();
}

async fn cancelling_is_a_flag_the_computing_node_reads(o: Opened) {
    let s = o.store.clone();
    let ids = queued_runs(&s, 3).await;
    assert!(s.request_run_cancel("urn:r:none").await.unwrap().is_none());
    // queued: cancelled at once, and never claimed
    let r = s.request_run_cancel(&ids[0]).await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.message.as_deref(), Some("cancelled"));
    assert!(r.finished_at.is_some());
    let c = s.claim_run("a", LONG).await.unwrap().unwrap();
    assert_eq!(c.run.id, ids[1]);
    // running: a flag, read by the node at its next heartbeat (from another node on the same data)
    let other = o.reopen().await;
    let r = other.request_run_cancel(&ids[1]).await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Running);
    assert_eq!(
        s.renew_run_lease(&ids[1], "a", LONG, 0.5).await.unwrap(),
        RunLease::Held {
            cancel_requested: true
        }
    );
    let mut done = s.get_run(&ids[1]).await.unwrap().unwrap();
    done.status = RunStatus::Cancelled;
    done.message = Some("cancelled".into());
    done.finished_at = Some(t0() + Duration::hours(1));
    s.finish_run("a", done.clone(), None).await.unwrap();
    assert_eq!(s.get_run(&ids[1]).await.unwrap().unwrap(), done);
    // an ended run is left as it is
    let r = other.request_run_cancel(&ids[1]).await.unwrap().unwrap();
    assert_eq!(r, done);
    // a run whose node died after a cancel was requested ends cancelled, not requeued
    let c = s.claim_run("b", LONG).await.unwrap().unwrap();
    assert_eq!(c.run.id, ids[2]);
    s.request_run_cancel(&ids[2]).await.unwrap();
    expire(&s, &ids[2], "b").await;
    let r = s.requeue_expired_runs(3).await.unwrap();
    assert_eq!(r.cancelled, [ids[2].clone()]);
    assert_eq!(
        s.get_run(&ids[2]).await.unwrap().unwrap().status,
        RunStatus::Cancelled
    );
}

async fn only_the_node_holding_a_run_finishes_it(o: Opened) {
    let s = o.store.clone();
    let ids = queued_runs(&s, 1).await;
    let mut r = s.claim_run("a", LONG).await.unwrap().unwrap().run;
    // not final: refused
    assert_eq!(
        s.finish_run("a", r.clone(), None).await.unwrap_err().kind,
        ErrorKind::BadRequestData
    );
    r.status = RunStatus::Done;
    r.progress = 1.0;
    r.message = Some("converged".into());
    r.finished_at = Some(t0() + Duration::minutes(5));
    r.summary = json!({"vehicleHours": 1.5});
    let links = json!({"links": {"urn:ngsi-ld:RoadLink:1": {"flow": 3.0}}});
    // another node: refused
    assert_eq!(
        s.finish_run("b", r.clone(), Some(links.clone()))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Conflict
    );
    s.finish_run("a", r.clone(), Some(links.clone()))
        .await
        .unwrap();
    assert_eq!(s.get_run(&ids[0]).await.unwrap().unwrap(), r);
    assert_eq!(s.get_run_links(&ids[0]).await.unwrap(), Some(links));
    // once ended, nobody holds it: no more heartbeats, no second outcome
    assert_eq!(
        s.renew_run_lease(&ids[0], "a", LONG, 1.0).await.unwrap(),
        RunLease::Lost
    );
    let mut again = r.clone();
    again.status = RunStatus::Failed;
    assert_eq!(
        s.finish_run("a", again, None).await.unwrap_err().kind,
        ErrorKind::Conflict
    );
    // a run deleted with its scenario: lost, and its outcome finds nothing
    let c = {
        s.put_run(run("urn:r:9", "urn:s:1", t0()), None, true)
            .await
            .unwrap();
        s.claim_run("a", LONG).await.unwrap().unwrap()
    };
    assert!(s.delete_scenario("urn:s:1").await.unwrap());
    assert_eq!(
        s.renew_run_lease(&c.run.id, "a", LONG, 0.5).await.unwrap(),
        RunLease::Lost
    );
    let mut gone = c.run;
    gone.status = RunStatus::Done;
    assert_eq!(
        s.finish_run("a", gone, None).await.unwrap_err().kind,
        ErrorKind::ResourceNotFound
    );
}

async fn a_queued_run_wakes_the_workers(o: Opened) {
    let s = o.store.clone();
    let signal = s.job_signal();
    // a wake-up left from opening (PostgreSQL wakes once when it starts listening) is taken first
    let _ = tokio::time::timeout(std::time::Duration::from_millis(1500), signal.notified()).await;
    queued_runs(&s, 1).await;
    tokio::time::timeout(std::time::Duration::from_secs(5), signal.notified())
        .await
        .expect("a queued run wakes the worker");
}

#[tokio::test]
async fn a_database_from_before_jobs_and_owners_gains_their_columns_and_its_running_runs_are_requeued(
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        // scenarios and scenario_runs as a build from before jobs and owners made them, with a run it left running
        // when it stopped
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TABLE scenario_runs; DROP TABLE scenarios;
             CREATE TABLE scenarios (id TEXT PRIMARY KEY, doc TEXT NOT NULL, created_ms INTEGER NOT NULL,
                 modified_ms INTEGER NOT NULL);
             CREATE TABLE scenario_runs (id TEXT PRIMARY KEY, scenario TEXT NOT NULL, status TEXT NOT NULL,
                 progress REAL NOT NULL, message TEXT, created_ms INTEGER NOT NULL, started_ms INTEGER,
                 finished_ms INTEGER, request TEXT NOT NULL, summary TEXT NOT NULL, links TEXT);
             INSERT INTO scenarios VALUES ('urn:s:1', '{}', 0, 0);
             INSERT INTO scenario_runs VALUES ('urn:r:1', 'urn:s:1', 'running', 0.5, NULL, 0, 0, NULL, '{}', 'null',
                 NULL);",
        )
        .unwrap();
    }
    let s: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    // a scenario from before owners has none: only administrators may change it
    assert_eq!(
        s.get_scenario("urn:s:1").await.unwrap().unwrap().owner,
        None
    );
    let r = s.requeue_expired_runs(3).await.unwrap();
    assert_eq!(r.requeued, ["urn:r:1"]);
    let c = s.claim_run("a", LONG).await.unwrap().unwrap();
    assert_eq!((c.run.id.as_str(), c.attempt), ("urn:r:1", 1));
}
