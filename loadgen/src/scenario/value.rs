//! What several parts of the scenario model share: the error of a value
//! that does not parse, serde for types written as one string, names.

/// A value that does not parse as what its field holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

/// Serde and JSON Schema for a type written as one string (`FromStr` +
/// `Display`).
macro_rules! string_serde {
    ($ty:ty, $name:literal, $desc:literal, $pattern:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "description": $desc, "pattern": $pattern })
            }
        }
    };
}
pub(crate) use string_serde;

/// A name usable in results and `.hlog` tags: letters, digits, `-_.`.
pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A `headers` table as header lines (in name order), or what is wrong with
/// one of them: a request's and a target's headers are read alike.
pub fn header_map(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<http::HeaderMap, BadValue> {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| BadValue(format!("{k:?} is not a header name")))?;
        let value = http::HeaderValue::from_str(v)
            .map_err(|_| BadValue(format!("the value of {k:?} is not a valid header value")))?;
        map.append(name, value);
    }
    Ok(map)
}
