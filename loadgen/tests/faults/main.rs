//! The verdict when the target fails, in a test binary of their own: one of
//! them starves the generator's CPU on purpose, so they run one at a time
//! (`serial`) and apart from the other tests' timing-sensitive runs.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time their own deadlines; the send-path rule is for the library"
)]

use loadgen_test_support as support;
mod verdict;

pub use support::serial;
