//! The cap on open connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `max` connections open: [`Gate::admit`] waits for a free place
/// before the next `accept`, so further clients wait in the kernel's listen
/// backlog (and time out there, or are refused when it is full) instead of
/// costing descriptors and memory. Reaching the cap is logged, at most once
/// every 10 s.
#[derive(Debug)]
pub struct Gate {
    places: Arc<Semaphore>,
    max: usize,
    /// Unix seconds of the last "cap reached" log line.
    warned: AtomicU64,
    /// Which server, for the log line.
    what: &'static str,
}

/// One open connection's place; dropping it frees the place.
pub type Place = OwnedSemaphorePermit;

impl Gate {
    pub fn new(max: usize, what: &'static str) -> Gate {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Gate {
            places: Arc::new(Semaphore::new(max)),
            max,
            warned: AtomicU64::new(0),
            what,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.places.available_permits()
    }

    /// A place for the next connection, waiting while all are taken.
    pub async fn admit(&self) -> Place {
        if let Ok(p) = self.places.clone().try_acquire_owned() {
            return p;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let last = self.warned.load(Relaxed);
        if now >= last + 10
            && self
                .warned
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max = self.max,
                "{}: connection limit reached ({} open): new connections wait in the \
                 listen backlog until one closes (raise --max-connections)",
                self.what,
                self.max
            );
        }
        match self.places.clone().acquire_owned().await {
            Ok(p) => p,
            // The semaphore is never closed.
            Err(_) => unreachable!("the gate's semaphore is never closed"),
        }
    }
}
