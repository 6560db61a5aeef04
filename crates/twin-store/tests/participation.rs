//! Participation records and marks (consultations), on both backends: puts in each mode, listing filters, order and
//! pages, deletes, all-or-nothing calls, marks and their per-author limit (also under concurrent calls), tallies,
//! counts of participants, and what survives a restart or an upgrade from a database made before them.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use twin_model::ErrorKind;
use twin_store::*;

mod common;
use common::{Backend, Opened};

on_both_backends!(
    records_are_created_replaced_and_upserted,
    records_are_listed_filtered_ordered_and_paged,
    records_are_deleted_one_by_one_or_by_consultation,
    a_call_whose_operation_fails_writes_nothing,
    marks_are_set_replaced_and_removed,
    a_mark_limit_counts_other_targets_only,
    concurrent_marks_do_not_beat_the_limit,
    tallies_count_marks_per_target_and_value,
    participants_are_counted_once,
    participation_survives_a_restart,
    a_database_from_before_participation_is_brought_up_to_date,
);

/// A time with microseconds, which both backends keep.
fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
        + Duration::seconds(secs)
        + Duration::microseconds(123_457)
}

fn rec(
    kind: &str,
    id: &str,
    consultation: Option<&str>,
    parent: Option<&str>,
    author: Option<&str>,
    created: i64,
) -> ParticipationRecord {
    ParticipationRecord {
        kind: kind.into(),
        id: id.into(),
        consultation: consultation.map(str::to_string),
        parent: parent.map(str::to_string),
        author: author.map(str::to_string),
        created_at: t(created),
        modified_at: t(created),
        doc: json!({"body": format!("text of {id}"), "n": created, "nested": {"z": 1, "a": [1, 2.5, "x"]}}),
    }
}

fn put(record: ParticipationRecord, mode: PutMode) -> PartOp {
    PartOp::Put { record, mode }
}

fn mark(
    kind: &str,
    target: &str,
    author: &str,
    scope: &str,
    value: Value,
    at: i64,
) -> ParticipationMark {
    ParticipationMark {
        kind: kind.into(),
        target: target.into(),
        author: author.into(),
        scope: scope.into(),
        value,
        at: t(at),
    }
}

fn mark_op(m: ParticipationMark, limit: Option<u64>) -> PartOp {
    PartOp::Mark { mark: m, limit }
}

/// Writes `ops`, which must all apply; returns their outcomes.
async fn write(s: &Arc<dyn Store>, ops: Vec<PartOp>) -> Vec<PartOutcome> {
    s.participation_write(ops).await.unwrap().unwrap()
}

/// Writes `ops`, which must fail with a participation error; returns it.
async fn refused(s: &Arc<dyn Store>, ops: Vec<PartOp>) -> PartError {
    s.participation_write(ops).await.unwrap().unwrap_err()
}

fn outcome(created: bool, count: u64) -> PartOutcome {
    PartOutcome { created, count }
}

fn ids(records: &[ParticipationRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

async fn list(s: &Arc<dyn Store>, q: PartQuery) -> Vec<ParticipationRecord> {
    s.participation_list(&q, false).await.unwrap().0
}

fn comments() -> PartQuery {
    PartQuery {
        kind: "comment".into(),
        ..Default::default()
    }
}

async fn records_are_created_replaced_and_upserted(o: Opened) {
    let s = o.store.clone();
    let a = rec("comment", "c1", Some("k1"), None, Some("ana"), 1);
    assert_eq!(
        write(&s, vec![put(a.clone(), PutMode::Create)]).await,
        [outcome(true, 1)]
    );
    // exactly as written, to the microsecond
    assert_eq!(
        s.participation_get("comment", "c1").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(s.participation_get("comment", "c2").await.unwrap(), None);
    // the same id in another kind is another record
    assert_eq!(s.participation_get("proposal", "c1").await.unwrap(), None);

    assert_eq!(
        refused(&s, vec![put(a.clone(), PutMode::Create)]).await,
        PartError::AlreadyExists {
            kind: "comment".into(),
            id: "c1".into()
        }
    );
    let missing = rec("comment", "c2", Some("k1"), None, Some("ana"), 2);
    assert_eq!(
        refused(&s, vec![put(missing.clone(), PutMode::Replace)]).await,
        PartError::NotFound {
            kind: "comment".into(),
            id: "c2".into()
        }
    );
    assert_eq!(s.participation_get("comment", "c2").await.unwrap(), None);

    let mut edited = a.clone();
    edited.doc = json!({"body": "edited", "editedAt": "2026-03-01T10:00:00Z"});
    edited.modified_at = t(100);
    edited.author = None;
    edited.parent = Some("c0".into());
    assert_eq!(
        write(&s, vec![put(edited.clone(), PutMode::Replace)]).await,
        [outcome(false, 1)]
    );
    assert_eq!(
        s.participation_get("comment", "c1").await.unwrap(),
        Some(edited.clone())
    );

    // upsert: creates, then replaces
    assert_eq!(
        write(&s, vec![put(missing.clone(), PutMode::Upsert)]).await,
        [outcome(true, 1)]
    );
    let mut again = missing.clone();
    again.doc = json!(["a", null, true, -1.5]);
    assert_eq!(
        write(&s, vec![put(again.clone(), PutMode::Upsert)]).await,
        [outcome(false, 1)]
    );
    assert_eq!(
        s.participation_get("comment", "c2").await.unwrap(),
        Some(again)
    );
    assert_eq!(
        s.participation_list(&comments(), true).await.unwrap().1,
        Some(2)
    );
    // an empty call does nothing
    assert_eq!(write(&s, vec![]).await, []);
}

async fn records_are_listed_filtered_ordered_and_paged(o: Opened) {
    let s = o.store.clone();
    let all = [
        rec("consultation", "k1", None, None, Some("plan"), 0),
        rec("comment", "a", Some("k1"), None, Some("ana"), 10),
        rec("comment", "b", Some("k1"), Some("a"), Some("ben"), 20),
        rec("comment", "c", Some("k1"), Some("a"), Some("ana"), 30),
        rec("comment", "d", Some("k1"), None, Some("cid"), 40),
        rec("comment", "e", Some("k2"), None, Some("ana"), 50),
        // the same time as d: id decides
        rec("comment", "d2", Some("k1"), None, None, 40),
        rec("proposal", "p", Some("k1"), None, Some("ana"), 15),
    ];
    write(
        &s,
        all.iter()
            .cloned()
            .map(|r| put(r, PutMode::Create))
            .collect(),
    )
    .await;

    let q = |f: &dyn Fn(&mut PartQuery)| {
        let mut q = comments();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(&list(&s, comments()).await),
        ["a", "b", "c", "d", "d2", "e"]
    );
    assert_eq!(
        ids(&list(&s, q(&|q| q.newest_first = true)).await),
        ["e", "d2", "d", "c", "b", "a"]
    );
    assert_eq!(
        ids(&list(&s, q(&|q| q.consultation = Some("k1".into()))).await),
        ["a", "b", "c", "d", "d2"]
    );
    assert_eq!(
        ids(&list(
            &s,
            q(&|q| {
                q.consultation = Some("k1".into());
                q.parent = Some(None)
            })
        )
        .await),
        ["a", "d", "d2"]
    );
    assert_eq!(
        ids(&list(&s, q(&|q| q.parent = Some(Some("a".into())))).await),
        ["b", "c"]
    );
    // the replies of several threads at once
    assert_eq!(
        ids(&list(
            &s,
            q(&|q| q.parents = Some(vec!["a".into(), "d".into(), "zz".into()]))
        )
        .await),
        ["b", "c"]
    );
    assert!(list(&s, q(&|q| q.parents = Some(vec![]))).await.is_empty());
    assert_eq!(
        ids(&list(&s, q(&|q| q.author = Some("ana".into()))).await),
        ["a", "c", "e"]
    );
    assert_eq!(
        ids(&list(
            &s,
            q(&|q| q.ids = Some(vec!["e".into(), "a".into(), "p".into(), "zz".into()]))
        )
        .await),
        ["a", "e"]
    );
    assert!(list(&s, q(&|q| q.ids = Some(vec![]))).await.is_empty());
    // strictly after: d and d2 were created at t(40)
    assert_eq!(
        ids(&list(&s, q(&|q| q.created_after = Some(t(40)))).await),
        ["e"]
    );
    assert_eq!(
        ids(&list(&s, q(&|q| q.created_after = Some(t(39)))).await),
        ["d", "d2", "e"]
    );
    let kinds = |k: &str| PartQuery {
        kind: k.into(),
        ..Default::default()
    };
    assert_eq!(ids(&list(&s, kinds("proposal")).await), ["p"]);
    assert_eq!(list(&s, kinds("consultation")).await, [all[0].clone()]);
    assert!(list(&s, kinds("nothing")).await.is_empty());

    // pages, with and without the count of all that match
    let page = |limit, offset, newest_first| {
        q(&move |q| {
            q.limit = limit;
            q.offset = offset;
            q.newest_first = newest_first;
        })
    };
    let (r, n) = s
        .participation_list(&page(2, 0, false), true)
        .await
        .unwrap();
    assert_eq!((ids(&r), n), (vec!["a", "b"], Some(6)));
    let (r, n) = s
        .participation_list(&page(2, 2, false), true)
        .await
        .unwrap();
    assert_eq!((ids(&r), n), (vec!["c", "d"], Some(6)));
    let (r, n) = s
        .participation_list(&page(2, 5, false), false)
        .await
        .unwrap();
    assert_eq!((ids(&r), n), (vec!["e"], None));
    let (r, _) = s
        .participation_list(&page(0, 4, false), false)
        .await
        .unwrap();
    assert_eq!(ids(&r), ["d2", "e"]);
    let (r, _) = s
        .participation_list(&page(3, 1, true), false)
        .await
        .unwrap();
    assert_eq!(ids(&r), ["d2", "d", "c"]);
    let (r, n) = s
        .participation_list(&page(2, 10, false), true)
        .await
        .unwrap();
    assert_eq!((r.len(), n), (0, Some(6)));
    let mut filtered = page(1, 0, false);
    filtered.author = Some("ana".into());
    filtered.consultation = Some("k1".into());
    let (r, n) = s.participation_list(&filtered, true).await.unwrap();
    assert_eq!((ids(&r), n), (vec!["a"], Some(2)));

    // a page of several parents' children (a consultation's threads on its scenario and in general) is the slice of
    // all of them in order, however the parents interleave; and the count is of all of them
    let mut threads = Vec::new();
    for i in 0..23i64 {
        let parent = ["@s", "@", "@s", "@other"][(i as usize * 7) % 4];
        // some at the same time: id decides
        threads.push(rec(
            "comment",
            &format!("t{i:02}"),
            Some("k3"),
            Some(parent),
            None,
            100 + i / 3,
        ));
    }
    threads.push(rec(
        "comment",
        "elsewhere",
        Some("k4"),
        Some("@s"),
        None,
        101,
    ));
    write(
        &s,
        threads
            .into_iter()
            .map(|r| put(r, PutMode::Create))
            .collect(),
    )
    .await;
    let wanted = |limit, offset, newest_first| PartQuery {
        kind: "comment".into(),
        consultation: Some("k3".into()),
        parents: Some(vec!["@s".into(), "@".into()]),
        limit,
        offset,
        newest_first,
        ..Default::default()
    };
    for newest_first in [false, true] {
        let all: Vec<String> = list(&s, wanted(0, 0, newest_first))
            .await
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(all.len(), 17, "{all:?}");
        for (limit, offset) in [(1, 0), (5, 0), (5, 3), (20, 0), (7, 14), (4, 17), (30, 2)] {
            let (r, n) = s
                .participation_list(&wanted(limit, offset, newest_first), true)
                .await
                .unwrap();
            let expected: Vec<&str> = all
                .iter()
                .skip(offset)
                .take(limit)
                .map(String::as_str)
                .collect();
            assert_eq!(
                (ids(&r), n),
                (expected, Some(17)),
                "limit {limit} offset {offset}"
            );
        }
    }
    // whole records come back
    assert_eq!(
        list(&s, q(&|q| q.ids = Some(vec!["b".into()]))).await,
        [all[2].clone()]
    );
}

async fn records_are_deleted_one_by_one_or_by_consultation(o: Opened) {
    let s = o.store.clone();
    write(
        &s,
        vec![
            put(
                rec("consultation", "k1", None, None, Some("plan"), 0),
                PutMode::Create,
            ),
            put(
                rec("comment", "a", Some("k1"), None, Some("ana"), 1),
                PutMode::Create,
            ),
            put(
                rec("comment", "b", Some("k1"), None, Some("ben"), 2),
                PutMode::Create,
            ),
            put(
                rec("proposal", "p", Some("k1"), None, Some("ana"), 3),
                PutMode::Create,
            ),
            put(
                rec("comment", "x", Some("k2"), None, Some("ana"), 4),
                PutMode::Create,
            ),
        ],
    )
    .await;
    assert_eq!(
        write(
            &s,
            vec![
                PartOp::Delete {
                    kind: "comment".into(),
                    id: "a".into()
                },
                PartOp::Delete {
                    kind: "comment".into(),
                    id: "a".into()
                },
                PartOp::Delete {
                    kind: "proposal".into(),
                    id: "b".into()
                },
            ]
        )
        .await,
        [outcome(true, 1), outcome(false, 0), outcome(false, 0)]
    );
    assert_eq!(s.participation_get("comment", "a").await.unwrap(), None);
    assert!(s.participation_get("comment", "b").await.unwrap().is_some());
    // the consultation's records of every kind, not the consultation itself nor another's records
    assert_eq!(
        write(
            &s,
            vec![PartOp::DeleteConsultation {
                consultation: "k1".into()
            }]
        )
        .await,
        [outcome(true, 2)]
    );
    assert_eq!(ids(&list(&s, comments()).await), ["x"]);
    assert!(list(
        &s,
        PartQuery {
            kind: "proposal".into(),
            ..Default::default()
        }
    )
    .await
    .is_empty());
    assert!(s
        .participation_get("consultation", "k1")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        write(
            &s,
            vec![PartOp::DeleteConsultation {
                consultation: "k1".into()
            }]
        )
        .await,
        [outcome(false, 0)]
    );
}

async fn a_call_whose_operation_fails_writes_nothing(o: Opened) {
    let s = o.store.clone();
    write(
        &s,
        vec![
            put(
                rec("comment", "old", Some("k1"), None, Some("ana"), 0),
                PutMode::Create,
            ),
            put(
                rec("comment", "dup", Some("k1"), None, Some("ana"), 0),
                PutMode::Create,
            ),
        ],
    )
    .await;
    let failing = [
        (
            put(
                rec("comment", "dup", Some("k1"), None, Some("ben"), 9),
                PutMode::Create,
            ),
            PartError::AlreadyExists {
                kind: "comment".into(),
                id: "dup".into(),
            },
        ),
        (
            put(
                rec("comment", "nope", Some("k1"), None, Some("ana"), 9),
                PutMode::Replace,
            ),
            PartError::NotFound {
                kind: "comment".into(),
                id: "nope".into(),
            },
        ),
        (
            mark_op(mark("support", "p1", "ana", "k1", json!(1), 9), Some(0)),
            PartError::TooMany {
                kind: "support".into(),
                limit: 0,
            },
        ),
    ];
    for (third, expected) in failing {
        let err = refused(
            &s,
            vec![
                put(
                    rec("comment", "new", Some("k1"), None, Some("ana"), 1),
                    PutMode::Create,
                ),
                mark_op(mark("comment-vote", "old", "ana", "k1", json!(1), 1), None),
                third,
                PartOp::Delete {
                    kind: "comment".into(),
                    id: "old".into(),
                },
                put(
                    rec("comment", "after", Some("k1"), None, Some("ana"), 1),
                    PutMode::Create,
                ),
            ],
        )
        .await;
        assert_eq!(err, expected);
        // nothing of the call stays: no new comment, no vote, the old ones untouched
        assert_eq!(ids(&list(&s, comments()).await), ["dup", "old"]);
        assert!(s
            .participation_marks(&MarkQuery::default())
            .await
            .unwrap()
            .is_empty());
    }
    // a call that deletes and then fails keeps what it deleted
    let err = refused(
        &s,
        vec![
            PartOp::Delete {
                kind: "comment".into(),
                id: "old".into(),
            },
            PartOp::DeleteConsultation {
                consultation: "k1".into(),
            },
            put(
                rec("comment", "nope", Some("k1"), None, Some("ana"), 9),
                PutMode::Replace,
            ),
        ],
    )
    .await;
    assert!(matches!(err, PartError::NotFound { .. }));
    assert_eq!(ids(&list(&s, comments()).await), ["dup", "old"]);
    assert_eq!(
        s.participation_get("comment", "dup")
            .await
            .unwrap()
            .map(|r| r.author),
        Some(Some("ana".to_string()))
    );
}

async fn marks_are_set_replaced_and_removed(o: Opened) {
    let s = o.store.clone();
    let up = mark("comment-vote", "c1", "ana", "k1", json!(1), 1);
    assert_eq!(
        write(&s, vec![mark_op(up.clone(), None)]).await,
        [outcome(true, 1)]
    );
    let down = mark("comment-vote", "c1", "ana", "k1", json!(-1), 2);
    assert_eq!(
        write(&s, vec![mark_op(down.clone(), None)]).await,
        [outcome(false, 1)]
    );
    let others = [
        mark("comment-vote", "c1", "ben", "k1", json!(1), 3),
        mark("comment-vote", "c2", "ana", "k1", json!(1), 4),
        mark(
            "flag",
            "c1",
            "ben",
            "k1",
            json!({"reason": "spam", "note": "twice"}),
            5,
        ),
        mark("follow", "k1", "ana", "k1", json!(true), 6),
        mark("comment-vote", "c9", "ana", "k2", json!(1), 7),
        // the same time as the one before: kind, target, author decide
        mark("comment-vote", "c8", "cid", "k2", json!(1), 7),
    ];
    write(
        &s,
        others.iter().cloned().map(|m| mark_op(m, None)).collect(),
    )
    .await;
    let marks = |q: MarkQuery| {
        let s = s.clone();
        async move { s.participation_marks(&q).await.unwrap() }
    };
    let mut every = vec![down.clone()];
    every.extend(others.iter().cloned());
    every.swap(5, 6);
    assert_eq!(marks(MarkQuery::default()).await, every);
    assert_eq!(
        marks(MarkQuery {
            kind: Some("comment-vote".into()),
            targets: Some(vec!["c1".into(), "c2".into()]),
            ..Default::default()
        })
        .await,
        [down.clone(), others[0].clone(), others[1].clone()]
    );
    assert_eq!(
        marks(MarkQuery {
            author: Some("ana".into()),
            scope: Some("k1".into()),
            ..Default::default()
        })
        .await,
        [down.clone(), others[1].clone(), others[3].clone()]
    );
    assert_eq!(
        marks(MarkQuery {
            author: Some("ana".into()),
            limit: 2,
            ..Default::default()
        })
        .await,
        [down.clone(), others[1].clone()]
    );
    assert!(marks(MarkQuery {
        targets: Some(vec![]),
        ..Default::default()
    })
    .await
    .is_empty());

    let unmark = |kind: &str, target: &str, author: &str| PartOp::Unmark {
        kind: kind.into(),
        target: target.into(),
        author: author.into(),
    };
    assert_eq!(
        write(
            &s,
            vec![
                unmark("comment-vote", "c2", "ana"),
                unmark("comment-vote", "c2", "ana")
            ]
        )
        .await,
        [outcome(true, 1), outcome(false, 0)]
    );
    assert_eq!(
        write(
            &s,
            vec![PartOp::UnmarkTarget {
                kind: "comment-vote".into(),
                target: "c1".into()
            }]
        )
        .await,
        [outcome(true, 2)]
    );
    // the flag on c1 is another kind: still there
    assert_eq!(
        marks(MarkQuery {
            targets: Some(vec!["c1".into()]),
            ..Default::default()
        })
        .await,
        [others[2].clone()]
    );
    assert_eq!(
        write(
            &s,
            vec![PartOp::UnmarkAuthor {
                author: "ana".into()
            }]
        )
        .await,
        [outcome(true, 2)]
    );
    assert_eq!(
        write(&s, vec![PartOp::UnmarkScope { scope: "k1".into() }]).await,
        [outcome(true, 1)]
    );
    assert_eq!(marks(MarkQuery::default()).await, [others[5].clone()]);
    assert_eq!(
        write(&s, vec![PartOp::UnmarkScope { scope: "k1".into() }]).await,
        [outcome(false, 0)]
    );
}

async fn a_mark_limit_counts_other_targets_only(o: Opened) {
    let s = o.store.clone();
    let support = |target: &str, author: &str, scope: &str| {
        mark_op(mark("support", target, author, scope, json!(1), 1), Some(3))
    };
    let too_many = PartError::TooMany {
        kind: "support".into(),
        limit: 3,
    };
    // three in one call, then a fourth is refused
    assert_eq!(
        write(
            &s,
            vec![
                support("p1", "ana", "k1"),
                support("p2", "ana", "k1"),
                support("p3", "ana", "k1")
            ]
        )
        .await,
        [outcome(true, 1); 3]
    );
    assert_eq!(
        refused(&s, vec![support("p4", "ana", "k1")]).await,
        too_many
    );
    // replacing one of hers at the limit is allowed
    assert_eq!(
        write(&s, vec![support("p2", "ana", "k1")]).await,
        [outcome(false, 1)]
    );
    // other people, other scopes and other kinds have their own counts; a mark without a limit is not limited
    write(
        &s,
        vec![
            support("p4", "ben", "k1"),
            support("p4", "ana", "k2"),
            mark_op(mark("follow", "p4", "ana", "k1", json!(true), 1), Some(3)),
            mark_op(mark("support", "p5", "ana", "k1", json!(1), 1), None),
        ],
    )
    .await;
    // now at 4 in k1: still refused, even with a higher limit that she already reaches
    assert_eq!(
        refused(
            &s,
            vec![mark_op(
                mark("support", "p6", "ana", "k1", json!(1), 1),
                Some(4)
            )]
        )
        .await,
        PartError::TooMany {
            kind: "support".into(),
            limit: 4
        }
    );
    // taking one back makes room, in the same call
    assert_eq!(
        write(
            &s,
            vec![
                PartOp::Unmark {
                    kind: "support".into(),
                    target: "p1".into(),
                    author: "ana".into()
                },
                PartOp::Unmark {
                    kind: "support".into(),
                    target: "p5".into(),
                    author: "ana".into()
                },
                support("p6", "ana", "k1"),
            ]
        )
        .await,
        [outcome(true, 1), outcome(true, 1), outcome(true, 1)]
    );
    let mine: Vec<String> = s
        .participation_marks(&MarkQuery {
            kind: Some("support".into()),
            author: Some("ana".into()),
            scope: Some("k1".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.target)
        .collect();
    assert_eq!(mine, ["p2", "p3", "p6"]);
}

async fn concurrent_marks_do_not_beat_the_limit(o: Opened) {
    // many tasks on this store, and on PostgreSQL a second node with its own pool too
    let stores: Vec<Arc<dyn Store>> = match o.backend() {
        Backend::Sqlite => vec![o.store.clone()],
        Backend::Postgres => vec![o.store.clone(), o.reopen().await],
    };
    for round in 0..3 {
        let scope = format!("k{round}");
        let mut tasks = Vec::new();
        for i in 0..10 {
            let s = stores[i % stores.len()].clone();
            let m = mark(
                "support",
                &format!("{scope}/p{i}"),
                "ana",
                &scope,
                json!(1),
                i as i64,
            );
            tasks.push(tokio::spawn(async move {
                s.participation_write(vec![mark_op(m, Some(3))]).await
            }));
        }
        let mut passed = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Ok(o) => {
                    assert_eq!(o, [outcome(true, 1)]);
                    passed += 1;
                }
                Err(e) => assert_eq!(
                    e,
                    PartError::TooMany {
                        kind: "support".into(),
                        limit: 3
                    }
                ),
            }
        }
        assert_eq!(passed, 3, "round {round}");
        let kept = o
            .store
            .participation_marks(&MarkQuery {
                scope: Some(scope),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(kept.len(), 3, "round {round}");
    }
}

async fn tallies_count_marks_per_target_and_value(o: Opened) {
    let s = o.store.clone();
    let vote = |target: &str, author: &str, scope: &str, v: Value| {
        mark_op(mark("comment-vote", target, author, scope, v, 1), None)
    };
    write(
        &s,
        vec![
            vote("c1", "ana", "k1", json!(1)),
            vote("c1", "ben", "k1", json!(1)),
            vote("c1", "cid", "k1", json!(-1)),
            vote("c2", "ana", "k1", json!(-1)),
            vote("c3", "ana", "k2", json!(1)),
            // objects with their keys in another order are one value
            vote(
                "c4",
                "ana",
                "k1",
                json!({"a": 1, "b": [1, {"x": 1, "y": 2}]}),
            ),
            vote(
                "c4",
                "ben",
                "k1",
                json!({"b": [1, {"y": 2, "x": 1}], "a": 1}),
            ),
            mark_op(mark("flag", "c1", "dan", "k1", json!("spam"), 1), None),
        ],
    )
    .await;
    let tally = |target: &str, value: Value, count: u64| Tally {
        target: target.into(),
        value,
        count,
    };
    let targets: Vec<String> = ["c1", "c3", "c9"].iter().map(|t| t.to_string()).collect();
    assert_eq!(
        s.participation_tally("comment-vote", Some(&targets), None, false)
            .await
            .unwrap(),
        [tally("c1", Value::Null, 3), tally("c3", Value::Null, 1)]
    );
    assert_eq!(
        s.participation_tally("comment-vote", Some(&targets), None, true)
            .await
            .unwrap(),
        [
            tally("c1", json!(-1), 1),
            tally("c1", json!(1), 2),
            tally("c3", json!(1), 1)
        ]
    );
    assert_eq!(
        s.participation_tally("comment-vote", None, Some("k1"), true)
            .await
            .unwrap(),
        [
            tally("c1", json!(-1), 1),
            tally("c1", json!(1), 2),
            tally("c2", json!(-1), 1),
            tally("c4", json!({"a": 1, "b": [1, {"x": 1, "y": 2}]}), 2),
        ]
    );
    assert_eq!(
        s.participation_tally("comment-vote", None, Some("k1"), false)
            .await
            .unwrap(),
        [
            tally("c1", Value::Null, 3),
            tally("c2", Value::Null, 1),
            tally("c4", Value::Null, 2),
        ]
    );
    // both: the targets within the scope
    assert_eq!(
        s.participation_tally("comment-vote", Some(&targets), Some("k1"), false)
            .await
            .unwrap(),
        [tally("c1", Value::Null, 3)]
    );
    assert_eq!(
        s.participation_tally("flag", Some(&targets), None, true)
            .await
            .unwrap(),
        [tally("c1", json!("spam"), 1)]
    );
    assert!(s
        .participation_tally("comment-vote", Some(&[]), None, true)
        .await
        .unwrap()
        .is_empty());
    let e = s
        .participation_tally("comment-vote", None, None, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequestData, "{e:?}");
}

async fn participants_are_counted_once(o: Opened) {
    let s = o.store.clone();
    write(
        &s,
        vec![
            put(
                rec("consultation", "k1", None, None, Some("plan"), 0),
                PutMode::Create,
            ),
            put(
                rec("comment", "a", Some("k1"), None, Some("ana"), 1),
                PutMode::Create,
            ),
            put(
                rec("comment", "b", Some("k1"), None, Some("ana"), 2),
                PutMode::Create,
            ),
            put(
                rec("comment", "c", Some("k1"), None, None, 3),
                PutMode::Create,
            ),
            put(
                rec("proposal", "p", Some("k1"), None, Some("ben"), 4),
                PutMode::Create,
            ),
            put(
                rec("comment", "x", Some("k2"), None, Some("eve"), 5),
                PutMode::Create,
            ),
            put(
                rec("notification", "n", Some("k1"), None, Some("fay"), 5),
                PutMode::Create,
            ),
            mark_op(mark("support", "p", "ben", "k1", json!(1), 1), None),
            mark_op(mark("support", "p", "cid", "k1", json!(1), 1), None),
            mark_op(mark("comment-vote", "a", "dan", "k1", json!(1), 1), None),
            mark_op(mark("support", "q", "eve", "k2", json!(1), 1), None),
            mark_op(mark("follow", "k1", "gil", "k1", json!(true), 1), None),
        ],
    )
    .await;
    let authors = |records: &'static [&'static str], marks: &'static [&'static str]| {
        let s = s.clone();
        async move { s.participation_authors("k1", records, marks).await.unwrap() }
    };
    // ana, ben (twice), cid, dan
    assert_eq!(
        authors(&["comment", "proposal"], &["support", "comment-vote"]).await,
        4
    );
    assert_eq!(authors(&["comment"], &[]).await, 1);
    assert_eq!(authors(&[], &["support"]).await, 2);
    assert_eq!(authors(&["proposal"], &["support"]).await, 2);
    assert_eq!(authors(&[], &[]).await, 0);
    assert_eq!(
        s.participation_authors("k3", &["comment"], &["support"])
            .await
            .unwrap(),
        0
    );
}

async fn participation_survives_a_restart(o: Opened) {
    let s = o.store.clone();
    let r = rec("comment", "a", Some("k1"), None, Some("ana"), 1);
    let m = mark(
        "support",
        "p",
        "ana",
        "k1",
        json!({"answers": [1, "two"]}),
        2,
    );
    write(
        &s,
        vec![put(r.clone(), PutMode::Create), mark_op(m.clone(), Some(1))],
    )
    .await;
    let again = o.reopen().await;
    assert_eq!(
        again.participation_get("comment", "a").await.unwrap(),
        Some(r)
    );
    assert_eq!(
        again
            .participation_marks(&MarkQuery::default())
            .await
            .unwrap(),
        [m]
    );
    // the limit counts what was written before the restart
    assert_eq!(
        again
            .participation_write(vec![mark_op(
                mark("support", "q", "ana", "k1", json!(1), 3),
                Some(1)
            )])
            .await
            .unwrap(),
        Err(PartError::TooMany {
            kind: "support".into(),
            limit: 1
        })
    );
}

async fn a_database_from_before_participation_is_brought_up_to_date(o: Opened) {
    // as a database made by the release before participation: without its tables (nor, in PostgreSQL, its migration)
    let sql = match o.backend() {
        Backend::Sqlite => "DROP TABLE participation_records; DROP TABLE participation_marks;",
        Backend::Postgres => {
            "DROP TABLE participation_records; DROP TABLE participation_marks;
             DELETE FROM schema_migrations WHERE version = 9;"
        }
    };
    o.raw_sql(sql).await.unwrap();
    let s = o.reopen().await;
    let r = rec("comment", "a", Some("k1"), None, Some("ana"), 1);
    write(
        &s,
        vec![
            put(r.clone(), PutMode::Create),
            mark_op(mark("follow", "k1", "ana", "k1", json!(true), 1), None),
        ],
    )
    .await;
    assert_eq!(s.participation_get("comment", "a").await.unwrap(), Some(r));
    assert_eq!(
        s.participation_authors("k1", &["comment"], &["follow"])
            .await
            .unwrap(),
        1
    );
}
