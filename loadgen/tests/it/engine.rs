//! The engine against the mock upstream: counts, coordinated omission,
//! Server-Timing, protocols, modes, rounds and result files.

use std::time::Duration;

use loadgen::cli::Exit;
use mock_upstream::{Config, Program, TlsConfig};

use crate::support::{mock, mock_latency, mock_program, open_phase, run_bg, scenario};

const STEADY: &str = "\n[[phase]]\nname = \"steady\"\nduration = \"2s\"\nrate = 1000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_times_duration_requests_each_counted_once() {
    let server = mock(Config::default()).await;
    let url = server.base_url().to_owned();
    let r = run_bg(scenario(&url, STEADY, ""), &[]).await;
    r.assert_valid();
    let t = r.total("t");
    assert_eq!(
        t.counts.scheduled, 2000,
        "the schedule asks for R·D requests"
    );
    let done = t.counts.completed as f64;
    assert!((done / 2000.0 - 1.0).abs() <= 0.01, "completed {done}");
    // The upstream saw each request exactly once (plus nothing else).
    assert_eq!(server.stats().requests, t.counts.completed);
    assert_eq!(t.latency.count, t.counts.completed);
    assert_eq!(t.counts.bytes, 2 * t.counts.completed, "each body is `ok`");
    assert!(
        (t.achieved_rps / 1000.0 - 1.0).abs() < 0.02,
        "{}",
        t.achieved_rps
    );
    assert_eq!(t.target_rps, Some(1000.0));
    // Distinct sequence numbers: /orders/0 .. /orders/1999, each once.
    let paths = server.stats().by_path;
    assert_eq!(paths.len(), 2000);
    assert!(paths.values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_corrected_latency_not_in_service_time() {
    let server = mock(Config::default()).await;
    let url = server.base_url().to_owned();
    let phases = &open_phase("5s", 1000);
    let stall_url = format!("{url}/_mock/stall?for=500ms");
    // The stall starts halfway: once the mock has answered 2,500 requests.
    let trigger = async {
        crate::support::wait_until_async(
            "2,500 requests answered",
            Duration::from_secs(20),
            || server.stats().requests >= 2500,
        )
        .await;
        let io = hyper_util::rt::TokioIo::new(
            tokio::net::TcpStream::connect(stall_url[7..].split('/').next().unwrap())
                .await
                .unwrap(),
        );
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let req = http::Request::post("/_mock/stall?for=500ms")
            .header("host", "x")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        assert_eq!(send.send_request(req).await.unwrap().status(), 200);
    };
    let (r, ()) = tokio::join!(run_bg(scenario(&url, phases, ""), &[]), trigger);
    let t = r.total("t");
    // ~500 of 5000 requests were due during the stall and waited 0–500 ms:
    // corrected p99 is hundreds of ms, while most requests were served fast.
    assert!(
        t.latency.p99 > 300_000_000,
        "corrected p99 {} ns",
        t.latency.p99
    );
    assert!(
        t.latency.max >= 450_000_000,
        "corrected max {} ns",
        t.latency.max
    );
    assert!(
        t.service_time.p50 < 5_000_000,
        "service p50 {} ns",
        t.service_time.p50
    );
    assert!(t.service_time.p90 < t.latency.p99);
    assert_eq!(t.counts.completed, 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_upstream_subtracts_server_timing() {
    let server = mock_latency("fixed:5ms").await;
    let url = server.base_url().to_owned();
    let phases = &open_phase("1s", 200);
    let r = run_bg(scenario(&url, phases, ""), &[]).await;
    let t = r.total("t");
    let outside = t.outside_upstream.expect("the mock reports Server-Timing");
    assert!(
        t.service_time.p50 >= 5_000_000,
        "service p50 {}",
        t.service_time.p50
    );
    // What is left after the upstream's own 5 ms: loopback + client, well under 3 ms.
    assert!(outside.p50 < 3_000_000, "outside p50 {}", outside.p50);
    let upstream_share = t.service_time.p50 as i64 - outside.p50 as i64;
    assert!(
        (upstream_share - 5_000_000).abs() < 1_000_000,
        "service − outside = {upstream_share} ns"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hlog_decodes_to_the_summary_counts() {
    let server = mock(Config::default()).await;
    let url = server.base_url().to_owned();
    let phases = r#"
[[phase]]
name = "warmup"
duration = "500ms"
rate = 400
record = false
[[phase]]
name = "steady"
duration = "2s"
rate = 500
"#;
    let r = run_bg(scenario(&url, phases, ""), &[]).await;
    let text = std::fs::read(r.dir.join("t.hlog")).unwrap();
    let intervals = reports::hlog::read(&text).unwrap();
    let sum = |tag: &str| {
        intervals
            .iter()
            .filter(|i| i.tag.as_deref() == Some(tag).filter(|t| !t.is_empty()))
            .map(|i| i.hist.len())
            .sum::<u64>()
    };
    let class = &r.target("t").classes[0];
    assert_eq!(class.phase, "steady", "warm-up is not recorded");
    assert_eq!(sum("get"), class.latency.count);
    assert_eq!(sum("get.service"), class.service_time.count);
    // The untagged headline: every request's corrected latency.
    assert_eq!(sum(""), class.latency.count);
    assert_eq!(class.latency.count, 1000);
    let hgrm = std::fs::read_to_string(r.dir.join("t.hgrm")).unwrap();
    assert!(hgrm.contains("Total count    =         1000]"), "{hgrm}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_tls_and_new_connection_modes() {
    let server = mock(Config::default()).await;
    let url = server.base_url().to_owned();
    let phases = &open_phase("1s", 300);
    let (u, p) = (url.clone(), phases);
    let h2 = run_bg(scenario(&u, p, "http = \"2\"\nstreams = 4"), &[]).await;
    h2.assert_valid();
    assert_eq!(h2.target("t").http, "h2");
    assert_eq!(h2.total("t").counts.ok, 300);
    assert_eq!(h2.total("t").counts.bytes, 600);
    // 8 connections × 4 streams.
    assert_eq!(server.stats().connections, 8);

    let before = server.stats();
    let (u, p) = (url.clone(), phases);
    let fresh = run_bg(scenario(&u, p, "mode = \"new-connection\""), &[]).await;
    assert_eq!(fresh.total("t").counts.ok, 300);
    assert_eq!(
        server.stats().connections - before.connections,
        300,
        "one connection per request"
    );

    let tls = mock(Config {
        tls: Some(TlsConfig::SelfSigned),
        ..Config::default()
    })
    .await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), tls.cert_pem().unwrap()).unwrap();
    let https = format!("https://localhost:{}", tls.addr().port());
    let extra = format!(
        "http = \"2\"\ntls = {{ ca_file = \"{}\" }}",
        ca.path().display()
    );
    let h = https.clone();
    let r = run_bg(scenario(&h, p, &extra), &[]).await;
    r.assert_valid();
    assert_eq!(r.total("t").counts.ok, 300);
    assert_eq!(tls.stats().requests, 300);
    // HTTP/1.1 over TLS, certificate not verified.
    let r = run_bg(scenario(&https, p, "tls = { insecure = true }"), &[]).await;
    r.assert_valid();
    assert_eq!(r.total("t").counts.ok, 300);
    assert_eq!(tls.stats().requests, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_closing_keep_alive_connections_are_followed() {
    let program = Program {
        close_every: Some(3.try_into().unwrap()),
        size: "3000".parse().unwrap(),
        ..Program::default()
    };
    let server = mock_program(program).await;
    let url = server.base_url().to_owned();
    let phases = &open_phase("1s", 300);
    let r = run_bg(scenario(&url, phases, ""), &[]).await;
    r.assert_valid();
    assert_eq!(r.total("t").counts.ok, 300);
    assert_eq!(r.total("t").counts.bytes, 300 * 3000);
    // Every third response says Connection: close: about 100 connections.
    let conns = server.stats().connections;
    assert!((100..=110).contains(&conns), "{conns} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_and_errors_are_classified() {
    let server = mock(Config::default()).await;
    let url = server.base_url().to_owned();
    let phases = r#"
[[phase]]
name = "max"
duration = "1s"
concurrency = 4
"#;
    let u = url.clone();
    let r = run_bg(scenario(&u, phases, ""), &[]).await;
    let t = r.total("t");
    assert!(t.counts.completed > 100, "{}", t.counts.completed);
    assert_eq!(t.target_rps, None);
    assert_eq!(server.stats().requests, t.counts.completed);
    // A closed port: tests/faults (a target fault, exit 4).
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_statuses_fail_expectations() {
    let program = Program {
        status: "503".parse().unwrap(),
        ..Program::default()
    };
    let server = mock_program(program).await;
    let url = server.base_url().to_owned();
    let r = run_bg(scenario(&url, STEADY, ""), &["--duration", "300ms"]).await;
    // (Invalid outranks failed expectations: excused only for a machine stall.)
    assert!(
        r.code == Exit::Expectations
            || (r.code == Exit::Invalid && crate::support::stalled(&r.summary)),
        "{:?}",
        r.code
    );
    let t = r.total("t");
    assert_eq!((t.counts.unexpected, t.status[&503]), (300, 300));
}

#[test]
fn rounds_rotate_targets_with_the_same_sequence() {
    let text = r#"
name = "two"
seed = 9
rounds = 2
[upstream]
latency = "fixed:200us"
[[target]]
name = "a"
url = "builtin:upstream"
baseline = true
connections = 4
[[target]]
name = "b"
url = "builtin:upstream"
connections = 4
[[request]]
name = "x"
weight = 3
path = "/x/{rand:1000}"
[[request]]
name = "y"
path = "/y"
[[phase]]
name = "steady"
duration = "500ms"
rate = 400
"#;
    let r = crate::support::run(text, &[]);
    r.assert_valid();
    let (a, b) = (r.target("a"), r.target("b"));
    assert_eq!(a.total.counts.completed, 400);
    assert_eq!(a.total.rounds.len(), 2);
    // The same seeded mix for both targets: identical per-class counts.
    for (ca, cb) in a.classes.iter().zip(&b.classes) {
        assert_eq!(
            (ca.request.as_str(), ca.counts.completed),
            (cb.request.as_str(), cb.counts.completed)
        );
    }
    assert!(a.classes[0].counts.completed > a.classes[1].counts.completed);
    // The builtin upstream's Server-Timing reads back its 200 µs (within
    // 1 ms while other processes take the CPU: a difference of two medians).
    let up = a.total.service_time.p50 as i64 - a.total.outside_upstream.unwrap().p50 as i64;
    let within = if crate::support::busy(&r.summary) {
        1_000_000
    } else {
        150_000
    };
    assert!((up - 200_000).abs() < within, "upstream share {up} ns");
}

/// A known added delay (a second mock that holds each response 1 ms) comes
/// back with a 95 % confidence interval of the mean per-round difference
/// that rests on every round and brackets its mean; on a quiet machine it
/// lies around the 1 ms (plus the mock's timer wake-up) and is narrow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_added_delay_comes_with_its_interval_and_rounds() {
    let direct = mock(Config::default()).await;
    let slow = mock_latency("fixed:1ms").await;
    let text = format!(
        r#"
name = "interval"
seed = 5
rounds = 6
[[target]]
name = "direct"
url = "{}"
baseline = true
connections = 8
[[target]]
name = "slow"
url = "{}"
connections = 8
[[request]]
name = "get"
path = "/"
[[phase]]
name = "steady"
duration = "1s"
rate = 300
"#,
        direct.base_url(),
        slow.base_url()
    );
    let r = run_bg(text, &[]).await;
    let a = r.target("slow").added.clone().expect("an added figure");
    let i = a.interval.expect("an interval over 6 rounds");
    assert_eq!(i.p50.n, 6);
    assert_eq!(i.p50.method, reports::interval::Method::SignedRank);
    for p in ["p50", "p90", "p99", "p99.9"] {
        let x = i.at(p).unwrap();
        assert!(x.lo <= x.mean && x.mean <= x.hi, "{p}: {x:?}");
    }
    if !crate::support::busy(&r.summary) {
        // The interval's promise is to hold the true added p50: the
        // programmed 1 ms plus the mock's timer hand-off (0-50 µs). It is
        // not a promise to stay above 0.9 ms: a CI run's 6 rounds gave
        // 892 µs .. 1.08 ms around a mean of 985 µs, which holds it.
        assert!(
            i.p50.lo <= 1_050_000.0 && i.p50.hi >= 1_000_000.0 && i.p50.hi < 1_500_000.0,
            "p50 interval {:?}",
            i.p50
        );
        assert!(i.p50.half_width() < 200_000.0, "{:?}", i.p50);
    }
    let text = reports::text::render(&r.summary);
    assert!(
        text.contains("95% CI of the mean per round (n=6 rounds"),
        "{text}"
    );
}

/// `--precision`: a run adds rounds until the added interval is that
/// narrow. A generous ±300 µs stops at the floor of 3 rounds, reached; an
/// impossible ±1 ns runs to `--max-rounds` and says it fell short, as a
/// warning, in summary.json, and in the terminal text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precision_adds_rounds_until_the_interval_is_narrow_enough() {
    let direct = mock(Config::default()).await;
    let slow = mock_latency("fixed:200us").await;
    let text = format!(
        r#"
name = "precise"
seed = 9
rounds = 2
[[target]]
name = "direct"
url = "{}"
baseline = true
connections = 4
[[target]]
name = "slow"
url = "{}"
connections = 4
[[request]]
name = "get"
path = "/"
[[phase]]
name = "steady"
duration = "300ms"
rate = 300
"#,
        direct.base_url(),
        slow.base_url()
    );
    let r = run_bg(text.clone(), &["--precision", "300us"]).await;
    let p = r
        .summary
        .precision
        .clone()
        .expect("precision in summary.json");
    assert_eq!((p.min_rounds, p.max_rounds), (3, 30));
    assert_eq!(p.at, ["p50"]);
    // It stops once the interval is narrow enough: usually at the floor of
    // 3 rounds, later when the test binary's own load spreads the rounds
    // (seen in the full workspace run), never before the floor.
    assert!(p.rounds >= 3, "{p:?}");
    assert_eq!(r.target("slow").total.rounds.len() as u32, p.rounds);
    if !crate::support::busy(&r.summary) {
        assert!(p.reached, "{p:?}");
        let w = p.widest.as_ref().unwrap();
        assert!(w.half_width_ns <= 300_000.0 && w.n == p.rounds, "{w:?}");
    }
    assert!(reports::text::render(&r.summary).contains("precision: ±300us at added.p50"));

    let r = run_bg(text.clone(), &["--precision", "1ns", "--max-rounds", "4"]).await;
    let p = r.summary.precision.clone().unwrap();
    assert!(!p.reached && p.rounds == 4, "{p:?}");
    assert_eq!(r.target("slow").total.rounds.len(), 4);
    assert!(
        r.summary
            .warnings
            .iter()
            .any(|w| w.contains("NOT reached in 4 rounds")),
        "{:?}",
        r.summary.warnings
    );
    // Bad requests name the flag or field.
    for (args, want) in [
        (
            &["--max-rounds", "4"][..],
            "--max-rounds: needs --precision",
        ),
        (
            &["--precision", "1ms", "--max-rounds", "2"][..],
            "precision.max_rounds",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let file = crate::support::write_scenario(tmp.path(), &text);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["run", "--no-calibrate", file.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
