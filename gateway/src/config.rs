//! Kong's declarative configuration (`_format_version: "3.0"`, YAML or JSON):
//! services, routes, the `jwt` and `acl` plugins, consumers with
//! `jwt_secrets` and `acls`. Parsed strictly, then compiled into a
//! [`Snapshot`] that the proxy reads without locks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::acl::AclConf;
use crate::auth::jwt::{Credential, JwtConf};

/// A configuration that could not be loaded; names the entity and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {msg}")]
    Parse { file: String, msg: String },
    #[error("{entity}: {field}: {msg}")]
    Invalid {
        entity: String,
        field: String,
        msg: String,
    },
}

fn invalid(entity: impl Into<String>, field: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        entity: entity.into(),
        field: field.to_owned(),
        msg: msg.into(),
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declarative {
    #[serde(rename = "_format_version")]
    pub format_version: String,
    #[serde(rename = "_transform", default)]
    pub transform: Option<bool>,
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    #[serde(default)]
    pub consumers: Vec<ConsumerSpec>,
    #[serde(default)]
    pub plugins: Vec<PluginSpec>,
    /// Not in the file: reach every service through this instead of TCP
    /// (benches and tests without network).
    #[serde(skip)]
    pub dial: Option<crate::proxy::Dial>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: Option<String>,
    pub id: Option<String>,
    pub url: Option<String>,
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    /// Milliseconds (Kong's unit); default 60000.
    pub connect_timeout: Option<u64>,
    pub read_timeout: Option<u64>,
    pub write_timeout: Option<u64>,
    pub retries: Option<u32>,
    pub enabled: Option<bool>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    #[serde(default)]
    pub plugins: Vec<PluginSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub name: Option<String>,
    pub id: Option<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub protocols: Vec<String>,
    pub strip_path: Option<bool>,
    pub preserve_host: Option<bool>,
    /// For top-level routes: the service's name or id.
    pub service: Option<EntityRef>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub plugins: Vec<PluginSpec>,
}

/// A reference to another entity: `"name"` or `{ id = "…" }` / `{ name = "…" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EntityRef {
    Name(String),
    Id {
        #[serde(alias = "name")]
        id: String,
    },
}

impl EntityRef {
    fn as_str(&self) -> &str {
        match self {
            EntityRef::Name(s) | EntityRef::Id { id: s } => s,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    pub name: String,
    pub id: Option<String>,
    #[serde(default)]
    pub config: serde_json::Value,
    pub enabled: Option<bool>,
    pub route: Option<EntityRef>,
    pub service: Option<EntityRef>,
    pub consumer: Option<EntityRef>,
    #[serde(default)]
    pub protocols: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub instance_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    /// Unix seconds (set by the Admin API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    pub username: Option<String>,
    pub custom_id: Option<String>,
    pub id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub jwt_secrets: Vec<JwtSecretSpec>,
    #[serde(default)]
    pub acls: Vec<AclSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtSecretSpec {
    /// Unix seconds (set by the Admin API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    pub key: Option<String>,
    pub secret: Option<String>,
    pub algorithm: Option<String>,
    pub rsa_public_key: Option<String>,
    pub id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AclSpec {
    /// Unix seconds (set by the Admin API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    pub group: String,
    pub id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A consumer as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: String,
    pub username: Option<String>,
    pub custom_id: Option<String>,
    /// ACL groups, in configuration order.
    pub groups: Vec<String>,
    /// `X-Consumer-ID`, `-Custom-ID` and `-Username`, built once.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl Consumer {
    pub fn new(
        id: String,
        username: Option<String>,
        custom_id: Option<String>,
        groups: Vec<String>,
    ) -> Consumer {
        let mut headers = Vec::new();
        let mut add = |name: &'static str, v: &str| {
            if let Ok(v) = http::HeaderValue::from_str(v) {
                headers.push((http::HeaderName::from_static(name), v));
            }
        };
        add("x-consumer-id", &id);
        if let Some(c) = &custom_id {
            add("x-consumer-custom-id", c);
        }
        if let Some(u) = &username {
            add("x-consumer-username", u);
        }
        Consumer {
            id,
            username,
            custom_id,
            groups,
            headers,
        }
    }
}

/// Where a service forwards to, with its own pooled keep-alive client.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub scheme: String,
    /// `host:port` for the connection.
    pub authority: String,
    /// The Host header when `preserve_host` is off.
    pub host_header: String,
    /// Path prefix, without a trailing slash (empty for `/`).
    pub path: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub client: crate::proxy::Client,
}

/// One route, compiled.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub paths: Vec<String>,
    pub methods: Vec<http::Method>,
    pub hosts: Vec<String>,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub upstream: Arc<Upstream>,
    pub jwt: Option<Arc<JwtConf>>,
    pub acl: Option<Arc<AclConf>>,
    /// Our AWS-style OIDC/JWKS authorizer.
    pub oidc: Option<Arc<crate::auth::oidc::Oidc>>,
    /// Served at `/metrics`.
    pub stats: crate::metrics::RouteStats,
}

/// Everything a request needs, swapped atomically on change.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Shared between snapshots: the Admin API changes consumers only.
    pub routes: Arc<Vec<Route>>,
    /// By credential `key`.
    pub credentials: Credentials,
    /// By id and by username.
    pub consumers: HashMap<String, Arc<Consumer>>,
}

impl Declarative {
    pub fn load(path: &Path) -> Result<Declarative, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&text, &file)
    }

    /// YAML (a superset of JSON).
    pub fn parse(text: &str, file: &str) -> Result<Declarative, ConfigError> {
        let d: Declarative = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_owned(),
            msg: e.to_string(),
        })?;
        if !d.format_version.starts_with("3.") && d.format_version != "2.1" {
            return Err(invalid(
                "config",
                "_format_version",
                format!(
                    "unsupported version {:?}; expected \"3.0\"",
                    d.format_version
                ),
            ));
        }
        Ok(d)
    }

    /// Checks everything and builds the runtime form.
    pub fn compile(&self) -> Result<Snapshot, ConfigError> {
        let (credentials, consumers) = compile_consumers(&self.consumers)?;
        self.compile_with(credentials, consumers)
    }

    /// Builds the routes around already-compiled consumers.
    pub fn compile_with(
        &self,
        credentials: Credentials,
        consumers: Consumers,
    ) -> Result<Snapshot, ConfigError> {
        // Services and their routes, then top-level routes.
        let mut services: Vec<(Arc<Upstream>, &ServiceSpec)> = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            let mut up = upstream(s, i)?;
            if let Some(dial) = &self.dial {
                up.client = up.client.with_dial(dial.clone());
            }
            services.push((Arc::new(up), s));
        }
        let find_service = |r: &EntityRef| {
            services
                .iter()
                .find(|(u, s)| u.name == r.as_str() || s.id.as_deref() == Some(r.as_str()))
                .map(|(u, _)| u.clone())
        };
        let mut routes = Vec::new();
        let mut route_specs: Vec<(&RouteSpec, Arc<Upstream>, Option<&ServiceSpec>, String)> =
            Vec::new();
        for (i, (u, s)) in services.iter().enumerate() {
            for (j, r) in s.routes.iter().enumerate() {
                route_specs.push((r, u.clone(), Some(s), format!("services[{i}].routes[{j}]")));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let entity = format!("routes[{i}]");
            let svc = r
                .service
                .as_ref()
                .ok_or_else(|| invalid(&entity, "service", "required field missing"))?;
            let u = find_service(svc).ok_or_else(|| {
                invalid(
                    &entity,
                    "service",
                    format!("no service named {:?}", svc.as_str()),
                )
            })?;
            let spec = self
                .services
                .iter()
                .find(|s| s.name.as_deref() == Some(&u.name));
            route_specs.push((r, u, spec, entity));
        }
        for (r, u, svc, entity) in route_specs {
            routes.push(self.route(r, u, svc, &entity, &consumers)?);
        }
        for (i, p) in self.plugins.iter().enumerate() {
            if !matches!(p.name.as_str(), "jwt" | "acl" | "oidc") {
                return Err(invalid(
                    format!("plugins[{i}]"),
                    "name",
                    format!(
                        "plugin '{}' not enabled; this gateway has jwt, acl and oidc",
                        p.name
                    ),
                ));
            }
            if let Some(r) = &p.route
                && !routes.iter().any(|x| x.name == r.as_str())
            {
                return Err(invalid(
                    format!("plugins[{i}]"),
                    "route",
                    format!("no route named {:?}", r.as_str()),
                ));
            }
            if let Some(s) = &p.service
                && find_service(s).is_none()
            {
                return Err(invalid(
                    format!("plugins[{i}]"),
                    "service",
                    format!("no service named {:?}", s.as_str()),
                ));
            }
            if p.consumer.is_some() {
                return Err(invalid(
                    format!("plugins[{i}]"),
                    "consumer",
                    "value must be null (jwt and acl cannot be scoped to a consumer)",
                ));
            }
        }
        Ok(Snapshot {
            routes: Arc::new(routes),
            credentials,
            consumers,
        })
    }

    /// Compiles one route with its plugins: route-level beats service-level beats global.
    fn route(
        &self,
        r: &RouteSpec,
        upstream: Arc<Upstream>,
        service: Option<&ServiceSpec>,
        entity: &str,
        consumers: &HashMap<String, Arc<Consumer>>,
    ) -> Result<Route, ConfigError> {
        let name = r.name.clone().unwrap_or_else(|| entity.to_owned());
        if r.paths.is_empty() && r.methods.is_empty() && r.hosts.is_empty() {
            return Err(invalid(
                entity,
                "@entity",
                "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'http'",
            ));
        }
        for p in &r.paths {
            if !p.starts_with('/') {
                return Err(invalid(
                    entity,
                    "paths",
                    format!("{p:?}: should start with: / (fixed path) or ~/ (regex path)"),
                ));
            }
        }
        let methods = r
            .methods
            .iter()
            .map(|m| {
                http::Method::from_bytes(m.as_bytes())
                    .map_err(|_| invalid(entity, "methods", format!("invalid method {m:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pick = |plugin: &str| -> Option<(&PluginSpec, String)> {
            let on_route = r
                .plugins
                .iter()
                .find(|p| p.name == plugin)
                .map(|p| (p, format!("{entity}.plugins[{plugin}]")));
            let global_for_route = self.plugins.iter().find(|p| {
                p.name == plugin
                    && p.route.as_ref().is_some_and(|x| {
                        Some(x.as_str()) == r.name.as_deref() || Some(x.as_str()) == r.id.as_deref()
                    })
            });
            let on_service = service.and_then(|s| s.plugins.iter().find(|p| p.name == plugin));
            let global_for_service = self.plugins.iter().find(|p| {
                p.name == plugin
                    && p.route.is_none()
                    && p.service
                        .as_ref()
                        .is_some_and(|x| Some(x.as_str()) == Some(upstream.name.as_str()))
            });
            let global = self
                .plugins
                .iter()
                .find(|p| p.name == plugin && p.route.is_none() && p.service.is_none());
            on_route
                .or_else(|| global_for_route.map(|p| (p, format!("plugins[{plugin}]"))))
                .or_else(|| {
                    on_service.map(|p| (p, format!("service {}.plugins[{plugin}]", upstream.name)))
                })
                .or_else(|| global_for_service.map(|p| (p, format!("plugins[{plugin}]"))))
                .or_else(|| global.map(|p| (p, format!("plugins[{plugin}]"))))
                .filter(|(p, _)| p.enabled != Some(false))
        };
        let jwt = match pick("jwt") {
            Some((p, ent)) => Some(Arc::new(
                JwtConf::from_json(&p.config).map_err(|(f, m)| invalid(ent, f, m))?,
            )),
            None => None,
        };
        if let Some(anon) = jwt.as_ref().and_then(|j| j.anonymous.as_ref())
            && !consumers.contains_key(anon)
        {
            tracing::warn!(route = %name, anonymous = %anon, "the anonymous consumer does not exist: failed requests will get 500");
        }
        let acl = match pick("acl") {
            Some((p, ent)) => Some(Arc::new(
                AclConf::from_json(&p.config).map_err(|(f, m)| invalid(ent, f, m))?,
            )),
            None => None,
        };
        let oidc = match pick("oidc") {
            Some((p, ent)) => Some(Arc::new(
                crate::auth::oidc::Oidc::from_json(&p.config)
                    .map_err(|(f, m)| invalid(ent, f, m))?,
            )),
            None => None,
        };
        for (i, spec) in r.plugins.iter().enumerate() {
            if !matches!(spec.name.as_str(), "jwt" | "acl" | "oidc") {
                return Err(invalid(
                    format!("{entity}.plugins[{i}]"),
                    "name",
                    format!(
                        "plugin '{}' not enabled; this gateway has jwt, acl and oidc",
                        spec.name
                    ),
                ));
            }
        }
        Ok(Route {
            name,
            paths: r.paths.clone(),
            methods,
            hosts: r.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            strip_path: r.strip_path.unwrap_or(true),
            preserve_host: r.preserve_host.unwrap_or(false),
            upstream,
            jwt,
            acl,
            oidc,
            stats: crate::metrics::RouteStats::default(),
        })
    }
}

/// Credentials by key, looked up on every request. foldhash (randomly
/// seeded) instead of SipHash: ~15 ns less per lookup; keys come from the
/// config and the Admin API, so requests can only probe, not fill, the table.
pub type Credentials = HashMap<String, Arc<Credential>, foldhash::fast::RandomState>;
/// Consumers by id and by username.
pub type Consumers = HashMap<String, Arc<Consumer>>;

/// Checks consumers with their credentials and ACLs and builds the lookup maps.
pub fn compile_consumers(specs: &[ConsumerSpec]) -> Result<(Credentials, Consumers), ConfigError> {
    let mut consumers = HashMap::new();
    let mut credentials = Credentials::default();
    for (i, c) in specs.iter().enumerate() {
        let entity = format!("consumers[{i}]");
        if c.username.as_deref().unwrap_or("").is_empty()
            && c.custom_id.as_deref().unwrap_or("").is_empty()
        {
            return Err(invalid(
                entity,
                "@entity",
                "at least one of these fields must be non-empty: 'custom_id', 'username'",
            ));
        }
        let mut groups: Vec<String> = Vec::new();
        for (j, a) in c.acls.iter().enumerate() {
            if groups.contains(&a.group) {
                return Err(invalid(
                    format!("{entity}.acls[{j}]"),
                    "group",
                    format!("UNIQUE violation: group {:?} twice", a.group),
                ));
            }
            groups.push(a.group.clone());
        }
        let consumer = Arc::new(Consumer::new(
            c.id.clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            c.username.clone(),
            c.custom_id.clone(),
            groups,
        ));
        for key in [Some(&consumer.id), consumer.username.as_ref()]
            .into_iter()
            .flatten()
        {
            if consumers.insert(key.clone(), consumer.clone()).is_some() {
                return Err(invalid(
                    entity,
                    "username",
                    format!("UNIQUE violation detected on {key:?}"),
                ));
            }
        }
        for (j, s) in c.jwt_secrets.iter().enumerate() {
            let entity = format!("{entity}.jwt_secrets[{j}]");
            let cred = Credential::new(s, consumer.clone())
                .map_err(|(field, msg)| invalid(&entity, field, msg))?;
            let key = cred.key.clone();
            if credentials.insert(key.clone(), Arc::new(cred)).is_some() {
                return Err(invalid(
                    entity,
                    "key",
                    format!("UNIQUE violation detected on '{{key=\"{key}\"}}'"),
                ));
            }
        }
    }

    Ok((credentials, consumers))
}

fn upstream(s: &ServiceSpec, i: usize) -> Result<Upstream, ConfigError> {
    let entity = format!("services[{i}]");
    let (scheme, host, port, path) = match &s.url {
        Some(url) => {
            let uri: http::Uri = url
                .parse()
                .map_err(|e| invalid(&entity, "url", format!("{url:?}: {e}")))?;
            let scheme = uri.scheme_str().unwrap_or("http").to_owned();
            let host = uri
                .host()
                .ok_or_else(|| invalid(&entity, "url", format!("{url:?} has no host")))?
                .to_owned();
            let port = uri.port_u16();
            (scheme, host, port, uri.path().to_owned())
        }
        None => (
            s.protocol.clone().unwrap_or_else(|| "http".into()),
            s.host
                .clone()
                .ok_or_else(|| invalid(&entity, "host", "required field missing"))?,
            s.port,
            s.path.clone().unwrap_or_else(|| "/".into()),
        ),
    };
    // Kong's `grpc` is gRPC over h2c; `h2c` is our name for any HTTP/2
    // upstream without TLS (prior knowledge).
    let protocol = match scheme.as_str() {
        "http" => crate::proxy::Protocol::Http1,
        "grpc" | "h2c" => crate::proxy::Protocol::H2c,
        _ => {
            return Err(invalid(
                &entity,
                "protocol",
                format!("{scheme:?}: this gateway proxies to http, h2c and grpc (h2c) upstreams"),
            ));
        }
    };
    let port = port.unwrap_or(80);
    let authority = format!("{host}:{port}");
    let host_header = if port == 80 {
        host.clone()
    } else {
        authority.clone()
    };
    let ms = |v: Option<u64>| Duration::from_millis(v.unwrap_or(60_000));
    let client = crate::proxy::Client::new(
        crate::proxy::Dial::Tcp(authority.clone()),
        protocol,
        ms(s.connect_timeout),
    );
    Ok(Upstream {
        name: s.name.clone().unwrap_or_else(|| entity.clone()),
        scheme,
        authority,
        host_header,
        path: path.trim_end_matches('/').to_owned(),
        connect_timeout: ms(s.connect_timeout),
        read_timeout: ms(s.read_timeout),
        client,
    })
}
