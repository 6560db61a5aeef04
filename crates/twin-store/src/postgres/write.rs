//! Writing entity changes in one transaction: the entities' advisory locks and current state in one round trip, the
//! shared decisions (`common::decide`), then every write of the batch as multi-row `unnest` statements, pipelined.
//! The journal and map changes go last: their counters' row locks are the journal lock, held until commit.

use super::*;

/// Locks entities (`$1`, distinct ids) for the rest of the transaction, whether they exist or not: one upsert of
/// their lock rows in id order, so that writers of overlapping sets queue instead of deadlocking.
pub(super) const LOCK_ENTITIES: &str =
    "INSERT INTO entity_locks(id) SELECT i FROM unnest($1::text[]) AS i ORDER BY i
     ON CONFLICT (id) DO UPDATE SET id = excluded.id";

type BoxFut<'a> = Pin<Box<dyn Future<Output = Result<u64>> + Send + 'a>>;

/// Runs statements pipelined (sent together, executed in order) inside a transaction.
struct Pipeline<'a> {
    tx: &'a Tx<'a>,
    jobs: Vec<(&'static str, Vec<Param>)>,
}

impl<'a> Pipeline<'a> {
    fn new(tx: &'a Tx<'a>) -> Self {
        Pipeline {
            tx,
            jobs: Vec::new(),
        }
    }

    fn push(&mut self, sql: &'static str, params: Vec<Param>) {
        self.jobs.push((sql, params));
    }

    async fn run(self) -> Result<()> {
        let tx = self.tx;
        let stmts = try_join_all(self.jobs.iter().map(|(sql, _)| tx.prepare_cached(sql)))
            .await
            .map_err(pg_err)?;
        let futs: Vec<BoxFut<'_>> = self
            .jobs
            .iter()
            .zip(stmts.iter())
            .map(|((_, params), stmt)| {
                let args = refs(params);
                Box::pin(async move { tx.execute(stmt, &args).await.map_err(pg_err) }) as BoxFut<'_>
            })
            .collect();
        try_join_all(futs).await?;
        Ok(())
    }
}

/// A stream's journal and map changes, kept until it commits: written with its first chunk they would take the
/// journal lock for the whole import, and a single write of an entity the stream reaches later would deadlock with
/// it.
#[derive(Default)]
pub(super) struct Deferred {
    journal: Vec<String>,
    map: MapDirty,
}

impl Deferred {
    /// Writes what was kept (taking the journal lock now, just before the commit).
    pub(super) async fn write(self, tx: &Tx<'_>) -> Result<bool> {
        let signal = !self.journal.is_empty() || !self.map.0.is_empty();
        let mut p = Pipeline::new(tx);
        journal_rows(&mut p, self.journal);
        map_rows(&mut p, self.map);
        if signal {
            p.push("SELECT pg_notify('urbantwin_changes', '')", vec![]);
        }
        p.run().await?;
        Ok(signal)
    }
}

impl PostgresStore {
    /// Applies changes in the current transaction; `fail_fast`: the first refused change fails them all (streams).
    /// With `defer`, the journal and map changes are added to it instead of written.
    pub(super) async fn apply(
        &self,
        tx: &Tx<'_>,
        changes: Vec<(String, EntityChange)>,
        fail_fast: bool,
        defer: Option<&mut Deferred>,
    ) -> Result<Vec<Result<Decision>>> {
        let mut ids: Vec<String> = changes.iter().map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        let lock = tx.prepare_cached(LOCK_ENTITIES).await.map_err(pg_err)?;
        let load = tx
            .prepare_cached("SELECT id, doc FROM entities WHERE id = ANY($1)")
            .await
            .map_err(pg_err)?;
        let subs = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM subscriptions)")
            .await
            .map_err(pg_err)?;
        // pipelined: the server runs them in order, so the state is read once the locks are held
        let args: [&(dyn ToSql + Sync); 1] = [&ids];
        let (_, rows, journal) = futures_util::try_join!(
            tx.execute(&lock, &args),
            tx.query(&load, &args),
            tx.query_one(&subs, &[])
        )
        .map_err(pg_err)?;
        let journal: bool = journal.get(0);
        let mut current: HashMap<String, Option<Entity>> = HashMap::new();
        for r in &rows {
            current.insert(r.get(0), Some(from_json(r.get::<_, &str>(1))?));
        }
        let stored: HashSet<String> = current.keys().cloned().collect();
        let mut w = Writes::default();
        let mut out = Vec::with_capacity(changes.len());
        for (id, change) in changes {
            let before = current.get(&id).cloned().flatten();
            match decide(&id, before, journal, change) {
                Ok(d) => {
                    w.add(&d)?;
                    match &d.effect {
                        Effect::Nothing => {}
                        Effect::Delete => {
                            current.insert(id.clone(), None);
                        }
                        Effect::Put { entity, .. } => {
                            current.insert(id.clone(), Some(entity.clone()));
                        }
                    }
                    out.push(Ok(d));
                }
                Err(e) if fail_fast => return Err(stream_error(&id, e)),
                Err(e) if fails_batch(&e) => return Err(e),
                Err(e) => out.push(Err(e)),
            }
        }
        // lock rows of entities that do not exist after the batch go (deleted, refused or never created): a writer
        // waiting on one inserts it anew once this commits
        let absent: Vec<String> = ids
            .into_iter()
            .filter(|id| !matches!(current.get(id), Some(Some(_))))
            .collect();
        w.write(tx, &current, &stored, absent, defer).await?;
        Ok(out)
    }

    /// Runs a batch of changes in one transaction and commits it.
    pub(super) async fn apply_and_commit(
        &self,
        changes: Vec<(String, EntityChange)>,
    ) -> Result<Vec<Result<Decision>>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        let out = self.apply(&tx, changes, false, None).await?;
        tx.commit().await.map_err(pg_err)?;
        if out.iter().any(|d| d.as_ref().is_ok_and(|d| d.wrote)) {
            self.signal.notify_one();
        }
        Ok(out)
    }
}

/// What a batch writes, gathered from its decisions and sent as multi-row statements.
#[derive(Default)]
struct Writes {
    /// Entity ids whose stored row (and indexes) the batch replaces or deletes.
    touched: Vec<String>,
    heads: BTreeMap<String, (String, String)>,
    inst: InstanceRows,
    journal: Vec<String>,
    map: MapDirty,
}

#[derive(Default)]
pub(super) struct InstanceRows {
    pub(super) entity: Vec<String>,
    attr: Vec<String>,
    dataset: Vec<Option<String>>,
    ts: Vec<i64>,
    sys: Vec<i64>,
    num: Vec<Option<f64>>,
    doc: Vec<String>,
}

impl InstanceRows {
    pub(super) fn push(&mut self, entity: &str, attr: &str, a: &Attribute) -> Result<()> {
        let r = instance_row(a)?;
        self.entity.push(entity.to_string());
        self.attr.push(attr.to_string());
        self.dataset.push(r.dataset_id);
        self.ts.push(r.ts);
        self.sys.push(r.sys);
        self.num.push(r.num);
        self.doc.push(r.doc);
        Ok(())
    }

    pub(super) fn params(self) -> Vec<Param> {
        vec![
            Box::new(self.entity),
            Box::new(self.attr),
            Box::new(self.dataset),
            Box::new(self.ts),
            Box::new(self.sys),
            Box::new(self.num),
            Box::new(self.doc),
        ]
    }
}

pub(super) const INSERT_INSTANCES: &str = "INSERT INTO temporal(entity, attr, dataset_id, ts, sys_ms, num, doc)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::float8[], $7::text[])";

impl Writes {
    fn add(&mut self, d: &Decision) -> Result<()> {
        let id = match &d.effect {
            Effect::Nothing => return Ok(()),
            Effect::Delete => None,
            Effect::Put {
                entity,
                instances,
                record_head,
            } => {
                if *record_head {
                    self.heads.insert(
                        entity.id.clone(),
                        (to_json(&entity.types)?, to_json(&entity.scopes)?),
                    );
                }
                for (name, a) in instances {
                    self.inst.push(&entity.id, name, a)?;
                }
                Some(&entity.id)
            }
        };
        if let Some(rec) = &d.journal {
            self.journal.push(to_json(rec)?);
        }
        d.touch_map(&mut self.map);
        self.touched.push(id.unwrap_or(&d.id).clone());
        Ok(())
    }

    /// Sends every write of the batch, pipelined; the journal and map changes last (they take the journal lock).
    async fn write(
        mut self,
        tx: &Tx<'_>,
        current: &HashMap<String, Option<Entity>>,
        stored: &HashSet<String>,
        absent: Vec<String>,
        defer: Option<&mut Deferred>,
    ) -> Result<()> {
        if let Some(d) = defer {
            d.journal.append(&mut self.journal);
            for (t, b) in std::mem::take(&mut self.map.0) {
                let slot = d.map.0.entry(t).or_insert(b);
                *slot = union_box(Some(*slot), Some(b)).unwrap_or(b);
            }
        }
        let mut touched = self.touched;
        touched.sort();
        touched.dedup();
        let mut p = Pipeline::new(tx);
        // rows that were stored: their indexes go (and the row itself, when deleted)
        let gone: Vec<String> = touched
            .iter()
            .filter(|id| stored.contains(*id))
            .cloned()
            .collect();
        if !gone.is_empty() {
            for sql in [
                "DELETE FROM entity_types WHERE id = ANY($1)",
                "DELETE FROM attr_values WHERE id = ANY($1)",
                "DELETE FROM entity_geo WHERE id = ANY($1)",
            ] {
                p.push(sql, vec![Box::new(gone.clone())]);
            }
            let deleted: Vec<String> = gone
                .iter()
                .filter(|id| matches!(current.get(*id), Some(None)))
                .cloned()
                .collect();
            if !deleted.is_empty() {
                p.push(
                    "DELETE FROM entities WHERE id = ANY($1)",
                    vec![Box::new(deleted)],
                );
            }
        }
        let mut rows = EntityRows::default();
        for id in &touched {
            if let Some(Some(e)) = current.get(id) {
                rows.push(e)?;
            }
        }
        if !rows.id.is_empty() {
            rows.send(&mut p);
        }
        if !self.heads.is_empty() {
            let (ids, (types, scopes)): (Vec<String>, (Vec<String>, Vec<String>)) =
                self.heads.into_iter().unzip();
            p.push(
                "INSERT INTO temporal_entities(id, types, scopes) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                 ON CONFLICT (id) DO UPDATE SET types = excluded.types, scopes = excluded.scopes
                 WHERE (temporal_entities.types, temporal_entities.scopes) IS DISTINCT FROM (excluded.types, excluded.scopes)",
                vec![Box::new(ids), Box::new(types), Box::new(scopes)],
            );
        }
        if !self.inst.entity.is_empty() {
            p.push(INSERT_INSTANCES, self.inst.params());
        }
        if !absent.is_empty() {
            p.push(
                "DELETE FROM entity_locks WHERE id = ANY($1)",
                vec![Box::new(absent)],
            );
        }
        let signal = !self.journal.is_empty() || !self.map.0.is_empty();
        journal_rows(&mut p, self.journal);
        map_rows(&mut p, self.map);
        if signal {
            p.push("SELECT pg_notify('urbantwin_changes', '')", vec![]);
        }
        p.run().await?;
        Ok(())
    }
}

/// Entity rows and their index rows, as columns.
#[derive(Default)]
struct EntityRows {
    id: Vec<String>,
    doc: Vec<String>,
    dataset: Vec<Option<String>>,
    modified: Vec<i64>,
    type_id: Vec<String>,
    type_name: Vec<String>,
    val_id: Vec<String>,
    val_attr: Vec<String>,
    val_num: Vec<Option<f64>>,
    val_txt: Vec<Option<String>>,
    val_flag: Vec<i16>,
    val_kind: Vec<String>,
    geo_id: Vec<String>,
    geo_attr: Vec<String>,
    geo_box: [Vec<f64>; 4],
}

impl EntityRows {
    fn push(&mut self, e: &Entity) -> Result<()> {
        self.id.push(e.id.clone());
        self.doc.push(to_json(e)?);
        self.dataset.push(e.dataset.clone());
        self.modified.push(e.modified_at.map(ms).unwrap_or(0));
        for t in &e.types {
            self.type_id.push(e.id.clone());
            self.type_name.push(t.clone());
        }
        for (name, instances) in &e.attrs {
            for a in instances {
                for v in index_values(a) {
                    let (num, txt, flag) = match v {
                        IndexValue::Num(x) => (Some(x), None, 0),
                        IndexValue::Text(s) => (None, Some(s), 0),
                        IndexValue::NoScalar => (None, None, 1),
                        IndexValue::Opaque => (None, None, 2),
                    };
                    self.val_id.push(e.id.clone());
                    self.val_attr.push(name.clone());
                    self.val_num.push(num);
                    self.val_txt.push(txt);
                    self.val_flag.push(flag);
                    self.val_kind.push(a.kind.as_str().to_string());
                }
            }
        }
        for (name, b) in geo_boxes(e) {
            self.geo_id.push(e.id.clone());
            self.geo_attr.push(name.to_string());
            for (col, v) in self.geo_box.iter_mut().zip(b) {
                col.push(v);
            }
        }
        Ok(())
    }

    fn send(self, p: &mut Pipeline<'_>) {
        p.push(
            "INSERT INTO entities(id, doc, dataset, modified_ms)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[])
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, dataset = excluded.dataset,
             modified_ms = excluded.modified_ms",
            vec![
                Box::new(self.id),
                Box::new(self.doc),
                Box::new(self.dataset),
                Box::new(self.modified),
            ],
        );
        if !self.type_id.is_empty() {
            p.push(
                "INSERT INTO entity_types(id, type) SELECT * FROM unnest($1::text[], $2::text[])
                 ON CONFLICT DO NOTHING",
                vec![Box::new(self.type_id), Box::new(self.type_name)],
            );
        }
        if !self.val_id.is_empty() {
            p.push(
                "INSERT INTO attr_values(id, attr, num, txt, flag, kind)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $5::int2[], $6::text[])",
                vec![
                    Box::new(self.val_id),
                    Box::new(self.val_attr),
                    Box::new(self.val_num),
                    Box::new(self.val_txt),
                    Box::new(self.val_flag),
                    Box::new(self.val_kind),
                ],
            );
        }
        if !self.geo_id.is_empty() {
            let [x0, y0, x1, y1] = self.geo_box;
            p.push(
                "INSERT INTO entity_geo(id, attr, bbox)
                 SELECT i, a, box(point(x0, y0), point(x1, y1))
                 FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[])
                 AS g(i, a, x0, y0, x1, y1)",
                vec![
                    Box::new(self.geo_id),
                    Box::new(self.geo_attr),
                    Box::new(x0),
                    Box::new(y0),
                    Box::new(x1),
                    Box::new(y1),
                ],
            );
        }
    }
}

/// Journal rows with their seqs; the counter's row lock (the journal lock) is held until commit.
fn journal_rows(p: &mut Pipeline<'_>, docs: Vec<String>) {
    if docs.is_empty() {
        return;
    }
    p.push(
        "WITH c AS (UPDATE counters SET value = value + cardinality($1::text[]) WHERE name = 'changes' RETURNING value)
         INSERT INTO changes(seq, doc)
         SELECT c.value - cardinality($1::text[]) + d.ord, d.doc FROM c, unnest($1::text[]) WITH ORDINALITY AS d(doc, ord)",
        vec![Box::new(docs)],
    );
}

/// Map change rows with their seqs (as the journal), and the pruning of old ones now and then.
fn map_rows(p: &mut Pipeline<'_>, map: MapDirty) {
    if map.0.is_empty() {
        return;
    }
    let (types, boxes): (Vec<String>, Vec<[f64; 4]>) = map.0.into_iter().unzip();
    let col = |k: usize| boxes.iter().map(|b| b[k]).collect::<Vec<f64>>();
    p.push(
        "WITH c AS (UPDATE counters SET value = value + cardinality($1::text[]) WHERE name = 'map_changes' RETURNING value),
         ins AS (INSERT INTO map_changes(seq, type, min_x, min_y, max_x, max_y)
            SELECT c.value - cardinality($1::text[]) + d.ord, d.t, d.x0, d.y0, d.x1, d.y1
            FROM c, unnest($1::text[], $2::float8[], $3::float8[], $4::float8[], $5::float8[])
            WITH ORDINALITY AS d(t, x0, y0, x1, y1, ord))
         DELETE FROM map_changes WHERE seq <= (SELECT value FROM c) - $6 AND (SELECT value FROM c) % 256 < cardinality($1::text[])",
        vec![
            Box::new(types),
            Box::new(col(0)),
            Box::new(col(1)),
            Box::new(col(2)),
            Box::new(col(3)),
            Box::new(MAP_CHANGES_KEPT),
        ],
    );
}
