//! `[auth]` that cannot be turned into tokens, naming the field at fault.

use std::path::PathBuf;

use crate::scenario::{Field, Scenario, ScenarioError};
use crate::token::jwt::KeyError;

/// `[auth]` that cannot be turned into tokens. Names the field at fault;
/// [`TokenError::located`] finds it in the scenario file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{field}: {msg}")]
    Invalid { field: Field, msg: String },
    #[error("{field}: {}: {source}", path.display())]
    Read {
        field: Field,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: {}: {source}", path.display())]
    Key {
        field: Field,
        path: PathBuf,
        #[source]
        source: Box<KeyError>,
    },
}

impl TokenError {
    pub(super) fn invalid(field: Field, msg: impl Into<String>) -> TokenError {
        TokenError::Invalid {
            field,
            msg: msg.into(),
        }
    }

    /// The field at fault.
    pub fn field(&self) -> &Field {
        match self {
            TokenError::Invalid { field, .. }
            | TokenError::Read { field, .. }
            | TokenError::Key { field, .. } => field,
        }
    }

    /// This error at its line and column in `scenario`'s file.
    pub fn located(self, scenario: &Scenario) -> ScenarioError {
        let msg = match &self {
            TokenError::Invalid { msg, .. } => msg.clone(),
            TokenError::Read { path, source, .. } => format!("{}: {source}", path.display()),
            TokenError::Key { path, source, .. } => format!("{}: {source}", path.display()),
        };
        scenario.error_at(self.field().clone(), msg)
    }
}

pub(super) fn auth_field(key: &str) -> Field {
    Field::new("auth", None, key)
}
