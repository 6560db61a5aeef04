//! Participation records and marks in PostgreSQL (see `crate::participation`, and migration 9). A write is one
//! transaction; the limit of marks holds across nodes because every limited mark first takes the transaction-level
//! advisory lock of its `(kind, scope, author)` (all of a call's, in one order) and only then counts.

use sha2::{Digest, Sha256};

use super::*;
use crate::participation::*;

const RECORD_COLUMNS: &str = "kind, id, consultation, parent, author, created_us, modified_us, doc";
const MARK_COLUMNS: &str = "kind, target, author, scope, value, at_us";

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(pg_err)
}

fn record_of(r: &Row) -> Result<ParticipationRecord> {
    Ok(ParticipationRecord {
        kind: get(r, 0)?,
        id: get(r, 1)?,
        consultation: get(r, 2)?,
        parent: get(r, 3)?,
        author: get(r, 4)?,
        created_at: from_micros(get(r, 5)?)?,
        modified_at: from_micros(get(r, 6)?)?,
        doc: get(r, 7)?,
    })
}

fn mark_of(r: &Row) -> Result<ParticipationMark> {
    Ok(ParticipationMark {
        kind: get(r, 0)?,
        target: get(r, 1)?,
        author: get(r, 2)?,
        scope: get(r, 3)?,
        value: get(r, 4)?,
        at: from_micros(get(r, 5)?)?,
    })
}

/// The second key of the advisory lock of a `(kind, scope, author)` (the first is `PART_LOCK_SPACE`).
fn limit_lock(kind: &str, scope: &str, author: &str) -> i32 {
    let mut h = Sha256::new();
    for part in [kind, scope, author] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let d = h.finalize();
    i32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn count(n: u64) -> PartOutcome {
    PartOutcome {
        created: n > 0,
        count: n,
    }
}

/// Applies one operation in the transaction; `Ok(Err(..))` when it cannot be (the caller rolls back).
async fn apply(tx: &Tx<'_>, op: PartOp) -> Result<std::result::Result<PartOutcome, PartError>> {
    Ok(Ok(match op {
        PartOp::Put { record: r, mode } => {
            let args: [&(dyn ToSql + Sync); 8] = [
                &r.kind,
                &r.id,
                &r.consultation,
                &r.parent,
                &r.author,
                &micros(r.created_at),
                &micros(r.modified_at),
                &r.doc,
            ];
            match mode {
                PutMode::Create => {
                    let n = tx
                        .execute(
                            &format!(
                                "INSERT INTO participation_records({RECORD_COLUMNS})
                                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (kind, id) DO NOTHING"
                            ),
                            &args,
                        )
                        .await
                        .map_err(pg_err)?;
                    if n == 0 {
                        return Ok(Err(PartError::AlreadyExists {
                            kind: r.kind,
                            id: r.id,
                        }));
                    }
                    count(1)
                }
                PutMode::Replace => {
                    let n = tx
                        .execute(
                            "UPDATE participation_records SET consultation = $3, parent = $4, author = $5,
                             created_us = $6, modified_us = $7, doc = $8 WHERE kind = $1 AND id = $2",
                            &args,
                        )
                        .await
                        .map_err(pg_err)?;
                    if n == 0 {
                        return Ok(Err(PartError::NotFound {
                            kind: r.kind,
                            id: r.id,
                        }));
                    }
                    PartOutcome {
                        created: false,
                        count: 1,
                    }
                }
                PutMode::Upsert => {
                    let row = tx
                        .query_one(
                            &format!(
                                "INSERT INTO participation_records({RECORD_COLUMNS})
                                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
                                 ON CONFLICT (kind, id) DO UPDATE SET consultation = excluded.consultation,
                                 parent = excluded.parent, author = excluded.author,
                                 created_us = excluded.created_us, modified_us = excluded.modified_us,
                                 doc = excluded.doc
                                 RETURNING (xmax = 0)"
                            ),
                            &args,
                        )
                        .await
                        .map_err(pg_err)?;
                    PartOutcome {
                        created: get(&row, 0)?,
                        count: 1,
                    }
                }
            }
        }
        PartOp::Delete { kind, id } => count(
            tx.execute(
                "DELETE FROM participation_records WHERE kind = $1 AND id = $2",
                &[&kind, &id],
            )
            .await
            .map_err(pg_err)?,
        ),
        PartOp::DeleteConsultation { consultation } => count(
            tx.execute(
                "DELETE FROM participation_records WHERE consultation = $1",
                &[&consultation],
            )
            .await
            .map_err(pg_err)?,
        ),
        PartOp::Mark { mark: m, limit } => {
            if let Some(n) = limit {
                // the lock of (kind, scope, author) is held: no other transaction counts or adds these marks now
                let there = !tx
                    .query(
                        "SELECT 1 FROM participation_marks WHERE kind = $1 AND target = $2 AND author = $3",
                        &[&m.kind, &m.target, &m.author],
                    )
                    .await
                    .map_err(pg_err)?
                    .is_empty();
                if !there {
                    let row = tx
                        .query_one(
                            "SELECT count(*) FROM participation_marks
                             WHERE kind = $1 AND scope = $2 AND author = $3",
                            &[&m.kind, &m.scope, &m.author],
                        )
                        .await
                        .map_err(pg_err)?;
                    let have: i64 = get(&row, 0)?;
                    if have.max(0) as u64 >= n {
                        return Ok(Err(PartError::TooMany {
                            kind: m.kind,
                            limit: n,
                        }));
                    }
                }
            }
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO participation_marks({MARK_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6)
                         ON CONFLICT (kind, target, author) DO UPDATE SET scope = excluded.scope,
                         value = excluded.value, at_us = excluded.at_us
                         RETURNING (xmax = 0)"
                    ),
                    &[
                        &m.kind,
                        &m.target,
                        &m.author,
                        &m.scope,
                        &m.value,
                        &micros(m.at),
                    ],
                )
                .await
                .map_err(pg_err)?;
            PartOutcome {
                created: get(&row, 0)?,
                count: 1,
            }
        }
        PartOp::Unmark {
            kind,
            target,
            author,
        } => count(
            tx.execute(
                "DELETE FROM participation_marks WHERE kind = $1 AND target = $2 AND author = $3",
                &[&kind, &target, &author],
            )
            .await
            .map_err(pg_err)?,
        ),
        PartOp::UnmarkTarget { kind, target } => count(
            tx.execute(
                "DELETE FROM participation_marks WHERE kind = $1 AND target = $2",
                &[&kind, &target],
            )
            .await
            .map_err(pg_err)?,
        ),
        PartOp::UnmarkAuthor { author } => count(
            tx.execute(
                "DELETE FROM participation_marks WHERE author = $1",
                &[&author],
            )
            .await
            .map_err(pg_err)?,
        ),
        PartOp::UnmarkScope { scope } => count(
            tx.execute(
                "DELETE FROM participation_marks WHERE scope = $1",
                &[&scope],
            )
            .await
            .map_err(pg_err)?,
        ),
    }))
}

/// The WHERE clause of a record query, with its parameters.
fn records_where(params: &mut Params, q: &PartQuery) -> String {
    let mut conds = vec![format!("kind = {}", params.add(q.kind.clone()))];
    if let Some(c) = &q.consultation {
        conds.push(format!("consultation = {}", params.add(c.clone())));
    }
    match &q.parent {
        None => {}
        Some(None) => conds.push("parent IS NULL".into()),
        Some(Some(p)) => conds.push(format!("parent = {}", params.add(p.clone()))),
    }
    if let Some(ps) = &q.parents {
        conds.push(format!("parent = ANY({}::text[])", params.add(ps.clone())));
    }
    if let Some(a) = &q.author {
        conds.push(format!("author = {}", params.add(a.clone())));
    }
    if let Some(ids) = &q.ids {
        conds.push(format!("id = ANY({}::text[])", params.add(ids.clone())));
    }
    if let Some(t) = q.created_after {
        conds.push(format!("created_us > {}", params.add(micros(t))));
    }
    conds.join(" AND ")
}

impl PostgresStore {
    pub(super) async fn part_write(
        &self,
        ops: Vec<PartOp>,
    ) -> Result<std::result::Result<Vec<PartOutcome>, PartError>> {
        if ops.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        for (kind, scope, author) in limit_keys(&ops) {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&PART_LOCK_SPACE, &limit_lock(&kind, &scope, &author)],
            )
            .await
            .map_err(pg_err)?;
        }
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            match apply(&tx, op).await? {
                Ok(o) => outcomes.push(o),
                // dropping the transaction rolls it back
                Err(e) => return Ok(Err(e)),
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(Ok(outcomes))
    }

    pub(super) async fn part_get(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<ParticipationRecord>> {
        self.rows(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM participation_records WHERE kind = $1 AND id = $2"
            ),
            &[&kind, &id],
        )
        .await?
        .first()
        .map(record_of)
        .transpose()
    }

    pub(super) async fn part_list(
        &self,
        q: &PartQuery,
        count: bool,
    ) -> Result<(Vec<ParticipationRecord>, Option<u64>)> {
        let c = self.client().await?;
        let total = if count {
            let mut params = Params::default();
            let cond = records_where(&mut params, q);
            let row = c
                .query_one(
                    &format!("SELECT count(*) FROM participation_records WHERE {cond}"),
                    &params.refs(),
                )
                .await
                .map_err(pg_err)?;
            Some(get::<i64>(&row, 0)?.max(0) as u64)
        } else {
            None
        };
        let mut params = Params::default();
        let dir = if q.newest_first { "DESC" } else { "ASC" };
        let order = format!("ORDER BY created_us {dir}, id {dir}");
        let mut sql = match q.parents.as_deref() {
            // a page of several parents' children: the first limit + offset of each parent's index range, merged,
            // rather than every child sorted
            Some(ps) if ps.len() > 1 && q.limit > 0 => {
                let cond = records_where(
                    &mut params,
                    &PartQuery {
                        parents: None,
                        ..q.clone()
                    },
                );
                let wanted = params.add(ps.to_vec());
                let n = params.add((q.limit + q.offset) as i64);
                format!(
                    "SELECT {RECORD_COLUMNS} FROM unnest({wanted}::text[]) AS w(want) CROSS JOIN LATERAL (
                        SELECT {RECORD_COLUMNS} FROM participation_records WHERE {cond} AND parent = w.want
                        {order} LIMIT {n}) AS r {order}"
                )
            }
            _ => {
                let cond = records_where(&mut params, q);
                format!("SELECT {RECORD_COLUMNS} FROM participation_records WHERE {cond} {order}")
            }
        };
        if q.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", params.add(q.limit as i64)));
        }
        if q.offset > 0 {
            sql.push_str(&format!(" OFFSET {}", params.add(q.offset as i64)));
        }
        let rows = c.query(&sql, &params.refs()).await.map_err(pg_err)?;
        let records = rows.iter().map(record_of).collect::<Result<Vec<_>>>()?;
        Ok((records, total))
    }

    pub(super) async fn part_marks(&self, q: &MarkQuery) -> Result<Vec<ParticipationMark>> {
        let mut params = Params::default();
        let mut conds = vec!["true".to_string()];
        if let Some(k) = &q.kind {
            conds.push(format!("kind = {}", params.add(k.clone())));
        }
        if let Some(ts) = &q.targets {
            conds.push(format!("target = ANY({}::text[])", params.add(ts.clone())));
        }
        if let Some(a) = &q.author {
            conds.push(format!("author = {}", params.add(a.clone())));
        }
        if let Some(s) = &q.scope {
            conds.push(format!("scope = {}", params.add(s.clone())));
        }
        let mut sql = format!(
            "SELECT {MARK_COLUMNS} FROM participation_marks WHERE {} ORDER BY at_us, kind, target, author",
            conds.join(" AND ")
        );
        if q.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", params.add(q.limit as i64)));
        }
        let c = self.client().await?;
        let rows = c.query(&sql, &params.refs()).await.map_err(pg_err)?;
        rows.iter().map(mark_of).collect()
    }

    pub(super) async fn part_tally(
        &self,
        kind: &str,
        targets: Option<&[String]>,
        scope: Option<&str>,
        by_value: bool,
    ) -> Result<Vec<Tally>> {
        check_tally(targets, scope)?;
        let mut params = Params::default();
        let mut conds = vec![format!("kind = {}", params.add(kind.to_string()))];
        if let Some(ts) = targets {
            conds.push(format!("target = ANY({}::text[])", params.add(ts.to_vec())));
        }
        if let Some(s) = scope {
            conds.push(format!("scope = {}", params.add(s.to_string())));
        }
        let (value, group) = if by_value {
            ("value", "target, value")
        } else {
            ("NULL::jsonb", "target")
        };
        let sql = format!(
            "SELECT target, {value}, count(*) FROM participation_marks WHERE {} GROUP BY {group}",
            conds.join(" AND ")
        );
        let c = self.client().await?;
        let rows = c.query(&sql, &params.refs()).await.map_err(pg_err)?;
        let mut tally = rows
            .iter()
            .map(|r| {
                Ok(Tally {
                    target: get(r, 0)?,
                    value: get::<Option<Value>>(r, 1)?.unwrap_or(Value::Null),
                    count: get::<i64>(r, 2)?.max(0) as u64,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        sort_tally(&mut tally);
        Ok(tally)
    }

    pub(super) async fn part_authors(
        &self,
        consultation: &str,
        record_kinds: &[&str],
        mark_kinds: &[&str],
    ) -> Result<u64> {
        let record_kinds: Vec<String> = record_kinds.iter().map(|k| k.to_string()).collect();
        let mark_kinds: Vec<String> = mark_kinds.iter().map(|k| k.to_string()).collect();
        let rows = self
            .rows(
                "SELECT count(*) FROM (
                    SELECT author FROM participation_records
                     WHERE kind = ANY($1::text[]) AND consultation = $2 AND author IS NOT NULL
                    UNION
                    SELECT author FROM participation_marks WHERE kind = ANY($3::text[]) AND scope = $2) a",
                &[&record_kinds, &consultation, &mark_kinds],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| db_err("participation: no count of authors"))?;
        Ok(get::<i64>(row, 0)?.max(0) as u64)
    }
}
