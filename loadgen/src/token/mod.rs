//! Tokens for the requests of a run: `[auth]` resolved into consumers with
//! their keys (`consumers`), the token classes, valid and deliberately
//! invalid (`class`, `mint`), where a token goes in the request (`place`),
//! and the two sources:
//! - `pool` (default): tokens signed before the run and re-signed in the
//!   background before they expire, so no signing happens on the send path;
//! - `per-request` (`signer`): a fresh token (unique `jti`) for every request,
//!   signed by a thread per worker that runs ahead of the schedule through
//!   bounded queues. A worker that finds the queue empty waits; that wait is
//!   send lag, and it is counted (`signer_behind`).
//!
//! Nothing here knows the engine: the engine asks for a [`Carried`] and has
//! it [`Tokens::place`]d into its request.
mod class;
mod consumers;
mod error;
pub mod jwt;
pub mod keygen;
mod mint;
mod place;
mod pool;
mod signer;
mod spread;
mod tokens;

pub use consumers::{Consumer, consumer_json};
pub use error::TokenError;
pub use place::Put;
pub use pool::refresher;
pub use signer::{Feed, Source};
pub use tokens::{Carried, Clock, ManualClock, SignStats, SystemClock, Tokens};
