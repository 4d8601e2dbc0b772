#!/usr/bin/env python3
"""Our gateway at partner scale: for each size, a Kong declarative file with
that many HS256 consumers (one credential each); the release jwt-gateway
(--workers 1, an SQLite state) started on it; how long until the Admin API
answers, its RSS, and the latency of Admin writes (PAIRS POST + DELETE pairs
of a credential on one keep-alive connection, each write timed alone).

  scripts/admin_scale.py [--sizes 100,10000,100000] [--pairs 100] [--gateway BIN] [--reps 1]
  scripts/admin_scale.py --crash [--sizes 100000]

Prints one Markdown row per size and repetition. With --crash, per size:
1,000 credential writes one after another, SIGKILL after the 300th
acknowledgement, a restart on the same state, and how many acknowledged
writes the restarted gateway has (all of them, or the row says how many
were lost). Loopback only; the
gateway is killed when its size is done.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(path, n):
    with open(path, "w") as f:
        f.write('_format_version: "3.0"\nservices:\n- name: s\n  url: http://127.0.0.1:9\n')
        f.write('  routes:\n  - name: r\n    paths: ["/"]\n    plugins:\n    - name: jwt\n')
        f.write("consumers:\n")
        for i in range(n):
            f.write(f"- username: partner-{i}\n  jwt_secrets:\n  - key: pk-{i}\n    secret: s{i}\n")


def config_for(n, workdir):
    """The declarative file with n consumers in workdir (written once)."""
    config = os.path.join(workdir, f"kong-{n}.yml")
    if not os.path.exists(config):
        write_config(config, n)
    return config


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def start(binary, config, state):
    port, aport = free_port(), free_port()
    t0 = time.perf_counter()
    gw = subprocess.Popen(
        [binary, "--config", config, "--listen", f"127.0.0.1:{port}",
         "--admin-listen", f"127.0.0.1:{aport}", "--state", state, "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for _ in range(2):
        if not gw.stdout.readline():
            sys.exit("the gateway did not start")
    return gw, aport, time.perf_counter() - t0


def one(binary, n, pairs, workdir):
    config = config_for(n, workdir)
    state = os.path.join(workdir, f"state-{n}-{time.time_ns()}.db")
    gw, aport, started = start(binary, config, state)
    try:
        rss = rss_mib(gw.pid)
        c = http.client.HTTPConnection("127.0.0.1", aport, timeout=60)
        lat = []
        for i in range(pairs):
            who = f"partner-{(i * 7919) % n}"
            for method, path, body, want in (
                ("POST", f"/consumers/{who}/jwt", json.dumps({"key": f"bench-{i}", "secret": "x"}), 201),
                ("DELETE", f"/consumers/{who}/jwt/bench-{i}", None, 204),
            ):
                t = time.perf_counter()
                c.request(method, path, body, {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                lat.append(time.perf_counter() - t)
                if r.status != want:
                    sys.exit(f"{method} {path}: {r.status}")
        rss_after = rss_mib(gw.pid)
        return started, rss, rss_after, lat
    finally:
        gw.kill()
        gw.wait()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(state + suffix)
            except FileNotFoundError:
                pass


def crash(binary, n, workdir):
    import threading
    config = config_for(n, workdir)
    state = os.path.join(workdir, f"crash-{n}.db")
    gw, aport, _ = start(binary, config, state)
    acked = []

    def writer():
        for i in range(1000):
            try:
                c = http.client.HTTPConnection("127.0.0.1", aport, timeout=30)
                c.request("POST", f"/consumers/partner-{(i * 7919) % n}/jwt",
                          json.dumps({"key": f"crash-{i}", "secret": "x"}),
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
            except OSError:
                return
            if r.status != 201:
                sys.exit(f"write {i}: {r.status}")
            acked.append(i)

    t = threading.Thread(target=writer)
    t.start()
    while len(acked) < 300:
        time.sleep(0.001)
    gw.kill()
    gw.wait()
    t.join()
    gw, aport, started = start(binary, config, state)
    c = http.client.HTTPConnection("127.0.0.1", aport, timeout=30)
    lost = 0
    for i in acked:
        c.request("GET", f"/jwts/crash-{i}")
        r = c.getresponse()
        r.read()
        lost += r.status != 200
    gw.kill()
    gw.wait()
    print(f"| {n:,} | killed after {len(acked)} acknowledged writes | restarted in {started:.2f} s | lost {lost} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,10000,100000")
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--gateway", default=os.path.join(ROOT, "target/release/jwt-gateway"))
    ap.add_argument("--crash", action="store_true")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    if a.crash:
        print("| consumers | kill -9 | restart | acknowledged writes lost |")
        print("|---|---|---|---|")
        with tempfile.TemporaryDirectory() as d:
            for n in sizes:
                crash(a.gateway, n, d)
        return
    print("| rep | consumers | start to Admin up | RSS at start | RSS after writes | write p50 | write p90 | write p99 | write max |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for rep in range(1, a.reps + 1):
            # Rotate the order of sizes between repetitions (drift flatters whatever runs later).
            order = sizes[rep - 1 :] + sizes[: rep - 1]
            for n in order:
                started, rss, rss_after, lat = one(a.gateway, n, a.pairs, d)
                ms = [x * 1e3 for x in lat]
                print(f"| {rep} | {n:,} | {started:.2f} s | {rss:.0f} MiB | {rss_after:.0f} MiB | "
                      f"{statistics.median(ms):.2f} ms | {pct(ms, 0.9):.2f} ms | {pct(ms, 0.99):.2f} ms | {max(ms):.2f} ms |",
                      flush=True)


if __name__ == "__main__":
    main()
