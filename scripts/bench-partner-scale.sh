#!/usr/bin/env bash
# Does our gateway get slower as its credential table grows? Three release
# jwt-gateways (--workers 1) in front of one mock upstream, holding 100,
# 10,000 and 100,000 HS256 consumers (the same first 100 in each), and the
# mock measured directly as the baseline, in one loadgen run: ROUNDS rounds,
# targets rotated each round, 2,000 req/s of valid tokens from the first
# 100 consumers (so every gateway knows every token; only the table size
# differs). Prints each gateway's added latency with its interval, and
# `loadgen compare --within` of the 100,000 gateway against the 100 one.
#
#   scripts/bench-partner-scale.sh [ROUNDS]     (default 9)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS=${1:-9}
cargo build --release -q -p loadgen -p mock-upstream -p gateway --manifest-path "$ROOT/Cargo.toml"
lg="$ROOT/target/release/loadgen" gw="$ROOT/target/release/jwt-gateway"
run=$(mktemp -d)
trap 'for p in "$run"/*.pid; do stop_pidfile "$p"; done; rm -rf "$run"' EXIT
up_url=$(start_mock "$run/mock.out" --workers 1 --latency fixed:1ms)
auth() { # auth COUNT: an [auth] whose consumers are partner-1..COUNT
    printf '[auth]\nprofile = "rust-gateway"\npopularity = "hot:0.1%%:100%%"\n[[auth.consumers]]\ncount = %s\nname = "partner-{n}"\nalg = "HS256"\nsecret = "partner-scale-bench-{n}"\n' "$1"
}
urls=()
for n in 100 10000 100000; do
    { echo 'name = "p"'; auth "$n"; printf '[[target]]\nname = "t"\nurl = "http://127.0.0.1:1"\n[[request]]\nname = "r"\npath = "/"\ntoken = "valid"\n[[phase]]\nname = "p"\nduration = "1s"\nrate = 1\n'; } >"$run/s$n.toml"
    "$lg" provision rust-gateway --scenario "$run/s$n.toml" --upstream "$up_url" --out "$run/gw$n.json" >/dev/null
    t0=$(date +%s.%N)
    urls+=("$(start_gateway "$run/gw$n.out" "$gw" "$run/gw$n.json" --workers 1)")
    echo "gateway with $n consumers up in $(echo "$(date +%s.%N) - $t0" | bc) s, RSS $(($(awk '/VmRSS/ {print $2}' "/proc/$(cat "$run/gw$n.out.pid")/status") / 1024)) MiB" >&2
done
{
    printf 'name = "partner-scale-bench"\nseed = 25\nrounds = %s\n' "$ROUNDS"
    auth 100000
    printf '[[target]]\nname = "upstream"\nurl = "%s"\nconnections = 16\nbaseline = true\n' "$up_url"
    for i in 0 1 2; do
        n=$(echo "100 10000 100000" | cut -d' ' -f$((i + 1)))
        printf '[[target]]\nname = "gw-%s"\nurl = "%s"\nconnections = 16\n' "$n" "${urls[$i]}"
    done
    printf '[[request]]\nname = "valid"\npath = "/orders/{seq}"\ntoken = "valid"\n'
    printf '[[phase]]\nname = "warmup"\nduration = "1s"\nrate = 500\nrecord = false\n'
    printf '[[phase]]\nname = "steady"\nduration = "5s"\nrate = 2000\n'
} >"$run/bench.toml"
valid_or_invalid "$lg" run "$run/bench.toml" --out "$run/out" --no-report >"$run/lg.out" 2>&1 || { cat "$run/lg.out"; exit 1; }
grep -E "^Target|added over upstream|95% CI" "$run/lg.out"
"$lg" compare "$run/out" --within gw-100,gw-100000 || true
