//! Criterion benches of gatebench's hot paths live in `benches/benches/`,
//! one file per concern; run them with `cargo bench -p gatebench-benches`.
