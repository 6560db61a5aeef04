//! The 15-minute city: for every home, the walking or cycling time to the nearest destinations of each category of
//! daily needs (grocery, school, park, stop...), the share of them within 15 minutes, and what a change does to it.
//!
//! # Model
//! - **Network**: the street network's links open to the mode ([`twin_graph::Mode::Walk`] or `Bike`), each taking
//!   `length / v` seconds, plus `c_x / 2` at each end that is a crossing of a major road: a node where a link for
//!   people only (footway, crossing, cycleway) meets a car link of at least 1,000 veh/h per direction (secondary
//!   roads and up). `c_x` = 15 s by default, a parameter: about the mean pedestrian delay at a signalised crossing,
//!   `(C − g)² / 2C` (Highway Capacity Manual), 13 s for a 60 s cycle with 20 s of walk time. No slopes: the network
//!   carries no elevation yet (Tobler's hiking function will weight links when it does).
//! - **Speeds** ([`WalkProfile`]): adults 1.33 m/s (4.8 km/h, a common planning value); older people 0.97 m/s,
//!   the 15th-percentile walking speed of pedestrians aged 65+ in Knoblauch, Pietrucha & Nitzburg (1996),
//!   *Transportation Research Record* 1538; cycling 4.17 m/s (15 km/h). Any other speed can be given.
//! - **Homes**: buildings with residential floor area: footprint × floors × the residential share of the use
//!   category (1 for residential uses, ½ for `yes`, as in the traffic model's trip generation);
//!   residents = that area / 35 m² per resident (a parameter: about Helsinki's dwelling floor area per person in
//!   Statistics Finland's housing statistics).
//! - **Places on the network**: a home or a destination joins its nearest link of the mode at the nearest point
//!   (within 300 m), by a straight line at the mode's speed, then along the link to either end (the way back only
//!   where the link is two-way for the mode).
//! - **Nearest destinations**: for each category, one search from all its destinations at once over the reversed
//!   network keeps the `k` nearest distinct destinations of every node ([`nearest::KNearest`]); a home's `k` nearest
//!   are the best of its anchor nodes' labels plus the way to them. Exact: the tests check it against a plain
//!   one-to-all Dijkstra from sampled homes, and the benchmark against pandana's `nearest_pois`.
//! - **Indicators**: per home, the minutes to the nearest 1..k destinations of each category and the **15-minute
//!   score** = the share of categories whose nearest destination is within the threshold (15 min); for the city,
//!   residents-weighted: the share of residents within the threshold per category, the mean score and the share of
//!   residents with every category within reach.
//!
//! Searches stop at `max_min` (30 min by default): a destination beyond is "not within reach".
//!
//! **Neighbourhoods** ([`areas`]): the homes' figures summed up per grid cell or per polygon of a layer, weighted by
//! residents.
//!
//! **Isochrones** ([`isochrone`]): the area reachable from a point within given minutes, contoured from the times
//! along the reached network plus a short straight walk off it.

pub mod areas;
pub mod city;
pub mod graph;
pub mod isochrone;
pub mod nearest;
pub mod scenario;

pub use city::{run, AccessOptions, AccessParams, AccessSummary, CityAccess, DAILY_NEEDS};
pub use graph::{AccessGraph, Movement};
pub use isochrone::{Isochrone, IsochroneError, IsochroneOptions};
pub use nearest::KNearest;
pub use scenario::{AccessEdit, HomeChange};

/// Walking speeds of the documented profiles (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkProfile {
    /// 1.33 m/s.
    Adult,
    /// 0.97 m/s: the 15th percentile of pedestrians aged 65 and over.
    Older,
}

impl WalkProfile {
    pub fn speed_mps(self) -> f64 {
        match self {
            WalkProfile::Adult => 1.33,
            WalkProfile::Older => 0.97,
        }
    }
}

/// Cycling speed, m/s (15 km/h).
pub const BIKE_SPEED_MPS: f64 = 15.0 / 3.6;

#[cfg(test)]
mod tests;
