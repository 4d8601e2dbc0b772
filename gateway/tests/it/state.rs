//! The Admin state on disk, through the `jwt-gateway` binary: a JSON state
//! from an earlier version is migrated, and a kill -9 in the middle of a
//! stream of writes loses none that were acknowledged.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_jwt-gateway");

/// A running gateway and its Admin address.
struct Gw {
    child: Child,
    admin: String,
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &Path, state: Option<&Path>) -> Gw {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).args([
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--workers",
        "1",
    ]);
    if let Some(s) = state {
        cmd.arg("--state").arg(s);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut proxy, mut admin) = (String::new(), String::new());
    out.read_line(&mut proxy).unwrap();
    out.read_line(&mut admin).unwrap();
    let admin = admin
        .trim()
        .strip_prefix("admin listening on http://")
        .unwrap_or_else(|| panic!("second line: {admin:?}"))
        .to_owned();
    Gw { child, admin }
}

/// One Admin request on its own connection: (status, body); None when the
/// gateway did not answer (it was killed).
fn call(admin: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(admin).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.get(9..12)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1.to_owned())?;
    Some((status, body))
}

fn usernames(admin: &str) -> Vec<String> {
    let (status, body) = call(admin, "GET", "/consumers", "").unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["username"].as_str().unwrap_or("").to_owned())
        .collect()
}

const CONFIG: &str = "_format_version: \"3.0\"\nconsumers:\n- username: from-config\n";

#[test]
fn a_json_state_from_an_earlier_version_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kong.yml");
    std::fs::write(&config, CONFIG).unwrap();
    let legacy = r#"{"_format_version": "3.0", "consumers": [{"username": "from-json", "jwt_secrets": [{"key": "k1", "secret": "s"}]}]}"#;

    // The default place: <config>.state.json is read into <config>.state.db.
    std::fs::write(dir.path().join("kong.yml.state.json"), legacy).unwrap();
    let gw = start(&config, None);
    assert_eq!(usernames(&gw.admin), ["from-json"]);
    let (s, _) = call(&gw.admin, "POST", "/consumers", r#"{"username":"added"}"#).unwrap();
    assert_eq!(s, 201);
    drop(gw);
    let db = dir.path().join("kong.yml.state.db");
    let head = std::fs::read(&db).unwrap();
    assert!(head.starts_with(b"SQLite format 3\0"));
    // Restarted, the database wins over both the config and the old JSON.
    let gw = start(&config, None);
    assert_eq!(usernames(&gw.admin), ["from-json", "added"]);
    drop(gw);

    // A JSON state named by --state is replaced in place, the JSON kept.
    let state = dir.path().join("mine.json");
    std::fs::write(&state, legacy).unwrap();
    let gw = start(&config, Some(&state));
    assert_eq!(usernames(&gw.admin), ["from-json"]);
    let (s, body) = call(&gw.admin, "GET", "/jwts/k1", "").unwrap();
    assert_eq!(s, 200, "{body}");
    drop(gw);
    assert!(
        std::fs::read(&state)
            .unwrap()
            .starts_with(b"SQLite format 3\0")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mine.json.json.bak")).unwrap(),
        legacy
    );

    // A state that is neither is refused with its name, not replaced.
    let bad = dir.path().join("bad.state");
    std::fs::write(&bad, "consumers: [[[").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--state")
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.state"), "{err}");
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), "consumers: [[[");
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kong.yml");
    // 10,000 consumers with a credential each: the size the write path
    // must not care about.
    let mut yaml = String::from("_format_version: \"3.0\"\nconsumers:\n");
    for i in 0..10_000 {
        yaml.push_str(&format!(
            "- username: partner-{i}\n  jwt_secrets:\n  - key: pk-{i}\n    secret: s{i}\n"
        ));
    }
    std::fs::write(&config, yaml).unwrap();
    let state = dir.path().join("state.db");
    let mut gw = start(&config, Some(&state));
    let admin = gw.admin.clone();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = count.clone();
    // Writes one after another until the gateway dies; the acknowledged ones.
    let writer = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for i in 0..1_000 {
            let body = format!(r#"{{"key":"new-{i}","secret":"x{i}"}}"#);
            let path = format!("/consumers/partner-{}/jwt", i * 7 % 10_000);
            match call(&admin, "POST", &path, &body) {
                Some((201, _)) => acked.push(i),
                Some((s, b)) => panic!("write {i}: {s} {b}"),
                None => break,
            }
            counted.store(acked.len(), std::sync::atomic::Ordering::Relaxed);
        }
        acked
    });
    // Kill mid-stream: after a few hundred acknowledgements.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while count.load(std::sync::atomic::Ordering::Relaxed) < 300
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    gw.child.kill().unwrap(); // SIGKILL
    gw.child.wait().unwrap();
    let acked = writer.join().unwrap();
    assert!(
        (300..1_000).contains(&acked.len()),
        "killed after {} writes: not mid-stream",
        acked.len()
    );

    let gw = start(&config, Some(&state));
    for i in &acked {
        let (s, body) = call(&gw.admin, "GET", &format!("/jwts/new-{i}"), "").unwrap();
        assert_eq!(s, 200, "acknowledged write {i} lost: {body}");
    }
    // And the 10,000 from the config are all still there.
    let (s, body) = call(&gw.admin, "GET", "/consumers/partner-9999/jwt/pk-9999", "").unwrap();
    assert_eq!(s, 200, "{body}");
}
