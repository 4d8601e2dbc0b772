//! `[precision]` (or `loadgen run --precision D`): add rounds until every
//! asked-for added figure's 95 % interval is at most ± D wide, up to a
//! ceiling. The rounds the scenario gives (`rounds`) are the floor.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dur::Dur;
use reports::summary::PERCENTILES;

/// The default ceiling on rounds.
pub const DEFAULT_MAX_ROUNDS: u32 = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrecisionSpec {
    /// The half-width to reach, e.g. `"10us"`: every asked-for added
    /// interval must be within ± this.
    pub half_width: Dur,
    /// The added percentiles it applies to (default `["p50"]`).
    pub at: Option<Vec<String>>,
    /// The most rounds to run (default 30); the run says so when it stops
    /// here short of the precision.
    pub max_rounds: Option<u32>,
}

impl PrecisionSpec {
    pub fn at(&self) -> Vec<String> {
        self.at.clone().unwrap_or_else(|| vec!["p50".to_owned()])
    }

    pub fn max_rounds(&self) -> u32 {
        self.max_rounds.unwrap_or(DEFAULT_MAX_ROUNDS)
    }

    /// Rules across the fields and the rounds floor: `(key, message)`.
    pub(super) fn validate(&self, rounds: u32) -> Result<(), (&'static str, String)> {
        if self.half_width.0.is_zero() {
            return Err(("half_width", "must be above 0".into()));
        }
        let at = self.at();
        if at.is_empty() {
            return Err(("at", "name at least one percentile".into()));
        }
        if let Some(p) = at.iter().find(|p| !PERCENTILES.contains(&p.as_str())) {
            return Err((
                "at",
                format!("{p:?}: expected one of {}", PERCENTILES.join(", ")),
            ));
        }
        super::limits::ROUNDS
            .check(self.max_rounds.map(u64::from))
            .map_err(|(_, m)| ("max_rounds", m))?;
        let floor = rounds.max(reports::precision::MIN_ROUNDS);
        if self.max_rounds() < floor {
            return Err((
                "max_rounds",
                format!(
                    "{} is below the rounds it starts with ({floor}: `rounds`, at least {})",
                    self.max_rounds(),
                    reports::precision::MIN_ROUNDS
                ),
            ));
        }
        Ok(())
    }
}
