//! Kong's `jwt` plugin configuration: the fields with Kong's defaults, and
//! the schema's checks with Kong's messages (`kong/plugins/jwt/schema.lua`).

use serde::Deserialize;

use super::schema::{self, Field, FieldError, Kind};

/// The plugin's configuration, with Kong's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConf {
    pub uri_param_names: Vec<String>,
    pub cookie_names: Vec<String>,
    pub header_names: Vec<String>,
    pub key_claim_name: String,
    pub secret_is_base64: bool,
    pub claims_to_verify: Option<Vec<String>>,
    pub anonymous: Option<String>,
    pub run_on_preflight: bool,
    /// Seconds; a number, so fractions are allowed as in Kong.
    pub maximum_expiration: f64,
    pub realm: Option<String>,
    /// `header_names` parsed once.
    #[serde(skip)]
    pub parsed_header_names: Vec<http::HeaderName>,
}

impl Default for JwtConf {
    fn default() -> Self {
        Self {
            uri_param_names: vec!["jwt".into()],
            cookie_names: vec![],
            header_names: vec!["authorization".into()],
            key_claim_name: "iss".into(),
            secret_is_base64: false,
            claims_to_verify: None,
            anonymous: None,
            run_on_preflight: true,
            maximum_expiration: 0.0,
            realm: None,
            parsed_header_names: vec![http::header::AUTHORIZATION],
        }
    }
}

/// Kong 3.9.3's jwt plugin schema (`kong/plugins/jwt/schema.lua`).
const SCHEMA: [Field; 10] = [
    Field::new("uri_param_names", Kind::Set),
    Field::new("cookie_names", Kind::Set),
    Field::new("key_claim_name", Kind::String),
    Field::required("secret_is_base64", Kind::Boolean),
    Field::new("claims_to_verify", Kind::Set),
    Field::new("anonymous", Kind::String),
    Field::required("run_on_preflight", Kind::Boolean),
    Field::new("maximum_expiration", Kind::Number),
    Field::new("header_names", Kind::Set),
    Field::new("realm", Kind::String),
];

impl JwtConf {
    /// From a plugin's `config` object; errors carry Kong's field path and message.
    pub fn from_json(v: &serde_json::Value) -> Result<JwtConf, FieldError> {
        let checked = schema::check(v, &SCHEMA)?;
        let mut conf: JwtConf = serde_json::from_value(serde_json::Value::Object(checked))
            .map_err(|e| schema::error("config", e.to_string()))?;
        for set in [
            &mut conf.uri_param_names,
            &mut conf.cookie_names,
            &mut conf.header_names,
        ] {
            schema::dedup(set);
        }
        if let Some(claims) = &mut conf.claims_to_verify {
            schema::dedup(claims);
            if claims.iter().any(|c| c != "exp" && c != "nbf") {
                return Err(schema::error(
                    "config.claims_to_verify",
                    "expected one of: exp, nbf",
                ));
            }
        }
        if !(0.0..=31_536_000.0).contains(&conf.maximum_expiration) {
            return Err(schema::error(
                "config.maximum_expiration",
                "value should be between 0 and 31536000",
            ));
        }
        if conf.maximum_expiration > 0.0
            && !conf.claims_to_verify.iter().flatten().any(|c| c == "exp")
        {
            return Err(schema::error(
                "config.claims_to_verify",
                "expected to contain: exp",
            ));
        }
        // Kong looks any string up as a header; one that is not a header
        // name can never match a request, so it is left out (and said).
        conf.parsed_header_names = conf
            .header_names
            .iter()
            .filter_map(|n| {
                let parsed = http::HeaderName::from_bytes(n.as_bytes()).ok();
                if parsed.is_none() {
                    tracing::warn!(name = %n, "config.header_names: not a header name; no request can carry it");
                }
                parsed
            })
            .collect();
        Ok(conf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_checks() {
        let c = JwtConf::from_json(&serde_json::Value::Null).unwrap();
        assert_eq!(c.header_names, ["authorization"]);
        assert_eq!(c.key_claim_name, "iss");
        assert!(c.run_on_preflight);
        let e = JwtConf::from_json(&serde_json::json!({"maximum_expiration": 60})).unwrap_err();
        assert_eq!(
            e,
            (
                "config.claims_to_verify".into(),
                "expected to contain: exp".into()
            )
        );
        // Kong's schema messages and field paths, rule by rule.
        let e = |v: serde_json::Value| {
            let (f, m) = JwtConf::from_json(&v).unwrap_err();
            format!("{f}: {m}")
        };
        use serde_json::json;
        for (config, want) in [
            (json!({"bogus": 1}), "config.bogus: unknown field"),
            (
                json!({"claims_to_verify": ["iat"]}),
                "config.claims_to_verify: expected one of: exp, nbf",
            ),
            (
                json!({"maximum_expiration": -1}),
                "config.maximum_expiration: value should be between 0 and 31536000",
            ),
            (
                json!({"maximum_expiration": 31_536_001, "claims_to_verify": ["exp"]}),
                "config.maximum_expiration: value should be between 0 and 31536000",
            ),
            (
                json!({"maximum_expiration": "60"}),
                "config.maximum_expiration: expected a number",
            ),
            (
                json!({"key_claim_name": 1}),
                "config.key_claim_name: expected a string",
            ),
            (
                json!({"uri_param_names": "jwt"}),
                "config.uri_param_names: expected a set",
            ),
            (
                json!({"cookie_names": [1]}),
                "config.cookie_names: expected a string",
            ),
            (
                json!({"header_names": {}}),
                "config.header_names: expected a set",
            ),
            (
                json!({"run_on_preflight": null}),
                "config.run_on_preflight: required field missing",
            ),
            (
                json!({"secret_is_base64": "no"}),
                "config.secret_is_base64: expected a boolean",
            ),
            (json!({"realm": false}), "config.realm: expected a string"),
            (
                json!({"anonymous": 7}),
                "config.anonymous: expected a string",
            ),
        ] {
            assert_eq!(e(config.clone()), want, "{config}");
        }
        let c = JwtConf::from_json(&json!({
            "maximum_expiration": 90.5, "claims_to_verify": ["exp", "exp"],
            "header_names": ["X-Token", "bad name"], "uri_param_names": null
        }))
        .unwrap();
        assert_eq!(c.maximum_expiration, 90.5);
        assert_eq!(c.claims_to_verify, Some(vec!["exp".to_owned()]), "a set");
        assert_eq!(
            c.parsed_header_names,
            ["x-token"],
            "a name no request can carry is left out"
        );
        assert_eq!(c.uri_param_names, ["jwt"], "null is the default");
    }
}
