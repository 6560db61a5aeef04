//! `urbantwin retention` on a SQLite store: a policy set from the command line, `apply` folding old readings into
//! hourly buckets and deleting them (reported per policy, as text and JSON), a second `apply` that finds nothing,
//! and bad policies refused with the reason.

mod common;

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use common::urbantwin;
use serde_json::{json, Value};
use twin_model::Attribute;
use twin_store::{SqliteStore, Store};

const DEFAULT: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_apply_downsamples_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("city.db");
    let db_s = db.to_str().unwrap().to_string();
    {
        let store = SqliteStore::open(&db).unwrap();
        let t0 = Utc.with_ymd_and_hms(2021, 6, 1, 0, 0, 0).unwrap();
        let list: Vec<Attribute> = (0..600)
            .map(|i| {
                let mut a = Attribute::property(json!(i % 50));
                a.observed_at = Some(t0 + Duration::minutes(5 * i));
                a
            })
            .collect();
        store
            .temporal_append(
                "urn:ngsi-ld:TrafficFlowObserved:c1",
                Some(vec![format!("{DEFAULT}TrafficFlowObserved")]),
                vec![],
                BTreeMap::from([(format!("{DEFAULT}intensity"), list)]),
            )
            .await
            .unwrap();
    }
    // nothing to do without a policy
    let (ok, out, err) = urbantwin(&["retention", "apply", "--db", &db_s]);
    assert!(ok, "{err}");
    assert!(out.contains("no retention policies"), "{out}");

    let (ok, _, err) = urbantwin(&[
        "retention",
        "set",
        "--db",
        &db_s,
        r#"{"id": "x", "keepRaw": "P1D", "levels": [{"period": "PT7M"}]}"#,
    ]);
    assert!(!ok);
    assert!(err.contains("divide a day"), "{err}");
    let policy = r#"{"id": "traffic", "entityType": "TrafficFlowObserved", "keepRaw": "P30D",
        "levels": [{"period": "PT1H", "keep": "P1Y"}, {"period": "P1D"}]}"#;
    let (ok, out, err) = urbantwin(&["retention", "set", "--db", &db_s, policy]);
    assert!(ok, "{err}");
    assert!(out.contains("traffic created"), "{out}");
    let (ok, out, _) = urbantwin(&["retention", "list", "--db", &db_s]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["entityType"], "TrafficFlowObserved");

    // measured from the end of 2021: the readings (June 2021) are past 30 days, but not yet a year old
    let (ok, out, err) = urbantwin(&[
        "retention",
        "apply",
        "--db",
        &db_s,
        "--now",
        "2021-12-31T00:00:00Z",
        "--chunk",
        "64",
        "--json",
    ]);
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["policies"][0]["policy"], "traffic");
    assert_eq!(r["policies"][0]["rawDeleted"], 600);
    assert_eq!(r["policies"][0]["rawAggregated"], 600);
    assert_eq!(r["policies"][0]["bucketsRolledUp"], 0);
    // 600 readings every 5 minutes = 50 hours
    let c = rusqlite::Connection::open(&db).unwrap();
    let (raw, hours, days, count): (i64, i64, i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM temporal),
                    (SELECT count(*) FROM temporal_aggregates WHERE period = 'PT1H'),
                    (SELECT count(*) FROM temporal_aggregates WHERE period = 'P1D'),
                    (SELECT sum(count) FROM temporal_aggregates)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((raw, hours, days, count), (0, 50, 0, 600));

    // again: nothing more; two years on, the hours roll up into days
    let (ok, out, _) = urbantwin(&[
        "retention",
        "apply",
        "--db",
        &db_s,
        "--now",
        "2021-12-31T00:00:00Z",
    ]);
    assert!(ok);
    assert!(
        out.contains("traffic: 1 series, 0 raw instances deleted"),
        "{out}"
    );
    let (ok, out, _) = urbantwin(&[
        "retention",
        "apply",
        "--db",
        &db_s,
        "--now",
        "2023-06-01T00:00:00Z",
    ]);
    assert!(ok);
    assert!(out.contains("50 buckets rolled up"), "{out}");
    let (hours, days, count): (i64, i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM temporal_aggregates WHERE period = 'PT1H'),
                    (SELECT count(*) FROM temporal_aggregates WHERE period = 'P1D'),
                    (SELECT sum(count) FROM temporal_aggregates)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((hours, days, count), (0, 3, 600));
    let (ok, out, _) = urbantwin(&["retention", "delete", "traffic", "--db", &db_s]);
    assert!(ok, "{out}");
    let (ok, _, err) = urbantwin(&["retention", "delete", "traffic", "--db", &db_s]);
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
}
