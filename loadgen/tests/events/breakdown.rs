//! The timing breakdown of a new-connection TLS run (`scenarios/tls-new-connection.toml`):
//! here, one test at a time, because TLS handshakes in a debug build are
//! heavy enough to disturb other tests' timings.

#[test]
fn a_new_connection_tls_run_breaks_each_request_into_phases_that_add_up() {
    let _s = crate::serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/tls-new-connection.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "--no-calibrate"])
        .arg(&scenario)
        .args([
            "--duration",
            "2s",
            "--rate",
            "150",
            "--rounds",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        crate::support::ok_or_stalled(out.status, dir.path()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    crate::support::check_summary_schema(&raw);
    let s: reports::summary::Summary = serde_json::from_value(raw).unwrap();
    let target = |name: &str| {
        s.targets
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("target {name}"))
    };
    let (direct, tls, kept) = (
        target("direct"),
        target("gateway-tls-new-conn"),
        target("gateway-tls-keep-alive"),
    );
    assert_eq!(tls.total.counts.ok, 300, "2 s at 150 req/s, all 200");
    let b = tls.total.breakdown.as_ref().expect("a breakdown");
    // Every request opened its own connection, with a TCP and a TLS handshake.
    assert_eq!(b.opened, 300);
    let (connect, handshake) = (b.connect.unwrap(), b.tls.unwrap());
    assert_eq!((connect.count, handshake.count), (300, 300));
    assert!(b.dns.is_none(), "resolved once, before the run");
    assert!(
        handshake.p50 > connect.p50,
        "a TLS handshake costs more than a loopback TCP one: {} vs {} ns",
        handshake.p50,
        connect.p50
    );
    // The upstream answers in 1 ms: that is waiting (time to first byte).
    assert!(b.waiting.p50 > 1_000_000, "waiting p50 {}", b.waiting.p50);
    // The phases add up to the corrected latency: exactly on average, and
    // within 1 % at the median.
    let c = &tls.total;
    let mean_sum = c.schedule_lag.mean
        + c.connection_wait.mean
        + connect.mean
        + handshake.mean
        + b.sending.unwrap().mean
        + b.waiting.mean
        + b.receiving.mean;
    assert!(
        (mean_sum / c.latency.mean - 1.0).abs() < 0.01,
        "means: phases {mean_sum} vs latency {}",
        c.latency.mean
    );
    // What the median requests were made of adds up to the median latency.
    let at = b.at("p50").expect("the phases at p50");
    let parts: u64 = at.phases().iter().map(|(_, v)| v).sum();
    // (Each mean is rounded down to the nanosecond.)
    assert!(at.latency.abs_diff(parts) <= 8, "{parts} vs {}", at.latency);
    assert!(
        (at.latency as f64 / c.latency.p50 as f64 - 1.0).abs() < 0.01,
        "the median requests: phases {at:?} vs latency p50 {}",
        c.latency.p50
    );
    assert!(
        at.tls > 0 && at.connect > 0 && at.waiting > 1_000_000,
        "{at:?}"
    );
    // Kept-alive connections: the 16 were opened before the run, so no
    // request paid for a handshake.
    let kb = kept.total.breakdown.as_ref().unwrap();
    assert_eq!((kb.opened, kb.tls), (0, None));
    // The direct baseline opened plain connections; the gateway's added
    // time shows per phase, the handshake first among them.
    let db = direct.total.breakdown.as_ref().unwrap();
    assert_eq!((db.opened, db.tls), (300, None));
    let added = tls.added.as_ref().unwrap();
    let tls_added = added.breakdown.iter().find(|p| p.phase == "tls").unwrap();
    assert_eq!(tls_added.baseline_p50, 0);
    assert_eq!(tls_added.added_p50, at.tls as i64);
    // The terminal summary, the interval log and the report carry it.
    let stdout = reports::text::render(&s);
    assert!(stdout.contains("breakdown p50 / p90: connect "), "{stdout}");
    assert!(
        stdout.contains("added per phase over direct, at p50: "),
        "{stdout}"
    );
    assert!(stdout.contains("the p50 requests ("), "{stdout}");
    let hlog = std::fs::read_to_string(dir.path().join("gateway-tls-new-conn.hlog")).unwrap();
    for tag in [
        "read-order.connect,",
        "read-order.tls,",
        "read-order.waiting,",
    ] {
        assert!(hlog.contains(&format!("Tag={tag}")), "no {tag} interval");
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## Where the time goes"), "{md}");
    assert!(dir.path().join("breakdown.png").exists());
}
