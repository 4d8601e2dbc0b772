//! Keys made here: `loadgen keys gen`'s files (a secret, or a private key
//! with its public PEM, JWKS and discovery document), and the fresh keys the
//! `wrong-key` class and key-rotation events sign with. ring cannot generate
//! RSA keys, so the `rsa` crate does that one step (key generation only:
//! nothing is decrypted with it).

use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair};
use serde_json::json;

use super::jwt::{Alg, Key, KeyError, pem};

/// What `keys gen` wrote.
#[derive(Debug)]
pub struct Generated {
    pub files: Vec<std::path::PathBuf>,
}

/// A random secret of 64 characters `[A-Za-z0-9]` (Kong uses the secret's bytes).
pub fn random_secret() -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..64)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// A new private key for `alg` as PKCS#8 PEM (`bits` for RSA: 2048, 3072 or 4096).
pub fn generate_private_pem(alg: Alg, bits: usize) -> Result<String, KeyError> {
    let rng = SystemRandom::new();
    let failed = |reason: String| KeyError::Generate { alg, reason };
    let der = match alg {
        a if a.is_hmac() => return Err(KeyError::NeedsSecret(a)),
        a if a.is_rsa() => {
            use rsa::pkcs8::EncodePrivateKey as _;
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(KeyError::Bits(bits));
            }
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
                .map_err(|e| failed(e.to_string()))?;
            key.to_pkcs8_der()
                .map_err(|e| failed(e.to_string()))?
                .as_bytes()
                .to_vec()
        }
        Alg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|e| failed(e.to_string()))?
                .as_ref()
                .to_vec()
        }
        Alg::ES384 => {
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
                .map_err(|e| failed(e.to_string()))?
                .as_ref()
                .to_vec()
        }
        Alg::ES512 => {
            use rsa::pkcs8::EncodePrivateKey as _;
            // A random scalar below 2^521, drawn again in the rare case it is
            // zero or not below the group order.
            let secret = loop {
                let mut bytes = [0u8; 66];
                rng.fill(&mut bytes).map_err(|e| failed(e.to_string()))?;
                bytes[0] &= 0x01;
                if let Ok(k) = p521::SecretKey::from_slice(&bytes) {
                    break k;
                }
            };
            secret
                .to_pkcs8_der()
                .map_err(|e| failed(e.to_string()))?
                .as_bytes()
                .to_vec()
        }
        _ => {
            // ring writes PKCS#8 v2 (RFC 5958, with the public key), which
            // OpenSSL 3.0 does not read: re-wrap the seed as v1 (RFC 8410).
            let v2 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| failed(e.to_string()))?;
            let seed = v2
                .as_ref()
                .get(16..48)
                .ok_or_else(|| failed("unexpected PKCS#8 layout".into()))?;
            let mut v1 = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            v1.extend_from_slice(seed);
            v1
        }
    };
    Ok(pem("PRIVATE KEY", &der))
}

/// A new Ed448 private key (EdDSA) as PKCS#8 v1 PEM (RFC 8410): any 57
/// random bytes are a private key.
pub fn generate_ed448_pem() -> Result<String, KeyError> {
    let mut der = vec![
        0x30, 0x47, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x04, 0x3b, 0x04,
        0x39,
    ];
    let mut seed = [0u8; 57];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|e| KeyError::Generate {
            alg: Alg::EdDSA,
            reason: e.to_string(),
        })?;
    der.extend_from_slice(&seed);
    Ok(pem("PRIVATE KEY", &der))
}

/// `loadgen keys gen`: writes `secret` (HS*), or `private.pem`, `public.pem`
/// and `jwks.json`, plus `openid-configuration.json` for an issuer URL.
/// Existing files are kept unless `force`.
pub fn keys_gen(
    alg: Alg,
    ed448: bool,
    kid: Option<&str>,
    bits: usize,
    issuer: Option<&str>,
    out: &std::path::Path,
    force: bool,
) -> Result<Generated, KeyError> {
    let names: Vec<&str> = if alg.is_hmac() {
        vec!["secret"]
    } else {
        let mut v = vec!["private.pem", "public.pem", "jwks.json"];
        if issuer.is_some() {
            v.push("openid-configuration.json");
        }
        v
    };
    if !force {
        for n in &names {
            let p = out.join(n);
            if p.exists() {
                return Err(KeyError::Exists(p));
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|source| KeyError::Io {
        path: out.to_owned(),
        source,
    })?;
    let write = |name: &str, text: &str| -> Result<std::path::PathBuf, KeyError> {
        let p = out.join(name);
        reports::write_atomic(&p, text.as_bytes()).map_err(|source| KeyError::Io {
            path: p.clone(),
            source,
        })?;
        Ok(p)
    };
    let mut files = Vec::new();
    if alg.is_hmac() {
        files.push(write("secret", &format!("{}\n", random_secret()))?);
        return Ok(Generated { files });
    }
    let private = if ed448 {
        generate_ed448_pem()?
    } else {
        generate_private_pem(alg, bits)?
    };
    let key = Key::from_pem(alg, &private)?;
    files.push(write("private.pem", &private)?);
    files.push(write("public.pem", &key.public_pem().unwrap_or_default())?);
    let jwks = json!({ "keys": [key.jwk(kid)] });
    files.push(write("jwks.json", &format!("{jwks:#}\n"))?);
    if let Some(iss) = issuer {
        let iss = iss.trim_end_matches('/');
        let doc = json!({
            "issuer": iss,
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "id_token_signing_alg_values_supported": [alg.name()],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        });
        files.push(write("openid-configuration.json", &format!("{doc:#}\n"))?);
    }
    Ok(Generated { files })
}
