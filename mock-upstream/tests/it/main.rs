//! Integration tests: real servers on 127.0.0.1:0.

mod cli;
mod program;
mod protocols;
mod support;
