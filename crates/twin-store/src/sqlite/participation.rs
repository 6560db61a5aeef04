//! Participation records and marks in SQLite (see `crate::participation`). A write is one job of the single writer
//! (durable when acknowledged, like every other write), so the limit of marks is checked with no other writer in
//! between; its operations run in a savepoint of their own, rolled back when one of them fails.

use rusqlite::types::Value as V;

use super::*;
use crate::participation::*;

const RECORD_COLUMNS: &str = "kind, id, consultation, parent, author, created_us, modified_us, doc";
const MARK_COLUMNS: &str = "kind, target, author, scope, value, at_us";

/// A record's row as it is stored (times and document not yet decoded).
type RecordRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    String,
);

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn record_of(row: RecordRow) -> Result<ParticipationRecord> {
    let (kind, id, consultation, parent, author, created, modified, doc) = row;
    Ok(ParticipationRecord {
        kind,
        id,
        consultation,
        parent,
        author,
        created_at: from_micros(created)?,
        modified_at: from_micros(modified)?,
        doc: from_json(&doc)?,
    })
}

type MarkRow = (String, String, String, String, String, i64);

fn mark_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MarkRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn mark_of(row: MarkRow) -> Result<ParticipationMark> {
    let (kind, target, author, scope, value, at) = row;
    Ok(ParticipationMark {
        kind,
        target,
        author,
        scope,
        value: from_json(&value)?,
        at: from_micros(at)?,
    })
}

/// `?,?,..` for `n` arguments.
fn marks(n: usize) -> String {
    vec!["?"; n].join(",")
}

fn exists(conn: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<bool> {
    Ok(conn
        .prepare_cached(sql)
        .map_err(db_err)?
        .query_row(args, |_| Ok(()))
        .optional()
        .map_err(db_err)?
        .is_some())
}

fn count(n: usize) -> PartOutcome {
    PartOutcome {
        created: n > 0,
        count: n as u64,
    }
}

/// Applies one operation; `Ok(Err(..))` when it cannot be (the caller rolls back).
fn apply(conn: &Connection, op: PartOp) -> Result<std::result::Result<PartOutcome, PartError>> {
    let exec = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<usize> {
        conn.prepare_cached(sql)
            .map_err(db_err)?
            .execute(args)
            .map_err(db_err)
    };
    Ok(Ok(match op {
        PartOp::Put { record: r, mode } => {
            let there = exists(
                conn,
                "SELECT 1 FROM participation_records WHERE kind=?1 AND id=?2",
                &[&r.kind, &r.id],
            )?;
            match (mode, there) {
                (PutMode::Create, true) => {
                    return Ok(Err(PartError::AlreadyExists {
                        kind: r.kind,
                        id: r.id,
                    }))
                }
                (PutMode::Replace, false) => {
                    return Ok(Err(PartError::NotFound {
                        kind: r.kind,
                        id: r.id,
                    }))
                }
                _ => {}
            }
            let doc = to_json(&r.doc)?;
            exec(
                &format!(
                    "INSERT INTO participation_records({RECORD_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)
                     ON CONFLICT(kind, id) DO UPDATE SET consultation=excluded.consultation,
                     parent=excluded.parent, author=excluded.author, created_us=excluded.created_us,
                     modified_us=excluded.modified_us, doc=excluded.doc"
                ),
                &[
                    &r.kind,
                    &r.id,
                    &r.consultation,
                    &r.parent,
                    &r.author,
                    &micros(r.created_at),
                    &micros(r.modified_at),
                    &doc,
                ],
            )?;
            PartOutcome {
                created: !there,
                count: 1,
            }
        }
        PartOp::Delete { kind, id } => count(exec(
            "DELETE FROM participation_records WHERE kind=?1 AND id=?2",
            &[&kind, &id],
        )?),
        PartOp::DeleteConsultation { consultation } => count(exec(
            "DELETE FROM participation_records WHERE consultation=?1",
            &[&consultation],
        )?),
        PartOp::Mark { mark: m, limit } => {
            let there = exists(
                conn,
                "SELECT 1 FROM participation_marks WHERE kind=?1 AND target=?2 AND author=?3",
                &[&m.kind, &m.target, &m.author],
            )?;
            if let (Some(n), false) = (limit, there) {
                let have: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM participation_marks WHERE kind=?1 AND scope=?2 AND author=?3",
                    )
                    .map_err(db_err)?
                    .query_row([&m.kind, &m.scope, &m.author], |r| r.get(0))
                    .map_err(db_err)?;
                if have.max(0) as u64 >= n {
                    return Ok(Err(PartError::TooMany {
                        kind: m.kind,
                        limit: n,
                    }));
                }
            }
            exec(
                &format!(
                    "INSERT INTO participation_marks({MARK_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6)
                     ON CONFLICT(kind, target, author) DO UPDATE SET scope=excluded.scope,
                     value=excluded.value, at_us=excluded.at_us"
                ),
                &[
                    &m.kind,
                    &m.target,
                    &m.author,
                    &m.scope,
                    &canonical_json(&m.value),
                    &micros(m.at),
                ],
            )?;
            PartOutcome {
                created: !there,
                count: 1,
            }
        }
        PartOp::Unmark {
            kind,
            target,
            author,
        } => count(exec(
            "DELETE FROM participation_marks WHERE kind=?1 AND target=?2 AND author=?3",
            &[&kind, &target, &author],
        )?),
        PartOp::UnmarkTarget { kind, target } => count(exec(
            "DELETE FROM participation_marks WHERE kind=?1 AND target=?2",
            &[&kind, &target],
        )?),
        PartOp::UnmarkAuthor { author } => count(exec(
            "DELETE FROM participation_marks WHERE author=?1",
            &[&author],
        )?),
        PartOp::UnmarkScope { scope } => count(exec(
            "DELETE FROM participation_marks WHERE scope=?1",
            &[&scope],
        )?),
    }))
}

/// Applies the operations in order inside the savepoint `participation`; rolls it back when one fails.
fn apply_all(
    conn: &Connection,
    ops: Vec<PartOp>,
) -> Result<std::result::Result<Vec<PartOutcome>, PartError>> {
    conn.execute_batch("SAVEPOINT participation")
        .map_err(db_err)?;
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut failed = None;
    for op in ops {
        match apply(conn, op) {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(e)) => {
                failed = Some(e);
                break;
            }
            // a storage error: the writer rolls the job back
            Err(e) => return Err(e),
        }
    }
    match failed {
        None => {
            conn.execute_batch("RELEASE participation")
                .map_err(db_err)?;
            Ok(Ok(outcomes))
        }
        Some(e) => {
            conn.execute_batch("ROLLBACK TO participation; RELEASE participation")
                .map_err(db_err)?;
            Ok(Err(e))
        }
    }
}

/// The table a record query reads: a consultation's threads by their index, which SQLite's planner (without
/// statistics) would otherwise pass over for the consultation's index, whose order it likes but which reads every
/// record of the consultation.
fn records_from(q: &PartQuery) -> &'static str {
    if q.consultation.is_some() && (q.parents.is_some() || matches!(q.parent, Some(Some(_)))) {
        "participation_records INDEXED BY participation_records_thread"
    } else {
        "participation_records"
    }
}

/// The WHERE clause of a record query, and its arguments.
fn records_where(q: &PartQuery) -> (String, Vec<V>) {
    let mut conds = vec!["kind = ?".to_string()];
    let mut args = vec![V::Text(q.kind.clone())];
    if let Some(c) = &q.consultation {
        conds.push("consultation = ?".into());
        args.push(V::Text(c.clone()));
    }
    match &q.parent {
        None => {}
        Some(None) => conds.push("parent IS NULL".into()),
        Some(Some(p)) => {
            conds.push("parent = ?".into());
            args.push(V::Text(p.clone()));
        }
    }
    if let Some(ps) = &q.parents {
        conds.push(format!("parent IN ({})", marks(ps.len())));
        args.extend(ps.iter().map(|p| V::Text(p.clone())));
    }
    if let Some(a) = &q.author {
        conds.push("author = ?".into());
        args.push(V::Text(a.clone()));
    }
    if let Some(ids) = &q.ids {
        conds.push(format!("id IN ({})", marks(ids.len())));
        args.extend(ids.iter().map(|i| V::Text(i.clone())));
    }
    if let Some(t) = q.created_after {
        conds.push("created_us > ?".into());
        args.push(V::Integer(micros(t)));
    }
    (conds.join(" AND "), args)
}

impl SqliteStore {
    pub(super) async fn part_write(
        &self,
        ops: Vec<PartOp>,
    ) -> Result<std::result::Result<Vec<PartOutcome>, PartError>> {
        if ops.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        self.write_job(false, move |conn, _| apply_all(conn, ops))
            .await
    }

    pub(super) async fn part_get(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<ParticipationRecord>> {
        let (kind, id) = (kind.to_string(), id.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM participation_records WHERE kind=?1 AND id=?2"
            ))
            .map_err(db_err)?
            .query_row([&kind, &id], record_row)
            .optional()
            .map_err(db_err)?
            .map(record_of)
            .transpose()
        })
        .await
    }

    pub(super) async fn part_list(
        &self,
        q: &PartQuery,
        count: bool,
    ) -> Result<(Vec<ParticipationRecord>, Option<u64>)> {
        let q = q.clone();
        self.read(move |c| {
            let (cond, args) = records_where(&q);
            let dir = if q.newest_first { "DESC" } else { "ASC" };
            let order = format!("ORDER BY created_us {dir}, id {dir}");
            let mut page_args = Vec::new();
            let mut sql = match q.parents.as_deref() {
                // a page of several parents' children: the first limit + offset of each parent's index range,
                // merged, rather than every child sorted
                Some(ps) if ps.len() > 1 && q.limit > 0 => {
                    let one = PartQuery {
                        parents: None,
                        ..q.clone()
                    };
                    let (cond, args) = records_where(&one);
                    let from = records_from(&q);
                    let mut parts = Vec::with_capacity(ps.len());
                    for p in ps {
                        parts.push(format!(
                            "SELECT * FROM (SELECT {RECORD_COLUMNS} FROM {from}
                              WHERE {cond} AND parent = ? {order} LIMIT ?)"
                        ));
                        page_args.extend(args.iter().cloned());
                        page_args.push(V::Text(p.clone()));
                        page_args.push(V::Integer((q.limit + q.offset) as i64));
                    }
                    format!("{} {order}", parts.join(" UNION ALL "))
                }
                _ => {
                    page_args.extend(args.iter().cloned());
                    let from = records_from(&q);
                    format!("SELECT {RECORD_COLUMNS} FROM {from} WHERE {cond} {order}")
                }
            };
            if q.limit > 0 || q.offset > 0 {
                sql.push_str(" LIMIT ? OFFSET ?");
                page_args.push(V::Integer(if q.limit > 0 { q.limit as i64 } else { -1 }));
                page_args.push(V::Integer(q.offset as i64));
            }
            let mut stmt = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(page_args), record_row)
                .map_err(db_err)?;
            let records = rows
                .map(|r| record_of(r.map_err(db_err)?))
                .collect::<Result<Vec<_>>>()?;
            let total = if count {
                let n: i64 = c
                    .query_row(
                        &format!("SELECT count(*) FROM {} WHERE {cond}", records_from(&q)),
                        rusqlite::params_from_iter(args),
                        |r| r.get(0),
                    )
                    .map_err(db_err)?;
                Some(n.max(0) as u64)
            } else {
                None
            };
            Ok((records, total))
        })
        .await
    }

    pub(super) async fn part_marks(&self, q: &MarkQuery) -> Result<Vec<ParticipationMark>> {
        let q = q.clone();
        self.read(move |c| {
            let mut conds = vec!["1=1".to_string()];
            let mut args = Vec::new();
            if let Some(k) = &q.kind {
                conds.push("kind = ?".into());
                args.push(V::Text(k.clone()));
            }
            if let Some(ts) = &q.targets {
                conds.push(format!("target IN ({})", marks(ts.len())));
                args.extend(ts.iter().map(|t| V::Text(t.clone())));
            }
            if let Some(a) = &q.author {
                conds.push("author = ?".into());
                args.push(V::Text(a.clone()));
            }
            if let Some(s) = &q.scope {
                conds.push("scope = ?".into());
                args.push(V::Text(s.clone()));
            }
            let mut sql = format!(
                "SELECT {MARK_COLUMNS} FROM participation_marks WHERE {}
                 ORDER BY at_us, kind, target, author",
                conds.join(" AND ")
            );
            if q.limit > 0 {
                sql.push_str(" LIMIT ?");
                args.push(V::Integer(q.limit as i64));
            }
            let mut stmt = c.prepare(&sql).map_err(db_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), mark_row)
                .map_err(db_err)?;
            rows.map(|r| mark_of(r.map_err(db_err)?)).collect()
        })
        .await
    }

    pub(super) async fn part_tally(
        &self,
        kind: &str,
        targets: Option<&[String]>,
        scope: Option<&str>,
        by_value: bool,
    ) -> Result<Vec<Tally>> {
        check_tally(targets, scope)?;
        let kind = kind.to_string();
        let targets = targets.map(<[String]>::to_vec);
        let scope = scope.map(str::to_string);
        let mut rows = self
            .read(move |c| {
                let mut conds = vec!["kind = ?".to_string()];
                let mut args = vec![V::Text(kind)];
                if let Some(ts) = &targets {
                    conds.push(format!("target IN ({})", marks(ts.len())));
                    args.extend(ts.iter().map(|t| V::Text(t.clone())));
                }
                if let Some(s) = scope {
                    conds.push("scope = ?".into());
                    args.push(V::Text(s));
                }
                let (value, group) = if by_value {
                    ("value", "target, value")
                } else {
                    ("NULL", "target")
                };
                let mut stmt = c
                    .prepare(&format!(
                        "SELECT target, {value}, count(*) FROM participation_marks WHERE {}
                         GROUP BY {group}",
                        conds.join(" AND ")
                    ))
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })
                    .map_err(db_err)?;
                rows.map(|r| {
                    let (target, value, n) = r.map_err(db_err)?;
                    Ok(Tally {
                        target,
                        value: match value {
                            Some(v) => from_json(&v)?,
                            None => Value::Null,
                        },
                        count: n.max(0) as u64,
                    })
                })
                .collect::<Result<Vec<_>>>()
            })
            .await?;
        sort_tally(&mut rows);
        Ok(rows)
    }

    pub(super) async fn part_authors(
        &self,
        consultation: &str,
        record_kinds: &[&str],
        mark_kinds: &[&str],
    ) -> Result<u64> {
        let consultation = consultation.to_string();
        let record_kinds: Vec<String> = record_kinds.iter().map(|k| k.to_string()).collect();
        let mark_kinds: Vec<String> = mark_kinds.iter().map(|k| k.to_string()).collect();
        self.read(move |c| {
            let mut args: Vec<V> = record_kinds.iter().map(|k| V::Text(k.clone())).collect();
            args.push(V::Text(consultation.clone()));
            args.extend(mark_kinds.iter().map(|k| V::Text(k.clone())));
            args.push(V::Text(consultation));
            let n: i64 = c
                .query_row(
                    &format!(
                        "SELECT count(*) FROM (
                            SELECT author FROM participation_records
                             WHERE kind IN ({}) AND consultation = ? AND author IS NOT NULL
                            UNION
                            SELECT author FROM participation_marks WHERE kind IN ({}) AND scope = ?)",
                        marks(record_kinds.len()),
                        marks(mark_kinds.len())
                    ),
                    rusqlite::params_from_iter(args),
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            Ok(n.max(0) as u64)
        })
        .await
    }
}
