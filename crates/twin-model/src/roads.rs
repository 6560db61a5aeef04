//! Road classes (OSM `highway` values) and what a traffic model assumes of them where the data is silent: free-flow
//! speed, lanes per direction and capacity per lane. Shared by the importers and the scenario editor.

/// Road class defaults: (highway, free-flow km/h when `maxspeed` is missing, lanes per direction, capacity veh/h per
/// lane). Speeds are the Finnish/EU legal defaults in a built-up area (50 km/h), the Finnish motorway default (120),
/// 80 km/h for trunk roads (FI rural default), 20 km/h for living streets (FI pihakatu) and practical speeds for
/// service roads and tracks. Capacities follow common macroscopic-model practice (HCM-like saturation flows reduced
/// for urban junctions).
pub const CLASS_DEFAULTS: &[(&str, f64, u32, f64)] = &[
    ("motorway", 120.0, 2, 2000.0),
    ("motorway_link", 70.0, 1, 1500.0),
    ("trunk", 80.0, 1, 1800.0),
    ("trunk_link", 60.0, 1, 1500.0),
    ("primary", 50.0, 1, 1200.0),
    ("primary_link", 40.0, 1, 1000.0),
    ("secondary", 50.0, 1, 1000.0),
    ("secondary_link", 40.0, 1, 900.0),
    ("tertiary", 50.0, 1, 800.0),
    ("tertiary_link", 40.0, 1, 700.0),
    ("unclassified", 50.0, 1, 600.0),
    ("residential", 50.0, 1, 500.0),
    ("road", 50.0, 1, 500.0),
    ("busway", 50.0, 1, 500.0),
    ("living_street", 20.0, 1, 300.0),
    ("service", 20.0, 1, 300.0),
    ("track", 20.0, 1, 200.0),
];

/// Default for every other routable class (paths, footways, cycleways...: no motor traffic).
pub const OTHER_DEFAULT: (f64, u32, f64) = (10.0, 1, 100.0);

/// `(free-flow km/h, lanes per direction, capacity veh/h per lane)` of a `highway` class ([`OTHER_DEFAULT`] for a
/// class the table does not list).
pub fn class_defaults(highway: &str) -> (f64, u32, f64) {
    CLASS_DEFAULTS
        .iter()
        .find(|(h, ..)| *h == highway)
        .map(|&(_, s, l, c)| (s, l, c))
        .unwrap_or(OTHER_DEFAULT)
}

/// Whether `highway` is one of the classes of [`CLASS_DEFAULTS`] (roads open to cars by default).
pub fn is_car_class(highway: &str) -> bool {
    CLASS_DEFAULTS.iter().any(|(h, ..)| *h == highway)
}
