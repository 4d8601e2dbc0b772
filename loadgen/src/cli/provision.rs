//! `loadgen provision`: a gateway made to know a scenario's consumers,
//! through Kong's Admin API, as a Kong declarative config, or as an Envoy
//! bootstrap.

use anyhow::Context as _;

use super::args::ProvisionCommand;
use crate::scenario::{Scenario, TokenClass};
use crate::token::{SystemClock, Tokens};

/// A scenario's [auth], resolved (key files read) for `classes`.
pub(super) fn scenario_tokens(
    file: &std::path::Path,
    classes: &[TokenClass],
) -> anyhow::Result<Tokens> {
    let s = Scenario::load(file)?;
    let spec = s
        .auth
        .as_ref()
        .with_context(|| format!("{}: no [auth] section", file.display()))?;
    Ok(
        Tokens::new(spec, classes, s.dir(), std::sync::Arc::new(SystemClock))
            .map_err(|e| e.located(&s))?,
    )
}

/// `loadgen provision kong | rust-gateway | envoy`.
pub(super) fn provision(p: ProvisionCommand) -> anyhow::Result<()> {
    match p {
        ProvisionCommand::Kong {
            out: Some(out),
            upstream,
            scenario,
            allow,
            ..
        } => declarative(
            &scenario,
            &out,
            upstream.as_deref().unwrap_or("builtin:upstream"),
            &allow,
        ),
        ProvisionCommand::Kong {
            admin,
            scenario,
            teardown,
            concurrency,
            verbose,
            ..
        } => {
            let admin = admin.context("--admin or --out")?;
            kong_admin(&scenario, &admin, teardown, concurrency, verbose)
        }
        ProvisionCommand::RustGateway {
            scenario,
            out,
            upstream,
            allow,
        } => declarative(&scenario, &out, &upstream, &allow),
        ProvisionCommand::Envoy {
            scenario,
            out,
            upstream,
            listen,
            noauth_listen,
            admin,
            allow,
        } => {
            let tokens = scenario_tokens(&scenario, &[])?;
            let opts = crate::commands::envoy::EnvoyOptions {
                upstream,
                listen,
                noauth_listen,
                admin,
                allow,
            };
            let envoy = crate::commands::envoy::envoy(&tokens, &opts)?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let yaml = format!(
                "# Envoy bootstrap from {} (loadgen provision envoy).\n\
                 # Run: envoy -c envoy.yaml --concurrency 1 --disable-hot-restart\n\
                 # Holds the HS* consumers' secrets (as oct JWKs): keep it private.\n{}",
                scenario.display(),
                serde_yaml_ng::to_string(&envoy.bootstrap)?
            );
            for (name, bytes) in [
                ("envoy.yaml", yaml.into_bytes()),
                ("jwks.json", format!("{:#}\n", envoy.jwks).into_bytes()),
            ] {
                let path = out.join(name);
                reports::write_atomic(&path, &bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}

/// `provision kong --admin`: through the Admin API, with a progress bar and
/// a count per call and status.
fn kong_admin(
    scenario: &std::path::Path,
    admin: &str,
    teardown: bool,
    concurrency: u16,
    verbose: bool,
) -> anyhow::Result<()> {
    let tokens = scenario_tokens(scenario, &[])?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let total = tokens.consumers.len();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} {pos}/{len} consumers, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(if teardown { "removing" } else { "provisioning" });
    let opts = crate::commands::provision::Options {
        teardown,
        concurrency: usize::from(concurrency),
    };
    #[allow(
        clippy::disallowed_methods,
        reason = "how long provisioning took, for the user"
    )]
    let started = std::time::Instant::now();
    let calls = rt.block_on(crate::commands::provision::kong(
        &tokens,
        admin,
        opts,
        &|done| bar.set_position(done as u64),
    ));
    bar.finish_and_clear();
    let calls = calls?;
    let took = started.elapsed().as_secs_f64();
    let mut counts: std::collections::BTreeMap<(&str, u16), usize> = Default::default();
    for c in &calls {
        if verbose {
            println!("{} {} -> {}", c.method, c.path, c.status);
        }
        *counts.entry((c.method.as_str(), c.status)).or_default() += 1;
    }
    for ((method, status), n) in &counts {
        println!("{n} {method} -> {status}");
    }
    println!(
        "{} {total} consumers at {admin} in {took:.1} s ({:.0}/s, {concurrency} at once)",
        if teardown { "removed" } else { "provisioned" },
        total as f64 / took.max(1e-9),
    );
    Ok(())
}

/// Writes the Kong declarative config for `scenario`'s consumers (Kong
/// DB-less and our gateway read the same file).
fn declarative(
    scenario: &std::path::Path,
    out: &std::path::Path,
    upstream: &str,
    allow: &[String],
) -> anyhow::Result<()> {
    let tokens = scenario_tokens(scenario, &[])?;
    let doc = crate::commands::provision::declarative(&tokens, upstream, allow);
    reports::write_atomic(out, format!("{doc:#}\n").as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}
