//! Scale-out tests, in a test binary of their own: they start several
//! loadgen processes at once, and cargo runs test binaries one after another,
//! so those processes never compete for the CPU with other tests' runs.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time their own deadlines; the send-path rule is for the library"
)]

mod hostile;
mod shards;
use loadgen_test_support as support;
