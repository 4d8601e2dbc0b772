//! What the workers see of `[[event]]`s while one target runs one round:
//! when each event was issued and took effect (set by the event thread,
//! read by the workers), the responses of the consumers events act on, and
//! from those, what each event measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use reports::events::{EventBucket, EventCall, EventResult, StatusCounts};

use crate::scenario::Action;

/// One event's moments in one (round, target) run, as nanoseconds since the
/// run's `base` plus one (0: not yet).
#[derive(Debug)]
pub struct Mark {
    pub action: Action,
    pub consumer: Option<usize>,
    issued: AtomicU64,
    effective: AtomicU64,
}

impl Mark {
    fn get(a: &AtomicU64) -> Option<u64> {
        a.load(Ordering::Acquire).checked_sub(1)
    }
}

/// The events of one (round, target) run, shared by its workers and its event thread.
#[derive(Debug)]
pub struct Watch {
    /// Phase 0's start: every time here is an offset from it.
    pub base: Instant,
    pub marks: Vec<Mark>,
    /// Per consumer index: whether an event acts on it.
    watched: Vec<bool>,
}

/// One response of a watched consumer's valid token.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub consumer: u32,
    /// Sent (or, never sent, when it was ready), ns since `base`.
    pub sent: u64,
    /// Done, ns since `base`.
    pub done: u64,
    /// 0: no response (an error or a timeout).
    pub status: u16,
}

/// A worker keeps at most this many responses of watched consumers per run
/// (16 bytes each); more are not kept, and the figures say so.
pub const MAX_SEEN: usize = 4_000_000;

impl Watch {
    pub fn new(base: Instant, marks: Vec<(Action, Option<usize>)>, consumers: usize) -> Watch {
        let mut watched = vec![false; consumers];
        for (_, c) in &marks {
            if let Some(c) = c
                && *c < consumers
            {
                watched[*c] = true;
            }
        }
        Watch {
            base,
            marks: marks
                .into_iter()
                .map(|(action, consumer)| Mark {
                    action,
                    consumer,
                    issued: AtomicU64::new(0),
                    effective: AtomicU64::new(0),
                })
                .collect(),
            watched,
        }
    }

    pub fn watches(&self, consumer: usize) -> bool {
        self.watched.get(consumer).copied().unwrap_or(false)
    }

    pub fn offset(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }

    pub fn set_issued(&self, i: usize, at: Instant) {
        self.marks[i]
            .issued
            .store(self.offset(at) + 1, Ordering::Release);
    }

    pub fn set_effective(&self, i: usize, at: Instant) {
        self.marks[i]
            .effective
            .store(self.offset(at) + 1, Ordering::Release);
    }

    /// Whether a valid token of `consumer` answered at `done` may be
    /// refused: from the first revoke issued for it, 401/403 and 2xx both
    /// count as expected, and the event's figures say which came when (stale
    /// accepts are the measurement, not a fault).
    pub fn refusal_allowed(&self, consumer: usize, done: Instant) -> bool {
        let at = self.offset(done);
        self.marks.iter().any(|m| {
            m.action == Action::Revoke
                && m.consumer == Some(consumer)
                && Mark::get(&m.issued).is_some_and(|i| i <= at)
        })
    }

    pub fn issued(&self, i: usize) -> Option<u64> {
        Mark::get(&self.marks[i].issued)
    }

    pub fn effective(&self, i: usize) -> Option<u64> {
        Mark::get(&self.marks[i].effective)
    }
}

fn refused(status: u16) -> bool {
    status == 401 || status == 403
}

fn accepted(status: u16) -> bool {
    (200..300).contains(&status)
}

/// What one event occurrence did and how it went, for [`measure`].
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub event: usize,
    pub round: u32,
    pub target: String,
    pub phase: String,
    pub action: Action,
    pub consumer: Option<(usize, String)>,
    pub calls: Vec<EventCall>,
    pub error: Option<String>,
    /// The phase's end, ns since `base`.
    pub phase_end: u64,
}

/// Measures one event from the watched responses (`seen`, sorted by send
/// time). `offset_s` is the run's `base` on the run's clock; `until` the
/// send time where this event's window ends (the consumer's next event, or
/// the phase's end); `done_before` the time the consumer's next event was
/// issued (`u64::MAX` without one): a response after it is not judged, since
/// it may have met that event's state.
pub fn measure(
    o: &Occurrence,
    watch: &Watch,
    idx: usize,
    seen: &[Seen],
    offset_s: f64,
    (until, done_before): (u64, u64),
) -> EventResult {
    let s = |ns: u64| offset_s + ns as f64 / 1e9;
    let issued = watch.issued(idx);
    let effective = watch.effective(idx).or(issued);
    let mut r = EventResult {
        event: o.event,
        round: o.round,
        target: o.target.clone(),
        phase: o.phase.clone(),
        action: o.action.name().into(),
        consumer: o.consumer.as_ref().map(|(_, n)| n.clone()),
        issued_s: issued.map_or(0.0, s),
        effective_s: effective.map_or(0.0, s),
        calls: o.calls.clone(),
        error: o.error.clone(),
        after: StatusCounts::default(),
        stale: None,
        stale_window_ns: None,
        first_new_ns: None,
        failed: None,
        buckets: Vec::new(),
    };
    let (Some((ci, _)), Some(issued), Some(effective)) = (&o.consumer, issued, effective) else {
        return r;
    };
    if o.error.is_some() {
        return r;
    }
    let mine = || seen.iter().filter(move |x| x.consumer as usize == *ci);
    // The responses this event is judged by: sent in its window, and done
    // before the consumer's next event was issued.
    let judged =
        || mine().filter(|x| x.sent >= effective && x.sent < until && x.done < done_before);
    for x in judged() {
        r.after.sent += 1;
        match x.status {
            st if accepted(st) => r.after.accepted += 1,
            st if refused(st) => r.after.refused += 1,
            _ => r.after.other += 1,
        }
    }
    // The answer the change should bring, and the one that is now stale.
    type Answer = fn(u16) -> bool;
    let (new, old): (Answer, Answer) = match o.action {
        Action::Revoke => (refused, accepted),
        Action::Restore | Action::Rotate | Action::JwksRotate => (accepted, refused),
        Action::Admin => return r,
    };
    r.first_new_ns = judged()
        .filter(|x| new(x.status))
        .map(|x| x.done.saturating_sub(effective))
        .min();
    match o.action {
        Action::Revoke | Action::Restore => {
            let stale: Vec<&Seen> = judged().filter(|x| old(x.status)).collect();
            r.stale = Some(stale.len() as u64);
            r.stale_window_ns = Some(stale.iter().map(|x| x.sent - effective).max().unwrap_or(0));
        }
        _ => {
            r.failed = Some(
                mine()
                    .filter(|x| x.sent >= issued && x.sent < until && x.done < done_before)
                    .filter(|x| !accepted(x.status))
                    .count() as u64,
            );
        }
    }
    r.buckets = buckets(mine(), (issued, effective, until));
    r
}

/// The consumer's responses per 100 ms, from 1 s before the event was
/// issued to the end of its window, by send time relative to `effective`.
fn buckets<'a>(
    mine: impl Iterator<Item = &'a Seen>,
    (issued, effective, until): (u64, u64, u64),
) -> Vec<EventBucket> {
    let mut buckets: Vec<EventBucket> = Vec::new();
    const STEP: u64 = 100_000_000;
    let from = issued.saturating_sub(1_000_000_000);
    for x in mine.filter(|x| x.sent >= from && x.sent < until) {
        let t_ms = ((x.sent as i64 - effective as i64).div_euclid(STEP as i64)) * 100;
        let b = match buckets.last_mut() {
            Some(b) if b.t_ms == t_ms => b,
            _ => {
                buckets.push(EventBucket {
                    t_ms,
                    accepted: 0,
                    refused: 0,
                    other: 0,
                });
                buckets.last_mut().expect("just pushed")
            }
        };
        match x.status {
            st if accepted(st) => b.accepted += 1,
            st if refused(st) => b.refused += 1,
            _ => b.other += 1,
        }
    }
    buckets
}
