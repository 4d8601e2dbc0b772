//! `[[event]]`s measured through real gateways: revocation, a known stale
//! window, key rotations, a JWKS rotation, failed Admin calls. In a test
//! binary of their own, one at a time (`serial`): their figures are
//! millisecond timings that other tests' load would blur.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time their own deadlines; the send-path rule is for the library"
)]

mod breakdown;
mod calibration;
mod capacity;
mod events;
mod metrics;
#[path = "../it/support.rs"]
#[allow(
    dead_code,
    reason = "the helpers are shared with the integration tests"
)]
mod support;

pub use support::serial;

/// A one-thread runtime for the servers a test runs beside an in-process
/// loadgen (which starts runtimes of its own).
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}
