//! NGSI-LD geo-queries (ETSI GS CIM 009 clause 4.10): parsing `georel`/`geometry`/`coordinates`, GeoJSON validation
//! and conversion, and evaluation of near/within/contains/intersects/disjoint/equals/overlaps on WGS84 lon/lat data.

use geo::{
    BoundingRect, Closest, Contains, Coord, Distance, Geometry, GeometryCollection, Haversine,
    HaversineClosestPoint, Intersects, Line, LineString, MultiLineString, MultiPoint, MultiPolygon,
    Point, Polygon, Relate, Within,
};
use serde_json::Value;

use crate::entity::Entity;
use crate::query::QueryError;

/// Metres per degree of latitude on the sphere used for distances (mean radius 6 371 008.8 m).
const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;
/// Coordinate tolerance of `equals`.
const EQUALS_TOLERANCE: f64 = 1e-9;
/// How deep GeometryCollections may nest.
const MAX_COLLECTION_DEPTH: usize = 4;

/// The geo-relationship of a geo-query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GeoRel {
    /// Distance from the query point, in metres: `<= max_distance` and `>= min_distance`.
    Near {
        max_distance: Option<f64>,
        min_distance: Option<f64>,
    },
    /// The entity geometry is within the query geometry.
    Within,
    /// The entity geometry contains the query geometry.
    Contains,
    Intersects,
    Disjoint,
    /// Same geometry, coordinate by coordinate (tolerance 1e-9 degrees).
    Equals,
    /// DE-9IM overlaps.
    Overlaps,
}

impl GeoRel {
    /// Parses the `georel` text: `near;maxDistance==2000`, `near;minDistance==10;maxDistance==50`, `within`, ...
    pub fn parse(text: &str) -> Result<GeoRel, QueryError> {
        let mut parts = text.split(';');
        let name = parts.next().unwrap_or_default();
        let rel = match name {
            "near" => {
                let (mut max_distance, mut min_distance) = (None, None);
                for part in parts {
                    let (key, num) = part.split_once("==").ok_or_else(|| {
                        QueryError(format!(
                            "georel: expected maxDistance==<metres> or minDistance==<metres> after 'near;', found {part:?}"
                        ))
                    })?;
                    let d: f64 = num.parse().ok().filter(|d: &f64| d.is_finite() && *d >= 0.0).ok_or_else(|| {
                        QueryError(format!("georel: {key} must be a non-negative number of metres, found {num:?}"))
                    })?;
                    let slot = match key {
                        "maxDistance" => &mut max_distance,
                        "minDistance" => &mut min_distance,
                        _ => {
                            return Err(QueryError(format!(
                                "georel: unknown near modifier {key:?}; expected maxDistance or minDistance"
                            )))
                        }
                    };
                    if slot.replace(d).is_some() {
                        return Err(QueryError(format!("georel: {key} is given twice")));
                    }
                }
                if max_distance.is_none() && min_distance.is_none() {
                    return Err(QueryError(
                        "georel: near needs maxDistance==<metres> and/or minDistance==<metres>".into(),
                    ));
                }
                if let (Some(max), Some(min)) = (max_distance, min_distance) {
                    if min > max {
                        return Err(QueryError(format!(
                            "georel: minDistance {min} is greater than maxDistance {max}"
                        )));
                    }
                }
                return Ok(GeoRel::Near { max_distance, min_distance });
            }
            "within" => GeoRel::Within,
            "contains" => GeoRel::Contains,
            "intersects" => GeoRel::Intersects,
            "disjoint" => GeoRel::Disjoint,
            "equals" => GeoRel::Equals,
            "overlaps" => GeoRel::Overlaps,
            "" => return Err(QueryError("georel is empty".into())),
            other => {
                return Err(QueryError(format!(
                    "georel: unknown relationship {other:?}; expected near, within, contains, intersects, disjoint, \
                     equals or overlaps"
                )))
            }
        };
        if let Some(extra) = parts.next() {
            return Err(QueryError(format!(
                "georel: {name} takes no modifiers, found {extra:?}"
            )));
        }
        Ok(rel)
    }

    pub fn name(&self) -> &'static str {
        match self {
            GeoRel::Near { .. } => "near",
            GeoRel::Within => "within",
            GeoRel::Contains => "contains",
            GeoRel::Intersects => "intersects",
            GeoRel::Disjoint => "disjoint",
            GeoRel::Equals => "equals",
            GeoRel::Overlaps => "overlaps",
        }
    }
}

/// A parsed geo-query.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoQuery {
    pub georel: GeoRel,
    pub geometry: Geometry<f64>,
    /// The GeoProperty to test (expanded after `expand_names`).
    pub geoproperty: String,
}

impl GeoQuery {
    /// from URL parameters: georel text ("near;maxDistance==2000"), geometry type name ("Point", "Polygon", ...),
    /// coordinates JSON text ("[8.68,49.4]"), geoproperty (None = "location"; the caller expands it afterwards via
    /// expand_names)
    pub fn parse(
        georel: &str,
        geometry: &str,
        coordinates: &str,
        geoproperty: Option<&str>,
    ) -> Result<GeoQuery, QueryError> {
        let coords: Value = serde_json::from_str(coordinates.trim())
            .map_err(|e| QueryError(format!("coordinates are not valid JSON ({e})")))?;
        Self::build(georel, geometry, coords, geoproperty)
    }

    /// from a JSON geoQ object (subscriptions, POST /entityOperations/query): {"geometry":"Point","coordinates":[..]
    /// (array or JSON text string),"georel":"...","geoproperty":"..."}
    pub fn from_json(v: &Value) -> Result<GeoQuery, QueryError> {
        let obj = v
            .as_object()
            .ok_or_else(|| QueryError(format!("geoQ must be a JSON object, found {}", kind(v))))?;
        let text = |key: &str| -> Result<Option<&str>, QueryError> {
            match obj.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(QueryError(format!(
                    "geoQ {key} must be a string, found {}",
                    kind(other)
                ))),
            }
        };
        let georel = text("georel")?.ok_or_else(|| QueryError("geoQ has no georel".into()))?;
        let geometry =
            text("geometry")?.ok_or_else(|| QueryError("geoQ has no geometry".into()))?;
        let geoproperty = text("geoproperty")?;
        let coords = match obj.get("coordinates") {
            None => return Err(QueryError("geoQ has no coordinates".into())),
            Some(Value::String(s)) => serde_json::from_str(s.trim())
                .map_err(|e| QueryError(format!("geoQ coordinates are not valid JSON ({e})")))?,
            Some(other) => other.clone(),
        };
        Self::build(georel, geometry, coords, geoproperty)
    }

    fn build(
        georel: &str,
        geometry: &str,
        coords: Value,
        geoproperty: Option<&str>,
    ) -> Result<GeoQuery, QueryError> {
        let georel = GeoRel::parse(georel)?;
        if geometry == "GeometryCollection" {
            return Err(QueryError(
                "geometry: GeometryCollection cannot be used in a geo-query".into(),
            ));
        }
        let mut obj = serde_json::Map::new();
        obj.insert("type".into(), Value::String(geometry.to_string()));
        obj.insert("coordinates".into(), coords);
        let geometry = geometry_from_geojson(&Value::Object(obj))?;
        if matches!(georel, GeoRel::Near { .. }) && !matches!(geometry, Geometry::Point(_)) {
            return Err(QueryError("georel near needs a Point geometry".into()));
        }
        let geoproperty = match geoproperty {
            None => "location".to_string(),
            Some("") => return Err(QueryError("geoproperty is empty".into())),
            Some(p) => p.to_string(),
        };
        Ok(GeoQuery {
            georel,
            geometry,
            geoproperty,
        })
    }

    /// Expands the geoproperty name.
    pub fn expand_names(&mut self, f: &dyn Fn(&str) -> String) {
        self.geoproperty = f(&self.geoproperty);
    }

    /// Whether any geometry of any instance of the geoproperty satisfies the georel.
    pub fn matches(&self, e: &Entity) -> bool {
        e.geometries(&self.geoproperty)
            .any(|v| geometry_from_geojson(v).is_ok_and(|g| self.matches_geometry(&g)))
    }

    /// Whether an entity geometry satisfies the georel.
    pub fn matches_geometry(&self, g: &Geometry<f64>) -> bool {
        let q = &self.geometry;
        match self.georel {
            GeoRel::Near {
                max_distance,
                min_distance,
            } => {
                let Geometry::Point(p) = q else {
                    return false;
                };
                let d = distance_m(*p, g);
                if d.is_nan() {
                    return false;
                }
                max_distance.is_none_or(|max| d <= max) && min_distance.is_none_or(|min| d >= min)
            }
            GeoRel::Within => g.is_within(q),
            GeoRel::Contains => g.contains(q),
            GeoRel::Intersects => g.intersects(q),
            GeoRel::Disjoint => !g.intersects(q),
            GeoRel::Equals => geometries_equal(g, q),
            GeoRel::Overlaps => g.relate(q).is_overlaps(),
        }
    }

    /// lon/lat window [min_lon, min_lat, max_lon, max_lat] that contains every geometry that can match (None when
    /// unbounded: disjoint, near with only minDistance). Precisely: the bounding box of every geometry that can
    /// match intersects this window, so an R-tree "envelope intersects window" lookup finds all candidates.
    pub fn search_window(&self) -> Option<[f64; 4]> {
        match self.georel {
            GeoRel::Disjoint => None,
            GeoRel::Near {
                max_distance: None, ..
            } => None,
            GeoRel::Near {
                max_distance: Some(d),
                ..
            } => {
                let Geometry::Point(p) = &self.geometry else {
                    return None;
                };
                Some(circle_window(p.x(), p.y(), d))
            }
            _ => bbox(&self.geometry),
        }
    }
}

/// A lon/lat box around a circle of `d` metres (with a small safety margin); the full longitude range when the
/// circle reaches a pole or crosses the antimeridian.
fn circle_window(lon: f64, lat: f64, d: f64) -> [f64; 4] {
    let dlat = d / METRES_PER_DEGREE * 1.01 + 1e-7;
    let min_lat = (lat - dlat).max(-90.0);
    let max_lat = (lat + dlat).min(90.0);
    // Longitude span is widest at the latitude furthest from the equator.
    let widest = min_lat.abs().max(max_lat.abs());
    if widest >= 89.999 {
        return [-180.0, min_lat, 180.0, max_lat];
    }
    let dlon = dlat / widest.to_radians().cos();
    if dlon >= 180.0 || lon - dlon < -180.0 || lon + dlon > 180.0 {
        return [-180.0, min_lat, 180.0, max_lat];
    }
    [lon - dlon, min_lat, lon + dlon, max_lat]
}

fn bbox(g: &Geometry<f64>) -> Option<[f64; 4]> {
    g.bounding_rect()
        .map(|r| [r.min().x, r.min().y, r.max().x, r.max().y])
}

/// bbox of a GeoJSON geometry value, for an R-tree index: [min_lon, min_lat, max_lon, max_lat]
pub fn geojson_bbox(v: &Value) -> Option<[f64; 4]> {
    geometry_from_geojson(v).ok().as_ref().and_then(bbox)
}

// ---------------------------------------------------------------------------------------------------------------
// Distances (metres, haversine on the GRS80 mean-radius sphere)
// ---------------------------------------------------------------------------------------------------------------

fn point_distance(a: Point<f64>, b: Point<f64>) -> f64 {
    Haversine.distance(a, b)
}

fn segment_distance(p: Point<f64>, a: Coord<f64>, b: Coord<f64>) -> f64 {
    let ends = point_distance(p, a.into()).min(point_distance(p, b.into()));
    if a == b {
        return ends;
    }
    match Line::new(a, b).haversine_closest_point(&p) {
        Closest::Intersection(_) => 0.0,
        Closest::SinglePoint(q) => {
            let d = point_distance(p, q);
            if d.is_nan() {
                ends
            } else {
                d.min(ends)
            }
        }
        Closest::Indeterminate => ends,
    }
}

fn linestring_distance(p: Point<f64>, ls: &LineString<f64>) -> f64 {
    match ls.0.as_slice() {
        [] => f64::INFINITY,
        [only] => point_distance(p, (*only).into()),
        coords => coords
            .windows(2)
            .map(|w| segment_distance(p, w[0], w[1]))
            .fold(f64::INFINITY, f64::min),
    }
}

fn polygon_distance(p: Point<f64>, poly: &Polygon<f64>) -> f64 {
    if poly.intersects(&p) {
        return 0.0;
    }
    std::iter::once(poly.exterior())
        .chain(poly.interiors())
        .map(|ring| linestring_distance(p, ring))
        .fold(f64::INFINITY, f64::min)
}

/// Distance in metres from a point to the nearest point of a geometry (0 when the point is on or inside it).
pub fn distance_m(p: Point<f64>, g: &Geometry<f64>) -> f64 {
    match g {
        Geometry::Point(q) => point_distance(p, *q),
        Geometry::Line(l) => segment_distance(p, l.start, l.end),
        Geometry::LineString(ls) => linestring_distance(p, ls),
        Geometry::Polygon(poly) => polygon_distance(p, poly),
        Geometry::MultiPoint(mp) => mp
            .iter()
            .map(|q| point_distance(p, *q))
            .fold(f64::INFINITY, f64::min),
        Geometry::MultiLineString(mls) => mls
            .iter()
            .map(|ls| linestring_distance(p, ls))
            .fold(f64::INFINITY, f64::min),
        Geometry::MultiPolygon(mp) => mp
            .iter()
            .map(|poly| polygon_distance(p, poly))
            .fold(f64::INFINITY, f64::min),
        Geometry::GeometryCollection(gc) => gc
            .iter()
            .map(|g| distance_m(p, g))
            .fold(f64::INFINITY, f64::min),
        Geometry::Rect(r) => polygon_distance(p, &r.to_polygon()),
        Geometry::Triangle(t) => polygon_distance(p, &t.to_polygon()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// equals
// ---------------------------------------------------------------------------------------------------------------

fn coords_equal(a: &Coord<f64>, b: &Coord<f64>) -> bool {
    (a.x - b.x).abs() <= EQUALS_TOLERANCE && (a.y - b.y).abs() <= EQUALS_TOLERANCE
}

fn lines_equal(a: &LineString<f64>, b: &LineString<f64>) -> bool {
    a.0.len() == b.0.len() && a.0.iter().zip(&b.0).all(|(x, y)| coords_equal(x, y))
}

fn polygons_equal(a: &Polygon<f64>, b: &Polygon<f64>) -> bool {
    lines_equal(a.exterior(), b.exterior())
        && a.interiors().len() == b.interiors().len()
        && a.interiors()
            .iter()
            .zip(b.interiors())
            .all(|(x, y)| lines_equal(x, y))
}

/// Same geometry type and structure, coordinates equal within 1e-9 degrees.
pub fn geometries_equal(a: &Geometry<f64>, b: &Geometry<f64>) -> bool {
    use Geometry as G;
    match (a, b) {
        (G::Point(x), G::Point(y)) => coords_equal(&x.0, &y.0),
        (G::Line(x), G::Line(y)) => {
            coords_equal(&x.start, &y.start) && coords_equal(&x.end, &y.end)
        }
        (G::LineString(x), G::LineString(y)) => lines_equal(x, y),
        (G::Polygon(x), G::Polygon(y)) => polygons_equal(x, y),
        (G::MultiPoint(x), G::MultiPoint(y)) => {
            x.0.len() == y.0.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| coords_equal(&p.0, &q.0))
        }
        (G::MultiLineString(x), G::MultiLineString(y)) => {
            x.0.len() == y.0.len() && x.iter().zip(y.iter()).all(|(p, q)| lines_equal(p, q))
        }
        (G::MultiPolygon(x), G::MultiPolygon(y)) => {
            x.0.len() == y.0.len() && x.iter().zip(y.iter()).all(|(p, q)| polygons_equal(p, q))
        }
        (G::GeometryCollection(x), G::GeometryCollection(y)) => {
            x.0.len() == y.0.len() && x.iter().zip(y.iter()).all(|(p, q)| geometries_equal(p, q))
        }
        (G::Rect(x), G::Rect(y)) => {
            coords_equal(&x.min(), &y.min()) && coords_equal(&x.max(), &y.max())
        }
        (G::Triangle(x), G::Triangle(y)) => x
            .to_array()
            .iter()
            .zip(y.to_array().iter())
            .all(|(p, q)| coords_equal(p, q)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// GeoJSON validation and conversion
// ---------------------------------------------------------------------------------------------------------------

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Validates and converts a GeoJSON geometry object (Point, MultiPoint, LineString, MultiLineString, Polygon,
/// MultiPolygon, GeometryCollection): right coordinate nesting, ≥2 points per line, closed rings with ≥4 positions,
/// longitude in [-180,180], latitude in [-90,90], finite numbers. Err explains exactly what is wrong (e.g. "Polygon
/// ring 0 is not closed").
pub fn geometry_from_geojson(v: &Value) -> Result<Geometry<f64>, QueryError> {
    geometry_at(v, 0)
}

fn geometry_at(v: &Value, depth: usize) -> Result<Geometry<f64>, QueryError> {
    let obj = v.as_object().ok_or_else(|| {
        QueryError(format!(
            "a GeoJSON geometry must be a JSON object, found {}",
            kind(v)
        ))
    })?;
    let ty = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(QueryError(format!(
                "GeoJSON geometry \"type\" must be a string, found {}",
                kind(other)
            )))
        }
        None => return Err(QueryError("GeoJSON geometry has no \"type\"".into())),
    };
    if ty == "GeometryCollection" {
        if depth >= MAX_COLLECTION_DEPTH {
            return Err(QueryError(format!(
                "GeometryCollections are nested deeper than {MAX_COLLECTION_DEPTH} levels"
            )));
        }
        let items = match obj.get("geometries") {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(QueryError(format!(
                    "GeometryCollection \"geometries\" must be an array, found {}",
                    kind(other)
                )))
            }
            None => {
                return Err(QueryError(
                    "GeometryCollection has no \"geometries\"".into(),
                ))
            }
        };
        let geoms = items
            .iter()
            .enumerate()
            .map(|(i, g)| {
                geometry_at(g, depth + 1)
                    .map_err(|e| QueryError(format!("GeometryCollection geometry {i}: {}", e.0)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Geometry::GeometryCollection(GeometryCollection(geoms)));
    }
    let coords = obj
        .get("coordinates")
        .ok_or_else(|| QueryError(format!("{ty} has no \"coordinates\"")))?;
    Ok(match ty {
        "Point" => Geometry::Point(Point(position(coords, "Point coordinates")?)),
        "MultiPoint" => {
            let items = array(coords, "MultiPoint coordinates", "an array of positions")?;
            let points = items
                .iter()
                .enumerate()
                .map(|(i, p)| position(p, &format!("MultiPoint position {i}")).map(Point))
                .collect::<Result<Vec<_>, _>>()?;
            Geometry::MultiPoint(MultiPoint(points))
        }
        "LineString" => Geometry::LineString(line_string(coords, "LineString")?),
        "MultiLineString" => {
            let items = array(coords, "MultiLineString coordinates", "an array of lines")?;
            let lines = items
                .iter()
                .enumerate()
                .map(|(i, l)| line_string(l, &format!("MultiLineString line {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            Geometry::MultiLineString(MultiLineString(lines))
        }
        "Polygon" => Geometry::Polygon(polygon(coords, "Polygon")?),
        "MultiPolygon" => {
            let items = array(coords, "MultiPolygon coordinates", "an array of polygons")?;
            let polys = items
                .iter()
                .enumerate()
                .map(|(i, p)| polygon(p, &format!("MultiPolygon polygon {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            Geometry::MultiPolygon(MultiPolygon(polys))
        }
        other => {
            return Err(QueryError(format!(
                "unsupported geometry type {other:?}; expected Point, MultiPoint, LineString, MultiLineString, \
                 Polygon, MultiPolygon or GeometryCollection"
            )))
        }
    })
}

fn array<'a>(v: &'a Value, ctx: &str, what: &str) -> Result<&'a Vec<Value>, QueryError> {
    v.as_array()
        .ok_or_else(|| QueryError(format!("{ctx} must be {what}, found {}", kind(v))))
}

fn position(v: &Value, ctx: &str) -> Result<Coord<f64>, QueryError> {
    let items = array(v, ctx, "a position [longitude, latitude]")?;
    if items.len() != 2 && items.len() != 3 {
        return Err(QueryError(format!(
            "{ctx} has {} elements; a position has 2 or 3 ([longitude, latitude] or [longitude, latitude, altitude])",
            items.len()
        )));
    }
    let mut nums = [0.0f64; 3];
    for (i, item) in items.iter().enumerate() {
        let n = item.as_f64().ok_or_else(|| {
            QueryError(format!(
                "{ctx}: element {i} must be a number, found {}",
                kind(item)
            ))
        })?;
        if !n.is_finite() {
            return Err(QueryError(format!(
                "{ctx}: element {i} is not a finite number"
            )));
        }
        nums[i] = n;
    }
    let (lon, lat) = (nums[0], nums[1]);
    if !(-180.0..=180.0).contains(&lon) {
        return Err(QueryError(format!(
            "{ctx}: longitude {lon} is outside [-180, 180]"
        )));
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(QueryError(format!(
            "{ctx}: latitude {lat} is outside [-90, 90]"
        )));
    }
    Ok(Coord { x: lon, y: lat })
}

fn positions(v: &Value, ctx: &str) -> Result<Vec<Coord<f64>>, QueryError> {
    let items = array(v, &format!("{ctx} coordinates"), "an array of positions")?;
    items
        .iter()
        .enumerate()
        .map(|(i, p)| position(p, &format!("{ctx} position {i}")))
        .collect()
}

fn line_string(v: &Value, ctx: &str) -> Result<LineString<f64>, QueryError> {
    let coords = positions(v, ctx)?;
    if coords.len() < 2 {
        return Err(QueryError(format!(
            "{ctx} has {} position(s); a line needs at least 2",
            coords.len()
        )));
    }
    Ok(LineString(coords))
}

fn polygon(v: &Value, ctx: &str) -> Result<Polygon<f64>, QueryError> {
    let rings = array(v, &format!("{ctx} coordinates"), "an array of linear rings")?;
    if rings.is_empty() {
        return Err(QueryError(format!(
            "{ctx} has no rings; it needs an exterior ring"
        )));
    }
    let mut out = Vec::with_capacity(rings.len());
    for (i, ring) in rings.iter().enumerate() {
        let rctx = format!("{ctx} ring {i}");
        let coords = positions(ring, &rctx)?;
        if coords.len() < 4 {
            return Err(QueryError(format!(
                "{rctx} has {} position(s); a linear ring needs at least 4",
                coords.len()
            )));
        }
        let (first, last) = (coords[0], coords[coords.len() - 1]);
        if first != last {
            return Err(QueryError(format!(
                "{rctx} is not closed: its first position [{}, {}] differs from its last [{}, {}]",
                first.x, first.y, last.x, last.y
            )));
        }
        out.push(LineString(coords));
    }
    let exterior = out.remove(0);
    Ok(Polygon::new(exterior, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{AttrKind, Attribute};
    use geo::Destination;
    use serde_json::json;

    fn gq(georel: &str, geometry: &str, coords: &str) -> GeoQuery {
        GeoQuery::parse(georel, geometry, coords, None)
            .unwrap_or_else(|e| panic!("{georel} {coords}: {e}"))
    }

    fn geom(v: Value) -> Geometry<f64> {
        geometry_from_geojson(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn entity_at(v: Value) -> Entity {
        let mut e = Entity::new("urn:ngsi-ld:Thing:1", "Thing");
        e.attrs.insert(
            "location".into(),
            vec![Attribute::new(AttrKind::GeoProperty, v)],
        );
        e
    }

    const SQUARE: &str = "[[[8.0,49.0],[9.0,49.0],[9.0,50.0],[8.0,50.0],[8.0,49.0]]]";

    #[test]
    fn near_500_m() {
        let origin = Point::new(8.68, 49.4);
        let p = Haversine.destination(origin, 45.0, 500.0);
        let e = entity_at(json!({"type": "Point", "coordinates": [p.x(), p.y()]}));
        assert!(gq("near;maxDistance==1000", "Point", "[8.68,49.4]").matches(&e));
        assert!(!gq("near;maxDistance==400", "Point", "[8.68,49.4]").matches(&e));
        assert!(gq("near;minDistance==400", "Point", "[8.68,49.4]").matches(&e));
        assert!(!gq("near;minDistance==600", "Point", "[8.68,49.4]").matches(&e));
        assert!(gq(
            "near;minDistance==400;maxDistance==600",
            "Point",
            "[8.68,49.4]"
        )
        .matches(&e));
        assert!(gq("near;maxDistance==500.001", "Point", "[8.68,49.4]").matches(&e));
        assert!(!gq("near;maxDistance==499.99", "Point", "[8.68,49.4]").matches(&e));
    }

    #[test]
    fn near_line_and_polygon() {
        // A line running north-south 0.01 degrees east of the query point, at the equator: ~1112 m away.
        let line = geom(json!({"type": "LineString", "coordinates": [[0.01, -1.0], [0.01, 1.0]]}));
        let q = gq("near;maxDistance==1200", "Point", "[0,0]");
        assert!(q.matches_geometry(&line));
        assert!(!gq("near;maxDistance==1000", "Point", "[0,0]").matches_geometry(&line));
        let d = distance_m(Point::new(0.0, 0.0), &line);
        assert!((d - 1111.95).abs() < 1.0, "{d}");
        // Inside a polygon: distance 0.
        let poly = geom(
            json!({"type": "Polygon", "coordinates": serde_json::from_str::<Value>(SQUARE).unwrap()}),
        );
        assert_eq!(distance_m(Point::new(8.5, 49.5), &poly), 0.0);
        assert!(gq("near;maxDistance==0", "Point", "[8.5,49.5]").matches_geometry(&poly));
        // Outside, 0.1 degree of longitude west of the western edge (a meridian, so a great circle).
        let d = distance_m(Point::new(7.9, 49.5), &poly);
        assert!((d - 7_220.9).abs() < 10.0, "{d}");
        // Edges are great-circle arcs: the southern edge bulges north of the 49th parallel by ~120 m.
        let d = distance_m(Point::new(8.5, 48.9), &poly);
        assert!(d > 11_119.5 && d < 11_260.0, "{d}");
        let mp = geom(json!({"type": "MultiPoint", "coordinates": [[10.0, 10.0], [0.0, 0.001]]}));
        assert!((distance_m(Point::new(0.0, 0.0), &mp) - 111.2).abs() < 0.5);
    }

    #[test]
    fn within_contains() {
        let outer = SQUARE;
        let inner = json!({"type": "Polygon", "coordinates": [[[8.2,49.2],[8.4,49.2],[8.4,49.4],[8.2,49.4],[8.2,49.2]]]});
        let e = entity_at(inner.clone());
        assert!(gq("within", "Polygon", outer).matches(&e));
        let e_point = entity_at(json!({"type": "Point", "coordinates": [8.5, 49.5]}));
        assert!(gq("within", "Polygon", outer).matches(&e_point));
        let far = entity_at(json!({"type": "Point", "coordinates": [10.5, 49.5]}));
        assert!(!gq("within", "Polygon", outer).matches(&far));
        // contains: the entity polygon contains the query point / polygon
        let big = entity_at(
            json!({"type": "Polygon", "coordinates": serde_json::from_str::<Value>(SQUARE).unwrap()}),
        );
        assert!(gq("contains", "Point", "[8.3,49.3]").matches(&big));
        assert!(!gq("contains", "Point", "[7.3,49.3]").matches(&big));
        let inner_coords = inner["coordinates"].to_string();
        assert!(gq("contains", "Polygon", &inner_coords).matches(&big));
        assert!(!gq("within", "Polygon", &inner_coords).matches(&big));
    }

    #[test]
    fn intersects_disjoint() {
        let q = gq("intersects", "Polygon", SQUARE);
        let crossing =
            geom(json!({"type": "LineString", "coordinates": [[7.0, 49.5], [10.0, 49.5]]}));
        let away = geom(json!({"type": "LineString", "coordinates": [[7.0, 51.5], [10.0, 51.5]]}));
        assert!(q.matches_geometry(&crossing));
        assert!(!q.matches_geometry(&away));
        let d = gq("disjoint", "Polygon", SQUARE);
        assert!(!d.matches_geometry(&crossing));
        assert!(d.matches_geometry(&away));
        assert_eq!(d.search_window(), None);
    }

    #[test]
    fn equals_and_overlaps() {
        let q = gq("equals", "Point", "[8.68,49.4]");
        assert!(q.matches_geometry(&geom(
            json!({"type": "Point", "coordinates": [8.68, 49.4000000001]})
        )));
        assert!(!q.matches_geometry(&geom(
            json!({"type": "Point", "coordinates": [8.68, 49.401]})
        )));
        assert!(!q.matches_geometry(&geom(
            json!({"type": "MultiPoint", "coordinates": [[8.68, 49.4]]})
        )));
        let o = gq("overlaps", "Polygon", SQUARE);
        let shifted = geom(
            json!({"type": "Polygon", "coordinates": [[[8.5,49.5],[9.5,49.5],[9.5,50.5],[8.5,50.5],[8.5,49.5]]]}),
        );
        let inside = geom(
            json!({"type": "Polygon", "coordinates": [[[8.2,49.2],[8.4,49.2],[8.4,49.4],[8.2,49.4],[8.2,49.2]]]}),
        );
        assert!(o.matches_geometry(&shifted));
        assert!(!o.matches_geometry(&inside));
        let eq = gq("equals", "Polygon", SQUARE);
        assert!(eq.matches_geometry(&geom(json!({"type": "Polygon", "coordinates": serde_json::from_str::<Value>(SQUARE).unwrap()}))));
        assert!(!eq.matches_geometry(&shifted));
    }

    #[test]
    fn entity_instances_and_geoproperty() {
        let mut e = Entity::new("urn:x:1", "T");
        let mut a = Attribute::new(
            AttrKind::GeoProperty,
            json!({"type": "Point", "coordinates": [0.0, 0.0]}),
        );
        a.dataset_id = Some("urn:d:1".into());
        let b = Attribute::new(
            AttrKind::GeoProperty,
            json!({"type": "Point", "coordinates": [8.5, 49.5]}),
        );
        e.attrs.insert("https://example.org/pos".into(), vec![a, b]);
        let mut q = GeoQuery::parse("within", "Polygon", SQUARE, Some("pos")).unwrap();
        assert!(!q.matches(&e));
        q.expand_names(&|n| format!("https://example.org/{n}"));
        assert!(q.matches(&e));
        // not a GeoProperty / invalid geometry stored: ignored
        let mut bad = Entity::new("urn:x:2", "T");
        bad.attrs.insert(
            "location".into(),
            vec![Attribute::property(
                json!({"type": "Point", "coordinates": [8.5, 49.5]}),
            )],
        );
        bad.attrs.insert(
            "x".into(),
            vec![Attribute::new(AttrKind::GeoProperty, json!("garbage"))],
        );
        assert!(!gq("within", "Polygon", SQUARE).matches(&bad));
        assert!(!GeoQuery::parse("within", "Polygon", SQUARE, Some("x"))
            .unwrap()
            .matches(&bad));
    }

    #[test]
    fn from_json() {
        let v = json!({"geometry": "Point", "coordinates": [8.68, 49.4], "georel": "near;maxDistance==2000"});
        let q = GeoQuery::from_json(&v).unwrap();
        assert_eq!(q.geoproperty, "location");
        assert_eq!(
            q.georel,
            GeoRel::Near {
                max_distance: Some(2000.0),
                min_distance: None
            }
        );
        let v = json!({"geometry": "Polygon", "coordinates": SQUARE, "georel": "within", "geoproperty": "area"});
        let q = GeoQuery::from_json(&v).unwrap();
        assert_eq!(q.geoproperty, "area");
        assert!(matches!(q.geometry, Geometry::Polygon(_)));
        assert!(GeoQuery::from_json(&json!([]))
            .unwrap_err()
            .0
            .contains("JSON object"));
        assert!(
            GeoQuery::from_json(&json!({"geometry": "Point", "coordinates": [0, 0]}))
                .unwrap_err()
                .0
                .contains("georel")
        );
        assert!(
            GeoQuery::from_json(&json!({"georel": "within", "coordinates": [0, 0]}))
                .unwrap_err()
                .0
                .contains("geometry")
        );
        assert!(
            GeoQuery::from_json(&json!({"georel": "within", "geometry": "Point"}))
                .unwrap_err()
                .0
                .contains("coordinates")
        );
        assert!(GeoQuery::from_json(
            &json!({"georel": 1, "geometry": "Point", "coordinates": [0, 0]})
        )
        .unwrap_err()
        .0
        .contains("must be a string"));
        assert!(GeoQuery::from_json(
            &json!({"georel": "within", "geometry": "Point", "coordinates": "[0,"})
        )
        .unwrap_err()
        .0
        .contains("not valid JSON"));
    }

    #[test]
    fn georel_errors() {
        let e = |g: &str| GeoRel::parse(g).unwrap_err().0;
        assert!(e("near").contains("needs maxDistance"));
        assert!(e("near;maxDistance=100").contains("expected maxDistance=="));
        assert!(e("near;maxDistance==-1").contains("non-negative"));
        assert!(e("near;maxDistance==abc").contains("non-negative"));
        assert!(e("near;maxDistance==1e999").contains("non-negative"));
        assert!(e("near;maxDistance==NaN").contains("non-negative"));
        assert!(e("near;farDistance==1").contains("unknown near modifier"));
        assert!(e("near;maxDistance==1;maxDistance==2").contains("twice"));
        assert!(e("near;minDistance==10;maxDistance==2").contains("greater"));
        assert!(e("nearby").contains("unknown relationship"));
        assert!(e("within;maxDistance==1").contains("no modifiers"));
        assert!(e("").contains("empty"));
        assert_eq!(GeoRel::parse("overlaps").unwrap(), GeoRel::Overlaps);
        assert_eq!(GeoRel::parse("equals").unwrap().name(), "equals");
        let err = GeoQuery::parse("near;maxDistance==10", "Polygon", SQUARE, None)
            .unwrap_err()
            .0;
        assert!(err.contains("Point"), "{err}");
        assert!(GeoQuery::parse("within", "Polygon", "[[[0,0]", None)
            .unwrap_err()
            .0
            .contains("not valid JSON"));
        assert!(GeoQuery::parse("within", "Circle", "[0,0]", None)
            .unwrap_err()
            .0
            .contains("unsupported geometry"));
        assert!(GeoQuery::parse("within", "Point", "[0,0]", Some("")).is_err());
    }

    #[test]
    fn geojson_validation_messages() {
        let e = |v: Value| geometry_from_geojson(&v).unwrap_err().0;
        assert!(e(json!("Point")).contains("must be a JSON object"));
        assert!(e(json!({"coordinates": [0, 0]})).contains("no \"type\""));
        assert!(e(json!({"type": 5})).contains("must be a string"));
        assert!(e(json!({"type": "Point"})).contains("Point has no \"coordinates\""));
        assert!(e(json!({"type": "Point", "coordinates": [1]})).contains("has 1 elements"));
        assert!(e(json!({"type": "Point", "coordinates": [1, 2, 3, 4]})).contains("has 4 elements"));
        assert!(e(json!({"type": "Point", "coordinates": [[1, 2], 3]}))
            .contains("element 0 must be a number"));
        assert!(e(json!({"type": "Point", "coordinates": [200, 0]}))
            .contains("longitude 200 is outside [-180, 180]"));
        assert!(e(json!({"type": "Point", "coordinates": [0, -91]}))
            .contains("latitude -91 is outside [-90, 90]"));
        assert!(e(json!({"type": "Point", "coordinates": ["1", 2]})).contains("must be a number"));
        assert!(e(json!({"type": "LineString", "coordinates": [[0, 0]]}))
            .contains("LineString has 1 position(s)"));
        assert!(e(json!({"type": "LineString", "coordinates": [0, 0]}))
            .contains("LineString position 0"));
        assert!(
            e(json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}))
                .contains("Polygon ring 0 is not closed")
        );
        assert!(
            e(json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}))
                .contains("Polygon ring 0 has 3 position(s); a linear ring needs at least 4")
        );
        assert!(e(json!({"type": "Polygon", "coordinates": []})).contains("no rings"));
        assert!(
            e(json!({"type": "Polygon", "coordinates": [[0, 0], [1, 1]]}))
                .contains("Polygon ring 0 position 0 must be a position")
        );
        assert!(e(json!({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[0, 0], [1, 0], [1, 1], [0, 1]]]]}))
            .contains("MultiPolygon polygon 1 ring 0 is not closed"));
        assert!(
            e(json!({"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]], [[0, 0]]]}))
                .contains("MultiLineString line 1")
        );
        assert!(
            e(json!({"type": "MultiPoint", "coordinates": [[0, 0], [0, 100]]}))
                .contains("MultiPoint position 1: latitude")
        );
        assert!(e(json!({"type": "Circle", "coordinates": [0, 0]}))
            .contains("unsupported geometry type"));
        assert!(e(json!({"type": "GeometryCollection"})).contains("no \"geometries\""));
        assert!(e(json!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0]}]}))
            .contains("GeometryCollection geometry 0: Point coordinates"));
    }

    #[test]
    fn geojson_valid_kinds() {
        for v in [
            json!({"type": "Point", "coordinates": [1, 2, 100]}),
            json!({"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]}),
            json!({"type": "LineString", "coordinates": [[1, 2], [3, 4]]}),
            json!({"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]]]}),
            json!({"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[1, 1], [2, 1], [2, 2], [1, 1]]]}),
            json!({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}),
            json!({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]}]}),
            json!({"type": "MultiPoint", "coordinates": []}),
        ] {
            geom(v);
        }
    }

    #[test]
    fn bboxes_and_windows() {
        let v = json!({"type": "LineString", "coordinates": [[1, 2], [3, -4]]});
        assert_eq!(geojson_bbox(&v), Some([1.0, -4.0, 3.0, 2.0]));
        assert_eq!(
            geojson_bbox(&json!({"type": "Point", "coordinates": [5, 6]})),
            Some([5.0, 6.0, 5.0, 6.0])
        );
        assert_eq!(geojson_bbox(&json!({"type": "Point"})), None);
        assert_eq!(
            geojson_bbox(&json!({"type": "MultiPoint", "coordinates": []})),
            None
        );
        assert_eq!(
            gq("within", "Polygon", SQUARE).search_window(),
            Some([8.0, 49.0, 9.0, 50.0])
        );
        assert_eq!(
            gq("near;minDistance==5", "Point", "[0,0]").search_window(),
            None
        );
        let w = gq("near;maxDistance==1000", "Point", "[8.68,49.4]")
            .search_window()
            .unwrap();
        // every point within 1000 m lies inside the window
        for bearing in (0..360).step_by(15) {
            let p = Haversine.destination(Point::new(8.68, 49.4), bearing as f64, 1000.0);
            assert!(
                p.x() >= w[0] && p.x() <= w[2] && p.y() >= w[1] && p.y() <= w[3],
                "{bearing} {p:?} {w:?}"
            );
        }
        assert!(w[2] - w[0] < 0.05 && w[3] - w[1] < 0.05);
        // near the pole / antimeridian: full longitude range
        let w = gq("near;maxDistance==100000", "Point", "[0,89.5]")
            .search_window()
            .unwrap();
        assert_eq!((w[0], w[2], w[3]), (-180.0, 180.0, 90.0));
        let w = gq("near;maxDistance==100000", "Point", "[179.9,0]")
            .search_window()
            .unwrap();
        assert_eq!((w[0], w[2]), (-180.0, 180.0));
        let w = gq("near;maxDistance==1e12", "Point", "[0,0]")
            .search_window()
            .unwrap();
        assert_eq!(w, [-180.0, -90.0, 180.0, 90.0]);
    }

    #[test]
    fn adversarial_geometries_do_not_panic() {
        let bowtie =
            json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]});
        let degenerate =
            json!({"type": "Polygon", "coordinates": [[[0, 0], [0, 0], [0, 0], [0, 0]]]});
        let flat = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]});
        let dup_line = json!({"type": "LineString", "coordinates": [[0, 0], [0, 0]]});
        let antipodal = json!({"type": "LineString", "coordinates": [[-180, 0], [180, 0]]});
        let polar = json!({"type": "LineString", "coordinates": [[0, 90], [0, -90]]});
        let empty = json!({"type": "MultiPolygon", "coordinates": []});
        let gc = json!({"type": "GeometryCollection", "geometries": []});
        let geoms: Vec<Geometry<f64>> = [
            bowtie, degenerate, flat, dup_line, antipodal, polar, empty, gc,
        ]
        .into_iter()
        .map(geom)
        .collect();
        let rels = [
            "near;maxDistance==10",
            "near;minDistance==10",
            "within",
            "contains",
            "intersects",
            "disjoint",
            "equals",
            "overlaps",
        ];
        for rel in rels {
            for (gt, coords) in [
                ("Point", "[0.5,0.5]"),
                ("Point", "[180,90]"),
                ("Polygon", SQUARE),
                ("LineString", "[[0,0],[0,0]]"),
            ] {
                let Ok(q) = GeoQuery::parse(rel, gt, coords, None) else {
                    continue;
                };
                for g in &geoms {
                    let _ = q.matches_geometry(g);
                }
                let _ = q.search_window();
            }
        }
        // deep GeometryCollection nesting is refused, not recursed
        let mut v = json!({"type": "Point", "coordinates": [0, 0]});
        for _ in 0..50 {
            v = json!({"type": "GeometryCollection", "geometries": [v]});
        }
        assert!(geometry_from_geojson(&v)
            .unwrap_err()
            .0
            .contains("nested deeper"));
        // huge numbers
        assert!(
            geometry_from_geojson(&json!({"type": "Point", "coordinates": [1e308, 0]})).is_err()
        );
        assert!(GeoQuery::parse("within", "Point", "[1e999, 0]", None).is_err());
        let deep_json = format!("{}0{}", "[".repeat(5000), "]".repeat(5000));
        assert!(GeoQuery::parse("within", "Point", &deep_json, None).is_err());
        for garbage in ["", "null", "{}", "[[[]]]", "\u{0}", "[1,2]]"] {
            for gt in [
                "Point",
                "LineString",
                "Polygon",
                "MultiPolygon",
                "MultiPoint",
                "MultiLineString",
            ] {
                let _ = GeoQuery::parse("intersects", gt, garbage, None);
            }
        }
    }
}
