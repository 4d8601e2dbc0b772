//! The HS256 plugin against raw HMAC, side by side in one process: batches
//! of each alternate, and the ratio is taken of the fastest batches and of
//! the median ones. Criterion's `verify/HS256` runs the two one after the
//! other, minutes apart on a noisy machine; here both see the same noise.
//!
//! ```sh
//! cargo run --release -p gatebench-benches --example verify_ratio [BATCHES]
//! ```

#![allow(
    clippy::disallowed_methods,
    reason = "times CPU work in batches; nothing here is scheduled"
)]

use std::hint::black_box;
use std::time::Instant;

use base64::Engine as _;

/// Calls per batch: ~10 ms of work, short enough to miss most preemptions.
const CALLS: u32 = 20_000;

fn main() {
    let batches: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 300,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: verify_ratio [BATCHES > 0]");
            std::process::exit(2);
        }
    };
    let yaml = "_format_version: \"3.0\"\nconsumers:\n- username: c3\n  jwt_secrets:\n  - key: key-3\n    secret: secret-3\n";
    let snap = gateway::config::Declarative::parse(yaml, "verify_ratio.yml")
        .and_then(|d| d.compile())
        .expect("the built-in configuration compiles");
    let conf = gateway::auth::jwt::JwtConf::default();
    // The same token shape as the criterion bench: five claims, HS256.
    let now = gateway::clock::unix_now();
    let claims =
        serde_json::json!({"iss": "key-3", "sub": "bench", "exp": now + 3600, "nbf": now - 5});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"secret-3"),
    )
    .expect("HS256 signs");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}")
            .parse()
            .expect("a token is a header value"),
    );
    let (msg, sig) = token.rsplit_once('.').expect("a JWT has dots");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .expect("base64url");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret-3");
    assert!(
        gateway::auth::jwt::authenticate(&conf, &snap.credentials, None, &headers, || now).is_ok()
    );

    let per_call = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..CALLS {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(CALLS)
    };
    let (mut raw, mut plugin) = (Vec::new(), Vec::new());
    for _ in 0..batches {
        raw.push(per_call(&mut || {
            black_box(ring::hmac::verify(&key, black_box(msg.as_bytes()), &sig).is_ok());
        }));
        plugin.push(per_call(&mut || {
            black_box(
                gateway::auth::jwt::authenticate(
                    &conf,
                    &snap.credentials,
                    None,
                    black_box(&headers),
                    || now,
                )
                .is_ok(),
            );
        }));
    }
    raw.sort_by(f64::total_cmp);
    plugin.sort_by(f64::total_cmp);
    let mid = batches / 2;
    println!(
        "batches {batches} x {CALLS}: raw HMAC min {:.0} ns, median {:.0} ns | authenticate min {:.0} ns, median {:.0} ns | ratio of minima {:.2}, of medians {:.2}",
        raw[0],
        raw[mid],
        plugin[0],
        plugin[mid],
        plugin[0] / raw[0],
        plugin[mid] / raw[mid]
    );
}
