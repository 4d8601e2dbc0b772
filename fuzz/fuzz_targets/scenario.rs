//! The scenario parser on arbitrary text: never a panic, and every error
//! names its place (a field, or a line and column inside the text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgen::scenario::{Scenario, ScenarioError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Scenario::parse(text, "fuzz.toml") {
        Ok(_) | Err(ScenarioError::Invalid { .. }) => {}
        Err(ScenarioError::Parse { line, .. }) => {
            assert!(line >= 1 && line <= text.lines().count() + 1, "line {line}");
        }
        Err(e @ ScenarioError::Read { .. }) => panic!("{e}"),
    }
});
