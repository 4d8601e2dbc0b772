//! The top-level credential endpoints, `/jwts` and `/acls` (Kong's
//! `admin_api_name`): the same entities as `/consumers/{c}/jwt` and
//! `/consumers/{c}/acls`, with the owning consumer named in the body
//! (`{"consumer":{"id":"…"}}`, or `consumer.id=…` in a form) instead of the
//! URL, and `GET /jwts/{id or key}/consumer` for the owner.

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::entity::{Change, SubEntity, crud};
use super::reply::{Resp, not_found, reply, schema_violation};
use super::store::{Seq, Store, Work};
use super::{Admin, State, consumer_json};

/// Where the body says the entity belongs.
enum Owner {
    /// No `consumer` in the body.
    Missing,
    /// The consumer's place in the store.
    At(Seq),
}

/// Reads the body's `consumer` reference: Kong's foreign key, by id.
fn owner_of(body: &Map<String, Value>, store: &Store) -> Result<Owner, Resp> {
    let id = match body.get("consumer") {
        None | Some(Value::Null) => return Ok(Owner::Missing),
        Some(Value::Object(o)) => match o.get("id") {
            Some(Value::String(id)) => id,
            None | Some(Value::Null) => {
                return Err(schema_violation(
                    json!({"consumer": {"id": "required field missing"}}),
                ));
            }
            Some(_) => {
                return Err(schema_violation(
                    json!({"consumer": {"id": "expected a string"}}),
                ));
            }
        },
        Some(_) => return Err(schema_violation(json!({"consumer": "expected a record"}))),
    };
    match store.by_id(id) {
        Some(i) => Ok(Owner::At(i)),
        None => Err(reply(
            StatusCode::BAD_REQUEST,
            json!({
                "code": 4,
                "name": "foreign key violation",
                "message": format!("the foreign key '{{id=\"{id}\"}}' does not reference an existing 'consumers' entity."),
                "fields": {"consumer": {"id": id}},
            }),
        )),
    }
}

fn consumer_missing() -> Resp {
    schema_violation(json!({"consumer": "required field missing"}))
}

/// The consumer owning the entity `item` names, and its index there. At the
/// top level a jwt is named by id or key; an ACL by id only (a group is
/// unique per consumer, not across them).
fn find<E: SubEntity>(store: &Store, item: &str) -> Option<(Seq, usize)> {
    let ci = E::top_level_owner(store, item)?;
    let i = E::all(store.get(ci)?)
        .iter()
        .position(|e| E::top_level_named(e, item))?;
    Some((ci, i))
}

/// A change that moves entity `i` of consumer `from` to consumer `to`.
fn moved<E: SubEntity>(store: &Store, from: Seq, i: usize, to: Seq) -> Work<'_> {
    let mut work = Work::new(store);
    let e = work.get_mut(from).map(|c| E::all_mut(c).remove(i));
    if let (Some(e), Some(c)) = (e, work.get_mut(to)) {
        E::all_mut(c).push(e);
    }
    work
}

impl Admin {
    /// One request on `/jwts` or `/acls` (`item`: the path's next segment;
    /// `owner_path`: the request ends in `/consumer`).
    pub(super) fn top_level<E: SubEntity>(
        &self,
        state: &mut State,
        (m, uri): (&Method, &http::Uri),
        item: Option<&str>,
        owner_path: bool,
        body: &Map<String, Value>,
    ) -> Resp {
        let store = &state.store;
        let found = item.and_then(|k| find::<E>(store, k));
        if owner_path {
            return match (m.as_str(), found) {
                ("GET", Some((ci, _))) => store
                    .get(ci)
                    .map_or_else(not_found, |c| reply(StatusCode::OK, consumer_json(c))),
                _ => not_found(),
            };
        }
        let owner = match m.as_str() {
            "POST" | "PUT" | "PATCH" => match owner_of(body, store) {
                Ok(o) => o,
                Err(r) => return r,
            },
            _ => Owner::Missing,
        };
        let change = match (m.as_str(), item, found, owner) {
            ("POST", None, _, Owner::At(to)) => {
                crud::<E>(Work::new(store), to, (m, uri), None, body)
            }
            ("POST" | "PUT", _, _, Owner::Missing) => return consumer_missing(),
            ("GET" | "DELETE" | "PATCH", Some(k), Some((ci, i)), owner) => {
                // A PATCH naming another consumer moves the entity there.
                match owner {
                    Owner::At(to) if to != ci => {
                        crud::<E>(moved::<E>(store, ci, i, to), to, (m, uri), Some(k), body)
                    }
                    _ => crud::<E>(Work::new(store), ci, (m, uri), Some(k), body),
                }
            }
            ("PUT", Some(k), Some((ci, i)), Owner::At(to)) => {
                crud::<E>(moved::<E>(store, ci, i, to), to, (m, uri), Some(k), body)
            }
            ("PUT", Some(k), None, Owner::At(to)) => {
                let (body, item) = match E::top_level_new(k, body) {
                    Ok(new) => new,
                    Err(r) => return r,
                };
                match crud::<E>(Work::new(store), to, (m, uri), item.as_deref(), &body) {
                    // A PUT that creates answers 200, as nested PUTs do.
                    Change::Save { edits, body, .. } => Change::Save {
                        edits,
                        created: false,
                        body,
                    },
                    other => other,
                }
            }
            _ => return not_found(),
        };
        self.apply(change, state)
    }
}
