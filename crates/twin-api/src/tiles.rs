//! Vector tiles under `/tiles`: one MVT layer per entity type with a geometry (the OGC collection ids), TileJSON 3.0
//! per layer or set of layers, and a MapLibre style that draws the city from these tiles alone; tiles are cached and
//! invalidated from the store's map changes (so writes of any process or node reach every cache).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use twin_model::context::Context;
use twin_model::entity::iri;
use twin_model::geoquery::{geometry_from_geojson, GeoQuery, GeoRel};
use twin_model::query::TypeExpr;
use twin_model::{AttrKind, Entity};
use twin_store::{EntityQuery, MapChange, TypeInfo};
use twin_tiles::{LayerIndex, PreparedFeature, PropValue, TileBuilder, TileId, TilerOptions};

use crate::guard::Guard;
use crate::ogc::{collection_id, OgcError, OgcResult};
use crate::SharedState;
use twin_model::policy::Principal;

/// Zoom levels announced in TileJSON (clients over-zoom beyond `MAX_ANNOUNCED`; deeper tiles are still served).
const MAX_ANNOUNCED: u8 = 18;
/// Clip buffer, as a fraction of the tile side, used to select features (64 of 4096 units).
const BUFFER_FRACTION: f64 = 64.0 / 4096.0;
/// The most features of one layer put in one tile (the densest get dropped beyond; low zooms of big cities).
const MAX_FEATURES_PER_LAYER: usize = 200_000;
/// Map changes kept in memory to decide which cached tiles are stale.
const RECENT_CHANGES: usize = 4096;
/// Strings longer than this are left out of tiles (descriptions belong in the feature panel, not in every tile).
const MAX_STRING: usize = 256;

/// The first zoom at which a layer is served, for types too dense to draw at city scale.
pub fn default_minzoom(collection: &str) -> u8 {
    match collection {
        "Building" | "RoadLink" => 13,
        "BuildingPart" => 14,
        "PointOfInterest" | "GtfsStop" => 12,
        _ => 0,
    }
}

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(catalog))
        .route("/style.json", get(style))
        .route("/{layers}", get(tilejson))
        .route("/{layers}/{z}/{x}/{y}", get(tile))
        .fallback(|| async {
            OgcError::not_found(
                "no such tile resource; see /tiles for the layers, /tiles/{layers} for TileJSON and /tiles/{layers}/{z}/{x}/{y}.mvt",
            )
        })
}

// ---------------------------------------------------------------------------------------------------------------
// the cache

/// A cached tile: its bytes (None = empty), the map change it is current as of, and what it covers.
struct CachedTile {
    body: Option<Bytes>,
    etag: String,
    built_at: i64,
    types: Vec<String>,
    bounds: [f64; 4],
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct TileKey {
    layers: Arc<str>,
    tile: TileId,
}

/// What the cache knows of the store's map changes.
struct ChangeLog {
    /// Polled up to here.
    head: i64,
    /// Tiles built before this are stale (changes before it were not all seen).
    floor: i64,
    recent: VecDeque<MapChange>,
}

/// The tile cache: tiles by layer set and address, weighed by their size, checked against the map changes.
pub struct TileCache {
    tiles: quick_cache::sync::Cache<TileKey, Arc<CachedTile>, TileWeight>,
    log: tokio::sync::Mutex<ChangeLog>,
    /// The layer list, as of a map-change head and a time (types and their attributes change rarely).
    layers: tokio::sync::Mutex<Option<LayerList>>,
    /// Per entity type, its features ready to cut (built on first use, kept current from the map changes).
    indexes: tokio::sync::Mutex<HashMap<String, SharedIndex>>,
    /// The store's configuration epoch the indexes were built at: a policy change rebuilds them.
    epoch: std::sync::atomic::AtomicU64,
    opts: TilerOptions,
}

type SharedIndex = Arc<std::sync::RwLock<LayerIndex>>;

/// The layer list, the map-change head and the time it was read at.
type LayerList = (i64, Instant, Arc<Vec<LayerInfo>>);

/// How long the layer list is reused while no map change arrives.
const LAYERS_TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct TileWeight;

impl quick_cache::Weighter<TileKey, Arc<CachedTile>> for TileWeight {
    fn weight(&self, _: &TileKey, t: &Arc<CachedTile>) -> u64 {
        t.body.as_ref().map_or(0, |b| b.len() as u64) + 256
    }
}

impl TileCache {
    /// A cache holding at most about `max_bytes` of tiles.
    pub fn new(max_bytes: u64) -> TileCache {
        TileCache {
            tiles: quick_cache::sync::Cache::with_weighter(
                (max_bytes / 4096).max(64) as usize,
                max_bytes,
                TileWeight,
            ),
            log: tokio::sync::Mutex::new(ChangeLog {
                head: -1,
                floor: 0,
                recent: VecDeque::new(),
            }),
            layers: tokio::sync::Mutex::new(None),
            indexes: tokio::sync::Mutex::new(HashMap::new()),
            epoch: std::sync::atomic::AtomicU64::new(u64::MAX),
            opts: TilerOptions::default(),
        }
    }

    /// Forgets every cached tile (benchmarks measure cold tiles this way); the feature indexes stay.
    pub fn clear(&self) {
        self.tiles.clear();
    }

    /// Forgets every cached tile and every feature index (as after a restart).
    pub async fn clear_all(&self) {
        self.tiles.clear();
        self.indexes.lock().await.clear();
    }

    /// Reads the map changes since the last poll; returns the head to build new tiles as of, and the log state.
    async fn poll(&self, state: &SharedState) -> OgcResult<i64> {
        let mut log = self.log.lock().await;
        // tiles show what anyone may see: when a dataset's policy changed, what was cut before may be wrong
        let epoch = state.store.config_epoch();
        if self.epoch.swap(epoch, std::sync::atomic::Ordering::SeqCst) != epoch {
            self.tiles.clear();
            self.indexes.lock().await.clear();
            *self.layers.lock().await = None;
        }
        let from = log.head.max(0);
        let got = state.store.map_changes_since(from, RECENT_CHANGES).await?;
        if log.head < 0 {
            // first poll: nothing cached yet, start from the present
            log.floor = got.head;
        } else if !got.complete {
            log.floor = got.head;
            log.recent.clear();
            // too far behind to follow change by change: the indexes are rebuilt when next needed
            self.indexes.lock().await.clear();
        } else {
            for c in &got.changes {
                self.apply(state, c).await?;
            }
            log.recent.extend(got.changes);
            while log.recent.len() > RECENT_CHANGES {
                if let Some(c) = log.recent.pop_front() {
                    log.floor = log.floor.max(c.seq);
                }
            }
        }
        log.head = got.head;
        Ok(got.head)
    }

    /// Brings the index of a changed type (if one was built) up to date inside the change's box.
    async fn apply(&self, state: &SharedState, c: &MapChange) -> OgcResult<()> {
        let Some(ix) = self.indexes.lock().await.get(&c.type_name).cloned() else {
            return Ok(());
        };
        // a point's box has no area; widen it a little so that the query polygon is valid
        let e = 1e-9;
        let b = [c.bbox[0] - e, c.bbox[1] - e, c.bbox[2] + e, c.bbox[3] + e];
        let fresh = fetch(state, &c.type_name, Some(b)).await?;
        tokio::task::spawn_blocking(move || {
            let features = prepare_all(&fresh);
            if let Ok(mut ix) = ix.write() {
                ix.replace_in(b, features);
            }
        })
        .await
        .map_err(internal)?;
        Ok(())
    }

    /// The index of a type's features, built from the store on first use.
    async fn index(&self, state: &SharedState, type_name: &str) -> OgcResult<SharedIndex> {
        let mut all = self.indexes.lock().await;
        if let Some(ix) = all.get(type_name) {
            return Ok(ix.clone());
        }
        let entities = fetch(state, type_name, None).await?;
        let ix = tokio::task::spawn_blocking(move || LayerIndex::new(prepare_all(&entities)))
            .await
            .map_err(internal)?;
        let ix = Arc::new(std::sync::RwLock::new(ix));
        all.insert(type_name.to_string(), ix.clone());
        Ok(ix)
    }

    async fn fresh(&self, t: &CachedTile) -> bool {
        let log = self.log.lock().await;
        if t.built_at < log.floor {
            return false;
        }
        !log.recent.iter().any(|c| {
            c.seq > t.built_at
                && t.types.contains(&c.type_name)
                && c.bbox[0] <= t.bounds[2]
                && c.bbox[2] >= t.bounds[0]
                && c.bbox[1] <= t.bounds[3]
                && c.bbox[3] >= t.bounds[1]
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// layers

/// A tile layer: an entity type with a geometry.
#[derive(Clone)]
struct LayerInfo {
    id: String,
    type_name: String,
    count: u64,
    minzoom: u8,
    /// attribute (compact) → TileJSON field description
    fields: BTreeMap<String, String>,
}

fn is_drawn(t: &TypeInfo) -> bool {
    t.attributes
        .get(iri::LOCATION)
        .is_some_and(|kinds| kinds.iter().any(|k| k == AttrKind::GeoProperty.as_str()))
}

/// Tiles are shared by every caller, so they carry what anyone may see: the public scope (the anonymous caller's).
/// Signed-in callers read the data their policies open to them through NGSI-LD and OGC API Features.
async fn public_scope(state: &SharedState) -> OgcResult<Guard> {
    Ok(Guard::new(state, Principal::anonymous(), None).await?)
}

async fn layers(state: &SharedState) -> OgcResult<Vec<LayerInfo>> {
    let ctx = Context::core();
    let mut out: Vec<LayerInfo> = public_scope(state)
        .await?
        .types()
        .await?
        .into_iter()
        .filter(is_drawn)
        .map(|t| {
            let id = collection_id(&ctx, &t.type_name);
            let mut fields = BTreeMap::new();
            fields.insert("id".to_string(), "entity id (URN)".to_string());
            fields.insert("type".to_string(), "entity type".to_string());
            for (attr, kinds) in &t.attributes {
                if attr == iri::LOCATION {
                    continue;
                }
                fields.insert(ctx.compact(attr), kinds.join(", "));
            }
            LayerInfo {
                minzoom: default_minzoom(&id),
                id,
                type_name: t.type_name,
                count: t.entity_count,
                fields,
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// From this zoom on buildings are drawn in 3D; below it, flat.
const BUILDINGS_3D_MINZOOM: u8 = 14;

/// Builds the feature index of every tile layer ahead of the first tile request (started with the server): a city's
/// first map would otherwise wait for them (1.3 s for 52,000 buildings). Failures are left to the requests to report.
pub async fn warm(state: SharedState) {
    let started = Instant::now();
    let Ok(ls) = layers(&state).await else {
        return;
    };
    for l in ls.iter() {
        if let Err(e) = state.tiles.index(&state, &l.type_name).await {
            tracing::debug!(layer = %l.id, "tile index not built ahead: {}", e.description);
            return;
        }
    }
    tracing::debug!(
        layers = ls.len(),
        seconds = started.elapsed().as_secs_f64(),
        "tile indexes built"
    );
}

/// The layer list for tiles made as of `head`, reused while the map is unchanged for a few seconds.
async fn cached_layers(state: &SharedState, head: i64) -> OgcResult<Arc<Vec<LayerInfo>>> {
    let mut slot = state.tiles.layers.lock().await;
    if let Some((h, at, ls)) = slot.as_ref() {
        if *h == head && at.elapsed() < LAYERS_TTL {
            return Ok(ls.clone());
        }
    }
    let ls = Arc::new(layers(state).await?);
    *slot = Some((head, Instant::now(), ls.clone()));
    Ok(ls)
}

/// The layers named by a `{layers}` path segment (comma-separated collection ids, each once).
async fn resolve(state: &SharedState, spec: &str) -> OgcResult<Vec<LayerInfo>> {
    resolve_in(layers(state).await?, spec)
}

fn resolve_in(mut all: Vec<LayerInfo>, spec: &str) -> OgcResult<Vec<LayerInfo>> {
    let mut out = Vec::new();
    for name in spec.split(',') {
        if name.is_empty() {
            return Err(OgcError::bad(format!(
                "empty layer name in {spec:?}; separate layer names with single commas"
            )));
        }
        if out.iter().any(|l: &LayerInfo| l.id == name) {
            return Err(OgcError::bad(format!("layer {name} is named twice")));
        }
        match all.iter().position(|l| l.id == name) {
            Some(i) => out.push(all.swap_remove(i)),
            None => {
                return Err(OgcError::not_found(format!(
                    "no tile layer {name}; GET /tiles lists the layers"
                )))
            }
        }
    }
    Ok(out)
}

fn public(state: &SharedState) -> String {
    state.config.public_url.trim_end_matches('/').to_string()
}

async fn attribution(state: &SharedState) -> OgcResult<String> {
    Ok(crate::attribution(state.store.as_ref()).await?)
}

async fn bounds_of(state: &SharedState, layers: &[LayerInfo]) -> OgcResult<Option<[f64; 4]>> {
    let mut out: Option<[f64; 4]> = None;
    let g = public_scope(state).await?;
    for l in layers {
        if let Some(b) = g.type_extent(&l.type_name).await? {
            out = Some(crate::guard::union_bbox(out, b));
        }
    }
    Ok(out.map(|b| {
        [
            b[0].max(-180.0),
            b[1].max(-twin_tiles::tile::MAX_LAT),
            b[2].min(180.0),
            b[3].min(twin_tiles::tile::MAX_LAT),
        ]
    }))
}

fn no_query(raw: Option<&str>) -> OgcResult<()> {
    match raw {
        Some(q) if !q.is_empty() => Err(OgcError::bad(format!(
            "this resource takes no query parameters, found {q:?}"
        ))),
        _ => Ok(()),
    }
}

fn json_body(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

// ---------------------------------------------------------------------------------------------------------------
// handlers

async fn catalog(State(state): State<SharedState>, RawQuery(raw): RawQuery) -> OgcResult<Response> {
    no_query(raw.as_deref())?;
    let base = public(&state);
    let ls = layers(&state).await?;
    let all: Vec<&str> = ls.iter().map(|l| l.id.as_str()).collect();
    let items: Vec<Value> = ls
        .iter()
        .map(|l| {
            json!({
                "id": l.id,
                "type": l.type_name,
                "entities": l.count,
                "minzoom": l.minzoom,
                "tilejson": format!("{base}/tiles/{}", l.id),
                "tiles": format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", l.id),
            })
        })
        .collect();
    Ok(json_body(json!({
        "layers": items,
        "all": if all.is_empty() { Value::Null } else { json!(format!("{base}/tiles/{}", all.join(","))) },
        "style": format!("{base}/tiles/style.json"),
    })))
}

async fn tilejson(
    State(state): State<SharedState>,
    Path(spec): Path<String>,
    RawQuery(raw): RawQuery,
) -> OgcResult<Response> {
    no_query(raw.as_deref())?;
    let spec = spec.strip_suffix(".json").unwrap_or(&spec);
    let ls = resolve(&state, spec).await?;
    let base = public(&state);
    let bounds = bounds_of(&state, &ls).await?;
    let minzoom = ls.iter().map(|l| l.minzoom).min().unwrap_or(0);
    let mut doc = json!({
        "tilejson": "3.0.0",
        "name": spec,
        "description": format!("urbantwin entities of type {} as Mapbox Vector Tiles 2.1", ls.iter().map(|l| l.id.as_str()).collect::<Vec<_>>().join(", ")),
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [format!("{base}/tiles/{spec}/{{z}}/{{x}}/{{y}}.mvt")],
        "minzoom": minzoom,
        "maxzoom": MAX_ANNOUNCED,
        "attribution": attribution(&state).await?,
        "vector_layers": ls.iter().map(|l| json!({
            "id": l.id,
            "description": format!("{} entities ({})", l.id, l.count),
            "minzoom": l.minzoom,
            "maxzoom": MAX_ANNOUNCED,
            "fields": l.fields,
        })).collect::<Vec<_>>(),
    });
    if let Some(b) = bounds {
        doc["bounds"] = json!(b);
        let (lon, lat) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
        doc["center"] = json!([lon, lat, minzoom.max(14)]);
    }
    Ok(json_body(doc))
}

/// Parses the last path segment: `12`, `12.mvt` or `12.pbf`.
fn tile_row(y: &str) -> &str {
    y.strip_suffix(".mvt")
        .or_else(|| y.strip_suffix(".pbf"))
        .unwrap_or(y)
}

async fn tile(
    State(state): State<SharedState>,
    Path((spec, z, x, y)): Path<(String, String, String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> OgcResult<Response> {
    no_query(raw.as_deref())?;
    let id = TileId::parse(&z, &x, tile_row(&y)).map_err(|e| OgcError::bad(e.0))?;
    let cache = &state.tiles;
    let head = cache.poll(&state).await?;
    let key = TileKey {
        layers: Arc::from(spec.as_str()),
        tile: id,
    };
    let hit = match cache.tiles.get(&key) {
        Some(t) if cache.fresh(&t).await => Some(t),
        _ => None,
    };
    let t = match hit {
        Some(t) => t,
        None => {
            let ls = resolve_in(cached_layers(&state, head).await?.to_vec(), &spec)?;
            let t = Arc::new(build(&state, &ls, id, head).await?);
            cache.tiles.insert(key, t.clone());
            t
        }
    };
    let etag = HeaderValue::from_str(&t.etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let cache_control = HeaderValue::from_static("no-cache");
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == t.etag.as_bytes())
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)],
        )
            .into_response());
    }
    Ok(match &t.body {
        None => (
            StatusCode::NO_CONTENT,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)],
        )
            .into_response(),
        Some(b) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(twin_tiles::mvt::MEDIA_TYPE),
                ),
                (header::ETAG, etag),
                (header::CACHE_CONTROL, cache_control),
            ],
            b.clone(),
        )
            .into_response(),
    })
}

/// Reads the layers' entities around a tile and cuts them into it (the cutting runs off the async runtime).
async fn build(
    state: &SharedState,
    ls: &[LayerInfo],
    id: TileId,
    head: i64,
) -> OgcResult<CachedTile> {
    let started = Instant::now();
    let bounds = id.buffered_bounds(BUFFER_FRACTION);
    let mut layers: Vec<(String, SharedIndex)> = Vec::new();
    for l in ls {
        if id.z >= l.minzoom {
            layers.push((l.id.clone(), state.tiles.index(state, &l.type_name).await?));
        }
    }
    let opts = state.tiles.opts;
    let body = tokio::task::spawn_blocking(move || {
        let mut b = TileBuilder::new(id, opts);
        for (name, ix) in &layers {
            let Ok(ix) = ix.read() else { continue };
            let mut layer = b.layer(name);
            for f in ix.candidates(bounds).take(MAX_FEATURES_PER_LAYER) {
                layer.add_prepared(f);
            }
        }
        b.finish()
    })
    .await
    .map_err(internal)?;
    tracing::debug!(
        tile = %id,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        bytes = body.as_ref().map_or(0, Vec::len),
        "tile made"
    );
    let etag = match &body {
        Some(b) => format!("\"{:016x}\"", fnv1a(b)),
        None => "\"empty\"".to_string(),
    };
    Ok(CachedTile {
        body: body.map(Bytes::from),
        etag,
        built_at: head,
        types: ls.iter().map(|l| l.type_name.clone()).collect(),
        bounds,
    })
}

fn internal(e: impl std::fmt::Display) -> OgcError {
    OgcError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "InternalError",
        description: format!("a tile could not be made: {e}"),
    }
}

/// The entities of a type with a location, all of them or those meeting a lon/lat box.
async fn fetch(
    state: &SharedState,
    type_name: &str,
    within: Option<[f64; 4]>,
) -> OgcResult<Vec<Entity>> {
    let geo = within.map(|[w, s, e, n]| GeoQuery {
        georel: GeoRel::Intersects,
        geometry: geo::Geometry::Polygon(
            geo::Rect::new(geo::coord! {x: w, y: s}, geo::coord! {x: e, y: n}).to_polygon(),
        ),
        geoproperty: iri::LOCATION.to_string(),
    });
    let mut q = EntityQuery {
        types: Some(TypeExpr::Type(type_name.to_string())),
        attrs: Some(vec![iri::LOCATION.to_string()]),
        geo,
        limit: usize::MAX,
        ..Default::default()
    };
    let g = public_scope(state).await?;
    g.restrict(&mut q);
    let mut entities = state.store.query(&q).await?.entities;
    for e in &mut entities {
        g.redact(e);
    }
    Ok(entities)
}

/// Entities as features ready to cut (those without a usable location are left out).
fn prepare_all(entities: &[Entity]) -> Vec<PreparedFeature> {
    let ctx = Context::core();
    let mut names = HashMap::new();
    entities
        .iter()
        .filter_map(|e| {
            let g = e
                .geometries(iri::LOCATION)
                .next()
                .and_then(|v| geometry_from_geojson(v).ok())?;
            PreparedFeature::new(
                feature_id(&e.id),
                e.id.clone(),
                g,
                properties(e, &ctx, &mut names),
            )
        })
        .collect()
}

/// A stable numeric feature id from the entity id (FNV-1a, kept below 2^53 so JavaScript holds it exactly).
pub fn feature_id(entity_id: &str) -> u64 {
    fnv1a(entity_id.as_bytes()) & ((1 << 53) - 1)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The properties drawn with a feature: the entity's id and type, and the key-value of each attribute's default
/// instance when it is a number, a boolean, a short string or a list of those (joined with `; `); an object's number
/// and boolean members each as `name.member` (a `RoadLink`'s `walkAccess.forward`); text members, language maps, JSON
/// values and deeper objects are left to the API. `names` caches compacted attribute names across a tile.
fn properties(
    e: &Entity,
    ctx: &Context,
    names: &mut HashMap<String, Arc<str>>,
) -> Vec<(Arc<str>, PropValue)> {
    let mut out = Vec::with_capacity(e.attrs.len() + 2);
    out.push((Arc::from("id"), PropValue::Str(e.id.clone())));
    if let Some(t) = e.types.first() {
        out.push((Arc::from("type"), PropValue::Str(ctx.compact(t))));
    }
    for (name, instances) in &e.attrs {
        if name == iri::LOCATION {
            continue;
        }
        let Some(a) = instances
            .iter()
            .find(|a| a.dataset_id.is_none())
            .or(instances.first())
        else {
            continue;
        };
        let value = match a.kind {
            AttrKind::Property | AttrKind::Relationship | AttrKind::ListProperty => &a.value,
            _ => continue,
        };
        // typed literals ({"@type": "DateTime", "@value": ...}) are drawn as their value
        let value = value.get("@value").unwrap_or(value);
        let mut key = |name: &str| match names.get(name) {
            Some(k) => k.clone(),
            None => {
                let k: Arc<str> = Arc::from(ctx.compact(name));
                names.insert(name.to_string(), k.clone());
                k
            }
        };
        if let Some(p) = prop_value(value) {
            out.push((key(name), p));
        } else if let Value::Object(members) = value {
            let attr = key(name);
            // (numbers and booleans only: what a style filters by, without swelling tiles with an address's text)
            for (member, v) in members.iter().take(MAX_MEMBERS) {
                if let (Value::Bool(_) | Value::Number(_), Some(p)) = (v, prop_value(v)) {
                    out.push((Arc::from(format!("{attr}.{member}")), p));
                }
            }
        }
    }
    out
}

/// At most this many members of an object attribute are drawn.
const MAX_MEMBERS: usize = 16;

fn prop_value(v: &Value) -> Option<PropValue> {
    match v {
        Value::Bool(b) => Some(PropValue::Bool(*b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => PropValue::Int(i),
            None => PropValue::Double(n.as_f64()?),
        }),
        Value::String(s) if s.len() <= MAX_STRING => Some(PropValue::Str(s.clone())),
        Value::Array(items) if !items.is_empty() => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect();
            let joined = parts?.join("; ");
            (joined.len() <= MAX_STRING).then_some(PropValue::Str(joined))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// the style

async fn style(State(state): State<SharedState>, RawQuery(raw): RawQuery) -> OgcResult<Response> {
    no_query(raw.as_deref())?;
    // the routable network (RoadLink) is not drawn (see `city_style`): the source's bounds are those of the rest
    let ls: Vec<LayerInfo> = layers(&state)
        .await?
        .into_iter()
        .filter(|l| l.id != "RoadLink")
        .collect();
    Ok(json_body(city_style(
        &public(&state),
        &ls,
        bounds_of(&state, &ls).await?,
        &attribution(&state).await?,
    )))
}

/// A MapLibre style (v8) over one source holding every layer: land use, roads by class, buildings extruded by height,
/// points of interest by category, and every other layer drawn by its geometry type.
fn city_style(base: &str, ls: &[LayerInfo], bounds: Option<[f64; 4]>, attribution: &str) -> Value {
    let mut layers = vec![json!({
        "id": "background", "type": "background",
        "paint": {"background-color": "#f2efe9"}
    })];
    let mut sources = Map::new();
    // the routable network (RoadLink) repeats the streets' geometry split at junctions: analysis data, left to
    // the apps that edit it
    let ls: Vec<&LayerInfo> = ls.iter().filter(|l| l.id != "RoadLink").collect();
    if !ls.is_empty() {
        let all: Vec<&str> = ls.iter().map(|l| l.id.as_str()).collect();
        // the TileJSON of `/tiles/{layers}` inlined: a map starts asking for tiles one round trip sooner
        let mut source = json!({
            "type": "vector",
            "tiles": [format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", all.join(","))],
            "minzoom": ls.iter().map(|l| l.minzoom).min().unwrap_or(0),
            "maxzoom": MAX_ANNOUNCED,
            "attribution": attribution,
        });
        if let Some(b) = bounds {
            source["bounds"] = json!(b);
        }
        sources.insert("urbantwin".into(), source);
    }
    let has = |id: &str| ls.iter().any(|l| l.id == id);
    let minz = |id: &str| default_minzoom(id);
    if has("LandUse") {
        layers.push(json!({
            "id": "landuse", "type": "fill", "source": "urbantwin", "source-layer": "LandUse",
            "paint": {"fill-color": ["match", ["get", "category"],
                "park", "#c8e6b0", "grass", "#d4ecc0", "forest", "#b5d6a0", "cemetery", "#cde0c4",
                "residential", "#ebe4dc", "commercial", "#f1dede", "retail", "#f1dede", "industrial", "#e6dff0",
                "railway", "#e2dede", "#e9e5dc"],
                "fill-opacity": 0.8}
        }));
    }
    if has("RoadSegment") {
        let width = |minor: f64, major: f64| {
            json!([
                "interpolate",
                ["exponential", 1.6],
                ["zoom"],
                12,
                [
                    "match",
                    ["get", "roadClass"],
                    ["motorway", "trunk", "primary"],
                    major * 0.5,
                    ["secondary", "tertiary"],
                    (minor + major) * 0.25,
                    minor * 0.3
                ],
                18,
                [
                    "match",
                    ["get", "roadClass"],
                    ["motorway", "trunk", "primary"],
                    major * 6.0,
                    ["secondary", "tertiary"],
                    (minor + major) * 3.0,
                    minor * 4.0
                ]
            ])
        };
        layers.push(json!({
            "id": "paths", "type": "line", "source": "urbantwin", "source-layer": "RoadSegment",
            "filter": ["in", ["get", "roadClass"], ["literal", ["footway", "path", "cycleway", "pedestrian", "steps", "bridleway", "corridor", "track"]]],
            "minzoom": 14,
            "paint": {"line-color": "#b7a99a", "line-width": 1, "line-dasharray": [2, 1]}
        }));
        layers.push(json!({
            "id": "roads-casing", "type": "line", "source": "urbantwin", "source-layer": "RoadSegment",
            "filter": ["!", ["in", ["get", "roadClass"], ["literal", ["footway", "path", "cycleway", "pedestrian", "steps", "bridleway", "corridor", "track"]]]],
            "layout": {"line-cap": "round", "line-join": "round"},
            "paint": {"line-color": "#c9bfb3", "line-width": width(2.0, 3.0)}
        }));
        layers.push(json!({
            "id": "roads", "type": "line", "source": "urbantwin", "source-layer": "RoadSegment",
            "filter": ["!", ["in", ["get", "roadClass"], ["literal", ["footway", "path", "cycleway", "pedestrian", "steps", "bridleway", "corridor", "track"]]]],
            "layout": {"line-cap": "round", "line-join": "round"},
            "paint": {"line-color": ["match", ["get", "roadClass"],
                ["motorway", "motorway_link"], "#e892a2", ["trunk", "trunk_link"], "#f9b29c",
                ["primary", "primary_link"], "#fcd6a4", ["secondary", "secondary_link"], "#f7fabf", "#ffffff"],
                "line-width": width(1.5, 2.2)}
        }));
    }
    if has("Building") {
        // flat below zoom 14, where a city-wide view would otherwise draw tens of thousands of prisms (the walls'
        // vertices cost most on a device without a GPU); in 3D, extruded by height, from there on
        if minz("Building") < BUILDINGS_3D_MINZOOM {
            layers.push(json!({
                "id": "buildings-flat", "type": "fill", "source": "urbantwin", "source-layer": "Building",
                "minzoom": minz("Building"), "maxzoom": BUILDINGS_3D_MINZOOM,
                "paint": {"fill-color": "#d6cfc7", "fill-outline-color": "#bfb6ac", "fill-opacity": 0.85}
            }));
        }
        layers.push(json!({
            "id": "buildings", "type": "fill-extrusion", "source": "urbantwin", "source-layer": "Building",
            "minzoom": minz("Building").max(BUILDINGS_3D_MINZOOM),
            "paint": {
                "fill-extrusion-color": "#d6cfc7",
                "fill-extrusion-height": ["coalesce", ["get", "height"], 9],
                "fill-extrusion-base": 0,
                "fill-extrusion-opacity": 0.85
            }
        }));
    }
    if has("PointOfInterest") {
        layers.push(json!({
            "id": "pois", "type": "circle", "source": "urbantwin", "source-layer": "PointOfInterest",
            "minzoom": minz("PointOfInterest").max(14),
            "paint": {
                "circle-radius": ["interpolate", ["linear"], ["zoom"], 14, 2.5, 18, 6],
                "circle-color": ["match", ["get", "category"],
                    "grocery", "#2e7d32", "school", "#1565c0", "childcare", "#5e35b1", "healthcare", "#c62828",
                    "pharmacy", "#ad1457", "park", "#558b2f", "public_transport_stop", "#00838f",
                    "restaurant_cafe", "#ef6c00", "culture", "#6a1b9a", "sport", "#00695c", "services", "#4e342e",
                    "#616161"],
                "circle-stroke-color": "#ffffff", "circle-stroke-width": 1
            }
        }));
    }
    // every other layer by its geometry type
    let styled = [
        "LandUse",
        "RoadSegment",
        "Building",
        "PointOfInterest",
        "RoadLink",
    ];
    for l in ls.iter().filter(|l| !styled.contains(&l.id.as_str())) {
        let common = |kind: &str, suffix: &str, geom: &str| {
            // simulated traffic flows (the baseline's and each scenario's, street over street) are for the apps that
            // pick a scenario; the city map shows what is observed
            let filter = if l.id == "TrafficFlowObserved" {
                json!([
                    "all",
                    ["==", ["geometry-type"], geom],
                    ["!=", ["get", "simulated"], true]
                ])
            } else {
                json!(["==", ["geometry-type"], geom])
            };
            json!({"id": format!("{}-{suffix}", l.id), "type": kind, "source": "urbantwin", "source-layer": l.id,
                   "minzoom": l.minzoom, "filter": filter})
        };
        let mut fill = common("fill", "fill", "Polygon");
        fill["paint"] =
            json!({"fill-color": "#9fa8da", "fill-opacity": 0.4, "fill-outline-color": "#3949ab"});
        let mut line = common("line", "line", "LineString");
        line["paint"] = json!({"line-color": "#3949ab", "line-width": 2});
        let mut point = common("circle", "point", "Point");
        point["paint"] = json!({"circle-radius": 6, "circle-color": "#d81b60", "circle-stroke-color": "#ffffff", "circle-stroke-width": 2});
        layers.extend([fill, line, point]);
    }
    let mut style = json!({
        "version": 8,
        "name": "urbantwin city",
        "metadata": {"urbantwin:layers": ls.iter().map(|l| &l.id).collect::<Vec<_>>()},
        "sources": sources,
        "layers": layers,
    });
    if let Some(b) = bounds {
        style["center"] = json!([(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0]);
        style["zoom"] = json!(15);
        style["pitch"] = json!(45);
    }
    style
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_values() {
        assert_eq!(prop_value(&json!(3)), Some(PropValue::Int(3)));
        assert_eq!(prop_value(&json!(-3)), Some(PropValue::Int(-3)));
        assert_eq!(prop_value(&json!(2.5)), Some(PropValue::Double(2.5)));
        assert_eq!(
            prop_value(&json!(["a", "b"])),
            Some(PropValue::Str("a; b".into()))
        );
        assert_eq!(prop_value(&json!({"a": 1})), None);
        assert_eq!(prop_value(&json!([{"a": 1}])), None);
        assert_eq!(prop_value(&json!("x".repeat(300))), None);
    }

    #[test]
    fn feature_ids_are_stable_and_fit_javascript() {
        let a = feature_id("urn:ngsi-ld:Building:osm-way-1");
        assert_eq!(a, feature_id("urn:ngsi-ld:Building:osm-way-1"));
        assert_ne!(a, feature_id("urn:ngsi-ld:Building:osm-way-2"));
        assert!(a < (1 << 53));
    }

    #[test]
    fn tile_rows_take_suffixes() {
        assert_eq!(tile_row("12.mvt"), "12");
        assert_eq!(tile_row("12.pbf"), "12");
        assert_eq!(tile_row("12"), "12");
    }
}
