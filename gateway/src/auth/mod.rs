//! The authentication plugins of the request path: Kong's `jwt` and `acl`,
//! and an AWS HTTP API style `oidc` authorizer. Each refuses with a
//! [`crate::reject::Rejection`], declared in one place.

pub mod acl;
pub mod jose;
pub mod json;
pub mod jwt;
pub mod jwt_conf;
pub mod keys;
pub mod oidc;
pub mod schema;
