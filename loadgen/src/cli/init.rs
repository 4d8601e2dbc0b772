//! `loadgen init --gateway KIND`: a starter directory for measuring one kind
//! of gateway — a commented scenario, its keys, a stand-in for the gateway
//! so that it runs at once on the builtin targets, the gateway's own
//! configuration where loadgen can write one, and a README with the steps
//! that point it at the real thing.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::args::Kind;
use crate::token::jwt::Alg;

impl Kind {
    pub(super) fn title(self) -> &'static str {
        match self {
            Kind::Kong => "Kong",
            Kind::Aws => "AWS API Gateway (an HTTP API with a JWT authorizer)",
            Kind::Envoy => "Envoy (jwt_authn)",
            Kind::Rust => "jwt-gateway (gatebench's own)",
            Kind::Haproxy => "HAProxy (jwt_verify)",
            Kind::Nginx => "nginx with njs",
        }
    }

    /// The `[auth]` profile its tokens follow.
    pub(super) fn profile(self) -> &'static str {
        match self {
            Kind::Kong => "kong",
            Kind::Aws => "aws-http-api",
            Kind::Envoy => "envoy",
            Kind::Rust => "rust-gateway",
            Kind::Haproxy | Kind::Nginx => "generic",
        }
    }

    /// What the gateway target's URL becomes, as a comment.
    pub(super) fn url_hint(self) -> &'static str {
        match self {
            Kind::Kong => "Kong's proxy, e.g. \"http://kong.internal:8000\"",
            Kind::Aws => {
                "the HTTP API's invoke URL, e.g. \"https://abc123.execute-api.eu-west-1.amazonaws.com\""
            }
            Kind::Envoy => "envoy/envoy.yaml's JWT listener, \"http://127.0.0.1:10000\"",
            Kind::Rust => "jwt-gateway's --listen, e.g. \"http://127.0.0.1:8000\"",
            Kind::Haproxy => "haproxy/haproxy.cfg's JWT frontend, \"http://127.0.0.1:8000\"",
            Kind::Nginx => "nginx/nginx.conf's JWT server, \"http://127.0.0.1:8000\"",
        }
    }
}

/// The issuer and audience of the AWS starter's tokens.
const AWS_ISSUER: &str = "https://idp.example";
const AWS_AUDIENCE: &str = "gatebench";
/// Where the rendered peer configs send traffic until edited.
const UPSTREAM: &str = "127.0.0.1:8081";

/// The files a starter writes, under its directory.
struct Out<'a> {
    dir: &'a Path,
    files: Vec<PathBuf>,
}

impl Out<'_> {
    fn write(&mut self, name: &str, text: &str) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        reports::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.files.push(path);
        Ok(())
    }

    /// `loadgen keys gen`'s files for one consumer, under keys/NAME.
    fn keys(&mut self, alg: Alg, name: &str, issuer: Option<&str>) -> anyhow::Result<()> {
        let kid = (!alg.is_hmac()).then_some(name);
        let out = self.dir.join("keys").join(name);
        let g = crate::token::keygen::keys_gen(alg, false, kid, 2048, issuer, &out, true)
            .with_context(|| format!("keys in {}", out.display()))?;
        self.files.extend(g.files);
        Ok(())
    }
}

/// Writes the starter for `kind` into `dir`; the files written.
pub fn init(kind: Kind, dir: &Path, force: bool) -> anyhow::Result<Vec<PathBuf>> {
    let scenario = dir.join("scenario.toml");
    if scenario.exists() && !force {
        anyhow::bail!(
            "{} exists: keep it, choose another --dir, or overwrite with --force",
            scenario.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut out = Out {
        dir,
        files: Vec::new(),
    };
    if kind != Kind::Aws {
        out.keys(Alg::HS256, "web-app", None)?;
    }
    let issuer = (kind == Kind::Aws).then_some(AWS_ISSUER);
    out.keys(Alg::RS256, "mobile-app", issuer)?;
    out.write("scenario.toml", &scenario_text(kind, dir))?;
    let tokens = super::provision::scenario_tokens(&scenario, &[])?;
    out.write("gateway.yml", &stand_in(kind, &tokens))?;
    gateway_config(kind, &tokens, &mut out)?;
    out.write("README.md", &readme(kind, dir))?;
    Ok(out.files)
}

/// The stand-in behind builtin:gateway: our gateway, with the kind's
/// semantics for these tokens (Kong's jwt plugin; AWS's JWT authorizer).
fn stand_in(kind: Kind, tokens: &crate::token::Tokens) -> String {
    if kind == Kind::Aws {
        return format!(
            "# The stand-in for AWS behind builtin:gateway: jwt-gateway's oidc plugin,\n\
             # which follows an HTTP API JWT authorizer (issuer, audience, the JWKS).\n\
             _format_version: \"3.0\"\nservices:\n- name: orders\n  url: builtin:upstream\n  routes:\n  \
             - name: orders\n    paths: [\"/\"]\n    plugins:\n    - name: oidc\n      config:\n        \
             issuer: {AWS_ISSUER}\n        audiences: [{AWS_AUDIENCE}]\n        \
             jwks_file: keys/mobile-app/jwks.json\n"
        );
    }
    let doc = crate::commands::provision::declarative(tokens, "builtin:upstream", &[]);
    format!(
        "# The stand-in for {} behind builtin:gateway: jwt-gateway with Kong's jwt\n\
         # plugin and the scenario's consumers (loadgen provision rust-gateway).\n{doc:#}\n",
        kind.title()
    )
}

/// The gateway's own configuration, where loadgen can write one, sending
/// to [`UPSTREAM`] until edited.
fn gateway_config(
    kind: Kind,
    tokens: &crate::token::Tokens,
    out: &mut Out<'_>,
) -> anyhow::Result<()> {
    let doc = crate::commands::provision::declarative(tokens, &format!("http://{UPSTREAM}"), &[]);
    match kind {
        Kind::Kong => out.write("kong/kong.yml", &format!("{doc:#}\n")),
        Kind::Envoy => {
            let opts = crate::commands::envoy::EnvoyOptions {
                upstream: format!("http://{UPSTREAM}"),
                listen: "127.0.0.1:10000".into(),
                noauth_listen: None,
                admin: Some("127.0.0.1:9901".into()),
                allow: Vec::new(),
            };
            let envoy = crate::commands::envoy::envoy(tokens, &opts)?;
            out.write(
                "envoy/envoy.yaml",
                &format!(
                    "# Holds the HS256 consumer's secret (as an oct JWK): keep it private.\n{}",
                    serde_yaml_ng::to_string(&envoy.bootstrap)?
                ),
            )?;
            out.write("envoy/jwks.json", &format!("{:#}\n", envoy.jwks))
        }
        Kind::Haproxy | Kind::Nginx => peer_config(kind, &doc, out),
        Kind::Aws | Kind::Rust => Ok(()),
    }
}

/// HAProxy's or nginx's configuration from the peers' templates, as
/// `peers/compare.sh` renders them, with the secrets and the public key.
fn peer_config(kind: Kind, doc: &serde_json::Value, out: &mut Out<'_>) -> anyhow::Result<()> {
    let sub = kind.name();
    let run = std::fs::canonicalize(out.dir)?.join(sub);
    let (secrets, pem) = peer_keys(doc);
    let render = |t: &str| {
        t.replace("@RUN@", &run.display().to_string())
            .replace("@UP@", UPSTREAM)
            .replace("@JWT_PORT@", "8000")
            .replace("@NOAUTH_PORT@", "8001")
    };
    out.write(&format!("{sub}/rs256.pem"), &pem)?;
    if kind == Kind::Haproxy {
        out.write(
            "haproxy/haproxy.cfg",
            &render(include_str!("../../../peers/haproxy.cfg.in")),
        )?;
        let map: String = secrets.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        return out.write("haproxy/secrets.map", &map);
    }
    out.write(
        "nginx/nginx.conf",
        &render(include_str!("../../../peers/nginx.conf.in")),
    )?;
    out.write(
        "nginx/jwt.js",
        &render(include_str!("../../../peers/jwt.js")),
    )?;
    let json: serde_json::Map<String, serde_json::Value> =
        secrets.into_iter().map(|(k, v)| (k, v.into())).collect();
    out.write(
        "nginx/secrets.json",
        &format!("{:#}\n", serde_json::Value::Object(json)),
    )
}

/// The HS256 secrets by key, and the RS256 public key, of a declarative config.
fn peer_keys(doc: &serde_json::Value) -> (Vec<(String, String)>, String) {
    let (mut secrets, mut pem) = (Vec::new(), String::new());
    let consumers = doc["consumers"].as_array().cloned().unwrap_or_default();
    for s in consumers
        .iter()
        .flat_map(|c| c["jwt_secrets"].as_array().cloned().unwrap_or_default())
    {
        match (
            s["key"].as_str(),
            s["secret"].as_str(),
            s["rsa_public_key"].as_str(),
        ) {
            (Some(k), Some(secret), _) => secrets.push((k.to_owned(), secret.to_owned())),
            (_, _, Some(p)) => p.clone_into(&mut pem),
            _ => {}
        }
    }
    (secrets, pem)
}

/// The commented starter scenario.
fn scenario_text(kind: Kind, dir: &Path) -> String {
    let (title, name) = (kind.title(), kind.name());
    let mut t = format!(
        r#"# A starter for measuring {title} with gatebench: what does its JWT
# check add over the upstream it protects? Written by `loadgen init --gateway {name}`.
#
# As written it runs on this machine, against the builtin targets: the mock
# upstream, and a stand-in for the gateway (jwt-gateway configured by
# gateway.yml with the same semantics for these tokens):
#   loadgen run {dir}/scenario.toml
# To measure your own gateway, follow README.md beside this file, then
# replace the two `url`s below.
name = "{name}-starter"
seed = 1
rounds = 5                       # direct and gateway interleaved, order rotated per round

[upstream]                       # how builtin:upstream answers
latency = "fixed:1ms"

[gateway]                        # what builtin:gateway runs
config = "gateway.yml"

[[target]]
name = "direct"
url = "builtin:upstream"         # your upstream itself, e.g. "http://10.0.0.5:8081"
baseline = true
auth = false                     # the upstream does not check tokens: invalid ones get 2xx here
connections = 16

[[target]]
name = "{name}"
url = "builtin:gateway"          # {hint}
connections = 16

[auth]
profile = "{profile}"
"#,
        dir = dir.display(),
        hint = kind.url_hint(),
        profile = kind.profile(),
    );
    t.push_str(&consumers(kind));
    t.push_str(&requests(kind));
    t.push_str(
        r#"
[[phase]]
name = "warmup"
duration = "1s"
rate = 500
record = false

[[phase]]
name = "steady"
duration = "10s"
rate = 1000                      # requests per second, open loop
"#,
    );
    t
}

/// The `[auth]` lines after the profile, and the consumers.
fn consumers(kind: Kind) -> String {
    let mut t = String::new();
    if kind == Kind::Aws {
        t.push_str(&format!(
            "issuer = \"{AWS_ISSUER}\"        # the authorizer's issuer: where keys/mobile-app/jwks.json is served\n\
             aud = \"{AWS_AUDIENCE}\"                # the authorizer's audience\n"
        ));
    } else {
        t.push_str(
            r#"
[[auth.consumer]]
name = "web-app"
alg = "HS256"
secret_file = "keys/web-app/secret"
"#,
        );
    }
    t.push_str(
        r#"
[[auth.consumer]]
name = "mobile-app"
alg = "RS256"
key_file = "keys/mobile-app/private.pem"
kid = "mobile-app"
"#,
    );
    t
}

/// The request mix: valid tokens of each consumer, and a few to refuse.
fn requests(kind: Kind) -> String {
    let mut t = String::new();
    // The peer configs route by prefix (/hs/ HS256, /rs/ RS256); Kong, Envoy
    // and ours take both anywhere.
    let (hs, rs) = if kind == Kind::Aws {
        ("/orders/{seq}", "/orders/{seq}")
    } else {
        ("/hs/orders/{seq}", "/rs/orders/{seq}")
    };
    let request = |name: &str, weight: u32, path: &str, token: &str, consumer: &str| {
        format!(
            "\n[[request]]\nname = \"{name}\"\nweight = {weight}\npath = \"{path}\"\ntoken = \"{token}\"\nconsumer = \"{consumer}\"\n"
        )
    };
    t.push_str("\n# Valid tokens, and a few the gateway must refuse (401).");
    if kind != Kind::Aws {
        t.push_str(&request("hs256", 45, hs, "valid", "web-app"));
        t.push_str(&request("rs256", 45, rs, "valid", "mobile-app"));
        t.push_str(&request("expired", 5, hs, "expired", "web-app"));
    } else {
        t.push_str(&request("rs256", 90, rs, "valid", "mobile-app"));
        t.push_str(&request("expired", 5, rs, "expired", "mobile-app"));
    }
    t.push_str(&request(
        "bad-signature",
        5,
        rs,
        "bad-signature",
        "mobile-app",
    ));
    t
}

/// The steps from the starter to the real gateway.
fn readme(kind: Kind, dir: &Path) -> String {
    let d = dir.display();
    let steps = match kind {
        Kind::Kong => format!(
            "1. Give Kong the consumers (`web-app`, HS256; `mobile-app`, RS256), through\n   \
             its Admin API:\n\n   ```sh\n   loadgen provision kong --admin http://KONG:8001 --scenario {d}/scenario.toml\n   ```\n\n   \
             and enable the `jwt` plugin on the route you measure, with\n   \
             `claims_to_verify: [exp, nbf]`. Or run Kong DB-less on `{d}/kong/kong.yml`\n   \
             (consumers, a service to http://{UPSTREAM} and a jwt-protected route;\n   \
             edit the service URL).\n"
        ),
        Kind::Aws => format!(
            "1. Serve `{d}/keys/mobile-app/openid-configuration.json` and `jwks.json`\n   \
             at `ISSUER/.well-known/openid-configuration` and `ISSUER/.well-known/jwks.json`\n   \
             over HTTPS, and put ISSUER in the scenario's `issuer` (and in\n   \
             `openid-configuration.json`).\n\
             2. Create an HTTP API with a JWT authorizer: issuer ISSUER, audience\n   \
             `{AWS_AUDIENCE}`, identity source `$request.header.Authorization`, on a route\n   \
             `ANY /{{proxy+}}` to your upstream. The repository's `deploy/aws/run.sh`\n   \
             does all of this with CloudFormation.\n"
        ),
        Kind::Envoy => format!(
            "1. `{d}/envoy/envoy.yaml` is an Envoy bootstrap whose `jwt_authn` filter\n   \
             knows both consumers (written as `loadgen provision envoy` does). Edit\n   \
             its upstream (http://{UPSTREAM}), then:\n\n   ```sh\n   \
             envoy -c {d}/envoy/envoy.yaml --concurrency 1 --disable-hot-restart\n   ```\n"
        ),
        Kind::Rust => format!(
            "1. Write jwt-gateway's config for your upstream and start it:\n\n   ```sh\n   \
             loadgen provision rust-gateway --scenario {d}/scenario.toml --upstream http://YOUR-UPSTREAM --out {d}/my-gateway.yml\n   \
             jwt-gateway --config {d}/my-gateway.yml --listen 127.0.0.1:8000\n   ```\n"
        ),
        Kind::Haproxy => format!(
            "1. `{d}/haproxy/haproxy.cfg` (HAProxy 2.6 or later) checks HS256 on `/hs/`\n   \
             (the secret by `iss`, from `secrets.map`) and RS256 on `/rs/`\n   \
             (`rs256.pem`), pins the algorithm and checks `exp` and `nbf`. Edit its\n   \
             upstream (`server up {UPSTREAM}`), then:\n\n   ```sh\n   \
             haproxy -f {d}/haproxy/haproxy.cfg\n   ```\n"
        ),
        Kind::Nginx => format!(
            "1. `{d}/nginx/nginx.conf` (nginx with `libnginx-mod-http-js`) checks HS256\n   \
             on `/hs/` in njs (`jwt.js`, the secret by `iss` from `secrets.json`) and\n   \
             RS256 on `/rs/` (`rs256.pem`, WebCrypto). Edit its upstream\n   \
             (`server {UPSTREAM}`), then:\n\n   ```sh\n   nginx -c {d}/nginx/nginx.conf\n   ```\n"
        ),
    };
    format!(
        "# Measuring {title}\n\n\
         Written by `loadgen init --gateway {name}`. It runs as it is, against the\n\
         builtin mock upstream and a stand-in for the gateway (`gateway.yml`):\n\n\
         ```sh\nloadgen run {d}/scenario.toml\n```\n\n\
         To measure your own gateway:\n\n{steps}\
         {next}. In `scenario.toml`, set the `direct` target's `url` to your upstream\n   \
         and the `{name}` target's to the gateway, then `loadgen validate` and\n   \
         `loadgen run` it. Each figure is what the gateway adds over the upstream.\n\n\
         Keys: `keys/` (private: keep them out of version control).\n",
        title = kind.title(),
        name = kind.name(),
        next = if kind == Kind::Aws { 3 } else { 2 },
    )
}
