//! A run's request counters, and how they add up.
//!
//! Counter structs are declared through [`counters!`], which writes their
//! `+=` from the same field list: a counter added to the struct is added up
//! everywhere counters are summed (a worker's second into the totals, shards
//! into a merge, a second's classes into the timeline).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Declares a struct of `u64` counters and its `AddAssign<&Self>`, field by
/// field from one list. Sums saturate: a corrupt input cannot wrap a count
/// round to a small, plausible one.
macro_rules! counters {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: u64,)* }) => {
        $(#[$m])*
        pub struct $name { $($(#[$fm])* pub $f: u64,)* }

        impl std::ops::AddAssign<&$name> for $name {
            fn add_assign(&mut self, other: &$name) {
                $(self.$f = self.$f.saturating_add(other.$f);)*
            }
        }

        impl $name {
            /// The first counter whose sum with `other`'s would not fit a
            /// `u64` (where `+=` would saturate), if any.
            pub fn overflow_with(&self, other: &$name) -> Option<&'static str> {
                $(if self.$f.checked_add(other.$f).is_none() {
                    return Some(stringify!($f));
                })*
                None
            }
        }
    };
}

counters! {
/// Request counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    /// Sends the schedule asked for.
    pub scheduled: u64,
    /// Requests whose first byte was written.
    pub sent: u64,
    /// Responses read in full.
    pub completed: u64,
    /// Completed with the expected status.
    pub ok: u64,
    /// Completed with another status.
    pub unexpected: u64,
    /// Failed without a full response.
    pub errors: u64,
    /// Not sent: more than `max_in_flight` were waiting.
    pub dropped: u64,
    /// Not completed when the run stopped (interrupted or past the grace period).
    pub unfinished: u64,
    /// Ready to send more than 1 ms after their intended time (schedule lag).
    pub late: u64,
    /// Waited more than 1 ms for a free connection or stream.
    #[serde(default)]
    pub waited: u64,
    /// Response body bytes received.
    pub bytes: u64,
}
}

counters! {
/// The counters a second of the timeline shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TickCounts {
    pub scheduled: u64,
    pub completed: u64,
    pub ok: u64,
    pub unexpected: u64,
    pub errors: u64,
    pub dropped: u64,
}
}

impl From<&Counts> for TickCounts {
    fn from(c: &Counts) -> Self {
        TickCounts {
            scheduled: c.scheduled,
            completed: c.completed,
            ok: c.ok,
            unexpected: c.unexpected,
            errors: c.errors,
            dropped: c.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    /// `T` with every field set to `n`, through its serialized form, so a
    /// field added later is covered without this test naming it.
    fn every_field<T: Serialize + DeserializeOwned + Default>(n: u64) -> T {
        let mut v = serde_json::to_value(T::default()).unwrap();
        for x in v.as_object_mut().unwrap().values_mut() {
            *x = n.into();
        }
        serde_json::from_value(v).unwrap()
    }

    fn fields<T: Serialize>(t: &T) -> Vec<(String, u64)> {
        let v = serde_json::to_value(t).unwrap();
        let o = v.as_object().unwrap();
        o.iter()
            .map(|(k, x)| (k.clone(), x.as_u64().unwrap()))
            .collect()
    }

    #[test]
    fn every_counter_adds() {
        let mut a: Counts = every_field(1);
        a += &every_field(2);
        assert!(fields(&a).iter().all(|(_, v)| *v == 3), "{:?}", fields(&a));
        let mut t: TickCounts = every_field(1);
        t += &every_field(2);
        assert!(fields(&t).iter().all(|(_, v)| *v == 3), "{:?}", fields(&t));
    }

    #[test]
    fn a_tick_shows_every_counter_it_has() {
        let t = TickCounts::from(&every_field::<Counts>(7));
        assert!(fields(&t).iter().all(|(_, v)| *v == 7), "{:?}", fields(&t));
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let mut a = Counts {
            scheduled: u64::MAX,
            ..Counts::default()
        };
        a += &Counts {
            scheduled: 200,
            ..Counts::default()
        };
        assert_eq!(a.scheduled, u64::MAX);
    }

    #[test]
    fn an_overflow_names_its_counter() {
        let big = Counts {
            bytes: u64::MAX,
            ..every_field(1)
        };
        assert_eq!(big.overflow_with(&every_field(1)), Some("bytes"));
        assert_eq!(big.overflow_with(&Counts::default()), None);
        let c: Counts = every_field(u64::MAX / 2);
        assert_eq!(c.overflow_with(&c), None);
    }
}
