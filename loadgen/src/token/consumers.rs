//! Consumers: listed and generated ones resolved from `[auth]` (secrets and
//! key files read, each key checked against its algorithm), and the keys the
//! `wrong-key` and `alg-confusion` classes sign with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::error::TokenError;
use crate::scenario::{AuthSpec, ConsumerSpec, Field, GeneratedSpec, Profile, TokenClass};
use crate::token::jwt::{Alg, Key, KeyError};

/// One consumer, ready to sign for.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: String,
    /// The key claim's value.
    pub key: String,
    pub alg: Alg,
    pub signing: Key,
    pub kid: Option<String>,
    /// HS*: the secret (for provisioning; never logged or written to results).
    pub secret: Option<String>,
    /// Asymmetric: the public key PEM (for provisioning and alg-confusion).
    pub public_pem: Option<String>,
    pub groups: Vec<String>,
}

impl Consumer {
    /// The key id its tokens and JWKs carry: its `kid`, or its key when it
    /// has none (a JWKS needs one; AWS and Envoy find the key by it).
    pub fn kid_or_key(&self) -> &str {
        self.kid.as_deref().unwrap_or(&self.key)
    }
}

/// An HMAC key nobody holds.
pub(super) fn random_hmac() -> Key {
    // A non-empty secret always makes a key.
    Key::hmac(Alg::HS256, super::keygen::random_secret().as_bytes()).expect("non-empty secret")
}

/// `alg-confusion`: HMAC-SHA256 keyed with the consumer's public key PEM.
pub(super) fn confusion_key(c: &Consumer) -> Option<Key> {
    c.public_pem
        .as_deref()
        .and_then(|p| Key::hmac(Alg::HS256, p.as_bytes()).ok())
}

/// `wrong-key`: per consumer, a key of its algorithm that is not its own:
/// the first other distinct key among the consumers (by secret or public
/// key), else one fresh key per algorithm. One pass, so thousands of
/// consumers sharing a key file cost no more than a few.
pub(super) fn wrong_keys(consumers: &[Consumer]) -> Result<Vec<Key>, KeyError> {
    let id = |c: &Consumer| {
        c.secret
            .clone()
            .or_else(|| c.public_pem.clone())
            .unwrap_or_default()
    };
    // Per algorithm, its first two distinct keys (two suffice: one is not yours).
    let mut firsts: Vec<(Alg, Vec<(String, Key)>)> = Vec::new();
    for c in consumers {
        let i = match firsts.iter().position(|(a, _)| *a == c.alg) {
            Some(i) => i,
            None => {
                firsts.push((c.alg, Vec::new()));
                firsts.len() - 1
            }
        };
        let keys = &mut firsts[i].1;
        let me = id(c);
        if keys.len() < 2 && keys.iter().all(|(k, _)| *k != me) {
            keys.push((me, c.signing.clone()));
        }
    }
    let mut fresh: Vec<(Alg, Key)> = Vec::new();
    consumers
        .iter()
        .map(|c| {
            let me = id(c);
            let other = firsts
                .iter()
                .find(|(a, _)| *a == c.alg)
                .and_then(|(_, keys)| keys.iter().find(|(k, _)| *k != me));
            if let Some((_, k)) = other {
                return Ok(k.clone());
            }
            if let Some((_, k)) = fresh.iter().find(|(a, _)| *a == c.alg) {
                return Ok(k.clone());
            }
            let k = if c.alg.is_hmac() {
                Key::hmac(c.alg, super::keygen::random_secret().as_bytes())?
            } else {
                Key::from_pem(c.alg, &super::keygen::generate_private_pem(c.alg, 2048)?)?
            };
            fresh.push((c.alg, k.clone()));
            Ok(k)
        })
        .collect()
}

/// Consumer records for provisioning, as JSON (secrets included: this goes
/// to the gateway's Admin API or config, never to results).
pub fn consumer_json(c: &Consumer) -> Value {
    json!({
        "username": c.name,
        "key": c.key,
        "algorithm": c.alg.name(),
        "secret": c.secret,
        "rsa_public_key": c.public_pem,
        "groups": c.groups,
    })
}

fn fill(template: &str, n: usize) -> String {
    template.replace("{n}", &n.to_string())
}

/// Reads key files once each: thousands of generated consumers may share one.
struct KeyFiles<'a> {
    dir: &'a Path,
    cache: BTreeMap<PathBuf, Key>,
}

impl KeyFiles<'_> {
    fn text(&self, field: &Field, file: &Path) -> Result<String, TokenError> {
        let path = self.dir.join(file);
        std::fs::read_to_string(&path).map_err(|source| TokenError::Read {
            field: field.clone(),
            path,
            source,
        })
    }

    fn private_key(&mut self, field: &Field, alg: Alg, file: &Path) -> Result<Key, TokenError> {
        let path = self.dir.join(file);
        if let Some(k) = self.cache.get(&path) {
            return Ok(k.clone());
        }
        let text = self.text(field, file)?;
        let key = Key::from_pem(alg, &text).map_err(|source| TokenError::Key {
            field: field.clone(),
            path: path.clone(),
            source: Box::new(source),
        })?;
        self.cache.insert(path, key.clone());
        Ok(key)
    }
}

fn hmac(field: &Field, alg: Alg, secret: &str) -> Result<Key, TokenError> {
    Key::hmac(alg, secret.as_bytes()).map_err(|e| TokenError::invalid(field.clone(), e.to_string()))
}

/// Every consumer of `[auth]`, listed ones first, with its signing key.
pub(super) fn resolve(spec: &AuthSpec, dir: &Path) -> Result<Vec<Consumer>, TokenError> {
    let mut files = KeyFiles {
        dir,
        cache: BTreeMap::new(),
    };
    let mut consumers = Vec::new();
    for (i, c) in spec.consumer.iter().enumerate() {
        consumers.push(listed(c, i, &mut files)?);
    }
    for (i, g) in spec.generated.iter().enumerate() {
        generated(g, i, &mut files, &mut consumers)?;
    }
    Ok(consumers)
}

fn listed(c: &ConsumerSpec, i: usize, files: &mut KeyFiles<'_>) -> Result<Consumer, TokenError> {
    let field = |key: &str| Field::new("auth.consumer", Some(i), key);
    let alg = c.alg.unwrap_or(Alg::HS256);
    let (signing, secret) = if alg.is_hmac() {
        let secret = match (&c.secret, &c.secret_file) {
            (Some(s), None) => s.clone(),
            (None, Some(f)) => files
                .text(&field("secret_file"), f)?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            _ => {
                return Err(TokenError::invalid(
                    field("secret"),
                    format!("{alg} needs secret or secret_file (one of them)"),
                ));
            }
        };
        (hmac(&field("secret"), alg, &secret)?, Some(secret))
    } else {
        let Some(f) = &c.key_file else {
            return Err(TokenError::invalid(
                field("key_file"),
                format!("{alg} needs key_file (a private key PEM)"),
            ));
        };
        (files.private_key(&field("key_file"), alg, f)?, None)
    };
    Ok(Consumer {
        name: c.name.clone(),
        key: c.key.clone().unwrap_or_else(|| c.name.clone()),
        alg,
        public_pem: signing.public_pem(),
        signing,
        kid: c.kid.clone(),
        secret,
        groups: c.groups.clone(),
    })
}

fn generated(
    g: &GeneratedSpec,
    i: usize,
    files: &mut KeyFiles<'_>,
    out: &mut Vec<Consumer>,
) -> Result<(), TokenError> {
    let field = |key: &str| Field::new("auth.consumers", Some(i), key);
    if g.count == 0 {
        return Err(TokenError::invalid(field("count"), "must be at least 1"));
    }
    let alg = g.alg.unwrap_or(Alg::HS256);
    let shared = if alg.is_hmac() {
        if g.secret.is_none() {
            return Err(TokenError::invalid(
                field("secret"),
                format!("{alg} needs a secret template such as \"secret-{{n}}\""),
            ));
        }
        None
    } else {
        let Some(f) = &g.key_file else {
            return Err(TokenError::invalid(
                field("key_file"),
                format!("{alg} needs key_file"),
            ));
        };
        Some(files.private_key(&field("key_file"), alg, f)?)
    };
    for n in 1..=g.count {
        let name = fill(g.name.as_deref().unwrap_or("consumer-{n}"), n);
        let (signing, secret) = match &shared {
            Some(k) => (k.clone(), None),
            None => {
                let s = fill(g.secret.as_deref().unwrap_or_default(), n);
                (hmac(&field("secret"), alg, &s)?, Some(s))
            }
        };
        out.push(Consumer {
            key: g
                .key
                .as_deref()
                .map_or_else(|| name.clone(), |k| fill(k, n)),
            name,
            alg,
            public_pem: signing.public_pem(),
            signing,
            kid: g.kid.as_deref().map(|k| fill(k, n)),
            secret,
            groups: g.groups.clone(),
        });
    }
    Ok(())
}

/// Rules across all consumers: some exist, keys unique, what the profile
/// and the classes need.
pub(super) fn check(
    consumers: &[Consumer],
    profile: Profile,
    key_claim: &str,
    classes: &[TokenClass],
) -> Result<(), TokenError> {
    let field = || Field::new("auth", None, "consumer");
    if consumers.is_empty() {
        return Err(TokenError::invalid(
            field(),
            "at least one [[auth.consumer]] or [[auth.consumers]] is needed",
        ));
    }
    let mut keys = std::collections::HashSet::new();
    if let Some(c) = consumers.iter().find(|c| !keys.insert(c.key.as_str())) {
        return Err(TokenError::invalid(
            field(),
            format!("two consumers have the key {:?}", c.key),
        ));
    }
    if profile == Profile::AwsHttpApi
        && let Some(c) = consumers
            .iter()
            .find(|c| c.kid.is_none() && key_claim != "kid")
    {
        return Err(TokenError::invalid(
            field(),
            format!(
                "{}: aws-http-api tokens need a kid (the JWKS key id)",
                c.name
            ),
        ));
    }
    if classes.contains(&TokenClass::AlgConfusion)
        && let Some(c) = consumers.iter().find(|c| c.public_pem.is_none())
    {
        return Err(TokenError::invalid(
            field(),
            format!(
                "{}: token class alg-confusion needs consumers with a public key (RS*, PS*, ES*, EdDSA), not {}",
                c.name, c.alg
            ),
        ));
    }
    Ok(())
}

/// A copy of `c` under `key` with a fresh key of its algorithm (a random
/// secret, or a new key pair: RSA 2048 bits), for a key rotation; with
/// `key_in_kid` the new key is also the `kid` tokens carry.
pub fn with_new_key(c: &Consumer, key: &str, key_in_kid: bool) -> Result<Consumer, KeyError> {
    let mut next = c.clone();
    next.key = key.to_owned();
    if key_in_kid {
        next.kid = Some(key.to_owned());
    }
    if c.alg.is_hmac() {
        let secret = super::keygen::random_secret();
        next.signing = Key::hmac(c.alg, secret.as_bytes())?;
        next.secret = Some(secret);
    } else {
        next.signing = Key::from_pem(c.alg, &super::keygen::generate_private_pem(c.alg, 2048)?)?;
        next.public_pem = next.signing.public_pem();
    }
    Ok(next)
}
