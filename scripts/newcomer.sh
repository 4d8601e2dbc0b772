#!/usr/bin/env bash
# The first hour, as a newcomer lives it: every command in README.md's sh
# blocks, in order, from the repository root, each checked for what the
# README says it does. A command this script does not know how to follow
# fails it, so a new README command needs a line here.
#
# Where a command needs a server the README assumes (the one-line example's
# gateway at 127.0.0.1:8000 and upstream at 127.0.0.1:8081), the script
# starts our gateway and the mock upstream on free ports and puts their
# addresses in; long runs get bounds appended (--rounds, --duration) so the
# whole walk takes a few minutes. With NEWCOMER_TESTS_DONE=1 (as .ci/run
# sets, having just run it) the test command is not run a second time.
#
#   scripts/newcomer.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
scratch_dir newcomer
# What the walk leaves in the checkout (results, the saved scenario, the
# starter) goes when it ends; what was there before stays.
mkdir -p results
ls results >"$work/results.before"
cleanup() {
    for p in "$work"/*.pid; do stop_pidfile "$p"; done
    ls results | grep -vxF -f "$work/results.before" | sed 's|^|results/|' | xargs -r rm -rf
    rm -rf my.toml my-kong "$work"
}
trap cleanup EXIT

# Each command of README.md's ```sh blocks, continuation lines joined and
# trailing comments dropped.
mapfile -t cmds < <(python3 - <<'EOF'
import re
text = open("README.md").read()
for block in re.findall(r"```sh\n(.*?)```", text, re.S):
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line:
            print(re.sub(r"\s+", " ", line))
EOF
)
[ "${#cmds[@]}" -ge 4 ] || fail "found ${#cmds[@]} commands in README.md; expected the two setup commands and the examples"

# run CMD: runs it with bash, its output in $work/out, and fails on a non-zero exit.
run() {
    echo "\$ $1"
    if ! bash -c "$1" >"$work/out" 2>&1; then
        tail -30 "$work/out" >&2
        fail "this README command failed: $1"
    fi
}
expect() { grep -q -- "$1" "$work/out" || { tail -30 "$work/out" >&2; fail "the output lacks '$1', which README.md promises"; }; }

for cmd in "${cmds[@]}"; do
    case "$cmd" in
    "cargo run --release -p loadgen -- run scenarios/quickstart.toml")
        run "$cmd"
        expect "added over direct"
        dir=$(ls -d results/quickstart-* | grep -vxF -f <(sed 's|^|results/|' "$work/results.before") | tail -1 || true)
        [ -n "$dir" ] || fail "the main job wrote no results/quickstart-<UTC time>/"
        for f in summary.json direct.hlog direct.hgrm rust-gateway.hlog rust-gateway.hgrm report.md report.html; do
            [ -s "$dir/$f" ] || fail "the main job did not write $dir/$f, which README.md lists"
        done
        ;;
    "cargo test --workspace --locked")
        if [ "${NEWCOMER_TESTS_DONE:-}" = 1 ]; then
            echo "\$ $cmd   (run just before, by .ci/run)"
        else
            run "$cmd"
            expect "test result: ok"
        fi
        ;;
    "cargo run --release -p loadgen -- http://127.0.0.1:8000/"*)
        # The gateway and the upstream the example assumes: ours, knowing
        # the consumer web-app by an HS256 secret.
        cargo build --release -q -p gateway -p mock-upstream
        up=$(start_mock "$work/mock.out" --workers 1)
        export SECRET=newcomer-secret-0123456789abcdef
        cat >"$work/gw.yml" <<EOF
_format_version: "3.0"
consumers:
- username: web
  jwt_secrets:
  - key: web-app
    secret: $SECRET
services:
- name: up
  url: $up
  routes: [{ name: all, paths: ["/"], plugins: [{ name: jwt, config: { claims_to_verify: [exp] } }] }]
EOF
        gw=$(start_gateway "$work/gw.out" target/release/jwt-gateway "$work/gw.yml" --workers 1)
        line=${cmd//http:\/\/127.0.0.1:8000/$gw}
        line=${line//http:\/\/127.0.0.1:8081/$up}
        run "$line --rounds 2 --duration 2s --warmup 0s --no-calibrate"
        expect "added over baseline"
        [ -s my.toml ] || fail "--save-scenario my.toml wrote nothing"
        run "target/release/loadgen validate my.toml"
        ;;
    "cargo run --release -p loadgen -- init --gateway kong --dir my-kong")
        run "$cmd"
        expect "next: loadgen run my-kong/scenario.toml"
        ;;
    "cargo run --release -p loadgen -- run my-kong/scenario.toml")
        run "$cmd --rounds 1 --duration 2s --no-calibrate"
        expect "added over direct"
        ;;
    *)
        fail "README.md has a command this walk does not know how to follow (add it to scripts/newcomer.sh): $cmd"
        ;;
    esac
done
echo "newcomer: ${#cmds[@]} README commands ran as the README says"
