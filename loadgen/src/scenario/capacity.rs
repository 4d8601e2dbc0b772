//! `[capacity]`: the defaults `loadgen capacity` takes from the scenario
//! (its flags override them), so a capacity scenario runs as it is.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dur::Dur;
use super::value::BadValue;
use reports::summary::PERCENTILES;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    /// SLO terms, `METRIC<=VALUE`: `added.p99<=2ms`, `latency.p99<=10ms`, `errors<=0.1%`.
    #[serde(default)]
    pub slo: Vec<String>,
    /// The first rate tried (default 500).
    pub min: Option<f64>,
    /// The highest rate tried (default 200000).
    pub max: Option<f64>,
    /// e.g. `"5%"` (default).
    pub precision: Option<String>,
    /// Recorded time per step and round (default 10s).
    pub step: Option<Dur>,
    /// Warm-up before each step (default 2s).
    pub warmup: Option<Dur>,
    /// Rounds a step starts with (default 3).
    pub rounds: Option<u32>,
    /// Rounds an undecided step may grow to (default 4 × rounds).
    pub max_rounds: Option<u32>,
}

/// One SLO term: `METRIC<=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub text: String,
    pub metric: String,
    /// ns for latency and added terms, percent for `errors`.
    pub limit: f64,
}

impl std::str::FromStr for Term {
    type Err = BadValue;

    fn from_str(s: &str) -> Result<Term, BadValue> {
        let (metric, value) = s.split_once("<=").ok_or_else(|| {
            bad(format!("{s:?}: expected METRIC<=VALUE, e.g. added.p99<=2ms, latency.p99<=10ms, errors<=0.1%"))
        })?;
        let metric = metric.trim().to_owned();
        let value = value.trim();
        let limit = match metric.split_once('.') {
            Some(("latency" | "added", q))
                if PERCENTILES.contains(&q) || (metric.starts_with("latency") && q == "max") =>
            {
                mock_upstream::spec::parse_duration(value)
                    .map_err(|e| bad(format!("{s:?}: {value:?}: {e} (a duration: 2ms, 500us)")))?
                    .as_nanos() as f64
            }
            None if metric == "errors" => value
                .strip_suffix('%')
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| (0.0..=100.0).contains(v))
                .ok_or_else(|| {
                    bad(format!(
                        "{s:?}: errors takes a percentage, e.g. errors<=0.1%"
                    ))
                })?,
            _ => {
                return Err(bad(format!(
                    "{s:?}: {metric:?} is not an SLO metric: latency.p50|p90|p99|p99.9|p99.99|max, \
                     added.p50|p90|p99|p99.9|p99.99 or errors"
                )));
            }
        };
        Ok(Term {
            text: s.trim().to_owned(),
            metric,
            limit,
        })
    }
}

fn bad(msg: String) -> BadValue {
    BadValue(msg)
}

/// `5%` or `0.05` as a fraction.
pub fn parse_percent(s: &str) -> Result<f64, BadValue> {
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| BadValue(format!("{s:?}: expected a percentage, e.g. 5%")))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(BadValue(format!("{s:?}: must be between 0% and 100%")))
    }
}
