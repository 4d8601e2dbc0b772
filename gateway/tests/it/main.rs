#![allow(clippy::disallowed_methods, reason = "tests time their own deadlines")]
mod admin;
mod bodies;
mod cli;
mod lean;
mod limits;
mod oidc;
mod parity;
mod props;
mod proxy;
mod semantics;
mod state;
mod support;
