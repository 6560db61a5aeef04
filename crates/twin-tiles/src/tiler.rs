//! Cuts lon/lat features into one tile: projects them to tile coordinates, clips them to the tile plus a buffer,
//! simplifies them for the zoom, drops what would be smaller than a pixel, and encodes the layers as an MVT.
//!
//! Clipping is our own (Liang–Barsky for lines, Sutherland–Hodgman for polygon rings): the clip window is always an
//! axis-aligned rectangle, for which these are linear-time and exact, where general polygon booleans would be both
//! slower and fussier about invalid input. Simplification is `geo`'s Ramer–Douglas–Peucker.

use std::collections::HashMap;
use std::sync::Arc;

use geo::{Coord, Geometry, LineString, Simplify};
use prost::Message;

use crate::mvt::{self, GeomType, GeometryWriter};
use crate::tile::{world, TileId};

/// How tiles are cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TilerOptions {
    /// Tile extent in tile units (MVT's default, 4096).
    pub extent: u32,
    /// Clip buffer around the tile, in tile units (lines and polygons continue under the neighbour's edge so that
    /// strokes and labels join without seams).
    pub buffer: u32,
    /// Douglas–Peucker tolerance in tile units (4 units are half a pixel of a 512-pixel tile).
    pub tolerance: f64,
    /// Polygons (outer rings) smaller than this, in square tile units, are dropped.
    pub min_area: f64,
    /// Lines shorter than this, in tile units, are dropped.
    pub min_length: f64,
}

impl Default for TilerOptions {
    fn default() -> Self {
        TilerOptions {
            extent: 4096,
            buffer: 64,
            tolerance: 4.0,
            min_area: 16.0,
            min_length: 4.0,
        }
    }
}

/// A property value of a feature.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

/// A feature handed to a layer: a numeric id, a lon/lat geometry and its properties.
#[derive(Debug, Clone)]
pub struct Feature<'a> {
    pub id: u64,
    pub geometry: &'a Geometry<f64>,
    pub properties: &'a [(Arc<str>, PropValue)],
}

/// Builds one tile, layer by layer.
pub struct TileBuilder {
    tile: TileId,
    opts: TilerOptions,
    layers: Vec<mvt::Layer>,
}

#[derive(Hash, PartialEq, Eq)]
enum ValueKey {
    Str(String),
    Int(i64),
    Double(u64),
    Bool(bool),
}

/// Adds features to one layer of a tile.
pub struct LayerBuilder<'t> {
    tile: TileId,
    opts: TilerOptions,
    layer: mvt::Layer,
    keys: HashMap<Arc<str>, u32>,
    values: HashMap<ValueKey, u32>,
    out: &'t mut Vec<mvt::Layer>,
}

impl TileBuilder {
    pub fn new(tile: TileId, opts: TilerOptions) -> TileBuilder {
        TileBuilder {
            tile,
            opts,
            layers: Vec::new(),
        }
    }

    /// Starts a layer; it is added to the tile when the returned builder is dropped, if it holds any feature.
    pub fn layer(&mut self, name: &str) -> LayerBuilder<'_> {
        LayerBuilder {
            tile: self.tile,
            opts: self.opts,
            layer: mvt::Layer {
                version: 2,
                name: name.to_string(),
                features: Vec::new(),
                keys: Vec::new(),
                values: Vec::new(),
                extent: Some(self.opts.extent),
            },
            keys: HashMap::new(),
            values: HashMap::new(),
            out: &mut self.layers,
        }
    }

    /// How many features the tile holds so far.
    pub fn feature_count(&self) -> usize {
        self.layers.iter().map(|l| l.features.len()).sum()
    }

    /// The encoded tile, or `None` when no layer holds a feature (an empty tile).
    pub fn finish(self) -> Option<Vec<u8>> {
        if self.layers.is_empty() {
            return None;
        }
        Some(
            mvt::Tile {
                layers: self.layers,
            }
            .encode_to_vec(),
        )
    }
}

impl Drop for LayerBuilder<'_> {
    fn drop(&mut self) {
        if !self.layer.features.is_empty() {
            self.out.push(std::mem::replace(
                &mut self.layer,
                mvt::Layer {
                    version: 2,
                    name: String::new(),
                    features: Vec::new(),
                    keys: Vec::new(),
                    values: Vec::new(),
                    extent: None,
                },
            ));
        }
    }
}

type Pt = (f64, f64);

impl LayerBuilder<'_> {
    /// Adds a prepared feature (see [`crate::index`]); says whether it was added.
    pub fn add_prepared(&mut self, f: &crate::index::PreparedFeature) -> bool {
        self.add(&Feature {
            id: f.id,
            geometry: &f.geometry,
            properties: &f.properties,
        })
    }

    /// Adds a feature when some of it falls in the tile and is big enough to see; says whether it was added.
    pub fn add(&mut self, f: &Feature<'_>) -> bool {
        let mut parts = Parts::default();
        self.cut(f.geometry, &mut parts);
        let mut added = false;
        let tags = if parts.is_empty() {
            Vec::new()
        } else {
            self.tags(f.properties)
        };
        for (ty, commands) in parts.encode() {
            self.layer.features.push(mvt::Feature {
                id: Some(f.id),
                tags: tags.clone(),
                r#type: Some(ty as i32),
                geometry: commands,
            });
            added = true;
        }
        added
    }

    fn tags(&mut self, props: &[(Arc<str>, PropValue)]) -> Vec<u32> {
        let mut tags = Vec::with_capacity(props.len() * 2);
        for (k, v) in props {
            let next = self.keys.len() as u32;
            let ki = *self.keys.entry(k.clone()).or_insert_with(|| {
                self.layer.keys.push(k.to_string());
                next
            });
            let (key, value) = match v {
                PropValue::Str(s) => (
                    ValueKey::Str(s.clone()),
                    mvt::Value {
                        string_value: Some(s.clone()),
                        ..Default::default()
                    },
                ),
                PropValue::Int(i) => (
                    ValueKey::Int(*i),
                    if *i >= 0 {
                        mvt::Value {
                            uint_value: Some(*i as u64),
                            ..Default::default()
                        }
                    } else {
                        mvt::Value {
                            sint_value: Some(*i),
                            ..Default::default()
                        }
                    },
                ),
                PropValue::Double(d) => (
                    ValueKey::Double(d.to_bits()),
                    mvt::Value {
                        double_value: Some(*d),
                        ..Default::default()
                    },
                ),
                PropValue::Bool(b) => (
                    ValueKey::Bool(*b),
                    mvt::Value {
                        bool_value: Some(*b),
                        ..Default::default()
                    },
                ),
            };
            let next = self.values.len() as u32;
            let vi = *self.values.entry(key).or_insert_with(|| {
                self.layer.values.push(value);
                next
            });
            tags.push(ki);
            tags.push(vi);
        }
        tags
    }

    fn project(&self, c: Coord<f64>) -> Pt {
        let n = self.tile.side();
        let (wx, wy) = world(c.x, c.y);
        let e = self.opts.extent as f64;
        (
            (wx * n - self.tile.x as f64) * e,
            (wy * n - self.tile.y as f64) * e,
        )
    }

    fn window(&self) -> [f64; 4] {
        let b = self.opts.buffer as f64;
        let e = self.opts.extent as f64;
        [-b, -b, e + b, e + b]
    }

    fn cut(&self, g: &Geometry<f64>, parts: &mut Parts) {
        match g {
            Geometry::Point(p) => self.point(p.0, parts),
            Geometry::MultiPoint(mp) => mp.iter().for_each(|p| self.point(p.0, parts)),
            Geometry::Line(l) => self.line(&[l.start, l.end], parts),
            Geometry::LineString(ls) => self.line(&ls.0, parts),
            Geometry::MultiLineString(m) => m.iter().for_each(|ls| self.line(&ls.0, parts)),
            Geometry::Polygon(p) => self.polygon(p, parts),
            Geometry::MultiPolygon(m) => m.iter().for_each(|p| self.polygon(p, parts)),
            Geometry::Rect(r) => self.polygon(&r.to_polygon(), parts),
            Geometry::Triangle(t) => self.polygon(&t.to_polygon(), parts),
            Geometry::GeometryCollection(c) => c.iter().for_each(|g| self.cut(g, parts)),
        }
    }

    fn point(&self, c: Coord<f64>, parts: &mut Parts) {
        let (x, y) = self.project(c);
        let w = self.window();
        if x.is_finite() && y.is_finite() && x >= w[0] && x <= w[2] && y >= w[1] && y <= w[3] {
            parts.points.push((x.round() as i32, y.round() as i32));
        }
    }

    fn line(&self, coords: &[Coord<f64>], parts: &mut Parts) {
        if coords.len() < 2 {
            return;
        }
        let pts: Vec<Pt> = coords.iter().map(|&c| self.project(c)).collect();
        if !pts.iter().all(|p| p.0.is_finite() && p.1.is_finite()) || !overlaps(&pts, self.window())
        {
            return;
        }
        for run in clip_line(&pts, self.window()) {
            let run = self.simplify(run);
            let q = quantize(&run);
            if q.len() >= 2 && length(&q) >= self.opts.min_length {
                parts.lines.push(q);
            }
        }
    }

    fn polygon(&self, p: &geo::Polygon<f64>, parts: &mut Parts) {
        let ring = |ls: &LineString<f64>| -> Option<Vec<(i32, i32)>> {
            let mut pts: Vec<Pt> = ls.0.iter().map(|&c| self.project(c)).collect();
            if pts.len() > 1 && pts.first() == pts.last() {
                pts.pop();
            }
            if pts.len() < 3 || !pts.iter().all(|p| p.0.is_finite() && p.1.is_finite()) {
                return None;
            }
            if !overlaps(&pts, self.window()) {
                return None;
            }
            let clipped = clip_ring(&pts, self.window());
            if clipped.len() < 3 {
                return None;
            }
            let mut closed = clipped;
            closed.push(closed[0]);
            let mut simple = self.simplify(closed);
            simple.pop();
            let mut q = quantize(&simple);
            if q.len() > 1 && q.first() == q.last() {
                q.pop();
            }
            (q.len() >= 3).then_some(q)
        };
        let Some(mut outer) = ring(p.exterior()) else {
            return;
        };
        let area = mvt::ring_area(&outer);
        if area.abs() < self.opts.min_area {
            return;
        }
        if area < 0.0 {
            outer.reverse();
        }
        let mut rings = vec![outer];
        for hole in p.interiors() {
            if let Some(mut h) = ring(hole) {
                let a = mvt::ring_area(&h);
                if a.abs() < self.opts.min_area {
                    continue;
                }
                if a > 0.0 {
                    h.reverse();
                }
                rings.push(h);
            }
        }
        parts.polygons.push(rings);
    }

    fn simplify(&self, pts: Vec<Pt>) -> Vec<Pt> {
        if self.opts.tolerance <= 0.0 || pts.len() < 3 {
            return pts;
        }
        let ls: LineString<f64> = pts.into_iter().map(|(x, y)| Coord { x, y }).collect();
        ls.simplify(self.opts.tolerance)
            .0
            .into_iter()
            .map(|c| (c.x, c.y))
            .collect()
    }
}

/// The tile-coordinate pieces of one feature, by geometry type.
#[derive(Default)]
struct Parts {
    points: Vec<(i32, i32)>,
    lines: Vec<Vec<(i32, i32)>>,
    polygons: Vec<Vec<Vec<(i32, i32)>>>,
}

impl Parts {
    fn is_empty(&self) -> bool {
        self.points.is_empty() && self.lines.is_empty() && self.polygons.is_empty()
    }

    fn encode(self) -> Vec<(GeomType, Vec<u32>)> {
        let mut out = Vec::new();
        if !self.points.is_empty() {
            let mut w = GeometryWriter::default();
            w.points(&self.points);
            out.push((GeomType::Point, w.commands));
        }
        if !self.lines.is_empty() {
            let mut w = GeometryWriter::default();
            self.lines.iter().for_each(|l| w.line(l));
            out.push((GeomType::Linestring, w.commands));
        }
        if !self.polygons.is_empty() {
            let mut w = GeometryWriter::default();
            self.polygons.iter().flatten().for_each(|r| w.ring(r));
            out.push((GeomType::Polygon, w.commands));
        }
        out
    }
}

fn overlaps(pts: &[Pt], w: [f64; 4]) -> bool {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    x1 >= w[0] && x0 <= w[2] && y1 >= w[1] && y0 <= w[3]
}

fn quantize(pts: &[Pt]) -> Vec<(i32, i32)> {
    let mut out: Vec<(i32, i32)> = Vec::with_capacity(pts.len());
    for &(x, y) in pts {
        let q = (x.round() as i32, y.round() as i32);
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    out
}

fn length(pts: &[(i32, i32)]) -> f64 {
    pts.windows(2)
        .map(|w| {
            let dx = (w[1].0 - w[0].0) as f64;
            let dy = (w[1].1 - w[0].1) as f64;
            (dx * dx + dy * dy).sqrt()
        })
        .sum()
}

/// Liang–Barsky: the part of segment a→b inside the window, as parameters t0 ≤ t1 in [0, 1].
fn clip_segment(a: Pt, b: Pt, w: [f64; 4]) -> Option<(f64, f64)> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let mut t0 = 0.0f64;
    let mut t1 = 1.0f64;
    for (p, q) in [
        (-dx, a.0 - w[0]),
        (dx, w[2] - a.0),
        (-dy, a.1 - w[1]),
        (dy, w[3] - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then_some((t0, t1))
}

/// A line clipped to the window: the runs of it that lie inside.
fn clip_line(pts: &[Pt], w: [f64; 4]) -> Vec<Vec<Pt>> {
    let mut runs = Vec::new();
    let mut cur: Vec<Pt> = Vec::new();
    let at = |a: Pt, b: Pt, t: f64| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
    for s in pts.windows(2) {
        let (a, b) = (s[0], s[1]);
        match clip_segment(a, b, w) {
            Some((t0, t1)) => {
                if cur.is_empty() || t0 > 0.0 {
                    if cur.len() >= 2 {
                        runs.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                    cur.push(at(a, b, t0));
                }
                cur.push(at(a, b, t1));
                if t1 < 1.0 {
                    runs.push(std::mem::take(&mut cur));
                }
            }
            None => {
                if cur.len() >= 2 {
                    runs.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    if cur.len() >= 2 {
        runs.push(cur);
    }
    runs
}

/// Sutherland–Hodgman: a ring (not closed) clipped to the window; may come back with fewer than three points.
fn clip_ring(pts: &[Pt], w: [f64; 4]) -> Vec<Pt> {
    // a ring wholly inside needs no work
    if pts
        .iter()
        .all(|&(x, y)| x >= w[0] && x <= w[2] && y >= w[1] && y <= w[3])
    {
        return pts.to_vec();
    }
    let mut ring = pts.to_vec();
    // (axis, bound, keep when coordinate >= bound)
    for (axis, bound, keep_greater) in [
        (0, w[0], true),
        (0, w[2], false),
        (1, w[1], true),
        (1, w[3], false),
    ] {
        if ring.is_empty() {
            break;
        }
        let coord = |p: Pt| if axis == 0 { p.0 } else { p.1 };
        let inside = |p: Pt| {
            if keep_greater {
                coord(p) >= bound
            } else {
                coord(p) <= bound
            }
        };
        let cross = |a: Pt, b: Pt| {
            let t = (bound - coord(a)) / (coord(b) - coord(a));
            if axis == 0 {
                (bound, a.1 + (b.1 - a.1) * t)
            } else {
                (a.0 + (b.0 - a.0) * t, bound)
            }
        };
        let mut out = Vec::with_capacity(ring.len() + 4);
        for i in 0..ring.len() {
            let cur = ring[i];
            let prev = ring[(i + ring.len() - 1) % ring.len()];
            match (inside(prev), inside(cur)) {
                (true, true) => out.push(cur),
                (true, false) => out.push(cross(prev, cur)),
                (false, true) => {
                    out.push(cross(prev, cur));
                    out.push(cur);
                }
                (false, false) => {}
            }
        }
        ring = out;
    }
    ring
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvt::decode_geometry;
    use geo::{line_string, point, polygon};

    fn opts() -> TilerOptions {
        TilerOptions::default()
    }

    fn decode(bytes: &[u8]) -> mvt::Tile {
        mvt::Tile::decode(bytes).unwrap()
    }

    /// The z14 tile over Helsinki's railway station.
    fn helsinki() -> TileId {
        TileId::containing(24.9414, 60.1710, 14)
    }

    #[test]
    fn empty_tiles_are_none() {
        let mut b = TileBuilder::new(helsinki(), opts());
        {
            let mut l = b.layer("Building");
            let far = Geometry::Point(point!(x: 2.35, y: 48.85));
            assert!(!l.add(&Feature {
                id: 1,
                geometry: &far,
                properties: &[]
            }));
        }
        assert!(b.finish().is_none());
    }

    #[test]
    fn a_point_lands_where_it_should_with_its_properties() {
        let t = helsinki();
        let [w, s, e, n] = t.bounds();
        let (lon, lat) = (w + (e - w) * 0.25, s + (n - s) * 0.5);
        let g = Geometry::Point(point!(x: lon, y: lat));
        let props: Vec<(Arc<str>, PropValue)> = vec![
            ("name".into(), PropValue::Str("Rautatieasema".into())),
            ("levels".into(), PropValue::Int(3)),
            ("delta".into(), PropValue::Int(-2)),
            ("height".into(), PropValue::Double(12.5)),
            ("open".into(), PropValue::Bool(true)),
        ];
        let mut b = TileBuilder::new(t, opts());
        b.layer("PointOfInterest").add(&Feature {
            id: 42,
            geometry: &g,
            properties: &props,
        });
        let tile = decode(&b.finish().unwrap());
        let l = &tile.layers[0];
        assert_eq!(
            (l.name.as_str(), l.version, l.extent),
            ("PointOfInterest", 2, Some(4096))
        );
        let f = &l.features[0];
        assert_eq!(f.id, Some(42));
        let pts = decode_geometry(&f.geometry).unwrap();
        assert_eq!(pts[0][0].0, 1024);
        // Mercator stretches latitudes: the middle latitude is a little south of the middle row
        assert!((pts[0][0].1 - 2048).abs() < 16, "{:?}", pts);
        assert_eq!(l.keys, ["name", "levels", "delta", "height", "open"]);
        assert_eq!(l.values[1].uint_value, Some(3));
        assert_eq!(l.values[2].sint_value, Some(-2));
        assert_eq!(f.tags, vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    }

    #[test]
    fn lines_are_clipped_to_the_buffer_and_split_into_runs() {
        let w = [0.0, 0.0, 10.0, 10.0];
        // in, out, in again: two runs
        let runs = clip_line(&[(1.0, 5.0), (20.0, 5.0), (20.0, 8.0), (5.0, 8.0)], w);
        assert_eq!(
            runs,
            vec![vec![(1.0, 5.0), (10.0, 5.0)], vec![(10.0, 8.0), (5.0, 8.0)]]
        );
        // crossing straight through
        let runs = clip_line(&[(-5.0, 5.0), (15.0, 5.0)], w);
        assert_eq!(runs, vec![vec![(0.0, 5.0), (10.0, 5.0)]]);
        // wholly outside
        assert!(clip_line(&[(-5.0, -5.0), (-1.0, 20.0)], w).is_empty());
    }

    #[test]
    fn polygons_are_clipped_and_wound_as_mvt_requires() {
        let w = [0.0, 0.0, 10.0, 10.0];
        let r = clip_ring(&[(-5.0, -5.0), (5.0, -5.0), (5.0, 5.0), (-5.0, 5.0)], w);
        let q = quantize(&r);
        assert!((mvt::ring_area(&q).abs() - 25.0).abs() < 1e-9, "{q:?}");

        // a building square with a courtyard, given counter-clockwise (GeoJSON's right-hand rule)
        let t = helsinki();
        let [w0, s0, e0, n0] = t.bounds();
        let (dx, dy) = ((e0 - w0) / 10.0, (n0 - s0) / 10.0);
        let (x, y) = (w0 + 4.0 * dx, s0 + 4.0 * dy);
        let p = polygon!(
            exterior: [(x: x, y: y), (x: x + 2.0 * dx, y: y), (x: x + 2.0 * dx, y: y + 2.0 * dy), (x: x, y: y + 2.0 * dy)],
            interiors: [[(x: x + 0.5 * dx, y: y + 0.5 * dy), (x: x + 0.5 * dx, y: y + 1.5 * dy), (x: x + 1.5 * dx, y: y + 1.5 * dy), (x: x + 1.5 * dx, y: y + 0.5 * dy)]],
        );
        let g = Geometry::Polygon(p);
        let mut b = TileBuilder::new(t, opts());
        b.layer("Building").add(&Feature {
            id: 1,
            geometry: &g,
            properties: &[],
        });
        let tile = decode(&b.finish().unwrap());
        let f = &tile.layers[0].features[0];
        assert_eq!(f.r#type, Some(GeomType::Polygon as i32));
        let rings = decode_geometry(&f.geometry).unwrap();
        assert_eq!(rings.len(), 2);
        assert!(
            mvt::ring_area(&rings[0]) > 0.0,
            "exterior rings have positive area"
        );
        assert!(mvt::ring_area(&rings[1]) < 0.0, "holes have negative area");
    }

    #[test]
    fn a_long_street_is_cut_at_the_buffer() {
        let t = helsinki();
        let [w, s, e, n] = t.bounds();
        let y = (s + n) / 2.0;
        let g = Geometry::LineString(line_string![(x: w - 1.0, y: y), (x: e + 1.0, y: y)]);
        let mut b = TileBuilder::new(t, opts());
        b.layer("RoadSegment").add(&Feature {
            id: 1,
            geometry: &g,
            properties: &[],
        });
        let tile = decode(&b.finish().unwrap());
        let parts = decode_geometry(&tile.layers[0].features[0].geometry).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].first().unwrap().0, -64);
        assert_eq!(parts[0].last().unwrap().0, 4096 + 64);
    }

    #[test]
    fn specks_are_dropped_and_wiggles_simplified() {
        let t = TileId::containing(24.9414, 60.1710, 10);
        let [w, s, _, _] = t.bounds();
        // a 1 m square at zoom 10 is far below a pixel
        let d = 0.00001;
        let speck = Geometry::Polygon(polygon![
            (x: w + 0.01, y: s + 0.01), (x: w + 0.01 + d, y: s + 0.01), (x: w + 0.01 + d, y: s + 0.01 + d), (x: w + 0.01, y: s + 0.01)
        ]);
        let mut b = TileBuilder::new(t, opts());
        assert!(!b.layer("Building").add(&Feature {
            id: 1,
            geometry: &speck,
            properties: &[]
        }));
        // a 200-vertex zig-zag of centimetres along a straight street collapses to its two ends
        let line: LineString<f64> = (0..200)
            .map(|i| Coord {
                x: w + 0.01 + i as f64 * 0.0001,
                y: s + 0.01 + if i % 2 == 0 { 0.0 } else { 1e-7 },
            })
            .collect();
        let g = Geometry::LineString(line);
        let mut b = TileBuilder::new(t, opts());
        b.layer("RoadSegment").add(&Feature {
            id: 2,
            geometry: &g,
            properties: &[],
        });
        let tile = decode(&b.finish().unwrap());
        let parts = decode_geometry(&tile.layers[0].features[0].geometry).unwrap();
        assert_eq!(parts[0].len(), 2);
    }
}
