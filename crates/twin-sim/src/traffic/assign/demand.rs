//! The origin–destination matrix: car trips between zones, stored sparse per origin.

use super::AssignError;

/// Trips between zones `0..zones`, as a sparse row per origin (destinations ascending). Zero flows are not stored;
/// intrazonal trips (origin = destination) never load the network and are only counted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Demand {
    zones: usize,
    rows: Vec<Vec<(u32, f64)>>,
    intrazonal: f64,
}

impl Demand {
    /// An empty matrix over `zones` zones.
    pub fn new(zones: usize) -> Demand {
        Demand {
            zones,
            rows: vec![Vec::new(); zones],
            intrazonal: 0.0,
        }
    }

    /// A matrix from `(origin, destination, trips)` triples; repeated pairs add up.
    pub fn from_triples(
        zones: usize,
        triples: impl IntoIterator<Item = (usize, usize, f64)>,
    ) -> Result<Demand, AssignError> {
        let mut d = Demand::new(zones);
        for (o, dest, v) in triples {
            d.add(o, dest, v)?;
        }
        Ok(d)
    }

    /// Adds `trips` from `origin` to `destination`. Fails on zones outside `0..zones` and on negative or non-finite
    /// values.
    pub fn add(
        &mut self,
        origin: usize,
        destination: usize,
        trips: f64,
    ) -> Result<(), AssignError> {
        if origin >= self.zones || destination >= self.zones {
            return Err(AssignError::Demand(format!(
                "{origin} → {destination}: zones run over 0..{}",
                self.zones
            )));
        }
        if !(trips.is_finite() && trips >= 0.0) {
            return Err(AssignError::Demand(format!(
                "{origin} → {destination}: trips must be finite and non-negative, not {trips}"
            )));
        }
        if trips == 0.0 {
            return Ok(());
        }
        if origin == destination {
            self.intrazonal += trips;
            return Ok(());
        }
        let row = &mut self.rows[origin];
        let d = destination as u32;
        match row.binary_search_by_key(&d, |(k, _)| *k) {
            Ok(i) => row[i].1 += trips,
            Err(i) => row.insert(i, (d, trips)),
        }
        Ok(())
    }

    pub fn zones(&self) -> usize {
        self.zones
    }

    /// The trips leaving `origin`, by destination (ascending, no zeros, no intrazonal trips).
    pub fn row(&self, origin: usize) -> &[(u32, f64)] {
        &self.rows[origin]
    }

    /// All trips between different zones.
    pub fn total(&self) -> f64 {
        self.rows.iter().flatten().map(|(_, v)| v).sum()
    }

    /// Trips that start and end in the same zone (not assigned).
    pub fn intrazonal(&self) -> f64 {
        self.intrazonal
    }

    /// Zone totals: (trips produced, trips attracted) per zone, intrazonal trips left out.
    pub fn productions_attractions(&self) -> Vec<(f64, f64)> {
        let mut pa = vec![(0.0, 0.0); self.zones];
        for (o, row) in self.rows.iter().enumerate() {
            for &(d, v) in row {
                pa[o].0 += v;
                pa[d as usize].1 += v;
            }
        }
        pa
    }
}
