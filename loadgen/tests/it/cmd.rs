//! loadgen as a user runs it: the built binary, its output, and the keys
//! `loadgen keys gen` writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

pub fn loadgen(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Its stdout, once it exited 0 (else its stderr in the panic).
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `keys gen --alg ALG --kid KID --out DIR/KID`; that directory.
pub fn keys(dir: &Path, alg: &str, kid: &str) -> PathBuf {
    let out = dir.join(kid);
    ok(&loadgen(&[
        "keys",
        "gen",
        "--alg",
        alg,
        "--kid",
        kid,
        "--out",
        out.to_str().unwrap(),
    ]));
    out
}
