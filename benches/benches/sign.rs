//! Token signing per algorithm (`loadgen::token::jwt`): what a token costs the
//! generator, for choosing between the pool and per-request sources. Each
//! signs a typical claims set (iss, sub, iat, nbf, exp, jti) into a compact
//! JWS, header and base64url included.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use loadgen::token::jwt::{ALGS, Key, encode, header};
use loadgen::token::keygen::generate_private_pem;
use serde_json::{Map, Value, json};

fn bench(c: &mut Criterion) {
    let claims: Map<String, Value> = json!({
        "iss": "web-app", "sub": "user-42", "iat": 1_800_000_000u64, "nbf": 1_799_999_995u64,
        "exp": 1_800_003_600u64, "jti": "6f1c1d2e-8a5b-4c2f-9d1e-2b3c4d5e6f70"
    })
    .as_object()
    .cloned()
    .unwrap();
    let mut g = c.benchmark_group("sign");
    for alg in ALGS {
        let key = if alg.is_hmac() {
            Key::hmac(alg, b"a-demo-secret-of-reasonable-length-0123456789").unwrap()
        } else {
            Key::from_pem(alg, &generate_private_pem(alg, 2048).unwrap()).unwrap()
        };
        let h = header(alg.name(), Some("JWT"), None);
        g.bench_function(alg.name(), |b| {
            b.iter(|| black_box(encode(&h, &claims, &key)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
