//! The assignment's own network: links with their BPR parameters as a flat array, forward and backward stars (CSR)
//! over the open links, the zones and the nodes traffic may not pass through.
//!
//! Why not [`twin_graph::Network`] itself: that one is the city's street network (WGS84 node coordinates, modes,
//! geometries, external ids), built for routing and snapping. Assignment needs other things on every link (BPR `B`
//! and power, toll, capacity in the demand's units) and one more rule: TNTP's `<FIRST THRU NODE>`, below which nodes
//! are zone centroids that paths may start or end at but not pass through. Benchmark networks have no coordinates
//! at all. [`Network::from_graph`] builds an assignment network from a `twin_graph` view, keeping its link indices,
//! so results map back to the city's road segments one to one.

use twin_graph::{LinkIdx, NetworkView, NodeIdx};

use super::AssignError;

/// One directed link as the builder receives it, in the caller's units (TNTP files use minutes or hundredths of
/// hours, feet or miles; the assignment does not care as long as demand, capacity and the generalised-cost weights
/// agree).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Tail node index (`0..nodes`).
    pub from: NodeIdx,
    /// Head node index.
    pub to: NodeIdx,
    /// Practical capacity, in the demand's flow units. Must be positive when the cost depends on the flow.
    pub capacity: f64,
    /// Length (used by the generalised cost's distance weight).
    pub length: f64,
    /// Free-flow travel time `t0`.
    pub free_flow_time: f64,
    /// BPR `B` (often 0.15).
    pub b: f64,
    /// BPR power (often 4).
    pub power: f64,
    /// Toll (used by the generalised cost's toll weight).
    pub toll: f64,
}

impl Link {
    /// A link with the classic BPR parameters `B = 0.15`, power 4, no length and no toll.
    pub fn new(from: NodeIdx, to: NodeIdx, capacity: f64, free_flow_time: f64) -> Link {
        Link {
            from,
            to,
            capacity,
            length: 0.0,
            free_flow_time,
            b: 0.15,
            power: 4.0,
            toll: 0.0,
        }
    }
}

/// A road network for assignment. Nodes are `0..node_count()`, links keep the order they were given in (link `i` is
/// `links[i]`, and every per-link result is indexed the same way). Closed links stay in the arrays but carry no flow.
#[derive(Debug, Clone)]
pub struct Network {
    nodes: usize,
    links: Vec<Link>,
    open: Vec<bool>,
    zone_nodes: Vec<NodeIdx>,
    /// `false` for nodes paths may not pass through (zone centroids below TNTP's first through node).
    through: Vec<bool>,
    labels: Option<Vec<u64>>,
    out_start: Vec<u32>,
    out_links: Vec<LinkIdx>,
    in_start: Vec<u32>,
    in_links: Vec<LinkIdx>,
}

impl Network {
    /// A network in the TNTP layout: zones are the nodes `0..zones`, and nodes below `first_thru_node` (0-based:
    /// TNTP's `<FIRST THRU NODE>` minus one) are centroids that paths may start or end at but not pass through.
    /// With `first_thru_node = 0` every node may be passed through.
    ///
    /// Fails on links to nodes outside `0..nodes`, non-finite or negative capacities, times, lengths, `B` or powers,
    /// a zero capacity on a link whose cost depends on its flow, and more zones than nodes.
    pub fn from_links(
        nodes: usize,
        zones: usize,
        first_thru_node: usize,
        links: Vec<Link>,
    ) -> Result<Network, AssignError> {
        if zones > nodes {
            return Err(AssignError::Network(format!(
                "{zones} zones but only {nodes} nodes (zones are the first nodes)"
            )));
        }
        let zone_nodes = (0..zones as NodeIdx).collect();
        let blocked: Vec<NodeIdx> = (0..first_thru_node.min(nodes) as NodeIdx).collect();
        Network::with_zones(nodes, zone_nodes, &blocked, links)
    }

    /// A network whose zones are any nodes (`zone_nodes[z]` is zone `z`'s centroid) and where paths may not pass
    /// through the nodes in `no_through` (they may still start or end there).
    pub fn with_zones(
        nodes: usize,
        zone_nodes: Vec<NodeIdx>,
        no_through: &[NodeIdx],
        links: Vec<Link>,
    ) -> Result<Network, AssignError> {
        let open = vec![true; links.len()];
        Network::build(nodes, zone_nodes, no_through, links, open)
    }

    fn build(
        nodes: usize,
        zone_nodes: Vec<NodeIdx>,
        no_through: &[NodeIdx],
        links: Vec<Link>,
        open: Vec<bool>,
    ) -> Result<Network, AssignError> {
        if nodes >= u32::MAX as usize || links.len() >= u32::MAX as usize {
            return Err(AssignError::Network(format!(
                "too large for 32-bit indices: {nodes} nodes, {} links",
                links.len()
            )));
        }
        for (z, &n) in zone_nodes.iter().enumerate() {
            if n as usize >= nodes {
                return Err(AssignError::Network(format!(
                    "zone {z} is at node {n}, outside 0..{nodes}"
                )));
            }
        }
        let mut through = vec![true; nodes];
        for &n in no_through {
            if n as usize >= nodes {
                return Err(AssignError::Network(format!(
                    "no-through node {n} is outside 0..{nodes}"
                )));
            }
            through[n as usize] = false;
        }
        for (i, link) in links.iter().enumerate() {
            if open[i] {
                validate(i, link, nodes)?;
            }
        }
        let mut net = Network {
            nodes,
            links,
            open,
            zone_nodes,
            through,
            labels: None,
            out_start: Vec::new(),
            out_links: Vec::new(),
            in_start: Vec::new(),
            in_links: Vec::new(),
        };
        net.rebuild_stars();
        Ok(net)
    }

    /// The assignment network of a `twin_graph` view (one mode's links; the others are closed, so link indices stay
    /// those of the street network): free-flow times in seconds, capacities in vehicles per hour, lengths in metres,
    /// the given BPR `B` and power on every link, no tolls. Zones are the given nodes, all passable.
    pub fn from_graph(
        view: &NetworkView<'_>,
        zone_nodes: Vec<NodeIdx>,
        b: f64,
        power: f64,
    ) -> Result<Network, AssignError> {
        let g = view.network();
        let links: Vec<Link> = (0..g.link_count())
            .map(|l| Link {
                from: g.link_from()[l],
                to: g.link_to()[l],
                capacity: g.capacity_vph()[l],
                length: g.length_m()[l],
                free_flow_time: g.free_flow_s()[l],
                b,
                power,
                toll: 0.0,
            })
            .collect();
        // links closed to the mode are not validated: a footway's zero capacity is no error for cars
        let open = (0..g.link_count() as LinkIdx)
            .map(|l| view.allows(l))
            .collect();
        Network::build(g.node_count(), zone_nodes, &[], links, open)
    }

    /// Names nodes in messages (unserved demand, invalid links) by these ids instead of their indices; for a TNTP
    /// network, `1..=nodes`.
    #[must_use]
    pub fn with_node_labels(mut self, labels: Vec<u64>) -> Network {
        if labels.len() == self.nodes {
            self.labels = Some(labels);
        }
        self
    }

    /// Closes links (a scenario's street closures): they stay in the arrays, with no flow.
    pub fn close_links(&mut self, links: &[LinkIdx]) {
        for &l in links {
            if let Some(o) = self.open.get_mut(l as usize) {
                *o = false;
            }
        }
        self.rebuild_stars();
    }

    /// Appends an open link (a scenario's new street) and returns its index; the links before it keep theirs.
    pub fn add_link(&mut self, link: Link) -> Result<LinkIdx, AssignError> {
        let index = self.links.len();
        if index + 1 >= u32::MAX as usize {
            return Err(AssignError::Network(
                "too many links for 32-bit indices".into(),
            ));
        }
        validate(index, &link, self.nodes)?;
        self.links.push(link);
        self.open.push(true);
        self.rebuild_stars();
        Ok(index as LinkIdx)
    }

    /// Replaces link `index`'s parameters (a scenario's capacity or speed change); its end nodes must stay.
    pub fn set_link(&mut self, index: LinkIdx, link: Link) -> Result<(), AssignError> {
        let i = index as usize;
        let Some(old) = self.links.get(i) else {
            return Err(AssignError::Network(format!(
                "link {index} is outside 0..{}",
                self.links.len()
            )));
        };
        if (old.from, old.to) != (link.from, link.to) {
            return Err(AssignError::Network(format!(
                "link {index}: set_link cannot move a link's ends"
            )));
        }
        validate(i, &link, self.nodes)?;
        self.links[i] = link;
        Ok(())
    }

    pub fn node_count(&self) -> usize {
        self.nodes
    }

    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    pub fn zone_count(&self) -> usize {
        self.zone_nodes.len()
    }

    pub fn links(&self) -> &[Link] {
        &self.links
    }

    pub fn link(&self, index: LinkIdx) -> &Link {
        &self.links[index as usize]
    }

    /// Whether link `index` is open (not closed by [`Network::close_links`]).
    pub fn is_open(&self, index: LinkIdx) -> bool {
        self.open[index as usize]
    }

    /// Zone `zone`'s centroid node.
    pub fn zone_node(&self, zone: usize) -> NodeIdx {
        self.zone_nodes[zone]
    }

    pub fn zone_nodes(&self) -> &[NodeIdx] {
        &self.zone_nodes
    }

    /// Whether paths may pass through `node`.
    pub fn passable(&self, node: NodeIdx) -> bool {
        self.through[node as usize]
    }

    /// The id messages use for `node`: its label (see [`Network::with_node_labels`]) or its index.
    pub fn node_label(&self, node: NodeIdx) -> u64 {
        match &self.labels {
            Some(l) => l[node as usize],
            None => u64::from(node),
        }
    }

    /// The open links leaving `node`.
    #[inline]
    pub fn out_links(&self, node: NodeIdx) -> &[LinkIdx] {
        let n = node as usize;
        &self.out_links[self.out_start[n] as usize..self.out_start[n + 1] as usize]
    }

    /// The open links entering `node`.
    #[inline]
    pub fn in_links(&self, node: NodeIdx) -> &[LinkIdx] {
        let n = node as usize;
        &self.in_links[self.in_start[n] as usize..self.in_start[n + 1] as usize]
    }

    /// Tail and head of every link, for matching a previous solution's links to this network's.
    pub(crate) fn shape(&self) -> Vec<(NodeIdx, NodeIdx)> {
        self.links.iter().map(|l| (l.from, l.to)).collect()
    }

    fn rebuild_stars(&mut self) {
        let open = &self.open;
        let tails: Vec<Option<NodeIdx>> = self
            .links
            .iter()
            .zip(open)
            .map(|(l, o)| o.then_some(l.from))
            .collect();
        let heads: Vec<Option<NodeIdx>> = self
            .links
            .iter()
            .zip(open)
            .map(|(l, o)| o.then_some(l.to))
            .collect();
        (self.out_start, self.out_links) = star(self.nodes, &tails);
        (self.in_start, self.in_links) = star(self.nodes, &heads);
    }
}

/// CSR of the links with a key (their tail or head), links ascending within a node.
fn star(nodes: usize, key: &[Option<NodeIdx>]) -> (Vec<u32>, Vec<LinkIdx>) {
    let mut start = vec![0u32; nodes + 1];
    for k in key.iter().flatten() {
        start[*k as usize + 1] += 1;
    }
    for i in 0..nodes {
        start[i + 1] += start[i];
    }
    let mut next = start.clone();
    let mut links = vec![0; start[nodes] as usize];
    for (l, k) in key.iter().enumerate() {
        if let Some(k) = k {
            let slot = &mut next[*k as usize];
            links[*slot as usize] = l as LinkIdx;
            *slot += 1;
        }
    }
    (start, links)
}

fn validate(index: usize, link: &Link, nodes: usize) -> Result<(), AssignError> {
    let invalid = |reason: String| AssignError::InvalidLink {
        link: index,
        from: u64::from(link.from),
        to: u64::from(link.to),
        reason,
    };
    if link.from as usize >= nodes || link.to as usize >= nodes {
        return Err(invalid(format!("a node is outside 0..{nodes}")));
    }
    for (name, value) in [
        ("capacity", link.capacity),
        ("length", link.length),
        ("free-flow time", link.free_flow_time),
        ("B", link.b),
        ("power", link.power),
    ] {
        if !value.is_finite() {
            return Err(invalid(format!("{name} is not a finite number ({value})")));
        }
        if value < 0.0 {
            return Err(invalid(format!("{name} is negative ({value})")));
        }
    }
    if !link.toll.is_finite() {
        return Err(invalid(format!(
            "toll is not a finite number ({})",
            link.toll
        )));
    }
    let flow_dependent = link.b > 0.0 && link.power > 0.0 && link.free_flow_time > 0.0;
    if flow_dependent && link.capacity == 0.0 {
        return Err(invalid(
            "capacity is 0 but the cost depends on the flow (B > 0): close the link instead".into(),
        ));
    }
    Ok(())
}
