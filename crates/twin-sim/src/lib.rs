//! urbantwin's models, as pure functions over a network and inputs: no I/O, no HTTP, no SQL. A caller (the CLI, the
//! API, a benchmark) reads the inputs, calls a model and stores or prints what it returns.
//!
//! Modules: [`traffic`] (static user-equilibrium traffic assignment today; zones, trip generation and distribution
//! later). Air quality, accessibility and energy follow as their own modules. Each model's module doc states its
//! equations and its sources.

pub mod traffic;
