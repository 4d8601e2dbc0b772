//! The gateway's verify path, each beside its raw lower bound:
//! - token extraction (Kong's bearer regex) vs reading the header;
//! - the whole jwt plugin (`authenticate`: extract, decode, look up, verify,
//!   claims) for HS256, RS256, ES256 and EdDSA vs bare HMAC-SHA256 / RSA /
//!   ECDSA / Ed25519 verification of the same bytes with ring, and ES512 and
//!   EdDSA over Ed448 (OpenSSL-signed fixture tokens) vs bare `p521` and
//!   `ed448-goldilocks-plus`;
//! - credential lookup among 10, 10,000 and 100,000 credentials (sharded maps);
//! - claims checks on and off.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use gateway::auth::jwt::{JwtConf, authenticate, bearer};
use gateway::config::Declarative;
use gateway::snapshot::Snapshot;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{self, UnparsedPublicKey};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../gateway/tests/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIX}/{name}")).unwrap()
}

fn indent(pem: &[u8]) -> String {
    String::from_utf8_lossy(pem)
        .lines()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `n` HS256 consumers plus one consumer per asymmetric algorithm.
fn snapshot(n: usize) -> Snapshot {
    let mut y = String::from("_format_version: \"3.0\"\nconsumers:\n");
    for i in 0..n {
        y.push_str(&format!(
            "- username: c{i}\n  jwt_secrets:\n  - key: key-{i}\n    secret: secret-{i}\n"
        ));
    }
    for (user, alg, file) in [
        ("rsa", "RS256", "rsa-public.pem"),
        ("ec", "ES256", "ec256-public.pem"),
        ("ed", "EdDSA", "ed25519-public.pem"),
        ("es512", "ES512", "ec521-public.pem"),
        ("ed448", "EdDSA", "ed448-public.pem"),
    ] {
        y.push_str(&format!(
            "- username: {user}\n  jwt_secrets:\n  - key: {user}-key\n    algorithm: {alg}\n    rsa_public_key: |\n{}\n",
            indent(&fixture(file))
        ));
    }
    Declarative::parse(&y, "bench.yml")
        .unwrap()
        .compile()
        .unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn headers(token: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    h
}

fn token(alg: Algorithm, iss: &str, key: &EncodingKey) -> String {
    let claims =
        serde_json::json!({"iss": iss, "sub": "bench", "exp": now() + 3600, "nbf": now() - 5});
    jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
}

/// The signing input and decoded signature of a token.
fn parts(t: &str) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine as _;
    let (msg, sig) = t.rsplit_once('.').unwrap();
    (
        msg.as_bytes().to_vec(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap(),
    )
}

fn bench(c: &mut Criterion) {
    let snap = snapshot(10);
    let conf = JwtConf::default();
    let hs_key = EncodingKey::from_secret(b"secret-3");
    let hs = token(Algorithm::HS256, "key-3", &hs_key);
    let h = headers(&hs);

    let mut g = c.benchmark_group("extract");
    g.bench_function("raw_header_get", |b| {
        b.iter(|| black_box(h.get(http::header::AUTHORIZATION)))
    });
    g.bench_function("bearer", |b| {
        b.iter(|| {
            black_box(
                h.get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(bearer),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("json");
    let (claims, header) = {
        use base64::Engine as _;
        let d = |p: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap()
        };
        let mut it = hs.split('.');
        let h = d(it.next().unwrap());
        (d(it.next().unwrap()), h)
    };
    g.bench_function("scan_header_and_claims", |b| {
        b.iter(|| {
            black_box(gateway::auth::json::pick(&header, ["alg", "iss", ""]));
            black_box(gateway::auth::json::pick(&claims, ["iss", "exp", "nbf"]))
        })
    });
    g.bench_function("serde_value_header_and_claims", |b| {
        b.iter(|| {
            black_box(serde_json::from_slice::<serde_json::Value>(&header).is_ok());
            black_box(serde_json::from_slice::<serde_json::Value>(&claims).is_ok())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("verify");
    let (msg, sig) = parts(&hs);
    let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret-3");
    g.bench_function("HS256/raw_hmac", |b| {
        b.iter(|| black_box(ring::hmac::verify(&hmac_key, &msg, &sig).is_ok()))
    });
    g.bench_function("HS256/authenticate", |b| {
        b.iter(|| black_box(authenticate(&conf, &snap.credentials, None, &h, now).is_ok()))
    });

    let rsa = token(
        Algorithm::RS256,
        "rsa-key",
        &EncodingKey::from_rsa_pem(&fixture("rsa-private.pem")).unwrap(),
    );
    let ec = token(
        Algorithm::ES256,
        "ec-key",
        &EncodingKey::from_ec_pem(&fixture("ec256-private.pem")).unwrap(),
    );
    let ed = token(
        Algorithm::EdDSA,
        "ed-key",
        &EncodingKey::from_ed_pem(&fixture("ed25519-private.pem")).unwrap(),
    );
    let raws: [(
        &str,
        &String,
        &'static dyn signature::VerificationAlgorithm,
        Vec<u8>,
    ); 3] = [
        (
            "RS256",
            &rsa,
            &signature::RSA_PKCS1_2048_8192_SHA256,
            fixture("rsa-public.pkcs1.der"),
        ),
        (
            "ES256",
            &ec,
            &signature::ECDSA_P256_SHA256_FIXED,
            fixture("ec256-public.point"),
        ),
        (
            "EdDSA",
            &ed,
            &signature::ED25519,
            fixture("ed25519-public.raw"),
        ),
    ];
    for (name, t, alg, public) in raws {
        let (msg, sig) = parts(t);
        let key = UnparsedPublicKey::new(alg, public);
        assert!(key.verify(&msg, &sig).is_ok(), "{name} raw verify");
        g.bench_function(format!("{name}/raw_verify"), |b| {
            b.iter(|| black_box(key.verify(&msg, &sig).is_ok()))
        });
        let h = headers(t);
        assert!(
            authenticate(&conf, &snap.credentials, None, &h, now).is_ok(),
            "{name} authenticate"
        );
        g.bench_function(format!("{name}/authenticate"), |b| {
            b.iter(|| black_box(authenticate(&conf, &snap.credentials, None, &h, now).is_ok()))
        });
    }
    // ES512 and Ed448: not in ring; the fixture tokens are signed by OpenSSL.
    let der = |pem: &str| {
        use base64::Engine as _;
        let b64: String = String::from_utf8(fixture(pem))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    };
    let es512 = String::from_utf8(fixture("ec521-token.jwt")).unwrap();
    let ed448 = String::from_utf8(fixture("ed448-token.jwt")).unwrap();
    let (es512, ed448) = (es512.trim(), ed448.trim());
    {
        use p521::ecdsa::signature::Verifier as _;
        let spki = der("ec521-public.pem");
        let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(&spki[spki.len() - 133..]).unwrap();
        let (msg, sig) = parts(es512);
        let sig = p521::ecdsa::Signature::from_slice(&sig).unwrap();
        assert!(key.verify(&msg, &sig).is_ok(), "ES512 raw verify");
        g.bench_function("ES512/raw_verify", |b| {
            b.iter(|| black_box(key.verify(&msg, &sig).is_ok()))
        });
    }
    {
        let spki = der("ed448-public.pem");
        let raw: [u8; 57] = spki[spki.len() - 57..].try_into().unwrap();
        let key = ed448_goldilocks_plus::VerifyingKey::from_bytes(&raw).unwrap();
        let (msg, sig) = parts(ed448);
        let sig = ed448_goldilocks_plus::Signature::try_from(sig.as_slice()).unwrap();
        assert!(key.verify_raw(&sig, &msg).is_ok(), "Ed448 raw verify");
        g.bench_function("Ed448/raw_verify", |b| {
            b.iter(|| black_box(key.verify_raw(&sig, &msg).is_ok()))
        });
    }
    for (name, t) in [("ES512", es512), ("Ed448", ed448)] {
        let h = headers(t);
        assert!(
            authenticate(&conf, &snap.credentials, None, &h, now).is_ok(),
            "{name} authenticate"
        );
        g.bench_function(format!("{name}/authenticate"), |b| {
            b.iter(|| black_box(authenticate(&conf, &snap.credentials, None, &h, now).is_ok()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("lookup");
    let big = snapshot(10_000);
    let t = token(
        Algorithm::HS256,
        "key-7777",
        &EncodingKey::from_secret(b"secret-7777"),
    );
    let hb = headers(&t);
    let t10 = token(
        Algorithm::HS256,
        "key-7",
        &EncodingKey::from_secret(b"secret-7"),
    );
    let h10 = headers(&t10);
    g.bench_function("HS256/10_credentials", |b| {
        b.iter(|| black_box(authenticate(&conf, &snap.credentials, None, &h10, now).is_ok()))
    });
    g.bench_function("HS256/10000_credentials", |b| {
        b.iter(|| black_box(authenticate(&conf, &big.credentials, None, &hb, now).is_ok()))
    });
    drop(big);
    let huge = snapshot(100_000);
    let t = token(
        Algorithm::HS256,
        "key-77777",
        &EncodingKey::from_secret(b"secret-77777"),
    );
    let hh = headers(&t);
    assert!(authenticate(&conf, &huge.credentials, None, &hh, now).is_ok());
    g.bench_function("HS256/100000_credentials", |b| {
        b.iter(|| black_box(authenticate(&conf, &huge.credentials, None, &hh, now).is_ok()))
    });
    g.finish();

    let mut g = c.benchmark_group("claims");
    let strict = JwtConf {
        claims_to_verify: Some(vec!["exp".into(), "nbf".into()]),
        ..JwtConf::default()
    };
    g.bench_function("HS256/no_claims", |b| {
        b.iter(|| black_box(authenticate(&conf, &snap.credentials, None, &h, now).is_ok()))
    });
    g.bench_function("HS256/exp_nbf", |b| {
        b.iter(|| black_box(authenticate(&strict, &snap.credentials, None, &h, now).is_ok()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
