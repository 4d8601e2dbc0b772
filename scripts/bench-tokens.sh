#!/usr/bin/env bash
# Token sources side by side: the same fixed-rate run through the builtin
# gateway with RS256 tokens from the pool and signed per request, REPS times
# alternating. Prints send lag (the generator's own lateness) and signing
# figures per run. Usage: scripts/bench-tokens.sh [RATE] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-1000}
reps=${2:-2}
cargo build --release --locked -q -p loadgen
lg=target/release/loadgen
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$lg" keys gen --alg RS256 --kid bench-1 --out "$work/keys" >/dev/null
for source in pool per-request; do
    cat >"$work/$source.toml" <<TOML
name = "tokens-$source"
seed = 9
rounds = 1
[upstream]
latency = "fixed:1ms"
[gateway]
config = "gw.json"
[auth]
profile = "rust-gateway"
source = "$source"
[[auth.consumer]]
name = "mobile-app"
alg = "RS256"
key_file = "keys/private.pem"
[[target]]
name = "gw"
url = "builtin:gateway"
connections = 16
[[request]]
name = "get"
path = "/orders/{seq}"
token = "valid"
[[phase]]
name = "warmup"
duration = "1s"
rate = 200
record = false
[[phase]]
name = "steady"
duration = "10s"
rate = $rate
TOML
done
"$lg" provision rust-gateway --scenario "$work/pool.toml" --out "$work/gw.json" >/dev/null
echo "| rep | source | rate | send lag p50 | p90 | p99 | p99.9 | latency p50 | p99 | tokens signed | signing p50 | signer behind | valid |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for rep in $(seq "$reps"); do
    for source in pool per-request; do
        "$lg" run --no-calibrate "$work/$source.toml" --quiet --no-report --out "$work/out-$source-$rep" || true
        python3 - "$work/out-$source-$rep/summary.json" "$rep" "$source" "$rate" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); t = s["targets"][0]["total"]; a = s["auth"]
us = lambda ns: f"{ns / 1e3:.0f} us"
l = t["send_lag"]; c = t["latency"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {us(l['p50'])} | {us(l['p90'])} | {us(l['p99'])} | {us(l['p99.9'])} | {us(c['p50'])} | {us(c['p99'])} | {a['tokens_signed']} | {us(a['signing']['p50'])} | {a['signer_behind']} | {s['valid']} |")
PY
    done
done
