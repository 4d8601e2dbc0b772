/// The committed `docs/summary.schema.json` is what the types generate;
/// `GATEBENCH_BLESS=1 cargo test -p reports` rewrites it after a change.
#[test]
fn committed_schema_matches_the_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/summary.schema.json");
    let generated = format!("{:#}\n", super::json_schema());
    if std::env::var_os("GATEBENCH_BLESS").is_some() {
        crate::write_atomic(&path, generated.as_bytes()).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/summary.schema.json differs from the summary types: run GATEBENCH_BLESS=1 cargo test -p reports"
    );
}

use super::*;

/// A target whose rounds have these p50s (p90 = 2×, p99 = 3× …).
pub(crate) fn target(name: &str, p50s: &[u64]) -> TargetResult {
    let pct = |p50: u64| Percentiles {
        count: 1,
        p50,
        p90: p50 * 2,
        p99: p50 * 3,
        p99_9: p50 * 4,
        p99_99: p50 * 5,
        ..Percentiles::default()
    };
    let rounds: Vec<Percentiles> = p50s.iter().map(|p| pct(*p)).collect();
    let total = ClassResult {
        request: "*".into(),
        phase: "*".into(),
        counts: Counts::default(),
        achieved_rps: 0.0,
        target_rps: None,
        latency: pct(p50s.iter().sum::<u64>() / p50s.len() as u64),
        service_time: Percentiles::default(),
        send_lag: Percentiles::default(),
        schedule_lag: Percentiles::default(),
        connection_wait: Percentiles::default(),
        outside_upstream: None,
        breakdown: None,
        status: BTreeMap::new(),
        errors: BTreeMap::new(),
        rounds,
        token: None,
    };
    TargetResult {
        name: name.into(),
        urls: vec![],
        baseline: false,
        http: "http/1.1".into(),
        connections: 1,
        classes: vec![],
        total,
        added: None,
        timeline: vec![],
        phases: vec![],
    }
}

/// A run of these targets, the first the baseline, each gateway's added
/// figures against it.
pub(crate) fn run(mut targets: Vec<TargetResult>) -> Summary {
    targets[0].baseline = true;
    let base = targets[0].clone();
    for t in &mut targets[1..] {
        t.added = Some(Added::of(t, &base, vec![]));
    }
    Summary {
        schema_version: SCHEMA_VERSION,
        tool: "loadgen".into(),
        scenario_name: "test".into(),
        scenario: serde_json::Value::Null,
        environment: Environment::default(),
        start_unix_s: 0.0,
        duration_s: 1.0,
        partial: false,
        valid: true,
        invalid_reasons: vec![],
        target_faults: vec![],
        warnings: vec![],
        health: Health::default(),
        targets,
        auth: None,
        shard: None,
        shards: vec![],
        events: vec![],
        calibration: None,
        capacity: None,
        precision: None,
    }
}

#[test]
fn added_latency_per_percentile_and_round_range() {
    let base = target("direct", &[100, 120]);
    let gw = target("gw", &[150, 200]);
    let a = Added::of(&gw, &base, vec![]);
    assert_eq!(a.total.p50, 175 - 110);
    assert_eq!((a.rounds_min.p50, a.rounds_max.p50), (50, 80));
    assert_eq!((a.rounds_min.p90, a.rounds_max.p90), (100, 160));
    assert!(a.valid);
    let faster = Added::of(&base, &gw, vec!["gw: send lag".into()]);
    assert!(faster.total.p50 < 0 && !faster.valid);
}

/// The calibration's floor is a variance component of the added intervals:
/// rounds that agree exactly leave a zero-width interval alone, and a floor
/// of 10 µs per round widens it to t(0.975, 3) · 10 µs / √4.
#[test]
fn the_calibration_floor_widens_added_intervals() {
    use crate::calibration::Resolution;
    let mut s = run(vec![
        target("direct", &[100_000, 110_000, 90_000, 105_000]),
        target("gw", &[150_000, 160_000, 140_000, 155_000]),
    ]);
    // The gateway's added intervals.
    let intervals = |s: &Summary| {
        s.targets[1]
            .added
            .as_ref()
            .unwrap()
            .interval
            .clone()
            .unwrap()
    };
    let i = intervals(&s);
    assert_eq!((i.p50.lo, i.p50.hi), (50_000.0, 50_000.0));
    let floor = Resolution {
        p50: 10_000,
        p90: 10_000,
        p99: 10_000,
    };
    s.calibration = Some(crate::calibration::tests::calibration(floor, floor, 4));
    s.floor_intervals();
    let i = intervals(&s);
    let half = crate::interval::t_quantile(3.0) * 10_000.0 / 2.0;
    assert!((i.p50.half_width() - half).abs() < 1e-6, "{:?}", i.p50);
    assert_eq!(i.p50.mean, 50_000.0);
    // p90 differs by 2 × 50 µs every round: the floor widens it the same.
    assert!((i.p90.half_width() - half).abs() < 1e-6);
}
