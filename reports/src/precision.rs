//! A run that adds rounds until its added figures are known to a given
//! precision (`loadgen run --precision 10us`): what it asked for, how many
//! rounds it took, and whether it got there.
//!
//! The stopping rule looks at the same intervals `summary.json` reports (the
//! paired per-round differences of [`crate::interval::paired`]). Stopping
//! when an interval is first narrow enough is a sequential procedure, so the
//! nominal 95 % slightly overstates its coverage; a floor of 3 rounds and a
//! target precision well inside the allowed change (the usual use) keep the
//! effect small (docs/statistics.md).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::interval::paired;

/// The fewest rounds before the precision is looked at: two rounds give a
/// t interval with t(0.975, 1) = 12.7, whose width says little.
pub const MIN_ROUNDS: u32 = 3;

/// What the precision asked for and what the run got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Precision {
    /// The half-width every asked-for added interval had to reach (ns).
    pub half_width_ns: u64,
    /// The added percentiles it applied to (`p50`, `p90` …).
    pub at: Vec<String>,
    /// Rounds at least and at most.
    pub min_rounds: u32,
    pub max_rounds: u32,
    /// The rounds the run took.
    pub rounds: u32,
    /// Whether every asked-for interval got there.
    pub reached: bool,
    /// The widest asked-for interval when the run ended.
    pub widest: Option<Widest>,
}

/// One target's interval at one percentile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Widest {
    pub target: String,
    /// `p50` …
    pub at: String,
    pub half_width_ns: f64,
    /// The rounds it rests on.
    pub n: u32,
}

/// The widest interval over `(target, percentile, per-round added
/// differences)`; None while any has fewer than 2 rounds (no interval yet:
/// not precise).
pub fn widest<'a>(
    figures: impl IntoIterator<Item = (&'a str, &'a str, Vec<f64>)>,
) -> Option<Widest> {
    let mut worst: Option<Widest> = None;
    for (target, at, diffs) in figures {
        let i = paired(&diffs)?;
        if worst
            .as_ref()
            .is_none_or(|w| i.half_width() > w.half_width_ns)
        {
            worst = Some(Widest {
                target: target.to_owned(),
                at: at.to_owned(),
                half_width_ns: i.half_width(),
                n: i.n,
            });
        }
    }
    worst
}

impl Precision {
    /// Where the run stands after `rounds`: the widest asked-for interval,
    /// and whether it is narrow enough.
    pub fn record(&mut self, rounds: u32, widest: Option<Widest>) {
        self.reached = widest
            .as_ref()
            .is_some_and(|w| w.half_width_ns <= self.half_width_ns as f64);
        self.rounds = rounds;
        self.widest = widest;
    }

    /// Whether the run may stop where it stands.
    pub fn enough(&self) -> bool {
        self.rounds >= self.max_rounds || (self.rounds >= self.min_rounds && self.reached)
    }

    /// Where the rounds stand, for the progress line after each.
    pub fn describe_progress(&self) -> String {
        let target = crate::fmt_ns(self.half_width_ns);
        match &self.widest {
            Some(w) => format!(
                "widest added.{} interval ±{} ({}, n={}), asked ±{target}",
                w.at,
                crate::fmt_ns(w.half_width_ns as u64),
                w.target,
                w.n
            ),
            None => format!("no interval yet, asked ±{target}"),
        }
    }

    /// One line for the terminal: reached or not, in how many rounds.
    pub fn describe(&self) -> String {
        let target = crate::fmt_ns(self.half_width_ns);
        let at = self
            .at
            .iter()
            .map(|p| format!("added.{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let w = self.widest.as_ref().map_or(String::new(), |w| {
            format!(
                " (widest ±{} at {} added.{}, n={})",
                crate::fmt_ns(w.half_width_ns as u64),
                w.target,
                w.at,
                w.n
            )
        });
        if self.reached {
            format!(
                "precision: ±{target} at {at} reached in {} rounds{w}",
                self.rounds
            )
        } else {
            format!(
                "precision: ±{target} at {at} NOT reached in {} rounds (the most allowed: {}){w}; those figures stay inconclusive at that precision",
                self.rounds, self.max_rounds
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target's p50 and p90 (twice each p50) figures.
    fn figures<'a>(target: &'a str, p50s: &[f64]) -> [(&'a str, &'static str, Vec<f64>); 2] {
        [
            (target, "p50", p50s.to_vec()),
            (target, "p90", p50s.iter().map(|x| 2.0 * x).collect()),
        ]
    }

    #[test]
    fn the_widest_interval_decides_and_rounds_bound_it() {
        let at = vec!["p50".to_owned(), "p90".to_owned()];
        let steady = [100.0, 102.0, 98.0, 101.0, 99.0];
        let noisy = [100.0, 160.0, 40.0, 130.0, 70.0];
        let w = widest(
            figures("a", &steady)
                .into_iter()
                .chain(figures("b", &noisy)),
        )
        .unwrap();
        // p90 doubles every difference: b's p90 is the widest.
        assert_eq!((w.target.as_str(), w.at.as_str(), w.n), ("b", "p90", 5));
        assert!(widest(figures("a", &[100.0])).is_none());
        let p = Precision {
            half_width_ns: 5,
            at,
            min_rounds: 3,
            max_rounds: 20,
            rounds: 0,
            reached: false,
            widest: None,
        };
        let narrow = widest(figures("a", &steady[..3])).unwrap();
        assert!(narrow.half_width_ns > 5.0);
        let enough = |rounds, w: Option<&Widest>| {
            let mut q = p.clone();
            q.record(rounds, w.cloned());
            q.enough()
        };
        assert!(!enough(3, Some(&narrow)));
        let tight = Widest {
            half_width_ns: 4.0,
            ..narrow.clone()
        };
        assert!(enough(3, Some(&tight)));
        // Not before the floor, always at the ceiling.
        assert!(!enough(2, Some(&tight)));
        assert!(enough(20, None));
    }
}
