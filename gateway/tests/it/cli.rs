//! The `jwt-gateway` binary: first stdout lines, exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_jwt-gateway");

#[test]
fn prints_both_addresses_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kong.yml");
    std::fs::write(&config, "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://127.0.0.1:9\n  routes:\n  - name: r\n    paths: [\"/\"]\n").unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--workers",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    assert!(
        first.starts_with("proxy listening on http://127.0.0.1:"),
        "{first}"
    );
    assert!(
        second.starts_with("admin listening on http://127.0.0.1:"),
        "{second}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    // The Admin state is made at start, beside the config, with the config's consumers.
    let db = std::fs::read(dir.path().join("kong.yml.state.db")).unwrap();
    assert!(db.starts_with(b"SQLite format 3\0"));
}

#[test]
fn a_bad_config_exits_2_naming_entity_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kong.yml");
    std::fs::write(&config, "_format_version: \"3.0\"\nconsumers:\n- username: a\n  jwt_secrets:\n  - key: k\n    algorithm: HS999\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("consumers[0].jwt_secrets[0]: algorithm"),
        "{err}"
    );
}
