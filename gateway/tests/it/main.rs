mod admin;
mod cli;
mod oidc;
mod proxy;
mod semantics;
mod support;
