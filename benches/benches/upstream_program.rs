//! Per-request cost of the mock upstream's response programming: drawing a
//! delay and a status, and formatting `Server-Timing`, next to the raw cost of
//! one random number (the lower bound).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mock_upstream::service::server_timing;
use mock_upstream::{Latency, StatusMix};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn bench(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut g = c.benchmark_group("upstream_program");
    g.bench_function("raw_u64", |b| b.iter(|| black_box(rng.random::<u64>())));
    for spec in [
        "fixed:2ms",
        "uniform:1ms..5ms",
        "normal:5ms,1ms",
        "lognormal:2ms,20ms",
    ] {
        let l: Latency = spec.parse().unwrap();
        g.bench_function(format!("latency/{spec}"), |b| {
            b.iter(|| black_box(l.sample(&mut rng)))
        });
    }
    let mix: StatusMix = "200:98,503:2".parse().unwrap();
    g.bench_function("status/200:98,503:2", |b| {
        b.iter(|| black_box(mix.sample(&mut rng)))
    });
    g.bench_function("server_timing", |b| {
        b.iter(|| black_box(server_timing(black_box(Duration::from_micros(1234)))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
