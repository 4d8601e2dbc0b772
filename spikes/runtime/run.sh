#!/usr/bin/env bash
# The runtime spike of the lean proxy core, in one loadgen run (rounds
# rotated): the same minimal proxy loop on monoio (io_uring) and on tokio,
# Pingora's proxy, our gateway's lean path, nginx; each one thread, plain proxy.
#   spikes/runtime/run.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")"
source ../../scripts/lib.sh
need nginx nginx-light
need cmake cmake   # Pingora's zlib-ng
cargo build --release -q
(cd ../pingora && cargo build --release -q)
(cd ../.. && cargo build --release --locked -q -p loadgen -p mock-upstream -p gateway)
run=$(mktemp -d)
trap 'for p in "$run"/*.pid; do stop_pidfile "$p"; done; rm -rf "$run"' EXIT
up_url=$(start_mock "$run/mock.out" --workers 1)
up=${up_url#http://}
p_mono=$(free_port); p_tok=$(free_port); p_gw=$(free_port); p_ngx=$(free_port); p_pin=$(free_port)
target/release/monoio-proxy "127.0.0.1:$p_mono" "$up" >"$run/mono.out" 2>&1 & echo $! >"$run/mono.pid"
target/release/tokio-proxy "127.0.0.1:$p_tok" "$up" >"$run/tok.out" 2>&1 & echo $! >"$run/tok.pid"
../pingora/target/release/pingora-spike "127.0.0.1:$p_pin" "$up" >"$run/pin.out" 2>&1 & echo $! >"$run/pin.pid"
printf '_format_version: "3.0"\nservices:\n- name: up\n  url: %s\n  routes: [{ name: all, paths: ["/"] }]\n' "$up_url" >"$run/kong.yml"
"$ROOT/target/release/jwt-gateway" --config "$run/kong.yml" --listen "127.0.0.1:$p_gw" --admin-listen 127.0.0.1:0 \
    --state "$run/gw.db" --workers 1 >"$run/gw.out" 2>&1 & echo $! >"$run/gw.pid"
start_nginx_proxy "$run" "$p_ngx" "$up"
for port in "$p_mono" "$p_tok" "$p_gw" "$p_ngx" "$p_pin"; do
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
done
"$ROOT/target/release/loadgen" run scenario.toml --quiet --out "${1:-$run/out}" \
    --target "direct=$up_url" --target "monoio-spike=http://127.0.0.1:$p_mono" \
    --target "tokio-spike=http://127.0.0.1:$p_tok" --target "rust-gateway-noauth=http://127.0.0.1:$p_gw" \
    --target "nginx-noauth=http://127.0.0.1:$p_ngx" --target "pingora-spike=http://127.0.0.1:$p_pin" || true
python3 - "${1:-$run/out}/summary.json" <<'PY'
import json, statistics, sys
s = json.load(open(sys.argv[1]))
t = {x["name"]: x["total"]["rounds"] for x in s["targets"]}
print(f"added over direct, median of {len(t['direct'])} per-round differences (valid={s['valid']})")
print("| target | p50 | p90 | p50 / nginx | p90 / nginx |\n|---|---|---|---|---|")
added = lambda n, q: statistics.median(a[q] - d[q] for a, d in zip(t[n], t["direct"]))
for n in ("monoio-spike", "tokio-spike", "pingora-spike", "rust-gateway-noauth", "nginx-noauth"):
    print(f"| {n} | {added(n, 'p50') / 1e3:+.0f} us | {added(n, 'p90') / 1e3:+.0f} us | "
          f"{added(n, 'p50') / added('nginx-noauth', 'p50'):.2f}x | {added(n, 'p90') / added('nginx-noauth', 'p90'):.2f}x |")
PY
