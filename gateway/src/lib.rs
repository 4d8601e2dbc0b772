//! gatebench's reference gateway: a reverse proxy with Kong's `jwt` and `acl`
//! plugin semantics (3.9.3), configured from Kong's declarative format.
//!
//! The request path runs one way: [`server`] accepts, the current
//! [`snapshot::Snapshot`] (compiled by [`config`] from the file, swapped
//! atomically through [`snapshot::Live`] by the [`admin`] API) picks the
//! route, [`plugins`] run the [`auth`] checks, [`forward`] rewrites the
//! request and [`upstream`] sends it on. Every refusal is a
//! [`reject::Rejection`] with Kong's status, exact body and
//! `WWW-Authenticate`, declared in one place.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = gateway::config::Declarative::load(std::path::Path::new("kong.yml"))?;
//! let gw = gateway::spawn(config.compile()?, "127.0.0.1:0".parse()?).await?;
//! println!("proxy listening on {}", gw.proxy_url());
//! gw.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod auth;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod forward;
pub mod lean;
pub mod metrics;
pub mod plugins;
pub mod reject;
pub mod server;
pub mod shards;
pub mod snapshot;
pub mod upbody;
pub mod upstream;

pub use server::{Core, Handle, Options, ServeError, limits, spawn, spawn_core, spawn_with, start};
