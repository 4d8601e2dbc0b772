//! Minting: the claims and header of each token class, signed with the
//! consumer's key (or deliberately not).

#![allow(
    clippy::disallowed_methods,
    reason = "the signing-time histogram (off the send path for pooled tokens)"
)]

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Map, Value};

use super::consumers::{Consumer, confusion_key, random_hmac};
use super::tokens::{Carried, Tokens};
use crate::scenario::TokenClass;
use crate::token::jwt::{self, Key};

impl Tokens {
    fn render(&self, template: &str, consumer: &Consumer, seq: u64) -> String {
        template
            .replace("{consumer}", &consumer.name)
            .replace("{seq}", &seq.to_string())
    }

    /// The times a token of `class` carries: `iat`, `nbf`, `exp`.
    fn times(&self, class: TokenClass, now: u64) -> (u64, u64, u64) {
        match class {
            TokenClass::Expired => {
                let iat = now.saturating_sub(2 * 3600);
                (iat, iat, now.saturating_sub(3600))
            }
            // Still not valid when the pool re-signs it (after at most ttl).
            TokenClass::NotYetValid => {
                let nbf = now + self.ttl + 3600;
                (now, nbf, nbf + 3600)
            }
            _ => (now, now.saturating_sub(self.skew), now + self.ttl),
        }
    }

    /// The claims of a token of `class` for consumer `c`.
    fn claims(&self, class: TokenClass, c: &Consumer, seq: u64, now: u64) -> Map<String, Value> {
        let mut claims = Map::new();
        if let Some(iss) = &self.issuer {
            claims.insert("iss".into(), iss.clone().into());
        }
        if !self.key_in_kid {
            let key = if class == TokenClass::UnknownIssuer {
                format!("unknown-{}", uuid::Uuid::new_v4().simple())
            } else {
                c.key.clone()
            };
            claims.insert(self.key_claim.clone(), key.into());
        } else if class == TokenClass::UnknownIssuer && self.issuer.is_some() {
            // aws-http-api: the issuer is what is unknown.
            claims.insert("iss".into(), "https://unknown-issuer.invalid".into());
        }
        claims.insert("sub".into(), self.render(&self.sub, c, seq).into());
        if let Some(aud) = &self.aud {
            claims.insert("aud".into(), aud.clone());
        }
        if let Some(scope) = &self.scope {
            claims.insert("scope".into(), scope.clone().into());
        }
        for (k, v) in &self.claims {
            let v = match v {
                Value::String(s) => Value::String(self.render(s, c, seq)),
                other => other.clone(),
            };
            claims.insert(k.clone(), v);
        }
        let (iat, nbf, exp) = self.times(class, now);
        claims.insert("iat".into(), iat.into());
        claims.insert("nbf".into(), nbf.into());
        claims.insert("exp".into(), exp.into());
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        if class == TokenClass::Oversized {
            let pad = (self.oversize * 3 / 4).saturating_sub(400);
            claims.insert("pad".into(), "x".repeat(pad).into());
        }
        claims
    }

    /// The header's `kid`: the consumer's (or, keyed by `kid`, its key), or
    /// an unknown one for `unknown-issuer` when the kid is the key.
    fn kid(&self, class: TokenClass, c: &Consumer) -> Option<String> {
        if !self.key_in_kid {
            return c.kid.clone();
        }
        if class == TokenClass::UnknownIssuer && self.issuer.is_none() {
            Some(format!("unknown-{}", uuid::Uuid::new_v4().simple()))
        } else {
            Some(c.kid_or_key().to_owned())
        }
    }

    /// Mints the token(s) of `class` for consumer `ci` at `now` (Unix seconds).
    /// Returns what the request carries and when it must be replaced
    /// (`now + ttl`, the `exp` of a valid token; the other classes keep their
    /// offsets from the signing time, so they stay what they are until then).
    pub fn mint(&self, class: TokenClass, ci: usize, now: u64) -> (Carried, u64) {
        let started = Instant::now();
        let seq = self.counter.fetch_add(1, Ordering::Relaxed);
        let rotated = self.rotated(ci);
        let c = rotated.as_deref().unwrap_or(&self.consumers[ci]);
        let claims = self.claims(class, c, seq, now);
        let kid = self.kid(class, c);
        let carried = self.sign(class, (ci, c), claims, kid.as_deref());
        if class.signed() {
            let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            let _ = s.signing.record(started.elapsed().as_nanos() as u64);
            s.signed += 1;
        }
        // Re-sign by the time a valid token minted now would expire.
        (carried, now + self.ttl)
    }

    /// Encodes and signs `claims` as `class` asks: with the consumer's key,
    /// another key, the public key as an HMAC secret, no signature, or not at all.
    fn sign(
        &self,
        class: TokenClass,
        (ci, c): (usize, &Consumer),
        mut claims: Map<String, Value>,
        kid: Option<&str>,
    ) -> Carried {
        let typ = self.typ.as_deref();
        let sign = |alg: &str, key: &Key, claims: &Map<String, Value>| {
            jwt::encode(&jwt::header(alg, typ, kid), claims, key)
        };
        match class {
            TokenClass::Missing => Carried::None,
            TokenClass::Malformed => Carried::One("eyJhbGciOiJIUzI1NiJ9.not-base64!.%%%".into()),
            TokenClass::AlgNone => {
                let input = jwt::signing_input(&jwt::header("none", typ, kid), &claims);
                Carried::One(format!("{input}."))
            }
            TokenClass::BadSignature => {
                let mut t = sign(c.alg.name(), &c.signing, &claims);
                // Flip one character in the middle of the signature (stays base64url).
                let dot = t.rfind('.').unwrap_or(0);
                let at = dot + 1 + (t.len() - dot - 1) / 2;
                let flipped = if &t[at..=at] == "A" { "B" } else { "A" };
                t.replace_range(at..=at, flipped);
                Carried::One(t)
            }
            TokenClass::WrongKey => match self.wrong.get(ci) {
                Some(k) => Carried::One(sign(c.alg.name(), k, &claims)),
                // Not prepared (the class was not given to `new`): any other
                // key will do, here a random HMAC secret under the same header.
                None => Carried::One(sign(c.alg.name(), &random_hmac(), &claims)),
            },
            TokenClass::AlgConfusion => {
                match self
                    .confusion
                    .get(ci)
                    .cloned()
                    .unwrap_or_else(|| confusion_key(c))
                {
                    Some(k) => Carried::One(sign("HS256", &k, &claims)),
                    // An HMAC consumer has no public key: `new` refuses that pairing.
                    None => Carried::One(sign(c.alg.name(), &random_hmac(), &claims)),
                }
            }
            TokenClass::Duplicate => {
                let a = sign(c.alg.name(), &c.signing, &claims);
                claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
                let b = sign(c.alg.name(), &c.signing, &claims);
                Carried::Two(a, b)
            }
            _ => Carried::One(sign(c.alg.name(), &c.signing, &claims)),
        }
    }
}
