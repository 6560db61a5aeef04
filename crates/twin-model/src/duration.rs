//! ISO 8601 durations (`P1D`, `PT1H`, `P1Y2M10DT2H30M`, `PT0.5S`) as used by `aggrPeriodDuration`, kept as a
//! calendar part (months, variable length) and an exact part (seconds), with correct calendar arithmetic.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Months, TimeDelta, Utc};

use crate::query::QueryError;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Upper bound on the seconds part: about 10 000 years, well inside chrono's range.
const MAX_SECONDS: u64 = 10_000 * 366 * 86_400;
/// Upper bound on the months part: 10 000 years.
const MAX_MONTHS: u64 = 10_000 * 12;

/// An ISO 8601 duration: `months` (years × 12 + months, variable length) plus an exact `seconds` + `nanos` part
/// (weeks, days, hours, minutes, seconds; a day counts as 86 400 s since all times are UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Duration {
    pub months: u32,
    pub seconds: u64,
    /// Sub-second part, below 1 000 000 000.
    pub nanos: u32,
}

impl Duration {
    /// Parses an ISO 8601 duration `P[nY][nM][nW][nD][T[nH][nM][nS]]`. The last component may carry a decimal
    /// fraction (`PT0.5S`, `PT1,5H`, `P0.5D`), except years and months, whose length varies.
    pub fn parse(input: &str) -> Result<Duration, QueryError> {
        let err = |msg: String| QueryError(format!("invalid duration {input:?}: {msg}"));
        let Some(body) = input.strip_prefix('P') else {
            return Err(err(
                "a duration starts with 'P' (e.g. P1D, PT1H, P1Y2M10DT2H30M)".into(),
            ));
        };
        if body.is_empty() {
            return Err(err("no components after 'P'".into()));
        }
        // Units in the order they must appear, with their weight (months or nanoseconds).
        const DATE_UNITS: [(char, Unit); 4] = [
            ('Y', Unit::Months(12)),
            ('M', Unit::Months(1)),
            ('W', Unit::Secs(604_800)),
            ('D', Unit::Secs(86_400)),
        ];
        const TIME_UNITS: [(char, Unit); 3] = [
            ('H', Unit::Secs(3_600)),
            ('M', Unit::Secs(60)),
            ('S', Unit::Secs(1)),
        ];

        let (date_part, time_part) = match body.split_once('T') {
            Some((d, t)) => {
                if t.is_empty() {
                    return Err(err("no time components after 'T'".into()));
                }
                (d, Some(t))
            }
            None => (body, None),
        };
        let mut months: u64 = 0;
        let mut nanos: u128 = 0;
        let mut fraction_seen = false;
        for (part, units, section) in [
            (date_part, &DATE_UNITS[..], "date"),
            (time_part.unwrap_or(""), &TIME_UNITS[..], "time"),
        ] {
            let mut next_unit = 0usize;
            let mut rest = part;
            while !rest.is_empty() {
                if fraction_seen {
                    return Err(err(
                        "only the last component may have a decimal fraction".into()
                    ));
                }
                let num_len = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
                    .unwrap_or(rest.len());
                let (num, tail) = rest.split_at(num_len);
                let Some(designator) = tail.chars().next() else {
                    return Err(err(format!("number {num:?} has no unit designator")));
                };
                if num.is_empty() {
                    return Err(err(format!("expected a number before '{designator}'")));
                }
                let Some(offset) = units[next_unit..]
                    .iter()
                    .position(|(c, _)| *c == designator)
                else {
                    let valid: String = units.iter().map(|(c, _)| *c).collect();
                    return Err(err(if units.iter().any(|(c, _)| *c == designator) {
                        format!("'{designator}' is repeated or out of order in the {section} part")
                    } else {
                        format!("unexpected '{designator}' in the {section} part (expected one of {valid})")
                    }));
                };
                let unit = units[next_unit + offset].1;
                next_unit += offset + 1;
                rest = &tail[designator.len_utf8()..];

                let (int_text, frac_text) = match num.find(['.', ',']) {
                    Some(i) => (&num[..i], Some(&num[i + 1..])),
                    None => (num, None),
                };
                if int_text.is_empty()
                    || frac_text
                        .is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(err(format!("malformed number {num:?}")));
                }
                let int: u64 = int_text
                    .parse()
                    .map_err(|_| err(format!("number {int_text} is too large")))?;
                match unit {
                    Unit::Months(w) => {
                        if frac_text.is_some() {
                            return Err(err(format!(
                                "'{designator}' cannot have a fraction (years and months vary in length)"
                            )));
                        }
                        months = int
                            .checked_mul(w)
                            .and_then(|m| m.checked_add(months))
                            .filter(|m| *m <= MAX_MONTHS)
                            .ok_or_else(|| err("too many years/months".into()))?;
                    }
                    Unit::Secs(w) => {
                        let unit_nanos = u128::from(w) * u128::from(NANOS_PER_SECOND);
                        let mut add = u128::from(int)
                            .checked_mul(unit_nanos)
                            .ok_or_else(|| err("duration is too long".into()))?;
                        if let Some(f) = frac_text {
                            fraction_seen = true;
                            // Up to 9 fractional digits are significant (nanosecond resolution of a second).
                            let digits = &f[..f.len().min(18)];
                            let scale = 10u128.pow(digits.len() as u32);
                            let value: u128 = digits
                                .parse()
                                .map_err(|_| err(format!("malformed number {num:?}")))?;
                            add += value * unit_nanos / scale;
                        }
                        nanos = nanos
                            .checked_add(add)
                            .ok_or_else(|| err("duration is too long".into()))?;
                        if nanos > u128::from(MAX_SECONDS) * u128::from(NANOS_PER_SECOND) {
                            return Err(err("duration is too long".into()));
                        }
                    }
                }
            }
        }
        let secs = nanos / u128::from(NANOS_PER_SECOND);
        let sub = nanos % u128::from(NANOS_PER_SECOND);
        Ok(Duration {
            months: u32::try_from(months).map_err(|_| err("too many years/months".into()))?,
            seconds: u64::try_from(secs).map_err(|_| err("duration is too long".into()))?,
            nanos: u32::try_from(sub).map_err(|_| err("duration is too long".into()))?,
        })
    }

    /// True for a zero-length duration (`PT0S`, `P0D`...).
    pub fn is_zero(&self) -> bool {
        self.months == 0 && self.seconds == 0 && self.nanos == 0
    }

    /// `t` plus this duration: first the calendar months (clamping the day to the end of shorter months, e.g.
    /// Jan 31 + P1M = Feb 28/29), then the exact part. None when the result is out of chrono's range.
    pub fn checked_add_to(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let t = t.checked_add_months(Months::new(self.months))?;
        let exact = TimeDelta::new(i64::try_from(self.seconds).ok()?, self.nanos)?;
        t.checked_add_signed(exact)
    }

    /// `t` plus this duration (see `checked_add_to`), saturating at the largest representable time.
    pub fn add_to(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.checked_add_to(t).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The exact part as a chrono TimeDelta (the months are not included).
    pub fn exact_part(&self) -> TimeDelta {
        i64::try_from(self.seconds)
            .ok()
            .and_then(|s| TimeDelta::new(s, self.nanos))
            .unwrap_or(TimeDelta::MAX)
    }

    /// An approximate length in seconds, counting a month as 30.436875 days (the Gregorian average); for limits and
    /// sanity checks, never for arithmetic on times.
    pub fn approx_seconds(&self) -> f64 {
        f64::from(self.months) * 2_629_746.0 + self.seconds as f64 + f64::from(self.nanos) / 1e9
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Months(u64),
    Secs(u64),
}

impl FromStr for Duration {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl fmt::Display for Duration {
    /// Canonical form: `P1Y2M10DT2H30M5.5S`; zero is `PT0S`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("PT0S");
        }
        f.write_str("P")?;
        let (years, months) = (self.months / 12, self.months % 12);
        if years > 0 {
            write!(f, "{years}Y")?;
        }
        if months > 0 {
            write!(f, "{months}M")?;
        }
        let days = self.seconds / 86_400;
        let rem = self.seconds % 86_400;
        if days > 0 {
            write!(f, "{days}D")?;
        }
        if rem > 0 || self.nanos > 0 {
            f.write_str("T")?;
            let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
            if h > 0 {
                write!(f, "{h}H")?;
            }
            if m > 0 {
                write!(f, "{m}M")?;
            }
            if self.nanos > 0 {
                let frac = format!("{:09}", self.nanos);
                write!(f, "{s}.{}S", frac.trim_end_matches('0'))?;
            } else if s > 0 {
                write!(f, "{s}S")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(s: &str) -> Duration {
        Duration::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn t(y: i32, mo: u32, day: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, day, h, mi, s).unwrap()
    }

    #[test]
    fn parses_components() {
        assert_eq!(
            d("P1D"),
            Duration {
                months: 0,
                seconds: 86_400,
                nanos: 0
            }
        );
        assert_eq!(
            d("PT1H"),
            Duration {
                months: 0,
                seconds: 3_600,
                nanos: 0
            }
        );
        assert_eq!(
            d("P1Y2M10DT2H30M"),
            Duration {
                months: 14,
                seconds: 10 * 86_400 + 2 * 3600 + 30 * 60,
                nanos: 0
            }
        );
        assert_eq!(
            d("PT0.5S"),
            Duration {
                months: 0,
                seconds: 0,
                nanos: 500_000_000
            }
        );
        assert_eq!(
            d("PT1,5H"),
            Duration {
                months: 0,
                seconds: 5_400,
                nanos: 0
            }
        );
        assert_eq!(
            d("P0.5D"),
            Duration {
                months: 0,
                seconds: 43_200,
                nanos: 0
            }
        );
        assert_eq!(
            d("P2W"),
            Duration {
                months: 0,
                seconds: 14 * 86_400,
                nanos: 0
            }
        );
        assert_eq!(
            d("PT1M"),
            Duration {
                months: 0,
                seconds: 60,
                nanos: 0
            }
        );
        assert_eq!(
            d("P1M"),
            Duration {
                months: 1,
                seconds: 0,
                nanos: 0
            }
        );
        assert_eq!(d("PT0.000000001S").nanos, 1);
        assert_eq!(d("PT0.1234567891234S").nanos, 123_456_789);
        assert_eq!(
            d("PT36H"),
            Duration {
                months: 0,
                seconds: 129_600,
                nanos: 0
            }
        );
        assert!(d("PT0S").is_zero());
        assert!(d("P0D").is_zero());
        assert!(!d("PT0.001S").is_zero());
        assert_eq!("P3M".parse::<Duration>().unwrap().months, 3);
    }

    #[test]
    fn rejects_malformed() {
        for (s, needle) in [
            ("", "starts with 'P'"),
            ("1D", "starts with 'P'"),
            ("P", "no components"),
            ("PT", "no time components"),
            ("P1", "no unit designator"),
            ("PD", "expected a number"),
            ("P1H", "unexpected 'H' in the date part"),
            ("PT1D", "unexpected 'D' in the time part"),
            ("P1D1Y", "out of order"),
            ("P1D1D", "repeated or out of order"),
            ("P1.5Y", "cannot have a fraction"),
            ("P1.5M", "cannot have a fraction"),
            ("PT0.5H1M", "only the last component"),
            ("PT1.S", "malformed number"),
            ("PT.5S", "malformed number"),
            ("PT1.2.3S", "malformed number"),
            ("P-1D", "expected a number"),
            ("p1d", "starts with 'P'"),
            ("P1DT", "no time components"),
            ("P 1D", "expected a number"),
            ("P99999999999999999999999D", "too large"),
            ("P99999999999Y", "too many"),
            ("P9999999999999D", "too long"),
            ("PT99999999999999999H", "too long"),
            ("P1Dé", "expected a number before 'é'"),
            ("P1é", "unexpected"),
        ] {
            let e = Duration::parse(s).expect_err(s).0;
            assert!(e.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn adds_calendar_months() {
        assert_eq!(
            d("P1M").add_to(t(2024, 1, 31, 10, 0, 0)),
            t(2024, 2, 29, 10, 0, 0)
        );
        assert_eq!(
            d("P1M").add_to(t(2023, 1, 31, 10, 0, 0)),
            t(2023, 2, 28, 10, 0, 0)
        );
        assert_eq!(
            d("P1Y").add_to(t(2024, 2, 29, 0, 0, 0)),
            t(2025, 2, 28, 0, 0, 0)
        );
        assert_eq!(
            d("P1Y2M10DT2H30M").add_to(t(2020, 1, 1, 0, 0, 0)),
            t(2021, 3, 11, 2, 30, 0)
        );
        assert_eq!(
            d("P1D").add_to(t(2020, 2, 28, 12, 0, 0)),
            t(2020, 2, 29, 12, 0, 0)
        );
        assert_eq!(
            d("PT0.5S").add_to(t(2020, 1, 1, 0, 0, 0)),
            t(2020, 1, 1, 0, 0, 0) + TimeDelta::milliseconds(500)
        );
        // months first, then days: Jan 31 + P1M1D = Mar 1 (2023)
        assert_eq!(
            d("P1M1D").add_to(t(2023, 1, 31, 0, 0, 0)),
            t(2023, 3, 1, 0, 0, 0)
        );
    }

    #[test]
    fn saturates_instead_of_panicking() {
        let big = d("P9999Y");
        assert_eq!(big.checked_add_to(DateTime::<Utc>::MAX_UTC), None);
        assert_eq!(
            big.add_to(DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MAX_UTC
        );
        let odd = Duration {
            months: u32::MAX,
            seconds: u64::MAX,
            nanos: u32::MAX,
        };
        assert_eq!(odd.add_to(t(2020, 1, 1, 0, 0, 0)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(odd.exact_part(), TimeDelta::MAX);
        assert!(odd.approx_seconds() > 0.0);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "P1D",
            "PT1H",
            "P1Y2M10DT2H30M",
            "PT0.5S",
            "P1M",
            "PT1M",
            "P3Y",
            "P1DT0.25S",
            "PT0S",
            "PT59M59S",
        ] {
            assert_eq!(d(s).to_string(), s);
            assert_eq!(d(&d(s).to_string()), d(s));
        }
        assert_eq!(d("P2W").to_string(), "P14D");
        assert_eq!(d("PT36H").to_string(), "P1DT12H");
        assert_eq!(d("P14M").to_string(), "P1Y2M");
    }

    #[test]
    fn approx_seconds() {
        assert_eq!(d("PT1H").approx_seconds(), 3600.0);
        assert!((d("P1M").approx_seconds() - 2_629_746.0).abs() < 1e-6);
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet: Vec<char> = "PTYMWDHS0123456789.,-é ".chars().collect();
        let mut x: u64 = 88172645463325252;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 16) as usize;
            let mut s = String::new();
            let mut y = x;
            for _ in 0..len {
                y = y.wrapping_mul(6364136223846793005).wrapping_add(1);
                s.push(alphabet[((y >> 33) as usize) % alphabet.len()]);
            }
            if let Ok(dur) = Duration::parse(&s) {
                let _ = dur.add_to(DateTime::<Utc>::MAX_UTC);
                let _ = dur.add_to(DateTime::<Utc>::MIN_UTC);
                assert_eq!(Duration::parse(&dur.to_string()).ok(), Some(dur), "{s}");
            }
        }
    }
}
