//! The store conformance suite: every backend must pass it. Each check takes a `Store` and exercises one part of
//! the contract (atomic writes, batches with per-item failure, query planning against brute force, temporal
//! instances and aggregation, contexts, datasets, subscriptions with their durable outbox).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use twin_model::context::Context;
use twin_model::ngsi::parse_entity;
use twin_model::query::{parse_q, parse_types};
use twin_model::{Attribute, Dataset, Entity, ErrorKind, NgsiError, Provenance};
use twin_store::*;

mod common;
use common::Opened;

on_both_backends!(
    writes_are_atomic_and_durable,
    batches_fail_per_item_and_concurrent_writes_all_land,
    planned_queries_equal_brute_force,
    temporal_instances_and_aggregation,
    contexts_datasets_and_the_subscription_outbox,
    common_types_walk_entities_in_id_order,
    streams_are_all_or_nothing,
    modified_since_lists_recent_writes_oldest_first,
    map_changes_say_where_maps_went_stale,
    dead_letters_are_kept_newest_first_and_deleted,
    long_texts_and_nul_characters_are_stored_and_queried,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn entity(doc: Value) -> Entity {
    parse_entity(&doc, &Context::core(), t0(), &Provenance::default()).unwrap()
}

fn put(e: Entity) -> EntityChange {
    Box::new(move |cur| {
        if cur.is_some() {
            return Err(NgsiError::exists("exists"));
        }
        store_as_is(e)(cur)
    })
}

const V: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

async fn writes_are_atomic_and_durable(o: Opened) {
    let s = o.store.clone();
    let e = entity(json!({"id": "urn:x:1", "type": "T", "a": 1}));
    let w = s.write("urn:x:1", put(e.clone())).await.unwrap();
    assert!(w.created);
    assert_eq!(s.get("urn:x:1").await.unwrap().unwrap(), e);
    let err = s.write("urn:x:1", put(e.clone())).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    // a failing change leaves the entity as it was
    let err = s
        .write("urn:x:1", Box::new(|_| Err(NgsiError::bad_data("no"))))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequestData);
    assert_eq!(s.get("urn:x:1").await.unwrap().unwrap(), e);
    // a change with a mismatched id is refused
    let other = entity(json!({"id": "urn:x:2", "type": "T"}));
    assert!(s
        .write(
            "urn:x:1",
            Box::new(move |_| Ok(ChangeOutcome::Put {
                entity: other,
                written: vec![],
                removed: vec![],
                result: Value::Null
            }))
        )
        .await
        .is_err());
    // delete
    s.write("urn:x:1", Box::new(|_| Ok(ChangeOutcome::Delete)))
        .await
        .unwrap();
    assert!(s.get("urn:x:1").await.unwrap().is_none());
    assert_eq!(
        s.write("urn:x:1", Box::new(|_| Ok(ChangeOutcome::Delete)))
            .await
            .unwrap_err()
            .kind,
        ErrorKind::ResourceNotFound
    );
    // durable across reopen
    s.write(
        "urn:x:3",
        put(entity(json!({"id": "urn:x:3", "type": "T"}))),
    )
    .await
    .unwrap();
    drop(s);
    let s2 = o.reopen().await;
    assert!(s2.get("urn:x:3").await.unwrap().is_some());
    s2.check_integrity().await.unwrap();
}

async fn batches_fail_per_item_and_concurrent_writes_all_land(o: Opened) {
    let s = o.store.clone();
    let changes: Vec<(String, EntityChange)> = (0..10)
        .map(|i| {
            let id = format!("urn:x:{i}");
            let e = entity(json!({"id": id, "type": "T", "n": i}));
            let c: EntityChange = if i == 4 {
                Box::new(|_| Err(NgsiError::bad_data("item 4 is bad")))
            } else {
                put(e)
            };
            (id, c)
        })
        .collect();
    let r = s.write_batch(changes).await.unwrap();
    assert_eq!(r.iter().filter(|x| x.is_ok()).count(), 9);
    assert!(r[4].is_err());
    assert!(s.get("urn:x:4").await.unwrap().is_none());
    assert!(s.get("urn:x:5").await.unwrap().is_some());

    let mut tasks = Vec::new();
    for i in 100..300 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("urn:x:{i}");
            s.write(
                &id.clone(),
                put(entity(json!({"id": id, "type": "C", "n": i}))),
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let page = s
        .query(&EntityQuery {
            types: Some(parse_types(&format!("{V}C")).unwrap()),
            count: true,
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.count, Some(200));
}

/// Deterministic pseudo-random numbers for the query property test.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn planned_queries_equal_brute_force(o: Opened) {
    let s = o.store.clone();
    let mut rng = Lcg(42);
    let mut all = Vec::new();
    let changes: Vec<(String, EntityChange)> = (0..400)
        .map(|i| {
            let id = format!("urn:ngsi-ld:E:{i:04}");
            let ty = ["A", "B", "C"][(i % 3) as usize];
            let mut doc = json!({"id": id, "type": ty,
                "location": {"type": "Point", "coordinates": [24.9 + rng.below(100) as f64 * 0.001, 60.1 + rng.below(100) as f64 * 0.001]}});
            if rng.below(4) > 0 {
                doc["n"] = json!(rng.below(50));
            }
            if rng.below(3) > 0 {
                let colour = ["red", "green", "blue"][rng.below(3) as usize];
                doc["s"] = json!(colour);
            }
            if rng.below(5) == 0 {
                doc["list"] = json!([rng.below(10), rng.below(10)]);
            }
            if rng.below(4) == 0 {
                doc["flag"] = json!(rng.below(2) == 0);
            }
            if rng.below(8) == 0 {
                // longer than the index keeps element by element: marked opaque, decided by the evaluator
                let big: Vec<u64> = (0..70).map(|k| (k * (i as u64 + 1)) % 100).collect();
                doc["big"] = json!(big);
            }
            if rng.below(6) == 0 {
                doc["label"] = json!({"type": "LanguageProperty", "languageMap": {"en": "red", "fi": ["punainen", "red"]}});
            }
            if rng.below(3) == 0 {
                doc["r"] = json!({"type": "Relationship", "object": format!("urn:ngsi-ld:R:{}", rng.below(5))});
            }
            let e = entity(doc);
            all.push(e.clone());
            (id, put(e))
        })
        .collect();
    for r in s.write_batch(changes).await.unwrap() {
        r.unwrap();
    }
    let ctx = Context::core();
    let terms = [
        "n>25",
        "n<=10",
        "n==7",
        "n==3,9,27",
        "n==10..20",
        "n!=5",
        "s==\"red\"",
        "s!=\"blue\"",
        "s~=^gr",
        "s!~=e",
        "list==3",
        "list>8",
        "flag==true",
        "flag!=true",
        "r==urn:ngsi-ld:R:2",
        "n",
        "s",
        "list",
        "!n",
        "nothing",
        "n==\"7\"",
        "s>\"green\"",
        "big==65",
        "big>98",
        "big<1",
        "label==\"punainen\"",
        "label[fi]==\"red\"",
        "flag>0",
    ];
    let types = ["A", "B", "A,C", "A|B|C"];
    for round in 0..400 {
        let a = terms[rng.below(terms.len() as u64) as usize];
        let b = terms[rng.below(terms.len() as u64) as usize];
        let c = terms[rng.below(terms.len() as u64) as usize];
        let q = match round % 4 {
            0 => a.to_string(),
            1 => format!("{a};{b}"),
            2 => format!("{a}|{b}"),
            _ => format!("({a}|{b});{c}"),
        };
        let mut qq = parse_q(&q).unwrap();
        qq.expand_names(&|n| ctx.expand(n));
        let mut te = parse_types(types[rng.below(4) as usize]).unwrap();
        te.expand_names(&|n| ctx.expand(n));
        let with_geo = round % 5 == 0;
        let mut geo = twin_model::geoquery::GeoQuery::parse(
            "near;maxDistance==2000",
            "Point",
            "[24.95,60.15]",
            None,
        )
        .unwrap();
        geo.expand_names(&|n| ctx.expand(n));
        let eq = EntityQuery {
            types: Some(te.clone()),
            q: Some(qq.clone()),
            geo: if with_geo { Some(geo.clone()) } else { None },
            limit: 1000,
            count: true,
            ..Default::default()
        };
        let page = s.query(&eq).await.unwrap();
        let expected: Vec<&str> = all
            .iter()
            .filter(|e| te.matches(&e.types) && qq.matches(e) && (!with_geo || geo.matches(e)))
            .map(|e| e.id.as_str())
            .collect();
        let got: Vec<&str> = page.entities.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(got, expected, "q={q}");
        assert_eq!(page.count, Some(expected.len() as u64), "q={q}");
        // paging returns the same sequence
        let second = s
            .query(&EntityQuery {
                limit: 3,
                offset: 2,
                count: false,
                ..eq.clone()
            })
            .await
            .unwrap();
        let ids: Vec<&str> = second.entities.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            expected.iter().skip(2).take(3).copied().collect::<Vec<_>>(),
            "q={q} paged"
        );
    }
}

fn inst(v: f64, at: DateTime<Utc>) -> Attribute {
    let mut a = Attribute::property(json!(v));
    a.observed_at = Some(at);
    a.modified_at = Some(at);
    a
}

async fn temporal_instances_and_aggregation(o: Opened) {
    let s = o.store.clone();
    let name = format!("{V}v");
    let mut attrs = BTreeMap::new();
    // 24 hourly values, then values on Jan 31, Feb 29 and Mar 1 for calendar-month periods
    let mut list: Vec<Attribute> = (0..24)
        .map(|h| inst(h as f64, t0() + Duration::hours(h)))
        .collect();
    list.push(inst(
        100.0,
        Utc.with_ymd_and_hms(2024, 1, 31, 12, 0, 0).unwrap(),
    ));
    list.push(inst(
        200.0,
        Utc.with_ymd_and_hms(2024, 2, 29, 12, 0, 0).unwrap(),
    ));
    list.push(inst(
        300.0,
        Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap(),
    ));
    attrs.insert(name.clone(), list);
    assert!(s
        .temporal_append("urn:x:t", Some(vec![format!("{V}T")]), vec![], attrs)
        .await
        .unwrap());
    let q = TemporalQuery {
        entities: EntityQuery {
            ids: Some(vec!["urn:x:t".into()]),
            ..Default::default()
        },
        instance_limit: 1000,
        ..Default::default()
    };
    let r = s.temporal_query(&q).await.unwrap();
    assert_eq!(r[0].attrs[&name].len(), 27);
    let last = s
        .temporal_query(&TemporalQuery {
            last_n: Some(2),
            ..q.clone()
        })
        .await
        .unwrap();
    let vals: Vec<&Value> = last[0].attrs[&name].iter().map(|a| &a.value).collect();
    assert_eq!(vals, vec![&json!(200.0), &json!(300.0)]);
    let between = TemporalQuery {
        timerel: Some(TimeRel::Between(t0(), t0() + Duration::hours(6))),
        ..q.clone()
    };
    assert_eq!(
        s.temporal_query(&between).await.unwrap()[0].attrs[&name].len(),
        6
    );

    let months = Aggregation {
        methods: vec![AggrMethod::TotalCount, AggrMethod::Max],
        period: Some(twin_model::duration::Duration::parse("P1M").unwrap()),
    };
    let agg = s.temporal_aggregate(&q, &months).await.unwrap();
    let counts: Vec<(Value, DateTime<Utc>)> = agg[0].attrs[&name][&AggrMethod::TotalCount]
        .iter()
        .map(|p| (p.value.clone(), p.start))
        .collect();
    assert_eq!(
        counts,
        vec![
            (json!(25), t0()),
            (json!(1), Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap()),
            (json!(1), Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap())
        ]
    );
    assert_eq!(agg[0].attrs[&name][&AggrMethod::Max][0].value, json!(100.0));
    let hours = Aggregation {
        methods: vec![AggrMethod::Avg],
        period: Some(twin_model::duration::Duration::parse("PT6H").unwrap()),
    };
    let agg = s.temporal_aggregate(&between, &hours).await.unwrap();
    assert_eq!(agg[0].attrs[&name][&AggrMethod::Avg][0].value, json!(2.5));

    // distinct values of any kind, numbers by value
    let word = format!("{V}w");
    let words: Vec<Attribute> = [json!("a"), json!("b"), json!("a"), json!(1), json!(1.0)]
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut a = Attribute::property(v);
            a.observed_at = Some(t0() + Duration::minutes(i as i64));
            a
        })
        .collect();
    assert!(!s
        .temporal_append(
            "urn:x:t",
            None,
            vec![],
            BTreeMap::from([(word.clone(), words)])
        )
        .await
        .unwrap());
    let distinct = Aggregation {
        methods: vec![AggrMethod::DistinctCount, AggrMethod::TotalCount],
        period: None,
    };
    let words_q = TemporalQuery {
        attrs: Some(vec![word.clone()]),
        ..q.clone()
    };
    let agg = s.temporal_aggregate(&words_q, &distinct).await.unwrap();
    assert_eq!(
        agg[0].attrs[&word][&AggrMethod::DistinctCount][0].value,
        json!(3)
    );
    assert_eq!(
        agg[0].attrs[&word][&AggrMethod::TotalCount][0].value,
        json!(5)
    );

    // one instance, by its id: modified (keeping when it was observed), then deleted
    let first = s.temporal_query(&words_q).await.unwrap()[0].attrs[&word][0].clone();
    let iid = first.instance_id.clone().unwrap();
    assert!(iid.starts_with("urn:ngsi-ld:attribute:instance:"));
    s.temporal_modify_instance("urn:x:t", &word, &iid, Attribute::property(json!("z")))
        .await
        .unwrap();
    let now = s.temporal_query(&words_q).await.unwrap()[0].attrs[&word][0].clone();
    assert_eq!(
        (&now.value, now.observed_at, now.instance_id.as_ref()),
        (&json!("z"), first.observed_at, Some(&iid))
    );
    s.temporal_delete("urn:x:t", Some(&word), None, Some(&iid))
        .await
        .unwrap();
    assert_eq!(
        s.temporal_query(&words_q).await.unwrap()[0].attrs[&word].len(),
        4
    );
    for bad in [iid.as_str(), "urn:ngsi-ld:attribute:instance:x"] {
        let err = s
            .temporal_modify_instance("urn:x:t", &word, bad, Attribute::property(json!(0)))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    }
    s.temporal_delete("urn:x:t", Some(&word), None, None)
        .await
        .unwrap();

    s.temporal_delete("urn:x:t", Some(&name), None, None)
        .await
        .unwrap();
    assert!(s.temporal_query(&q).await.unwrap()[0].attrs.is_empty());
    s.temporal_delete("urn:x:t", None, None, None)
        .await
        .unwrap();
    assert_eq!(
        s.temporal_delete("urn:x:t", None, None, None)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::ResourceNotFound
    );
}

async fn contexts_datasets_and_the_subscription_outbox(o: Opened) {
    let s = o.store.clone();
    let c = StoredContext {
        id: "c1".into(),
        url: "http://example.org/c1".into(),
        kind: "Hosted".into(),
        document: json!({"@context": {"a": "http://x/a"}}),
        created_at: t0(),
        last_usage: None,
        number_of_hits: 0,
    };
    s.put_context(c.clone()).await.unwrap();
    assert_eq!(
        s.get_context("http://example.org/c1")
            .await
            .unwrap()
            .unwrap(),
        c
    );
    assert_eq!(s.get_context("c1").await.unwrap().unwrap(), c);
    let dup = StoredContext {
        id: "c2".into(),
        ..c.clone()
    };
    assert_eq!(
        s.put_context(dup).await.unwrap_err().kind,
        ErrorKind::AlreadyExists
    );
    assert_eq!(s.list_contexts().await.unwrap().len(), 1);
    assert!(s.delete_context("c1").await.unwrap());
    assert!(!s.delete_context("c1").await.unwrap());

    let d = Dataset::default_dataset();
    s.put_dataset(d.clone()).await.unwrap();
    assert_eq!(s.get_dataset(&d.id).await.unwrap().unwrap(), d);
    assert_eq!(s.list_datasets().await.unwrap().len(), 1);

    // no subscription: changes are not journaled
    s.write(
        "urn:x:1",
        put(entity(json!({"id": "urn:x:1", "type": "T"}))),
    )
    .await
    .unwrap();
    assert!(s.changes_since(0, 10).await.unwrap().is_empty());
    let sub = StoredSubscription {
        id: "urn:ngsi-ld:Subscription:1".into(),
        document: json!({"type": "Subscription"}),
        status: DeliveryStatus::default(),
    };
    s.put_subscription(sub.clone(), true).await.unwrap();
    assert_eq!(
        s.put_subscription(sub.clone(), true)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::AlreadyExists
    );
    s.write(
        "urn:x:2",
        put(entity(json!({"id": "urn:x:2", "type": "T", "a": 1}))),
    )
    .await
    .unwrap();
    let ch = s.changes_since(0, 10).await.unwrap();
    assert_eq!(ch.len(), 1);
    assert_eq!(
        (ch[0].trigger, ch[0].entity.id.as_str()),
        (Trigger::EntityCreated, "urn:x:2")
    );
    assert_eq!(ch[0].attributes, vec![format!("{V}a")]);
    s.enqueue_deliveries(ch[0].seq, vec![(sub.id.clone(), json!({"n": 1}))])
        .await
        .unwrap();
    assert!(s.changes_since(0, 10).await.unwrap().is_empty());
    assert_eq!(s.pending_deliveries(&sub.id).await.unwrap(), 1);
    let due = s.due_deliveries(Utc::now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    // a failure reschedules; a success removes and counts
    s.finish_delivery(
        due[0].id,
        &sub.id,
        Utc::now(),
        Some("refused".into()),
        Some(Utc::now() + Duration::hours(1)),
    )
    .await
    .unwrap();
    assert!(s.due_deliveries(Utc::now(), 10).await.unwrap().is_empty());
    let later = s
        .due_deliveries(Utc::now() + Duration::hours(2), 10)
        .await
        .unwrap();
    assert_eq!(later[0].attempts, 1);
    s.finish_delivery(due[0].id, &sub.id, Utc::now(), None, None)
        .await
        .unwrap();
    assert_eq!(s.pending_deliveries(&sub.id).await.unwrap(), 0);
    assert!(s
        .due_deliveries(Utc::now() + Duration::hours(2), 10)
        .await
        .unwrap()
        .is_empty());
    let st = s.get_subscription(&sub.id).await.unwrap().unwrap().status;
    assert_eq!(
        (st.times_sent, st.times_failed, st.last_error.as_deref()),
        (1, 1, Some("refused"))
    );
    assert!(s.delete_subscription(&sub.id).await.unwrap());
    s.write(
        "urn:x:3",
        put(entity(json!({"id": "urn:x:3", "type": "T"}))),
    )
    .await
    .unwrap();
    assert!(
        s.changes_since(0, 10).await.unwrap().is_empty(),
        "journal stops with the last subscription"
    );
}

async fn common_types_walk_entities_in_id_order(o: Opened) {
    // more entities of one type than the planner starts from the type index for
    let s = o.store.clone();
    let mut all = Vec::new();
    let changes: Vec<(String, EntityChange)> = (0..2600)
        .map(|i| {
            let id = format!("urn:ngsi-ld:Big:{i:05}");
            let e = entity(json!({"id": id, "type": "Big", "n": i % 100, "s": if i % 7 == 0 { "a" } else { "b" }}));
            all.push(e.clone());
            (id, put(e))
        })
        .collect();
    for r in s.write_batch(changes).await.unwrap() {
        r.unwrap();
    }
    s.write(
        "urn:ngsi-ld:Small:1",
        put(entity(
            json!({"id": "urn:ngsi-ld:Small:1", "type": "Small", "n": 99}),
        )),
    )
    .await
    .unwrap();
    let ctx = Context::core();
    for q in [
        "n>95",
        "n==3;s==\"a\"",
        "n<2|s==\"z\"",
        "!s",
        "n==50..52;s==\"a\"",
    ] {
        let mut qq = parse_q(q).unwrap();
        qq.expand_names(&|n| ctx.expand(n));
        let mut te = parse_types("Big").unwrap();
        te.expand_names(&|n| ctx.expand(n));
        let expected: Vec<&str> = all
            .iter()
            .filter(|e| qq.matches(e))
            .map(|e| e.id.as_str())
            .collect();
        let eq = EntityQuery {
            types: Some(te),
            q: Some(qq),
            limit: 7,
            offset: 5,
            count: true,
            ..Default::default()
        };
        let page = s.query(&eq).await.unwrap();
        assert_eq!(page.count, Some(expected.len() as u64), "q={q}");
        let got: Vec<&str> = page.entities.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            got,
            expected.iter().skip(5).take(7).copied().collect::<Vec<_>>(),
            "q={q}"
        );
    }
    let te = {
        let mut t = parse_types("Big").unwrap();
        t.expand_names(&|n| ctx.expand(n));
        t
    };
    let page = s
        .query(&EntityQuery {
            types: Some(te),
            limit: 3,
            offset: 2598,
            count: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.count, Some(2600));
    assert_eq!(page.entities.len(), 2);

    // the types and attributes in use, with how many carry them
    let kinds = |k: &str| vec![k.to_string()];
    let types = s.types(None).await.unwrap();
    assert_eq!(
        types,
        vec![
            TypeInfo {
                type_name: format!("{V}Big"),
                entity_count: 2600,
                attributes: BTreeMap::from([
                    (format!("{V}n"), kinds("Property")),
                    (format!("{V}s"), kinds("Property"))
                ]),
            },
            TypeInfo {
                type_name: format!("{V}Small"),
                entity_count: 1,
                attributes: BTreeMap::from([(format!("{V}n"), kinds("Property"))]),
            },
        ]
    );
    let attrs = s.attributes(None).await.unwrap();
    let n = attrs.iter().find(|a| a.name == format!("{V}n")).unwrap();
    let mut type_names = n.type_names.clone();
    type_names.sort();
    assert_eq!(
        (n.attribute_count, &n.kinds, type_names),
        (
            2601,
            &kinds("Property"),
            vec![format!("{V}Big"), format!("{V}Small")]
        )
    );
    assert_eq!(attrs.len(), 2);
}

async fn streams_are_all_or_nothing(o: Opened) {
    let s = o.store.clone();
    let send = |n: usize, end: Option<StreamMsg>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for i in 0..n {
                let id = format!("urn:x:s{i}");
                let e = entity(json!({"id": id, "type": "S", "n": i}));
                let _ = tx.send(StreamMsg::Change(id, put(e)));
            }
            if let Some(m) = end {
                let _ = tx.send(m);
            }
        });
        rx
    };
    let count = |s: Arc<dyn Store>| async move {
        let mut te = parse_types("S").unwrap();
        te.expand_names(&|n| Context::core().expand(n));
        s.query(&EntityQuery {
            types: Some(te),
            count: true,
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .count
    };
    // aborted, or ended without a commit: nothing stays
    assert!(s
        .write_stream(send(
            500,
            Some(StreamMsg::Abort(NgsiError::bad_data("bad row")))
        ))
        .await
        .is_err());
    assert!(s.write_stream(send(500, None)).await.is_err());
    assert_eq!(count(s.clone()).await, Some(0));
    // a failing change aborts the whole stream
    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(StreamMsg::Change(
        "urn:x:ok".into(),
        put(entity(json!({"id": "urn:x:ok", "type": "S"}))),
    ))
    .unwrap();
    tx.send(StreamMsg::Change(
        "urn:x:bad".into(),
        Box::new(|_| Err(NgsiError::bad_data("refused"))),
    ))
    .unwrap();
    tx.send(StreamMsg::Commit).unwrap();
    let err = s.write_stream(rx).await.unwrap_err();
    assert!(err.detail.contains("urn:x:bad"), "{err}");
    assert!(s.get("urn:x:ok").await.unwrap().is_none());
    // committed
    let summary = s
        .write_stream(send(500, Some(StreamMsg::Commit)))
        .await
        .unwrap();
    assert_eq!(summary.created, 500);
    assert_eq!(count(s.clone()).await, Some(500));
    s.check_integrity().await.unwrap();
}

fn replace(e: Entity) -> EntityChange {
    store_as_is(e)
}

async fn modified_since_lists_recent_writes_oldest_first(o: Opened) {
    let s = o.store.clone();
    let at = |secs: i64| t0() + chrono::TimeDelta::seconds(secs);
    let sensor = |id: &str, v: f64, secs: i64| {
        let doc = json!({"id": id, "type": "Sensor", "reading": v});
        parse_entity(&doc, &Context::core(), at(secs), &Provenance::default()).unwrap()
    };
    let ms = |secs: i64| at(secs).timestamp_millis();
    assert!(s.modified_since(0, 10).await.unwrap().is_empty());
    s.write("urn:x:b", replace(sensor("urn:x:b", 2.0, 2)))
        .await
        .unwrap();
    s.write("urn:x:a", replace(sensor("urn:x:a", 1.0, 1)))
        .await
        .unwrap();
    let all = s.modified_since(ms(0), 10).await.unwrap();
    let got: Vec<(i64, &str)> = all.iter().map(|(t, e)| (*t, e.id.as_str())).collect();
    assert_eq!(
        got,
        [(ms(1), "urn:x:a"), (ms(2), "urn:x:b")],
        "by modifiedAt"
    );
    // a later write moves an entity to the end, with its new value
    s.write("urn:x:a", replace(sensor("urn:x:a", 3.0, 3)))
        .await
        .unwrap();
    let after = s.modified_since(ms(2) + 1, 10).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, ms(3));
    assert_eq!(
        after[0].1.attrs[&format!("{V}reading")][0].value,
        json!(3.0)
    );
    assert_eq!(
        s.modified_since(ms(2), 10).await.unwrap().len(),
        2,
        "at or after"
    );
    assert_eq!(
        s.modified_since(0, 1).await.unwrap().len(),
        1,
        "the limit holds"
    );
    assert!(s.modified_since(ms(3) + 1, 10).await.unwrap().is_empty());
}

async fn map_changes_say_where_maps_went_stale(o: Opened) {
    let s = o.store.clone();
    let first = s.map_changes_since(0, 100).await.unwrap();
    assert_eq!(
        (first.head, first.changes.len(), first.complete),
        (0, 0, true)
    );
    let square = |x: f64, y: f64| {
        json!({"type": "GeoProperty", "value": {"type": "Polygon", "coordinates":
            [[[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]]}})
    };
    let building = |x: f64, y: f64| {
        entity(json!({"id": "urn:x:b", "type": "Building", "location": square(x, y)}))
    };
    let sensor = |v: f64| {
        entity(json!({"id": "urn:x:s", "type": "Sensor", "value": v,
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [20.0, 40.0]}}}))
    };
    s.write("urn:x:b", replace(building(10.0, 50.0)))
        .await
        .unwrap();
    s.write("urn:x:s", replace(sensor(1.0))).await.unwrap();
    // no geometry, nothing drawn: no map change
    s.write(
        "urn:x:n",
        replace(entity(
            json!({"id": "urn:x:n", "type": "Note", "text": "hi"}),
        )),
    )
    .await
    .unwrap();
    let c = s.map_changes_since(0, 100).await.unwrap();
    assert!(c.complete);
    assert_eq!(c.head, 2);
    assert_eq!(c.changes[0].type_name, format!("{V}Building"));
    assert_eq!(c.changes[0].bbox, [10.0, 50.0, 10.01, 50.01]);
    assert_eq!(c.changes[1].type_name, format!("{V}Sensor"));
    assert_eq!(c.changes[1].bbox, [20.0, 40.0, 20.0, 40.0]);

    // a new value of a drawn entity, a move (old and new places), a deletion (where it was)
    s.write("urn:x:s", replace(sensor(2.0))).await.unwrap();
    s.write("urn:x:b", replace(building(11.0, 51.0)))
        .await
        .unwrap();
    s.write("urn:x:s", Box::new(|_| Ok(ChangeOutcome::Delete)))
        .await
        .unwrap();
    let c = s.map_changes_since(2, 100).await.unwrap();
    assert!(c.complete);
    let seen: Vec<(String, [f64; 4])> = c
        .changes
        .iter()
        .map(|c| (c.type_name.rsplit('/').next().unwrap().to_string(), c.bbox))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("Sensor".to_string(), [20.0, 40.0, 20.0, 40.0]),
            ("Building".to_string(), [10.0, 50.0, 11.01, 51.01]),
            ("Sensor".to_string(), [20.0, 40.0, 20.0, 40.0]),
        ]
    );
    // a caller further behind than the limit is told to start afresh
    let c = s.map_changes_since(0, 2).await.unwrap();
    assert!(!c.complete);
    assert_eq!(c.head, 5);
    let c = s.map_changes_since(5, 100).await.unwrap();
    assert!(c.complete && c.changes.is_empty());

    // the spatial index follows the move: the old place no longer finds the building, the extent is the new one
    // (the R-tree keeps 32-bit floats, rounded outwards)
    let ext = s
        .type_extent(&format!("{V}Building"), None)
        .await
        .unwrap()
        .unwrap();
    for (got, want) in ext.iter().zip([11.0, 51.0, 11.01, 51.01]) {
        assert!((got - want).abs() < 1e-5, "{ext:?}");
    }
    assert!(ext[0] <= 11.0 && ext[3] >= 51.01);
    assert_eq!(
        s.type_extent(&format!("{V}Sensor"), None).await.unwrap(),
        None
    );
    let near = |x: f64, y: f64| {
        let mut g = twin_model::geoquery::GeoQuery::parse(
            "intersects",
            "Point",
            &format!("[{}, {}]", x + 0.005, y + 0.005),
            None,
        )
        .unwrap();
        g.expand_names(&|n| Context::core().expand(n));
        EntityQuery {
            geo: Some(g),
            limit: 10,
            ..Default::default()
        }
    };
    assert!(s
        .query(&near(10.0, 50.0))
        .await
        .unwrap()
        .entities
        .is_empty());
    assert_eq!(s.query(&near(11.0, 51.0)).await.unwrap().entities.len(), 1);
    s.check_integrity().await.unwrap();
}

#[tokio::test]
async fn a_database_from_an_earlier_build_of_the_schema_gains_the_new_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        // as a build from before map changes and scenarios left it
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("DROP TABLE map_changes; DROP TABLE scenarios; DROP TABLE scenario_runs;")
            .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    s.write(
        "urn:x:b",
        store_as_is(entity(json!({"id": "urn:x:b", "type": "Building",
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1.0, 2.0]}}}))),
    )
    .await
    .unwrap();
    assert_eq!(s.map_changes_since(0, 10).await.unwrap().changes.len(), 1);
    assert!(s.list_scenarios().await.unwrap().is_empty());
}

async fn dead_letters_are_kept_newest_first_and_deleted(o: Opened) {
    let s = o.store.clone();
    let at = t0();
    let letter = |topic: &str, payload: &[u8], reason: &str| DeadLetter {
        id: 0,
        received_at: at,
        source: "mqtt".into(),
        topic: topic.into(),
        payload: payload.to_vec(),
        reason: reason.into(),
    };
    s.put_dead_letters(vec![
        letter("a/1", b"{not json", "not JSON"),
        letter("b/2", &[0xff, 0x00, 0x7f], "not UTF-8"),
        letter("a/1", b"{}", "no id"),
    ])
    .await
    .unwrap();
    let (total, all) = s.dead_letters(None, None, 10).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        all.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>(),
        ["no id", "not UTF-8", "not JSON"]
    );
    assert!(all[0].id > all[1].id && all[1].id > all[2].id);
    assert_eq!(all[1].payload, vec![0xff, 0x00, 0x7f]);
    assert_eq!(all[1].received_at, at);
    assert_eq!(all[1].source, "mqtt");
    // one topic, paged
    let (n, page) = s.dead_letters(Some("a/1"), None, 1).await.unwrap();
    assert_eq!((n, page.len()), (2, 1));
    assert_eq!(page[0].reason, "no id");
    let (_, next) = s
        .dead_letters(Some("a/1"), Some(page[0].id), 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].reason, "not JSON");
    // delete one, then the rest
    assert_eq!(
        s.delete_dead_letters(Some(vec![page[0].id, 999_999]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.dead_letters(None, None, 10).await.unwrap().0, 2);
    assert_eq!(s.delete_dead_letters(None).await.unwrap(), 2);
    assert_eq!(s.dead_letters(None, None, 10).await.unwrap(), (0, vec![]));
}

async fn long_texts_and_nul_characters_are_stored_and_queried(o: Opened) {
    let s = o.store.clone();
    // longer than PostgreSQL's B-tree rows take, and without redundancy to compress
    let long: String = (0..6000u32)
        .map(|i| char::from(b'a' + ((i.wrapping_mul(2_654_435_761) >> 13) % 26) as u8))
        .collect();
    let nul = "before\u{0}after".to_string();
    let batch = vec![
        (
            "urn:t:long".to_string(),
            put(entity(
                json!({"id": "urn:t:long", "type": "T", "text": long.clone()}),
            )),
        ),
        (
            "urn:t:nul".to_string(),
            put(entity(
                json!({"id": "urn:t:nul", "type": "T", "text": nul.clone()}),
            )),
        ),
        (
            "urn:t:short".to_string(),
            put(entity(
                json!({"id": "urn:t:short", "type": "T", "text": "short"}),
            )),
        ),
    ];
    for r in s.write_batch(batch).await.unwrap() {
        r.unwrap();
    }
    assert_eq!(
        s.get("urn:t:long").await.unwrap().unwrap().attrs[&format!("{V}text")][0].value,
        json!(long)
    );
    assert_eq!(
        s.get("urn:t:nul").await.unwrap().unwrap().attrs[&format!("{V}text")][0].value,
        json!(nul)
    );
    let ctx = Context::core();
    let q = |expr: &str| {
        let mut qq = parse_q(expr).unwrap();
        qq.expand_names(&|n| ctx.expand(n));
        EntityQuery {
            types: Some(parse_types(&format!("{V}T")).unwrap()),
            q: Some(qq),
            limit: 10,
            ..Default::default()
        }
    };
    let ids = |p: QueryPage| p.entities.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.query(&q(&format!("text==\"{long}\""))).await.unwrap()),
        ["urn:t:long"]
    );
    assert_eq!(
        ids(s.query(&q("text==\"short\"")).await.unwrap()),
        ["urn:t:short"]
    );
    assert_eq!(ids(s.query(&q("text")).await.unwrap()).len(), 3);
}
