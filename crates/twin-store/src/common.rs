//! What every backend of the store shares, so that SQLite and PostgreSQL give identical answers: deciding an entity
//! change, the values the `q` index keeps, the query prefilter, the exact evaluation, temporal rows and aggregation.
//!
//! Nothing here touches a database. A backend loads what it needs, calls in here to decide, and writes what it was
//! told to write: the decision (which rows, which journal entry, which map change) is made once, in this module.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use twin_model::entity::AttrKind;
use twin_model::geoquery::{geojson_bbox, GeoRel};
use twin_model::query::{CmpOp, Literal, QValue, Query};
use twin_model::{Attribute, Entity, NgsiError};

use crate::*;

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

pub(crate) fn db_err(e: impl std::fmt::Display) -> NgsiError {
    NgsiError::internal(format!("storage: {e}"))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(db_err)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(db_err)
}

/// How many map changes are kept for tile caches that poll; a cache further behind starts afresh.
pub(crate) const MAP_CHANGES_KEPT: i64 = 10_000;

/// GeoProperty instances (with a box) one entity may have: the spatial index of SQLite numbers them per entity.
pub(crate) const GEO_PER_ENTITY: usize = 64;

// ---------------------------------------------------------------------------------------------------------------
// boxes and map changes

pub(crate) fn union_box(a: Option<[f64; 4]>, b: Option<[f64; 4]>) -> Option<[f64; 4]> {
    match (a, b) {
        (Some(a), Some(b)) => Some([
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[2].max(b[2]),
            a[3].max(b[3]),
        ]),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The box around every GeoProperty value of an entity.
pub(crate) fn entity_bbox(e: &Entity) -> Option<[f64; 4]> {
    geo_boxes(e).fold(None, |acc, (_, b)| union_box(acc, Some(b)))
}

/// Every GeoProperty instance of an entity that has a box, with its attribute name.
pub(crate) fn geo_boxes(e: &Entity) -> impl Iterator<Item = (&str, [f64; 4])> {
    e.attrs.iter().flat_map(|(name, instances)| {
        instances
            .iter()
            .filter(|a| a.kind == AttrKind::GeoProperty)
            .filter_map(move |a| geojson_bbox(&a.value).map(|b| (name.as_str(), b)))
    })
}

/// An entity's types and box before a change (what a map change must cover of where it was).
pub(crate) type MapBefore = (Vec<String>, Option<[f64; 4]>);

/// Geometry touched by a transaction, per entity type (lon/lat box); written as `map_changes` rows just before it
/// commits.
#[derive(Default, Debug)]
pub(crate) struct MapDirty(pub BTreeMap<String, [f64; 4]>);

impl MapDirty {
    /// Notes that an entity's geometry (or the properties drawn with it) changed: its types and the boxes of its
    /// GeoProperties before and after.
    pub(crate) fn touch(&mut self, before: Option<&MapBefore>, after: Option<&Entity>) {
        let after_box = after.and_then(entity_bbox);
        let before_box = before.and_then(|(_, b)| *b);
        let Some(bx) = union_box(before_box, after_box) else {
            return;
        };
        let types = before
            .map(|(t, _)| t.as_slice())
            .unwrap_or_default()
            .iter()
            .chain(after.map(|e| e.types.as_slice()).unwrap_or_default());
        for t in types {
            let slot = self.0.entry(t.clone()).or_insert(bx);
            *slot = union_box(Some(*slot), Some(bx)).unwrap_or(bx);
        }
    }
}

/// The answer of `map_changes_since` from the rows after `after_seq` (at most `limit + 1` of them, oldest first):
/// seqs have no gaps except where old rows were pruned, so a first row that is not `after_seq + 1` means some were.
pub(crate) fn map_changes_page(
    head: i64,
    after_seq: i64,
    limit: usize,
    changes: Vec<MapChange>,
) -> MapChanges {
    let complete = changes.len() <= limit && changes.first().map(|c| c.seq) == Some(after_seq + 1);
    MapChanges {
        head,
        changes,
        complete,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// deciding an entity change

/// What the store must write for one decided change.
pub(crate) enum Effect {
    Nothing,
    Delete,
    /// The entity to store, the attribute instances to record in its history (expanded name, instance).
    Put {
        entity: Entity,
        instances: Vec<(String, Attribute)>,
        record_head: bool,
    },
}

/// A decided entity change: what to write, what to journal, what to answer.
pub(crate) struct Decision {
    /// The entity changed.
    pub id: String,
    pub result: WriteResult,
    /// False when the change decided to write nothing.
    pub wrote: bool,
    pub effect: Effect,
    pub journal: Option<ChangeRecord>,
    /// Types and box before the change (None when it did not exist).
    pub map_before: Option<MapBefore>,
}

impl Decision {
    /// Notes the geometry this change touched.
    pub(crate) fn touch_map(&self, dirty: &mut MapDirty) {
        match &self.effect {
            Effect::Nothing => {}
            Effect::Delete => dirty.touch(self.map_before.as_ref(), None),
            Effect::Put { entity, .. } => dirty.touch(self.map_before.as_ref(), Some(entity)),
        }
    }

    /// Counts this change into a stream's summary.
    pub(crate) fn count(&self, summary: &mut StreamSummary) {
        match (
            self.wrote,
            self.result.created,
            self.result.entity.is_some(),
        ) {
            (false, _, _) => summary.unchanged += 1,
            (true, true, _) => summary.created += 1,
            (true, false, true) => summary.updated += 1,
            (true, false, false) => summary.deleted += 1,
        }
    }
}

/// Runs a change on the current state of `id` (`before`) and decides what to write. The change function decides
/// before anything is written, so an error it returns (or one found here) leaves the store untouched.
pub(crate) fn decide(
    id: &str,
    before: Option<Entity>,
    journal: bool,
    change: EntityChange,
) -> Result<Decision> {
    let existed = before.is_some();
    let map_before = before.as_ref().map(|b| (b.types.clone(), entity_bbox(b)));
    let before_copy = if journal { before.clone() } else { None };
    let outcome = change(before)?;
    let now = Utc::now();
    let record = |trigger, attributes, entity, previous| ChangeRecord {
        seq: 0,
        entity_id: id.to_string(),
        trigger,
        attributes,
        entity,
        previous,
        at: now,
    };
    match outcome {
        ChangeOutcome::Nothing { result } => Ok(Decision {
            id: id.to_string(),
            result: WriteResult {
                created: false,
                entity: None,
                result,
            },
            wrote: false,
            effect: Effect::Nothing,
            journal: None,
            map_before,
        }),
        ChangeOutcome::Delete => {
            if !existed {
                return Err(NgsiError::not_found(format!("entity {id} does not exist")));
            }
            let journal = before_copy.map(|b| {
                let attrs = b.attrs.keys().cloned().collect();
                record(Trigger::EntityDeleted, attrs, b, None)
            });
            Ok(Decision {
                id: id.to_string(),
                result: WriteResult {
                    created: false,
                    entity: None,
                    result: Value::Null,
                },
                wrote: true,
                effect: Effect::Delete,
                journal,
                map_before,
            })
        }
        ChangeOutcome::Put {
            entity,
            written,
            removed,
            result,
        } => {
            if entity.id != id {
                return Err(NgsiError::bad_data(format!(
                    "entity id {} does not match {id}",
                    entity.id
                )));
            }
            if geo_boxes(&entity).count() > GEO_PER_ENTITY {
                return Err(NgsiError::bad_data(format!(
                    "entity {} has more than {GEO_PER_ENTITY} GeoProperty instances",
                    entity.id
                )));
            }
            let instances = written
                .iter()
                .filter_map(|(name, ds)| {
                    entity
                        .instance(name, ds.as_deref())
                        .map(|a| (name.clone(), a.clone()))
                })
                .collect();
            let journal = journal.then(|| {
                let trigger = if existed {
                    Trigger::EntityUpdated
                } else {
                    Trigger::EntityCreated
                };
                // a new entity's attributes are all new, whether or not its values go into history
                let mut attrs: Vec<String> = if existed {
                    written.iter().map(|(n, _)| n.clone()).collect()
                } else {
                    entity.attrs.keys().cloned().collect()
                };
                attrs.extend(removed.iter().cloned());
                attrs.sort();
                attrs.dedup();
                record(trigger, attrs, entity.clone(), before_copy)
            });
            Ok(Decision {
                id: id.to_string(),
                result: WriteResult {
                    created: !existed,
                    entity: Some(entity.clone()),
                    result,
                },
                wrote: true,
                effect: Effect::Put {
                    entity,
                    instances,
                    record_head: !written.is_empty(),
                },
                journal,
                map_before,
            })
        }
    }
}

/// Whether a batch item's error fails the whole batch (a storage error) or only that item.
pub(crate) fn fails_batch(e: &NgsiError) -> bool {
    e.kind == twin_model::ErrorKind::InternalError
}

/// Prefixes an error of a stream's change with the entity id.
pub(crate) fn stream_error(id: &str, e: NgsiError) -> NgsiError {
    NgsiError::new(e.kind, format!("{id}: {}", e.detail))
}

/// The error of a stream that ended without `Commit`.
pub(crate) fn stream_unfinished() -> NgsiError {
    NgsiError::internal("the stream ended without being committed")
}

// ---------------------------------------------------------------------------------------------------------------
// the `q` value index

/// A value under which an attribute is indexed for `q`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IndexValue {
    Num(f64),
    Text(String),
    /// The attribute has no scalar value (GeoProperty, JsonProperty, compound values).
    NoScalar,
    /// The value holds what the index cannot represent (too many or nested elements): every q term on it must go
    /// to the exact evaluator.
    Opaque,
}

/// Elements of an array value indexed one by one; longer arrays are marked opaque.
const MAX_INDEXED_ELEMENTS: usize = 64;

/// The values under which an attribute is indexed for `q`.
/// The longest text value the value index holds (bytes); a longer one is evaluated exactly instead.
const MAX_INDEXED_TEXT: usize = 1024;

pub(crate) fn index_values(attr: &Attribute) -> Vec<IndexValue> {
    use IndexValue as V;
    // false when the value holds something the index cannot represent
    fn scalar(v: &Value, out: &mut Vec<V>) -> bool {
        match v {
            Value::Number(n) => match n.as_f64() {
                Some(x) => out.push(V::Num(x)),
                None => return false,
            },
            // long texts (PostgreSQL's B-tree takes rows up to about 2.7 kB) and texts with NUL (which PostgreSQL's
            // text refuses) are left to the exact evaluator
            Value::String(s) if s.len() > MAX_INDEXED_TEXT || s.contains('\0') => return false,
            Value::String(s) => out.push(V::Text(s.clone())),
            Value::Bool(b) => {
                out.push(V::Num(if *b { 1.0 } else { 0.0 }));
                out.push(V::Text(b.to_string()));
            }
            Value::Object(o) => match o.get("@value") {
                Some(inner) if !inner.is_object() && !inner.is_array() => {
                    return scalar(inner, out)
                }
                _ => return false,
            },
            Value::Null | Value::Array(_) => return false,
        }
        true
    }
    let mut rows = Vec::new();
    let all = |items: &Vec<Value>, rows: &mut Vec<V>| {
        items.len() <= MAX_INDEXED_ELEMENTS && items.iter().all(|i| scalar(i, rows))
    };
    let representable = match attr.kind {
        AttrKind::GeoProperty | AttrKind::JsonProperty => return vec![V::NoScalar],
        AttrKind::LanguageProperty => match attr.value.as_object() {
            Some(m) => m.values().all(|v| match v {
                Value::Array(items) => all(items, &mut rows),
                other => scalar(other, &mut rows),
            }),
            None => false,
        },
        _ => match &attr.value {
            Value::Array(items) => all(items, &mut rows),
            // a compound value: equality and comparisons never hold on it, paths into it are not indexed
            Value::Object(o) if !o.contains_key("@value") => return vec![V::NoScalar],
            other => scalar(other, &mut rows),
        },
    };
    if !representable {
        return vec![V::Opaque];
    }
    if rows.is_empty() {
        rows.push(V::NoScalar);
    }
    rows
}

// ---------------------------------------------------------------------------------------------------------------
// query planning: SQL narrows the candidates, the model's evaluators decide

/// A scalar a prefilter compares with.
#[derive(Debug, Clone)]
pub(crate) enum Scalar {
    Num(f64),
    Text(String),
}

/// What an attribute's indexed values must satisfy (values marked opaque always pass).
#[derive(Debug, Clone)]
pub(crate) enum AttrCond {
    /// The attribute exists.
    Exists,
    /// Equal to one of these.
    In(Vec<Scalar>),
    /// A number between the two, inclusive.
    Between(f64, f64),
    /// A number compared so (`>`, `>=`, `<`, `<=`).
    Cmp(CmpOp, f64),
}

/// A necessary condition of a `q` expression on the value index.
#[derive(Debug, Clone)]
pub(crate) enum Prefilter {
    And(Vec<Prefilter>),
    Or(Vec<Prefilter>),
    Attr(String, AttrCond),
}

/// The part of `q` the value index can narrow by (None: it cannot narrow at all).
pub(crate) fn q_prefilter(q: &Query) -> Option<Prefilter> {
    match q {
        Query::And(items) => {
            let parts: Vec<Prefilter> = items.iter().filter_map(q_prefilter).collect();
            (!parts.is_empty()).then_some(Prefilter::And(parts))
        }
        // all-or-nothing: one branch that SQL cannot narrow makes the whole disjunction unnarrowable
        Query::Or(items) => items
            .iter()
            .map(q_prefilter)
            .collect::<Option<Vec<_>>>()
            .map(Prefilter::Or),
        Query::Term(t) => {
            if !t.path.sub_path.is_empty() || !t.path.compound.is_empty() || t.negated {
                return None;
            }
            let cond = |c| Some(Prefilter::Attr(t.path.attr.clone(), c));
            let num = |v: &Literal| match v {
                Literal::Number(n) => Some(*n),
                _ => None,
            };
            let scalar = |v: &Literal| match v {
                Literal::Number(n) => Some(Scalar::Num(*n)),
                Literal::Text {
                    text,
                    temporal: None,
                } => Some(Scalar::Text(text.clone())),
                Literal::Bool(b) => Some(Scalar::Text(b.to_string())),
                _ => None,
            };
            let Some((op, value)) = &t.op else {
                return cond(AttrCond::Exists);
            };
            match (op, value) {
                (CmpOp::Eq, QValue::List(items)) => cond(AttrCond::In(
                    items.iter().map(scalar).collect::<Option<_>>()?,
                )),
                (CmpOp::Eq, QValue::Range(a, b)) => match (num(a), num(b)) {
                    (Some(a), Some(b)) => cond(AttrCond::Between(a, b)),
                    _ => cond(AttrCond::Exists),
                },
                (CmpOp::Eq, QValue::One(v)) => match scalar(v) {
                    Some(s) => cond(AttrCond::In(vec![s])),
                    None => cond(AttrCond::Exists),
                },
                (CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le, QValue::One(v)) => match num(v) {
                    Some(n) => cond(AttrCond::Cmp(*op, n)),
                    None => cond(AttrCond::Exists),
                },
                // != and patterns need the attribute to exist
                _ => cond(AttrCond::Exists),
            }
        }
    }
}

/// What of an entity query SQL can narrow by; the rest is left to [`exact_match`].
pub(crate) struct PlanParts {
    pub ids: Option<Vec<String>>,
    /// Entities of any of these types.
    pub types: Option<Vec<String>>,
    /// Entities with one of these attributes.
    pub attrs: Option<Vec<String>>,
    pub q: Option<Prefilter>,
    /// Entities with a box of this GeoProperty that meets this window.
    pub geo: Option<([f64; 4], String)>,
    /// True when SQL alone decides (no exact evaluation needed): counting can be done in SQL.
    pub exact: bool,
}

pub(crate) fn plan_parts(q: &EntityQuery) -> PlanParts {
    let types = q
        .types
        .as_ref()
        .and_then(|t| t.as_any_of())
        .map(|l| l.iter().map(|s| s.to_string()).collect());
    let geo = q.geo.as_ref().and_then(|g| {
        if matches!(g.georel, GeoRel::Disjoint) {
            return None;
        }
        g.search_window().map(|w| (w, g.geoproperty.clone()))
    });
    PlanParts {
        ids: q.ids.clone(),
        exact: q.id_pattern.is_none()
            && (q.types.is_none() || types.is_some())
            && q.q.is_none()
            && q.scope_q.is_none()
            && q.geo.is_none(),
        types,
        attrs: q.attrs.clone(),
        q: q.q.as_ref().and_then(q_prefilter),
        geo,
    }
}

pub(crate) fn exact_match(q: &EntityQuery, e: &Entity) -> bool {
    dataset_visible(q.datasets.as_deref(), e.dataset.as_deref())
        && q.id_pattern.as_ref().is_none_or(|p| p.is_match(&e.id))
        && q.types.as_ref().is_none_or(|t| t.matches(&e.types))
        && q.q.as_ref().is_none_or(|qq| qq.matches(e))
        && q.scope_q.as_ref().is_none_or(|s| s.matches(&e.scopes))
        && q.geo.as_ref().is_none_or(|g| g.matches(e))
}

/// Whether an entity of dataset `ds` (None: the default dataset) is among `datasets` (None: all are).
pub(crate) fn dataset_visible(datasets: Option<&[String]>, ds: Option<&str>) -> bool {
    datasets.is_none_or(|list| {
        let ds = ds.unwrap_or(twin_model::dataset::DEFAULT_DATASET);
        list.iter().any(|d| d == ds)
    })
}

/// How a dataset filter is checked in SQL: the dataset column is one of these ids, or (when the default dataset is
/// among them) NULL.
pub(crate) struct DatasetFilter {
    pub ids: Vec<String>,
    pub or_null: bool,
}

impl DatasetFilter {
    pub(crate) fn new(datasets: &[String]) -> DatasetFilter {
        let mut ids = datasets.to_vec();
        ids.sort();
        ids.dedup();
        DatasetFilter {
            or_null: ids
                .iter()
                .any(|d| d == twin_model::dataset::DEFAULT_DATASET),
            ids,
        }
    }
}

/// The answer to an entity query that no dataset is visible to: nothing (and a count of 0 when asked).
pub(crate) fn nothing_visible(q: &EntityQuery) -> Option<QueryPage> {
    q.datasets
        .as_ref()
        .is_some_and(|d| d.is_empty())
        .then(|| QueryPage {
            entities: Vec::new(),
            count: q.count.then_some(0),
        })
}

/// Pages through candidates in id order, keeping those the exact evaluator accepts.
pub(crate) struct Pager<'a> {
    q: &'a EntityQuery,
    matched: usize,
    page: QueryPage,
}

impl<'a> Pager<'a> {
    pub(crate) fn new(q: &'a EntityQuery) -> Self {
        Pager {
            q,
            matched: 0,
            page: QueryPage::default(),
        }
    }

    /// Offers the next candidate; false when no further candidate is needed.
    pub(crate) fn offer(&mut self, e: Entity) -> bool {
        if !exact_match(self.q, &e) {
            return true;
        }
        if self.matched >= self.q.offset && self.page.entities.len() < self.q.limit {
            self.page.entities.push(e);
        }
        self.matched += 1;
        self.q.count || self.page.entities.len() < self.q.limit
    }

    pub(crate) fn finish(mut self) -> QueryPage {
        if self.q.count {
            self.page.count = Some(self.matched as u64);
        }
        self.page
    }
}

/// Kinds of attributes seen per type, from `(type, attribute, kind)` rows, into the counts per type.
pub(crate) fn type_infos(
    counts: Vec<(String, i64)>,
    kinds: Vec<(String, String, String)>,
) -> Vec<TypeInfo> {
    let mut out: BTreeMap<String, TypeInfo> = counts
        .into_iter()
        .map(|(t, n)| {
            let info = TypeInfo {
                type_name: t.clone(),
                entity_count: n as u64,
                attributes: BTreeMap::new(),
            };
            (t, info)
        })
        .collect();
    for (t, a, k) in kinds {
        if let Some(info) = out.get_mut(&t) {
            let kinds = info.attributes.entry(a).or_default();
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    out.into_values().collect()
}

/// Attributes with their counts, from `(attribute, kind, type)` rows into the counts per attribute.
pub(crate) fn attribute_infos(
    counts: Vec<(String, i64)>,
    kinds: Vec<(String, String, String)>,
) -> Vec<AttributeInfo> {
    let mut out: BTreeMap<String, AttributeInfo> = counts
        .into_iter()
        .map(|(a, n)| {
            let info = AttributeInfo {
                name: a.clone(),
                attribute_count: n as u64,
                kinds: vec![],
                type_names: vec![],
            };
            (a, info)
        })
        .collect();
    for (a, k, t) in kinds {
        if let Some(info) = out.get_mut(&a) {
            if !info.kinds.contains(&k) {
                info.kinds.push(k);
            }
            if !info.type_names.contains(&t) {
                info.type_names.push(t);
            }
        }
    }
    out.into_values().collect()
}

// ---------------------------------------------------------------------------------------------------------------
// temporal instances

pub(crate) const INSTANCE_PREFIX: &str = "urn:ngsi-ld:attribute:instance:";

/// The instance id of a temporal row.
pub(crate) fn instance_id(iid: i64) -> String {
    format!("{INSTANCE_PREFIX}{iid}")
}

/// The temporal row of an instance id (None when it is not one of ours).
pub(crate) fn instance_rowid(instance: &str) -> Option<i64> {
    instance.strip_prefix(INSTANCE_PREFIX)?.parse().ok()
}

/// An attribute instance from its temporal row.
pub(crate) fn instance_from_row(iid: i64, doc: &str) -> Result<Attribute> {
    let mut a: Attribute = from_json(doc)?;
    a.instance_id = Some(instance_id(iid));
    Ok(a)
}

pub(crate) fn numeric_of(a: &Attribute) -> Option<f64> {
    match &a.value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Object(o) => o.get("@value").and_then(Value::as_f64),
        _ => None,
    }
}

/// The columns of a temporal row.
pub(crate) struct InstanceRow {
    pub dataset_id: Option<String>,
    /// observedAt (or the system time) in ms.
    pub ts: i64,
    /// modifiedAt (or createdAt, or now) in ms.
    pub sys: i64,
    pub num: Option<f64>,
    pub doc: String,
}

pub(crate) fn instance_row(a: &Attribute) -> Result<InstanceRow> {
    let mut inst = a.clone();
    inst.instance_id = None;
    let sys = inst
        .modified_at
        .or(inst.created_at)
        .map(ms)
        .unwrap_or_else(|| ms(Utc::now()));
    Ok(InstanceRow {
        ts: inst.observed_at.map(ms).unwrap_or(sys),
        sys,
        num: numeric_of(&inst),
        doc: to_json(&inst)?,
        dataset_id: inst.dataset_id,
    })
}

/// The new value of a modified instance (`old` as stored): it keeps the creation time, datasetId and observedAt
/// unless given.
pub(crate) fn modified_instance(old: &str, value: Attribute) -> Result<InstanceRow> {
    let old: Attribute = from_json(old)?;
    let mut new = value;
    new.instance_id = None;
    new.created_at = old.created_at;
    new.dataset_id = new.dataset_id.or(old.dataset_id);
    new.observed_at = new.observed_at.or(old.observed_at);
    let sys = new.modified_at.map(ms).unwrap_or_else(|| ms(Utc::now()));
    Ok(InstanceRow {
        ts: new.observed_at.map(ms).unwrap_or(sys),
        sys,
        num: numeric_of(&new),
        doc: to_json(&new)?,
        dataset_id: new.dataset_id.clone(),
    })
}

/// The types and scopes of a temporal entity after an append (`existing`: as stored, JSON).
pub(crate) fn appended_head(
    id: &str,
    existing: Option<(String, String)>,
    types: Option<Vec<String>>,
    scopes: Vec<String>,
) -> Result<(Vec<String>, Vec<String>)> {
    match (existing, types) {
        (None, None) => Err(NgsiError::bad_data(format!(
            "temporal entity {id} does not exist and no type was given"
        ))),
        (None, Some(t)) => Ok((t, scopes)),
        (Some((old_t, old_s)), t) => {
            let mut all: Vec<String> = from_json(&old_t)?;
            for x in t.unwrap_or_default() {
                if !all.contains(&x) {
                    all.push(x);
                }
            }
            let s = if scopes.is_empty() {
                from_json(&old_s)?
            } else {
                scopes
            };
            Ok((all, s))
        }
    }
}

/// A temporal entity's id, types and scopes.
pub(crate) type TemporalHead = (String, Vec<String>, Vec<String>);

/// A temporal entity's head from its row (types and scopes as JSON); None when the query's filters on ids, types
/// and scopes exclude it.
pub(crate) fn temporal_head(
    eq: &EntityQuery,
    id: String,
    types: &str,
    scopes: &str,
) -> Result<Option<TemporalHead>> {
    let types: Vec<String> = from_json(types)?;
    let scopes: Vec<String> = from_json(scopes)?;
    let keep = eq.types.as_ref().is_none_or(|t| t.matches(&types))
        && eq.id_pattern.as_ref().is_none_or(|p| p.is_match(&id))
        && eq.scope_q.as_ref().is_none_or(|s| s.matches(&scopes));
    Ok(keep.then_some((id, types, scopes)))
}

/// Whether temporal candidates must also match the current state (q and geo act on it).
pub(crate) fn needs_current(eq: &EntityQuery) -> bool {
    eq.q.is_some() || eq.geo.is_some()
}

/// Whether the current state of a temporal candidate (None: gone) matches q and geo.
pub(crate) fn current_matches(eq: &EntityQuery, e: Option<&Entity>) -> bool {
    e.is_some_and(|e| {
        eq.q.as_ref().is_none_or(|qq| qq.matches(e)) && eq.geo.as_ref().is_none_or(|g| g.matches(e))
    })
}

/// The time column temporal queries filter and order by.
pub(crate) fn time_column(q: &TemporalQuery) -> &'static str {
    match q.timeproperty {
        TimeProperty::ObservedAt => "ts",
        _ => "sys_ms",
    }
}

/// The time window `[lo, hi)` of a temporal query, in ms.
pub(crate) fn time_window(q: &TemporalQuery) -> (i64, i64) {
    match q.timerel {
        None => (i64::MIN, i64::MAX),
        Some(TimeRel::Before(t)) => (i64::MIN, ms(t)),
        Some(TimeRel::After(t)) => (ms(t), i64::MAX),
        Some(TimeRel::Between(x, y)) => (ms(x), ms(y)),
    }
}

/// The candidates of one page of a temporal query: offset and limit (0 = no limit) over entities.
pub(crate) fn entity_page(q: &TemporalQuery) -> (usize, usize) {
    let limit = if q.entities.limit == 0 {
        usize::MAX
    } else {
        q.entities.limit
    };
    (q.entities.offset, limit)
}

/// Instances one attribute returns: the newest N with lastN, else the page size; newest first with lastN.
pub(crate) fn per_attr(q: &TemporalQuery) -> (usize, bool) {
    (
        q.last_n.unwrap_or(q.instance_limit.max(1)),
        q.last_n.is_some(),
    )
}

/// Whether a temporal entity without instances in the answer is still listed.
pub(crate) fn keep_temporal(q: &TemporalQuery, attrs: &BTreeMap<String, Vec<Attribute>>) -> bool {
    !(attrs.is_empty() && (q.timerel.is_some() || q.attrs.is_some()) && q.entities.ids.is_none())
}

/// One page of a temporal query, assembled as a backend fetches the instances of each candidate: `next` names the
/// next entity (None once the page is full), `add` hands over one attribute's instances (in the query's order).
pub(crate) struct TemporalPage<'a> {
    q: &'a TemporalQuery,
    heads: std::iter::Skip<std::vec::IntoIter<TemporalHead>>,
    limit: usize,
    newest_first: bool,
    current: Option<TemporalEntity>,
    out: Vec<TemporalEntity>,
}

impl<'a> TemporalPage<'a> {
    pub(crate) fn new(q: &'a TemporalQuery, heads: Vec<TemporalHead>) -> Self {
        let (offset, limit) = entity_page(q);
        TemporalPage {
            q,
            heads: heads.into_iter().skip(offset),
            limit,
            newest_first: per_attr(q).1,
            current: None,
            out: Vec::new(),
        }
    }

    /// Closes the entity before and names the next one to fetch.
    pub(crate) fn next(&mut self) -> Option<String> {
        self.close();
        if self.out.len() >= self.limit {
            return None;
        }
        let (id, types, scopes) = self.heads.next()?;
        self.current = Some(TemporalEntity {
            id: id.clone(),
            types,
            scopes,
            attrs: BTreeMap::new(),
        });
        Some(id)
    }

    pub(crate) fn add(&mut self, attr: String, mut instances: Vec<Attribute>) {
        if self.newest_first {
            instances.reverse();
        }
        if let (Some(e), false) = (&mut self.current, instances.is_empty()) {
            e.attrs.insert(attr, instances);
        }
    }

    fn close(&mut self) {
        if let Some(e) = self.current.take() {
            if keep_temporal(self.q, &e.attrs) {
                self.out.push(e);
            }
        }
    }

    pub(crate) fn finish(mut self) -> Vec<TemporalEntity> {
        self.close();
        self.out
    }
}

/// What `temporal_delete` deletes.
pub(crate) enum HistoryCut {
    /// The whole history of the entity, and the temporal entity itself.
    Entity,
    /// One instance of an attribute.
    Instance(String, i64),
    /// An attribute's instances, of one datasetId when given.
    Attribute(String, Option<String>),
    /// Nothing (an instance id that is not one of ours).
    Nothing,
}

pub(crate) fn history_cut(
    attr: Option<&str>,
    dataset_id: Option<&str>,
    instance_id: Option<&str>,
) -> HistoryCut {
    match (attr, instance_id) {
        (None, _) => HistoryCut::Entity,
        (Some(a), Some(i)) => match instance_rowid(i) {
            Some(iid) => HistoryCut::Instance(a.to_string(), iid),
            None => HistoryCut::Nothing,
        },
        (Some(a), None) => HistoryCut::Attribute(a.to_string(), dataset_id.map(String::from)),
    }
}

pub(crate) fn no_temporal_entity(id: &str) -> NgsiError {
    NgsiError::not_found(format!("temporal entity {id} does not exist"))
}

/// The answer of a `temporal_delete` that deleted `n` rows.
pub(crate) fn history_deleted(id: &str, n: u64) -> Result<()> {
    if n == 0 {
        return Err(NgsiError::not_found(format!(
            "nothing to delete in the history of {id}"
        )));
    }
    Ok(())
}

pub(crate) fn no_instance(id: &str, attr: &str, instance: &str) -> NgsiError {
    NgsiError::not_found(format!(
        "instance {instance} of {attr} of {id} does not exist"
    ))
}

pub(crate) fn context_url_taken(url: &str) -> NgsiError {
    NgsiError::exists(format!("a context with URL {url} is already registered"))
}

// ---------------------------------------------------------------------------------------------------------------
// temporal aggregation

#[derive(Default, Clone)]
struct Acc {
    count: u64,
    n: u64,
    sum: f64,
    sumsq: f64,
    min: Option<f64>,
    max: Option<f64>,
    distinct: HashSet<String>,
}

impl Acc {
    fn value(&self, m: AggrMethod) -> Value {
        let num = |x: f64| {
            serde_json::Number::from_f64(x)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        };
        match m {
            AggrMethod::TotalCount => Value::from(self.count),
            AggrMethod::DistinctCount => Value::from(self.distinct.len() as u64),
            AggrMethod::Sum => num(self.sum),
            AggrMethod::Sumsq => num(self.sumsq),
            AggrMethod::Avg if self.n > 0 => num(self.sum / self.n as f64),
            AggrMethod::Min => self.min.map(num).unwrap_or(Value::Null),
            AggrMethod::Max => self.max.map(num).unwrap_or(Value::Null),
            AggrMethod::Stddev if self.n > 1 => {
                // sample standard deviation, as PostgreSQL's stddev (and so Mintaka) computes it
                let n = self.n as f64;
                let var = ((self.sumsq - self.sum * self.sum / n) / (n - 1.0)).max(0.0);
                num(var.sqrt())
            }
            AggrMethod::Stddev if self.n == 1 => num(0.0),
            _ => Value::Null,
        }
    }
}

/// The aggregation of one attribute's instances into periods: fed instances in time order, it answers per method.
pub(crate) struct Buckets {
    bounds: Vec<i64>,
    accs: BTreeMap<usize, Acc>,
    bucket: usize,
    pub want_distinct: bool,
}

impl Buckets {
    /// Periods over `[lo, hi)` for instances from `first` to `last` (ms): the first period starts at the query's
    /// start, or at the first instance.
    pub(crate) fn new(a: &Aggregation, (lo, hi): (i64, i64), first: i64, last: i64) -> Buckets {
        let start = if lo == i64::MIN { first } else { lo };
        let overall_end = if hi == i64::MAX { last + 1 } else { hi };
        let bounds = match &a.period {
            Some(p) if !p.is_zero() => {
                let mut b = vec![start];
                let mut t = from_ms(start);
                while *b.last().unwrap_or(&i64::MAX) < overall_end && b.len() < 1_000_000 {
                    t = p.add_to(t);
                    let next = ms(t);
                    if next <= *b.last().unwrap_or(&i64::MIN) {
                        break;
                    }
                    b.push(next);
                }
                b
            }
            _ => vec![start, overall_end],
        };
        Buckets {
            bounds,
            accs: BTreeMap::new(),
            bucket: 0,
            want_distinct: a.methods.contains(&AggrMethod::DistinctCount),
        }
    }

    /// Adds an instance at `t` with its number (None when not numeric) and, for distinct counts of non-numbers, its
    /// value as stored (the instance's JSON); false once past the last period.
    pub(crate) fn add(&mut self, t: i64, num: Option<f64>, doc: Option<&str>) -> bool {
        while self.bucket + 1 < self.bounds.len() && t >= self.bounds[self.bucket + 1] {
            self.bucket += 1;
        }
        if self.bucket + 1 >= self.bounds.len() {
            return false;
        }
        let acc = self.accs.entry(self.bucket).or_default();
        acc.count += 1;
        if let Some(x) = num {
            acc.n += 1;
            acc.sum += x;
            acc.sumsq += x * x;
            acc.min = Some(acc.min.map_or(x, |m| m.min(x)));
            acc.max = Some(acc.max.map_or(x, |m| m.max(x)));
        }
        if self.want_distinct {
            let key = match num {
                Some(x) => format!("n{x}"),
                None => {
                    let v = doc
                        .and_then(|d| serde_json::from_str::<Value>(d).ok())
                        .and_then(|mut d| d.get_mut("value").map(Value::take))
                        .unwrap_or(Value::Null);
                    format!("v{v}")
                }
            };
            acc.distinct.insert(key);
        }
        true
    }

    /// Adds a stored bucket of downsampled values (`period` names its level): it must lie inside one period of
    /// this aggregation, else the aggregation cannot be answered (a clear error says why).
    pub(crate) fn add_stored(&mut self, period: &str, b: &crate::retention::Bucket) -> Result<()> {
        let i = self.bounds.partition_point(|&x| x <= b.start);
        if i == 0 || i >= self.bounds.len() || b.end > self.bounds[i] {
            return Err(crate::retention::not_composable(period, b.start, b.end));
        }
        let acc = self.accs.entry(i - 1).or_default();
        let n = b.agg.count.max(0) as u64;
        acc.count += n;
        acc.n += n;
        acc.sum += b.agg.sum;
        acc.sumsq += b.agg.sumsq;
        acc.min = Some(acc.min.map_or(b.agg.min, |m| m.min(b.agg.min)));
        acc.max = Some(acc.max.map_or(b.agg.max, |m| m.max(b.agg.max)));
        Ok(())
    }

    pub(crate) fn finish(
        self,
        methods: &[AggrMethod],
    ) -> BTreeMap<AggrMethod, Vec<AggregatedValue>> {
        methods
            .iter()
            .map(|&m| {
                let periods = self
                    .accs
                    .iter()
                    .map(|(b, acc)| AggregatedValue {
                        value: acc.value(m),
                        start: from_ms(self.bounds[*b]),
                        end: from_ms(self.bounds[*b + 1]),
                    })
                    .collect();
                (m, periods)
            })
            .collect()
    }
}

/// The answer of a temporal aggregation, assembled as a backend reads each candidate: `next` names the next entity
/// (None after the page), `buckets` starts an attribute from the span of its instances in the window, `add` keeps it.
pub(crate) struct AggregatePage<'a> {
    a: &'a Aggregation,
    window: (i64, i64),
    heads: std::iter::Take<std::iter::Skip<std::vec::IntoIter<TemporalHead>>>,
    current: Option<AggregatedEntity>,
    out: Vec<AggregatedEntity>,
}

impl<'a> AggregatePage<'a> {
    pub(crate) fn new(q: &TemporalQuery, a: &'a Aggregation, heads: Vec<TemporalHead>) -> Self {
        let (offset, limit) = entity_page(q);
        AggregatePage {
            a,
            window: time_window(q),
            heads: heads.into_iter().skip(offset).take(limit),
            current: None,
            out: Vec::new(),
        }
    }

    pub(crate) fn next(&mut self) -> Option<String> {
        self.out.extend(self.current.take());
        let (id, types, _) = self.heads.next()?;
        self.current = Some(AggregatedEntity {
            id: id.clone(),
            types,
            attrs: BTreeMap::new(),
        });
        Some(id)
    }

    /// The periods of an attribute whose instances in the window go from `first` to `last` (None: it has none).
    pub(crate) fn buckets(&self, (first, last): (Option<i64>, Option<i64>)) -> Option<Buckets> {
        Some(Buckets::new(self.a, self.window, first?, last?))
    }

    /// The periods of an attribute from the span of its raw instances in the window and the stored buckets that
    /// overlap the window (downsampled values, `(level, bucket)`), with those buckets added.
    pub(crate) fn buckets_with(
        &self,
        (first, last): (Option<i64>, Option<i64>),
        stored: &[(String, crate::retention::Bucket)],
    ) -> Result<Option<Buckets>> {
        let first = stored.iter().map(|(_, b)| b.start).chain(first).min();
        let last = stored.iter().map(|(_, b)| b.end - 1).chain(last).max();
        let Some(mut b) = self.buckets((first, last)) else {
            return Ok(None);
        };
        for (period, bucket) in stored {
            b.add_stored(period, bucket)?;
        }
        Ok(Some(b))
    }

    pub(crate) fn add(&mut self, attr: String, b: Buckets) {
        if let Some(e) = &mut self.current {
            e.attrs.insert(attr, b.finish(&self.a.methods));
        }
    }

    pub(crate) fn finish(mut self) -> Vec<AggregatedEntity> {
        self.out.extend(self.current.take());
        self.out
    }
}

// ---------------------------------------------------------------------------------------------------------------
// subscriptions, scenarios, runs

/// Records a delivery attempt's outcome in a subscription's status.
pub(crate) fn record_delivery(st: &mut DeliveryStatus, at: DateTime<Utc>, error: &Option<String>) {
    st.last_notification = Some(at);
    match error {
        None => {
            st.times_sent += 1;
            st.last_success = Some(at);
        }
        Some(e) => {
            st.times_failed += 1;
            st.last_failure = Some(at);
            st.last_error = Some(e.clone());
        }
    }
}

/// The error of a create of something that exists, or a replace of something that does not.
pub(crate) fn check_create(what: &str, id: &str, create: bool, exists: bool) -> Result<()> {
    match (create, exists) {
        (true, true) => Err(NgsiError::exists(format!("{what} {id} already exists"))),
        (false, false) => Err(NgsiError::not_found(format!("{what} {id} does not exist"))),
        _ => Ok(()),
    }
}

/// A run's progress must be a fraction.
pub(crate) fn check_progress(run: &StoredRun) -> Result<()> {
    if run.progress.is_finite() && (0.0..=1.0).contains(&run.progress) {
        Ok(())
    } else {
        Err(NgsiError::bad_data(format!(
            "run {}: progress must be between 0 and 1, not {}",
            run.id, run.progress
        )))
    }
}

/// Whether a run may be written: a create needs its scenario (`scenario_exists`), an update the same scenario and
/// a status that is not final yet (`current`: scenario and status as stored).
pub(crate) fn check_run_write(
    run: &StoredRun,
    create: bool,
    current: Option<(String, String)>,
    scenario_exists: impl FnOnce() -> Result<bool>,
) -> Result<()> {
    check_create("run", &run.id, create, current.is_some())?;
    match current {
        None => {
            if !scenario_exists()? {
                return Err(NgsiError::not_found(format!(
                    "scenario {} does not exist",
                    run.scenario_id
                )));
            }
        }
        Some((scenario, status)) => {
            if scenario != run.scenario_id {
                return Err(NgsiError::bad_data(format!(
                    "run {} belongs to scenario {scenario}, not {}",
                    run.id, run.scenario_id
                )));
            }
            if RunStatus::parse(&status).is_some_and(RunStatus::is_final) {
                return Err(NgsiError::new(
                    twin_model::ErrorKind::Conflict,
                    format!("run {} is already {status}", run.id),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) const RUN_COLUMNS: &str =
    "id, scenario, status, progress, message, created_ms, started_ms, finished_ms, request, summary";

/// A run as stored, in the order of [`RUN_COLUMNS`].
pub(crate) struct RunRow {
    pub id: String,
    pub scenario: String,
    pub status: String,
    pub progress: f64,
    pub message: Option<String>,
    pub created: i64,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    pub request: String,
    pub summary: String,
}

impl RunRow {
    pub(crate) fn into_run(self) -> Result<StoredRun> {
        Ok(StoredRun {
            status: RunStatus::parse(&self.status).ok_or_else(|| {
                db_err(format!(
                    "run {} has an unknown status {}",
                    self.id, self.status
                ))
            })?,
            id: self.id,
            scenario_id: self.scenario,
            progress: self.progress,
            message: self.message,
            created_at: from_ms(self.created),
            started_at: self.started.map(from_ms),
            finished_at: self.finished.map(from_ms),
            request: from_json(&self.request)?,
            summary: from_json(&self.summary)?,
        })
    }
}

/// A scenario from its row (id, document, created and modified ms).
pub(crate) fn scenario_from_row(
    (id, doc, created, modified, owner): (String, String, i64, i64, Option<String>),
) -> Result<StoredScenario> {
    Ok(StoredScenario {
        id,
        document: from_json(&doc)?,
        owner,
        created_at: from_ms(created),
        modified_at: from_ms(modified),
    })
}

/// A change record from its journal row.
pub(crate) fn change_from_row(seq: i64, doc: &str) -> Result<ChangeRecord> {
    let mut rec: ChangeRecord = from_json(doc)?;
    rec.seq = seq;
    Ok(rec)
}

/// A pending delivery from its outbox row.
pub(crate) fn delivery_from_row(
    id: i64,
    subscription_id: String,
    payload: &str,
    attempts: i64,
    next_ms: i64,
) -> Result<PendingDelivery> {
    Ok(PendingDelivery {
        id,
        subscription_id,
        payload: from_json(payload)?,
        attempts: attempts as u32,
        next_attempt_at: from_ms(next_ms),
    })
}

/// Checks that an entity's type index has one row per type.
pub(crate) fn check_type_rows(e: &Entity, rows: i64) -> Result<()> {
    if rows as usize != e.types.len() {
        return Err(db_err(format!(
            "entity {} has {} types but {rows} type index rows",
            e.id,
            e.types.len()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// runs as jobs

/// A lease as milliseconds (at least 1).
pub(crate) fn lease_ms(lease: std::time::Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// The moment a lease taken now for `lease` runs out, in milliseconds since the epoch.
pub(crate) fn lease_until(lease: std::time::Duration) -> i64 {
    ms(Utc::now()).saturating_add(lease_ms(lease))
}

/// The message a cancelled run ends with.
pub(crate) const CANCELLED: &str = "cancelled";

/// What becomes of a running run whose lease expired: (status, message). `attempts`: how many times it was
/// claimed; `node`: the node that held it last.
pub(crate) fn expired_outcome(
    attempts: i64,
    max_attempts: u32,
    cancel_requested: bool,
    node: Option<&str>,
) -> (RunStatus, String) {
    let node = node.unwrap_or("a node of an earlier build");
    if cancel_requested {
        (
            RunStatus::Cancelled,
            format!("{CANCELLED} (its node {node} stopped before it saw the request)"),
        )
    } else if attempts >= i64::from(max_attempts.max(1)) {
        (
            RunStatus::Failed,
            format!(
                "failed: the run was started {attempts} time(s) and each time the node computing it stopped before it \
                 finished (the last, {node}, stopped renewing its lease); it is not retried again"
            ),
        )
    } else {
        (
            RunStatus::Queued,
            format!(
                "requeued: node {node} stopped renewing its lease during attempt {attempts} of {}",
                max_attempts.max(1)
            ),
        )
    }
}

/// A run's status must be final to finish it.
pub(crate) fn check_finish(run: &StoredRun) -> Result<()> {
    check_progress(run)?;
    if !run.status.is_final() {
        return Err(NgsiError::bad_data(format!(
            "run {}: a run finishes as done, failed or cancelled, not {}",
            run.id,
            run.status.as_str()
        )));
    }
    Ok(())
}

/// Whether `node` may finish a run stored as (scenario, status, node).
pub(crate) fn check_holder(
    run: &StoredRun,
    node: &str,
    current: Option<(String, String, Option<String>)>,
) -> Result<()> {
    let Some((scenario, status, holder)) = current else {
        return Err(NgsiError::not_found(format!(
            "run {} does not exist (its scenario was deleted?)",
            run.id
        )));
    };
    if scenario != run.scenario_id {
        return Err(NgsiError::bad_data(format!(
            "run {} belongs to scenario {scenario}, not {}",
            run.id, run.scenario_id
        )));
    }
    if status != RunStatus::Running.as_str() || holder.as_deref() != Some(node) {
        return Err(NgsiError::new(
            twin_model::ErrorKind::Conflict,
            format!(
                "run {} is no longer computed by node {node} (it is {status}{})",
                run.id,
                holder
                    .filter(|h| h != node)
                    .map(|h| format!(", node {h}"))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// A progress to record for run `id`: a fraction from 0 to 1.
pub(crate) fn check_fraction(id: &str, progress: f64) -> Result<f64> {
    if progress.is_finite() && (0.0..=1.0).contains(&progress) {
        Ok(progress)
    } else {
        Err(NgsiError::bad_data(format!(
            "run {id}: progress must be between 0 and 1, not {progress}"
        )))
    }
}
