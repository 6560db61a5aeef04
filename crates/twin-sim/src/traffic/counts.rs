//! How well modelled link flows match traffic counts: the GEH statistic per count, the share of counts with GEH < 5,
//! the coefficient of determination R² and the root-mean-square error.
//!
//! GEH = √(2 (M − C)² / (M + C)) for hourly flows M (modelled) and C (counted) (Geoffrey E. Havers, 1970s; the UK
//! DMRB / TAG unit M3.1 criterion: GEH < 5 on more than 85 % of counts). R² = 1 − Σ (C − M)² / Σ (C − C̄)², the share
//! of the counts' variance the model explains (it can be negative for a model worse than the mean count).

use twin_graph::LinkIdx;

/// A traffic count: what it is, the links whose flows it counts (both directions of a street when the count does
/// not say which), and the counted flow (vehicles per hour).
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub id: String,
    pub links: Vec<LinkIdx>,
    pub observed: f64,
}

/// One count against the model.
#[derive(Debug, Clone, PartialEq)]
pub struct CountResult {
    pub id: String,
    pub observed: f64,
    pub modelled: f64,
    pub geh: f64,
}

/// The fit of a model to a set of counts.
#[derive(Debug, Clone, PartialEq)]
pub struct CountFit {
    pub counts: Vec<CountResult>,
    /// Share (0–1) of counts with GEH below 5.
    pub geh_below_5: f64,
    pub r2: f64,
    pub rmse: f64,
}

/// The GEH statistic of a modelled and a counted hourly flow (0 when both are 0).
pub fn geh(modelled: f64, counted: f64) -> f64 {
    let s = modelled + counted;
    if s <= 0.0 {
        0.0
    } else {
        (2.0 * (modelled - counted).powi(2) / s).sqrt()
    }
}

/// Compares link flows with counts (counts whose links are out of range are left out).
pub fn fit(counts: &[Count], flows: &[f64]) -> CountFit {
    let results: Vec<CountResult> = counts
        .iter()
        .filter(|c| c.observed.is_finite() && c.observed >= 0.0)
        .filter(|c| !c.links.is_empty() && c.links.iter().all(|&l| (l as usize) < flows.len()))
        .map(|c| {
            let modelled: f64 = c.links.iter().map(|&l| flows[l as usize]).sum();
            CountResult {
                id: c.id.clone(),
                observed: c.observed,
                modelled,
                geh: geh(modelled, c.observed),
            }
        })
        .collect();
    let n = results.len() as f64;
    if results.is_empty() {
        return CountFit {
            counts: results,
            geh_below_5: 0.0,
            r2: f64::NAN,
            rmse: f64::NAN,
        };
    }
    let mean = results.iter().map(|r| r.observed).sum::<f64>() / n;
    let ss_res: f64 = results
        .iter()
        .map(|r| (r.observed - r.modelled).powi(2))
        .sum();
    let ss_tot: f64 = results.iter().map(|r| (r.observed - mean).powi(2)).sum();
    CountFit {
        geh_below_5: results.iter().filter(|r| r.geh < 5.0).count() as f64 / n,
        r2: if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            f64::NAN
        },
        rmse: (ss_res / n).sqrt(),
        counts: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geh_values() {
        // the textbook example: 1000 counted, 1100 modelled → GEH ≈ 3.09
        assert!((geh(1100.0, 1000.0) - 3.086).abs() < 1e-3);
        assert_eq!(geh(0.0, 0.0), 0.0);
        assert_eq!(geh(500.0, 500.0), 0.0);
        assert!((geh(0.0, 50.0) - 10.0).abs() < 1e-12);
    }

    #[test]
    fn a_perfect_model_and_a_poor_one() {
        let counts = vec![
            Count {
                id: "a".into(),
                links: vec![0],
                observed: 100.0,
            },
            Count {
                id: "b".into(),
                links: vec![1, 2],
                observed: 300.0,
            },
            Count {
                id: "c".into(),
                links: vec![3],
                observed: 200.0,
            },
        ];
        let exact = fit(&counts, &[100.0, 120.0, 180.0, 200.0]);
        assert_eq!(exact.r2, 1.0);
        assert_eq!(exact.rmse, 0.0);
        assert_eq!(exact.geh_below_5, 1.0);
        assert_eq!(exact.counts[1].modelled, 300.0);
        // modelling every count as the mean count explains nothing
        let flat = fit(&counts, &[200.0, 100.0, 100.0, 200.0]);
        assert!((flat.r2 - 0.0).abs() < 1e-12, "{flat:?}");
        assert!((flat.rmse - (20_000.0f64 / 3.0).sqrt()).abs() < 1e-9);
        // a count on a link the network does not have is left out
        let out = fit(
            &[Count {
                id: "x".into(),
                links: vec![9],
                observed: 1.0,
            }],
            &[1.0],
        );
        assert!(out.counts.is_empty() && out.r2.is_nan());
    }
}
