#!/usr/bin/env bash
# Base and candidate in one run: starts the mock upstream and two builds of
# jwt-gateway on free loopback ports, then runs scenarios/ab.toml with
# direct, base and cand pointed at them, their rounds interleaved. Judge
# the result with:
#   loadgen compare OUT --within base,cand --max-regression added.p50=10
#
#   scripts/ab-gateways.sh BASE_GATEWAY_BIN CAND_GATEWAY_BIN OUT [loadgen run flags...]
#
# LOADGEN (default target/release/loadgen) and MOCK_BIN (default
# target/release/mock-upstream) name the other binaries; the upstream
# answers in 1 ms (MOCK_LATENCY to change it); SCENARIO replaces
# scenarios/ab.toml (with the same target names). Exits as `loadgen run` does.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [ $# -lt 3 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
base_bin=$1 cand_bin=$2 out=$3; shift 3
lg=${LOADGEN:-$ROOT/target/release/loadgen}
for b in "$base_bin" "$cand_bin" "$lg"; do
    [ -x "$b" ] || { echo "ab-gateways: $b is not an executable" >&2; exit 2; }
done
run=$(mktemp -d)
cleanup() {
    for p in "$run"/*.pid; do stop_pidfile "$p"; done
    rm -rf "$run"
}
trap cleanup EXIT
upstream=$(start_mock "$run/mock.out" --latency "${MOCK_LATENCY:-fixed:1ms}")
sed "s#UPSTREAM_URL#$upstream#" "$ROOT/scenarios/ab-gateway.yml" >"$run/gateway.yml"
base=$(start_gateway "$run/base.out" "$base_bin" "$run/gateway.yml")
cand=$(start_gateway "$run/cand.out" "$cand_bin" "$run/gateway.yml")
rc=0
"$lg" run "${SCENARIO:-$ROOT/scenarios/ab.toml}" --out "$out" \
    --target "direct=$upstream" --target "base=$base" --target "cand=$cand" "$@" || rc=$?
exit "$rc"
