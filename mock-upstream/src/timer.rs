//! Microsecond-precise async sleeps that never block a runtime worker.
//!
//! tokio's timer wheel has a 1 ms tick and rounds every deadline up to the
//! next tick, so `tokio::time::sleep(1ms)` resolves after 1–2 ms: far too
//! coarse for an upstream whose programmed delay is read back to within
//! 100 µs. Here a single dedicated thread keeps a heap of deadlines and waits
//! on a condition variable with its timer slack set to 1 ns (the Linux default
//! is 50 µs). It wakes a little before each deadline (twice its measured
//! wake-up lateness, 20–300 µs) and spins the rest, then completes the waiting
//! future through a oneshot channel. Worker threads only push to the heap;
//! the spinning costs CPU only while delayed responses are pending.

#![allow(
    clippy::disallowed_methods,
    reason = "the timer reads the clock to know how long to sleep"
)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

struct Entry {
    deadline: Instant,
    seq: u64,
    tx: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

struct TimerThread {
    queue: Mutex<Queue>,
    wake: Condvar,
}

fn timer() -> &'static TimerThread {
    static TIMER: OnceLock<&'static TimerThread> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static TimerThread = Box::leak(Box::new(TimerThread {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("precise-timer".into())
            .spawn(move || t.run())
            .unwrap_or_else(|e| panic!("cannot start the precise timer thread: {e}"));
        t
    })
}

/// Bounds of the early-wake margin: the thread wakes this much before a
/// deadline and spins the rest, so the kernel's wake-up latency is absorbed.
const MIN_MARGIN: Duration = Duration::from_micros(20);
const MAX_MARGIN: Duration = Duration::from_micros(300);
/// Longest single spin before the queue is looked at again.
const SPIN_SLICE: Duration = Duration::from_micros(20);

impl TimerThread {
    fn run(&self) {
        // Best effort: without it, wake-ups are up to 50 µs late (the default slack).
        #[cfg(target_os = "linux")]
        let _ = nix::sys::prctl::set_timerslack(1);
        // Running estimate of how late the kernel wakes this thread (ns, EWMA 1/16).
        let mut lateness_ns: u64 = 50_000;
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            while q.heap.peek().is_some_and(|e| e.0.deadline <= now) {
                if let Some(Reverse(e)) = q.heap.pop() {
                    // The receiver may be gone (request cancelled): nothing to do.
                    let _ = e.tx.send(());
                }
            }
            let Some(next) = q.heap.peek().map(|e| e.0.deadline) else {
                q = self.wake.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            let margin = Duration::from_nanos(2 * lateness_ns).clamp(MIN_MARGIN, MAX_MARGIN);
            let wake_at = next.checked_sub(margin).unwrap_or(next);
            if now >= wake_at {
                // Inside the margin: spin (unlocked, so others can register).
                drop(q);
                let until = next.min(now + SPIN_SLICE);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                continue;
            }
            let (guard, timeout) = self
                .wake
                .wait_timeout(q, wake_at - now)
                .unwrap_or_else(|p| p.into_inner());
            q = guard;
            if timeout.timed_out() {
                let late = Instant::now().saturating_duration_since(wake_at);
                // Clamp so that a rare platform hiccup does not inflate the margin.
                let late = u64::try_from(late.as_nanos())
                    .unwrap_or(u64::MAX)
                    .min(500_000);
                lateness_ns = (lateness_ns * 15 + late) / 16;
            }
        }
    }

    fn register(&self, deadline: Instant) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let earliest = q.heap.peek().is_none_or(|e| deadline < e.0.deadline);
        q.seq += 1;
        let seq = q.seq;
        q.heap.push(Reverse(Entry { deadline, seq, tx }));
        drop(q);
        if earliest {
            self.wake.notify_one();
        }
        rx
    }
}

/// How long a waiting task takes to resume after the timer thread completes
/// its channel (waking a parked runtime worker: 5–40 µs on a VM), as a
/// running average (ns, EWMA 1/8). The timer fires that much early, and the
/// task spins the little that is left, so it resumes at its deadline instead
/// of one cross-thread wake-up after it: the response then leaves within a
/// few µs of the `Server-Timing` stamp and of the programmed delay.
static RESUME_NS: AtomicU64 = AtomicU64::new(20_000);
/// The early firing is never more than this.
const MAX_RESUME: Duration = Duration::from_micros(150);

/// Delays up to this long are spun on the calling worker instead of handed
/// to the timer thread: a hand-off and a wake-up cost tens of µs on a VM,
/// as much as the delay itself, and a known small effect (+10 µs on one
/// path) must read back as itself. The worker is held for at most this long.
pub const SPIN_BELOW: Duration = Duration::from_micros(100);

/// Resolves at `deadline`, within a few microseconds of it.
pub fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
    let now = Instant::now();
    let spun = deadline <= now + SPIN_BELOW;
    if spun {
        while Instant::now() < deadline {
            std::hint::spin_loop();
        }
    }
    let early = Duration::from_nanos(RESUME_NS.load(Relaxed)).min(MAX_RESUME);
    let fire = deadline.checked_sub(early).unwrap_or(deadline).max(now);
    let rx = (!spun).then(|| timer().register(fire));
    async move {
        let Some(rx) = rx else { return };
        let _ = rx.await;
        let resumed = Instant::now();
        // Learn from this wake-up (clamped: a descheduled worker is no sample).
        let took = u64::try_from(resumed.saturating_duration_since(fire).as_nanos())
            .unwrap_or(u64::MAX)
            .min(MAX_RESUME.as_nanos() as u64);
        let avg = RESUME_NS.load(Relaxed);
        RESUME_NS.store((avg * 7 + took) / 8, Relaxed);
        while Instant::now() < deadline {
            std::hint::spin_loop();
        }
    }
}

/// Resolves after `duration`, typically within tens of microseconds of it.
pub fn sleep(duration: Duration) -> impl Future<Output = ()> + Send + 'static {
    sleep_until(Instant::now() + duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_wakes_early_and_orders_deadlines() {
        let start = Instant::now();
        let a = tokio::spawn(async move {
            sleep_until(start + Duration::from_millis(30)).await;
            Instant::now()
        });
        let b = tokio::spawn(async move {
            sleep_until(start + Duration::from_millis(10)).await;
            Instant::now()
        });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(b >= start + Duration::from_millis(10));
        assert!(a >= start + Duration::from_millis(30));
        assert!(b < a);
        // A deadline in the past resolves at once.
        sleep_until(start).await;
    }

    /// The task resumes at its deadline, not a cross-thread wake-up after
    /// it (which is what puts the response out of step with Server-Timing):
    /// never early, and at the median within 3 µs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn resumes_at_the_deadline_not_a_wake_up_after_it() {
        let mut late = Vec::new();
        for _ in 0..300 {
            let deadline = Instant::now() + Duration::from_micros(200);
            sleep_until(deadline).await;
            let now = Instant::now();
            assert!(now >= deadline, "woke early");
            late.push(now - deadline);
        }
        late.sort();
        // Measured: p50 0.1 µs with the early firing, 5.7 µs without.
        assert!(
            late[150] < Duration::from_micros(3),
            "p50 {:?}, p90 {:?}",
            late[150],
            late[270]
        );
    }

    /// A delay below SPIN_BELOW is spun where it is awaited: never early,
    /// and at the median within 1 µs of a 10 µs deadline (a hand-off to the
    /// timer thread and back costs tens of µs on a VM).
    #[tokio::test(flavor = "current_thread")]
    async fn small_delays_are_spun_to_the_microsecond() {
        let mut late = Vec::new();
        for _ in 0..300 {
            let deadline = Instant::now() + Duration::from_micros(10);
            sleep_until(deadline).await;
            let now = Instant::now();
            assert!(now >= deadline, "woke early");
            late.push(now - deadline);
        }
        late.sort();
        assert!(late[150] < Duration::from_micros(1), "p50 {:?}", late[150]);
    }
}
