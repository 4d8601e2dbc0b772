#!/usr/bin/env bash
# Accuracy of mock-upstream's programmed delays, seen from outside: one
# loadgen run per repetition against one release mock-upstream (--workers 1),
# open loop at RATE req/s, with requests of X-Mock-Latency fixed:0 (the
# floor), fixed:200us, fixed:1ms and fixed:10ms mixed at random in the same
# run (so they share the machine's state second by second). Per delay:
# service time p50 (send to last byte), the mock's own Server-Timing stamp
# p50 (service time − outside), the time outside the stamp, and the net
# error = service p50 − floor p50 − programmed.
#
#   scripts/bench-delay-accuracy.sh           # RATE=1000 DUR=15s REPS=3
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RATE=${RATE:-1000} DUR=${DUR:-15s} REPS=${REPS:-3}
cargo build --release -q -p mock-upstream -p loadgen --manifest-path "$ROOT/Cargo.toml"
run=$(mktemp -d)
trap 'stop_pidfile "$run/mock.pid"' EXIT
url=$(start_mock "$run/mock" --workers 1)
{
    printf 'name = "delay-accuracy"\nseed = 1\n[[target]]\nname = "mock"\nurl = "%s"\nbaseline = true\nconnections = 16\n' "$url"
    for d in 0 200us 1ms 10ms; do
        printf '[[request]]\nname = "d%s"\npath = "/x"\nheaders = { "x-mock-latency" = "fixed:%s" }\n' "$d" "$d"
    done
    printf '[[phase]]\nname = "warmup"\nduration = "2s"\nrate = %s\nrecord = false\n' "$RATE"
    printf '[[phase]]\nname = "steady"\nduration = "%s"\nrate = %s\n' "$DUR" "$RATE"
} >"$run/s.toml"
echo "| rep | programmed | service p50 µs | Server-Timing p50 µs | outside p50 µs | net error µs |"
echo "|---|---|---|---|---|---|"
for rep in $(seq "$REPS"); do
    valid_or_invalid "$ROOT/target/release/loadgen" run --no-calibrate "$run/s.toml" --out "$run/out$rep" --quiet --no-report
    python3 - "$run/out$rep/summary.json" "$rep" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
prog = {"d0": 0, "d200us": 200, "d1ms": 1000, "d10ms": 10000}
rows = {c["request"]: c for c in s["targets"][0]["classes"]}
floor = rows["d0"]["service_time"]["p50"] / 1e3
for name, us in prog.items():
    c = rows[name]
    st = c["service_time"]["p50"] / 1e3
    out = c["outside_upstream"]["p50"] / 1e3
    print(f"| {sys.argv[2]} | {name[1:]} | {st:.1f} | {st - out:.1f} | {out:.1f} | {st - floor - us:+.1f} |")
PY
done
