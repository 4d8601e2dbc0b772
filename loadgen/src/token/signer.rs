//! The `per-request` source: a signer thread per worker keeps one bounded
//! queue per token class full, ahead of the schedule. A worker that finds a
//! queue empty waits (send lag) and it is counted (`signer_behind`).

#![allow(
    clippy::disallowed_methods,
    reason = "the signer paces its batches by the rate tokens were just used"
)]

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use super::tokens::{Carried, Tokens};

/// What one queue of a feed holds: tokens of class slot `.0`, for the
/// consumer `.1` a request pins, or spread over all consumers (None).
pub type Source = (usize, Option<usize>);

impl Tokens {
    /// Per-request: a signer thread feeding one worker, one queue per
    /// source (class, and the consumer a request pins, if any).
    pub fn feed(self: &Arc<Self>, seed: u64, capacity: usize, sources: &[Source]) -> Feed {
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in sources {
            let (tx, rx) = sync_channel::<(usize, Carried)>(capacity.max(1));
            senders.push(tx);
            receivers.push(rx);
        }
        let tokens = self.clone();
        let sources = sources.to_vec();
        let thread = std::thread::Builder::new()
            .name("loadgen-signer".into())
            .spawn(move || signer(tokens, (senders, sources), (seed, capacity.max(1))))
            .ok();
        Feed {
            receivers,
            _thread: thread,
        }
    }

    /// Per-request: the next token of queue `source` (an index into the
    /// sources the feed was made for) from the worker's feed, with its
    /// consumer. Empty means the signer is behind: the caller waits,
    /// without blocking its event loop, and that wait shows as send lag.
    pub fn try_next(&self, feed: &Feed, source: usize) -> Option<(usize, Carried)> {
        feed.receivers.get(source)?.try_recv().ok()
    }

    /// Counts one send that had to wait for its signer.
    pub fn note_behind(&self) {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).behind += 1;
    }
}

/// A worker's per-request token queues, one per source.
#[derive(Debug)]
pub struct Feed {
    receivers: Vec<Receiver<(usize, Carried)>>,
    _thread: Option<std::thread::JoinHandle<()>>,
}

/// A queue after one pass of the signer.
enum Queue {
    /// Filled to the brim.
    Full,
    /// A queue's worth sent and still not full: the signer is behind.
    Open,
    /// The worker is gone.
    Closed,
}

/// Keeps every queue full; consumers pinned, or picked by a seeded sequence
/// per queue.
/// It works in batches: each wake-up refills every queue to the brim, then
/// sleeps for about the time the workers take to use half of the smallest
/// queue at the rate they just used tokens (0.1–10 ms). At 1,000 req/s and
/// 256 tokens that is a wake-up every ~128 ms instead of one per token: a
/// signer beside the system under test (on the same cores, in-process)
/// otherwise shows up in its latency (measured: +20–30 µs at p50 through
/// the builtin gateway with a wake-up per token).
fn signer(
    tokens: Arc<Tokens>,
    (senders, sources): (Vec<SyncSender<(usize, Carried)>>, Vec<Source>),
    (seed, capacity): (u64, usize),
) {
    let mut pending: Vec<Option<(usize, Carried)>> = vec![None; senders.len()];
    let mut n = vec![0u64; senders.len()];
    let mut open = senders.len();
    let mut last = Instant::now();
    let mut sleep = Duration::from_micros(100);
    while open > 0 {
        open = 0;
        let mut most = 0u64;
        // Whether every open queue was found full (else the signer is
        // behind: no sleep).
        let mut all_full = true;
        for (slot, tx) in senders.iter().enumerate() {
            let mut sent = 0u64;
            // At most a queue's worth per pass, so that one class a slow
            // signer cannot keep up with does not starve the others.
            let state = loop {
                if sent >= capacity as u64 {
                    break Queue::Open;
                }
                let item = pending[slot].take().unwrap_or_else(|| {
                    let (class, pinned) = sources[slot];
                    let ci = tokens.consumer_of(pinned, seed ^ slot as u64, n[slot]);
                    n[slot] += 1;
                    (
                        ci,
                        tokens.mint(tokens.classes[class], ci, tokens.clock.now()).0,
                    )
                });
                match tx.try_send(item) {
                    Ok(()) => sent += 1,
                    Err(TrySendError::Full(item)) => {
                        pending[slot] = Some(item);
                        break Queue::Full;
                    }
                    Err(TrySendError::Disconnected(_)) => break Queue::Closed,
                }
            };
            match state {
                Queue::Full => open += 1,
                Queue::Open => {
                    open += 1;
                    all_full = false;
                }
                Queue::Closed => {}
            }
            most = most.max(sent);
        }
        let now = Instant::now();
        let elapsed = now.duration_since(last).max(Duration::from_micros(1));
        last = now;
        sleep = if most == 0 {
            (sleep * 2).min(Duration::from_millis(10))
        } else {
            // Half a queue at the rate the busiest class was just used.
            let per_token = elapsed / u32::try_from(most).unwrap_or(u32::MAX);
            (per_token * (capacity as u32 / 2).max(1))
                .clamp(Duration::from_micros(100), Duration::from_millis(10))
        };
        if open > 0 && all_full {
            std::thread::sleep(sleep);
        }
    }
}
