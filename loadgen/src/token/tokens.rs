//! [`Tokens`]: everything `[auth]` resolves to, built once per run and
//! shared read-only by the workers (the pool and statistics inside are
//! synchronised).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::consumers::{self, Consumer};
use super::error::{TokenError, auth_field};
use crate::scenario::{
    Aud, AuthSpec, Placement, Profile, Scenario, ScenarioError, TokenClass, TokenSource,
};
use crate::token::jwt::Key;

/// The token(s) one request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    None,
    One(String),
    /// `duplicate`: the first where `placement` says, the second in the query.
    Two(String, String),
}

impl Carried {
    /// The first token, if any.
    pub fn first(&self) -> Option<&str> {
        match self {
            Carried::None => None,
            Carried::One(t) | Carried::Two(t, _) => Some(t),
        }
    }
}

/// Seconds since the Unix epoch; a seam for tests (paused time).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> u64;
}

#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(pub AtomicU64);

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Signing statistics, for the summary.
#[derive(Debug)]
pub struct SignStats {
    /// Time per signature, ns.
    pub signing: Histogram<u64>,
    pub signed: u64,
    /// Pool tokens signed on the send path because the refresh was late.
    pub on_send_path: u64,
    /// Per-request: times a worker found its signer's queue empty.
    pub behind: u64,
}

/// A pool entry's tokens, each with the time it must be replaced by.
pub(super) type Pooled = Vec<(Arc<Carried>, u64)>;

/// Everything `[auth]` resolves to: consumers with their keys, the claims,
/// the classes requests use, and the token source's state.
#[derive(Debug)]
pub struct Tokens {
    pub profile: Profile,
    pub source: TokenSource,
    pub placement: Placement,
    pub duplicate_param: String,
    pub(super) key_in_kid: bool,
    pub(super) key_claim: String,
    pub(super) typ: Option<String>,
    pub(super) ttl: u64,
    pub(super) skew: u64,
    pub(super) margin: u64,
    pub(super) issuer: Option<String>,
    pub(super) sub: String,
    pub(super) aud: Option<Value>,
    pub(super) scope: Option<String>,
    pub(super) claims: BTreeMap<String, Value>,
    pub(super) oversize: usize,
    pub consumers: Vec<Consumer>,
    /// For `wrong-key` (when used): per consumer, another key of the same algorithm.
    pub(super) wrong: Vec<Key>,
    /// For `alg-confusion` (when used): per consumer, HMAC-SHA256 keyed with its public key PEM.
    pub(super) confusion: Vec<Option<Key>>,
    /// The classes requests use, in a fixed order; a class's index is its slot.
    pub classes: Vec<TokenClass>,
    pub(super) pool_size: usize,
    /// Per (consumer, class slot): tokens and their `exp`.
    /// Filled once by [`Tokens::fill_pool`] (not by `loadgen validate`).
    pub(super) pool: std::sync::OnceLock<Vec<ArcSwap<Pooled>>>,
    /// Per consumer: the key it signs with now, when an `[[event]]` rotated it.
    pub(super) rotated: Vec<arc_swap::ArcSwapOption<Consumer>>,
    pub(super) counter: AtomicU64,
    /// How unpinned requests spread over the consumers.
    spread: super::spread::Spread,
    pub clock: Arc<dyn Clock>,
    pub stats: Mutex<SignStats>,
}

/// The `[auth]` settings that are not consumers, resolved with their defaults.
struct Settings {
    profile: Profile,
    key_claim: String,
    ttl: u64,
    margin: u64,
    oversize: usize,
}

impl Settings {
    fn of(spec: &AuthSpec) -> Result<Settings, TokenError> {
        let profile = spec.profile.unwrap_or_default();
        let key_claim = spec.key_claim.clone().unwrap_or_else(|| {
            if profile == Profile::AwsHttpApi {
                "kid".into()
            } else {
                "iss".into()
            }
        });
        if key_claim.is_empty() {
            return Err(TokenError::invalid(
                auth_field("key_claim"),
                "must not be empty",
            ));
        }
        if profile == Profile::AwsHttpApi && spec.issuer.is_none() {
            return Err(TokenError::invalid(
                auth_field("issuer"),
                "aws-http-api needs the issuer URL tokens carry as iss",
            ));
        }
        let ttl = spec.ttl.map_or(3600, |d| d.0.as_secs());
        if ttl < 2 {
            return Err(TokenError::invalid(
                auth_field("ttl"),
                "must be at least 2s",
            ));
        }
        let margin = spec
            .refresh_margin
            .map_or((ttl / 4).min(60), |d| d.0.as_secs());
        if margin >= ttl {
            return Err(TokenError::invalid(
                auth_field("refresh_margin"),
                "must be shorter than ttl",
            ));
        }
        let oversize = spec
            .oversize
            .as_deref()
            .unwrap_or("16KiB")
            .parse::<mock_upstream::Size>()
            .map_err(|e| TokenError::invalid(auth_field("oversize"), e.to_string()))?
            .0 as usize;
        Ok(Settings {
            profile,
            key_claim,
            ttl,
            margin,
            oversize,
        })
    }
}

impl Tokens {
    /// Resolves `[auth]` for a scenario's token classes: reads key files
    /// (relative to the scenario's directory). Errors are located in its file.
    pub fn for_scenario(s: &Scenario, clock: Arc<dyn Clock>) -> Result<Tokens, ScenarioError> {
        let spec = s.auth.clone().unwrap_or_default();
        Tokens::new(&spec, &s.token_classes(), s.dir(), clock).map_err(|e| e.located(s))
    }

    /// Resolves `[auth]`: reads key files (relative to `dir`), checks each
    /// consumer's key against its algorithm, prepares the keys of the classes
    /// that need them. Errors name the field.
    pub fn new(
        spec: &AuthSpec,
        classes: &[TokenClass],
        dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Tokens, TokenError> {
        let settings = Settings::of(spec)?;
        let consumers = consumers::resolve(spec, dir)?;
        let spread =
            super::spread::Spread::new(spec.popularity.unwrap_or_default(), consumers.len());
        consumers::check(&consumers, settings.profile, &settings.key_claim, classes)?;
        // Keys for the classes that need them, prepared only when used: a
        // fresh RSA key takes ~0.2 s, and thousands of generated consumers
        // may share one key file.
        let wrong = if classes.contains(&TokenClass::WrongKey) {
            consumers::wrong_keys(&consumers)
                .map_err(|e| TokenError::invalid(auth_field("consumer"), e.to_string()))?
        } else {
            Vec::new()
        };
        let confusion = if classes.contains(&TokenClass::AlgConfusion) {
            consumers.iter().map(consumers::confusion_key).collect()
        } else {
            Vec::new()
        };
        let rotated = consumers.iter().map(|_| Default::default()).collect();
        let mut classes = classes.to_vec();
        classes.sort();
        classes.dedup();
        let aud = spec.aud.as_ref().map(|a| match a {
            Aud::One(s) => json!(s),
            Aud::Many(v) => json!(v),
        });
        let typ = match spec.typ.as_deref() {
            None => Some("JWT".to_owned()),
            Some("") => None,
            Some(t) => Some(t.to_owned()),
        };
        Ok(Tokens {
            profile: settings.profile,
            source: spec.source.unwrap_or_default(),
            placement: spec.placement.clone().unwrap_or_default(),
            duplicate_param: spec.duplicate_param.clone().unwrap_or_else(|| "jwt".into()),
            key_in_kid: settings.key_claim == "kid",
            key_claim: settings.key_claim,
            typ,
            ttl: settings.ttl,
            skew: spec.skew.map_or(5, |d| d.0.as_secs()),
            margin: settings.margin,
            issuer: spec.issuer.clone(),
            sub: spec.sub.clone().unwrap_or_else(|| "{consumer}".into()),
            aud,
            scope: spec.scope.clone(),
            claims: spec.claims.clone(),
            oversize: settings.oversize,
            consumers,
            wrong,
            confusion,
            classes,
            pool_size: spec.pool_size.unwrap_or(2).max(1),
            pool: std::sync::OnceLock::new(),
            rotated,
            counter: AtomicU64::new(0),
            spread,
            clock,
            stats: Mutex::new(SignStats {
                // 1 ns to 60 s at 3 significant digits: valid bounds.
                signing: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                    .expect("valid histogram bounds"),
                signed: 0,
                on_send_path: 0,
                behind: 0,
            }),
        })
    }

    /// The claim (or `kid`) that carries a consumer's key.
    pub fn key_claim_name(&self) -> &str {
        &self.key_claim
    }

    /// The `iss` every token carries (`[auth] issuer`), if set.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The `aud` every token carries (`[auth] aud`), if set.
    pub fn audience(&self) -> Option<&Value> {
        self.aud.as_ref()
    }

    /// The class slot of `class` in [`Tokens::classes`].
    pub fn slot(&self, class: TokenClass) -> Option<usize> {
        self.classes.iter().position(|c| *c == class)
    }

    /// The consumer of request `seq`: fixed, or spread over all by the seed
    /// as `[auth] popularity` says.
    pub fn consumer_of(&self, fixed: Option<usize>, seed: u64, seq: u64) -> usize {
        fixed.unwrap_or_else(|| self.spread.pick(crate::seed::mix(&[seed, seq, 0xC0_5E])))
    }

    /// The consumer `ci` as it signs now (rotated by an event, or as configured).
    pub fn current(&self, ci: usize) -> Consumer {
        self.rotated(ci)
            .as_deref()
            .cloned()
            .unwrap_or_else(|| self.consumers[ci].clone())
    }

    /// Consumer `ci` under `key` with a fresh key of its algorithm (a
    /// rotation's new credential); with the key in `kid`, the new `kid`.
    pub fn with_new_key(
        &self,
        ci: usize,
        key: &str,
    ) -> Result<Consumer, crate::token::jwt::KeyError> {
        consumers::with_new_key(&self.consumers[ci], key, self.key_in_kid)
    }

    /// Whether the consumer's key travels in the header's `kid`.
    pub fn key_in_kid(&self) -> bool {
        self.key_in_kid
    }

    /// The key consumer `ci` was rotated to, if it was.
    pub(super) fn rotated(&self, ci: usize) -> Option<Arc<Consumer>> {
        self.rotated.get(ci).and_then(|r| r.load_full())
    }

    /// Switches consumer `ci`'s tokens to `to` (None: back to its configured
    /// key). Pool tokens are re-signed before this returns, so every token
    /// handed out afterwards carries the new key; per-request queues still
    /// hold up to their capacity of tokens signed before.
    pub fn switch(&self, ci: usize, to: Option<Consumer>) {
        if let Some(r) = self.rotated.get(ci) {
            r.store(to.map(Arc::new));
        }
        let now = self.clock.now();
        if let Some(pool) = self.pool.get() {
            let n = self.classes.len();
            for slot in 0..n {
                pool[ci * n + slot].store(Arc::new(self.mint_slot(ci * n + slot, now)));
            }
        }
    }

    /// The signing-time histogram the summary's percentiles come from.
    pub fn signing(&self) -> Histogram<u64> {
        self.stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .signing
            .clone()
    }

    pub fn summary(&self) -> reports::summary::AuthSummary {
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        reports::summary::AuthSummary {
            profile: self.profile.name().into(),
            source: self.source.name().into(),
            consumers: self.consumers.len(),
            classes: self.classes.iter().map(|c| c.name().to_owned()).collect(),
            signing: reports::summary::Percentiles::of(&s.signing),
            tokens_signed: s.signed,
            signed_on_send_path: s.on_send_path,
            signer_behind: s.behind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_pick_consumers_by_the_scenario_s_popularity() {
        let spec: crate::scenario::AuthSpec = toml::from_str(
            "popularity = \"hot:10%:100%\"\n[[consumers]]\ncount = 50\nsecret = \"s{n}\"\n",
        )
        .unwrap();
        let tokens = Tokens::new(
            &spec,
            &[crate::scenario::TokenClass::Valid],
            std::path::Path::new("."),
            Arc::new(SystemClock),
        )
        .unwrap();
        let picked: std::collections::BTreeSet<usize> = (0..2_000)
            .map(|seq| tokens.consumer_of(None, 3, seq))
            .collect();
        // All traffic to the first 5 of 50, all 5 of them used; a pin still wins.
        assert_eq!(picked, (0..5).collect());
        assert_eq!(tokens.consumer_of(Some(42), 3, 0), 42);
    }
}
