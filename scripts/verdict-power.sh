#!/usr/bin/env bash
# How often `loadgen compare` cries wolf (A/A) and how often it catches a
# known effect (A/B), interleaved in one run and across separate runs: see
# scripts/verdict_power.py (its --help lists the knobs). The table it prints
# is the one in docs/BENCHMARKS.md ("Verdicts: false alarms and power").
#
#   scripts/verdict-power.sh [--quick] [verdict_power.py flags...]
#
# The full version (the defaults: an interleaved run of 180 rounds of 1 s
# over two A/A pairs and two effects, 21 triples of separate runs of 5
# rounds, the CPU-hog case) takes about 40 minutes.
# --quick is what .ci/run runs (about 45 s): the debug build, one
# interleaved run of 10 short rounds (one A/A pair and +1 ms), checking that
# a +1 ms effect is caught (the debug build on a shared runner spreads
# rounds by ~150 us, so +200 us would be missed about a third of the time).
# 10 rounds, not 6: at 6 the signed-rank interval is the whole range of the
# differences, so one stalled round on the wrong side hides any effect; at
# 10 it drops the 8 most extreme Walsh averages on each side. A run the
# machine stalled (invalid) is run again, up to three times.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--quick" ]; then
    shift
    cargo build --locked -q -p loadgen
    exec python3 scripts/verdict_power.py --loadgen target/debug/loadgen \
        --rounds 10 --aa-pairs 1 --effects 1000 --blocks 10 --triples 0 \
        --warmup 200ms --steady 800ms --rate 1000 --expect-detected 1000 "$@"
fi
cargo build --locked --release -q -p loadgen
exec python3 scripts/verdict_power.py --hog "$@"
