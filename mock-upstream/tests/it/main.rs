//! Integration tests: real servers on 127.0.0.1:0.

#![allow(clippy::disallowed_methods, reason = "tests time their own deadlines")]

mod cli;
mod program;
mod protocols;
mod support;
