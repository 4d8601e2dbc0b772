//! Scenario files (TOML), parsed once into a typed model: targets, request
//! mix, phases and `[auth]`. Enumerations (URLs, HTTP versions, token
//! classes, algorithms, placements…) are checked as the file is read;
//! `validate` keeps the rules across fields. Every error names the file,
//! line:column and field of the value that caused it, including errors found
//! later (a key file that cannot be read: [`Scenario::error_at`]).
//!
//! ```
//! let s = loadgen::scenario::Scenario::parse(r#"
//! name = "t"
//! [[target]]
//! name = "direct"
//! url = "builtin:upstream"
//! [[request]]
//! name = "get"
//! path = "/"
//! [[phase]]
//! name = "p"
//! duration = "1s"
//! rate = 10
//! "#, "t.toml").unwrap();
//! assert_eq!(s.rounds(), 1);
//! ```

mod auth;
mod capacity;
mod dur;
mod event;
pub mod limits;
mod locate;
mod phase;
mod precision;
mod request;
mod target;
mod validate;
mod value;

use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use auth::{
    Aud, AuthSpec, ConsumerSpec, GeneratedSpec, Placement, Popularity, Profile, TokenSource,
};
pub use capacity::{CapacitySpec, Term, parse_percent};
pub use dur::Dur;
pub use event::{Action, DEFAULT_OVERLAP, EventSpec};
pub use locate::Field;
pub use phase::{Phase, Ramp, Rate, Spike, Steps};
pub use precision::{DEFAULT_MAX_ROUNDS, PrecisionSpec};
pub use request::{CLASSES, MAX_BODY, RequestSpec, TokenClass, body_len, within_max_body};
pub use target::{ConnMode, GatewaySpec, HttpVersion, Target, TargetUrl, TlsSpec, UpstreamSpec};
pub use value::{BadValue, header_map};

/// A scenario that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{col}: {msg}")]
    Parse {
        file: String,
        line: usize,
        col: usize,
        msg: String,
    },
    #[error("{file}:{line}:{col}: {field}: {msg}")]
    Invalid {
        file: String,
        line: usize,
        col: usize,
        /// Boxed: errors travel in `Result`s on every path.
        field: Box<Field>,
        msg: String,
    },
}

/// The file a scenario came from, kept to locate errors found after parsing.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The name errors give it (its path, as given).
    pub file: String,
    pub text: Arc<str>,
    /// Relative paths in the file (key files, bodies, the gateway config) resolve here.
    pub dir: std::path::PathBuf,
}

impl PartialEq for Source {
    fn eq(&self, _: &Source) -> bool {
        // Where a scenario came from is not part of what it is.
        true
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Names the run (and the default results directory).
    pub name: String,
    /// Seeds the request sequence, Poisson gaps and templates: the same seed gives the same run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Rounds: every phase runs once per target per round, targets rotated each
    /// round (default 5 with several targets, else 1).
    pub rounds: Option<u32>,
    /// Per-request timeout (default 10s).
    pub timeout: Option<Dur>,
    /// TCP (+TLS) connect timeout (default 3s).
    pub connect_timeout: Option<Dur>,
    /// Open loop: sends waiting for a connection beyond this many are dropped and counted (default 10000).
    pub max_in_flight: Option<usize>,
    /// How long to wait for in-flight requests at the end of a phase or on Ctrl-C (default 5s).
    pub grace: Option<Dur>,
    /// Generator threads, each with its own connections and histograms (default 1).
    pub workers: Option<usize>,
    /// Open loop: wake a little early and spin to each send time (default true).
    /// Keeps send lag at a few µs instead of the kernel's wake-up latency, at
    /// the cost of CPU; false sleeps on the timer alone.
    pub spin: Option<bool>,
    /// Measure this machine's resolution (a short `loadgen calibrate`)
    /// before the first phase, so that figures within the noise are marked
    /// (default true; skipped for shards and capacity steps).
    pub calibrate: Option<bool>,
    /// Programming of `builtin:upstream` targets.
    #[serde(default)]
    pub upstream: UpstreamSpec,
    /// The in-process gateway of `builtin:gateway` targets.
    pub gateway: Option<GatewaySpec>,
    /// JWT consumers, claims, placement and token source (see `loadgen::token`).
    pub auth: Option<AuthSpec>,
    #[serde(rename = "target")]
    pub targets: Vec<Target>,
    #[serde(rename = "request")]
    pub requests: Vec<RequestSpec>,
    #[serde(rename = "phase")]
    pub phases: Vec<Phase>,
    /// `loadgen capacity`'s SLO and search settings (its flags override them).
    pub capacity: Option<CapacitySpec>,
    /// Add rounds (beyond `rounds`) until the added figures are known to ± this.
    pub precision: Option<PrecisionSpec>,
    /// Timed events: revoke, restore, rotate, jwks-rotate, admin.
    #[serde(rename = "event", default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventSpec>,
    /// Where the scenario was read from (not part of the file).
    #[serde(skip)]
    #[schemars(skip)]
    pub source: Source,
}

fn default_seed() -> u64 {
    1
}

/// What the command line changes in a scenario (`loadgen run`'s flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--target NAME=URL`: a target's URL (replacing `url` or `urls`).
    pub targets: Vec<(String, TargetUrl)>,
    /// `--rate`: every open-loop phase at this constant rate.
    pub rate: Option<f64>,
    /// `--duration`: every phase this long.
    pub duration: Option<std::time::Duration>,
    /// `--rounds`.
    pub rounds: Option<u32>,
    /// `--precision`: the half-width of `[precision]` (made with its defaults if absent).
    pub precision: Option<std::time::Duration>,
    /// `--max-rounds`: `[precision] max_rounds`.
    pub max_rounds: Option<u32>,
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
            let (line, col) = locate::line_col(valid, at);
            ScenarioError::Parse {
                file: file.clone(),
                line,
                col,
                msg: format!(
                    "not UTF-8: byte 0x{:02X} at offset {at} (scenario files are UTF-8 text)",
                    bytes[at]
                ),
            }
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates scenario text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let dir = Path::new(file)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let source = Source {
            file: file.to_owned(),
            text: text.into(),
            dir: dir.to_owned(),
        };
        let mut scenario: Scenario = toml::from_str(text).map_err(|e| {
            // A field missing from the top level comes without a place:
            // name the field.
            if e.span()
                .is_none_or(|s| s.is_empty() || (s.start == 0 && s.end >= text.len()))
                && let Some(key) = e
                    .message()
                    .strip_prefix("missing field `")
                    .and_then(|r| r.strip_suffix('`'))
            {
                return ScenarioError::Invalid {
                    file: file.to_owned(),
                    line: 1,
                    col: 1,
                    field: Box::new(Field::top(key)),
                    msg: "missing: every scenario needs `name`, [[target]], [[request]] \
                          and [[phase]]"
                        .into(),
                };
            }
            let at = e.span().map_or(0, |s| s.start);
            match locate::field_at(text, at) {
                (line, col, Some(field)) if e.span().is_some() => ScenarioError::Invalid {
                    file: file.to_owned(),
                    line,
                    col,
                    field: Box::new(field),
                    msg: e.message().to_owned(),
                },
                (line, col, _) => ScenarioError::Parse {
                    file: file.to_owned(),
                    line,
                    col,
                    msg: e.message().to_owned(),
                },
            }
        })?;
        scenario.source = source;
        scenario
            .validate()
            .map_err(|(field, msg)| scenario.error_at(field, msg))?;
        Ok(scenario)
    }

    /// An error about `field`, located in the file the scenario came from.
    pub fn error_at(&self, field: Field, msg: impl Into<String>) -> ScenarioError {
        let (line, col) = locate::locate(&self.source.text, &field).unwrap_or((1, 1));
        ScenarioError::Invalid {
            file: self.source.file.clone(),
            line,
            col,
            field: Box::new(field),
            msg: msg.into(),
        }
    }

    /// Applies command-line overrides to the typed model and validates the
    /// result; errors name the flag.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), ScenarioError> {
        let flag_error = |flag: &str, msg: String| ScenarioError::Parse {
            file: self.source.file.clone(),
            line: 1,
            col: 1,
            msg: format!("{flag}: {msg}"),
        };
        for (name, url) in &o.targets {
            let Some(t) = self.targets.iter_mut().find(|x| &x.name == name) else {
                return Err(flag_error("--target", format!("no target named {name:?}")));
            };
            t.url = Some(url.clone());
            t.urls = None;
        }
        for p in &mut self.phases {
            if let Some(d) = o.duration {
                p.duration = Dur(d);
            }
            if let (Some(r), Some(_)) = (o.rate, &p.rate) {
                p.rate = Some(Rate::Constant(r));
            }
        }
        if let Some(r) = o.rounds {
            self.rounds = Some(r);
        }
        if let Some(d) = o.precision {
            let p = self.precision.get_or_insert(PrecisionSpec {
                half_width: Dur(d),
                at: None,
                max_rounds: None,
            });
            p.half_width = Dur(d);
        }
        if let Some(m) = o.max_rounds {
            let Some(p) = &mut self.precision else {
                return Err(flag_error(
                    "--max-rounds",
                    "needs --precision (or [precision] in the scenario)".into(),
                ));
            };
            p.max_rounds = Some(m);
        }
        self.source.file = format!("{} (with command-line overrides)", self.source.file);
        self.validate()
            .map_err(|(field, msg)| self.error_at(field, msg))
    }

    /// The directory relative paths in the file are resolved against.
    pub fn dir(&self) -> &Path {
        &self.source.dir
    }

    /// The files the scenario reads, as written (relative paths resolve
    /// against [`Scenario::dir`]), each once, in file order: the builtin
    /// gateway's config, key and secret files, request bodies, TLS CA files.
    /// What must travel with the scenario to another machine.
    pub fn files(&self) -> Vec<&Path> {
        let gateway = self.gateway.iter().map(|g| g.config.as_path());
        let tls = self
            .targets
            .iter()
            .filter_map(|t| t.tls.as_ref()?.ca_file.as_deref());
        let auth = self.auth.iter().flat_map(|a| {
            let one = a
                .consumer
                .iter()
                .flat_map(|c| [c.secret_file.as_deref(), c.key_file.as_deref()]);
            let many = a.generated.iter().map(|g| g.key_file.as_deref());
            one.chain(many).flatten()
        });
        let bodies = self.requests.iter().filter_map(|r| r.body_file.as_deref());
        let jwks = self.events.iter().filter_map(|e| e.jwks.as_deref());
        let mut files: Vec<&Path> = Vec::new();
        for f in gateway.chain(tls).chain(auth).chain(bodies).chain(jwks) {
            if !files.contains(&f) {
                files.push(f);
            }
        }
        files
    }

    /// SHA-256 (hex) of the scenario as it runs, after command-line
    /// overrides: shards merge only when theirs are equal.
    pub fn content_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        ring::digest::digest(&ring::digest::SHA256, &json)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The JSON Schema of scenario files, for editors.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Scenario)).unwrap_or_default()
    }

    /// Rounds to run: explicit, else 5 with several targets, else 1.
    pub fn rounds(&self) -> u32 {
        self.rounds
            .unwrap_or(if self.targets.len() > 1 { 5 } else { 1 })
    }

    /// Whether `t`'s tokens are signed per request (its `token_source`, else `[auth] source`).
    pub fn per_request(&self, t: &Target) -> bool {
        let global = self
            .auth
            .as_ref()
            .and_then(|a| a.source)
            .unwrap_or_default();
        t.token_source.unwrap_or(global) == TokenSource::PerRequest
    }

    /// The token classes the requests use, each once, in a fixed order.
    pub fn token_classes(&self) -> Vec<TokenClass> {
        let mut classes: Vec<TokenClass> = self.requests.iter().filter_map(|r| r.token).collect();
        classes.sort();
        classes.dedup();
        classes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const GOOD: &str = r#"
name = "t"
[[target]]
name = "direct"
url = "builtin:upstream"
[[request]]
name = "get"
path = "/orders/{seq}"
[[phase]]
name = "steady"
duration = "2s"
rate = 100
"#;

    fn err(text: &str) -> String {
        Scenario::parse(text, "s.toml").unwrap_err().to_string()
    }

    #[test]
    fn numbers_out_of_their_documented_range_name_the_field() {
        let with = |key: &str, line: &str| {
            GOOD.replace(&format!("{key} = "), &format!("{line}\n{key} = "))
        };
        let cases = [
            (
                GOOD.replace(
                    "url = \"builtin:upstream\"",
                    "url = \"builtin:upstream\"\nconnections = 4294967296",
                ),
                "s.toml:6:1: target[0].connections: 4294967296 is out of range: 1 to 100,000",
            ),
            (
                with("seed", "").replace("name = \"t\"", "name = \"t\"\nrounds = 0"),
                "s.toml:3:1: rounds: 0 is out of range: 1 to 10,000",
            ),
            (
                GOOD.replace("name = \"t\"", "name = \"t\"\ntimeout = \"-5s\""),
                "s.toml:3:1: timeout: \"-5s\" is negative: a duration is 0 or more",
            ),
            (
                GOOD.replace("name = \"t\"", "name = \"t\"\ntimeout = \"10us\""),
                "s.toml:3:1: timeout: must be at least 1ms",
            ),
            (
                GOOD.replace("rate = 100", "concurrency = 2000000"),
                "s.toml:12:1: phase[0].concurrency: 2000000 is out of range: 1 to 1,000,000",
            ),
            (
                GOOD.replace("path = ", "expect = 99\npath = "),
                "s.toml:8:1: request[0].expect: 99 is not an HTTP status",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(err(&text), want, "{text}");
        }
    }

    #[test]
    fn a_file_that_is_not_utf8_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, b"name = \"t\"\n# caf\xe9\n").unwrap();
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "bad.toml:2:6: not UTF-8: byte 0xE9 at offset 16 (scenario files are UTF-8 text)"
            ),
            "{e}"
        );
        let missing = Scenario::load(&dir.path().join("none.toml"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read: No such file"), "{missing}");
    }

    #[test]
    fn parses_a_minimal_scenario_with_defaults() {
        let s = Scenario::parse(GOOD, "s.toml").unwrap();
        assert_eq!(s.rounds(), 1);
        assert_eq!(s.phases[0].rate, Some(Rate::Constant(100.0)));
        assert_eq!(s.phases[0].duration.0, Duration::from_secs(2));
    }

    #[test]
    fn rate_forms() {
        for (rate, want) in [
            (
                "{ from = 10, to = 20 }",
                Rate::Ramp(Ramp {
                    from: 10.0,
                    to: 20.0,
                }),
            ),
            (
                "{ steps = [1, 2] }",
                Rate::Steps(Steps {
                    steps: vec![1.0, 2.0],
                }),
            ),
            (
                r#"{ base = 1, peak = 9, at = "1s", length = "500ms" }"#,
                Rate::Spike(Spike {
                    base: 1.0,
                    peak: 9.0,
                    at: Dur(Duration::from_secs(1)),
                    length: Dur(Duration::from_millis(500)),
                }),
            ),
        ] {
            let s = Scenario::parse(
                &GOOD.replace("rate = 100", &format!("rate = {rate}")),
                "s.toml",
            )
            .unwrap();
            assert_eq!(s.phases[0].rate, Some(want));
        }
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let e = err(&GOOD.replace("rate = 100", "rate = 100\nrat = 5"));
        assert!(e.starts_with("s.toml:13:1: "), "{e}");
        assert!(e.contains("unknown field `rat`"), "{e}");
    }

    #[test]
    fn invalid_values_name_line_and_field() {
        let e = err(&GOOD.replace("url = \"builtin:upstream\"", "url = \"ftp://x\""));
        assert!(e.starts_with("s.toml:5:1: target[0].url: "), "{e}");
        let e = err(&GOOD.replace("duration = \"2s\"", "duration = \"2 weeks\""));
        assert!(e.starts_with("s.toml:11:"), "{e}");
        let e = err(&GOOD.replace("rate = 100", "rate = 100\nconcurrency = 4"));
        assert!(e.starts_with("s.toml:13:1: phase[0].concurrency: "), "{e}");
        let e = err(&GOOD.replace("path = \"/orders/{seq}\"", "path = \"/orders/{nope}\""));
        assert!(e.starts_with("s.toml:8:1: request[0].path: "), "{e}");
        let e = err(&GOOD.replace("rate = 100", "rate = -5"));
        assert!(e.contains("phase[0].rate"), "{e}");
        // A target's own headers are read as a request's are.
        let with = |h: &str| {
            GOOD.replace(
                "url = \"builtin:upstream\"",
                &format!("url = \"builtin:upstream\"\nheaders = {h}"),
            )
        };
        let e = err(&with(r#"{ "bad name" = "1" }"#));
        assert!(
            e.contains("target[0].headers: \"bad name\" is not a header name"),
            "{e}"
        );
        let e = err(&with(r#"{ "x-a" = "line\nbreak" }"#));
        assert!(e.contains("target[0].headers: the value of \"x-a\""), "{e}");
        let s = Scenario::parse(&with(r#"{ "x-mock-latency" = "fixed:10us" }"#), "s.toml").unwrap();
        assert_eq!(s.targets[0].headers["x-mock-latency"], "fixed:10us");
    }

    #[test]
    fn schema_describes_the_file() {
        let schema = Scenario::json_schema();
        assert!(schema["properties"]["target"].is_object(), "{schema}");
        assert_eq!(schema["additionalProperties"], false);
    }

    #[test]
    fn files_lists_what_the_scenario_reads_once_each() {
        let text = format!(
            "{GOOD}{}",
            r#"
[gateway]
config = "gw.yml"
[[target]]
name = "tls"
url = "https://127.0.0.1:1/"
tls = { ca_file = "ca.pem" }
[auth]
[[auth.consumer]]
name = "a"
alg = "RS256"
key_file = "keys/rs.pem"
[[auth.consumer]]
name = "b"
secret_file = "b.secret"
[[auth.consumers]]
count = 3
alg = "RS256"
key_file = "keys/rs.pem"
[[request]]
name = "post"
path = "/"
body_file = "body.json"
"#
        );
        let s = Scenario::parse(&text, "s.toml").unwrap();
        let files: Vec<String> = s.files().iter().map(|f| f.display().to_string()).collect();
        assert_eq!(
            files,
            ["gw.yml", "ca.pem", "keys/rs.pem", "b.secret", "body.json"]
        );
        assert!(Scenario::parse(GOOD, "s.toml").unwrap().files().is_empty());
    }
}
