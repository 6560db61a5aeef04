//! How well modelled link flows match traffic counts: the GEH statistic per count, the share of counts with GEH < 5,
//! the coefficient of determination R² and the root-mean-square error.
//!
//! GEH = √(2 (M − C)² / (M + C)) for hourly flows M (modelled) and C (counted) (Geoffrey E. Havers, 1970s; the UK
//! DMRB / TAG unit M3.1 criterion: GEH < 5 on more than 85 % of counts). R² = 1 − Σ (C − M)² / Σ (C − C̄)², the share
//! of the counts' variance the model explains (it can be negative for a model worse than the mean count).
//!
//! [`adjust`] changes the trip matrix so that the assigned flows come closer to the counts: a multiplicative,
//! route-based update in the spirit of Spiess (1990, "A gradient approach for the O-D matrix adjustment problem",
//! CRT Montréal) and of the count-scaling step of VISUM's TFlowFuzzy: each iteration assigns the matrix, takes the
//! ratio r_c = C / M of every count (bounded to [0.2, 5]), follows each origin–destination pair's route at the
//! equilibrium costs, and scales the pair's trips by the geometric mean of the ratios of the counts on its route,
//! damped (the square root), leaving pairs that pass no count alone. It trusts counts over the generation rates, so
//! zone totals drift towards what the counts imply; it is a calibration aid, not an estimator with error bounds.

use std::collections::HashMap;

use twin_graph::LinkIdx;

use super::assign::shortest::{Tree, NONE};
use super::assign::{assign, AssignError, Demand, Network, Options, Solution};

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

/// What an adjustment did.
#[derive(Debug, Clone)]
pub struct Adjusted {
    pub demand: Demand,
    pub solution: Solution,
    pub before: CountFit,
    pub after: CountFit,
    pub iterations: usize,
}

/// Adjusts `demand` to `counts` over `iterations` rounds (see the module doc); each round's assignment warm-starts
/// from the previous one.
pub fn adjust(
    net: &Network,
    demand: &Demand,
    counts: &[Count],
    options: &Options<'_>,
    iterations: usize,
) -> Result<Adjusted, AssignError> {
    let mut link_counts: HashMap<LinkIdx, Vec<usize>> = HashMap::new();
    for (i, c) in counts.iter().enumerate() {
        for &l in &c.links {
            link_counts.entry(l).or_default().push(i);
        }
    }
    let mut current = demand.clone();
    let mut solution = assign(net, &current, options)?;
    let before = fit(counts, &solution.flows);
    for _ in 0..iterations {
        let ratios: Vec<f64> = counts
            .iter()
            .map(|c| {
                let m: f64 = c
                    .links
                    .iter()
                    .filter_map(|&l| solution.flows.get(l as usize))
                    .sum();
                if m <= 0.0 {
                    if c.observed > 0.0 {
                        5.0
                    } else {
                        1.0
                    }
                } else {
                    (c.observed / m).clamp(0.2, 5.0)
                }
            })
            .collect();
        let mut next = Demand::new(current.zones());
        let mut tree = Tree::new(net.node_count());
        for o in 0..current.zones() {
            let row = current.row(o);
            if row.is_empty() {
                continue;
            }
            tree.search(net, &solution.costs, net.zone_node(o));
            let pred = &tree.pred;
            for &(d, trips) in row {
                let mut node = net.zone_node(d as usize);
                let mut log_sum = 0.0;
                let mut seen = 0usize;
                let mut guard = 0;
                while node != net.zone_node(o)
                    && pred[node as usize] != NONE
                    && guard < net.node_count()
                {
                    let l = pred[node as usize];
                    if let Some(cs) = link_counts.get(&l) {
                        for &c in cs {
                            log_sum += ratios[c].ln();
                            seen += 1;
                        }
                    }
                    node = net.link(l).from;
                    guard += 1;
                }
                let factor = if seen > 0 {
                    (0.5 * log_sum / seen as f64).exp()
                } else {
                    1.0
                };
                next.add(o, d as usize, trips * factor)?;
            }
        }
        current = next;
        solution = assign(
            net,
            &current,
            &Options {
                warm_start: Some(&solution),
                ..*options
            },
        )?;
    }
    let after = fit(counts, &solution.flows);
    Ok(Adjusted {
        demand: current,
        solution,
        before,
        after,
        iterations,
    })
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

    /// A 4×4 grid of two-way streets with a zone at each corner and one in the middle.
    fn grid() -> (Network, Vec<u32>) {
        use crate::traffic::assign::Link;
        let id = |x: u32, y: u32| y * 4 + x;
        let mut links = Vec::new();
        for y in 0..4 {
            for x in 0..4 {
                for (dx, dy) in [(1, 0), (0, 1)] {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 4 && ny < 4 {
                        let t = 60.0 + 7.0 * ((x * 3 + y * 5) % 4) as f64;
                        links.push(Link::new(id(x, y), id(nx, ny), 600.0, t));
                        links.push(Link::new(id(nx, ny), id(x, y), 600.0, t));
                    }
                }
            }
        }
        let zones = vec![id(0, 0), id(3, 0), id(0, 3), id(3, 3), id(1, 2)];
        (
            Network::with_zones(16, zones.clone(), &[], links).unwrap(),
            zones,
        )
    }

    #[test]
    fn adjustment_brings_flows_to_the_counts() {
        let (net, zones) = grid();
        let z = zones.len();
        let truth = Demand::from_triples(
            z,
            (0..z).flat_map(|o| {
                (0..z)
                    .filter(move |&d| d != o)
                    .map(move |d| (o, d, 100.0 + 40.0 * ((o * 7 + d * 3) % 5) as f64))
            }),
        )
        .unwrap();
        let opts = Options {
            gap: 1e-10,
            ..Options::default()
        };
        let true_flows = assign(&net, &truth, &opts).unwrap().flows;
        // counts on every fourth link, as a city has on some of its streets
        let counts: Vec<Count> = (0..net.link_count() as u32)
            .step_by(4)
            .map(|l| Count {
                id: format!("c{l}"),
                links: vec![l],
                observed: true_flows[l as usize],
            })
            .collect();
        // a prior that got some pairs wrong: half as many from zone 0, half again as many to zone 4
        let prior = Demand::from_triples(
            z,
            (0..z).flat_map(|o| {
                (0..z).filter(move |&d| d != o).map(move |d| {
                    let t = 100.0 + 40.0 * ((o * 7 + d * 3) % 5) as f64;
                    let k = if o == 0 {
                        0.5
                    } else if d == 4 {
                        1.5
                    } else {
                        1.0
                    };
                    (o, d, t * k)
                })
            }),
        )
        .unwrap();
        let a = adjust(&net, &prior, &counts, &opts, 8).unwrap();
        let mean_geh =
            |f: &CountFit| f.counts.iter().map(|c| c.geh).sum::<f64>() / f.counts.len() as f64;
        assert!(
            mean_geh(&a.after) < 0.5 * mean_geh(&a.before),
            "mean GEH {} → {}",
            mean_geh(&a.before),
            mean_geh(&a.after)
        );
        assert!(a.after.rmse < a.before.rmse);
        assert!(a.after.r2 > a.before.r2);
        assert!(a.demand.total().is_finite() && a.solution.flows.iter().all(|f| f.is_finite()));
        // with counts that the prior already meets, nothing moves
        let exact: Vec<Count> = counts
            .iter()
            .map(|c| Count {
                observed: assign(&net, &prior, &opts).unwrap().flows[c.links[0] as usize],
                ..c.clone()
            })
            .collect();
        let still = adjust(&net, &prior, &exact, &opts, 3).unwrap();
        assert!((still.demand.total() - prior.total()).abs() < 1e-6 * prior.total());
    }
}
