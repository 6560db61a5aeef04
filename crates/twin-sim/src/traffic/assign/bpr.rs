//! BPR link costs and their Beckmann integrals, evaluated fast.
//!
//! Travel time on link `a` under flow `x` (Bureau of Public Roads, 1964):
//!
//! ```text
//! t_a(x) = t0_a · (1 + B_a · (x / cap_a)^P_a)
//! ```
//!
//! and the generalised cost adds fixed per-link terms: `c_a(x) = t_a(x) + toll_factor · toll_a + distance_factor ·
//! length_a`. A link with `B = 0` or `P = 0` has a constant cost (TNTP's `P = 0` means `(x/cap)^0 = 1`, so
//! `t0 · (1 + B)`). The Beckmann term of a link is the integral of its cost from 0 to `x`:
//!
//! ```text
//! ∫₀ˣ c_a(w) dw = (t0_a + fixed_a) · x + t0_a · B_a · x · (x / cap_a)^P_a / (P_a + 1)
//! ```
//!
//! Integer powers 1–4 (P = 4 is by far the most common) are evaluated by multiplication; other powers by one `powf`.

use super::network::Link;

/// How a link's cost depends on its flow, decided once per solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Constant,
    Pow1,
    Pow2,
    Pow3,
    Pow4,
    General,
}

/// One link's cost function with everything precomputed: `c(x) = base + coef · (x · inv_cap)^power`.
#[derive(Debug, Clone, Copy)]
pub struct LinkCost {
    /// The cost at zero flow: free-flow time plus the fixed generalised-cost terms (for a constant link, its cost).
    pub base: f64,
    /// `t0 · B` (0 for a constant link).
    coef: f64,
    inv_cap: f64,
    power: f64,
    shape: Shape,
}

impl LinkCost {
    /// The cost function of `link` with the generalised-cost weights.
    pub fn new(link: &Link, toll_factor: f64, distance_factor: f64) -> LinkCost {
        let fixed = toll_factor * link.toll + distance_factor * link.length;
        let constant = link.b == 0.0 || link.power == 0.0 || link.free_flow_time == 0.0;
        if constant {
            // P = 0: (x/cap)^0 = 1 for every x, so the time is t0 · (1 + B)
            let time = if link.power == 0.0 {
                link.free_flow_time * (1.0 + link.b)
            } else {
                link.free_flow_time
            };
            return LinkCost {
                base: time + fixed,
                coef: 0.0,
                inv_cap: 0.0,
                power: 0.0,
                shape: Shape::Constant,
            };
        }
        let shape = match link.power {
            1.0 => Shape::Pow1,
            2.0 => Shape::Pow2,
            3.0 => Shape::Pow3,
            4.0 => Shape::Pow4,
            _ => Shape::General,
        };
        LinkCost {
            base: link.free_flow_time + fixed,
            coef: link.free_flow_time * link.b,
            inv_cap: 1.0 / link.capacity,
            power: link.power,
            shape,
        }
    }

    /// `true` when the cost does not depend on the flow.
    pub fn is_constant(&self) -> bool {
        self.shape == Shape::Constant
    }

    /// The generalised cost at flow `x`.
    #[inline]
    pub fn cost(&self, x: f64) -> f64 {
        let r = x * self.inv_cap;
        match self.shape {
            Shape::Constant => self.base,
            Shape::Pow1 => self.base + self.coef * r,
            Shape::Pow2 => self.base + self.coef * r * r,
            Shape::Pow3 => self.base + self.coef * r * r * r,
            Shape::Pow4 => {
                let r2 = r * r;
                self.base + self.coef * r2 * r2
            }
            Shape::General => self.base + self.coef * r.powf(self.power),
        }
    }

    /// The generalised cost at flow `x` and its derivative `dc/dx` (which may be infinite at `x = 0` for
    /// powers below 1).
    #[inline]
    pub fn cost_and_derivative(&self, x: f64) -> (f64, f64) {
        let r = x * self.inv_cap;
        let k = self.coef * self.inv_cap;
        match self.shape {
            Shape::Constant => (self.base, 0.0),
            Shape::Pow1 => (self.base + self.coef * r, k),
            Shape::Pow2 => (self.base + self.coef * r * r, 2.0 * k * r),
            Shape::Pow3 => {
                let r2 = r * r;
                (self.base + self.coef * r2 * r, 3.0 * k * r2)
            }
            Shape::Pow4 => {
                let r3 = r * r * r;
                (self.base + self.coef * r3 * r, 4.0 * k * r3)
            }
            Shape::General => {
                if r <= 0.0 {
                    let d = if self.power < 1.0 {
                        f64::INFINITY
                    } else if self.power == 1.0 {
                        k
                    } else {
                        0.0
                    };
                    return (self.base, d);
                }
                let rp1 = r.powf(self.power - 1.0);
                (self.base + self.coef * rp1 * r, self.power * k * rp1)
            }
        }
    }

    /// The Beckmann term: the integral of the cost from 0 to `x`.
    #[inline]
    pub fn integral(&self, x: f64) -> f64 {
        if self.shape == Shape::Constant {
            return self.base * x;
        }
        let r = x * self.inv_cap;
        let rp = match self.shape {
            Shape::Pow1 => r,
            Shape::Pow2 => r * r,
            Shape::Pow3 => r * r * r,
            Shape::Pow4 => {
                let r2 = r * r;
                r2 * r2
            }
            _ => r.powf(self.power),
        };
        self.base * x + self.coef * x * rp / (self.power + 1.0)
    }
}

/// The BPR travel time `t0 · (1 + B · (x / cap)^P)` of a link (without generalised-cost terms), with TNTP's
/// conventions for `B = 0` and `P = 0`.
pub fn travel_time(link: &Link, x: f64) -> f64 {
    LinkCost::new(link, 0.0, 0.0).cost(x)
}

/// The per-link cost functions of a network for one solve; closed links get a zero constant (they are never
/// searched and never carry flow, so it only keeps sums over all links finite).
pub(crate) fn link_costs(
    net: &super::Network,
    toll_factor: f64,
    distance_factor: f64,
) -> Vec<LinkCost> {
    net.links()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if net.is_open(i as u32) {
                LinkCost::new(l, toll_factor, distance_factor)
            } else {
                LinkCost {
                    base: 0.0,
                    coef: 0.0,
                    inv_cap: 0.0,
                    power: 0.0,
                    shape: Shape::Constant,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(power: f64) -> Link {
        Link {
            from: 0,
            to: 1,
            capacity: 1000.0,
            length: 2.0,
            free_flow_time: 3.0,
            b: 0.15,
            power,
            toll: 10.0,
        }
    }

    #[test]
    fn integer_and_general_powers_agree_with_the_formula() {
        for power in [1.0, 2.0, 3.0, 4.0, 4.446, 16.83, 0.5] {
            let l = link(power);
            let c = LinkCost::new(&l, 0.02, 0.04);
            for x in [0.0, 1.0, 500.0, 1000.0, 2500.0] {
                let expected = 3.0 * (1.0 + 0.15 * (x / 1000.0f64).powf(power)) + 0.2 + 0.08;
                let (cost, d) = c.cost_and_derivative(x);
                assert!((cost - expected).abs() < 1e-12 * expected, "{power} {x}");
                assert!((c.cost(x) - expected).abs() < 1e-12 * expected);
                if x > 0.0 {
                    let h = 1e-4 * x;
                    let numeric = (c.cost(x + h) - c.cost(x - h)) / (2.0 * h);
                    assert!((d - numeric).abs() < 1e-6 * d.abs() + 1e-9, "{power} {x}");
                    // the integral's derivative is the cost
                    let numeric = (c.integral(x + h) - c.integral(x - h)) / (2.0 * h);
                    assert!((numeric - cost).abs() < 1e-6 * cost, "{power} {x}");
                }
            }
            assert_eq!(c.integral(0.0), 0.0);
        }
    }

    #[test]
    fn tntp_constant_links() {
        let mut l = link(0.0);
        l.b = 0.0;
        assert_eq!(travel_time(&l, 1e9), 3.0);
        l.b = 0.5; // P = 0 with B > 0: t0 · (1 + B)
        assert_eq!(travel_time(&l, 0.0), 4.5);
        let c = LinkCost::new(&l, 0.0, 0.0);
        assert!(c.is_constant());
        assert_eq!(c.cost_and_derivative(7.0), (4.5, 0.0));
        assert_eq!(c.integral(2.0), 9.0);
    }
}
