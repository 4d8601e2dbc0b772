//! The binary: validation errors, schema, Ctrl-C, and every shipped scenario.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cmd::BIN;

#[test]
fn every_shipped_scenario_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = Command::new(BIN)
                .arg("validate")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 4, "only {n} scenarios");
}

#[test]
fn a_bad_scenario_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "name = \"x\"\n[[target]]\nname = \"t\"\nurl = \"builtin:upstream\"\nconections = 4\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("validate").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:5:1:", p.display())), "{err}");
    assert!(err.contains("conections"), "{err}");

    let out = Command::new(BIN)
        .args(["run", "--no-calibrate"])
        .arg(&p)
        .args(["--target", "nope=http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A body loadgen cannot hold is an error naming the field, and validating
/// the largest it can hold allocates no body: under a 160 MiB address-space
/// limit (`prlimit --as`), `validate` passes a 256 MiB `body_size` and a
/// 200 MiB sparse `body_file`, and refuses 64 GiB, 257 MiB and a directory.
#[test]
fn bodies_are_checked_at_validate_and_never_built_there() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    let validate = |body: &str| {
        let p = dir.path().join("b.toml");
        std::fs::write(
            &p,
            format!(
                "name = \"x\"\n[[target]]\nname = \"t\"\nurl = \"builtin:upstream\"\n\
                 [[request]]\nname = \"up\"\nmethod = \"POST\"\npath = \"/\"\n{body}\n\
                 [[phase]]\nname = \"p\"\nduration = \"1s\"\nrate = 1\n"
            ),
        )
        .unwrap();
        let out = Command::new("prlimit")
            .arg(format!("--as={}", 160u64 << 20))
            .arg(BIN)
            .arg("validate")
            .arg(&p)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for ok in ["body_size = \"256MiB\"", "body_file = \"big.bin\""] {
        let (code, err) = validate(ok);
        assert_eq!(code, Some(0), "{ok}: {err}");
    }
    for (bad, says) in [
        ("body_size = \"64GiB\"", "at most 256 MiB"),
        ("body_size = \"257MiB\"", "at most 256 MiB"),
        ("body_file = \".\"", "not a regular file"),
        ("body_file = \"missing.bin\"", "missing.bin"),
    ] {
        let (code, err) = validate(bad);
        assert_eq!(code, Some(2), "{bad}: {err}");
        assert!(
            err.contains("request[0].body_") && err.contains(says),
            "{bad}: {err}"
        );
    }
}

#[test]
fn schema_is_json() {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["properties"]["phase"].is_object());
}

#[test]
fn ctrl_c_writes_partial_results_and_exits_130() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(crate::support::mock(mock_upstream::Config::default()));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("long.toml");
    std::fs::write(
        &p,
        format!("name = \"long\"\n[[target]]\nname = \"t\"\nurl = \"{}\"\n[[request]]\nname = \"g\"\npath = \"/\"\n[[phase]]\nname = \"p\"\nduration = \"60s\"\nrate = 500\n", upstream.base_url()),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let mut child = Command::new(BIN)
        .args(["run", "--no-calibrate"])
        .arg(&p)
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the run is well under way: 250 requests answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while upstream.stats().requests < 250 {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}");
    let s: reports::summary::Summary =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
    assert!(s.partial && !s.valid);
    let t = &s.targets[0].total;
    assert!(t.counts.completed > 200, "{}", t.counts.completed);
    assert_eq!(
        t.counts.completed + t.counts.unfinished + t.counts.errors,
        t.counts.scheduled
    );
    // The rate is over the time the phase ran, not its planned 60 s.
    assert!(
        (t.achieved_rps / 500.0 - 1.0).abs() < 0.1,
        "achieved {} req/s of 500",
        t.achieved_rps
    );
    assert!(
        s.invalid_reasons
            .iter()
            .any(|r| r.contains("interrupted after") && r.contains("rates are over the time")),
        "{:?}",
        s.invalid_reasons
    );
    assert!(out_dir.join("t.hlog").exists() && out_dir.join("t.hgrm").exists());
    assert!(stdout.contains("INVALID RUN"), "{stdout}");
}

#[test]
fn the_readme_main_job_runs_direct_and_through_the_builtin_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let scenario =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/quickstart.toml");
    let out = Command::new(BIN)
        .arg("run")
        .arg(&scenario)
        // Lighter than the real run: tests share 2 cores with other tests,
        // in a debug build; the calibration (a load of its own) is tested
        // in the serial events binary.
        .args([
            "--no-calibrate",
            "--duration",
            "1s",
            "--rate",
            "400",
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
    // The fresh summary.json validates against docs/summary.schema.json, and
    // the schema is strict enough to refuse a broken one.
    crate::support::check_summary_schema(&raw);
    let mut broken = raw.clone();
    broken["targets"][0]["total"]["counts"]
        .as_object_mut()
        .unwrap()
        .remove("scheduled");
    broken["valid"] = serde_json::json!("yes");
    let errors = crate::support::summary_schema_errors(&broken);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let s: reports::summary::Summary = serde_json::from_value(raw).unwrap();
    let (direct, gw) = (&s.targets[0].total, &s.targets[1].total);
    assert_eq!(
        (s.targets[0].name.as_str(), s.targets[1].name.as_str()),
        ("direct", "rust-gateway")
    );
    // Every request got through the gateway's JWT check.
    assert_eq!(gw.counts.ok, gw.counts.scheduled);
    assert_eq!(direct.counts.ok, direct.counts.scheduled);
    assert_eq!(gw.counts.ok, 400, "1 s at 400 req/s");
    // The added-latency analysis: the gateway against the direct baseline.
    let added = s.targets[1]
        .added
        .as_ref()
        .expect("added latency for the gateway");
    assert_eq!(added.baseline, "direct");
    assert!(
        added.valid || crate::support::stalled(&s),
        "{:?}",
        added.invalid_reasons
    );
    assert!(
        added.total.p50 > 0,
        "the gateway adds latency at p50: {:?}",
        added.total
    );
    assert_eq!(
        added.total.p50,
        gw.latency.p50 as i64 - direct.latency.p50 as i64
    );
    assert!(
        s.targets[0].added.is_none(),
        "no analysis for the baseline itself"
    );
    // The report: charts, report.md and a self-contained report.html.
    crate::report::assert_report(dir.path(), &["direct", "rust-gateway"], true);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("| rust-gateway | direct | +"), "{md}");
    // The gateway's share shows outside the upstream.
    let (d, g) = (
        direct.outside_upstream.unwrap().p50,
        gw.outside_upstream.unwrap().p50,
    );
    assert!(
        g > d,
        "outside-upstream p50: gateway {g} ns vs direct {d} ns"
    );
}
