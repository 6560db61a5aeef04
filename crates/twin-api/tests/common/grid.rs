//! A small synthetic city for tests whose models must run in seconds: a grid of streets (the middle row is
//! Keskuskatu), a building in each block and a grocery in the south-west corner.

use serde_json::{json, Value};

/// The grid: N × N street nodes, DLON and DLAT degrees apart (about 220 m each way at 60° N).
pub const N: usize = 6;
pub const LON0: f64 = 24.90;
pub const LAT0: f64 = 60.20;
pub const DLON: f64 = 0.004;
pub const DLAT: f64 = 0.002;

pub fn node(r: usize, c: usize) -> (usize, [f64; 2]) {
    (
        r * N + c + 1,
        [LON0 + c as f64 * DLON, LAT0 + r as f64 * DLAT],
    )
}

pub fn street(
    id: String,
    name: &str,
    a: (usize, [f64; 2]),
    b: (usize, [f64; 2]),
    length: f64,
) -> Value {
    let both = json!({"type": "Property", "value": {"forward": true, "backward": true}});
    json!({
        "id": id, "type": "RoadLink",
        "name": {"type": "Property", "value": name},
        "startNode": {"type": "Property", "value": a.0}, "endNode": {"type": "Property", "value": b.0},
        "length": {"type": "Property", "value": length},
        "freeFlowSpeed": {"type": "Property", "value": 40.0},
        "capacityForward": {"type": "Property", "value": 800.0},
        "capacityBackward": {"type": "Property", "value": 800.0},
        "lanesForward": {"type": "Property", "value": 1}, "lanesBackward": {"type": "Property", "value": 1},
        "carAccess": both, "walkAccess": both, "bikeAccess": both,
        "location": {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": [a.1, b.1]}},
    })
}

/// A square around (lon, lat), `h` degrees of latitude high.
pub fn square(lon: f64, lat: f64, h: f64) -> Value {
    let w = h * 2.0;
    json!({"type": "Polygon", "coordinates": [[[lon - w, lat - h], [lon + w, lat - h], [lon + w, lat + h],
                                               [lon - w, lat + h], [lon - w, lat - h]]]})
}

pub fn poi(id: &str, category: &str, lon: f64, lat: f64) -> Value {
    json!({"id": id, "type": "PointOfInterest",
           "category": {"type": "Property", "value": category},
           "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}})
}

/// The grid's streets (the middle row is Keskuskatu), an apartment block or an office in each block, and a grocery
/// in the south-west corner.
pub fn grid_city() -> Vec<Value> {
    let mut out = Vec::new();
    for r in 0..N {
        for c in 0..N {
            if c + 1 < N {
                let name = if r == N / 2 { "Keskuskatu" } else { "Sivukatu" };
                out.push(street(
                    format!("urn:ngsi-ld:RoadLink:h-{r}-{c}"),
                    name,
                    node(r, c),
                    node(r, c + 1),
                    222.0,
                ));
            }
            if r + 1 < N {
                out.push(street(
                    format!("urn:ngsi-ld:RoadLink:v-{r}-{c}"),
                    "Poikkikatu",
                    node(r, c),
                    node(r + 1, c),
                    223.0,
                ));
            }
            if r + 1 < N && c + 1 < N {
                let (lon, lat) = (
                    LON0 + (c as f64 + 0.5) * DLON,
                    LAT0 + (r as f64 + 0.5) * DLAT,
                );
                let category = if (r + c) % 3 == 0 {
                    "office"
                } else {
                    "apartments"
                };
                out.push(json!({"id": format!("urn:ngsi-ld:Building:b-{r}-{c}"), "type": "Building",
                                "category": {"type": "Property", "value": category},
                                "floorsAboveGround": {"type": "Property", "value": 4},
                                "location": {"type": "GeoProperty", "value": square(lon, lat, 0.0002)}}));
            }
        }
    }
    out.push(poi(
        "urn:ngsi-ld:PointOfInterest:grocery-sw",
        "grocery",
        LON0 + 0.5 * DLON,
        LAT0 + 0.1 * DLAT,
    ));
    out
}
