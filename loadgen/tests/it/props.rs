//! Property tests of the parsers that face user input: scenario files (never
//! panic; every error is located) and the HTTP/1 response parser (never
//! panics on any bytes; never reads past a response it accepted).

use loadgen::scenario::{Scenario, ScenarioError};
use proptest::prelude::*;

/// The shipped scenarios: real files to mutate (each starts with a comment
/// line, so nothing but a top-level field can be at fault at 1:1).
fn shipped() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    /// Replace the n-th number with one of these.
    Number(usize, &'static str),
    /// Replace the n-th quoted string with one of these.
    Str(usize, &'static str),
    Truncate(usize),
    Insert(usize, char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let numbers = prop::sample::select(vec![
        "-1",
        "0",
        "4294967296",
        "18446744073709551616",
        "1e400",
        "0.5",
        "nan",
        "inf",
        "\"x\"",
        "[]",
    ]);
    let strings = prop::sample::select(vec![
        "\"\"",
        "\"-5s\"",
        "\"zz\"",
        "\"2h\"",
        "\"builtin:nope\"",
        "\"http://\"",
        "\"\\u0000\"",
        "\"{\"",
        "\"{seq\"",
        "5",
        "[]",
        "{}",
    ]);
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), numbers).prop_map(|(i, v)| Mutation::Number(i, v)),
        (any::<usize>(), strings).prop_map(|(i, v)| Mutation::Str(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop::sample::select(vec!['=', '[', ']', '"', '#', '\t', 'x', '\n', '\''])
        )
            .prop_map(|(i, c)| Mutation::Insert(i, c)),
    ]
}

/// Byte ranges of the numbers / quoted strings after the first line.
fn tokens(text: &str, quoted: bool) -> Vec<(usize, usize)> {
    let start = text.find('\n').map_or(text.len(), |i| i + 1);
    let b = text.as_bytes();
    let mut v = Vec::new();
    let mut i = start;
    while i < b.len() {
        if quoted && b[i] == b'"' {
            let end = text[i + 1..].find('"').map_or(b.len(), |j| i + 1 + j + 1);
            v.push((i, end.min(b.len())));
            i = end;
        } else if !quoted && b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
        {
            let end = (i..b.len())
                .find(|&j| !(b[j].is_ascii_digit() || b[j] == b'.'))
                .unwrap_or(b.len());
            v.push((i, end));
            i = end;
        } else {
            i += 1;
        }
    }
    v
}

/// Applies `m` after the first line.
fn apply(text: &str, m: &Mutation) -> String {
    let first = text.find('\n').map_or(text.len(), |i| i + 1);
    let mut lines: Vec<&str> = text[first..].split('\n').collect();
    let pick = |i: usize, n: usize| i % n.max(1);
    let splice = |ranges: Vec<(usize, usize)>, i: usize, with: &str| match ranges
        .get(pick(i, ranges.len()))
    {
        Some((a, b)) => format!("{}{with}{}", &text[..*a], &text[*b..]),
        None => text.to_owned(),
    };
    match m {
        Mutation::DeleteLine(i) => {
            let k = pick(*i, lines.len());
            lines.remove(k);
            format!("{}{}", &text[..first], lines.join("\n"))
        }
        Mutation::DuplicateLine(i) => {
            let k = pick(*i, lines.len());
            lines.insert(k, lines[k]);
            format!("{}{}", &text[..first], lines.join("\n"))
        }
        Mutation::Number(i, v) => splice(tokens(text, false), *i, v),
        Mutation::Str(i, v) => splice(tokens(text, true), *i, v),
        Mutation::Truncate(i) => {
            let mut at = first + pick(*i, text.len() - first);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text[..at].to_owned()
        }
        Mutation::Insert(i, c) => {
            let mut at = first + pick(*i, text.len() - first);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            format!("{}{c}{}", &text[..at], &text[at..])
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_scenario_parses_or_names_its_place(which in any::<usize>(), m in mutation()) {
        let files = shipped();
        let (path, text) = &files[which % files.len()];
        let mutated = apply(text, &m);
        match Scenario::parse(&mutated, path) {
            Ok(_) => {}
            Err(ScenarioError::Invalid { line, field, .. }) => {
                prop_assert!(line >= 1);
                // At 1:1 only a top-level field can be at fault (line 1 is a comment).
                prop_assert!(line > 1 || field.table.is_empty(), "{m:?}: {field} at line 1");
            }
            Err(ScenarioError::Parse { line, col, msg, .. }) => {
                prop_assert!((line, col) != (1, 1), "{m:?}: unlocated: {msg}");
                prop_assert!(line <= mutated.lines().count() + 1, "{m:?}: line {line} past the end");
            }
            Err(e @ ScenarioError::Read { .. }) => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn any_text_parses_or_errs_without_panicking(text in "\\PC{0,200}") {
        let _ = Scenario::parse(&text, "fuzz.toml");
    }
}
