#!/usr/bin/env bash
# Max throughput of mock-upstream vs nginx 1.22 `return 200 "ok"`, both limited
# to one worker, driven by the same wrk command in one sitting, alternating
# targets each repetition. Prints a Markdown table with the ratio per repetition.
#
#   scripts/bench-mock-upstream.sh            # REPS=3 DUR=10s CONNS=32 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REPS=${REPS:-3} DUR=${DUR:-10s} CONNS=${CONNS:-32}
need nginx nginx-light
need wrk wrk
need curl curl
cargo build --release -q -p mock-upstream --manifest-path "$ROOT/Cargo.toml"

run=$(mktemp -d)
trap 'stop_pidfile "$run/nginx.pid"; stop_pidfile "$run/mock.pid"' EXIT
nport=$(free_port)
start_nginx_ok "$run" "$nport"
mock_url=$(start_mock "$run/mock" --workers 1)
nginx_url="http://127.0.0.1:$nport"
nginx_pid=$(cat "$run/nginx.pid")
# The worker is nginx's only child.
nginx_worker=$(pgrep -P "$nginx_pid" | head -1)
mock_pid=$(cat "$run/mock.pid")
hz=$(getconf CLK_TCK)

measure() { # URL PID -> "rps cpu_us_per_req"
    local before after out rps
    before=$(cpu_ticks "$2")
    out=$(wrk -t1 -c"$CONNS" -d"$DUR" --latency "$1/")
    after=$(cpu_ticks "$2")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    total=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v r="$rps" -v t="$total" -v d=$((after - before)) -v hz="$hz" \
        'BEGIN { printf "%.0f %.1f", r, (d / hz) * 1e6 / t }'
}

echo "| rep | nginx req/s | nginx CPU µs/req | mock-upstream req/s | mock CPU µs/req | mock / nginx |"
echo "|---|---|---|---|---|---|"
for rep in $(seq "$REPS"); do
    # Alternate which goes first so drift hits both.
    if [ $((rep % 2)) -eq 1 ]; then
        read -r n ncpu <<<"$(measure "$nginx_url" "$nginx_worker")"
        read -r m mcpu <<<"$(measure "$mock_url" "$mock_pid")"
    else
        read -r m mcpu <<<"$(measure "$mock_url" "$mock_pid")"
        read -r n ncpu <<<"$(measure "$nginx_url" "$nginx_worker")"
    fi
    ratio=$(awk -v m="$m" -v n="$n" 'BEGIN { printf "%.2f", m / n }')
    echo "| $rep | $n | $ncpu | $m | $mcpu | **$ratio×** |"
done
