//! How late loadgen's send timer wakes (`loadgen::engine::timer::Sleeper`):
//! each iteration sleeps to a deadline 700 µs ahead, and what criterion
//! reports as "time" is the **lateness** past the deadline (iter_custom sums
//! it), with the final spin (default) and with the timerfd alone. The raw
//! lower bound beside them: `tokio::time::sleep_until`, which rounds to its
//! 1 ms wheel. Quote medians from one sitting; this machine's hiccups show
//! in the upper estimates.

#![allow(
    clippy::disallowed_methods,
    reason = "the bench measures how late the timer wakes"
)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use loadgen::engine::timer::Sleeper;

const AHEAD: Duration = Duration::from_micros(700);

fn lateness(rt: &tokio::runtime::Runtime, iters: u64, spin: Option<bool>) -> Duration {
    rt.block_on(async {
        let mut sleeper = spin.map(|s| Sleeper::new(s).expect("a timerfd"));
        let mut late = Duration::ZERO;
        for _ in 0..iters {
            let deadline = Instant::now() + AHEAD;
            match sleeper.as_mut() {
                Some(s) => s.sleep_until(deadline).await.expect("timerfd wait"),
                None => tokio::time::sleep_until(deadline.into()).await,
            }
            late += Instant::now().saturating_duration_since(deadline);
        }
        late
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut g = c.benchmark_group("timer_lateness");
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    for (name, spin) in [
        ("sleeper_spin", Some(true)),
        ("sleeper_no_spin", Some(false)),
        ("tokio_sleep", None),
    ] {
        g.bench_function(name, |b| b.iter_custom(|iters| lateness(&rt, iters, spin)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
