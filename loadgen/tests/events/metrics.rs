//! `loadgen run --metrics-listen`: `/metrics` is scraped twice while the run
//! goes and its counters rise; the last scrape, after the run, agrees with
//! `summary.json` to the request.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser as _;
use reports::summary::Summary;

use crate::serial;
use crate::support::mock;

/// One sample line of an exposition: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            let labels = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().unwrap())
        })
        .collect()
}

/// The sum of every `name` sample whose labels include `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && with
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn scrape(addr: &str) -> std::io::Result<Vec<Sample>> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.ends_with("# EOF\n"), "a complete exposition: {body}");
    Ok(parse(body))
}

#[test]
fn metrics_rise_during_the_run_and_the_last_scrape_agrees_with_the_summary() {
    let _s = serial();
    let rt = crate::server_runtime();
    let upstream = rt.block_on(mock(mock_upstream::Config::default()));
    let dir = tempfile::tempdir().unwrap();
    let file = crate::support::write_scenario(
        dir.path(),
        &format!(
            "name = \"live\"\nseed = 5\n\
             [[target]]\nname = \"direct\"\nurl = \"{}\"\nconnections = 4\n\
             [[request]]\nname = \"get\"\nweight = 3\npath = \"/r/{{seq}}\"\n\
             [[request]]\nname = \"missing\"\npath = \"/r/{{seq}}\"\nexpect = 404\n\
             headers = {{ \"x-mock-status\" = \"404\" }}\n\
             [[phase]]\nname = \"warmup\"\nduration = \"500ms\"\nrate = 200\nrecord = false\n\
             [[phase]]\nname = \"steady\"\nduration = \"3s\"\nrate = 400\n",
            upstream.base_url()
        ),
    );
    // A free port (the run binds it again at once).
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let out = dir.path().join("out");
    let args: Vec<String> = [
        "loadgen",
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--no-report",
        "--no-calibrate",
        "--out",
        out.to_str().unwrap(),
        "--metrics-listen",
        &addr,
        "--metrics-linger",
        "20s",
    ]
    .iter()
    .map(|s| String::from(*s))
    .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let run = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            loadgen::cli::main_with(loadgen::cli::Args::parse_from(args), stop)
        })
    };
    let t0 = Instant::now();
    // Up before the first phase.
    let mut first = loop {
        match scrape(&addr) {
            Ok(s) => break s,
            Err(e) if t0.elapsed() < Duration::from_secs(5) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("no /metrics at {addr}: {e}"),
        }
    };
    assert_eq!(
        sum(&first, "gatebench_run_finished", &[("shard", "0")]),
        0.0
    );
    let completed = |s: &[Sample]| sum(s, "gatebench_requests_completed_total", &[]);
    // Two scrapes a second apart while the steady phase runs: counters rise.
    while completed(&first) == 0.0 && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
        first = scrape(&addr).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    let second = scrape(&addr).unwrap();
    assert!(
        completed(&first) > 0.0 && completed(&second) > completed(&first),
        "completed {} then {}",
        completed(&first),
        completed(&second)
    );
    assert_eq!(
        sum(&second, "gatebench_phase_active", &[]),
        1.0,
        "one phase is sending"
    );
    assert_eq!(sum(&second, "gatebench_round", &[]), 1.0);
    // The run ends, writes its summary, and keeps serving the final figures.
    let summary = out.join("summary.json");
    while !summary.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the run never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = scrape(&addr).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let exit = run.join().unwrap();
    let s: Summary = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    // Invalid (exit 3) is this machine stalling, not the metrics' concern.
    assert!(
        matches!(exit, loadgen::cli::Exit::Ok | loadgen::cli::Exit::Invalid),
        "{exit:?}\n{}",
        reports::text::render(&s)
    );
    assert_eq!(sum(&last, "gatebench_run_finished", &[]), 1.0);
    assert_eq!(sum(&last, "gatebench_phase_active", &[]), 0.0);
    let target = s.targets.iter().find(|t| t.name == "direct").unwrap();
    for request in ["get", "missing"] {
        let class = target
            .classes
            .iter()
            .find(|c| c.request == request && c.phase == "steady")
            .unwrap_or_else(|| panic!("steady {request} in summary.json"));
        let at = [
            ("target", "direct"),
            ("request", request),
            ("phase", "steady"),
            ("recorded", "true"),
            ("shard", "0"),
        ];
        let c = &class.counts;
        for (name, want) in [
            ("gatebench_requests_scheduled_total", c.scheduled),
            ("gatebench_requests_sent_total", c.sent),
            ("gatebench_requests_completed_total", c.completed),
            ("gatebench_requests_unexpected_total", c.unexpected),
            ("gatebench_requests_errors_total", c.errors),
            ("gatebench_requests_dropped_total", c.dropped),
            ("gatebench_sends_late_total", c.late),
            ("gatebench_response_bytes_total", c.bytes),
            ("gatebench_errors_total", c.errors),
            ("gatebench_latency_seconds_count", class.latency.count),
            (
                "gatebench_schedule_lag_seconds_count",
                class.schedule_lag.count,
            ),
        ] {
            assert_eq!(sum(&last, name, &at) as u64, want, "{name} for {request}");
        }
        assert!(c.completed > 200 && c.ok == c.completed, "{request}: {c:?}");
        for (code, n) in &class.status {
            let mut with = at.to_vec();
            let code = code.to_string();
            with.push(("status", &code));
            assert_eq!(sum(&last, "gatebench_responses_total", &with) as u64, *n);
        }
        let mut inf = at.to_vec();
        inf.push(("le", "+Inf"));
        assert_eq!(
            sum(&last, "gatebench_latency_seconds_bucket", &inf) as u64,
            class.latency.count
        );
        // The exact percentiles are the summary's own.
        for (q, want) in [
            ("0.5", class.latency.p50),
            ("0.99", class.latency.p99),
            ("0.999", class.latency.p99_9),
        ] {
            let mut with = at.to_vec();
            with.push(("quantile", q));
            let got = sum(&last, "gatebench_latency_percentile_seconds", &with);
            assert!(
                (got * 1e9 - want as f64).abs() < 1.0,
                "{request} p{q}: {got} s against {want} ns"
            );
        }
    }
    // The warm-up was counted live too, labelled as not recorded.
    assert!(
        sum(
            &last,
            "gatebench_requests_completed_total",
            &[("phase", "warmup"), ("recorded", "false")]
        ) > 0.0
    );
}
