#!/usr/bin/env bash
# loadgen side by side with wrk and oha, in one sitting, on loopback:
#   maxtput  closed loop, keep-alive, 32 connections, against nginx `return 200` (1 worker):
#            loadgen vs wrk -t1 vs oha, req/s and tool CPU µs per request
#   open     open loop at 5k and 20k req/s against mock-upstream --workers 1:
#            achieved/target and send lag p50/p90/p99/max
#   floor    corrected p50/p90/p99 at 2k req/s against nginx: loadgen vs oha -q --latency-correction
#   memory   peak RSS of a 60 s run at 10k req/s next to a 10 s run
#
#   scripts/bench-loadgen.sh [maxtput|open|floor|memory|all]   (REPS=2 by default)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
WHAT=${1:-all} REPS=${REPS:-2}
need nginx nginx-light
need wrk wrk
need curl curl
command -v oha >/dev/null || { echo "oha is missing: cargo install --locked oha" >&2; exit 1; }
cargo build --release -q -p loadgen -p mock-upstream --manifest-path "$ROOT/Cargo.toml"
LG="$ROOT/target/release/loadgen"
TIMED="python3 $(dirname "$0")/timed.py"
run=$(mktemp -d)
trap 'stop_pidfile "$run/nginx.pid"; stop_pidfile "$run/mock.pid"' EXIT
nport=$(free_port)
start_nginx_ok "$run" "$nport"
NGINX="http://127.0.0.1:$nport"

scenario() { # NAME PHASES_TOML CONNECTIONS -> path
    cat >"$run/$1.toml" <<TOML
name = "$1"
[[target]]
name = "direct"
url = "builtin:upstream"
baseline = true
connections = $3
[[request]]
name = "get"
path = "/"
$2
TOML
    echo "$run/$1.toml"
}
summary() { # DIR PYTHON-EXPR over t (total of the first target)
    python3 -c "import json,sys; s=json.load(open('$1/summary.json')); t=s['targets'][0]['total']; print($2)"
}
cpu_of() { sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p' "$1"; }
rss_of() { sed -n 's/.*maxrss_kib=\([0-9]*\).*/\1/p' "$1"; }

if [ "$WHAT" = maxtput ] || [ "$WHAT" = all ]; then
    sc=$(scenario max '[[phase]]
name = "max"
duration = "10s"
concurrency = 32' 32)
    echo "### max throughput, closed loop, 32 connections, 10 s, against nginx (1 worker)"
    echo "| rep | wrk req/s | wrk µs/req | oha req/s | oha µs/req | loadgen req/s | loadgen µs/req | loadgen / wrk | loadgen / oha |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for rep in $(seq "$REPS"); do
        $TIMED wrk -t1 -c32 -d10s "$NGINX/" >"$run/wrk.out" 2>"$run/wrk.t"
        w=$(awk '/^Requests\/sec:/ {print $2}' "$run/wrk.out"); wn=$(awk '/requests in/ {print $1}' "$run/wrk.out")
        $TIMED oha -z 10s -c 32 --no-tui --output-format json "$NGINX/" >"$run/oha.json" 2>"$run/oha.t"
        o=$(python3 -c "import json; print(round(json.load(open('$run/oha.json'))['summary']['requestsPerSec']))")
        $TIMED "$LG" run "$sc" --target "direct=$NGINX" --out "$run/lgmax" --quiet 2>"$run/lg.t" || true
        l=$(summary "$run/lgmax" "round(t['achieved_rps'])"); ln=$(summary "$run/lgmax" "t['counts']['completed']")
        awk -v w="$w" -v wn="$wn" -v wc="$(cpu_of "$run/wrk.t")" -v o="$o" -v oc="$(cpu_of "$run/oha.t")" \
            -v l="$l" -v ln="$ln" -v lc="$(cpu_of "$run/lg.t")" -v rep="$rep" 'BEGIN {
            printf "| %d | %.0f | %.1f | %.0f | %.1f | %.0f | %.1f | **%.2f×** | %.2f× |\n",
                rep, w, wc*1e6/wn, o, oc*1e6/(o*10), l, lc*1e6/ln, l/w, l/o }'
    done
fi

if [ "$WHAT" = open ] || [ "$WHAT" = all ]; then
    mock=$(start_mock "$run/mock" --workers 1)
    echo "### open loop against mock-upstream --workers 1 (10 s recorded after 2 s warm-up)"
    echo "| rep | rate | achieved / target | send lag p50 | p90 | p99 | max | corrected p50 | p99 | loadgen CPU % |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for rep in $(seq "$REPS"); do
        for rate in 5000 20000; do
            sc=$(scenario "open$rate" "[[phase]]
name = \"warmup\"
duration = \"2s\"
rate = 1000
record = false
[[phase]]
name = \"steady\"
duration = \"10s\"
rate = $rate" 64)
            $TIMED "$LG" run "$sc" --target "direct=$mock" --out "$run/open$rate" --quiet 2>"$run/open.t" || true
            summary "$run/open$rate" "'| $rep | $rate | %.4f | %.0fus | %.0fus | %.0fus | %.2fms | %.0fus | %.0fus | %.0f |' % (t['achieved_rps']/t['target_rps'], t['send_lag']['p50']/1e3, t['send_lag']['p90']/1e3, t['send_lag']['p99']/1e3, t['send_lag']['max']/1e6, t['latency']['p50']/1e3, t['latency']['p99']/1e3, s['health']['loadgen_cpu_percent'])"
        done
    done
    stop_pidfile "$run/mock.pid"
fi

if [ "$WHAT" = floor ] || [ "$WHAT" = all ]; then
    sc=$(scenario floor '[[phase]]
name = "steady"
duration = "15s"
rate = 2000' 16)
    echo "### latency floor: 2000 req/s for 15 s against nginx, corrected latency"
    echo "| rep | tool | p50 | p90 | p99 | p99.9 |"
    echo "|---|---|---|---|---|---|"
    for rep in $(seq "$REPS"); do
        "$LG" run "$sc" --target "direct=$NGINX" --out "$run/floor" --quiet || true
        summary "$run/floor" "'| $rep | loadgen | %.0fus | %.0fus | %.0fus | %.0fus |' % (t['latency']['p50']/1e3, t['latency']['p90']/1e3, t['latency']['p99']/1e3, t['latency']['p99.9']/1e3)"
        oha -z 15s -c 16 -q 2000 --latency-correction --no-tui --output-format json "$NGINX/" |
            python3 -c "import json,sys; p=json.load(sys.stdin)['latencyPercentiles']; print('| $rep | oha | %.0fus | %.0fus | %.0fus | %.0fus |' % (p['p50']*1e6, p['p90']*1e6, p['p99']*1e6, p['p99.9']*1e6))"
    done
fi

if [ "$WHAT" = memory ] || [ "$WHAT" = all ]; then
    echo "### memory: peak RSS at 10000 req/s against nginx"
    echo "| duration | requests | peak RSS MiB |"
    echo "|---|---|---|"
    for d in 10 60; do
        sc=$(scenario "mem$d" "[[phase]]
name = \"steady\"
duration = \"${d}s\"
rate = 10000" 32)
        $TIMED "$LG" run "$sc" --target "direct=$NGINX" --out "$run/mem$d" --quiet 2>"$run/mem.t" || true
        summary "$run/mem$d" "'| ${d} s | %d | %.1f |' % (t['counts']['completed'], $(rss_of "$run/mem.t")/1024)"
    done
fi
