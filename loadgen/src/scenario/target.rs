//! `[[target]]`, `[upstream]` and `[gateway]`: the systems under test and the
//! in-process servers behind `builtin:` URLs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::value::BadValue;

/// One system under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    /// `false` for a target that does not check tokens (a baseline, a plain
    /// proxy): requests with `token` then expect any 2xx there (default true).
    pub auth: Option<bool>,
    /// `http://…`, `https://…`, `builtin:upstream` or `builtin:gateway`.
    pub url: Option<TargetUrl>,
    /// Several instances of one gateway, spread round-robin over connections.
    pub urls: Option<Vec<TargetUrl>>,
    /// The direct path to the upstream that gateways are compared against.
    #[serde(default)]
    pub baseline: bool,
    /// `"1.1"` (default) or `"2"`.
    pub http: Option<HttpVersion>,
    /// Connections (default 16).
    pub connections: Option<usize>,
    /// HTTP/2: concurrent streams per connection (default 16).
    pub streams: Option<usize>,
    /// `keep-alive` (default) or `new-connection` (one connection per request).
    pub mode: Option<ConnMode>,
    /// `once` (default: the host name is resolved before the run) or
    /// `per-connection` (resolved again for every new connection, and the
    /// time it took recorded as the `dns` phase, as curl does per call).
    pub resolve: Option<Resolve>,
    /// TLS options for https URLs.
    pub tls: Option<TlsSpec>,
    /// The target's Kong-compatible Admin API (`http://host:port`), for
    /// `[[event]]`s (`builtin:gateway` has its own).
    pub admin: Option<String>,
    /// `pool` or `per-request`: this target's token source instead of
    /// `[auth] source` (e.g. one gateway twice, pooled tokens against a
    /// unique token per request, to show a verification cache).
    pub token_source: Option<super::auth::TokenSource>,
    /// Header lines sent to this target only, after each request's own
    /// (e.g. a mock's `x-mock-latency` on one path, or a tenant header).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Where a target is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetUrl {
    /// `builtin:upstream`: the mock upstream, in-process.
    BuiltinUpstream,
    /// `builtin:gateway`: our gateway, in-process, from `[gateway] config`.
    BuiltinGateway,
    /// An `http://` or `https://` URL with a host.
    Http(String),
}

impl TargetUrl {
    pub fn is_builtin(&self) -> bool {
        !matches!(self, TargetUrl::Http(_))
    }

    pub fn as_str(&self) -> &str {
        match self {
            TargetUrl::BuiltinUpstream => "builtin:upstream",
            TargetUrl::BuiltinGateway => "builtin:gateway",
            TargetUrl::Http(u) => u,
        }
    }
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetUrl {
    type Err = BadValue;
    fn from_str(u: &str) -> Result<TargetUrl, BadValue> {
        match u {
            "builtin:upstream" => Ok(TargetUrl::BuiltinUpstream),
            "builtin:gateway" => Ok(TargetUrl::BuiltinGateway),
            u if u.starts_with("http://") || u.starts_with("https://") => {
                let uri: http::Uri = u.parse().map_err(|e| BadValue(format!("{u:?}: {e}")))?;
                if uri.host().is_none() {
                    return Err(BadValue(format!("{u:?} has no host")));
                }
                Ok(TargetUrl::Http(u.to_owned()))
            }
            u => Err(BadValue(format!(
                "{u:?}: expected http://, https://, builtin:upstream or builtin:gateway"
            ))),
        }
    }
}

super::value::string_serde!(
    TargetUrl,
    "TargetUrl",
    "`http://…`, `https://…`, `builtin:upstream` or `builtin:gateway`",
    "^(https?://.+|builtin:upstream|builtin:gateway)$"
);

/// The HTTP version a target is spoken to in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum HttpVersion {
    #[default]
    #[serde(rename = "1.1")]
    Http1,
    #[serde(rename = "2")]
    Http2,
}

/// Connection reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConnMode {
    #[default]
    KeepAlive,
    /// One connection per request.
    NewConnection,
}

/// When a target's host name is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Resolve {
    #[default]
    Once,
    PerConnection,
}

/// TLS client options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// PEM file of CA certificates to trust (default: the web PKI roots);
    /// a relative path is relative to the scenario file.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (loopback testing only).
    #[serde(default)]
    pub insecure: bool,
    /// SNI and verification name (default: the URL's host).
    pub server_name: Option<String>,
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
    /// Add the scenario's `[auth]` consumers to the config's, as `loadgen
    /// provision rust-gateway` writes them (default false): 100,000
    /// generated partners without a 10 MB config file.
    pub provision: Option<bool>,
    /// Its Admin API answers a change at once and the proxy applies it this
    /// much later (default 0): a known stale window, as a Kong node polling
    /// every `db_update_frequency` has.
    pub admin_apply_delay: Option<super::dur::Dur>,
    /// Terminate TLS with this PEM certificate chain (relative to the
    /// scenario file; `tls_key` with it): `builtin:gateway` is then an
    /// `https://` URL, as `jwt-gateway --tls-cert` is.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Target {
    /// The URLs, from `url` or `urls`.
    pub fn url_list(&self) -> Vec<TargetUrl> {
        self.urls
            .clone()
            .unwrap_or_else(|| self.url.iter().cloned().collect())
    }

    pub fn http2(&self) -> bool {
        self.http == Some(HttpVersion::Http2)
    }

    /// Whether `[[event]]`s without a `target` apply to it: it checks tokens
    /// (no `auth = false`) and is not the baseline.
    pub fn takes_events(&self) -> bool {
        !self.baseline && self.auth != Some(false)
    }

    pub fn keep_alive(&self) -> bool {
        self.mode != Some(ConnMode::NewConnection)
    }

    pub fn resolve_per_connection(&self) -> bool {
        self.resolve == Some(Resolve::PerConnection)
    }

    /// Rules across this target's fields: `(key, message)`.
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !super::value::valid_name(&self.name) {
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
        if urls.len() > 1 && urls.iter().any(TargetUrl::is_builtin) {
            return Err(("urls", "builtin targets take a single url".into()));
        }
        if self.http2() && !self.keep_alive() {
            return Err(("mode", "new-connection is for HTTP/1.1 only".into()));
        }
        if self.connections == Some(0) {
            return Err(("connections", "must be at least 1".into()));
        }
        if self.streams == Some(0) {
            return Err(("streams", "must be at least 1".into()));
        }
        super::value::header_map(&self.headers).map_err(|e| ("headers", e.0))?;
        if let Some(a) = &self.admin
            && !a.starts_with("http://")
        {
            return Err((
                "admin",
                format!("{a:?}: expected http://host:port (an Admin API on loopback)"),
            ));
        }
        Ok(())
    }
}
