#!/usr/bin/env bash
# The gate flow of .github/workflows/bench.yml, shortened for .ci/run: run the
# main job's scenario as "main" and again as "the PR", gate the second with
# `loadgen compare` (must pass), then run a candidate whose upstream is 10 ms
# slower and check that the same gate catches it (exit 1).
#
# CI machines are noisy and the binary is the debug build the tests already
# made, so the gate here is loose (p50 +50 %, added p50 +100 %, no new
# errors): it checks the wiring and gross regressions, not small ones.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -q -p loadgen
lg=target/debug/loadgen
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
short=(--rate 500 --duration 1s --rounds 3 --quiet --no-report)
gate=(--max-regression latency.p50=50 --max-regression added.p50=100 --max-regression errors=0)

# A run the generator was late in (exit 3: a CI machine that stalled, or
# another job's build on the same cores) is run again, up to three times:
# this checks the gate's wiring, and `compare` refuses invalid runs. If all
# three were invalid while the machine itself stalled (1 ms sleeps woke
# >= 1 ms late at p99), the VM cannot host this check now: it is skipped
# with a warning, not failed.
run_valid() { # OUT SCENARIO
    local rc
    for attempt in 1 2 3; do
        rm -rf "$1"
        set +e
        "$lg" run "$2" "${short[@]}" --out "$1"
        rc=$?
        set -e
        [ "$rc" = 0 ] && return 0
        [ "$rc" = 3 ] || return "$rc"
        echo "ci-compare: $2 run $attempt was invalid (the generator was late: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("; ".join(s["invalid_reasons"]), "; hiccup p99", s["health"]["hiccup"]["p99"], "ns")' "$1/summary.json"))" >&2
    done
    if python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if s["health"]["hiccup"]["p99"] >= 1_000_000 and all("schedule-lag" in r for r in s["invalid_reasons"]) else 1)' "$1/summary.json"; then
        echo "ci-compare: WARNING: SKIPPED: the machine stalled through three runs (1 ms sleeps woke >= 1 ms late at p99); the gate's wiring is not checked this time" >&2
        exit 0
    fi
    return "$rc"
}
run_valid "$work/main" scenarios/quickstart.toml
run_valid "$work/pr" scenarios/quickstart.toml
if ! "$lg" compare "$work/main" "$work/pr" "${gate[@]}" --markdown "$work/compare.md" --bmf "$work/bmf.json"; then
    echo "ci-compare: an unchanged candidate was flagged" >&2
    cat "$work/compare.md" >&2
    exit 1
fi
echo "ci-compare: unchanged candidate passes the gate"

# The same scenario with a 10 ms slower upstream must fail the gate. Not
# 2 ms: compare calls a change within either run's calibrated resolution
# "within noise", and on a busy CI machine that resolution (3x the largest
# A/A difference) has reached 2 ms at p50 (docs/BENCHMARKS.md).
sed 's/^latency = "fixed:1ms".*/latency = "fixed:11ms"/' scenarios/quickstart.toml >"$work/slow.toml"
grep -q 'fixed:11ms' "$work/slow.toml"
cp scenarios/quickstart-gateway.yml "$work/"
run_valid "$work/slow" "$work/slow.toml"
set +e
"$lg" compare "$work/main" "$work/slow" "${gate[@]}" >"$work/slow.txt" 2>&1
rc=$?
set -e
if [ "$rc" != 1 ]; then
    echo "ci-compare: a 10 ms slower candidate gave exit $rc, expected 1" >&2
    cat "$work/slow.txt" >&2
    exit 1
fi
grep 'regression:' "$work/slow.txt"
echo "ci-compare: a 10 ms slower candidate is caught (exit 1)"
