#!/usr/bin/env bash
# Our Rust gateway next to HAProxy 2.6 `jwt_verify` (HS256 + exp check), both
# on one thread, in front of the same nginx `return 200 "ok"` upstream (one
# worker), with the same HS256 token.
#   added    loadgen open loop at 2000 and 5000 req/s, three targets (direct,
#            haproxy-hs256, rust-gateway) in 2 interleaved rounds of 10 s:
#            added corrected latency per round at p50/p90/p99/p99.9
#   maxtput  wrk -t1 -c32 -d10s against each gateway with the token and as
#            a plain proxy (no auth), the order rotated every repetition
#            (REPS=3): HS256 on ours against HAProxy's no-auth is the
#            issue-15 target
#
#   scripts/bench-gateway.sh [added|maxtput|all]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
WHAT=${1:-all}
need nginx nginx-light
need haproxy haproxy
need wrk wrk
need curl curl
cargo build --release -q -p loadgen -p gateway --manifest-path "$ROOT/Cargo.toml"
run=$(mktemp -d)
trap 'for p in "$run"/*.pid; do stop_pidfile "$p"; done' EXIT
SECRET=peers-bench-hs256-secret-0123456789abcdef
TOKEN=$(python3 - "$SECRET" <<'PY'
import base64, hmac, hashlib, json, sys, time
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
p = b(json.dumps({"iss": "bench-key", "sub": "bench", "exp": int(time.time()) + 10 * 365 * 86400}, separators=(",", ":")).encode())
print(f"{h}.{p}." + b(hmac.new(sys.argv[1].encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()))
PY
)
uport=$(free_port); hport=$(free_port); gport=$(free_port); hnport=$(free_port); gnport=$(free_port)
start_nginx_ok "$run" "$uport"
cat >"$run/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 4000
    pidfile $run/haproxy.pid
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive
backend be_up
    http-reuse always
    server up 127.0.0.1:$uport maxconn 1000
frontend fe_hs256
    bind 127.0.0.1:$hport
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.jwt_alg) var(txn.bearer),jwt_header_query('\$.alg')
    http-request deny deny_status 401 unless { var(txn.jwt_alg) -m str HS256 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.jwt_alg,"$SECRET") -m int 1 }
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
    default_backend be_up
frontend fe_plain
    bind 127.0.0.1:$hnport
    default_backend be_up
CFG
haproxy -D -f "$run/haproxy.cfg"
cat >"$run/kong.yml" <<YML
_format_version: "3.0"
services:
- name: up
  url: http://127.0.0.1:$uport
  routes:
  - name: all
    paths: ["/"]
    plugins:
    - name: jwt
      config: { claims_to_verify: [exp] }
consumers:
- username: bench
  jwt_secrets:
  - { key: bench-key, algorithm: HS256, secret: $SECRET }
YML
"$ROOT/target/release/jwt-gateway" --config "$run/kong.yml" --listen "127.0.0.1:$gport" --admin-listen 127.0.0.1:0 --state "$run/state.db" --workers 1 >"$run/gw.out" 2>&1 &
echo $! >"$run/gw.pid"
cat >"$run/plain.yml" <<YML
_format_version: "3.0"
services:
- name: up
  url: http://127.0.0.1:$uport
  routes:
  - name: all
    paths: ["/"]
YML
"$ROOT/target/release/jwt-gateway" --config "$run/plain.yml" --listen "127.0.0.1:$gnport" --admin-listen 127.0.0.1:0 --state "$run/plain-state.db" --workers 1 >"$run/gwn.out" 2>&1 &
echo $! >"$run/gwn.pid"
for out in gw gwn; do
    for _ in $(seq 100); do grep -q "proxy listening" "$run/$out.out" 2>/dev/null && break; sleep 0.05; done
done
for url in "http://127.0.0.1:$hnport/" "http://127.0.0.1:$gnport/"; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ] || { echo "plain proxy $url does not answer 200" >&2; exit 1; }
done
for url in "http://127.0.0.1:$hport/" "http://127.0.0.1:$gport/"; do
    ok=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $TOKEN" "$url")
    no=$(curl -s -o /dev/null -w '%{http_code}' "$url")
    bad=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer ${TOKEN}x" "$url")
    echo "check $url: valid=$ok none=$no tampered=$bad" >&2
    [ "$ok$no$bad" = 200401401 ] || { echo "token check failed" >&2; exit 1; }
done

if [ "$WHAT" = added ] || [ "$WHAT" = all ]; then
    for rate in 2000 5000; do
        cat >"$run/added.toml" <<TOML
name = "gateway-added-$rate"
seed = 5
rounds = 2
[[target]]
name = "direct"
url = "http://127.0.0.1:$uport"
baseline = true
connections = 16
[[target]]
name = "haproxy-hs256"
url = "http://127.0.0.1:$hport"
connections = 16
[[target]]
name = "rust-gateway"
url = "http://127.0.0.1:$gport"
connections = 16
[[request]]
name = "get"
path = "/"
headers = { "authorization" = "Bearer $TOKEN" }
expect = 200
[[phase]]
name = "warmup"
duration = "1s"
rate = 500
record = false
[[phase]]
name = "steady"
duration = "10s"
rate = $rate
TOML
        "$ROOT/target/release/loadgen" run "$run/added.toml" --out "$run/added-$rate" --quiet || true
        python3 - "$run/added-$rate/summary.json" "$rate" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); rate = sys.argv[2]
t = {x["name"]: x["total"] for x in s["targets"]}
keys = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p99.9")]
print(f"### {rate} req/s, corrected latency added over direct, per round (valid={s['valid']})")
print("| target | round | " + " | ".join(k for k, _ in keys) + " | direct p50 | ok / scheduled |")
print("|---|---|" + "---|" * len(keys) + "---|---|")
for name in ("haproxy-hs256", "rust-gateway"):
    for r, (g, d) in enumerate(zip(t[name]["rounds"], t["direct"]["rounds"])):
        cells = " | ".join(f"{(g[k] - d[k]) / 1e3:+.0f} us" for _, k in keys)
        c = t[name]["counts"]
        print(f"| {name} | {r + 1} | {cells} | {d['p50'] / 1e3:.0f} us | {c['ok']} / {c['scheduled']} |")
print(f"hiccups: p99 {s['health']['hiccup']['p99'] / 1e3:.0f} us, max {s['health']['hiccup']['max'] / 1e6:.1f} ms; invalid: {s['invalid_reasons']}")
PY
    done
fi

if [ "$WHAT" = maxtput ] || [ "$WHAT" = all ]; then
    echo "### max throughput, wrk -t1 -c32 -d10s, one gateway thread each (req/s; order rotated per repetition)"
    names=(haproxy-noauth rust-noauth haproxy-hs256 rust-hs256)
    ports=("$hnport" "$gnport" "$hport" "$gport")
    echo "| rep | haproxy-noauth | rust-noauth | haproxy-hs256 | rust-hs256 | rust-hs256 / haproxy-noauth | rust-noauth / haproxy-noauth |"
    echo "|---|---|---|---|---|---|---|"
    for rep in $(seq "${REPS:-3}"); do
        declare -A got=()
        for k in 0 1 2 3; do
            i=$(( (k + rep - 1) % 4 ))
            hdr=(); [[ ${names[$i]} == *hs256 ]] && hdr=(-H "authorization: Bearer $TOKEN")
            got[${names[$i]}]=$(wrk -t1 -c32 -d10s "${hdr[@]}" "http://127.0.0.1:${ports[$i]}/" | awk '/^Requests\/sec:/ {print $2}')
        done
        awk -v r="$rep" -v a="${got[haproxy-noauth]}" -v b="${got[rust-noauth]}" -v c="${got[haproxy-hs256]}" -v d="${got[rust-hs256]}" \
            'BEGIN { printf "| %d | %.0f | %.0f | %.0f | %.0f | **%.2f×** | %.2f× |\n", r, a, b, c, d, d / a, b / a }'
        unset got
    done
fi
