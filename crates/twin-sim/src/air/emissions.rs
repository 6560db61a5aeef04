//! Road-traffic emissions per link: turns a link's flow (vehicles/hour) and mean speed into the line-source strength
//! (µg per metre per second) of NOx, direct NO2, exhaust and non-exhaust PM10 and PM2.5, and CO2, for [`super::dispersion`].
//!
//! **Exhaust** (hot emissions, EMEP/EEA air pollutant emission inventory guidebook, chapter 1.A.3.b.i–iv "Exhaust
//! emissions from road transport"). Tier 3 (COPERT) gives a vehicle's emission factor, in g/km, as a function of its
//! mean speed `V` (km/h):
//!
//! ```text
//! EF(V) = (α·V² + β·V + γ + δ/V) / (ε·V² + ζ·V + η) · (1 − RF)      V clamped to [V_min, V_max]
//! ```
//!
//! A Tier 2 factor (one number per segment) is the same form with α = β = δ = ε = ζ = 0, η = 1, γ = EF. Direct NO2 is
//! a share `f_NO2` of NOx. Exhaust PM is all finer than 2.5 µm, so exhaust PM2.5 = exhaust PM10. CO2 comes from fuel
//! consumption `FC` (g/km) and the fuel's hydrogen-to-carbon ratio `r` (guidebook, CO2 equation of 1.A.3.b.i–iv):
//! `CO2 = 44.011 · FC / (12.011 + 1.008 · r)`.
//!
//! **Non-exhaust** (guidebook chapter 1.A.3.b.vi–vii, Tier 2: tyre, brake and road surface wear). Per source `s`,
//! `EF_s = TSP_s · f_s(size) · S_s(V)` with the total suspended particulate factor `TSP_s`, the PM10 or PM2.5 mass
//! fraction `f_s` and a speed correction `S_s` (tyre and brake only; road wear does not depend on speed):
//!
//! ```text
//! S_tyre(V)  = 1.39 (V < 40);  −0.00974·V + 1.78 (40 ≤ V ≤ 90);  0.902 (V > 90)
//! S_brake(V) = 1.67 (V < 40);  −0.0270·V + 2.75  (40 ≤ V ≤ 95);  0.185 (V > 95)
//! ```
//!
//! Trucks and buses scale the passenger-car factors: tyre `N_axle/2 · (1.41 + 1.38·LF) · TSP_tyre,car`, brake
//! `1.956 · (1 + 0.79·LF) · TSP_brake,car`, with load factor `LF` = 0.5 (the guidebook's default for heavy vehicles).
//!
//! **Fleet and link.** A [`FleetMix`] gives the share of each vehicle category in the flow and, within a category, the
//! shares of its fuels and Euro classes; [`factors`] weights the segments' g/km by those shares. The line-source
//! strength of a link with flow `Q` (veh/h) is `q = Q/3600 · EF · 10⁶/10³` µg/(m·s) = `Q · EF / 3.6` ([`link_emission`]),
//! and [`total`] sums `q · length` over links into grams per hour.
//!
//! **Where the numbers come from, and what is missing.** The guidebook's current (2023) Tier 3 coefficient tables (its
//! Excel annex) could not be read for this module. Two Tier 3 sets transcribed in public code are used: diesel
//! passenger car, Euro 6 up to 2016 (6 a/b/c), NOx and exhaust PM; and petrol passenger car Euro 6, NOx, from the 2013
//! guidebook (update Sept 2014), one source (see [`PETROL_CAR_6_NOX`]). Every other exhaust factor is a **Tier 2**
//! value of the 2023 guidebook (update 2025), so it does **not** vary with speed, or is marked `ASSUMPTION` where no
//! published value was found. Each constant below names its table and segment and how it was obtained. The 2013
//! annex's speed curves for Euro 6 diesel vans ("Diesel <3.5 t") and for Euro VI rigid trucks 12–14 t and standard urban
//! buses (slope 0 %, load 50 %) were found too but are not used: the van NOx curve is 4–5 times below the 2023 Tier 2
//! value of Euro 6 a/b/c vans at 20–50 km/h (and the 2013 annex has no 6d stage nor N1-III class), the truck NOx curve
//! ("HD Euro VI") is 3.6–7 times above the Euro VI A/B/C value at 10–20 km/h, and the bus curve (`a·b^V·V^c`) has no
//! [`Copert`] form.
//! Replacing a constant curve by the guidebook's Tier 3 coefficients needs no other change: they are the same
//! [`Copert`] form.
//! Cold starts, road gradient, resuspension of road dust and vehicles older than Euro 6/VI are not modelled; the default
//! fleet is therefore cleaner than a real one (see [`FleetMix::default`]).
//!
//! Sources: EMEP/EEA air pollutant emission inventory guidebook 2023 (update 2025), chapters 1.A.3.b.i–iv and
//! 1.A.3.b.vi–vii (and the 2019 edition for the heavy-vehicle wear scaling); Carslaw et al. (2019), "The diminishing
//! importance of nitrogen dioxide emissions from road vehicle exhaust", Atmospheric Environment: X 1, 100002.

use serde::{Deserialize, Serialize};

/// A speed-dependent emission factor in the COPERT form of the module doc, in g/km (or any per-km unit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Copert {
    /// Coefficient of V² in the numerator.
    pub alpha: f64,
    /// Coefficient of V in the numerator.
    pub beta: f64,
    /// Constant of the numerator.
    pub gamma: f64,
    /// Coefficient of 1/V in the numerator.
    pub delta: f64,
    /// Coefficient of V² in the denominator.
    pub epsilon: f64,
    /// Coefficient of V in the denominator.
    pub zeta: f64,
    /// Constant of the denominator.
    pub eta: f64,
    /// Reduction factor, a fraction (0.18 = 18 %).
    pub rf: f64,
    /// Lowest speed of the fit (km/h); slower speeds are evaluated at it.
    pub v_min: f64,
    /// Highest speed of the fit (km/h); faster speeds are evaluated at it.
    pub v_max: f64,
}

impl Copert {
    /// A factor that does not depend on speed (a Tier 2 value): γ = `ef`, η = 1, all else 0.
    pub const fn constant(ef: f64) -> Copert {
        Copert {
            alpha: 0.0,
            beta: 0.0,
            gamma: ef,
            delta: 0.0,
            epsilon: 0.0,
            zeta: 0.0,
            eta: 1.0,
            rf: 0.0,
            v_min: 1.0,
            v_max: 200.0,
        }
    }

    /// The factor at mean speed `speed_kmh`, clamped to `[v_min, v_max]`; never negative. A non-finite speed is
    /// evaluated at `v_min` (callers validate speeds first, see [`link_emission`]).
    pub fn ef(&self, speed_kmh: f64) -> f64 {
        let v = if speed_kmh.is_finite() {
            speed_kmh.clamp(self.v_min, self.v_max)
        } else {
            self.v_min
        };
        let num = self.alpha * v * v + self.beta * v + self.gamma + self.delta / v;
        let den = self.epsilon * v * v + self.zeta * v + self.eta;
        let ef = num / den * (1.0 - self.rf);
        if ef.is_finite() {
            ef.max(0.0)
        } else {
            0.0
        }
    }
}

/// A vehicle category of the traffic flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Passenger cars (M1).
    Car,
    /// Light commercial vehicles, vans (N1).
    Van,
    /// Heavy-duty trucks (rigid, 12–14 t).
    Truck,
    /// Urban buses (standard, 15–18 t).
    Bus,
}

/// A vehicle segment: category, fuel and Euro class, with its own emission factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Petrol passenger car, medium, Euro 6 (any sub-stage: one NOx speed curve, the 2013 guidebook's Euro 6 one).
    PetrolCarEuro6,
    /// Diesel passenger car, Euro 6 a/b/c (registered up to about 2017).
    DieselCarEuro6abc,
    /// Diesel passenger car, Euro 6d-temp and 6d (real-driving-emissions tested).
    DieselCarEuro6d,
    /// Diesel van N1-III, Euro 6 a/b/c.
    DieselVanEuro6abc,
    /// Diesel van N1-III, Euro 6d.
    DieselVanEuro6d,
    /// Diesel rigid truck 12–14 t, Euro VI A/B/C.
    TruckEuroVIabc,
    /// Diesel rigid truck 12–14 t, Euro VI D/E.
    TruckEuroVIde,
    /// Diesel urban bus, standard 15–18 t, Euro VI A/B/C.
    BusEuroVIabc,
    /// Diesel urban bus, standard 15–18 t, Euro VI D/E.
    BusEuroVIde,
}

/// An amount of each pollutant, in the unit of its use: [`Factors`] (g/km per vehicle), [`LinkEmission`]
/// (µg/(m·s)) or [`Totals`] (g/h).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pollutants {
    /// Nitrogen oxides, as NO2 mass.
    pub nox: f64,
    /// Direct (primary) NO2, part of `nox`.
    pub no2: f64,
    /// Exhaust PM10.
    pub pm10_exhaust: f64,
    /// Tyre, brake and road surface wear PM10.
    pub pm10_non_exhaust: f64,
    /// Exhaust PM2.5 (equal to exhaust PM10).
    pub pm25_exhaust: f64,
    /// Tyre, brake and road surface wear PM2.5.
    pub pm25_non_exhaust: f64,
    /// Carbon dioxide from the fuel burnt.
    pub co2: f64,
}

impl Pollutants {
    /// Every pollutant multiplied by `k`.
    pub fn scaled(&self, k: f64) -> Pollutants {
        Pollutants {
            nox: self.nox * k,
            no2: self.no2 * k,
            pm10_exhaust: self.pm10_exhaust * k,
            pm10_non_exhaust: self.pm10_non_exhaust * k,
            pm25_exhaust: self.pm25_exhaust * k,
            pm25_non_exhaust: self.pm25_non_exhaust * k,
            co2: self.co2 * k,
        }
    }

    /// Adds `o`, pollutant by pollutant.
    pub fn add(&mut self, o: &Pollutants) {
        self.nox += o.nox;
        self.no2 += o.no2;
        self.pm10_exhaust += o.pm10_exhaust;
        self.pm10_non_exhaust += o.pm10_non_exhaust;
        self.pm25_exhaust += o.pm25_exhaust;
        self.pm25_non_exhaust += o.pm25_non_exhaust;
        self.co2 += o.co2;
    }
}

/// Emission factors in g/km per vehicle (per vehicle of the fleet when fleet-weighted, see [`factors`]).
pub type Factors = Pollutants;

/// Why an emission could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmissionError {
    /// The flow is negative, NaN or infinite.
    #[error("flow must be a finite number of vehicles per hour ≥ 0, got {0}")]
    Flow(f64),
    /// The speed is negative, NaN or infinite.
    #[error("speed must be a finite number of km/h ≥ 0, got {0}")]
    Speed(f64),
    /// A link length is negative, NaN or infinite.
    #[error("link length must be a finite number of metres ≥ 0, got {0}")]
    Length(f64),
    /// A travel time is not a positive finite number of seconds.
    #[error("travel time must be a finite number of seconds > 0, got {0}")]
    TravelTime(f64),
    /// A share of the fleet mix is out of range or the category shares sum to zero.
    #[error("fleet mix: {0}")]
    Fleet(String),
}

// ---------------------------------------------------------------------------------------------------------------
// Exhaust factors. "GB2023 T2" = EMEP/EEA guidebook 2023 (update 2025), 1.A.3.b.i–iv, Tier 2 tables, values as
// transcribed and checked against the chapter in a public air-quality project (a model description of a Zagreb
// street-canyon model found in the search index; NOx from Tables 3-17, 3-19, 3-21 and 3-23 of the chapter, the
// project did not say which table holds which segment). Tier 2 values do not depend on speed.
// ---------------------------------------------------------------------------------------------------------------

/// Diesel PC Euro 6 a/b/c, NOx: a Tier 3 curve of the guidebook annex as transcribed in a public C implementation of
/// COPERT (`copert.h`, constants `EURO6_*_NOX_TEST`, labelled "EURO 6 hasta 2016 Diesel Pequeño": Euro 6 up to 2016,
/// diesel, small). The same six coefficients appear in ENPC/INRIA's transcriptions of the 2013 guidebook (Sept 2014
/// update), repository pollemission/pollemission: rounded to three digits in `copert.py` (diesel passenger-car table,
/// Table 3-47) and in full in `input/PC_parameter.csv` — but there both label them **Euro 5** diesel NOx (row
/// "Passenger Cars, Diesel 1.4 - 2.0 l, PC Euro 5 - EC 715/2007, 5, NOx", speed 10–130 km/h); that annex's Euro 6 row
/// is a different, lower curve. With the RF of 17.6 % the constant is the 2013 Euro 5 curve reduced by 17.6 %; whether
/// the later annex behind `copert.h` defines Euro 6 up to 2016 that way was not checked. Segment small, not medium.
/// Speed range 10–130 km/h: ASSUMPTION (range of the 2013 annex's Euro 5 row; the later annex's own range was not
/// found).
const DIESEL_CAR_6ABC_NOX: Copert = Copert {
    alpha: 6.67136e-5,
    beta: -0.011381467,
    gamma: 0.945951727,
    delta: 1.923608149,
    epsilon: -5.15046e-5,
    zeta: 0.004264272,
    eta: 1.0,
    rf: 0.176306450219664,
    v_min: 10.0,
    v_max: 130.0,
};

/// Diesel PC Euro 6 a/b/c, exhaust PM: same source and caveats as [`DIESEL_CAR_6ABC_NOX`] (constants
/// `EURO6_*_PM_TEST`). It gives about 0.002 g/km in town, ten times the 2023 Tier 2 value used for Euro 6d
/// ([`PM_DPF_LIGHT`]): the editions differ.
const DIESEL_CAR_6ABC_PM: Copert = Copert {
    alpha: 0.000467299306307736,
    beta: 0.0664094975805683,
    gamma: -0.325010592710707,
    delta: 0.960762635129021,
    epsilon: 1.13723865568225,
    zeta: 0.54617955489948,
    eta: 0.289633151649954,
    rf: 0.0,
    v_min: 10.0,
    v_max: 130.0,
};

/// Petrol PC Euro 6, NOx: Tier 3 curve of the 2013 guidebook (update Sept 2014), **one source**: ENPC/INRIA's
/// transcription in repository pollemission/pollemission, file `input/PC_parameter.csv` (the chapter's Excel annex),
/// row "Passenger Cars, Gasoline 1.4 - 2.0 l, PC Euro 6 - EC 715/2007, 6, NOx", Equation 1, speed 5–130 km/h, RF 0
/// (the rows for < 0.8 l, 0.8 - 1.4 l and > 2.0 l are identical). Equation 1 is, as that repository's `copert.py` evaluates
/// it (`Eq_1`), `(A + C·V + E·V² + Z/V) / (1 + B·V + D·V²)` with A…Z the row's columns Alpha, Beta, Gamma, Delta,
/// Epsilon, Zita in that order, so here γ = Alpha, ζ = Beta, β = Gamma, ε = Delta, α = Epsilon, δ = Zita, η = 1. (The
/// same mapping turns that file's Euro 5 diesel NOx row into exactly the coefficients of [`DIESEL_CAR_6ABC_NOX`], which
/// came from another project.) How checked: the same six numbers, rounded to three digits, are the Euro 6 row of the
/// NOx block of the chapter's Table 3-41 in the same repository's `copert.py` (`efc_gasoline_passenger_car`, evaluated
/// with `EF_27`; the block is NOx because the HC block's Euro 5 row is a power law only `EF_28` fits) — two
/// transcriptions by one project, not two independent sources. The curve gives 0.061 g/km at 5 km/h, 0.055 at 10,
/// 0.045 at 20, 0.038 at 30, 0.028 at 50, 0.021 at 70 and 0.014 at 100, around the 2023 Tier 2 value 0.032 (within a
/// factor of 1.7 at urban speeds). Caveats: 2013 edition (the Tier 2 value is 2023); "Euro 6" of 2013, before the
/// 6d-temp/6d stages, used here for all Euro 6 petrol cars.
const PETROL_CAR_6_NOX: Copert = Copert {
    alpha: -1.51582670291725e-3,
    beta: 3.4057776316908e-1,
    gamma: 4.74232144011732e-1,
    delta: -1.19108669518198,
    epsilon: 8.37628818222108e-2,
    zeta: 5.62174646182347,
    eta: 1.0,
    rf: 0.0,
    v_min: 5.0,
    v_max: 130.0,
};

/// Exhaust description of one segment.
struct Exhaust {
    nox: Copert,
    pm: Copert,
    /// Share of NOx emitted as NO2.
    f_no2: f64,
    /// Fuel consumption, g/km.
    fc: f64,
    /// Hydrogen-to-carbon atom ratio of the fuel.
    h_c: f64,
}

/// H:C ratio of diesel, 1.86 (guidebook 1.A.3.b.i–iv, table of H:C and O:C ratios of reference fuels; also used by
/// gtfs2emis, `data-raw/europe.R`; gives 3.169 kg CO2/kg, the guidebook's figure for diesel).
const H_C_DIESEL: f64 = 1.86;
/// H:C ratio of petrol, 1.80 (same guidebook table; value recalled, not re-checked for this module).
const H_C_PETROL: f64 = 1.80;

/// Direct NO2 share of diesel cars and vans, Euro 6: 0.30, "typically 30 %" from remote sensing (Carslaw et al. 2019).
/// Not the guidebook's f-NO2 table, which could not be read for this module.
const F_NO2_DIESEL_LDV: f64 = 0.30;
/// Direct NO2 share of petrol cars: ASSUMPTION 0.03 (three-way catalysts emit NOx almost all as NO; no published
/// table value was found).
const F_NO2_PETROL: f64 = 0.03;
/// Direct NO2 share of Euro VI trucks and buses: ASSUMPTION 0.10 (no published value was found).
const F_NO2_HEAVY: f64 = 0.10;

/// Exhaust PM of diesel cars Euro 5 and later (DPF): 0.0002 g/km, GB2023 T2 (diesel PC, PM2.5 exhaust).
const PM_DPF_LIGHT: f64 = 0.0002;
/// Exhaust PM of petrol cars: ASSUMPTION 0.0045 g/km, the Euro 6 type-approval limit (Regulation (EC) 715/2007,
/// Annex I; applies to direct-injection engines), an upper bound. No Tier 2 value was found.
const PM_PETROL: f64 = 0.0045;
/// Exhaust PM of Euro VI trucks and buses: ASSUMPTION 0.01 g/km, the Euro VI limit of 0.01 g/kWh (Regulation (EC)
/// 595/2009, Annex I) times an assumed 1 kWh of engine work per km in urban driving; an upper bound.
const PM_HEAVY: f64 = 0.01;

/// Fuel consumption, g/km: GB2023 Tier 1 typical values (Table 3-15, as transcribed in the same Zagreb model
/// description): petrol PC 61.9, diesel PC 56.8, diesel LCV 79.0, diesel HDV 216.8. These are fleet averages, not
/// Euro 6/VI specific, and do not depend on speed.
const FC_PETROL_CAR: f64 = 61.9;
/// See [`FC_PETROL_CAR`].
const FC_DIESEL_CAR: f64 = 56.8;
/// See [`FC_PETROL_CAR`].
const FC_DIESEL_VAN: f64 = 79.0;
/// See [`FC_PETROL_CAR`].
const FC_DIESEL_HDV: f64 = 216.8;
/// Diesel urban bus: ASSUMPTION 334 g/km = 40 l/100 km × 0.835 kg/l, a typical 12 m city bus (no Tier 1 value for
/// diesel buses was found).
const FC_DIESEL_BUS: f64 = 334.0;

impl Segment {
    /// Every segment, in a fixed order.
    pub const ALL: [Segment; 9] = [
        Segment::PetrolCarEuro6,
        Segment::DieselCarEuro6abc,
        Segment::DieselCarEuro6d,
        Segment::DieselVanEuro6abc,
        Segment::DieselVanEuro6d,
        Segment::TruckEuroVIabc,
        Segment::TruckEuroVIde,
        Segment::BusEuroVIabc,
        Segment::BusEuroVIde,
    ];

    /// The segment's vehicle category.
    pub fn category(self) -> Category {
        match self {
            Segment::PetrolCarEuro6 | Segment::DieselCarEuro6abc | Segment::DieselCarEuro6d => {
                Category::Car
            }
            Segment::DieselVanEuro6abc | Segment::DieselVanEuro6d => Category::Van,
            Segment::TruckEuroVIabc | Segment::TruckEuroVIde => Category::Truck,
            Segment::BusEuroVIabc | Segment::BusEuroVIde => Category::Bus,
        }
    }

    fn exhaust(self) -> Exhaust {
        use Segment::*;
        let (nox, pm, f_no2, fc, h_c) = match self {
            // NOx: Tier 3 curve, GB2013 annex (replaces the GB2023 T2 value 0.032 g/km, petrol PC medium Euro 6)
            PetrolCarEuro6 => (
                PETROL_CAR_6_NOX,
                Copert::constant(PM_PETROL),
                F_NO2_PETROL,
                FC_PETROL_CAR,
                H_C_PETROL,
            ),
            DieselCarEuro6abc => (
                DIESEL_CAR_6ABC_NOX,
                DIESEL_CAR_6ABC_PM,
                F_NO2_DIESEL_LDV,
                FC_DIESEL_CAR,
                H_C_DIESEL,
            ),
            // GB2023 T2, diesel PC medium, Euro 6d: NOx 0.074 g/km
            DieselCarEuro6d => (
                Copert::constant(0.074),
                Copert::constant(PM_DPF_LIGHT),
                F_NO2_DIESEL_LDV,
                FC_DIESEL_CAR,
                H_C_DIESEL,
            ),
            // GB2023 T2, diesel LCV N1-II/III, Euro 6 a/b/c: NOx 1.108 g/km; PM: ASSUMPTION, as the DPF diesel car
            DieselVanEuro6abc => (
                Copert::constant(1.108),
                Copert::constant(PM_DPF_LIGHT),
                F_NO2_DIESEL_LDV,
                FC_DIESEL_VAN,
                H_C_DIESEL,
            ),
            // GB2023 T2, diesel LCV N1-II/III, Euro 6d: NOx 0.142 g/km; PM as above
            DieselVanEuro6d => (
                Copert::constant(0.142),
                Copert::constant(PM_DPF_LIGHT),
                F_NO2_DIESEL_LDV,
                FC_DIESEL_VAN,
                H_C_DIESEL,
            ),
            // GB2023 T2, HDV rigid 12–14 t, Euro VI A–C: NOx 0.264 g/km
            TruckEuroVIabc => (
                Copert::constant(0.264),
                Copert::constant(PM_HEAVY),
                F_NO2_HEAVY,
                FC_DIESEL_HDV,
                H_C_DIESEL,
            ),
            // GB2023 T2, HDV rigid 12–14 t, Euro VI D–E: NOx 0.198 g/km
            TruckEuroVIde => (
                Copert::constant(0.198),
                Copert::constant(PM_HEAVY),
                F_NO2_HEAVY,
                FC_DIESEL_HDV,
                H_C_DIESEL,
            ),
            // GB2023 T2, urban diesel bus 15–18 t, Euro VI A–C: NOx 1.343 g/km
            BusEuroVIabc => (
                Copert::constant(1.343),
                Copert::constant(PM_HEAVY),
                F_NO2_HEAVY,
                FC_DIESEL_BUS,
                H_C_DIESEL,
            ),
            // GB2023 T2, urban diesel bus 15–18 t, Euro VI D–E: NOx 1.263 g/km
            BusEuroVIde => (
                Copert::constant(1.263),
                Copert::constant(PM_HEAVY),
                F_NO2_HEAVY,
                FC_DIESEL_BUS,
                H_C_DIESEL,
            ),
        };
        Exhaust {
            nox,
            pm,
            f_no2,
            fc,
            h_c,
        }
    }

    /// The segment's emission factors (g/km per vehicle) at mean speed `speed_kmh` (clamped to each curve's range).
    pub fn factors(self, speed_kmh: f64) -> Factors {
        let ex = self.exhaust();
        let nox = ex.nox.ef(speed_kmh);
        let pm = ex.pm.ef(speed_kmh);
        let wear = NonExhaust::of(self.category()).pm(speed_kmh);
        Factors {
            nox,
            no2: ex.f_no2.clamp(0.0, 1.0) * nox,
            pm10_exhaust: pm,
            pm10_non_exhaust: wear.0,
            pm25_exhaust: pm,
            pm25_non_exhaust: wear.1,
            co2: co2_from_fuel(ex.fc, ex.h_c),
        }
    }
}

/// CO2 (g/km) from fuel consumption `fc` (g/km) of a fuel with H:C ratio `h_c` and no oxygen (module doc).
pub fn co2_from_fuel(fc: f64, h_c: f64) -> f64 {
    44.011 * fc / (12.011 + 1.008 * h_c)
}

// ---------------------------------------------------------------------------------------------------------------
// Non-exhaust factors, guidebook 1.A.3.b.vi–vii. Car and van TSP: 2023 guidebook (update 2025), Tables 3-4 (tyre),
// 3-6 (brake), 3-8 (road), as transcribed and checked in a public project's emission-factor notes (a Lausitz freight
// study found in the search index): medium ICE passenger car tyre 0.0107, brake 0.0142, road 0.0150 g/km; LCV N1-III
// tyre 0.0169, brake 0.0211, road 0.0210 g/km. (Another transcription of Table 3-6 gives 0.0122 for the brake wear of
// a medium car; the difference was not resolved.) Trucks and buses: the heavy-vehicle scaling of the module doc with
// the 2019 guidebook's passenger-car bases (tyre 0.0107, brake 0.0075) and road wear 0.0760 g/km, as implemented in
// gtfs2emis (`R/emi_europe_emep_wear.R`, citing the 2019 guidebook; its brake multiplier 1.956 was not checked against
// the chapter). The load corrections 1.41 + 1.38·LF and 1 + 0.79·LF are the chapter's equations (4) and (7). Mixing
// the editions makes a bus's brake wear only 1.4 times a car's; the 2023 heavy-vehicle values were not available.
// Mass fractions (Tables 3-5, 3-7, 3-9): tyre PM10 0.600, PM2.5 0.420; brake 0.980, 0.390; road 0.50, 0.27.
// ---------------------------------------------------------------------------------------------------------------

const TYRE_PM10: f64 = 0.600;
const TYRE_PM25: f64 = 0.420;
const BRAKE_PM10: f64 = 0.980;
const BRAKE_PM25: f64 = 0.390;
const ROAD_PM10: f64 = 0.50;
const ROAD_PM25: f64 = 0.27;
/// Guidebook default load factor of heavy vehicles.
const HEAVY_LOAD: f64 = 0.5;
/// Axles of a rigid 12–14 t truck and of a standard urban bus: 2 (gtfs2emis's axle table for standard buses; for the
/// truck an ASSUMPTION).
const HEAVY_AXLES: f64 = 2.0;

/// TSP factors (g/km) of tyre, brake and road wear of one category, before the speed correction.
struct NonExhaust {
    tyre: f64,
    brake: f64,
    road: f64,
}

impl NonExhaust {
    fn of(c: Category) -> NonExhaust {
        match c {
            Category::Car => NonExhaust {
                tyre: 0.0107,
                brake: 0.0142,
                road: 0.0150,
            },
            Category::Van => NonExhaust {
                tyre: 0.0169,
                brake: 0.0211,
                road: 0.0210,
            },
            Category::Truck | Category::Bus => NonExhaust {
                tyre: HEAVY_AXLES / 2.0 * (1.41 + 1.38 * HEAVY_LOAD) * 0.0107,
                brake: 1.956 * (1.0 + 0.79 * HEAVY_LOAD) * 0.0075,
                road: 0.0760,
            },
        }
    }

    /// (PM10, PM2.5) in g/km at mean speed `v`.
    fn pm(&self, v: f64) -> (f64, f64) {
        let (st, sb) = (tyre_speed_correction(v), brake_speed_correction(v));
        let pm10 =
            self.tyre * TYRE_PM10 * st + self.brake * BRAKE_PM10 * sb + self.road * ROAD_PM10;
        let pm25 =
            self.tyre * TYRE_PM25 * st + self.brake * BRAKE_PM25 * sb + self.road * ROAD_PM25;
        (pm10, pm25)
    }
}

/// Tyre wear speed correction `S_tyre(V)` (guidebook 1.A.3.b.vi, module doc).
pub fn tyre_speed_correction(v: f64) -> f64 {
    if v.is_nan() || v < 40.0 {
        1.39
    } else if v <= 90.0 {
        -0.00974 * v + 1.78
    } else {
        0.902
    }
}

/// Brake wear speed correction `S_brake(V)` (guidebook 1.A.3.b.vi, module doc).
pub fn brake_speed_correction(v: f64) -> f64 {
    if v.is_nan() || v < 40.0 {
        1.67
    } else if v <= 95.0 {
        -0.0270 * v + 2.75
    } else {
        0.185
    }
}

/// The vehicles of a flow: shares of the categories and, within each, of fuels and Euro classes.
///
/// Category shares are relative (they are divided by their sum, which must be positive); the within-category shares
/// are fractions in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FleetMix {
    /// Share of passenger cars.
    pub car: f64,
    /// Share of vans.
    pub van: f64,
    /// Share of trucks.
    pub truck: f64,
    /// Share of urban buses.
    pub bus: f64,
    /// Share of diesel among cars (the rest petrol).
    pub car_diesel: f64,
    /// Share of Euro 6d among diesel cars (the rest Euro 6 a/b/c).
    pub car_diesel_euro6d: f64,
    /// Share of Euro 6d among vans (the rest Euro 6 a/b/c).
    pub van_euro6d: f64,
    /// Share of Euro VI D/E among trucks (the rest Euro VI A/B/C).
    pub truck_euro_vi_de: f64,
    /// Share of Euro VI D/E among buses (the rest Euro VI A/B/C).
    pub bus_euro_vi_de: f64,
}

impl Default for FleetMix {
    /// ASSUMPTION, not a published fleet: a recent EU urban flow of 85 % cars, 10 % vans, 3 % trucks, 2 % buses; 35 %
    /// of cars diesel (the EU car stock was about two fifths diesel in the early 2020s by ACEA's "Vehicles on European
    /// roads" reports, recalled and not re-checked here; falling, and assumed a little lower in city traffic); half of
    /// each diesel and heavy category in the newest Euro sub-stage. All vehicles are Euro 6/VI, so NOx is lower than a real
    /// fleet with Euro 4/5 vehicles still on the road. Replace it with local counts and registration statistics.
    fn default() -> FleetMix {
        FleetMix {
            car: 0.85,
            van: 0.10,
            truck: 0.03,
            bus: 0.02,
            car_diesel: 0.35,
            car_diesel_euro6d: 0.5,
            van_euro6d: 0.5,
            truck_euro_vi_de: 0.5,
            bus_euro_vi_de: 0.5,
        }
    }
}

impl FleetMix {
    /// A fleet of one category, its within-category shares as in the default.
    pub fn only(category: Category) -> FleetMix {
        let mut m = FleetMix {
            car: 0.0,
            van: 0.0,
            truck: 0.0,
            bus: 0.0,
            ..FleetMix::default()
        };
        match category {
            Category::Car => m.car = 1.0,
            Category::Van => m.van = 1.0,
            Category::Truck => m.truck = 1.0,
            Category::Bus => m.bus = 1.0,
        }
        m
    }

    /// The share of each segment in the flow (summing to 1), or why the mix is invalid.
    pub fn segment_shares(&self) -> Result<[(Segment, f64); 9], EmissionError> {
        let cats = [
            ("car", self.car),
            ("van", self.van),
            ("truck", self.truck),
            ("bus", self.bus),
        ];
        for (name, s) in cats {
            if !s.is_finite() || s < 0.0 {
                return Err(EmissionError::Fleet(format!(
                    "{name} share must be finite and ≥ 0, got {s}"
                )));
            }
        }
        let sum: f64 = cats.iter().map(|c| c.1).sum();
        if sum <= 0.0 || !sum.is_finite() {
            return Err(EmissionError::Fleet(
                "category shares must sum to more than 0".into(),
            ));
        }
        let fractions = [
            ("car_diesel", self.car_diesel),
            ("car_diesel_euro6d", self.car_diesel_euro6d),
            ("van_euro6d", self.van_euro6d),
            ("truck_euro_vi_de", self.truck_euro_vi_de),
            ("bus_euro_vi_de", self.bus_euro_vi_de),
        ];
        for (name, f) in fractions {
            if !(0.0..=1.0).contains(&f) {
                return Err(EmissionError::Fleet(format!(
                    "{name} must be in [0, 1], got {f}"
                )));
            }
        }
        let (car, van, truck, bus) = (
            self.car / sum,
            self.van / sum,
            self.truck / sum,
            self.bus / sum,
        );
        let diesel = car * self.car_diesel;
        Ok([
            (Segment::PetrolCarEuro6, car * (1.0 - self.car_diesel)),
            (
                Segment::DieselCarEuro6abc,
                diesel * (1.0 - self.car_diesel_euro6d),
            ),
            (Segment::DieselCarEuro6d, diesel * self.car_diesel_euro6d),
            (Segment::DieselVanEuro6abc, van * (1.0 - self.van_euro6d)),
            (Segment::DieselVanEuro6d, van * self.van_euro6d),
            (
                Segment::TruckEuroVIabc,
                truck * (1.0 - self.truck_euro_vi_de),
            ),
            (Segment::TruckEuroVIde, truck * self.truck_euro_vi_de),
            (Segment::BusEuroVIabc, bus * (1.0 - self.bus_euro_vi_de)),
            (Segment::BusEuroVIde, bus * self.bus_euro_vi_de),
        ])
    }
}

fn check_speed(speed_kmh: f64) -> Result<(), EmissionError> {
    if speed_kmh.is_finite() && speed_kmh >= 0.0 {
        Ok(())
    } else {
        Err(EmissionError::Speed(speed_kmh))
    }
}

/// Mean speed (km/h) of a link of `length_m` metres travelled in `travel_time_s` seconds: `3.6 · length / time`.
/// A negative or non-finite length, or a travel time that is not a positive finite number, is an error.
pub fn mean_speed_kmh(length_m: f64, travel_time_s: f64) -> Result<f64, EmissionError> {
    if !length_m.is_finite() || length_m < 0.0 {
        return Err(EmissionError::Length(length_m));
    }
    if !travel_time_s.is_finite() || travel_time_s <= 0.0 {
        return Err(EmissionError::TravelTime(travel_time_s));
    }
    Ok(3.6 * length_m / travel_time_s)
}

/// Fleet-weighted emission factors (g/km per vehicle of the flow) at mean speed `speed_kmh`.
///
/// A speed below a curve's range (0 included, a jammed link) is evaluated at the curve's lowest speed, above it at its
/// highest. A negative or non-finite speed, or an invalid mix, is an error.
pub fn factors(speed_kmh: f64, fleet: &FleetMix) -> Result<Factors, EmissionError> {
    check_speed(speed_kmh)?;
    let mut f = Factors::default();
    for (segment, share) in fleet.segment_shares()? {
        if share > 0.0 {
            f.add(&segment.factors(speed_kmh).scaled(share));
        }
    }
    Ok(f)
}

/// A link's line-source strength, µg per metre of link per second, per pollutant.
pub type LinkEmission = Pollutants;

impl Pollutants {
    /// The line-source strength of `flow_vph` vehicles per hour emitting `f` g/km each: `flow · f / 3.6` µg/(m·s).
    pub fn from_factors(flow_vph: f64, f: &Factors) -> LinkEmission {
        f.scaled(flow_vph / 3.6)
    }
}

/// The line-source strength (µg/(m·s)) of a link carrying `flow_vph` vehicles per hour at mean speed `speed_kmh`
/// (its length divided by its travel time). Zero flow gives zero; a negative or non-finite flow or speed is an error
/// (speeds are otherwise handled as in [`factors`]).
pub fn link_emission(
    flow_vph: f64,
    speed_kmh: f64,
    fleet: &FleetMix,
) -> Result<LinkEmission, EmissionError> {
    if !flow_vph.is_finite() || flow_vph < 0.0 {
        return Err(EmissionError::Flow(flow_vph));
    }
    let f = factors(speed_kmh, fleet)?;
    Ok(LinkEmission::from_factors(flow_vph, &f))
}

/// Emissions of a set of links, grams per hour per pollutant (× 24 / 1000 for kg/day if the hour held all day).
pub type Totals = Pollutants;

/// Total emissions (g/h) of links given as (line-source strength, length in metres): Σ q · length · 3600 / 10⁶.
/// A negative or non-finite length is an error.
pub fn total(links: &[(LinkEmission, f64)]) -> Result<Totals, EmissionError> {
    let mut t = Totals::default();
    for (q, len) in links {
        if !len.is_finite() || *len < 0.0 {
            return Err(EmissionError::Length(*len));
        }
        // µg/(m·s) · m = µg/s; · 3600 s/h / 10⁶ µg/g = g/h
        t.add(&q.scaled(len * 3600.0 / 1e6));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn copert_diesel_car_nox_by_hand() {
        // V = 20: numerator 6.67136e-5·400 − 0.011381467·20 + 0.945951727 + 1.923608149/20
        //   = 0.02668544 − 0.22762934 + 0.945951727 + 0.09618040745 = 0.84118823445
        // denominator −5.15046e-5·400 + 0.004264272·20 + 1 = −0.02060184 + 0.08528544 + 1 = 1.0646836
        let num: f64 = 0.02668544 - 0.22762934 + 0.945951727 + 0.09618040745;
        let den: f64 = -0.02060184 + 0.08528544 + 1.0;
        let by_hand = num / den * (1.0 - 0.176306450219664);
        assert!(close(DIESEL_CAR_6ABC_NOX.ef(20.0), by_hand, 1e-10));
        assert!(close(by_hand, 0.650786, 1e-5), "{by_hand}");
        // V = 50: 6.67136e-5·2500 − 0.011381467·50 + 0.945951727 + 1.923608149/50
        //   = 0.166784 − 0.56907335 + 0.945951727 + 0.03847216298 = 0.58213453998
        // denominator −5.15046e-5·2500 + 0.004264272·50 + 1 = −0.1287615 + 0.2132136 + 1 = 1.0844521
        let num: f64 = 0.166784 - 0.56907335 + 0.945951727 + 0.03847216298;
        let den: f64 = -0.1287615 + 0.2132136 + 1.0;
        let by_hand = num / den * (1.0 - 0.176306450219664);
        assert!(close(DIESEL_CAR_6ABC_NOX.ef(50.0), by_hand, 1e-10));
    }

    #[test]
    fn copert_diesel_car_pm_by_hand() {
        // V = 30: numerator 0.000467299306307736·900 + 0.0664094975805683·30 − 0.325010592710707 + 0.960762635129021/30
        let num = 0.000467299306307736 * 900.0 + 0.0664094975805683 * 30.0 - 0.325010592710707
            + 0.960762635129021 / 30.0;
        // = 0.42056937568 + 1.99228492742 − 0.32501059271 + 0.03202542117 = 2.11986913156
        assert!(close(num, 2.11986913156, 1e-9));
        // denominator 1.13723865568225·900 + 0.54617955489948·30 + 0.289633151649954
        //   = 1023.51479011 + 16.38538665 + 0.28963315 = 1040.18980991
        let den = 1.13723865568225 * 900.0 + 0.54617955489948 * 30.0 + 0.289633151649954;
        assert!(close(den, 1040.18980991, 1e-9));
        assert!(close(DIESEL_CAR_6ABC_PM.ef(30.0), num / den, 1e-12));
        assert!(close(num / den, 0.00203796, 1e-4));
    }

    #[test]
    fn copert_petrol_car_nox_by_hand() {
        // (A + C·V + E·V² + Z/V) / (1 + B·V + D·V²), A…Z the annex row's Alpha…Zita, RF 0.
        // V = 20: numerator 0.474232144011732 + 0.34057776316908·20 − 0.00151582670291725·400 − 1.19108669518198/20
        //   = 0.474232144011732 + 6.8115552633816 − 0.6063306811669 − 0.0595543347590990 = 6.619902391467333
        // denominator 1 + 5.62174646182347·20 + 0.0837628818222108·400 = 1 + 112.4349292364694 + 33.50515272888432
        //   = 146.9400819653537 → 0.0450517 g/km
        let num: f64 = 0.474232144011732 + 6.8115552633816 - 0.6063306811669 - 0.059554334759099;
        let den: f64 = 1.0 + 112.4349292364694 + 33.50515272888432;
        assert!(close(num, 6.619902391467333, 1e-12));
        assert!(close(den, 146.9400819653537, 1e-12));
        assert!(close(PETROL_CAR_6_NOX.ef(20.0), num / den, 1e-12));
        assert!(close(num / den, 0.0450517, 1e-5), "{}", num / den);
        // V = 50: 0.474232144011732 + 17.028888158454 − 3.789566757293125 − 0.0238217339036396 = 13.689731811268967
        // over 1 + 281.0873230911735 + 209.407204555527 = 491.4945276467005 → 0.0278533 g/km
        let num: f64 = 0.474232144011732 + 17.028888158454 - 3.789566757293125 - 0.0238217339036396;
        let den: f64 = 1.0 + 281.0873230911735 + 209.407204555527;
        assert!(close(PETROL_CAR_6_NOX.ef(50.0), num / den, 1e-12));
        assert!(close(num / den, 0.0278533, 1e-5), "{}", num / den);
        // the segment uses it
        assert_eq!(
            Segment::PetrolCarEuro6.factors(50.0).nox,
            PETROL_CAR_6_NOX.ef(50.0)
        );
    }

    #[test]
    fn petrol_car_nox_is_clamped_and_continuous_at_its_range_ends() {
        let c = PETROL_CAR_6_NOX;
        // V = 5: (0.474232144011732 + 1.7028888158454 − 0.0378956675729313 − 0.238217339036396)
        //   / (1 + 28.10873230911735 + 2.09407204555527) = 1.9010079532478 / 31.2028043546726 = 0.0609243
        let at5 = (0.474232144011732 + 1.7028888158454 - 0.0378956675729313 - 0.238217339036396)
            / (1.0 + 28.10873230911735 + 2.09407204555527);
        assert!(close(c.ef(5.0), at5, 1e-12));
        assert!(close(at5, 0.0609243, 1e-5), "{at5}");
        assert_eq!(c.ef(0.0), c.ef(5.0));
        assert_eq!(c.ef(2.0), c.ef(5.0));
        assert!((c.ef(5.0001) - c.ef(5.0)).abs() < 1e-5);
        // V = 130: 19.12270787134305 / 2147.4197428324137 = 0.00890497
        assert!(close(c.ef(130.0), 0.00890497, 1e-5), "{}", c.ef(130.0));
        assert_eq!(c.ef(200.0), c.ef(130.0));
        assert!((c.ef(129.9999) - c.ef(130.0)).abs() < 1e-6);
        // positive, and lower in fluid than in slow traffic, over the whole range
        let mut last = f64::INFINITY;
        for v in [5.0, 10.0, 20.0, 30.0, 50.0, 70.0, 100.0, 130.0] {
            let ef = c.ef(v);
            assert!(ef > 0.0 && ef < last, "{v} {ef}");
            last = ef;
        }
    }

    #[test]
    fn constant_curve_is_its_value() {
        // a Tier 2 factor: (0 + 0 + 0.264 + 0) / (0 + 0 + 1) · (1 − 0) = 0.264 at any speed
        for v in [1.0, 20.0, 50.0, 300.0] {
            assert_eq!(Copert::constant(0.264).ef(v), 0.264);
        }
    }

    #[test]
    fn speeds_outside_the_range_are_clamped() {
        let c = DIESEL_CAR_6ABC_NOX;
        assert_eq!(c.ef(0.0), c.ef(10.0));
        assert_eq!(c.ef(3.0), c.ef(10.0));
        assert_eq!(c.ef(200.0), c.ef(130.0));
        assert_eq!(c.ef(f64::NAN), c.ef(10.0));
        let f0 = factors(0.0, &FleetMix::default()).unwrap();
        assert!(f0.nox.is_finite() && f0.nox > 0.0);
    }

    #[test]
    fn diesel_car_nox_is_higher_in_slow_traffic() {
        let slow = Segment::DieselCarEuro6abc.factors(20.0).nox;
        let fluid = Segment::DieselCarEuro6abc.factors(50.0).nox;
        assert!(slow > fluid, "{slow} vs {fluid}");
    }

    #[test]
    fn fleet_of_one_segment_equals_the_segment() {
        // all cars diesel Euro 6 a/b/c
        let fleet = FleetMix {
            car_diesel: 1.0,
            car_diesel_euro6d: 0.0,
            ..FleetMix::only(Category::Car)
        };
        let f = factors(35.0, &fleet).unwrap();
        assert_eq!(f, Segment::DieselCarEuro6abc.factors(35.0));
        // all buses Euro VI D/E
        let fleet = FleetMix {
            bus_euro_vi_de: 1.0,
            ..FleetMix::only(Category::Bus)
        };
        assert_eq!(
            factors(20.0, &fleet).unwrap(),
            Segment::BusEuroVIde.factors(20.0)
        );
    }

    #[test]
    fn half_and_half_is_the_mean() {
        let mix = FleetMix {
            car: 1.0,
            van: 1.0, // relative shares: 50/50
            truck: 0.0,
            bus: 0.0,
            car_diesel: 1.0,
            car_diesel_euro6d: 0.0,
            van_euro6d: 1.0,
            ..FleetMix::default()
        };
        let f = factors(30.0, &mix).unwrap();
        let a = Segment::DieselCarEuro6abc.factors(30.0);
        let b = Segment::DieselVanEuro6d.factors(30.0);
        assert!(close(f.nox, (a.nox + b.nox) / 2.0, 1e-12));
        assert!(close(f.no2, (a.no2 + b.no2) / 2.0, 1e-12));
        assert!(close(
            f.pm10_non_exhaust,
            (a.pm10_non_exhaust + b.pm10_non_exhaust) / 2.0,
            1e-12
        ));
        assert!(close(f.co2, (a.co2 + b.co2) / 2.0, 1e-12));
    }

    #[test]
    fn link_strength_by_hand() {
        // 1200 veh/h of petrol cars at 50 km/h. NOx (Tier 3 curve at 50 km/h, see copert_petrol_car_nox_by_hand)
        //   13.689731811268967 / 491.4945276467005 = 0.0278533 g/km
        //   → 1200/3600 veh/s · 0.0278533 g/km · 10⁶ µg/g / 1000 m/km = 0.3333… · 27.8533 = 9.28442 µg/(m·s)
        let fleet = FleetMix {
            car_diesel: 0.0,
            ..FleetMix::only(Category::Car)
        };
        let q = link_emission(1200.0, 50.0, &fleet).unwrap();
        let nox_g_km = 13.689731811268967 / 491.4945276467005;
        assert!(close(
            q.nox,
            1200.0 / 3600.0 * nox_g_km * 1e6 / 1000.0,
            1e-12
        ));
        assert!(close(q.nox, 9.28442, 1e-5), "{}", q.nox);
        // NO2 = 3 % of it
        assert!(close(q.no2, 0.03 * 9.28442, 1e-5));
        // CO2: 61.9 g/km · 44.011 / (12.011 + 1.008 · 1.80) = 61.9 · 3.183344 = 197.049 g/km → · 1/3.6 · 1200
        let co2_g_km = 61.9 * 44.011 / (12.011 + 1.008 * 1.80);
        assert!(close(co2_g_km, 197.049, 1e-5), "{co2_g_km}");
        assert!(close(q.co2, 1200.0 * co2_g_km / 3.6, 1e-12));
        // non-exhaust PM10 at 50 km/h: tyre 0.0107 · 0.6 · (−0.00974·50 + 1.78 = 1.293)
        //   + brake 0.0142 · 0.98 · (−0.027·50 + 2.75 = 1.40) + road 0.0150 · 0.5
        //   = 0.00830106 + 0.0194824 + 0.0075 = 0.03528346 g/km
        let pm10 = 0.0107 * 0.6 * 1.293 + 0.0142 * 0.98 * 1.40 + 0.0150 * 0.5;
        assert!(close(pm10, 0.03528346, 1e-9));
        assert!(close(q.pm10_non_exhaust, 1200.0 * pm10 / 3.6, 1e-9));
    }

    #[test]
    fn mean_speed_from_length_and_time() {
        // 500 m in 60 s: 3.6 · 500 / 60 = 30 km/h
        assert!(close(mean_speed_kmh(500.0, 60.0).unwrap(), 30.0, 1e-12));
        assert!(matches!(
            mean_speed_kmh(500.0, 0.0),
            Err(EmissionError::TravelTime(_))
        ));
        assert!(matches!(
            mean_speed_kmh(500.0, f64::INFINITY),
            Err(EmissionError::TravelTime(_))
        ));
        assert!(matches!(
            mean_speed_kmh(-1.0, 10.0),
            Err(EmissionError::Length(_))
        ));
    }

    #[test]
    fn zero_flow_gives_zero() {
        let q = link_emission(0.0, 30.0, &FleetMix::default()).unwrap();
        assert_eq!(q, LinkEmission::default());
    }

    #[test]
    fn invalid_inputs_are_errors_not_nan() {
        let m = FleetMix::default();
        assert_eq!(
            link_emission(-1.0, 30.0, &m),
            Err(EmissionError::Flow(-1.0))
        );
        assert!(matches!(
            link_emission(f64::NAN, 30.0, &m),
            Err(EmissionError::Flow(_))
        ));
        assert!(matches!(
            link_emission(f64::INFINITY, 30.0, &m),
            Err(EmissionError::Flow(_))
        ));
        assert!(matches!(
            link_emission(100.0, -5.0, &m),
            Err(EmissionError::Speed(_))
        ));
        assert!(matches!(
            link_emission(100.0, f64::NAN, &m),
            Err(EmissionError::Speed(_))
        ));
        assert!(matches!(
            link_emission(100.0, f64::INFINITY, &m),
            Err(EmissionError::Speed(_))
        ));
        let bad = FleetMix {
            car_diesel: 1.5,
            ..m
        };
        assert!(matches!(factors(30.0, &bad), Err(EmissionError::Fleet(_))));
        let empty = FleetMix {
            car: 0.0,
            van: 0.0,
            truck: 0.0,
            bus: 0.0,
            ..m
        };
        assert!(matches!(
            factors(30.0, &empty),
            Err(EmissionError::Fleet(_))
        ));
        let nan = FleetMix { van: f64::NAN, ..m };
        assert!(matches!(factors(30.0, &nan), Err(EmissionError::Fleet(_))));
        assert!(matches!(
            total(&[(LinkEmission::default(), -1.0)]),
            Err(EmissionError::Length(_))
        ));
    }

    #[test]
    fn totals_are_the_sum_over_links() {
        let m = FleetMix::default();
        let a = link_emission(800.0, 25.0, &m).unwrap();
        let b = link_emission(1500.0, 60.0, &m).unwrap();
        let t = total(&[(a, 120.0), (b, 450.0)]).unwrap();
        let ta = total(&[(a, 120.0)]).unwrap();
        let tb = total(&[(b, 450.0)]).unwrap();
        assert!(close(t.nox, ta.nox + tb.nox, 1e-12));
        assert!(close(t.co2, ta.co2 + tb.co2, 1e-12));
        assert!(close(
            t.pm25_non_exhaust,
            ta.pm25_non_exhaust + tb.pm25_non_exhaust,
            1e-12
        ));
        // g/h by hand: q [µg/(m·s)] · 120 m · 3600 s/h / 10⁶
        assert!(close(ta.nox, a.nox * 120.0 * 3600.0 / 1e6, 1e-12));
        assert_eq!(total(&[]).unwrap(), Totals::default());
    }

    #[test]
    fn no2_within_nox_and_pm25_within_pm10() {
        let mixes = [
            FleetMix::default(),
            FleetMix::only(Category::Van),
            FleetMix::only(Category::Truck),
            FleetMix::only(Category::Bus),
        ];
        for m in &mixes {
            for v in [0.0, 5.0, 15.0, 30.0, 45.0, 70.0, 92.0, 100.0, 140.0] {
                let f = factors(v, m).unwrap();
                assert!(f.no2 <= f.nox, "{v} {f:?}");
                assert!(f.pm25_exhaust <= f.pm10_exhaust);
                assert!(f.pm25_non_exhaust <= f.pm10_non_exhaust);
                for x in [
                    f.nox,
                    f.no2,
                    f.pm10_exhaust,
                    f.pm10_non_exhaust,
                    f.pm25_exhaust,
                    f.pm25_non_exhaust,
                    f.co2,
                ] {
                    assert!(x.is_finite() && x >= 0.0);
                }
            }
        }
    }

    #[test]
    fn heavy_vehicles_wear_more_than_cars() {
        let car = Segment::PetrolCarEuro6.factors(30.0).pm10_non_exhaust;
        let bus = Segment::BusEuroVIabc.factors(30.0).pm10_non_exhaust;
        assert!(bus > 2.0 * car, "{bus} vs {car}");
    }

    #[test]
    fn speed_corrections_are_continuous() {
        assert!(close(tyre_speed_correction(90.0), 0.9034, 1e-9));
        assert!((tyre_speed_correction(90.0) - tyre_speed_correction(90.0001)).abs() < 0.002);
        assert!(close(brake_speed_correction(95.0), 0.185, 1e-9));
        assert!((tyre_speed_correction(39.999) - tyre_speed_correction(40.0)).abs() < 0.003);
        assert!((brake_speed_correction(39.999) - brake_speed_correction(40.0)).abs() < 0.003);
    }

    #[test]
    fn results_serialise() {
        let q = link_emission(500.0, 30.0, &FleetMix::default()).unwrap();
        let s = serde_json::to_string(&q).unwrap();
        assert!(s.contains("\"pm25NonExhaust\""));
        let t = total(&[(q, 100.0)]).unwrap();
        assert!(serde_json::to_string(&t).unwrap().contains("\"co2\""));
    }
}
