//! A fast, programmable HTTP upstream for measuring what sits in front of it.
//!
//! Every response carries `Server-Timing: upstream;dur=<ms>` (microsecond
//! precision): the time from request head received to response head sent,
//! programmed delay included. A load generator subtracts it from its own
//! service time to isolate the share of a gateway and the network.
//!
//! Responses are programmed by defaults ([`Program`]) and per request by
//! `X-Mock-*` headers (see [`service`]). It serves HTTP/1.1 keep-alive,
//! HTTP/2 with prior knowledge (h2c), and TLS with ALPN.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mock_upstream::{Config, Program, spawn};
//! let program = Program { latency: "fixed:2ms".parse()?, ..Program::default() };
//! let server = spawn(Config { program, ..Config::default() }).await?;
//! println!("serving at {}", server.base_url());
//! server.shutdown().await; // graceful: in-flight requests finish
//! # Ok(()) }
//! ```

mod body;
pub mod config;
mod server;
pub mod service;
pub mod spec;
mod stall;
pub mod stats;
pub mod timer;

pub use config::{Config, JwksConfig, Program, StallSchedule, TlsConfig};
pub use server::{Handle, ServeError, spawn};
pub use service::EchoDoc;
pub use spec::{ExtraHeader, Latency, Size, SpecError, StatusMix};
pub use stats::StatsSnapshot;
