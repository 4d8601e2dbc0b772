//! Path and query templates: `{seq}` (the request's sequence number),
//! `{rand:N}` (uniform in 0..N), `{uuid}` (a v4 UUID), drawn from the run's
//! seeded generator so every target gets the same paths.

use rand::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Seq,
    Rand(u64),
    Uuid,
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed '{{' in {0:?}")]
    Unclosed(String),
    #[error("{{consumer}} needs [auth] consumers, which this version does not support yet")]
    Consumer,
    #[error("unknown placeholder {{{0}}}: use {{seq}}, {{rand:N}} or {{uuid}}")]
    Unknown(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(s.to_owned()))?
                + open;
            let name = &rest[open + 1..close];
            parts.push(match name {
                "seq" => Part::Seq,
                "uuid" => Part::Uuid,
                "consumer" => return Err(TemplateError::Consumer),
                n => match n.strip_prefix("rand:").map(str::parse::<u64>) {
                    Some(Ok(n)) if n > 0 => Part::Rand(n),
                    _ => return Err(TemplateError::Unknown(name.to_owned())),
                },
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Renders into `out` (cleared first).
    pub fn render<R: Rng + ?Sized>(&self, seq: u64, rng: &mut R, out: &mut String) {
        let mut bytes = std::mem::take(out).into_bytes();
        bytes.clear();
        self.render_bytes(seq, rng, &mut bytes);
        // Only the template's own UTF-8 literals, digits and hex were written.
        *out = String::from_utf8(bytes).unwrap_or_default();
    }

    /// Appends the rendered template to `out`: no allocation once `out` has grown.
    pub fn render_bytes<R: Rng + ?Sized>(&self, seq: u64, rng: &mut R, out: &mut Vec<u8>) {
        use std::io::Write as _;
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Part::Seq => {
                    let _ = write!(out, "{seq}");
                }
                Part::Rand(n) => {
                    let _ = write!(out, "{}", rng.random_range(0..*n));
                }
                Part::Uuid => {
                    let v: u128 = rng.random();
                    let v = (v & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
                    let _ = write!(
                        out,
                        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                        (v >> 96) as u32,
                        (v >> 80) as u16,
                        (v >> 64) as u16,
                        (v >> 48) as u16,
                        v & 0xFFFF_FFFF_FFFF
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn renders_placeholders() {
        let t = Template::parse("/orders/{seq}?shard={rand:4}&id={uuid}").unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let mut out = String::new();
        t.render(42, &mut rng, &mut out);
        let (path, query) = out.split_once('?').unwrap();
        assert_eq!(path, "/orders/42");
        let shard: u64 = query[6..7].parse().unwrap();
        assert!(shard < 4);
        let uuid = query.split("id=").nth(1).unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4", "version 4: {uuid}");
    }

    #[test]
    fn rejects_unknown_placeholders() {
        assert!(
            Template::parse("/{nope}")
                .unwrap_err()
                .to_string()
                .contains("unknown placeholder")
        );
        assert!(Template::parse("/{rand:0}").is_err());
        assert!(
            Template::parse("/{seq")
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        assert!(
            Template::parse("/{consumer}")
                .unwrap_err()
                .to_string()
                .contains("[auth]")
        );
    }
}
