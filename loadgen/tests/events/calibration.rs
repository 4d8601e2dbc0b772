//! `loadgen calibrate` and the calibration `loadgen run` does first: a known
//! 200 µs added delay is resolvable, an identical target's 0 µs is within
//! noise, and `calibrate` prints and writes what it measured.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser as _;
use reports::summary::Summary;

use crate::serial;
use crate::support::{mock, mock_latency};

fn run(args: &[&str]) -> loadgen::cli::Exit {
    let args: Vec<String> = std::iter::once("loadgen")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    loadgen::cli::main_with(
        loadgen::cli::Args::parse_from(args),
        Arc::new(AtomicBool::new(false)),
    )
}

#[test]
fn a_known_200us_delay_is_resolvable_and_an_identical_target_is_within_noise() {
    let _s = serial();
    let rt = crate::server_runtime();
    let (plain, slow) = rt.block_on(async {
        let slow = mock_latency("fixed:200us").await;
        (mock(mock_upstream::Config::default()).await, slow)
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    let target = |name: &str, url: &str, baseline: bool| {
        format!(
            "[[target]]\nname = \"{name}\"\nurl = \"{url}\"\nbaseline = {baseline}\nconnections = 8\n"
        )
    };
    std::fs::write(
        &file,
        format!(
            "name = \"resolve\"\nseed = 2\nrounds = 3\n{}{}{}[[request]]\nname = \"get\"\npath = \"/r/{{seq}}\"\n\
             [[phase]]\nname = \"warmup\"\nduration = \"300ms\"\nrate = 500\nrecord = false\n\
             [[phase]]\nname = \"steady\"\nduration = \"1s\"\nrate = 1000\n",
            target("direct", plain.base_url(), true),
            target("same", plain.base_url(), false),
            target("slow", slow.base_url(), false),
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let code = run(&[
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--no-report",
        "--out",
        out.to_str().unwrap(),
    ]);
    let s: Summary =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let c = s.calibration.as_ref().expect("run calibrates first");
    eprintln!("exit {code:?}\n{}", c.render_text());
    assert!(
        out.join("calibration/summary.json").exists(),
        "the calibration run's own files are kept"
    );
    assert_eq!(c.delays.len(), 3);
    let r = c.resolution;
    assert!(r.p50 >= 0 && r.p50 <= r.p99.max(r.p50));
    let added = |name: &str| {
        s.targets
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.added.as_ref())
            .unwrap_or_else(|| panic!("added for {name}"))
            .total
    };
    let (same, slow_added) = (added("same"), added("slow"));
    // The calibration's resolution alone (the terminal and the report use a
    // figure's interval instead where it has one).
    // On a machine that is not stalling (1 ms sleeps wake at most 1 ms late
    // at p99), the 200 us delay reads back within the resolution (plus the
    // mock's timer); and where the resolution is below 150 us, it is
    // resolvable, beyond the noise. On one that stalls, one 0.2 s
    // calibration round, and the run's own rounds, can each shift by more
    // than 200 us: then the resolution says so honestly, and what holds is
    // that a difference the report does rank has the right sign.
    let quiet = c.timer_late.p99 <= 1_000_000;
    if quiet {
        assert!(
            (slow_added.p50 - 200_000).abs() <= r.p50 + 150_000,
            "the 200 us target adds {} ns at p50, resolution {} ns",
            slow_added.p50,
            r.p50
        );
    }
    // Resolvable: beyond the noise and clearly positive. Not "near 200 us":
    // on a machine busy with other tests the delay overlaps the mock's own
    // queueing and reads short (+145 us with a 216 us loopback floor, in CI).
    if quiet && r.p50 < 150_000 {
        assert!(
            !c.within_noise("p50", slow_added.p50, None) && slow_added.p50 > 100_000,
            "the 200 us target adds {} ns at p50, resolution {} ns",
            slow_added.p50,
            r.p50
        );
    } else {
        eprintln!(
            "timer p99 {} ns, resolution at p50 {} ns: 200 us is not held to be resolvable here",
            c.timer_late.p99, r.p50
        );
        assert!(
            c.within_noise("p50", slow_added.p50, None) || slow_added.p50 > 0,
            "the 200 us target ranked as adding {} ns at p50, resolution {} ns",
            slow_added.p50,
            r.p50
        );
    }
    // The resolution is a 95 % bound on one round's A/A difference, so an
    // identical target exceeds it now and then by design; twice it is a
    // bound the whole run's pooled difference (3 rounds) exceeds far less
    // than once in a thousand runs for normal noise.
    assert!(
        same.p50.unsigned_abs() as f64 <= 2.0 * c.resolution_at("p50"),
        "the identical target adds {} ns at p50, resolution {} ns",
        same.p50,
        r.p50
    );
    // The terminal summary says which is which.
    let text = reports::text::render(&s);
    assert!(text.contains("Resolution: p50 "), "{text}");
    let same_line = text
        .lines()
        .skip_while(|l| !l.starts_with("Target same"))
        .find(|l| l.contains("added over direct"))
        .unwrap();
    assert!(
        same_line.contains("p50 ") && same_line.contains("(within noise)"),
        "{same_line}"
    );

    // `loadgen calibrate` alone prints and writes it.
    let cal = dir.path().join("cal");
    assert_eq!(
        run(&[
            "calibrate",
            "--duration",
            "3s",
            "--out",
            cal.to_str().unwrap()
        ]),
        loadgen::cli::Exit::Ok
    );
    let written: reports::calibration::Calibration =
        serde_json::from_slice(&std::fs::read(cal.join("calibration.json")).unwrap()).unwrap();
    assert_eq!(written.rounds, 4);
    assert_eq!(written.schedule_lag.len(), 2);
    // The known 10 ms delay reads back within the resolution this
    // calibration states at p50, plus 1 ms late (the mock's timer and this
    // machine's wake-ups) and 100 us early: on a quiet machine, within about
    // 1 ms; on one that stalls, no closer than it says it can resolve.
    let ten = written
        .delays
        .iter()
        .find(|d| d.programmed_ns == 10_000_000)
        .unwrap();
    let slack = written.resolution.p50;
    assert!(
        ten.error_ns > -100_000 - slack && ten.error_ns < 1_000_000 + slack,
        "{ten:?}, resolution at p50 {slack} ns"
    );
}
