//! What a run measures and what is made of it: per-request samples into
//! histograms ([`record`], [`breakdown`], [`hist`]), the machine's health
//! while it ran ([`health`]), the run's exact totals (`totals.json`,
//! [`totals`]) and the judged summary (`summary.json`, [`summarize`]).

pub mod breakdown;
pub mod health;
pub mod hist;
pub mod record;
pub mod summarize;
pub mod totals;
