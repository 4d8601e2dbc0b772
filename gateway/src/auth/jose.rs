//! The JOSE header's two fields the jwt plugin reads (`alg` and the key
//! claim), remembered per thread by the header segment's exact base64url
//! text. Clients send the same few headers (`{"alg":"HS256","typ":"JWT"}`
//! is one string for every token a signer issues), so decoding and scanning
//! it again for every request is work with a known answer. What is kept is a
//! pure function of the segment's bytes and the key claim's name; nothing
//! about the token's validity is kept, and every token is still verified.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::json;

/// What a JOSE header says: `alg` when it is one Kong knows (a plain JSON
/// string naming one), and the raw JSON text of the key claim, if there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Option<&'static str>,
    pub key: Option<Box<str>>,
}

/// Headers remembered per thread: a handful covers every signer in a run.
const SLOTS: usize = 8;
/// Longer segments are parsed every time.
const MAX_SEGMENT: usize = 256;

struct Memo {
    segment: Box<str>,
    kcn: Box<str>,
    header: Header,
}

thread_local! {
    static MEMO: RefCell<(usize, [Option<Memo>; SLOTS])> = const {
        RefCell::new((0, [const { None }; SLOTS]))
    };
}

/// Decodes and scans `segment` (None: not base64url JSON of an object).
pub fn parse(segment: &str, kcn: &str) -> Option<Header> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 192];
    let mut spill = Vec::new();
    let bytes = decode_into(segment, &mut buf, &mut spill)?;
    let [alg, key, _] = json::pick(bytes, ["alg", kcn, ""])?;
    Some(Header {
        alg: alg.and_then(plain_str).and_then(known_algorithm),
        key: key.map(|k| String::from_utf8_lossy(k).into()),
    })
}

/// The first dot of `token` and the header its first segment holds for key
/// claim `kcn`, parsed once per thread; None when there is no dot or the
/// segment is not a valid header. A remembered segment followed by a dot
/// also tells where the first dot is, so a hit costs one prefix compare
/// and no search (segments hold no dot). (The key claim is cloned: it is
/// almost never in the header.)
pub fn header(token: &str, kcn: &str) -> Option<(usize, Header)> {
    let bytes = token.as_bytes();
    let split = |bytes: &[u8]| memchr::memchr(b'.', bytes);
    MEMO.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            let d1 = split(bytes)?;
            return Some((d1, parse(&token[..d1], kcn)?));
        };
        let (next, slots) = &mut *memo;
        if let Some(m) = slots.iter().flatten().find(|m| {
            bytes.get(m.segment.len()) == Some(&b'.')
                && bytes.starts_with(m.segment.as_bytes())
                && *m.kcn == *kcn
        }) {
            return Some((m.segment.len(), m.header.clone()));
        }
        let d1 = split(bytes)?;
        let segment = &token[..d1];
        let header = parse(segment, kcn)?;
        // Invalid headers are not kept: garbage must not push out real ones;
        // nor are long ones (a header with a `jwk` or `x5c`).
        if segment.len() <= MAX_SEGMENT {
            let slot = *next % SLOTS;
            *next = next.wrapping_add(1);
            slots[slot] = Some(Memo {
                segment: segment.into(),
                kcn: kcn.into(),
                header: header.clone(),
            });
        }
        Some((d1, header))
    })
}

/// A JSON string literal without escapes, as a borrowed `&str`; None for
/// anything else (escaped strings and non-strings take the serde path).
pub(super) fn plain_str(raw: &[u8]) -> Option<&str> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.iter().any(|&c| c == b'\\' || c == b'"') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// Base64url-decodes into `buf` when it fits, else into `spill`. SIMD
/// (base64-simd): 2.5x the base64 crate on token-sized inputs. Strict like
/// the base64 crate: no padding inside, canonical trailing bits.
/// The stack buffer is left uninitialised: zeroing it cost more than decoding.
pub(super) fn decode_into<'b>(
    part: &str,
    buf: &'b mut [MaybeUninit<u8>],
    spill: &'b mut Vec<u8>,
) -> Option<&'b [u8]> {
    let part = part.trim_end_matches('=').as_bytes();
    let b64 = base64_simd::URL_SAFE_NO_PAD;
    if b64.estimated_decoded_length(part.len()) <= buf.len() {
        let out = b64
            .decode(part, base64_simd::Out::from_uninit_slice(buf))
            .ok()?;
        Some(&*out)
    } else {
        *spill = b64.decode_to_vec(part).ok()?;
        Some(spill.as_slice())
    }
}

/// The algorithm named in a JOSE header, if a credential may name it; a
/// match rather than a scan of the credential list (`jwt::ALGORITHMS`) (it runs on every request).
pub(super) fn known_algorithm(alg: &str) -> Option<&'static str> {
    Some(match alg {
        "HS256" => "HS256",
        "HS384" => "HS384",
        "HS512" => "HS512",
        "RS256" => "RS256",
        "RS384" => "RS384",
        "RS512" => "RS512",
        "ES256" => "ES256",
        "ES384" => "ES384",
        "ES512" => "ES512",
        "PS256" => "PS256",
        "PS384" => "PS384",
        "PS512" => "PS512",
        "EdDSA" => "EdDSA",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_headers_are_what_parsing_gives() {
        // {"alg":"HS256","typ":"JWT"} and {"alg":"RS256","iss":"k"}
        let hs = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        let rs = "eyJhbGciOiJSUzI1NiIsImlzcyI6ImsifQ";
        let header = |seg: &str, kcn: &str| {
            let token = format!("{seg}.e30.sig");
            header(&token, kcn).map(|(d1, h)| {
                assert_eq!(d1, seg.len(), "the first dot");
                h
            })
        };
        for _ in 0..2 {
            let got = header(hs, "iss").unwrap();
            assert_eq!(got.alg, Some("HS256"));
            assert_eq!(got.key, None);
            let got = header(rs, "iss").unwrap();
            assert_eq!(
                (got.alg, got.key.as_deref()),
                (Some("RS256"), Some("\"k\""))
            );
            // The key claim's name is part of what is remembered.
            assert_eq!(header(rs, "sub").unwrap().key, None);
        }
        // {"alg":"none"}: a header, with no algorithm Kong knows.
        assert_eq!(header("eyJhbGciOiJub25lIn0", "iss").unwrap().alg, None);
        assert_eq!(header("e30x", "iss"), None);
        assert_eq!(header("W10", "iss"), None, "[] is no header");
        // More distinct headers than slots: each still parses right.
        use base64::Engine as _;
        for i in 0..3 * SLOTS {
            let seg = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("{{\"alg\":\"HS256\",\"iss\":\"k{i}\"}}"));
            let got = header(&seg, "iss").unwrap();
            assert_eq!(got.key.as_deref(), Some(format!("\"k{i}\"").as_str()));
        }
    }
}
