//! The gateway's two HTTP/1 cores on arbitrary request bytes: the lean path
//! and hyper must give the same answer (status, or none) and forward the
//! same request upstream (`gateway::lean::differential`). The property test
//! in `cargo test` (`gateway/tests/it/lean.rs`) runs generated requests on
//! every CI run; this goes past what its generator builds.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use gateway::lean::differential::Pair;
use libfuzzer_sys::fuzz_target;

fn config(up: std::net::SocketAddr) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: up\n  url: http://{up}\n  routes:\n  \
         - {{ name: open, paths: [\"/\"], strip_path: false }}\n"
    )
}

fn pair() -> &'static (tokio::runtime::Runtime, Pair) {
    static P: OnceLock<(tokio::runtime::Runtime, Pair)> = OnceLock::new();
    P.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let mut pair = rt.block_on(Pair::new(config));
        // An unfinished head waits this long on both cores before it counts as no answer.
        pair.patience = Duration::from_millis(100);
        (rt, pair)
    })
}

fuzz_target!(|data: &[u8]| {
    let (rt, pair) = pair();
    let [lean, hyper] = rt.block_on(pair.both(data));
    assert_eq!(lean, hyper, "the cores differ on {:?}", String::from_utf8_lossy(data));
});
