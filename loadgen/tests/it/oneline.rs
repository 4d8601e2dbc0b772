//! `loadgen URL`: one line against real servers, and the scenario it saves
//! run again as a file.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser as _;
use reports::summary::Summary;

use crate::support::{mock_latency, server_runtime};

fn main_with(args: &[&str]) -> loadgen::cli::Exit {
    loadgen::cli::main_with(
        loadgen::cli::Args::parse_from(args),
        Arc::new(AtomicBool::new(false)),
    )
}

fn summary(dir: &std::path::Path) -> Summary {
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    crate::support::check_summary_schema(&raw);
    serde_json::from_value(raw).unwrap()
}

/// The run is valid, or invalid only because the machine stalled under it.
fn valid(code: loadgen::cli::Exit, s: &Summary) {
    assert!(
        code == loadgen::cli::Exit::Ok
            || (code == loadgen::cli::Exit::Invalid && crate::support::stalled(s)),
        "exit {code:?}: {:?}",
        s.invalid_reasons
    );
}

#[test]
fn a_url_and_its_saved_scenario_give_the_same_figures() {
    let _serial = crate::support::serial();
    let rt = server_runtime();
    // A known delay, read back by both runs.
    let up = rt.block_on(mock_latency("fixed:2ms"));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("saved.toml");
    let (d1, d2) = (tmp.path().join("url"), tmp.path().join("file"));
    let url = format!("{}/orders/{{seq}}", up.base_url());
    let quiet = ["--quiet", "--no-calibrate", "--no-report"];
    let mut args = vec![
        "loadgen",
        &url,
        "--rate",
        "200",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "-H",
        "x-tenant: a",
        "--save-scenario",
        file.to_str().unwrap(),
        "--out",
        d1.to_str().unwrap(),
    ];
    args.extend(quiet);
    let c1 = main_with(&args);
    let mut args = vec![
        "loadgen",
        "run",
        file.to_str().unwrap(),
        "--out",
        d2.to_str().unwrap(),
    ];
    args.extend(quiet);
    let c2 = main_with(&args);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"x-tenant\" = \"a\""), "{text}");
    let (s1, s2) = (summary(&d1), summary(&d2));
    valid(c1, &s1);
    valid(c2, &s2);
    // The same scenario, so the same content hash, seed and schedule.
    assert_eq!(s1.scenario, s2.scenario);
    let (t1, t2) = (&s1.targets[0].total, &s2.targets[0].total);
    assert_eq!(t1.counts.scheduled, 400, "200/s for 2 s, recorded");
    assert_eq!(t1.counts.scheduled, t2.counts.scheduled);
    assert_eq!((t1.counts.ok, t2.counts.ok), (400, 400));
    for t in [t1, t2] {
        assert!(
            t.latency.p50 >= 2_000_000,
            "p50 {} under the 2 ms delay",
            t.latency.p50
        );
    }
    let gap = t1.latency.p50.abs_diff(t2.latency.p50);
    assert!(
        gap < 1_000_000,
        "p50 {} vs {}",
        t1.latency.p50,
        t2.latency.p50
    );
    assert!(text.starts_with("# Written by: "), "{text}");
}

#[test]
fn signed_tokens_from_the_command_line_pass_our_gateway_and_a_wrong_secret_does_not() {
    let _serial = crate::support::serial();
    let rt = server_runtime();
    let up = rt.block_on(mock_latency("fixed:0ms"));
    let dir = tempfile::tempdir().unwrap();
    let kong = format!(
        "_format_version: \"3.0\"\nconsumers:\n- username: web\n  jwt_secrets:\n  - key: web-app\n    secret: right\nservices:\n- name: up\n  url: {}\n  routes: [{{ name: all, paths: [\"/\"], plugins: [{{ name: jwt, config: {{ claims_to_verify: [exp] }} }}] }}]\n",
        up.base_url()
    );
    let gw = rt.block_on(crate::support::gateway_with_admin(&kong, dir.path()));
    let url = format!("{}/x", gw.proxy_url());
    let base = up.base_url().to_owned();
    let run = |secret: &str, out: &std::path::Path| {
        main_with(&[
            "loadgen",
            &url,
            "--rate",
            "100",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--rounds",
            "2",
            "--jwt-secret",
            secret,
            "--consumer",
            "web-app",
            "--profile",
            "rust-gateway",
            "--claim",
            "scope=orders.read",
            "--baseline",
            &base,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--no-calibrate",
            "--no-report",
        ])
    };
    let ok = dir.path().join("ok");
    let code = run("right", &ok);
    let s = summary(&ok);
    valid(code, &s);
    let gateway = s.targets.iter().find(|t| t.name == "target").unwrap();
    assert_eq!(gateway.total.counts.ok, 200, "2 rounds of 100");
    assert!(
        s.targets.iter().any(|t| t.name == "baseline"),
        "the baseline ran beside it"
    );
    let bad = dir.path().join("bad");
    assert_eq!(run("wrong", &bad), loadgen::cli::Exit::Expectations);
    let s = summary(&bad);
    let gateway = s.targets.iter().find(|t| t.name == "target").unwrap();
    assert_eq!(gateway.total.counts.unexpected, 200, "every token refused");
}

#[test]
fn bad_flags_are_usage_errors_that_name_the_flag() {
    let out = crate::cmd::loadgen(&["http://127.0.0.1:9/", "--jwt-key", "k.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--alg"));
    let out = crate::cmd::loadgen(&["ftp://127.0.0.1/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://"));
    // A subcommand still parses as one.
    let out = crate::cmd::loadgen(&["validate", "scenarios/none.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none.toml"));
}
