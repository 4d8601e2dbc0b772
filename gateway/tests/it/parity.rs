//! Kong 3.9.3 parity beyond the basics: every credential algorithm
//! Kong verifies, the top-level `/jwts` and `/acls` Admin API shapes, the
//! valueless `?jwt`, and Kong's exact field messages and bodies.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::admin::{call, env as admin_env, token};
use crate::semantics::env;
use crate::support::fixture;

/// ES512 and EdDSA over Ed448, signed by OpenSSL (Kong's verifier), pass;
/// the same tokens with one signature byte changed do not.
#[tokio::test]
async fn es512_and_ed448_verify() {
    let env = env().await;
    for (file, key, sig_len) in [
        ("ec521-token.jwt", "es512-key", 132),
        ("ed448-token.jwt", "ed448-key", 114),
    ] {
        let t = fixture(file).trim().to_owned();
        let r = env.with_token("/lax", &t).await;
        assert_eq!(r.echo().headers["x-credential-identifier"], key, "{file}");
        // Flip one bit of the signature's first byte.
        let (head, sig) = t.rsplit_once('.').unwrap();
        let mut raw = base64_url(sig);
        assert_eq!(raw.len(), sig_len);
        raw[0] ^= 1;
        let bad = format!("{head}.{}", b64(&raw));
        assert_eq!(
            env.with_token("/lax", &bad).await.message(),
            "Invalid signature",
            "{file}"
        );
    }
    // Kong asserts #sig == 132 for ES512: a short one is a 500.
    let t = fixture("ec521-token.jwt").trim().to_owned();
    let (head, _) = t.rsplit_once('.').unwrap();
    let short = format!("{head}.{}", b64(&[7u8; 64]));
    assert_eq!(
        env.with_token("/lax", &short).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // An Ed25519 signature against the Ed448 credential: just invalid.
    let ed25519 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &json!({"iss": "ed448-key"}),
        &jsonwebtoken::EncodingKey::from_ed_pem(fixture("ed25519-private.pem").as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        env.with_token("/lax", &ed25519).await.message(),
        "Invalid signature"
    );
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// `?jwt` with no value is Kong's `true`: `Unrecognizable token`, with the
/// invalid_token challenge; beside a real token it is a second token.
#[tokio::test]
async fn valueless_jwt_query_arg() {
    let env = env().await;
    let r = env.send("GET", "/api?jwt", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body.as_ref(), br#"{"message":"Unrecognizable token"}"#);
    assert_eq!(
        r.headers["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    let r = env
        .send("GET", "/api?jwt&x=1", &[("authorization", "Bearer a.b.c")])
        .await;
    assert_eq!(r.message(), "Multiple tokens provided");
    // An empty value is no token at all.
    let r = env.send("GET", "/api?jwt=", &[]).await;
    assert_eq!(r.message(), "Unauthorized");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
}

/// A key Kong's DAO would refuse, and one that could never verify, are both
/// `invalid key`, at the Admin API and in a config file.
#[tokio::test]
async fn invalid_keys_are_kongs_field_error() {
    let env = admin_env().await;
    let (c, a) = (&env.c, &env.admin);
    let (s, _) = call(
        c,
        "POST",
        format!("{a}/consumers"),
        Some(json!({"username": "k"})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let cases = [
        ("RS256", "not a pem".to_owned()),
        ("ES512", fixture("ec256-public.pem")),
        ("ES256", fixture("ec521-public.pem")),
        ("EdDSA", fixture("rsa-public.pem")),
        ("RS256", fixture("ed448-public.pem")),
    ];
    for (alg, pem) in cases {
        let (s, v) = call(
            c,
            "POST",
            format!("{a}/consumers/k/jwt"),
            Some(json!({"algorithm": alg, "rsa_public_key": pem})),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{alg}: {v}");
        assert_eq!(v["fields"]["rsa_public_key"], "invalid key", "{alg}: {v}");
        assert_eq!(v["name"], "schema violation");
    }
    for (alg, pem) in [
        ("ES512", "ec521-public.pem"),
        ("EdDSA", "ed448-public.pem"),
        ("EdDSA", "ed25519-public.pem"),
        ("ES384", "ec384-public.pem"),
    ] {
        let (s, v) = call(
            c,
            "POST",
            format!("{a}/consumers/k/jwt"),
            Some(json!({"algorithm": alg, "rsa_public_key": fixture(pem)})),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{alg} {pem}: {v}");
    }
    // An empty JSON body on a write: Kong's parse_params.
    let req = http::Request::post(format!("{a}/consumers"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), br#"{"message":"Cannot parse JSON body"}"#);
    // ...but a GET with that content type and no body is just a GET.
    let req = http::Request::get(format!("{a}/consumers"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(c.request(req).await.unwrap().status(), StatusCode::OK);
}

/// `/jwts` and `/acls` with the consumer in the body, and `…/{id}/consumer`.
#[tokio::test]
async fn top_level_credential_endpoints() {
    let env = admin_env().await;
    let (c, a) = (&env.c, &env.admin);
    let (_, alice) = call(
        c,
        "POST",
        format!("{a}/consumers"),
        Some(json!({"username": "alice"})),
        &[],
    )
    .await;
    let (_, bob) = call(
        c,
        "POST",
        format!("{a}/consumers"),
        Some(json!({"username": "bob"})),
        &[],
    )
    .await;
    let (alice_id, bob_id) = (alice["id"].as_str().unwrap(), bob["id"].as_str().unwrap());

    // No consumer: Kong's exact schema violation.
    let (s, v) = call(
        c,
        "POST",
        format!("{a}/jwts"),
        Some(json!({"key": "k1"})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v,
        json!({"code": 2, "name": "schema violation",
               "message": "schema violation (consumer: required field missing)",
               "fields": {"consumer": "required field missing"}})
    );
    let (s, v) = call(
        c,
        "PUT",
        format!("{a}/jwts/k1"),
        Some(json!({"secret": "s"})),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("schema violation (consumer: required field missing)")
        )
    );
    // An unknown consumer: a foreign key violation.
    let ghost = "00000000-0000-4000-8000-000000000000";
    let (s, v) = call(
        c,
        "POST",
        format!("{a}/jwts"),
        Some(json!({"key": "k1", "consumer": {"id": ghost}})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["name"], "foreign key violation");
    assert_eq!(v["fields"], json!({"consumer": {"id": ghost}}));

    // Create at the top level; it is alice's everywhere, and it works at the proxy.
    let (s, v) = call(
        c,
        "POST",
        format!("{a}/jwts"),
        Some(json!({"key": "k1", "secret": "s1", "consumer": {"id": alice_id}})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["consumer"]["id"], alice_id);
    let jwt_id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = call(c, "GET", format!("{a}/consumers/alice/jwt/k1"), None, &[]).await;
    assert_eq!(
        (s, v["id"].as_str()),
        (StatusCode::OK, Some(jwt_id.as_str()))
    );
    let proxied = |t: String| {
        let url = format!("{}/api", env.gw.proxy_url());
        async move {
            call(
                c,
                "GET",
                url,
                None,
                &[("authorization", &format!("Bearer {t}"))],
            )
            .await
        }
    };
    let (s, echo) = proxied(token("k1", "s1")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(echo["headers"]["x-consumer-username"], "alice");

    // The owner, by key and by id.
    for k in ["k1", jwt_id.as_str()] {
        let (s, v) = call(c, "GET", format!("{a}/jwts/{k}/consumer"), None, &[]).await;
        assert_eq!((s, v["username"].as_str()), (StatusCode::OK, Some("alice")));
        let (s, v) = call(c, "GET", format!("{a}/jwts/{k}"), None, &[]).await;
        assert_eq!((s, v["key"].as_str()), (StatusCode::OK, Some("k1")));
    }
    let (s, _) = call(c, "GET", format!("{a}/jwts/nope/consumer"), None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // PUT: creates with the URL's key (200), and moves a credential between consumers.
    let (s, v) = call(
        c,
        "PUT",
        format!("{a}/jwts/k2"),
        Some(json!({"secret": "s2", "consumer": {"id": bob_id}})),
        &[],
    )
    .await;
    assert_eq!((s, v["key"].as_str()), (StatusCode::OK, Some("k2")), "{v}");
    let (s, v) = call(
        c,
        "PATCH",
        format!("{a}/jwts/k1"),
        Some(json!({"consumer": {"id": bob_id}})),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["consumer"]["id"].as_str()),
        (StatusCode::OK, Some(bob_id)),
        "{v}"
    );
    let (_, echo) = proxied(token("k1", "s1")).await;
    assert_eq!(echo["headers"]["x-consumer-username"], "bob");
    let (_, v) = call(c, "GET", format!("{a}/consumers/alice/jwt"), None, &[]).await;
    assert_eq!(v["data"], json!([]));
    // A form body names the consumer as `consumer.id`.
    let req = http::Request::post(format!("{a}/jwts"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(format!(
            "key=k3&consumer.id={alice_id}"
        ))))
        .unwrap();
    assert_eq!(c.request(req).await.unwrap().status(), StatusCode::CREATED);
    // DELETE revokes at the next request.
    let (s, _) = call(c, "DELETE", format!("{a}/jwts/k1"), None, &[]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = proxied(token("k1", "s1")).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("No credentials found for given 'iss'")
        )
    );

    // ACLs: the same shapes; an ACL is named by its id at the top level.
    let (s, v) = call(
        c,
        "POST",
        format!("{a}/acls"),
        Some(json!({"group": "admin"})),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("schema violation (consumer: required field missing)")
        )
    );
    let (s, v) = call(
        c,
        "POST",
        format!("{a}/acls"),
        Some(json!({"group": "admin", "consumer": {"id": alice_id}})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let acl_id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = call(c, "GET", format!("{a}/acls/{acl_id}/consumer"), None, &[]).await;
    assert_eq!((s, v["username"].as_str()), (StatusCode::OK, Some("alice")));
    let (s, _) = call(c, "GET", format!("{a}/acls/admin"), None, &[]).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "a group is not an ACL's top-level name"
    );
    let new_acl = "11111111-2222-4333-8444-555555555555";
    let (s, v) = call(
        c,
        "PUT",
        format!("{a}/acls/{new_acl}"),
        Some(json!({"group": "pro", "consumer": {"id": bob_id}})),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["id"].as_str(), v["group"].as_str()),
        (StatusCode::OK, Some(new_acl), Some("pro")),
        "{v}"
    );
    let (s, v) = call(
        c,
        "PUT",
        format!("{a}/acls/{ghost}"),
        Some(json!({"consumer": {"id": bob_id}})),
        &[],
    )
    .await;
    assert_eq!(
        (s, &v["fields"]),
        (
            StatusCode::BAD_REQUEST,
            &json!({"group": "required field missing"})
        )
    );
    let (_, v) = call(c, "GET", format!("{a}/acls"), None, &[]).await;
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    let (s, _) = call(c, "DELETE", format!("{a}/acls/{acl_id}"), None, &[]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v): (StatusCode, Value) =
        call(c, "GET", format!("{a}/consumers/alice/acls"), None, &[]).await;
    assert_eq!(v["data"], json!([]));
}

/// A declarative file's plugin and credential errors at load: the entity,
/// Kong's field path and Kong's message.
#[test]
fn config_errors_carry_kongs_field_messages() {
    let load = |plugins: &str, secrets: &str| {
        let text = format!(
            "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://127.0.0.1:9\n  routes:\n  - name: r\n    paths: [\"/\"]\n    plugins:\n{plugins}\nconsumers:\n- username: u\n  jwt_secrets:\n{secrets}\n"
        );
        gateway::config::Declarative::parse(&text, "kong.yml")
            .and_then(|d| d.compile())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let ok_secret = "  - key: k\n    secret: s";
    for (plugin, want) in [
        (
            "    - name: jwt\n      config: { maximum_expiration: -1 }",
            "config.maximum_expiration: value should be between 0 and 31536000",
        ),
        (
            "    - name: jwt\n      config: { claims_to_verify: [iat] }",
            "config.claims_to_verify: expected one of: exp, nbf",
        ),
        (
            "    - name: jwt\n      config: { maximum_expiration: 60 }",
            "config.claims_to_verify: expected to contain: exp",
        ),
        (
            "    - name: jwt\n      config: { key_claim_name: [iss] }",
            "config.key_claim_name: expected a string",
        ),
        (
            "    - name: jwt\n      config: { uri_param_names: jwt }",
            "config.uri_param_names: expected a set",
        ),
        (
            "    - name: jwt\n      config: { cookie_names: [1] }",
            "config.cookie_names: expected a string",
        ),
        (
            "    - name: jwt\n      config: { header_names: 7 }",
            "config.header_names: expected a set",
        ),
        (
            "    - name: jwt\n    - name: acl\n      config: { allow: [a], deny: [b] }",
            "@entity: exactly one of these fields must be non-empty: 'config.allow', 'config.deny'",
        ),
        (
            "    - name: jwt\n    - name: acl\n      config: {}",
            "@entity: at least one of these fields must be non-empty: 'config.allow', 'config.deny'",
        ),
    ] {
        let e = load(plugin, ok_secret).unwrap_err();
        assert!(e.ends_with(want), "{plugin}\n got: {e}\nwant: …{want}");
        assert!(e.contains("plugins["), "names the plugin entity: {e}");
    }
    let pem = |f: &str| {
        fixture(f)
            .lines()
            .map(|l| format!("      {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mixed = format!(
        "  - key: es512\n    algorithm: ES512\n    rsa_public_key: |\n{}\n  - key: ed448\n    algorithm: EdDSA\n    rsa_public_key: |\n{}",
        pem("ec521-public.pem"),
        pem("ed448-public.pem")
    );
    load("    - name: jwt", &mixed).expect("ES512 and Ed448 credentials load");
    let wrong = format!(
        "  - key: es512\n    algorithm: ES512\n    rsa_public_key: |\n{}",
        pem("ec256-public.pem")
    );
    let e = load("    - name: jwt", &wrong).unwrap_err();
    assert!(e.ends_with("rsa_public_key: invalid key"), "{e}");
}
