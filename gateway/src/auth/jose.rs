//! The JOSE header's two fields the jwt plugin reads (`alg` and the key
//! claim), remembered per thread by the header segment's exact base64url
//! text. Clients send the same few headers (`{"alg":"HS256","typ":"JWT"}`
//! is one string for every token a signer issues), so decoding and scanning
//! it again for every request is work with a known answer. What is kept is a
//! pure function of the segment's bytes and the key claim's name; nothing
//! about the token's validity is kept, and every token is still verified.

use std::cell::RefCell;

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
/// Longer segments are parsed every time (a header with a `jwk` or `x5c`).
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
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 192];
    let mut spill = Vec::new();
    let bytes = super::jwt::decode_into(segment, &mut buf, &mut spill)?;
    let [alg, key, _] = json::pick(bytes, ["alg", kcn, ""])?;
    Some(Header {
        alg: alg
            .and_then(super::jwt::plain_str)
            .and_then(super::jwt::known_algorithm),
        key: key.map(Into::into),
    })
}

/// The header `segment` holds for key claim `kcn`, parsed once per thread;
/// None when it is not a valid header. (The key claim is cloned: it is
/// almost never in the header.)
pub fn header(segment: &str, kcn: &str) -> Option<Header> {
    if segment.len() > MAX_SEGMENT {
        return parse(segment, kcn);
    }
    MEMO.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return parse(segment, kcn);
        };
        let (next, slots) = &mut *memo;
        if let Some(m) = slots
            .iter()
            .flatten()
            .find(|m| *m.segment == *segment && *m.kcn == *kcn)
        {
            return Some(m.header.clone());
        }
        // Invalid headers are not kept: garbage must not push out real ones.
        let header = parse(segment, kcn)?;
        let slot = *next % SLOTS;
        *next = next.wrapping_add(1);
        slots[slot] = Some(Memo {
            segment: segment.into(),
            kcn: kcn.into(),
            header: header.clone(),
        });
        Some(header)
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
