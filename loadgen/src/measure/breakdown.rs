//! The timing breakdown of a request: what opening its connection took
//! (DNS, TCP connect, TLS), then sending, waiting (time to first byte) and
//! receiving, with the schedule lag and connection wait before them. Each
//! phase is an HDR histogram; and, so that the phases of the requests *at*
//! a percentile can be shown adding up to it, every phase is also summed
//! per narrow band of latency ([`ByLatency`]). Recording allocates nothing.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use reports::summary::Percentiles;

use crate::measure::hist::{new_hist, ns};

/// What opening a connection took, step by step (each `None` when the
/// step did not happen: no per-connection resolution, no TLS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Opened {
    pub dns: Option<Duration>,
    pub connect: Duration,
    pub tls: Option<Duration>,
}

impl Opened {
    /// The whole opening.
    pub fn total(&self) -> Duration {
        self.dns.unwrap_or_default() + self.connect + self.tls.unwrap_or_default()
    }
}

/// The phases of one request after its connection was leased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// Set when this request opened the connection it went on.
    pub opened: Option<Opened>,
    /// When the request was completely written (HTTP/1; HTTP/2 hands the
    /// request to its connection task, so this stays `None` and the
    /// writing falls into `waiting`).
    pub written: Option<Instant>,
    /// When the first byte of the response arrived (HTTP/1), or its head
    /// (HTTP/2).
    pub first_byte: Option<Instant>,
}

/// The timing breakdown of the requests that got a response: each phase's
/// histogram, and how many requests opened a connection (DNS, connect and
/// TLS are recorded for those only).
#[derive(Debug, Clone)]
pub struct Breakdown {
    pub dns: Histogram<u64>,
    pub connect: Histogram<u64>,
    pub tls: Histogram<u64>,
    pub sending: Histogram<u64>,
    pub waiting: Histogram<u64>,
    pub receiving: Histogram<u64>,
    /// Requests that opened their connection.
    pub opened: u64,
    /// Every phase summed per band of latency: what the requests at a
    /// given percentile were made of.
    pub by_latency: ByLatency,
}

impl Default for Breakdown {
    fn default() -> Self {
        Self {
            dns: new_hist(),
            connect: new_hist(),
            tls: new_hist(),
            sending: new_hist(),
            waiting: new_hist(),
            receiving: new_hist(),
            opened: 0,
            by_latency: ByLatency::default(),
        }
    }
}

impl Breakdown {
    /// The phases by name, in the order a request goes through them.
    pub fn phases(&self) -> [(&'static str, &Histogram<u64>); 6] {
        [
            ("dns", &self.dns),
            ("connect", &self.connect),
            ("tls", &self.tls),
            ("sending", &self.sending),
            ("waiting", &self.waiting),
            ("receiving", &self.receiving),
        ]
    }

    fn phases_mut(&mut self) -> [&mut Histogram<u64>; 6] {
        [
            &mut self.dns,
            &mut self.connect,
            &mut self.tls,
            &mut self.sending,
            &mut self.waiting,
            &mut self.receiving,
        ]
    }

    /// Records a responded request's phases: `before` is its schedule lag
    /// and connection wait (in ns), `sent`..`done` the rest.
    pub(crate) fn record(&mut self, t: &Timing, before: [u64; 2], sent: Instant, done: Instant) {
        let mut phases = [before[0], before[1], 0, 0, 0, 0, 0, 0];
        if let Some(o) = t.opened {
            self.opened += 1;
            if let Some(d) = o.dns {
                phases[2] = ns(d);
                let _ = self.dns.record(phases[2]);
            }
            phases[3] = ns(o.connect);
            let _ = self.connect.record(phases[3]);
            if let Some(d) = o.tls {
                phases[4] = ns(d);
                let _ = self.tls.record(phases[4]);
            }
        }
        let written = t.written.unwrap_or(sent).clamp(sent, done);
        if t.written.is_some() {
            phases[5] = ns(written - sent);
            let _ = self.sending.record(phases[5]);
        }
        let first = t.first_byte.unwrap_or(done).clamp(written, done);
        phases[6] = ns(first - written);
        phases[7] = ns(done - first);
        let _ = self.waiting.record(phases[6]);
        let _ = self.receiving.record(phases[7]);
        self.by_latency.record(phases);
    }

    pub(crate) fn add(&mut self, other: &Breakdown) {
        for (a, (_, b)) in self.phases_mut().into_iter().zip(other.phases()) {
            let _ = a.add(b);
        }
        self.opened += other.opened;
        self.by_latency.add(&other.by_latency);
    }

    pub(crate) fn reset(&mut self) {
        self.phases_mut().into_iter().for_each(Histogram::reset);
        self.opened = 0;
        self.by_latency.reset();
    }

    /// The summary form (`None` when no request got a response).
    pub fn result(&self) -> Option<reports::summary::Breakdown> {
        let of = |h: &Histogram<u64>| (!h.is_empty()).then(|| Percentiles::of(h));
        Some(reports::summary::Breakdown {
            opened: self.opened,
            dns: of(&self.dns),
            connect: of(&self.connect),
            tls: of(&self.tls),
            sending: of(&self.sending),
            waiting: of(&self.waiting)?,
            receiving: of(&self.receiving)?,
            at: ["p50", "p90", "p99"]
                .into_iter()
                .zip([0.5, 0.9, 0.99])
                .filter_map(|(name, q)| self.by_latency.at(name, q))
                .collect(),
        })
    }
}

/// Sub-bands per doubling of latency: each band is 1/128 of its octave
/// wide, so its mean is within 0.8 % of any latency in it.
const BAND_BITS: u32 = 7;
const PER_OCTAVE: usize = 1 << BAND_BITS;
/// Latencies under 2^10 ns (1 µs) share the first octave's bands, linearly.
const FIRST_OCTAVE: u32 = 10;
/// The linear first band set, then octaves up to 2^42 ns (73 min, beyond
/// the 1 h the histograms track).
const OCTAVES: usize = 33;
/// The phases summed: schedule lag, connection wait, dns, connect, tls,
/// sending, waiting, receiving.
const PHASES: usize = 8;

/// Per band of latency: how many responded requests fell in it, and the
/// sum of each of their phases (ns). The phases of one request add up to
/// its latency, so a band's phase sums add up to its latency sum, and the
/// band holding a percentile tells what the requests at that percentile
/// were made of. Bands add exactly across workers, rounds and shards.
#[derive(Debug, Clone, PartialEq)]
pub struct ByLatency {
    counts: Vec<u64>,
    sums: Vec<[u64; PHASES]>,
}

impl Default for ByLatency {
    fn default() -> Self {
        let n = PER_OCTAVE * OCTAVES;
        Self {
            counts: vec![0; n],
            sums: vec![[0; PHASES]; n],
        }
    }
}

/// The band of a latency in ns.
fn band(latency: u64) -> usize {
    let octave = (u64::BITS - latency.leading_zeros()).saturating_sub(FIRST_OCTAVE);
    let i = if octave == 0 {
        (latency >> (FIRST_OCTAVE - BAND_BITS)) as usize
    } else {
        let shift = octave + FIRST_OCTAVE - 1 - BAND_BITS;
        octave as usize * PER_OCTAVE + ((latency >> shift) as usize & (PER_OCTAVE - 1))
    };
    i.min(PER_OCTAVE * OCTAVES - 1)
}

impl ByLatency {
    fn record(&mut self, phases: [u64; PHASES]) {
        let latency = phases.iter().sum();
        let i = band(latency);
        self.counts[i] += 1;
        for (s, p) in self.sums[i].iter_mut().zip(phases) {
            *s = s.saturating_add(p);
        }
    }

    fn add(&mut self, other: &ByLatency) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.saturating_add(*y);
            }
        }
    }

    fn reset(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.sums.iter_mut().for_each(|s| *s = [0; PHASES]);
    }

    /// The mean phases of the requests in the band that holds quantile `q`
    /// of the responded requests' latency.
    fn at(&self, name: &str, q: f64) -> Option<reports::summary::PhasesAt> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        let i = self.counts.iter().position(|c| {
            seen += c;
            seen >= rank
        })?;
        let n = self.counts[i];
        let mean = |k: usize| self.sums[i][k] / n;
        Some(reports::summary::PhasesAt {
            percentile: name.to_owned(),
            requests: n,
            latency: self.sums[i].iter().sum::<u64>() / n,
            schedule_lag: mean(0),
            connection_wait: mean(1),
            dns: mean(2),
            connect: mean(3),
            tls: mean(4),
            sending: mean(5),
            waiting: mean(6),
            receiving: mean(7),
        })
    }

    /// The non-empty bands, for `totals.json`: (band, count, sums).
    pub fn sparse(&self) -> Vec<(usize, u64, [u64; PHASES])> {
        (0..self.counts.len())
            .filter(|&i| self.counts[i] > 0)
            .map(|i| (i, self.counts[i], self.sums[i]))
            .collect()
    }

    /// The inverse of [`ByLatency::sparse`]; `None` for a band out of range.
    pub fn from_sparse(bands: &[(usize, u64, [u64; PHASES])]) -> Option<ByLatency> {
        let mut b = ByLatency::default();
        for &(i, n, sums) in bands {
            *b.counts.get_mut(i)? = n;
            b.sums[i] = sums;
        }
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_are_narrow_and_ordered() {
        let mut last = 0;
        for v in (0..40)
            .map(|e| 1u64 << e)
            .flat_map(|p| [p, p + p / 3, p + p / 2])
        {
            let i = band(v);
            assert!(i >= last, "{v}: band {i} after {last}");
            last = i;
        }
        // Two latencies 1 % apart above 1 µs never share a band.
        for v in [1_500u64, 99_000, 1_234_567, 987_654_321, 3_000_000_000_000] {
            assert_ne!(band(v), band(v + v / 100), "{v}");
        }
        assert_eq!(band(u64::MAX), PER_OCTAVE * OCTAVES - 1);
    }

    #[test]
    fn the_band_at_a_percentile_holds_its_requests_phases() {
        let mut b = ByLatency::default();
        // 90 requests of 1 ms (half of it TLS), 10 of 5 ms (waiting).
        for _ in 0..90 {
            b.record([0, 0, 0, 100_000, 500_000, 0, 400_000, 0]);
        }
        for _ in 0..10 {
            b.record([0, 0, 0, 0, 0, 0, 5_000_000, 0]);
        }
        let p50 = b.at("p50", 0.5).unwrap();
        assert_eq!(
            (p50.requests, p50.latency, p50.tls),
            (90, 1_000_000, 500_000)
        );
        let p99 = b.at("p99", 0.99).unwrap();
        assert_eq!(
            (p99.requests, p99.latency, p99.tls, p99.waiting),
            (10, 5_000_000, 0, 5_000_000)
        );
        let back = ByLatency::from_sparse(&b.sparse()).unwrap();
        assert_eq!(back, b);
        let mut twice = b.clone();
        twice.add(&b);
        assert_eq!(twice.at("p50", 0.5).unwrap().requests, 180);
        assert!(ByLatency::default().at("p50", 0.5).is_none());
    }
}
