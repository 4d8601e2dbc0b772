//! The `per-request` source: a signer thread per worker keeps one bounded
//! queue per token class full, ahead of the schedule. A worker that finds a
//! queue empty waits (send lag) and it is counted (`signer_behind`).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use super::tokens::{Carried, Tokens};

impl Tokens {
    /// Per-request: a signer thread feeding one worker, one queue per class.
    pub fn feed(self: &Arc<Self>, seed: u64, capacity: usize) -> Feed {
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in &self.classes {
            let (tx, rx) = sync_channel::<(usize, Carried)>(capacity.max(1));
            senders.push(tx);
            receivers.push(rx);
        }
        let tokens = self.clone();
        let thread = std::thread::Builder::new()
            .name("loadgen-signer".into())
            .spawn(move || signer(tokens, senders, seed))
            .ok();
        Feed {
            receivers,
            _thread: thread,
        }
    }

    /// Per-request: the next token of class `slot` from the worker's feed,
    /// with its consumer. Empty means the signer is behind: the caller waits,
    /// without blocking its event loop, and that wait shows as send lag.
    pub fn try_next(&self, feed: &Feed, slot: usize) -> Option<(usize, Carried)> {
        feed.receivers[slot].try_recv().ok()
    }

    /// Counts one send that had to wait for its signer.
    pub fn note_behind(&self) {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).behind += 1;
    }
}

/// A worker's per-request token queues.
#[derive(Debug)]
pub struct Feed {
    receivers: Vec<Receiver<(usize, Carried)>>,
    _thread: Option<std::thread::JoinHandle<()>>,
}

/// Keeps every queue full; consumers picked by a seeded sequence per class.
fn signer(tokens: Arc<Tokens>, senders: Vec<SyncSender<(usize, Carried)>>, seed: u64) {
    let mut pending: Vec<Option<(usize, Carried)>> = vec![None; senders.len()];
    let mut n = vec![0u64; senders.len()];
    let mut open = senders.len();
    while open > 0 {
        let mut progressed = false;
        open = 0;
        for (slot, tx) in senders.iter().enumerate() {
            let item = pending[slot].take().unwrap_or_else(|| {
                let ci = tokens.consumer_of(None, seed ^ slot as u64, n[slot]);
                n[slot] += 1;
                (
                    ci,
                    tokens.mint(tokens.classes[slot], ci, tokens.clock.now()).0,
                )
            });
            match tx.try_send(item) {
                Ok(()) => {
                    progressed = true;
                    open += 1;
                }
                Err(TrySendError::Full(item)) => {
                    pending[slot] = Some(item);
                    open += 1;
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}
