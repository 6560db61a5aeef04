//! What OSM tags mean for urbantwin: which ways are streets and for whom, speeds, lanes, capacities, building
//! heights and the 15-minute-city category of a point of interest. Pure functions; the tables are in `osm`'s doc.

use super::source::Tags;
use super::Access;

/// The `highway` values that make a routable way (anything else — `proposed`, `construction`, `platform`,
/// `raceway`, `elevator`... — is not part of the network).
pub fn is_routable(highway: &str) -> bool {
    CAR_CLASSES.contains(&highway) || NON_CAR_CLASSES.contains(&highway)
}

/// Routable `highway` values that are not car roads by default.
const NON_CAR_CLASSES: &[&str] = &[
    "track",
    "pedestrian",
    "footway",
    "path",
    "steps",
    "cycleway",
    "bridleway",
    "corridor",
    "busway",
];

pub use twin_model::roads::{class_defaults, CLASS_DEFAULTS};

/// Implicit speed limits (km/h) of `maxspeed=CC:zone` values. Unknown countries use the `"*"` row.
const ZONE_SPEEDS: &[(&str, &str, f64)] = &[
    ("FI", "urban", 50.0),
    ("FI", "rural", 80.0),
    ("FI", "motorway", 120.0),
    ("FI", "trunk", 100.0),
    ("FI", "living_street", 20.0),
    ("SE", "urban", 50.0),
    ("SE", "rural", 70.0),
    ("SE", "motorway", 110.0),
    ("NO", "urban", 50.0),
    ("NO", "rural", 80.0),
    ("EE", "urban", 50.0),
    ("EE", "rural", 90.0),
    ("DE", "urban", 50.0),
    ("DE", "rural", 100.0),
    ("DE", "motorway", 130.0),
    ("DE", "living_street", 7.0),
    ("FR", "urban", 50.0),
    ("FR", "rural", 80.0),
    ("FR", "motorway", 130.0),
    ("GB", "nsl_single", 96.56),
    ("GB", "nsl_dual", 112.65),
    ("GB", "motorway", 112.65),
    ("*", "urban", 50.0),
    ("*", "rural", 90.0),
    ("*", "motorway", 120.0),
    ("*", "trunk", 100.0),
    ("*", "living_street", 20.0),
    ("*", "bicycle_road", 30.0),
    ("*", "zone30", 30.0),
    ("*", "zone20", 20.0),
];

/// Parses a `maxspeed` value to km/h: `"50"`, `"50 km/h"`, `"30 mph"`, `"FI:urban"`, `"walk"` (7), `"none"` (130,
/// the advisory speed where there is no limit). `None` for `signals`, `variable` and anything unreadable.
pub fn parse_maxspeed(v: &str) -> Option<f64> {
    let v = v.split(';').next()?.trim();
    match v {
        "walk" => return Some(7.0),
        "none" => return Some(130.0),
        _ => {}
    }
    if let Some((cc, zone)) = v.split_once(':') {
        let zone = zone.trim();
        return ZONE_SPEEDS
            .iter()
            .find(|(c, z, _)| *c == cc && *z == zone)
            .or_else(|| ZONE_SPEEDS.iter().find(|(c, z, _)| *c == "*" && *z == zone))
            .map(|&(_, _, s)| s);
    }
    let (num, unit) = split_number(v)?;
    let kmh = match unit {
        "" | "km/h" | "kmh" | "kph" => num,
        "mph" => num * 1.609344,
        "knots" => num * 1.852,
        _ => return None,
    };
    (kmh > 0.0 && kmh <= 300.0).then_some(kmh)
}

/// Splits `"12.5 m"` into `(12.5, "m")`; `None` when there is no leading number.
fn split_number(v: &str) -> Option<(f64, &str)> {
    let v = v.trim();
    let end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(v.len());
    let num: f64 = v[..end].replace(',', ".").parse().ok()?;
    num.is_finite().then_some((num, v[end..].trim()))
}

/// Parses a length (`height`, `width`): `"12"`, `"12.5 m"`, `"12m"`, `"40 ft"`, `"40'"`, `"6'6\""` → metres.
pub fn parse_length(v: &str) -> Option<f64> {
    let v = v.split(';').next()?.trim();
    let (num, unit) = split_number(v)?;
    let m = match unit {
        "" | "m" | "metre" | "metres" | "meter" | "meters" => num,
        "cm" => num / 100.0,
        "km" => num * 1000.0,
        "ft" | "feet" | "'" => num * 0.3048,
        u if u.starts_with('\'') => {
            let inches = split_number(u.trim_start_matches('\'').trim_end_matches('"'))
                .map(|(i, _)| i)
                .unwrap_or(0.0);
            num * 0.3048 + inches * 0.0254
        }
        _ => return None,
    };
    (0.0..10_000.0).contains(&m).then_some(m)
}

/// Parses a count such as `lanes` or `building:levels` (`"3"`, `"2;3"` → first, `"3.5"` → 3.5).
pub fn parse_count(v: &str) -> Option<f64> {
    let (num, unit) = split_number(v.split(';').next()?)?;
    (unit.is_empty() && (0.0..1000.0).contains(&num)).then_some(num)
}

/// Storey height used to turn `building:levels` and `roof:levels` into metres.
pub const LEVEL_HEIGHT_M: f64 = 3.0;

/// Building height in metres and how it was found: `height` first, else (`building:levels` + `roof:levels`) × 3 m.
pub fn building_height(tags: &Tags) -> Option<(f64, &'static str)> {
    if let Some(h) = tags
        .get("height")
        .and_then(parse_length)
        .filter(|h| *h > 0.0)
    {
        return Some((h, "height"));
    }
    let levels = tags.get("building:levels").and_then(parse_count)?;
    let roof = tags.get("roof:levels").and_then(parse_count).unwrap_or(0.0);
    let h = (levels + roof) * LEVEL_HEIGHT_M;
    (h > 0.0).then_some((h, "levels"))
}

/// Access values that close a way to a mode. (`destination`, `delivery`, `customers`, `permissive` keep it open.)
fn denies(v: &str) -> bool {
    matches!(
        v,
        "no" | "private"
            | "agricultural"
            | "forestry"
            | "emergency"
            | "military"
            | "use_sidepath"
            | "dismount"
    )
}

fn allows(v: &str) -> bool {
    matches!(
        v,
        "yes" | "designated" | "permissive" | "destination" | "delivery" | "customers" | "official"
    )
}

/// The most specific access tag present among `keys` (most specific first) decides; else `default`.
fn access(tags: &Tags, keys: &[&str], default: bool) -> bool {
    for k in keys {
        if let Some(v) = tags.get(k) {
            if denies(v) {
                return false;
            }
            if allows(v) {
                return true;
            }
        }
    }
    default
}

/// Routable `highway` values open to cars unless tagged otherwise.
const CAR_CLASSES: &[&str] = &[
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "service",
    "road",
];

/// The modes a routable way allows, each with its directions of travel along the way's node order.
pub fn modes(tags: &Tags) -> (Access, Access, Access) {
    let hw = tags.get("highway").unwrap_or("");
    let motorway = matches!(hw, "motorway" | "motorway_link");
    let car_ok = access(
        tags,
        &["motorcar", "motor_vehicle", "vehicle", "access"],
        CAR_CLASSES.contains(&hw),
    );
    let walk_default = !motorway && !matches!(hw, "trunk" | "trunk_link" | "busway");
    let walk_ok = if motorway {
        false
    } else {
        access(tags, &["foot", "access"], walk_default)
    };
    let bike_default = !motorway
        && !matches!(
            hw,
            "footway" | "pedestrian" | "steps" | "corridor" | "bridleway" | "busway"
        );
    let bike_ok = if motorway {
        false
    } else if bike_default {
        access(tags, &["bicycle", "vehicle", "access"], true)
    } else {
        tags.get("bicycle")
            .is_some_and(|v| allows(v) && v != "destination")
    };

    // One-way for vehicles: +1 along the way, -1 against it, 0 both ways.
    let oneway = match tags.get("oneway") {
        Some("yes" | "true" | "1") => 1,
        Some("-1" | "reverse") => -1,
        Some("no" | "false" | "0") => 0,
        _ if matches!(tags.get("junction"), Some("roundabout" | "circular")) || motorway => 1,
        _ => 0,
    };
    let dir = |ok: bool, ow: i32| Access {
        forward: ok && ow >= 0,
        backward: ok && ow <= 0,
    };
    let bike_oneway = match tags.get("oneway:bicycle") {
        Some("no") => 0,
        Some("yes") => 1,
        Some("-1") => -1,
        _ if tags
            .get("cycleway")
            .is_some_and(|c| c.starts_with("opposite"))
            || tags
                .get("cycleway:left")
                .is_some_and(|c| c.starts_with("opposite"))
            || tags
                .get("cycleway:right")
                .is_some_and(|c| c.starts_with("opposite")) =>
        {
            0
        }
        _ => oneway,
    };
    (
        dir(car_ok, oneway),
        dir(walk_ok, 0),
        dir(bike_ok, bike_oneway),
    )
}

/// Lanes of a routable way: (total, forward, backward), from `lanes`, `lanes:forward`, `lanes:backward`, else the
/// class default per direction.
pub fn lanes(tags: &Tags, car: Access) -> (u32, u32, u32) {
    let hw = tags.get("highway").unwrap_or("");
    let (_, per_dir, _) = class_defaults(hw);
    let oneway = car.forward != car.backward;
    let get = |k: &str| {
        tags.get(k)
            .and_then(parse_count)
            .map(|n| (n.round() as u32).clamp(1, 16))
    };
    let total = get("lanes").unwrap_or(if oneway {
        per_dir.max(if hw == "trunk" { 2 } else { 1 })
    } else {
        2 * per_dir
    });
    let (fwd, bwd) = if oneway {
        if car.forward {
            (total, 0)
        } else {
            (0, total)
        }
    } else {
        let fwd = get("lanes:forward").unwrap_or(total.div_ceil(2).max(1));
        let bwd = get("lanes:backward").unwrap_or(total.saturating_sub(fwd).max(1));
        (fwd, bwd)
    };
    (total, fwd, bwd)
}

/// The 15-minute-city category of a feature, with the tag that decided it (`"amenity=school"`).
pub fn poi_category(tags: &Tags) -> Option<(&'static str, String)> {
    let decided = |cat: &'static str, k: &str, v: &str| Some((cat, format!("{k}={v}")));
    if let Some(v) = tags.get("amenity") {
        let cat = match v {
            "pharmacy" => Some("pharmacy"),
            "school" | "college" | "university" | "music_school" | "language_school" => {
                Some("school")
            }
            "kindergarten" | "childcare" => Some("childcare"),
            "hospital" | "clinic" | "doctors" | "dentist" | "health_post" | "nursing_home" => {
                Some("healthcare")
            }
            "restaurant" | "cafe" | "fast_food" | "bar" | "pub" | "food_court" | "ice_cream"
            | "biergarten" => Some("restaurant_cafe"),
            "library" | "theatre" | "cinema" | "arts_centre" | "community_centre"
            | "place_of_worship" | "concert_hall" | "events_venue" | "planetarium"
            | "exhibition_centre" => Some("culture"),
            "marketplace" => Some("grocery"),
            "bus_station" | "ferry_terminal" => Some("public_transport_stop"),
            "post_office" | "bank" | "atm" | "townhall" | "police" | "fire_station"
            | "courthouse" | "social_facility" | "social_centre" | "veterinary" | "post_box"
            | "toilets" | "bicycle_rental" | "car_sharing" | "charging_station" | "fuel"
            | "car_wash" | "driving_school" | "recycling" | "public_bookcase" | "internet_cafe"
            | "nightclub" | "casino" | "coworking_space" | "luggage_locker" => Some("services"),
            _ => None,
        };
        if let Some(cat) = cat {
            return decided(cat, "amenity", v);
        }
    }
    if let Some(v) = tags.get("healthcare") {
        let cat = if v == "pharmacy" {
            "pharmacy"
        } else {
            "healthcare"
        };
        return decided(cat, "healthcare", v);
    }
    if let Some(v) = tags.get("shop") {
        let cat = match v {
            "supermarket" | "convenience" | "greengrocer" | "bakery" | "butcher" | "grocery"
            | "deli" | "seafood" | "cheese" | "dairy" | "health_food" | "food" | "pastry"
            | "farm" | "frozen_food" => "grocery",
            "chemist" if tags.is("dispensing", "yes") => "pharmacy",
            "no" | "vacant" | "disused" => return None,
            _ => "other_shop",
        };
        return decided(cat, "shop", v);
    }
    if tags.is("highway", "bus_stop") {
        return decided("public_transport_stop", "highway", "bus_stop");
    }
    if let Some(v @ ("station" | "halt" | "tram_stop" | "subway_entrance")) = tags.get("railway") {
        return decided("public_transport_stop", "railway", v);
    }
    if let Some(v @ ("platform" | "stop_position" | "station")) = tags.get("public_transport") {
        return decided("public_transport_stop", "public_transport", v);
    }
    if let Some(v) = tags.get("leisure") {
        let cat = match v {
            "park" | "garden" | "playground" | "dog_park" | "nature_reserve" => Some("park"),
            "sports_centre" | "pitch" | "fitness_centre" | "swimming_pool" | "stadium"
            | "track" | "ice_rink" | "sports_hall" | "fitness_station" | "golf_course"
            | "swimming_area" | "water_park" | "climbing" => Some("sport"),
            _ => None,
        };
        if let Some(cat) = cat {
            return decided(cat, "leisure", v);
        }
    }
    if let Some(v) = tags.get("tourism") {
        let cat = match v {
            "museum" | "gallery" | "attraction" | "artwork" | "zoo" | "aquarium" | "theme_park"
            | "viewpoint" => Some("culture"),
            "hotel" | "hostel" | "guest_house" | "motel" | "apartment" => Some("services"),
            _ => None,
        };
        if let Some(cat) = cat {
            return decided(cat, "tourism", v);
        }
    }
    if let Some(v) = tags.get("office") {
        if matches!(
            v,
            "government" | "employment_agency" | "diplomatic" | "educational_institution"
        ) {
            return decided("services", "office", v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Tags {
        Tags(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn maxspeed_values() {
        assert_eq!(parse_maxspeed("50"), Some(50.0));
        assert_eq!(parse_maxspeed("40 km/h"), Some(40.0));
        assert!((parse_maxspeed("30 mph").unwrap() - 48.28).abs() < 0.01);
        assert_eq!(parse_maxspeed("FI:urban"), Some(50.0));
        assert_eq!(parse_maxspeed("FI:rural"), Some(80.0));
        assert_eq!(parse_maxspeed("XX:urban"), Some(50.0));
        assert_eq!(parse_maxspeed("walk"), Some(7.0));
        assert_eq!(parse_maxspeed("signals"), None);
        assert_eq!(parse_maxspeed("fast"), None);
        assert_eq!(parse_maxspeed("30;50"), Some(30.0));
    }

    #[test]
    fn lengths_and_heights() {
        assert_eq!(parse_length("12 m"), Some(12.0));
        assert_eq!(parse_length("12.5"), Some(12.5));
        assert_eq!(parse_length("12m"), Some(12.0));
        assert!((parse_length("10 ft").unwrap() - 3.048).abs() < 1e-9);
        assert_eq!(parse_length("tall"), None);
        assert_eq!(
            building_height(&t(&[("building:levels", "4"), ("roof:levels", "1")])),
            Some((15.0, "levels"))
        );
        assert_eq!(
            building_height(&t(&[("height", "21,5"), ("building:levels", "4")])),
            Some((21.5, "height"))
        );
        assert_eq!(building_height(&t(&[("building", "yes")])), None);
    }

    #[test]
    fn modes_and_oneway() {
        let a = |f, b| Access {
            forward: f,
            backward: b,
        };
        assert_eq!(
            modes(&t(&[("highway", "motorway")])),
            (a(true, false), a(false, false), a(false, false))
        );
        assert_eq!(
            modes(&t(&[("highway", "residential")])),
            (a(true, true), a(true, true), a(true, true))
        );
        assert_eq!(
            modes(&t(&[
                ("highway", "residential"),
                ("oneway", "yes"),
                ("oneway:bicycle", "no")
            ])),
            (a(true, false), a(true, true), a(true, true))
        );
        assert_eq!(
            modes(&t(&[("highway", "primary"), ("oneway", "-1")])),
            (a(false, true), a(true, true), a(false, true))
        );
        assert_eq!(
            modes(&t(&[("highway", "secondary"), ("junction", "roundabout")])).0,
            a(true, false)
        );
        assert_eq!(
            modes(&t(&[("highway", "footway")])),
            (a(false, false), a(true, true), a(false, false))
        );
        assert_eq!(
            modes(&t(&[("highway", "footway"), ("bicycle", "yes")])).2,
            a(true, true)
        );
        assert_eq!(
            modes(&t(&[("highway", "cycleway"), ("foot", "no")])),
            (a(false, false), a(false, false), a(true, true))
        );
        assert_eq!(
            modes(&t(&[("highway", "service"), ("access", "private")])).0,
            a(false, false)
        );
        assert_eq!(
            modes(&t(&[
                ("highway", "service"),
                ("access", "no"),
                ("foot", "yes")
            ]))
            .1,
            a(true, true)
        );
    }

    #[test]
    fn lanes_defaults() {
        let two = Access {
            forward: true,
            backward: true,
        };
        let one = Access {
            forward: true,
            backward: false,
        };
        assert_eq!(lanes(&t(&[("highway", "residential")]), two), (2, 1, 1));
        assert_eq!(
            lanes(&t(&[("highway", "primary"), ("lanes", "4")]), two),
            (4, 2, 2)
        );
        assert_eq!(
            lanes(
                &t(&[
                    ("highway", "primary"),
                    ("lanes", "3"),
                    ("lanes:forward", "1")
                ]),
                two
            ),
            (3, 1, 2)
        );
        assert_eq!(lanes(&t(&[("highway", "motorway")]), one), (2, 2, 0));
    }

    #[test]
    fn categories() {
        let c = |p: &[(&str, &str)]| poi_category(&t(p)).map(|(c, _)| c);
        assert_eq!(c(&[("shop", "supermarket")]), Some("grocery"));
        assert_eq!(c(&[("shop", "clothes")]), Some("other_shop"));
        assert_eq!(c(&[("amenity", "kindergarten")]), Some("childcare"));
        assert_eq!(c(&[("healthcare", "pharmacy")]), Some("pharmacy"));
        assert_eq!(c(&[("highway", "bus_stop")]), Some("public_transport_stop"));
        assert_eq!(c(&[("leisure", "park")]), Some("park"));
        assert_eq!(c(&[("amenity", "bench")]), None);
        assert_eq!(
            c(&[("amenity", "cafe"), ("shop", "bakery")]),
            Some("restaurant_cafe")
        );
    }
}
