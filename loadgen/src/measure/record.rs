//! Per-worker recording: HDR histograms of latency, service time, send lag
//! (split into the generator's schedule lag and the wait for a free
//! connection), outside-upstream time and the timing breakdown (DNS, TCP
//! connect, TLS handshake, sending, waiting, receiving), plus status and
//! error counters, per request class. Recording allocates nothing; workers
//! hand their interval data to the collector once per second, where it is
//! merged with `add`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub use crate::measure::breakdown::{Breakdown, Opened, Timing};
pub use crate::measure::hist::{MAX_TRACKABLE_NS, new_hist, ns};
use reports::summary::{ClassResult, Counts, Percentiles};

/// A send ready more than this after its intended time counts as late; a
/// wait for a connection longer than this counts as `waited`.
pub const LATE: Duration = Duration::from_millis(1);

/// Why a request failed without a full response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Connect,
    Timeout,
    Reset,
    Tls,
    Protocol,
    Body,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        Self::Connect,
        Self::Timeout,
        Self::Reset,
        Self::Tls,
        Self::Protocol,
        Self::Body,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::Body => "body",
        }
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Response {
        status: u16,
        expected: bool,
        upstream: Option<Duration>,
        /// Body bytes received.
        bytes: u64,
    },
    Failed(ErrorClass),
}

/// One finished request.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub intended: Instant,
    /// How late the generator itself was ready to send (timer wake-up,
    /// token signing); the rest of `sent − intended`, less the opening of a
    /// connection, was connection wait.
    pub schedule_lag: Duration,
    /// None when the request never got onto a connection.
    pub sent: Option<Instant>,
    pub done: Instant,
    pub outcome: Outcome,
    /// Where the time between `sent` and `done` went, and what opening a
    /// connection for this request took.
    pub timing: Timing,
}

/// Everything recorded for one request class.
#[derive(Debug, Clone)]
pub struct ClassStats {
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    pub send_lag: Histogram<u64>,
    pub schedule_lag: Histogram<u64>,
    pub conn_wait: Histogram<u64>,
    pub outside: Histogram<u64>,
    pub breakdown: Breakdown,
    pub status: Vec<u64>,
    pub errors: [u64; 6],
    pub counts: Counts,
}

impl Default for ClassStats {
    fn default() -> Self {
        Self {
            latency: new_hist(),
            service: new_hist(),
            send_lag: new_hist(),
            schedule_lag: new_hist(),
            conn_wait: new_hist(),
            outside: new_hist(),
            breakdown: Breakdown::default(),
            status: vec![0; 600],
            errors: [0; 6],
            counts: Counts::default(),
        }
    }
}

impl ClassStats {
    /// Records one request (no allocation).
    pub fn record(&mut self, s: &Sample) {
        let c = &mut self.counts;
        let latency = s.done.saturating_duration_since(s.intended);
        let _ = self.latency.record(ns(latency));
        // The generator's lateness counts for every request it tried to
        // send, sent or not (a refused connection is not its fault).
        if s.schedule_lag > LATE {
            c.late += 1;
        }
        let _ = self.schedule_lag.record(ns(s.schedule_lag));
        let mut wait = Duration::ZERO;
        if let Some(sent) = s.sent {
            c.sent += 1;
            let lag = sent.saturating_duration_since(s.intended);
            // Opening a connection is its own phase, not a wait.
            let opening = s.timing.opened.map_or(Duration::ZERO, |o| o.total());
            wait = lag.saturating_sub(s.schedule_lag).saturating_sub(opening);
            if wait > LATE {
                c.waited += 1;
            }
            let _ = self.send_lag.record(ns(lag));
            let _ = self.conn_wait.record(ns(wait));
        }
        match s.outcome {
            Outcome::Response {
                status,
                expected,
                upstream,
                bytes,
            } => {
                c.completed += 1;
                c.bytes += bytes;
                if expected {
                    c.ok += 1;
                } else {
                    c.unexpected += 1;
                }
                if let Some(n) = self.status.get_mut(usize::from(status)) {
                    *n += 1;
                }
                if let Some(sent) = s.sent {
                    let service = s.done.saturating_duration_since(sent);
                    let _ = self.service.record(ns(service));
                    let before = [ns(s.schedule_lag), ns(wait)];
                    self.breakdown
                        .record(&s.timing, before, sent, s.done.max(sent));
                    if let Some(up) = upstream {
                        let _ = self.outside.record(ns(service.saturating_sub(up)));
                    }
                }
            }
            Outcome::Failed(e) => {
                c.errors += 1;
                if let Some(i) = ErrorClass::ALL.iter().position(|x| *x == e) {
                    self.errors[i] += 1;
                }
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &ClassStats) {
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        let _ = self.send_lag.add(&other.send_lag);
        let _ = self.schedule_lag.add(&other.schedule_lag);
        let _ = self.conn_wait.add(&other.conn_wait);
        let _ = self.outside.add(&other.outside);
        self.breakdown.add(&other.breakdown);
        for (a, b) in self.status.iter_mut().zip(&other.status) {
            *a = a.saturating_add(*b);
        }
        for (a, b) in self.errors.iter_mut().zip(&other.errors) {
            *a = a.saturating_add(*b);
        }
        self.counts += &other.counts;
    }

    /// The first counter whose sum with `other`'s would not fit a `u64`
    /// (`counts.sent`, `status[200]`, `errors[3]`), where [`ClassStats::add`]
    /// would saturate: a merge refuses such inputs instead.
    pub fn overflow_with(&self, other: &ClassStats) -> Option<String> {
        if let Some(f) = self.counts.overflow_with(&other.counts) {
            return Some(format!("counts.{f}"));
        }
        let over = |a: &[u64], b: &[u64]| {
            a.iter()
                .zip(b)
                .position(|(x, y)| x.checked_add(*y).is_none())
        };
        if let Some(code) = over(&self.status, &other.status) {
            return Some(format!("status[{code}]"));
        }
        over(&self.errors, &other.errors).map(|i| format!("errors[{i}]"))
    }

    /// Zeroes everything, keeping the allocations.
    pub fn reset(&mut self) {
        self.latency.reset();
        self.service.reset();
        self.send_lag.reset();
        self.schedule_lag.reset();
        self.conn_wait.reset();
        self.outside.reset();
        self.breakdown.reset();
        self.status.iter_mut().for_each(|n| *n = 0);
        self.errors = [0; 6];
        self.counts = Counts::default();
    }

    /// The summary form, with the recorded time in seconds for the achieved rate.
    pub fn result(
        &self,
        request: &str,
        phase: &str,
        seconds: f64,
        target_rps: Option<f64>,
        rounds: Vec<Percentiles>,
    ) -> ClassResult {
        ClassResult {
            request: request.to_owned(),
            phase: phase.to_owned(),
            counts: self.counts,
            achieved_rps: if seconds > 0.0 {
                self.counts.completed as f64 / seconds
            } else {
                0.0
            },
            target_rps,
            latency: Percentiles::of(&self.latency),
            service_time: Percentiles::of(&self.service),
            send_lag: Percentiles::of(&self.send_lag),
            schedule_lag: Percentiles::of(&self.schedule_lag),
            connection_wait: Percentiles::of(&self.conn_wait),
            outside_upstream: (!self.outside.is_empty()).then(|| Percentiles::of(&self.outside)),
            breakdown: self.breakdown.result(),
            status: (0u16..)
                .zip(&self.status)
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| (s, *n))
                .collect(),
            errors: ErrorClass::ALL
                .iter()
                .zip(&self.errors)
                .filter(|(_, n)| **n > 0)
                .map(|(e, n)| (e.name().to_owned(), *n))
                .collect::<BTreeMap<_, _>>(),
            rounds,
            token: None,
        }
    }
}

/// Parses `upstream;dur=<ms>` out of a `Server-Timing` header (other metrics ignored).
pub fn upstream_time(s: &str) -> Option<Duration> {
    s.split(',').find_map(|metric| {
        let mut parts = metric.trim().split(';');
        if parts.next()?.trim() != "upstream" {
            return None;
        }
        parts
            .find_map(|p| p.trim().strip_prefix("dur="))
            .and_then(|ms| {
                let ms: f64 = ms.trim_matches('"').parse().ok()?;
                (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1e3))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_timing() {
        let v = upstream_time;
        assert_eq!(v("upstream;dur=1.234"), Some(Duration::from_micros(1234)));
        assert_eq!(
            v("cache;desc=hit, upstream;desc=\"x\";dur=0.5"),
            Some(Duration::from_micros(500))
        );
        assert_eq!(v("db;dur=3"), None);
        assert_eq!(v("upstream;dur=nope"), None);
        assert_eq!(v("upstream;dur=-1"), None);
    }

    #[test]
    #[allow(clippy::disallowed_methods, reason = "a test's own reference time")]
    fn records_all_four_metrics() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = ClassStats::default();
        c.record(&Sample {
            intended: t0,
            schedule_lag: Duration::from_micros(1500),
            sent: Some(t0 + ms(2)),
            done: t0 + ms(10),
            outcome: Outcome::Response {
                status: 200,
                expected: true,
                upstream: Some(ms(5)),
                bytes: 7,
            },
            timing: Timing::default(),
        });
        c.record(&Sample {
            intended: t0,
            schedule_lag: Duration::ZERO,
            sent: None,
            done: t0 + ms(3),
            outcome: Outcome::Failed(ErrorClass::Connect),
            timing: Timing::default(),
        });
        let r = c.result("get", "steady", 1.0, None, vec![]);
        assert_eq!(
            (
                r.counts.sent,
                r.counts.completed,
                r.counts.ok,
                r.counts.errors
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(
            (r.counts.late, r.counts.waited, r.counts.bytes),
            (1, 0, 7),
            "1.5 ms of schedule lag is late; 0.5 ms of connection wait is not a wait"
        );
        assert!((r.schedule_lag.max as f64 / 1.5e6 - 1.0).abs() < 0.001);
        assert_eq!(
            r.schedule_lag.count, 2,
            "the unsent request's lag counts too"
        );
        assert!((r.connection_wait.p50 as f64 / 0.5e6 - 1.0).abs() < 0.001);
        assert!((r.latency.max as f64 / 10e6 - 1.0).abs() < 0.001);
        assert!((r.service_time.p50 as f64 / 8e6 - 1.0).abs() < 0.001);
        assert!((r.send_lag.p50 as f64 / 2e6 - 1.0).abs() < 0.001);
        assert!((r.outside_upstream.unwrap().p50 as f64 / 3e6 - 1.0).abs() < 0.001);
        assert_eq!(r.errors["connect"], 1);
        assert_eq!(r.status[&200], 1);
        let mut sum = ClassStats::default();
        sum.add(&c);
        sum.add(&c);
        assert_eq!(sum.counts.completed, 2);
        assert_eq!(sum.latency.len(), 4);
        sum.reset();
        assert_eq!(sum.latency.len(), 0);
    }

    #[test]
    #[allow(clippy::disallowed_methods, reason = "a test's own reference time")]
    fn the_breakdown_splits_a_request_into_phases_that_add_up() {
        let t0 = Instant::now();
        let us = Duration::from_micros;
        // Intended at 0; ready at 100 µs; a slot free at 300 µs; DNS 50,
        // connect 150, TLS 1,000 µs; written 1,520 → 1,530; first byte at
        // 2,530; done at 2,540.
        let opened = Opened {
            dns: Some(us(50)),
            connect: us(150),
            tls: Some(us(1000)),
        };
        let sample = Sample {
            intended: t0,
            schedule_lag: us(100),
            sent: Some(t0 + us(1520)),
            done: t0 + us(2540),
            outcome: Outcome::Response {
                status: 200,
                expected: true,
                upstream: None,
                bytes: 2,
            },
            timing: Timing {
                opened: Some(opened),
                written: Some(t0 + us(1530)),
                first_byte: Some(t0 + us(2530)),
            },
        };
        let mut c = ClassStats::default();
        c.record(&sample);
        // The same request on a kept-alive connection: no opening phases.
        c.record(&Sample {
            timing: Timing {
                opened: None,
                ..sample.timing
            },
            ..sample
        });
        let r = c.result("get", "steady", 1.0, None, vec![]);
        let b = r.breakdown.expect("a breakdown");
        let near = |got: u64, want: Duration| {
            assert!(
                (got as f64 / want.as_nanos() as f64 - 1.0).abs() < 0.001,
                "{got} ns vs {want:?}"
            );
        };
        assert_eq!(b.opened, 1);
        let (dns, connect, tls) = (b.dns.unwrap(), b.connect.unwrap(), b.tls.unwrap());
        assert_eq!((dns.count, connect.count, tls.count), (1, 1, 1));
        near(dns.p50, us(50));
        near(connect.p50, us(150));
        near(tls.p50, us(1000));
        near(b.sending.unwrap().p50, us(10));
        near(b.waiting.p50, us(1000));
        near(b.receiving.p50, us(10));
        assert_eq!(b.waiting.count, 2);
        // The wait for a slot is what is left once the opening is taken
        // out: 1,520 − 100 − 1,200 = 220 µs for the first request, and
        // 1,420 µs for the second, which opened nothing.
        near(r.connection_wait.min, us(220));
        near(r.connection_wait.max, us(1420));
        // Every phase of the first request adds up to its latency.
        let parts = [100, 220, 50, 150, 1000, 10, 1000, 10];
        assert_eq!(parts.iter().sum::<u64>(), 2540);
        // A failed request records no breakdown.
        let mut f = ClassStats::default();
        f.record(&Sample {
            outcome: Outcome::Failed(ErrorClass::Reset),
            ..sample
        });
        assert!(
            f.result("get", "steady", 1.0, None, vec![])
                .breakdown
                .is_none()
        );
    }
}
