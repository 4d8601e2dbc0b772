//! `[[event]]`s in a (round, target) run: [`Events::begin`] starts its
//! event thread ([`thread`]) with the events that apply to the
//! target and the [`Watch`] its workers share; [`RunEvents::finish`] waits
//! for the undo and measures each event from the watched responses.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use reports::events::EventResult;

pub mod plan;
pub mod thread;
pub mod watch;

use crate::token::Tokens;
pub use plan::{Events, Planned};
use thread::{Running, SlotEvents, start};
use watch::{Seen, Watch, measure};

/// What [`Events::begin`] needs of a (round, target) run.
#[derive(Debug)]
pub struct Begin<'a> {
    pub target: &'a str,
    /// Whether the target checks tokens (no baseline, no `auth = false`).
    pub checks: bool,
    /// Phase 0's start.
    pub start: Instant,
    pub tokens: Option<Arc<Tokens>>,
    /// The target's Admin API (`target.admin`, or builtin:gateway's).
    pub admin: Option<String>,
    pub round: u32,
    /// Each phase's name, offset and duration.
    pub phases: &'a [(String, Duration, Duration)],
    pub stop: Arc<AtomicBool>,
}

/// The events of a running (round, target) run: the watch its workers
/// share, and the event thread.
#[derive(Debug)]
pub struct RunEvents {
    pub watch: Arc<Watch>,
    running: Running,
    target: String,
    round: u32,
}

impl Events {
    /// Starts the event thread of a (round, target) run, with the events
    /// that apply to it (None when none does).
    pub fn begin(&self, b: Begin<'_>) -> std::io::Result<Option<RunEvents>> {
        let events: Vec<Planned> = self
            .for_target(b.target, b.checks)
            .into_iter()
            .map(|i| self.events[i].clone())
            .collect();
        if events.is_empty() {
            return Ok(None);
        }
        let marks = events
            .iter()
            .map(|e| (e.spec.action, e.consumer.as_ref().map(|c| c.0)))
            .collect();
        let consumers = b.tokens.as_ref().map_or(0, |t| t.consumers.len());
        let watch = Arc::new(Watch::new(b.start, marks, consumers));
        let running = start(SlotEvents {
            events,
            tokens: b.tokens,
            watch: watch.clone(),
            admin: b.admin,
            round: b.round,
            target: b.target.to_owned(),
            phase_names: b.phases.iter().map(|p| p.0.clone()).collect(),
            phase_ends: b
                .phases
                .iter()
                .map(|p| (p.1 + p.2).as_nanos() as u64)
                .collect(),
            stop: b.stop,
        })?;
        Ok(Some(RunEvents {
            watch,
            running,
            target: b.target.to_owned(),
            round: b.round,
        }))
    }
}

impl RunEvents {
    /// After the traffic: waits for the undo, then measures each event from
    /// the watched responses (`seen`); `offset_s` is phase 0's start on the
    /// run's clock. Returns the figures and the events that failed.
    pub fn finish(self, mut seen: Vec<Seen>, offset_s: f64) -> (Vec<EventResult>, Vec<String>) {
        let (occurrences, undo) = self.running.finish();
        let mut faults = Vec::new();
        seen.sort_unstable_by_key(|s| s.sent);
        let w = &self.watch;
        let mut measured = Vec::new();
        for (k, o) in occurrences.iter().enumerate() {
            // The window ends at the consumer's next event, or the phase's
            // end. A response that came after the next event was issued may
            // have met that event's state: it is not judged.
            let next = occurrences[k + 1..]
                .iter()
                .position(|n| n.consumer.is_some() && n.consumer == o.consumer)
                .and_then(|j| w.issued(k + 1 + j))
                .filter(|&t| t < o.phase_end);
            let until = next.unwrap_or(o.phase_end);
            let mut r = measure(o, w, k, &seen, offset_s, (until, next.unwrap_or(u64::MAX)));
            for c in &mut r.calls {
                c.at_s += offset_s;
            }
            if let Some(e) = &r.error {
                faults.push(format!(
                    "{}: round {} event {} ({}): {e}",
                    self.target,
                    self.round + 1,
                    o.event,
                    o.action.name()
                ));
            }
            measured.push(r);
        }
        faults.extend(undo);
        (measured, faults)
    }
}
