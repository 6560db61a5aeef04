//! Road-traffic noise (CNOSSOS-EU): from a link's flows and mean speed to its sound power per metre, the level at a
//! home's façade, the END indicators L_day, L_evening, L_night and L_den, and the residents above the thresholds.
//!
//! **Emission** (CNOSSOS-EU road traffic source model, Commission Directive (EU) 2015/996, Annex II, section 2.2, with
//! the coefficients of Appendix F Table F-1 as replaced by Commission Delegated Directive (EU) 2021/1226). For a vehicle
//! of category `m` at speed `v` (km/h) and in octave band `i` (63 Hz … 8 kHz), rolling and propulsion noise are
//!
//! ```text
//! L_WR,i,m = A_R,i,m + B_R,i,m · lg(v / v_ref) + ΔL_WR,temp,m          v_ref = 70 km/h
//! L_WP,i,m = A_P,i,m + B_P,i,m · (v − v_ref) / v_ref
//! L_W,i,m  = 10 · lg(10^(L_WR,i,m/10) + 10^(L_WP,i,m/10))
//! ```
//!
//! and a steady flow of `Q_m` vehicles/hour at `v` km/h is a line source of directional sound power per metre
//!
//! ```text
//! L_W′,i   = 10 · lg Σ_m 10^((L_W,i,m + 10 · lg(Q_m / (1000 · v))) / 10)
//! L_W′,A   = 10 · lg Σ_i 10^((L_W′,i + A_i) / 10)                       A_i: A-weighting of band i
//! ```
//!
//! Corrections included: air temperature on rolling noise (section 2.2.3), `ΔL_WR,temp = K_m · (τ_ref − τ)` with
//! τ_ref = 20 °C, K = 0.08 dB/°C for category 1 and 0.04 dB/°C for categories 2 and 3 (zero at the default 20 °C).
//! Corrections **not** included (each is zero on the reference case): road surface (Table F-4; the model is on the
//! CNOSSOS-EU reference surface, an average of dense asphalt concrete 0/11 and stone mastic asphalt 0/11, 2 to 7 years
//! old), studded tyres, road gradient and acceleration near junctions (Table F-3). Categories 4a (mopeds) and 4b
//! (motorcycles) have no rolling term in Table F-1 (A_R = B_R = 0 there): they are modelled as propulsion noise only.
//! CNOSSOS-EU is valid from 20 to 130 km/h; the emission formulas are evaluated at the speed clamped into that range
//! (below 20 km/h the value at 20 km/h, as section 2.2.2 is transcribed in public implementations; above 130 km/h the
//! value at 130 km/h, a choice of this module), while the vehicle density `Q/(1000·v)` uses the real speed.
//!
//! **Propagation** (simple, not CNOSSOS-EU's section 2.5 path model). A long straight road over flat open ground is an
//! infinite line source; at a distance `d` (m) from it, cylindrical spreading gives
//!
//! ```text
//! L = L_W′,A − 10 · lg(2π · d) + ΔL_ground + ΔL_façade
//! ```
//!
//! so the level falls by 3.01 dB per doubling of distance. `ΔL_ground` = +3 dB ([`HARD_GROUND_DB`]): a city street is
//! hard ground (G = 0), whose mirror image doubles the sound energy; it is the same value as the lower bound
//! −3·(1 − G_path) dB of CNOSSOS-EU's ground attenuation in homogeneous conditions (section 2.5.6). `ΔL_façade` = +3 dB
//! ([`FACADE_REFLECTION_DB`]) only when asked: a point just in front of a wall also receives the wall's reflection.
//! END strategic maps use the *incident* level (Directive 2002/49/EC Annex I: the sound reflected by the façade of the
//! dwelling itself is disregarded), so `facade = false` is the setting for END indicators and exposure counts.
//! Neglected: air absorption (about 5 dB/km at 1 kHz and 10 dB/km at 2 kHz, ISO 9613-1 at 20 °C and 70 % humidity, so
//! under 1 dB on the A-weighted level within 100 m), screening by buildings, the finite length of real roads, soft
//! ground and meteorology (favourable propagation conditions, which raise night levels far from the road).
//!
//! **Indicators** (Directive 2002/49/EC Annex I): L_day over 07–19 h, L_evening over 19–23 h, L_night over 23–07 h, each
//! the level of that period's mean hourly flow, and
//!
//! ```text
//! L_den = 10 · lg((12 · 10^(L_day/10) + 4 · 10^((L_evening + 5)/10) + 8 · 10^((L_night + 10)/10)) / 24)
//! ```
//!
//! A daily flow is split into the three periods by [`DailySplit`]; its default shares are an `ASSUMPTION`.
//!
//! **Exposure**: residents at or above the END reporting thresholds (L_den ≥ 55 dB, L_night ≥ 50 dB, Directive
//! 2002/49/EC Annex VI) and the WHO guideline values for road traffic noise (L_den 53 dB, L_night 45 dB, WHO
//! Environmental Noise Guidelines for the European Region, 2018), see [`exposure`].
//!
//! **Silence and bad inputs.** A road with no traffic makes no sound: its level is `f64::NEG_INFINITY` (−∞ dB), which
//! every function here accepts and passes on (−∞ + anything finite stays −∞, an energetic sum ignores it); no function
//! returns NaN. Negative or non-finite flows, speeds, distances and residents, and NaN or +∞ levels, are errors
//! ([`NoiseError`]); nothing panics.
//!
//! **Where the numbers come from.** The Official Journal text could not be read for this module. Table F-1 (2021/1226)
//! was taken from two independent public transcriptions that agree to every digit for all five categories: the
//! NoiseModelling project (Université Gustave Eiffel), file
//! `noisemodelling-emission/src/main/resources/org/noise_planet/noisemodelling/emission/road/cnossos/RoadCnossos_2020.json`
//! (commit 7b4ccd7a, labelled "Updated Cnossos coefficients (amendments 2020)"), and the Python package
//! `jmrplens/phonometry` (its table transcribed "from the Official Journal text of … (EU) 2021/1226, Annex point (19)(a)
//! (OJ L 269, 28.7.2021, pp. 96–99)"); further copies in other public CNOSSOS-EU codes match. The same NoiseModelling
//! directory keeps the superseded 2015/996 table (`RoadCnossos_2015.json`), whose A_R and A_P are 1–5 dB lower: those
//! are **not** used. The octave A-weighting (section 2.5.5 as amended by 2021/1226) and the temperature coefficients K
//! (section 2.2.3) come from the same `phonometry` transcription; the A-weighting values are also the IEC 61672-1
//! octave values rounded to 0.1 dB.

use serde::{Deserialize, Serialize};

/// Number of octave bands of the road source model, 63 Hz to 8 kHz.
pub const BANDS: usize = 8;

/// Centre frequencies (Hz) of the octave bands of the road source model.
pub const OCTAVE_BANDS_HZ: [f64; BANDS] =
    [63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0];

/// A-weighting (dB) of each octave band, CNOSSOS-EU section 2.5.5 as amended by (EU) 2021/1226.
pub const A_WEIGHTING_DB: [f64; BANDS] = [-26.2, -16.1, -8.6, -3.2, 0.0, 1.2, 1.0, -1.1];

/// Reference speed `v_ref` (km/h) of the emission formulas.
pub const V_REF_KMH: f64 = 70.0;

/// Speed range (km/h) in which CNOSSOS-EU's emission formulas are valid; speeds outside it are clamped into it for the
/// emission (not for the vehicle density).
pub const SPEED_RANGE_KMH: (f64, f64) = (20.0, 130.0);

/// Reference air temperature τ_ref (°C) of the rolling-noise temperature correction.
pub const REFERENCE_AIR_TEMPERATURE_C: f64 = 20.0;

/// Gain (dB) from the reflection on a hard street surface, added by [`level_at`]; see the module doc.
pub const HARD_GROUND_DB: f64 = 3.0;

/// Gain (dB) from the reflection on the receiving façade, added by [`level_at`] when `facade` is true.
pub const FACADE_REFLECTION_DB: f64 = 3.0;

/// END reporting threshold for L_den (dB), Directive 2002/49/EC Annex VI.
pub const END_LDEN_DB: f64 = 55.0;
/// END reporting threshold for L_night (dB), Directive 2002/49/EC Annex VI.
pub const END_LNIGHT_DB: f64 = 50.0;
/// WHO 2018 guideline value for road traffic noise, L_den (dB).
pub const WHO_LDEN_DB: f64 = 53.0;
/// WHO 2018 guideline value for road traffic noise, L_night (dB).
pub const WHO_LNIGHT_DB: f64 = 45.0;

/// An input the noise model cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoiseError {
    /// A flow, speed, distance, share or resident count that is negative, NaN or infinite (or zero where that is
    /// meaningless, e.g. a distance).
    #[error("{what} must be {expected}, got {value}")]
    Invalid {
        /// Which input.
        what: &'static str,
        /// What it must be.
        expected: &'static str,
        /// The value given.
        value: f64,
    },
}

fn invalid(what: &'static str, expected: &'static str, value: f64) -> NoiseError {
    NoiseError::Invalid {
        what,
        expected,
        value,
    }
}

/// Checks a sound level: finite or −∞ (silence); NaN and +∞ are errors.
fn check_level(what: &'static str, level: f64) -> Result<f64, NoiseError> {
    if level.is_nan() || level == f64::INFINITY {
        Err(invalid(what, "a finite level in dB or −∞ (silence)", level))
    } else {
        Ok(level)
    }
}

fn check_non_negative(what: &'static str, x: f64) -> Result<f64, NoiseError> {
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(invalid(what, "finite and ≥ 0", x))
    }
}

/// A CNOSSOS-EU road vehicle category (Directive (EU) 2015/996, Annex II, Table 2.2.a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VehicleCategory {
    /// Category 1: light motor vehicles (passenger cars, delivery vans ≤ 3.5 t, SUVs, MPVs, with trailers).
    Light,
    /// Category 2: medium heavy vehicles (> 3.5 t, buses, motorhomes; two axles with twin tyres on the rear axle).
    MediumHeavy,
    /// Category 3: heavy duty vehicles (> 3.5 t, three or more axles).
    Heavy,
    /// Category 4a: two-, three- and four-wheel mopeds (up to 50 cm³).
    Moped,
    /// Category 4b: motorcycles (above 50 cm³).
    Motorcycle,
}

impl VehicleCategory {
    /// All categories, in the order 1, 2, 3, 4a, 4b.
    pub const ALL: [VehicleCategory; 5] = [
        VehicleCategory::Light,
        VehicleCategory::MediumHeavy,
        VehicleCategory::Heavy,
        VehicleCategory::Moped,
        VehicleCategory::Motorcycle,
    ];

    /// This category's row of Table F-1.
    pub fn coefficients(self) -> &'static Coefficients {
        match self {
            VehicleCategory::Light => &LIGHT,
            VehicleCategory::MediumHeavy => &MEDIUM_HEAVY,
            VehicleCategory::Heavy => &HEAVY,
            VehicleCategory::Moped => &MOPED,
            VehicleCategory::Motorcycle => &MOTORCYCLE,
        }
    }

    /// Temperature coefficient K_m (dB/°C) of the rolling-noise correction (section 2.2.3): 0.08 for category 1, 0.04
    /// for categories 2 and 3, 0 for two-wheelers (no rolling term).
    pub fn temperature_coefficient(self) -> f64 {
        match self {
            VehicleCategory::Light => 0.08,
            VehicleCategory::MediumHeavy | VehicleCategory::Heavy => 0.04,
            VehicleCategory::Moped | VehicleCategory::Motorcycle => 0.0,
        }
    }
}

/// One category's emission coefficients (dB) per octave band, Table F-1 of (EU) 2021/1226.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    /// Rolling noise at v_ref, A_R; `None` for two-wheelers (no rolling term).
    pub a_r: Option<[f64; BANDS]>,
    /// Speed slope of rolling noise, B_R (dB per decade of speed).
    pub b_r: Option<[f64; BANDS]>,
    /// Propulsion noise at v_ref, A_P.
    pub a_p: [f64; BANDS],
    /// Speed slope of propulsion noise, B_P.
    pub b_p: [f64; BANDS],
}

/// Category 1, light vehicles: Table F-1 of (EU) 2021/1226 (checked against two transcriptions, see the module doc).
pub const LIGHT: Coefficients = Coefficients {
    a_r: Some([83.1, 89.2, 87.7, 93.1, 100.1, 96.7, 86.8, 76.2]),
    b_r: Some([30.0, 41.5, 38.9, 25.7, 32.5, 37.2, 39.0, 40.0]),
    a_p: [97.9, 92.5, 90.7, 87.2, 84.7, 88.0, 84.4, 77.1],
    b_p: [-1.3, 7.2, 7.7, 8.0, 8.0, 8.0, 8.0, 8.0],
};

/// Category 2, medium heavy vehicles: Table F-1 of (EU) 2021/1226.
pub const MEDIUM_HEAVY: Coefficients = Coefficients {
    a_r: Some([88.7, 93.2, 95.7, 100.9, 101.7, 95.1, 87.8, 83.6]),
    b_r: Some([30.0, 35.8, 32.6, 23.8, 30.1, 36.2, 38.3, 40.1]),
    a_p: [105.5, 100.2, 100.5, 98.7, 101.0, 97.8, 91.2, 85.0],
    b_p: [-1.9, 4.7, 6.4, 6.5, 6.5, 6.5, 6.5, 6.5],
};

/// Category 3, heavy duty vehicles: Table F-1 of (EU) 2021/1226.
pub const HEAVY: Coefficients = Coefficients {
    a_r: Some([91.7, 96.2, 98.2, 104.9, 105.1, 98.5, 91.1, 85.6]),
    b_r: Some([30.0, 33.5, 31.3, 25.4, 31.8, 37.1, 38.6, 40.6]),
    a_p: [108.8, 104.2, 103.5, 102.9, 102.6, 98.5, 93.8, 87.5],
    b_p: [0.0, 3.0, 4.6, 5.0, 5.0, 5.0, 5.0, 5.0],
};

/// Category 4a, mopeds: Table F-1 of (EU) 2021/1226 (propulsion only).
pub const MOPED: Coefficients = Coefficients {
    a_r: None,
    b_r: None,
    a_p: [93.0, 93.0, 93.5, 95.3, 97.2, 100.4, 95.8, 90.9],
    b_p: [4.2, 7.4, 9.8, 11.6, 15.7, 18.9, 20.3, 20.6],
};

/// Category 4b, motorcycles: Table F-1 of (EU) 2021/1226 (propulsion only).
pub const MOTORCYCLE: Coefficients = Coefficients {
    a_r: None,
    b_r: None,
    a_p: [99.9, 101.9, 96.7, 94.4, 95.2, 94.7, 92.1, 88.6],
    b_p: [3.2, 5.9, 11.9, 11.6, 11.5, 12.6, 11.1, 12.0],
};

fn check_speed(speed_kmh: f64) -> Result<f64, NoiseError> {
    check_non_negative("speed (km/h)", speed_kmh)
}

fn check_temperature(air_temperature_c: f64) -> Result<f64, NoiseError> {
    if air_temperature_c.is_finite() {
        Ok(air_temperature_c)
    } else {
        Err(invalid("air temperature (°C)", "finite", air_temperature_c))
    }
}

fn emission_speed(speed_kmh: f64) -> f64 {
    speed_kmh.clamp(SPEED_RANGE_KMH.0, SPEED_RANGE_KMH.1)
}

/// Rolling noise L_WR (dB, unweighted) of one vehicle per octave band, at `speed_kmh` (clamped into
/// [`SPEED_RANGE_KMH`]) and `air_temperature_c`. Two-wheelers have none: all bands −∞.
pub fn rolling_noise(
    category: VehicleCategory,
    speed_kmh: f64,
    air_temperature_c: f64,
) -> Result<[f64; BANDS], NoiseError> {
    let v = emission_speed(check_speed(speed_kmh)?);
    let temp = check_temperature(air_temperature_c)?;
    let c = category.coefficients();
    let (Some(a_r), Some(b_r)) = (c.a_r, c.b_r) else {
        return Ok([f64::NEG_INFINITY; BANDS]);
    };
    let correction = category.temperature_coefficient() * (REFERENCE_AIR_TEMPERATURE_C - temp);
    let lg = (v / V_REF_KMH).log10();
    Ok(std::array::from_fn(|i| a_r[i] + b_r[i] * lg + correction))
}

/// Propulsion noise L_WP (dB, unweighted) of one vehicle per octave band, at `speed_kmh` (clamped into
/// [`SPEED_RANGE_KMH`]).
pub fn propulsion_noise(
    category: VehicleCategory,
    speed_kmh: f64,
) -> Result<[f64; BANDS], NoiseError> {
    let v = emission_speed(check_speed(speed_kmh)?);
    let c = category.coefficients();
    let x = (v - V_REF_KMH) / V_REF_KMH;
    Ok(std::array::from_fn(|i| c.a_p[i] + c.b_p[i] * x))
}

/// Sound power L_W (dB, unweighted) of one vehicle per octave band: rolling and propulsion noise summed energetically.
pub fn vehicle_sound_power(
    category: VehicleCategory,
    speed_kmh: f64,
    air_temperature_c: f64,
) -> Result<[f64; BANDS], NoiseError> {
    let r = rolling_noise(category, speed_kmh, air_temperature_c)?;
    let p = propulsion_noise(category, speed_kmh)?;
    Ok(std::array::from_fn(|i| sum_db(&[r[i], p[i]])))
}

/// Hourly flows (vehicles/hour) of one road link per CNOSSOS-EU category. Two-wheelers default to zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Flows {
    /// Category 1, light vehicles.
    pub light: f64,
    /// Category 2, medium heavy vehicles.
    pub medium: f64,
    /// Category 3, heavy duty vehicles.
    pub heavy: f64,
    /// Category 4a, mopeds.
    #[serde(default)]
    pub mopeds: f64,
    /// Category 4b, motorcycles.
    #[serde(default)]
    pub motorcycles: f64,
}

impl Flows {
    /// The flow of one category.
    pub fn of(&self, category: VehicleCategory) -> f64 {
        match category {
            VehicleCategory::Light => self.light,
            VehicleCategory::MediumHeavy => self.medium,
            VehicleCategory::Heavy => self.heavy,
            VehicleCategory::Moped => self.mopeds,
            VehicleCategory::Motorcycle => self.motorcycles,
        }
    }

    /// Every category's flow multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Flows {
        Flows {
            light: self.light * factor,
            medium: self.medium * factor,
            heavy: self.heavy * factor,
            mopeds: self.mopeds * factor,
            motorcycles: self.motorcycles * factor,
        }
    }

    fn check(&self) -> Result<(), NoiseError> {
        for c in VehicleCategory::ALL {
            check_non_negative("flow (vehicles/hour)", self.of(c))?;
        }
        Ok(())
    }
}

/// Sound power per metre L_W′ (dB, unweighted) per octave band of a steady flow at `speed_kmh` and
/// `air_temperature_c`. All bands are −∞ when every flow is zero. A positive flow at zero speed is an error.
pub fn band_power_per_metre(
    flows: &Flows,
    speed_kmh: f64,
    air_temperature_c: f64,
) -> Result<[f64; BANDS], NoiseError> {
    flows.check()?;
    check_speed(speed_kmh)?;
    check_temperature(air_temperature_c)?;
    let mut bands = [f64::NEG_INFINITY; BANDS];
    for c in VehicleCategory::ALL {
        let q = flows.of(c);
        if q == 0.0 {
            continue;
        }
        if speed_kmh == 0.0 {
            return Err(invalid(
                "speed (km/h) of a link with traffic",
                "> 0",
                speed_kmh,
            ));
        }
        let density_db = (q / (1000.0 * speed_kmh)).log10() * 10.0;
        let lw = vehicle_sound_power(c, speed_kmh, air_temperature_c)?;
        for (band, l) in bands.iter_mut().zip(lw) {
            *band = sum_db(&[*band, l + density_db]);
        }
    }
    Ok(bands)
}

/// A-weighted total (dB(A)) of octave-band levels: 10·lg Σ 10^((L_i + A_i)/10).
pub fn a_weighted_total(bands: &[f64; BANDS]) -> f64 {
    let weighted: [f64; BANDS] = std::array::from_fn(|i| bands[i] + A_WEIGHTING_DB[i]);
    sum_db(&weighted)
}

/// A-weighted sound power per metre L_W′,A (dB(A)) of a link with `flows` (vehicles/hour) at `speed_kmh`, at the
/// reference air temperature of 20 °C. −∞ when there is no traffic.
pub fn sound_power_per_metre(flows: &Flows, speed_kmh: f64) -> Result<f64, NoiseError> {
    sound_power_per_metre_at(flows, speed_kmh, REFERENCE_AIR_TEMPERATURE_C)
}

/// As [`sound_power_per_metre`], at air temperature `air_temperature_c` (°C).
pub fn sound_power_per_metre_at(
    flows: &Flows,
    speed_kmh: f64,
    air_temperature_c: f64,
) -> Result<f64, NoiseError> {
    Ok(a_weighted_total(&band_power_per_metre(
        flows,
        speed_kmh,
        air_temperature_c,
    )?))
}

fn check_distance(distance_m: f64) -> Result<f64, NoiseError> {
    if distance_m.is_finite() && distance_m > 0.0 {
        Ok(distance_m)
    } else {
        Err(invalid("distance (m)", "finite and > 0", distance_m))
    }
}

/// Level (dB) at `distance_m` from an infinite line source of `lw_per_m` dB per metre in free field:
/// `L_W′ − 10·lg(2π·d)`, no ground, no reflection.
pub fn free_field_level(lw_per_m: f64, distance_m: f64) -> Result<f64, NoiseError> {
    let lw = check_level("sound power per metre", lw_per_m)?;
    let d = check_distance(distance_m)?;
    Ok(lw - 10.0 * (2.0 * std::f64::consts::PI * d).log10())
}

/// Level (dB(A) if `lw_per_m` is A-weighted) at a receptor `distance_m` from a road over hard ground: the free-field
/// level plus [`HARD_GROUND_DB`], plus [`FACADE_REFLECTION_DB`] when `facade` is true (use `false` for END
/// indicators, which take the incident sound). −∞ stays −∞.
pub fn level_at(lw_per_m: f64, distance_m: f64, facade: bool) -> Result<f64, NoiseError> {
    let free = free_field_level(lw_per_m, distance_m)?;
    Ok(free + HARD_GROUND_DB + if facade { FACADE_REFLECTION_DB } else { 0.0 })
}

/// Energetic sum without input checks; −∞ terms add nothing, an empty or all-silent list gives −∞.
fn sum_db(levels: &[f64]) -> f64 {
    let max = levels.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = levels.iter().map(|l| 10f64.powf((l - max) / 10.0)).sum();
    max + 10.0 * sum.log10()
}

/// Energetic sum `10·lg Σ 10^(L/10)` of levels (dB), e.g. several roads' contributions at one receptor. Silent terms
/// (−∞) add nothing; no terms gives −∞. NaN or +∞ is an error.
pub fn energetic_sum(levels: &[f64]) -> Result<f64, NoiseError> {
    for &l in levels {
        check_level("level", l)?;
    }
    Ok(sum_db(levels))
}

/// L_den (dB) from L_day, L_evening and L_night (Directive 2002/49/EC Annex I): the 24-hour mean with a 5 dB evening
/// and a 10 dB night penalty.
pub fn lden(l_day: f64, l_evening: f64, l_night: f64) -> Result<f64, NoiseError> {
    let ld = check_level("L_day", l_day)?;
    let le = check_level("L_evening", l_evening)?;
    let ln = check_level("L_night", l_night)?;
    let share = |hours: f64| 10.0 * (hours / 24.0).log10();
    Ok(sum_db(&[
        ld + share(12.0),
        le + 5.0 + share(4.0),
        ln + 10.0 + share(8.0),
    ]))
}

/// Shares of a daily (24 h) flow in the END day (07–19), evening (19–23) and night (23–07) periods.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DailySplit {
    /// Share of the daily flow in the 12 day hours.
    pub day: f64,
    /// Share in the 4 evening hours.
    pub evening: f64,
    /// Share in the 8 night hours.
    pub night: f64,
}

impl Default for DailySplit {
    /// `ASSUMPTION`: 75 % of the daily flow by day, 15 % in the evening, 10 % at night, i.e. 6.25 %, 3.75 % and 1.25 %
    /// of the daily flow per hour. A round split of the kind used for urban streets when no counts exist, not taken
    /// from a published table; replace it with the city's counts.
    fn default() -> Self {
        DailySplit {
            day: 0.75,
            evening: 0.15,
            night: 0.10,
        }
    }
}

impl DailySplit {
    /// The mean hourly flows of the day, evening and night periods for a `daily` flow (vehicles/day per category).
    /// Shares must be finite, ≥ 0 and sum to 1 (± 10⁻⁶).
    pub fn hourly(&self, daily: &Flows) -> Result<PeriodFlows, NoiseError> {
        daily.check()?;
        for s in [self.day, self.evening, self.night] {
            check_non_negative("period share", s)?;
        }
        let total = self.day + self.evening + self.night;
        if (total - 1.0).abs() > 1e-6 {
            return Err(invalid("sum of the period shares", "1", total));
        }
        Ok(PeriodFlows {
            day: daily.scaled(self.day / 12.0),
            evening: daily.scaled(self.evening / 4.0),
            night: daily.scaled(self.night / 8.0),
        })
    }
}

/// Mean hourly flows (vehicles/hour) of one link in each END period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PeriodFlows {
    /// 07–19 h.
    pub day: Flows,
    /// 19–23 h.
    pub evening: Flows,
    /// 23–07 h.
    pub night: Flows,
}

/// The END indicators (dB(A)) at one receptor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Indicators {
    /// L_day, 07–19 h.
    pub l_day: f64,
    /// L_evening, 19–23 h.
    pub l_evening: f64,
    /// L_night, 23–07 h.
    pub l_night: f64,
    /// L_den.
    pub l_den: f64,
}

impl Indicators {
    /// Indicators from the three period levels (L_den computed by [`lden`]).
    pub fn from_periods(
        l_day: f64,
        l_evening: f64,
        l_night: f64,
    ) -> Result<Indicators, NoiseError> {
        Ok(Indicators {
            l_day,
            l_evening,
            l_night,
            l_den: lden(l_day, l_evening, l_night)?,
        })
    }

    /// Several roads' indicators at one receptor: each period summed energetically, then L_den recomputed. No roads
    /// gives −∞ everywhere.
    pub fn combine(contributions: &[Indicators]) -> Result<Indicators, NoiseError> {
        let sum = |f: fn(&Indicators) -> f64| {
            energetic_sum(&contributions.iter().map(f).collect::<Vec<_>>())
        };
        Indicators::from_periods(
            sum(|i| i.l_day)?,
            sum(|i| i.l_evening)?,
            sum(|i| i.l_night)?,
        )
    }
}

/// END indicators at `distance_m` from one road with the given hourly flows per period and one mean speed
/// (`speed_kmh`) for all periods, at 20 °C, via [`sound_power_per_metre`] and [`level_at`].
pub fn road_indicators(
    flows: &PeriodFlows,
    speed_kmh: f64,
    distance_m: f64,
    facade: bool,
) -> Result<Indicators, NoiseError> {
    let at = |f: &Flows| level_at(sound_power_per_metre(f, speed_kmh)?, distance_m, facade);
    Indicators::from_periods(at(&flows.day)?, at(&flows.evening)?, at(&flows.night)?)
}

/// Residents at or above the END and WHO thresholds; levels are compared unrounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exposure {
    /// All residents counted.
    pub residents: f64,
    /// Residents with L_den ≥ 55 dB ([`END_LDEN_DB`]).
    pub end_lden: f64,
    /// Residents with L_night ≥ 50 dB ([`END_LNIGHT_DB`]).
    pub end_lnight: f64,
    /// Residents with L_den ≥ 53 dB ([`WHO_LDEN_DB`]).
    pub who_lden: f64,
    /// Residents with L_night ≥ 45 dB ([`WHO_LNIGHT_DB`]).
    pub who_lnight: f64,
}

/// Counts residents above the thresholds, from one `(L_den, L_night, residents)` triple per home (the levels at its
/// most exposed façade, incident sound). Residents may be fractional (e.g. spread from census areas) and must be
/// finite and ≥ 0; a level of −∞ is silence.
pub fn exposure(homes: &[(f64, f64, f64)]) -> Result<Exposure, NoiseError> {
    let mut e = Exposure::default();
    for &(l_den, l_night, residents) in homes {
        let l_den = check_level("L_den", l_den)?;
        let l_night = check_level("L_night", l_night)?;
        let n = check_non_negative("residents", residents)?;
        e.residents += n;
        if l_den >= END_LDEN_DB {
            e.end_lden += n;
        }
        if l_night >= END_LNIGHT_DB {
            e.end_lnight += n;
        }
        if l_den >= WHO_LDEN_DB {
            e.who_lden += n;
        }
        if l_night >= WHO_LNIGHT_DB {
            e.who_lnight += n;
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_LG_2: f64 = 3.010_299_956_639_812;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    fn light(q: f64) -> Flows {
        Flows {
            light: q,
            ..Flows::default()
        }
    }

    #[test]
    fn light_vehicle_bands_at_50_kmh_by_hand() {
        // lg(50/70) = lg(0.714286) = −0.146128; (50 − 70)/70 = −0.285714.
        // Rolling A_R + B_R·(−0.146128):
        //   63 Hz: 83.1 − 30.0·0.146128 = 78.7162     125: 89.2 − 41.5·0.146128 = 83.1357
        //   250:   87.7 − 38.9·0.146128 = 82.0156     500: 93.1 − 25.7·0.146128 = 89.3445
        //   1k:   100.1 − 32.5·0.146128 = 95.3508     2k:  96.7 − 37.2·0.146128 = 91.2640
        //   4k:    86.8 − 39.0·0.146128 = 81.1010     8k:  76.2 − 40.0·0.146128 = 70.3549
        let rolling = [
            78.7162, 83.1357, 82.0156, 89.3445, 95.3508, 91.2640, 81.1010, 70.3549,
        ];
        // Propulsion A_P + B_P·(−0.285714):
        //   63 Hz: 97.9 + 1.3·0.285714 = 98.2714      125: 92.5 − 7.2·0.285714 = 90.4429
        //   250:   90.7 − 7.7·0.285714 = 88.5000      500..8k: A_P − 8.0·0.285714 = A_P − 2.2857
        let propulsion = [
            98.2714, 90.4429, 88.5000, 84.9143, 82.4143, 85.7143, 82.1143, 74.8143,
        ];
        let r = rolling_noise(VehicleCategory::Light, 50.0, 20.0).unwrap();
        let p = propulsion_noise(VehicleCategory::Light, 50.0).unwrap();
        for i in 0..BANDS {
            assert!(close(r[i], rolling[i], 1e-4), "rolling band {i}: {}", r[i]);
            assert!(
                close(p[i], propulsion[i], 1e-4),
                "propulsion band {i}: {}",
                p[i]
            );
        }
        // Vehicle L_W = 10·lg(10^(R/10) + 10^(P/10)), e.g. 1 kHz: 10·lg(10^9.53508 + 10^8.24143) = 95.5663.
        let lw = vehicle_sound_power(VehicleCategory::Light, 50.0, 20.0).unwrap();
        let by_hand = [
            98.3193, 91.1833, 89.3802, 90.6817, 95.5663, 92.3315, 84.6474, 76.1437,
        ];
        for i in 0..BANDS {
            assert!(close(lw[i], by_hand[i], 1e-4), "band {i}: {}", lw[i]);
        }
        // A-weighted: 98.3193−26.2, 91.1833−16.1, 89.3802−8.6, 90.6817−3.2, 95.5663, 92.3315+1.2, 84.6474+1.0,
        // 76.1437−1.1 → 72.12, 75.08, 80.78, 87.48, 95.57, 93.53, 85.65, 75.04 → energetic sum 98.4416 dB(A).
        assert!(close(a_weighted_total(&lw), 98.4416, 1e-4));
        // One vehicle per hour at 50 km/h: density 10·lg(1/(1000·50)) = −46.9897 dB; 1000/h: −16.9897 dB.
        let lw_m = sound_power_per_metre(&light(1000.0), 50.0).unwrap();
        assert!(close(lw_m, 98.4416 - 16.9897, 1e-4), "{lw_m}");
    }

    #[test]
    fn temperature_correction_applies_to_rolling_noise_only() {
        let warm = rolling_noise(VehicleCategory::Light, 50.0, 20.0).unwrap();
        let cold = rolling_noise(VehicleCategory::Light, 50.0, 10.0).unwrap();
        assert!(close(cold[4] - warm[4], 0.8, 1e-12)); // 0.08 dB/°C · 10 °C
        let heavy = rolling_noise(VehicleCategory::Heavy, 50.0, 10.0).unwrap()[4]
            - rolling_noise(VehicleCategory::Heavy, 50.0, 20.0).unwrap()[4];
        assert!(close(heavy, 0.4, 1e-12));
        let moto = rolling_noise(VehicleCategory::Motorcycle, 50.0, 10.0).unwrap();
        assert!(moto.iter().all(|l| *l == f64::NEG_INFINITY));
    }

    #[test]
    fn doubling_the_flow_adds_3_01_db() {
        let flows = Flows {
            light: 800.0,
            medium: 40.0,
            heavy: 20.0,
            mopeds: 5.0,
            motorcycles: 10.0,
        };
        let one = sound_power_per_metre(&flows, 50.0).unwrap();
        let two = sound_power_per_metre(&flows.scaled(2.0), 50.0).unwrap();
        assert!(close(two - one, TEN_LG_2, 1e-9));
    }

    #[test]
    fn line_source_loses_3_01_db_per_doubling_of_distance() {
        for facade in [false, true] {
            let near = level_at(80.0, 10.0, facade).unwrap();
            let far = level_at(80.0, 20.0, facade).unwrap();
            assert!(close(near - far, TEN_LG_2, 1e-9));
        }
        assert!(close(
            level_at(80.0, 10.0, true).unwrap() - level_at(80.0, 10.0, false).unwrap(),
            3.0,
            1e-12
        ));
        // 80 − 10·lg(2π·10) = 80 − 17.9818 = 62.0182 in free field.
        assert!(close(free_field_level(80.0, 10.0).unwrap(), 62.0182, 1e-4));
    }

    #[test]
    fn energetic_sum_of_two_equal_levels_is_3_01_db_more() {
        assert!(close(
            energetic_sum(&[60.0, 60.0]).unwrap(),
            60.0 + TEN_LG_2,
            1e-9
        ));
        assert!(close(
            energetic_sum(&[60.0, f64::NEG_INFINITY]).unwrap(),
            60.0,
            1e-12
        ));
        assert_eq!(energetic_sum(&[]).unwrap(), f64::NEG_INFINITY);
        assert!(energetic_sum(&[60.0, f64::NAN]).is_err());
    }

    #[test]
    fn lden_of_equal_period_levels() {
        // 10·lg((12 + 4·10^0.5 + 8·10^1)/24) = 10·lg((12 + 12.6491 + 80)/24) = 10·lg(4.36038) = 6.3952 dB.
        let l = lden(60.0, 60.0, 60.0).unwrap();
        assert!(close(l, 66.3952, 1e-4), "{l}");
        assert_eq!(
            lden(f64::NEG_INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY).unwrap(),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn exposure_counts_at_the_thresholds() {
        let homes = [
            (55.0, 50.0, 2.0),     // exactly at the END thresholds: counted
            (54.999, 49.999, 3.0), // just below END, above WHO
            (53.0, 45.0, 4.0),     // exactly at the WHO values
            (52.9, 44.9, 5.0),     // below everything
            (f64::NEG_INFINITY, f64::NEG_INFINITY, 1.0), // silent
        ];
        let e = exposure(&homes).unwrap();
        assert_eq!(e.residents, 15.0);
        assert_eq!(e.end_lden, 2.0);
        assert_eq!(e.end_lnight, 2.0);
        assert_eq!(e.who_lden, 9.0);
        assert_eq!(e.who_lnight, 9.0);
        assert!(exposure(&[(60.0, 50.0, -1.0)]).is_err());
        assert!(exposure(&[(f64::NAN, 50.0, 1.0)]).is_err());
    }

    #[test]
    fn urban_street_is_plausible() {
        // 1000 light vehicles/h at 50 km/h: L_W′,A = 81.45 dB(A)/m; at 10 m, 81.45 − 17.98 + 3 (hard ground)
        // = 66.47 dB(A) incident, 69.47 dB(A) in front of the façade.
        let lw = sound_power_per_metre(&light(1000.0), 50.0).unwrap();
        let l = level_at(lw, 10.0, false).unwrap();
        assert!(close(l, 66.47, 0.01), "{l}");
        assert!((65.0..=75.0).contains(&l));
    }

    #[test]
    fn zero_flow_is_silence_and_bad_inputs_are_errors() {
        let silent = sound_power_per_metre(&Flows::default(), 50.0).unwrap();
        assert_eq!(silent, f64::NEG_INFINITY);
        assert_eq!(level_at(silent, 10.0, true).unwrap(), f64::NEG_INFINITY);
        assert_eq!(
            sound_power_per_metre(&Flows::default(), 0.0).unwrap(),
            f64::NEG_INFINITY
        );
        assert!(sound_power_per_metre(&light(100.0), 0.0).is_err());
        assert!(sound_power_per_metre(&light(-1.0), 50.0).is_err());
        assert!(sound_power_per_metre(&light(f64::NAN), 50.0).is_err());
        assert!(sound_power_per_metre(&light(100.0), f64::INFINITY).is_err());
        assert!(sound_power_per_metre_at(&light(100.0), 50.0, f64::NAN).is_err());
        assert!(level_at(80.0, 0.0, false).is_err());
        assert!(level_at(80.0, -5.0, false).is_err());
        assert!(level_at(f64::NAN, 10.0, false).is_err());
        assert!(lden(f64::INFINITY, 50.0, 50.0).is_err());
        // Below 20 km/h the emission is that of 20 km/h; only the density grows.
        let slow = vehicle_sound_power(VehicleCategory::Light, 5.0, 20.0).unwrap();
        let twenty = vehicle_sound_power(VehicleCategory::Light, 20.0, 20.0).unwrap();
        assert_eq!(slow, twenty);
    }

    #[test]
    fn daily_split_and_road_indicators() {
        let hourly = DailySplit::default().hourly(&light(12_000.0)).unwrap();
        assert!(close(hourly.day.light, 750.0, 1e-9)); // 12 000 · 0.75 / 12
        assert!(close(hourly.evening.light, 450.0, 1e-9)); // 12 000 · 0.15 / 4
        assert!(close(hourly.night.light, 150.0, 1e-9)); // 12 000 · 0.10 / 8
        assert!(DailySplit {
            day: 0.5,
            evening: 0.2,
            night: 0.2
        }
        .hourly(&light(1.0))
        .is_err());
        let ind = road_indicators(&hourly, 50.0, 10.0, false).unwrap();
        // Night flow is 1/5 of day flow: L_night = L_day − 10·lg 5.
        assert!(close(ind.l_day - ind.l_night, 10.0 * 5f64.log10(), 1e-9));
        assert!(close(
            ind.l_den,
            lden(ind.l_day, ind.l_evening, ind.l_night).unwrap(),
            1e-12
        ));
        let two = Indicators::combine(&[ind, ind]).unwrap();
        assert!(close(two.l_den - ind.l_den, TEN_LG_2, 1e-9));
    }
}
