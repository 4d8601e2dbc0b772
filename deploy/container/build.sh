#!/usr/bin/env bash
# Builds the gatebench image without pulling anything: the three binaries are
# built here with cargo, statically linked against musl, and packaged by the
# Dockerfile's `prebuilt` path on an empty base (FROM scratch).
#
#   deploy/container/build.sh [--tag gatebench:dev] [--test]
#
# Exit 77 when the musl target cannot be installed (rustup cannot reach its
# server): .ci/run then says the image test was skipped and why.
#
# --test then runs the image as a user would: `--version` of the three
# binaries, and a short shard run (`--shard 0/1 --start-at`) of
# scenarios/quickstart.toml with the scenario directory mounted read-only and
# the results written to a mounted directory, which it checks.
#
# Uses podman (or buildah, or docker) from PATH. On machines whose sandbox
# may not raise resource limits or mixes cgroup v1 and v2 (as the 2-core CI
# machines here), `podman run` needs `--runtime runc` and limits no higher
# than the host's: set PODMAN_RUN_FLAGS, or let --test pick them.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT"

TAG=gatebench:dev
TEST=""
while [ $# -gt 0 ]; do
    case "$1" in
    --tag) TAG=${2:?}; shift 2 ;;
    --test) TEST=1; shift ;;
    *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

arch=$(uname -m)
target="$arch-unknown-linux-musl"
need musl-gcc musl-tools
if ! rustup target list --installed | grep -qx "$target"; then
    if ! rustup target add "$target"; then
        # Exit 77 ("skipped" to automake and CI): this machine cannot fetch
        # the target's standard library; nothing about the image was tested.
        echo "build.sh: cannot install the Rust target $target here (rustup target add failed): no static binaries, no image" >&2
        exit 77
    fi
fi
cargo build --release --locked --target "$target" -p loadgen -p gateway -p mock-upstream

rm -rf dist
mkdir -p dist/usr/local/bin dist/work dist/tmp
for b in loadgen jwt-gateway mock-upstream; do
    cp "target/$target/release/$b" dist/usr/local/bin/
    strip dist/usr/local/bin/$b
    if ldd "dist/usr/local/bin/$b" 2>&1 | grep -q '=>'; then
        echo "build.sh: $b is dynamically linked; FROM scratch needs a static binary" >&2
        exit 1
    fi
done

if command -v podman >/dev/null; then
    engine=podman
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
else
    need podman podman
    engine=podman
fi
$engine build --build-arg BINARIES=prebuilt -t "$TAG" -f Dockerfile .
echo "build.sh: built $TAG with $engine ($(du -sh dist | cut -f1) of binaries)"

[ -n "$TEST" ] || exit 0

# --- the image as a user runs it
if [ "$engine" = podman ] && [ -z "${PODMAN_RUN_FLAGS:-}" ]; then
    if ! podman run --rm "$TAG" --version >/dev/null 2>&1; then
        need runc runc
        PODMAN_RUN_FLAGS="--runtime runc --ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=4096:4096"
        echo "build.sh: podman run needs: $PODMAN_RUN_FLAGS" >&2
    fi
fi
# shellcheck disable=SC2206
flags=(${PODMAN_RUN_FLAGS:-})
SCRATCH_WHAT="build.sh --test"   # how scripts/lib.sh's fail() names this script
for b in loadgen jwt-gateway mock-upstream; do
    v=$($engine run --rm "${flags[@]}" --entrypoint "/usr/local/bin/$b" "$TAG" --version) || fail "$b --version failed"
    echo "  $v"
done
[ "$($engine image inspect "$TAG" --format '{{.Config.User}}')" = "65532:65532" ] || fail "the image does not run as 65532"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
chmod 777 "$out"
# Container start-up took up to 4 s here: the common start is 10 s ahead.
start=$(($(date +%s) + 10))
valid_or_invalid $engine run --rm "${flags[@]}" -v "$ROOT/scenarios:/scenario:ro" -v "$out:/work/results" "$TAG" \
    run /scenario/quickstart.toml --shard 0/1 --start-at "$start" \
    --rate 200 --duration 1s --rounds 1 --quiet --no-report --out /work/results/shard-0 ||
    fail "the short shard run failed"
python3 - "$out/shard-0/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
sh = s["shard"]
assert sh["index"] == 0 and sh["count"] == 1 and sh["start_at_unix_s"], sh
assert abs(sh["start_skew_ns"]) < 50_000_000, sh
for t in s["targets"]:
    c = t["total"]["counts"]
    assert c["scheduled"] == 200 and c["ok"] == 200, (t["name"], c)
print(f"  shard run in the image: {[t['name'] for t in s['targets']]} 200/200 ok each, "
      f"start skew {sh['start_skew_ns'] / 1000:.0f} µs, host {sh['host']}")
PY
echo "build.sh --test: ok"
