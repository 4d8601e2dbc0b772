//! Kong jwt + acl semantics, case by case (`docs/gateway-semantics.md` §1–2), through
//! a real gateway in front of the mock upstream's `/echo`, on 127.0.0.1:0.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mock_upstream::EchoDoc;
use serde_json::{Value, json};

use crate::support::{fixture, now};

fn indent(pem: &str) -> String {
    pem.lines()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) struct Env {
    _upstream: mock_upstream::Handle,
    upstream_url: String,
    gw: gateway::Handle,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.body))
    }
    pub(crate) fn echo(&self) -> EchoDoc {
        assert_eq!(self.status, StatusCode::OK, "{:?}", self.body);
        serde_json::from_slice(&self.body).unwrap()
    }
    pub(crate) fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

pub(crate) async fn env() -> Env {
    let upstream = mock_upstream::spawn(mock_upstream::Config::default())
        .await
        .unwrap();
    let upstream_url = upstream.base_url().to_owned();
    let config = format!(
        r#"
_format_version: "3.0"
services:
- name: echo
  url: {upstream_url}/echo
  routes:
  - name: api
    paths: ["/api"]
    plugins:
    - name: jwt
      config: {{ claims_to_verify: [exp, nbf] }}
  - name: lax
    paths: ["/lax"]
    plugins:
    - name: jwt
  - name: cookies
    paths: ["/cookies"]
    plugins:
    - name: jwt
      config: {{ cookie_names: [session], realm: kong }}
  - name: capped
    paths: ["/capped"]
    plugins:
    - name: jwt
      config: {{ claims_to_verify: [exp], maximum_expiration: 600 }}
  - name: anon
    paths: ["/anon"]
    plugins:
    - name: jwt
      config: {{ anonymous: guest }}
  - name: preflight
    paths: ["/preflight"]
    plugins:
    - name: jwt
      config: {{ run_on_preflight: false }}
  - name: admins
    paths: ["/admins"]
    plugins:
    - name: jwt
    - name: acl
      config: {{ allow: [admin] }}
  - name: not-banned
    paths: ["/not-banned"]
    plugins:
    - name: jwt
    - name: acl
      config: {{ deny: [banned], hide_groups_header: true }}
  - name: open
    paths: ["/open"]
- name: raw
  url: {upstream_url}
  routes:
  - name: raw
    paths: ["/raw"]
consumers:
- username: alice
  custom_id: c-1
  id: 11111111-1111-4111-8111-111111111111
  jwt_secrets:
  - key: alice-key
    secret: alice-secret
  acls:
  - group: pro
  - group: admin
- username: bob
  jwt_secrets:
  - key: bob-key
    algorithm: HS384
    secret: bob-secret
  - key: bob-rsa
    algorithm: RS256
    rsa_public_key: |
{rsa}
  - key: bob-ec
    algorithm: ES256
    rsa_public_key: |
{ec}
  - key: bob-ed
    algorithm: EdDSA
    rsa_public_key: |
{ed}
  - key: bob-es384
    algorithm: ES384
    rsa_public_key: |
{ec384}
  - key: es512-key
    algorithm: ES512
    rsa_public_key: |
{ec521}
  - key: ed448-key
    algorithm: EdDSA
    rsa_public_key: |
{ed448}
- username: guest
"#,
        rsa = indent(&fixture("rsa-public.pem")),
        ec = indent(&fixture("ec256-public.pem")),
        ed = indent(&fixture("ed25519-public.pem")),
        ec384 = indent(&fixture("ec384-public.pem")),
        ec521 = indent(&fixture("ec521-public.pem")),
        ed448 = indent(&fixture("ed448-public.pem")),
    );
    let snapshot = gateway::config::Declarative::parse(&config, "test.yml")
        .unwrap()
        .compile()
        .unwrap();
    let gw = gateway::spawn(snapshot, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http();
    Env {
        _upstream: upstream,
        upstream_url,
        gw,
        client,
    }
}

impl Env {
    pub(crate) async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send_to(&self.gw.proxy_url(), method, path, headers)
            .await
    }

    async fn send_to(
        &self,
        base: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .client
            .request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub(crate) async fn with_token(&self, path: &str, token: &str) -> Resp {
        self.send(
            "GET",
            path,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }
}

fn hs(alg: Algorithm, secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn alice(extra: Value) -> String {
    let mut claims = json!({"iss": "alice-key", "exp": now() + 300, "nbf": now() - 5});
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    hs(Algorithm::HS256, "alice-secret", claims)
}

/// Forges a token from raw JSON parts (for malformed cases).
fn raw(header: &str, payload: &str, sig: &str) -> String {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.{sig}", e.encode(header), e.encode(payload))
}

#[tokio::test]
async fn valid_token_reaches_the_upstream_with_consumer_headers() {
    let env = env().await;
    let token = alice(json!({}));
    let r = env.with_token("/api/orders/1?x=1", &token).await;
    let echo = r.echo();
    assert_eq!(echo.path, "/echo/orders/1");
    assert_eq!(echo.query.as_deref(), Some("x=1"));
    let h = &echo.headers;
    assert_eq!(h["x-consumer-id"], "11111111-1111-4111-8111-111111111111");
    assert_eq!(h["x-consumer-username"], "alice");
    assert_eq!(h["x-consumer-custom-id"], "c-1");
    assert_eq!(h["x-credential-identifier"], "alice-key");
    assert_eq!(
        h["authorization"],
        format!("Bearer {token}"),
        "the token is forwarded unchanged"
    );
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert!(!h.contains_key("x-anonymous-consumer"));
    assert_eq!(h["host"], env.upstream_url.trim_start_matches("http://"));
}

#[tokio::test]
async fn client_sent_consumer_headers_are_replaced_or_cleared() {
    let env = env().await;
    let token = hs(Algorithm::HS384, "bob-secret", json!({"iss": "bob-key"}));
    let r = env
        .send(
            "GET",
            "/lax",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-consumer-custom-id", "forged"),
                ("x-consumer-username", "root"),
            ],
        )
        .await;
    let h = r.echo().headers;
    assert_eq!(h["x-consumer-username"], "bob");
    assert!(
        !h.contains_key("x-consumer-custom-id"),
        "bob has no custom_id: cleared"
    );
}

#[tokio::test]
async fn no_token_multiple_tokens_and_bearer_variants() {
    let env = env().await;
    let r = env.send("GET", "/api", &[]).await;
    assert_eq!(
        (r.status, r.body.as_ref()),
        (
            StatusCode::UNAUTHORIZED,
            &br#"{"message":"Unauthorized"}"#[..]
        )
    );
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert_eq!(r.headers["content-type"], "application/json; charset=utf-8");

    let t = alice(json!({}));
    let t2 = alice(json!({"jti": "other"}));
    let r = env
        .send(
            "GET",
            &format!("/api?jwt={t2}"),
            &[("authorization", &format!("Bearer {t}"))],
        )
        .await;
    assert_eq!(
        (r.status, r.message()),
        (StatusCode::UNAUTHORIZED, "Multiple tokens provided".into())
    );
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    // The same token in two places is one token.
    assert_eq!(
        env.send(
            "GET",
            &format!("/api?jwt={t}"),
            &[("authorization", &format!("Bearer {t}"))]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        env.send("GET", &format!("/api?jwt={t}"), &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.send(
            "GET",
            "/api",
            &[("authorization", &format!("bearer   {t}"))]
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = env
        .send("GET", "/api", &[("authorization", &format!("BEARER {t}"))])
        .await;
    assert_eq!(
        (r.status, r.message()),
        (StatusCode::UNAUTHORIZED, "Unauthorized".into())
    );
}

#[tokio::test]
async fn cookies_and_realm() {
    let env = env().await;
    let t = alice(json!({}));
    assert_eq!(
        env.send(
            "GET",
            "/cookies",
            &[("cookie", &format!("a=1; session={t}"))]
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = env.send("GET", "/cookies", &[]).await;
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"kong\"");
    let r = env
        .send("GET", "/cookies", &[("cookie", "session=a.b")])
        .await;
    assert_eq!(
        r.headers["www-authenticate"], "Bearer realm=\"kong\" error=\"invalid_token\"",
        "3.9.3 uses a space"
    );
}

#[tokio::test]
async fn malformed_tokens_in_kongs_order() {
    let env = env().await;
    let cases = [
        ("a.b".to_owned(), "Bad token; invalid JSON"),
        ("!!!.e30.sig".to_owned(), "Bad token; invalid JSON"),
        (raw("{not json", "{}", "sig"), "Bad token; invalid JSON"),
        (
            raw(r#"{"alg":"none"}"#, r#"{"iss":"alice-key"}"#, "sig"),
            "Bad token; invalid alg",
        ),
        (
            raw(r#"{"alg":"hs256"}"#, r#"{"iss":"alice-key"}"#, "sig"),
            "Bad token; invalid alg",
        ),
        (
            raw(r#"{"alg":"HS256"}"#, r#"{"iss":"alice-key"}"#, "si+g/"),
            "Bad token; invalid signature",
        ),
        (
            raw(r#"{"alg":"HS256"}"#, r#"{"sub":"x"}"#, "c2ln"),
            "No mandatory 'iss' in claims",
        ),
        (
            raw(r#"{"alg":"HS256"}"#, r#"{"iss":""}"#, "c2ln"),
            "Invalid 'iss' in claims",
        ),
        (
            raw(r#"{"alg":"HS256"}"#, r#"{"iss":"nobody"}"#, "c2ln"),
            "No credentials found for given 'iss'",
        ),
        (
            hs(
                Algorithm::HS512,
                "alice-secret",
                json!({"iss": "alice-key"}),
            ),
            "Invalid algorithm",
        ),
        (
            hs(
                Algorithm::HS256,
                "wrong-secret",
                json!({"iss": "alice-key", "exp": 1}),
            ),
            "Invalid signature",
        ),
    ];
    for (token, want) in cases {
        let r = env.with_token("/api", &token).await;
        assert_eq!(
            (r.status, r.message()),
            (StatusCode::UNAUTHORIZED, want.to_owned()),
            "{token}"
        );
        assert_eq!(
            r.headers["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }
    // The key claim may sit in the JOSE header.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = None;
    let t = jsonwebtoken::encode(
        &header,
        &json!({"sub": "x"}),
        &EncodingKey::from_secret(b"alice-secret"),
    )
    .unwrap();
    let forged = {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let h = e.encode(r#"{"alg":"HS256","iss":"alice-key"}"#);
        let p = t.split('.').nth(1).unwrap();
        let sig = jsonwebtoken::crypto::sign(
            format!("{h}.{p}").as_bytes(),
            &EncodingKey::from_secret(b"alice-secret"),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{h}.{p}.{sig}")
    };
    assert_eq!(env.with_token("/lax", &forged).await.status, StatusCode::OK);
}

#[tokio::test]
async fn exp_and_nbf_only_when_configured() {
    let env = env().await;
    let expired = alice(json!({"exp": now() - 10}));
    let r = env.with_token("/api", &expired).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::UNAUTHORIZED, json!({"exp": "token expired"}))
    );
    assert_eq!(
        env.with_token("/lax", &expired).await.status,
        StatusCode::OK,
        "claims_to_verify is off by default"
    );
    let early = alice(json!({"nbf": now() + 60}));
    assert_eq!(
        env.with_token("/api", &early).await.json(),
        json!({"nbf": "token not valid yet"})
    );
    let words = hs(
        Algorithm::HS256,
        "alice-secret",
        json!({"iss": "alice-key", "exp": "soon"}),
    );
    assert_eq!(
        env.with_token("/api", &words).await.json(),
        json!({"exp": "must be a number", "nbf": "must be a number"})
    );
    let far = alice(json!({"exp": now() + 3600}));
    assert_eq!(
        env.with_token("/capped", &far).await.json(),
        json!({"exp": "exceeds maximum allowed expiration"})
    );
    assert_eq!(
        env.with_token("/capped", &alice(json!({}))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn asymmetric_algorithms_verify() {
    let env = env().await;
    let claims = |iss: &str| json!({"iss": iss, "exp": now() + 60});
    let rsa = EncodingKey::from_rsa_pem(fixture("rsa-private.pem").as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(fixture("ec256-private.pem").as_bytes()).unwrap();
    let ed = EncodingKey::from_ed_pem(fixture("ed25519-private.pem").as_bytes()).unwrap();
    let ec384 = EncodingKey::from_ec_pem(fixture("ec384-private.pem").as_bytes()).unwrap();
    for (alg, key, iss) in [
        (Algorithm::RS256, &rsa, "bob-rsa"),
        (Algorithm::ES256, &ec, "bob-ec"),
        (Algorithm::ES384, &ec384, "bob-es384"),
        (Algorithm::EdDSA, &ed, "bob-ed"),
    ] {
        let t = jsonwebtoken::encode(&Header::new(alg), &claims(iss), key).unwrap();
        assert_eq!(
            env.with_token("/lax", &t).await.echo().headers["x-credential-identifier"],
            iss
        );
        // alg-confusion: HS256 signed with the public key as the secret.
        let confused = hs(Algorithm::HS256, &fixture("rsa-public.pem"), claims(iss));
        assert_eq!(
            env.with_token("/lax", &confused).await.message(),
            "Invalid algorithm"
        );
    }
    // A wrong-length ES256 signature trips Kong's assert: 500, not 401.
    let es = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims("bob-ec"), &ec).unwrap();
    let (head, _) = es.rsplit_once('.').unwrap();
    let short = format!("{head}.{}", "A".repeat(40));
    assert_eq!(
        env.with_token("/lax", &short).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let wrong = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims("bob-rsa"),
        &EncodingKey::from_rsa_pem(fixture("rsa-private.pem").as_bytes()).unwrap(),
    )
    .unwrap()
    .replace('.', ".x");
    assert_eq!(
        env.with_token("/lax", &wrong).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn anonymous_and_preflight() {
    let env = env().await;
    let r = env.send("GET", "/anon", &[]).await;
    let h = r.echo().headers;
    assert_eq!(h["x-anonymous-consumer"], "true");
    assert_eq!(h["x-consumer-username"], "guest");
    assert!(!h.contains_key("x-credential-identifier"));
    let h = env
        .with_token("/anon", &alice(json!({})))
        .await
        .echo()
        .headers;
    assert_eq!(h["x-consumer-username"], "alice");
    assert_eq!(
        env.send("OPTIONS", "/preflight", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.send("GET", "/preflight", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        env.send("OPTIONS", "/api", &[]).await.status,
        StatusCode::UNAUTHORIZED,
        "run_on_preflight defaults to true"
    );
}

#[tokio::test]
async fn acl_allow_deny_and_groups_header() {
    let env = env().await;
    let alice = alice(json!({}));
    let bob = hs(Algorithm::HS384, "bob-secret", json!({"iss": "bob-key"}));
    assert_eq!(
        env.with_token("/admins", &alice).await.echo().headers["x-consumer-groups"],
        "pro, admin"
    );
    let r = env.with_token("/admins", &bob).await;
    assert_eq!(
        (r.status, r.message()),
        (
            StatusCode::FORBIDDEN,
            "You cannot consume this service".into()
        )
    );
    assert!(r.json()["request_id"].is_string());
    assert!(r.headers.get("www-authenticate").is_none());
    let h = env.with_token("/not-banned", &bob).await.echo().headers;
    assert!(!h.contains_key("x-consumer-groups"), "hide_groups_header");
    assert_eq!(
        env.send("GET", "/admins", &[]).await.status,
        StatusCode::UNAUTHORIZED,
        "jwt runs first"
    );
}

#[tokio::test]
async fn routing_and_transparency() {
    let env = env().await;
    let r = env.send("GET", "/nowhere", &[]).await;
    assert_eq!(
        (r.status, r.message()),
        (
            StatusCode::NOT_FOUND,
            "no Route matched with those values".into()
        )
    );
    // The same request directly and through a plugin-less route: the upstream sees the same request.
    let direct = env
        .send_to(
            &env.upstream_url,
            "GET",
            "/echo/a?b=c",
            &[("x-custom", "1")],
        )
        .await
        .echo();
    let via = env
        .send("GET", "/open/a?b=c", &[("x-custom", "1")])
        .await
        .echo();
    assert_eq!(
        (via.method, via.path, via.query, via.body_length),
        (direct.method, direct.path, direct.query, direct.body_length)
    );
    assert_eq!(via.headers["x-custom"], direct.headers["x-custom"]);
    assert!(
        via.headers.contains_key("x-forwarded-for")
            && !direct.headers.contains_key("x-forwarded-for")
    );
}

#[tokio::test]
async fn config_errors_name_entity_and_field() {
    let bad = [
        (
            "_format_version: \"3.0\"\nconsumers:\n- tags: []\n",
            "consumers[0]: @entity: at least one of these fields must be non-empty",
        ),
        (
            "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://x\n  routes:\n  - name: r\n    paths: [\"/a\"]\n    plugins:\n    - name: acl\n      config: {allow: [a], deny: [b]}\n",
            "exactly one of these fields",
        ),
        (
            "_format_version: \"3.0\"\nconsumers:\n- username: a\n  jwt_secrets:\n  - key: k\n    algorithm: RS256\n",
            "rsa_public_key: required field missing",
        ),
        (
            "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://x\n  bogus: 1\n",
            "unknown field `bogus`",
        ),
        (
            "_format_version: \"3.0\"\nplugins:\n- name: rate-limiting\n",
            "plugin 'rate-limiting' not enabled",
        ),
    ];
    for (text, want) in bad {
        let err = gateway::config::Declarative::parse(text, "kong.yml")
            .and_then(|d| d.compile())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    }
}

#[tokio::test]
async fn transparency_cases_agree_direct_and_through_the_gateway() {
    let env = env().await;
    // Just under the 8 KiB header line (name, ": " and value).
    let big = "x".repeat(8_000);
    // (method, path after the prefix, headers)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/a?b=c&d=%20e", vec![("x-custom", "1")]),
        ("DELETE", "/items/7", vec![]),
        ("PUT", "/p", vec![("x-mock-status", "201")]),
        ("GET", "/sized", vec![("x-mock-size", "100KiB")]),
        (
            "GET",
            "/fail",
            vec![
                ("x-mock-status", "503"),
                ("x-mock-header", "Retry-After: 3"),
            ],
        ),
        ("POST", "/with-body", vec![("x-big", big.as_str())]),
    ];
    for (method, rest, headers) in cases {
        for (direct_prefix, via_prefix) in [("/echo", "/open"), ("", "/raw")] {
            let direct = env
                .send_to(
                    &env.upstream_url,
                    method,
                    &format!("{direct_prefix}{rest}"),
                    &headers,
                )
                .await;
            let via = env
                .send(method, &format!("{via_prefix}{rest}"), &headers)
                .await;
            let what = format!("{method} {via_prefix}{rest}");
            assert_eq!(via.status, direct.status, "{what}");
            assert_eq!(
                via.headers.get("content-type"),
                direct.headers.get("content-type"),
                "{what}"
            );
            assert_eq!(
                via.headers.get("retry-after"),
                direct.headers.get("retry-after"),
                "{what}"
            );
            assert!(
                via.headers.contains_key("server-timing"),
                "{what}: upstream headers pass through"
            );
            if direct_prefix == "/echo" {
                let (d, v): (EchoDoc, EchoDoc) = (
                    serde_json::from_slice(&direct.body).unwrap(),
                    serde_json::from_slice(&via.body).unwrap(),
                );
                assert_eq!(
                    (&v.method, &v.path, &v.query, v.body_length),
                    (&d.method, &d.path, &d.query, d.body_length),
                    "{what}"
                );
                for (k, _) in &headers {
                    assert_eq!(v.headers.get(*k), d.headers.get(*k), "{what}: {k}");
                }
            } else {
                assert_eq!(via.body, direct.body, "{what}");
            }
        }
    }
}
