use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser as _;
use loadgen::cli::Exit;
use reports::events::EventResult;
use reports::summary::Summary;

use crate::serial;
use crate::support::{busy, check_summary_schema, stalled};

/// Our gateway's config for these tests: two HS256 consumers and one RS256.
fn gateway_config(rs_public_pem: &str) -> String {
    let pem: String = rs_public_pem
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    format!(
        r#"_format_version: "3.0"
services:
- name: up
  url: builtin:upstream
  routes:
  - name: all
    paths: ["/"]
    plugins:
    - name: jwt
consumers:
- username: web-app
  jwt_secrets:
  - {{ key: web-app, algorithm: HS256, secret: web-secret }}
- username: partner
  jwt_secrets:
  - {{ key: partner, algorithm: HS256, secret: partner-secret }}
- username: mobile
  jwt_secrets:
  - key: mobile
    algorithm: RS256
    rsa_public_key: |
{pem}"#
    )
}

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/keys/demo-rs256");

/// A scenario on the builtin gateway with the three consumers, `requests`
/// and `rest` (phases, events) appended.
fn scenario(gateway_extra: &str, requests: &str, rest: &str) -> String {
    format!(
        r#"
name = "events"
seed = 9
rounds = 1
[upstream]
latency = "0"
[gateway]
config = "gw.yml"
{gateway_extra}
[auth]
profile = "rust-gateway"
[[auth.consumer]]
name = "web-app"
alg = "HS256"
secret = "web-secret"
[[auth.consumer]]
name = "partner"
alg = "HS256"
secret = "partner-secret"
[[auth.consumer]]
name = "mobile"
alg = "RS256"
key_file = "{KEYS}/private.pem"
[[target]]
name = "gw"
url = "builtin:gateway"
connections = 16
{requests}
[[phase]]
name = "warmup"
duration = "500ms"
rate = 500
record = false
{rest}"#
    )
}

fn request(name: &str, consumer: &str, weight: u32) -> String {
    format!(
        "[[request]]\nname = \"{name}\"\nweight = {weight}\npath = \"/{{seq}}\"\ntoken = \"valid\"\nconsumer = \"{consumer}\"\n"
    )
}

fn event(phase: &str, at: &str, action: &str, consumer: &str, extra: &str) -> String {
    format!(
        "[[event]]\nphase = \"{phase}\"\nat = \"{at}\"\naction = \"{action}\"\nconsumer = \"{consumer}\"\n{extra}\n"
    )
}

struct Outcome {
    code: Exit,
    summary: Summary,
}

impl Outcome {
    fn events(&self, action: &str) -> Vec<&EventResult> {
        self.summary
            .events
            .iter()
            .filter(|e| e.action == action)
            .collect()
    }

    /// Exit 0, or invalid for send lag alone on a machine that stalled;
    /// true in that second case (sends were not on their schedule).
    fn ok(&self) -> bool {
        let stalled = self.code == Exit::Invalid && stalled(&self.summary);
        assert!(
            self.code == Exit::Ok || stalled,
            "exit {:?}: faults {:?} invalid {:?}",
            self.code,
            self.summary.target_faults,
            self.summary.invalid_reasons
        );
        stalled
    }
}

/// Writes the scenario and the gateway config into `dir` and runs it.
fn run_in(dir: &Path, text: &str, extra: &[&str]) -> Outcome {
    let pem = std::fs::read_to_string(format!("{KEYS}/public.pem")).unwrap();
    std::fs::write(dir.join("gw.yml"), gateway_config(&pem)).unwrap();
    let file = dir.join("s.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let mut args: Vec<String> = [
        "loadgen",
        "run",
        "--no-calibrate",
        file.to_str().unwrap(),
        "--out",
    ]
    .map(String::from)
    .to_vec();
    args.push(out.display().to_string());
    args.extend(["--quiet", "--no-report"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let code = loadgen::cli::main_with(
        loadgen::cli::Args::parse_from(&args),
        Arc::new(AtomicBool::new(false)),
    );
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    check_summary_schema(&raw);
    Outcome {
        code,
        summary: serde_json::from_value(raw).unwrap(),
    }
}

fn run(text: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), text, &[])
}

const MS: u64 = 1_000_000;

/// Our gateway sees an Admin API change on the very next request: no
/// request sent after the DELETE's 204 is accepted, and the first refusal
/// comes within the next request's gap plus its latency.
#[test]
fn a_revocation_through_our_gateway_has_no_stale_accept() {
    let _s = serial();
    let text = scenario(
        "",
        &format!(
            "{}{}",
            request("web", "web-app", 1),
            request("partner", "partner", 3)
        ),
        &format!(
            "[[phase]]\nname = \"steady\"\nduration = \"3s\"\nrate = 2000\n{}{}",
            event("steady", "1s", "revoke", "partner", ""),
            event("steady", "2s", "restore", "partner", "")
        ),
    )
    .replace("rounds = 1", "rounds = 2");
    let o = run(&text);
    o.ok();
    let t = &o.summary.targets[0].total;
    assert_eq!(t.counts.unexpected, 0, "{:?}", t.status);
    let noisy = busy(&o.summary);
    let (revokes, restores) = (o.events("revoke"), o.events("restore"));
    assert_eq!((revokes.len(), restores.len()), (2, 2));
    for e in revokes {
        assert_eq!(e.error, None);
        assert_eq!(e.calls.len(), 1);
        assert_eq!(e.calls[0].status, 204, "{:?}", e.calls);
        assert!(
            e.calls[0]
                .what
                .starts_with("DELETE /consumers/partner/jwt/partner")
        );
        // 1,500 req/s for the partner over the second until the restore
        // (on a busy machine, sends go late and fewer fall in the window).
        assert!(
            e.after.sent > if noisy { 300 } else { 1300 },
            "{:?}",
            e.after
        );
        assert_eq!(e.stale, Some(0), "stale accepts: {e:?}");
        assert_eq!(e.stale_window_ns, Some(0));
        assert_eq!(e.after.refused, e.after.sent, "{:?}", e.after);
        let first = e.first_new_ns.expect("a refusal");
        let bound = if noisy { 20 * MS } else { 5 * MS };
        assert!(
            first < bound,
            "first refusal after {first} ns (machine noisy: {noisy})"
        );
    }
    for e in restores {
        assert_eq!(e.calls[0].status, 201, "{:?}", e.calls);
        assert_eq!(e.stale, Some(0), "{e:?}");
        assert_eq!(e.after.accepted, e.after.sent, "{:?}", e.after);
    }
    // The chart's buckets: accepted before, refused after, by send time, up
    // to the restore less the slowest answer (a request sent before the
    // restore but answered after it is accepted rightly: the buckets go by
    // send time, not by answer).
    let (e, restore) = (o.events("revoke")[0], o.events("restore")[0]);
    let slowest_ms = (o.summary.targets[0].total.latency.max / 1_000_000) as i64 + 1;
    let restored_ms = ((restore.issued_s - e.effective_s) * 1000.0) as i64 - slowest_ms;
    let before: u64 = e
        .buckets
        .iter()
        .filter(|b| b.t_ms < -100)
        .map(|b| b.refused)
        .sum();
    let after: u64 = e
        .buckets
        .iter()
        .filter(|b| b.t_ms >= 0 && b.t_ms + 100 <= restored_ms)
        .map(|b| b.accepted)
        .sum();
    assert!(
        restored_ms > 500,
        "restore {restored_ms} ms after the revoke, less the slowest answer"
    );
    assert_eq!((before, after), (0, 0), "{:?}", e.buckets);
    let text = reports::text::render(&o.summary);
    assert!(text.contains("revoke partner"), "{text}");
    assert!(text.contains("stale 0 (window 0us)"), "{text}");
}

/// A gateway that applies Admin API changes 500 ms after answering (as a
/// Kong node polling every db_update_frequency) is measured as a ~500 ms
/// stale window holding ~500 ms of the consumer's requests, for the revoke
/// and for the restore.
#[test]
fn a_gateway_applying_changes_500ms_late_shows_a_500ms_stale_window() {
    let _s = serial();
    let text = scenario(
        "admin_apply_delay = \"500ms\"",
        &request("partner", "partner", 1),
        &format!(
            "[[phase]]\nname = \"steady\"\nduration = \"3s\"\nrate = 2000\n{}{}",
            event("steady", "500ms", "revoke", "partner", ""),
            event("steady", "1800ms", "restore", "partner", "")
        ),
    );
    let o = run(&text);
    let stalled = o.ok();
    assert_eq!(o.summary.targets[0].total.counts.unexpected, 0);
    for e in o.summary.events.iter() {
        let window = e.stale_window_ns.unwrap();
        let stale = e.stale.unwrap();
        assert!(
            (470 * MS..=600 * MS).contains(&window),
            "{} window {window} ns",
            e.action
        );
        // 2,000 req/s for ~0.5 s, when the sends kept their schedule; when
        // the generator fell behind, they are counted by when they went.
        let expected = if stalled { 1..=2000 } else { 900..=1200 };
        assert!(expected.contains(&stale), "{} stale {stale}", e.action);
        let first = e.first_new_ns.unwrap();
        assert!(
            first >= window,
            "first new answer {first} before the window's end {window}"
        );
    }
}

/// Rotations of an HS256 and an RS256 credential through the Admin API,
/// twice (the first round's is undone before the second): no request fails.
#[test]
fn key_rotations_fail_no_request_and_are_undone_between_rounds() {
    let _s = serial();
    let text = scenario(
        "",
        &format!(
            "{}{}",
            request("partner", "partner", 1),
            request("mobile", "mobile", 1)
        ),
        &format!(
            "[[phase]]\nname = \"steady\"\nduration = \"3s\"\nrate = 1000\n{}{}",
            event(
                "steady",
                "500ms",
                "rotate",
                "partner",
                "overlap = \"500ms\""
            ),
            event(
                "steady",
                "1500ms",
                "rotate",
                "mobile",
                "overlap = \"500ms\""
            )
        ),
    )
    .replace("rounds = 1", "rounds = 2");
    let o = run(&text);
    o.ok();
    assert_eq!(o.summary.target_faults, Vec::<String>::new());
    let rotations = o.events("rotate");
    assert_eq!(rotations.len(), 4);
    for e in rotations {
        let statuses: Vec<u16> = e.calls.iter().map(|c| c.status).collect();
        assert_eq!(statuses, [201, 204], "{:?}", e.calls);
        assert_eq!(e.failed, Some(0), "{e:?}");
        assert!(e.after.sent > 300, "{:?}", e.after);
        assert!(e.first_new_ns.is_some());
    }
}

/// jwks-rotate against our gateway's oidc plugin reading a JWKS file: the
/// new kid is accepted, nothing fails, and the file is put back afterwards.
#[test]
fn a_jwks_rotation_fails_no_request_and_the_file_is_put_back() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(format!("{KEYS}/jwks.json")).unwrap();
    std::fs::write(dir.path().join("jwks.json"), &original).unwrap();
    std::fs::write(
        dir.path().join("oidc.yml"),
        "_format_version: \"3.0\"\nservices:\n- name: up\n  url: builtin:upstream\n  routes:\n  - name: all\n    paths: [\"/\"]\n    plugins:\n    - name: oidc\n      config: { issuer: \"https://idp.test\", audiences: [orders], jwks_file: jwks.json, refetch_interval: 0 }\n",
    )
    .unwrap();
    let text = format!(
        r#"
name = "jwks"
rounds = 2
[gateway]
config = "oidc.yml"
[auth]
profile = "aws-http-api"
issuer = "https://idp.test"
aud = "orders"
[[auth.consumer]]
name = "app"
alg = "RS256"
key_file = "{KEYS}/private.pem"
kid = "demo-rs256"
[[target]]
name = "gw"
url = "builtin:gateway"
[[request]]
name = "get"
path = "/"
token = "valid"
[[phase]]
name = "steady"
duration = "2s"
rate = 1000
{}"#,
        event(
            "steady",
            "500ms",
            "jwks-rotate",
            "app",
            "jwks = \"jwks.json\"\noverlap = \"500ms\""
        )
    );
    let o = run_in(dir.path(), &text, &[]);
    o.ok();
    let rotations = o.events("jwks-rotate");
    assert_eq!(rotations.len(), 2);
    for e in rotations {
        assert_eq!(e.failed, Some(0), "{e:?}");
        assert!(e.first_new_ns.is_some(), "{e:?}");
        assert!(e.calls[0].what.contains("(2 keys)"), "{:?}", e.calls);
        assert!(e.calls[1].what.contains("(1 keys)"), "{:?}", e.calls);
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("jwks.json")).unwrap(),
        original
    );
}

/// An Admin API call that fails fails the run with exit 4 and its body; so
/// does a revoke of a credential the gateway does not have.
#[test]
fn a_failed_admin_call_exits_4_with_its_status_and_body() {
    let _s = serial();
    let text = scenario(
        "",
        &request("partner", "partner", 1),
        &format!(
            "[[phase]]\nname = \"steady\"\nduration = \"1s\"\nrate = 200\n{}[[event]]\nphase = \"steady\"\nat = \"500ms\"\naction = \"admin\"\nmethod = \"DELETE\"\npath = \"/consumers/nobody\"\nexpect = 204\n",
            event("steady", "200ms", "revoke", "partner", "")
        ),
    );
    // Revoked twice: the second DELETE finds nothing.
    let text = text.replace(
        "[[event]]\nphase = \"steady\"\nat = \"500ms\"",
        &format!(
            "{}[[event]]\nphase = \"steady\"\nat = \"500ms\"",
            event("steady", "300ms", "revoke", "partner", "")
        ),
    );
    let o = run(&text);
    // A run that is invalid outranks failed expectations (docs/scenario.md's exit
    // table): on a machine that stalled, the verdict is 3, with the same faults.
    assert!(
        o.code == Exit::Expectations || (o.code == Exit::Invalid && stalled(&o.summary)),
        "exit {:?}: faults {:?} invalid {:?}",
        o.code,
        o.summary.target_faults,
        o.summary.invalid_reasons
    );
    let faults = o.summary.target_faults.join("\n");
    assert!(faults.contains("DELETE http://127.0.0.1:"), "{faults}");
    assert!(
        faults.contains("/consumers/partner/jwt/partner: HTTP 404"),
        "{faults}"
    );
    assert!(faults.contains("/consumers/nobody: HTTP 404"), "{faults}");
    assert!(faults.contains("Not found"), "{faults}");
    let failed: Vec<&EventResult> = o
        .summary
        .events
        .iter()
        .filter(|e| e.error.is_some())
        .collect();
    assert_eq!(failed.len(), 2, "{:?}", o.summary.events);
}

/// Events are checked with the scenario: each error names the event's field.
#[test]
fn bad_events_are_refused_naming_the_field() {
    let base = |events: &str| {
        scenario(
            "",
            &request("partner", "partner", 1),
            &format!("[[phase]]\nname = \"steady\"\nduration = \"1s\"\nrate = 10\n{events}"),
        )
    };
    let cases = [
        (
            event("nope", "1s", "revoke", "partner", ""),
            "event[0].phase: no [[phase]] named \"nope\"",
        ),
        (
            event("steady", "2s", "revoke", "partner", ""),
            "event[0].at: ",
        ),
        (
            "[[event]]\nphase = \"steady\"\nat = \"1ms\"\naction = \"revoke\"\n".to_owned(),
            "event[0].consumer: missing",
        ),
        (
            event("steady", "1ms", "revoke", "nobody", ""),
            "event[0].consumer: no [auth] consumer \"nobody\"",
        ),
        (
            event("steady", "1ms", "jwks-rotate", "partner", ""),
            "event[0].jwks: missing",
        ),
        (
            event(
                "steady",
                "1ms",
                "jwks-rotate",
                "partner",
                "jwks = \"j.json\"",
            ),
            "event[0].consumer: partner signs with HS256",
        ),
        (
            event("steady", "1ms", "revoke", "partner", "overlap = \"1s\""),
            "event[0].overlap: only for rotate",
        ),
        (
            event("steady", "1ms", "revoke", "partner", "admin = \"ftp://x\""),
            "event[0].admin: ",
        ),
        (
            "[[event]]\nphase = \"steady\"\nat = \"1ms\"\naction = \"admin\"\nbody = \"{\"\n"
                .to_owned(),
            "event[0].path: missing",
        ),
    ];
    for (events, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let pem = std::fs::read_to_string(format!("{KEYS}/public.pem")).unwrap();
        std::fs::write(dir.path().join("gw.yml"), gateway_config(&pem)).unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, base(&events)).unwrap();
        let e = match loadgen::scenario::Scenario::load(&file)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                loadgen::engine::plan::Plan::new(&s)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }) {
            Ok(()) => panic!("{events} was accepted"),
            Err(e) => e,
        };
        assert!(e.contains(want), "{events}: {e}");
    }
    // A target with no Admin API of its own needs one named.
    let text = base(&event("steady", "1ms", "revoke", "partner", ""))
        .replace("url = \"builtin:gateway\"", "url = \"http://127.0.0.1:9\"");
    let e = loadgen::scenario::Scenario::parse(&text, "s.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("event[0].admin: target \"gw\" has no Admin API"),
        "{e}"
    );
    // Shards would each carry the events out.
    let dir = tempfile::tempdir().unwrap();
    let pem = std::fs::read_to_string(format!("{KEYS}/public.pem")).unwrap();
    std::fs::write(dir.path().join("gw.yml"), gateway_config(&pem)).unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        base(&event("steady", "1ms", "revoke", "partner", "")),
    )
    .unwrap();
    let at = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(30),
    )
    .to_string();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            "--no-calibrate",
            file.to_str().unwrap(),
            "--quiet",
            "--shard",
            "0/2",
            "--start-at",
            &at,
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("[[event]]s need one process"), "{e}");
    assert_ne!(o.status.code(), Some(0));
}
