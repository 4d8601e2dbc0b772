#!/usr/bin/env bash
# run.sh tested as far as a machine without a cluster allows (used by .ci/run):
#   1. the rendered manifests validate offline against the Kubernetes API
#      schemas of 1.29 (the first with backoffLimitPerIndex on by default)
#      and 1.37 (kubernetes-validate from PyPI, strict: unknown fields fail),
#      and a mangled manifest does not;
#   2. bad usage is refused with exit 2 and a message;
#   3. the pods are played locally from the rendered Job: the Secret's items
#      become the /scenario directory, each pod's args are expanded as the
#      kubelet would ($(START_AT), $(SHARD_INDEX)), and N loadgen processes
#      write <results>/<run>/shard-K; then `run.sh merge` merges them, and a
#      missing shard is refused (exit 2) or merged partial (exit 3).
# Loopback only; every run is bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
source scripts/lib.sh

python3 -c 'import kubernetes_validate' 2>/dev/null ||
    pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
cargo build --locked -q -p loadgen
export LOADGEN=$root/target/debug/loadgen
run=deploy/kubernetes/run.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

SCRATCH_WHAT="k8s test"   # how scripts/lib.sh's fail() names this script

# expect_exit CODE MESSAGE-PART CMD...: CMD exits CODE and says MESSAGE-PART.
expect_exit() {
    local code=$1 part=$2 rc=0
    shift 2
    "$@" >"$work/out.txt" 2>&1 || rc=$?
    [ "$rc" = "$code" ] || fail "$* exited $rc, expected $code: $(cat "$work/out.txt")"
    grep -qF -- "$part" "$work/out.txt" || fail "$* did not say '$part': $(cat "$work/out.txt")"
}

echo "== render and validate offline"
$run render scenarios/compare-gateways.toml 4 --start-at 2030-01-01T00:00:00Z --run cg-test \
    --out "$work/cg" -- --target rust-gateway=http://gateway.example:8000
for v in 1.29.0 1.37.0; do
    python3 -m kubernetes_validate --strict --quiet -k "$v" "$work"/cg/manifests/*.yaml ||
        fail "manifests do not validate against Kubernetes $v"
done
sed 's/completionMode: Indexed/completionMod: Indexed/' "$work/cg/manifests/job.yaml" >"$work/bad.yaml"
if python3 -m kubernetes_validate --strict --quiet -k 1.37.0 "$work/bad.yaml" >/dev/null 2>&1; then
    fail "a Job with an unknown field validated: the validator checks nothing"
fi
grep -q '^  completions: 4$' "$work/cg/manifests/job.yaml" || fail "completions != 4"
grep -q '^  parallelism: 4$' "$work/cg/manifests/job.yaml" || fail "parallelism != 4"
grep -q "^            - 'rust-gateway=http://gateway.example:8000'$" "$work/cg/manifests/job.yaml" ||
    fail "the flags after -- are not in the shards' args"

echo "== bad usage"
expect_exit 2 "N must be a whole number" $run render scenarios/quickstart.toml 0 --start-at 1900000000
expect_exit 2 "render needs --start-at" $run render scenarios/quickstart.toml 2
expect_exit 2 "--run 'Bad_Name'" $run render scenarios/quickstart.toml 2 --start-at 1900000000 --run Bad_Name
expect_exit 2 "--start-at takes RFC 3339" $run render scenarios/quickstart.toml 2 --start-at tomorrow
expect_exit 2 "unknown option --nope" $run render scenarios/quickstart.toml 2 --nope
mkdir -p "$work/outside/s"
sed 's|^config = .*|config = "../gw.yml"|' scenarios/quickstart.toml >"$work/outside/s/q.toml"
cp scenarios/quickstart-gateway.yml "$work/outside/gw.yml"
expect_exit 2 "reads ../gw.yml, outside its directory" $run render "$work/outside/s/q.toml" 2 --start-at 1900000000 --out "$work/o"
printf 'name = "x"\nrat = 1\n' >"$work/broken.toml"
expect_exit 2 "broken.toml:2:1" $run render "$work/broken.toml" 2 --start-at 1900000000 --out "$work/o"

echo "== the pods played locally from the rendered Job, then run.sh merge"
n=2
start=$(($(date +%s) + 5))
$run render scenarios/quickstart.toml $n --start-at "$start" --run local-test --out "$work/q" \
    -- --rate 400 --duration 1s --rounds 1 2>/dev/null
python3 - "$work/q/manifests" "$work/pods" "$n" <<'PY'
import base64, os, re, subprocess, sys, yaml

manifests, pods, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
job = yaml.safe_load(open(f"{manifests}/job.yaml"))
secret = yaml.safe_load(open(f"{manifests}/secret.yaml"))
spec = job["spec"]
assert spec["completionMode"] == "Indexed" and spec["completions"] == n == spec["parallelism"], spec
pod = spec["template"]["spec"]
c = pod["containers"][0]
res = c["resources"]
assert res["requests"] == res["limits"], "not Guaranteed QoS"
scenario_vol = next(v for v in pod["volumes"] if v["name"] == "scenario")["secret"]
assert scenario_vol["secretName"] == secret["metadata"]["name"]
# The kubelet's part: the Secret's items as files, the volumes as directories.
mounts = {m["mountPath"]: f"{pods}/{m['name']}" for m in c["volumeMounts"]}
for item in scenario_vol["items"]:
    path = f"{mounts['/scenario']}/{item['path']}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").write(base64.b64decode(secret["data"][item["key"]]))
os.makedirs(mounts["/results"], exist_ok=True)
procs = []
for k in range(n):
    env = {e["name"]: e.get("value", str(k)) for e in c["env"]}  # fieldRef: the index
    env["JOB_COMPLETION_INDEX"] = str(k)  # set by the Job controller
    args = []
    for a in c["args"]:
        a = re.sub(r"\$\((\w+)\)", lambda m: env[m[1]], a)
        for mount, local in mounts.items():
            if a.startswith(mount + "/"):
                a = local + a[len(mount):]
        args.append(a)
    procs.append(subprocess.Popen([os.environ["LOADGEN"], *args],
                                  env={**os.environ, "JOB_COMPLETION_INDEX": str(k)}))
codes = [p.wait(timeout=120) for p in procs]
# 3: an invalid run (send lag while this shared machine stalled), results complete.
if any(c not in (0, 3) for c in codes):
    sys.exit(f"shards exited {codes}")
if 3 in codes:
    print(f"note: shards exited {codes} (3: invalid run, results complete)", file=sys.stderr)
PY
results="$work/pods/results/local-test"
for k in 0 1; do
    [ -f "$results/shard-$k/totals.json" ] || fail "shard $k wrote no totals.json"
done
cmp -s scenarios/quickstart-gateway.yml "$work/pods/scenario/quickstart-gateway.yml" ||
    fail "the gateway config did not arrive beside the scenario"
valid_or_invalid $run merge "$results" $n
python3 - "$results/merged/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rows = s["shards"]
assert [r["index"] for r in rows] == [0, 1] and all(r["count"] == 2 for r in rows), rows
for t in s["targets"]:
    c = t["total"]["counts"]
    # 400 req/s for the 1 s recorded phase, the shards' halves added.
    assert c["scheduled"] == 400 and c["completed"] == 400, (t["name"], c)
assert not s.get("partial"), s.get("partial")
print("k8s test: merged", [t["name"] for t in s["targets"]], "400 of 400 per target, shards", [r["index"] for r in rows])
PY
rm -rf "$results/merged"
mv "$results/shard-1" "$work/shard-1-away"
expect_exit 2 "missing" $run merge "$results" $n
rm -rf "$results/merged"
expect_exit 3 "partial" $run merge "$results" $n --allow-missing
echo "k8s test: ok"
