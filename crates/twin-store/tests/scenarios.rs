//! Scenarios and model runs in the store (part of the conformance suite every backend must pass): documents kept as
//! given, create vs replace, runs with progress and a final status that cannot be overwritten, per-link results
//! kept apart from the run, and deletion of a scenario with its runs; all durable across a reopen.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use twin_model::ErrorKind;
use twin_store::*;

mod common;
use common::Opened;

on_both_backends!(
    scenarios_are_created_replaced_listed_and_deleted,
    runs_report_progress_and_keep_their_outcome,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn scenario(id: &str, name: &str, at: DateTime<Utc>) -> StoredScenario {
    StoredScenario {
        id: id.into(),
        document: json!({"name": name, "edits": [{"kind": "closeStreet", "name": "Fabianinkatu"}]}),
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
    // replacing keeps the creation time
    let mut b = scenario("urn:s:1", "closure, revised", t0() + Duration::hours(1));
    b.created_at = t0() + Duration::days(9);
    s.put_scenario(b.clone(), false).await.unwrap();
    let got = s.get_scenario("urn:s:1").await.unwrap().unwrap();
    assert_eq!(got.document["name"], "closure, revised");
    assert_eq!(
        (got.created_at, got.modified_at),
        (t0(), t0() + Duration::hours(1))
    );
    let err = s
        .put_scenario(scenario("urn:s:none", "x", t0()), false)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    // oldest first
    s.put_scenario(
        scenario("urn:s:0", "older", t0() - Duration::hours(1)),
        true,
    )
    .await
    .unwrap();
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
