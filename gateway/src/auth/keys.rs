//! Verification keys built once per credential, for ring: an HMAC key for
//! HS*, and for RS*/PS*/ES*/EdDSA the raw public key taken out of the PEM's
//! SubjectPublicKeyInfo (RSA: the PKCS#1 `RSAPublicKey`; EC: the
//! uncompressed point; Ed25519: the 32 key bytes).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{self, UnparsedPublicKey};

/// One credential's verifier.
pub enum Verifier {
    Hmac(ring::hmac::Key),
    Public(UnparsedPublicKey<Vec<u8>>),
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verifier::Hmac(_) => "Verifier::Hmac",
            Verifier::Public(_) => "Verifier::Public",
        })
    }
}

impl Verifier {
    /// True when `signature` signs `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Hmac(k) => ring::hmac::verify(k, message, signature).is_ok(),
            Verifier::Public(k) => k.verify(message, signature).is_ok(),
        }
    }

    pub fn hmac(alg: &str, secret: &[u8]) -> Option<Verifier> {
        let a = match alg {
            "HS256" => ring::hmac::HMAC_SHA256,
            "HS384" => ring::hmac::HMAC_SHA384,
            "HS512" => ring::hmac::HMAC_SHA512,
            _ => return None,
        };
        Some(Verifier::Hmac(ring::hmac::Key::new(a, secret)))
    }

    /// From a PEM public key (`BEGIN PUBLIC KEY`, SPKI; or `BEGIN RSA PUBLIC KEY`, PKCS#1).
    pub fn public(alg: &str, pem: &str) -> Result<Verifier, PublicKeyError> {
        let (label, der) = pem_decode(pem).ok_or(PublicKeyError::NotPem)?;
        let raw = match label.as_str() {
            "RSA PUBLIC KEY" => der,
            "PUBLIC KEY" => spki_key(&der).ok_or(PublicKeyError::Spki)?.to_vec(),
            other => return Err(PublicKeyError::Block(other.to_owned())),
        };
        let algorithm: &'static dyn signature::VerificationAlgorithm = match (rsa_params(alg), alg)
        {
            (Some(p), _) => p,
            (None, "ES256") => &signature::ECDSA_P256_SHA256_FIXED,
            (None, "ES384") => &signature::ECDSA_P384_SHA384_FIXED,
            (None, "EdDSA") => &signature::ED25519,
            _ => return Err(PublicKeyError::Unsupported(alg.to_owned())),
        };
        Ok(Verifier::Public(UnparsedPublicKey::new(algorithm, raw)))
    }
}

/// A public key that cannot verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyError {
    #[error("not a PEM public key")]
    NotPem,
    #[error("malformed SubjectPublicKeyInfo")]
    Spki,
    #[error("unexpected PEM block {0:?} (want PUBLIC KEY)")]
    Block(String),
    #[error("{0} cannot be verified here")]
    Unsupported(String),
}

/// ring's parameters for an RSA JOSE algorithm (RS*, PS*).
pub fn rsa_params(alg: &str) -> Option<&'static signature::RsaParameters> {
    Some(match alg {
        "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
        "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
        "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
        "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// The label and DER bytes of the first PEM block in `pem`.
pub fn pem_decode(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body_start = label_end + 5;
    let end = rest.find("-----END ")?;
    let b64: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some((label, STANDARD.decode(b64).ok()?))
}

/// One DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The key bytes of a SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }.
fn spki_key(spki: &[u8]) -> Option<&[u8]> {
    let (0x30, seq, _) = der(spki)? else {
        return None;
    };
    let (0x30, _alg, rest) = der(seq)? else {
        return None;
    };
    let (0x03, bits, _) = der(rest)? else {
        return None;
    };
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        assert!(Verifier::public("RS256", "nope").is_err());
        assert!(
            Verifier::public(
                "RS256",
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
            )
            .is_err()
        );
        assert!(Verifier::hmac("RS256", b"x").is_none());
        assert_eq!(der(&[0x30, 0x82, 0x00]), None, "truncated length");
    }
}
