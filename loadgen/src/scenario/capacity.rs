//! `[capacity]`: the defaults `loadgen capacity` takes from the scenario
//! (its flags override them), so a capacity scenario runs as it is.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Dur;

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
    /// Rounds per step (default 2).
    pub rounds: Option<u32>,
}
