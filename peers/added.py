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
for request, title in (("*", "all requests"), ("hs256", "HS256 (/hs/)"), ("rs256", "RS256 (/rs/)")):
    print(f"\n{title}\n| gateway | " + " | ".join(QS) + " |\n|---|" + "---|" * len(QS))
    rows = sorted((added(g, request, "p50"), g) for g in t if g != "direct")
    for _, g in rows:
        print(f"| {g} | " + " | ".join(us(added(g, request, q)) for q in QS) + " |")
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
