//! The coordinate reference systems a CityJSON file may declare, and the way from each to WGS84 longitude/latitude.
//! Only CRSs listed here are accepted: an unknown one is an error, never a guess.

use proj4rs::proj::Proj;

/// The proj4 definition of EPSG:28992 (Amersfoort / RD New), also the horizontal part of EPSG:7415 (RD New + NAP).
const RD_NEW: &str = "+proj=sterea +lat_0=52.15616055555555 +lon_0=5.38763888888889 +k=0.9999079 +x_0=155000 \
     +y_0=463000 +ellps=bessel +towgs84=565.417,50.3319,465.552,-0.398957,0.343988,-1.8774,4.0725 +units=m +no_defs";
const WGS84: &str = "+proj=longlat +datum=WGS84 +no_defs";

/// Web Mercator sphere radius (EPSG:3857).
const WEB_MERCATOR_R: f64 = 6_378_137.0;

/// A supported coordinate reference system. Axis order is always x = easting/longitude, y = northing/latitude, as
/// CityJSON prescribes (also for EPSG:4326, whose official order is latitude first).
#[derive(Debug, Clone)]
pub struct Crs {
    /// The EPSG code of the (horizontal part of the) CRS as declared, e.g. 7415; 4326 for OGC CRS84.
    pub epsg: u32,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Geographic longitude/latitude in degrees (WGS84 or ETRS89, which differ by less than a metre).
    LonLat,
    WebMercator,
    /// A projection done by proj4rs, to the WGS84 destination.
    Proj(Box<(Proj, Proj)>),
}

/// The CRSs this reader knows, for error messages.
pub const SUPPORTED: &str = "EPSG:28992 and 7415 (RD New, RD New + NAP), 4326, 4979, 4258, 4937 and OGC CRS84 \
     (longitude/latitude), 3857 (Web Mercator), 32601-32660 and 32701-32760 (WGS 84 / UTM), 25828-25838 \
     (ETRS89 / UTM)";

impl Crs {
    /// Parses a CityJSON `referenceSystem` (`https://www.opengis.net/def/crs/EPSG/0/7415`,
    /// `urn:ogc:def:crs:EPSG::7415`, compound `urn:ogc:def:crs,crs:EPSG::28992,crs:EPSG::5709`) or a plain
    /// `EPSG:7415`.
    pub fn parse(s: &str) -> Result<Crs, String> {
        let t = s.trim();
        if t.to_ascii_uppercase().ends_with("CRS84") {
            return Crs::from_epsg(4326);
        }
        // compound URN: the first component is the horizontal CRS
        let first = match t.find(",crs:") {
            Some(i) => &t[i + 1..],
            None => t,
        };
        let first = first.split(',').next().unwrap_or(first);
        let upper = first.to_ascii_uppercase();
        let Some(at) = upper.find("EPSG") else {
            return Err(format!(
                "reference system {s:?} is not an EPSG code (supported: {SUPPORTED})"
            ));
        };
        let code = first[at + 4..]
            .split(['/', ':'])
            .rfind(|p| !p.is_empty())
            .and_then(|p| p.trim().parse::<u32>().ok())
            .ok_or_else(|| format!("reference system {s:?} has no EPSG code number"))?;
        Crs::from_epsg(code)
    }

    /// The CRS with the given EPSG code, when supported.
    pub fn from_epsg(code: u32) -> Result<Crs, String> {
        let kind = match code {
            4326 | 4979 | 4258 | 4937 => Kind::LonLat,
            3857 | 900913 => Kind::WebMercator,
            28992 | 7415 => proj(RD_NEW)?,
            32601..=32660 => proj(&format!(
                "+proj=utm +zone={} +datum=WGS84 +units=m +no_defs",
                code - 32600
            ))?,
            32701..=32760 => proj(&format!(
                "+proj=utm +zone={} +south +datum=WGS84 +units=m +no_defs",
                code - 32700
            ))?,
            25828..=25838 => proj(&format!(
                "+proj=utm +zone={} +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs",
                code - 25800
            ))?,
            _ => {
                return Err(format!(
                    "unsupported reference system EPSG:{code} (supported: {SUPPORTED})"
                ))
            }
        };
        Ok(Crs { epsg: code, kind })
    }

    /// `EPSG:<code>`.
    pub fn name(&self) -> String {
        format!("EPSG:{}", self.epsg)
    }

    /// True for longitude/latitude CRSs (degrees, not metres).
    pub fn is_geographic(&self) -> bool {
        matches!(self.kind, Kind::LonLat)
    }

    /// True when x/y are metres with a scale close to 1 near the data (not Web Mercator, not degrees), so that areas
    /// and volumes can be computed directly in the CRS.
    pub fn is_metric(&self) -> bool {
        matches!(self.kind, Kind::Proj(_))
    }

    /// Converts x/y in this CRS to WGS84 longitude/latitude in degrees.
    pub fn to_wgs84(&self, x: f64, y: f64) -> Result<(f64, f64), String> {
        if !x.is_finite() || !y.is_finite() || x.abs() > 1e9 || y.abs() > 1e9 {
            return Err(format!(
                "coordinate ({x}, {y}) is out of range for {}",
                self.name()
            ));
        }
        let (lon, lat) = match &self.kind {
            Kind::LonLat => (x, y),
            Kind::WebMercator => (
                (x / WEB_MERCATOR_R).to_degrees(),
                (y / WEB_MERCATOR_R).sinh().atan().to_degrees(),
            ),
            Kind::Proj(p) => {
                let mut pt = (x, y, 0.0);
                proj4rs::transform::transform(&p.0, &p.1, &mut pt).map_err(|e| {
                    format!(
                        "cannot transform ({x}, {y}) from {} to WGS84: {e}",
                        self.name()
                    )
                })?;
                (pt.0.to_degrees(), pt.1.to_degrees())
            }
        };
        if !(lon.is_finite()
            && lat.is_finite()
            && (-180.0..=180.0).contains(&lon)
            && (-90.0..=90.0).contains(&lat))
        {
            return Err(format!(
                "coordinate ({x}, {y}) does not map to a valid longitude/latitude under {} (wrong CRS?)",
                self.name()
            ));
        }
        Ok((lon, lat))
    }
}

fn proj(def: &str) -> Result<Kind, String> {
    let src = Proj::from_proj_string(def).map_err(|e| format!("bad projection {def:?}: {e}"))?;
    let dst =
        Proj::from_proj_string(WGS84).map_err(|e| format!("bad projection {WGS84:?}: {e}"))?;
    Ok(Kind::Proj(Box::new((src, dst))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        for s in [
            "https://www.opengis.net/def/crs/EPSG/0/7415",
            "http://www.opengis.net/def/crs/EPSG/0/7415",
            "urn:ogc:def:crs:EPSG::7415",
            "urn:ogc:def:crs:EPSG:6.6:7415",
            "EPSG:7415",
            "epsg:7415",
        ] {
            assert_eq!(Crs::parse(s).unwrap().epsg, 7415, "{s}");
        }
        assert_eq!(
            Crs::parse("urn:ogc:def:crs,crs:EPSG::28992,crs:EPSG::5709")
                .unwrap()
                .epsg,
            28992
        );
        assert_eq!(
            Crs::parse("http://www.opengis.net/def/crs/OGC/1.3/CRS84")
                .unwrap()
                .epsg,
            4326
        );
        assert!(Crs::parse("https://www.opengis.net/def/crs/EPSG/0/2056")
            .unwrap_err()
            .contains("unsupported"));
        assert!(Crs::parse("https://example.org/crs/local").is_err());
        assert!(Crs::parse("EPSG:").is_err());
    }

    #[test]
    fn transforms_to_wgs84() {
        // Amersfoort, the origin of RD: (155000, 463000) is about 52.15517 N, 5.38721 E in WGS84.
        let (lon, lat) = Crs::from_epsg(28992)
            .unwrap()
            .to_wgs84(155_000.0, 463_000.0)
            .unwrap();
        assert!(
            (lon - 5.387206).abs() < 2e-5 && (lat - 52.155172).abs() < 2e-5,
            "{lon} {lat}"
        );
        // the central meridian of UTM zone 31 is 3 E
        let (lon, lat) = Crs::from_epsg(32631)
            .unwrap()
            .to_wgs84(500_000.0, 5_761_000.0)
            .unwrap();
        assert!(
            (lon - 3.0).abs() < 1e-9 && (51.9..52.1).contains(&lat),
            "{lon} {lat}"
        );
        let (lon, lat) = Crs::from_epsg(32731)
            .unwrap()
            .to_wgs84(500_000.0, 4_000_000.0)
            .unwrap();
        assert!(
            (lon - 3.0).abs() < 1e-9 && (-54.3..-54.0).contains(&lat),
            "{lon} {lat}"
        );
        let (lon, _) = Crs::from_epsg(25832)
            .unwrap()
            .to_wgs84(500_000.0, 5_761_000.0)
            .unwrap();
        assert!((lon - 9.0).abs() < 1e-6);
        let (lon, lat) = Crs::from_epsg(3857)
            .unwrap()
            .to_wgs84(20_037_508.0, 0.0)
            .unwrap();
        assert!((lon - 180.0).abs() < 1e-5 && lat.abs() < 1e-12);
        let (_, lat) = Crs::from_epsg(3857)
            .unwrap()
            .to_wgs84(0.0, 6_800_125.45)
            .unwrap();
        assert!((lat - 52.0).abs() < 1e-3, "{lat}");
        assert_eq!(
            Crs::from_epsg(4326).unwrap().to_wgs84(4.3, 52.0).unwrap(),
            (4.3, 52.0)
        );
        assert!(Crs::from_epsg(4326).unwrap().to_wgs84(452.0, 4.3).is_err());
        assert!(Crs::from_epsg(28992)
            .unwrap()
            .to_wgs84(f64::NAN, 0.0)
            .is_err());
        assert!(Crs::from_epsg(28992).unwrap().to_wgs84(1e12, 0.0).is_err());
    }
}
