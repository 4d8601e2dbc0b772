//! Where a chunked body ends. The lean path relays an upstream's chunked
//! response as it came (sizes, extensions, trailers), so it only has to
//! find the end of the last chunk's trailer section to know the upstream
//! connection is free again. Malformed framing is an error: the relay stops
//! and both connections close, so nothing after it is read as a response.

/// The scanner's place in the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// In the hex size (`digits` so far).
    Size {
        digits: u8,
    },
    /// After the size: an extension, up to the line's end.
    Ext,
    /// After the size line's `\r`.
    SizeLf,
    /// In a chunk's data.
    Data,
    /// After a chunk's data: `\r\n` (or a bare `\n`).
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final blank line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// After a trailer line's `\r`.
    TrailerLf,
    /// After the final blank line's `\r`.
    EndLf,
}

/// A chunked body's framing, fed as it arrives.
#[derive(Debug, Clone)]
pub struct Chunked {
    at: At,
    /// Size of the chunk being read, or data left in it.
    size: u64,
}

/// Framing that is not HTTP/1.1 chunked coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked framing from the upstream")]
pub struct BadChunk;

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            at: At::Size { digits: 0 },
            size: 0,
        }
    }
}

impl Chunked {
    /// Reads `bytes`: Some(n) when the body ends after the first `n` of
    /// them, None when all of them are body and more is to come.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, BadChunk> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            self.at = match self.at {
                At::Size { digits } => match (b as char).to_digit(16) {
                    // 15 hex digits: more than any body, less than an overflow.
                    Some(d) if digits < 15 => {
                        self.size = self.size * 16 + u64::from(d);
                        At::Size { digits: digits + 1 }
                    }
                    None if digits > 0 => match b {
                        b';' | b' ' | b'\t' => At::Ext,
                        b'\r' => At::SizeLf,
                        b'\n' => self.after_size(),
                        _ => return Err(BadChunk),
                    },
                    _ => return Err(BadChunk),
                },
                At::Ext => match b {
                    b'\r' => At::SizeLf,
                    b'\n' => self.after_size(),
                    _ => At::Ext,
                },
                At::SizeLf if b == b'\n' => self.after_size(),
                At::Data => {
                    // Skip the rest of the chunk's data at once.
                    let take =
                        (bytes.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.at = At::DataCr;
                    }
                    continue;
                }
                At::DataCr => match b {
                    b'\r' => At::DataLf,
                    b'\n' => At::Size { digits: 0 },
                    _ => return Err(BadChunk),
                },
                At::DataLf if b == b'\n' => At::Size { digits: 0 },
                At::TrailerStart => match b {
                    b'\r' => At::EndLf,
                    b'\n' => return Ok(Some(i + 1)),
                    _ => At::Trailer,
                },
                At::Trailer => match b {
                    b'\r' => At::TrailerLf,
                    b'\n' => At::TrailerStart,
                    _ => At::Trailer,
                },
                At::TrailerLf if b == b'\n' => At::TrailerStart,
                At::EndLf if b == b'\n' => return Ok(Some(i + 1)),
                At::SizeLf | At::DataLf | At::TrailerLf | At::EndLf => return Err(BadChunk),
            };
            i += 1;
        }
        Ok(None)
    }

    fn after_size(&mut self) -> At {
        if self.size == 0 {
            At::TrailerStart
        } else {
            At::Data
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(body: &[u8]) -> Result<Option<usize>, BadChunk> {
        Chunked::default().feed(body)
    }

    #[test]
    fn finds_the_end_in_one_piece_and_byte_by_byte() {
        let body = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        assert_eq!(end(body), Ok(Some(body.len() - 4)));
        let mut c = Chunked::default();
        let mut at = None;
        for (i, b) in body.iter().enumerate() {
            if let Some(n) = c.feed(std::slice::from_ref(b)).unwrap() {
                at = Some(i + n);
                break;
            }
        }
        assert_eq!(at, Some(body.len() - 4));
        assert_eq!(end(b"0\r\n\r\n"), Ok(Some(5)));
        assert_eq!(end(b"A\r\n0123456789\r\n"), Ok(None));
    }

    #[test]
    fn refuses_what_is_not_chunked_coding() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"5\rX",
            b"1234567890abcdef0\r\n",
        ] {
            assert_eq!(
                end(bad),
                Err(BadChunk),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
