//! Machine health recorded with every run: a hiccup probe (a thread sleeping
//! 1 ms in a loop, recording how late it wakes) and the CPU used by other
//! processes, read from `/proc`.

#![allow(
    clippy::disallowed_methods,
    reason = "the hiccup probe measures how late its own sleeps wake"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::measure::record::new_hist;

/// A running hiccup probe.
#[derive(Debug)]
pub struct HiccupProbe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Histogram<u64>>,
}

impl HiccupProbe {
    pub fn start() -> std::io::Result<HiccupProbe> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hiccup-probe".into())
            .spawn(move || {
                let mut h = new_hist();
                let tick = Duration::from_millis(1);
                while !flag.load(Ordering::Relaxed) {
                    let before = Instant::now();
                    std::thread::sleep(tick);
                    let late = before.elapsed().saturating_sub(tick);
                    let _ = h.record(
                        u64::try_from(late.as_nanos())
                            .unwrap_or(u64::MAX)
                            .min(crate::measure::record::MAX_TRACKABLE_NS),
                    );
                }
                h
            })?;
        Ok(HiccupProbe { stop, thread })
    }

    /// Stops the probe; returns how late each 1 ms sleep woke (ns).
    pub fn finish(self) -> Histogram<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_else(|_| new_hist())
    }
}

/// CPU counters at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    /// Busy jiffies of the whole machine.
    machine_busy: u64,
    /// user + system jiffies of this process.
    own: u64,
}

impl CpuSample {
    pub fn now() -> Option<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
        let busy = cpu
            .iter()
            .take(8)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, v)| v)
            .sum();
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let after_comm = own_stat.rsplit_once(')')?.1;
        let f: Vec<&str> = after_comm.split_whitespace().collect();
        let own = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(CpuSample {
            at: Instant::now(),
            machine_busy: busy,
            own,
        })
    }

    /// (other processes, this process) in % of one core since `earlier`.
    pub fn since(&self, earlier: &CpuSample) -> (f64, f64) {
        let secs = self.at.duration_since(earlier.at).as_secs_f64();
        if secs <= 0.0 {
            return (0.0, 0.0);
        }
        // USER_HZ is 100 on every Linux configuration we run on.
        let hz = 100.0;
        let busy = self.machine_busy.saturating_sub(earlier.machine_busy) as f64 / hz;
        let own = self.own.saturating_sub(earlier.own) as f64 / hz;
        (((busy - own) / secs * 100.0).max(0.0), own / secs * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_records_wakeups() {
        let p = HiccupProbe::start().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let h = p.finish();
        assert!(h.len() >= 10, "{} wake-ups", h.len());
    }

    #[test]
    fn cpu_accounting_sees_own_work() {
        let a = CpuSample::now().unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let (_other, own) = CpuSample::now().unwrap().since(&a);
        assert!(own > 50.0, "own {own}%");
    }
}
