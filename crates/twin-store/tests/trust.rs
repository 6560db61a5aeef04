//! Trust by design, on both backends: the dataset filter of reads (queries, counts, temporal queries and aggregation,
//! type and attribute listings, extents), accounts with their keys and sessions, the usage log, and the hash-chained
//! append-only audit log (verified, tampered with, appended to concurrently).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use twin_model::context::Context;
use twin_model::dataset::DEFAULT_DATASET;
use twin_model::ngsi::parse_entity;
use twin_model::query::{parse_q, parse_types};
use twin_model::{Entity, ErrorKind, Provenance};
use twin_store::*;

mod common;
use common::{Backend, Opened};

on_both_backends!(
    dataset_filters_hide_what_is_not_visible,
    histories_follow_their_entity_dataset,
    accounts_keys_and_sessions,
    usage_is_logged_per_dataset,
    the_audit_chain_verifies_and_refuses_changes,
    tampering_with_the_audit_log_is_detected,
    concurrent_audit_appends_make_one_chain,
    a_database_from_before_datasets_filtered_reads_is_brought_up_to_date,
    dataset_times_span_their_entities_history,
);

const V: &str = "https://uri.etsi.org/ngsi-ld/default-context/";
const A: &str = "urn:ngsi-ld:Dataset:a";
const B: &str = "urn:ngsi-ld:Dataset:b";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn entity(doc: Value, dataset: Option<&str>) -> Entity {
    let mut e = parse_entity(&doc, &Context::core(), t0(), &Provenance::default()).unwrap();
    e.dataset = dataset.map(str::to_string);
    e
}

fn ds(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn visible(filter: Option<&[String]>, e: &Entity) -> bool {
    let d = e.dataset.as_deref().unwrap_or(DEFAULT_DATASET);
    filter.is_none_or(|f| f.iter().any(|x| x == d))
}

/// The filters every check runs with: none, each dataset, pairs, and nothing at all.
fn filters() -> Vec<Option<Vec<String>>> {
    vec![
        None,
        Some(ds(&[DEFAULT_DATASET])),
        Some(ds(&[A])),
        Some(ds(&[B])),
        Some(ds(&[A, B])),
        Some(ds(&[DEFAULT_DATASET, B])),
        Some(vec![]),
        Some(ds(&["urn:ngsi-ld:Dataset:none"])),
    ]
}

/// 40 entities in three datasets (default by omission, one default by name, A, B); type `Secret` and attribute
/// `hidden` only in B; `pa` only in A.
fn population() -> Vec<Entity> {
    (0..40)
        .map(|i| {
            let id = format!("urn:ngsi-ld:E:{i:03}");
            let (dataset, doc) = match i % 3 {
                0 => (
                    if i == 3 { Some(DEFAULT_DATASET) } else { None },
                    json!({"id": id, "type": "Shared", "n": i,
                        "location": {"type": "Point", "coordinates": [10.0 + i as f64 * 0.01, 50.0]}}),
                ),
                1 => (
                    Some(A),
                    json!({"id": id, "type": "Shared", "n": i, "pa": "x",
                        "location": {"type": "Point", "coordinates": [20.0 + i as f64 * 0.01, 51.0]}}),
                ),
                _ => (
                    Some(B),
                    json!({"id": id, "type": ["Shared", "Secret"], "n": i, "hidden": true,
                        "location": {"type": "Point", "coordinates": [30.0 + i as f64 * 0.01, 52.0]}}),
                ),
            };
            entity(doc, dataset)
        })
        .collect()
}

async fn load(s: &Arc<dyn Store>, all: &[Entity]) {
    let changes: Vec<(String, EntityChange)> = all
        .iter()
        .map(|e| (e.id.clone(), store_as_is(e.clone())))
        .collect();
    for r in s.write_batch(changes).await.unwrap() {
        r.unwrap();
    }
}

fn ids(es: &[Entity]) -> Vec<String> {
    es.iter().map(|e| e.id.clone()).collect()
}

async fn dataset_filters_hide_what_is_not_visible(o: Opened) {
    let s = o.store.clone();
    let all = population();
    load(&s, &all).await;
    let ctx = Context::core();
    let mut q_gt = parse_q("n>5").unwrap();
    q_gt.expand_names(&|n| ctx.expand(n));
    let mut secret = parse_types("Secret").unwrap();
    secret.expand_names(&|n| ctx.expand(n));
    let mut shared = parse_types("Shared").unwrap();
    shared.expand_names(&|n| ctx.expand(n));
    let mut geo = twin_model::geoquery::GeoQuery::parse(
        "within",
        "Polygon",
        "[[[0,40],[40,40],[40,60],[0,60],[0,40]]]",
        None,
    )
    .unwrap();
    geo.expand_names(&|n| ctx.expand(n));
    let some_ids: Vec<String> = all.iter().step_by(4).map(|e| e.id.clone()).collect();
    // each query form: (name, query, the brute-force predicate)
    type Pred = Box<dyn Fn(&Entity) -> bool>;
    let forms: Vec<(&str, EntityQuery, Pred)> = vec![
        ("all", EntityQuery::default(), Box::new(|_| true)),
        (
            "type",
            EntityQuery {
                types: Some(secret.clone()),
                ..Default::default()
            },
            Box::new(|e| e.types.iter().any(|t| t.ends_with("Secret"))),
        ),
        (
            "q (evaluated)",
            EntityQuery {
                types: Some(shared.clone()),
                q: Some(q_gt.clone()),
                ..Default::default()
            },
            Box::new(|e| e.attrs[&format!("{V}n")][0].value.as_f64().unwrap() > 5.0),
        ),
        (
            "ids",
            EntityQuery {
                ids: Some(some_ids.clone()),
                ..Default::default()
            },
            {
                let some = some_ids.clone();
                Box::new(move |e| some.contains(&e.id))
            },
        ),
        (
            "attrs",
            EntityQuery {
                attrs: Some(vec![format!("{V}pa"), format!("{V}hidden")]),
                ..Default::default()
            },
            Box::new(|e| {
                e.attrs.contains_key(&format!("{V}pa"))
                    || e.attrs.contains_key(&format!("{V}hidden"))
            }),
        ),
        (
            "geo",
            EntityQuery {
                geo: Some(geo.clone()),
                ..Default::default()
            },
            Box::new(|_| true),
        ),
        (
            "pattern",
            EntityQuery {
                id_pattern: Some(regex::Regex::new("E:0[0-2]").unwrap()),
                ..Default::default()
            },
            Box::new(|e| e.id.as_str() < "urn:ngsi-ld:E:030"),
        ),
    ];
    for filter in filters() {
        for (name, form, pred) in &forms {
            let expected: Vec<String> = all
                .iter()
                .filter(|e| visible(filter.as_deref(), e) && pred(e))
                .map(|e| e.id.clone())
                .collect();
            let q = EntityQuery {
                datasets: filter.clone(),
                limit: 1000,
                count: true,
                ..form.clone()
            };
            let page = s.query(&q).await.unwrap();
            assert_eq!(ids(&page.entities), expected, "{name} {filter:?}");
            assert_eq!(page.count, Some(expected.len() as u64), "{name} {filter:?}");
            // a page, and a count alone
            let paged = s
                .query(&EntityQuery {
                    limit: 2,
                    offset: 1,
                    ..q.clone()
                })
                .await
                .unwrap();
            assert_eq!(
                ids(&paged.entities),
                expected.iter().skip(1).take(2).cloned().collect::<Vec<_>>(),
                "{name} {filter:?} paged"
            );
            assert_eq!(paged.count, Some(expected.len() as u64));
            let count = s
                .query(&EntityQuery {
                    limit: 0,
                    ..q.clone()
                })
                .await
                .unwrap();
            assert_eq!(count.count, Some(expected.len() as u64));
            assert!(count.entities.is_empty());
        }

        // temporal queries and aggregation embed the entity query
        let tq = TemporalQuery {
            entities: EntityQuery {
                datasets: filter.clone(),
                ..Default::default()
            },
            instance_limit: 100,
            ..Default::default()
        };
        let expected: Vec<String> = all
            .iter()
            .filter(|e| visible(filter.as_deref(), e))
            .map(|e| e.id.clone())
            .collect();
        let got: Vec<String> = s
            .temporal_query(&tq)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(got, expected, "temporal {filter:?}");
        let with_q = TemporalQuery {
            entities: EntityQuery {
                q: Some(q_gt.clone()),
                ids: Some(some_ids.clone()),
                ..tq.entities.clone()
            },
            ..tq.clone()
        };
        let expected_q: Vec<String> = all
            .iter()
            .filter(|e| {
                visible(filter.as_deref(), e)
                    && some_ids.contains(&e.id)
                    && e.attrs[&format!("{V}n")][0].value.as_f64().unwrap() > 5.0
            })
            .map(|e| e.id.clone())
            .collect();
        let got: Vec<String> = s
            .temporal_query(&with_q)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(got, expected_q, "temporal with q and ids {filter:?}");
        let agg = s
            .temporal_aggregate(
                &tq,
                &Aggregation {
                    methods: vec![AggrMethod::TotalCount],
                    period: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            agg.into_iter().map(|a| a.id).collect::<Vec<_>>(),
            expected,
            "aggregate {filter:?}"
        );

        // listings reveal no type or attribute that only invisible entities have
        let seen: Vec<&Entity> = all
            .iter()
            .filter(|e| visible(filter.as_deref(), e))
            .collect();
        let types = s.types(filter.as_deref()).await.unwrap();
        let mut want_types: BTreeMap<String, u64> = BTreeMap::new();
        for e in &seen {
            for t in &e.types {
                *want_types.entry(t.clone()).or_default() += 1;
            }
        }
        let got_types: BTreeMap<String, u64> = types
            .iter()
            .map(|t| (t.type_name.clone(), t.entity_count))
            .collect();
        assert_eq!(got_types, want_types, "types {filter:?}");
        for t in &types {
            let want: BTreeSet<&String> = seen
                .iter()
                .filter(|e| e.types.contains(&t.type_name))
                .flat_map(|e| e.attrs.keys())
                .collect();
            assert_eq!(
                t.attributes.keys().collect::<BTreeSet<_>>(),
                want,
                "attributes of {} {filter:?}",
                t.type_name
            );
        }
        let attrs = s.attributes(filter.as_deref()).await.unwrap();
        let mut want_attrs: BTreeMap<String, u64> = BTreeMap::new();
        for e in &seen {
            for a in e.attrs.keys() {
                *want_attrs.entry(a.clone()).or_default() += 1;
            }
        }
        let got_attrs: BTreeMap<String, u64> = attrs
            .iter()
            .map(|a| (a.name.clone(), a.attribute_count))
            .collect();
        assert_eq!(got_attrs, want_attrs, "attributes {filter:?}");
        for a in &attrs {
            let want: BTreeSet<&String> = seen
                .iter()
                .filter(|e| e.attrs.contains_key(&a.name))
                .flat_map(|e| e.types.iter())
                .collect();
            assert_eq!(a.type_names.iter().collect::<BTreeSet<_>>(), want);
        }

        // extents: of visible entities only (within the index's float rounding)
        for t in ["Shared", "Secret"] {
            let name = format!("{V}{t}");
            let boxes: Vec<[f64; 4]> = seen
                .iter()
                .filter(|e| e.types.contains(&name))
                .map(|e| {
                    let (_, loc) = e
                        .attrs
                        .iter()
                        .find(|(k, _)| k.ends_with("location"))
                        .unwrap();
                    let c = &loc[0].value["coordinates"];
                    let (x, y) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
                    [x, y, x, y]
                })
                .collect();
            let got = s.type_extent(&name, filter.as_deref()).await.unwrap();
            if boxes.is_empty() {
                assert_eq!(got, None, "extent of {t} {filter:?}");
            } else {
                let want = boxes
                    .iter()
                    .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |b, x| {
                        [
                            b[0].min(x[0]),
                            b[1].min(x[1]),
                            b[2].max(x[2]),
                            b[3].max(x[3]),
                        ]
                    });
                let got = got.unwrap_or_else(|| panic!("no extent of {t} {filter:?}"));
                for k in 0..4 {
                    assert!(
                        (got[k] - want[k]).abs() < 1e-4,
                        "extent of {t} {filter:?}: {got:?} {want:?}"
                    );
                }
            }
        }
    }
}

async fn histories_follow_their_entity_dataset(o: Opened) {
    let s = o.store.clone();
    let e = |id: &str, n: i64, dataset: Option<&str>| {
        entity(json!({"id": id, "type": "T", "n": n}), dataset)
    };
    load(&s, &[e("urn:x:1", 1, Some(A)), e("urn:x:2", 2, Some(B))]).await;
    let history = |filter: &[&str]| {
        let s = s.clone();
        let filter = ds(filter);
        async move {
            s.temporal_query(&TemporalQuery {
                entities: EntityQuery {
                    datasets: Some(filter),
                    ..Default::default()
                },
                instance_limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(history(&[A]).await, ["urn:x:1"]);
    // moved to B without writing an instance: its history goes with it
    s.write(
        "urn:x:1",
        Box::new(|cur| {
            let mut e = cur.unwrap();
            e.dataset = Some(B.into());
            Ok(ChangeOutcome::Put {
                entity: e,
                written: vec![],
                removed: vec![],
                result: Value::Null,
            })
        }),
    )
    .await
    .unwrap();
    assert!(history(&[A]).await.is_empty());
    assert_eq!(history(&[B]).await, ["urn:x:1", "urn:x:2"]);
    // deleted: the history keeps its last dataset
    s.write("urn:x:2", Box::new(|_| Ok(ChangeOutcome::Delete)))
        .await
        .unwrap();
    assert_eq!(history(&[B]).await, ["urn:x:1", "urn:x:2"]);
    assert!(history(&[DEFAULT_DATASET, A]).await.is_empty());
    // created again in A: so is its history
    load(&s, &[e("urn:x:2", 3, Some(A))]).await;
    assert_eq!(history(&[A]).await, ["urn:x:2"]);
    // history appended without an entity belongs to the default dataset; to an entity's, to the entity's
    let mut inst = twin_model::Attribute::property(json!(5));
    inst.observed_at = Some(t0());
    let attrs = BTreeMap::from([(format!("{V}n"), vec![inst])]);
    s.temporal_append(
        "urn:x:3",
        Some(vec![format!("{V}T")]),
        vec![],
        attrs.clone(),
    )
    .await
    .unwrap();
    assert_eq!(history(&[DEFAULT_DATASET]).await, ["urn:x:3"]);
    load(&s, &[e("urn:x:4", 4, Some(B))]).await;
    s.temporal_delete("urn:x:4", None, None, None)
        .await
        .unwrap();
    s.temporal_append("urn:x:4", Some(vec![format!("{V}T")]), vec![], attrs)
        .await
        .unwrap();
    assert_eq!(history(&[B]).await, ["urn:x:1", "urn:x:4"]);
    // the store reopened (SQLite re-runs its schema; PostgreSQL a second node) answers alike
    let s2 = o.reopen().await;
    let again = s2
        .temporal_query(&TemporalQuery {
            entities: EntityQuery {
                datasets: Some(ds(&[B])),
                ..Default::default()
            },
            instance_limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(again.len(), 2);
}

fn account(id: &str) -> Account {
    Account {
        id: id.into(),
        display_name: Some(format!("{id} display")),
        email: Some(format!("{id}@example.org")),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        roles: vec!["planner".into(), "citizen".into()],
        groups: vec!["traffic".into()],
        organisation: Some("City".into()),
        disabled: false,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn key(id: &str, account: &str, created: DateTime<Utc>) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        account_id: account.into(),
        name: format!("{id} name"),
        hash: trust::sha256_hex(id.as_bytes()),
        scopes: vec!["read".into()],
        created_at: created,
        expires_at: Some(created + Duration::days(30)),
        revoked_at: None,
        last_used_at: None,
    }
}

fn session(token: &str, account: &str, expires: DateTime<Utc>) -> SessionRecord {
    SessionRecord {
        hash: trust::sha256_hex(token.as_bytes()),
        account_id: account.into(),
        created_at: t0(),
        expires_at: expires,
        last_seen_at: t0(),
        user_agent: Some("test".into()),
    }
}

async fn accounts_keys_and_sessions(o: Opened) {
    let s = o.store.clone();
    assert_eq!(s.count_accounts().await.unwrap(), 0);
    s.put_account(account("alice"), true).await.unwrap();
    s.put_account(account("bob"), true).await.unwrap();
    let err = s.put_account(account("alice"), true).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    let err = s.put_account(account("carol"), false).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    let err = s.put_account(account("Not Valid"), true).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequestData);
    assert_eq!(
        s.get_account("alice").await.unwrap().unwrap(),
        account("alice")
    );
    // replaced, keeping its creation time
    let mut changed = account("alice");
    changed.roles = vec!["admin".into()];
    changed.password_hash = None;
    changed.disabled = true;
    changed.email = None;
    changed.created_at = t0() + Duration::days(9);
    changed.updated_at = t0() + Duration::days(1);
    s.put_account(changed.clone(), false).await.unwrap();
    let got = s.get_account("alice").await.unwrap().unwrap();
    assert_eq!(
        got,
        Account {
            created_at: t0(),
            ..changed
        }
    );
    assert_eq!(
        s.list_accounts()
            .await
            .unwrap()
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    assert_eq!(s.count_accounts().await.unwrap(), 2);
    assert!(s.get_account("carol").await.unwrap().is_none());

    // keys
    s.put_api_key(key("k1", "alice", t0())).await.unwrap();
    s.put_api_key(key("k2", "alice", t0() + Duration::hours(1)))
        .await
        .unwrap();
    s.put_api_key(key("k3", "bob", t0())).await.unwrap();
    let err = s.put_api_key(key("k4", "nobody", t0())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    assert_eq!(
        s.get_api_key("k1").await.unwrap().unwrap(),
        key("k1", "alice", t0())
    );
    assert!(s.get_api_key("k4").await.unwrap().is_none());
    let of = |list: Vec<ApiKeyRecord>| list.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        of(s.list_api_keys(Some("alice")).await.unwrap()),
        ["k1", "k2"]
    );
    assert_eq!(of(s.list_api_keys(None).await.unwrap()), ["k1", "k3", "k2"]);
    let at = t0() + Duration::days(2);
    assert!(s.revoke_api_key("k1", at).await.unwrap());
    assert!(s
        .revoke_api_key("k1", at + Duration::days(1))
        .await
        .unwrap());
    assert!(!s.revoke_api_key("nope", at).await.unwrap());
    assert_eq!(
        s.get_api_key("k1").await.unwrap().unwrap().revoked_at,
        Some(at)
    );
    s.touch_api_key("k2", at).await.unwrap();
    s.touch_api_key("k2", at - Duration::hours(1))
        .await
        .unwrap();
    s.touch_api_key("nope", at).await.unwrap();
    assert_eq!(
        s.get_api_key("k2").await.unwrap().unwrap().last_used_at,
        Some(at)
    );

    // sessions
    let now = t0() + Duration::days(1);
    s.put_session(session("t1", "alice", now - Duration::minutes(1)))
        .await
        .unwrap();
    s.put_session(session("t2", "alice", now)).await.unwrap();
    s.put_session(session("t3", "alice", now + Duration::hours(8)))
        .await
        .unwrap();
    s.put_session(session("t4", "bob", now + Duration::hours(8)))
        .await
        .unwrap();
    let err = s
        .put_session(session("t5", "nobody", now))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    let h = |t: &str| trust::sha256_hex(t.as_bytes());
    assert_eq!(
        s.get_session(&h("t3")).await.unwrap().unwrap(),
        session("t3", "alice", now + Duration::hours(8))
    );
    // seen again: replaced
    let mut seen = session("t3", "alice", now + Duration::hours(9));
    seen.last_seen_at = now;
    s.put_session(seen.clone()).await.unwrap();
    assert_eq!(s.get_session(&h("t3")).await.unwrap().unwrap(), seen);
    assert_eq!(s.delete_expired_sessions(now).await.unwrap(), 2);
    assert!(s.get_session(&h("t1")).await.unwrap().is_none());
    assert!(s.get_session(&h("t2")).await.unwrap().is_none());
    assert!(s.delete_session(&h("t4")).await.unwrap());
    assert!(!s.delete_session(&h("t4")).await.unwrap());

    // deleting an account deletes its sessions and keys, and only its own
    s.put_session(session("t6", "bob", now + Duration::hours(8)))
        .await
        .unwrap();
    assert!(s.delete_account("alice").await.unwrap());
    assert!(!s.delete_account("alice").await.unwrap());
    assert!(s.get_account("alice").await.unwrap().is_none());
    assert!(s.get_session(&h("t3")).await.unwrap().is_none());
    assert!(s.get_api_key("k1").await.unwrap().is_none());
    assert_eq!(of(s.list_api_keys(None).await.unwrap()), ["k3"]);
    assert!(s.get_session(&h("t6")).await.unwrap().is_some());
    assert_eq!(s.count_accounts().await.unwrap(), 1);
    // a new account of the same name starts without them
    s.put_account(account("alice"), true).await.unwrap();
    assert!(s.list_api_keys(Some("alice")).await.unwrap().is_empty());
    // durable, and seen by another store on the same data
    let s2 = o.reopen().await;
    assert_eq!(s2.count_accounts().await.unwrap(), 2);
    assert_eq!(
        s2.get_api_key("k3").await.unwrap().unwrap(),
        key("k3", "bob", t0())
    );
}

fn usage(at: DateTime<Utc>, dataset: &str, principal: &str, op: &str, n: u64) -> UsageRecord {
    UsageRecord {
        id: 0,
        at,
        dataset: dataset.into(),
        principal: principal.into(),
        operation: op.into(),
        entities: n,
        purpose: n.is_multiple_of(2).then(|| "research".to_string()),
        detail: Some(format!("{n} entities")),
    }
}

async fn usage_is_logged_per_dataset(o: Opened) {
    let s = o.store.clone();
    s.record_usage(vec![]).await.unwrap();
    // 60 records: datasets A, B alternating, principals alice, key:k1, anonymous, a minute apart
    let principals = ["alice", "key:k1", "anonymous"];
    let all: Vec<UsageRecord> = (0..60u64)
        .map(|i| {
            usage(
                t0() + Duration::minutes(i as i64),
                [A, B][(i % 2) as usize],
                principals[(i % 3) as usize],
                ["ngsi-ld.query", "tiles"][(i % 4 / 2) as usize],
                i,
            )
        })
        .collect();
    s.record_usage(all[..25].to_vec()).await.unwrap();
    s.record_usage(all[25..].to_vec()).await.unwrap();
    let q = |datasets: &[&str]| UsageQuery {
        datasets: ds(datasets),
        limit: 1000,
        ..Default::default()
    };
    // ids in the order recorded, newest first
    let (total, got) = s.usage(&q(&[A, B])).await.unwrap();
    assert_eq!(total, 60);
    let mut want: Vec<UsageRecord> = all.clone();
    want.reverse();
    let ids: Vec<i64> = got.iter().map(|u| u.id).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1] + 1), "{ids:?}");
    let strip = |l: Vec<UsageRecord>| {
        l.into_iter()
            .map(|u| UsageRecord { id: 0, ..u })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(got.clone()), want);
    // A's log never shows B's records
    let (total, got) = s.usage(&q(&[A])).await.unwrap();
    assert_eq!(total, 30);
    assert!(got.iter().all(|u| u.dataset == A));
    assert_eq!(s.usage(&q(&[])).await.unwrap(), (0, vec![]));
    assert_eq!(s.usage(&q(&["urn:other"])).await.unwrap().0, 0);
    // by principal and time
    let (total, got) = s
        .usage(&UsageQuery {
            principal: Some("alice".into()),
            since: Some(t0() + Duration::minutes(10)),
            until: Some(t0() + Duration::minutes(40)),
            ..q(&[B])
        })
        .await
        .unwrap();
    let want: Vec<UsageRecord> = all
        .iter()
        .rev()
        .filter(|u| {
            u.dataset == B
                && u.principal == "alice"
                && u.at >= t0() + Duration::minutes(10)
                && u.at < t0() + Duration::minutes(40)
        })
        .cloned()
        .collect();
    assert_eq!(total, want.len() as u64);
    assert_eq!(strip(got), want);
    // paging, newest first: the pages together are the whole log, the total stays
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let (total, page) = s
            .usage(&UsageQuery {
                before_id: before,
                limit: 7,
                ..q(&[A])
            })
            .await
            .unwrap();
        assert_eq!(total, 30);
        if page.is_empty() {
            break;
        }
        before = page.last().map(|u| u.id);
        paged.extend(page);
    }
    let (_, whole) = s.usage(&q(&[A])).await.unwrap();
    assert_eq!(paged, whole);
    // the summary: per dataset, principal, operation
    let summary = s.usage_summary(&ds(&[A]), None).await.unwrap();
    type Key = (String, String, String);
    let mut want: BTreeMap<Key, (u64, u64, DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for u in all.iter().filter(|u| u.dataset == A) {
        let e = want
            .entry((u.dataset.clone(), u.principal.clone(), u.operation.clone()))
            .or_insert((0, 0, u.at, u.at));
        e.0 += 1;
        e.1 += u.entities;
        e.2 = e.2.min(u.at);
        e.3 = e.3.max(u.at);
    }
    let got: BTreeMap<_, _> = summary
        .iter()
        .map(|r| {
            (
                (r.dataset.clone(), r.principal.clone(), r.operation.clone()),
                (r.requests, r.entities, r.first, r.last),
            )
        })
        .collect();
    assert_eq!(got, want);
    let keys: Vec<_> = summary
        .iter()
        .map(|r| (r.dataset.clone(), r.principal.clone(), r.operation.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let since = s
        .usage_summary(&ds(&[A, B]), Some(t0() + Duration::minutes(50)))
        .await
        .unwrap();
    assert_eq!(since.iter().map(|r| r.requests).sum::<u64>(), 10);
    assert!(s.usage_summary(&[], None).await.unwrap().is_empty());
}

fn detail(i: i64) -> Value {
    match i % 5 {
        0 => json!({"z": i, "a": [1, 2, {"y": "é\"\n", "b": null}], "m": {"k": true}}),
        1 => json!(format!("text {i}")),
        2 => json!(i as f64 / 3.0),
        3 => json!([i, "x", {"roles": ["admin"]}]),
        _ => Value::Null,
    }
}

async fn the_audit_chain_verifies_and_refuses_changes(o: Opened) {
    let s = o.store.clone();
    let empty = s.verify_audit().await.unwrap();
    assert_eq!(
        (empty.records, empty.ok, empty.first_bad_seq),
        (0, true, None)
    );
    let mut appended = Vec::new();
    for i in 0..50 {
        let r = s
            .append_audit(
                "alice",
                ["account.create", "key.revoke", "dataset.policy"][i as usize % 3],
                &format!("t{i}"),
                detail(i),
            )
            .await
            .unwrap();
        assert_eq!(r.seq, i + 1);
        assert_eq!(r.hash, r.recomputed_hash());
        appended.push(r);
    }
    assert_eq!(appended[0].prev_hash, trust::GENESIS_HASH);
    for w in appended.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
    let v = s.verify_audit().await.unwrap();
    assert_eq!(
        (v.records, v.ok, v.first_bad_seq, v.reason),
        (50, true, None, None)
    );
    // listed as appended, oldest first, paged by seq
    assert_eq!(s.audit(None, 1000).await.unwrap(), appended);
    assert_eq!(
        s.audit(Some(10), 5).await.unwrap(),
        appended[10..15].to_vec()
    );
    assert!(s.audit(Some(50), 5).await.unwrap().is_empty());
    // the database refuses to change or remove records
    for sql in [
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 3",
        "DELETE FROM audit_log",
    ] {
        let err = o.raw_sql(sql).await.unwrap_err();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    if o.backend() == Backend::Postgres {
        let err = o.raw_sql("TRUNCATE audit_log").await.unwrap_err();
        assert!(err.contains("append-only"), "{err}");
    }
    assert!(s.verify_audit().await.unwrap().ok);
    // durable, and the chain goes on after a reopen (or on another node)
    let s2 = o.reopen().await;
    let r = s2
        .append_audit("bob", "key.revoke", "k1", json!({}))
        .await
        .unwrap();
    assert_eq!(
        (r.seq, r.prev_hash.as_str()),
        (51, appended[49].hash.as_str())
    );
    assert!(s2.verify_audit().await.unwrap().ok);
}

async fn tampering_with_the_audit_log_is_detected(o: Opened) {
    let s = o.store.clone();
    for i in 0..50 {
        s.append_audit("alice", "account.update", &format!("t{i}"), detail(i))
            .await
            .unwrap();
    }
    assert!(s.verify_audit().await.unwrap().ok);
    let record = |seq: i64| {
        let s = s.clone();
        async move { s.audit(Some(seq - 1), 1).await.unwrap().remove(0) }
    };
    let (r15, r16) = (record(15).await, record(16).await);
    // past the triggers, as someone with direct access to the database could
    let (off, on) = match o.backend() {
        // reopening the store would recreate them
        Backend::Sqlite => (
            "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;",
            "",
        ),
        Backend::Postgres => (
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;",
            "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;",
        ),
    };
    let raw = |sql: String| {
        let o = &o;
        async move {
            o.raw_sql(&format!("{off} {sql}; {on}"))
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };
    // altered content
    raw("UPDATE audit_log SET actor = 'mallory' WHERE seq = 17".into()).await;
    let v = s.verify_audit().await.unwrap();
    assert_eq!((v.ok, v.first_bad_seq), (false, Some(17)), "{v:?}");
    assert!(v.reason.as_deref().unwrap().contains("hash"), "{v:?}");
    raw("UPDATE audit_log SET actor = 'alice' WHERE seq = 17".into()).await;
    assert!(s.verify_audit().await.unwrap().ok);
    // the same detail spelt differently (key order) is the same record; another value is not
    raw(r#"UPDATE audit_log SET detail = '{"m":{"k":true},"a":[1,2,{"b":null,"y":"\u00e9\"\n"}],"z":15}' WHERE seq = 16"#.into()).await;
    let v = s.verify_audit().await.unwrap();
    assert!(
        v.ok,
        "re-spelt JSON of the same value: {v:?} {:?}",
        record(16).await
    );
    raw(r#"UPDATE audit_log SET detail = '{"z":16}' WHERE seq = 16"#.into()).await;
    let v = s.verify_audit().await.unwrap();
    assert_eq!((v.ok, v.first_bad_seq), (false, Some(16)), "{v:?}");
    // rewritten with a hash that matches its new content: the link of the next record breaks
    let forged = trust::audit_hash(
        &r15.hash,
        16,
        r16.at,
        &r16.actor,
        &r16.action,
        &r16.target,
        &json!({"z": 16}),
    );
    raw(format!(
        "UPDATE audit_log SET hash = '{forged}' WHERE seq = 16"
    ))
    .await;
    let v = s.verify_audit().await.unwrap();
    assert_eq!((v.ok, v.first_bad_seq), (false, Some(17)), "{v:?}");
    assert!(v.reason.as_deref().unwrap().contains("prev_hash"), "{v:?}");
    // restored
    raw(format!(
        "UPDATE audit_log SET detail = '{}', hash = '{}' WHERE seq = 16",
        trust::canonical_json(&r16.detail),
        r16.hash
    ))
    .await;
    assert!(s.verify_audit().await.unwrap().ok);
    // a record removed from the middle: a gap
    raw("DELETE FROM audit_log WHERE seq = 30".into()).await;
    let v = s.verify_audit().await.unwrap();
    assert_eq!(
        (v.ok, v.first_bad_seq, v.records),
        (false, Some(31), 30),
        "{v:?}"
    );
    assert!(v.reason.as_deref().unwrap().contains("missing"), "{v:?}");
    // the newest records removed: the head says more were appended
    raw("DELETE FROM audit_log WHERE seq >= 30".into()).await;
    let v = s.verify_audit().await.unwrap();
    assert_eq!(
        (v.ok, v.first_bad_seq, v.records),
        (false, Some(30), 29),
        "{v:?}"
    );
    // and the triggers are back (SQLite: recreated when the store opens)
    let s2 = o.reopen().await;
    let err = o
        .raw_sql("DELETE FROM audit_log WHERE seq = 1")
        .await
        .unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    drop(s2);
}

async fn concurrent_audit_appends_make_one_chain(o: Opened) {
    // several tasks on this store, and on PostgreSQL a second node with its own pool too
    let stores: Vec<Arc<dyn Store>> = match o.backend() {
        Backend::Sqlite => vec![o.store.clone()],
        Backend::Postgres => vec![o.store.clone(), o.reopen().await],
    };
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = stores[t % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                let r = s
                    .append_audit(
                        &format!("task{t}"),
                        "concurrent",
                        &format!("{i}"),
                        json!({"t": t, "i": i}),
                    )
                    .await
                    .unwrap();
                seqs.push(r.seq);
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
    let v = o.store.verify_audit().await.unwrap();
    assert_eq!((v.records, v.ok), (200, true), "{v:?}");
    let all = o.store.audit(None, 1000).await.unwrap();
    assert_eq!(all.len(), 200);
    for w in all.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
}

async fn a_database_from_before_datasets_filtered_reads_is_brought_up_to_date(o: Opened) {
    let s = o.store.clone();
    let e =
        |id: &str, dataset: Option<&str>| entity(json!({"id": id, "type": "T", "n": 1}), dataset);
    load(
        &s,
        &[
            e("urn:x:1", Some(A)),
            e("urn:x:2", None),
            e("urn:x:3", Some(B)),
        ],
    )
    .await;
    drop(s);
    // as a build from before this schema left it: no dataset on histories, no trust tables
    let undo = match o.backend() {
        Backend::Sqlite => {
            "DROP TRIGGER entities_dataset_moved; DROP TRIGGER entities_dataset_created;
             DROP TRIGGER temporal_entities_dataset_started; DROP INDEX temporal_entities_dataset;
             DROP INDEX entities_dataset; ALTER TABLE temporal_entities DROP COLUMN dataset;
             DROP TABLE sessions; DROP TABLE api_keys; DROP TABLE accounts; DROP TABLE usage_log;
             DROP TABLE audit_log; DROP TABLE audit_head;"
        }
        Backend::Postgres => {
            "DROP FUNCTION urbantwin_entity_dataset() CASCADE; DROP FUNCTION urbantwin_history_dataset() CASCADE;
             DROP INDEX entities_dataset; ALTER TABLE temporal_entities DROP COLUMN dataset;
             DROP TABLE sessions, api_keys, accounts, usage_log, audit_log, audit_head;
             DROP FUNCTION urbantwin_audit_append_only(); DELETE FROM schema_migrations WHERE version = 6;"
        }
    };
    o.raw_sql(undo).await.unwrap();
    let s = o.reopen().await;
    let history = s
        .temporal_query(&TemporalQuery {
            entities: EntityQuery {
                datasets: Some(ds(&[A, DEFAULT_DATASET])),
                ..Default::default()
            },
            instance_limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        history.into_iter().map(|t| t.id).collect::<Vec<_>>(),
        ["urn:x:1", "urn:x:2"]
    );
    assert_eq!(s.count_accounts().await.unwrap(), 0);
    assert!(s.append_audit("a", "b", "c", json!(null)).await.is_ok());
    assert!(s.verify_audit().await.unwrap().ok);
}

async fn dataset_times_span_their_entities_history(o: Opened) {
    let s = o.store.clone();
    let at = |d: &str| -> DateTime<Utc> { format!("{d}T00:00:00Z").parse().unwrap() };
    let e = |id: &str, observed: &str, dataset: Option<&str>| {
        entity(
            json!({"id": id, "type": "T", "n": {"type": "Property", "value": 1, "observedAt": format!("{observed}T00:00:00Z")}}),
            dataset,
        )
    };
    load(
        &s,
        &[
            e("urn:x:a1", "2024-03-01", Some(A)),
            e("urn:x:a2", "2024-05-01", Some(A)),
            e("urn:x:b1", "2023-01-01", Some(B)),
            e("urn:x:d1", "2022-01-01", None),
        ],
    )
    .await;
    let a = s.dataset_times(A).await.unwrap();
    assert_eq!(a.modified, Some(t0()));
    assert_eq!(a.observed, Some((at("2024-03-01"), at("2024-05-01"))));
    let b = s.dataset_times(B).await.unwrap();
    assert_eq!(b.observed, Some((at("2023-01-01"), at("2023-01-01"))));
    // the default dataset holds the entities written without one
    let d = s.dataset_times(DEFAULT_DATASET).await.unwrap();
    assert_eq!(d.observed, Some((at("2022-01-01"), at("2022-01-01"))));
    assert_eq!(d.modified, Some(t0()));
    assert_eq!(
        s.dataset_times("urn:ngsi-ld:Dataset:none").await.unwrap(),
        DatasetTimes::default()
    );
    // history appended later widens the span of the entity's dataset only
    let mut inst = twin_model::Attribute::property(json!(2));
    inst.observed_at = Some(at("2024-06-01"));
    s.temporal_append(
        "urn:x:a1",
        None,
        vec![],
        BTreeMap::from([(format!("{V}n"), vec![inst])]),
    )
    .await
    .unwrap();
    assert_eq!(
        s.dataset_times(A).await.unwrap().observed,
        Some((at("2024-03-01"), at("2024-06-01")))
    );
    assert_eq!(s.dataset_times(B).await.unwrap(), b);
}
