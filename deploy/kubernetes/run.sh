#!/usr/bin/env bash
# A sharded gatebench run on Kubernetes, merged into one exact result.
#
#   run.sh SCENARIO N [options] [-- LOADGEN-RUN-FLAGS...]
#       Renders the manifests with a start time --margin seconds ahead,
#       applies them (the results claim if missing, a Secret with the scenario
#       and the files it reads, an Indexed Job of N pods), waits for the Job,
#       copies the shard directories out and runs `loadgen merge`.
#       Results: OUT/shard-K (one per shard) and OUT/merged (the run).
#   run.sh render SCENARIO N --start-at TIME [options] [-- FLAGS...]
#       Only writes the manifests to OUT/manifests (no cluster needed).
#   run.sh merge OUT N [--allow-missing]
#       Only merges OUT/shard-0 … OUT/shard-(N-1) into OUT/merged.
#
# Options:
#   --image IMAGE        the gatebench image (default $GATEBENCH_IMAGE or gatebench:latest)
#   --namespace NS       (default default)
#   --run NAME           run name, lowercase letters, digits, '-' (default SCENARIO-NAME-UTCSTAMP)
#   --out DIR            local results directory (default results/RUN)
#   --margin SECONDS     start time ahead of now: scheduling and image pulls (default 120)
#   --start-at TIME      an explicit start (RFC 3339 UTC or unix seconds) instead of --margin
#   --cpu CPUS           per shard, requests = limits (default 2)
#   --memory SIZE        per shard, requests = limits (default 1Gi)
#   --claim NAME         ReadWriteMany PersistentVolumeClaim for results (default gatebench-results)
#   --storage-class SC   storage class when the claim is created (default: the cluster's)
#   --deadline SECONDS   the Job's activeDeadlineSeconds (default margin + 7200)
#   --collect-image IMG  image with tar, to copy results out (default busybox:1.36)
#   --allow-missing      merge what is there when shards failed (result marked partial)
#
# Flags after `--` go to every shard's `loadgen run` (e.g. --rate 50000,
# --target gateway=http://kong.gateway:8000): all shards must run the same
# scenario, which `loadgen merge` checks.
#
# Needs: loadgen on PATH (or $LOADGEN) to list the scenario's files and to
# merge; kubectl for `run`. Exit: the merge's exit code (0 ok, 3 invalid run,
# 4 unexpected statuses, 2 shards missing or foreign), 1 when the cluster part
# failed, 2 for bad usage.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOADGEN=${LOADGEN:-loadgen}

die() {
    echo "run.sh: $*" >&2
    exit 2
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# fill TEXT: replaces every @NAME@ of the templates by its value.
fill() {
    local t=$1
    t=${t//@RUN@/$RUN}
    t=${t//@NAMESPACE@/$NAMESPACE}
    t=${t//@N@/$N}
    t=${t//@IMAGE@/$IMAGE}
    t=${t//@START_AT@/$START_AT}
    t=${t//@SCENARIO@/$SCENARIO_NAME}
    t=${t//@CPU@/$CPU}
    t=${t//@MEMORY@/$MEMORY}
    t=${t//@CLAIM@/$CLAIM}
    t=${t//@DEADLINE@/$DEADLINE}
    t=${t//@COLLECT_IMAGE@/$COLLECT_IMAGE}
    t=${t//@STORAGE_CLASS@$'\n'/$STORAGE_CLASS_LINE}
    t=${t//@EXTRA_ARGS@$'\n'/$EXTRA_LINES}
    t=${t//@ITEMS@$'\n'/$ITEM_LINES}
    printf '%s' "$t"
}

# YAML single-quoted scalar.
yq() {
    local s=${1//\'/\'\'}
    printf "'%s'" "$s"
}

rfc3339() {
    date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$1" +%Y-%m-%dT%H:%M:%SZ
}

# render: OUT/manifests/{results-pvc,secret,job,collector}.yaml
render() {
    [ -f "$SCENARIO" ] || die "$SCENARIO: no such scenario file"
    local dir files f i=0 rel
    dir=$(cd "$(dirname "$SCENARIO")" && pwd)
    SCENARIO_NAME=$(basename "$SCENARIO")
    [[ $SCENARIO_NAME =~ ^[-._a-zA-Z0-9]+$ ]] || die "$SCENARIO: rename the file to letters, digits, '-', '_' or '.' (it becomes a Secret key)"
    # Validates the scenario too (exit 2 with file:line:col on a mistake).
    files=$("$LOADGEN" validate "$SCENARIO" --files) || exit 2
    if grep -q '^[^#]*builtin:' "$SCENARIO"; then
        echo "run.sh: warning: $SCENARIO has builtin: targets; each shard then measures its own in-process copy (use --target NAME=URL after --)" >&2
    fi

    local secret="" data
    data=$(base64 -w0 <"$SCENARIO")
    secret+="  scenario: $data"$'\n'
    ITEM_LINES="              - key: scenario"$'\n'"                path: $SCENARIO_NAME"$'\n'
    while IFS= read -r f; do
        [ -n "$f" ] || continue
        case "$f" in
        /* | ../* | */../* | *'/..') die "$SCENARIO reads $f, outside its directory: copy it beside the scenario (a pod sees only the scenario's directory)" ;;
        esac
        rel=${f#./}
        [ -f "$dir/$rel" ] || die "$SCENARIO reads $f, which is missing"
        i=$((i + 1))
        secret+="  file-$i: $(base64 -w0 <"$dir/$rel")"$'\n'
        ITEM_LINES+="              - key: file-$i"$'\n'"                path: $(yq "$rel")"$'\n'
    done <<<"$files"

    EXTRA_LINES=""
    local a
    for a in "${EXTRA[@]+"${EXTRA[@]}"}"; do
        EXTRA_LINES+="            - $(yq "$a")"$'\n'
    done
    STORAGE_CLASS_LINE=""
    [ -z "$STORAGE_CLASS" ] || STORAGE_CLASS_LINE="  storageClassName: $(yq "$STORAGE_CLASS")"$'\n'

    local m="$OUT/manifests"
    mkdir -p "$m"
    fill "$(cat "$here/results-pvc.yaml")"$'\n' >"$m/results-pvc.yaml"
    fill "$(cat "$here/job.yaml")"$'\n' >"$m/job.yaml"
    fill "$(cat "$here/collector.yaml")"$'\n' >"$m/collector.yaml"
    {
        echo "# The scenario and the files it reads, for the pods of run $RUN."
        echo "apiVersion: v1"
        echo "kind: Secret"
        echo "metadata:"
        echo "  name: gatebench-$RUN"
        echo "  namespace: $NAMESPACE"
        echo "  labels:"
        echo "    app.kubernetes.io/name: gatebench"
        echo "    gatebench/run: \"$RUN\""
        echo "type: Opaque"
        echo "data:"
        printf '%s' "$secret"
    } >"$m/secret.yaml"
    local size
    size=$(wc -c <"$m/secret.yaml")
    [ "$size" -lt 1000000 ] || die "$SCENARIO and its files take $size bytes as a Secret; Kubernetes allows 1 MiB"
    echo "run.sh: manifests for run $RUN ($N shards, start $START_AT) in $m" >&2
}

merge() {
    local args=() k
    for ((k = 0; k < N; k++)); do
        if [ -d "$OUT/shard-$k" ]; then args+=("$OUT/shard-$k"); fi
    done
    [ "${#args[@]}" -gt 0 ] || die "$OUT holds no shard-K directory"
    "$LOADGEN" merge "${args[@]}" --out "$OUT/merged" ${ALLOW_MISSING:+--allow-missing}
}

# The Job's state: Complete, Failed or running.
job_state() {
    kubectl -n "$NAMESPACE" get job "gatebench-$RUN" \
        -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}'
}

run_on_cluster() {
    command -v kubectl >/dev/null || die "kubectl is not on PATH"
    render
    local m="$OUT/manifests"
    if ! kubectl -n "$NAMESPACE" get pvc "$CLAIM" >/dev/null 2>&1; then
        kubectl apply -f "$m/results-pvc.yaml"
    fi
    kubectl apply -f "$m/secret.yaml" -f "$m/job.yaml"
    echo "run.sh: $N shards start at $START_AT; waiting for job gatebench-$RUN" >&2
    local waited=0 state
    while :; do
        state=$(job_state)
        case " $state " in
        *" Complete "* | *" Failed "*) break ;;
        esac
        if [ "$waited" -ge $((DEADLINE + 120)) ]; then
            echo "run.sh: job gatebench-$RUN did not finish in ${waited}s" >&2
            exit 1
        fi
        sleep 10
        waited=$((waited + 10))
        if [ $((waited % 60)) = 0 ]; then
            kubectl -n "$NAMESPACE" get job "gatebench-$RUN" --no-headers >&2 || true
        fi
    done
    echo "run.sh: job gatebench-$RUN: $state" >&2
    echo "shard  exit  node" >&2
    kubectl -n "$NAMESPACE" get pods -l "gatebench/run=$RUN,app.kubernetes.io/component=loadgen" \
        -o jsonpath='{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{"  "}{.status.containerStatuses[0].state.terminated.exitCode}{"  "}{.spec.nodeName}{"\n"}{end}' | sort -n >&2 || true

    kubectl apply -f "$m/collector.yaml"
    local pod="gatebench-$RUN-collect"
    kubectl -n "$NAMESPACE" wait --for=condition=Ready "pod/$pod" --timeout=300s
    rm -rf "$OUT/.copy"
    kubectl cp "$NAMESPACE/$pod:/results/$RUN" "$OUT/.copy"
    kubectl -n "$NAMESPACE" delete pod "$pod" --wait=false
    local d
    for d in "$OUT/.copy"/shard-*; do
        [ -d "$d" ] && mv "$d" "$OUT/"
    done
    rm -rf "$OUT/.copy"
    merge
}

# --- arguments
[ $# -ge 1 ] || usage
mode=run
case "$1" in
render | merge) mode=$1; shift ;;
-h | --help) usage ;;
esac
[ $# -ge 2 ] || usage
if [ "$mode" = merge ]; then
    OUT=$1
else
    SCENARIO=$1
fi
N=$2
shift 2
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a whole number of shards >= 1, not '$N'"

IMAGE=${GATEBENCH_IMAGE:-gatebench:latest}
NAMESPACE=default
RUN=""
MARGIN=120
START_AT=""
CPU=2
MEMORY=1Gi
CLAIM=gatebench-results
STORAGE_CLASS=""
DEADLINE=""
COLLECT_IMAGE=busybox:1.36
ALLOW_MISSING=""
EXTRA=()
[ "$mode" = merge ] || OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
    --image) IMAGE=${2:?--image needs a value}; shift 2 ;;
    --namespace) NAMESPACE=${2:?}; shift 2 ;;
    --run) RUN=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --margin) MARGIN=${2:?}; shift 2 ;;
    --start-at) START_AT=${2:?}; shift 2 ;;
    --cpu) CPU=${2:?}; shift 2 ;;
    --memory) MEMORY=${2:?}; shift 2 ;;
    --claim) CLAIM=${2:?}; shift 2 ;;
    --storage-class) STORAGE_CLASS=${2:?}; shift 2 ;;
    --deadline) DEADLINE=${2:?}; shift 2 ;;
    --collect-image) COLLECT_IMAGE=${2:?}; shift 2 ;;
    --allow-missing) ALLOW_MISSING=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) die "unknown option $1 (run.sh --help)" ;;
    esac
done

if [ "$mode" = merge ]; then
    merge
    exit $?
fi

[[ $MARGIN =~ ^[0-9]+$ ]] || die "--margin takes seconds, not '$MARGIN'"
if [ -z "$START_AT" ]; then
    [ "$mode" = run ] || die "render needs --start-at TIME (run.sh picks one only when it applies the Job)"
    START_AT=$(rfc3339 $(($(date +%s) + MARGIN)))
elif [[ $START_AT =~ ^[0-9]+$ ]]; then
    START_AT=$(rfc3339 "$START_AT")
fi
[[ $START_AT =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$ ]] ||
    die "--start-at takes RFC 3339 UTC (2026-12-01T15:00:00Z) or unix seconds, not '$START_AT'"
DEADLINE=${DEADLINE:-$((MARGIN + 7200))}
[[ $DEADLINE =~ ^[1-9][0-9]*$ ]] || die "--deadline takes seconds, not '$DEADLINE'"
if [ -z "$RUN" ]; then
    base=$(basename "$SCENARIO" | sed 's/\.[^.]*$//' | tr 'A-Z_.' 'a-z--' | tr -cd 'a-z0-9-' | cut -c1-24)
    RUN="${base:-run}-$(date -u +%Y%m%d-%H%M%S)"
fi
[[ $RUN =~ ^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$ ]] ||
    die "--run '$RUN': lowercase letters, digits and '-', at most 40, starting and ending with a letter or digit (it names Kubernetes objects)"
OUT=${OUT:-results/$RUN}

if [ "$mode" = render ]; then
    render
else
    run_on_cluster
fi
