#!/usr/bin/env bash
# deploy/kong tested as far as a machine without a registry allows (used by
# .ci/run): no Kong image can be pulled here, so
#   1. compose.yaml validates against the Compose specification's JSON schema
#      (compose_spec.json, taken from PyPI's docker-compose 1.29.2 wheel,
#      not installed), and a mangled copy does not; podman-compose (PyPI)
#      resolves it;
#   2. the config its `provision` service writes (loadgen provision kong
#      --out) is rendered here and loaded by our Kong-compatible gateway,
#      which refuses what Kong's schema refuses (exit 2, naming the field);
#   3. the scenario the `loadgen` service runs runs here, its compose URLs
#      overridden: the direct path to a local mock upstream, `kong` and
#      `rust-gateway` to our gateway on that config (a stand-in for Kong),
#      with each request class's expected status checked.
# Loopback only; the run is bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
scratch_dir "kong deploy test"

# 1. The compose file against the Compose specification.
spec=target/compose_spec.json
if [ ! -s "$spec" ]; then
    mkdir -p target
    python3 -m pip download -q --disable-pip-version-check --no-deps -d "$work/wheel" docker-compose==1.29.2
    python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("compose/config/compose_spec.json"))' \
        "$work"/wheel/docker_compose-1.29.2-*.whl "$spec"
fi
python3 - "$spec" deploy/kong/compose.yaml <<'PY'
import copy, json, sys
import jsonschema, yaml
schema = json.load(open(sys.argv[1]))
doc = yaml.safe_load(open(sys.argv[2]))
validator = jsonschema.Draft201909Validator(schema)
errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
if errors:
    sys.exit("compose.yaml is not a valid Compose file:\n  " + "\n  ".join(errors))
bad = copy.deepcopy(doc)
bad["services"]["kong"]["depends_on"]["provision"]["condition"] = "service_done"
if validator.is_valid(bad):
    sys.exit("the schema check passes a mangled compose file: it checks nothing")
for need in ("provision", "upstream", "kong", "gateway", "loadgen"):
    assert need in doc["services"], need
print("compose.yaml: valid against the Compose specification")
PY
need podman podman
command -v podman-compose >/dev/null ||
    python3 -m pip install -q --disable-pip-version-check podman-compose==1.6.0
(cd deploy/kong && podman-compose -f compose.yaml config >"$work/resolved.yaml") ||
    fail "podman-compose could not resolve compose.yaml"
grep -q "KONG_DECLARATIVE_CONFIG: /config/kong.yml" "$work/resolved.yaml" ||
    fail "podman-compose resolved compose.yaml without Kong's declarative config"

# 2. The provision service's output, loaded by our gateway.
cargo build --release --locked -q -p loadgen -p mock-upstream -p gateway
lg=target/release/loadgen
up=$(start_mock "$work/mock.out" --workers 1)
"$lg" provision kong --scenario deploy/kong/scenario.toml --out "$work/kong.yml" --upstream "$up" >/dev/null
gw=$(start_gateway "$work/gw.out" target/release/jwt-gateway "$work/kong.yml" --workers 1) ||
    fail "our gateway refused the rendered Kong config: $(cat "$work/gw.out.err")"
python3 - "$work/kong.yml" >"$work/mangled.yml" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["services"][0]["routes"][0]["plugins"][0]["config"]["key_claim"] = "iss"   # Kong's field is key_claim_name
print(json.dumps(doc))
PY
rc=0
target/release/jwt-gateway --config "$work/mangled.yml" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --state "$work/m.db" >/dev/null 2>"$work/mangled.err" || rc=$?
[ "$rc" = 2 ] && grep -q key_claim "$work/mangled.err" ||
    fail "a config field Kong does not have was not refused (exit $rc): $(cat "$work/mangled.err")"

# 3. The loadgen service's scenario, against the stand-ins.
rc=0
"$lg" run deploy/kong/scenario.toml --no-calibrate --quiet --no-report --out "$work/run" \
    --target "direct=$up" --target "kong=$gw" --target "rust-gateway=$gw" \
    --duration 1s --rounds 1 || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "the compose scenario's run exited $rc"
python3 - "$work/run/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for t in s["targets"]:
    for c in t["classes"]:
        n = c["counts"]
        if n["completed"] == 0 or n["unexpected"]:
            sys.exit(f"{t['name']} {c['request']}: {n['completed']} completed, {n['unexpected']} unexpected: {c['status']}")
print("the compose scenario ran: every class got its expected status through the rendered config")
PY
echo "deploy/kong: ok"
