//! The 15-minute city by neighbourhood: the homes' results summed up, weighted by residents, per grid cell or per
//! polygon of a layer (land-use zones, districts a city loads).

use geo::{BoundingRect, Contains, Coord, MultiPolygon, Point, Polygon, Rect};
use serde_json::{json, Value};
use twin_graph::snap::LocalProjection;

use super::city::CityAccess;

/// A neighbourhood: an id, a name and its area.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub id: String,
    pub name: Option<String>,
    pub area: MultiPolygon<f64>,
}

/// A neighbourhood's residents-weighted figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneSummary {
    pub zone: Zone,
    pub homes: usize,
    pub residents: f64,
    pub mean_score: f64,
    /// Share of residents with every category (of those with destinations) within the threshold.
    pub share_all_within: f64,
    /// Per category of the model: the share of residents whose nearest destination is within the threshold.
    pub share_within: Vec<f64>,
}

/// Square cells of `cell_m` metres (in the projection) over the homes, each as a zone `cell-{col}-{row}`.
pub fn grid(r: &CityAccess, proj: &LocalProjection, cell_m: f64) -> Vec<Zone> {
    let mut keys: Vec<(i64, i64)> = r
        .inputs
        .homes
        .iter()
        .map(|h| {
            let [x, y] = proj.project((h.place.lon, h.place.lat));
            ((x / cell_m).floor() as i64, (y / cell_m).floor() as i64)
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|(cx, cy)| {
            let corner = |i: i64, j: i64| {
                let (lon, lat) = proj.unproject([i as f64 * cell_m, j as f64 * cell_m]);
                Coord { x: lon, y: lat }
            };
            let ring = vec![
                corner(cx, cy),
                corner(cx + 1, cy),
                corner(cx + 1, cy + 1),
                corner(cx, cy + 1),
                corner(cx, cy),
            ];
            Zone {
                id: format!("cell-{cx}-{cy}"),
                name: None,
                area: MultiPolygon::new(vec![Polygon::new(ring.into(), vec![])]),
            }
        })
        .collect()
}

/// Each zone's figures from the homes inside it (a home in several overlapping zones counts in each); zones without
/// residents are left out.
pub fn summarise(r: &CityAccess, zones: Vec<Zone>) -> Vec<ZoneSummary> {
    let boxes: Vec<Option<Rect<f64>>> = zones.iter().map(|z| z.area.bounding_rect()).collect();
    let threshold = r.options.threshold_min;
    let cats = r.fields.len();
    zones
        .into_iter()
        .zip(boxes)
        .filter_map(|(zone, bbox)| {
            let bbox = bbox?;
            let (mut homes, mut residents, mut score, mut all) = (0usize, 0.0, 0.0, 0.0);
            let mut within = vec![0.0; cats];
            for (h, res) in r.inputs.homes.iter().zip(&r.homes) {
                let p = Point::new(h.place.lon, h.place.lat);
                if !bbox.contains(&p) || !zone.area.contains(&p) {
                    continue;
                }
                homes += 1;
                residents += h.residents;
                score += res.score * h.residents;
                if res.score >= 1.0 {
                    all += h.residents;
                }
                for (c, n) in res.nearest.iter().enumerate() {
                    if n.first().is_some_and(|&(m, _)| m <= threshold) {
                        within[c] += h.residents;
                    }
                }
            }
            (residents > 0.0).then(|| ZoneSummary {
                zone,
                homes,
                residents,
                mean_score: score / residents,
                share_all_within: all / residents,
                share_within: within.iter().map(|w| w / residents).collect(),
            })
        })
        .collect()
}

/// The zones' figures as a GeoJSON FeatureCollection: `id`, `name`, `homes`, `residents`, `meanScore`,
/// `shareAllWithin` and `{category}ShareWithin`.
pub fn geojson(r: &CityAccess, zones: &[ZoneSummary]) -> Value {
    let features: Vec<Value> = zones
        .iter()
        .map(|z| {
            let mut props = serde_json::Map::new();
            props.insert("id".into(), json!(z.zone.id));
            props.insert("name".into(), json!(z.zone.name));
            props.insert("homes".into(), json!(z.homes));
            props.insert(
                "residents".into(),
                json!((z.residents * 10.0).round() / 10.0),
            );
            props.insert("meanScore".into(), json!(z.mean_score));
            props.insert("shareAllWithin".into(), json!(z.share_all_within));
            for (f, s) in r.fields.iter().zip(&z.share_within) {
                props.insert(format!("{}ShareWithin", f.category), json!(s));
            }
            json!({
                "type": "Feature",
                "id": z.zone.id,
                "geometry": super::isochrone::multipolygon_geojson(&z.zone.area),
                "properties": props,
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}
