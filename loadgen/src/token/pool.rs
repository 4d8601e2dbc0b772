//! The `pool` source: tokens signed before the run, re-signed in the
//! background before they expire; the send path only picks one.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::tokens::{Carried, Pooled, Tokens};

impl Tokens {
    /// Pool: signs every consumer's tokens for every class (in parallel).
    pub fn fill_pool(&self) {
        let now = self.clock.now();
        let slots = self.consumers.len() * self.classes.len();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let chunk = slots.div_ceil(threads).max(1);
        let this = self;
        let pool: Vec<Pooled> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..slots)
                .step_by(chunk)
                .map(|start| {
                    s.spawn(move || {
                        (start..(start + chunk).min(slots))
                            .map(|i| this.mint_slot(i, now))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let _ = self
            .pool
            .set(pool.into_iter().map(ArcSwap::from_pointee).collect());
    }

    pub(super) fn mint_slot(&self, i: usize, now: u64) -> Pooled {
        let (ci, slot) = (i / self.classes.len(), i % self.classes.len());
        (0..self.pool_size)
            .map(|_| {
                let (c, exp) = self.mint(self.classes[slot], ci, now);
                (Arc::new(c), exp)
            })
            .collect()
    }

    /// Whether a pool token to be replaced at `until` may be handed out at `now`.
    fn fresh(&self, until: u64, now: u64) -> bool {
        until > now + self.margin
    }

    /// Pool: re-signs the tokens within the refresh margin of expiry; returns how many.
    pub fn refresh(&self) -> usize {
        let now = self.clock.now();
        let mut n = 0;
        for (i, entry) in self.pool.get().into_iter().flatten().enumerate() {
            let current = entry.load();
            // Re-sign a little before the margin so the send path never has to.
            if current
                .iter()
                .all(|(_, until)| self.fresh(until.saturating_sub(2), now))
            {
                continue;
            }
            entry.store(Arc::new(self.mint_slot(i, now)));
            n += self.pool_size;
        }
        n
    }

    /// Pool: the token for request `seq`. Never one within the refresh margin
    /// of its expiry: if the refresh fell behind, it is signed here (counted).
    pub fn pooled(&self, slot: usize, ci: usize, seq: u64) -> Arc<Carried> {
        let class = self.classes[slot];
        // Not filled (a caller skipped fill_pool): sign here, and count it.
        let entry = self
            .pool
            .get()
            .and_then(|p| p.get(ci * self.classes.len() + slot));
        let Some(entry) = entry else {
            let (c, _) = self.mint(class, ci, self.clock.now());
            self.stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .on_send_path += 1;
            return Arc::new(c);
        };
        let tokens = entry.load();
        let (t, exp) = &tokens[(seq % tokens.len() as u64) as usize];
        let now = self.clock.now();
        if self.fresh(*exp, now) {
            return t.clone();
        }
        let (c, _) = self.mint(class, ci, now);
        self.stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .on_send_path += 1;
        Arc::new(c)
    }
}

/// Pool: re-signs tokens in the background until `stop` is set.
pub fn refresher(
    tokens: Arc<Tokens>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            tokens.refresh();
            std::thread::sleep(Duration::from_millis(250));
        }
    })
}
