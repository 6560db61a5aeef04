//! Strongly connected components of a mode's subgraph (iterative Tarjan, no recursion, so a million-node network
//! cannot overflow the stack) and the removal of islands that a router could enter but never leave.

use crate::{Mode, Network, NetworkView, NodeIdx};

const NONE: u32 = u32::MAX;

/// The strongly connected components of one mode's subgraph, over the nodes that mode touches (nodes with no link
/// open to the mode belong to no component).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Components {
    /// Component of each node, or `None` for a node the mode does not touch.
    component_of: Vec<u32>,
    /// Number of nodes in each component.
    sizes: Vec<u32>,
}

impl Components {
    /// The component of `node`, if the mode touches it.
    pub fn component_of(&self, node: NodeIdx) -> Option<u32> {
        self.component_of
            .get(node as usize)
            .copied()
            .filter(|c| *c != NONE)
    }

    /// Number of components.
    pub fn count(&self) -> usize {
        self.sizes.len()
    }

    /// Node count of each component, by component id.
    pub fn sizes(&self) -> &[u32] {
        &self.sizes
    }

    /// The largest component (the first found among equals), if any.
    pub fn largest(&self) -> Option<u32> {
        let mut best: Option<(u32, u32)> = None;
        for (c, &size) in self.sizes.iter().enumerate() {
            if best.is_none_or(|(_, s)| size > s) {
                best = Some((c as u32, size));
            }
        }
        best.map(|(c, _)| c)
    }

    /// The nodes of component `component`, ascending.
    pub fn nodes_of(&self, component: u32) -> Vec<NodeIdx> {
        (0..self.component_of.len() as u32)
            .filter(|n| self.component_of[*n as usize] == component)
            .collect()
    }
}

/// What [`Network::drop_islands`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IslandReport {
    /// Nodes of the largest component, still reachable by the mode.
    pub kept_nodes: usize,
    /// Nodes the mode touched before but no longer does.
    pub dropped_nodes: usize,
    /// Number of strongly connected components found before dropping.
    pub components: usize,
}

impl NetworkView<'_> {
    /// Strongly connected components by Tarjan's algorithm with an explicit call stack.
    pub fn strongly_connected_components(&self) -> Components {
        let net = self.network();
        let n = net.node_count();
        let mut index = vec![NONE; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<NodeIdx> = Vec::new();
        // (node, position of the next out-link to look at in the node's CSR slice)
        let mut calls: Vec<(NodeIdx, usize)> = Vec::new();
        let mut component_of = vec![NONE; n];
        let mut sizes = Vec::new();
        let mut counter = 0u32;
        let to = net.link_to();

        for root in 0..n as NodeIdx {
            if index[root as usize] != NONE || !self.touches(root) {
                continue;
            }
            index[root as usize] = counter;
            low[root as usize] = counter;
            counter += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            calls.push((root, 0));
            while let Some(&mut (v, ref mut pos)) = calls.last_mut() {
                let out = net.out_links(v);
                let mut next = None;
                while *pos < out.len() {
                    let l = out[*pos];
                    *pos += 1;
                    if self.allows(l) {
                        next = Some(to[l as usize]);
                        break;
                    }
                }
                match next {
                    Some(w) if index[w as usize] == NONE => {
                        index[w as usize] = counter;
                        low[w as usize] = counter;
                        counter += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        calls.push((w, 0));
                    }
                    Some(w) => {
                        if on_stack[w as usize] {
                            low[v as usize] = low[v as usize].min(index[w as usize]);
                        }
                    }
                    None => {
                        calls.pop();
                        if let Some(&(parent, _)) = calls.last() {
                            low[parent as usize] = low[parent as usize].min(low[v as usize]);
                        }
                        if low[v as usize] == index[v as usize] {
                            let c = sizes.len() as u32;
                            let mut size = 0u32;
                            while let Some(w) = stack.pop() {
                                on_stack[w as usize] = false;
                                component_of[w as usize] = c;
                                size += 1;
                                if w == v {
                                    break;
                                }
                            }
                            sizes.push(size);
                        }
                    }
                }
            }
        }
        Components {
            component_of,
            sizes,
        }
    }

    /// The nodes of the largest strongly connected component, ascending (empty if the mode has no links).
    pub fn largest_component(&self) -> Vec<NodeIdx> {
        let components = self.strongly_connected_components();
        components
            .largest()
            .map(|c| components.nodes_of(c))
            .unwrap_or_default()
    }
}

impl Network {
    /// Strongly connected components of `mode`'s subgraph.
    pub fn strongly_connected_components(&self, mode: Mode) -> Components {
        self.view(mode).strongly_connected_components()
    }

    /// The nodes of `mode`'s largest strongly connected component, ascending.
    pub fn largest_component(&self, mode: Mode) -> Vec<NodeIdx> {
        self.view(mode).largest_component()
    }

    /// Closes to `mode` every link not inside its largest strongly connected component, so that every remaining
    /// `mode` trip has a way back. Other modes keep their links; nodes and links stay in the arrays.
    pub fn drop_islands(&mut self, mode: Mode) -> IslandReport {
        let components = self.strongly_connected_components(mode);
        let touched = components
            .component_of
            .iter()
            .filter(|c| **c != NONE)
            .count();
        let Some(keep) = components.largest() else {
            return IslandReport {
                kept_nodes: 0,
                dropped_nodes: 0,
                components: 0,
            };
        };
        for l in 0..self.link_count() {
            let (from, to) = (self.link_from()[l], self.link_to()[l]);
            let inside = components.component_of[from as usize] == keep
                && components.component_of[to as usize] == keep;
            if !inside {
                self.remove_mode(l as u32, mode);
            }
        }
        let kept_nodes = components.sizes[keep as usize] as usize;
        IslandReport {
            kept_nodes,
            dropped_nodes: touched - kept_nodes,
            components: components.count(),
        }
    }
}
