//! Readers that turn city data files into model values — streaming, in bounded memory, never touching the store —
//! with errors that name the file, the place in it and the reason.

pub mod cityjson;
pub mod csv;
pub mod error;
pub mod geojson;
pub mod gtfs;
pub mod osm;
pub mod tntp;

pub use error::ImportError;
