//! Reading entities and their history: the type, value and box indexes narrow the candidates in SQL, and the
//! shared evaluators (`common`) decide, exactly as for SQLite.

use super::*;

/// A prefilter as SQL over `attr_values a` of the entity `e` (values marked opaque, flag 2, always pass).
fn prefilter_sql(p: &Prefilter, params: &mut Params) -> String {
    let join = |items: &[Prefilter], sep: &str, params: &mut Params| {
        let parts: Vec<String> = items.iter().map(|i| prefilter_sql(i, params)).collect();
        format!("({})", parts.join(sep))
    };
    match p {
        Prefilter::And(items) => join(items, " AND ", params),
        Prefilter::Or(items) => join(items, " OR ", params),
        Prefilter::Attr(attr, cond) => {
            let a = params.add(attr.clone());
            let cond = match cond {
                AttrCond::Exists => {
                    return format!(
                        "EXISTS (SELECT 1 FROM attr_values a WHERE a.id = e.id AND a.attr = {a})"
                    )
                }
                AttrCond::In(items) => {
                    let (mut nums, mut texts) = (Vec::new(), Vec::new());
                    for s in items {
                        match s {
                            Scalar::Num(n) => nums.push(*n),
                            Scalar::Text(t) => texts.push(t.clone()),
                        }
                    }
                    format!(
                        "a.num = ANY({}::float8[]) OR a.txt = ANY({}::text[])",
                        params.add(nums),
                        params.add(texts)
                    )
                }
                AttrCond::Between(x, y) => {
                    format!("a.num BETWEEN {} AND {}", params.add(*x), params.add(*y))
                }
                AttrCond::Cmp(op, n) => {
                    let op = match op {
                        CmpOp::Gt => ">",
                        CmpOp::Ge => ">=",
                        CmpOp::Lt => "<",
                        _ => "<=",
                    };
                    format!("a.num {op} {}", params.add(*n))
                }
            };
            format!(
                "EXISTS (SELECT 1 FROM attr_values a WHERE a.id = e.id AND a.attr = {a} AND ({cond} OR a.flag = 2))"
            )
        }
    }
}

/// The condition that `col` is one of `datasets` (NULL being the default dataset).
pub(super) fn dataset_sql(col: &str, datasets: &[String], params: &mut Params) -> String {
    let f = DatasetFilter::new(datasets);
    let any = format!("{col} = ANY({}::text[])", params.add(f.ids));
    if f.or_null {
        format!("({any} OR {col} IS NULL)")
    } else {
        any
    }
}

/// For the listings of types, attributes and extents: a join of `entities e` on `id_col` and the condition on its
/// dataset, or nothing when all datasets are visible.
pub(super) fn dataset_join(
    id_col: &str,
    datasets: Option<&[String]>,
    params: &mut Params,
) -> (String, String) {
    match datasets {
        None => (String::new(), "true".to_string()),
        Some(ds) => (
            format!("JOIN entities e ON e.id = {id_col}"),
            dataset_sql("e.dataset", ds, params),
        ),
    }
}

/// The WHERE clause over `entities e` narrowing a query, its arguments, and whether it alone decides.
fn plan(q: &EntityQuery) -> (String, Params, bool) {
    let parts = plan_parts(q);
    let mut params = Params::default();
    let mut conds = Vec::new();
    if let Some(ids) = parts.ids {
        conds.push(format!("e.id = ANY({})", params.add(ids)));
    }
    if let Some(ds) = &q.datasets {
        conds.push(dataset_sql("e.dataset", ds, &mut params));
    }
    if let Some(types) = parts.types {
        conds.push(format!(
            "e.id IN (SELECT id FROM entity_types WHERE type = ANY({}))",
            params.add(types)
        ));
    }
    if let Some(attrs) = parts.attrs {
        conds.push(format!(
            "EXISTS (SELECT 1 FROM attr_values a WHERE a.id = e.id AND a.attr = ANY({}))",
            params.add(attrs)
        ));
    }
    if let Some(p) = &parts.q {
        conds.push(prefilter_sql(p, &mut params));
    }
    if let Some(([x0, y0, x1, y1], attr)) = parts.geo {
        conds.push(format!(
            "e.id IN (SELECT id FROM entity_geo WHERE bbox && box(point({}, {}), point({}, {})) AND attr = {})",
            params.add(x0),
            params.add(y0),
            params.add(x1),
            params.add(y1),
            params.add(attr)
        ));
    }
    let sql = if conds.is_empty() {
        "true".to_string()
    } else {
        conds.join(" AND ")
    };
    (sql, params, parts.exact)
}

impl PostgresStore {
    pub(super) async fn run_query(&self, q: &EntityQuery) -> Result<QueryPage> {
        if let Some(page) = nothing_visible(q) {
            return Ok(page);
        }
        let (sql, mut params, exact) = plan(q);
        let c = self.client().await?;
        if exact {
            let mut page = QueryPage::default();
            if q.count {
                let n: i64 = c
                    .query_one(
                        &format!("SELECT count(*) FROM entities e WHERE {sql}"),
                        &params.refs(),
                    )
                    .await
                    .map_err(pg_err)?
                    .get(0);
                page.count = Some(n as u64);
            }
            if q.limit == 0 {
                return Ok(page);
            }
            let limit = params.add(q.limit.min(i64::MAX as usize) as i64);
            let offset = params.add(q.offset.min(i64::MAX as usize) as i64);
            let rows = c
                .query(
                    &format!("SELECT e.doc FROM entities e WHERE {sql} ORDER BY e.id LIMIT {limit} OFFSET {offset}"),
                    &params.refs(),
                )
                .await
                .map_err(pg_err)?;
            for r in rows {
                page.entities.push(from_json(r.get::<_, &str>(0))?);
            }
            return Ok(page);
        }
        let stmt = c
            .prepare(&format!(
                "SELECT e.doc FROM entities e WHERE {sql} ORDER BY e.id"
            ))
            .await
            .map_err(pg_err)?;
        let rows = c.query_raw(&stmt, params.refs()).await.map_err(pg_err)?;
        futures_util::pin_mut!(rows);
        let mut pager = Pager::new(q);
        while let Some(r) = rows.next().await {
            let r = r.map_err(pg_err)?;
            if !pager.offer(from_json(r.get::<_, &str>(0))?) {
                break;
            }
        }
        Ok(pager.finish())
    }

    pub(super) async fn load(&self, id: &str) -> Result<Option<Entity>> {
        let rows = self
            .rows("SELECT doc FROM entities WHERE id = $1", &[&id])
            .await?;
        rows.first()
            .map(|r| from_json(r.get::<_, &str>(0)))
            .transpose()
    }

    async fn temporal_entities_for(&self, q: &TemporalQuery) -> Result<Vec<TemporalHead>> {
        let eq = &q.entities;
        let mut params = Params::default();
        let mut conds = vec!["true".to_string()];
        if let Some(ids) = &eq.ids {
            conds.push(format!("id = ANY({})", params.add(ids.clone())));
        }
        if let Some(ds) = &eq.datasets {
            conds.push(dataset_sql("dataset", ds, &mut params));
        }
        let rows = self
            .rows(
                &format!(
                    "SELECT id, types, scopes FROM temporal_entities WHERE {} ORDER BY id",
                    conds.join(" AND ")
                ),
                &params.refs(),
            )
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let Some(head) = temporal_head(eq, r.get(0), r.get(1), r.get(2))? else {
                continue;
            };
            if needs_current(eq) && !current_matches(eq, self.load(&head.0).await?.as_ref()) {
                continue;
            }
            out.push(head);
        }
        Ok(out)
    }

    async fn temporal_attrs(&self, q: &TemporalQuery, id: &str) -> Result<Vec<String>> {
        if let Some(a) = &q.attrs {
            return Ok(a.clone());
        }
        let rows = self
            .rows(
                "SELECT DISTINCT attr FROM temporal WHERE entity = $1 ORDER BY attr",
                &[&id],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn run_temporal_query(
        &self,
        q: &TemporalQuery,
    ) -> Result<Vec<TemporalEntity>> {
        let col = time_column(q);
        let (lo, hi) = time_window(q);
        let (per_attr, newest_first) = per_attr(q);
        let order = if newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT iid, doc FROM temporal WHERE entity = $1 AND attr = $2 AND {col} >= $3 AND {col} < $4
             ORDER BY {col} {order}, iid {order} LIMIT $5"
        );
        let per_attr = per_attr.min(i64::MAX as usize) as i64;
        let mut page = TemporalPage::new(q, self.temporal_entities_for(q).await?);
        while let Some(id) = page.next() {
            for attr in self.temporal_attrs(q, &id).await? {
                let rows = self.rows(&sql, &[&id, &attr, &lo, &hi, &per_attr]).await?;
                let instances = rows
                    .iter()
                    .map(|r| instance_from_row(r.get(0), r.get(1)))
                    .collect::<Result<Vec<_>>>()?;
                page.add(attr, instances);
            }
        }
        Ok(page.finish())
    }

    pub(super) async fn run_aggregate(
        &self,
        q: &TemporalQuery,
        a: &Aggregation,
    ) -> Result<Vec<AggregatedEntity>> {
        let col = time_column(q);
        let (lo, hi) = time_window(q);
        let span_sql = format!(
            "SELECT min({col}), max({col}) FROM temporal WHERE entity = $1 AND attr = $2 AND {col} >= $3 AND {col} < $4"
        );
        let rows_sql = format!(
            "SELECT {col}, num, CASE WHEN $5 AND num IS NULL THEN doc END FROM temporal
             WHERE entity = $1 AND attr = $2 AND {col} >= $3 AND {col} < $4 ORDER BY {col}"
        );
        let with_stored = col == "ts";
        let mut page = AggregatePage::new(q, a, self.temporal_entities_for(q).await?);
        while let Some(id) = page.next() {
            let attrs = match (&q.attrs, with_stored) {
                (None, true) => self
                    .rows(
                        "SELECT attr FROM temporal WHERE entity = $1
                         UNION SELECT attr FROM temporal_aggregates WHERE entity = $1 ORDER BY attr",
                        &[&id],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
                _ => self.temporal_attrs(q, &id).await?,
            };
            for attr in attrs {
                let span = self.rows(&span_sql, &[&id, &attr, &lo, &hi]).await?;
                let stored = if with_stored {
                    self.stored_buckets(&id, &attr, lo, hi).await?
                } else {
                    Vec::new()
                };
                let Some(mut buckets) =
                    page.buckets_with((span[0].get(0), span[0].get(1)), &stored)?
                else {
                    continue;
                };
                let want = buckets.want_distinct;
                for r in self.rows(&rows_sql, &[&id, &attr, &lo, &hi, &want]).await? {
                    if !buckets.add(r.get(0), r.get(1), r.get(2)) {
                        break;
                    }
                }
                page.add(attr, buckets);
            }
        }
        Ok(page.finish())
    }
}
