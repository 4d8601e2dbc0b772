//! Partner scale: generated consumers provisioned into our gateway's Admin
//! API many at a time, idempotently, and removed again.

use crate::cmd::{loadgen, ok};

#[tokio::test]
async fn provision_kong_thousands_of_consumers_at_once() {
    let up = mock_upstream::spawn(mock_upstream::Config::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kong = format!(
        "_format_version: \"3.0\"\nservices:\n- name: up\n  url: {}\n  routes: [{{ name: all, paths: [\"/\"], plugins: [{{ name: jwt }}] }}]\n",
        up.base_url()
    );
    let gw = crate::support::gateway_with_admin(&kong, dir.path()).await;
    let file = dir.path().join("partners.toml");
    std::fs::write(
        &file,
        "name = \"partners\"\n[auth]\nprofile = \"kong\"\n[[auth.consumers]]\ncount = 1000\nname = \"partner-{n}\"\nsecret = \"secret-{n}\"\n[[target]]\nname = \"t\"\nurl = \"http://127.0.0.1:1\"\n[[request]]\nname = \"r\"\npath = \"/\"\ntoken = \"valid\"\n[[phase]]\nname = \"p\"\nduration = \"1s\"\nrate = 1\n",
    )
    .unwrap();
    let admin = format!("http://{}", gw.admin_addr().unwrap());
    let f = file.to_str().unwrap().to_owned();
    let run = move |extra: &[&str]| {
        let mut args = vec!["provision", "kong", "--admin", &admin, "--scenario", &f];
        args.extend_from_slice(extra);
        let o = loadgen(&args);
        ok(&o)
    };
    let (first, again, token) = tokio::task::spawn_blocking({
        let run = run.clone();
        let f = file.to_str().unwrap().to_owned();
        move || {
            let first = run(&["--concurrency", "32"]);
            // Idempotent: a re-run finds every credential (409) and updates it.
            let again = run(&["--concurrency", "32"]);
            let t = ok(&loadgen(&[
                "token",
                "--scenario",
                &f,
                "--consumer",
                "partner-777",
            ]));
            (first, again, t.trim().to_owned())
        }
    })
    .await
    .unwrap();
    assert!(first.contains("1000 PUT -> 201"), "{first}");
    assert!(first.contains("1000 POST -> 201"), "{first}");
    assert!(
        first.contains("provisioned 1000 consumers") && first.contains("32 at once"),
        "{first}"
    );
    assert!(again.contains("1000 POST -> 409"), "{again}");
    assert!(again.contains("1000 PATCH -> 200"), "{again}");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let get = || {
        client.request(
            http::Request::get(format!("{}/orders/1", gw.proxy_url()))
                .header("authorization", format!("Bearer {token}"))
                .body(http_body_util::Full::default())
                .unwrap(),
        )
    };
    assert_eq!(get().await.unwrap().status(), 200);
    let gone = tokio::task::spawn_blocking(move || run(&["--teardown"]))
        .await
        .unwrap();
    assert!(gone.contains("1000 DELETE -> 204"), "{gone}");
    assert_eq!(get().await.unwrap().status(), 401);
    // A bad --concurrency is refused by name.
    let o = loadgen(&[
        "provision",
        "kong",
        "--admin",
        "http://127.0.0.1:1",
        "--scenario",
        file.to_str().unwrap(),
        "--concurrency",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--concurrency"));
}
