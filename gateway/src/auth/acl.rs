//! Kong's `acl` plugin: allow or deny lists of groups, checked against the
//! authenticated consumer's groups; 401 vs 403 as Kong decides them.

use serde::Deserialize;

use super::schema::{self, Field, FieldError, Kind};
use crate::consumer::Consumer;
use crate::reject::Rejection;

/// Kong 3.9.3's acl plugin schema (`kong/plugins/acl/schema.lua`).
const SCHEMA: [Field; 4] = [
    Field::new("allow", Kind::Array),
    Field::new("deny", Kind::Array),
    Field::required("hide_groups_header", Kind::Boolean),
    Field::required("always_use_authenticated_groups", Kind::Boolean),
];

/// The plugin's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AclConf {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub hide_groups_header: bool,
    pub always_use_authenticated_groups: bool,
}

impl AclConf {
    /// From a plugin's `config` object; errors carry Kong's field path and message.
    pub fn from_json(v: &serde_json::Value) -> Result<AclConf, FieldError> {
        let checked = schema::check(v, &SCHEMA)?;
        let conf: AclConf = serde_json::from_value(serde_json::Value::Object(checked))
            .map_err(|e| schema::error("config", e.to_string()))?;
        let set = |l: &Option<Vec<String>>| l.as_ref().is_some_and(|v| !v.is_empty());
        match (set(&conf.allow), set(&conf.deny)) {
            (true, true) => Err(schema::error(
                "@entity",
                "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'",
            )),
            (false, false) => Err(schema::error(
                "@entity",
                "at least one of these fields must be non-empty: 'config.allow', 'config.deny'",
            )),
            _ => Ok(conf),
        }
    }

    /// Decides for `consumer` (None: unauthenticated); `credential`: whether a
    /// credential authenticated it (false for the anonymous consumer).
    /// Returns the `X-Consumer-Groups` value to send upstream, if any.
    pub fn check(
        &self,
        consumer: Option<&Consumer>,
        credential: bool,
    ) -> Result<Option<String>, Rejection> {
        let deny_mode = self.deny.as_ref().is_some_and(|d| !d.is_empty());
        let Some(consumer) = consumer else {
            return Err(if credential {
                Rejection::AclForbidden
            } else {
                Rejection::AclUnauthorized
            });
        };
        if consumer.groups.is_empty() && !deny_mode {
            return Err(if credential {
                Rejection::AclForbidden
            } else {
                Rejection::AclUnauthorized
            });
        }
        let list = if deny_mode { &self.deny } else { &self.allow };
        let in_group = list.iter().flatten().any(|g| consumer.groups.contains(g));
        if in_group == deny_mode {
            return Err(Rejection::AclForbidden);
        }
        Ok((!self.hide_groups_header).then(|| consumer.groups.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(groups: &[&str]) -> Consumer {
        Consumer::new(
            "c".into(),
            Some("u".into()),
            None,
            groups.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn allow_and_deny() {
        let allow = AclConf::from_json(&serde_json::json!({"allow": ["admin"]})).unwrap();
        assert_eq!(
            allow.check(Some(&consumer(&["pro", "admin"])), true),
            Ok(Some("pro, admin".into()))
        );
        assert_eq!(
            allow
                .check(Some(&consumer(&["pro"])), true)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            allow
                .check(Some(&consumer(&[])), true)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            allow
                .check(Some(&consumer(&[])), false)
                .unwrap_err()
                .status(),
            401,
            "anonymous without groups"
        );
        assert_eq!(allow.check(None, false).unwrap_err().status(), 401);
        let deny = AclConf::from_json(
            &serde_json::json!({"deny": ["banned"], "hide_groups_header": true}),
        )
        .unwrap();
        assert_eq!(
            deny.check(Some(&consumer(&[])), true),
            Ok(None),
            "deny mode lets group-less consumers in"
        );
        assert_eq!(
            deny.check(Some(&consumer(&["banned"])), true)
                .unwrap_err()
                .status(),
            403
        );
        let e =
            AclConf::from_json(&serde_json::json!({"allow": ["a"], "deny": ["b"]})).unwrap_err();
        assert!(e.1.starts_with("exactly one"));
        assert!(
            AclConf::from_json(&serde_json::json!({}))
                .unwrap_err()
                .1
                .starts_with("at least one")
        );
        for (config, field, msg) in [
            (
                serde_json::json!({"allow": "a"}),
                "config.allow",
                "expected an array",
            ),
            (
                serde_json::json!({"deny": [1]}),
                "config.deny",
                "expected a string",
            ),
            (
                serde_json::json!({"allow": ["a"], "hide_groups_header": "yes"}),
                "config.hide_groups_header",
                "expected a boolean",
            ),
            (
                serde_json::json!({"allowed": ["a"]}),
                "config.allowed",
                "unknown field",
            ),
        ] {
            assert_eq!(
                AclConf::from_json(&config).unwrap_err(),
                (field.to_owned(), msg.to_owned()),
                "{config}"
            );
        }
        let body = String::from_utf8(Rejection::AclForbidden.body().to_vec()).unwrap();
        assert!(
            body.starts_with(
                "{\n  \"message\":\"You cannot consume this service\",\n  \"request_id\":\""
            ),
            "{body}"
        );
    }
}
