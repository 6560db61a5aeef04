//! Bi-conjugate Frank–Wolfe (Mitradjieva & Lindberg 2013).
//!
//! Each iteration: all-or-nothing loading `y` at the current costs (parallel over origins), a search target `s`
//! combined from `y` and the two previous targets so that `s − x` is conjugate to the two previous directions with
//! respect to the Hessian `H = diag(c'_a(x_a))`, and an exact line search on the Beckmann objective along `s − x`:
//!
//! ```text
//! x̄ = τ_{k−1} s_{k−1} − x + (1 − τ_{k−1}) s_{k−2}
//! μ = −[x̄ᵀ H (y − x)] / [x̄ᵀ H (s_{k−2} − s_{k−1})]                                  (clamped at 0)
//! ν = μ τ_{k−1} / (1 − τ_{k−1}) − [(s_{k−1} − x)ᵀ H (y − x)] / [(s_{k−1} − x)ᵀ H (s_{k−1} − x)]   (clamped at 0)
//! s = (y + ν s_{k−1} + μ s_{k−2}) / (1 + ν + μ)
//! ```
//!
//! The second iteration uses the conjugate (single) form `s = α s_{k−1} + (1 − α) y` with
//! `α = [(s_{k−1} − x)ᵀ H (y − x)] / [(s_{k−1} − x)ᵀ H (y − s_{k−1})]` clamped to `[0, 1 − 1e-6]`; a full step
//! (`τ = 1`) or a direction that does not descend falls back to plain Frank–Wolfe (`s = y`).

use rayon::prelude::*;

use super::bpr::LinkCost;
use super::shortest::Tree;
use super::{AssignError, IterationStats, Problem, Solution, Stop, Unserved, WarmState};

/// Origins are loaded in this many fixed chunks, each into its own flow array, summed in chunk order: the result
/// does not depend on how rayon schedules them.
const CHUNKS: usize = 64;

/// All-or-nothing loading at `cost`: link flows, shortest-path travel cost and unserved pairs.
fn all_or_nothing(
    problem: &Problem<'_>,
    origins: &[(usize, Vec<(u32, f64)>)],
    cost: &[f64],
) -> (Vec<f64>, f64, Vec<Unserved>) {
    let net = problem.net;
    let (n, m) = (net.node_count(), net.link_count());
    let chunk = origins.len().div_ceil(CHUNKS).max(1);
    let parts: Vec<(Vec<f64>, f64, Vec<Unserved>)> = origins
        .par_chunks(chunk)
        .map_init(
            || Tree::new(n),
            |tree, part| {
                let mut y = vec![0.0; m];
                let mut sptt = 0.0;
                let mut unserved = Vec::new();
                for (o, dests) in part {
                    tree.search(net, cost, net.zone_node(*o));
                    for (&(node, v), &(zone, _)) in dests.iter().zip(problem.demand.row(*o)) {
                        if !tree.reached(node) {
                            unserved.push(Unserved {
                                origin: *o,
                                destination: zone as usize,
                                trips: v,
                            });
                        }
                    }
                    sptt += tree.load(net, dests, &mut y);
                }
                (y, sptt, unserved)
            },
        )
        .collect();
    let mut y = vec![0.0; m];
    let mut sptt = 0.0;
    let mut unserved = Vec::new();
    for (part, s, u) in parts {
        for (a, b) in y.iter_mut().zip(&part) {
            *a += b;
        }
        sptt += s;
        unserved.extend(u);
    }
    (y, sptt, unserved)
}

/// `φ'(τ) = Σ_a dir_a · c_a(x_a + τ dir_a)`, the slope of the Beckmann objective along `dir`.
fn slope(model: &[LinkCost], x: &[f64], dir: &[f64], tau: f64) -> (f64, f64) {
    let mut g = 0.0;
    let mut h = 0.0;
    for ((m, &xa), &da) in model.iter().zip(x).zip(dir) {
        if da != 0.0 {
            let (c, d) = m.cost_and_derivative((xa + tau * da).max(0.0));
            g += da * c;
            h += da * da * d;
        }
    }
    (g, h)
}

/// The step in `[0, 1]` minimising the Beckmann objective along `dir` (safeguarded Newton on its slope).
fn line_search(model: &[LinkCost], x: &[f64], dir: &[f64]) -> f64 {
    let (g0, _) = slope(model, x, dir, 0.0);
    if g0 >= 0.0 {
        return 0.0;
    }
    let (g1, _) = slope(model, x, dir, 1.0);
    if g1 <= 0.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    let mut t = g0 / (g0 - g1);
    let tol = 1e-13 * g0.abs().max(g1.abs());
    for _ in 0..100 {
        let (g, h) = slope(model, x, dir, t);
        if g.abs() <= tol {
            break;
        }
        if g > 0.0 {
            hi = t;
        } else {
            lo = t;
        }
        if hi - lo <= 1e-15 {
            break;
        }
        let newton = t - g / h;
        t = if newton > lo && newton < hi && newton.is_finite() {
            newton
        } else {
            0.5 * (lo + hi)
        };
    }
    t
}

/// `Σ_a H_a u_a v_a`.
fn hdot(h: &[f64], u: impl Iterator<Item = f64>, v: impl Iterator<Item = f64>) -> f64 {
    h.iter().zip(u.zip(v)).map(|(h, (u, v))| h * u * v).sum()
}

pub(crate) fn solve(problem: &Problem<'_>) -> Result<Solution, AssignError> {
    let net = problem.net;
    let m = net.link_count();
    let model = problem.costs;
    let origins = problem.origins();

    let mut x = warm_flows(problem).unwrap_or_default();
    let warm = !x.is_empty();
    if !warm {
        let free: Vec<f64> = model.iter().map(|c| c.base).collect();
        x = all_or_nothing(problem, &origins, &free).0;
    }
    let mut c = vec![0.0; m];
    let mut d = vec![0.0; m];
    let mut s1: Option<Vec<f64>> = None;
    let mut s2: Option<Vec<f64>> = None;
    let mut tau_prev = 1.0;
    let mut history = Vec::new();
    let mut unserved = None;
    let mut iteration = 0;
    let (stop, sptt) = loop {
        for l in 0..m {
            (c[l], d[l]) = model[l].cost_and_derivative(x[l]);
        }
        let (y, sptt, u) = all_or_nothing(problem, &origins, &c);
        unserved.get_or_insert(u);
        let (tstt, objective) = super::gap::totals(model, &x);
        let stats = IterationStats {
            iteration,
            relative_gap: super::relative_gap(tstt, sptt),
            objective,
            seconds: problem.elapsed(),
        };
        if origins.is_empty() || y.iter().all(|v| *v == 0.0) && x.iter().all(|v| *v == 0.0) {
            problem.checkpoint(&mut history, stats);
            break (Stop::NoDemand, sptt);
        }
        if let Some(stop) = problem.checkpoint(&mut history, stats) {
            break (stop, sptt);
        }

        let mut s = match (&s1, &s2) {
            (Some(p1), Some(p2)) if tau_prev < 1.0 => {
                // bi-conjugate
                let xbar: Vec<f64> = (0..m)
                    .map(|a| tau_prev * p1[a] - x[a] + (1.0 - tau_prev) * p2[a])
                    .collect();
                let num = hdot(
                    &d,
                    xbar.iter().copied(),
                    y.iter().zip(&x).map(|(y, x)| y - x),
                );
                let den = hdot(
                    &d,
                    xbar.iter().copied(),
                    p2.iter().zip(p1).map(|(a, b)| a - b),
                );
                let mu = if den != 0.0 {
                    (-num / den).max(0.0)
                } else {
                    0.0
                };
                let num = hdot(
                    &d,
                    p1.iter().zip(&x).map(|(s, x)| s - x),
                    y.iter().zip(&x).map(|(y, x)| y - x),
                );
                let den = hdot(
                    &d,
                    p1.iter().zip(&x).map(|(s, x)| s - x),
                    p1.iter().zip(&x).map(|(s, x)| s - x),
                );
                let nu = if den != 0.0 {
                    (mu * tau_prev / (1.0 - tau_prev) - num / den).max(0.0)
                } else {
                    0.0
                };
                let (mu, nu) = if (mu + nu).is_finite() {
                    (mu, nu)
                } else {
                    (0.0, 0.0)
                };
                let b0 = 1.0 / (1.0 + nu + mu);
                let (b1, b2) = (nu * b0, mu * b0);
                (0..m)
                    .map(|a| b0 * y[a] + b1 * p1[a] + b2 * p2[a])
                    .collect()
            }
            (Some(p1), _) if tau_prev < 1.0 => {
                // conjugate
                let num = hdot(
                    &d,
                    p1.iter().zip(&x).map(|(s, x)| s - x),
                    y.iter().zip(&x).map(|(y, x)| y - x),
                );
                let den = hdot(
                    &d,
                    p1.iter().zip(&x).map(|(s, x)| s - x),
                    y.iter().zip(p1).map(|(y, s)| y - s),
                );
                let alpha = if den != 0.0 {
                    (num / den).clamp(0.0, 1.0 - 1e-6)
                } else {
                    0.0
                };
                (0..m)
                    .map(|a| alpha * p1[a] + (1.0 - alpha) * y[a])
                    .collect()
            }
            _ => y.clone(),
        };
        let mut dir: Vec<f64> = s.iter().zip(&x).map(|(s, x)| s - x).collect();
        let descends: f64 = dir.iter().zip(&c).map(|(d, c)| d * c).sum();
        if descends >= 0.0 {
            s = y;
            dir = s.iter().zip(&x).map(|(s, x)| s - x).collect();
        }
        let tau = line_search(model, &x, &dir);
        for (xa, da) in x.iter_mut().zip(&dir) {
            *xa = (*xa + tau * da).max(0.0);
        }
        s2 = s1.take();
        s1 = Some(s);
        tau_prev = tau;
        iteration += 1;
    };
    for l in 0..m {
        c[l] = model[l].cost(x[l]);
    }
    let report = problem.report(
        &x,
        sptt,
        iteration,
        stop,
        unserved.unwrap_or_default(),
        history,
    );
    let mut report = report;
    if warm {
        report.warm_origins = origins.len();
    }
    Ok(Solution {
        flows: x,
        costs: c,
        report,
        warm: WarmState {
            shape: net.shape(),
            demand: problem.demand.clone(),
            bushes: Vec::new(),
        },
    })
}

/// The link flows of the warm start on this network, when its trips are the same and none of its flow sits on a
/// link that is gone or closed.
fn warm_flows(problem: &Problem<'_>) -> Option<Vec<f64>> {
    let warm = problem.options.warm_start?;
    if warm.warm.demand != *problem.demand || warm.report.unserved_trips > 0.0 {
        return None;
    }
    let map = super::algorithm_b::link_map(&warm.warm.shape, problem.net);
    let mut x = vec![0.0; problem.net.link_count()];
    for (old, &f) in warm.flows.iter().enumerate() {
        match map[old] {
            Some(new) => x[new as usize] = f,
            None if f > 0.0 => return None,
            None => {}
        }
    }
    Some(x)
}
