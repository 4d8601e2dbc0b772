//! `loadgen URL`: a run from one line, as `wrk -R2000 URL` or `oha -q 2000
//! URL` start one. The flags become a scenario — the same text
//! `--save-scenario` writes — which is parsed, checked and run exactly as a
//! scenario file is, so a saved file run later gives the same requests,
//! schedule and seed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

pub use super::run_args::UrlArgs;

/// A URL split as a scenario holds it: the target's origin, the request's path.
#[derive(Debug, PartialEq, Eq)]
struct Split {
    origin: String,
    path: String,
}

fn split(url: &str, flag: &str) -> anyhow::Result<Split> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("{flag} {url:?} is not a URL"))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        bail!("{flag} {url:?}: give an http:// or https:// URL");
    }
    let Some(authority) = uri.authority() else {
        bail!("{flag} {url:?} has no host");
    };
    Ok(Split {
        origin: format!("{scheme}://{authority}"),
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
    })
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// One `-H "Name: value"`.
fn header(h: &str) -> anyhow::Result<(String, String)> {
    let Some((name, value)) = h.split_once(':') else {
        bail!("-H {h:?}: give \"Name: value\"");
    };
    let name = name.trim();
    if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        bail!("-H {h:?}: {name:?} is not a header name");
    }
    Ok((name.to_ascii_lowercase(), value.trim().to_owned()))
}

/// The scenario the flags describe, as TOML text; `invocation` goes into
/// its first comment. Relative key paths are written as given: they are
/// relative to where the scenario is read from (the caller makes them so).
pub fn scenario_text(a: &UrlArgs, invocation: &str) -> anyhow::Result<String> {
    let Some(url) = &a.url else {
        bail!("give a URL, a scenario (`loadgen run FILE`), or a command (`loadgen --help`)");
    };
    let main = split(url, "URL")?;
    let base = a
        .baseline
        .as_deref()
        .map(|b| split(b, "--baseline"))
        .transpose()?;
    if let Some(b) = &base
        && b.path != "/"
        && b.path != main.path
    {
        bail!(
            "--baseline {:?}: give its origin only (e.g. {}); it gets URL's path {:?}",
            a.baseline.as_deref().unwrap_or_default(),
            b.origin,
            main.path
        );
    }
    token_flags(a)?;
    let name = format!(
        "url-{}",
        main.origin.split("://").nth(1).unwrap_or_default().replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
            "-"
        )
    );
    let mut t = String::new();
    let w = &mut t;
    writeln!(w, "# Written by: {invocation}")?;
    writeln!(
        w,
        "# Run it with: loadgen run FILE (the same requests, schedule and seed)."
    )?;
    writeln!(w, "name = {}", q(&name))?;
    writeln!(w, "seed = {}", a.seed)?;
    if let Some(r) = a.rounds {
        writeln!(w, "rounds = {r}")?;
    }
    let jwt = a.jwt_secret.is_some() || a.jwt_key.is_some();
    let target = |w: &mut String, name: &str, origin: &str, baseline: bool| {
        let mut s = String::from("\n");
        if baseline && name == "baseline" {
            s.push_str("# The upstream straight: what the gateway adds is measured over it.\n");
        }
        let _ = write!(s, "[[target]]\nname = {}\nurl = {}\n", q(name), q(origin));
        if baseline {
            s.push_str("baseline = true\n");
        }
        if a.http2 {
            s.push_str("http = \"2\"\n");
        }
        let _ = writeln!(s, "connections = {}", a.connections);
        if a.insecure && origin.starts_with("https://") {
            s.push_str("tls = { insecure = true }\n");
        }
        w.push_str(&s);
    };
    if let Some(b) = &base {
        target(w, "baseline", &b.origin, true);
    }
    target(w, "target", &main.origin, base.is_none());
    if jwt {
        auth(w, a)?;
    }
    request(w, a, &main.path, jwt)?;
    phases(w, a)?;
    Ok(t)
}

/// The token flags go together as `[auth]` needs them.
fn token_flags(a: &UrlArgs) -> anyhow::Result<()> {
    if a.jwt_key.is_some() && a.alg.is_none() {
        bail!("--jwt-key needs --alg (RS256, PS256, ES256, ES384, ES512 or EdDSA)");
    }
    if a.alg.is_some() && a.jwt_secret.is_none() && a.jwt_key.is_none() {
        bail!("--alg needs --jwt-secret or --jwt-key");
    }
    if (a.profile.is_some() || !a.claims.is_empty())
        && a.jwt_secret.is_none()
        && a.jwt_key.is_none()
    {
        bail!("--profile and --claim need --jwt-secret or --jwt-key (loadgen signs the tokens)");
    }
    Ok(())
}

/// The one `[[request]]`.
fn request(w: &mut String, a: &UrlArgs, path: &str, jwt: bool) -> anyhow::Result<()> {
    writeln!(w, "\n[[request]]")?;
    writeln!(w, "name = \"request\"")?;
    writeln!(w, "method = {}", q(&a.method.to_ascii_uppercase()))?;
    writeln!(w, "path = {}", q(path))?;
    let mut headers: Vec<(String, String)> = a
        .headers
        .iter()
        .map(|h| header(h))
        .collect::<Result<_, _>>()?;
    if let Some(token) = &a.bearer {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    if !headers.is_empty() {
        let pairs: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{} = {}", q(k), q(v)))
            .collect();
        writeln!(w, "headers = {{ {} }}", pairs.join(", "))?;
    }
    if let Some(body) = &a.body {
        writeln!(w, "body = {}", q(body))?;
    }
    if jwt {
        writeln!(w, "token = \"valid\"")?;
    }
    if let Some(e) = a.expect {
        writeln!(w, "expect = {e}")?;
    }
    Ok(())
}

/// The warm-up and the recorded phase.
fn phases(w: &mut String, a: &UrlArgs) -> anyhow::Result<()> {
    let load = match (a.concurrency, a.rate) {
        (Some(c), _) => format!("concurrency = {c}"),
        (None, r) => format!("rate = {}", r.unwrap_or(1000.0)),
    };
    // In the largest unit that keeps it whole: the scenario's own syntax.
    let duration = |d: std::time::Duration| {
        let us = d.as_micros();
        q(&match us {
            _ if us.is_multiple_of(1_000_000) => format!("{}s", us / 1_000_000),
            _ if us.is_multiple_of(1_000) => format!("{}ms", us / 1_000),
            _ => format!("{us}us"),
        })
    };
    if !a.warmup.is_zero() {
        writeln!(
            w,
            "\n[[phase]]\nname = \"warmup\"\nduration = {}\n{load}\nrecord = false",
            duration(a.warmup)
        )?;
    }
    writeln!(
        w,
        "\n[[phase]]\nname = \"steady\"\nduration = {}\n{load}",
        duration(a.duration)
    )?;
    Ok(())
}

/// `[auth]`: one consumer signing valid tokens.
fn auth(w: &mut String, a: &UrlArgs) -> anyhow::Result<()> {
    writeln!(w, "\n[auth]")?;
    if let Some(p) = &a.profile {
        writeln!(w, "profile = {}", q(p))?;
    }
    if !a.claims.is_empty() {
        let mut pairs = Vec::new();
        for c in &a.claims {
            let Some((k, v)) = c.split_once('=') else {
                bail!("--claim {c:?}: give k=v");
            };
            let v = serde_json::from_str::<serde_json::Value>(v)
                .unwrap_or_else(|_| serde_json::Value::String(v.to_owned()));
            let v = toml::Value::try_from(&v)
                .with_context(|| format!("--claim {c:?}: no TOML for this value (null?)"))?;
            pairs.push(format!("{} = {v}", q(k)));
        }
        writeln!(w, "claims = {{ {} }}", pairs.join(", "))?;
    }
    writeln!(w, "\n[[auth.consumer]]")?;
    writeln!(w, "name = {}", q(&a.consumer))?;
    writeln!(w, "alg = {}", q(a.alg.as_deref().unwrap_or("HS256")))?;
    if let Some(s) = &a.jwt_secret {
        writeln!(w, "secret = {}", q(s))?;
    }
    if let Some(k) = &a.jwt_key {
        writeln!(w, "key_file = {}", q(&k.display().to_string()))?;
    }
    Ok(())
}

/// Where the scenario is read from, as errors name it: the saved file, or
/// the command line (in the working directory, so relative paths on it
/// stay right).
pub fn scenario_file(a: &UrlArgs) -> PathBuf {
    a.save_scenario
        .clone()
        .unwrap_or_else(|| PathBuf::from("<command line>"))
}

/// `--jwt-key` as the scenario at `file` must name it: relative to the
/// scenario's directory, which is the working directory unless the scenario
/// is saved elsewhere (then the key's absolute path).
pub fn key_for(file: &Path, key: &Path) -> anyhow::Result<PathBuf> {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty());
    if key.is_absolute() || dir.is_none() {
        return Ok(key.to_owned());
    }
    std::fs::canonicalize(key).with_context(|| format!("--jwt-key {}", key.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> UrlArgs {
        UrlArgs {
            url: Some(url.into()),
            duration: std::time::Duration::from_secs(10),
            warmup: std::time::Duration::from_secs(1),
            connections: 16,
            seed: 1,
            method: "GET".into(),
            consumer: "loadgen".into(),
            ..UrlArgs::default()
        }
    }

    #[test]
    fn urls_split_into_origin_and_path() {
        assert_eq!(
            split("http://127.0.0.1:8000/orders/1?x=a%20b", "URL").unwrap(),
            Split {
                origin: "http://127.0.0.1:8000".into(),
                path: "/orders/1?x=a%20b".into()
            }
        );
        assert_eq!(split("https://h", "URL").unwrap().path, "/");
        for bad in ["ftp://h/", "h:80", "/path", "http://"] {
            assert!(split(bad, "URL").is_err(), "{bad}");
        }
    }

    #[test]
    fn every_flag_lands_in_a_scenario_that_validates() {
        let mut a = args("https://gw.local:8443/orders/{seq}");
        a.baseline = Some("https://up.local:9000".into());
        a.insecure = true;
        a.http2 = true;
        a.headers = vec!["X-Tenant: a \"b\"".into()];
        a.method = "post".into();
        a.body = Some("{\"q\":1}".into());
        a.jwt_secret = Some("s3cret".into());
        a.profile = Some("kong".into());
        a.claims = vec![
            "scope=orders.read".into(),
            "n=3".into(),
            "aud=[\"a\",\"b\"]".into(),
        ];
        a.expect = Some(201);
        a.concurrency = Some(8);
        let text = scenario_text(&a, "loadgen test").unwrap();
        let s = crate::scenario::Scenario::parse(&text, "x.toml")
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(s.targets.len(), 2, "{text}");
        for line in [
            "method = \"POST\"",
            "x-tenant",
            "http = \"2\"",
            "tls = { insecure = true }",
            "\"n\" = 3",
            "concurrency = 8",
            "expect = 201",
            "token = \"valid\"",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn mistakes_name_the_flag() {
        type Mistake = fn(&mut UrlArgs);
        let cases: [(&str, Mistake, &str); 4] = [
            ("http://h/", |a| a.jwt_key = Some("k.pem".into()), "--alg"),
            (
                "http://h/x",
                |a| a.baseline = Some("http://u/y".into()),
                "--baseline",
            ),
            ("http://h/", |a| a.headers = vec!["no colon".into()], "-H"),
            ("http://h/", |a| a.claims = vec!["k=v".into()], "--claim"),
        ];
        for (url, mistake, flag) in cases {
            let mut a = args(url);
            mistake(&mut a);
            let e = scenario_text(&a, "").unwrap_err().to_string();
            assert!(e.contains(flag), "{flag}: {e}");
        }
        assert!(scenario_text(&UrlArgs::default(), "").is_err());
    }
}
