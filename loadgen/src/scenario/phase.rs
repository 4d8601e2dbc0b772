//! `[[phase]]`: how long, at what arrival rate (open loop) or concurrency
//! (closed loop), recorded or not.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dur::Dur;

/// One phase of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub duration: Dur,
    /// Open loop: arrivals per second.
    pub rate: Option<Rate>,
    /// Open loop: exponential gaps with the same mean (default false: even spacing).
    #[serde(default)]
    pub poisson: bool,
    /// Closed loop: connections each looping request → response.
    pub concurrency: Option<usize>,
    /// Closed loop: pause after each response.
    pub think_time: Option<Dur>,
    /// False for warm-up: run but don't record (default true).
    pub record: Option<bool>,
}

/// An arrival rate over a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Rate {
    /// Constant requests per second.
    Constant(f64),
    /// Linear ramp across the phase.
    Ramp(Ramp),
    /// Equal-length steps across the phase.
    Steps(Steps),
    /// `base`, except `peak` for `length` starting `at` into the phase.
    Spike(Spike),
}

/// `{ from = 500, to = 5000 }`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    pub from: f64,
    pub to: f64,
}

/// `{ steps = [500, 1000, 2000] }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Steps {
    pub steps: Vec<f64>,
}

/// `{ base = 500, peak = 5000, at = "5s", length = "1s" }`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    pub base: f64,
    pub peak: f64,
    pub at: Dur,
    pub length: Dur,
}

impl Phase {
    /// Records unless `record = false`.
    pub fn recorded(&self) -> bool {
        self.record.unwrap_or(true)
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !super::value::valid_name(&self.name) {
            return Err(("name", "use letters, digits, '-', '_' or '.'".into()));
        }
        if self.duration.0.is_zero() {
            return Err(("duration", "must be greater than zero".into()));
        }
        match (&self.rate, self.concurrency) {
            (Some(_), Some(_)) => {
                return Err((
                    "concurrency",
                    "give rate (open loop) or concurrency (closed loop), not both".into(),
                ));
            }
            (None, None) => {
                return Err((
                    "rate",
                    "missing: give rate (open loop) or concurrency (closed loop)".into(),
                ));
            }
            (None, Some(0)) => return Err(("concurrency", "must be at least 1".into())),
            (Some(r), None) => r
                .validate(self.duration.0)
                .map_err(|m| ("rate", m.to_owned()))?,
            (None, Some(_)) => {}
        }
        if self.rate.is_some() && self.think_time.is_some() {
            return Err(("think_time", "only for closed loop (concurrency)".into()));
        }
        if self.concurrency.is_some() && self.poisson {
            return Err(("poisson", "only for open loop (rate)".into()));
        }
        Ok(())
    }
}

impl Rate {
    fn validate(&self, duration: Duration) -> Result<(), &'static str> {
        let ok = |r: f64| (0.0..=10_000_000.0).contains(&r);
        let all = match self {
            Rate::Constant(r) => vec![*r],
            Rate::Ramp(Ramp { from, to }) => vec![*from, *to],
            Rate::Steps(Steps { steps }) if steps.is_empty() => {
                return Err("steps must not be empty");
            }
            Rate::Steps(Steps { steps }) => steps.clone(),
            Rate::Spike(Spike {
                base,
                peak,
                at,
                length,
            }) => {
                if at.0 + length.0 > duration {
                    return Err("the spike ends after the phase");
                }
                vec![*base, *peak]
            }
        };
        if !all.iter().all(|r| ok(*r)) {
            return Err("rates must be between 0 and 10,000,000 requests per second");
        }
        if all.iter().all(|r| *r == 0.0) {
            return Err("the rate is zero throughout");
        }
        // A rate of 1e-300 would still send the request at t = 0 and
        // report "1.0 req/s": refuse a phase that cannot ask for one.
        let most = all.iter().copied().fold(0.0, f64::max);
        if most * duration.as_secs_f64() < 1.0 {
            return Err(
                "even the highest rate asks for less than one request in the phase \
                 (rate × duration < 1): raise the rate or lengthen the phase",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_must_ask_for_at_least_one_request() {
        let s = Duration::from_secs(1);
        assert!(Rate::Constant(1e-300).validate(s).is_err());
        assert!(Rate::Constant(0.9).validate(s).is_err());
        assert!(Rate::Constant(1.0).validate(s).is_ok());
        assert!(Rate::Constant(0.5).validate(2 * s).is_ok());
        // A ramp is judged by its highest rate.
        let ramp = |from, to| Rate::Ramp(Ramp { from, to });
        assert!(ramp(0.0, 1e-300).validate(s).is_err());
        assert!(ramp(0.0, 10.0).validate(s).is_ok());
    }
}
