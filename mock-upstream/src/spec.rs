//! Response programming specs: latency distributions, body sizes, weighted
//! status codes and extra headers, parsed from the same strings on the command
//! line and in per-request `X-Mock-*` headers.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};
use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};

/// A spec string that could not be parsed. The message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct SpecError {
    what: &'static str,
    input: String,
    reason: String,
}

impl SpecError {
    fn new(what: &'static str, input: &str, reason: impl Into<String>) -> Self {
        Self {
            what,
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

/// z-score of the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874_040_841;

/// A duration string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty: give a number and a unit, e.g. 500ms or 2s")]
    Empty,
    #[error("{0:?} is negative: a duration is 0 or more")]
    Negative(String),
    #[error("{0:?} has no unit (use ns, us, ms or s)")]
    NoUnit(String),
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error("unknown unit {0:?} (use ns, us, ms or s)")]
    UnknownUnit(String),
    #[error("{0:?} is longer than an hour")]
    TooLong(String),
    #[error("must be greater than zero")]
    Zero,
}

/// Parses a duration with an explicit unit and an optional fraction:
/// `0`, `250us`, `1.5ms`, `2s`, `800ns` (also `µs`).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(s.to_owned()));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| DurationError::NoUnit(s.to_owned()))?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| DurationError::NotANumber(num.to_owned()))?;
    let nanos_per_unit = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        _ => return Err(DurationError::UnknownUnit(unit.to_owned())),
    };
    let nanos = value * nanos_per_unit;
    if !nanos.is_finite() || nanos > 3600e9 {
        return Err(DurationError::TooLong(s.to_owned()));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// [`parse_duration`], refusing zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, DurationError> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(DurationError::Zero),
        d => Ok(d),
    }
}

/// A response delay distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Latency {
    /// Always the same delay (`fixed:2ms`, or just `2ms`; `0` for none).
    Fixed(Duration),
    /// Uniform between two bounds (`uniform:1ms..5ms`).
    Uniform { low: Duration, high: Duration },
    /// Normal with a mean and standard deviation, clamped at zero (`normal:5ms,1ms`).
    Normal { mean: Duration, std_dev: Duration },
    /// Log-normal given by its median and 99th percentile (`lognormal:2ms,20ms`).
    LogNormal { median: Duration, p99: Duration },
}

impl Latency {
    /// No delay.
    pub const ZERO: Latency = Latency::Fixed(Duration::ZERO);

    /// True when this never delays, so callers can skip the timer entirely.
    pub fn is_zero(&self) -> bool {
        matches!(self, Latency::Fixed(d) if d.is_zero())
    }

    /// Draws one delay.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { low, high } => {
                let (lo, hi) = (nanos(low), nanos(high));
                Duration::from_nanos(rng.random_range(lo..=hi))
            }
            Latency::Normal { mean, std_dev } => {
                // Parameters were validated at parse time, so construction cannot fail.
                let dist = Normal::new(nanos(mean) as f64, nanos(std_dev) as f64)
                    .unwrap_or_else(|_| unreachable!("validated normal parameters"));
                from_f64_nanos(dist.sample(rng))
            }
            Latency::LogNormal { median, p99 } => {
                let mu = (nanos(median) as f64).ln();
                let sigma = ((nanos(p99) as f64).ln() - mu) / Z_P99;
                let dist = LogNormal::new(mu, sigma)
                    .unwrap_or_else(|_| unreachable!("validated lognormal parameters"));
                from_f64_nanos(dist.sample(rng))
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn from_f64_nanos(v: f64) -> Duration {
    if v.is_finite() && v > 0.0 {
        Duration::from_nanos(v.min(3600e9) as u64)
    } else {
        Duration::ZERO
    }
}

const LATENCY_FORMS: &str = "expected 0, fixed:D, uniform:A..B, normal:MEAN,STDDEV or lognormal:MEDIAN,P99 (e.g. fixed:2ms)";

impl FromStr for Latency {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let err = |reason: String| SpecError::new("latency", s, reason);
        let (kind, args) = s.trim().split_once(':').unwrap_or(("fixed", s.trim()));
        let dur = |a: &str| parse_duration(a).map_err(|e| err(e.to_string()));
        match kind {
            "fixed" => Ok(Latency::Fixed(dur(args)?)),
            "uniform" => {
                let (a, b) = args
                    .split_once("..")
                    .ok_or_else(|| err(format!("uniform needs A..B; {LATENCY_FORMS}")))?;
                let (low, high) = (dur(a)?, dur(b)?);
                if low > high {
                    return Err(err("uniform lower bound is above the upper bound".into()));
                }
                Ok(Latency::Uniform { low, high })
            }
            "normal" => {
                let (a, b) = args
                    .split_once(',')
                    .ok_or_else(|| err(format!("normal needs MEAN,STDDEV; {LATENCY_FORMS}")))?;
                Ok(Latency::Normal {
                    mean: dur(a)?,
                    std_dev: dur(b)?,
                })
            }
            "lognormal" => {
                let (a, b) = args
                    .split_once(',')
                    .ok_or_else(|| err(format!("lognormal needs MEDIAN,P99; {LATENCY_FORMS}")))?;
                let (median, p99) = (dur(a)?, dur(b)?);
                if median.is_zero() || p99 < median {
                    return Err(err(
                        "lognormal needs 0 < MEDIAN <= P99 (the 99th percentile)".into(),
                    ));
                }
                Ok(Latency::LogNormal { median, p99 })
            }
            other => Err(err(format!(
                "unknown distribution {other:?}; {LATENCY_FORMS}"
            ))),
        }
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Latency::Fixed(d) => write!(f, "fixed:{d:?}"),
            Latency::Uniform { low, high } => write!(f, "uniform:{low:?}..{high:?}"),
            Latency::Normal { mean, std_dev } => write!(f, "normal:{mean:?},{std_dev:?}"),
            Latency::LogNormal { median, p99 } => write!(f, "lognormal:{median:?},{p99:?}"),
        }
    }
}

/// A response body size in bytes, parsed from `0`, `512`, `1KiB`, `4KB`, `1MiB`, `1GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Size(pub u64);

/// The largest body the mock will produce (64 GiB): a guard against typos.
pub const MAX_SIZE: u64 = 64 << 30;

impl FromStr for Size {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let err = |reason: &str| SpecError::new("size", s, reason);
        let n: u64 = num
            .parse()
            .map_err(|_| err("expected a byte count such as 0, 512, 1KiB or 1MiB"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" | "b" => 1,
            "K" | "k" | "KB" | "kB" => 1_000,
            "KiB" => 1 << 10,
            "M" | "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "G" | "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            _ => return Err(err("unknown unit (use B, KB, KiB, MB, MiB, GB or GiB)")),
        };
        match n.checked_mul(mult) {
            Some(v) if v <= MAX_SIZE => Ok(Size(v)),
            _ => Err(err("larger than the 64 GiB limit")),
        }
    }
}

/// Weighted response status codes: `200` or `200:98,503:2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMix {
    /// (status, cumulative weight); the last cumulative weight is the total.
    choices: Vec<(StatusCode, u32)>,
}

impl StatusMix {
    /// Always the given status.
    pub fn single(status: StatusCode) -> Self {
        Self {
            choices: vec![(status, 1)],
        }
    }

    /// Draws one status.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> StatusCode {
        if let [(only, _)] = self.choices.as_slice() {
            return *only;
        }
        let total = self.choices.last().map_or(1, |c| c.1);
        let x = rng.random_range(0..total);
        self.choices
            .iter()
            .find(|c| x < c.1)
            .map_or(StatusCode::OK, |c| c.0)
    }
}

impl Default for StatusMix {
    fn default() -> Self {
        Self::single(StatusCode::OK)
    }
}

impl FromStr for StatusMix {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let err = |reason: String| SpecError::new("status", s, reason);
        let mut choices = Vec::new();
        let mut total: u32 = 0;
        for part in s.split(',') {
            let part = part.trim();
            let (code, weight) = part.split_once(':').unwrap_or((part, "1"));
            let code: u16 = code.trim().parse().map_err(|_| {
                err(format!(
                    "{code:?} is not a status code; expected e.g. 200:98,503:2"
                ))
            })?;
            if !(200..=599).contains(&code) {
                return Err(err(format!("status {code} is outside 200..=599")));
            }
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| err(format!("weight {weight:?} is not a whole number")))?;
            if weight == 0 {
                continue;
            }
            total = total
                .checked_add(weight)
                .ok_or_else(|| err("weights add up to more than 2^32".into()))?;
            let status = StatusCode::from_u16(code).map_err(|e| err(e.to_string()))?;
            choices.push((status, total));
        }
        if choices.is_empty() {
            return Err(err("no status has a positive weight".into()));
        }
        Ok(Self { choices })
    }
}

/// One extra response header, parsed from `Name: value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHeader {
    pub name: HeaderName,
    pub value: HeaderValue,
}

impl FromStr for ExtraHeader {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let err = |reason: &str| SpecError::new("header", s, reason);
        let (name, value) = s
            .split_once(':')
            .ok_or_else(|| err("expected \"Name: value\""))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| err("not a valid header name"))?;
        let value =
            HeaderValue::from_str(value.trim()).map_err(|_| err("not a valid header value"))?;
        Ok(Self { name, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn durations_accept_fractions_and_units() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("x ms").is_err());
        assert!(parse_duration("2h").is_err());
        assert_eq!(
            parse_duration("-5s"),
            Err(DurationError::Negative("-5s".into()))
        );
        assert!(
            parse_duration("")
                .unwrap_err()
                .to_string()
                .starts_with("empty")
        );
        assert_eq!(
            parse_duration("-5s").unwrap_err().to_string(),
            "\"-5s\" is negative: a duration is 0 or more"
        );
        assert_eq!(parse_positive_duration("0"), Err(DurationError::Zero));
    }

    #[test]
    fn latency_forms() {
        assert_eq!("fixed:2ms".parse(), Ok(Latency::Fixed(ms(2))));
        assert_eq!("2ms".parse(), Ok(Latency::Fixed(ms(2))));
        assert_eq!("0".parse::<Latency>().map(|l| l.is_zero()), Ok(true));
        assert_eq!(
            "uniform:1ms..5ms".parse(),
            Ok(Latency::Uniform {
                low: ms(1),
                high: ms(5)
            })
        );
        assert_eq!(
            "normal:5ms,1ms".parse(),
            Ok(Latency::Normal {
                mean: ms(5),
                std_dev: ms(1)
            })
        );
        assert_eq!(
            "lognormal:2ms,20ms".parse(),
            Ok(Latency::LogNormal {
                median: ms(2),
                p99: ms(20)
            })
        );
        for bad in [
            "fixed:",
            "uniform:5ms..1ms",
            "uniform:1ms",
            "gauss:1ms",
            "lognormal:5ms,1ms",
            "normal:1ms",
        ] {
            let e = bad.parse::<Latency>().unwrap_err().to_string();
            assert!(e.starts_with("invalid latency"), "{bad}: {e}");
        }
    }

    #[test]
    fn sampled_distributions_have_the_programmed_shape() {
        let mut rng = SmallRng::seed_from_u64(7);
        let n = 20_000;
        let mut draw = |l: &Latency| {
            let mut v: Vec<f64> = (0..n)
                .map(|_| l.sample(&mut rng).as_secs_f64() * 1e3)
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let u = draw(&"uniform:1ms..5ms".parse().unwrap());
        assert!(u[0] >= 1.0 && u[n - 1] <= 5.0);
        assert!((u[n / 2] - 3.0).abs() < 0.1, "uniform median {}", u[n / 2]);

        let nd = draw(&"normal:5ms,1ms".parse().unwrap());
        assert!(
            (nd[n / 2] - 5.0).abs() < 0.05,
            "normal median {}",
            nd[n / 2]
        );
        let p84 = nd[n * 8413 / 10000];
        assert!((p84 - 6.0).abs() < 0.1, "normal p84.13 {p84}");

        let ln = draw(&"lognormal:2ms,20ms".parse().unwrap());
        assert!(
            (ln[n / 2] - 2.0).abs() < 0.1,
            "lognormal median {}",
            ln[n / 2]
        );
        let p99 = ln[n * 99 / 100];
        assert!((p99 / 20.0 - 1.0).abs() < 0.1, "lognormal p99 {p99}");
    }

    #[test]
    fn sizes() {
        assert_eq!("0".parse(), Ok(Size(0)));
        assert_eq!("512".parse(), Ok(Size(512)));
        assert_eq!("1KiB".parse(), Ok(Size(1024)));
        assert_eq!("4KB".parse(), Ok(Size(4000)));
        assert_eq!("1MiB".parse(), Ok(Size(1 << 20)));
        assert!("1TiB".parse::<Size>().is_err());
        assert!("65GiB".parse::<Size>().is_err());
        assert!("-1".parse::<Size>().is_err());
        assert!("lots".parse::<Size>().is_err());
    }

    #[test]
    fn status_mix_weights() {
        let mix: StatusMix = "200:98,503:2".parse().unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let n = 100_000;
        let errors = (0..n)
            .filter(|_| mix.sample(&mut rng) == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        assert!((1700..2300).contains(&errors), "503s: {errors}");
        assert_eq!(
            "404".parse::<StatusMix>().unwrap().sample(&mut rng),
            StatusCode::NOT_FOUND
        );
        for bad in ["", "abc", "99", "600", "200:x", "200:0"] {
            assert!(bad.parse::<StatusMix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_headers() {
        let h: ExtraHeader = "X-Shard: 7".parse().unwrap();
        assert_eq!(h.name, "x-shard");
        assert_eq!(h.value, "7");
        assert!("no colon".parse::<ExtraHeader>().is_err());
        assert!("bad name: v".parse::<ExtraHeader>().is_err());
    }
}
