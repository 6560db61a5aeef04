//! Retention and downsampling on both backends: raw instances past their window are replaced by UTC-aligned
//! buckets equal to a brute-force computation over the original instances, aggregation queries answer the same
//! before and after, runs are idempotent, late raw data merges into existing buckets, non-numeric values go, data
//! without a policy stays, and the most specific policy wins.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use twin_model::{Attribute, ErrorKind};
use twin_store::*;

mod common;
use common::Opened;

on_both_backends!(
    downsampling_replaces_raw_with_exact_buckets,
    late_raw_data_merges_into_written_buckets,
    the_most_specific_policy_applies_and_no_policy_keeps_everything,
    policies_are_checked_listed_and_deleted,
);

const V: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

fn d0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn num(v: f64, at: DateTime<Utc>) -> Attribute {
    let mut a = Attribute::property(json!(v));
    a.observed_at = Some(at);
    a.modified_at = Some(at);
    a
}

fn text(v: &str, at: DateTime<Utc>) -> Attribute {
    let mut a = Attribute::property(json!(v));
    a.observed_at = Some(at);
    a.modified_at = Some(at);
    a
}

/// Readings every 7 minutes for `days` days from `d0()`, with values that repeat rarely.
fn readings(days: i64) -> Vec<(DateTime<Utc>, f64)> {
    let n = days * 24 * 60 / 7;
    (0..n)
        .map(|i| {
            (
                d0() + Duration::minutes(7 * i),
                ((i * 7919) % 1000) as f64 / 10.0 - 20.0,
            )
        })
        .collect()
}

fn policy(v: Value) -> RetentionPolicy {
    serde_json::from_value(v).unwrap()
}

fn query(id: &str, attr: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> TemporalQuery {
    TemporalQuery {
        entities: EntityQuery {
            ids: Some(vec![id.into()]),
            ..Default::default()
        },
        attrs: Some(vec![attr.into()]),
        timerel: Some(TimeRel::Between(from, to)),
        instance_limit: 1_000_000,
        ..Default::default()
    }
}

const METHODS: [AggrMethod; 6] = [
    AggrMethod::TotalCount,
    AggrMethod::Sum,
    AggrMethod::Avg,
    AggrMethod::Min,
    AggrMethod::Max,
    AggrMethod::Stddev,
];

fn aggregation(period: &str) -> Aggregation {
    Aggregation {
        methods: METHODS.to_vec(),
        period: Some(twin_model::duration::Duration::parse(period).unwrap()),
    }
}

/// method → [(start, value)] of one attribute.
type Periods = BTreeMap<AggrMethod, Vec<(DateTime<Utc>, Value)>>;

async fn aggregate(s: &dyn Store, q: &TemporalQuery, period: &str) -> Periods {
    let attr = q.attrs.as_ref().unwrap()[0].clone();
    let r = s.temporal_aggregate(q, &aggregation(period)).await.unwrap();
    r[0].attrs
        .get(&attr)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (*k, v.iter().map(|p| (p.start, p.value.clone())).collect()))
                .collect()
        })
        .unwrap_or_default()
}

/// The same periods computed over the instances themselves.
fn brute_force(
    vals: &[(DateTime<Utc>, f64)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Duration,
) -> Periods {
    let mut out = Periods::new();
    let mut start = from;
    while start < to {
        let end = start + step;
        let xs: Vec<f64> = vals
            .iter()
            .filter(|(t, _)| *t >= start && *t < end)
            .map(|(_, x)| *x)
            .collect();
        if !xs.is_empty() {
            let n = xs.len() as f64;
            let sum: f64 = xs.iter().sum();
            let sumsq: f64 = xs.iter().map(|x| x * x).sum();
            let sd = if xs.len() > 1 {
                ((sumsq - sum * sum / n) / (n - 1.0)).max(0.0).sqrt()
            } else {
                0.0
            };
            for (m, v) in [
                (AggrMethod::TotalCount, json!(xs.len())),
                (AggrMethod::Sum, json!(sum)),
                (AggrMethod::Avg, json!(sum / n)),
                (
                    AggrMethod::Min,
                    json!(xs.iter().cloned().fold(f64::MAX, f64::min)),
                ),
                (
                    AggrMethod::Max,
                    json!(xs.iter().cloned().fold(f64::MIN, f64::max)),
                ),
                (AggrMethod::Stddev, json!(sd)),
            ] {
                out.entry(m).or_default().push((start, v));
            }
        }
        start = end;
    }
    out
}

/// Equal periods, numbers within a relative 1e-9 (sums are added in another order).
fn assert_close(a: &Periods, b: &Periods, what: &str) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (m, pa) in a {
        let pb = &b[m];
        assert_eq!(pa.len(), pb.len(), "{what}: {m:?} periods");
        for ((sa, va), (sb, vb)) in pa.iter().zip(pb) {
            assert_eq!(sa, sb, "{what}: {m:?} period start");
            let (x, y) = (va.as_f64().unwrap(), vb.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                "{what}: {m:?} at {sa}: {x} != {y}"
            );
        }
    }
}

async fn raw_count(s: &dyn Store, id: &str, attr: &str) -> usize {
    let q = query(
        id,
        attr,
        d0() - Duration::days(3650),
        d0() + Duration::days(3650),
    );
    let r = s.temporal_query(&q).await.unwrap();
    r.first()
        .and_then(|e| e.attrs.get(attr))
        .map_or(0, Vec::len)
}

async fn downsampling_replaces_raw_with_exact_buckets(o: Opened) {
    let s = o.store.as_ref();
    let (v, status) = (format!("{V}v"), format!("{V}status"));
    let vals = readings(10);
    let words: Vec<Attribute> = vals
        .iter()
        .step_by(10)
        .map(|(t, x)| text(if *x > 0.0 { "up" } else { "down" }, *t))
        .collect();
    let attrs = BTreeMap::from([
        (v.clone(), vals.iter().map(|(t, x)| num(*x, *t)).collect()),
        (status.clone(), words.clone()),
    ]);
    s.temporal_append(
        "urn:r:1",
        Some(vec![format!("{V}T")]),
        vec![],
        attrs.clone(),
    )
    .await
    .unwrap();
    s.temporal_append("urn:r:2", Some(vec![format!("{V}U")]), vec![], attrs)
        .await
        .unwrap();
    let (from, to) = (d0(), d0() + Duration::days(10));
    let whole = query("urn:r:1", &v, from, to);
    let daily_before = aggregate(s, &whole, "P1D").await;
    let hourly_before = aggregate(s, &whole, "PT1H").await;
    assert_close(
        &daily_before,
        &brute_force(&vals, from, to, Duration::days(1)),
        "raw daily",
    );
    assert_close(
        &hourly_before,
        &brute_force(&vals, from, to, Duration::hours(1)),
        "raw hourly",
    );

    // no policy: nothing happens
    let r = s.apply_retention(to, 97).await.unwrap();
    assert!(r.policies.is_empty());
    assert_eq!(raw_count(s, "urn:r:1", &v).await, vals.len());

    s.put_retention_policy(policy(
        json!({"id": "sensors", "entityType": format!("{V}T"), "keepRaw": "P3D",
        "levels": [{"period": "PT1H", "keep": "P30D"}, {"period": "P1D"}]}),
    ))
    .await
    .unwrap();
    // measured at 05:20: raw before 05:00 three days earlier goes, in hourly buckets
    let now = to + Duration::hours(5) + Duration::minutes(20);
    let cut = d0() + Duration::days(7) + Duration::hours(5);
    let old = vals.iter().filter(|(t, _)| *t < cut).count();
    let old_words = words
        .iter()
        .filter(|a| a.observed_at.unwrap() < cut)
        .count();
    let r = s.apply_retention(now, 97).await.unwrap();
    let run = &r.policies[0];
    assert_eq!(run.policy, "sensors");
    assert_eq!(run.series, 2);
    assert_eq!(run.raw_deleted as usize, old + old_words);
    assert_eq!(run.raw_aggregated as usize, old);
    assert_eq!((run.buckets_rolled_up, run.buckets_expired), (0, 0));
    assert_eq!(s.retention_status().await.unwrap().as_ref(), Some(&r));

    // raw instances: only those inside the window; plain temporal queries show raw data only
    assert_eq!(raw_count(s, "urn:r:1", &v).await, vals.len() - old);
    let oldest = s.temporal_query(&whole).await.unwrap()[0].attrs[&v][0].observed_at;
    assert_eq!(oldest, vals.iter().map(|(t, _)| *t).find(|t| *t >= cut));
    // non-numeric values past the window are gone and leave no trace
    assert_eq!(
        raw_count(s, "urn:r:1", &status).await,
        words.len() - old_words
    );
    let st = aggregate(s, &query("urn:r:1", &status, from, to), "P1D").await;
    let counted: u64 = st[&AggrMethod::TotalCount]
        .iter()
        .map(|(_, c)| c.as_u64().unwrap())
        .sum();
    assert_eq!(counted as usize, words.len() - old_words);
    // the entity without a policy is untouched
    assert_eq!(raw_count(s, "urn:r:2", &v).await, vals.len());
    assert_eq!(raw_count(s, "urn:r:2", &status).await, words.len());

    // the buckets equal a brute-force computation, and aggregations answer as before
    let hourly_old = aggregate(s, &query("urn:r:1", &v, from, cut), "PT1H").await;
    assert_close(
        &hourly_old,
        &brute_force(&vals, from, cut, Duration::hours(1)),
        "hourly buckets",
    );
    assert_close(
        &aggregate(s, &whole, "P1D").await,
        &daily_before,
        "daily after downsampling",
    );
    assert_close(
        &aggregate(s, &whole, "PT1H").await,
        &hourly_before,
        "hourly after downsampling",
    );
    assert_close(
        &aggregate(s, &whole, "PT6H").await,
        &brute_force(&vals, from, to, Duration::hours(6)),
        "6-hourly",
    );
    // without an attribute list, attributes known only from their buckets are aggregated too
    let all = TemporalQuery {
        attrs: None,
        ..whole.clone()
    };
    let r = s
        .temporal_aggregate(&all, &aggregation("P1D"))
        .await
        .unwrap();
    assert!(r[0].attrs.contains_key(&v));
    // a period the buckets cannot make: a clear error
    let e = s
        .temporal_aggregate(&whole, &aggregation("PT30M"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequestData);
    assert!(e.detail.contains("PT1H aggregates"), "{}", e.detail);
    let skewed = query("urn:r:1", &v, from + Duration::minutes(30), to);
    let e = s
        .temporal_aggregate(&skewed, &aggregation("P1D"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequestData);
    // observations after the downsampled range need no alignment
    let recent = query("urn:r:1", &v, cut + Duration::minutes(30), to);
    aggregate(s, &recent, "PT30M").await;

    // a second run at the same time changes nothing
    let again = s.apply_retention(now, 97).await.unwrap();
    assert_eq!(
        (
            again.policies[0].raw_deleted,
            again.policies[0].buckets_rolled_up
        ),
        (0, 0)
    );
    assert_close(
        &aggregate(s, &whole, "PT1H").await,
        &hourly_before,
        "hourly after a second run",
    );

    // 40 days on, hourly buckets older than 30 days roll up into days; raw goes entirely
    let later = now + Duration::days(40);
    let r = s.apply_retention(later, 97).await.unwrap();
    let run = &r.policies[0];
    assert_eq!(
        run.raw_deleted as usize,
        vals.len() - old + words.len() - old_words
    );
    assert!(run.buckets_rolled_up > 0);
    assert_eq!(raw_count(s, "urn:r:1", &v).await, 0);
    assert_close(
        &aggregate(s, &whole, "P1D").await,
        &daily_before,
        "daily after the roll-up",
    );
    let e = s
        .temporal_aggregate(&whole, &aggregation("PT1H"))
        .await
        .unwrap_err();
    assert!(e.detail.contains("P1D aggregates"), "{}", e.detail);
    // a single period over everything, and weeks and months made of days
    let one = Aggregation {
        methods: METHODS.to_vec(),
        period: None,
    };
    let r = s.temporal_aggregate(&all, &one).await.unwrap();
    assert_eq!(
        r[0].attrs[&v][&AggrMethod::TotalCount][0].value,
        json!(vals.len())
    );
    let month = query("urn:r:1", &v, from, from + Duration::days(31));
    let m = aggregate(s, &month, "P1M").await;
    assert_eq!(m[&AggrMethod::TotalCount][0].1, json!(vals.len()));

    // deleting the attribute's history deletes its buckets too
    s.temporal_delete("urn:r:1", Some(&v), None, None)
        .await
        .unwrap();
    assert!(aggregate(s, &whole, "P1D").await.is_empty());
}

async fn late_raw_data_merges_into_written_buckets(o: Opened) {
    let s = o.store.as_ref();
    let v = format!("{V}v");
    let vals = readings(3);
    let attrs = BTreeMap::from([(v.clone(), vals.iter().map(|(t, x)| num(*x, *t)).collect())]);
    s.temporal_append("urn:r:late", Some(vec![format!("{V}T")]), vec![], attrs)
        .await
        .unwrap();
    s.put_retention_policy(policy(json!({"id": "p", "attribute": v, "keepRaw": "P1D",
        "levels": [{"period": "PT1H"}]})))
        .await
        .unwrap();
    let now = d0() + Duration::days(3);
    // tiny chunks: buckets are written by several transactions and merged
    s.apply_retention(now, 5).await.unwrap();
    // late observations arrive for hours already downsampled (one below every minimum, one above every maximum)
    let late = vec![
        (d0() + Duration::minutes(3), -1000.0),
        (d0() + Duration::hours(5) + Duration::minutes(1), 1000.0),
        (d0() + Duration::hours(5) + Duration::minutes(2), 1.5),
    ];
    let attrs = BTreeMap::from([(v.clone(), late.iter().map(|(t, x)| num(*x, *t)).collect())]);
    s.temporal_append("urn:r:late", None, vec![], attrs)
        .await
        .unwrap();
    let r = s.apply_retention(now, 5).await.unwrap();
    assert_eq!(
        (r.policies[0].raw_deleted, r.policies[0].raw_aggregated),
        (3, 3)
    );
    let mut all = vals.clone();
    all.extend(late);
    let (from, to) = (d0(), d0() + Duration::days(3));
    let whole = query("urn:r:late", &v, from, to);
    assert_close(
        &aggregate(s, &whole, "PT1H").await,
        &brute_force(&all, from, to, Duration::hours(1)),
        "merged hours",
    );
    assert_close(
        &aggregate(s, &whole, "P1D").await,
        &brute_force(&all, from, to, Duration::days(1)),
        "merged days",
    );
    // a reopened store (a restart, or another node) sees the same
    let other = o.reopen().await;
    assert_close(
        &aggregate(other.as_ref(), &whole, "PT1H").await,
        &brute_force(&all, from, to, Duration::hours(1)),
        "merged hours on another store",
    );
}

async fn the_most_specific_policy_applies_and_no_policy_keeps_everything(o: Opened) {
    let s = o.store.as_ref();
    let (a, b) = (format!("{V}a"), format!("{V}b"));
    let vals = readings(20);
    let series = |ds: Option<&str>| -> Vec<Attribute> {
        vals.iter()
            .map(|(t, x)| {
                let mut i = num(*x, *t);
                i.dataset_id = ds.map(String::from);
                i
            })
            .collect()
    };
    let mut attrs: BTreeMap<String, Vec<Attribute>> = BTreeMap::new();
    attrs.insert(
        a.clone(),
        [series(None), series(Some("urn:ds:partner"))].concat(),
    );
    attrs.insert(b.clone(), series(None));
    s.temporal_append(
        "urn:t:1",
        Some(vec![format!("{V}T")]),
        vec![],
        attrs.clone(),
    )
    .await
    .unwrap();
    s.temporal_append("urn:u:1", Some(vec![format!("{V}U")]), vec![], attrs)
        .await
        .unwrap();
    for p in [
        json!({"id": "everything", "keepRaw": "P1D"}),
        json!({"id": "type-t", "entityType": format!("{V}T"), "keepRaw": "P5D"}),
        json!({"id": "partner", "datasetId": "urn:ds:partner", "keepRaw": "P10D"}),
        json!({"id": "t-a", "entityType": format!("{V}T"), "attribute": a, "keepRaw": "P15D"}),
    ] {
        assert!(s.put_retention_policy(policy(p)).await.unwrap());
    }
    let now = d0() + Duration::days(20);
    let r = s.apply_retention(now, 1000).await.unwrap();
    let series_of: BTreeMap<String, u64> = r
        .policies
        .iter()
        .map(|p| (p.policy.clone(), p.series))
        .collect();
    // urn:t:1 a (both datasets: the attribute and type beat the dataset) → t-a; urn:t:1 b → type-t;
    // urn:u:1 a partner → partner; urn:u:1 a and b without dataset → everything
    assert_eq!(
        series_of,
        BTreeMap::from([
            ("everything".to_string(), 2),
            ("partner".to_string(), 1),
            ("t-a".to_string(), 2),
            ("type-t".to_string(), 1),
        ])
    );
    let kept_since = |days: i64| {
        let cut = now - Duration::days(days);
        vals.iter().filter(|(t, _)| *t >= cut).count()
    };
    let count = |id: &'static str, attr: String, ds: Option<&'static str>| async move {
        let q = query(id, &attr, d0() - Duration::days(1), now);
        let r = s.temporal_query(&q).await.unwrap();
        r[0].attrs.get(&attr).map_or(0, |l| {
            l.iter().filter(|i| i.dataset_id.as_deref() == ds).count()
        })
    };
    assert_eq!(count("urn:t:1", a.clone(), None).await, kept_since(15));
    assert_eq!(
        count("urn:t:1", a.clone(), Some("urn:ds:partner")).await,
        kept_since(15)
    );
    assert_eq!(count("urn:t:1", b.clone(), None).await, kept_since(5));
    assert_eq!(
        count("urn:u:1", a.clone(), Some("urn:ds:partner")).await,
        kept_since(10)
    );
    assert_eq!(count("urn:u:1", a.clone(), None).await, kept_since(1));
    assert_eq!(count("urn:u:1", b.clone(), None).await, kept_since(1));
}

async fn policies_are_checked_listed_and_deleted(o: Opened) {
    let s = o.store.as_ref();
    assert!(s.list_retention_policies().await.unwrap().is_empty());
    assert_eq!(s.retention_status().await.unwrap(), None);
    let p = policy(
        json!({"id": "p1", "attribute": format!("{V}NO2"), "keepRaw": "P30D",
        "levels": [{"period": "PT1H", "keep": "P5Y"}, {"period": "P1D"}]}),
    );
    assert!(s.put_retention_policy(p.clone()).await.unwrap());
    let mut p2 = p.clone();
    p2.keep_raw = "P60D".into();
    assert!(!s.put_retention_policy(p2.clone()).await.unwrap());
    assert_eq!(s.get_retention_policy("p1").await.unwrap(), Some(p2));
    let bad = policy(json!({"id": "p2", "keepRaw": "P30D", "levels": [{"period": "PT7M"}]}));
    let e = s.put_retention_policy(bad).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequestData);
    assert!(e.detail.contains("divide a day"), "{}", e.detail);
    assert_eq!(s.list_retention_policies().await.unwrap().len(), 1);
    assert!(s.delete_retention_policy("p1").await.unwrap());
    assert!(!s.delete_retention_policy("p1").await.unwrap());
    assert_eq!(s.get_retention_policy("p1").await.unwrap(), None);
}

/// The figure in the report: how long downsampling a million raw instances takes on SQLite (run with
/// `cargo test -p twin-store --release --test retention -- --ignored --nocapture`). Prints, asserts no timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_downsampling_a_million_instances_on_sqlite() {
    let o = common::open(common::Backend::Sqlite).await.unwrap();
    let s = o.store.as_ref();
    let v = format!("{V}v");
    let started = std::time::Instant::now();
    for e in 0..10 {
        for part in 0..10 {
            let list: Vec<Attribute> = (0..10_000)
                .map(|i| {
                    let k = part * 10_000 + i;
                    num((k % 997) as f64, d0() + Duration::seconds(30 * k))
                })
                .collect();
            s.temporal_append(
                &format!("urn:m:{e}"),
                Some(vec![format!("{V}T")]),
                vec![],
                BTreeMap::from([(v.clone(), list)]),
            )
            .await
            .unwrap();
        }
    }
    eprintln!(
        "loaded 1,000,000 instances in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    s.put_retention_policy(policy(
        json!({"id": "m", "keepRaw": "P1D", "levels": [{"period": "PT1H"}]}),
    ))
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let r = s
        .apply_retention(d0() + Duration::days(400), retention::CHUNK)
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "downsampled {} instances into hourly buckets in {secs:.2} s ({:.0} instances/s)",
        r.policies[0].raw_deleted,
        r.policies[0].raw_deleted as f64 / secs
    );
    assert_eq!(r.policies[0].raw_deleted, 1_000_000);
}
