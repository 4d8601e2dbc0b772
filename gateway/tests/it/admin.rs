//! The Admin API: Kong's statuses and bodies, changes seen by the very next
//! proxied request, persistence across a restart.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub(crate) type C = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub(crate) async fn call(
    c: &C,
    method: &str,
    url: String,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Full::new(Bytes::from(v.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = c.request(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn config(upstream: &str) -> gateway::config::Declarative {
    let text = format!(
        r#"
_format_version: "3.0"
services:
- name: echo
  url: {upstream}/echo
  routes:
  - name: api
    paths: ["/api"]
    plugins:
    - name: jwt
  - name: admins
    paths: ["/admins"]
    plugins:
    - name: jwt
    - name: acl
      config: {{ allow: [admin] }}
"#
    );
    gateway::config::Declarative::parse(&text, "admin.yml").unwrap()
}

async fn start(upstream: &str, state: &std::path::Path) -> gateway::Handle {
    gateway::start(gateway::Options {
        config: config(upstream),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        state_file: Some(state.to_path_buf()),
        tls: None,
        limits: gateway::limits(),
        admin_apply_delay: std::time::Duration::ZERO,
        core: gateway::Core::default(),
    })
    .await
    .unwrap()
}

/// A mock upstream, a gateway with its Admin API and state file in a temp
/// dir, and a client: what every Admin API test starts from.
pub(crate) struct Env {
    _upstream: mock_upstream::Handle,
    _dir: tempfile::TempDir,
    pub(crate) gw: gateway::Handle,
    pub(crate) c: C,
    pub(crate) admin: String,
}

pub(crate) async fn env() -> Env {
    let upstream = mock_upstream::spawn(mock_upstream::Config::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(upstream.base_url(), &dir.path().join("s.json")).await;
    let c: C = Client::builder(TokioExecutor::new()).build_http();
    let admin = format!("http://{}", gw.admin_addr().unwrap());
    Env {
        _upstream: upstream,
        _dir: dir,
        gw,
        c,
        admin,
    }
}

pub(crate) fn token(iss: &str, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"iss": iss}),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// What a step checks in the answer's JSON (pointers into the body).
enum Check {
    Eq(&'static str, Value),
    /// The string or array at the pointer has this length.
    Len(&'static str, usize),
    /// Equals alice's id (as created by the first step).
    AliceId(&'static str),
}

/// One Admin API or proxy call and what must come back.
struct Step {
    what: &'static str,
    method: &'static str,
    /// Sent to the proxy (with alice's token) instead of the Admin API.
    proxy: bool,
    path: &'static str,
    body: Option<Value>,
    status: StatusCode,
    checks: Vec<Check>,
}

fn admin(
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    status: StatusCode,
    checks: Vec<Check>,
) -> Step {
    Step {
        what,
        method,
        proxy: false,
        path,
        body,
        status,
        checks,
    }
}

fn proxied(what: &'static str, path: &'static str, status: StatusCode, checks: Vec<Check>) -> Step {
    Step {
        what,
        method: "GET",
        proxy: true,
        path,
        body: None,
        status,
        checks,
    }
}

/// Runs `steps` in order against a gateway; every failure names its step.
async fn run_steps(c: &C, gw: &gateway::Handle, bearer: &str, alice: &Value, steps: &[Step]) {
    let (admin_url, proxy_url) = (
        format!("http://{}", gw.admin_addr().unwrap()),
        gw.proxy_url(),
    );
    for st in steps {
        let (base, headers) = if st.proxy {
            (&proxy_url, vec![("authorization", bearer)])
        } else {
            (&admin_url, vec![])
        };
        let (status, body) = call(
            c,
            st.method,
            format!("{base}{}", st.path),
            st.body.clone(),
            &headers,
        )
        .await;
        assert_eq!(status, st.status, "{}: {body}", st.what);
        for check in &st.checks {
            match check {
                Check::Eq(ptr, want) => assert_eq!(
                    &body.pointer(ptr).cloned().unwrap_or(Value::Null),
                    want,
                    "{}: {ptr} in {body}",
                    st.what
                ),
                Check::Len(ptr, n) => {
                    let v = body.pointer(ptr).unwrap_or(&Value::Null);
                    let len = v
                        .as_str()
                        .map(str::len)
                        .or_else(|| v.as_array().map(Vec::len));
                    assert_eq!(len, Some(*n), "{}: {ptr} in {body}", st.what);
                }
                Check::AliceId(ptr) => {
                    assert_eq!(body.pointer(ptr), Some(&alice["id"]), "{}: {ptr}", st.what)
                }
            }
        }
    }
}

#[tokio::test]
async fn create_use_revoke_and_persist() {
    use Check::{AliceId, Eq, Len};
    use StatusCode as S;
    let upstream = mock_upstream::spawn(mock_upstream::Config::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let gw = start(upstream.base_url(), &state).await;
    let c: C = Client::builder(TokioExecutor::new()).build_http();
    let (s, alice) = call(
        &c,
        "POST",
        format!("http://{}/consumers", gw.admin_addr().unwrap()),
        Some(json!({"username": "alice", "custom_id": "c-1"})),
        &[],
    )
    .await;
    assert_eq!((s, alice["username"].clone()), (S::CREATED, json!("alice")));
    let bearer = format!("Bearer {}", token("alice-key", "s3cret"));
    let unique = "UNIQUE violation detected on '{username=\"alice\"}'";
    let created = [
        // Consumers: 409 on a duplicate, 400 without username or custom_id, 404 unknown.
        admin(
            "duplicate consumer",
            "POST",
            "/consumers",
            Some(json!({"username": "alice"})),
            S::CONFLICT,
            vec![Eq("/code", json!(5)), Eq("/message", json!(unique))],
        ),
        admin(
            "consumer without a name",
            "POST",
            "/consumers",
            Some(json!({"tags": ["x"]})),
            S::BAD_REQUEST,
            vec![Eq("/name", json!("schema violation"))],
        ),
        admin(
            "unknown consumer",
            "GET",
            "/consumers/nobody",
            None,
            S::NOT_FOUND,
            vec![],
        ),
        admin(
            "consumer by name",
            "GET",
            "/consumers/alice",
            None,
            S::OK,
            vec![AliceId("/id")],
        ),
        // A credential: the very next request is accepted.
        admin(
            "credential",
            "POST",
            "/consumers/alice/jwt",
            Some(json!({"key": "alice-key", "secret": "s3cret"})),
            S::CREATED,
            vec![Eq("/algorithm", json!("HS256")), AliceId("/consumer/id")],
        ),
        proxied(
            "accepted at once",
            "/api",
            S::OK,
            vec![Eq("/headers/x-consumer-username", json!("alice"))],
        ),
        // Generated key and secret, Kong-style.
        admin(
            "generated credential",
            "POST",
            "/consumers/alice/jwt",
            Some(json!({})),
            S::CREATED,
            vec![Len("/key", 32), Len("/secret", 32)],
        ),
        admin(
            "RS256 without a key",
            "POST",
            "/consumers/alice/jwt",
            Some(json!({"algorithm": "RS256"})),
            S::BAD_REQUEST,
            vec![Eq(
                "/fields/rsa_public_key",
                json!("required field missing"),
            )],
        ),
        admin(
            "duplicate key",
            "POST",
            "/consumers/alice/jwt",
            Some(json!({"key": "alice-key"})),
            S::CONFLICT,
            vec![],
        ),
        admin(
            "all credentials",
            "GET",
            "/jwts",
            None,
            S::OK,
            vec![Len("/data", 2)],
        ),
        // ACL groups take effect at once too.
        proxied("not yet in the group", "/admins", S::FORBIDDEN, vec![]),
        admin(
            "group",
            "POST",
            "/consumers/alice/acls",
            Some(json!({"group": "admin"})),
            S::CREATED,
            vec![Eq("/group", json!("admin"))],
        ),
        admin(
            "duplicate group",
            "POST",
            "/consumers/alice/acls",
            Some(json!({"group": "admin"})),
            S::CONFLICT,
            vec![],
        ),
        admin(
            "group missing",
            "POST",
            "/consumers/alice/acls",
            Some(json!({})),
            S::BAD_REQUEST,
            vec![Eq("/fields/group", json!("required field missing"))],
        ),
        proxied("in the group", "/admins", S::OK, vec![]),
    ];
    run_steps(&c, &gw, &bearer, &alice, &created).await;

    // Persistence: a restart on the same state file keeps consumer, credential and group.
    gw.shutdown().await;
    let gw = start(upstream.base_url(), &state).await;
    let restarted = [
        admin(
            "ids are stable",
            "GET",
            "/consumers/alice",
            None,
            S::OK,
            vec![AliceId("/id")],
        ),
        proxied(
            "group kept",
            "/admins",
            S::OK,
            vec![Eq("/headers/x-consumer-groups", json!("admin"))],
        ),
        // Revocation is a DELETE: the next request is refused.
        admin(
            "revoke",
            "DELETE",
            "/consumers/alice/jwt/alice-key",
            None,
            S::NO_CONTENT,
            vec![],
        ),
        proxied(
            "refused at once",
            "/api",
            S::UNAUTHORIZED,
            vec![Eq(
                "/message",
                json!("No credentials found for given 'iss'"),
            )],
        ),
        admin(
            "revoke again",
            "DELETE",
            "/consumers/alice/jwt/alice-key",
            None,
            S::NOT_FOUND,
            vec![],
        ),
        admin(
            "delete consumer",
            "DELETE",
            "/consumers/alice",
            None,
            S::NO_CONTENT,
            vec![],
        ),
        admin(
            "none left",
            "GET",
            "/consumers",
            None,
            S::OK,
            vec![Eq("/data", json!([]))],
        ),
    ];
    run_steps(&c, &gw, &bearer, &alice, &restarted).await;
}

#[tokio::test]
async fn form_bodies_and_bad_bodies() {
    // Keeps the upstream, the gateway and the temp dir alive to the end.
    let env = env().await;
    let (c, admin) = (env.c.clone(), env.admin.clone());
    let req = http::Request::post(format!("{admin}/consumers"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"username=bob&custom_id=c%2D2",
        )))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["custom_id"], "c-2");
    let req = http::Request::post(format!("{admin}/consumers"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{nope")))
        .unwrap();
    assert_eq!(
        c.request(req).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let req = http::Request::post(format!("{admin}/consumers"))
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"x")))
        .unwrap();
    assert_eq!(
        c.request(req).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

/// Lists page as Kong's do: `size`, an opaque `offset`, and `next` until the end.
#[tokio::test]
async fn pagination() {
    // Keeps the upstream, the gateway and the temp dir alive to the end.
    let env = env().await;
    let (c, admin) = (env.c.clone(), env.admin.clone());
    for i in 0..7 {
        let (st, _) = call(
            &c,
            "POST",
            format!("{admin}/consumers"),
            Some(json!({"username": format!("u{i}")})),
            &[],
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut url = format!("{admin}/consumers?size=3");
    let mut pages = 0;
    loop {
        let (st, v) = call(&c, "GET", url.clone(), None, &[]).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        pages += 1;
        for d in v["data"].as_array().unwrap() {
            seen.push(d["username"].as_str().unwrap().to_owned());
        }
        match v["next"].as_str() {
            Some(next) => {
                assert!(v["offset"].is_string());
                assert!(next.starts_with("/consumers?offset="), "{next}");
                url = format!("{admin}{next}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("u{i}")).collect::<Vec<_>>());
    // Default size returns everything here, with no next page.
    let (_, v) = call(&c, "GET", format!("{admin}/consumers"), None, &[]).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 7);
    assert!(v["next"].is_null());
    for bad in ["size=0", "size=1001", "size=x"] {
        let (st, v) = call(&c, "GET", format!("{admin}/consumers?{bad}"), None, &[]).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(v["name"], "invalid size");
    }
    let (st, v) = call(&c, "GET", format!("{admin}/consumers?offset=!!"), None, &[]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["name"], "invalid offset");
}

#[tokio::test]
async fn metrics_count_routes_statuses_failures_and_upstream_latency() {
    // Keeps the upstream, the gateway and the temp dir alive to the end.
    let env = env().await;
    let (c, admin) = (env.c.clone(), env.admin.clone());
    let proxy = env.gw.proxy_url();
    call(
        &c,
        "POST",
        format!("{admin}/consumers"),
        Some(json!({"username": "m"})),
        &[],
    )
    .await;
    call(
        &c,
        "POST",
        format!("{admin}/consumers/m/jwt"),
        Some(json!({"key": "m-key", "secret": "x"})),
        &[],
    )
    .await;
    let good = format!("Bearer {}", token("m-key", "x"));
    let bad = format!("Bearer {}", token("m-key", "y"));
    for _ in 0..3 {
        call(
            &c,
            "GET",
            format!("{proxy}/api"),
            None,
            &[("authorization", &good)],
        )
        .await;
    }
    call(
        &c,
        "GET",
        format!("{proxy}/api"),
        None,
        &[("authorization", &bad)],
    )
    .await;
    call(&c, "GET", format!("{proxy}/api"), None, &[]).await;
    call(&c, "GET", format!("{proxy}/nowhere"), None, &[]).await;
    let resp = c
        .request(
            http::Request::get(format!("{admin}/metrics"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    for line in [
        "gateway_requests_total{route=\"api\",status=\"200\"} 3",
        "gateway_requests_total{route=\"api\",status=\"401\"} 2",
        "gateway_requests_total{route=\"\",status=\"404\"} 1",
        "gateway_auth_failures_total{reason=\"Invalid signature\"} 1",
        "gateway_auth_failures_total{reason=\"Unauthorized\"} 1",
        "gateway_upstream_latency_seconds_count{route=\"api\"} 3",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Only reading it is allowed.
    let (s, b) = call(&c, "PUT", format!("{admin}/metrics"), None, &[]).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{b}");
}

#[tokio::test]
async fn tls_termination() {
    use rustls::pki_types::pem::PemObject as _;
    let upstream = mock_upstream::spawn(mock_upstream::Config::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let gw = gateway::start(gateway::Options {
        config: config(upstream.base_url()),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: None,
        state_file: None,
        tls: Some((cert, key)),
        limits: gateway::limits(),
        admin_apply_delay: std::time::Duration::ZERO,
        core: gateway::Core::default(),
    })
    .await
    .unwrap();
    assert!(gw.proxy_url().starts_with("https://"));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ck.cert.pem().as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gw.proxy_addr())
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/api")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn hostile_bodies_are_refused_by_field_and_size() {
    let e = env().await;
    let a = &e.admin;
    // An unknown field is Kong's schema violation, naming it.
    let (s, b) = call(
        &e.c,
        "POST",
        format!("{a}/consumers"),
        Some(json!({"username": "u", "colour": "red"})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["name"], "schema violation");
    assert_eq!(b["fields"]["colour"], "unknown field");
    // A supplied valid id is kept; an invalid one is refused; a taken one conflicts.
    let id = "4e3ad2e4-0bc4-4638-8e34-c84a417ba39b";
    let (s, b) = call(
        &e.c,
        "POST",
        format!("{a}/consumers"),
        Some(json!({"username": "u", "id": id})),
        &[],
    )
    .await;
    assert_eq!(
        (s, b["id"].as_str()),
        (StatusCode::CREATED, Some(id)),
        "{b}"
    );
    let (s, b) = call(
        &e.c,
        "POST",
        format!("{a}/consumers"),
        Some(json!({"username": "v", "id": "nope"})),
        &[],
    )
    .await;
    assert_eq!(
        (s, &b["fields"]["id"]),
        (StatusCode::BAD_REQUEST, &json!("expected a valid UUID"))
    );
    let (s, _) = call(
        &e.c,
        "POST",
        format!("{a}/consumers"),
        Some(json!({"username": "w", "id": id})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let jid = "0b7d1f39-55b4-4d3c-9d7e-3a5c2f1e8a11";
    let (s, b) = call(
        &e.c,
        "POST",
        format!("{a}/consumers/u/jwt"),
        Some(json!({"key": "k", "id": jid, "kee": 1})),
        &[],
    )
    .await;
    assert_eq!(
        (s, &b["fields"]["kee"]),
        (StatusCode::BAD_REQUEST, &json!("unknown field"))
    );
    let (s, b) = call(
        &e.c,
        "POST",
        format!("{a}/consumers/u/jwt"),
        Some(json!({"key": "k", "id": jid})),
        &[],
    )
    .await;
    assert_eq!(
        (s, b["id"].as_str()),
        (StatusCode::CREATED, Some(jid)),
        "{b}"
    );
    // Tags: Kong's rules, and our bound on their number.
    let (s, b) = call(
        &e.c,
        "PATCH",
        format!("{a}/consumers/u"),
        Some(json!({"tags": ["a/b"]})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let (s, b) = call(
        &e.c,
        "PATCH",
        format!("{a}/consumers/u"),
        Some(json!({"tags": many})),
        &[],
    )
    .await;
    assert_eq!(
        (s, &b["fields"]["tags"]),
        (StatusCode::BAD_REQUEST, &json!("at most 1000 tags"))
    );
    // Field lengths: Kong's 128 characters for names and tags, our 64 KiB
    // for any other string, so one write cannot slow every later one.
    let long = |field: &str, n: usize| json!({ field: "é".repeat(n) });
    for (body, field, says) in [
        (
            long("custom_id", 129),
            "custom_id",
            json!("length must be at most 128"),
        ),
        (
            long("username", 129),
            "username",
            json!("length must be at most 128"),
        ),
    ] {
        let (s, b) = call(&e.c, "PATCH", format!("{a}/consumers/u"), Some(body), &[]).await;
        assert_eq!(
            (s, &b["fields"][field]),
            (StatusCode::BAD_REQUEST, &says),
            "{b}"
        );
    }
    let (s, b) = call(
        &e.c,
        "PATCH",
        format!("{a}/consumers/u"),
        Some(long("custom_id", 128)),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(
        &e.c,
        "PATCH",
        format!("{a}/consumers/u"),
        Some(json!({"tags": ["t".repeat(129)]})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = call(
        &e.c,
        "POST",
        format!("{a}/consumers/u/jwt"),
        Some(json!({"key": "big", "secret": "s".repeat(64 * 1024 + 1)})),
        &[],
    )
    .await;
    assert_eq!(
        (s, &b["fields"]["secret"]),
        (
            StatusCode::BAD_REQUEST,
            &json!("length must be at most 65536 bytes")
        )
    );
    // A body over 10 MiB is 413, whatever it holds.
    let huge = json!({"username": "x", "custom_id": "y".repeat(10 * 1024 * 1024)});
    let (s, b) = call(&e.c, "POST", format!("{a}/consumers"), Some(huge), &[]).await;
    assert_eq!(
        (s, &b["message"]),
        (StatusCode::PAYLOAD_TOO_LARGE, &json!("Payload too large"))
    );
    // Nothing refused was stored.
    let (_, b) = call(&e.c, "GET", format!("{a}/consumers"), None, &[]).await;
    assert_eq!(b["data"].as_array().map(Vec::len), Some(1), "{b}");
}
