#!/usr/bin/env bash
# Accuracy of mock-upstream's programmed delays, seen from outside at a fixed
# moderate rate: oha open loop (-q RATE --latency-correction) against one
# mock-upstream, with X-Mock-Latency fixed:0 (the floor), fixed:1ms and
# fixed:10ms, interleaved, REPS repetitions. Error = measured − programmed;
# "net" error also subtracts the fixed:0 floor of the same repetition.
#
#   scripts/bench-delay-accuracy.sh           # RATE=1000 DUR=15s REPS=2
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RATE=${RATE:-1000} DUR=${DUR:-15s} REPS=${REPS:-2} WORKERS=${WORKERS:-1}
command -v oha >/dev/null || { echo "oha is missing: cargo install --locked oha" >&2; exit 1; }
cargo build --release -q -p mock-upstream --manifest-path "$ROOT/Cargo.toml"
run=$(mktemp -d)
trap 'stop_pidfile "$run/mock.pid"' EXIT
url=$(start_mock "$run/mock" --workers "$WORKERS")

pcts() { # DELAY -> "p50_us p90_us p99_us" of oha's corrected latency
    oha -z "$DUR" -c 32 -q "$RATE" --latency-correction --no-tui --output-format json \
        -H "x-mock-latency: fixed:$1" "$url/" |
        python3 -c 'import json,sys; p=json.load(sys.stdin)["latencyPercentiles"]; print(*(round(p[k]*1e6) for k in ("p50","p90","p99")))'
}

echo "| rep | programmed | p50 µs | p90 µs | p99 µs | p50 error µs | p99 error µs | p50 net error µs |"
echo "|---|---|---|---|---|---|---|---|"
for rep in $(seq "$REPS"); do
    floor50=0
    for delay in 0 1ms 10ms; do
        read -r p50 p90 p99 <<<"$(pcts "$delay")"
        prog=$(case $delay in 0) echo 0;; 1ms) echo 1000;; 10ms) echo 10000;; esac)
        [ "$delay" = 0 ] && floor50=$p50
        echo "| $rep | $delay | $p50 | $p90 | $p99 | $((p50 - prog)) | $((p99 - prog)) | $((p50 - prog - floor50)) |"
    done
done
