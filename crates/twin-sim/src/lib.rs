//! urbantwin's models, as pure functions over a network and inputs: no I/O, no HTTP, no SQL. A caller (the CLI, the
//! API, a benchmark) reads the inputs, calls a model and stores or prints what it returns.
//!
//! Modules: [`traffic`] (city demand and static user-equilibrium assignment, scenarios), [`access`] (the 15-minute
//! city: walking and cycling times to daily needs), [`air`] (road-traffic emissions, their dispersion, and the air
//! and noise of a city's streets and homes under any traffic solution, [`air::city`]) and [`noise`] (road-traffic
//! noise, CNOSSOS-EU). Energy follows as its own module. Each model's module doc states its equations and its
//! sources.

/// This crate's version: what a result's provenance names the models by.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod access;
pub mod air;
pub mod noise;
pub mod traffic;
