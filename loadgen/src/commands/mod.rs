//! The commands built on runs: `calibrate` (this machine's resolution),
//! `capacity` (the highest rate an SLO holds at), `merge` (shards into one
//! run) and `provision` and `envoy` (a gateway made to know a scenario's
//! consumers).

pub mod calibrate;
pub mod capacity;
pub mod envoy;
pub mod merge;
pub mod provision;
pub mod slo;
