//! Which consumer an unpinned request carries ([`Spread`]): uniform, Zipf
//! or a hot set, from a hash of the seed and the request's sequence number
//! alone, so that every target and shard sends the same consumer at the
//! same place in the run. Real partner traffic is skewed (a few partners
//! send most requests, a long tail sends a few): a gateway's credential
//! cache sees that, not a uniform spread.

use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use rand_distr::Distribution as _;

use crate::scenario::Popularity;

/// The popularity of `n` consumers, ready to pick.
#[derive(Debug, Clone)]
pub struct Spread {
    n: usize,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Uniform,
    /// Rejection-inversion sampling (rand_distr): O(1) per pick at any n.
    Zipf(rand_distr::Zipf<f64>),
    /// The first `hot` consumers get `traffic` of the picks.
    Hot {
        hot: usize,
        traffic: f64,
    },
}

/// A uniform number in [0, 1) from a hash's top 53 bits.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Spread {
    pub fn new(p: Popularity, n: usize) -> Spread {
        let n = n.max(1);
        let kind = match p {
            Popularity::Uniform => Kind::Uniform,
            // The exponent is checked positive when the scenario is read.
            Popularity::Zipf(s) => {
                rand_distr::Zipf::new(n as f64, s).map_or(Kind::Uniform, Kind::Zipf)
            }
            Popularity::Hot { share, traffic } => Kind::Hot {
                // At least one consumer is hot, and at least one is not (when there are two).
                hot: ((n as f64 * share).ceil() as usize).clamp(1, (n - 1).max(1)),
                traffic,
            },
        };
        Spread { n, kind }
    }

    /// The consumer for hash `h` (of the seed and the request's sequence number).
    pub fn pick(&self, h: u64) -> usize {
        match &self.kind {
            Kind::Uniform => (h % self.n as u64) as usize,
            Kind::Zipf(z) => {
                let rank = z.sample(&mut SmallRng::seed_from_u64(h));
                (rank as usize).saturating_sub(1).min(self.n - 1)
            }
            Kind::Hot { hot, traffic } => {
                // Two independent parts of the hash: which part, and where in it.
                let (part, at) = (unit(h), crate::seed::mix(&[h]));
                if part < *traffic || *hot == self.n {
                    (at % *hot as u64) as usize
                } else {
                    hot + (at % (self.n - hot) as u64) as usize
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(p: Popularity, n: usize, draws: u64) -> Vec<f64> {
        let s = Spread::new(p, n);
        let mut counts = vec![0u64; n];
        for seq in 0..draws {
            counts[s.pick(crate::seed::mix(&[7, seq]))] += 1;
        }
        counts.iter().map(|&c| c as f64 / draws as f64).collect()
    }

    #[test]
    fn zipf_follows_its_law() {
        // s = 1 over 1,000 consumers: rank 1 gets 1/H(1000) = 13.4 %, rank 2 half that.
        let h: f64 = (1..=1000).map(|k| 1.0 / k as f64).sum();
        let got = shares(Popularity::Zipf(1.0), 1000, 400_000);
        for k in [1usize, 2, 10, 100] {
            let want = 1.0 / (k as f64 * h);
            assert!(
                (got[k - 1] - want).abs() < 0.1 * want + 0.0005,
                "rank {k}: {} vs {want}",
                got[k - 1]
            );
        }
        // Every consumer is reachable; the tail is thin but there.
        assert!(got[999] > 0.0);
    }

    #[test]
    fn hot_sets_and_uniform_split_as_asked() {
        let got = shares(
            Popularity::Hot {
                share: 0.1,
                traffic: 0.9,
            },
            1000,
            200_000,
        );
        let hot: f64 = got[..100].iter().sum();
        assert!((hot - 0.9).abs() < 0.01, "hot share {hot}");
        let u = shares(Popularity::Uniform, 10, 100_000);
        assert!(u.iter().all(|s| (s - 0.1).abs() < 0.01), "{u:?}");
        // One consumer: always it.
        assert_eq!(Spread::new(Popularity::Zipf(2.0), 1).pick(12345), 0);
        assert_eq!(
            Spread::new(
                Popularity::Hot {
                    share: 0.5,
                    traffic: 0.5
                },
                1
            )
            .pick(99),
            0
        );
    }

    #[test]
    fn popularity_reads_and_refuses() {
        for (s, ok) in [
            ("uniform", true),
            ("zipf:1.1", true),
            ("zipf:0", false),
            ("zipf:11", false),
            ("zipf:x", false),
            ("hot:10%:90%", true),
            ("hot:0%:90%", false),
            ("hot:10%:101%", false),
            ("hot:10:90", false),
            ("lognormal", false),
        ] {
            let r = s.parse::<Popularity>();
            assert_eq!(r.is_ok(), ok, "{s}: {r:?}");
            if let Ok(p) = r {
                assert_eq!(p.to_string().parse::<Popularity>().ok(), Some(p), "{s}");
            }
        }
    }
}
