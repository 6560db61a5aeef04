//! The street network as compact arrays: nodes and directed links with their attributes, per-mode views, strongly
//! connected components, snapping of points to links and shortest paths.
//!
//! Why hand-written arrays instead of a general graph crate (petgraph and the like): a city network has millions of
//! links that are walked billions of times by traffic assignment and accessibility models. Storing the topology as
//! CSR (compressed sparse row: one offsets array and one link-index array, forward and reverse) and the link
//! attributes as parallel arrays ("struct of arrays") keeps each search touching only the few bytes it needs, lets a
//! model hand in its own per-link cost slice (congested times, generalised costs) without copying the graph, and makes
//! memory use predictable (about 60 bytes per link plus geometry). General graph crates store node and edge weights
//! together and would make every cost change a graph rebuild.
//!
//! Modules: [`mode`] (travel modes and their bitset), [`network`] (building and reading the arrays), [`entities`]
//! (the network from the hub's `RoadLink` entities), [`view`] (one
//! mode's subgraph), [`components`] (strongly connected components, islands), [`snap`] (R-tree snapping of
//! lon/lat points), [`path`] (Dijkstra, multi-source and A* searches).

pub mod components;
pub mod entities;
pub mod mode;
pub mod network;
pub mod path;
pub mod snap;
pub mod view;

#[cfg(test)]
mod tests;

pub use components::{Components, IslandReport};
pub use mode::{Mode, ModeSet};
pub use network::{ExternalId, LinkSpec, Network};
pub use path::{AStarHeuristic, Path, SearchWorkspace};
pub use snap::{Snap, SnapIndex};
pub use view::NetworkView;

/// Dense index of a node in a [`Network`] (`0..node_count`).
pub type NodeIdx = u32;
/// Dense index of a link in a [`Network`] (`0..link_count`); cost slices are indexed by it.
pub type LinkIdx = u32;

/// Why a network could not be built or searched.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    #[error("node {0} is given twice")]
    DuplicateNode(u64),
    #[error("node {node} has an invalid coordinate ({lon}, {lat}): expected WGS84 longitude and latitude")]
    InvalidCoordinate { node: u64, lon: f64, lat: f64 },
    #[error("link {link} refers to unknown node {node}")]
    UnknownNode { link: String, node: u64 },
    #[error("link {link}: {reason}")]
    InvalidLink { link: String, reason: String },
    #[error("too many {what} for 32-bit indices: {count}")]
    TooLarge { what: &'static str, count: usize },
    #[error("node index {node} is out of range (the network has {count} nodes)")]
    NodeOutOfRange { node: u32, count: usize },
    #[error("the cost slice has {found} entries but the network has {expected} links")]
    CostLength { expected: usize, found: usize },
    #[error("link {link} has an invalid cost {cost} (costs must be non-negative; +infinity closes a link)")]
    InvalidCost { link: u32, cost: f64 },
}
