#!/usr/bin/env bash
# Two builds of our gateway side by side in one loadgen run, on loopback: A =
# a git revision (built in a worktree), B = this working tree, both
# `jwt-gateway --workers 1` with the same provisioned config
# (scenarios/compare-gateways.toml's consumers: HS256 on /hs/, RS256 on /rs/,
# a few invalid tokens) in front of one mock upstream, against the direct
# baseline. loadgen's interleaved rounds rotate the order of direct, A and B
# every round; the added p50/p90 ratio B/A is taken per round and its median
# printed.
#
#   scripts/bench-gateway-ab.sh REV   (ROUNDS=5, RATE=1000, DURATION=6s)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REV=${1:?usage: bench-gateway-ab.sh REV}
ROUNDS=${ROUNDS:-5} RATE=${RATE:-1000} DURATION=${DURATION:-6s}
need curl curl
cargo build --release -q -p loadgen -p mock-upstream -p gateway --manifest-path "$ROOT/Cargo.toml"
sha=$(git -C "$ROOT" rev-parse --short "$REV")
wt="$ROOT/target/ab-$sha"
[ -d "$wt/gateway" ] || git -C "$ROOT" worktree add -f -q "$wt" "$sha"
CARGO_TARGET_DIR="$ROOT/target/ab-target" cargo build --release -q -p gateway --manifest-path "$wt/Cargo.toml"
A="$ROOT/target/ab-target/release/jwt-gateway" B="$ROOT/target/release/jwt-gateway"
lg="$ROOT/target/release/loadgen"
run=$(mktemp -d)
trap 'for p in "$run"/*.pid; do stop_pidfile "$p"; done' EXIT

up_url=$(start_mock "$run/mock.out" --workers 1)
"$lg" provision rust-gateway --scenario "$ROOT/scenarios/compare-gateways.toml" --upstream "$up_url" --out "$run/gw.json" >/dev/null
start_gw() { # NAME BINARY PORT
    "$2" --config "$run/gw.json" --listen "127.0.0.1:$3" --admin-listen 127.0.0.1:0 \
        --state "$run/$1.state.db" --workers 1 >"$run/$1.out" 2>&1 &
    echo $! >"$run/$1.pid"
    for _ in $(seq 100); do grep -q "proxy listening" "$run/$1.out" && return 0; sleep 0.05; done
    echo "jwt-gateway $1 did not start: $(cat "$run/$1.out")" >&2
    return 1
}
pa=$(free_port); start_gw a "$A" "$pa"
pb=$(free_port); start_gw b "$B" "$pb"

# The comparison scenario with three targets: direct, gw-a, gw-b.
python3 - "$ROOT/scenarios/compare-gateways.toml" "$run/ab.toml" "$ROUNDS" "$RATE" "$DURATION" <<'PY'
import re, sys, os
src, out, rounds, rate, duration = sys.argv[1:]
text = open(src).read()
keys = os.path.join(os.path.dirname(src), "keys")
text = text.replace('key_file = "keys/', f'key_file = "{keys}/')
text = re.sub(r'^rounds = \d+', f'rounds = {rounds}', text, flags=re.M)
head, rest = text.split("[[target]]", 1)
requests = rest[rest.index("[[request]]"):]
requests = re.sub(r'(name = "steady"\nduration = )"[^"]*"\nrate = \d+', rf'\1"{duration}"\nrate = {rate}', requests)
targets = '''[[target]]
name = "direct"
url = "http://127.0.0.1:1"
baseline = true
auth = false

[[target]]
name = "gw-a"
url = "http://127.0.0.1:1"

[[target]]
name = "gw-b"
url = "http://127.0.0.1:1"

'''
open(out, "w").write(head + targets + requests)
PY
echo "A = $sha ($(git -C "$ROOT" log -1 --format=%s "$sha" | cut -c1-60)), B = working tree; $ROUNDS rounds of $DURATION at $RATE req/s"
"$lg" run "$run/ab.toml" --quiet --out "$run/out" \
    --target "direct=$up_url" --target "gw-a=http://127.0.0.1:$pa" --target "gw-b=http://127.0.0.1:$pb" || true
python3 - "$run/out/summary.json" <<'PY'
import json, statistics, sys
s = json.load(open(sys.argv[1]))
t = {x["name"]: x for x in s["targets"]}
rounds = lambda name: t[name]["total"]["rounds"]
print("| round | A added p50 | B added p50 | B/A p50 | A added p90 | B added p90 | B/A p90 |")
print("|---|---|---|---|---|---|---|")
r50, r90 = [], []
for i, (d, a, b) in enumerate(zip(rounds("direct"), rounds("gw-a"), rounds("gw-b")), 1):
    a50, b50, a90, b90 = a["p50"] - d["p50"], b["p50"] - d["p50"], a["p90"] - d["p90"], b["p90"] - d["p90"]
    r50.append(b50 / a50); r90.append(b90 / a90)
    print(f"| {i} | {a50/1e3:.0f} us | {b50/1e3:.0f} us | {r50[-1]:.2f}x | {a90/1e3:.0f} us | {b90/1e3:.0f} us | {r90[-1]:.2f}x |")
print(f"\nmedian B/A: p50 {statistics.median(r50):.2f}x, p90 {statistics.median(r90):.2f}x (valid={s['valid']}); "
      f"unexpected statuses A {t['gw-a']['total']['counts']['unexpected']}, B {t['gw-b']['total']['counts']['unexpected']}")
PY
