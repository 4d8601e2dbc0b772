//! `/metrics` on the admin port (Prometheus text format): requests by route
//! and status, auth failures by reason, and an upstream latency histogram per
//! route. Counters are atomics: nothing on the request path takes a lock.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::reject::Reason;
use crate::upstream::ForwardFailure;

/// Upper bounds of the upstream latency buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters of one route (or of unmatched requests).
#[derive(Debug)]
pub struct RouteStats {
    by_status: Box<[AtomicU64]>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_sum_ns: AtomicU64,
    latency_count: AtomicU64,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            by_status: (0..600).map(|_| AtomicU64::new(0)).collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_sum_ns: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
        }
    }
}

impl RouteStats {
    pub fn status(&self, status: u16) {
        if let Some(c) = self.by_status.get(usize::from(status)) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Time from sending upstream to the response head.
    pub fn upstream(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_sum_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
    }

    fn write(&self, route: &str, out: &mut String) {
        for (status, c) in self.by_status.iter().enumerate() {
            let n = c.load(Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "gateway_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
    }

    fn write_latency(&self, route: &str, out: &mut String) {
        let count = self.latency_count.load(Relaxed);
        if count == 0 {
            return;
        }
        let mut cumulative = 0;
        for (b, c) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(
                out,
                "gateway_upstream_latency_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "gateway_upstream_latency_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "gateway_upstream_latency_seconds_sum{{route=\"{route}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "gateway_upstream_latency_seconds_count{{route=\"{route}\"}} {count}"
        );
    }
}

/// Gateway-wide counters.
#[derive(Debug)]
pub struct Metrics {
    pub unmatched: RouteStats,
    failures: [AtomicU64; Reason::ALL.len()],
    forward_failures: [AtomicU64; ForwardFailure::ALL.len()],
    /// Requests resent on a fresh connection after a reused one failed.
    resends: AtomicU64,
    /// Requests the lean HTTP/1 path answered.
    pub lean_requests: AtomicU64,
    /// Connections the lean path handed to hyper.
    pub handovers: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            unmatched: RouteStats::default(),
            failures: std::array::from_fn(|_| AtomicU64::new(0)),
            forward_failures: std::array::from_fn(|_| AtomicU64::new(0)),
            resends: AtomicU64::new(0),
            lean_requests: AtomicU64::new(0),
            handovers: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one forward that failed, by whose fault.
    pub fn forward_failure(&self, f: ForwardFailure) {
        if let Some(i) = ForwardFailure::ALL.iter().position(|x| *x == f) {
            self.forward_failures[i].fetch_add(1, Relaxed);
        }
    }

    /// Counts one request resent after its reused connection failed.
    pub fn upstream_resend(&self) {
        self.resends.fetch_add(1, Relaxed);
    }

    /// Counts one request refused for `reason`.
    pub fn auth_failure(&self, reason: Reason) {
        self.failures[reason.index()].fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render<'a>(
        &self,
        routes: impl Iterator<Item = (&'a str, &'a RouteStats)> + Clone,
    ) -> String {
        let mut out = String::new();
        out.push_str("# HELP gateway_requests_total Requests answered, by route and status.\n# TYPE gateway_requests_total counter\n");
        for (name, s) in routes.clone() {
            s.write(name, &mut out);
        }
        self.unmatched.write("", &mut out);
        out.push_str("# HELP gateway_auth_failures_total Requests refused by the jwt or acl plugin, by reason.\n# TYPE gateway_auth_failures_total counter\n");
        for (r, c) in Reason::ALL.iter().zip(&self.failures) {
            let _ = writeln!(
                out,
                "gateway_auth_failures_total{{reason=\"{}\"}} {}",
                r.label(),
                c.load(Relaxed)
            );
        }
        out.push_str("# HELP gateway_forward_failures_total Forwards that failed, by whose fault (client or upstream) and why.\n# TYPE gateway_forward_failures_total counter\n");
        for (f, c) in ForwardFailure::ALL.iter().zip(&self.forward_failures) {
            let (side, reason) = f.labels();
            let _ = writeln!(
                out,
                "gateway_forward_failures_total{{side=\"{side}\",reason=\"{reason}\"}} {}",
                c.load(Relaxed)
            );
        }
        out.push_str("# HELP gateway_upstream_retries_total Requests sent again on a fresh upstream connection after a reused one failed before any response (the upstream closed it as the request went out).\n# TYPE gateway_upstream_retries_total counter\n");
        let _ = writeln!(
            out,
            "gateway_upstream_retries_total {}",
            self.resends.load(Relaxed)
        );
        out.push_str("# HELP gateway_lean_requests_total Requests answered by the lean HTTP/1 path (the rest: by hyper).\n# TYPE gateway_lean_requests_total counter\n");
        let _ = writeln!(
            out,
            "gateway_lean_requests_total {}",
            self.lean_requests.load(Relaxed)
        );
        out.push_str("# HELP gateway_lean_handovers_total Connections the lean HTTP/1 path handed to hyper at a request it does not take (a body, an upgrade, HTTP/1.0...).\n# TYPE gateway_lean_handovers_total counter\n");
        let _ = writeln!(
            out,
            "gateway_lean_handovers_total {}",
            self.handovers.load(Relaxed)
        );
        out.push_str("# HELP gateway_upstream_latency_seconds Time from forwarding to the upstream's response head.\n# TYPE gateway_upstream_latency_seconds histogram\n");
        for (name, s) in routes {
            s.write_latency(name, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        let r = RouteStats::default();
        r.status(200);
        r.status(200);
        r.status(401);
        r.upstream(Duration::from_micros(300));
        r.upstream(Duration::from_millis(3));
        m.auth_failure(Reason::InvalidSignature);
        m.auth_failure(Reason::NoCredentials);
        m.auth_failure(Reason::Claims);
        let text = m.render([("api", &r)].into_iter());
        assert!(text.contains("gateway_requests_total{route=\"api\",status=\"200\"} 2\n"));
        assert!(text.contains("gateway_requests_total{route=\"api\",status=\"401\"} 1\n"));
        assert!(text.contains("gateway_auth_failures_total{reason=\"Invalid signature\"} 1\n"));
        assert!(text.contains("gateway_auth_failures_total{reason=\"No credentials found\"} 1\n"));
        assert!(text.contains("gateway_auth_failures_total{reason=\"claims\"} 1\n"));
        assert!(
            text.contains(
                "gateway_upstream_latency_seconds_bucket{route=\"api\",le=\"0.0005\"} 1\n"
            )
        );
        assert!(
            text.contains("gateway_upstream_latency_seconds_bucket{route=\"api\",le=\"+Inf\"} 2\n")
        );
        assert!(text.contains("gateway_upstream_latency_seconds_count{route=\"api\"} 2\n"));
    }
}
