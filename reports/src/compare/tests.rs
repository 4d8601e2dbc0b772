use super::*;
use crate::interval::Interval;

/// The verdict table: threshold, noise, limit, direction, absolute thresholds.
#[test]
fn verdicts() {
    let j = |base, cand, noise, threshold, limit| Judged {
        base,
        cand,
        noise,
        bigger_is_better: false,
        threshold,
        threshold_is_absolute: false,
        limit,
        change: None,
    };
    let ci = |lo: f64, hi: f64| {
        Some(Interval {
            mean: (lo + hi) / 2.0,
            lo,
            hi,
            n: 5,
            method: crate::interval::Method::Welch,
        })
    };
    let cases = [
        // latency 1000 -> 1090 with 10 %: allowed.
        (j(1000.0, 1090.0, 0.0, Some(10.0), None), Verdict::Ok),
        // 1000 -> 1200 with 10 %: worse than the threshold and the noise.
        (
            j(1000.0, 1200.0, 50.0, Some(10.0), None),
            Verdict::Regression,
        ),
        // ... but the rounds spread 300: within noise, not a failure.
        (
            j(1000.0, 1200.0, 300.0, Some(10.0), None),
            Verdict::WithinNoise,
        ),
        // Faster is never a regression.
        (j(1000.0, 500.0, 0.0, Some(10.0), None), Verdict::Ok),
        // A limit beats everything, noise included.
        (
            j(1000.0, 1001.0, 5000.0, Some(10.0), Some(1000.0)),
            Verdict::OverLimit,
        ),
        (j(1000.0, 999.0, 0.0, None, Some(1000.0)), Verdict::Ok),
        // No rule: shown, not judged.
        (j(1000.0, 9000.0, 0.0, None, None), Verdict::Info),
        // Throughput: bigger is better, a drop is what is worse.
        (
            Judged {
                bigger_is_better: true,
                ..j(1000.0, 900.0, 0.0, Some(5.0), None)
            },
            Verdict::Regression,
        ),
        (
            Judged {
                bigger_is_better: true,
                ..j(1000.0, 1500.0, 0.0, Some(5.0), None)
            },
            Verdict::Ok,
        ),
        // Errors: the threshold is in percentage points, not relative.
        (
            Judged {
                threshold_is_absolute: true,
                ..j(0.0, 0.05, 0.0, Some(0.1), None)
            },
            Verdict::Ok,
        ),
        (
            Judged {
                threshold_is_absolute: true,
                ..j(0.0, 0.5, 0.0, Some(0.1), None)
            },
            Verdict::Regression,
        ),
    ];
    for (i, (judged, want)) in cases.into_iter().enumerate() {
        assert_eq!(Verdict::of(judged), want, "case {i}: {judged:?}");
    }
    // With an interval on the change (allowed: +100 of 1000 at 10 %):
    let with = |lo, hi| Judged {
        change: ci(lo, hi),
        ..j(1000.0, 1000.0 + (lo + hi) / 2.0, 0.0, Some(10.0), None)
    };
    // all of it beyond the allowed change: a regression, whatever the noise;
    assert_eq!(Verdict::of(with(150.0, 250.0)), Verdict::Regression);
    // all of it within: ok;
    assert_eq!(Verdict::of(with(-40.0, 90.0)), Verdict::Ok);
    // straddling it: inconclusive, with the rounds that would settle it.
    let straddle = with(40.0, 160.0);
    assert_eq!(Verdict::of(straddle), Verdict::Inconclusive);
    // centre 100 = allowed: no number of rounds settles it exactly.
    assert_eq!(straddle.rounds_needed(), None);
    let leaning = with(60.0, 260.0);
    assert_eq!(Verdict::of(leaning), Verdict::Inconclusive);
    // half-width 100 against a gap of 60: 5 × (100/60)² ≈ 14 rounds.
    assert_eq!(leaning.rounds_needed(), Some(14));
    // Throughput: the interval of cand − base is turned round.
    let drop = Judged {
        bigger_is_better: true,
        change: ci(-300.0, -200.0),
        ..j(1000.0, 750.0, 0.0, Some(5.0), None)
    };
    assert_eq!(Verdict::of(drop), Verdict::Regression);
    assert!(Verdict::Regression.failed() && Verdict::OverLimit.failed());
    assert!(!Verdict::WithinNoise.failed() && !Verdict::Info.failed());
    assert!(!Verdict::Inconclusive.failed());
}

#[test]
fn metric_names() {
    for m in ["latency.p99", "service.max", "added.p99.9", "rps", "errors"] {
        assert!(known_metric(m), "{m}");
    }
    for m in ["latency.p42", "added.max", "rps.p50", "bogus"] {
        assert!(!known_metric(m), "{m}");
    }
}

/// Two targets of one run pair round by round: a +10 on every round of a
/// noisy (but shared) baseline is a certain regression within the run, while
/// the same numbers as two runs (Mann–Whitney) cannot tell.
#[test]
fn within_one_run_rounds_pair_and_drift_cancels() {
    use crate::summary::tests::{run, target};
    let direct = [100, 300, 150, 500, 200, 250];
    let base = [1000, 1400, 1100, 1800, 1200, 1300];
    let cand: Vec<u64> = base.iter().map(|b| b + 10).collect();
    let one = run(vec![
        target("direct", &direct),
        target("base", &base),
        target("cand", &cand),
    ]);
    let rule = |m: &str| Rule {
        target: None,
        metric: m.into(),
        value: 0.0,
    };
    let rules = [rule("latency.p50"), rule("added.p50")];
    let rows = compare_within(&one, ("base", "cand"), &rules, &[], false).unwrap();
    let p50 = rows
        .iter()
        .find(|r| r.metric == "latency.p50" && r.class == "*")
        .unwrap();
    assert_eq!(p50.target, "cand");
    let i = p50.change_interval.unwrap();
    assert_eq!((i.lo, i.hi, i.n), (10.0, 10.0, 6));
    assert_eq!(p50.verdict, Verdict::Regression);
    // Two runs of the same numbers: the rounds' spread swamps the +10.
    let (b, c) = (
        run(vec![target("direct", &direct), target("gw", &base)]),
        run(vec![target("direct", &direct), target("gw", &cand)]),
    );
    let rows = compare(&b, &c, &rules, &[], false).unwrap();
    let gw = rows
        .iter()
        .find(|r| r.target == "gw" && r.metric == "latency.p50")
        .unwrap();
    assert_eq!(gw.verdict, Verdict::Inconclusive);
    assert_eq!(
        gw.change_interval.unwrap().method,
        crate::interval::Method::MannWhitney
    );
    // Naming a target the run lacks, or one target twice, is an error.
    assert!(matches!(
        compare_within(&one, ("base", "nope"), &rules, &[], false),
        Err(CompareError::NoSuchTarget(..))
    ));
    assert!(matches!(
        compare_within(&one, ("base", "base"), &rules, &[], false),
        Err(CompareError::SameTarget(_))
    ));
}

/// The baseline target present in both runs measures the machine's drift:
/// when it moved as much as a gateway's latency did, that change is flagged
/// as the drift's, and a still baseline is "within noise".
#[test]
fn drift_between_runs_is_read_from_the_baseline_target() {
    use crate::summary::tests::{run, target};
    let b = run(vec![
        target("direct", &[100, 104, 98, 102]),
        target("gw", &[200, 204, 198, 202]),
    ]);
    let c = run(vec![
        target("direct", &[150, 154, 148, 152]),
        target("gw", &[250, 254, 248, 252]),
    ]);
    let d = drift(&b, &c).unwrap();
    assert_eq!(d.target, "direct");
    assert!(d.significant());
    assert!((d.change.mean - 50.0).abs() < 1e-9);
    let rule = |m: &str| Rule {
        target: None,
        metric: m.into(),
        value: 0.0,
    };
    let rows = compare(
        &b,
        &c,
        &[rule("latency.p50"), rule("added.p50")],
        &[],
        false,
    )
    .unwrap();
    let flagged: Vec<(&str, &str)> = d
        .rows_it_outweighs(&rows)
        .iter()
        .map(|r| (r.target.as_str(), r.metric.as_str()))
        .collect();
    assert_eq!(flagged, [("gw", "latency.p50")]);
    // The added figure subtracted the drift: no change.
    let added = rows
        .iter()
        .find(|r| r.target == "gw" && r.metric == "added.p50")
        .unwrap();
    assert_eq!(added.change_interval.unwrap().mean, 0.0);
    assert!(
        d.describe().contains("the machine changed"),
        "{}",
        d.describe()
    );
    let still = drift(&b, &b).unwrap();
    assert!(!still.significant() && still.rows_it_outweighs(&rows).is_empty());
    assert!(still.describe().contains("within noise"));
}
