//! From the file as written to the runtime form: every entity checked (errors
//! name the entity and field, as Kong's do), plugins resolved per route
//! (route beats service beats global), credentials and consumers indexed.

use std::sync::Arc;
use std::time::Duration;

use super::spec::{
    ConfigError, ConsumerSpec, Declarative, EntityRef, PluginSpec, RouteSpec, ServiceSpec, invalid,
};
use crate::auth::acl::AclConf;
use crate::auth::jwt::{Credential, Credentials, JwtConf};
use crate::consumer::{Consumer, Consumers};
use crate::snapshot::{Route, Snapshot, Upstream};

impl Declarative {
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
        check_global_plugins(&self.plugins, &routes, &find_service)?;
        Ok(Snapshot {
            routes: Arc::new(routes),
            credentials,
            consumers,
        })
    }

    /// The `plugin` that applies to route `r` (entity name `entity`) of
    /// service `upstream_name`, with the entity name its errors go under:
    /// on the route, global for the route, on the service, global for the
    /// service, then global. A disabled one does not apply.
    fn plugin_for<'a>(
        &'a self,
        plugin: &str,
        r: &'a RouteSpec,
        upstream_name: &str,
        service: Option<&'a ServiceSpec>,
        entity: &str,
    ) -> Option<(&'a PluginSpec, String)> {
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
                    .is_some_and(|x| x.as_str() == upstream_name)
        });
        let global = self
            .plugins
            .iter()
            .find(|p| p.name == plugin && p.route.is_none() && p.service.is_none());
        on_route
            .or_else(|| global_for_route.map(|p| (p, format!("plugins[{plugin}]"))))
            .or_else(|| {
                on_service.map(|p| (p, format!("service {upstream_name}.plugins[{plugin}]")))
            })
            .or_else(|| global_for_service.map(|p| (p, format!("plugins[{plugin}]"))))
            .or_else(|| global.map(|p| (p, format!("plugins[{plugin}]"))))
            .filter(|(p, _)| p.enabled != Some(false))
    }

    /// Compiles one route with its plugins: route-level beats service-level beats global.
    fn route(
        &self,
        r: &RouteSpec,
        upstream: Arc<Upstream>,
        service: Option<&ServiceSpec>,
        entity: &str,
        consumers: &Consumers,
    ) -> Result<Route, ConfigError> {
        let name = r.name.clone().unwrap_or_else(|| entity.to_owned());
        let methods = route_methods(r, entity)?;
        let pick = |plugin: &str| self.plugin_for(plugin, r, &upstream.name, service, entity);
        let jwt = match pick("jwt") {
            Some((p, ent)) => Some(Arc::new(
                JwtConf::from_json(&p.config).map_err(|(f, m)| invalid(ent, &f, m))?,
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
                AclConf::from_json(&p.config).map_err(|(f, m)| invalid(ent, &f, m))?,
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
        check_route_plugins(r, entity)?;
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

/// Checks consumers with their credentials and ACLs and builds the lookup maps.
pub fn compile_consumers<'a>(
    specs: impl IntoIterator<Item = &'a ConsumerSpec>,
) -> Result<(Credentials, Consumers), ConfigError> {
    let mut consumers = Consumers::default();
    let mut credentials = Credentials::default();
    for (i, c) in specs.into_iter().enumerate() {
        compile_consumer(
            c,
            &format!("consumers[{i}]"),
            &mut credentials,
            &mut consumers,
        )?;
    }
    Ok((credentials, consumers))
}

/// Adds one consumer and its credentials to the indexes (`entity`: how
/// errors name it). The Admin API calls it for the consumers a write
/// changed, after taking out their old entries ([`remove_consumer`]).
pub fn compile_consumer(
    c: &ConsumerSpec,
    entity: &str,
    credentials: &mut Credentials,
    consumers: &mut Consumers,
) -> Result<(), ConfigError> {
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
        let cred = Credential::new(s.credential(), consumer.clone())
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
    Ok(())
}

/// Takes a compiled consumer's entries out of the indexes (the inverse of
/// [`compile_consumer`] for a consumer that compiled).
pub fn remove_consumer(c: &ConsumerSpec, credentials: &mut Credentials, consumers: &mut Consumers) {
    for key in [c.id.as_ref(), c.username.as_ref()].into_iter().flatten() {
        consumers.remove(key);
    }
    for s in &c.jwt_secrets {
        if let Some(k) = &s.key {
            credentials.remove(k);
        }
    }
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
        "http" => crate::upstream::Protocol::Http1,
        "grpc" | "h2c" => crate::upstream::Protocol::H2c,
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
    let client = crate::upstream::Client::new(
        crate::upstream::Dial::Tcp(authority.clone()),
        protocol,
        crate::upstream::Pooling {
            connect_timeout: ms(s.connect_timeout),
            idle_timeout: ms(s.keepalive_idle_timeout),
            retries: s.retries.unwrap_or(5),
        },
    );
    Ok(Upstream {
        name: s.name.clone().unwrap_or_else(|| entity.clone()),
        scheme,
        authority,
        host_header: http::HeaderValue::from_str(&host_header).ok(),
        path: path.trim_end_matches('/').to_owned(),
        connect_timeout: ms(s.connect_timeout),
        read_timeout: ms(s.read_timeout),
        client,
    })
}

/// Global plugins: only jwt, acl and oidc, on routes and services that
/// exist, never scoped to a consumer.
fn check_global_plugins(
    plugins: &[PluginSpec],
    routes: &[Route],
    find_service: &dyn Fn(&EntityRef) -> Option<Arc<Upstream>>,
) -> Result<(), ConfigError> {
    for (i, p) in plugins.iter().enumerate() {
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
    Ok(())
}

/// A route's methods, checked; and its other matching fields: one of them
/// set, paths that start with `/`.
fn route_methods(r: &RouteSpec, entity: &str) -> Result<Vec<http::Method>, ConfigError> {
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
    r.methods
        .iter()
        .map(|m| {
            http::Method::from_bytes(m.as_bytes())
                .map_err(|_| invalid(entity, "methods", format!("invalid method {m:?}")))
        })
        .collect::<Result<Vec<_>, _>>()
}

/// A route's own plugins: only jwt, acl and oidc.
fn check_route_plugins(r: &RouteSpec, entity: &str) -> Result<(), ConfigError> {
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
    Ok(())
}
