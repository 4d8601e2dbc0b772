//! A map by string key that a copy-on-write update changes in a small part:
//! the keys are spread over [`SHARDS`] hash maps, each behind an `Arc`, so
//! that cloning the map copies 256 pointers and changing one key copies only
//! the one shard that holds it (1/256 of the table). This is what lets an
//! Admin API write at 100,000 consumers build the proxy's next snapshot in
//! microseconds, where cloning one big map took hundreds of milliseconds,
//! while a lookup stays a plain hash-map probe (no tree walk on the request
//! path).
//!
//! Two independent seeds: one picks the shard, the other hashes inside it.
//! With one hash for both, every key in a shard would share the bits that
//! chose it, and the inner map (which uses the same bits for its buckets and
//! tags) would degrade to a linear scan.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;

/// How many shards: a write at 100,000 keys copies ~400 of them.
pub const SHARDS: usize = 256;

/// A copy-on-write map by string key (see the module comment).
#[derive(Clone)]
pub struct ShardedMap<V> {
    pick: RandomState,
    shards: Box<[Arc<HashMap<String, V, RandomState>>]>,
    len: usize,
}

impl<V> std::fmt::Debug for ShardedMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may hold key material: only the size.
        f.debug_struct("ShardedMap")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<V> Default for ShardedMap<V> {
    fn default() -> Self {
        // One inner seed for every shard: shards are rebuilt from each other.
        let inner = RandomState::default();
        ShardedMap {
            pick: RandomState::default(),
            shards: (0..SHARDS)
                .map(|_| Arc::new(HashMap::with_hasher(inner.clone())))
                .collect(),
            len: 0,
        }
    }
}

impl<V: Clone> ShardedMap<V> {
    fn shard_of(&self, key: &str) -> usize {
        // The top bits: foldhash mixes them best.
        (self.pick.hash_one(key) >> 56) as usize % SHARDS
    }

    /// The value under `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&V> {
        self.shards[self.shard_of(key)].get(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Inserts, copying the one shard if another map shares it; returns the old value.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        let shard = Arc::make_mut(&mut self.shards[self.shard_of(&key)]);
        let old = shard.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes, copying the one shard if another map shares it.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let i = self.shard_of(key);
        // Only copy a shard that holds the key.
        if !self.shards[i].contains_key(key) {
            return None;
        }
        let old = Arc::make_mut(&mut self.shards[i]).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_shares_all_but_the_shard_a_write_touches() {
        let mut a = ShardedMap::default();
        for i in 0..10_000 {
            a.insert(format!("k{i}"), i);
        }
        let mut b = a.clone();
        assert_eq!(b.insert("k5".into(), 50), Some(5));
        assert_eq!(b.remove("k6"), Some(6));
        assert_eq!(b.remove("absent"), None);
        assert_eq!(b.insert("new".into(), 1), None);
        // The original is untouched…
        assert_eq!(
            (a.get("k5"), a.get("k6"), a.get("new")),
            (Some(&5), Some(&6), None)
        );
        assert_eq!(a.len(), 10_000);
        // …the copy changed…
        assert_eq!(
            (b.get("k5"), b.get("k6"), b.get("new")),
            (Some(&50), None, Some(&1))
        );
        assert_eq!(b.len(), 10_000);
        assert_eq!(b.iter().count(), 10_000);
        // …and shares every shard but the (at most three) it wrote.
        let shared = (0..SHARDS)
            .filter(|&i| Arc::ptr_eq(&a.shards[i], &b.shards[i]))
            .count();
        assert!(shared >= SHARDS - 3, "{shared} shards shared");
    }

    #[test]
    fn keys_spread_over_the_shards() {
        let mut m = ShardedMap::default();
        for i in 0..25_600 {
            m.insert(format!("partner-{i}"), ());
        }
        let biggest = m.shards.iter().map(|s| s.len()).max().unwrap_or(0);
        // 100 expected per shard; a bad pick would pile them up.
        assert!(biggest < 200, "largest shard {biggest}");
    }
}
