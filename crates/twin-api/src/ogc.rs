//! OGC API – Features Part 1 (Core, GeoJSON, OAS 3.0) and Part 2 (CRS84, Web Mercator) under `/ogc`: one collection per
//! entity type, one feature per entity (geometry = `location`, properties = keyValues); errors are `{code, description}`.

mod openapi;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use twin_model::context::Context;
use twin_model::entity::iri;
use twin_model::geoquery::{geojson_bbox, GeoQuery};
use twin_model::ngsi::{format_datetime, render_entity, Format, RenderOptions};
use twin_model::query::{
    parse_temporal, AttrPath, CmpOp, Literal, QValue, Query, QueryTerm, Temporal, TypeExpr,
};
use twin_model::{Entity, NgsiError};
use twin_store::{EntityQuery, TypeInfo};

use crate::error::{status_of, ApiError};
use crate::guard::Guard;
use crate::params::Params;
use crate::SharedState;

/// Page size of `/items` when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 10;
/// Largest page of `/items`; a larger `limit` is served as this (OGC 17-069r4 permission 5).
pub const MAX_LIMIT: usize = 10_000;
/// The storage and default coordinate reference system: WGS 84 longitude/latitude.
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
/// Web Mercator, offered for output (`crs`) and for `bbox-crs` (OGC API – Features Part 2).
pub const EPSG3857: &str = "http://www.opengis.net/def/crs/EPSG/0/3857";
/// The coordinate reference systems of every collection.
pub const CRS_LIST: &[&str] = &[CRS84, EPSG3857];
/// The conformance classes implemented.
pub const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
];
/// The standard parameters of `/items` (every other accepted parameter is a property filter).
pub const ITEMS_PARAMS: &[&str] = &[
    "f", "bbox", "bbox-crs", "crs", "limit", "offset", "datetime",
];

const JSON: &str = "application/json";
const GEOJSON: &str = "application/geo+json";
const OPENAPI: &str = "application/vnd.oai.openapi+json;version=3.0";
const TRS: &str = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian";

/// How many entities of a type the extent computation reads at most, in pages of `EXTENT_PAGE`.
const EXTENT_SCAN_MAX: usize = 100_000;
const EXTENT_PAGE: usize = 1000;
/// How long a computed extent is reused while the type's entity count is unchanged.
const EXTENT_TTL: Duration = Duration::from_secs(10);

/// Characters escaped in path segments of links (ids such as `urn:ngsi-ld:Building:1` keep their colons).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b':')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(landing))
        .route("/conformance", get(conformance))
        .route("/api", get(api))
        .route("/collections", get(collections))
        .route("/collections/{id}", get(collection))
        .route("/collections/{id}/items", get(items))
        .route("/collections/{id}/items/{fid}", get(item))
        .fallback(unknown_path)
}

// ---------------------------------------------------------------------------------------------------------------
// errors

/// An OGC API exception: HTTP status, a code and a human description.
#[derive(Debug)]
pub struct OgcError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
}

pub type OgcResult<T> = Result<T, OgcError>;

impl OgcError {
    pub fn bad(d: impl Into<String>) -> OgcError {
        OgcError {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidParameterValue",
            description: d.into(),
        }
    }
    pub fn not_found(d: impl Into<String>) -> OgcError {
        OgcError {
            status: StatusCode::NOT_FOUND,
            code: "NotFound",
            description: d.into(),
        }
    }
}

impl From<ApiError> for OgcError {
    fn from(e: ApiError) -> Self {
        let status = status_of(e.0.kind);
        OgcError {
            status,
            code: match status {
                StatusCode::BAD_REQUEST => "InvalidParameterValue",
                StatusCode::NOT_FOUND => "NotFound",
                _ => e.0.kind.name(),
            },
            description: e.0.detail,
        }
    }
}

impl From<NgsiError> for OgcError {
    fn from(e: NgsiError) -> Self {
        ApiError(e).into()
    }
}

impl From<twin_model::query::QueryError> for OgcError {
    fn from(e: twin_model::query::QueryError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for OgcError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, detail = %self.description, "OGC API request failed");
        }
        let body = json!({"code": self.code, "description": self.description}).to_string();
        (self.status, [(header::CONTENT_TYPE, JSON)], body).into_response()
    }
}

async fn unknown_path() -> OgcError {
    OgcError::not_found(
        "no such resource in the OGC API; see /ogc for the landing page and /ogc/api for the API definition",
    )
}

// ---------------------------------------------------------------------------------------------------------------
// helpers

fn respond(body: Value, content_type: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response()
}

fn public(state: &SharedState) -> String {
    state.config.public_url.trim_end_matches('/').to_string()
}

fn base(state: &SharedState) -> String {
    format!("{}/ogc", public(state))
}

fn link(href: impl Into<String>, rel: &str, ty: &str, title: &str) -> Value {
    json!({"href": href.into(), "rel": rel, "type": ty, "title": title})
}

fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Parses the parameters of an endpoint and checks `f` (JSON is the only encoding served).
fn params(raw: Option<&str>, allowed: &[&str]) -> OgcResult<Params> {
    let p = Params::parse(raw, allowed)?;
    match p.get("f") {
        None | Some("json" | "geojson" | "application/json" | "application/geo+json") => Ok(p),
        Some(other) => Err(OgcError::bad(format!(
            "f={other} is not supported; this API serves JSON only (f=json)"
        ))),
    }
}

/// The id of the collection of an (expanded) entity type: its compacted name under the core context when that is
/// URL-safe (`Building`), else a slug of its last segment and a hash of the full IRI (`Foo-1a2b3c4d`).
pub fn collection_id(ctx: &Context, type_name: &str) -> String {
    let c = ctx.compact(type_name);
    let safe = |ch: char| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.');
    if !c.is_empty() && c.chars().all(safe) {
        return c;
    }
    let tail = c
        .rsplit(['/', '#', ':'])
        .find(|s| !s.is_empty())
        .unwrap_or("type");
    let slug: String = tail
        .chars()
        .map(|ch| if safe(ch) { ch } else { '_' })
        .collect();
    let h = Sha256::digest(type_name.as_bytes());
    let hex: String = h.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{slug}-{hex}")
}

/// The entity type behind a collection id.
async fn find_collection(g: &Guard, id: &str) -> OgcResult<TypeInfo> {
    let ctx = Context::core();
    g.types()
        .await?
        .into_iter()
        .find(|t| collection_id(&ctx, &t.type_name) == id)
        .ok_or_else(|| OgcError::not_found(format!("collection {id} does not exist")))
}

// ---------------------------------------------------------------------------------------------------------------
// landing page, conformance, API definition

async fn landing(State(state): State<SharedState>, RawQuery(raw): RawQuery) -> OgcResult<Response> {
    params(raw.as_deref(), &["f"])?;
    let b = base(&state);
    let attribution = crate::attribution(state.store.as_ref()).await?;
    let body = json!({
        "title": "urbantwin",
        "attribution": attribution,
        "description": "The city digital twin's entities as OGC API – Features: one collection per NGSI-LD entity type, \
                        one feature per entity (geometry: its location; properties: its attribute values).",
        "links": [
            link(&b, "self", JSON, "This document"),
            link(format!("{}/ngsi-ld/v1/types", public(&state)), "alternate", "application/ld+json",
                 "The same data through the NGSI-LD API"),
            link(format!("{b}/api"), "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            link(format!("{}/blob/main/docs/api.md", env!("CARGO_PKG_REPOSITORY")), "service-doc", "text/html",
                 "The API documentation"),
            link(format!("{b}/conformance"), "conformance", JSON, "Conformance classes implemented"),
            link(format!("{b}/conformance"), "http://www.opengis.net/def/rel/ogc/1.0/conformance", JSON,
                 "Conformance classes implemented"),
            link(format!("{b}/collections"), "data", JSON, "The feature collections"),
            link(format!("{b}/collections"), "http://www.opengis.net/def/rel/ogc/1.0/data", JSON,
                 "The feature collections"),
        ],
    });
    Ok(respond(body, JSON))
}

async fn conformance(RawQuery(raw): RawQuery) -> OgcResult<Response> {
    params(raw.as_deref(), &["f"])?;
    Ok(respond(json!({"conformsTo": CONFORMANCE}), JSON))
}

async fn api(
    State(state): State<SharedState>,
    g: Guard,
    RawQuery(raw): RawQuery,
) -> OgcResult<Response> {
    params(raw.as_deref(), &["f"])?;
    let ctx = Context::core();
    let mut ids: Vec<String> = g
        .types()
        .await?
        .iter()
        .map(|t| collection_id(&ctx, &t.type_name))
        .collect();
    ids.sort();
    Ok(respond(openapi::document(&base(&state), &ids), OPENAPI))
}

// ---------------------------------------------------------------------------------------------------------------
// collections and their extents

/// The spatial and temporal extent of a type's entities.
#[derive(Debug, Clone, Copy, Default)]
struct Extent {
    bbox: Option<[f64; 4]>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

type ExtentCache = Mutex<HashMap<(usize, u64, String), (u64, Instant, Extent)>>;

fn extent_cache() -> &'static ExtentCache {
    static CACHE: OnceLock<ExtentCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The times a feature has for `datetime`: the `observedAt` of its attributes, or, when none has one, the
/// `modifiedAt` of its attributes.
fn feature_times(e: &Entity) -> Vec<DateTime<Utc>> {
    let all = || e.attrs.values().flatten();
    let observed: Vec<_> = all().filter_map(|a| a.observed_at).collect();
    if observed.is_empty() {
        all().filter_map(|a| a.modified_at).collect()
    } else {
        observed
    }
}

/// Computes (or reuses) the extent of a type: reads at most `EXTENT_SCAN_MAX` of its entities in id order.
async fn extent(state: &SharedState, g: &Guard, t: &TypeInfo) -> OgcResult<Extent> {
    let key = (
        std::sync::Arc::as_ptr(&state.store) as *const () as usize,
        g.scope_key(),
        t.type_name.clone(),
    );
    if let Ok(m) = extent_cache().lock() {
        if let Some((n, at, x)) = m.get(&key) {
            if *n == t.entity_count && at.elapsed() < EXTENT_TTL {
                return Ok(*x);
            }
        }
    }
    let mut x = Extent::default();
    let mut offset = 0;
    while offset < EXTENT_SCAN_MAX {
        let mut q = EntityQuery {
            types: Some(TypeExpr::Type(t.type_name.clone())),
            limit: EXTENT_PAGE,
            offset,
            ..Default::default()
        };
        g.restrict(&mut q);
        let mut page = state.store.query(&q).await?;
        // extents are metadata: the entities are not released, only what the caller may see of them is used
        for e in &mut page.entities {
            g.redact(e);
        }
        for e in &page.entities {
            for g in e.geometries(iri::LOCATION) {
                if let Some([a, b, c, d]) = geojson_bbox(g) {
                    x.bbox = Some(match x.bbox {
                        None => [a, b, c, d],
                        Some([e0, e1, e2, e3]) => [e0.min(a), e1.min(b), e2.max(c), e3.max(d)],
                    });
                }
            }
            for time in feature_times(e) {
                x.first = Some(x.first.map_or(time, |f| f.min(time)));
                x.last = Some(x.last.map_or(time, |l| l.max(time)));
            }
        }
        if page.entities.len() < EXTENT_PAGE {
            break;
        }
        offset += EXTENT_PAGE;
    }
    if let Ok(mut m) = extent_cache().lock() {
        if m.len() > 10_000 {
            m.clear();
        }
        m.insert(key, (t.entity_count, Instant::now(), x));
    }
    Ok(x)
}

async fn collection_json(
    state: &SharedState,
    g: &Guard,
    t: &TypeInfo,
    ctx: &Context,
) -> OgcResult<Value> {
    let id = collection_id(ctx, &t.type_name);
    let b = base(state);
    let x = extent(state, g, t).await?;
    let mut extent = serde_json::Map::new();
    if let Some(bbox) = x.bbox {
        extent.insert("spatial".into(), json!({"bbox": [bbox], "crs": CRS84}));
    }
    if x.first.is_some() {
        extent.insert(
            "temporal".into(),
            json!({"interval": [[x.first.map(|t| format_datetime(&t)), x.last.map(|t| format_datetime(&t))]], "trs": TRS}),
        );
    }
    let ngsi = format!(
        "{}/ngsi-ld/v1/entities?type={}",
        public(state),
        utf8_percent_encode(&t.type_name, NON_ALPHANUMERIC)
    );
    let mut c = json!({
        "id": id,
        "title": ctx.compact(&t.type_name),
        "description": format!("Entities of NGSI-LD type {} ({} entities)", t.type_name, t.entity_count),
        "itemType": "feature",
        "crs": CRS_LIST,
        "storageCrs": CRS84,
        "links": [
            link(format!("{b}/collections/{}", seg(&id)), "self", JSON, "This collection"),
            link(format!("{b}/collections/{}/items", seg(&id)), "items", GEOJSON, "The features of this collection"),
            link(ngsi, "alternate", "application/ld+json", "The same entities through the NGSI-LD API"),
        ],
    });
    if !extent.is_empty() {
        c["extent"] = Value::Object(extent);
    }
    Ok(c)
}

async fn collections(
    State(state): State<SharedState>,
    g: Guard,
    RawQuery(raw): RawQuery,
) -> OgcResult<Response> {
    params(raw.as_deref(), &["f"])?;
    let ctx = Context::core();
    let mut types = g.types().await?;
    types.sort_by_cached_key(|t| collection_id(&ctx, &t.type_name));
    let mut cols = Vec::with_capacity(types.len());
    for t in &types {
        cols.push(collection_json(&state, &g, t, &ctx).await?);
    }
    let b = base(&state);
    let body = json!({
        "links": [
            link(format!("{b}/collections"), "self", JSON, "The feature collections"),
            link(format!("{}/ngsi-ld/v1/types", public(&state)), "alternate", "application/ld+json",
                 "The entity types through the NGSI-LD API"),
        ],
        "collections": cols,
    });
    Ok(respond(body, JSON))
}

async fn collection(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> OgcResult<Response> {
    params(raw.as_deref(), &["f"])?;
    let t = find_collection(&g, &id).await?;
    let body = collection_json(&state, &g, &t, &Context::core()).await?;
    Ok(respond(body, JSON))
}

// ---------------------------------------------------------------------------------------------------------------
// features

/// An entity as a GeoJSON Feature: geometry = its `location` (null without one), properties = its attribute values
/// (keyValues, compacted names) and `type`.
fn feature(e: &Entity, ctx: &Context, web_mercator: bool) -> Value {
    let o = RenderOptions {
        format: Format::KeyValues,
        omit_id: true,
        ..Default::default()
    };
    let mut props = render_entity(e, ctx, &o);
    if let Value::Object(m) = &mut props {
        m.remove(&ctx.compact(iri::LOCATION));
    }
    let mut geometry = e
        .geometries(iri::LOCATION)
        .next()
        .cloned()
        .unwrap_or(Value::Null);
    if web_mercator {
        to_web_mercator(&mut geometry);
    }
    json!({"type": "Feature", "id": e.id, "geometry": geometry, "properties": props})
}

/// `bbox`: 4 or 6 numbers, lon/lat (CRS84) or Web Mercator metres (`bbox-crs`); a box crossing the antimeridian
/// (min lon > max lon) is split in two.
fn bbox_query(s: &str, web_mercator: bool) -> OgcResult<GeoQuery> {
    let nums = s
        .split(',')
        .map(|x| x.trim().parse::<f64>().ok().filter(|n| n.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(|| {
            OgcError::bad(format!(
                "bbox must be 4 or 6 comma separated numbers, got {s:?}"
            ))
        })?;
    let (mut x0, mut y0, mut x1, mut y1) = match nums.as_slice() {
        [a, b, c, d] => (*a, *b, *c, *d),
        [a, b, _, c, d, _] => (*a, *b, *c, *d),
        _ => {
            return Err(OgcError::bad(format!(
                "bbox must have 4 or 6 numbers, got {}",
                nums.len()
            )))
        }
    };
    if web_mercator {
        [x0, y0] = from_web_mercator(x0, y0);
        [x1, y1] = from_web_mercator(x1, y1);
    }
    if ![x0, x1].iter().all(|x| (-180.0..=180.0).contains(x))
        || ![y0, y1].iter().all(|y| (-90.0..=90.0).contains(y))
    {
        return Err(OgcError::bad(format!(
            "bbox {s:?} is outside longitude [-180,180] / latitude [-90,90] (CRS84)"
        )));
    }
    if y0 > y1 {
        return Err(OgcError::bad(format!(
            "bbox {s:?}: the lower latitude is above the upper one"
        )));
    }
    let ring = |a: f64, b: f64| json!([[[a, y0], [b, y0], [b, y1], [a, y1], [a, y0]]]);
    let (geom, coords) = if x0 <= x1 {
        ("Polygon", ring(x0, x1))
    } else {
        ("MultiPolygon", json!([ring(x0, 180.0), ring(-180.0, x1)]))
    };
    let mut g = GeoQuery::parse("intersects", geom, &coords.to_string(), None)
        .map_err(|e| OgcError::bad(format!("bbox {s:?}: {}", e.0)))?;
    g.geoproperty = iri::LOCATION.to_string();
    Ok(g)
}

/// Earth radius of the Web Mercator projection, and the latitude it is clamped at.
const MERCATOR_R: f64 = 6_378_137.0;
const MERCATOR_MAX_LAT: f64 = 85.051_128_779_806_59;

/// Whether a `crs` / `bbox-crs` value names Web Mercator (false: CRS84); other values are an error.
fn crs_is_mercator(c: &str, param: &str) -> OgcResult<bool> {
    match c {
        CRS84 | "[OGC:CRS84]" => Ok(false),
        EPSG3857 | "[EPSG:3857]" | "EPSG:3857" => Ok(true),
        other => Err(OgcError::bad(format!(
            "{param} {other:?} is not supported; use {CRS84} or {EPSG3857}"
        ))),
    }
}

fn output_crs(p: &Params) -> OgcResult<bool> {
    p.get("crs")
        .map_or(Ok(false), |c| crs_is_mercator(c, "crs"))
}

fn respond_crs(body: Value, web_mercator: bool) -> Response {
    let crs = if web_mercator { EPSG3857 } else { CRS84 };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, GEOJSON.to_string()),
            (
                header::HeaderName::from_static("content-crs"),
                format!("<{crs}>"),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

/// lon/lat degrees → Web Mercator metres (latitude clamped to the projection's range).
fn web_mercator(lon: f64, lat: f64) -> [f64; 2] {
    let lat = lat.clamp(-MERCATOR_MAX_LAT, MERCATOR_MAX_LAT).to_radians();
    let y = (std::f64::consts::FRAC_PI_4 + lat / 2.0).tan().ln() * MERCATOR_R;
    [lon.to_radians() * MERCATOR_R, y]
}

/// Web Mercator metres → lon/lat degrees.
fn from_web_mercator(x: f64, y: f64) -> [f64; 2] {
    let lon = (x / MERCATOR_R).to_degrees();
    let lat = (2.0 * (y / MERCATOR_R).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
    [lon, lat]
}

/// Projects every position of a GeoJSON geometry to Web Mercator in place.
fn to_web_mercator(g: &mut Value) {
    fn positions(v: &mut Value) {
        let Value::Array(items) = v else { return };
        if let [Value::Number(x), Value::Number(y), ..] = items.as_slice() {
            if let (Some(lon), Some(lat)) = (x.as_f64(), y.as_f64()) {
                let [px, py] = web_mercator(lon, lat);
                items[0] = json!(px);
                items[1] = json!(py);
            }
            return;
        }
        items.iter_mut().for_each(positions);
    }
    if let Some(c) = g.get_mut("coordinates") {
        positions(c);
    }
    if let Some(Value::Array(gs)) = g.get_mut("geometries") {
        gs.iter_mut().for_each(to_web_mercator);
    }
}

/// One end of a `datetime` interval (`..` or empty = open); a date is its first (start) or last (end) instant.
fn datetime_bound(s: &str, end: bool) -> OgcResult<Option<DateTime<Utc>>> {
    if s.is_empty() || s == ".." {
        return Ok(None);
    }
    if let Some(t) = twin_model::ngsi::parse_datetime(s) {
        return Ok(Some(t));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let time = if end {
            NaiveTime::from_hms_milli_opt(23, 59, 59, 999).unwrap_or_default()
        } else {
            NaiveTime::MIN
        };
        return Ok(Some(d.and_time(time).and_utc()));
    }
    Err(OgcError::bad(format!(
        "datetime: {s:?} is neither an RFC 3339 date-time (2024-05-01T10:00:00Z), a date nor '..'"
    )))
}

/// A closed time interval; None = open at that end.
type Interval = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `datetime`: an instant, a date, or an interval `a/b`, `../b`, `a/..` (closed ends).
fn parse_datetime_param(s: &str) -> OgcResult<Interval> {
    let (start, end) = match s.split_once('/') {
        Some((a, b)) => (datetime_bound(a, false)?, datetime_bound(b, true)?),
        None if s.is_empty() || s == ".." => {
            return Err(OgcError::bad("datetime is empty"));
        }
        None => (datetime_bound(s, false)?, datetime_bound(s, true)?),
    };
    match (start, end) {
        (None, None) => Err(OgcError::bad(
            "datetime: an interval needs at least one bound",
        )),
        (Some(a), Some(b)) if a > b => Err(OgcError::bad(format!(
            "datetime {s:?}: the start is after the end"
        ))),
        _ => Ok((start, end)),
    }
}

fn term(attr: &str, sub: &str, op: Option<(CmpOp, QValue)>, negated: bool) -> Query {
    Query::Term(QueryTerm {
        path: AttrPath {
            attr: attr.to_string(),
            sub_path: if sub.is_empty() {
                vec![]
            } else {
                vec![sub.to_string()]
            },
            compound: vec![],
        },
        op,
        negated,
    })
}

fn time_literal(t: DateTime<Utc>) -> QValue {
    QValue::One(Literal::Text {
        text: format_datetime(&t),
        temporal: Some(Temporal::DateTime(t)),
    })
}

/// The q expression of `datetime`: some attribute's `observedAt` lies in the interval, or none has an `observedAt`
/// and some attribute's `modifiedAt` (its last change) lies in it.
fn datetime_query(t: &TypeInfo, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Query {
    let within = |attr: &str, sys: &str| {
        let mut parts = Vec::new();
        if let Some(s) = start {
            parts.push(term(attr, sys, Some((CmpOp::Ge, time_literal(s))), false));
        }
        if let Some(e) = end {
            parts.push(term(attr, sys, Some((CmpOp::Le, time_literal(e))), false));
        }
        Query::And(parts)
    };
    let attrs: Vec<&String> = t.attributes.keys().collect();
    let observed = Query::Or(attrs.iter().map(|a| within(a, iri::OBSERVED_AT)).collect());
    let none_observed = Query::And(
        attrs
            .iter()
            .map(|a| term(a, iri::OBSERVED_AT, None, true))
            .collect(),
    );
    let modified = Query::Or(attrs.iter().map(|a| within(a, iri::MODIFIED_AT)).collect());
    Query::Or(vec![observed, Query::And(vec![none_observed, modified])])
}

/// `name=value`: the attribute's value equals `value` as text, or as a number / boolean when it reads as one.
fn property_query(attr: &str, v: &str) -> Query {
    let mut alts = Vec::new();
    if let Some(n) = v.parse::<f64>().ok().filter(|n| n.is_finite()) {
        alts.push(Literal::Number(n));
    }
    match v {
        "true" => alts.push(Literal::Bool(true)),
        "false" => alts.push(Literal::Bool(false)),
        _ => {}
    }
    alts.push(Literal::Text {
        text: v.to_string(),
        temporal: parse_temporal(v),
    });
    let value = if alts.len() == 1 {
        QValue::One(alts.remove(0))
    } else {
        QValue::List(alts)
    };
    term(attr, "", Some((CmpOp::Eq, value)), false)
}

/// The URL of this items request with another `offset`.
fn page_url(items_url: &str, raw: Option<&str>, offset: usize) -> String {
    let mut parts: Vec<&str> = raw
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("offset"))
        .collect();
    let o = format!("offset={offset}");
    parts.push(&o);
    format!("{items_url}?{}", parts.join("&"))
}

async fn items(
    State(state): State<SharedState>,
    g: Guard,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> OgcResult<Response> {
    let t = find_collection(&g, &id).await?;
    let ctx = Context::core();
    // property filters: the attributes of the type, by compacted name
    let props: Vec<(String, &String)> = t
        .attributes
        .keys()
        .filter(|a| a.as_str() != iri::LOCATION)
        .map(|a| (ctx.compact(a), a))
        .filter(|(c, _)| !ITEMS_PARAMS.contains(&c.as_str()))
        .collect();
    let mut allowed: Vec<&str> = ITEMS_PARAMS.to_vec();
    allowed.extend(props.iter().map(|(c, _)| c.as_str()));
    let p = params(raw.as_deref(), &allowed)?;
    let limit = match p.usize("limit")? {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(OgcError::bad("limit must be at least 1")),
        Some(n) => n.min(MAX_LIMIT),
    };
    let offset = p.usize("offset")?.unwrap_or(0);
    let mut q = EntityQuery {
        types: Some(TypeExpr::Type(t.type_name.clone())),
        limit,
        offset,
        count: true,
        ..Default::default()
    };
    let web_mercator = output_crs(&p)?;
    let bbox_mercator = match p.get("bbox-crs") {
        None => false,
        Some(c) => crs_is_mercator(c, "bbox-crs")?,
    };
    if let Some(b) = p.get("bbox") {
        q.geo = Some(bbox_query(b, bbox_mercator)?);
    } else if p.has("bbox-crs") {
        return Err(OgcError::bad(
            "bbox-crs is only meaningful together with bbox",
        ));
    }
    let mut filters = Vec::new();
    for (name, attr) in &props {
        if let Some(v) = p.get(name) {
            filters.push(property_query(attr, v));
        }
    }
    if let Some(dt) = p.get("datetime") {
        let (start, end) = parse_datetime_param(dt)?;
        filters.push(datetime_query(&t, start, end));
    }
    if !filters.is_empty() {
        q.q = Some(if filters.len() == 1 {
            filters.remove(0)
        } else {
            Query::And(filters)
        });
    }
    g.restrict(&mut q);
    let mut page = state.store.query(&q).await?;
    g.release(&mut page.entities, "ogc.items");
    let matched = page.count.unwrap_or(page.entities.len() as u64);
    let returned = page.entities.len();
    let b = base(&state);
    let items_url = format!("{b}/collections/{}/items", seg(&id));
    let self_url = match raw.as_deref() {
        Some(r) if !r.is_empty() => format!("{items_url}?{r}"),
        _ => items_url.clone(),
    };
    let mut links = vec![
        link(self_url, "self", GEOJSON, "This page"),
        link(
            format!("{b}/collections/{}", seg(&id)),
            "collection",
            JSON,
            "The collection",
        ),
    ];
    if ((offset + returned) as u64) < matched && returned > 0 {
        links.push(link(
            page_url(&items_url, raw.as_deref(), offset + returned),
            "next",
            GEOJSON,
            "The next page",
        ));
    }
    if offset > 0 {
        links.push(link(
            page_url(&items_url, raw.as_deref(), offset.saturating_sub(limit)),
            "prev",
            GEOJSON,
            "The previous page",
        ));
    }
    let features: Vec<Value> = page
        .entities
        .iter()
        .map(|e| feature(e, &ctx, web_mercator))
        .collect();
    let body = json!({
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": returned,
        "timeStamp": format_datetime(&Utc::now()),
        "links": links,
        "features": features,
    });
    Ok(respond_crs(body, web_mercator))
}

async fn item(
    State(state): State<SharedState>,
    g: Guard,
    Path((id, fid)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> OgcResult<Response> {
    let p = params(raw.as_deref(), &["f", "crs"])?;
    let web_mercator = output_crs(&p)?;
    let t = find_collection(&g, &id).await?;
    let missing =
        || OgcError::not_found(format!("feature {fid} does not exist in collection {id}"));
    let e = if twin_model::ngsi::is_uri(&fid) {
        state.store.get(&fid).await?
    } else {
        None
    };
    let mut e = e
        .filter(|e| e.types.contains(&t.type_name) && g.sees(e))
        .ok_or_else(missing)?;
    g.release(std::slice::from_mut(&mut e), "ogc.item");
    let ctx = Context::core();
    let b = base(&state);
    let mut f = feature(&e, &ctx, web_mercator);
    f["links"] = json!([
        link(
            format!("{b}/collections/{}/items/{}", seg(&id), seg(&e.id)),
            "self",
            GEOJSON,
            "This feature"
        ),
        link(
            format!("{b}/collections/{}", seg(&id)),
            "collection",
            JSON,
            "The collection"
        ),
        link(
            format!("{}/ngsi-ld/v1/entities/{}", public(&state), seg(&e.id)),
            "alternate",
            "application/ld+json",
            "The entity through the NGSI-LD API"
        ),
    ]);
    Ok(respond_crs(f, web_mercator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_ids_are_url_safe() {
        let ctx = Context::core();
        assert_eq!(
            collection_id(
                &ctx,
                "https://uri.etsi.org/ngsi-ld/default-context/Building"
            ),
            "Building"
        );
        let id = collection_id(&ctx, "https://example.org/types#Tree Pit");
        assert!(id.starts_with("Tree_Pit-"), "{id}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    }

    #[test]
    fn datetime_parameter() {
        let (a, b) = parse_datetime_param("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(a, b);
        let (a, b) = parse_datetime_param("../2024-05-01").unwrap();
        assert!(a.is_none());
        assert_eq!(b.unwrap().to_rfc3339(), "2024-05-01T23:59:59.999+00:00");
        assert!(parse_datetime_param("2024-05-02/2024-05-01").is_err());
        assert!(parse_datetime_param("../..").is_err());
        assert!(parse_datetime_param("yesterday").is_err());
    }

    #[test]
    fn bbox_parameter() {
        assert!(bbox_query("0,0,1,1", false).is_ok());
        assert!(bbox_query("0,0,0,1,1,10", false).is_ok());
        assert!(bbox_query("170,0,-170,1", false).is_ok());
        assert!(bbox_query("0,0,1", false).is_err());
        assert!(bbox_query("0,0,1,x", false).is_err());
        assert!(bbox_query("0,2,1,1", false).is_err());
        assert!(bbox_query("0,0,1,100", false).is_err());
    }

    #[test]
    fn web_mercator_round_trip() {
        let [x, y] = web_mercator(25.0, 60.2);
        assert!((x - 2_782_987.269_831_839).abs() < 1e-6, "{x}");
        let [lon, lat] = from_web_mercator(x, y);
        assert!((lon - 25.0).abs() < 1e-9 && (lat - 60.2).abs() < 1e-9);
        let mut g = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]});
        to_web_mercator(&mut g);
        assert_eq!(g["coordinates"][0][0][0], 0.0);
        assert!(g["coordinates"][0][0][1].as_f64().unwrap().abs() < 1e-6);
        assert!(g["coordinates"][0][1][0].as_f64().unwrap() > 100_000.0);
    }

    #[test]
    fn page_links_replace_offset() {
        assert_eq!(
            page_url("http://h/items", Some("limit=2&offset=4&bbox=0,0,1,1"), 6),
            "http://h/items?limit=2&bbox=0,0,1,1&offset=6"
        );
        assert_eq!(
            page_url("http://h/items", None, 3),
            "http://h/items?offset=3"
        );
    }
}
