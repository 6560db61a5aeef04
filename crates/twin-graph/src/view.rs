//! One mode's subgraph of a [`Network`]: the same arrays, with links not open to the mode skipped on the fly.
//! Components, snapping and searches all work on a view, so each mode sees only the streets it may use.

use crate::{LinkIdx, Mode, Network, NodeIdx};

/// The links of a [`Network`] open to one [`Mode`]. Cheap to create and to copy.
#[derive(Debug, Clone, Copy)]
pub struct NetworkView<'a> {
    net: &'a Network,
    mode: Mode,
}

impl<'a> NetworkView<'a> {
    pub fn new(net: &'a Network, mode: Mode) -> NetworkView<'a> {
        NetworkView { net, mode }
    }

    pub fn network(&self) -> &'a Network {
        self.net
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether link `link` is open to this view's mode.
    pub fn allows(&self, link: LinkIdx) -> bool {
        self.net.link_modes()[link as usize].contains(self.mode)
    }

    /// The links open to the mode that leave `node`.
    pub fn out_links(&self, node: NodeIdx) -> impl Iterator<Item = LinkIdx> + 'a {
        let modes = self.net.link_modes();
        let mode = self.mode;
        self.net
            .out_links(node)
            .iter()
            .copied()
            .filter(move |l| modes[*l as usize].contains(mode))
    }

    /// The links open to the mode that enter `node`.
    pub fn in_links(&self, node: NodeIdx) -> impl Iterator<Item = LinkIdx> + 'a {
        let modes = self.net.link_modes();
        let mode = self.mode;
        self.net
            .in_links(node)
            .iter()
            .copied()
            .filter(move |l| modes[*l as usize].contains(mode))
    }

    /// All links open to the mode, ascending.
    pub fn links(&self) -> impl Iterator<Item = LinkIdx> + 'a {
        let mode = self.mode;
        self.net
            .link_modes()
            .iter()
            .enumerate()
            .filter(move |(_, m)| m.contains(mode))
            .map(|(l, _)| l as LinkIdx)
    }

    /// Whether some link open to the mode starts or ends at `node`.
    pub fn touches(&self, node: NodeIdx) -> bool {
        self.out_links(node).next().is_some() || self.in_links(node).next().is_some()
    }
}
