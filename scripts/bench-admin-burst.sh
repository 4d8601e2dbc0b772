#!/usr/bin/env bash
# Proxy latency while the Admin API takes a burst of writes: the release
# jwt-gateway (--workers 1, JWT on) in front of the mock upstream, CONSUMERS
# consumers loaded first, loadgen at 1,000 req/s of valid HS256 requests for
# 20 s, and from t = 7 s a burst of 1,000 POST /consumers on one keep-alive
# Admin connection. Prints, per repetition, the per-second corrected p50 /
# p99 / max of the seconds before the burst and of the seconds it ran, and
# how long the 1,000 writes took.
#
#   scripts/bench-admin-burst.sh [REPS] [CONSUMERS]    (default 3, 1000)
#   GATEWAY=path/to/jwt-gateway scripts/bench-admin-burst.sh   # another build
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REPS=${1:-3} CONSUMERS=${2:-1000}
cargo build --release -q -p loadgen -p mock-upstream -p gateway --manifest-path "$ROOT/Cargo.toml"
lg="$ROOT/target/release/loadgen" sc="$ROOT/scenarios/compare-gateways.toml"
echo "| rep | consumers | quiet p50 | quiet p99 | quiet max | burst p50 | burst p99 | burst max | 1,000 writes took |"
echo "|---|---|---|---|---|---|---|---|---|"
for rep in $(seq "$REPS"); do
    run=$(mktemp -d)
    trap 'for p in "$run"/*.pid; do stop_pidfile "$p"; done' EXIT
    up_url=$(start_mock "$run/mock.out" --workers 1)
    "$lg" provision rust-gateway --scenario "$sc" --upstream "$up_url" --out "$run/gw.json" >/dev/null
    port=$(free_port) aport=$(free_port)
    "${GATEWAY:-$ROOT/target/release/jwt-gateway}" --config "$run/gw.json" --listen "127.0.0.1:$port" \
        --admin-listen "127.0.0.1:$aport" --state "$run/state.db" --workers 1 >"$run/gw.out" 2>&1 &
    echo $! >"$run/gw.pid"
    for _ in $(seq 100); do grep -q "proxy listening" "$run/gw.out" && break; sleep 0.05; done
    python3 - "$sc" "$run/s.toml" "$port" <<'PY'
import sys
src, out, port = sys.argv[1:]
text = open(src).read()
head = text[: text.index("[[target]]")].replace("rounds = 3", "rounds = 1")
head = head.replace('key_file = "keys/', f'key_file = "{src.rsplit("/", 1)[0]}/keys/')
open(out, "w").write(head + f'''[[target]]
name = "gw"
url = "http://127.0.0.1:{port}"
connections = 16
[[request]]
name = "hs256"
path = "/hs/orders/{{seq}}"
token = "valid"
consumer = "web-app"
[[phase]]
name = "steady"
duration = "20s"
rate = 1000
''')
PY
    python3 "$ROOT/scripts/admin_burst.py" "$aport" preload "$CONSUMERS" >/dev/null
    "$lg" run --no-calibrate "$run/s.toml" --out "$run/out" --quiet --no-report >"$run/lg.out" 2>&1 &
    lgpid=$!
    sleep 7
    took=$(python3 "$ROOT/scripts/admin_burst.py" "$aport" burst 1000)
    wait "$lgpid" || true
    python3 - "$run/out/summary.json" "$took" "$rep" "$CONSUMERS" <<'PY'
import json, statistics, sys
s = json.load(open(sys.argv[1]))
took, rep, n = sys.argv[2].split(), sys.argv[3], sys.argv[4]
t0, t1, secs = float(took[0]), float(took[1]), float(took[2])
start = s["start_unix_s"]
ticks = [t for t in s["targets"][0]["timeline"] if t["recorded"] and t["completed"]]
def when(t):
    return start + t["t_s"]
quiet = [t for t in ticks if when(t) + 1 < t0]
burst = [t for t in ticks if when(t) < t1 and when(t) + 1 > t0]
m = lambda xs, k: statistics.median(x[k] for x in xs) / 1e6 if xs else float("nan")
mx = lambda xs: max(x["max"] for x in xs) / 1e6 if xs else float("nan")
print(f"| {rep} | {n} | {m(quiet,'p50'):.2f} ms | {m(quiet,'p99'):.2f} ms | {mx(quiet):.2f} ms "
      f"| {m(burst,'p50'):.2f} ms | {m(burst,'p99'):.2f} ms | {mx(burst):.2f} ms | {secs:.2f} s |")
PY
    for p in "$run"/*.pid; do stop_pidfile "$p"; done
done
