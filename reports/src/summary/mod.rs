//! `summary.json`: the result of one run, documented in `docs/summary-schema.md`
//! and, as JSON Schema generated from these types, `docs/summary.schema.json`
//! ([`json_schema`]). All durations are integer nanoseconds unless a field
//! name says otherwise.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::counts::{Counts, TickCounts};
use crate::interval::Interval;
pub use crate::percentiles::{PERCENTILES, Percentiles};

/// The JSON Schema of `summary.json`, generated from [`Summary`]; the copy
/// committed as `docs/summary.schema.json` is checked against it by a test.
pub fn json_schema() -> serde_json::Value {
    let mut v = serde_json::to_value(schemars::schema_for!(Summary)).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "title".into(),
            format!("gatebench summary.json, schema version {SCHEMA_VERSION}").into(),
        );
    }
    v
}

/// Bumped on any incompatible change to these types.
pub const SCHEMA_VERSION: u32 = 1;

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub schema_version: u32,
    /// e.g. `gatebench-loadgen 0.1.0`.
    pub tool: String,
    pub scenario_name: String,
    /// The scenario as loaded (after command-line overrides), as JSON.
    pub scenario: serde_json::Value,
    pub environment: Environment,
    /// Unix time of the start, seconds.
    pub start_unix_s: f64,
    pub duration_s: f64,
    /// True when the run was interrupted (Ctrl-C) or aborted: what ran is complete, the rest is missing.
    pub partial: bool,
    /// False when any target or class is invalid; see `invalid_reasons`.
    pub valid: bool,
    pub invalid_reasons: Vec<String>,
    /// What the targets did wrong (refused, reset or timed-out requests,
    /// unexpected statuses, sends dropped or unfinished because every
    /// connection was busy): the run measured them correctly, and exits 4.
    #[serde(default)]
    pub target_faults: Vec<String>,
    /// Plain advice that does not change the verdict, e.g. requests that
    /// waited for a free connection and how to avoid it.
    #[serde(default)]
    pub warnings: Vec<String>,
    pub health: Health,
    pub targets: Vec<TargetResult>,
    /// `[auth]`: how tokens were made (absent without it). Never holds secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSummary>,
    /// This run is one shard of a distributed run (`loadgen run --shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// This run is the merge of these shards (`loadgen merge`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRow>,
    /// What each `[[event]]` measured, per round and target (absent without events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<crate::events::EventResult>,
    /// What this machine could resolve when the run began (`loadgen run`
    /// calibrates first unless `calibrate = false`; absent then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::calibration::Calibration>,
    /// `loadgen capacity`: each target's capacity under the SLO and every
    /// step of the search (absent for other runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::capacity::Capacity>,
    /// `[precision]` (`loadgen run --precision`): the half-width the added
    /// intervals were to reach, the rounds it took, and whether it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::precision::Precision>,
}

/// A shard's place in a distributed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShardInfo {
    /// K of `--shard K/N`: this shard runs arrivals K, K+N, K+2N, … of the schedule.
    pub index: u32,
    /// N of `--shard K/N`.
    pub count: u32,
    /// The common start all shards waited for (`--start-at`), unix seconds.
    pub start_at_unix_s: Option<f64>,
    /// When this shard's first phase actually began minus the common start,
    /// on this shard's own clock (positive: late).
    pub start_skew_ns: Option<i64>,
    /// The clock the skew was read on.
    pub clock: String,
    /// The machine (the pod's name on Kubernetes).
    pub host: String,
    /// SHA-256 of the scenario as run (after command-line overrides).
    pub scenario_hash: String,
}

/// One shard of a merged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShardRow {
    #[serde(flatten)]
    pub shard: ShardInfo,
    /// Completed requests per second of all this shard's targets' recorded phases.
    pub achieved_rps: f64,
    pub valid: bool,
    pub invalid_reasons: Vec<String>,
    pub partial: bool,
    pub health: Health,
}

/// Token signing during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuthSummary {
    pub profile: String,
    /// `pool` or `per-request`.
    pub source: String,
    pub consumers: usize,
    /// Token classes the requests used.
    pub classes: Vec<String>,
    /// Time per signature (ns).
    pub signing: Percentiles,
    pub tokens_signed: u64,
    /// Pool tokens signed on the send path because the background refresh was late.
    pub signed_on_send_path: u64,
    /// Per-request: sends that found their signer's queue empty and waited (send lag).
    pub signer_behind: u64,
}

/// Where the run happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Environment {
    pub loadgen_version: String,
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub kernel: Option<String>,
    pub cpu_model: Option<String>,
}

/// The machine's own noise during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// How late a dedicated thread sleeping 1 ms in a loop woke up (ns).
    pub hiccup: Percentiles,
    /// CPU used by other processes, % of one core, averaged over the run.
    pub other_cpu_percent: f64,
    /// CPU used by loadgen's own process (including in-process builtin servers), % of one core.
    pub loadgen_cpu_percent: f64,
}

/// One target (a direct upstream or a gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetResult {
    pub name: String,
    pub urls: Vec<String>,
    pub baseline: bool,
    /// `http/1.1` or `h2`.
    pub http: String,
    pub connections: usize,
    /// Per request class and phase (recorded phases only).
    pub classes: Vec<ClassResult>,
    /// All recorded classes and phases together.
    pub total: ClassResult,
    /// For a non-baseline target: what it adds over the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Added>,
    /// One entry per second per phase, every phase (warm-ups included), in run order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Tick>,
    /// When each phase of each round ran for this target, in run order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Span>,
}

/// One phase of one round of one target, as scheduled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Span {
    pub round: u32,
    pub phase: String,
    pub recorded: bool,
    /// Seconds from the start of the run.
    pub start_s: f64,
    pub end_s: f64,
}

/// One second of one target in one phase: what the schedule asked for, what
/// came back, and the corrected latency of what completed in that second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tick {
    /// Seconds from the start of the run to the start of this second.
    pub t_s: f64,
    /// 0-based round.
    pub round: u32,
    pub phase: String,
    /// Whether the phase is recorded (warm-ups are not).
    pub recorded: bool,
    #[serde(flatten)]
    pub counts: TickCounts,
    /// Corrected latency of the responses completed in this second (0 when none).
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// What a target adds over the baseline: its corrected-latency percentile
/// minus the baseline's, in nanoseconds (negative when it was faster), over
/// the whole run and per round (rounds paired in run order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Added {
    pub baseline: String,
    /// Over all rounds.
    pub total: AddedPercentiles,
    /// The smallest and largest per-round difference at each percentile.
    pub rounds_min: AddedPercentiles,
    pub rounds_max: AddedPercentiles,
    /// The 95 % confidence interval of the mean per-round difference at
    /// each percentile (rounds are the unit: see `docs/statistics.md`);
    /// absent with fewer than 2 rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<AddedIntervals>,
    /// The target's own time outside the upstream (service time − Server-Timing), per request.
    pub outside_upstream: Option<Percentiles>,
    /// What the requests at the median latency spent in each phase, the
    /// target's beside the baseline's (empty when either has no breakdown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakdown: Vec<AddedPhase>,
    /// False when either side's numbers are invalid (see `invalid_reasons`): then these are not a result.
    pub valid: bool,
    pub invalid_reasons: Vec<String>,
}

/// One phase of the breakdown at p50: the mean of that phase over the
/// requests at the median latency (see [`Breakdown::at`]), in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddedPhase {
    pub phase: String,
    pub target_p50: u64,
    pub baseline_p50: u64,
    /// `target_p50 − baseline_p50`.
    pub added_p50: i64,
}

/// Differences in nanoseconds at the reported percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddedPercentiles {
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
    #[serde(rename = "p99.9")]
    pub p99_9: i64,
    #[serde(rename = "p99.99")]
    pub p99_99: i64,
}

/// An interval per reported percentile (ns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AddedIntervals {
    pub p50: Interval,
    pub p90: Interval,
    pub p99: Interval,
    #[serde(rename = "p99.9")]
    pub p99_9: Interval,
    #[serde(rename = "p99.99")]
    pub p99_99: Interval,
}

impl Summary {
    /// What target `t` added over its baseline in each round (rounds paired
    /// in run order); empty without an added figure or per-round data.
    pub fn added_per_round(&self, t: &TargetResult) -> Vec<AddedPercentiles> {
        let Some(base) = t
            .added
            .as_ref()
            .and_then(|a| self.targets.iter().find(|b| b.name == a.baseline))
        else {
            return Vec::new();
        };
        AddedPercentiles::per_round(t, base)
    }
}

impl Summary {
    /// Takes the calibration's floor into each added interval: at each
    /// percentile the per-round spread is at least the machine's own
    /// (`Calibration::noise_at`), a variance component measured apart from
    /// the run. Without a calibration the intervals stay as the rounds alone
    /// make them.
    pub fn floor_intervals(&mut self) {
        let Some(c) = self.calibration.clone() else {
            return;
        };
        let per_round: Vec<Vec<AddedPercentiles>> = self
            .targets
            .iter()
            .map(|t| self.added_per_round(t))
            .collect();
        for (t, rounds) in self.targets.iter_mut().zip(per_round) {
            if let Some(a) = &mut t.added {
                a.interval = AddedIntervals::floored(&rounds, |p| c.noise_at(p));
            }
        }
    }
}

impl AddedIntervals {
    /// The intervals of `per_round` differences; None with fewer than 2.
    pub fn of(per_round: &[AddedPercentiles]) -> Option<AddedIntervals> {
        Self::floored(per_round, |_| 0.0)
    }

    /// As [`AddedIntervals::of`], with `floor(percentile)` the least
    /// per-round spread (the machine's, from its calibration).
    pub fn floored(
        per_round: &[AddedPercentiles],
        floor: impl Fn(&str) -> f64,
    ) -> Option<AddedIntervals> {
        let at = |p: &str| {
            let d: Vec<f64> = per_round
                .iter()
                .filter_map(|r| r.at(p))
                .map(|v| v as f64)
                .collect();
            crate::interval::paired_floored(&d, floor(p))
        };
        Some(AddedIntervals {
            p50: at("p50")?,
            p90: at("p90")?,
            p99: at("p99")?,
            p99_9: at("p99.9")?,
            p99_99: at("p99.99")?,
        })
    }

    /// An interval by percentile name (`p50` … `p99.99`).
    pub fn at(&self, name: &str) -> Option<&Interval> {
        Some(match name {
            "p50" => &self.p50,
            "p90" => &self.p90,
            "p99" => &self.p99,
            "p99.9" => &self.p99_9,
            "p99.99" => &self.p99_99,
            _ => return None,
        })
    }
}

impl AddedPercentiles {
    /// A difference by percentile name (`p50` … `p99.99`).
    pub fn at(&self, name: &str) -> Option<i64> {
        Some(match name {
            "p50" => self.p50,
            "p90" => self.p90,
            "p99" => self.p99,
            "p99.9" => self.p99_9,
            "p99.99" => self.p99_99,
            _ => return None,
        })
    }

    /// `target − baseline` at each percentile.
    pub fn between(target: &Percentiles, baseline: &Percentiles) -> Self {
        let d = |a: u64, b: u64| a as i64 - b as i64;
        Self {
            p50: d(target.p50, baseline.p50),
            p90: d(target.p90, baseline.p90),
            p99: d(target.p99, baseline.p99),
            p99_9: d(target.p99_9, baseline.p99_9),
            p99_99: d(target.p99_99, baseline.p99_99),
        }
    }

    /// `target − baseline` in each round, rounds paired in run order.
    pub fn per_round(target: &TargetResult, baseline: &TargetResult) -> Vec<AddedPercentiles> {
        target
            .total
            .rounds
            .iter()
            .zip(&baseline.total.rounds)
            .map(|(t, b)| AddedPercentiles::between(t, b))
            .collect()
    }

    fn zip(self, o: Self, f: fn(i64, i64) -> i64) -> Self {
        Self {
            p50: f(self.p50, o.p50),
            p90: f(self.p90, o.p90),
            p99: f(self.p99, o.p99),
            p99_9: f(self.p99_9, o.p99_9),
            p99_99: f(self.p99_99, o.p99_99),
        }
    }
}

impl Added {
    /// The added-latency analysis of `target` against `baseline`; `invalid_reasons`
    /// are the run's reasons that concern either of them.
    pub fn of(
        target: &TargetResult,
        baseline: &TargetResult,
        invalid_reasons: Vec<String>,
    ) -> Added {
        let total = AddedPercentiles::between(&target.total.latency, &baseline.total.latency);
        let per_round = AddedPercentiles::per_round(target, baseline);
        let (rounds_min, rounds_max) = match per_round.split_first() {
            None => (total, total),
            Some((first, rest)) => rest.iter().fold((*first, *first), |(lo, hi), r| {
                (lo.zip(*r, i64::min), hi.zip(*r, i64::max))
            }),
        };
        Added {
            baseline: baseline.name.clone(),
            total,
            rounds_min,
            rounds_max,
            interval: AddedIntervals::of(&per_round),
            outside_upstream: target.total.outside_upstream,
            breakdown: match (
                target.total.breakdown.as_ref().and_then(|b| b.at("p50")),
                baseline.total.breakdown.as_ref().and_then(|b| b.at("p50")),
            ) {
                (Some(t), Some(b)) => t
                    .phases()
                    .iter()
                    .zip(b.phases())
                    .map(|(&(phase, t), (_, b))| AddedPhase {
                        phase: phase.to_owned(),
                        target_p50: t,
                        baseline_p50: b,
                        added_p50: t as i64 - b as i64,
                    })
                    .collect(),
                _ => Vec::new(),
            },
            valid: invalid_reasons.is_empty(),
            invalid_reasons,
        }
    }
}

/// One request class in one phase of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClassResult {
    /// The request name, or `*` for all.
    pub request: String,
    /// The phase name, or `*` for all.
    pub phase: String,
    pub counts: Counts,
    /// Completed requests per second of recorded time.
    pub achieved_rps: f64,
    /// Scheduled requests per second (open loop), if any.
    pub target_rps: Option<f64>,
    /// `done − intended`: corrected for coordinated omission; the headline.
    pub latency: Percentiles,
    /// `done − sent`: what closed-loop tools report.
    pub service_time: Percentiles,
    /// `sent − intended`: `schedule_lag` and `connection_wait` together.
    pub send_lag: Percentiles,
    /// From the intended send time to the moment the generator was ready to
    /// send it (its timer woke, its token was signed): the generator's own
    /// lateness, which decides whether the run is valid.
    #[serde(default)]
    pub schedule_lag: Percentiles,
    /// From ready to written: the wait for a free connection or HTTP/2
    /// stream (and for connecting). Caused by the target's response times
    /// and the connection budget, not by the generator; it stays in the
    /// corrected latency.
    #[serde(default)]
    pub connection_wait: Percentiles,
    /// `service time − upstream Server-Timing`, for responses that carried it.
    pub outside_upstream: Option<Percentiles>,
    /// Where each responded request's time went after it was sent (and,
    /// for requests that opened their connection, what opening it took).
    /// Absent when no request got a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
    pub status: BTreeMap<u16, u64>,
    /// Failures by class (`connect`, `timeout`, `reset`, `tls`, `protocol`, `body`).
    pub errors: BTreeMap<String, u64>,
    /// Latency percentiles of each round, for the round-to-round range.
    pub rounds: Vec<Percentiles>,
    /// The token class the request carried (`[auth]`), e.g. `valid`, `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The timing breakdown of the requests that got a response. With
/// `schedule_lag` and `connection_wait`, the phases add up to each
/// request's corrected latency: intended → ready (schedule lag) → a free
/// connection (connection wait) → DNS, TCP connect, TLS handshake (only when
/// the request opened its connection) → request written (`sending`) →
/// first response byte (`waiting`, time to first byte) → last byte
/// (`receiving`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Breakdown {
    /// Requests that opened the connection they went on (new-connection
    /// mode: all of them; keep-alive: the first on each connection and
    /// reconnects). `dns`, `connect` and `tls` count these only.
    pub opened: u64,
    /// Resolving the host name, for targets with `resolve = "per-connection"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Percentiles>,
    /// The TCP handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<Percentiles>,
    /// The TLS handshake (`https` targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Percentiles>,
    /// Writing the request (HTTP/1.1; HTTP/2 hands it to its connection
    /// task, and the writing is part of `waiting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<Percentiles>,
    /// From the request written to the first byte of the response (time to
    /// first byte; HTTP/2: to the response head).
    pub waiting: Percentiles,
    /// From the first byte to the last.
    pub receiving: Percentiles,
    /// What the requests at p50, p90 and p99 of latency were made of: each
    /// phase's mean over the responded requests whose latency fell in the
    /// 0.8 %-wide band holding that percentile. These add up to the band's
    /// latency, unlike each phase's own percentiles above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<PhasesAt>,
}

/// The mean phases of the requests at one percentile of latency (ns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PhasesAt {
    /// `p50`, `p90` or `p99`.
    pub percentile: String,
    /// Requests in the band.
    pub requests: u64,
    /// Their mean latency: the sum of the phases below.
    pub latency: u64,
    pub schedule_lag: u64,
    pub connection_wait: u64,
    pub dns: u64,
    pub connect: u64,
    pub tls: u64,
    pub sending: u64,
    pub waiting: u64,
    pub receiving: u64,
}

impl PhasesAt {
    /// The phases in request order, named as [`BREAKDOWN_PHASES`].
    pub fn phases(&self) -> [(&'static str, u64); 8] {
        let p = BREAKDOWN_PHASES;
        [
            (p[0], self.schedule_lag),
            (p[1], self.connection_wait),
            (p[2], self.dns),
            (p[3], self.connect),
            (p[4], self.tls),
            (p[5], self.sending),
            (p[6], self.waiting),
            (p[7], self.receiving),
        ]
    }
}

/// The breakdown's phases in request order, as [`PhasesAt::phases`] gives them.
pub const BREAKDOWN_PHASES: [&str; 8] = [
    "schedule lag",
    "connection wait",
    "dns",
    "connect",
    "tls",
    "sending",
    "waiting",
    "receiving",
];

/// What the breakdown table and chart show, for the report.
pub const BREAKDOWN_NOTE: &str = "What the requests at the median latency were made of: the mean of each phase over the responded requests whose latency lies in the 0.8 %-wide band that holds the median. The phases are the generator's schedule lag, the wait for a free connection, DNS (targets with `resolve = \"per-connection\"`), TCP connect and TLS handshake (for the requests that opened their connection), writing the request, waiting for the first response byte, and reading the rest; they add up to that latency. In brackets: the target's phase minus the baseline's. `summary.json` also has each phase's own percentiles, which need not add up.";

impl Breakdown {
    /// The phases of the requests at percentile `name` (`p50`, `p90`, `p99`).
    pub fn at(&self, name: &str) -> Option<&PhasesAt> {
        self.at.iter().find(|p| p.percentile == name)
    }
}

#[cfg(test)]
pub(crate) mod tests;
