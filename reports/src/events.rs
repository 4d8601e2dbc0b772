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

impl EventResult {
    /// `revoke partner-acme`, `admin`.
    pub fn label(&self) -> String {
        match &self.consumer {
            Some(c) => format!("{} {c}", self.action),
            None => self.action.clone(),
        }
    }

    /// What the first answer of the new state is called, per action.
    fn new_answer(&self) -> &'static str {
        match self.action.as_str() {
            "revoke" => "first refusal",
            "restore" => "first acceptance",
            _ => "new key accepted",
        }
    }

    /// The exchanges: `DELETE 204 in 495us`.
    pub fn calls_text(&self) -> String {
        let calls: Vec<String> = self
            .calls
            .iter()
            .map(|c| {
                let verb = c.what.split(' ').next().unwrap_or("");
                let status = if c.status == 0 {
                    String::new()
                } else {
                    format!(" {}", c.status)
                };
                format!("{verb}{status} in {}", crate::fmt_ns(c.took_ns))
            })
            .collect();
        calls.join(", ")
    }

    /// The measured figures in words: stale answers, the first new one, failures.
    pub fn figures_text(&self) -> String {
        if let Some(e) = &self.error {
            return format!("FAILED: {e}");
        }
        let mut parts = Vec::new();
        let a = &self.after;
        if self.consumer.is_some() {
            parts.push(format!(
                "after: {} sent, {} accepted, {} refused, {} other",
                a.sent, a.accepted, a.refused, a.other
            ));
        }
        if let (Some(n), Some(w)) = (self.stale, self.stale_window_ns) {
            parts.push(format!("stale {n} (window {})", crate::fmt_ns(w)));
        }
        if let Some(f) = self.failed {
            parts.push(format!("failed {f}"));
        }
        if self.consumer.is_some() {
            parts.push(match self.first_new_ns {
                Some(ns) => format!("{} after {}", self.new_answer(), crate::fmt_ns(ns)),
                None => format!("no {}", self.new_answer()),
            });
        }
        parts.join("  ")
    }
}

/// The terminal's events section (empty without events).
pub fn render_text(events: &[EventResult]) -> String {
    if events.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "Events (stale: requests sent after the change took effect that still got the old answer)\n",
    );
    for e in events {
        s.push_str(&format!(
            "  round {} {}: {} at {:.3}s  [{}]\n    {}\n",
            e.round + 1,
            e.target,
            e.label(),
            e.effective_s,
            e.calls_text(),
            e.figures_text()
        ));
    }
    s
}

/// What the report's events table says above it.
pub const TABLE_NOTE: &str = "Per round and target: the Admin API exchanges (or file writes), the \
     affected consumer's valid-token requests sent after the change took effect, the stale ones \
     (revoke: still accepted; restore: still refused) with the last one's send time after the \
     change, the first response of the new state (to that response), and for rotations the \
     requests that were not accepted.";

/// The report's events table: headers and one row per event.
pub fn table(events: &[EventResult]) -> (Vec<String>, Vec<Vec<String>>) {
    let headers = [
        "round",
        "target",
        "event",
        "exchanges",
        "sent after",
        "accepted",
        "refused",
        "other",
        "stale",
        "stale window",
        "first new answer",
        "failed",
    ]
    .map(String::from)
    .to_vec();
    let opt = |v: Option<u64>| v.map_or("–".to_owned(), |v| v.to_string());
    let ns = |v: Option<u64>| v.map_or("–".to_owned(), crate::fmt_ns);
    let rows = events
        .iter()
        .map(|e| {
            let a = &e.after;
            vec![
                (e.round + 1).to_string(),
                e.target.clone(),
                e.label(),
                e.error
                    .as_ref()
                    .map_or_else(|| e.calls_text(), |x| format!("FAILED: {x}")),
                a.sent.to_string(),
                a.accepted.to_string(),
                a.refused.to_string(),
                a.other.to_string(),
                opt(e.stale),
                ns(e.stale_window_ns),
                ns(e.first_new_ns),
                opt(e.failed),
            ]
        })
        .collect();
    (headers, rows)
}
