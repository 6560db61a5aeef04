//! Snapping lon/lat points to the nearest link of a mode: an R-tree (rstar) over the links' segments in a local
//! equirectangular projection around the network centre, with distances in metres.

use rstar::primitives::{GeomWithData, Line};
use rstar::RTree;

use crate::{LinkIdx, Mode, Network};

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Equirectangular projection around a centre: accurate to well under 1% over a city (tens of kilometres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalProjection {
    lon0: f64,
    lat0: f64,
    /// Metres per degree of longitude and of latitude at the centre.
    kx: f64,
    ky: f64,
}

impl LocalProjection {
    pub fn new(lon0: f64, lat0: f64) -> LocalProjection {
        let ky = EARTH_RADIUS_M.to_radians(); // metres per degree along a great circle
        LocalProjection {
            lon0,
            lat0,
            kx: ky * lat0.to_radians().cos(),
            ky,
        }
    }

    /// Around the middle of the bounding box of the network's nodes ((0, 0) for an empty network).
    pub fn around(net: &Network) -> LocalProjection {
        let mut bounds: Option<(f64, f64, f64, f64)> = None;
        for &(lon, lat) in net.node_coords() {
            bounds = Some(match bounds {
                None => (lon, lat, lon, lat),
                Some((a, b, c, d)) => (a.min(lon), b.min(lat), c.max(lon), d.max(lat)),
            });
        }
        let (a, b, c, d) = bounds.unwrap_or_default();
        LocalProjection::new((a + c) / 2.0, (b + d) / 2.0)
    }

    /// (lon, lat) to metres east and north of the centre.
    pub fn project(&self, (lon, lat): (f64, f64)) -> [f64; 2] {
        [(lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky]
    }

    /// Metres east and north back to (lon, lat).
    pub fn unproject(&self, [x, y]: [f64; 2]) -> (f64, f64) {
        let lon = if self.kx > 0.0 {
            self.lon0 + x / self.kx
        } else {
            self.lon0
        };
        (lon, self.lat0 + y / self.ky)
    }
}

/// Where a point meets the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    pub link: LinkIdx,
    /// Position of the nearest point along the link, 0 at its tail to 1 at its head (by projected length).
    pub fraction: f64,
    /// Distance from the query point to the link, metres.
    pub distance_m: f64,
    /// The nearest point on the link, (lon, lat).
    pub point: (f64, f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    link: LinkIdx,
    /// Projected length of the link's polyline before this segment.
    start_m: f64,
}

type SegmentEntry = GeomWithData<Line<[f64; 2]>, Segment>;

/// An R-tree of the segments of one mode's links. Rebuild it after changing which links the mode may use.
#[derive(Clone)]
pub struct SnapIndex {
    mode: Mode,
    projection: LocalProjection,
    tree: RTree<SegmentEntry>,
    /// Projected length of each link's polyline (0 for links not indexed).
    link_length_m: Vec<f64>,
}

impl SnapIndex {
    /// Indexes the links of `net` open to `mode`.
    pub fn build(net: &Network, mode: Mode) -> SnapIndex {
        let projection = LocalProjection::around(net);
        let mut segments = Vec::new();
        let mut link_length_m = vec![0.0; net.link_count()];
        for link in net.view(mode).links() {
            let points: Vec<[f64; 2]> = net
                .link_geometry(link)
                .into_iter()
                .map(|p| projection.project(p))
                .collect();
            let mut start_m = 0.0;
            for pair in points.windows(2) {
                segments.push(GeomWithData::new(
                    Line::new(pair[0], pair[1]),
                    Segment { link, start_m },
                ));
                start_m += distance(pair[0], pair[1]);
            }
            link_length_m[link as usize] = start_m;
        }
        SnapIndex {
            mode,
            projection,
            tree: RTree::bulk_load(segments),
            link_length_m,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn projection(&self) -> &LocalProjection {
        &self.projection
    }

    /// The nearest link to (lon, lat); `None` if the mode has no links or the point is not finite. Among links at the
    /// same distance (the two directions of a street) the lowest link index wins.
    pub fn snap(&self, lon: f64, lat: f64) -> Option<Snap> {
        self.snap_within(lon, lat, f64::INFINITY)
    }

    /// As [`SnapIndex::snap`], but only links within `max_distance_m` metres.
    pub fn snap_within(&self, lon: f64, lat: f64, max_distance_m: f64) -> Option<Snap> {
        if !(lon.is_finite() && lat.is_finite()) {
            return None;
        }
        let q = self.projection.project((lon, lat));
        let mut best: Option<(f64, &SegmentEntry)> = None;
        for (segment, d2) in self.tree.nearest_neighbor_iter_with_distance_2(&q) {
            if let Some((best_d2, current)) = best {
                // Candidates come nearest first; a millimetre of slack catches the two directions of a street.
                if d2.sqrt() > best_d2.sqrt() + 1e-3 {
                    break;
                }
                if current.data.link <= segment.data.link {
                    continue;
                }
            }
            best = Some((d2, segment));
        }
        let (d2, segment) = best?;
        let distance_m = d2.sqrt();
        if distance_m > max_distance_m {
            return None;
        }
        Some(self.snap_on(q, segment, distance_m))
    }

    /// Every link within `radius_m` metres of (lon, lat), each once at its nearest point, nearest first (ties by link
    /// index); empty if the point is not finite.
    pub fn links_within(&self, lon: f64, lat: f64, radius_m: f64) -> Vec<Snap> {
        if !(lon.is_finite() && lat.is_finite()) {
            return Vec::new();
        }
        let q = self.projection.project((lon, lat));
        let mut out: Vec<Snap> = Vec::new();
        for (segment, d2) in self.tree.nearest_neighbor_iter_with_distance_2(&q) {
            let d = d2.sqrt();
            if d > radius_m {
                break;
            }
            // segments come nearest first: a link's first is its nearest
            if out.iter().all(|s| s.link != segment.data.link) {
                out.push(self.snap_on(q, segment, d));
            }
        }
        out.sort_by(|a, b| {
            a.distance_m
                .total_cmp(&b.distance_m)
                .then(a.link.cmp(&b.link))
        });
        out
    }

    /// Where projected point `q` meets `segment`, `distance_m` away.
    fn snap_on(&self, q: [f64; 2], segment: &SegmentEntry, distance_m: f64) -> Snap {
        let line = segment.geom();
        let nearest = line.nearest_point(&q);
        let along = segment.data.start_m + distance(line.from, nearest);
        let total = self.link_length_m[segment.data.link as usize];
        let fraction = if total > 0.0 {
            (along / total).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Snap {
            link: segment.data.link,
            fraction,
            distance_m,
            point: self.projection.unproject(nearest),
        }
    }
}

fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LinkSpec, ModeSet};

    #[test]
    fn snaps_to_the_nearest_link_of_the_mode() {
        // A 1 km east-west street at latitude 60 (car + walk) and a footpath 200 m north of it.
        let lat: f64 = 60.0;
        let dlon = 1000.0 / (EARTH_RADIUS_M.to_radians() * lat.to_radians().cos());
        let dlat = 200.0 / EARTH_RADIUS_M.to_radians();
        let nodes = vec![
            (1, (25.0, lat)),
            (2, (25.0 + dlon, lat)),
            (3, (25.0, lat + dlat)),
            (4, (25.0 + dlon, lat + dlat)),
        ];
        let street = LinkSpec::new(
            "street",
            1,
            2,
            1000.0,
            72.0,
            900.0,
            ModeSet::CAR | ModeSet::WALK,
        );
        let back = street.reversed("street-back", ModeSet::CAR | ModeSet::WALK);
        let mut path = LinkSpec::new("path", 3, 4, 1000.0, 720.0, 0.0, ModeSet::WALK);
        path.geometry = Some(vec![
            (25.0, lat + dlat),
            (25.0 + dlon / 2.0, lat + dlat),
            (25.0 + dlon, lat + dlat),
        ]);
        let net = Network::build(nodes, vec![street, back, path]).expect("valid");

        // 150 m north of the street's quarter point: walkers go to the path (50 m), cars to the street (150 m).
        let (qlon, qlat) = (
            25.0 + dlon * 0.75,
            lat + 150.0 / EARTH_RADIUS_M.to_radians(),
        );
        let walk = SnapIndex::build(&net, Mode::Walk)
            .snap(qlon, qlat)
            .expect("walk snap");
        assert_eq!(walk.link, 2);
        assert!((walk.distance_m - 50.0).abs() < 0.5, "{walk:?}");
        assert!((walk.fraction - 0.75).abs() < 1e-3, "{walk:?}");
        let car_index = SnapIndex::build(&net, Mode::Car);
        let car = car_index.snap(qlon, qlat).expect("car snap");
        assert_eq!(car.link, 0, "the lower index of the two directions");
        assert!((car.distance_m - 150.0).abs() < 1.0, "{car:?}");
        assert!((car.fraction - 0.75).abs() < 1e-3);
        assert!((car.point.1 - lat).abs() < 1e-6);
        assert!(car_index.snap_within(qlon, qlat, 100.0).is_none());
        assert!(car_index.snap(f64::NAN, qlat).is_none());
        assert!(SnapIndex::build(&net, Mode::Bike)
            .snap(qlon, qlat)
            .is_none());
        // Every walk link within 160 m, nearest first: the path, then both directions of the street (the reverse one
        // entered at the mirrored fraction); within 100 m the path alone.
        let walk_index = SnapIndex::build(&net, Mode::Walk);
        let near = walk_index.links_within(qlon, qlat, 160.0);
        assert_eq!(near.iter().map(|s| s.link).collect::<Vec<_>>(), [2, 0, 1]);
        assert!((near[1].distance_m - 150.0).abs() < 1.0);
        assert!((near[1].fraction - 0.75).abs() < 1e-3);
        assert!((near[2].fraction - 0.25).abs() < 1e-3, "{near:?}");
        assert_eq!(walk_index.links_within(qlon, qlat, 100.0).len(), 1);
        assert!(walk_index.links_within(f64::NAN, qlat, 100.0).is_empty());
        // Beyond the head of the street the fraction stops at 1.
        let beyond = car_index.snap(25.0 + 2.0 * dlon, lat).expect("snap");
        assert_eq!(beyond.fraction, 1.0);
    }
}
