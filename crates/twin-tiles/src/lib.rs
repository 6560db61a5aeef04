//! Map tiles for the twin: Web Mercator tile arithmetic, clipping and simplification of features to a tile, and their
//! encoding as Mapbox Vector Tiles 2.1. Pure functions over `geo` geometries; no I/O, no knowledge of entities.

pub mod index;
pub mod mvt;
pub mod tile;
pub mod tiler;

pub use index::{LayerIndex, PreparedFeature};
pub use tile::{TileId, TileIdError};
pub use tiler::{Feature, LayerBuilder, PropValue, TileBuilder, TilerOptions};
