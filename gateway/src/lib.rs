//! gatebench's reference gateway: a reverse proxy with Kong's `jwt` and `acl`
//! plugin semantics (3.9.3), configured from Kong's declarative format.
//!
//! The verify path reads an atomically swapped [`config::Snapshot`]: routes,
//! credentials keyed by their `key` with decoding keys built once, consumers
//! with their ACL groups. Rejections carry Kong's statuses, exact bodies and
//! `WWW-Authenticate` values ([`auth::Reject`]).
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
pub mod config;
pub mod metrics;
pub mod proxy;
pub mod server;

pub use server::{Handle, Options, ServeError, spawn, start};

/// Seconds since the Unix epoch, as JWT `exp`/`nbf` count them.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
