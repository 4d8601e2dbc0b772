//! A plugin's `config` checked the way Kong's schema library checks it, field
//! by field, with Kong's messages (`kong/db/schema/init.lua`
//! `validation_errors`) and the field path (`config.NAME`), before serde
//! reads it. Kong's types: `set` and `array` (a JSON array), `string`,
//! `number`, `boolean`; a field outside the schema is `unknown field`; an
//! explicit `null` on a required field is `required field missing`, and on
//! any other field the field's default.

use serde_json::{Map, Value};

/// A field's type in Kong's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A set of strings (duplicates collapse; JSON array).
    Set,
    /// An array of strings.
    Array,
    String,
    Number,
    Boolean,
}

/// One field of a plugin's `config` record.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

impl Field {
    pub const fn new(name: &'static str, kind: Kind) -> Field {
        Field {
            name,
            kind,
            required: false,
        }
    }

    pub const fn required(name: &'static str, kind: Kind) -> Field {
        Field {
            name,
            kind,
            required: true,
        }
    }
}

/// A field error: the path (`config.NAME`) and Kong's message.
pub type FieldError = (String, String);

pub fn error(path: impl Into<String>, msg: impl Into<String>) -> FieldError {
    (path.into(), msg.into())
}

/// Checks `config` against `fields`; returns the object with explicit
/// `null`s on optional fields removed (so serde applies the defaults).
pub fn check(config: &Value, fields: &[Field]) -> Result<Map<String, Value>, FieldError> {
    let obj = match config {
        Value::Null => return Ok(Map::new()),
        Value::Object(o) => o,
        _ => return Err(error("config", "expected a record")),
    };
    let mut out = Map::new();
    for (name, v) in obj {
        let path = format!("config.{name}");
        let Some(f) = fields.iter().find(|f| f.name == name) else {
            return Err(error(path, "unknown field"));
        };
        if v.is_null() {
            if f.required {
                return Err(error(path, "required field missing"));
            }
            continue;
        }
        let ok = match f.kind {
            Kind::Set | Kind::Array => {
                let Value::Array(items) = v else {
                    let what = if f.kind == Kind::Set {
                        "a set"
                    } else {
                        "an array"
                    };
                    return Err(error(path, format!("expected {what}")));
                };
                if items.iter().any(|i| !i.is_string()) {
                    return Err(error(path, "expected a string"));
                }
                true
            }
            Kind::String => v.is_string(),
            Kind::Number => v.is_number(),
            Kind::Boolean => v.is_boolean(),
        };
        if !ok {
            let what = match f.kind {
                Kind::String => "expected a string",
                Kind::Number => "expected a number",
                _ => "expected a boolean",
            };
            return Err(error(path, what));
        }
        out.insert(name.clone(), v.clone());
    }
    Ok(out)
}

/// The values of a set of strings, in order, duplicates removed (Kong's `set`).
pub fn dedup(list: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|s| seen.insert(s.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: [Field; 3] = [
        Field::new("names", Kind::Set),
        Field::required("flag", Kind::Boolean),
        Field::new("max", Kind::Number),
    ];

    #[test]
    fn kong_messages() {
        let e = |v: Value| check(&v, &FIELDS).unwrap_err();
        assert_eq!(
            e(json!({"names": "x"})),
            error("config.names", "expected a set")
        );
        assert_eq!(
            e(json!({"names": [1]})),
            error("config.names", "expected a string")
        );
        assert_eq!(
            e(json!({"flag": "yes"})),
            error("config.flag", "expected a boolean")
        );
        assert_eq!(
            e(json!({"flag": null})),
            error("config.flag", "required field missing")
        );
        assert_eq!(
            e(json!({"max": "1"})),
            error("config.max", "expected a number")
        );
        assert_eq!(
            e(json!({"other": 1})),
            error("config.other", "unknown field")
        );
        assert_eq!(e(json!([1])), error("config", "expected a record"));
        let ok = check(&json!({"max": null, "flag": true}), &FIELDS).unwrap();
        assert_eq!(Value::Object(ok), json!({"flag": true}));
    }
}
