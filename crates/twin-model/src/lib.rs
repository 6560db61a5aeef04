//! urbantwin's domain model, with no I/O: NGSI-LD entities and attributes, JSON-LD contexts, the NGSI-LD query
//! languages, datasets with owners and licences. Every other crate speaks in these types.

pub mod context;
pub mod core_context;
pub mod dataset;
pub mod duration;
pub mod entity;
pub mod error;
pub mod geoquery;
pub mod ngsi;
pub mod ops;
pub mod participation;
pub mod policy;
pub mod query;
pub mod roads;
pub mod subscription;

pub use context::Context;
pub use dataset::Dataset;
pub use entity::{AttrKind, Attribute, Entity, Provenance};
pub use error::{ErrorKind, NgsiError};
