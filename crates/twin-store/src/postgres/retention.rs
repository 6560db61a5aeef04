//! Retention and downsampling on PostgreSQL: the policy and report rows, and the backend's side of the shared run
//! (`crate::retention`): each chunk deletes raw instances (or buckets) with `DELETE .. RETURNING` and merges exactly
//! what it deleted into the next level in the same transaction, so two runs at once never count a value twice.

use super::*;
use crate::retention::{self as r, Bucket, ChunkOutcome, Period, Series};

const MERGE_BUCKETS: &str = "INSERT INTO temporal_aggregates(entity, attr, dataset, period, start_ms, end_ms, count,
    sum, sumsq, vmin, vmax)
    SELECT $1::text, $2::text, $3::text, $4::text, * FROM unnest($5::bigint[], $6::bigint[], $7::bigint[],
        $8::float8[], $9::float8[], $10::float8[], $11::float8[])
    ON CONFLICT (entity, attr, dataset, period, start_ms) DO UPDATE SET
        count = temporal_aggregates.count + excluded.count, sum = temporal_aggregates.sum + excluded.sum,
        sumsq = temporal_aggregates.sumsq + excluded.sumsq, vmin = LEAST(temporal_aggregates.vmin, excluded.vmin),
        vmax = GREATEST(temporal_aggregates.vmax, excluded.vmax)";

/// Merges buckets of a series' level into the stored ones, in one statement.
async fn merge_buckets(tx: &Tx<'_>, s: &Series, p: &Period, buckets: &[Bucket]) -> Result<()> {
    if buckets.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Bucket) -> i64| buckets.iter().map(f).collect::<Vec<i64>>();
    let colf = |f: fn(&Bucket) -> f64| buckets.iter().map(f).collect::<Vec<f64>>();
    let (starts, ends, counts) = (col(|b| b.start), col(|b| b.end), col(|b| b.agg.count));
    let (sums, sumsqs) = (colf(|b| b.agg.sum), colf(|b| b.agg.sumsq));
    let (mins, maxs) = (colf(|b| b.agg.min), colf(|b| b.agg.max));
    tx.execute(
        MERGE_BUCKETS,
        &[
            &s.entity,
            &s.attr,
            &s.dataset_key(),
            &p.name(),
            &starts,
            &ends,
            &counts,
            &sums,
            &sumsqs,
            &mins,
            &maxs,
        ],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

fn bucket_of(row: &Row, i: usize) -> Bucket {
    Bucket {
        start: row.get(i),
        end: row.get(i + 1),
        agg: r::Agg {
            count: row.get(i + 2),
            sum: row.get(i + 3),
            sumsq: row.get(i + 4),
            min: row.get(i + 5),
            max: row.get(i + 6),
        },
    }
}

impl PostgresStore {
    /// The downsampled buckets of an attribute that overlap `[lo, hi)`, with their level.
    pub(super) async fn stored_buckets(
        &self,
        id: &str,
        attr: &str,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(String, Bucket)>> {
        let rows = self
            .rows(
                "SELECT period, start_ms, end_ms, count, sum, sumsq, vmin, vmax FROM temporal_aggregates
                 WHERE entity = $1 AND attr = $2 AND end_ms > $3 AND start_ms < $4",
                &[&id, &attr, &lo, &hi],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), bucket_of(row, 1)))
            .collect())
    }

    pub(super) async fn put_policy(&self, p: RetentionPolicy) -> Result<bool> {
        p.plan()?;
        let doc = to_json(&p)?;
        let rows = self
            .rows(
                "INSERT INTO retention_policies(id, doc) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc RETURNING (xmax = 0)",
                &[&p.id, &doc],
            )
            .await?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    pub(super) async fn get_policy(&self, id: &str) -> Result<Option<RetentionPolicy>> {
        let rows = self
            .rows("SELECT doc FROM retention_policies WHERE id = $1", &[&id])
            .await?;
        rows.first().map(|r| from_json(r.get(0))).transpose()
    }

    pub(super) async fn list_policies(&self) -> Result<Vec<RetentionPolicy>> {
        let rows = self
            .rows("SELECT doc FROM retention_policies ORDER BY id", &[])
            .await?;
        rows.iter().map(|r| from_json(r.get(0))).collect()
    }

    pub(super) async fn delete_policy(&self, id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute("DELETE FROM retention_policies WHERE id = $1", &[&id])
            .await
            .map_err(pg_err)?;
        Ok(n > 0)
    }

    pub(super) async fn last_report(&self) -> Result<Option<RetentionReport>> {
        let rows = self
            .rows("SELECT doc FROM retention_status WHERE id = 1", &[])
            .await?;
        rows.first().map(|r| from_json(r.get(0))).transpose()
    }
}

#[async_trait]
impl r::RetentionOps for PostgresStore {
    async fn retention_policies(&self) -> Result<Vec<RetentionPolicy>> {
        self.list_policies().await
    }

    async fn retention_series(&self) -> Result<Vec<(Series, Option<i64>)>> {
        let rows = self
            .rows(
                "SELECT s.entity, s.attr, s.dataset, min(s.oldest), min(e.types) FROM (
                    SELECT entity, attr, coalesce(dataset_id, '') AS dataset, min(ts) AS oldest
                      FROM temporal GROUP BY entity, attr, dataset_id
                    UNION ALL
                    SELECT DISTINCT entity, attr, dataset, NULL::bigint FROM temporal_aggregates
                 ) s LEFT JOIN temporal_entities e ON e.id = s.entity
                 GROUP BY s.entity, s.attr, s.dataset ORDER BY s.entity, s.attr, s.dataset",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let types: Option<String> = row.get(4);
                let dataset: String = row.get(2);
                Ok((
                    Series {
                        entity: row.get(0),
                        types: types
                            .map(|t| from_json(&t))
                            .transpose()?
                            .unwrap_or_default(),
                        attr: row.get(1),
                        dataset_id: (!dataset.is_empty()).then_some(dataset),
                    },
                    row.get(3),
                ))
            })
            .collect()
    }

    async fn downsample_raw(
        &self,
        s: &Series,
        cut: i64,
        into: Option<Period>,
        limit: usize,
    ) -> Result<ChunkOutcome> {
        let s = s.clone();
        let limit = limit.min(i64::MAX as usize) as i64;
        self.in_tx(move |tx| {
            Box::pin(async move {
                let taken: Vec<(i64, Option<f64>)> = tx
                    .query(
                        "DELETE FROM temporal WHERE iid IN (SELECT iid FROM temporal
                           WHERE entity = $1 AND attr = $2 AND dataset_id IS NOT DISTINCT FROM $3::text
                             AND ts < $4 ORDER BY ts LIMIT $5)
                         RETURNING ts, num",
                        &[&s.entity, &s.attr, &s.dataset_id, &cut, &limit],
                    )
                    .await
                    .map_err(pg_err)?
                    .iter()
                    .map(|row| (row.get(0), row.get(1)))
                    .collect();
                let out = ChunkOutcome::of_raw(&taken, into.is_some());
                if let Some(p) = into {
                    merge_buckets(tx, &s, &p, &r::fold_values(taken, &p)).await?;
                }
                Ok(out)
            })
        })
        .await
    }

    async fn downsample_buckets(
        &self,
        s: &Series,
        from: Period,
        cut: i64,
        into: Option<Period>,
        limit: usize,
    ) -> Result<ChunkOutcome> {
        let s = s.clone();
        let limit = limit.min(i64::MAX as usize) as i64;
        self.in_tx(move |tx| {
            Box::pin(async move {
                let taken: Vec<Bucket> = tx
                    .query(
                        "DELETE FROM temporal_aggregates WHERE entity = $1 AND attr = $2 AND dataset = $3
                           AND period = $4 AND start_ms IN (SELECT start_ms FROM temporal_aggregates
                             WHERE entity = $1 AND attr = $2 AND dataset = $3 AND period = $4 AND end_ms <= $5
                             ORDER BY start_ms LIMIT $6)
                         RETURNING start_ms, end_ms, count, sum, sumsq, vmin, vmax",
                        &[&s.entity, &s.attr, &s.dataset_key(), &from.name(), &cut, &limit],
                    )
                    .await
                    .map_err(pg_err)?
                    .iter()
                    .map(|row| bucket_of(row, 0))
                    .collect();
                let n = taken.len() as u64;
                if let Some(p) = into {
                    merge_buckets(tx, &s, &p, &r::fold_buckets(taken, &p)).await?;
                }
                Ok(ChunkOutcome {
                    taken: n,
                    folded: if into.is_some() { n } else { 0 },
                })
            })
        })
        .await
    }

    async fn save_retention_report(&self, rep: &RetentionReport) -> Result<()> {
        let doc = to_json(rep)?;
        let c = self.client().await?;
        c.execute(
            "INSERT INTO retention_status(id, doc) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            &[&doc],
        )
        .await
        .map_err(pg_err)?;
        Ok(())
    }
}
