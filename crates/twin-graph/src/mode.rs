//! Travel modes (car, walk, bike) and a one-byte set of them, stored per link to say who may use it.
//! A per-mode view of the network keeps only the links whose set contains the mode.

/// A way of travelling along the street network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Car,
    Walk,
    Bike,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 3] = [Mode::Car, Mode::Walk, Mode::Bike];

    const fn bit(self) -> u8 {
        match self {
            Mode::Car => 1,
            Mode::Walk => 2,
            Mode::Bike => 4,
        }
    }
}

/// A set of [`Mode`]s as a bitset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ModeSet(u8);

impl ModeSet {
    pub const EMPTY: ModeSet = ModeSet(0);
    pub const ALL: ModeSet = ModeSet(7);
    pub const CAR: ModeSet = ModeSet(1);
    pub const WALK: ModeSet = ModeSet(2);
    pub const BIKE: ModeSet = ModeSet(4);

    pub const fn contains(self, mode: Mode) -> bool {
        self.0 & mode.bit() != 0
    }

    #[must_use]
    pub const fn with(self, mode: Mode) -> ModeSet {
        ModeSet(self.0 | mode.bit())
    }

    #[must_use]
    pub const fn without(self, mode: Mode) -> ModeSet {
        ModeSet(self.0 & !mode.bit())
    }

    #[must_use]
    pub const fn union(self, other: ModeSet) -> ModeSet {
        ModeSet(self.0 | other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The modes in the set, in [`Mode::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Mode> {
        Mode::ALL.into_iter().filter(move |m| self.contains(*m))
    }

    /// The raw bits (car 1, walk 2, bike 4), e.g. for storage.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set from raw bits; unknown bits are ignored.
    pub const fn from_bits(bits: u8) -> ModeSet {
        ModeSet(bits & 7)
    }
}

impl From<Mode> for ModeSet {
    fn from(mode: Mode) -> ModeSet {
        ModeSet(mode.bit())
    }
}

impl FromIterator<Mode> for ModeSet {
    fn from_iter<I: IntoIterator<Item = Mode>>(iter: I) -> ModeSet {
        iter.into_iter().fold(ModeSet::EMPTY, ModeSet::with)
    }
}

impl std::ops::BitOr for ModeSet {
    type Output = ModeSet;
    fn bitor(self, rhs: ModeSet) -> ModeSet {
        self.union(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let s: ModeSet = [Mode::Car, Mode::Bike].into_iter().collect();
        assert!(s.contains(Mode::Car) && s.contains(Mode::Bike) && !s.contains(Mode::Walk));
        assert_eq!(s.without(Mode::Car), ModeSet::BIKE);
        assert_eq!(ModeSet::CAR | ModeSet::WALK | ModeSet::BIKE, ModeSet::ALL);
        assert_eq!(ModeSet::ALL.iter().collect::<Vec<_>>(), Mode::ALL.to_vec());
        assert!(ModeSet::EMPTY.is_empty());
        assert_eq!(ModeSet::from_bits(0xff), ModeSet::ALL);
    }
}
