//! The jwt plugin's verify path on arbitrary bytes as a bearer token and as
//! `?jwt=`: never a panic, never an accepted token (the consumers' keys are
//! not in the input's reach).
#![no_main]

use std::sync::OnceLock;

use gateway::auth::jwt::{JwtConf, authenticate};
use gateway::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

const KONG: &str = r#"
_format_version: "3.0"
consumers:
- username: hs
  jwt_secrets:
  - key: hs-key
    secret: a-secret-the-fuzzer-cannot-know
- username: hs512
  jwt_secrets:
  - key: hs512-key
    algorithm: HS512
    secret: another-secret-out-of-reach
"#;

fn snapshot() -> &'static Snapshot {
    static S: OnceLock<Snapshot> = OnceLock::new();
    S.get_or_init(|| {
        gateway::config::Declarative::parse(KONG, "fuzz.yml")
            .and_then(|d| d.compile())
            .unwrap_or_else(|e| panic!("the fuzz config: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let conf = JwtConf::default();
    let snap = snapshot();
    let mut h = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {text}")) {
        h.insert(http::header::AUTHORIZATION, v);
    }
    let query = format!("jwt={text}");
    let r = authenticate(&conf, &snap.credentials, Some(&query), &h, || 1_800_000_000);
    assert!(r.is_err(), "accepted: {text:?}");
});
