#!/usr/bin/env bash
# Two loadgen builds side by side in one sitting, on loopback: A = a git
# revision (built in a worktree), B = this working tree. For refactors that
# must not cost speed.
#   maxtput  closed loop, keep-alive, 32 connections, 10 s, against nginx `return 200`
#            (1 worker); wrk -t1 beside them as the fixed peer; the order of
#            wrk, A and B rotates every repetition
#   open     open loop at 5k and 20k req/s against mock-upstream --workers 1
#            (2 s warm-up, 10 s recorded); A and B alternate which goes first
#
#   scripts/bench-loadgen-ab.sh REV [maxtput|open|all]   (REPS=3 by default)
#
# REV = same: A is this tree's build too, and B_ARGS (extra `loadgen run`
# flags for B only) is what differs, e.g. the cost of a flag:
#   B_ARGS="--metrics-listen 127.0.0.1:9464" scripts/bench-loadgen-ab.sh same all
set -euo pipefail
source "$(dirname "$0")/lib.sh"
REV=${1:?usage: bench-loadgen-ab.sh REV [maxtput|open|all]}
WHAT=${2:-all} REPS=${REPS:-3}
need nginx nginx-light
need wrk wrk
need curl curl
cargo build --release -q -p loadgen -p mock-upstream --manifest-path "$ROOT/Cargo.toml"
B="$ROOT/target/release/loadgen"
read -r -a b_args <<<"${B_ARGS:-}"
if [ "$REV" = same ]; then
    A=$B
else
    sha=$(git -C "$ROOT" rev-parse --short "$REV")
    wt="$ROOT/target/ab-$sha"
    [ -d "$wt/src" ] || [ -d "$wt/loadgen" ] || git -C "$ROOT" worktree add -f -q "$wt" "$sha"
    CARGO_TARGET_DIR="$ROOT/target/ab-target" cargo build --release -q -p loadgen --manifest-path "$wt/Cargo.toml"
    A="$ROOT/target/ab-target/release/loadgen"
fi
# B's flags (B_ARGS), none for A.
args_of() { [ "$1" = B ] && [ ${#b_args[@]} -gt 0 ] && printf '%s\n' "${b_args[@]}"; return 0; }
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

if [ "$REV" = same ]; then
    echo "A = B = working tree; B with: ${B_ARGS:-(nothing)}"
else
    echo "A = $sha ($(git -C "$ROOT" log -1 --format=%s "$sha" | cut -c1-60)), B = working tree ${B_ARGS:+with $B_ARGS}"
fi
if [ "$WHAT" = maxtput ] || [ "$WHAT" = all ]; then
    sc=$(scenario max '[[phase]]
name = "max"
duration = "10s"
concurrency = 32' 32)
    echo "### max throughput, closed loop, 32 connections, 10 s, against nginx (1 worker)"
    echo "| rep | order | wrk req/s | A req/s | A µs/req | B req/s | B µs/req | A / wrk | B / wrk | B / A |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    orders=("wrk A B" "A B wrk" "B wrk A")
    for rep in $(seq "$REPS"); do
        order=${orders[$(( (rep - 1) % 3 ))]}
        for who in $order; do
            case $who in
            wrk)
                $TIMED wrk -t1 -c32 -d10s "$NGINX/" >"$run/wrk.out" 2>"$run/wrk.t"
                w=$(awk '/^Requests\/sec:/ {print $2}' "$run/wrk.out") ;;
            A | B)
                bin=$A; [ "$who" = B ] && bin=$B
                mapfile -t extra < <(args_of "$who")
                $TIMED "$bin" run "$sc" --target "direct=$NGINX" --out "$run/max$who" --quiet "${extra[@]}" 2>"$run/$who.t" || true ;;
            esac
        done
        a=$(summary "$run/maxA" "round(t['achieved_rps'])"); an=$(summary "$run/maxA" "t['counts']['completed']")
        b=$(summary "$run/maxB" "round(t['achieved_rps'])"); bn=$(summary "$run/maxB" "t['counts']['completed']")
        awk -v w="$w" -v a="$a" -v an="$an" -v ac="$(cpu_of "$run/A.t")" -v b="$b" -v bn="$bn" -v bc="$(cpu_of "$run/B.t")" \
            -v rep="$rep" -v order="$order" 'BEGIN {
            printf "| %d | %s | %.0f | %.0f | %.1f | %.0f | %.1f | %.2f× | %.2f× | **%.2f×** |\n",
                rep, order, w, a, ac*1e6/an, b, bc*1e6/bn, a/w, b/w, b/a }'
    done
fi

if [ "$WHAT" = open ] || [ "$WHAT" = all ]; then
    mock=$(start_mock "$run/mock" --workers 1)
    echo "### open loop against mock-upstream --workers 1 (10 s recorded after 2 s warm-up)"
    echo "| rep | rate | build | achieved / target | send lag p50 | p90 | p99 | max | corrected p50 | p99 | loadgen CPU % |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
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
            order="A B"; [ $((rep % 2)) = 0 ] && order="B A"
            for who in $order; do
                bin=$A; [ "$who" = B ] && bin=$B
                mapfile -t extra < <(args_of "$who")
                "$bin" run "$sc" --target "direct=$mock" --out "$run/open$who" --quiet "${extra[@]}" || true
                summary "$run/open$who" "'| $rep | $rate | $who | %.4f | %.0fus | %.0fus | %.0fus | %.2fms | %.0fus | %.0fus | %.0f |' % (t['achieved_rps']/t['target_rps'], t['send_lag']['p50']/1e3, t['send_lag']['p90']/1e3, t['send_lag']['p99']/1e3, t['send_lag']['max']/1e6, t['latency']['p50']/1e3, t['latency']['p99']/1e3, s['health']['loadgen_cpu_percent'])"
            done
        done
    done
fi
