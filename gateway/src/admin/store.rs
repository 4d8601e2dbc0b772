//! The Admin API's consumers with the indexes a request needs, and
//! [`Work`], a change being built: the consumers it touches, copied, over
//! the untouched store. A write finds what it names through the indexes and
//! copies one or two consumers, so it costs the same at 100 consumers as at
//! 100,000 (the store was a list, cloned whole and scanned, per write).

use std::collections::{BTreeMap, HashMap};

use super::reply::new_id;
use crate::clock::unix_now as now;
use crate::config::ConsumerSpec;

/// Fills in ids, jwt keys and timestamps (as Kong does on insert), so that
/// they stay stable across restarts and changes.
pub fn normalize(mut consumers: Vec<ConsumerSpec>) -> Vec<ConsumerSpec> {
    let t = now();
    for c in &mut consumers {
        c.id.get_or_insert_with(new_id);
        c.created_at.get_or_insert(t);
        for j in &mut c.jwt_secrets {
            j.id.get_or_insert_with(new_id);
            j.key.get_or_insert_with(crate::auth::jwt::random_string);
            j.created_at.get_or_insert(t);
        }
        for a in &mut c.acls {
            a.id.get_or_insert_with(new_id);
            a.created_at.get_or_insert(t);
        }
    }
    consumers
}

/// A consumer's place: insertion order, stable for its life (listing order,
/// and the row's key in the database).
pub type Seq = u64;

/// Consumers in insertion order, indexed by everything a request names.
#[derive(Debug, Default)]
pub struct Store {
    rows: BTreeMap<Seq, ConsumerSpec>,
    next: Seq,
    /// One map from value to owner per [`Index`], in its order.
    indexes: [HashMap<String, Seq>; 6],
}

/// A change's new version of each consumer it touches (None: removed).
pub type Edits = BTreeMap<Seq, Option<ConsumerSpec>>;

impl Store {
    /// From rows as stored (or numbered in order, for a file's consumers).
    pub fn new(rows: impl IntoIterator<Item = (Seq, ConsumerSpec)>) -> Store {
        let mut s = Store::default();
        for (seq, c) in rows {
            s.index(seq, &c);
            s.next = s.next.max(seq + 1);
            s.rows.insert(seq, c);
        }
        s
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Consumers in insertion order, with their places.
    pub fn iter(&self) -> impl Iterator<Item = (Seq, &ConsumerSpec)> {
        self.rows.iter().map(|(s, c)| (*s, c))
    }

    pub fn get(&self, seq: Seq) -> Option<&ConsumerSpec> {
        self.rows.get(&seq)
    }

    /// The consumer a URL names: by id, else by username (Kong's order).
    pub fn find(&self, id_or_name: &str) -> Option<Seq> {
        self.by_id(id_or_name)
            .or_else(|| self.map(Index::Username).get(id_or_name).copied())
    }

    /// The consumer with this id.
    pub fn by_id(&self, id: &str) -> Option<Seq> {
        self.map(Index::Id).get(id).copied()
    }

    /// Who owns the jwt credential with this id or key.
    pub fn jwt_owner(&self, id_or_key: &str) -> Option<Seq> {
        self.map(Index::JwtId)
            .get(id_or_key)
            .or_else(|| self.map(Index::JwtKey).get(id_or_key))
            .copied()
    }

    /// Who owns the ACL with this id.
    pub fn acl_owner(&self, id: &str) -> Option<Seq> {
        self.map(Index::AclId).get(id).copied()
    }

    /// Carries out a committed change.
    pub fn apply(&mut self, edits: Edits) {
        for (seq, next) in edits {
            if let Some(old) = self.rows.remove(&seq) {
                self.unindex(seq, &old);
            }
            if let Some(c) = next {
                self.index(seq, &c);
                self.next = self.next.max(seq + 1);
                self.rows.insert(seq, c);
            }
        }
    }

    fn keys(c: &ConsumerSpec) -> [(Index, Vec<&String>); 6] {
        [
            (Index::Id, c.id.iter().collect()),
            (Index::Username, c.username.iter().collect()),
            (Index::CustomId, c.custom_id.iter().collect()),
            (
                Index::JwtKey,
                c.jwt_secrets
                    .iter()
                    .filter_map(|j| j.key.as_ref())
                    .collect(),
            ),
            (
                Index::JwtId,
                c.jwt_secrets.iter().filter_map(|j| j.id.as_ref()).collect(),
            ),
            (
                Index::AclId,
                c.acls.iter().filter_map(|a| a.id.as_ref()).collect(),
            ),
        ]
    }

    fn map(&self, i: Index) -> &HashMap<String, Seq> {
        &self.indexes[i as usize]
    }

    fn index(&mut self, seq: Seq, c: &ConsumerSpec) {
        for (i, keys) in Self::keys(c) {
            let map = &mut self.indexes[i as usize];
            for k in keys {
                map.insert(k.clone(), seq);
            }
        }
    }

    fn unindex(&mut self, seq: Seq, c: &ConsumerSpec) {
        for (i, keys) in Self::keys(c) {
            let map = &mut self.indexes[i as usize];
            for k in keys {
                // Only our own entry: a duplicate elsewhere keeps its own.
                if map.get(k) == Some(&seq) {
                    map.remove(k);
                }
            }
        }
    }

    /// Who else holds `value` under `index`, ignoring the consumers `edits` replaces.
    fn holder(&self, index: Index, value: &str, edits: &Edits) -> Option<Seq> {
        self.map(index)
            .get(value)
            .copied()
            .filter(|seq| !edits.contains_key(seq))
    }
}

/// What the store indexes (the position of its map in `Store::indexes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Id,
    Username,
    CustomId,
    JwtKey,
    JwtId,
    AclId,
}

/// A change being built over a store: reads see the change, the store is
/// untouched until it is committed.
#[derive(Debug)]
pub struct Work<'a> {
    pub store: &'a Store,
    pub edits: Edits,
}

impl<'a> Work<'a> {
    pub fn new(store: &'a Store) -> Work<'a> {
        Work {
            store,
            edits: Edits::new(),
        }
    }

    /// The consumer at `seq` as the change leaves it.
    pub fn get(&self, seq: Seq) -> Option<&ConsumerSpec> {
        match self.edits.get(&seq) {
            Some(c) => c.as_ref(),
            None => self.store.get(seq),
        }
    }

    /// The consumer at `seq`, copied into the change on first touch.
    pub fn get_mut(&mut self, seq: Seq) -> Option<&mut ConsumerSpec> {
        if !self.edits.contains_key(&seq) {
            let c = self.store.get(seq)?.clone();
            self.edits.insert(seq, Some(c));
        }
        self.edits.get_mut(&seq).and_then(Option::as_mut)
    }

    /// Removes the consumer at `seq`.
    pub fn remove(&mut self, seq: Seq) {
        self.edits.insert(seq, None);
    }

    /// Adds a consumer at the end; its place.
    pub fn push(&mut self, c: ConsumerSpec) -> Seq {
        let last = self.edits.keys().next_back().map_or(0, |s| s + 1);
        let seq = self.store.next.max(last);
        self.edits.insert(seq, Some(c));
        seq
    }

    /// Whether a consumer other than `me` holds `value` under `index`, as
    /// the change leaves the store.
    pub fn taken(&self, index: Index, value: &str, me: Seq) -> bool {
        if self
            .store
            .holder(index, value, &self.edits)
            .is_some_and(|s| s != me)
        {
            return true;
        }
        self.edits.iter().any(|(&seq, c)| {
            seq != me
                && c.as_ref().is_some_and(|c| {
                    Store::keys(c)
                        .into_iter()
                        .any(|(i, keys)| i == index && keys.iter().any(|k| k.as_str() == value))
                })
        })
    }

    /// How many jwt credentials have `key`, as the change leaves the store.
    pub fn jwt_key_uses(&self, key: &str) -> usize {
        let outside = usize::from(self.store.holder(Index::JwtKey, key, &self.edits).is_some());
        let inside: usize = self
            .edits
            .values()
            .flatten()
            .map(|c| {
                c.jwt_secrets
                    .iter()
                    .filter(|j| j.key.as_deref() == Some(key))
                    .count()
            })
            .sum();
        outside + inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JwtSecretSpec;

    fn consumer(name: &str, keys: &[&str]) -> ConsumerSpec {
        ConsumerSpec {
            created_at: None,
            username: Some(name.into()),
            custom_id: None,
            id: Some(format!("id-{name}")),
            tags: vec![],
            jwt_secrets: keys
                .iter()
                .map(|k| JwtSecretSpec {
                    created_at: None,
                    key: Some((*k).into()),
                    secret: Some("s".into()),
                    algorithm: None,
                    rsa_public_key: None,
                    id: Some(format!("jid-{k}")),
                    tags: vec![],
                })
                .collect(),
            acls: vec![],
        }
    }

    #[test]
    fn a_change_sees_itself_and_the_store_only_after_apply() {
        let store = Store::new([(0, consumer("a", &["ka"])), (1, consumer("b", &["kb"]))]);
        let mut w = Work::new(&store);
        // Move b's key to a new consumer c, remove a.
        let b = store.find("b").unwrap_or(99);
        let moved = w.get_mut(b).map(|c| c.jwt_secrets.remove(0));
        let mut c = consumer("c", &[]);
        c.jwt_secrets.extend(moved);
        let cs = w.push(c);
        w.remove(store.find("id-a").unwrap_or(99));
        assert_eq!(cs, 2);
        assert_eq!(w.jwt_key_uses("kb"), 1);
        assert_eq!(w.jwt_key_uses("ka"), 0, "a is removed by the change");
        assert!(w.taken(Index::Username, "b", cs));
        assert!(!w.taken(Index::Username, "a", cs), "a is removed");
        assert!(!w.taken(Index::Username, "c", cs), "c's own name");
        // The store is untouched…
        assert_eq!(store.jwt_owner("kb"), Some(b));
        let edits = w.edits;
        let mut store = store;
        store.apply(edits);
        // …until the change is applied.
        assert_eq!(store.jwt_owner("kb"), Some(2));
        assert_eq!(store.jwt_owner("jid-kb"), Some(2));
        assert_eq!(store.find("a"), None);
        assert_eq!(store.jwt_owner("ka"), None);
        let names: Vec<_> = store
            .iter()
            .filter_map(|(_, c)| c.username.clone())
            .collect();
        assert_eq!(names, ["b", "c"]);
        // A new consumer after a removal still goes last.
        let w = Work::new(&store);
        assert_eq!(w.store.next, 3);
    }
}
