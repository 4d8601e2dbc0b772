//! The documented range of every numeric field of a scenario (docs/scenario.md's
//! "Limits" table lists the same), checked by `validate` and `run` before
//! anything starts, and the machine's own limit on open files.

use std::time::Duration;

/// An inclusive range of a count field.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
}

impl Count {
    const fn new(key: &'static str, min: u64, max: u64) -> Count {
        Count { key, min, max }
    }

    /// `Err((key, message))` when `v` is outside the range.
    pub fn check(&self, v: Option<u64>) -> Result<(), (&'static str, String)> {
        match v {
            Some(v) if v < self.min || v > self.max => Err((
                self.key,
                format!(
                    "{v} is out of range: {} to {}",
                    group(self.min),
                    group(self.max)
                ),
            )),
            _ => Ok(()),
        }
    }
}

pub const ROUNDS: Count = Count::new("rounds", 1, 10_000);
pub const WORKERS: Count = Count::new("workers", 1, 256);
pub const MAX_IN_FLIGHT: Count = Count::new("max_in_flight", 1, 10_000_000);
/// Per target (and per shard); also bounded by the open-file limit.
pub const CONNECTIONS: Count = Count::new("connections", 1, 100_000);
pub const STREAMS: Count = Count::new("streams", 1, 10_000);
pub const CONCURRENCY: Count = Count::new("concurrency", 1, 1_000_000);
pub const WEIGHT: Count = Count::new("weight", 0, 1_000_000);
pub const POOL_SIZE: Count = Count::new("pool_size", 1, 100_000);
pub const CONSUMERS: Count = Count::new("count", 1, 1_000_000);
pub const GATEWAY_WORKERS: Count = Count::new("workers", 1, 256);
/// Rates, requests per second (0 allowed inside a ramp or step list).
pub const MAX_RATE: f64 = 10_000_000.0;
/// Every duration field: at most an hour (the duration parser enforces it).
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The shortest request and connect timeout.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Files a run needs besides its connections (results, hlogs, the
/// in-process servers' listeners, the runtime's own).
const RESERVED_FILES: u64 = 256;

/// The open-file limit a run can use: the hard limit, since a run raises
/// its soft limit to it first (`conn_guard::raise_open_files`, as the servers do).
pub fn open_files() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(u64::MAX, |(_, hard)| hard)
}

/// Whether `connections` (one target's, or the largest) fit this machine's
/// open-file limit.
pub fn check_open_files(connections: u64) -> Result<(), (&'static str, String)> {
    let limit = open_files();
    if connections.saturating_add(RESERVED_FILES) > limit {
        return Err((
            "connections",
            format!(
                "{} connections need {} open files, and this machine allows {} \
                 (ulimit -n): raise the limit, lower connections, or split the run \
                 into shards (--shard K/N)",
                group(connections),
                group(connections.saturating_add(RESERVED_FILES)),
                group(limit)
            ),
        ));
    }
    Ok(())
}

/// 10000000 → "10,000,000".
fn group(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_their_bounds() {
        assert_eq!(group(10_000_000), "10,000,000");
        assert_eq!(group(999), "999");
        assert!(CONNECTIONS.check(Some(16)).is_ok());
        assert!(CONNECTIONS.check(None).is_ok());
        let (key, msg) = CONNECTIONS.check(Some(4_294_967_296)).unwrap_err();
        assert_eq!(key, "connections");
        assert_eq!(msg, "4294967296 is out of range: 1 to 100,000");
    }

    #[test]
    fn the_open_file_limit_is_raised_and_checked() {
        let limit = open_files();
        assert!(limit >= 1024, "{limit}");
        assert_eq!(conn_guard::raise_open_files(), limit);
        assert!(check_open_files(16).is_ok());
        let (_, msg) = check_open_files(limit).unwrap_err();
        assert!(msg.contains("ulimit -n"), "{msg}");
    }
}
