#!/usr/bin/env bash
# Our Rust gateway next to HAProxy 2.6 `jwt_verify` (HS256 + exp check), both
# on one thread, in front of the same nginx `return 200 "ok"` upstream (one
# worker), with the same HS256 token.
#   added    loadgen open loop at 2000 and 5000 req/s, three targets (direct,
#            haproxy-hs256, rust-gateway) in 2 interleaved rounds of 10 s:
#            added corrected latency per round at p50/p90/p99/p99.9
#   maxtput  wrk -t1 -c32 -d10s against each gateway with the token and as
#            a plain proxy (no auth), ours on both HTTP/1 cores (the lean
#            path and --core hyper), nginx as a plain proxy beside them, the
#            order rotated every repetition (REPS=3): HS256 on ours against
#            HAProxy's and nginx's no-auth throughput
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
ghport=$(free_port); ghnport=$(free_port); nnport=$(free_port)
start_nginx_ok "$run" "$uport"
# nginx as a plain proxy, its own master and one worker (the upstream's is apart).
start_nginx_proxy "$run" "$nnport" "127.0.0.1:$uport"
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
gateway() { # NAME CONFIG PORT CORE
    "$ROOT/target/release/jwt-gateway" --config "$2" --listen "127.0.0.1:$3" --admin-listen 127.0.0.1:0 \
        --state "$run/$1-state.db" --workers 1 --core "$4" >"$run/$1.out" 2>&1 &
    echo $! >"$run/$1.pid"
}
gateway gw "$run/kong.yml" "$gport" lean
gateway gwh "$run/kong.yml" "$ghport" hyper
cat >"$run/plain.yml" <<YML
_format_version: "3.0"
services:
- name: up
  url: http://127.0.0.1:$uport
  routes:
  - name: all
    paths: ["/"]
YML
gateway gwn "$run/plain.yml" "$gnport" lean
gateway gwhn "$run/plain.yml" "$ghnport" hyper
for out in gw gwn gwh gwhn; do
    for _ in $(seq 100); do grep -q "proxy listening" "$run/$out.out" 2>/dev/null && break; sleep 0.05; done
done
for url in "http://127.0.0.1:$hnport/" "http://127.0.0.1:$gnport/" "http://127.0.0.1:$ghnport/" "http://127.0.0.1:$nnport/"; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ] || { echo "plain proxy $url does not answer 200" >&2; exit 1; }
done
for url in "http://127.0.0.1:$hport/" "http://127.0.0.1:$gport/" "http://127.0.0.1:$ghport/"; do
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
    names=(haproxy-noauth nginx-noauth rust-noauth rust-noauth-hyper haproxy-hs256 rust-hs256 rust-hs256-hyper)
    ports=("$hnport" "$nnport" "$gnport" "$ghnport" "$hport" "$gport" "$ghport")
    n=${#names[@]}
    : >"$run/maxtput.tsv"
    for rep in $(seq "${REPS:-3}"); do
        for k in $(seq 0 $((n - 1))); do
            i=$(( (k + rep - 1) % n ))
            hdr=(); [[ ${names[$i]} == *hs256* ]] && hdr=(-H "authorization: Bearer $TOKEN")
            rps=$(wrk -t1 -c32 -d10s "${hdr[@]}" "http://127.0.0.1:${ports[$i]}/" | awk '/^Requests\/sec:/ {print $2}')
            printf '%s\t%s\t%s\n' "$rep" "${names[$i]}" "$rps" >>"$run/maxtput.tsv"
        done
    done
    python3 - "$run/maxtput.tsv" "${names[@]}" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
names = sys.argv[2:]
got = {}
for rep, name, rps in rows:
    got.setdefault(int(rep), {})[name] = float(rps)
ratios = [("rust-hs256", "haproxy-noauth"), ("rust-hs256", "nginx-noauth"), ("rust-noauth", "nginx-noauth"),
          ("rust-noauth", "haproxy-noauth"), ("rust-hs256-hyper", "haproxy-noauth"), ("rust-noauth", "rust-noauth-hyper")]
print("| rep | " + " | ".join(names) + " | " + " | ".join(f"{a} / {b}" for a, b in ratios) + " |")
print("|---|" + "---|" * (len(names) + len(ratios)))
for rep in sorted(got):
    g = got[rep]
    print(f"| {rep} | " + " | ".join(f"{g[n]:,.0f}" for n in names) + " | " + " | ".join(f"{g[a] / g[b]:.2f}x" for a, b in ratios) + " |")
print("| median | " + " | ".join(f"{statistics.median(got[r][n] for r in got):,.0f}" for n in names) + " | "
      + " | ".join(f"**{statistics.median(got[r][a] / got[r][b] for r in got):.2f}x**" for a, b in ratios) + " |")
PY
fi
