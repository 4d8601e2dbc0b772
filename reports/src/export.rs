//! The candidate's figures for benchmark dashboards: Bencher Metric Format
//! and github-action-benchmark.

use crate::metric::metrics;
use crate::summary::Summary;

/// Bencher Metric Format for the candidate: one benchmark per target (and
/// class), measures `latency-p50` … (ns, with the round range as lower and
/// upper values where known), `added-p50` …, `throughput` (req/s) and
/// `error-rate` (%).
pub fn bmf(cand: &Summary) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    for t in &cand.targets {
        let classes = std::iter::once(("*".to_owned(), &t.total)).chain(
            t.classes
                .iter()
                .map(|c| (format!("{}/{}", c.request, c.phase), c)),
        );
        for (class, c) in classes {
            let name = if class == "*" {
                t.name.clone()
            } else {
                format!("{}/{class}", t.name)
            };
            let mut measures = serde_json::Map::new();
            let added = if class == "*" { t.added.as_ref() } else { None };
            for m in metrics(c, added.map(|a| (a, &[][..]))) {
                let slug = match m.name.as_str() {
                    "rps" => "throughput".to_owned(),
                    "errors" => "error-rate".to_owned(),
                    n => n
                        .replace("p99.99", "p99-99")
                        .replace("p99.9", "p99-9")
                        .replace('.', "-"),
                };
                let mut v = serde_json::Map::new();
                v.insert("value".into(), m.value.into());
                if let Some((lo, hi)) = m.rounds {
                    v.insert("lower_value".into(), lo.into());
                    v.insert("upper_value".into(), hi.into());
                }
                measures.insert(slug, v.into());
            }
            doc.insert(name, measures.into());
        }
    }
    doc.into()
}

/// github-action-benchmark `customSmallerIsBetter` for the candidate's
/// totals: corrected latency and added latency in µs, and the error rate.
/// (`rps` is bigger-is-better and goes in no file of this kind.)
pub fn github_benchmark(cand: &Summary) -> serde_json::Value {
    let mut out = Vec::new();
    for t in &cand.targets {
        for m in metrics(&t.total, t.added.as_ref().map(|a| (a, &[][..]))) {
            if m.bigger_is_better || m.name.starts_with("service.") {
                continue;
            }
            let metric = &m.name;
            let (value, unit, range) = if m.unit == "ns" {
                (m.value / 1e3, "us", m.noise() / 1e3)
            } else {
                (m.value, m.unit, m.noise())
            };
            out.push(serde_json::json!({
                "name": format!("{} {metric}", t.name),
                "unit": unit,
                "value": (value * 1000.0).round() / 1000.0,
                "range": format!("± {:.1}", range / 2.0),
                "extra": format!("{} rounds; range = half the round-to-round spread", t.total.rounds.len()),
            }));
        }
    }
    out.into()
}
