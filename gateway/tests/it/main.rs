mod admin;
mod semantics;
