//! Live metrics while a run goes: `loadgen run --metrics-listen ADDR`
//! serves them on `/metrics` as OpenMetrics text, which Prometheus scrapes.
//!
//! The engine's collector adds each second's merged intervals here (the
//! same numbers that go into the totals), so a scrape sees the run up to
//! its last whole second, and the last scrape after the run equals
//! `summary.json`. Every series is labelled with its target, request class
//! and phase, whether that phase is recorded, and the shard's index.
//!
//! Latency and schedule lag are exported twice: as Prometheus histograms
//! with fixed buckets from 50 µs to 10 s (which add up across shards and
//! over time windows), and as exact percentiles of the run so far from the
//! run's HDR histograms (the figures the report prints; they do not add up
//! across shards: `loadgen merge` does that exactly).

mod server;
mod state;

pub use server::Server;
pub use state::{BUCKETS, CONTENT_TYPE, Metrics, QUANTILES};

#[cfg(test)]
mod tests;
