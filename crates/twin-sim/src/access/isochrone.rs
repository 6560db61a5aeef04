//! Isochrones: the area reachable from a point within 5, 10, 15... minutes, as polygons (with holes where nothing is
//! reached: a park without paths, a rail yard).
//!
//! One Dijkstra from the point over the mode's network gives the time at every node; along each reached link the time
//! grows linearly, so points sampled every few metres carry their own times. The time of a place off the network is
//! that of the best sampled point within `reach_m` plus the straight walk to it; on a grid of `cell_m` cells (in a
//! local metric projection) those times are contoured at each threshold by marching squares (the `contour` crate, a
//! port of d3-contour). The polygons are as exact as the grid: a point of the network reached in time is inside, a
//! place farther than `reach_m` from every reached point is outside.

use contour::ContourBuilder;
use geo::{Area, Coord, LineString, MultiPolygon, Polygon};
use twin_graph::snap::LocalProjection;
use twin_graph::{Network, SnapIndex};

use super::city::Anchoring;
use super::graph::AccessGraph;
use super::nearest::from_place;

/// One isochrone.
#[derive(Debug, Clone, PartialEq)]
pub struct Isochrone {
    pub minutes: f64,
    /// In (lon, lat).
    pub area: MultiPolygon<f64>,
    /// Square metres (in the local projection).
    pub area_m2: f64,
    /// Network nodes reached within the time.
    pub nodes: usize,
}

impl Isochrone {
    /// The area as a GeoJSON MultiPolygon geometry.
    pub fn geometry_geojson(&self) -> serde_json::Value {
        multipolygon_geojson(&self.area)
    }
}

/// A MultiPolygon in (lon, lat) as a GeoJSON geometry.
pub fn multipolygon_geojson(m: &MultiPolygon<f64>) -> serde_json::Value {
    let ring =
        |ls: &LineString<f64>| -> Vec<[f64; 2]> { ls.0.iter().map(|c| [c.x, c.y]).collect() };
    let polys: Vec<Vec<Vec<[f64; 2]>>> =
        m.0.iter()
            .map(|p| {
                std::iter::once(ring(p.exterior()))
                    .chain(p.interiors().iter().map(ring))
                    .collect()
            })
            .collect();
    serde_json::json!({"type": "MultiPolygon", "coordinates": polys})
}

/// How fine the polygons are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IsochroneOptions {
    /// Grid cell, metres; grown when the area would need more than `max_cells` cells.
    pub cell_m: f64,
    /// How far from the network a place counts as reached (metres, on foot or bike at the mode's speed).
    pub reach_m: f64,
    pub max_cells: usize,
}

impl Default for IsochroneOptions {
    fn default() -> Self {
        IsochroneOptions {
            cell_m: 15.0,
            reach_m: 50.0,
            max_cells: 1_000_000,
        }
    }
}

/// Why no isochrone could be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IsochroneError {
    #[error("({0}, {1}) is more than {2} m from the network")]
    OffNetwork(f64, f64, f64),
    #[error("minutes must be above 0 and at most 120, not {0}")]
    BadMinutes(f64),
    #[error("the polygons could not be traced: {0}")]
    Contour(String),
}

/// The isochrones of `minutes` (each above 0, at most 120) from (lon, lat), largest first.
#[allow(clippy::too_many_arguments)]
pub fn isochrones(
    net: &Network,
    graph: &AccessGraph,
    snap: &SnapIndex,
    max_snap_m: f64,
    lon: f64,
    lat: f64,
    minutes: &[f64],
    opts: IsochroneOptions,
) -> Result<Vec<Isochrone>, IsochroneError> {
    for &m in minutes {
        if !(m.is_finite() && m > 0.0 && m <= 120.0) {
            return Err(IsochroneError::BadMinutes(m));
        }
    }
    let mut minutes: Vec<f64> = minutes.to_vec();
    minutes.sort_by(|a, b| b.total_cmp(a));
    minutes.dedup();
    let Some(max_min) = minutes.first().copied() else {
        return Ok(Vec::new());
    };
    let place = Anchoring::new(net, graph, snap, max_snap_m)
        .home("isochrone", lon, lat)
        .ok_or(IsochroneError::OffNetwork(lon, lat, max_snap_m))?;
    let max_s = max_min * 60.0;
    let dist = from_place(graph, &place.anchor, max_s);
    let proj: &LocalProjection = snap.projection();
    let speed = graph.movement().speed_mps;

    // points along the reached links with their times (metres, seconds)
    let step = (opts.cell_m / 2.0).max(1.0);
    let mut samples: Vec<([f64; 2], f64)> = vec![(proj.project((lon, lat)), 0.0)];
    for l in 0..net.link_count() {
        let t_link = graph.link_seconds(l as u32);
        let t0 = dist[net.link_from()[l] as usize];
        if !t_link.is_finite() || t0 > max_s {
            continue;
        }
        let pts: Vec<[f64; 2]> = net
            .link_geometry(l as u32)
            .into_iter()
            .map(|p| proj.project(p))
            .collect();
        let len: f64 = pts.windows(2).map(|w| dist2(w[0], w[1]).sqrt()).sum();
        if len <= 0.0 {
            samples.push((pts[0], t0));
            continue;
        }
        let mut along = 0.0;
        for w in pts.windows(2) {
            let seg = dist2(w[0], w[1]).sqrt();
            let n = (seg / step).ceil().max(1.0) as usize;
            for i in 0..=n {
                let f = i as f64 / n as f64;
                let t = t0 + (along + f * seg) / len * t_link;
                if t > max_s {
                    break;
                }
                samples.push((
                    [
                        w[0][0] + f * (w[1][0] - w[0][0]),
                        w[0][1] + f * (w[1][1] - w[0][1]),
                    ],
                    t,
                ));
            }
            along += seg;
        }
    }

    // the grid around them
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (p, _) in &samples {
        x0 = x0.min(p[0]);
        y0 = y0.min(p[1]);
        x1 = x1.max(p[0]);
        y1 = y1.max(p[1]);
    }
    let margin = opts.reach_m + 2.0 * opts.cell_m;
    let (x0, y0, x1, y1) = (x0 - margin, y0 - margin, x1 + margin, y1 + margin);
    let mut cell = opts.cell_m.max(1.0);
    while ((x1 - x0) / cell).ceil() * ((y1 - y0) / cell).ceil() > opts.max_cells as f64 {
        cell *= 1.5;
    }
    let (nx, ny) = (
        ((x1 - x0) / cell).ceil() as usize + 1,
        ((y1 - y0) / cell).ceil() as usize + 1,
    );
    const NONE: f64 = 1e9;
    let mut time = vec![NONE; nx * ny];
    let r = (opts.reach_m / cell).ceil() as i64;
    for (p, t) in &samples {
        let (cx, cy) = (
            ((p[0] - x0) / cell).round() as i64,
            ((p[1] - y0) / cell).round() as i64,
        );
        for gy in (cy - r).max(0)..=(cy + r).min(ny as i64 - 1) {
            for gx in (cx - r).max(0)..=(cx + r).min(nx as i64 - 1) {
                let c = [x0 + gx as f64 * cell, y0 + gy as f64 * cell];
                let d = dist2(*p, c).sqrt();
                if d <= opts.reach_m {
                    let v = &mut time[gy as usize * nx + gx as usize];
                    *v = v.min(t + d / speed);
                }
            }
        }
    }
    // contours enclose values at or above a threshold: the negated times
    let values: Vec<f64> = time.iter().map(|t| -t).collect();
    let thresholds: Vec<f64> = minutes.iter().map(|m| -m * 60.0).collect();
    let contours = ContourBuilder::new(nx, ny, false)
        .x_origin(x0)
        .y_origin(y0)
        .x_step(cell)
        .y_step(cell)
        .contours(&values, &thresholds)
        .map_err(|e| IsochroneError::Contour(e.to_string()))?;
    Ok(contours
        .into_iter()
        .zip(&minutes)
        .map(|(c, &m)| {
            let (metric, _) = c.into_inner();
            let area_m2 = metric.unsigned_area();
            let to_lonlat = |ls: &LineString<f64>| {
                LineString::from(
                    ls.0.iter()
                        .map(|c| {
                            let (lon, lat) = proj.unproject([c.x, c.y]);
                            Coord { x: lon, y: lat }
                        })
                        .collect::<Vec<_>>(),
                )
            };
            let area = MultiPolygon::new(
                metric
                    .0
                    .iter()
                    .map(|p| {
                        Polygon::new(
                            to_lonlat(p.exterior()),
                            p.interiors().iter().map(to_lonlat).collect(),
                        )
                    })
                    .collect(),
            );
            Isochrone {
                minutes: m,
                area,
                area_m2,
                nodes: dist.iter().filter(|&&t| t <= m * 60.0).count(),
            }
        })
        .collect())
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}
