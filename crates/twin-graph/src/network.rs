//! Building the network: external node and link ids mapped to dense `u32` indices, forward and reverse CSR
//! adjacency, and the link attributes as parallel arrays (see the crate docs for why).

use std::collections::HashMap;
use std::fmt;

use crate::{GraphError, LinkIdx, Mode, ModeSet, NetworkView, NodeIdx};

/// A link's identifier in its source (an OSM way id, a TNTP row number, a road-segment URN...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExternalId {
    Number(u64),
    Text(String),
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternalId::Number(n) => write!(f, "{n}"),
            ExternalId::Text(t) => write!(f, "{t:?}"),
        }
    }
}

impl From<u64> for ExternalId {
    fn from(n: u64) -> ExternalId {
        ExternalId::Number(n)
    }
}

impl From<&str> for ExternalId {
    fn from(t: &str) -> ExternalId {
        ExternalId::Text(t.to_owned())
    }
}

impl From<String> for ExternalId {
    fn from(t: String) -> ExternalId {
        ExternalId::Text(t)
    }
}

/// One directed link as the builder receives it. A two-way street is two specs; a oneway street is one spec for the
/// vehicles plus, usually, a reverse spec with [`ModeSet::WALK`] only: the builder does not guess.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSpec {
    pub id: ExternalId,
    /// External node id of the tail.
    pub from: u64,
    /// External node id of the head.
    pub to: u64,
    pub length_m: f64,
    pub free_flow_s: f64,
    pub capacity_vph: f64,
    pub lanes: f32,
    pub modes: ModeSet,
    /// The link's polyline as (lon, lat) from tail to head, endpoints included; `None` for a straight line between
    /// the two nodes.
    pub geometry: Option<Vec<(f64, f64)>>,
}

impl LinkSpec {
    /// A straight, one-lane link open to the given modes.
    pub fn new(
        id: impl Into<ExternalId>,
        from: u64,
        to: u64,
        length_m: f64,
        free_flow_s: f64,
        capacity_vph: f64,
        modes: ModeSet,
    ) -> LinkSpec {
        LinkSpec {
            id: id.into(),
            from,
            to,
            length_m,
            free_flow_s,
            capacity_vph,
            lanes: 1.0,
            modes,
            geometry: None,
        }
    }

    /// A car-only link as in the traffic benchmarks (TNTP rows): `id` is typically the row number, and the caller
    /// converts the file's units to metres, seconds and vehicles per hour.
    pub fn car(
        id: u64,
        from: u64,
        to: u64,
        length_m: f64,
        free_flow_s: f64,
        capacity_vph: f64,
    ) -> LinkSpec {
        LinkSpec::new(
            id,
            from,
            to,
            length_m,
            free_flow_s,
            capacity_vph,
            ModeSet::CAR,
        )
    }

    /// The same link in the opposite direction (geometry reversed) with other modes and id.
    #[must_use]
    pub fn reversed(&self, id: impl Into<ExternalId>, modes: ModeSet) -> LinkSpec {
        LinkSpec {
            id: id.into(),
            from: self.to,
            to: self.from,
            modes,
            geometry: self
                .geometry
                .as_ref()
                .map(|g| g.iter().rev().copied().collect()),
            ..self.clone()
        }
    }
}

/// The street network: dense nodes and directed links in compressed sparse row form.
#[derive(Debug, Clone)]
pub struct Network {
    node_ids: Vec<u64>,
    node_index: HashMap<u64, NodeIdx>,
    node_coords: Vec<(f64, f64)>,
    link_from: Vec<NodeIdx>,
    link_to: Vec<NodeIdx>,
    length_m: Vec<f64>,
    free_flow_s: Vec<f64>,
    capacity_vph: Vec<f64>,
    lanes: Vec<f32>,
    modes: Vec<ModeSet>,
    link_ids: Vec<ExternalId>,
    /// Link `l`'s stored polyline is `geom_points[geom_offsets[l]..geom_offsets[l + 1]]` (empty = straight).
    geom_offsets: Vec<u32>,
    geom_points: Vec<(f64, f64)>,
    out_offsets: Vec<u32>,
    out_links: Vec<LinkIdx>,
    in_offsets: Vec<u32>,
    in_links: Vec<LinkIdx>,
}

fn valid_lon_lat((lon, lat): (f64, f64)) -> bool {
    lon.is_finite()
        && lat.is_finite()
        && (-180.0..=180.0).contains(&lon)
        && (-90.0..=90.0).contains(&lat)
}

fn to_u32(count: usize, what: &'static str) -> Result<u32, GraphError> {
    u32::try_from(count)
        .ok()
        .filter(|c| *c < u32::MAX)
        .ok_or(GraphError::TooLarge { what, count })
}

impl Network {
    /// Builds the network from nodes (external id, (lon, lat)) and directed links. Links keep their order (link `i`
    /// of the result is `links[i]`); nodes are numbered in the order given.
    ///
    /// Fails on duplicate node ids, coordinates outside WGS84 ranges, links to unknown nodes, negative or non-finite
    /// lengths, times, capacities or lanes, and geometries with fewer than two or non-finite points.
    pub fn build(
        nodes: impl IntoIterator<Item = (u64, (f64, f64))>,
        links: Vec<LinkSpec>,
    ) -> Result<Network, GraphError> {
        let nodes = nodes.into_iter();
        let mut node_ids = Vec::with_capacity(nodes.size_hint().0);
        let mut node_coords = Vec::with_capacity(nodes.size_hint().0);
        let mut node_index = HashMap::with_capacity(nodes.size_hint().0);
        for (id, coord) in nodes {
            if !valid_lon_lat(coord) {
                return Err(GraphError::InvalidCoordinate {
                    node: id,
                    lon: coord.0,
                    lat: coord.1,
                });
            }
            let idx = to_u32(node_ids.len(), "nodes")?;
            if node_index.insert(id, idx).is_some() {
                return Err(GraphError::DuplicateNode(id));
            }
            node_ids.push(id);
            node_coords.push(coord);
        }
        let n = node_ids.len();
        to_u32(links.len(), "links")?;

        let m = links.len();
        let mut net = Network {
            node_ids,
            node_index,
            node_coords,
            link_from: Vec::with_capacity(m),
            link_to: Vec::with_capacity(m),
            length_m: Vec::with_capacity(m),
            free_flow_s: Vec::with_capacity(m),
            capacity_vph: Vec::with_capacity(m),
            lanes: Vec::with_capacity(m),
            modes: Vec::with_capacity(m),
            link_ids: Vec::with_capacity(m),
            geom_offsets: Vec::with_capacity(m + 1),
            geom_points: Vec::new(),
            out_offsets: Vec::new(),
            out_links: Vec::new(),
            in_offsets: Vec::new(),
            in_links: Vec::new(),
        };
        net.geom_offsets.push(0);
        for spec in links {
            let invalid = |reason: String| GraphError::InvalidLink {
                link: spec.id.to_string(),
                reason,
            };
            let node = |id: u64| {
                net.node_index
                    .get(&id)
                    .copied()
                    .ok_or_else(|| GraphError::UnknownNode {
                        link: spec.id.to_string(),
                        node: id,
                    })
            };
            let from = node(spec.from)?;
            let to = node(spec.to)?;
            for (name, value) in [
                ("length_m", spec.length_m),
                ("free_flow_s", spec.free_flow_s),
                ("capacity_vph", spec.capacity_vph),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(invalid(format!(
                        "{name} must be finite and non-negative, not {value}"
                    )));
                }
            }
            if !(spec.lanes.is_finite() && spec.lanes >= 0.0) {
                return Err(invalid(format!(
                    "lanes must be finite and non-negative, not {}",
                    spec.lanes
                )));
            }
            if let Some(geometry) = &spec.geometry {
                if geometry.len() < 2 {
                    return Err(invalid(format!(
                        "geometry needs at least 2 points, has {}",
                        geometry.len()
                    )));
                }
                if let Some(p) = geometry.iter().find(|p| !valid_lon_lat(**p)) {
                    return Err(invalid(format!(
                        "geometry point ({}, {}) is not a WGS84 lon/lat",
                        p.0, p.1
                    )));
                }
                net.geom_points.extend_from_slice(geometry);
            }
            net.geom_offsets
                .push(to_u32(net.geom_points.len(), "geometry points")?);
            net.link_from.push(from);
            net.link_to.push(to);
            net.length_m.push(spec.length_m);
            net.free_flow_s.push(spec.free_flow_s);
            net.capacity_vph.push(spec.capacity_vph);
            net.lanes.push(spec.lanes);
            net.modes.push(spec.modes);
            net.link_ids.push(spec.id);
        }
        (net.out_offsets, net.out_links) = csr(n, &net.link_from);
        (net.in_offsets, net.in_links) = csr(n, &net.link_to);
        Ok(net)
    }

    pub fn node_count(&self) -> usize {
        self.node_ids.len()
    }

    pub fn link_count(&self) -> usize {
        self.link_from.len()
    }

    /// The dense index of an external node id.
    pub fn node_index(&self, external: u64) -> Option<NodeIdx> {
        self.node_index.get(&external).copied()
    }

    /// The external id of node `node`. Panics if `node` is out of range, as slice indexing does.
    pub fn node_id(&self, node: NodeIdx) -> u64 {
        self.node_ids[node as usize]
    }

    /// The (lon, lat) of node `node`. Panics if `node` is out of range.
    pub fn node_coord(&self, node: NodeIdx) -> (f64, f64) {
        self.node_coords[node as usize]
    }

    /// All node coordinates, by node index.
    pub fn node_coords(&self) -> &[(f64, f64)] {
        &self.node_coords
    }

    /// Tail node of each link, by link index.
    pub fn link_from(&self) -> &[NodeIdx] {
        &self.link_from
    }

    /// Head node of each link, by link index.
    pub fn link_to(&self) -> &[NodeIdx] {
        &self.link_to
    }

    pub fn length_m(&self) -> &[f64] {
        &self.length_m
    }

    /// Free-flow travel times in seconds: directly usable as the cost slice of a search.
    pub fn free_flow_s(&self) -> &[f64] {
        &self.free_flow_s
    }

    pub fn capacity_vph(&self) -> &[f64] {
        &self.capacity_vph
    }

    pub fn lanes(&self) -> &[f32] {
        &self.lanes
    }

    pub fn link_modes(&self) -> &[ModeSet] {
        &self.modes
    }

    pub fn link_id(&self, link: LinkIdx) -> &ExternalId {
        &self.link_ids[link as usize]
    }

    /// Link `link`'s polyline as (lon, lat) from tail to head: the stored geometry, or the straight line between its
    /// nodes.
    pub fn link_geometry(&self, link: LinkIdx) -> Vec<(f64, f64)> {
        let l = link as usize;
        let stored =
            &self.geom_points[self.geom_offsets[l] as usize..self.geom_offsets[l + 1] as usize];
        if stored.is_empty() {
            vec![
                self.node_coord(self.link_from[l]),
                self.node_coord(self.link_to[l]),
            ]
        } else {
            stored.to_vec()
        }
    }

    /// The links leaving `node` (all modes).
    pub fn out_links(&self, node: NodeIdx) -> &[LinkIdx] {
        let n = node as usize;
        &self.out_links[self.out_offsets[n] as usize..self.out_offsets[n + 1] as usize]
    }

    /// The links entering `node` (all modes).
    pub fn in_links(&self, node: NodeIdx) -> &[LinkIdx] {
        let n = node as usize;
        &self.in_links[self.in_offsets[n] as usize..self.in_offsets[n + 1] as usize]
    }

    /// The subgraph of links open to `mode`.
    pub fn view(&self, mode: Mode) -> NetworkView<'_> {
        NetworkView::new(self, mode)
    }

    /// Opens links to `mode` (a scenario edit: a private path made public).
    pub fn add_mode(&mut self, link: LinkIdx, mode: Mode) {
        if let Some(m) = self.modes.get_mut(link as usize) {
            *m = m.with(mode);
        }
    }

    /// Closes links to `mode` (e.g. after a scenario edit, or to drop islands).
    pub fn remove_mode(&mut self, link: LinkIdx, mode: Mode) {
        if let Some(m) = self.modes.get_mut(link as usize) {
            *m = m.without(mode);
        }
    }

    /// `Err` unless `node` is a valid index.
    pub fn check_node(&self, node: NodeIdx) -> Result<(), GraphError> {
        if (node as usize) < self.node_count() {
            Ok(())
        } else {
            Err(GraphError::NodeOutOfRange {
                node,
                count: self.node_count(),
            })
        }
    }
}

/// CSR of links grouped by `key` (their tail or head): offsets has `n + 1` entries; links keep ascending order
/// within a node, so the layout is deterministic.
fn csr(n: usize, key: &[NodeIdx]) -> (Vec<u32>, Vec<LinkIdx>) {
    let mut offsets = vec![0u32; n + 1];
    for &k in key {
        offsets[k as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut next = offsets.clone();
    let mut links = vec![0 as LinkIdx; key.len()];
    for (l, &k) in key.iter().enumerate() {
        let slot = &mut next[k as usize];
        links[*slot as usize] = l as LinkIdx;
        *slot += 1;
    }
    (offsets, links)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<(u64, (f64, f64))> {
        vec![
            (10, (24.94, 60.17)),
            (20, (24.95, 60.17)),
            (30, (24.95, 60.18)),
        ]
    }

    #[test]
    fn builds_csr_both_ways() {
        let links = vec![
            LinkSpec::car(1, 10, 20, 500.0, 40.0, 1800.0),
            LinkSpec::car(2, 20, 30, 1100.0, 80.0, 1800.0),
            LinkSpec::car(3, 10, 30, 1200.0, 90.0, 900.0),
        ];
        let net = Network::build(nodes(), links).expect("valid");
        assert_eq!((net.node_count(), net.link_count()), (3, 3));
        assert_eq!(net.node_index(30), Some(2));
        assert_eq!(net.node_id(1), 20);
        assert_eq!(net.out_links(0), &[0, 2]);
        assert_eq!(net.in_links(2), &[1, 2]);
        assert!(net.out_links(2).is_empty());
        assert_eq!(net.free_flow_s(), &[40.0, 80.0, 90.0]);
        assert_eq!(net.link_geometry(1), vec![(24.95, 60.17), (24.95, 60.18)]);
        assert_eq!(net.link_id(2), &ExternalId::Number(3));
    }

    #[test]
    fn rejects_bad_input() {
        let dup = vec![(1, (0.0, 0.0)), (1, (1.0, 1.0))];
        assert_eq!(
            Network::build(dup, vec![]).err(),
            Some(GraphError::DuplicateNode(1))
        );
        let err = Network::build(vec![(1, (690309.0, 1976022.0))], vec![]).err();
        assert!(matches!(
            err,
            Some(GraphError::InvalidCoordinate { node: 1, .. })
        ));
        let err = Network::build(nodes(), vec![LinkSpec::car(7, 10, 99, 1.0, 1.0, 1.0)]).err();
        assert_eq!(
            err,
            Some(GraphError::UnknownNode {
                link: "7".into(),
                node: 99
            })
        );
        let err = Network::build(nodes(), vec![LinkSpec::car(7, 10, 20, -1.0, 1.0, 1.0)]).err();
        assert!(err.is_some_and(|e| e
            .to_string()
            .contains("length_m must be finite and non-negative")));
        let err = Network::build(nodes(), vec![LinkSpec::car(7, 10, 20, 1.0, f64::NAN, 1.0)]).err();
        assert!(err.is_some_and(|e| e.to_string().contains("free_flow_s")));
        let mut spec = LinkSpec::new("way/5", 10, 20, 1.0, 1.0, 1.0, ModeSet::ALL);
        spec.geometry = Some(vec![(24.94, 60.17)]);
        let err = Network::build(nodes(), vec![spec]).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("link \"way/5\": geometry needs at least 2 points, has 1".into())
        );
    }

    #[test]
    fn reversed_spec_flips_geometry() {
        let mut spec = LinkSpec::new("a", 10, 20, 1.0, 1.0, 1.0, ModeSet::ALL);
        spec.geometry = Some(vec![(24.94, 60.17), (24.945, 60.171), (24.95, 60.17)]);
        let back = spec.reversed("a-back", ModeSet::WALK);
        assert_eq!((back.from, back.to, back.modes), (20, 10, ModeSet::WALK));
        assert_eq!(back.geometry.as_ref().map(|g| g[0]), Some((24.95, 60.17)));
        let net = Network::build(nodes(), vec![spec, back]).expect("valid");
        assert_eq!(net.link_geometry(1).len(), 3);
    }
}
