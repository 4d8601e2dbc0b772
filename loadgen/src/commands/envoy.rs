//! `loadgen provision envoy`: an Envoy bootstrap whose `jwt_authn` filter
//! knows a scenario's consumers, as `provision rust-gateway` writes a Kong
//! declarative config.
//!
//! How Kong's model maps onto Envoy's:
//! - Kong finds the consumer by the token's key claim (`iss` by default),
//!   then checks the signature with that consumer's key. Envoy finds a
//!   *provider* by the token's `iss` and checks the signature against the
//!   provider's JWKS. So with the key in `iss`, each consumer is one
//!   provider (issuer = its key, JWKS = its key) and the route requires any
//!   of them. With the key in the header's `kid` (the aws-http-api profile),
//!   there is one provider (issuer = `[auth] issuer`, or any) whose JWKS
//!   holds every consumer's key under its kid, which is how Envoy picks a
//!   key. A key in any other claim has no Envoy equivalent and is refused.
//! - HS* secrets go in the JWKS as `oct` keys (RFC 7518 §6.4), the way
//!   Envoy verifies HMAC tokens; RS*/PS*/ES*/EdDSA as public JWKs.
//! - Kong's `claims_to_verify = exp, nbf` with no leeway: Envoy checks both
//!   by default, with a 60 s clock skew; it is set to 0 here.
//! - The token is forwarded upstream (`forward: true`), as Kong does.
//! - Kong's acl plugin (`--allow`): the RBAC filter after `jwt_authn`
//!   admits tokens whose key claim (written to dynamic metadata by
//!   `payload_in_metadata` / `header_in_metadata`) belongs to a consumer in
//!   an allowed group; others get 403 ("RBAC: access denied").
//!
//! Envoy runs it as `envoy -c envoy.yaml --concurrency 1 --disable-hot-restart`.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::scenario::Placement;
use crate::token::{Consumer, Tokens};

/// What `provision envoy` is asked for besides the scenario.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// `http://host:port` (or https) of the upstream every route goes to.
    pub upstream: String,
    /// Where the JWT listener binds, `host:port`.
    pub listen: String,
    /// A second listener, a plain proxy to the same upstream (no auth).
    pub noauth_listen: Option<String>,
    /// Envoy's admin interface (`/stats`, `/ready`), loopback only.
    pub admin: Option<String>,
    /// Kong's acl plugin: only consumers in these groups pass (403 otherwise).
    pub allow: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvoyError {
    #[error("--upstream {url:?}: {why}")]
    Upstream { url: String, why: &'static str },
    #[error("--{flag} {addr:?}: expected HOST:PORT")]
    Address { flag: &'static str, addr: String },
    #[error(
        "[auth] key_claim = {0:?}: Envoy picks a provider by `iss` and a key by `kid`, so the consumer's key must be in one of them"
    )]
    KeyClaim(String),
    #[error("[auth]: no consumers to provision")]
    NoConsumers,
}

/// The bootstrap and the JWKS of every consumer's verification key.
#[derive(Debug)]
pub struct Envoy {
    pub bootstrap: Value,
    pub jwks: Value,
}

/// `host:port` as an Envoy socket address.
fn socket(flag: &'static str, addr: &str) -> Result<Value, EnvoyError> {
    let bad = || EnvoyError::Address {
        flag,
        addr: addr.to_owned(),
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok(json!({ "socket_address": { "address": host, "port_value": port } }))
}

/// The upstream cluster: STATIC for an IP, STRICT_DNS for a name; TLS for https.
fn cluster(url: &str) -> Result<Value, EnvoyError> {
    let bad = |why| EnvoyError::Upstream {
        url: url.to_owned(),
        why,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|_| bad("not a URL (http://host:port)"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(bad("Envoy proxies to http:// or https:// upstreams")),
    };
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad(
            "give the upstream's origin only: Envoy routes keep the request's path",
        ));
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let mut c = json!({
        "name": "upstream",
        "type": if is_ip { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": "upstream",
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                "socket_address": { "address": host, "port_value": port }
            } } }] }],
        },
    });
    if tls {
        c["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": host,
            },
        });
    }
    Ok(c)
}

/// A consumer's verification key as a JWK: `oct` for HS*, public otherwise.
fn jwk(c: &Consumer, kid: Option<&str>) -> Value {
    match &c.secret {
        Some(secret) if c.alg.is_hmac() => {
            let mut k = json!({
                "kty": "oct",
                "alg": c.alg.name(),
                "use": "sig",
                "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
            });
            if let Some(kid) = kid {
                k["kid"] = kid.into();
            }
            k
        }
        _ => c.signing.jwk(kid).unwrap_or(Value::Null),
    }
}

fn jwks(keys: Vec<Value>) -> Value {
    json!({ "keys": keys })
}

/// Where `jwt_authn` looks for tokens: where the scenario puts them, plus
/// the `duplicate` class's query parameter (Kong reads both).
fn token_sources(auth: &Tokens) -> serde_json::Map<String, Value> {
    let mut from = serde_json::Map::new();
    let mut params = vec![json!(auth.duplicate_param)];
    match &auth.placement {
        Placement::Bearer => {
            from.insert(
                "from_headers".into(),
                json!([{ "name": "Authorization", "value_prefix": "Bearer " }]),
            );
        }
        Placement::Header(n) => {
            from.insert(
                "from_headers".into(),
                json!([{ "name": n.as_str(), "value_prefix": "Bearer " }]),
            );
        }
        Placement::Cookie(n) => {
            from.insert("from_cookies".into(), json!([n]));
        }
        Placement::Query(n) => params.insert(0, json!(n)),
    }
    params.dedup();
    from.insert("from_params".into(), Value::Array(params));
    from
}

/// The `jwt_authn` providers and the requirement over them, and the
/// metadata path where the consumer's key lands (for RBAC).
fn providers(auth: &Tokens) -> Result<(serde_json::Map<String, Value>, Value, Value), EnvoyError> {
    let base = |issuer: Option<&str>, keys: Vec<Value>| {
        let mut p = token_sources(auth);
        if let Some(issuer) = issuer {
            p.insert("issuer".into(), issuer.into());
        }
        if let Some(aud) = auth.audience() {
            let list = match aud {
                Value::Array(a) => a.clone(),
                one => vec![one.clone()],
            };
            p.insert("audiences".into(), Value::Array(list));
        }
        p.insert(
            "local_jwks".into(),
            json!({ "inline_string": jwks(keys).to_string() }),
        );
        p.insert("clock_skew_seconds".into(), 0.into());
        p.insert("forward".into(), true.into());
        p
    };
    let mut providers = serde_json::Map::new();
    match auth.key_claim_name() {
        "iss" => {
            for c in &auth.consumers {
                let mut p = base(Some(&c.key), vec![jwk(c, c.kid.as_deref())]);
                p.insert("payload_in_metadata".into(), "jwt_payload".into());
                providers.insert(c.name.clone(), Value::Object(p));
            }
            let path = json!([{ "key": "jwt_payload" }, { "key": "iss" }]);
            let names: Vec<Value> = auth
                .consumers
                .iter()
                .map(|c| json!({ "provider_name": c.name }))
                .collect();
            let requires = if names.len() == 1 {
                names[0].clone()
            } else {
                json!({ "requires_any": { "requirements": names } })
            };
            Ok((providers, requires, path))
        }
        "kid" => {
            let keys = auth
                .consumers
                .iter()
                .map(|c| jwk(c, Some(c.kid_or_key())))
                .collect();
            let mut p = base(auth.issuer(), keys);
            p.insert("header_in_metadata".into(), "jwt_header".into());
            providers.insert("consumers".into(), Value::Object(p));
            let path = json!([{ "key": "jwt_header" }, { "key": "kid" }]);
            Ok((providers, json!({ "provider_name": "consumers" }), path))
        }
        other => Err(EnvoyError::KeyClaim(other.to_owned())),
    }
}

/// Kong's acl `allow`: an RBAC filter admitting the allowed consumers' keys.
fn rbac(auth: &Tokens, allow: &[String], path: &Value) -> Value {
    let ids: Vec<Value> = auth
        .consumers
        .iter()
        .filter(|c| c.groups.iter().any(|g| allow.contains(g)))
        .map(|c| {
            let key = if auth.key_claim_name() == "kid" {
                c.kid_or_key().to_owned()
            } else {
                c.key.clone()
            };
            json!({ "metadata": {
                "filter": "envoy.filters.http.jwt_authn",
                "path": path,
                "value": { "string_match": { "exact": key } },
            } })
        })
        .collect();
    // No allowed consumer: a policy nobody matches (RBAC needs one principal).
    let principals = if ids.is_empty() {
        json!([{ "not_id": { "any": true } }])
    } else {
        json!([{ "or_ids": { "ids": ids } }])
    };
    json!({
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {
                "action": "ALLOW",
                "policies": { "allowed-groups": {
                    "permissions": [{ "any": true }],
                    "principals": principals,
                } },
            },
        },
    })
}

/// One listener: HTTP/1.1 and HTTP/2 (cleartext, by preface) to the upstream
/// cluster through `filters` and the router.
fn listener(name: &str, address: Value, mut filters: Vec<Value>) -> Value {
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
    }));
    json!({
        "name": name,
        "address": address,
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "codec_type": "AUTO",
                "route_config": {
                    "name": name,
                    "virtual_hosts": [{
                        "name": "all",
                        "domains": ["*"],
                        "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "upstream" } }],
                    }],
                },
                "http_filters": filters,
            },
        }] }],
    })
}

/// The Envoy bootstrap for `auth`'s consumers, and their JWKS.
pub fn envoy(auth: &Tokens, opts: &EnvoyOptions) -> Result<Envoy, EnvoyError> {
    if auth.consumers.is_empty() {
        return Err(EnvoyError::NoConsumers);
    }
    let (providers, requires, path) = providers(auth)?;
    let mut filters = vec![json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "rules": [{ "match": { "prefix": "/" }, "requires": requires }],
        },
    })];
    if !opts.allow.is_empty() {
        filters.push(rbac(auth, &opts.allow, &path));
    }
    let mut listeners = vec![listener("jwt", socket("listen", &opts.listen)?, filters)];
    if let Some(addr) = &opts.noauth_listen {
        listeners.push(listener(
            "noauth",
            socket("noauth-listen", addr)?,
            Vec::new(),
        ));
    }
    let mut bootstrap = json!({
        "static_resources": {
            "listeners": listeners,
            "clusters": [cluster(&opts.upstream)?],
        },
    });
    if let Some(addr) = &opts.admin {
        bootstrap["admin"] = json!({ "address": socket("admin", addr)? });
    }
    let keys = auth
        .consumers
        .iter()
        .map(|c| jwk(c, Some(c.kid_or_key())))
        .collect();
    Ok(Envoy {
        bootstrap,
        jwks: jwks(keys),
    })
}
