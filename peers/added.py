"""What each gateway adds over the direct baseline in a compare-gateways run,
overall and per algorithm (median of the per-round differences, same round
and request class), and with `gate` the ratio check against HAProxy.

    python3 peers/added.py results/compare-gateways-…/summary.json [gate] [limit] [excused]

`excused` = 1: the run is invalid for send lag alone on a busy machine
(compare.sh checks that); the gate still judges the ratios within it.
"""
import json, statistics, sys
s = json.load(open(sys.argv[1])); gate = len(sys.argv) > 2 and sys.argv[2] == "1"; limit = float(sys.argv[3]) if len(sys.argv) > 3 else 1.5
excused = len(sys.argv) > 4 and sys.argv[4] == "1"
t = {x["name"]: x for x in s["targets"]}
QS = ("p50", "p90", "p99", "p99.9")
def rounds(target, request):
    if request == "*":
        return t[target]["total"]["rounds"]
    return next(c["rounds"] for c in t[target]["classes"] if c["request"] == request)
def added(target, request, q):
    """Median over rounds of (target − direct) at percentile q, same round and class."""
    return statistics.median(a[q] - b[q] for a, b in zip(rounds(target, request), rounds("direct", request)))
us = lambda ns: f"{ns / 1e3:+.0f} us"
n = len(t["direct"]["total"]["rounds"])
print(f"What each gateway adds over direct: corrected latency, median of {n} per-round differences (valid={s['valid']})")
def has(target, request):
    return target in t and (request == "*" or any(c["request"] == request for c in t[target]["classes"]))
for request, title in (("*", "all requests"), ("hs256", "HS256 (/hs/)"), ("rs256", "RS256 (/rs/)")):
    if not has("direct", request):
        continue
    print(f"\n{title}\n| gateway | " + " | ".join(QS) + " |\n|---|" + "---|" * len(QS))
    rows = sorted((added(g, request, "p50"), g) for g in t if g != "direct")
    for _, g in rows:
        print(f"| {g} | " + " | ".join(us(added(g, request, q)) for q in QS) + " |")
# Ratios of what is added, within this run: the plain proxies against
# nginx's, and JWT on (HS256) against nginx's plain proxy.
pairs = [(g, "*", "nginx-noauth") for g in ("rust-gateway-noauth", "rust-gateway-hyper-noauth", "haproxy-noauth")]
pairs += [(g, "hs256", "nginx-noauth") for g in ("rust-gateway", "rust-gateway-hyper")]
pairs += [("rust-gateway", "hs256", "rust-gateway-noauth"), ("rust-gateway", "hs256", "haproxy-noauth")]
rows = [(a, r, b) for a, r, b in pairs if has(a, r) and has(b, r)]
if rows:
    print("\nRatios of added latency, within this run\n| target | over | p50 | p90 |\n|---|---|---|---|")
    for a, r, b in rows:
        cells = []
        for q in ("p50", "p90"):
            den = added(b, r, q)
            cells.append(f"{added(a, r, q) / den:.2f}x" if den > 0 else "-")
        print(f"| {a}{' (' + r + ')' if r != '*' else ''} | {b} | " + " | ".join(cells) + " |")
if gate:
    ok = s["valid"] or excused
    for q in ("p50", "p90"):
        ours, theirs = added("rust-gateway", "*", q), added("haproxy", "*", q)
        ratio = ours / theirs if theirs > 0 else float("inf")
        verdict = "ok" if ours <= limit * theirs else "FAIL"
        ok = ok and verdict == "ok"
        print(f"gate: rust-gateway added {q} {us(ours)} vs haproxy {us(theirs)}: ratio {ratio:.2f} (limit {limit}) {verdict}")
    if not s["valid"]:
        print("gate: the run is invalid" + (" (excused: the machine was busy)" if excused else "") + ":", s["invalid_reasons"])
    sys.exit(0 if ok else 1)
