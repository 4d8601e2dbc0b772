//! The one histogram configuration every recorded duration uses, so that
//! histograms of any worker, round or shard add exactly.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Histograms track 1 ns to 1 hour at 3 significant digits.
pub const MAX_TRACKABLE_NS: u64 = 3_600_000_000_000;

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, 3)
        .unwrap_or_else(|e| unreachable!("valid bounds: {e}"))
}

/// A duration in whole nanoseconds, capped at what histograms track.
pub fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos())
        .unwrap_or(u64::MAX)
        .min(MAX_TRACKABLE_NS)
}
