#!/usr/bin/env bash
# Our .hlog interval logs read by HdrHistogram's own reference processor
# (org.HdrHistogram.HistogramLogProcessor, Debian's libhdrhistogram-java),
# as it is: its default flags read the untagged histogram of each interval,
# which is the target's headline (corrected latency of all its requests in
# recorded phases). Checks, for one ordinary run and for a merge of two
# shards, that the processor's total distribution equals summary.json's:
#   - default flags (values in ms, 3 decimals): count, max and mean agree at
#     the printed precision;
#   - -outputValueUnitRatio 1 (ns) and dense percentile rows: count, max and
#     every percentile of summary.json, value for value.
# Loopback only; every run is bounded by its duration. Used by .ci/run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

need java default-jre-headless
jar=/usr/share/java/hdrhistogram.jar
need_file "$jar" libhdrhistogram-java

cargo build --locked -q -p loadgen
lg=${LOADGEN:-$ROOT/target/debug/loadgen}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
short=(--duration 2s --rounds 2 --quiet --no-report)

# One ordinary run (warm-up phase unrecorded, two requests, two targets).
valid_or_invalid "$lg" run scenarios/quickstart.toml --rate 400 "${short[@]}" --out "$work/one"

# Two shards of one run, merged.
start=$(($(date +%s) + 4))
for k in 0 1; do
    valid_or_invalid "$lg" run scenarios/quickstart.toml --rate 400 "${short[@]}" \
        --shard "$k/2" --start-at "$start" --out "$work/shard-$k" &
done
for job in $(jobs -p); do wait "$job"; done
valid_or_invalid "$lg" merge "$work/shard-0" "$work/shard-1" --out "$work/merged" --quiet --no-report

processor() { java -cp "$jar" org.HdrHistogram.HistogramLogProcessor "$@"; }

checked=0
for dir in "$work/one" "$work/merged"; do
    for log in "$dir"/*.hlog; do
        target=$(basename "$log" .hlog)
        processor -i "$log" >"$work/default.txt"
        processor -i "$log" -outputValueUnitRatio 1 -percentilesOutputTicksPerHalf 200 >"$work/exact.txt"
        python3 - "$dir/summary.json" "$target" "$work/default.txt" "$work/exact.txt" <<'PY'
import json, math, re, sys

summary, target, default, exact = sys.argv[1:]
lat = next(t for t in json.load(open(summary))["targets"] if t["name"] == target)["total"]["latency"]
where = f"{summary} target {target}"

def parse(path):
    rows, foot = [], {}
    for line in open(path):
        m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+(\d+)", line)
        if m:
            rows.append((float(m[1]), int(m[3])))
        for k, v in re.findall(r"(Mean|Max|Total count)\s*=\s*([\d.]+)", line):
            foot[k] = float(v)
    if not rows or "Total count" not in foot:
        sys.exit(f"{path}: the processor printed no distribution:\n" + open(path).read()[:2000])
    return rows, foot

def fail(msg):
    sys.exit(f"hlog-reference: {where}: {msg}")

# Default flags: ms with 3 decimals.
rows, foot = parse(default)
if int(foot["Total count"]) != lat["count"]:
    fail(f"default flags: count {foot['Total count']} != summary {lat['count']}")
if abs(foot["Max"] - lat["max"] / 1e6) > 0.0005 + 1e-9:
    fail(f"default flags: max {foot['Max']} ms != summary {lat['max']} ns")
if abs(foot["Mean"] - lat["mean"] / 1e6) > 0.0005 + 1e-9:
    fail(f"default flags: mean {foot['Mean']} ms != summary {lat['mean']} ns")

# In ns, rows dense enough that every count threshold has its row: the value
# at quantile q is the first row whose total count reaches ceil(q * N).
rows, foot = parse(exact)
n = int(foot["Total count"])
if n != lat["count"] or int(foot["Max"]) != lat["max"]:
    fail(f"ns: count/max {n}/{foot['Max']} != summary {lat['count']}/{lat['max']}")
for key in ("p50", "p75", "p90", "p99", "p99.9", "p99.99"):
    q = float(key[1:]) / 100
    need = max(1, math.ceil(round(q * n, 9)))
    value = next(v for v, c in rows if c >= need)
    if int(value) != lat[key]:
        fail(f"{key}: reference processor {int(value)} ns != summary {lat[key]} ns")
print(f"hlog-reference: {where}: {n} values, p50/p90/p99/p99.9/max "
      f"{lat['p50']}/{lat['p90']}/{lat['p99']}/{lat['p99.9']}/{lat['max']} ns agree")
PY
        checked=$((checked + 1))
    done
done
[ "$checked" = 4 ] || { echo "hlog-reference: checked $checked logs, expected 4" >&2; exit 1; }
echo "hlog-reference: the reference processor's default output equals summary.json ($checked logs)"
