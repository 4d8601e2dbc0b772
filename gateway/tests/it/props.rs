//! Property tests of what faces hostile input: the jwt plugin's verify path
//! (a mutation of a valid token of any algorithm is never accepted; any text
//! as a token never panics) and the Admin API's request parsing (any body,
//! any path, never a panic or a 5xx).

use gateway::auth::jwt::{JwtConf, authenticate};
use gateway::snapshot::Snapshot;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;

use crate::support::{FIX, now};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIX}/{name}")).unwrap()
}

/// One consumer per algorithm family: HS256/384/512 share a secret, RS and
/// PS a 2048-bit key, ES256 and EdDSA their own.
fn snapshot() -> Snapshot {
    let indent = |pem: &[u8]| {
        String::from_utf8_lossy(pem)
            .lines()
            .map(|l| format!("        {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut y = String::from("_format_version: \"3.0\"\nconsumers:\n");
    for alg in ["HS256", "HS384", "HS512"] {
        y.push_str(&format!(
            "- username: {alg}\n  jwt_secrets:\n  - key: {alg}-key\n    algorithm: {alg}\n    secret: the-secret-of-{alg}\n"
        ));
    }
    for (alg, file) in [
        ("RS256", "rsa-public.pem"),
        ("RS512", "rsa-public.pem"),
        ("PS256", "rsa-public.pem"),
        ("ES256", "ec256-public.pem"),
        ("EdDSA", "ed25519-public.pem"),
    ] {
        y.push_str(&format!(
            "- username: {alg}\n  jwt_secrets:\n  - key: {alg}-key\n    algorithm: {alg}\n    rsa_public_key: |\n{}\n",
            indent(&fixture(file))
        ));
    }
    gateway::config::Declarative::parse(&y, "props.yml")
        .unwrap()
        .compile()
        .unwrap()
}

/// A valid token of each algorithm, accepted as it is.
fn valid_tokens() -> Vec<String> {
    let claims = |alg: &str| serde_json::json!({"iss": format!("{alg}-key"), "exp": now() + 3600});
    let mut v = Vec::new();
    for (alg, name) in [
        (Algorithm::HS256, "HS256"),
        (Algorithm::HS384, "HS384"),
        (Algorithm::HS512, "HS512"),
    ] {
        let key = EncodingKey::from_secret(format!("the-secret-of-{name}").as_bytes());
        v.push(jsonwebtoken::encode(&Header::new(alg), &claims(name), &key).unwrap());
    }
    let rsa = EncodingKey::from_rsa_pem(&fixture("rsa-private.pem")).unwrap();
    for (alg, name) in [
        (Algorithm::RS256, "RS256"),
        (Algorithm::RS512, "RS512"),
        (Algorithm::PS256, "PS256"),
    ] {
        v.push(jsonwebtoken::encode(&Header::new(alg), &claims(name), &rsa).unwrap());
    }
    let ec = EncodingKey::from_ec_pem(&fixture("ec256-private.pem")).unwrap();
    v.push(jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims("ES256"), &ec).unwrap());
    let ed = EncodingKey::from_ed_pem(&fixture("ed25519-private.pem")).unwrap();
    v.push(jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims("EdDSA"), &ed).unwrap());
    v
}

fn bearer(token: &str) -> Option<http::HeaderMap> {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().ok()?,
    );
    Some(h)
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Replaces the character at a middle position of one segment (so the
/// segment's decoded bytes change) with another base64url character.
fn flip(token: &str, seg: usize, at: usize, with: usize) -> Option<String> {
    let segs: Vec<&str> = token.split('.').collect();
    let s = segs[seg % 3].as_bytes();
    if s.len() < 3 {
        return None;
    }
    let i = 1 + at % (s.len() - 2);
    let mut c = B64[with % 64];
    if c == s[i] {
        c = B64[(with + 1) % 64];
    }
    let mut m = s.to_vec();
    m[i] = c;
    let mut out: Vec<String> = segs.iter().map(|x| (*x).to_owned()).collect();
    out[seg % 3] = String::from_utf8(m).ok()?;
    Some(out.join("."))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_token_of_any_algorithm_is_never_accepted(
        which in 0usize..9, seg in 0usize..3, at in any::<usize>(), with in any::<usize>(),
        cut in any::<usize>(), mode in 0u8..3,
    ) {
        thread_local! {
            static FIXED: (Snapshot, Vec<String>) = (snapshot(), valid_tokens());
        }
        FIXED.with(|(snap, tokens)| {
            let conf = JwtConf::default();
            let t = &tokens[which % tokens.len()];
            let ok = authenticate(&conf, &snap.credentials, None, &bearer(t).unwrap(), now);
            prop_assert!(ok.is_ok(), "the valid {} token: {:?}", which, ok.err());
            let mutated = match mode {
                0 => flip(t, seg, at, with),
                // Cut short (two characters at least: a lenient base64
                // decoder could ignore one trailing character's bits).
                1 => Some(t[..cut % (t.len() - 1)].to_owned()).filter(|m| m.len() + 2 <= t.len()),
                // A segment swapped for another's.
                _ => {
                    let segs: Vec<&str> = t.split('.').collect();
                    let (a, b) = (seg % 3, (seg + 1 + at % 2) % 3);
                    let mut s = segs.clone();
                    s.swap(a, b);
                    Some(s.join(".")).filter(|m| m != t)
                }
            };
            if let Some(m) = mutated
                && let Some(h) = bearer(&m)
            {
                let r = authenticate(&conf, &snap.credentials, None, &h, now);
                prop_assert!(r.is_err(), "mutated {} accepted: {}", which, m);
            }
            Ok(())
        })?;
    }

    #[test]
    fn any_text_as_a_token_is_refused_without_panicking(t in "[ -~]{0,600}") {
        thread_local! {
            static SNAP: Snapshot = snapshot();
        }
        SNAP.with(|snap| {
            if let Some(h) = bearer(&t) {
                let r = authenticate(&JwtConf::default(), &snap.credentials, Some(&format!("jwt={t}")), &h, now);
                prop_assert!(r.is_err());
            }
            Ok(())
        })?;
    }

    #[test]
    fn any_base64_segments_are_refused_without_panicking(
        h in prop::collection::vec(any::<u8>(), 0..200),
        p in prop::collection::vec(any::<u8>(), 0..400),
        s in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        use base64::Engine as _;
        let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        thread_local! {
            static SNAP: Snapshot = snapshot();
        }
        SNAP.with(|snap| {
            let t = format!("{}.{}.{}", e(&h), e(&p), e(&s));
            let r = authenticate(&JwtConf::default(), &snap.credentials, None, &bearer(&t).unwrap(), now);
            prop_assert!(r.is_err());
            Ok(())
        })?;
    }
}

/// A gateway with its Admin API, started once for the admin properties, on
/// a runtime of its own.
fn admin_addr() -> std::net::SocketAddr {
    static ADDR: std::sync::OnceLock<std::net::SocketAddr> = std::sync::OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let gw = gateway::start(gateway::Options {
                    config: gateway::config::Declarative::parse(
                        "_format_version: \"3.0\"\n",
                        "k.yml",
                    )
                    .unwrap(),
                    listen: "127.0.0.1:0".parse().unwrap(),
                    admin_listen: Some("127.0.0.1:0".parse().unwrap()),
                    state_file: Some(dir.path().join("s.json")),
                    tls: None,
                    limits: gateway::limits(),
                    admin_apply_delay: std::time::Duration::ZERO,
                    core: gateway::Core::default(),
                })
                .await
                .unwrap();
                tx.send(gw.admin_addr().unwrap()).unwrap();
                std::future::pending::<()>().await;
                drop((gw, dir));
            });
        });
        rx.recv().unwrap()
    })
}

/// The status of one raw request to the Admin API.
fn admin_status(method: &str, path: &str, content_type: &str, body: &[u8]) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(admin_addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    std::str::from_utf8(got.get(9..12)?).ok()?.parse().ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_admin_request_is_answered_without_a_5xx(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"]),
        path in prop::sample::select(vec![
            "/consumers", "/consumers/a", "/consumers/a/jwt", "/consumers/a/jwt/k",
            "/consumers/a/acls", "/consumers/%ff%00", "/jwts?size=0", "/acls?offset=%%%", "/x/y/z",
        ]),
        ct in prop::sample::select(vec![
            "application/json", "application/x-www-form-urlencoded", "text/plain", "",
        ]),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            "[ -~]{0,300}".prop_map(String::into_bytes),
            Just(br#"{"username":"a","tags":[1,{},null]}"#.to_vec()),
            Just(br#"{"username":"a","id":123,"custom_id":[]}"#.to_vec()),
            Just(br#"{"key":"k","algorithm":"RS256","rsa_public_key":"nope"}"#.to_vec()),
            Just(b"username=a&tags=x&tags=%zz".to_vec()),
        ],
    ) {
        let status = admin_status(method, path, ct, &body);
        prop_assert!(status.is_some(), "no answer to {method} {path}");
        prop_assert!(status.unwrap_or(0) < 500, "{method} {path} {ct}: {status:?}");
    }
}
