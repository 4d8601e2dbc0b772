//! Counters served at `/stats`: cheap atomics on the hot path, and two small
//! bounded maps (by path, by consumer) behind uncontended mutexes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// At most this many distinct paths or consumers are counted by name; the
/// rest are counted under [`OTHER`], so memory never grows with run length.
pub const MAX_KEYS: usize = 10_000;
/// The key that collects everything past [`MAX_KEYS`].
pub const OTHER: &str = "(other)";

/// Live counters of one server.
#[derive(Debug)]
pub struct Stats {
    requests: AtomicU64,
    by_status: Box<[AtomicU64]>,
    by_path: Mutex<HashMap<String, u64>>,
    by_consumer: Mutex<HashMap<String, u64>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    open_connections: AtomicI64,
    connections: AtomicU64,
    in_flight: AtomicI64,
}

/// A point-in-time copy of [`Stats`], as served at `/stats` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Requests answered (responses produced), all routes.
    pub requests: u64,
    /// Responses by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests by URI path (without the query).
    pub by_path: BTreeMap<String, u64>,
    /// Requests by the `X-Consumer-Username` header a gateway forwarded.
    pub by_consumer: BTreeMap<String, u64>,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes produced.
    pub bytes_out: u64,
    /// Connections open now.
    pub open_connections: i64,
    /// Connections accepted since start.
    pub connections: u64,
    /// Requests on the programmable route received and not yet answered
    /// (control routes such as `/stats` are not counted).
    #[serde(default)]
    pub in_flight: i64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            by_status: (0..600).map(|_| AtomicU64::new(0)).collect(),
            by_path: Mutex::default(),
            by_consumer: Mutex::default(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            open_connections: AtomicI64::new(0),
            connections: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
        }
    }
}

fn bump(map: &Mutex<HashMap<String, u64>>, key: &str) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = m.get_mut(key) {
        *n += 1;
    } else if m.len() < MAX_KEYS {
        m.insert(key.to_owned(), 1);
    } else {
        *m.entry(OTHER.to_owned()).or_default() += 1;
    }
}

fn copy(map: &Mutex<HashMap<String, u64>>) -> BTreeMap<String, u64> {
    let m = map.lock().unwrap_or_else(|p| p.into_inner());
    m.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

/// A request in flight (see [`Stats::in_flight`]).
#[derive(Debug)]
pub(crate) struct InFlight<'a>(&'a Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Stats {
    /// Counts one answered request.
    pub fn record(
        &self,
        status: u16,
        path: &str,
        consumer: Option<&str>,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        self.requests.fetch_add(1, Relaxed);
        if let Some(c) = self.by_status.get(usize::from(status)) {
            c.fetch_add(1, Relaxed);
        }
        bump(&self.by_path, path);
        if let Some(consumer) = consumer {
            bump(&self.by_consumer, consumer);
        }
        self.bytes_in.fetch_add(bytes_in, Relaxed);
        self.bytes_out.fetch_add(bytes_out, Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.fetch_add(1, Relaxed);
        self.open_connections.fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Relaxed);
    }

    /// Counts a request in flight until the guard drops (answered or abandoned).
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self)
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Relaxed),
            by_status: (0u16..)
                .zip(self.by_status.iter())
                .map(|(s, c)| (s, c.load(Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            by_path: copy(&self.by_path),
            by_consumer: copy(&self.by_consumer),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            open_connections: self.open_connections.load(Relaxed),
            connections: self.connections.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_caps_keys() {
        let s = Stats::default();
        s.record(200, "/a", Some("web"), 3, 10);
        s.record(503, "/a", None, 0, 5);
        for i in 0..MAX_KEYS + 5 {
            s.record(200, &format!("/p{i}"), None, 0, 0);
        }
        let snap = s.snapshot();
        assert_eq!(snap.requests, 2 + MAX_KEYS as u64 + 5);
        assert_eq!(snap.by_status[&503], 1);
        assert_eq!(snap.by_path["/a"], 2);
        assert_eq!(snap.by_path.len(), MAX_KEYS + 1);
        assert_eq!(snap.by_path[OTHER], 6);
        assert_eq!(snap.by_consumer["web"], 1);
        assert_eq!((snap.bytes_in, snap.bytes_out), (3, 15));
    }
}
