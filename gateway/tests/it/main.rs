mod admin;
mod cli;
mod oidc;
mod semantics;
