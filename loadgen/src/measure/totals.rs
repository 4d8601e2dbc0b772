//! What a run recorded, in the exact form that adds: per target × request
//! class × round, every histogram and counter, and the layout of phases and
//! requests the summary is computed from. The engine fills it, `results`
//! turns it into `summary.json`, and every run also writes it as
//! `totals.json`, so `loadgen merge` can add shards and compute the one
//! summary again, with the same code, from the same kind of data.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::measure::record::{ClassStats, MAX_TRACKABLE_NS};

/// The file every run writes beside `summary.json`.
pub const TOTALS_FILE: &str = "totals.json";
/// Bumped on any incompatible change to `totals.json`.
pub const TOTALS_VERSION: u32 = 3;

/// The histogram configuration every metric is recorded with; shards merge
/// only when theirs are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistConfig {
    pub lowest: u64,
    pub highest: u64,
    pub significant_digits: u8,
}

impl HistConfig {
    pub const THIS: HistConfig = HistConfig {
        lowest: 1,
        highest: MAX_TRACKABLE_NS,
        significant_digits: 3,
    };
}

/// One phase as the summary needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseLayout {
    pub name: String,
    pub record: bool,
    pub duration_s: f64,
    /// Open loop: the requests its schedule asks for in one round.
    pub expected: Option<f64>,
}

/// One request class as the summary needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLayout {
    pub name: String,
    /// `[auth]` token class.
    pub token: Option<String>,
}

/// Phases × requests: index `phase × requests + request` of every per-class list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub phases: Vec<PhaseLayout>,
    pub requests: Vec<RequestLayout>,
}

impl Layout {
    pub fn classes(&self) -> usize {
        self.phases.len() * self.requests.len()
    }

    /// Whether class `idx` belongs to a recorded phase.
    pub fn recorded(&self, idx: usize) -> bool {
        self.phases[idx / self.requests.len().max(1)].record
    }
}

/// Everything recorded for one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetTotals {
    pub name: String,
    pub urls: Vec<String>,
    pub baseline: bool,
    pub http2: bool,
    pub connections: usize,
    /// Concurrent requests per connection: HTTP/2 streams, 1 for HTTP/1.1.
    pub streams: usize,
    /// Per class (phase × requests + request), all rounds.
    pub classes: Vec<ClassStats>,
    /// Per class, the latency histogram of each round.
    #[serde(with = "per_class_rounds")]
    pub rounds: Vec<Vec<Histogram<u64>>>,
    /// Rounds that ran (fully or partly) for this target.
    pub rounds_run: u32,
    /// Per second and phase, in run order.
    pub timeline: Vec<reports::summary::Tick>,
    /// The latency of each timeline entry (its p50, p99 and max come from it).
    #[serde(with = "reports::hlog::b64::vec")]
    pub tick_latency: Vec<Histogram<u64>>,
    /// When each phase of each round ran.
    pub phases: Vec<reports::summary::Span>,
}

impl TargetTotals {
    /// The latency histogram of each round over the recorded classes.
    pub fn round_totals(&self, layout: &Layout) -> Vec<Histogram<u64>> {
        let mut rounds: Vec<Histogram<u64>> = (0..self.rounds_run)
            .map(|_| crate::measure::hist::new_hist())
            .collect();
        for (idx, per_round) in self.rounds.iter().enumerate() {
            if !layout.recorded(idx) {
                continue;
            }
            for (acc, h) in rounds.iter_mut().zip(per_round) {
                let _ = acc.add(h);
            }
        }
        rounds
    }
}

/// Each measured target's added latency per round against the baseline
/// target (none without one): what `[precision]` watches between rounds.
pub fn added_per_round<'t>(
    layout: &Layout,
    targets: &'t [TargetTotals],
) -> Vec<(&'t str, Vec<reports::summary::AddedPercentiles>)> {
    use reports::percentiles::Percentiles;
    use reports::summary::AddedPercentiles;
    let Some(base) = targets.iter().find(|t| t.baseline) else {
        return Vec::new();
    };
    let base_rounds: Vec<Percentiles> = base
        .round_totals(layout)
        .iter()
        .map(Percentiles::of)
        .collect();
    targets
        .iter()
        .filter(|t| !t.baseline)
        .map(|t| {
            let per_round = t
                .round_totals(layout)
                .iter()
                .zip(&base_rounds)
                .map(|(h, b)| AddedPercentiles::between(&Percentiles::of(h), b))
                .collect();
            (t.name.as_str(), per_round)
        })
        .collect()
}

mod per_class_rounds {
    use hdrhistogram::Histogram;
    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Rounds(#[serde(with = "reports::hlog::b64::vec")] Vec<Histogram<u64>>);

    pub fn serialize<S: Serializer>(v: &[Vec<Histogram<u64>>], s: S) -> Result<S::Ok, S::Error> {
        let rounds: Vec<Rounds> = v.iter().map(|r| Rounds(r.clone())).collect();
        rounds.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<Vec<Histogram<u64>>>, D::Error> {
        Ok(Vec::<Rounds>::deserialize(d)?
            .into_iter()
            .map(|r| r.0)
            .collect())
    }
}

/// `[auth]`'s figures, with the signing-time histogram they come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthTotals {
    pub summary: reports::summary::AuthSummary,
    #[serde(with = "reports::hlog::b64")]
    pub signing: Histogram<u64>,
}

/// The outcome of a run (or of merging shards), before it becomes a summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunData {
    pub version: u32,
    pub hist: HistConfig,
    pub seed: u64,
    pub layout: Layout,
    /// The share of the schedule this covers: 1 for a whole run, 1/N for a
    /// shard, the shards present over N for a merge.
    pub schedule_share: f64,
    pub targets: Vec<TargetTotals>,
    #[serde(with = "unix_time")]
    pub start: SystemTime,
    pub elapsed: Duration,
    pub partial: bool,
    #[serde(with = "reports::hlog::b64")]
    pub hiccup: Histogram<u64>,
    pub other_cpu_percent: f64,
    pub own_cpu_percent: f64,
    pub auth: Option<AuthTotals>,
    pub shard: reports::summary::ShardInfo,
    /// What each `[[event]]` measured, per round and target.
    #[serde(default)]
    pub events: Vec<reports::events::EventResult>,
    /// Events that failed or could not be undone (target faults).
    #[serde(default)]
    pub event_faults: Vec<String>,
    /// `[precision]`: what it asked for and what the rounds reached.
    #[serde(default)]
    pub precision: Option<reports::precision::Precision>,
}

mod unix_time {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(crate::shard::unix_s(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let secs = f64::deserialize(d)?;
        if !(secs.is_finite() && secs >= 0.0) {
            return Err(serde::de::Error::custom("start: not a time"));
        }
        Ok(UNIX_EPOCH + Duration::from_secs_f64(secs))
    }
}

/// A result file that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot read {} (written by `loadgen run` since the scale-out release): {source}",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not JSON: {source}", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: version {found:?} (this build reads {TOTALS_VERSION})", path.display())]
    Version { path: PathBuf, found: Option<u64> },
    #[error("{}: {source}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl ResultsError {
    /// A write of `path` that failed.
    pub fn write(path: &Path) -> impl FnOnce(std::io::Error) -> ResultsError {
        let path = path.to_owned();
        move |source| ResultsError::Write { path, source }
    }
}

impl RunData {
    /// Writes `totals.json` into `dir`, atomically.
    pub fn save(&self, dir: &Path) -> Result<(), ResultsError> {
        let path = dir.join(TOTALS_FILE);
        let json = serde_json::to_vec(self).map_err(|source| ResultsError::Format {
            path: path.clone(),
            source,
        })?;
        reports::write_atomic(&path, &json).map_err(ResultsError::write(&path))
    }

    /// Reads the `totals.json` of a results directory.
    pub fn load(dir: &Path) -> Result<RunData, ResultsError> {
        let path = dir.join(TOTALS_FILE);
        let bytes = reports::read_input(&path).map_err(|source| ResultsError::Read {
            path: path.clone(),
            source,
        })?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| ResultsError::NotJson {
                path: path.clone(),
                source,
            })?;
        let found = v.get("version").and_then(serde_json::Value::as_u64);
        if found != Some(u64::from(TOTALS_VERSION)) {
            return Err(ResultsError::Version { path, found });
        }
        serde_json::from_value(v).map_err(|source| ResultsError::Format { path, source })
    }
}

/// `ClassStats` as it is stored: histograms encoded, statuses sparse.
mod class_serde {
    use std::collections::BTreeMap;

    use hdrhistogram::Histogram;
    use serde::{Deserialize, Serialize};

    use crate::measure::record::ClassStats;

    #[derive(Serialize, Deserialize)]
    struct Stored {
        #[serde(with = "reports::hlog::b64")]
        latency: Histogram<u64>,
        #[serde(with = "reports::hlog::b64")]
        service: Histogram<u64>,
        #[serde(with = "reports::hlog::b64")]
        send_lag: Histogram<u64>,
        #[serde(with = "reports::hlog::b64")]
        schedule_lag: Histogram<u64>,
        #[serde(with = "reports::hlog::b64")]
        conn_wait: Histogram<u64>,
        #[serde(with = "reports::hlog::b64")]
        outside: Histogram<u64>,
        #[serde(with = "reports::hlog::b64::vec")]
        breakdown: Vec<Histogram<u64>>,
        opened: u64,
        /// (band, requests, phase sums) of the non-empty latency bands.
        by_latency: Vec<(usize, u64, [u64; 8])>,
        status: BTreeMap<u16, u64>,
        errors: [u64; 6],
        counts: reports::summary::Counts,
    }

    impl Serialize for ClassStats {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            Stored {
                latency: self.latency.clone(),
                service: self.service.clone(),
                send_lag: self.send_lag.clone(),
                schedule_lag: self.schedule_lag.clone(),
                conn_wait: self.conn_wait.clone(),
                outside: self.outside.clone(),
                breakdown: self
                    .breakdown
                    .phases()
                    .iter()
                    .map(|(_, h)| (*h).clone())
                    .collect(),
                opened: self.breakdown.opened,
                by_latency: self.breakdown.by_latency.sparse(),
                status: (0u16..)
                    .zip(&self.status)
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, n)| (k, *n))
                    .collect(),
                errors: self.errors,
                counts: self.counts,
            }
            .serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for ClassStats {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let st = Stored::deserialize(d)?;
            let Ok([dns, connect, tls, sending, waiting, receiving]) =
                <[Histogram<u64>; 6]>::try_from(st.breakdown)
            else {
                return Err(serde::de::Error::custom("breakdown: expected 6 histograms"));
            };
            let mut c = ClassStats {
                breakdown: crate::measure::record::Breakdown {
                    dns,
                    connect,
                    tls,
                    sending,
                    waiting,
                    receiving,
                    opened: st.opened,
                    by_latency: crate::measure::breakdown::ByLatency::from_sparse(&st.by_latency)
                        .ok_or_else(|| {
                        serde::de::Error::custom("by_latency: band out of range")
                    })?,
                },
                latency: st.latency,
                service: st.service,
                send_lag: st.send_lag,
                schedule_lag: st.schedule_lag,
                conn_wait: st.conn_wait,
                outside: st.outside,
                errors: st.errors,
                counts: st.counts,
                ..ClassStats::default()
            };
            for (k, n) in st.status {
                match c.status.get_mut(usize::from(k)) {
                    Some(slot) => *slot = n,
                    None => return Err(serde::de::Error::custom(format!("status {k}"))),
                }
            }
            Ok(c)
        }
    }
}
