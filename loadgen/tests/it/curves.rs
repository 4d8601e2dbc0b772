//! ES512 (P-521) and EdDSA over Ed448, which ring cannot sign: keys from
//! `loadgen keys gen`, tokens signed by loadgen, verified by our gateway
//! under load through the jwt plugin (Kong credentials with the public PEMs)
//! and through the oidc plugin (a JWKS holding the P-521 and Ed448 keys).

use std::path::Path;

use serde_json::Value;

use crate::cmd::{keys, loadgen, ok};

fn jwk(keys: &Path) -> Value {
    let set: Value =
        serde_json::from_slice(&std::fs::read(keys.join("jwks.json")).unwrap()).unwrap();
    set["keys"][0].clone()
}

/// Two consumers, ES512 and Ed448, and requests of `classes`.
fn scenario(auth: &str, es: &Path, ed: &Path, gateway: &Path, classes: &[&str]) -> String {
    let mut text = format!(
        r#"name = "curves"
seed = 8
rounds = 1
[gateway]
config = "{}"
{auth}
[[auth.consumer]]
name = "p521-app"
alg = "ES512"
key_file = "{}"
kid = "p521-1"
[[auth.consumer]]
name = "ed448-app"
alg = "EdDSA"
key_file = "{}"
kid = "ed448-1"
[[target]]
name = "gw"
url = "builtin:gateway"
connections = 8
"#,
        gateway.display(),
        es.join("private.pem").display(),
        ed.join("private.pem").display(),
    );
    for c in classes {
        let weight = if *c == "valid" { 4 } else { 1 };
        text.push_str(&format!(
            "[[request]]\nname = \"{c}\"\nweight = {weight}\npath = \"/o/{{seq}}\"\ntoken = \"{c}\"\n"
        ));
    }
    // Ed448 verifies in about 4 ms here: a rate the gateway keeps up with.
    text + &crate::support::open_phase("2s", 100)
}

fn check(run: &crate::support::Run) {
    let t = &run.summary.targets[0];
    for c in &t.classes {
        let class = c.token.as_deref().unwrap();
        let want = if class == "valid" { 200 } else { 401 };
        assert!(c.counts.completed > 0, "{class} saw traffic");
        assert_eq!(
            c.status.get(&want).copied(),
            Some(c.counts.completed),
            "{class}: {:?}",
            c.status
        );
    }
    assert_eq!(t.total.counts.unexpected, 0);
}

#[test]
fn es512_and_ed448_tokens_pass_our_gateways_jwt_and_oidc_plugins_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let es = keys(dir.path(), "ES512", "p521-1");
    let ed = keys(dir.path(), "Ed448", "ed448-1");
    let (p, e) = (jwk(&es), jwk(&ed));
    assert_eq!(
        (&p["kty"], &p["crv"], &p["alg"]),
        (&"EC".into(), &"P-521".into(), &"ES512".into())
    );
    assert_eq!(
        (&e["kty"], &e["crv"], &e["alg"]),
        (&"OKP".into(), &"Ed448".into(), &"EdDSA".into())
    );

    // Kong's jwt plugin: credentials with the public PEMs, by iss.
    let kong = dir.path().join("kong.json");
    let jwt_auth = "[auth]\nprofile = \"rust-gateway\"";
    let provisioned = scenario(jwt_auth, &es, &ed, &kong, &["valid"]);
    let file = dir.path().join("s.toml");
    std::fs::write(&file, &provisioned).unwrap();
    ok(&loadgen(&[
        "provision",
        "rust-gateway",
        "--scenario",
        file.to_str().unwrap(),
        "--out",
        kong.to_str().unwrap(),
    ]));
    let classes = [
        "valid",
        "expired",
        "bad-signature",
        "wrong-key",
        "alg-confusion",
    ];
    let run = crate::support::run(
        &scenario(jwt_auth, &es, &ed, &kong, &classes),
        &["--no-report"],
    );
    check(&run);

    // The oidc plugin (AWS HTTP API authorizer rules): one JWKS with both keys.
    let set = serde_json::json!({ "keys": [p, e] });
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, set.to_string()).unwrap();
    let oidc = dir.path().join("oidc.yml");
    std::fs::write(
        &oidc,
        format!(
            "_format_version: \"3.0\"\nservices:\n- name: o\n  url: builtin:upstream\n  routes:\n  - name: o\n    paths: [\"/\"]\n    plugins:\n    - name: oidc\n      config:\n        issuer: https://idp.example\n        audiences: [orders]\n        algorithms: [ES512, EdDSA]\n        jwks_file: {}\n",
            jwks.display()
        ),
    )
    .unwrap();
    let aws =
        "[auth]\nprofile = \"aws-http-api\"\nissuer = \"https://idp.example\"\naud = \"orders\"";
    let run = crate::support::run(
        &scenario(
            aws,
            &es,
            &ed,
            &oidc,
            &["valid", "expired", "bad-signature", "unknown-issuer"],
        ),
        &["--no-report"],
    );
    check(&run);
}
