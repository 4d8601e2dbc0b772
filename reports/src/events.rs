//! What `[[event]]`s measured: per event, per round and target, the Admin
//! API exchange and what the affected consumer's traffic did after it
//! (`summary.json` → `events`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One event in one round on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventResult {
    /// Index of the `[[event]]` in the scenario.
    pub event: usize,
    pub round: u32,
    pub target: String,
    pub phase: String,
    /// `revoke`, `restore`, `rotate`, `jwks-rotate` or `admin`.
    pub action: String,
    pub consumer: Option<String>,
    /// When it was issued, seconds since the run's start (the timeline's clock).
    pub issued_s: f64,
    /// The moment the change counts from, seconds since the run's start:
    /// revoke and restore, the Admin API's answer; rotate, when the tokens
    /// switched to the new key; jwks-rotate, when signing switched to the new kid.
    pub effective_s: f64,
    /// Every exchange the event made, in order.
    pub calls: Vec<EventCall>,
    /// Why the event failed (a call's status and body); then the figures
    /// below are absent and the run exits 4.
    pub error: Option<String>,
    /// The consumer's valid-token requests sent after `effective_s` until the
    /// phase ended (or the consumer's next event), and how they were answered.
    pub after: StatusCounts,
    /// revoke: requests sent after the Admin API's answer that were still
    /// accepted (2xx). restore: requests sent after the answer still refused
    /// (401/403). rotate and jwks-rotate: none (see `failed`).
    pub stale: Option<u64>,
    /// revoke and restore: the last stale request's send time minus
    /// `effective_s`, ns (0 when there was none): how long the old state held.
    pub stale_window_ns: Option<u64>,
    /// Time from `effective_s` to the first request sent after it that got the
    /// new answer, measured to that response (ns): revoke, the first refusal;
    /// restore, the first acceptance; rotate and jwks-rotate, the first
    /// acceptance of a token signed with the new key. Absent when none came.
    pub first_new_ns: Option<u64>,
    /// rotate and jwks-rotate: the consumer's valid-token requests sent from
    /// the event's start to the phase's end that were not accepted (goal 0).
    pub failed: Option<u64>,
    /// The consumer's valid-token responses per 100 ms from 1 s before the
    /// event to the end of its window, by when they were sent (the chart).
    pub buckets: Vec<EventBucket>,
}

/// One Admin API exchange (or file write) of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventCall {
    /// e.g. `DELETE /consumers/partner-acme/jwt/partner-acme`, `write jwks.json`.
    pub what: String,
    /// HTTP status (0 for a file write or no answer).
    pub status: u16,
    /// When it started, seconds since the run's start.
    pub at_s: f64,
    /// How long the exchange took, ns.
    pub took_ns: u64,
}

/// Responses by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusCounts {
    pub sent: u64,
    /// 2xx.
    pub accepted: u64,
    /// 401 or 403.
    pub refused: u64,
    /// Any other status, or no response (errors, timeouts).
    pub other: u64,
}

/// Responses to requests sent in one 100 ms bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventBucket {
    /// The bucket's start relative to `effective_s`, ms (negative: before).
    pub t_ms: i64,
    pub accepted: u64,
    pub refused: u64,
    pub other: u64,
}
