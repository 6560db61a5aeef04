//! Convergence measures: total system travel cost, the Beckmann objective and the relative gap.

use super::bpr::LinkCost;

/// The relative gap `(TSTT − SPTT) / TSTT`: 0 when no trip is assigned, and never below 0 (rounding at
/// equilibrium can make the difference −1e-16 of TSTT).
pub fn relative_gap(tstt: f64, sptt: f64) -> f64 {
    if tstt > 0.0 && tstt.is_finite() && sptt.is_finite() {
        ((tstt - sptt) / tstt).max(0.0)
    } else {
        0.0
    }
}

/// (TSTT, Beckmann objective) of link flows `flows`.
pub(crate) fn totals(costs: &[LinkCost], flows: &[f64]) -> (f64, f64) {
    let mut tstt = 0.0;
    let mut objective = 0.0;
    for (c, &x) in costs.iter().zip(flows) {
        if x != 0.0 {
            tstt += x * c.cost(x);
            objective += c.integral(x);
        }
    }
    (tstt, objective)
}
