//! The in-process servers of `builtin:upstream` and `builtin:gateway`, and
//! the endpoints (address, TLS, authority) of every target URL.

use std::net::ToSocketAddrs as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use super::conn::{self, Endpoint};
use crate::scenario::{Scenario, Target, TargetUrl};

/// In-process servers started for `builtin:` targets; stopped on drop.
pub(super) struct Builtins {
    /// Relative paths in the scenario (CA files) are relative to it.
    scenario_dir: std::path::PathBuf,
    upstream: Option<mock_upstream::Handle>,
    gateway: Option<gateway::Handle>,
    // Dropped last: the servers' tasks run on these.
    _runtimes: Vec<tokio::runtime::Runtime>,
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    conn_guard::background_runtime(name, threads)
        .with_context(|| format!("cannot start the {name} runtime"))
}

impl Builtins {
    pub(super) fn start(s: &Scenario, scenario_dir: &Path) -> anyhow::Result<Builtins> {
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
            .context("cannot start the builtin upstream")?;
        let upstream_url = upstream.base_url().to_owned();
        b.upstream = Some(upstream);
        b._runtimes.push(rt);
        if wants_gateway {
            let spec = s
                .gateway
                .as_ref()
                .context("builtin:gateway needs a [gateway] section with config = \"kong.yml\"")?;
            let path = scenario_dir.join(&spec.config);
            let mut decl = gateway::config::Declarative::load(&path)?;
            // `url: builtin:upstream` in the gateway's services points at the builtin upstream.
            let builtin = TargetUrl::BuiltinUpstream.as_str();
            for svc in &mut decl.services {
                if svc.url.as_deref() == Some(builtin) {
                    svc.url = Some(upstream_url.clone());
                }
            }
            decl.compile()
                .with_context(|| format!("{}", path.display()))?;
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
                }))
                .context("cannot start the builtin gateway")?;
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
) -> anyhow::Result<Vec<Endpoint>> {
    let http2 = t.http2();
    t.url_list()
        .iter()
        .map(|u| {
            let url = builtins.resolve(u);
            let uri: http::Uri = url
                .parse()
                .with_context(|| format!("target {}: bad url {url:?}", t.name))?;
            let https = uri.scheme_str() == Some("https");
            let host = uri
                .host()
                .context("url has no host")?
                .trim_matches(['[', ']'])
                .to_owned();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let addr = (host.as_str(), port)
                .to_socket_addrs()
                .with_context(|| format!("target {}: cannot resolve {host}", t.name))?
                .next()
                .with_context(|| format!("target {}: {host} has no address", t.name))?;
            let tls = if https {
                let spec = t.tls.clone().unwrap_or_default();
                let ca_file = spec.ca_file.as_ref().map(|f| builtins.scenario_dir.join(f));
                let connector = conn::tls_connector(ca_file.as_deref(), spec.insecure, http2)
                    .with_context(|| format!("target {}: TLS setup", t.name))?;
                let name = spec.server_name.unwrap_or_else(|| host.clone());
                let name =
                    rustls::pki_types::ServerName::try_from(name).context("bad TLS server name")?;
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
            })
        })
        .collect()
}
