#!/usr/bin/env bash
# Hostile input against the release jwt-gateway (in front of the release mock
# upstream), on loopback: mutated and forged JWTs of both algorithms
# (scenarios/compare-gateways.toml's HS256 and RS256 consumers, and every
# token class `loadgen token` makes) and malformed HTTP/1.1 requests, each
# on its own connection. Fails on a crash, a 5xx from the auth path or for a
# malformed request, a hang, or an invalid token accepted.
#
#   scripts/fuzz-gateway.sh [COUNT] [SEED]     (COUNT default 10000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
COUNT=${1:-10000} SEED=${2:-1}
echo "fuzz-gateway: $COUNT inputs, seed $SEED (scripts/fuzz-gateway.sh $COUNT $SEED repeats this run)"
cargo build --release -q -p loadgen -p mock-upstream -p gateway --manifest-path "$ROOT/Cargo.toml"
run=$(mktemp -d)
trap 'for p in "$run"/*.pid; do stop_pidfile "$p"; done; rm -rf "$run"' EXIT
lg="$ROOT/target/release/loadgen" sc="$ROOT/scenarios/compare-gateways.toml"

up_url=$(start_mock "$run/mock.out" --workers 1)
"$lg" provision rust-gateway --scenario "$sc" --upstream "$up_url" --out "$run/gw.json" >/dev/null
port=$(free_port)
"$ROOT/target/release/jwt-gateway" --config "$run/gw.json" --listen "127.0.0.1:$port" \
    --admin-listen 127.0.0.1:0 --state "$run/state.db" --workers 1 \
    --client-header-timeout 2s >"$run/gw.out" 2>&1 &
gw=$!; echo $gw >"$run/gw.pid"
for _ in $(seq 100); do grep -q "proxy listening" "$run/gw.out" && break; sleep 0.05; done

# One token of every class for both consumers.
{
    echo "{"
    first=1
    for consumer in web-app mobile-app; do
        for class in valid expired not-yet-valid bad-signature wrong-key unknown-issuer \
                     alg-none alg-confusion malformed missing duplicate oversized; do
            # A class a consumer cannot have (alg-confusion needs a public key) is skipped.
            tok=$("$lg" token --scenario "$sc" --consumer "$consumer" --class "$class" 2>/dev/null) || continue
            [ $first = 1 ] || echo ","
            first=0
            printf '"%s/%s": "%s"' "$consumer" "$class" "$tok"
        done
    done
    echo "}"
} >"$run/tokens.json"

rc=0
python3 "$ROOT/scripts/fuzz_gateway.py" "$port" "$COUNT" "$SEED" "$run/tokens.json" \
    "$ROOT/scenarios/keys/demo-rs256/public.pem" || rc=$?
if ! kill -0 "$gw" 2>/dev/null; then
    echo "FAIL: jwt-gateway is not running any more:" >&2
    tail -20 "$run/gw.out" >&2
    exit 1
fi
exit "$rc"
