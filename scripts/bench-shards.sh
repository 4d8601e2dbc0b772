#!/usr/bin/env bash
# The local proof of scale-out: the same open-loop run at the same total rate
# against one mock upstream, as one loadgen process and as N = 1, 2 and 4
# shard processes started together (`--shard K/N --start-at`) and merged.
# Every repetition runs all four, in an order rotated per repetition.
#
# Per configuration: scheduled and completed counts of the merged run next
# to the one-process schedule (they must be equal), achieved rate against
# the target, the shards' start skews, and corrected p50/p90 next to the
# round-to-round spread of the one-process runs of the same sitting; then per
# configuration the median over repetitions and its ratio to one process.
#
#   scripts/bench-shards.sh   (REPS=3 RATE=2000 DURATION=6s ROUNDS=3)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REPS=${REPS:-3} RATE=${RATE:-2000} DURATION=${DURATION:-6s} ROUNDS=${ROUNDS:-3}
cargo build --release --locked -q -p loadgen -p mock-upstream --manifest-path "$ROOT/Cargo.toml"
lg="$ROOT/target/release/loadgen"
run=$(mktemp -d)
trap 'for p in "$run"/*.pid; do stop_pidfile "$p"; done; rm -rf "$run"' EXIT

# No programmed latency: the mock's own timer wake-ups (late by ms now and
# then here) would only widen the noise the comparison is read against.
up_url=$(start_mock "$run/mock.out" --workers 1)
# 4 shard processes share 2 cores with the mock here: they sleep to each
# send instead of spinning (spin = false), and so does the one process.
cat >"$run/shards.toml" <<TOML
name = "bench-shards"
seed = 11
rounds = $ROUNDS
spin = false

[[target]]
name = "mock"
url = "$up_url"
connections = 32

[[request]]
name = "get"
path = "/items/{seq}"
expect = 200

[[phase]]
name = "warmup"
duration = "1s"
rate = $RATE
record = false

[[phase]]
name = "steady"
duration = "$DURATION"
rate = $RATE
TOML

one() { # OUT
    "$lg" run --no-calibrate "$run/shards.toml" --quiet --no-report --out "$1" >/dev/null 2>"$1.err" || true
}
sharded() { # N OUT
    local n=$1 out=$2 start k dirs=()
    start=$(($(date +%s) + 3))
    for ((k = 0; k < n; k++)); do
        "$lg" run --no-calibrate "$run/shards.toml" --quiet --no-report --shard "$k/$n" --start-at "$start" \
            --out "$out-shard-$k" >/dev/null 2>"$out-shard-$k.err" &
        dirs+=("$out-shard-$k")
    done
    wait
    "$lg" merge "${dirs[@]}" --out "$out" --quiet --no-report >/dev/null 2>"$out.err" || true
}

configs=(one 1 2 4)
for ((r = 0; r < REPS; r++)); do
    order=("${configs[@]:r%4}" "${configs[@]:0:r%4}")
    echo "repetition $((r + 1)): ${order[*]}" >&2
    for c in "${order[@]}"; do
        if [ "$c" = one ]; then one "$run/rep$r-one"; else sharded "$c" "$run/rep$r-n$c"; fi
    done
done

python3 - "$run" "$REPS" "$RATE" <<'PY'
import json, statistics, sys
run, reps, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
load = lambda d: json.load(open(f"{run}/{d}/summary.json"))
us = lambda ns: f"{ns / 1000:.0f}"
# The one-process spread: every round of every one-process run.
band50, band90 = [], []
for r in range(reps):
    for rnd in load(f"rep{r}-one")["targets"][0]["total"]["rounds"]:
        band50.append(rnd["p50"]); band90.append(rnd["p90"])
print(f"One-process round-to-round spread ({len(band50)} rounds): "
      f"p50 {us(min(band50))}–{us(max(band50))} µs, p90 {us(min(band90))}–{us(max(band90))} µs\n")
print("| rep | run | scheduled | completed | = one process | achieved / target | start skew max | p50 µs | p90 µs | in spread |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in range(reps):
    base = load(f"rep{r}-one")["targets"][0]["total"]["counts"]["scheduled"]
    for c in ("one", "1", "2", "4"):
        s = load(f"rep{r}-{'one' if c == 'one' else 'n' + c}")
        t = s["targets"][0]["total"]
        n = t["counts"]
        skews = [abs(x["start_skew_ns"] or 0) for x in s.get("shards", [])]
        skew = f"{max(skews) / 1000:.0f} µs" if skews else "—"
        exact = "yes" if n["scheduled"] == base and n["completed"] == base else "NO"
        ach = t["achieved_rps"] / rate
        inside = "yes" if (min(band50) <= t["latency"]["p50"] <= max(band50)
                           and min(band90) <= t["latency"]["p90"] <= max(band90)) else "no"
        name = "one process" if c == "one" else f"{c} shard{'s' if c != '1' else ''}"
        print(f"| {r + 1} | {name} | {n['scheduled']} | {n['completed']} | {exact} | {ach:.4f} | {skew} "
              f"| {us(t['latency']['p50'])} | {us(t['latency']['p90'])} | {inside} |")
print("\n| run | median p50 µs | / one process | median p90 µs | / one process | start skews (all shards, all reps) |")
print("|---|---|---|---|---|---|")
med = {}
for c in ("one", "1", "2", "4"):
    ss = [load(f"rep{r}-{'one' if c == 'one' else 'n' + c}") for r in range(reps)]
    p50 = statistics.median(s["targets"][0]["total"]["latency"]["p50"] for s in ss)
    p90 = statistics.median(s["targets"][0]["total"]["latency"]["p90"] for s in ss)
    med[c] = (p50, p90)
    skews = sorted(abs(x["start_skew_ns"] or 0) / 1000 for s in ss for x in s.get("shards", []))
    sk = f"median {statistics.median(skews):.0f} µs, max {max(skews):.0f} µs, {sum(k > 1000 for k in skews)} over 1 ms" if skews else "—"
    name = "one process" if c == "one" else f"{c} shard{'s' if c != '1' else ''}"
    print(f"| {name} | {us(p50)} | {p50 / med['one'][0]:.2f}× | {us(p90)} | {p90 / med['one'][1]:.2f}× | {sk} |")
PY
