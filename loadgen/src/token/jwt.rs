//! JWT signing for loadgen: keys (generated, or read from PEM files and
//! secrets), compact JWS encoding, the public JWK and JWKS, and the
//! deliberately invalid token classes gateways must refuse.
//!
//! Signing is ring's (HMAC, RSA PKCS#1 v1.5 and PSS, ECDSA P-256/P-384 fixed
//! signatures, Ed25519), and RustCrypto's for what ring lacks: ES512
//! (`p521`) and EdDSA over Ed448 (`ed448-goldilocks-plus`), the crates the
//! gateway verifies them with. Keys are made in `keygen`.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Map, Value};

/// A key that could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "unknown algorithm {0:?} (expected one of: HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
    )]
    UnknownAlg(String),
    #[error("{0} needs a private key, not a secret")]
    NeedsKey(Alg),
    #[error("{0} takes a secret, not a key file")]
    NeedsSecret(Alg),
    #[error("the secret is empty")]
    EmptySecret,
    /// The PEM text itself: not PEM, or a block of the wrong kind.
    #[error("{0}")]
    Pem(String),
    #[error("not {what} usable for {alg}: {reason}")]
    Unusable {
        what: &'static str,
        alg: Alg,
        reason: String,
    },
    #[error("--bits {0}: RSA keys are 2048, 3072 or 4096 bits")]
    Bits(usize),
    #[error("{alg} key generation failed: {reason}")]
    Generate { alg: Alg, reason: String },
    #[error("{} exists; pass --force to overwrite", .0.display())]
    Exists(std::path::PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A JOSE signing algorithm this crate signs with.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

pub const ALGS: [Alg; 13] = [
    Alg::HS256,
    Alg::HS384,
    Alg::HS512,
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::PS512,
    Alg::ES256,
    Alg::ES384,
    Alg::ES512,
    Alg::EdDSA,
];

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Result<Alg, KeyError> {
        ALGS.into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| KeyError::UnknownAlg(s.to_owned()))
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }

    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512
        )
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

enum Signer {
    Hmac(ring::hmac::Key),
    Rsa(Arc<RsaKeyPair>, &'static dyn signature::RsaEncoding),
    Ecdsa(Arc<EcdsaKeyPair>),
    Ed25519(Arc<Ed25519KeyPair>),
    /// ES512: ring does not sign over P-521; RustCrypto's `p521` does.
    P521(Box<p521::ecdsa::SigningKey>),
    /// EdDSA over Ed448 (RFC 8032, empty context), which ring lacks too.
    Ed448(Box<ed448_goldilocks_plus::SigningKey>),
}

/// A signing key with its algorithm, and for asymmetric keys the public part.
#[derive(Clone)]
pub struct Key {
    pub alg: Alg,
    signer: Arc<Signer>,
    /// SubjectPublicKeyInfo DER (asymmetric keys).
    spki: Option<Vec<u8>>,
    /// The public JWK's key members (`kty`, `n`/`e`, `crv`/`x`/`y`).
    jwk: Option<Map<String, Value>>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// SubjectPublicKeyInfo prefixes for the fixed-size public keys.
const SPKI_P256: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const SPKI_P384: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
const SPKI_ED25519: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const SPKI_P521: [u8; 25] = [
    0x30, 0x81, 0x9b, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05,
    0x2b, 0x81, 0x04, 0x00, 0x23, 0x03, 0x81, 0x86, 0x00,
];
const SPKI_ED448: [u8; 12] = [
    0x30, 0x43, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x03, 0x3a, 0x00,
];
/// The Ed448 algorithm identifier (1.3.101.113) as it appears in PKCS#8.
const OID_ED448: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x71];

fn b64u(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// PEM text of `der` under `label`, 64 columns.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl Key {
    /// An HMAC key: the secret's bytes, as Kong uses them.
    pub fn hmac(alg: Alg, secret: &[u8]) -> Result<Key, KeyError> {
        let a = match alg {
            Alg::HS256 => ring::hmac::HMAC_SHA256,
            Alg::HS384 => ring::hmac::HMAC_SHA384,
            Alg::HS512 => ring::hmac::HMAC_SHA512,
            other => return Err(KeyError::NeedsKey(other)),
        };
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        Ok(Key {
            alg,
            signer: Arc::new(Signer::Hmac(ring::hmac::Key::new(a, secret))),
            spki: None,
            jwk: None,
        })
    }

    /// A private key in PEM: PKCS#8 `PRIVATE KEY` for every algorithm, or
    /// PKCS#1 `RSA PRIVATE KEY` for RSA. Errors say what does not match.
    pub fn from_pem(alg: Alg, text: &str) -> Result<Key, KeyError> {
        if alg.is_hmac() {
            return Err(KeyError::NeedsSecret(alg));
        }
        let block = pem::parse(text).map_err(|e| KeyError::Pem(format!("not a PEM file ({e})")))?;
        let (label, der) = (block.tag().to_owned(), block.into_contents());
        if !alg.is_rsa() && label != "PRIVATE KEY" {
            return Err(KeyError::Pem(format!(
                "PEM block {label:?}: {alg} needs a PKCS#8 `PRIVATE KEY` (convert with `openssl pkcs8 -topk8 -nocrypt`)"
            )));
        }
        let (signer, spki, jwk) = match alg {
            a if a.is_rsa() => rsa_parts(alg, &label, &der)?,
            Alg::ES256 | Alg::ES384 => ec_parts(alg, &der, &SystemRandom::new())?,
            Alg::ES512 => p521_parts(alg, &der)?,
            // EdDSA names both curves: the key's algorithm identifier tells.
            _ if der.windows(OID_ED448.len()).any(|w| w == OID_ED448) => ed448_parts(alg, &der)?,
            _ => ed25519_parts(alg, &der)?,
        };
        Ok(Key {
            alg,
            signer: Arc::new(signer),
            spki: Some(spki),
            jwk: Some(jwk),
        })
    }

    /// Signs `message` (the JWS signing input).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &*self.signer {
            Signer::Hmac(k) => ring::hmac::sign(k, message).as_ref().to_vec(),
            Signer::Rsa(pair, encoding) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                // Cannot fail with a buffer of the modulus length and the system RNG.
                let _ = pair.sign(*encoding, &rng, message, &mut sig);
                sig
            }
            Signer::Ecdsa(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .unwrap_or_default(),
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::P521(key) => {
                use p521::ecdsa::signature::Signer as _;
                let sig: p521::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
            Signer::Ed448(key) => key.sign_raw(message).to_bytes().to_vec(),
        }
    }

    /// The public key as PEM (`BEGIN PUBLIC KEY`, SPKI); None for HMAC.
    pub fn public_pem(&self) -> Option<String> {
        self.spki.as_ref().map(|d| pem("PUBLIC KEY", d))
    }

    /// The public JWK with `kid`, `alg` and `use`; None for HMAC.
    pub fn jwk(&self, kid: Option<&str>) -> Option<Value> {
        let mut jwk = self.jwk.clone()?;
        if let Some(kid) = kid {
            jwk.insert("kid".into(), kid.into());
        }
        jwk.insert("alg".into(), self.alg.name().into());
        jwk.insert("use".into(), "sig".into());
        Some(Value::Object(jwk))
    }
}

/// Signer, SPKI DER and JWK members of a PEM key of one family.
type Parts = (Signer, Vec<u8>, Map<String, Value>);

/// RS*/PS*: PKCS#8 or PKCS#1.
fn rsa_parts(alg: Alg, label: &str, der: &[u8]) -> Result<Parts, KeyError> {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
    use rsa::traits::PublicKeyParts as _;
    let (pair, parsed) = match label {
        "PRIVATE KEY" => (
            RsaKeyPair::from_pkcs8(der),
            rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| e.to_string()),
        ),
        "RSA PRIVATE KEY" => (
            RsaKeyPair::from_der(der),
            rsa::RsaPrivateKey::from_pkcs1_der(der).map_err(|e| e.to_string()),
        ),
        other => {
            return Err(KeyError::Pem(format!(
                "PEM block {other:?}: {alg} needs `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY`"
            )));
        }
    };
    let unusable = |reason: String| KeyError::Unusable {
        what: "an RSA private key",
        alg,
        reason,
    };
    let pair = pair.map_err(|e| unusable(e.to_string()))?;
    let parsed = parsed.map_err(unusable)?;
    let public = parsed.to_public_key();
    let spki = public
        .to_public_key_der()
        .map_err(|e| unusable(e.to_string()))?
        .as_bytes()
        .to_vec();
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "RSA".into());
    jwk.insert("n".into(), b64u(&public.n().to_bytes_be()).into());
    jwk.insert("e".into(), b64u(&public.e().to_bytes_be()).into());
    let encoding: &'static dyn signature::RsaEncoding = match alg {
        Alg::RS256 => &signature::RSA_PKCS1_SHA256,
        Alg::RS384 => &signature::RSA_PKCS1_SHA384,
        Alg::RS512 => &signature::RSA_PKCS1_SHA512,
        Alg::PS256 => &signature::RSA_PSS_SHA256,
        Alg::PS384 => &signature::RSA_PSS_SHA384,
        _ => &signature::RSA_PSS_SHA512,
    };
    Ok((Signer::Rsa(Arc::new(pair), encoding), spki, jwk))
}

/// ES256/ES384: PKCS#8, fixed-size R||S signatures.
fn ec_parts(alg: Alg, der: &[u8], rng: &SystemRandom) -> Result<Parts, KeyError> {
    let (fixed, prefix, crv, half): (_, &[u8], _, _) = if alg == Alg::ES256 {
        (
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SPKI_P256,
            "P-256",
            32,
        )
    } else {
        (
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            &SPKI_P384,
            "P-384",
            48,
        )
    };
    let pair = EcdsaKeyPair::from_pkcs8(fixed, der, rng).map_err(|e| KeyError::Unusable {
        what: if crv == "P-256" {
            "a P-256 private key"
        } else {
            "a P-384 private key"
        },
        alg,
        reason: e.to_string(),
    })?;
    let point = pair.public_key().as_ref().to_vec();
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "EC".into());
    jwk.insert("crv".into(), crv.into());
    jwk.insert("x".into(), b64u(&point[1..1 + half]).into());
    jwk.insert("y".into(), b64u(&point[1 + half..]).into());
    Ok((
        Signer::Ecdsa(Arc::new(pair)),
        [prefix, &point].concat(),
        jwk,
    ))
}

/// EdDSA: Ed25519 in PKCS#8 (v1 or v2).
fn ed25519_parts(alg: Alg, der: &[u8]) -> Result<Parts, KeyError> {
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| KeyError::Unusable {
        what: "an Ed25519 private key",
        alg,
        reason: e.to_string(),
    })?;
    let public = pair.public_key().as_ref().to_vec();
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "OKP".into());
    jwk.insert("crv".into(), "Ed25519".into());
    jwk.insert("x".into(), b64u(&public).into());
    Ok((
        Signer::Ed25519(Arc::new(pair)),
        [&SPKI_ED25519[..], &public].concat(),
        jwk,
    ))
}

/// ES512: P-521 in PKCS#8, fixed-size R||S (66 + 66 bytes) signatures.
fn p521_parts(alg: Alg, der: &[u8]) -> Result<Parts, KeyError> {
    use rsa::pkcs8::DecodePrivateKey as _;
    let unusable = |reason: String| KeyError::Unusable {
        what: "a P-521 private key",
        alg,
        reason,
    };
    let secret = p521::SecretKey::from_pkcs8_der(der).map_err(|e| unusable(e.to_string()))?;
    let key = p521::ecdsa::SigningKey::from_slice(&secret.to_bytes())
        .map_err(|e| unusable(e.to_string()))?;
    let point = p521::ecdsa::VerifyingKey::from(&key).to_encoded_point(false);
    let point = point.as_bytes();
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "EC".into());
    jwk.insert("crv".into(), "P-521".into());
    jwk.insert("x".into(), b64u(&point[1..67]).into());
    jwk.insert("y".into(), b64u(&point[67..]).into());
    Ok((
        Signer::P521(Box::new(key)),
        [&SPKI_P521[..], point].concat(),
        jwk,
    ))
}

/// EdDSA: Ed448 in PKCS#8 (RFC 8410: the 57 key bytes in an inner OCTET
/// STRING, as OpenSSL writes it). Read here, not by the crate's PKCS#8
/// decoder, which expects the key bytes without that inner wrapping.
fn ed448_parts(alg: Alg, der: &[u8]) -> Result<Parts, KeyError> {
    let unusable = |reason: String| KeyError::Unusable {
        what: "an Ed448 private key",
        alg,
        reason,
    };
    let info = rsa::pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| unusable(e.to_string()))?;
    let seed = match info.private_key {
        [0x04, 57, seed @ ..] if seed.len() == 57 => seed,
        _ => return Err(unusable("the private key is not 57 bytes".into())),
    };
    let key =
        ed448_goldilocks_plus::SigningKey::try_from(seed).map_err(|e| unusable(e.to_string()))?;
    let public = key.verifying_key().to_bytes();
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "OKP".into());
    jwk.insert("crv".into(), "Ed448".into());
    jwk.insert("x".into(), b64u(&public).into());
    Ok((
        Signer::Ed448(Box::new(key)),
        [&SPKI_ED448[..], &public[..]].concat(),
        jwk,
    ))
}

/// A compact JWS: `base64url(header).base64url(claims).base64url(signature)`.
pub fn encode(header: &Map<String, Value>, claims: &Map<String, Value>, key: &Key) -> String {
    let mut token = signing_input(header, claims);
    let sig = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&b64u(&sig));
    token
}

/// `base64url(header).base64url(claims)`.
pub fn signing_input(header: &Map<String, Value>, claims: &Map<String, Value>) -> String {
    let h = serde_json::to_vec(header).unwrap_or_default();
    let c = serde_json::to_vec(claims).unwrap_or_default();
    format!("{}.{}", b64u(&h), b64u(&c))
}

/// A JOSE header: `alg`, `typ` and an optional `kid`.
pub fn header(alg: &str, typ: Option<&str>, kid: Option<&str>) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert("alg".into(), alg.into());
    if let Some(t) = typ {
        h.insert("typ".into(), t.into());
    }
    if let Some(k) = kid {
        h.insert("kid".into(), k.into());
    }
    h
}
