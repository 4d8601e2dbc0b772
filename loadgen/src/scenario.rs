//! Scenario files (TOML): targets, request mix, phases. Parsed with
//! `deny_unknown_fields`, then validated; every error names the file,
//! line:column and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A scenario that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read")]
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
        field: String,
        msg: String,
    },
}

/// A duration written as a string: `500ms`, `1.5s`, `2m`, `250us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dur(pub Duration);

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:?}", self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        mock_upstream::spec::parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "a duration with a unit: ns, us, ms, s, m (e.g. \"500ms\", \"1.5s\")",
            "pattern": "^(0|[0-9.]+(ns|us|µs|ms|s|m|min))$"
        })
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
    /// Programming of `builtin:upstream` targets.
    #[serde(default)]
    pub upstream: UpstreamSpec,
    /// The in-process gateway of `builtin:gateway` targets.
    pub gateway: Option<GatewaySpec>,
    /// JWT consumers, claims, placement and token source (see `loadgen::auth`).
    pub auth: Option<crate::auth::AuthSpec>,
    #[serde(rename = "target")]
    pub targets: Vec<Target>,
    #[serde(rename = "request")]
    pub requests: Vec<RequestSpec>,
    #[serde(rename = "phase")]
    pub phases: Vec<Phase>,
}

fn default_seed() -> u64 {
    1
}

/// How `builtin:upstream` answers (the mock upstream's flags).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    /// e.g. `fixed:1ms`, `lognormal:2ms,20ms` (default 0).
    pub latency: Option<String>,
    /// e.g. `2`, `1KiB` (default 2: the body `ok`).
    pub size: Option<String>,
    /// e.g. `200`, `200:98,503:2`.
    pub status: Option<String>,
}

/// `builtin:gateway`: our Rust gateway, in-process, from a Kong declarative file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// Kong declarative config (relative to the scenario file); a service
    /// `url: builtin:upstream` points at the builtin upstream.
    pub config: PathBuf,
    /// Gateway worker threads (default 1).
    pub workers: Option<usize>,
}

/// One system under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    /// `false` for a target that does not check tokens (a baseline, a plain
    /// proxy): requests with `token` then expect any 2xx there (default true).
    pub auth: Option<bool>,
    /// `http://…`, `https://…`, `builtin:upstream` or `builtin:gateway`.
    pub url: Option<String>,
    /// Several instances of one gateway, spread round-robin over connections.
    pub urls: Option<Vec<String>>,
    /// The direct path to the upstream that gateways are compared against.
    #[serde(default)]
    pub baseline: bool,
    /// `"1.1"` (default) or `"2"`.
    pub http: Option<String>,
    /// Connections (default 16).
    pub connections: Option<usize>,
    /// HTTP/2: concurrent streams per connection (default 16).
    pub streams: Option<usize>,
    /// `keep-alive` (default) or `new-connection` (one connection per request).
    pub mode: Option<String>,
    /// TLS options for https URLs.
    pub tls: Option<TlsSpec>,
}

/// TLS client options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM file of CA certificates to trust (default: the web PKI roots).
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (loopback testing only).
    #[serde(default)]
    pub insecure: bool,
    /// SNI and verification name (default: the URL's host).
    pub server_name: Option<String>,
}

/// One request class of the mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Names the class in results (and its `.hlog` tag): letters, digits, `-_.`.
    pub name: String,
    /// Relative share of the mix (default 1).
    pub weight: Option<u32>,
    /// Default GET.
    pub method: Option<String>,
    /// Path and query template: `{seq}`, `{rand:N}`, `{uuid}`.
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Inline body.
    pub body: Option<String>,
    /// Body read from a file (relative to the scenario file).
    pub body_file: Option<PathBuf>,
    /// Random body of this many bytes (`1KiB`), generated once from the seed.
    pub body_size: Option<String>,
    /// Expected status (default: any 2xx; with `token`, the class's status: 200 for
    /// valid and oversized, 401 for the invalid classes).
    pub expect: Option<u16>,
    /// The JWT this request carries (needs `[auth]`): valid, expired, not-yet-valid,
    /// bad-signature, wrong-key, unknown-issuer, alg-none, alg-confusion, malformed,
    /// missing, duplicate or oversized.
    pub token: Option<String>,
    /// Sign for this `[auth]` consumer only (default: spread over all consumers).
    pub consumer: Option<String>,
}

/// One phase of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub duration: Dur,
    /// Open loop: arrivals per second.
    pub rate: Option<Rate>,
    /// Open loop: exponential gaps with the same mean (default false: even spacing).
    #[serde(default)]
    pub poisson: bool,
    /// Closed loop: connections each looping request → response.
    pub concurrency: Option<usize>,
    /// Closed loop: pause after each response.
    pub think_time: Option<Dur>,
    /// False for warm-up: run but don't record (default true).
    pub record: Option<bool>,
}

/// An arrival rate over a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Rate {
    /// Constant requests per second.
    Constant(f64),
    /// Linear ramp across the phase.
    Ramp(Ramp),
    /// Equal-length steps across the phase.
    Steps(Steps),
    /// `base`, except `peak` for `length` starting `at` into the phase.
    Spike(Spike),
}

/// `{ from = 500, to = 5000 }`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    pub from: f64,
    pub to: f64,
}

/// `{ steps = [500, 1000, 2000] }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Steps {
    pub steps: Vec<f64>,
}

/// `{ base = 500, peak = 5000, at = "5s", length = "1s" }`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    pub base: f64,
    pub peak: f64,
    pub at: Dur,
    pub length: Dur,
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text, &file)
    }

    /// Parses and validates scenario text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ScenarioError::Parse {
                file: file.to_owned(),
                line,
                col,
                msg: e.message().to_owned(),
            }
        })?;
        scenario.validate().map_err(|v| {
            let (line, col) = locate(text, v.table, v.index, v.key).unwrap_or((1, 1));
            let field = match (v.table, v.index) {
                ("", _) => v.key.to_owned(),
                (t, Some(i)) => format!("{t}[{i}].{}", v.key),
                (t, None) => format!("{t}.{}", v.key),
            };
            ScenarioError::Invalid {
                file: file.to_owned(),
                line,
                col,
                field,
                msg: v.msg,
            }
        })?;
        Ok(scenario)
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

    fn validate(&self) -> Result<(), Violation> {
        let top = |key, msg: &str| Violation {
            table: "",
            index: None,
            key,
            msg: msg.to_owned(),
        };
        if self.name.trim().is_empty() {
            return Err(top("name", "must not be empty"));
        }
        if self.rounds == Some(0) {
            return Err(top("rounds", "must be at least 1"));
        }
        if self.workers == Some(0) {
            return Err(top("workers", "must be at least 1"));
        }
        if self.max_in_flight == Some(0) {
            return Err(top("max_in_flight", "must be at least 1"));
        }
        for (key, spec) in [
            ("latency", &self.upstream.latency),
            ("size", &self.upstream.size),
            ("status", &self.upstream.status),
        ] {
            let err = spec.as_deref().and_then(|s| match key {
                "latency" => s.parse::<mock_upstream::Latency>().err(),
                "size" => s.parse::<mock_upstream::Size>().err(),
                _ => s.parse::<mock_upstream::StatusMix>().err(),
            });
            if let Some(e) = err {
                return Err(Violation {
                    table: "upstream",
                    index: None,
                    key,
                    msg: e.to_string(),
                });
            }
        }
        if self.targets.is_empty() {
            return Err(top("target", "at least one [[target]] is needed"));
        }
        let wants_gateway = self
            .targets
            .iter()
            .flat_map(Target::url_list)
            .any(|u| u == "builtin:gateway");
        if wants_gateway && self.gateway.is_none() {
            return Err(top(
                "gateway",
                "builtin:gateway needs a [gateway] section with config = \"kong.yml\"",
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            t.validate().map_err(|(key, msg)| Violation {
                table: "target",
                index: Some(i),
                key,
                msg,
            })?;
            if self.targets[..i].iter().any(|o| o.name == t.name) {
                return Err(Violation {
                    table: "target",
                    index: Some(i),
                    key: "name",
                    msg: format!("duplicate target name {:?}", t.name),
                });
            }
        }
        if self.requests.is_empty() {
            return Err(top("request", "at least one [[request]] is needed"));
        }
        for (i, r) in self.requests.iter().enumerate() {
            r.validate().map_err(|(key, msg)| Violation {
                table: "request",
                index: Some(i),
                key,
                msg,
            })?;
            if self.requests[..i].iter().any(|o| o.name == r.name) {
                return Err(Violation {
                    table: "request",
                    index: Some(i),
                    key: "name",
                    msg: format!("duplicate request name {:?}", r.name),
                });
            }
        }
        for (i, r) in self.requests.iter().enumerate() {
            let v = |key, msg: String| Violation {
                table: "request",
                index: Some(i),
                key,
                msg,
            };
            if let Some(t) = &r.token {
                crate::auth::TokenClass::parse(t).map_err(|e| v("token", e))?;
                if self.auth.is_none() {
                    return Err(v("token", "needs an [auth] section with consumers".into()));
                }
            }
            if let Some(c) = &r.consumer {
                if r.token.is_none() {
                    return Err(v("consumer", "only with token = \"…\"".into()));
                }
                let names = self.auth.as_ref().map(|a| {
                    a.consumer
                        .iter()
                        .map(|x| x.name.clone())
                        .collect::<Vec<_>>()
                });
                if !names.unwrap_or_default().contains(c) {
                    return Err(v("consumer", format!("no [[auth.consumer]] named {c:?}")));
                }
            }
        }
        if let Some(a) = &self.auth {
            let v = |key, msg: String| Violation {
                table: "auth",
                index: None,
                key,
                msg,
            };
            if let Some(p) = &a.profile {
                crate::auth::Profile::parse(p).map_err(|e| v("profile", e))?;
            }
            if let Some(p) = &a.placement {
                crate::auth::Placement::parse(p).map_err(|e| v("placement", e))?;
            }
            if let Some(src) = &a.source
                && src != "pool"
                && src != "per-request"
            {
                return Err(v(
                    "source",
                    format!("{src:?}: expected pool or per-request"),
                ));
            }
            if a.consumer.is_empty() && a.generated.is_empty() {
                return Err(v(
                    "consumer",
                    "at least one [[auth.consumer]] or [[auth.consumers]] is needed".into(),
                ));
            }
            for (i, c) in a.consumer.iter().enumerate() {
                if let Some(alg) = &c.alg {
                    crate::jwt::Alg::parse(alg).map_err(|e| Violation {
                        table: "auth.consumer",
                        index: Some(i),
                        key: "alg",
                        msg: e,
                    })?;
                }
            }
        }
        if self.requests.iter().all(|r| r.weight == Some(0)) {
            return Err(Violation {
                table: "request",
                index: Some(0),
                key: "weight",
                msg: "all weights are zero".into(),
            });
        }
        if self.phases.is_empty() {
            return Err(top("phase", "at least one [[phase]] is needed"));
        }
        for (i, p) in self.phases.iter().enumerate() {
            p.validate().map_err(|(key, msg)| Violation {
                table: "phase",
                index: Some(i),
                key,
                msg,
            })?;
        }
        if self.phases.iter().all(|p| p.record == Some(false)) {
            return Err(Violation {
                table: "phase",
                index: Some(0),
                key: "record",
                msg: "no phase is recorded".into(),
            });
        }
        Ok(())
    }
}

/// A validation failure located by table, index and key.
struct Violation {
    table: &'static str,
    index: Option<usize>,
    key: &'static str,
    msg: String,
}

type FieldError = (&'static str, String);

impl Target {
    /// The URLs, from `url` or `urls`.
    pub fn url_list(&self) -> Vec<String> {
        self.urls
            .clone()
            .unwrap_or_else(|| self.url.iter().cloned().collect())
    }

    fn validate(&self) -> Result<(), FieldError> {
        if !valid_name(&self.name) {
            return Err(("name", "use letters, digits, '-', '_' or '.'".into()));
        }
        let urls = match (&self.url, &self.urls) {
            (Some(_), Some(_)) => return Err(("urls", "give url or urls, not both".into())),
            (None, None) => {
                return Err((
                    "url",
                    "missing: http://…, https://…, builtin:upstream or builtin:gateway".into(),
                ));
            }
            (None, Some(v)) if v.is_empty() => return Err(("urls", "must not be empty".into())),
            _ => self.url_list(),
        };
        let key = if self.url.is_some() { "url" } else { "urls" };
        for u in &urls {
            match u.as_str() {
                "builtin:upstream" | "builtin:gateway" => {}
                u if u.starts_with("http://") || u.starts_with("https://") => {
                    let uri: http::Uri = u.parse().map_err(|e| (key, format!("{u:?}: {e}")))?;
                    if uri.host().is_none() {
                        return Err((key, format!("{u:?} has no host")));
                    }
                }
                u => {
                    return Err((
                        key,
                        format!(
                            "{u:?}: expected http://, https://, builtin:upstream or builtin:gateway"
                        ),
                    ));
                }
            }
        }
        if urls.len() > 1 && urls.iter().any(|u| u.starts_with("builtin:")) {
            return Err((key, "builtin targets take a single url".into()));
        }
        match self.http.as_deref() {
            None | Some("1.1") | Some("2") => {}
            Some(v) => return Err(("http", format!("{v:?}: expected \"1.1\" or \"2\""))),
        }
        match self.mode.as_deref() {
            None | Some("keep-alive") | Some("new-connection") => {}
            Some(v) => {
                return Err((
                    "mode",
                    format!("{v:?}: expected \"keep-alive\" or \"new-connection\""),
                ));
            }
        }
        if self.http.as_deref() == Some("2") && self.mode.as_deref() == Some("new-connection") {
            return Err(("mode", "new-connection is for HTTP/1.1 only".into()));
        }
        if self.connections == Some(0) {
            return Err(("connections", "must be at least 1".into()));
        }
        if self.streams == Some(0) {
            return Err(("streams", "must be at least 1".into()));
        }
        Ok(())
    }
}

impl RequestSpec {
    fn validate(&self) -> Result<(), FieldError> {
        if !valid_name(&self.name) {
            return Err((
                "name",
                "use letters, digits, '-', '_' or '.' (it becomes an .hlog tag)".into(),
            ));
        }
        if let Some(m) = &self.method {
            http::Method::from_bytes(m.as_bytes())
                .map_err(|_| ("method", format!("{m:?} is not an HTTP method")))?;
        }
        crate::template::Template::parse(&self.path).map_err(|e| ("path", e))?;
        if !self.path.starts_with('/') {
            return Err(("path", "must start with '/'".into()));
        }
        for (k, v) in &self.headers {
            http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ("headers", format!("{k:?} is not a header name")))?;
            http::HeaderValue::from_str(v).map_err(|_| {
                (
                    "headers",
                    format!("the value of {k:?} is not a valid header value"),
                )
            })?;
        }
        let bodies = [
            self.body.is_some(),
            self.body_file.is_some(),
            self.body_size.is_some(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err(("body", "give one of body, body_file, body_size".into()));
        }
        if let Some(s) = &self.body_size {
            s.parse::<mock_upstream::Size>()
                .map_err(|e| ("body_size", e.to_string()))?;
        }
        if let Some(s) = self.expect
            && !(100..=599).contains(&s)
        {
            return Err(("expect", format!("{s} is not an HTTP status")));
        }
        Ok(())
    }
}

impl Phase {
    /// Records unless `record = false`.
    pub fn recorded(&self) -> bool {
        self.record.unwrap_or(true)
    }

    fn validate(&self) -> Result<(), FieldError> {
        if !valid_name(&self.name) {
            return Err(("name", "use letters, digits, '-', '_' or '.'".into()));
        }
        if self.duration.0.is_zero() {
            return Err(("duration", "must be greater than zero".into()));
        }
        match (&self.rate, self.concurrency) {
            (Some(_), Some(_)) => {
                return Err((
                    "concurrency",
                    "give rate (open loop) or concurrency (closed loop), not both".into(),
                ));
            }
            (None, None) => {
                return Err((
                    "rate",
                    "missing: give rate (open loop) or concurrency (closed loop)".into(),
                ));
            }
            (None, Some(0)) => return Err(("concurrency", "must be at least 1".into())),
            (Some(r), None) => r.validate(self.duration.0).map_err(|m| ("rate", m))?,
            (None, Some(_)) => {}
        }
        if self.rate.is_some() && self.think_time.is_some() {
            return Err(("think_time", "only for closed loop (concurrency)".into()));
        }
        if self.concurrency.is_some() && self.poisson {
            return Err(("poisson", "only for open loop (rate)".into()));
        }
        Ok(())
    }
}

impl Rate {
    fn validate(&self, duration: Duration) -> Result<(), String> {
        let ok = |r: f64| (0.0..=10_000_000.0).contains(&r);
        let all = match self {
            Rate::Constant(r) => vec![*r],
            Rate::Ramp(Ramp { from, to }) => vec![*from, *to],
            Rate::Steps(Steps { steps }) if steps.is_empty() => {
                return Err("steps must not be empty".into());
            }
            Rate::Steps(Steps { steps }) => steps.clone(),
            Rate::Spike(Spike {
                base,
                peak,
                at,
                length,
            }) => {
                if at.0 + length.0 > duration {
                    return Err("the spike ends after the phase".into());
                }
                vec![*base, *peak]
            }
        };
        if !all.iter().all(|r| ok(*r)) {
            return Err("rates must be between 0 and 10,000,000 requests per second".into());
        }
        if all.iter().all(|r| *r == 0.0) {
            return Err("the rate is zero throughout".into());
        }
        Ok(())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, col)
}

/// Finds the line of `key` inside the `index`-th `[[table]]` (or the top level).
fn locate(text: &str, table: &str, index: Option<usize>, key: &str) -> Option<(usize, usize)> {
    let mut current: Option<(&str, usize)> = None;
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut header_line = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if let Some(rest) = line.strip_prefix("[[") {
            let name = rest.split("]]").next().unwrap_or("").trim();
            let k = seen.entry(name).or_insert(0);
            current = Some((name, *k));
            *k += 1;
            if Some(name) == Some(table) && index == Some(*k - 1) {
                header_line = Some(n + 1);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or("").trim();
            current = Some((name, 0));
            if name == table && index.is_none() {
                header_line = Some(n + 1);
            }
            continue;
        }
        let here = match current {
            None => table.is_empty(),
            Some((t, i)) => t == table && index.is_none_or(|x| x == i),
        };
        let is_key = line
            .strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with('='));
        if here && is_key {
            return Some((n + 1, raw.len() - line.len() + 1));
        }
    }
    header_line.map(|l| (l, 1))
}

#[cfg(test)]
mod tests {
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
    }

    #[test]
    fn schema_describes_the_file() {
        let schema = Scenario::json_schema();
        assert!(schema["properties"]["target"].is_object(), "{schema}");
        assert_eq!(schema["additionalProperties"], false);
    }
}
