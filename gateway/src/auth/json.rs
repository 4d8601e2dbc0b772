//! A strict RFC 8259 scanner that validates a whole JSON document and hands
//! back up to three named top-level fields of an object as raw, borrowed
//! text, without building a tree. It is the JOSE header and claims reader of
//! the verify path: one pass over ~100 bytes, no allocation, where serde with
//! a borrowing visitor cost three times as much (docs/BENCHMARKS.md).
//!
//! Accepts exactly what `serde_json::from_slice::<serde_json::Value>` accepts
//! (the `agrees_with_serde_json` test checks this on a corpus): UTF-8, the
//! four whitespace bytes, nesting up to 127 levels; duplicate keys keep the
//! last value, as serde_json and Lua cjson both do.

/// Nesting limit counting the top-level object: serde_json's (it refuses 128).
const MAX_DEPTH: usize = 127;

/// The raw text of each named top-level field (`""` names nothing), or None
/// when `json` is not a single valid JSON object. The document is valid
/// UTF-8 and every value starts and ends on an ASCII byte, so each slice is
/// valid UTF-8 too; it stays bytes because making each a `&str` (a UTF-8
/// check per field) cost a quarter of the scan, and most callers compare.
pub fn pick<'a>(json: &'a [u8], names: [&str; 3]) -> Option<[Option<&'a [u8]>; 3]> {
    // No UTF-8 pass over the whole document up front: outside strings the
    // grammar admits only ASCII, so the scanner notes whether any string
    // holds a byte >= 0x80 and the document is checked only then (a
    // per-request pass that cost as much as a third of the scan).
    let mut s = Scanner {
        b: json,
        i: 0,
        high: false,
    };
    s.ws();
    if !s.eat(b'{') {
        return None;
    }
    let mut out: [Option<&[u8]>; 3] = [None; 3];
    s.ws();
    if !s.eat(b'}') {
        loop {
            s.ws();
            let (k0, k1, escaped) = s.string()?;
            s.ws();
            if !s.eat(b':') {
                return None;
            }
            s.ws();
            let v0 = s.i;
            // Strings and numbers inline; the rest through the general case.
            match s.peek()? {
                b'"' => s.string().map(drop)?,
                b'0'..=b'9' => s.number()?,
                _ => s.value(1)?,
            }
            let slot = if escaped {
                // Rare: unescape (which checks the key's UTF-8), then compare.
                let raw = std::str::from_utf8(json.get(k0 - 1..k1 + 1)?).ok()?;
                let owned: String = serde_json::from_str(raw).ok()?;
                names
                    .iter()
                    .position(|n| !n.is_empty() && same(n.as_bytes(), owned.as_bytes()))
            } else {
                let key = &json[k0..k1];
                names
                    .iter()
                    .position(|n| !n.is_empty() && same(n.as_bytes(), key))
            };
            if let Some(slot) = slot {
                out[slot] = Some(&json[v0..s.i]);
            }
            s.ws();
            if s.eat(b',') {
                continue;
            }
            if s.eat(b'}') {
                break;
            }
            return None;
        }
    }
    s.ws();
    if s.i != json.len() {
        return None;
    }
    if s.high && std::str::from_utf8(json).is_err() {
        return None;
    }
    Some(out)
}

/// Eight bytes from `b[i..]`, little-endian, if there are eight.
#[inline(always)]
fn word(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..i + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map(u64::from_le_bytes)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` that is zero, exact up to the lowest
/// one (a borrow can mark bytes above it, never below): enough to find the
/// first.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Marks the bytes a string scan must stop at: `"`, `\`, controls below
/// 0x20, and bytes >= 0x80 (UTF-8 to account for). Exact for the lowest.
#[inline(always)]
fn string_stops(x: u64) -> u64 {
    zero_bytes(x ^ (ONES * u64::from(b'"')))
        | zero_bytes(x ^ (ONES * u64::from(b'\\')))
        | (x.wrapping_sub(ONES * 0x20) & !x & HIGHS)
        | (x & HIGHS)
}

/// Marks the bytes that are not ASCII digits; exact for the lowest (adding
/// 6 carries out of a byte only from one that is no digit).
#[inline(always)]
fn non_digits(x: u64) -> u64 {
    let hi = 0xF0F0_F0F0_F0F0_F0F0;
    let want = ONES * 0x30;
    ((x & hi) ^ want) | ((x.wrapping_add(ONES * 6) & hi) ^ want)
}

/// String equality without a libc `memcmp` call: keys and names are a few
/// bytes, where the call costs more than the comparison.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// A string held a byte >= 0x80: the document needs a UTF-8 check.
    high: bool,
}

impl Scanner<'_> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    #[inline(always)]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string at the cursor: the bounds of its contents and whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        let mut escaped = false;
        loop {
            // Eight bytes at a time while there are eight, then one by one.
            let c = match word(self.b, self.i) {
                Some(x) => {
                    let stops = string_stops(x);
                    if stops == 0 {
                        self.i += 8;
                        continue;
                    }
                    self.i += stops.trailing_zeros() as usize / 8;
                    self.b[self.i]
                }
                None => {
                    let c = self.peek()?;
                    if (0x20..0x80).contains(&c) && c != b'"' && c != b'\\' {
                        self.i += 1;
                        continue;
                    }
                    c
                }
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Some((start, self.i - 1, escaped));
                }
                b'\\' => {
                    escaped = true;
                    match *self.b.get(self.i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                0x80.. => {
                    self.high = true;
                    self.i += 1;
                }
                _ => return None,
            }
        }
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(x) = word(self.b, self.i) {
            let stops = non_digits(x);
            if stops != 0 {
                self.i += stops.trailing_zeros() as usize / 8;
                return self.i - start;
            }
            self.i += 8;
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    #[inline(always)]
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Any value at the cursor, nested `depth` levels deep.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            open @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                self.ws();
                if self.eat(close) {
                    return Some(());
                }
                loop {
                    self.ws();
                    if open == b'{' {
                        self.string()?;
                        self.ws();
                        if !self.eat(b':') {
                            return None;
                        }
                        self.ws();
                    }
                    self.value(depth + 1)?;
                    self.ws();
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(close).then_some(());
                }
            }
            _ => None,
        }
    }
}

/// A JSON number as f64 (integers of up to 15 digits without a float
/// parse); None for anything that is not a number.
pub fn number(b: &[u8]) -> Option<f64> {
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')) as f64);
    }
    if !matches!(b.first(), Some(b'-' | b'0'..=b'9')) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_borrowed_fields() {
        let [a, b, c] = pick(
            br#" { "alg" : "HS256","x":[1,{"y":2}], "iss":"k","exp":12 } "#,
            ["alg", "iss", "exp"],
        )
        .unwrap();
        assert_eq!(
            (a, b, c),
            (
                Some(&b"\"HS256\""[..]),
                Some(&b"\"k\""[..]),
                Some(&b"12"[..])
            )
        );
        let [i, _, _] = pick(br#"{"i\u0073s":"k"}"#, ["iss", "", ""]).unwrap();
        assert_eq!(i, Some(&b"\"k\""[..]));
        let [d, _, _] = pick(br#"{"a":1,"a":2}"#, ["a", "", ""]).unwrap();
        assert_eq!(d, Some(&b"2"[..]), "last duplicate wins");
        assert_eq!(pick(b"{}", ["a", "", ""]), Some([None; 3]));
    }

    #[test]
    fn agrees_with_serde_json() {
        let deep_ok = format!("{}{}", "[".repeat(126), "]".repeat(126));
        let deep_bad = format!("{}{}", "[".repeat(127), "]".repeat(127));
        let corpus: Vec<Vec<u8>> = [
            r#"{"a":1}"#,
            r#"{"a":-0.5e+3,"b":[true,false,null],"c":{"d":"\n\u00e9"}}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\q"}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":"x"}x"#,
            r#"{"a":"x"}{}"#,
            "{\"a\":\"\t\"}",
            "{\"a\":1}\u{c}",
            "{\"a\":\"é\"}",
            r#"{"a":"x""#,
            r#"{"a":{"b":1}"#,
            r#"[1]"#,
            r#""s""#,
            r#"42"#,
            "",
            "  ",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([
            format!(r#"{{"a":{deep_ok}}}"#).into_bytes(),
            format!(r#"{{"a":{deep_bad}}}"#).into_bytes(),
            b"{\"a\":\"\xff\"}".to_vec(),
        ])
        .collect();
        for doc in corpus {
            let serde =
                serde_json::from_slice::<serde_json::Value>(&doc).is_ok_and(|v| v.is_object());
            assert_eq!(
                pick(&doc, ["a", "", ""]).is_some(),
                serde,
                "{:?}",
                String::from_utf8_lossy(&doc)
            );
        }
    }

    proptest::proptest! {
        /// The word-at-a-time scans against serde_json on documents built
        /// from the bytes they stop at, at every offset within a word:
        /// quotes, escapes, controls, digits, and UTF-8 (valid and not).
        #[test]
        fn word_scans_agree_with_serde_json(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "abcdefgh", "\\\"", "\\n", "\\u00e9", "\\u12", "\\q", "\t", "\u{1}",
                    "é", "€", "\u{10348}", "\"", "0", "1234567890", "-", ".", "e", " ", ",",
                ]),
                0..12,
            ),
            raw in proptest::collection::vec(0x7eu8..=0xff, 0..3),
            number in proptest::bool::ANY,
        ) {
            let inner = parts.concat();
            let mut doc = if number {
                format!("{{\"b\":1,\"a\":{inner}}}").into_bytes()
            } else {
                format!("{{\"b\":1,\"a\":\"{inner}").into_bytes()
            };
            doc.extend(&raw);
            if !number {
                doc.extend(b"\"}");
            }
            let serde = serde_json::from_slice::<serde_json::Value>(&doc).ok();
            let got = pick(&doc, ["a", "", ""]);
            proptest::prop_assert_eq!(got.is_some(), serde.is_some(), "{:?}", String::from_utf8_lossy(&doc));
            if let (Some([Some(a), _, _]), Some(v)) = (got, serde) {
                let ours: serde_json::Value = serde_json::from_slice(a).unwrap();
                proptest::prop_assert_eq!(&ours, &v["a"]);
            }
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"1700000000"), Some(1.7e9));
        assert_eq!(number(b"-1.5e2"), Some(-150.0));
        assert_eq!(number(b"12345678901234567890"), Some(1.2345678901234567e19));
        assert_eq!(number(b"\"12\""), None);
        assert_eq!(number(b"null"), None);
        assert_eq!(number(b"true"), None);
    }
}
