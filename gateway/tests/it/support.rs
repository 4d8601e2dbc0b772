//! Shared by the integration tests: the test keys and the clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Test-only keys (see `tests/fixtures/README.md`).
pub const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fixture file's text.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIX}/{name}")).unwrap()
}

/// Our gateway on 127.0.0.1:0 serving a Kong declarative config given as text.
pub async fn spawn_yaml(yaml: &str) -> gateway::Handle {
    let snapshot = gateway::config::Declarative::parse(yaml, "test.yml")
        .unwrap()
        .compile()
        .unwrap();
    gateway::spawn(snapshot, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}
