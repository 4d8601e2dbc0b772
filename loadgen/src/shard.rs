//! One run spread over machines: which share of the global schedule a
//! process runs (`--shard K/N`), and the common wall-clock start every shard
//! waits for (`--start-at`).
//!
//! Shard K of N runs arrivals K, K+N, K+2N, … of the one seeded schedule, so
//! the union of the N shards is the one-machine schedule: same intended
//! times, same request classes and template values (they follow the global
//! arrival number). Every shard follows the same timeline of rounds and
//! targets from the common start, so their intervals line up and
//! `loadgen merge` can add them.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable a Kubernetes Indexed Job sets to the pod's index.
pub const INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// Why `--shard` or `--start-at` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard {0:?}: expected K/N (0 <= K < N) or auto/N")]
    Syntax(String),
    #[error("--shard {given:?}: K = {k} is not below N = {n}")]
    OutOfRange { given: String, k: u64, n: u64 },
    #[error("--shard auto/{n}: {INDEX_VAR} is not set (a Kubernetes Indexed Job sets it)")]
    NoIndex { n: u32 },
    #[error("--shard auto/{n}: {INDEX_VAR}={value:?} is not an index below {n}")]
    BadIndex { n: u32, value: String },
    #[error(
        "--start-at {0:?}: expected an RFC 3339 UTC time (2026-12-01T15:00:00Z) or unix seconds"
    )]
    StartAt(String),
}

/// This process's share of the schedule: arrivals `k, k+n, k+2n, …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub k: u32,
    pub n: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { k: 0, n: 1 }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl Shard {
    /// Whether global arrival `seq` is this shard's, and if so its number
    /// among this shard's arrivals.
    pub fn local(self, seq: u64) -> Option<u64> {
        let n = u64::from(self.n.max(1));
        (seq % n == u64::from(self.k)).then_some(seq / n)
    }

    /// This shard's share of `total` (closed-loop concurrency, say): the
    /// shares of all shards add up to `total`.
    pub fn share(self, total: usize) -> usize {
        let n = self.n.max(1) as usize;
        total / n + usize::from((self.k as usize) < total % n)
    }

    /// `K/N`, or `auto/N` with K from `index` (the value of [`INDEX_VAR`]).
    pub fn parse_with(s: &str, index: Option<&str>) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(s.to_owned());
        let (k, n) = s.trim().split_once('/').ok_or_else(syntax)?;
        let n: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(syntax)?;
        let k: u64 = if k.trim() == "auto" {
            let v = index.ok_or(ShardError::NoIndex { n })?;
            v.trim()
                .parse()
                .ok()
                .filter(|k| *k < u64::from(n))
                .ok_or_else(|| ShardError::BadIndex {
                    n,
                    value: v.to_owned(),
                })?
        } else {
            k.trim().parse().map_err(|_| syntax())?
        };
        if k >= u64::from(n) {
            return Err(ShardError::OutOfRange {
                given: s.to_owned(),
                k,
                n: u64::from(n),
            });
        }
        Ok(Shard { k: k as u32, n })
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        Shard::parse_with(s, std::env::var(INDEX_VAR).ok().as_deref())
    }
}

/// `--start-at`: RFC 3339 UTC (`2026-12-01T15:00:00Z`, fractions allowed)
/// or unix seconds (`1796137200`, `1796137200.5`).
pub fn parse_start_at(s: &str) -> Result<SystemTime, ShardError> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0)
            .then(|| UNIX_EPOCH + Duration::from_secs_f64(secs))
            .ok_or_else(|| ShardError::StartAt(s.to_owned()));
    }
    humantime::parse_rfc3339(t).map_err(|_| ShardError::StartAt(s.to_owned()))
}

/// Seconds since the epoch, as the result files record times.
pub fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The kernel's clock source and, where the kernel reports it, whether the
/// wall clock is synchronised: what the start skew of a shard depends on.
pub fn clock_source() -> String {
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
    format!("{source} (kernel clocksource); wall clock CLOCK_REALTIME")
}

/// This machine's name (the pod's name on Kubernetes).
pub fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_schedule() {
        for n in 1..=5u32 {
            let mut seen = vec![0; 100];
            for k in 0..n {
                let s = Shard { k, n };
                let mine: Vec<u64> = (0..100).filter(|q| s.local(*q).is_some()).collect();
                for q in &mine {
                    seen[*q as usize] += 1;
                }
                // Local numbers count this shard's arrivals from 0.
                let locals: Vec<u64> = mine.iter().filter_map(|q| s.local(*q)).collect();
                assert_eq!(locals, (0..mine.len() as u64).collect::<Vec<_>>());
            }
            assert!(seen.iter().all(|c| *c == 1), "n = {n}: {seen:?}");
            let shares: usize = (0..n).map(|k| Shard { k, n }.share(10)).sum();
            assert_eq!(shares, 10);
        }
    }

    #[test]
    fn parses_shard_flags() {
        let p = |s: &str, i: Option<&str>| Shard::parse_with(s, i);
        assert_eq!(p("1/4", None), Ok(Shard { k: 1, n: 4 }));
        assert_eq!(p("auto/4", Some("3")), Ok(Shard { k: 3, n: 4 }));
        assert_eq!(p("auto/4", None), Err(ShardError::NoIndex { n: 4 }));
        assert!(matches!(
            p("auto/4", Some("4")),
            Err(ShardError::BadIndex { .. })
        ));
        assert!(matches!(
            p("4/4", None),
            Err(ShardError::OutOfRange { k: 4, n: 4, .. })
        ));
        for bad in ["", "1", "1/0", "x/2", "1/-2", "-1/2"] {
            assert!(
                matches!(p(bad, None), Err(ShardError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert!(
            p("4/4", None)
                .unwrap_err()
                .to_string()
                .contains("K = 4 is not below N = 4")
        );
    }

    #[test]
    fn parses_start_times() {
        let t = parse_start_at("2026-12-01T15:00:00Z").unwrap();
        assert_eq!(unix_s(t), 1_796_137_200.0);
        assert_eq!(parse_start_at("1796137200").unwrap(), t);
        let half = parse_start_at("2026-12-01T15:00:00.5Z").unwrap();
        assert_eq!(half.duration_since(t).unwrap(), Duration::from_millis(500));
        assert_eq!(parse_start_at("1796137200.5").unwrap(), half);
        for bad in ["tomorrow", "-5", "2026-12-01 15:00", ""] {
            assert!(parse_start_at(bad).is_err(), "{bad:?}");
        }
    }
}
