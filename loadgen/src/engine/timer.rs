//! Microsecond-precise waits inside a worker's event loop: a timerfd
//! registered with tokio's reactor, so the worker thread wakes straight from
//! `epoll_wait` at the deadline (tokio's own timer rounds up to whole
//! milliseconds, which would put up to 1 ms of the generator's lateness into
//! every latency, as wrk2's millisecond timers do).

#![allow(
    clippy::disallowed_methods,
    reason = "the timer reads the clock to know how long to sleep and spin"
)]

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Bounds of the early-wake margin (see [`Sleeper::sleep_until`]).
const MIN_MARGIN_NS: u64 = 10_000;
const MAX_MARGIN_NS: u64 = 150_000;

/// One precise sleeper per worker (not shared between tasks).
pub struct Sleeper {
    fd: AsyncFd<Fd>,
    /// Spin the last stretch before a deadline (default) instead of trusting the wake-up.
    spin: bool,
    /// Running estimate of how late the timerfd wakes this thread (ns, EWMA 1/16).
    lateness_ns: u64,
}

impl std::fmt::Debug for Sleeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sleeper")
    }
}

impl Sleeper {
    /// Must be called inside a tokio runtime with I/O enabled.
    pub fn new(spin: bool) -> std::io::Result<Sleeper> {
        // Timer slack delays a thread's timed waits by up to 50 µs by default.
        let _ = nix::sys::prctl::set_timerslack(1);
        let tfd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // `AsyncFd::new` is deprecated because a type could hand out a
        // different or closed fd later; `Fd` owns its timerfd and always
        // returns that same open fd until it is dropped with the AsyncFd, which
        // is exactly the contract `register` asks callers to uphold.
        #[allow(deprecated)]
        let fd = AsyncFd::new(Fd(tfd))?;
        Ok(Sleeper {
            fd,
            spin,
            lateness_ns: 40_000,
        })
    }

    /// Returns at `deadline` (at once if it has passed).
    ///
    /// With spinning on, the timerfd fires a margin early (1.5× the measured
    /// wake-up lateness, 10–150 µs) and the task yields in a loop until the
    /// deadline: other tasks of the worker (responses) keep running, and the
    /// kernel's wake-up latency (40–90 µs on the VMs here) stays out of the
    /// send lag, at the cost of CPU while waiting.
    pub async fn sleep_until(&mut self, deadline: Instant) -> std::io::Result<()> {
        let margin = if self.spin {
            Duration::from_nanos((self.lateness_ns * 3 / 2).clamp(MIN_MARGIN_NS, MAX_MARGIN_NS))
        } else {
            Duration::ZERO
        };
        let now = Instant::now();
        if deadline <= now {
            return Ok(());
        }
        if deadline - now > margin {
            let wake = deadline - margin;
            self.wait_fd(wake - now).await?;
            let late = Instant::now().saturating_duration_since(wake);
            let late = u64::try_from(late.as_nanos())
                .unwrap_or(u64::MAX)
                .min(500_000);
            self.lateness_ns = (self.lateness_ns * 15 + late) / 16;
        }
        while Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    async fn wait_fd(&mut self, wait: Duration) -> std::io::Result<()> {
        let spec = TimeSpec::from_duration(wait);
        self.fd
            .get_ref()
            .0
            .set(Expiration::OneShot(spec), TimerSetTimeFlags::empty())?;
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            match guard.try_io(|fd| {
                nix::unistd::read(fd.get_ref().0.as_fd(), &mut buf).map_err(std::io::Error::from)
            }) {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_at_the_deadline_never_before() {
        for spin in [false, true] {
            wakes_on_time(spin).await;
        }
    }

    /// Never early; and not quantised to a 1 ms tick: the best of 50
    /// wake-ups is well within one (how late wake-ups are on a quiet machine
    /// is a benchmark, `benches/benches/timer.rs`, not a test: a loaded
    /// 2-core CI machine makes any bound on the median flaky).
    async fn wakes_on_time(spin: bool) {
        let mut s = Sleeper::new(spin).unwrap();
        let mut best = Duration::MAX;
        for _ in 0..50 {
            let deadline = Instant::now() + Duration::from_micros(700);
            s.sleep_until(deadline).await.unwrap();
            let now = Instant::now();
            assert!(now >= deadline, "woke {:?} early", deadline - now);
            best = best.min(now - deadline);
        }
        assert!(best < Duration::from_micros(500), "best lateness {best:?}");
    }
}
