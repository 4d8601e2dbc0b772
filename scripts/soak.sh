#!/usr/bin/env bash
# A soak: the release jwt-gateway (JWT on, --workers 1) in front of the
# release mock upstream, driven by loadgen at a fixed open-loop rate with
# valid HS256 and RS256 tokens and a few invalid ones, for DURATION seconds.
# Samples the resident memory (RSS) and open descriptors of the gateway and
# the mock every 10 s, prints the series, and fails when either grows by more
# than 5 % (RSS) or at all beyond the connections' churn (fds: more than 16)
# between the first sample after the warm-up and the end. RSS that grows with
# the process's own descriptors is connections, not a leak: each descriptor
# opened since the first sample allows 64 KiB more (after a stall the gateway
# may open more upstream connections, and the mock grows with them).
#
#   scripts/soak.sh [DURATION_S] [RATE]     (default 300 s at 2000 req/s)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=${1:-300} RATE=${2:-2000}
WARMUP=$(( DURATION < 60 ? 20 : 30 ))
cargo build --release -q -p loadgen -p mock-upstream -p gateway --manifest-path "$ROOT/Cargo.toml"
run=$(mktemp -d)
trap 'for p in "$run"/*.pid; do stop_pidfile "$p"; done; rm -rf "$run"' EXIT
lg="$ROOT/target/release/loadgen" sc="$ROOT/scenarios/compare-gateways.toml"

up_url=$(start_mock "$run/mock.out" --workers 1)
mock=$(cat "$run/mock.out.pid")
"$lg" provision rust-gateway --scenario "$sc" --upstream "$up_url" --out "$run/gw.json" >/dev/null
port=$(free_port)
"$ROOT/target/release/jwt-gateway" --config "$run/gw.json" --listen "127.0.0.1:$port" \
    --admin-listen 127.0.0.1:0 --state "$run/state.db" --workers 1 >"$run/gw.out" 2>&1 &
gw=$!; echo $gw >"$run/gw.pid"
for _ in $(seq 100); do grep -q "proxy listening" "$run/gw.out" && break; sleep 0.05; done

# The comparison scenario, one target (our gateway), one long phase.
python3 - "$sc" "$run/soak.toml" "$port" "$DURATION" "$RATE" <<'PY'
import re, sys
src, out, port, duration, rate = sys.argv[1:]
text = open(src).read()
head = text[: text.index("[[target]]")].replace("rounds = 3", "rounds = 1")
requests = text[text.index("[[request]]") : text.index("[[phase]]")]
open(out, "w").write(
    head.replace('key_file = "keys/', f'key_file = "{src.rsplit("/", 1)[0]}/keys/')
    + f'[[target]]\nname = "rust-gateway"\nurl = "http://127.0.0.1:{port}"\nconnections = 32\n\n'
    + requests
    + f'[[phase]]\nname = "soak"\nduration = "{duration}s"\nrate = {rate}\n'
)
PY
"$lg" run --no-calibrate "$run/soak.toml" --out "$run/out" --quiet --no-report >"$run/lg.out" 2>&1 &
echo $! >"$run/lg.pid"; lgpid=$!

sample() { # PID -> "rss_kib fds"
    echo "$(awk '/^VmRSS/ {print $2}' "/proc/$1/status") $(ls "/proc/$1/fd" | wc -l)"
}
echo "| t (s) | gateway RSS (KiB) | gateway fds | mock RSS (KiB) | mock fds |"
echo "|---|---|---|---|---|"
series=()
for (( t = 0; t <= DURATION; t += 10 )); do
    read -r grss gfd <<<"$(sample "$gw")"
    read -r mrss mfd <<<"$(sample "$mock")"
    echo "| $t | $grss | $gfd | $mrss | $mfd |"
    series+=("$t $grss $gfd $mrss $mfd")
    [ $t -lt "$DURATION" ] && sleep 10
done
rc=0; wait "$lgpid" || rc=$?
# Exit 4 would be unexpected statuses: the invalid-token classes expect theirs.
case $rc in
    0) ;;
    3) echo "note: loadgen exit 3 (the generator was late: this shared machine stalled); the memory series stands" ;;
    *) echo "FAIL: loadgen exited $rc"; cat "$run/lg.out"
       python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(*s["target_faults"], *s["invalid_reasons"], sep="\n")' "$run/out/summary.json" || true
       exit 1 ;;
esac
python3 - "$WARMUP" "${series[@]}" <<'PY'
import sys
warmup = int(sys.argv[1])
rows = [list(map(int, r.split())) for r in sys.argv[2:]]
after = [r for r in rows if r[0] >= warmup]
first, last = after[0], after[-1]
fail = []
PER_FD_KIB = 64
for name, i in [("gateway RSS", 1), ("mock RSS", 3)]:
    peak_row = max(after, key=lambda r: r[i])
    peak = peak_row[i]
    growth = peak / first[i] - 1
    # The descriptors the process holds at its peak, beyond the first sample's.
    more_fds = max(0, peak_row[i + 1] - first[i + 1])
    allowed = 0.05 * first[i] + PER_FD_KIB * more_fds
    print(f"{name}: {first[i]} KiB at {first[0]} s, peak {peak} KiB, end {last[i]} KiB ({growth:+.1%}; "
          f"allowed +{allowed:.0f} KiB: 5 % and {PER_FD_KIB} KiB for each of {more_fds} more descriptors)")
    if peak - first[i] > allowed:
        fail.append(f"{name} grew {growth:+.1%} after the warm-up, beyond its connections")
for name, i in [("gateway fds", 2), ("mock fds", 4)]:
    peak = max(r[i] for r in after)
    print(f"{name}: {first[i]} at {first[0]} s, peak {peak}, end {last[i]}")
    if peak - first[i] > 16:
        fail.append(f"{name} grew by {peak - first[i]}")
for f in fail:
    print("FAIL:", f)
sys.exit(1 if fail else 0)
PY
