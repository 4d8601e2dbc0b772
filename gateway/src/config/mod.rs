//! The gateway's configuration: Kong's declarative file as written
//! ([`spec`]) and its compilation into the runtime
//! [`crate::snapshot::Snapshot`] ([`compile`]).

pub mod compile;
pub mod spec;

pub use compile::{compile_consumer, compile_consumers, remove_consumer};
pub use spec::{
    AclSpec, ConfigError, ConsumerSpec, Declarative, EntityRef, JwtSecretSpec, PluginSpec,
    RouteSpec, ServiceSpec,
};
