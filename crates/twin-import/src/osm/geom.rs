//! Geometry helpers: great-circle lengths, multipolygon ring assembly, centroids, GeoJSON values.

use geo::{Centroid, Contains, Coord, LineString, Point, Polygon};
use serde_json::{json, Value};

/// Mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Haversine distance in metres between two (lon, lat) points in degrees.
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.1.to_radians(), b.1.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.0 - a.0).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

pub fn polyline_length_m(coords: &[(f64, f64)]) -> f64 {
    coords.windows(2).map(|w| haversine_m(w[0], w[1])).sum()
}

/// Joins way node lists into closed rings (node ids). Ways that cannot be closed are dropped; the second value tells
/// whether anything was dropped.
pub fn assemble_rings(mut parts: Vec<Vec<i64>>) -> (Vec<Vec<i64>>, bool) {
    let mut rings = Vec::new();
    let mut dropped = false;
    parts.retain(|p| p.len() >= 2);
    while let Some(mut ring) = parts.pop() {
        loop {
            let (first, last) = (ring[0], ring[ring.len() - 1]);
            if first == last {
                break;
            }
            let Some(i) = parts
                .iter()
                .position(|p| p[0] == last || p[p.len() - 1] == last)
            else {
                break;
            };
            let mut next = parts.swap_remove(i);
            if next[0] != last {
                next.reverse();
            }
            ring.extend_from_slice(&next[1..]);
        }
        if ring.len() >= 4 && ring[0] == ring[ring.len() - 1] {
            rings.push(ring);
        } else {
            dropped = true;
        }
    }
    (rings, dropped)
}

fn ring_ls(ring: &[(f64, f64)]) -> LineString<f64> {
    LineString::from(
        ring.iter()
            .map(|&(x, y)| Coord { x, y })
            .collect::<Vec<_>>(),
    )
}

/// Groups inner rings under the outer ring that contains them: a list of polygons, each outer ring first.
pub fn group_polygons(
    outers: Vec<Vec<(f64, f64)>>,
    inners: Vec<Vec<(f64, f64)>>,
) -> Vec<Vec<Vec<(f64, f64)>>> {
    let mut polys: Vec<Vec<Vec<(f64, f64)>>> = outers.into_iter().map(|o| vec![o]).collect();
    if polys.is_empty() {
        return polys;
    }
    let shapes: Vec<Polygon<f64>> = polys
        .iter()
        .map(|p| Polygon::new(ring_ls(&p[0]), vec![]))
        .collect();
    for inner in inners {
        let probe = Point::new(inner[0].0, inner[0].1);
        let at = if polys.len() == 1 {
            0
        } else {
            match shapes.iter().position(|s| s.contains(&probe)) {
                Some(i) => i,
                None => continue,
            }
        };
        polys[at].push(inner);
    }
    polys
}

fn ring_json(r: &[(f64, f64)]) -> Value {
    Value::Array(r.iter().map(|&(x, y)| json!([x, y])).collect())
}

/// GeoJSON Polygon or MultiPolygon from polygons (each a list of rings, outer first).
pub fn polygons_json(polys: &[Vec<Vec<(f64, f64)>>]) -> Value {
    let poly = |p: &Vec<Vec<(f64, f64)>>| Value::Array(p.iter().map(|r| ring_json(r)).collect());
    if polys.len() == 1 {
        json!({"type": "Polygon", "coordinates": poly(&polys[0])})
    } else {
        json!({"type": "MultiPolygon", "coordinates": polys.iter().map(poly).collect::<Vec<_>>()})
    }
}

pub fn linestring_json(coords: &[(f64, f64)]) -> Value {
    json!({"type": "LineString", "coordinates": ring_json(coords)})
}

pub fn point_json(p: (f64, f64)) -> Value {
    json!({"type": "Point", "coordinates": [round7(p.0), round7(p.1)]})
}

fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// Area-weighted centroid of the outer rings (holes ignored); falls back to the mean of the vertices.
pub fn polygons_centroid(polys: &[Vec<Vec<(f64, f64)>>]) -> Option<(f64, f64)> {
    let mp = geo::MultiPolygon::new(
        polys
            .iter()
            .map(|p| Polygon::new(ring_ls(&p[0]), vec![]))
            .collect(),
    );
    mp.centroid().map(|c| (c.x(), c.y()))
}

pub fn line_centroid(coords: &[(f64, f64)]) -> Option<(f64, f64)> {
    ring_ls(coords).centroid().map(|c| (c.x(), c.y()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_one_degree_of_latitude() {
        let d = haversine_m((24.9, 60.0), (24.9, 61.0));
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
    }

    #[test]
    fn rings_join_reversed_parts() {
        let (rings, dropped) = assemble_rings(vec![vec![1, 2, 3], vec![1, 4, 3], vec![7, 8]]);
        assert_eq!(rings.len(), 1);
        assert!(dropped);
        assert_eq!(rings[0].len(), 5);
        assert_eq!(rings[0][0], rings[0][4]);
    }
}
