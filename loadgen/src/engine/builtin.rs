//! The in-process servers of `builtin:upstream` and `builtin:gateway`, and
//! the endpoints (address, TLS, authority) of every target URL.

use std::net::ToSocketAddrs as _;
use std::path::Path;
use std::time::Duration;

use super::conn::{self, Endpoint};
use super::error::RunError;
use crate::scenario::{Scenario, Target, TargetUrl, header_map};

/// In-process servers started for `builtin:` targets; stopped on drop.
pub(super) struct Builtins {
    /// Relative paths in the scenario (CA files) are relative to it.
    scenario_dir: std::path::PathBuf,
    upstream: Option<mock_upstream::Handle>,
    gateway: Option<gateway::Handle>,
    // Dropped last: the servers' tasks run on these.
    _runtimes: Vec<tokio::runtime::Runtime>,
}

fn runtime(name: &str, threads: usize) -> Result<tokio::runtime::Runtime, RunError> {
    conn_guard::background_runtime(name, threads).map_err(|source| RunError::Io {
        what: format!("cannot start the {name} runtime"),
        source,
    })
}

/// The builtin gateway's declarative file, checked: `url: builtin:upstream`
/// services pointed at the builtin upstream, and with `provision` the
/// scenario's `[auth]` consumers added.
fn gateway_config(
    spec: &crate::scenario::GatewaySpec,
    scenario_dir: &Path,
    upstream_url: &str,
    tokens: Option<&crate::token::Tokens>,
) -> Result<gateway::config::Declarative, RunError> {
    let path = scenario_dir.join(&spec.config);
    let config_error = |source| RunError::GatewayConfig {
        path: path.clone(),
        source,
    };
    let mut decl = gateway::config::Declarative::load(&path).map_err(config_error)?;
    let builtin = TargetUrl::BuiltinUpstream.as_str();
    for svc in &mut decl.services {
        if svc.url.as_deref() == Some(builtin) {
            svc.url = Some(upstream_url.to_owned());
        }
    }
    if let (Some(true), Some(tokens)) = (spec.provision, tokens) {
        for doc in crate::commands::provision::consumer_docs(tokens) {
            let c = serde_json::from_value(doc).map_err(|e| RunError::Io {
                what: "cannot provision the builtin gateway".into(),
                source: std::io::Error::other(e),
            })?;
            decl.consumers.push(c);
        }
    }
    decl.compile().map_err(config_error)?;
    Ok(decl)
}

impl Builtins {
    /// `tokens`: the scenario's `[auth]`, for `[gateway] provision`.
    pub(super) fn start(
        s: &Scenario,
        scenario_dir: &Path,
        tokens: Option<&crate::token::Tokens>,
    ) -> Result<Builtins, RunError> {
        let urls: Vec<TargetUrl> = s.targets.iter().flat_map(Target::url_list).collect();
        let wants_gateway = urls.contains(&TargetUrl::BuiltinGateway);
        let mut b = Builtins {
            scenario_dir: scenario_dir.to_owned(),
            upstream: None,
            gateway: None,
            _runtimes: Vec::new(),
        };
        if !wants_gateway && !urls.contains(&TargetUrl::BuiltinUpstream) {
            return Ok(b);
        }
        let rt = runtime("builtin-upstream", 1)?;
        let u = &s.upstream;
        let program = mock_upstream::Program {
            latency: u.latency.as_deref().unwrap_or("0").parse()?,
            size: u.size.as_deref().unwrap_or("2").parse()?,
            status: u.status.as_deref().unwrap_or("200").parse()?,
            ..mock_upstream::Program::default()
        };
        let config = mock_upstream::Config {
            program,
            ..mock_upstream::Config::default()
        };
        let upstream = rt
            .block_on(mock_upstream::spawn(config))
            .map_err(RunError::BuiltinUpstream)?;
        let upstream_url = upstream.base_url().to_owned();
        b.upstream = Some(upstream);
        b._runtimes.push(rt);
        if wants_gateway {
            let spec = s.gateway.as_ref().ok_or(RunError::NoGatewaySection)?;
            let decl = gateway_config(spec, scenario_dir, &upstream_url, tokens)?;
            let rt = runtime("builtin-gateway", spec.workers.unwrap_or(1))?;
            let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            // With its Admin API (in memory: no state file), for `[[event]]`s.
            let gw = rt
                .block_on(gateway::start(gateway::Options {
                    config: decl,
                    listen: loopback,
                    admin_listen: Some(loopback),
                    state_file: None,
                    tls: spec
                        .tls_cert
                        .as_ref()
                        .zip(spec.tls_key.as_ref())
                        .map(|(c, k)| (scenario_dir.join(c), scenario_dir.join(k))),
                    limits: gateway::limits(),
                    admin_apply_delay: spec.admin_apply_delay.map_or(Duration::ZERO, |d| d.0),
                    core: gateway::Core::default(),
                }))
                .map_err(RunError::BuiltinGateway)?;
            b.gateway = Some(gw);
            b._runtimes.push(rt);
        }
        Ok(b)
    }

    /// The builtin gateway's Admin API, for a target that is it.
    pub(super) fn admin_url(&self, urls: &[TargetUrl]) -> Option<String> {
        match (urls, &self.gateway) {
            ([TargetUrl::BuiltinGateway], Some(g)) => g.admin_addr().map(|a| format!("http://{a}")),
            _ => None,
        }
    }

    pub(super) fn resolve(&self, url: &TargetUrl) -> String {
        match (url, &self.upstream, &self.gateway) {
            (TargetUrl::BuiltinUpstream, Some(h), _) => h.base_url().to_owned(),
            (TargetUrl::BuiltinGateway, _, Some(g)) => g.proxy_url(),
            _ => url.to_string(),
        }
    }
}

pub(super) fn endpoints(
    t: &Target,
    builtins: &Builtins,
    connect_timeout: Duration,
) -> Result<Vec<Endpoint>, RunError> {
    let http2 = t.http2();
    t.url_list()
        .iter()
        .map(|u| {
            let url = builtins.resolve(u);
            let bad = |problem: String| RunError::Target {
                target: t.name.clone(),
                problem,
            };
            let uri: http::Uri = url
                .parse()
                .map_err(|e| bad(format!("bad url {url:?}: {e}")))?;
            let https = uri.scheme_str() == Some("https");
            let host = uri
                .host()
                .ok_or_else(|| bad(format!("url {url:?} has no host")))?
                .trim_matches(['[', ']'])
                .to_owned();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let addr = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?
                .next()
                .ok_or_else(|| bad(format!("{host} has no address")))?;
            let tls = if https {
                let spec = t.tls.clone().unwrap_or_default();
                let ca_file = spec.ca_file.as_ref().map(|f| builtins.scenario_dir.join(f));
                let connector = conn::tls_connector(ca_file.as_deref(), spec.insecure, http2)
                    .map_err(|e| bad(format!("TLS setup: {e}")))?;
                let name = spec.server_name.unwrap_or_else(|| host.clone());
                let name = rustls::pki_types::ServerName::try_from(name)
                    .map_err(|e| bad(format!("bad TLS server name: {e}")))?;
                Some((connector, name))
            } else {
                None
            };
            // An IP literal has nothing to resolve.
            let resolve = (t.resolve_per_connection() && host.parse::<std::net::IpAddr>().is_err())
                .then(|| host.clone());
            Ok(Endpoint {
                addr,
                resolve,
                authority: uri
                    .authority()
                    .map_or_else(|| format!("{host}:{port}"), |a| a.to_string()),
                scheme: if https { "https" } else { "http" },
                tls,
                http2,
                connect_timeout,
                headers: header_map(&t.headers).map_err(|e| bad(format!("headers: {e}")))?,
            })
        })
        .collect()
}
