//! Retention and downsampling of temporal data: the policies (which history they match, how long raw instances are
//! kept, which UTC-aligned aggregates replace them and for how long), bucket alignment and merging, and the
//! backend-neutral run that enforces the policies chunk by chunk through a backend's [`RetentionOps`].
//!
//! # Rules
//!
//! - A policy matches temporal data by entity type, attribute and datasetId (each optional; a policy with none
//!   matches everything). Of the policies that match a series (one entity, attribute and datasetId), the one that
//!   names the most of the three wins; on a tie, the attribute counts more than the datasetId, the datasetId more
//!   than the entity type; then the smaller policy id wins. No matching policy: the series is kept as it is.
//! - Raw instances older than `keepRaw` are folded into the first level's buckets and deleted, in one transaction
//!   per chunk. Only instances in first-level buckets that ended before `now - keepRaw` are taken, so a bucket is
//!   complete when it is first written. Non-numeric instances are deleted without a trace.
//! - Levels are a cascade: a bucket of level *i* whose coarser level-(*i+1*) bucket ended before `now - keep_i`
//!   is merged into level *i+1* and deleted (the last level's expired buckets are deleted; a last level without
//!   `keep` is kept forever). Every observation is therefore counted in exactly one place: raw, or one level.
//! - Buckets are aligned to UTC: periods that divide a day start at midnight UTC, whole days at 1970-01-01, months
//!   (1, 2, 3, 4, 6 or 12) on January 1st. Each level's period is a multiple of the one before, aligned with it.
//! - A bucket keeps count, sum, sum of squares, min and max of numeric values; a bucket written again (late raw
//!   data, a crashed run's next chunk) merges these, so a re-run never double counts.

use async_trait::async_trait;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use twin_model::duration::Duration;
use twin_model::NgsiError;

use crate::common::{from_ms, ms};
use crate::Result;

/// How many raw instances (or buckets) one transaction of a run takes.
pub const CHUNK: usize = 10_000;

/// A retention and downsampling policy, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionPolicy {
    pub id: String,
    /// The entity type it applies to (expanded IRI); None = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// The attribute it applies to (expanded IRI); None = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// The datasetId it applies to; None = any (including instances without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<String>,
    /// How long raw instances are kept, an ISO 8601 duration (`P30D`).
    pub keep_raw: String,
    /// Aggregates that replace the raw instances, finest first.
    #[serde(default)]
    pub levels: Vec<DownsampleLevel>,
}

/// One level of aggregates of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownsampleLevel {
    /// The bucket length, an ISO 8601 duration (`PT1H`, `P1D`, `P1M`).
    pub period: String,
    /// How long its buckets are kept (counted from the bucket's end); None = forever (last level only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<String>,
}

/// A bucket length aligned to UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Milliseconds: a divisor of a day (aligned to midnight UTC) or whole days (aligned to 1970-01-01).
    Exact(i64),
    /// Calendar months, a divisor of 12 (aligned to January 1st).
    Months(u32),
}

const DAY_MS: i64 = 86_400_000;

impl Period {
    /// The period of a duration, if buckets of it can be aligned to UTC.
    pub fn of(d: &Duration) -> std::result::Result<Period, String> {
        if d.is_zero() {
            return Err("a period cannot be zero".into());
        }
        if d.months > 0 {
            if d.seconds > 0 || d.nanos > 0 {
                return Err(format!("{d} mixes months with days or hours"));
            }
            if 12 % d.months != 0 {
                return Err(format!(
                    "{d}: a period in months must divide a year (P1M, P2M, P3M, P4M, P6M or P1Y)"
                ));
            }
            return Ok(Period::Months(d.months));
        }
        if d.nanos > 0 || d.seconds > 10_000 * 366 * 86_400 {
            return Err(format!("{d}: a period is a whole number of seconds"));
        }
        let p = d.seconds as i64 * 1000;
        if DAY_MS % p != 0 && p % DAY_MS != 0 {
            return Err(format!(
                "{d}: a period must divide a day (PT1M, PT15M, PT1H, PT6H...) or be whole days, so that its buckets align with midnight UTC"
            ));
        }
        Ok(Period::Exact(p))
    }

    /// The start of the bucket holding `t` (ms).
    pub fn floor(&self, t: i64) -> i64 {
        match *self {
            Period::Exact(p) => t.div_euclid(p) * p,
            Period::Months(m) => {
                let d = from_ms(t);
                let idx = d.year() as i64 * 12 + d.month0() as i64;
                let idx = idx.div_euclid(m as i64) * m as i64;
                let (y, mo) = (idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1);
                Utc.with_ymd_and_hms(y as i32, mo, 1, 0, 0, 0)
                    .single()
                    .map(ms)
                    .unwrap_or(t)
            }
        }
    }

    /// The end of the bucket starting at `start` (ms).
    pub fn end(&self, start: i64) -> i64 {
        match *self {
            Period::Exact(p) => start.saturating_add(p),
            Period::Months(m) => from_ms(start)
                .checked_add_months(chrono::Months::new(m))
                .map(ms)
                .unwrap_or(i64::MAX),
        }
    }

    /// Whether every bucket boundary of `coarser` is one of this period's.
    fn nests_in(&self, coarser: &Period) -> bool {
        match (*self, *coarser) {
            (Period::Exact(a), Period::Exact(b)) => b % a == 0,
            (Period::Exact(a), Period::Months(_)) => DAY_MS % a == 0,
            (Period::Months(a), Period::Months(b)) => b % a == 0,
            (Period::Months(_), Period::Exact(_)) => false,
        }
    }

    /// The canonical ISO 8601 text (how aggregates name their level).
    pub fn name(&self) -> String {
        match *self {
            Period::Exact(p) => Duration {
                months: 0,
                seconds: (p / 1000) as u64,
                nanos: 0,
            }
            .to_string(),
            Period::Months(m) => Duration {
                months: m,
                seconds: 0,
                nanos: 0,
            }
            .to_string(),
        }
    }

    /// The period named by [`Period::name`].
    pub fn parse_name(s: &str) -> Option<Period> {
        Period::of(&Duration::parse(s).ok()?).ok()
    }
}

/// A policy's durations, parsed and checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub keep_raw: Duration,
    /// Each level's period and how long it is kept (None = forever).
    pub levels: Vec<(Period, Option<Duration>)>,
}

fn bad(detail: String) -> NgsiError {
    NgsiError::bad_data(detail)
}

fn duration(what: &str, s: &str) -> Result<Duration> {
    let d = Duration::parse(s).map_err(|e| bad(format!("{what}: {}", e.0)))?;
    if d.is_zero() {
        return Err(bad(format!("{what}: {s} is zero")));
    }
    Ok(d)
}

impl RetentionPolicy {
    /// Checks the policy and parses its durations: the id is not empty, every duration is valid ISO 8601, each
    /// level's period aligns to UTC and nests in the next one, and each level is kept longer than the one before
    /// (raw included); only the last level may be kept forever.
    pub fn plan(&self) -> Result<Plan> {
        if self.id.trim().is_empty() {
            return Err(bad("a retention policy needs an id".into()));
        }
        for (what, v) in [
            ("entityType", &self.entity_type),
            ("attribute", &self.attribute),
            ("datasetId", &self.dataset_id),
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(bad(format!(
                    "{what} is empty (leave it out to match any {what})"
                )));
            }
        }
        let keep_raw = duration("keepRaw", &self.keep_raw)?;
        let mut levels: Vec<(Period, Option<Duration>)> = Vec::new();
        let mut kept = keep_raw;
        for (i, l) in self.levels.iter().enumerate() {
            let what = format!("levels[{i}]");
            let d = duration(&format!("{what}.period"), &l.period)?;
            let p = Period::of(&d).map_err(|e| bad(format!("{what}.period: {e}")))?;
            if let Some((prev, _)) = levels.last() {
                if !prev.nests_in(&p) || prev == &p {
                    return Err(bad(format!(
                        "{what}.period: {} is not a longer multiple of the level before ({}), aligned with it",
                        l.period,
                        prev.name()
                    )));
                }
            }
            let keep = match &l.keep {
                None if i + 1 < self.levels.len() => {
                    return Err(bad(format!(
                        "{what}.keep: only the last level may be kept forever (its buckets move on to the next level once kept long enough)"
                    )))
                }
                None => None,
                Some(k) => {
                    let k = duration(&format!("{what}.keep"), k)?;
                    if k.approx_seconds() <= kept.approx_seconds() {
                        return Err(bad(format!(
                            "{what}.keep: {k} is not longer than what the level before keeps ({kept})"
                        )));
                    }
                    kept = k;
                    Some(k)
                }
            };
            levels.push((p, keep));
        }
        Ok(Plan { keep_raw, levels })
    }

    /// How specific the policy is: more criteria first; then attribute over datasetId over entity type.
    fn specificity(&self) -> (u32, u32) {
        let a = self.attribute.is_some() as u32;
        let d = self.dataset_id.is_some() as u32;
        let t = self.entity_type.is_some() as u32;
        (a + d + t, a * 4 + d * 2 + t)
    }

    fn matches(&self, s: &Series) -> bool {
        self.entity_type
            .as_ref()
            .is_none_or(|t| s.types.contains(t))
            && self.attribute.as_ref().is_none_or(|a| a == &s.attr)
            && self
                .dataset_id
                .as_ref()
                .is_none_or(|d| Some(d) == s.dataset_id.as_ref())
    }
}

/// The policy that applies to a series: the most specific that matches (see the module doc).
pub fn policy_for<'a>(policies: &'a [RetentionPolicy], s: &Series) -> Option<&'a RetentionPolicy> {
    policies.iter().filter(|p| p.matches(s)).max_by(|a, b| {
        a.specificity()
            .cmp(&b.specificity())
            .then_with(|| b.id.cmp(&a.id))
    })
}

/// The history of one attribute of one entity under one datasetId.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub entity: String,
    /// The entity's types (expanded), as its history records them.
    pub types: Vec<String>,
    pub attr: String,
    pub dataset_id: Option<String>,
}

impl Series {
    /// The datasetId as the aggregates table keys it ('' = none).
    pub fn dataset_key(&self) -> &str {
        self.dataset_id.as_deref().unwrap_or("")
    }
}

/// Count, sum, sum of squares, min and max of the numeric values of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub count: i64,
    pub sum: f64,
    pub sumsq: f64,
    pub min: f64,
    pub max: f64,
}

impl Agg {
    pub fn of(x: f64) -> Agg {
        Agg {
            count: 1,
            sum: x,
            sumsq: x * x,
            min: x,
            max: x,
        }
    }

    pub fn merge(&mut self, o: &Agg) {
        self.count += o.count;
        self.sum += o.sum;
        self.sumsq += o.sumsq;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// A stored bucket: `[start, end)` in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub start: i64,
    pub end: i64,
    pub agg: Agg,
}

/// Folds values at times (ms; None = not a number, skipped) into buckets of `p`, in start order.
pub fn fold_values(
    values: impl IntoIterator<Item = (i64, Option<f64>)>,
    p: &Period,
) -> Vec<Bucket> {
    let mut out: std::collections::BTreeMap<i64, Bucket> = Default::default();
    for (t, x) in values {
        let Some(x) = x.filter(|x| x.is_finite()) else {
            continue;
        };
        let start = p.floor(t);
        out.entry(start)
            .and_modify(|b| b.agg.merge(&Agg::of(x)))
            .or_insert(Bucket {
                start,
                end: p.end(start),
                agg: Agg::of(x),
            });
    }
    out.into_values().collect()
}

/// Folds finer buckets into buckets of `p`, in start order.
pub fn fold_buckets(buckets: impl IntoIterator<Item = Bucket>, p: &Period) -> Vec<Bucket> {
    let mut out: std::collections::BTreeMap<i64, Bucket> = Default::default();
    for b in buckets {
        let start = p.floor(b.start);
        out.entry(start)
            .and_modify(|x| x.agg.merge(&b.agg))
            .or_insert(Bucket {
                start,
                end: p.end(start),
                agg: b.agg,
            });
    }
    out.into_values().collect()
}

/// What one transaction of a run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkOutcome {
    /// Rows (raw instances or buckets) taken and deleted.
    pub taken: u64,
    /// Of those, the ones folded into the next level (numeric raw instances, or buckets).
    pub folded: u64,
}

impl ChunkOutcome {
    /// The outcome of deleting the raw instances `taken` (time, numeric value), folded into a level when
    /// `folding`: only the finite numbers are.
    pub fn of_raw(taken: &[(i64, Option<f64>)], folding: bool) -> ChunkOutcome {
        ChunkOutcome {
            taken: taken.len() as u64,
            folded: if folding {
                taken
                    .iter()
                    .filter(|(_, x)| x.is_some_and(f64::is_finite))
                    .count() as u64
            } else {
                0
            },
        }
    }
}

/// The last run of the retention policies, as `GET /api/retention/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RetentionReport {
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The time the policies were measured from.
    pub now: Option<DateTime<Utc>>,
    pub policies: Vec<PolicyRun>,
}

/// What a run did under one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRun {
    pub policy: String,
    /// Series (entity, attribute, datasetId) the policy applied to.
    pub series: u64,
    /// Raw instances deleted (numeric and not).
    pub raw_deleted: u64,
    /// Of those, the numeric ones folded into the first level.
    pub raw_aggregated: u64,
    /// Buckets folded into the next level and deleted.
    pub buckets_rolled_up: u64,
    /// Buckets of the last level deleted once kept long enough.
    pub buckets_expired: u64,
    /// Why the policy could not be applied (a policy stored before its rules changed), if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a backend offers the run: each method is one transaction.
#[async_trait]
pub(crate) trait RetentionOps: Send + Sync {
    async fn retention_policies(&self) -> Result<Vec<RetentionPolicy>>;
    /// Every series with raw instances or aggregates, and the time of its oldest raw instance (None: none).
    async fn retention_series(&self) -> Result<Vec<(Series, Option<i64>)>>;
    /// Deletes up to `limit` raw instances of `s` older than `cut` (oldest first) and, when `into` is given,
    /// merges their numeric values into its buckets, atomically.
    async fn downsample_raw(
        &self,
        s: &Series,
        cut: i64,
        into: Option<Period>,
        limit: usize,
    ) -> Result<ChunkOutcome>;
    /// Deletes up to `limit` buckets of `from` that end at or before `cut` and, when `into` is given, merges them
    /// into its buckets, atomically.
    async fn downsample_buckets(
        &self,
        s: &Series,
        from: Period,
        cut: i64,
        into: Option<Period>,
        limit: usize,
    ) -> Result<ChunkOutcome>;
    async fn save_retention_report(&self, r: &RetentionReport) -> Result<()>;
}

/// `now - d` in ms (calendar months counted back).
fn before(now: DateTime<Utc>, d: &Duration) -> i64 {
    let t = now
        .checked_sub_months(chrono::Months::new(d.months))
        .and_then(|t| t.checked_sub_signed(d.exact_part()))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    ms(t)
}

/// Runs every chunk until `step` takes fewer than `limit` rows.
async fn drain<F, Fut>(limit: usize, mut step: F) -> Result<ChunkOutcome>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<ChunkOutcome>>,
{
    let mut total = ChunkOutcome::default();
    loop {
        let c = step().await?;
        total.taken += c.taken;
        total.folded += c.folded;
        if (c.taken as usize) < limit {
            return Ok(total);
        }
    }
}

/// Applies every policy as of `now`, `chunk` rows per transaction, and records the report.
pub(crate) async fn run(
    ops: &dyn RetentionOps,
    now: DateTime<Utc>,
    chunk: usize,
) -> Result<RetentionReport> {
    let chunk = chunk.max(1);
    let started = Utc::now();
    let policies = ops.retention_policies().await?;
    let mut runs: Vec<PolicyRun> = policies
        .iter()
        .map(|p| PolicyRun {
            policy: p.id.clone(),
            ..Default::default()
        })
        .collect();
    let plans: Vec<std::result::Result<Plan, String>> = policies
        .iter()
        .map(|p| p.plan().map_err(|e| e.detail))
        .collect();
    for (run, plan) in runs.iter_mut().zip(&plans) {
        run.error = plan.as_ref().err().cloned();
    }
    if !policies.is_empty() {
        for (s, oldest) in ops.retention_series().await? {
            let Some(p) = policy_for(&policies, &s) else {
                continue;
            };
            let i = policies.iter().position(|x| x.id == p.id).unwrap_or(0);
            let Ok(plan) = &plans[i] else {
                continue;
            };
            let run = &mut runs[i];
            run.series += 1;
            // raw → the first level (or deleted), only whole buckets of it
            let raw_cut = before(now, &plan.keep_raw);
            let into = plan.levels.first().map(|(p, _)| *p);
            let raw_cut = into.map_or(raw_cut, |p| p.floor(raw_cut));
            if oldest.is_some_and(|o| o < raw_cut) {
                let c = drain(chunk, || ops.downsample_raw(&s, raw_cut, into, chunk)).await?;
                run.raw_deleted += c.taken;
                run.raw_aggregated += c.folded;
            }
            // level i → level i+1 (or deleted)
            for (k, (period, keep)) in plan.levels.iter().enumerate() {
                let Some(keep) = keep else { continue };
                let next = plan.levels.get(k + 1).map(|(p, _)| *p);
                let cut = before(now, keep);
                let cut = match next {
                    Some(n) => n.floor(cut),
                    None => cut,
                };
                let c = drain(chunk, || {
                    ops.downsample_buckets(&s, *period, cut, next, chunk)
                })
                .await?;
                if next.is_some() {
                    run.buckets_rolled_up += c.taken;
                } else {
                    run.buckets_expired += c.taken;
                }
            }
        }
    }
    let report = RetentionReport {
        started_at: Some(started),
        finished_at: Some(Utc::now()),
        now: Some(now),
        policies: runs,
    };
    ops.save_retention_report(&report).await?;
    Ok(report)
}

/// The error of an aggregation whose periods cannot be composed of a stored bucket.
pub(crate) fn not_composable(period: &str, start: i64, end: i64) -> NgsiError {
    NgsiError::bad_data(format!(
        "the values from {} to {} are kept only as {period} aggregates (aligned to UTC), which this aggregation \
         cannot split: ask for an aggrPeriodDuration that is a multiple of {period}, over a time range that starts \
         and ends on {period} boundaries in UTC",
        from_ms(start).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        from_ms(end).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        ms(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    }

    fn period(s: &str) -> Period {
        Period::of(&Duration::parse(s).unwrap()).unwrap()
    }

    #[test]
    fn buckets_align_to_utc() {
        let h = period("PT1H");
        assert_eq!(
            h.floor(t("2025-03-04T05:59:59.999Z")),
            t("2025-03-04T05:00:00Z")
        );
        assert_eq!(h.end(t("2025-03-04T05:00:00Z")), t("2025-03-04T06:00:00Z"));
        assert_eq!(
            period("P1D").floor(t("1969-12-31T23:00:00Z")),
            t("1969-12-31T00:00:00Z")
        );
        let q = period("P3M");
        assert_eq!(
            q.floor(t("2025-05-31T10:00:00Z")),
            t("2025-04-01T00:00:00Z")
        );
        assert_eq!(q.end(t("2025-10-01T00:00:00Z")), t("2026-01-01T00:00:00Z"));
        assert_eq!(
            period("P1Y").floor(t("2024-02-29T10:00:00Z")),
            t("2024-01-01T00:00:00Z")
        );
        assert_eq!(period("P1M").name(), "P1M");
        assert_eq!(
            Period::parse_name(&period("PT15M").name()),
            Some(period("PT15M"))
        );
        for bad in ["PT7M", "P1DT1H", "P5M", "P1MT1H", "PT0.5S", "PT0S"] {
            assert!(Period::of(&Duration::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn folding_merges_count_sum_min_max() {
        let h = period("PT1H");
        let base = t("2025-01-01T00:00:00Z");
        let vals = [
            (base, Some(1.0)),
            (base + 10, Some(3.0)),
            (base + 3_600_000, Some(5.0)),
            (base, None),
        ];
        let b = fold_values(vals, &h);
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[0].agg,
            Agg {
                count: 2,
                sum: 4.0,
                sumsq: 10.0,
                min: 1.0,
                max: 3.0
            }
        );
        let d = fold_buckets(b, &period("P1D"));
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].agg,
            Agg {
                count: 3,
                sum: 9.0,
                sumsq: 35.0,
                min: 1.0,
                max: 5.0
            }
        );
        assert_eq!(d[0].end - d[0].start, DAY_MS);
    }

    fn policy(v: serde_json::Value) -> RetentionPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn plans_check_levels() {
        let ok = policy(serde_json::json!({"id": "p", "keepRaw": "P30D",
            "levels": [{"period": "PT1H", "keep": "P5Y"}, {"period": "P1D"}]}));
        assert_eq!(ok.plan().unwrap().levels.len(), 2);
        for (v, needle) in [
            (
                serde_json::json!({"id": "p", "keepRaw": "30 days"}),
                "keepRaw",
            ),
            (serde_json::json!({"id": "p", "keepRaw": "P0D"}), "zero"),
            (serde_json::json!({"id": "", "keepRaw": "P1D"}), "id"),
            (
                serde_json::json!({"id": "p", "keepRaw": "P1D", "attribute": ""}),
                "attribute is empty",
            ),
            (
                serde_json::json!({"id": "p", "keepRaw": "P1D", "levels": [{"period": "PT7M"}]}),
                "divide a day",
            ),
            (
                serde_json::json!({"id": "p", "keepRaw": "P1D",
                "levels": [{"period": "PT1H"}, {"period": "P1D"}]}),
                "only the last level",
            ),
            (
                serde_json::json!({"id": "p", "keepRaw": "P30D",
                "levels": [{"period": "PT1H", "keep": "P7D"}]}),
                "not longer",
            ),
            (
                serde_json::json!({"id": "p", "keepRaw": "P1D",
                "levels": [{"period": "P1D", "keep": "P1Y"}, {"period": "PT1H"}]}),
                "longer multiple",
            ),
            (
                serde_json::json!({"id": "p", "keepRaw": "P1D",
                "levels": [{"period": "P7D", "keep": "P1Y"}, {"period": "P1M"}]}),
                "longer multiple",
            ),
        ] {
            let e = policy(v.clone()).plan().expect_err(&v.to_string());
            assert!(e.detail.contains(needle), "{v}: {}", e.detail);
        }
    }

    #[test]
    fn the_most_specific_policy_wins() {
        let s = Series {
            entity: "urn:e".into(),
            types: vec!["T".into()],
            attr: "a".into(),
            dataset_id: Some("d".into()),
        };
        let all = policy(serde_json::json!({"id": "all", "keepRaw": "P1D"}));
        let typ = policy(serde_json::json!({"id": "typ", "keepRaw": "P1D", "entityType": "T"}));
        let ds = policy(serde_json::json!({"id": "ds", "keepRaw": "P1D", "datasetId": "d"}));
        let attr = policy(serde_json::json!({"id": "attr", "keepRaw": "P1D", "attribute": "a"}));
        let both = policy(
            serde_json::json!({"id": "both", "keepRaw": "P1D", "entityType": "T", "datasetId": "d"}),
        );
        let other = policy(
            serde_json::json!({"id": "zz", "keepRaw": "P1D", "attribute": "b", "entityType": "T"}),
        );
        let pick = |ps: Vec<RetentionPolicy>| policy_for(&ps, &s).map(|p| p.id.clone());
        assert_eq!(pick(vec![]), None);
        assert_eq!(pick(vec![other.clone()]), None);
        assert_eq!(pick(vec![all.clone(), typ.clone()]), Some("typ".into()));
        assert_eq!(pick(vec![typ.clone(), ds.clone()]), Some("ds".into()));
        assert_eq!(
            pick(vec![ds.clone(), attr.clone(), typ.clone()]),
            Some("attr".into())
        );
        assert_eq!(
            pick(vec![attr.clone(), both.clone(), other]),
            Some("both".into())
        );
        let mut all2 = all.clone();
        all2.id = "a-first".into();
        assert_eq!(pick(vec![all, all2]), Some("a-first".into()));
    }
}
