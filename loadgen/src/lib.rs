//! gatebench's load generator: scenario files, the open- and closed-loop
//! traffic engine, HDR recording and result files.
//!
//! Latency is measured from each request's *intended* send time (from the
//! schedule, never from `now()` after a sleep), so a stalled target cannot
//! hide behind the generator waiting for it (coordinated omission). Each
//! request also records its service time (from the actual send), its send lag
//! (the generator's own lateness) and, when the upstream reports
//! `Server-Timing: upstream;dur=`, the time spent outside the upstream.
//!
//! ```no_run
//! use std::sync::{Arc, atomic::AtomicBool};
//! use clap::Parser;
//! let args = loadgen::cli::Args::parse_from(["loadgen", "run", "scenarios/quickstart.toml", "--quiet"]);
//! let exit = loadgen::cli::main_with(args, Arc::new(AtomicBool::new(false)));
//! ```

// Along the data flow: the scenario file, its tokens and arrival schedule,
// the engine that sends, what it measures; then the commands built on runs,
// and the command line.
pub mod admin_api;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod measure;
pub mod metrics;
pub mod scenario;
pub mod schedule;
pub mod seed;
pub mod shard;
pub mod template;
pub mod token;
