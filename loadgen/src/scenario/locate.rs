//! Where in a scenario file a field is: the line and column of `key = …`
//! inside the n-th `[[table]]` (or `[table]`, or the top level), and the
//! reverse, the field a parse error's byte offset falls in.

use std::collections::BTreeMap;
use std::fmt;

/// A field of the file: `key`, `table.key` or `table[index].key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// `""` for the top level, else the dotted table name (`auth.consumer`).
    pub table: String,
    /// Which `[[table]]` (none for a plain `[table]`).
    pub index: Option<usize>,
    /// `""` for the table itself.
    pub key: String,
}

impl Field {
    pub fn top(key: &str) -> Field {
        Field::new("", None, key)
    }

    pub fn new(table: &str, index: Option<usize>, key: &str) -> Field {
        Field {
            table: table.to_owned(),
            index,
            key: key.to_owned(),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if self.key.is_empty() { "" } else { "." };
        match (self.table.as_str(), self.index) {
            ("", _) => f.write_str(&self.key),
            (t, Some(i)) => write!(f, "{t}[{i}]{sep}{}", self.key),
            (t, None) => write!(f, "{t}{sep}{}", self.key),
        }
    }
}

/// 1-based line and column of byte `offset`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, col)
}

/// A table header line: `[[name]]` (array element) or `[name]`.
fn header(line: &str) -> Option<(&str, bool)> {
    if let Some(rest) = line.strip_prefix("[[") {
        return Some((rest.split("]]").next().unwrap_or("").trim(), true));
    }
    let rest = line.strip_prefix('[')?;
    Some((rest.split(']').next().unwrap_or("").trim(), false))
}

/// The key a `key = value` line sets, if it is one.
fn key_of(line: &str) -> Option<&str> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    .then_some(k)
}

/// Walks the file's lines with the table each belongs to.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str, Option<(&str, Option<usize>)>)> {
    let mut current: Option<(&str, Option<usize>)> = None;
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    text.lines().enumerate().map(move |(n, raw)| {
        let line = raw.trim_start();
        if let Some((name, array)) = header(line) {
            current = Some((name, None));
            if array {
                let k = seen.entry(name).or_insert(0);
                current = Some((name, Some(*k)));
                *k += 1;
            }
        }
        (n, raw, current)
    })
}

/// Line and column of `field` (its key, else its table's header).
pub fn locate(text: &str, field: &Field) -> Option<(usize, usize)> {
    let mut header_line = None;
    for (n, raw, current) in lines(text) {
        let line = raw.trim_start();
        let here = match current {
            None => field.table.is_empty(),
            Some((t, i)) => t == field.table && field.index.is_none_or(|x| Some(x) == i),
        };
        if !here {
            continue;
        }
        if header(line).is_some() {
            header_line.get_or_insert(n + 1);
            continue;
        }
        if !field.key.is_empty() && key_of(line) == Some(field.key.as_str()) {
            return Some((n + 1, raw.len() - line.len() + 1));
        }
    }
    header_line.map(|l| (l, 1))
}

/// The field a byte offset falls in (a parse error's span): the key set on
/// that line, or the table the line belongs to; with the key's position.
pub fn field_at(text: &str, offset: usize) -> (usize, usize, Option<Field>) {
    let (line_no, col) = line_col(text, offset);
    for (n, raw, current) in lines(text) {
        if n + 1 != line_no {
            continue;
        }
        let line = raw.trim_start();
        let (table, index) = current.map_or(("", None), |(t, i)| (t, i));
        if header(line).is_some() {
            return (line_no, col, Some(Field::new(table, index, "")));
        }
        return match key_of(line) {
            // Point at the key, where the value's field starts.
            Some(k) => (
                line_no,
                raw.len() - line.len() + 1,
                Some(Field::new(table, index, k)),
            ),
            None if table.is_empty() => (line_no, col, None),
            None => (line_no, col, Some(Field::new(table, index, ""))),
        };
    }
    (line_no, col, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n[auth]\nttl = \"1h\"\n[[auth.consumer]]\nname = \"a\"\n[[auth.consumer]]\nname = \"b\"\nalg = \"HS9\"\n";

    #[test]
    fn locates_keys_in_tables_and_array_elements() {
        assert_eq!(locate(TEXT, &Field::top("name")), Some((1, 1)));
        assert_eq!(locate(TEXT, &Field::new("auth", None, "ttl")), Some((3, 1)));
        let alg = Field::new("auth.consumer", Some(1), "alg");
        assert_eq!(locate(TEXT, &alg), Some((8, 1)));
        assert_eq!(alg.to_string(), "auth.consumer[1].alg");
        // A key that is not written: the table's header.
        let secret = Field::new("auth.consumer", Some(1), "secret");
        assert_eq!(locate(TEXT, &secret), Some((6, 1)));
    }

    #[test]
    fn an_offset_names_its_field() {
        let at = TEXT.find("\"HS9\"").unwrap();
        let (line, col, field) = field_at(TEXT, at);
        assert_eq!((line, col), (8, 1));
        assert_eq!(field.unwrap().to_string(), "auth.consumer[1].alg");
        let (line, _, field) = field_at(TEXT, TEXT.find("[auth]").unwrap());
        assert_eq!(line, 2);
        assert_eq!(field.unwrap().to_string(), "auth");
    }
}
