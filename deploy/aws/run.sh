#!/usr/bin/env bash
# What an AWS API Gateway HTTP API's JWT authorizer adds, measured end to end:
# deploys template.yaml, publishes the issuer's discovery document and JWKS,
# writes the scenario, runs it from this machine, and tears everything down.
#
#   deploy/aws/run.sh --region REGION (--upstream URL | --image URI) [options] [-- loadgen run flags]
#
#   --upstream URL  an upstream you run (its origin); the APIs proxy to it
#   --image URI     or: the gatebench image in a registry Fargate pulls from
#                   (ECR); the stack runs the mock upstream on Fargate
#   --stack NAME    the CloudFormation stack (default gatebench)
#   --bucket NAME   the issuer's S3 bucket (default gatebench-ACCOUNT-REGION)
#   --keys DIR      reuse keys from `loadgen keys gen --alg RS256 --kid
#                   gatebench-1 --issuer https://BUCKET.s3.REGION.amazonaws.com`
#                   (default: new ones, for this run only)
#   --rate N        steady requests per second (default 100)
#   --results DIR   where the scenario and results go (default results)
#   --keep          leave the stack up (tear down later: run.sh --teardown ...)
#   --teardown      only tear down (with --region, --stack, --bucket as before)
#
# Needs the AWS CLI v2 with credentials allowed to create the stack's
# resources (CloudFormation, API Gateway, S3, and for --image ECS, EC2,
# Elastic Load Balancing, IAM, CloudWatch Logs). LOADGEN names the loadgen
# binary (default target/release/loadgen, built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

region="" upstream="" image="" stack=gatebench bucket="" keys="" rate=100 keep=0 teardown_only=0 results=results
usage() {
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --region) region=${2:?}; shift ;;
    --upstream) upstream=${2:?}; shift ;;
    --image) image=${2:?}; shift ;;
    --stack) stack=${2:?}; shift ;;
    --bucket) bucket=${2:?}; shift ;;
    --keys) keys=${2:?}; shift ;;
    --rate) rate=${2:?}; shift ;;
    --results) results=${2:?}; shift ;;
    --keep) keep=1 ;;
    --teardown) teardown_only=1 ;;
    --) shift; break ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
[ -n "$region" ] || { echo "run.sh: --region is required" >&2; usage; }
if [ "$teardown_only" = 0 ]; then
    if { [ -n "$upstream" ] && [ -n "$image" ]; } || { [ -z "$upstream" ] && [ -z "$image" ]; }; then
        echo "run.sh: give exactly one of --upstream URL and --image URI" >&2
        usage
    fi
    case "$upstream" in "" | http://* | https://*) ;; *) echo "run.sh: --upstream $upstream: expected http://… or https://…" >&2; exit 2 ;; esac
    [[ "$rate" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rate $rate: expected a positive whole number" >&2; exit 2; }
fi
command -v aws >/dev/null || {
    echo "run.sh: the AWS CLI (v2) is not installed: https://docs.aws.amazon.com/cli/" >&2
    exit 2
}
aws=(aws --region "$region")
if [ -z "$bucket" ]; then
    account=$("${aws[@]}" sts get-caller-identity --query Account --output text)
    bucket="gatebench-$account-$region"
fi
issuer="https://$bucket.s3.$region.amazonaws.com"

teardown() {
    echo "tearing down stack $stack and bucket $bucket" >&2
    "${aws[@]}" s3 rm "s3://$bucket" --recursive >/dev/null || true
    "${aws[@]}" cloudformation delete-stack --stack-name "$stack"
    "${aws[@]}" cloudformation wait stack-delete-complete --stack-name "$stack"
    echo "torn down" >&2
}
if [ "$teardown_only" = 1 ]; then
    teardown
    exit 0
fi

lg=${LOADGEN:-$root/target/release/loadgen}
[ -x "$lg" ] || cargo build --release --locked -q -p loadgen
work=$(mktemp -d)
cleanup() {
    rc=$?
    if [ "$keep" = 1 ]; then
        echo "stack $stack kept: deploy/aws/run.sh --teardown --region $region --stack $stack --bucket $bucket" >&2
    else
        teardown || rc=1
    fi
    rm -rf "$work"
    exit "$rc"
}

# The issuer's keys: the discovery document names the JWKS under the bucket.
if [ -z "$keys" ]; then
    keys=$work/keys
    "$lg" keys gen --alg RS256 --kid gatebench-1 --issuer "$issuer" --out "$keys" >/dev/null
fi
grep -qF "\"issuer\": \"$issuer\"" "$keys/openid-configuration.json" || {
    echo "run.sh: $keys/openid-configuration.json is not for issuer $issuer (loadgen keys gen --issuer $issuer)" >&2
    exit 2
}

echo "deploying stack $stack in $region (issuer $issuer)" >&2
trap cleanup EXIT
"${aws[@]}" cloudformation deploy --stack-name "$stack" --template-file deploy/aws/template.yaml \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --parameter-overrides "BucketName=$bucket" "Audience=gatebench" "UpstreamUrl=$upstream" "MockImage=$image"
"${aws[@]}" cloudformation describe-stacks --stack-name "$stack" --query "Stacks[0].Outputs" --output json >"$work/outputs.json"
output() {
    python3 -c 'import json, sys; print(next(o["OutputValue"] for o in json.load(open(sys.argv[1])) if o["OutputKey"] == sys.argv[2]))' "$work/outputs.json" "$1"
}
jwt_url=$(output JwtUrl) open_url=$(output OpenUrl) up_url=$(output UpstreamUrl)
"${aws[@]}" s3 cp "$keys/openid-configuration.json" "s3://$bucket/.well-known/openid-configuration" --content-type application/json >/dev/null
"${aws[@]}" s3 cp "$keys/jwks.json" "s3://$bucket/.well-known/jwks.json" --content-type application/json >/dev/null

mkdir -p "$results"
scenario=$results/aws-http-api-$(date -u +%Y%m%dT%H%M%SZ).toml
cat >"$scenario" <<TOML
# Written by deploy/aws/run.sh for stack $stack in $region.
name = "aws-http-api"
seed = 17
rounds = 5

[auth]
profile = "aws-http-api"       # kid in the header, the issuer in iss, aud checked
issuer = "$issuer"
aud = "gatebench"

[[auth.consumer]]
name = "mobile-app"
alg = "RS256"
key_file = "$(cd "$keys" && pwd)/private.pem"
kid = "gatebench-1"

[[target]]
name = "direct"
url = "$up_url"
baseline = true
auth = false

[[target]]
name = "aws-jwt"
url = "$jwt_url"

[[target]]
name = "aws-open"
url = "$open_url"
auth = false

[[request]]
name = "valid"
weight = 90
path = "/orders/{seq}"
token = "valid"

[[request]]
name = "expired"
weight = 3
path = "/orders/{seq}"
token = "expired"

[[request]]
name = "bad-signature"
weight = 3
path = "/orders/{seq}"
token = "bad-signature"

[[request]]
name = "unknown-issuer"
weight = 2
path = "/orders/{seq}"
token = "unknown-issuer"

[[request]]
name = "missing"
weight = 2
path = "/orders/{seq}"
token = "missing"

[[phase]]
name = "warmup"                # the authorizer fetches the JWKS on first use
duration = "10s"
rate = 20
record = false

[[phase]]
name = "steady"
duration = "30s"
rate = $rate
TOML
echo "scenario: $scenario" >&2
rc=0
"$lg" run "$scenario" --out "${scenario%.toml}" "$@" || rc=$?
echo "results: ${scenario%.toml} (loadgen exit $rc)" >&2
exit "$rc"
