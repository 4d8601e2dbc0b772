mod admin;
mod cli;
mod semantics;
