use super::*;

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
