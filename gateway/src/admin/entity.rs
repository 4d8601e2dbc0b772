//! The entities a consumer owns (`/consumers/{c}/jwt`, `/consumers/{c}/acls`),
//! served by one CRUD routine: list, read, delete, and create or update by
//! POST, PUT and PATCH, with Kong's statuses. Each kind says only what
//! differs: how it is found, what a new one holds, how a body changes it,
//! and what must be unique.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::reply::{
    Resp, id_or_new, list, not_found, reply, schema_violation, string_field, tags, unique_violation,
};
use super::store::{Edits, Seq, Store, Work};
use crate::clock::unix_now as now;
use crate::config::{AclSpec, ConsumerSpec, JwtSecretSpec};
use crate::consumer::Consumer;

/// A kind of entity owned by a consumer.
pub(super) trait SubEntity: Clone + Sized {
    fn all(c: &ConsumerSpec) -> &Vec<Self>;
    fn all_mut(c: &mut ConsumerSpec) -> &mut Vec<Self>;
    /// Whether `key` (from the URL) names this entity: its id or natural key.
    fn named(&self, key: &str) -> bool;
    /// Whether `key` names this entity at the top level (`/jwts/{key}`),
    /// where natural keys unique only per consumer do not count.
    fn top_level_named(&self, key: &str) -> bool {
        self.named(key)
    }
    /// Who owns the entity `key` names at the top level (from the store's index).
    fn top_level_owner(store: &Store, key: &str) -> Option<Seq>;
    /// The body and URL key a top-level PUT of an unknown `key` creates with.
    fn top_level_new(
        key: &str,
        body: &Map<String, Value>,
    ) -> Result<(Map<String, Value>, Option<String>), Resp> {
        Ok((body.clone(), Some(key.to_owned())))
    }
    fn json(&self, owner: &ConsumerSpec) -> Value;
    /// A new entity for a create (`item`: the URL's key on PUT).
    fn create(item: Option<&str>, body: &Map<String, Value>, m: &Method) -> Result<Self, Resp>;
    /// Applies the body's fields.
    fn apply(
        &mut self,
        body: &Map<String, Value>,
        item: Option<&str>,
        m: &Method,
    ) -> Result<(), Resp>;
    /// Checks the changed entity against everything, as the change leaves it.
    fn check(&self, work: &Work<'_>, owner: Seq) -> Result<(), Resp>;
}

/// What a request does to the store.
pub(super) enum Change {
    /// Nothing: the answer as it is.
    None(Resp),
    /// Commit the edits, answer 204.
    Delete(Edits),
    /// Commit the edits, answer 201 (created) or 200 with `body`.
    Save {
        edits: Edits,
        created: bool,
        body: Value,
    },
}

/// One request on consumer `ci`'s entities of kind `E`, as a change to `work`.
pub(super) fn crud<E: SubEntity>(
    mut work: Work<'_>,
    ci: Seq,
    (m, uri): (&Method, &http::Uri),
    item: Option<&str>,
    body: &Map<String, Value>,
) -> Change {
    let Some(owner) = work.get(ci) else {
        return Change::None(not_found());
    };
    let existing = item.and_then(|k| E::all(owner).iter().position(|e| e.named(k)));
    let reply = match (m.as_str(), item) {
        ("GET", None) => list(uri, E::all(owner).iter(), |e| e.json(owner)),
        ("GET", Some(_)) => existing.map_or_else(not_found, |i| {
            reply(StatusCode::OK, E::all(owner)[i].json(owner))
        }),
        ("DELETE", Some(_)) => match existing {
            None => not_found(),
            Some(i) => {
                if let Some(c) = work.get_mut(ci) {
                    E::all_mut(c).remove(i);
                }
                return Change::Delete(work.edits);
            }
        },
        ("POST", None) | ("PUT", Some(_)) | ("PATCH", Some(_)) => {
            if m == Method::PATCH && existing.is_none() {
                return Change::None(not_found());
            }
            let Some(c) = work.get_mut(ci) else {
                return Change::None(not_found());
            };
            let all = E::all_mut(c);
            let i = match existing {
                Some(i) => i,
                None => match E::create(item, body, m) {
                    Ok(e) => {
                        all.push(e);
                        all.len() - 1
                    }
                    Err(r) => return Change::None(r),
                },
            };
            if let Err(r) = all[i].apply(body, item, m) {
                return Change::None(r);
            }
            let me = all[i].clone();
            if let Err(r) = me.check(&work, ci) {
                return Change::None(r);
            }
            let body = work.get(ci).map_or(Value::Null, |c| me.json(c));
            return Change::Save {
                edits: work.edits,
                created: existing.is_none() && m != Method::PUT,
                body,
            };
        }
        _ => not_found(),
    };
    Change::None(reply)
}

fn null_if_empty(tags: &[String]) -> Value {
    if tags.is_empty() {
        Value::Null
    } else {
        json!(tags)
    }
}

impl SubEntity for JwtSecretSpec {
    fn all(c: &ConsumerSpec) -> &Vec<Self> {
        &c.jwt_secrets
    }

    fn all_mut(c: &mut ConsumerSpec) -> &mut Vec<Self> {
        &mut c.jwt_secrets
    }

    fn named(&self, k: &str) -> bool {
        self.id.as_deref() == Some(k) || self.key.as_deref() == Some(k)
    }

    fn top_level_owner(store: &Store, k: &str) -> Option<Seq> {
        store.jwt_owner(k)
    }

    fn json(&self, c: &ConsumerSpec) -> Value {
        json!({"id": self.id, "key": self.key, "secret": self.secret, "algorithm": self.algorithm.as_deref().unwrap_or("HS256"), "rsa_public_key": self.rsa_public_key, "consumer": {"id": c.id}, "created_at": self.created_at, "tags": null_if_empty(&self.tags)})
    }

    /// Kong's defaults: a random key (or the URL's on PUT) and secret, HS256.
    fn create(item: Option<&str>, body: &Map<String, Value>, _: &Method) -> Result<Self, Resp> {
        Ok(JwtSecretSpec {
            created_at: Some(now()),
            key: item
                .map(str::to_owned)
                .or_else(|| Some(crate::auth::jwt::random_string())),
            secret: Some(crate::auth::jwt::random_string()),
            algorithm: Some("HS256".into()),
            rsa_public_key: None,
            id: Some(id_or_new(body)),
            tags: Vec::new(),
        })
    }

    fn apply(
        &mut self,
        body: &Map<String, Value>,
        _: Option<&str>,
        _: &Method,
    ) -> Result<(), Resp> {
        let mut fields = Map::new();
        let mut get = |name: &str| match string_field(body, name) {
            Ok(v) => v,
            Err(_) => {
                fields.insert(name.to_owned(), json!("expected a string"));
                None
            }
        };
        let (key, secret, algorithm, rsa) = (
            get("key"),
            get("secret"),
            get("algorithm"),
            get("rsa_public_key"),
        );
        if !fields.is_empty() {
            return Err(schema_violation(Value::Object(fields)));
        }
        for (to, from) in [
            (&mut self.key, key),
            (&mut self.secret, secret),
            (&mut self.algorithm, algorithm),
            (&mut self.rsa_public_key, rsa),
        ] {
            if from.is_some() {
                *to = from;
            }
        }
        if body.contains_key("tags") {
            self.tags = tags(body);
        }
        Ok(())
    }

    /// The same validation as the config file, with Kong's field errors;
    /// keys unique across all consumers.
    fn check(&self, work: &Work<'_>, _: Seq) -> Result<(), Resp> {
        let probe = Arc::new(Consumer::new(String::new(), None, None, vec![]));
        if let Err((field, msg)) = crate::auth::jwt::Credential::new(self.credential(), probe) {
            return Err(schema_violation(
                json!({field: msg, "@entity": ["failed conditional validation given value of field 'algorithm'"]}),
            ));
        }
        let key = self.key.clone().unwrap_or_default();
        if work.jwt_key_uses(&key) > 1 {
            return Err(unique_violation("key", &key));
        }
        Ok(())
    }
}

/// The `group` of a body; on PUT the URL's key when the body has none.
fn group_of(
    body: &Map<String, Value>,
    item: Option<&str>,
    m: &Method,
) -> Result<Option<String>, Resp> {
    let group = string_field(body, "group")?;
    Ok(group.or_else(|| {
        (m == Method::PUT)
            .then(|| item.map(str::to_owned))
            .flatten()
    }))
}

impl SubEntity for AclSpec {
    fn all(c: &ConsumerSpec) -> &Vec<Self> {
        &c.acls
    }

    fn all_mut(c: &mut ConsumerSpec) -> &mut Vec<Self> {
        &mut c.acls
    }

    fn named(&self, k: &str) -> bool {
        self.id.as_deref() == Some(k) || self.group == k
    }

    fn top_level_named(&self, k: &str) -> bool {
        self.id.as_deref() == Some(k)
    }

    fn top_level_owner(store: &Store, k: &str) -> Option<Seq> {
        store.acl_owner(k)
    }

    /// `PUT /acls/{id}` creates the ACL with that id; the group must be in the body.
    fn top_level_new(
        key: &str,
        body: &Map<String, Value>,
    ) -> Result<(Map<String, Value>, Option<String>), Resp> {
        if uuid::Uuid::parse_str(key).is_err() {
            return Err(schema_violation(json!({"id": "expected a valid UUID"})));
        }
        if string_field(body, "group")?.is_none() {
            return Err(schema_violation(json!({"group": "required field missing"})));
        }
        let mut body = body.clone();
        body.insert("id".into(), json!(key));
        Ok((body, Some(key.to_owned())))
    }

    fn json(&self, c: &ConsumerSpec) -> Value {
        json!({"id": self.id, "group": self.group, "consumer": {"id": c.id}, "created_at": self.created_at, "tags": null_if_empty(&self.tags)})
    }

    fn create(item: Option<&str>, body: &Map<String, Value>, m: &Method) -> Result<Self, Resp> {
        let Some(group) = group_of(body, item, m)? else {
            return Err(schema_violation(json!({"group": "required field missing"})));
        };
        Ok(AclSpec {
            created_at: Some(now()),
            group,
            id: Some(id_or_new(body)),
            tags: Vec::new(),
        })
    }

    fn apply(
        &mut self,
        body: &Map<String, Value>,
        item: Option<&str>,
        m: &Method,
    ) -> Result<(), Resp> {
        if let Some(g) = group_of(body, item, m)? {
            self.group = g;
        }
        if body.contains_key("tags") {
            self.tags = tags(body);
        }
        Ok(())
    }

    /// Groups unique within the consumer.
    fn check(&self, work: &Work<'_>, owner: Seq) -> Result<(), Resp> {
        let mine = work.get(owner).map_or(&[][..], |c| &c.acls[..]);
        if mine.iter().filter(|a| a.group == self.group).count() > 1 {
            return Err(unique_violation("group", &self.group));
        }
        Ok(())
    }
}
