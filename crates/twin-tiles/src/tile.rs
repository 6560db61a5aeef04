//! Web Mercator (EPSG:3857) tile arithmetic in the XYZ scheme used by MapLibre, OpenStreetMap and the OGC
//! WebMercatorQuad tile matrix set: tile ids, their bounds, and where a lon/lat falls.

use std::fmt;

/// The deepest zoom level served (tiles of about 2 m at the equator).
pub const MAX_ZOOM: u8 = 24;

/// The latitude limit of Web Mercator (the map is square).
pub const MAX_LAT: f64 = 85.051_128_779_806_59;

/// One tile of the XYZ scheme: `x` grows eastwards from 180° W, `y` southwards from 85.05° N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

/// Why a tile address is not a tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileIdError(pub String);

impl fmt::Display for TileIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TileIdError {}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

impl TileId {
    /// A tile, checked: `z` ≤ [`MAX_ZOOM`], `x` and `y` < 2^z.
    pub fn new(z: u32, x: u32, y: u32) -> Result<TileId, TileIdError> {
        if z > MAX_ZOOM as u32 {
            return Err(TileIdError(format!(
                "zoom {z} is deeper than the deepest served ({MAX_ZOOM})"
            )));
        }
        let n = 1u64 << z;
        if x as u64 >= n || y as u64 >= n {
            return Err(TileIdError(format!(
                "tile {z}/{x}/{y} does not exist: at zoom {z} x and y run from 0 to {}",
                n - 1
            )));
        }
        Ok(TileId { z: z as u8, x, y })
    }

    /// Parses the three path segments `z`, `x`, `y` of a tile URL.
    pub fn parse(z: &str, x: &str, y: &str) -> Result<TileId, TileIdError> {
        let num = |name: &str, s: &str| {
            s.parse::<u32>()
                .map_err(|_| TileIdError(format!("tile {name} {s:?} is not a whole number")))
        };
        TileId::new(num("zoom", z)?, num("column", x)?, num("row", y)?)
    }

    /// Tiles per side at this zoom.
    pub fn side(self) -> f64 {
        (1u64 << self.z) as f64
    }

    /// The tile's bounds in degrees: `[west, south, east, north]`.
    pub fn bounds(self) -> [f64; 4] {
        let n = self.side();
        let lon = |x: f64| x / n * 360.0 - 180.0;
        let lat = |y: f64| {
            let t = std::f64::consts::PI * (1.0 - 2.0 * y / n);
            t.sinh().atan().to_degrees()
        };
        [
            lon(self.x as f64),
            lat(self.y as f64 + 1.0),
            lon(self.x as f64 + 1.0),
            lat(self.y as f64),
        ]
    }

    /// The tile's bounds widened by `fraction` of its side on every edge (clamped to the world), in degrees.
    pub fn buffered_bounds(self, fraction: f64) -> [f64; 4] {
        let n = self.side();
        let (x0, y0) = (self.x as f64 - fraction, self.y as f64 - fraction);
        let (x1, y1) = (
            self.x as f64 + 1.0 + fraction,
            self.y as f64 + 1.0 + fraction,
        );
        let lon = |x: f64| x.clamp(0.0, n) / n * 360.0 - 180.0;
        let lat = |y: f64| {
            let t = std::f64::consts::PI * (1.0 - 2.0 * y.clamp(0.0, n) / n);
            t.sinh().atan().to_degrees()
        };
        [lon(x0), lat(y1), lon(x1), lat(y0)]
    }

    /// The tile that holds a lon/lat at zoom `z`.
    pub fn containing(lon: f64, lat: f64, z: u8) -> TileId {
        let z = z.min(MAX_ZOOM);
        let n = (1u64 << z) as f64;
        let (wx, wy) = world(lon, lat);
        let clamp = |v: f64| ((v * n).floor().max(0.0) as u64).min((n as u64) - 1) as u32;
        TileId {
            z,
            x: clamp(wx),
            y: clamp(wy),
        }
    }

    /// Every tile at zoom `z` that a lon/lat box `[west, south, east, north]` touches, as inclusive column and row
    /// ranges.
    pub fn covering(
        bbox: [f64; 4],
        z: u8,
    ) -> (std::ops::RangeInclusive<u32>, std::ops::RangeInclusive<u32>) {
        let a = TileId::containing(bbox[0], bbox[3], z);
        let b = TileId::containing(bbox[2], bbox[1], z);
        (a.x..=b.x, a.y..=b.y)
    }

    /// The zoom-0..z parent of this tile.
    pub fn parent_at(self, z: u8) -> TileId {
        if z >= self.z {
            return self;
        }
        let s = self.z - z;
        TileId {
            z,
            x: self.x >> s,
            y: self.y >> s,
        }
    }
}

/// A lon/lat as a fraction of the Web Mercator world: x from 0 (180° W) to 1, y from 0 (85.05° N) to 1.
pub fn world(lon: f64, lat: f64) -> (f64, f64) {
    let lat = lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
    let x = (lon + 180.0) / 360.0;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0;
    (x, y)
}

/// Metres per tile-pixel at a latitude and zoom, for a tile of `tile_px` pixels (ground resolution).
pub fn metres_per_pixel(lat: f64, z: u8, tile_px: f64) -> f64 {
    const EARTH_CIRCUMFERENCE: f64 = 2.0 * std::f64::consts::PI * 6_378_137.0;
    EARTH_CIRCUMFERENCE * lat.to_radians().cos() / ((1u64 << z) as f64 * tile_px)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_addresses() {
        assert_eq!(
            TileId::parse("0", "0", "0").unwrap(),
            TileId { z: 0, x: 0, y: 0 }
        );
        assert!(TileId::parse("1", "2", "0").is_err());
        assert!(TileId::parse("25", "0", "0").is_err());
        assert!(TileId::parse("3", "-1", "0").is_err());
        assert!(TileId::parse("3", "x", "0")
            .unwrap_err()
            .0
            .contains("whole number"));
    }

    #[test]
    fn bounds_of_known_tiles() {
        let w = TileId::new(0, 0, 0).unwrap().bounds();
        assert!((w[0] + 180.0).abs() < 1e-12 && (w[2] - 180.0).abs() < 1e-12);
        assert!((w[3] - MAX_LAT).abs() < 1e-9 && (w[1] + MAX_LAT).abs() < 1e-9);
        // Helsinki railway station (24.9414 E, 60.1710 N) is in z14 tile 9327/4742 (as slippy-map tools compute it)
        let t = TileId::containing(24.9414, 60.1710, 14);
        assert_eq!((t.x, t.y), (9327, 4742));
        let b = t.bounds();
        assert!(b[0] <= 24.9414 && 24.9414 <= b[2] && b[1] <= 60.1710 && 60.1710 <= b[3]);
        assert_eq!(t.parent_at(0), TileId { z: 0, x: 0, y: 0 });
        assert_eq!(
            t.parent_at(13),
            TileId {
                z: 13,
                x: 4663,
                y: 2371
            }
        );
    }

    #[test]
    fn covering_a_box() {
        let (xs, ys) = TileId::covering([24.935, 60.164, 24.953, 60.179], 15);
        assert!(xs.clone().count() >= 1 && ys.clone().count() >= 2);
        for x in xs {
            for y in ys.clone() {
                let b = TileId { z: 15, x, y }.bounds();
                assert!(b[2] > 24.935 && b[0] < 24.953 && b[3] > 60.164 && b[1] < 60.179);
            }
        }
    }

    #[test]
    fn ground_resolution() {
        // 156 543 m per pixel at the equator for one 256-px tile at zoom 0
        assert!((metres_per_pixel(0.0, 0, 256.0) - 156_543.03).abs() < 0.01);
    }
}
