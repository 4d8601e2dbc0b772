//! Every scenario field at its extremes, generated from `loadgen schema`:
//! for each scalar field of each section (top level, [[target]],
//! [[request]], [[phase]], [auth], [[auth.consumer]], [upstream],
//! [gateway], [capacity], [precision], [[event]]), each extreme value of its
//! type replaces the field in a scenario that validates, and `loadgen
//! validate` runs under a 160 MiB address-space limit (`prlimit --as`). It
//! must accept (exit 0) or refuse with a message (exit 2): never abort,
//! panic or run out of memory, so nothing a scenario asks for is allocated
//! at validation time.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::cmd::BIN;

const BASE: &str = r#"
name = "x"
seed = 1
rounds = 1
[upstream]
latency = "fixed:1ms"
[gateway]
config = "gw.yml"
[auth]
profile = "kong"
[[auth.consumer]]
name = "c"
alg = "HS256"
secret = "s3cret-0123456789abcdef"
[capacity]
slo = ["added.p90<=1ms"]
[precision]
half_width = "50us"
[[target]]
name = "t"
url = "builtin:gateway"
[[target]]
name = "d"
url = "builtin:upstream"
baseline = true
auth = false
[[request]]
name = "r"
path = "/"
token = "valid"
[[phase]]
name = "p"
duration = "2s"
rate = 10
[[event]]
phase = "p"
at = "1s"
action = "revoke"
consumer = "c"
"#;

/// Where each section lives in a scenario, and its schema definition.
const SECTIONS: [(&str, &str); 11] = [
    ("", ""),
    ("target", "Target"),
    ("request", "RequestSpec"),
    ("phase", "Phase"),
    ("auth", "AuthSpec"),
    ("auth.consumer", "ConsumerSpec"),
    ("upstream", "UpstreamSpec"),
    ("gateway", "GatewaySpec"),
    ("capacity", "CapacitySpec"),
    ("precision", "PrecisionSpec"),
    ("event", "EventSpec"),
];

/// The scalar types a field's schema allows (through `$ref` and `anyOf`).
fn scalar_types(schema: &Value, defs: &Value, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/$defs/");
        return scalar_types(&defs[name], defs, out);
    }
    for list in ["anyOf", "oneOf"] {
        for s in schema[list].as_array().into_iter().flatten() {
            scalar_types(s, defs, out);
        }
    }
    let types = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    for t in types {
        if matches!(t.as_str(), "string" | "integer" | "number") && !out.contains(&t) {
            out.push(t);
        }
    }
}

fn extremes(ty: &str) -> Vec<toml::Value> {
    match ty {
        "integer" => vec![0.into(), (-1).into(), i64::MAX.into(), i64::MIN.into()],
        "number" => vec![
            0.0.into(),
            (-1.0).into(),
            1e308.into(),
            1e-300.into(),
            f64::INFINITY.into(),
            f64::NAN.into(),
        ],
        _ => vec![
            "".into(),
            "0".into(),
            "-1".into(),
            "18446744073709551616".into(),
            "1e308".into(),
            "nan".into(),
            "1000000000y".into(),
            "64GiB".into(),
            "x".repeat(1 << 20).into(),
        ],
    }
}

/// The table a section names in `doc` (an array's first element).
fn section<'a>(doc: &'a mut toml::Table, path: &str) -> &'a mut toml::Table {
    let mut t = doc;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        t = match t.get_mut(key).expect("the base scenario has every section") {
            toml::Value::Table(inner) => inner,
            toml::Value::Array(items) => items[0].as_table_mut().unwrap(),
            other => panic!("{key}: {other:?}"),
        };
    }
    t
}

fn validate(dir: &Path, file: &str) -> (Option<i32>, String) {
    let out = Command::new("prlimit")
        .arg(format!("--as={}", 160u64 << 20))
        .arg(BIN)
        .arg("validate")
        .arg(dir.join(file))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_scenario_field_at_its_extremes_validates_or_is_refused_within_160_mib() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gw.yml"),
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: builtin:upstream\n  routes:\n  - name: r\n    paths: [\"/\"]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("base.toml"), BASE).unwrap();
    let (code, err) = validate(dir.path(), "base.toml");
    assert_eq!(code, Some(0), "the base scenario validates: {err}");

    let schema: Value =
        serde_json::from_slice(&Command::new(BIN).arg("schema").output().unwrap().stdout).unwrap();
    let defs = &schema["$defs"];
    let base: toml::Table = BASE.parse().unwrap();
    let mut cases = Vec::new();
    for (path, def) in SECTIONS {
        let props = if def.is_empty() {
            &schema["properties"]
        } else {
            &defs[def]["properties"]
        };
        for (field, fs) in props.as_object().unwrap() {
            let mut types = Vec::new();
            scalar_types(fs, defs, &mut types);
            for ty in types {
                for v in extremes(&ty) {
                    let mut doc = base.clone();
                    section(&mut doc, path).insert(field.clone(), v);
                    let what = format!("{path}.{field} ({ty})");
                    cases.push((what, toml::to_string(&doc).unwrap()));
                }
            }
        }
    }
    assert!(
        cases.len() > 500,
        "{} cases: the schema walk found the fields",
        cases.len()
    );
    // Two at a time (the machine has two cores).
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((what, text)) = cases.get(i) else {
                        return;
                    };
                    let file = format!("case-{i}.toml");
                    std::fs::write(dir.path().join(&file), text).unwrap();
                    let (code, err) = validate(dir.path(), &file);
                    let refused_clearly =
                        code == Some(2) && err.contains(&format!("case-{i}.toml"));
                    if !(code == Some(0) || refused_clearly) || err.contains("panicked") {
                        let first = err
                            .lines()
                            .next()
                            .unwrap_or("")
                            .chars()
                            .take(300)
                            .collect::<String>();
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{what}: exit {code:?}: {first}"));
                    }
                    let _ = std::fs::remove_file(dir.path().join(&file));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
