//! `[[event]]`s measured through real gateways: revocation, a known stale
//! window, key rotations, a JWKS rotation, failed Admin calls. In a test
//! binary of their own, one at a time (`serial`): their figures are
//! millisecond timings that other tests' load would blur.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time their own deadlines; the send-path rule is for the library"
)]

mod admin_faults;
mod breakdown;
mod calibration;
mod capacity;
mod events;
mod metrics;
use loadgen_test_support as support;

pub use support::{serial, server_runtime};
