//! Integration tests: loadgen driven through its parsed command line against
//! real servers on 127.0.0.1:0.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time their own deadlines; the send-path rule is for the library"
)]

use loadgen_test_support as support;

mod auth;
mod cli;
mod cmd;
mod curves;
mod engine;
mod envoy;
mod extremes;
mod init;
mod oneline;
mod props;
mod report;
mod scale;
mod tokens;
