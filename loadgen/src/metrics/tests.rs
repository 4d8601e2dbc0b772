use super::state::buckets;
use super::{Metrics, Server};
use crate::measure::record::{ClassStats, new_hist};
use crate::shard::Shard;

fn stats(latencies_us: &[u64]) -> ClassStats {
    let mut s = ClassStats::default();
    for &us in latencies_us {
        let _ = s.latency.record(us * 1000);
        let _ = s.schedule_lag.record(5_000);
    }
    s.status[200] = latencies_us.len() as u64;
    s.errors[0] = 1;
    s.counts.scheduled = latencies_us.len() as u64 + 1;
    s.counts.completed = latencies_us.len() as u64;
    s.counts.ok = latencies_us.len() as u64;
    s.counts.errors = 1;
    s
}

/// The value of the one sample line that starts with `series ` (exact).
fn value(text: &str, series: &str) -> f64 {
    let hits: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "{series} in\n{text}");
    hits[0]
}

#[test]
fn buckets_place_each_value_at_or_under_its_bound_and_add_up() {
    let mut h = new_hist();
    for ns in [40_000, 50_000, 60_000, 999_000, 1_500_000, 20_000_000_000] {
        h.record(ns).unwrap();
    }
    let (sum, count, b) = buckets(&h);
    assert_eq!(count, 6);
    assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 6);
    let at = |bound: f64| b.iter().find(|(x, _)| *x == bound).unwrap().1;
    assert_eq!(at(50e-6), 2, "40 and 50 µs are ≤ 50 µs");
    assert_eq!(at(100e-6), 1);
    assert_eq!(at(1e-3), 1, "999 µs");
    assert_eq!(at(2e-3), 1, "1.5 ms");
    assert_eq!(at(f64::INFINITY), 1, "20 s is beyond 10 s");
    assert!((sum / 20.002_649 - 1.0).abs() < 0.001, "{sum}");
}

#[test]
fn a_scrape_shows_counters_histograms_percentiles_and_where_the_run_is() {
    let m = Metrics::new(Shard { k: 3, n: 4 });
    m.plan(&["gw"], &[("warmup", false), ("steady", true)], &["get"], 2);
    m.add("gw", "get", ("steady", true), &stats(&[100, 200, 300]));
    m.add("gw", "get", ("steady", true), &stats(&[400]));
    m.at(2, "gw", Some("steady"));
    let text = m.render();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let l = "shard=\"3\",target=\"gw\",request=\"get\",phase=\"steady\",recorded=\"true\"";
    let w = "shard=\"3\",target=\"gw\",request=\"get\",phase=\"warmup\",recorded=\"false\"";
    assert_eq!(
        value(&text, &format!("gatebench_requests_scheduled_total{{{l}}}")),
        6.0
    );
    assert_eq!(
        value(&text, &format!("gatebench_requests_completed_total{{{l}}}")),
        4.0
    );
    assert_eq!(
        value(&text, &format!("gatebench_requests_completed_total{{{w}}}")),
        0.0,
        "planned series start at 0"
    );
    let status = format!("gatebench_responses_total{{{l},status=\"200\"}}");
    assert_eq!(value(&text, &status), 4.0, "{text}");
    let connect = format!("gatebench_errors_total{{{l},class=\"connect\"}}");
    assert_eq!(value(&text, &connect), 2.0);
    assert_eq!(
        value(&text, &format!("gatebench_latency_seconds_count{{{l}}}")),
        4.0
    );
    let le = |b: &str| {
        format!(
            "gatebench_latency_seconds_bucket{{{}}}",
            l.replacen(",", &format!(",le=\"{b}\","), 1)
        )
    };
    // Cumulative: 100 µs, 200 (≤ 200), 300 (≤ 300), 400 (≤ 500).
    assert_eq!(value(&text, &le("0.0001")), 1.0, "{text}");
    assert_eq!(value(&text, &le("0.0003")), 3.0);
    assert_eq!(value(&text, &le("+Inf")), 4.0);
    let p50 = format!("gatebench_latency_percentile_seconds{{{l},quantile=\"0.5\"}}");
    assert!((value(&text, &p50) / 200e-6 - 1.0).abs() < 0.001, "{text}");
    assert_eq!(value(&text, "gatebench_round{shard=\"3\"}"), 2.0);
    assert_eq!(value(&text, "gatebench_run_finished{shard=\"3\"}"), 0.0);
    assert_eq!(
        value(
            &text,
            "gatebench_phase_active{shard=\"3\",target=\"gw\",phase=\"steady\",recorded=\"true\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "gatebench_phase_active{shard=\"3\",target=\"gw\",phase=\"warmup\",recorded=\"false\"}"
        ),
        0.0
    );
    m.finish();
    let text = m.render();
    assert_eq!(value(&text, "gatebench_run_finished{shard=\"3\"}"), 1.0);
    assert_eq!(value(&text, "gatebench_round{shard=\"3\"}"), 0.0);
}

#[test]
fn the_endpoint_serves_metrics_and_refuses_other_paths() {
    let m = Metrics::new(Shard::default());
    m.plan(&["a"], &[("steady", true)], &["r"], 1);
    let server = Server::start("127.0.0.1:0".parse().unwrap(), m).unwrap();
    let call = |method: &str, path: &str| {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let get = |path: &str| call("GET", path);
    let r = get("/metrics");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.contains("content-type: application/openmetrics-text"),
        "{r}"
    );
    assert!(
        r.contains("gatebench_requests_sent_total{shard=\"0\",target=\"a\""),
        "{r}"
    );
    assert!(get("/nope").starts_with("HTTP/1.1 404"));
    assert!(call("PUT", "/metrics").starts_with("HTTP/1.1 405"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = Server::start(taken.local_addr().unwrap(), Metrics::new(Shard::default()))
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("--metrics-listen"), "{err:#}");
}

/// A client that starts a request head and never ends it gets 408 and is
/// closed at the header timeout, as the servers' clients are; one that
/// sends nothing is closed without an answer.
#[test]
fn the_endpoint_closes_slow_heads_at_the_header_timeout() {
    use std::io::{Read as _, Write as _};
    let limits = conn_guard::Limits {
        header_timeout: std::time::Duration::from_millis(300),
        keepalive_timeout: std::time::Duration::from_millis(300),
        ..super::server::limits()
    };
    let server = Server::start_with(
        "127.0.0.1:0".parse().unwrap(),
        Metrics::new(Shard::default()),
        limits,
    )
    .unwrap();
    let mut slow = std::net::TcpStream::connect(server.addr()).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
    let mut silent = std::net::TcpStream::connect(server.addr()).unwrap();
    // The reads' own bound: without the endpoint's timeouts they would
    // fail here, not block.
    for s in [&slow, &silent] {
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
    }
    let mut out = String::new();
    slow.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    let mut nothing = Vec::new();
    silent.read_to_end(&mut nothing).unwrap();
    assert!(nothing.is_empty());
}

#[test]
fn the_grafana_dashboard_asks_only_for_series_and_labels_a_scrape_has() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/gatebench.json"
    );
    let dash: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    let m = Metrics::new(Shard::default());
    m.plan(&["gw"], &[("steady", true)], &["get"], 1);
    m.add("gw", "get", ("steady", true), &stats(&[100]));
    let text = m.render();
    let names: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let labels = [
        "shard", "target", "request", "phase", "recorded", "status", "class", "le", "quantile",
    ];
    assert!(exprs.len() >= 10);
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("gatebench_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                names.contains(name.as_str()),
                "{name} (in {e}) is not exported"
            );
            rest = &rest[i + name.len()..];
        }
        for part in e.split("by (").skip(1).chain(
            e.split("label_values(")
                .skip(1)
                .map(|p| p.split_once(", ").map_or(p, |(_, l)| l)),
        ) {
            let list = part.split(')').next().unwrap();
            for l in list.split(',').map(str::trim) {
                assert!(labels.contains(&l), "label {l} (in {e}) is not exported");
            }
        }
        for (i, _) in e.match_indices("=~\"$") {
            let l = e[..i].rsplit(['{', ',']).next().unwrap();
            assert!(labels.contains(&l), "label {l} (in {e}) is not exported");
        }
    }
}
