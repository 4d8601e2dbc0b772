//! `[[event]]`: something done to a gateway at a set time of a phase, in
//! every round and for every target it applies to — a credential revoked or
//! restored, a signing key rotated, a key set rotated, a raw Admin API call —
//! and measured from the traffic that follows.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dur::Dur;

/// One timed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// The phase it belongs to (by name); it happens in every round.
    pub phase: String,
    /// Into that phase.
    pub at: Dur,
    pub action: Action,
    /// The `[auth]` consumer it acts on (revoke, restore, rotate, jwks-rotate).
    pub consumer: Option<String>,
    /// Only this target (default: every target that checks tokens).
    pub target: Option<String>,
    /// The Kong-compatible Admin API (`http://host:port`); default the
    /// target's `admin`, and for `builtin:gateway` its own.
    pub admin: Option<String>,
    /// rotate, jwks-rotate: how long the old key stays valid after tokens
    /// switch to the new one (default 1s).
    pub overlap: Option<Dur>,
    /// rotate: the new credential's key (default: the consumer's key + `-next`).
    /// jwks-rotate: the new `kid` (default: the consumer's kid + `-next`).
    pub new_key: Option<String>,
    /// jwks-rotate: the JWKS file to rewrite (relative to the scenario), the
    /// one the gateway reads (`jwks_file`) or the mock serves (`--jwks-dir`).
    pub jwks: Option<PathBuf>,
    /// admin: the method (default POST).
    pub method: Option<String>,
    /// admin: the path on the Admin API, e.g. `/consumers`.
    pub path: Option<String>,
    /// admin: a JSON body.
    pub body: Option<String>,
    /// admin: the status that counts as success (default any 2xx).
    pub expect: Option<u16>,
}

/// What an event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Deletes the consumer's jwt credential (`DELETE /consumers/{c}/jwt/{key}`).
    Revoke,
    /// Puts it back (`POST /consumers/{c}/jwt`).
    Restore,
    /// Adds a new credential, switches the consumer's tokens to it, removes
    /// the old one after `overlap`.
    Rotate,
    /// Publishes a new key in the JWKS file beside the old, switches signing
    /// to it, removes the old key after `overlap`.
    JwksRotate,
    /// One raw Admin API call.
    Admin,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Revoke => "revoke",
            Action::Restore => "restore",
            Action::Rotate => "rotate",
            Action::JwksRotate => "jwks-rotate",
            Action::Admin => "admin",
        }
    }

    /// Whether it acts on a consumer's credential.
    pub fn needs_consumer(self) -> bool {
        self != Action::Admin
    }

    /// Whether it goes through an Admin API.
    pub fn needs_admin(self) -> bool {
        self != Action::JwksRotate
    }
}

/// The default overlap of a rotation.
pub const DEFAULT_OVERLAP: std::time::Duration = std::time::Duration::from_secs(1);

impl EventSpec {
    /// Rules within one event: `(key, message)`.
    // long: one rule per field and action, each naming its key; a table in code
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        let only = |key: &'static str, set: bool, what: &str| {
            if set {
                Err((key, format!("only for {what}")))
            } else {
                Ok(())
            }
        };
        if self.action.needs_consumer() && self.consumer.is_none() {
            return Err((
                "consumer",
                format!("missing: {} acts on an [auth] consumer", self.action.name()),
            ));
        }
        let rotation = matches!(self.action, Action::Rotate | Action::JwksRotate);
        only(
            "overlap",
            self.overlap.is_some() && !rotation,
            "rotate and jwks-rotate",
        )?;
        only(
            "new_key",
            self.new_key.is_some() && !rotation,
            "rotate and jwks-rotate",
        )?;
        let admin = self.action == Action::Admin;
        for (key, set) in [
            ("method", self.method.is_some()),
            ("path", self.path.is_some()),
            ("body", self.body.is_some()),
            ("expect", self.expect.is_some()),
        ] {
            only(key, set && !admin, "action = \"admin\"")?;
        }
        if admin {
            match &self.path {
                None => {
                    return Err((
                        "path",
                        "missing: the Admin API path, e.g. /consumers".into(),
                    ));
                }
                Some(p) if !p.starts_with('/') => {
                    return Err(("path", format!("{p:?} must start with /")));
                }
                Some(_) => {}
            }
            if let Some(m) = &self.method {
                http::Method::from_bytes(m.as_bytes())
                    .map_err(|_| ("method", format!("{m:?} is not an HTTP method")))?;
            }
            if let Some(b) = &self.body {
                serde_json::from_str::<serde_json::Value>(b)
                    .map_err(|e| ("body", format!("not JSON: {e}")))?;
            }
            if let Some(s) = self.expect
                && !(100..=599).contains(&s)
            {
                return Err(("expect", format!("{s} is not an HTTP status")));
            }
        }
        if self.action == Action::JwksRotate {
            if self.jwks.is_none() {
                return Err((
                    "jwks",
                    "missing: the JWKS file the gateway reads (jwks_file) or the mock serves"
                        .into(),
                ));
            }
            if self.admin.is_some() {
                return Err((
                    "admin",
                    "jwks-rotate rewrites a file, not an Admin API".into(),
                ));
            }
        } else if self.jwks.is_some() {
            return Err(("jwks", "only for jwks-rotate".into()));
        }
        if let Some(a) = &self.admin
            && !a.starts_with("http://")
        {
            return Err((
                "admin",
                format!("{a:?}: expected http://host:port (an Admin API on loopback)"),
            ));
        }
        if self
            .overlap
            .is_some_and(|d| d.0 > std::time::Duration::from_secs(3600))
        {
            return Err(("overlap", "at most 1h".into()));
        }
        Ok(())
    }

    /// The overlap of a rotation.
    pub fn overlap(&self) -> std::time::Duration {
        self.overlap.map_or(DEFAULT_OVERLAP, |d| d.0)
    }
}
