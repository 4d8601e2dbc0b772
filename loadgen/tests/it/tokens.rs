//! Tokens checked by an independent JOSE implementation (jsonwebtoken):
//! every algorithm's valid tokens verify with the public key PEM and with the
//! JWK from `jwks.json`, and each invalid class is refused for its reason.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use loadgen::scenario::{AuthSpec, ConsumerSpec, TokenClass};
use loadgen::token::jwt::{ALGS, Alg};
use loadgen::token::{Carried, ManualClock, Tokens as Auth};

fn jose_alg(a: Alg) -> Algorithm {
    a.name().parse().unwrap()
}

fn validation(a: Alg, issuer: Option<&str>) -> Validation {
    let mut v = Validation::new(jose_alg(a));
    v.validate_nbf = true;
    v.leeway = 0;
    v.validate_aud = false;
    v.required_spec_claims = ["exp".to_owned()].into();
    if let Some(i) = issuer {
        v.set_issuer(&[i]);
    }
    v
}

fn one(c: Carried) -> String {
    match c {
        Carried::One(t) => t,
        other => panic!("expected one token, got {other:?}"),
    }
}

/// One consumer of `alg` whose key comes from `loadgen keys gen` in `dir`.
fn auth_for(
    alg: Alg,
    dir: &std::path::Path,
    classes: &[TokenClass],
) -> (Auth, DecodingKey, DecodingKey) {
    let out = dir.join(alg.name());
    loadgen::token::keygen::keys_gen(
        alg,
        false,
        Some("kid-1"),
        2048,
        Some("http://127.0.0.1:1/iss"),
        &out,
        false,
    )
    .unwrap();
    let consumer = if alg.is_hmac() {
        ConsumerSpec {
            name: "c1".into(),
            key: Some("c1-key".into()),
            alg: Some(alg),
            secret: None,
            secret_file: Some(out.join("secret")),
            key_file: None,
            kid: None,
            groups: vec![],
        }
    } else {
        ConsumerSpec {
            name: "c1".into(),
            key: Some("c1-key".into()),
            alg: Some(alg),
            secret: None,
            secret_file: None,
            key_file: Some(out.join("private.pem")),
            kid: Some("kid-1".into()),
            groups: vec![],
        }
    };
    let spec = AuthSpec {
        consumer: vec![consumer],
        ..AuthSpec::default()
    };
    let clock = Arc::new(ManualClock::default());
    clock.0.store(now(), Ordering::Relaxed);
    let auth = Auth::new(&spec, classes, dir, clock).unwrap();
    let (pem_key, jwk_key) = if alg.is_hmac() {
        let secret = std::fs::read_to_string(out.join("secret")).unwrap();
        let k = DecodingKey::from_secret(secret.trim_end().as_bytes());
        (k.clone(), k)
    } else {
        let pem = std::fs::read(out.join("public.pem")).unwrap();
        let from_pem = match alg {
            a if a.is_rsa() => DecodingKey::from_rsa_pem(&pem).unwrap(),
            Alg::ES256 | Alg::ES384 => DecodingKey::from_ec_pem(&pem).unwrap(),
            _ => DecodingKey::from_ed_pem(&pem).unwrap(),
        };
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&std::fs::read(out.join("jwks.json")).unwrap()).unwrap();
        let jwk = jwks.find("kid-1").expect("kid in jwks.json");
        (from_pem, DecodingKey::from_jwk(jwk).unwrap())
    };
    (auth, pem_key, jwk_key)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn every_algorithm_verifies_with_the_public_key_and_the_jwk() {
    let dir = tempfile::tempdir().unwrap();
    // jsonwebtoken verifies no ES512 (P-521): curves.rs has it verified by
    // our gateway, through a PEM and through a JWKS.
    for alg in ALGS.into_iter().filter(|a| *a != Alg::ES512) {
        let (auth, pem_key, jwk_key) = auth_for(alg, dir.path(), &[TokenClass::Valid]);
        let t = one(auth.mint(TokenClass::Valid, 0, now()).0);
        for (how, key) in [("pem", &pem_key), ("jwk", &jwk_key)] {
            let d = decode::<serde_json::Value>(&t, key, &validation(alg, None))
                .unwrap_or_else(|e| panic!("{alg} via {how}: {e}"));
            let c = d.claims;
            assert_eq!(c["iss"], "c1-key", "{alg}: the key claim");
            assert!(
                c["jti"].as_str().is_some_and(|j| j.len() == 36),
                "{alg}: jti"
            );
            assert_eq!(
                c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
                3600
            );
            assert_eq!(c["iat"].as_u64().unwrap() - c["nbf"].as_u64().unwrap(), 5);
        }
        let h = decode_header(&t).unwrap();
        assert_eq!(h.typ.as_deref(), Some("JWT"));
        if !alg.is_hmac() {
            assert_eq!(h.kid.as_deref(), Some("kid-1"), "{alg}");
        }
        // Two tokens never share a jti.
        let t2 = one(auth.mint(TokenClass::Valid, 0, now()).0);
        assert_ne!(t, t2);
    }
}

#[test]
fn each_invalid_class_is_refused_for_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    for alg in [Alg::HS256, Alg::RS256, Alg::ES256] {
        // alg-confusion needs a public key: not for HMAC consumers.
        let classes: Vec<TokenClass> = loadgen::scenario::CLASSES
            .into_iter()
            .filter(|c| !(alg.is_hmac() && *c == TokenClass::AlgConfusion))
            .collect();
        let (auth, key, _) = auth_for(alg, dir.path(), &classes);
        let v = validation(alg, None);
        let kind = |class: TokenClass| {
            let t = one(auth.mint(class, 0, now()).0);
            decode::<serde_json::Value>(&t, &key, &v)
                .err()
                .map(|e| e.into_kind())
        };
        let expect = |class: TokenClass, ok: fn(&ErrorKind) -> bool| {
            let k = kind(class);
            assert!(k.as_ref().is_some_and(ok), "{alg} {}: {k:?}", class.name());
        };
        expect(TokenClass::Expired, |k| {
            matches!(k, ErrorKind::ExpiredSignature)
        });
        expect(TokenClass::NotYetValid, |k| {
            matches!(k, ErrorKind::ImmatureSignature)
        });
        expect(TokenClass::BadSignature, |k| {
            matches!(k, ErrorKind::InvalidSignature)
        });
        expect(TokenClass::WrongKey, |k| {
            matches!(k, ErrorKind::InvalidSignature)
        });
        // An unknown key claim: refused by a verifier that pins the issuer.
        let t = one(auth.mint(TokenClass::UnknownIssuer, 0, now()).0);
        let e =
            decode::<serde_json::Value>(&t, &key, &validation(alg, Some("c1-key"))).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::InvalidIssuer),
            "{alg} unknown-issuer: {e:?}"
        );
        assert!(
            decode::<serde_json::Value>(&t, &key, &v).is_ok(),
            "otherwise well signed"
        );
        // alg none: no signature, and no verifier accepts the header.
        let t = one(auth.mint(TokenClass::AlgNone, 0, now()).0);
        assert!(t.ends_with('.'), "{t}");
        assert!(decode::<serde_json::Value>(&t, &key, &v).is_err());
        let t = one(auth.mint(TokenClass::Malformed, 0, now()).0);
        assert!(decode::<serde_json::Value>(&t, &key, &v).is_err());
        assert_eq!(auth.mint(TokenClass::Missing, 0, now()).0, Carried::None);
        // duplicate: two distinct tokens, each valid on its own.
        let Carried::Two(a, b) = auth.mint(TokenClass::Duplicate, 0, now()).0 else {
            panic!("duplicate carries two tokens");
        };
        assert_ne!(a, b);
        for t in [&a, &b] {
            decode::<serde_json::Value>(t, &key, &v).unwrap();
        }
        // oversized: valid, and at least the configured size (16 KiB by default).
        let t = one(auth.mint(TokenClass::Oversized, 0, now()).0);
        assert!(
            t.len() >= 16 * 1024 - 600 && t.len() <= 17 * 1024,
            "{}",
            t.len()
        );
        decode::<serde_json::Value>(&t, &key, &v).unwrap();
        if !alg.is_hmac() {
            // alg confusion: HS256 keyed with the public key PEM; a verifier
            // pinned to the real algorithm refuses it.
            let t = one(auth.mint(TokenClass::AlgConfusion, 0, now()).0);
            assert_eq!(decode_header(&t).unwrap().alg, Algorithm::HS256);
            let e = decode::<serde_json::Value>(&t, &key, &v).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::InvalidAlgorithm),
                "{alg}: {e:?}"
            );
            // …and it is exactly what a confused verifier would accept.
            let pem = auth.consumers[0].public_pem.clone().unwrap();
            decode::<serde_json::Value>(
                &t,
                &DecodingKey::from_secret(pem.as_bytes()),
                &validation(Alg::HS256, None),
            )
            .unwrap();
        }
    }
}

#[test]
fn pool_refresh_never_hands_out_a_token_within_its_margin() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AuthSpec {
        ttl: Some(loadgen::scenario::Dur(std::time::Duration::from_secs(60))),
        refresh_margin: Some(loadgen::scenario::Dur(std::time::Duration::from_secs(10))),
        pool_size: Some(3),
        consumer: vec![ConsumerSpec {
            name: "c".into(),
            key: None,
            alg: None,
            secret: Some("s".into()),
            secret_file: None,
            key_file: None,
            kid: None,
            groups: vec![],
        }],
        ..AuthSpec::default()
    };
    let clock = Arc::new(ManualClock::default());
    let t0 = 1_800_000_000;
    clock.0.store(t0, Ordering::Relaxed);
    let auth = Auth::new(&spec, &[TokenClass::Valid], dir.path(), clock.clone()).unwrap();
    auth.fill_pool();
    let exp_of = |t: &str| -> u64 {
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        v.required_spec_claims.clear();
        decode::<serde_json::Value>(t, &DecodingKey::from_secret(b"s"), &v)
            .unwrap()
            .claims["exp"]
            .as_u64()
            .unwrap()
    };
    // Time moves in steps; the refresher runs every other step. Whatever is
    // handed out is always more than the margin away from its expiry.
    let mut seq = 0;
    for step in 0..400u64 {
        let now = t0 + step;
        clock.0.store(now, Ordering::Relaxed);
        if step % 2 == 0 {
            auth.refresh();
        }
        for _ in 0..3 {
            let c = auth.pooled(0, 0, seq);
            seq += 1;
            let exp = exp_of(c.first().unwrap());
            assert!(
                exp > now + 10,
                "step {step}: exp {exp} within the margin of {now}"
            );
        }
    }
    let s = auth.summary();
    assert_eq!(s.signed_on_send_path, 0, "the refresher kept ahead");
    // With the refresher stopped, the send path re-signs (and says so) rather than hand out a stale token.
    let late = t0 + 1000;
    clock.0.store(late, Ordering::Relaxed);
    let c = auth.pooled(0, 0, 0);
    assert!(exp_of(c.first().unwrap()) > late + 10);
    assert_eq!(auth.summary().signed_on_send_path, 1);
}
