//! What the run has done so far, and its OpenMetrics encoding.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use reports::summary::Counts;

use crate::measure::record::{ClassStats, ErrorClass, new_hist};
use crate::shard::Shard;

/// Upper bounds (seconds) of the histograms' buckets: 50 µs to 10 s, about
/// three per decade, fine where a gateway's added latency lives.
pub const BUCKETS: [f64; 22] = [
    50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 2e-3, 3e-3, 5e-3, 7.5e-3, 10e-3, 20e-3,
    30e-3, 50e-3, 75e-3, 100e-3, 200e-3, 500e-3, 1.0, 2.0, 10.0,
];

/// The percentiles exported exactly, as the report prints them.
pub const QUANTILES: [(f64, &str); 4] =
    [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// The content type of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a run has done so far, for `/metrics`.
pub struct Metrics {
    shard: u32,
    inner: Mutex<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    series: BTreeMap<Key, Series>,
    /// Every (target, phase, recorded) of the plan, for the phase gauge.
    slots: Vec<(String, String, bool)>,
    rounds: u32,
    now: Option<Now>,
    finished: bool,
}

/// A series: one request class in one phase of one target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    target: String,
    request: String,
    phase: String,
}

struct Series {
    recorded: bool,
    counts: Counts,
    status: BTreeMap<u16, u64>,
    errors: [u64; 6],
    latency: Histogram<u64>,
    schedule_lag: Histogram<u64>,
}

impl Series {
    fn new(recorded: bool) -> Series {
        Series {
            recorded,
            counts: Counts::default(),
            status: BTreeMap::new(),
            errors: [0; 6],
            latency: new_hist(),
            schedule_lag: new_hist(),
        }
    }
}

/// Where the run is: round (1-based), target and phase.
struct Now {
    round: u32,
    target: String,
    phase: String,
}

impl Metrics {
    pub fn new(shard: Shard) -> Arc<Metrics> {
        Arc::new(Metrics {
            shard: shard.k,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The run's layout: its targets × phases (and which are recorded),
    /// request classes and rounds. Every series then starts at 0, so a
    /// dashboard's `rate()` sees the first second's counts.
    pub fn plan(&self, targets: &[&str], phases: &[(&str, bool)], requests: &[&str], rounds: u32) {
        let mut m = self.lock();
        m.rounds = rounds;
        for t in targets {
            for &(p, recorded) in phases {
                m.slots.push(((*t).to_owned(), p.to_owned(), recorded));
                for r in requests {
                    m.series.insert(
                        Key {
                            target: (*t).to_owned(),
                            request: (*r).to_owned(),
                            phase: p.to_owned(),
                        },
                        Series::new(recorded),
                    );
                }
            }
        }
    }

    /// Adds one merged second of one request class in one phase.
    pub fn add(
        &self,
        target: &str,
        request: &str,
        (phase, recorded): (&str, bool),
        s: &ClassStats,
    ) {
        let key = Key {
            target: target.to_owned(),
            request: request.to_owned(),
            phase: phase.to_owned(),
        };
        let mut m = self.lock();
        let e = m.series.entry(key).or_insert_with(|| Series::new(recorded));
        e.counts += &s.counts;
        for (code, &n) in s.status.iter().enumerate().filter(|(_, n)| **n > 0) {
            *e.status.entry(code as u16).or_default() += n;
        }
        for (a, b) in e.errors.iter_mut().zip(&s.errors) {
            *a += b;
        }
        let _ = e.latency.add(&s.latency);
        let _ = e.schedule_lag.add(&s.schedule_lag);
    }

    /// Where the run is now (`phase` None: the target is connecting or draining).
    pub fn at(&self, round: u32, target: &str, phase: Option<&str>) {
        self.lock().now = phase.map(|p| Now {
            round,
            target: target.to_owned(),
            phase: p.to_owned(),
        });
    }

    /// The run is over: what `/metrics` shows now is final.
    pub fn finish(&self) {
        let mut m = self.lock();
        m.now = None;
        m.finished = true;
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn render(self: &Arc<Self>) -> String {
        let mut registry =
            Registry::with_labels([("shard".into(), self.shard.to_string().into())].into_iter());
        registry.register_collector(Box::new(Export(self.clone())));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// The collector a scrape encodes.
#[derive(Debug)]
struct Export(Arc<Metrics>);

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// A metric family: its name, help, and what it reads.
type Family<T, V> = (&'static str, &'static str, fn(&T) -> V);
type HistFamily = (&'static str, &'static str, fn(&Series) -> &Histogram<u64>);

impl Key {
    fn labels(&self, recorded: bool) -> Labels<'_> {
        vec![
            ("target", self.target.as_str()),
            ("request", self.request.as_str()),
            ("phase", self.phase.as_str()),
            ("recorded", if recorded { "true" } else { "false" }),
        ]
    }
}

impl Collector for Export {
    // long: the table of exported series, one entry per metric family
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let m = self.0.lock();
        let counts: [Family<Counts, u64>; 9] = [
            (
                "gatebench_requests_scheduled",
                "Sends the schedule asked for.",
                |c| c.scheduled,
            ),
            (
                "gatebench_requests_sent",
                "Requests whose first byte was written.",
                |c| c.sent,
            ),
            (
                "gatebench_requests_completed",
                "Responses read in full.",
                |c| c.completed,
            ),
            (
                "gatebench_requests_unexpected",
                "Responses with another status than the class expects.",
                |c| c.unexpected,
            ),
            (
                "gatebench_requests_errors",
                "Requests that failed without a full response.",
                |c| c.errors,
            ),
            (
                "gatebench_requests_dropped",
                "Sends not made: more than max_in_flight were waiting.",
                |c| c.dropped,
            ),
            (
                "gatebench_requests_unfinished",
                "Requests not completed when the run stopped.",
                |c| c.unfinished,
            ),
            (
                "gatebench_sends_late",
                "Sends ready more than 1 ms after their intended time.",
                |c| c.late,
            ),
            (
                "gatebench_sends_waited",
                "Sends that waited more than 1 ms for a connection or stream.",
                |c| c.waited,
            ),
        ];
        for (name, help, f) in counts {
            let mut fam = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (k, s) in &m.series {
                ConstCounter::new(f(&s.counts))
                    .encode(fam.encode_family(&k.labels(s.recorded))?)?;
            }
        }
        let mut fam = enc.encode_descriptor(
            "gatebench_response_bytes",
            "Response body bytes received.",
            None,
            MetricType::Counter,
        )?;
        for (k, s) in &m.series {
            ConstCounter::new(s.counts.bytes).encode(fam.encode_family(&k.labels(s.recorded))?)?;
        }
        let mut fam = enc.encode_descriptor(
            "gatebench_responses",
            "Responses read in full, by status code.",
            None,
            MetricType::Counter,
        )?;
        for (k, s) in &m.series {
            for (code, n) in &s.status {
                let code = code.to_string();
                let mut labels = k.labels(s.recorded);
                labels.push(("status", &code));
                ConstCounter::new(*n).encode(fam.encode_family(&labels)?)?;
            }
        }
        let mut fam = enc.encode_descriptor(
            "gatebench_errors",
            "Failures without a full response, by class.",
            None,
            MetricType::Counter,
        )?;
        for (k, s) in &m.series {
            for (class, n) in ErrorClass::ALL.iter().zip(s.errors) {
                let mut labels = k.labels(s.recorded);
                labels.push(("class", class.name()));
                ConstCounter::new(n).encode(fam.encode_family(&labels)?)?;
            }
        }
        let hists: [HistFamily; 2] = [
            (
                "gatebench_latency",
                "Latency from the intended send time to the last byte (corrected for coordinated omission).",
                |s| &s.latency,
            ),
            (
                "gatebench_schedule_lag",
                "From the intended send time to the generator being ready to send (its own lateness).",
                |s| &s.schedule_lag,
            ),
        ];
        for (name, help, f) in hists {
            let mut fam =
                enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
            for (k, s) in &m.series {
                let (sum, count, buckets) = buckets(f(s));
                fam.encode_family(&k.labels(s.recorded))?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
            let pname = format!("{name}_percentile");
            let mut fam = enc.encode_descriptor(
                &pname,
                "Exact percentiles of the run so far (HDR histogram, as the report prints them).",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            for (k, s) in m.series.iter().filter(|(_, s)| !f(s).is_empty()) {
                for (q, qname) in QUANTILES {
                    let mut labels = k.labels(s.recorded);
                    labels.push(("quantile", qname));
                    let v = f(s).value_at_quantile(q) as f64 / 1e9;
                    ConstGauge::new(v).encode(fam.encode_family(&labels)?)?;
                }
            }
        }
        let round = m.now.as_ref().map_or(0, |n| n.round);
        gauge(
            &mut enc,
            "gatebench_round",
            "The round running now (1-based; 0 between targets and after the run).",
            i64::from(round),
        )?;
        gauge(
            &mut enc,
            "gatebench_rounds",
            "Rounds in the run.",
            i64::from(m.rounds),
        )?;
        gauge(
            &mut enc,
            "gatebench_run_finished",
            "1 when the run is over and these figures are final.",
            i64::from(m.finished),
        )?;
        let mut fam = enc.encode_descriptor(
            "gatebench_phase_active",
            "1 for the target and phase sending now, else 0.",
            None,
            MetricType::Gauge,
        )?;
        for (t, p, recorded) in &m.slots {
            let on = m
                .now
                .as_ref()
                .is_some_and(|n| &n.target == t && &n.phase == p);
            let labels: Labels<'_> = vec![
                ("target", t),
                ("phase", p),
                ("recorded", if *recorded { "true" } else { "false" }),
            ];
            ConstGauge::new(i64::from(on)).encode(fam.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> fmt::Result {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// An HDR histogram (ns) as Prometheus buckets (seconds): its sum, count and
/// per-bucket (not cumulative) counts over [`BUCKETS`] and +Inf. Each
/// recorded value counts at its HDR median-equivalent (within 0.1 %).
pub(super) fn buckets(h: &Histogram<u64>) -> (f64, u64, Vec<(f64, u64)>) {
    let mut out: Vec<(f64, u64)> = BUCKETS
        .iter()
        .chain(&[f64::INFINITY])
        .map(|&b| (b, 0))
        .collect();
    let mut sum = 0.0;
    for v in h.iter_recorded() {
        let s = h.median_equivalent(v.value_iterated_to()) as f64 / 1e9;
        let n = v.count_at_value();
        sum += s * n as f64;
        let last = out.len() - 1;
        let i = out.partition_point(|&(b, _)| b < s).min(last);
        out[i].1 += n;
    }
    (sum, h.len(), out)
}
