#!/usr/bin/env python3
"""The verdict harness: how often `loadgen compare` raises a false alarm
(A/A) and how often it catches a known effect (A/B), for both designs:

- interleaved: one run whose targets are our gateway several times over
  (builtin, in-process), each asking the mock upstream for a known extra
  delay through a target header (`x-mock-latency`; the mock spins delays
  under 100 us, so they read back as themselves). Its rounds are cut into
  disjoint blocks of n rounds, and each block is one `loadgen compare
  --within` (rounds are the unit: blocks of them are independent samples
  of the same run).
- separate runs: one run per build (here: per extra delay), compared with
  `loadgen compare A B`, one after the other as a CI job would.

A detection is exit 1 from `loadgen compare ... --max-regression
added.p50=0`: the whole 95 % interval of the change lies above 0. So the
A/A false-alarm rate should be near 2.5 % (one side of a 95 % interval).

Every gateway path asks the mock for a base delay (40 us) and an effect is
added to it (+10 us: 50 us). The mock's delay runs from the request's
arrival, so part of a small delay over none overlaps the mock's own work
before it sleeps: measured here, 0 against +10 us through the gateway read
-0.3 to -3.3 us (medians over 180 rounds) and +25 us read +31 us. Between
two delayed paths (both spun: under 100 us) the difference is the one
programmed.

Rounds are 1 s per target (100 ms warm-up, 900 ms measured): measured on
this machine, the per-round p50 difference of two identical targets spread
35 us with rounds of 3 s, and 14 us over the mean of three consecutive 1 s
rounds (the same 3 s per target) -- the machine drifts over seconds, and
shorter slots let the pairing cancel more of it. So 15 rounds of 1 s stand
for 5 rounds of 3 s, and 60 for 20.

Besides the counts it prints, per block size, the power a t test would
have at the per-round spread measured (Kalibera & Jones's way of choosing
repetitions), so that a table from few blocks has a model beside it.

Run it through scripts/verdict-power.sh (which builds first).
"""

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def scenario(name, rounds, targets, warmup, steady, rate):
    """A scenario of the builtin upstream (baseline) and the builtin gateway
    once per (target name, extra delay)."""
    lines = [
        f'name = "{name}"',
        "seed = 5",
        f"rounds = {rounds}",
        "[gateway]",
        f'config = "{ROOT}/scenarios/quickstart-gateway.yml"',
        "[[target]]",
        'name = "direct"',
        'url = "builtin:upstream"',
        "baseline = true",
        "auth = false",
    ]
    for t, delay in targets:
        lines += [
            "[[target]]",
            f'name = "{t}"',
            'url = "builtin:gateway"',
            f'headers = {{ "x-mock-latency" = "{delay}" }}',
        ]
    lines += [
        "[auth]",
        'profile = "rust-gateway"',
        "[[auth.consumer]]",
        'name = "web-app"',
        'alg = "HS256"',
        'secret = "quickstart-demo-secret"',
        "[[request]]",
        'name = "read-order"',
        'path = "/orders/{seq}"',
        'token = "valid"',
        "expect = 200",
        "[[phase]]",
        'name = "warmup"',
        f'duration = "{warmup}"',
        f"rate = {rate}",
        "record = false",
        "[[phase]]",
        'name = "steady"',
        f'duration = "{steady}"',
        f"rate = {rate}",
    ]
    return "\n".join(lines) + "\n"


def delay(us, base=0):
    """The mock delay of a path `us` slower than the base path."""
    return "0us" if base + us == 0 else f"fixed:{base + us}us"


def run(lg, work, name, text, extra=()):
    path = os.path.join(work, f"{name}.toml")
    with open(path, "w") as f:
        f.write(text)
    out = os.path.join(work, name)
    rc = subprocess.run(
        [lg, "run", path, "--out", out, "--quiet", "--no-report", "--no-calibrate", *extra]
    ).returncode
    if rc not in (0, 3, 4):
        sys.exit(f"verdict-power: loadgen run {name} exited {rc}")
    with open(os.path.join(out, "summary.json")) as f:
        return out, json.load(f)


def compare(lg, args):
    """1 when compare calls added.p50 a regression, 0 when not."""
    rc = subprocess.run(
        [lg, "compare", *args, "--max-regression", "added.p50=0", "--allow-invalid"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ).returncode
    if rc not in (0, 1):
        sys.exit(f"verdict-power: loadgen compare {' '.join(args)} exited {rc}")
    return rc


def block(summary, rounds, work):
    """The run as if only `rounds` (indices) had been run: every target's
    per-round figures cut to them. Returns the directory of that summary."""
    s = json.loads(json.dumps(summary))
    for t in s["targets"]:
        t["total"]["rounds"] = [t["total"]["rounds"][k] for k in rounds]
        for c in t["classes"]:
            c["rounds"] = [c["rounds"][k] for k in rounds if k < len(c["rounds"])]
    d = tempfile.mkdtemp(dir=work)
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(s, f)
    return d


def p50_diffs(summary, base, cand):
    t = {x["name"]: x for x in summary["targets"]}
    return [
        c["p50"] - b["p50"]
        for b, c in zip(t[base]["total"]["rounds"], t[cand]["total"]["rounds"])
    ]


def robust_sd(x):
    """The spread of x as a normal's sd from its interquartile range."""
    if len(x) < 4:
        return statistics.stdev(x) if len(x) > 1 else 0.0
    q = statistics.quantiles(x, n=4)
    return (q[2] - q[0]) / 1.349


def t_power(effect_ns, sd_ns, n):
    """One-sided power of the paired t interval (lower bound above 0) for
    `effect_ns` at n rounds and per-round spread `sd_ns` (normal approximation
    of the noncentral t)."""
    from statistics import NormalDist

    if sd_ns <= 0 or n < 2:
        return float("nan")
    tcrit = T975.get(n - 1, 1.96)
    return 1 - NormalDist().cdf(tcrit - effect_ns / (sd_ns / math.sqrt(n)))


# t(0.975, df), as the interval uses.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
        16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 29: 2.045,
        59: 2.001}


def interleaved(lg, work, a, rows):
    effects = [int(e) for e in a.effects.split(",")]
    aa = [f"a{k + 1}" for k in range(2 * a.aa_pairs)]
    b = a.base_delay
    targets = [(t, delay(0, b)) for t in aa] + [(f"e{e}", delay(e, b)) for e in effects]
    text = scenario("interleaved", a.rounds, targets, a.warmup, a.steady, a.rate)
    t0 = time.time()
    out, s = run(lg, work, "interleaved", text)
    took = time.time() - t0
    valid = s["valid"]
    # a1 vs a2, a3 vs a4 … are independent A/A pairs; each effect is judged
    # against a1.
    pairs = [(aa[k], aa[k + 1], 0) for k in range(0, len(aa), 2)]
    pairs += [("a1", f"e{e}", e) for e in effects]
    sizes = [int(n) for n in a.blocks.split(",")]
    for base, cand, effect in pairs:
        diffs = p50_diffs(s, base, cand)
        # Median and IQR spread: a stalled round puts one difference
        # milliseconds off, which a mean and a standard deviation follow
        # and the signed-rank interval does not.
        sd = robust_sd(diffs)
        mean = statistics.median(diffs)
        for n in sizes:
            blocks = [list(range(k, k + n)) for k in range(0, len(diffs) - n + 1, n)]
            hits = sum(
                compare(lg, [block(s, b, work), "--within", f"{base},{cand}"]) for b in blocks
            )
            rows.append({
                "design": "interleaved",
                "effect_us": effect,
                "rounds": n,
                "compares": len(blocks),
                "detected": hits,
                "model": t_power(effect * 1000, sd, n) if effect else 0.025,
                "read_us": mean / 1000,
                "sd_us": sd / 1000,
            })
            if a.subsample and n < len(diffs):
                # Disjoint blocks are few when n is large: K random sets of
                # n of the run's rounds estimate the power at n from the
                # rounds seen (an m-out-of-n bootstrap without
                # replacement; the sets overlap, so they are not
                # independent compares).
                rng = random.Random(n * 1000 + effect)
                picks = [sorted(rng.sample(range(len(diffs)), n)) for _ in range(a.subsample)]
                rows.append({
                    "design": "interleaved, subsampled",
                    "effect_us": effect,
                    "rounds": n,
                    "compares": len(picks),
                    "detected": sum(
                        compare(lg, [block(s, b, work), "--within", f"{base},{cand}"]) for b in picks
                    ),
                    "model": float("nan"),
                    "read_us": float("nan"),
                    "sd_us": float("nan"),
                })
    return took, valid


def welch_detects(base, cand):
    """1 when Welch's t interval of the change in per-round added p50 (the
    interval compare used between runs before Mann-Whitney) lies above 0."""
    b, c = (p50_diffs(s, "direct", "gw") for s in (base, cand))
    vb, vc = statistics.variance(b) / len(b), statistics.variance(c) / len(c)
    se2 = vb + vc
    if se2 == 0:
        return int(statistics.mean(c) > statistics.mean(b))
    df = se2 * se2 / (vb * vb / (len(b) - 1) + vc * vc / (len(c) - 1))
    return int(statistics.mean(c) - statistics.mean(b) - t975(df) * math.sqrt(se2) > 0)


def t975(df):
    """t(0.975, df) by the Cornish-Fisher expansion (within 0.03 from df 3)."""
    z = 1.959964
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def separate(lg, work, a, rows):
    """Triples of runs (0, 0, +effect): A/A between consecutive zero runs,
    A/B between each triple's second zero run and its effect run. Returns
    the seconds taken and what Welch's t would have said of the same runs
    (A/A detections, A/B detections)."""
    effect = a.separate_effect
    zeros, hits_ab, n_ab = [], 0, 0
    sums, welch_ab = [], 0
    diffs = []
    t0 = time.time()
    for i in range(a.triples):
        za, sa = run(lg, work, f"z{i}a", scenario("sep", a.sep_rounds, [("gw", delay(0, a.base_delay))], a.warmup, a.steady, a.rate))
        zb, sb = run(lg, work, f"z{i}b", scenario("sep", a.sep_rounds, [("gw", delay(0, a.base_delay))], a.warmup, a.steady, a.rate))
        e, se = run(lg, work, f"e{i}", scenario("sep", a.sep_rounds, [("gw", delay(effect, a.base_delay))], a.warmup, a.steady, a.rate))
        zeros += [za, zb]
        sums += [sa, sb]
        hits_ab += compare(lg, [zb, e])
        welch_ab += welch_detects(sb, se)
        n_ab += 1
        added = lambda s: next(t for t in s["targets"] if t["name"] == "gw")["added"]["total"]["p50"]
        diffs.append(added(se) - added(sb))
    hits_aa = sum(compare(lg, [x, y]) for x, y in zip(zeros, zeros[1:]))
    welch_aa = sum(welch_detects(x, y) for x, y in zip(sums, sums[1:]))
    rows.append({"design": "separate", "effect_us": 0, "rounds": a.sep_rounds,
                 "compares": len(zeros) - 1, "detected": hits_aa, "model": 0.025,
                 "read_us": float("nan"), "sd_us": float("nan")})
    rows.append({"design": "separate", "effect_us": effect, "rounds": a.sep_rounds,
                 "compares": n_ab, "detected": hits_ab, "model": float("nan"),
                 "read_us": statistics.median(diffs) / 1000 if diffs else float("nan"),
                 "sd_us": robust_sd(diffs) / 1000 if len(diffs) > 1 else float("nan")})
    return time.time() - t0, (welch_aa, welch_ab)


def hogged(lg, work, a):
    """A +2 ms change between two separate runs while three threads spin on
    the CPU: compare with its default gates must call it a regression."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        base, _ = run(lg, work, "hog-base", scenario("hog", 3, [("gw", delay(0))], "500ms", "2500ms", a.rate))
        cand, _ = run(lg, work, "hog-cand", scenario("hog", 3, [("gw", "fixed:2ms")], "500ms", "2500ms", a.rate))
    finally:
        for h in hogs:
            h.kill()
    r = subprocess.run([lg, "compare", base, cand, "--allow-invalid"], capture_output=True, text=True)
    line = next((l for l in r.stdout.splitlines() if "added.p50" in l), "")
    return r.returncode, line.strip()


def pooled(rows):
    """Rows of the same design, effect and rounds (the A/A pairs) as one."""
    out = {}
    for r in rows:
        key = (r["design"], r["effect_us"], r["rounds"])
        if key in out:
            o = out[key]
            o["compares"] += r["compares"]
            o["detected"] += r["detected"]
            o["sd_us"] = max(o["sd_us"], r["sd_us"])
        else:
            out[key] = dict(r)
    return list(out.values())


def wilson(k, n):
    """95 % Wilson interval of a proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    z = 1.96
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def table(rows):
    out = ["| design | effect | rounds per compare | compares | detected | rate (95 % CI) | t-model power | read (median) | per-round spread (IQR/1.35) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = wilson(r["detected"], r["compares"])
        rate = r["detected"] / r["compares"] if r["compares"] else float("nan")
        kind = "A/A" if r["effect_us"] == 0 else f"+{r['effect_us']} us"
        model = "–" if math.isnan(r["model"]) else f"{r['model']:.0%}"
        read = "–" if math.isnan(r["read_us"]) else f"{r['read_us']:+.1f} us"
        sd = "–" if math.isnan(r["sd_us"]) else f"{r['sd_us']:.1f} us"
        out.append(f"| {r['design']} | {kind} | {r['rounds']} | {r['compares']} | {r['detected']} | "
                   f"{rate:.0%} ({lo:.0%}–{hi:.0%}) | {model} | {read} | {sd} |")
    return "\n".join(out)


def missed(rows, effect):
    """Whether `effect` (us; None: no check) was missed in some interleaved compare."""
    if effect is None:
        return False
    r = [r for r in rows if r["design"] == "interleaved" and r["effect_us"] == effect]
    return not r or any(x["detected"] < x["compares"] for x in r)


def interleaved_valid(a, work, rows):
    """The interleaved run into `rows`. With --expect-detected (CI's check),
    a run the machine stalled (invalid: the generator itself was late) that
    missed the effect is no evidence either way: it is run again, up to
    three times; False when every attempt stalled so. A valid run that
    misses the effect fails later, in main."""
    for _ in range(3 if a.expect_detected is not None else 1):
        rows.clear()
        took, valid = interleaved(a.loadgen, work, a, rows)
        print(f"interleaved: {a.rounds} rounds in {took:.0f} s (run valid: {valid})", file=sys.stderr)
        if valid or not missed(rows, a.expect_detected):
            return True
    return False


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loadgen", default=os.path.join(ROOT, "target/release/loadgen"))
    p.add_argument("--rounds", type=int, default=180,
                   help="rounds of the interleaved run (0: no interleaved run)")
    p.add_argument("--aa-pairs", type=int, default=2, help="independent A/A pairs in the interleaved run")
    p.add_argument("--effects", default="10,25", help="extra delays (us) on candidates of the interleaved run")
    p.add_argument("--blocks", default="5,15,60", help="rounds per compare, cut from the interleaved run")
    p.add_argument("--subsample", type=int, default=0, metavar="K",
                   help="also K random sets of each block size's rounds per pair (overlapping)")
    p.add_argument("--triples", type=int, default=21, help="separate runs: triples (0, 0, +effect)")
    p.add_argument("--sep-rounds", type=int, default=5, help="rounds of each separate run")
    p.add_argument("--separate-effect", type=int, default=50)
    p.add_argument("--base-delay", type=int, default=40,
                   help="us of mock delay on every path; effects are added to it")
    p.add_argument("--warmup", default="100ms")
    p.add_argument("--steady", default="900ms")
    p.add_argument("--rate", type=int, default=2000)
    p.add_argument("--hog", action="store_true", help="also the +2 ms change under three CPU hogs")
    p.add_argument("--expect-detected", type=int, metavar="US",
                   help="exit 1 unless the interleaved +US effect was detected in every compare")
    p.add_argument("--markdown", help="also write the table here")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="verdict-power-")
    try:
        rows = []
        if a.rounds and not interleaved_valid(a, work, rows):
            print(table(pooled(rows)))
            print("verdict-power: WARNING: SKIPPED: the machine stalled through three runs "
                  "(each invalid: the generator was late); the check is not made this time",
                  file=sys.stderr)
            return
        text_welch = ""
        if a.triples:
            took, (waa, wab) = separate(a.loadgen, work, a, rows)
            print(f"separate: {3 * a.triples} runs in {took:.0f} s", file=sys.stderr)
            text_welch = (f"\n\nThe same separate runs judged by Welch's t on their rounds: "
                          f"A/A {waa} of {2 * a.triples - 1}, +{a.separate_effect} us "
                          f"{wab} of {a.triples}")
        text = table(pooled(rows)) + text_welch
        if a.hog:
            rc, line = hogged(a.loadgen, work, a)
            text += f"\n\n+2 ms between separate runs under 3 CPU hogs, default gates: exit {rc}\n`{line}`"
        print(text)
        if a.markdown:
            with open(a.markdown, "w") as f:
                f.write(text + "\n")
        if missed(rows, a.expect_detected):
            sys.exit(f"verdict-power: +{a.expect_detected} us was not detected in every compare")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
