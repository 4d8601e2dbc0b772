//! A latency distribution as percentiles, read from an HDR histogram.

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A distribution in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Percentiles {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p99: u64,
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    #[serde(rename = "p99.99")]
    pub p99_99: u64,
    pub max: u64,
}

/// The percentile names [`Percentiles::at`] and [`AddedPercentiles::at`](crate::summary::AddedPercentiles::at) know.
pub const PERCENTILES: [&str; 5] = ["p50", "p90", "p99", "p99.9", "p99.99"];

impl Percentiles {
    /// A percentile by name (`p50` … `p99.99`, `max`).
    pub fn at(&self, name: &str) -> Option<u64> {
        Some(match name {
            "p50" => self.p50,
            "p90" => self.p90,
            "p99" => self.p99,
            "p99.9" => self.p99_9,
            "p99.99" => self.p99_99,
            "max" => self.max,
            _ => return None,
        })
    }

    /// Reads the percentiles of a histogram of nanoseconds (all zero when empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let q = |q: f64| h.value_at_quantile(q);
        Self {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: q(0.5),
            p75: q(0.75),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v * 1000).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 10_000);
        assert!((p.p50 as f64 / 5_000_000.0 - 1.0).abs() < 0.001);
        assert!((p.p99 as f64 / 9_900_000.0 - 1.0).abs() < 0.001);
        let json = serde_json::to_value(p).unwrap();
        assert!(json.get("p99.9").is_some());
        assert_eq!(
            Percentiles::of(&Histogram::new(3).unwrap()),
            Percentiles::default()
        );
    }
}
