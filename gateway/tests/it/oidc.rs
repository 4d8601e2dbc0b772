//! The oidc plugin (AWS HTTP API JWT-authorizer semantics) with the issuer's
//! discovery document and JWKS served by the mock upstream.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::{FIX, fixture, now};

fn token(kid: &str, claims: Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(fixture("rsa-private.pem").as_bytes()).unwrap();
    jsonwebtoken::encode(&h, &claims, &key).unwrap()
}

#[tokio::test]
async fn aws_style_authorizer_with_discovery_rotation_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(format!("{FIX}/rsa-jwks.json"), dir.path().join("jwks.json")).unwrap();
    let idp = mock_upstream::spawn(mock_upstream::Config {
        jwks: Some(mock_upstream::JwksConfig {
            dir: dir.path().into(),
            issuer: None,
        }),
        ..mock_upstream::Config::default()
    })
    .await
    .unwrap();
    let issuer = idp.base_url().to_owned();
    let yaml = format!(
        r#"
_format_version: "3.0"
services:
- name: echo
  url: {issuer}/echo
  routes:
  - name: orders
    paths: ["/orders"]
    plugins:
    - name: oidc
      config:
        issuer: {issuer}
        audiences: [bench]
        scopes: [orders.read]
        refetch_interval: 0
        claims_to_headers: {{ sub: x-user-sub }}
"#
    );
    let snapshot = gateway::config::Declarative::parse(&yaml, "oidc.yml")
        .unwrap()
        .compile()
        .unwrap();
    let gw = gateway::spawn(snapshot, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let c = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let send = |t: Option<String>| {
        let c = c.clone();
        let url = format!("{}/orders", gw.proxy_url());
        async move {
            let mut req = http::Request::get(url);
            if let Some(t) = t {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let resp = c
                .request(req.body(Full::new(Bytes::new())).unwrap())
                .await
                .unwrap();
            let (parts, body) = resp.into_parts();
            let body: Value = serde_json::from_slice(&body.collect().await.unwrap().to_bytes())
                .unwrap_or(Value::Null);
            (parts.status, parts.headers, body)
        }
    };
    let good = json!({"iss": issuer, "aud": "bench", "sub": "user-1", "scope": "orders.read orders.write", "exp": now() + 60, "nbf": now() - 5, "iat": now() - 5});
    let with = |patch: Value| {
        let mut c = good.clone();
        c.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        c
    };

    let (s, _, body) = send(Some(token("test-rsa", good.clone()))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["headers"]["x-user-sub"], "user-1");

    for (claims, why) in [
        (with(json!({"aud": "other"})), "valid audience"),
        (with(json!({"iss": "https://evil.example"})), "valid issuer"),
        (with(json!({"exp": now() - 1})), "expired"),
        (with(json!({"nbf": now() + 60})), "not valid yet"),
    ] {
        let (s, h, body) = send(Some(token("test-rsa", claims))).await;
        assert_eq!(
            (s, body),
            (StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"}))
        );
        assert!(
            h["www-authenticate"].to_str().unwrap().contains(why),
            "{:?}",
            h["www-authenticate"]
        );
    }
    // client_id stands in for a missing aud.
    let mut no_aud = with(json!({"client_id": "bench"}));
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        send(Some(token("test-rsa", no_aud))).await.0,
        StatusCode::OK
    );
    assert_eq!(send(None).await.0, StatusCode::UNAUTHORIZED);
    let (s, _, body) = send(Some(token(
        "test-rsa",
        with(json!({"scope": "orders.admin"})),
    )))
    .await;
    assert_eq!(
        (s, body),
        (StatusCode::FORBIDDEN, json!({"message": "Forbidden"}))
    );
    // An HS256 token is refused: only the configured (RSA) algorithms.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"x"),
    )
    .unwrap();
    assert_eq!(send(Some(hs)).await.0, StatusCode::UNAUTHORIZED);

    // Key rotation: an unknown kid fails until the issuer publishes it; the
    // gateway re-fetches on the unknown kid (refetch_interval 0 here).
    assert_eq!(
        send(Some(token("rotated", good.clone()))).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut jwks: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("jwks.json")).unwrap()).unwrap();
    let mut rotated = jwks["keys"][0].clone();
    rotated["kid"] = json!("rotated");
    jwks["keys"].as_array_mut().unwrap().push(rotated);
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    assert_eq!(send(Some(token("rotated", good))).await.0, StatusCode::OK);
}
