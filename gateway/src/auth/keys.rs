//! Verification keys built once per credential: an HMAC key for HS*, and
//! for RS*/PS*/ES*/EdDSA the raw public key taken out of the PEM's
//! SubjectPublicKeyInfo (RSA: the PKCS#1 `RSAPublicKey`; EC: the
//! uncompressed point; Ed25519: 32 key bytes; Ed448: 57). ring verifies
//! everything but ES512 (P-521) and Ed448, which it does not do; those two go
//! to RustCrypto's `p521` and `ed448-goldilocks-plus`. A key is checked when
//! the credential is built, so a credential that loads can verify.

use ring::signature::{self, UnparsedPublicKey};

/// One credential's verifier.
pub enum Verifier {
    Hmac(ring::hmac::Key),
    Public(UnparsedPublicKey<Vec<u8>>),
    /// ES512: ECDSA over P-521 with SHA-512, the JOSE R‖S signature.
    P521(Box<p521::ecdsa::VerifyingKey>),
    /// EdDSA with an Ed448 key (RFC 8032 "Ed448", empty context).
    Ed448(Box<ed448_goldilocks_plus::VerifyingKey>),
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verifier::Hmac(_) => "Verifier::Hmac",
            Verifier::Public(_) => "Verifier::Public",
            Verifier::P521(_) => "Verifier::P521",
            Verifier::Ed448(_) => "Verifier::Ed448",
        })
    }
}

/// The object identifiers (DER contents) of the SPKI algorithms we tell apart.
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71]; // 1.3.101.113
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70]; // 1.3.101.112
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const OID_SECP521R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23]; // 1.3.132.0.35
const OID_SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22]; // 1.3.132.0.34
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]; // 1.2.840.113549.1.1.1

impl Verifier {
    /// True when `signature` signs `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Hmac(k) => ring::hmac::verify(k, message, signature).is_ok(),
            Verifier::Public(k) => k.verify(message, signature).is_ok(),
            Verifier::P521(k) => {
                use p521::ecdsa::signature::Verifier as _;
                p521::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|sig| k.verify(message, &sig).is_ok())
            }
            Verifier::Ed448(k) => ed448_goldilocks_plus::Signature::try_from(signature)
                .is_ok_and(|sig| k.verify_raw(&sig, message).is_ok()),
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
        let block = pem::parse(pem).map_err(|_| PublicKeyError::NotPem)?;
        let der = block.contents();
        let (oid, params, raw) = match block.tag() {
            "RSA PUBLIC KEY" => (&[][..], &[][..], der),
            "PUBLIC KEY" => spki(der).ok_or(PublicKeyError::Spki)?,
            other => return Err(PublicKeyError::Block(other.to_owned())),
        };
        match alg {
            "ES512" => {
                if oid != OID_EC_PUBLIC_KEY || params != OID_SECP521R1 {
                    return Err(PublicKeyError::Curve(alg.to_owned()));
                }
                let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(raw)
                    .map_err(|_| PublicKeyError::Point)?;
                return Ok(Verifier::P521(Box::new(key)));
            }
            "EdDSA" if oid == OID_ED448 => {
                let bytes: &[u8; 57] = raw.try_into().map_err(|_| PublicKeyError::Point)?;
                let key = ed448_goldilocks_plus::VerifyingKey::from_bytes(bytes)
                    .map_err(|_| PublicKeyError::Point)?;
                return Ok(Verifier::Ed448(Box::new(key)));
            }
            "EdDSA" if oid != OID_ED25519 || raw.len() != 32 => {
                return Err(PublicKeyError::Curve(alg.to_owned()));
            }
            // The key must be of the credential's kind; ring would take any
            // bytes here and then refuse every token.
            "ES256" | "ES384" => {
                let curve = if alg == "ES256" {
                    OID_PRIME256V1
                } else {
                    OID_SECP384R1
                };
                if oid != OID_EC_PUBLIC_KEY || params != curve {
                    return Err(PublicKeyError::Curve(alg.to_owned()));
                }
            }
            _ if rsa_params(alg).is_some() && !(oid.is_empty() || oid == OID_RSA) => {
                return Err(PublicKeyError::Curve(alg.to_owned()));
            }
            _ => {}
        }
        let raw = raw.to_vec();
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
    #[error("not a key for {0}")]
    Curve(String),
    #[error("not a point on the key's curve")]
    Point,
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

/// A SubjectPublicKeyInfo, SEQUENCE { AlgorithmIdentifier { OID, params? }, BIT STRING }:
/// the algorithm's OID, its parameters' contents when they are an OID (an
/// EC key's named curve; else empty), and the key bytes.
fn spki(spki: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (0x30, seq, _) = der(spki)? else {
        return None;
    };
    let (0x30, alg, rest) = der(seq)? else {
        return None;
    };
    let (0x06, oid, params) = der(alg)? else {
        return None;
    };
    let params = match der(params) {
        Some((0x06, curve, _)) => curve,
        _ => &[],
    };
    let (0x03, bits, _) = der(rest)? else {
        return None;
    };
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then_some((oid, params, key))
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
