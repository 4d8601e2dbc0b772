//! Kong's declarative configuration as written (`_format_version: "3.0"`,
//! YAML or JSON): services, routes, plugins, consumers with `jwt_secrets`
//! and `acls`. Parsed strictly; `super::compile` checks it and builds the
//! runtime [`crate::snapshot::Snapshot`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::auth::jwt::CredentialSpec;

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

pub(super) fn invalid(
    entity: impl Into<String>,
    field: &str,
    msg: impl Into<String>,
) -> ConfigError {
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
    pub dial: Option<crate::upstream::Dial>,
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
    /// Kong's default 5. Here: whether a request that fails on a reused
    /// keep-alive connection before any response is sent once more on a
    /// fresh one (0: never).
    pub retries: Option<u32>,
    /// Milliseconds an upstream connection may sit idle in the pool before
    /// it is closed instead of reused (default 60000, Kong's
    /// `upstream_keepalive_idle_timeout`, which Kong sets for all services;
    /// ours is per service). Set it below the upstream's own keep-alive
    /// timeout (Node's is 5 s) and the upstream never closes a connection
    /// as a request goes out.
    pub keepalive_idle_timeout: Option<u64>,
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
    pub fn as_str(&self) -> &str {
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

impl JwtSecretSpec {
    /// The fields the verifier is built from.
    pub fn credential(&self) -> CredentialSpec<'_> {
        CredentialSpec {
            key: self.key.as_deref(),
            algorithm: self.algorithm.as_deref(),
            secret: self.secret.as_deref(),
            rsa_public_key: self.rsa_public_key.as_deref(),
        }
    }
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

impl Declarative {
    pub fn load(path: &Path) -> Result<Declarative, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let mut d = Self::parse(&text, &file)?;
        d.resolve_files(path.parent().unwrap_or(Path::new(".")));
        Ok(d)
    }

    /// Makes the relative file paths in plugin configs (the oidc plugin's
    /// `jwks_file`) relative to the config file's directory, not to
    /// wherever the gateway was started.
    pub fn resolve_files(&mut self, dir: &Path) {
        let services = self.services.iter_mut();
        let routes = services.flat_map(|s| {
            s.routes
                .iter_mut()
                .flat_map(|r| r.plugins.iter_mut())
                .chain(s.plugins.iter_mut())
        });
        let all = routes
            .chain(self.routes.iter_mut().flat_map(|r| r.plugins.iter_mut()))
            .chain(self.plugins.iter_mut());
        for p in all {
            if let Some(f) = p.config.get_mut("jwks_file")
                && let Some(rel) = f.as_str().filter(|f| Path::new(f).is_relative())
            {
                *f = serde_json::Value::String(dir.join(rel).display().to_string());
            }
        }
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
}
