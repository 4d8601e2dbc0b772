#!/usr/bin/env bash
# deploy/aws tested as far as a machine without AWS allows (used by .ci/run):
#   1. template.yaml passes cfn-lint (PyPI, pinned), and a mangled copy (a
#      reference to a resource that is not there) does not;
#   2. run.sh runs end to end against a stand-in `aws` CLI (it records each
#      call and answers with canned stack outputs) and stand-ins for the
#      stack: our gateway's oidc plugin (AWS HTTP API JWT-authorizer
#      semantics: issuer, audience, kid, exp/nbf) for the JWT API, the mock
#      upstream for the open API and the direct path. Checked: the deploy's
#      parameters, the discovery document and JWKS uploaded where the
#      discovery document says the JWKS is, every request class's expected
#      status, and the stack torn down at the end; bad usage exits 2.
# Loopback only; the run is bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
scratch_dir "aws deploy test"

# 1. cfn-lint, and proof that it would fail.
command -v cfn-lint >/dev/null || python3 -m pip install -q --disable-pip-version-check cfn-lint==1.58.0
cfn-lint deploy/aws/template.yaml || fail "cfn-lint found errors in template.yaml"
sed 's/TargetGroupArn: !Ref MockTargets/TargetGroupArn: !Ref NoSuchTargets/' deploy/aws/template.yaml >"$work/mangled.yaml"
if cfn-lint "$work/mangled.yaml" >/dev/null 2>&1; then fail "cfn-lint passes a template with a dangling reference"; fi
echo "template.yaml: cfn-lint clean"

# 2. run.sh against stand-ins.
cargo build --release --locked -q -p loadgen -p mock-upstream -p gateway
lg=$PWD/target/release/loadgen
bucket=gatebench-123456789012-us-east-1
issuer=https://$bucket.s3.us-east-1.amazonaws.com
"$lg" keys gen --alg RS256 --kid gatebench-1 --issuer "$issuer" --out "$work/keys" >/dev/null
up=$(start_mock "$work/mock.out" --workers 1)
cat >"$work/gw.yml" <<YML
_format_version: "3.0"
services:
- name: api
  url: $up
  routes:
  - name: all
    paths: ["/"]
    plugins:
    - name: oidc
      config:
        issuer: $issuer
        audiences: [gatebench]
        jwks_file: $work/keys/jwks.json
YML
gw=$(start_gateway "$work/gw.out" target/release/jwt-gateway "$work/gw.yml" --workers 1)
mkdir -p "$work/bin" "$work/s3"
cat >"$work/outputs.json" <<JSON
[{"OutputKey": "JwtUrl", "OutputValue": "$gw"}, {"OutputKey": "OpenUrl", "OutputValue": "$up"},
 {"OutputKey": "UpstreamUrl", "OutputValue": "$up"}, {"OutputKey": "Issuer", "OutputValue": "$issuer"}]
JSON
cat >"$work/bin/aws" <<'SH'
#!/usr/bin/env bash
# A stand-in for the AWS CLI: records the call, answers from $AWS_STUB.
echo "$*" >>"$AWS_STUB/calls"
args=" $* "
case "$args" in
*" sts get-caller-identity "*) echo 123456789012 ;;
*" cloudformation describe-stacks "*) cat "$AWS_STUB/outputs.json" ;;
*" s3 cp "*)
    set -- $*
    while [ "$1" != cp ]; do shift; done
    dst=$AWS_STUB/s3/${3#s3://}
    mkdir -p "$(dirname "$dst")" && cp "$2" "$dst" ;;
esac
exit 0
SH
chmod +x "$work/bin/aws"
export AWS_STUB=$work
rc=0
PATH=$work/bin:$PATH LOADGEN=$lg deploy/aws/run.sh --region us-east-1 --upstream http://upstream.example \
    --keys "$work/keys" --results "$work/results" -- --duration 1s --rounds 1 --no-calibrate --quiet --no-report \
    >"$work/run.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "run.sh exited $rc: $(tail -20 "$work/run.out")"
calls=$work/calls
grep -q "cloudformation deploy --stack-name gatebench --template-file deploy/aws/template.yaml .*BucketName=$bucket Audience=gatebench UpstreamUrl=http://upstream.example MockImage=" "$calls" ||
    fail "no deploy with the expected parameters: $(cat "$calls")"
grep -q "cloudformation delete-stack --stack-name gatebench" "$calls" || fail "the stack was not torn down: $(cat "$calls")"
tail -1 "$calls" | grep -q "wait stack-delete-complete" || fail "run.sh did not wait for the teardown"
python3 - "$work/s3" "$bucket" "$issuer" <<'PY'
import json, sys
root, bucket, issuer = sys.argv[1:]
doc = json.load(open(f"{root}/{bucket}/.well-known/openid-configuration"))
assert doc["issuer"] == issuer, doc
prefix = f"https://{bucket}.s3.us-east-1.amazonaws.com/"
assert doc["jwks_uri"].startswith(prefix), doc["jwks_uri"]
jwks = json.load(open(f"{root}/{bucket}/{doc['jwks_uri'][len(prefix):]}"))
assert [k["kid"] for k in jwks["keys"]] == ["gatebench-1"], jwks
assert all("d" not in k for k in jwks["keys"]), "a private key part was published"
PY
summary=$(ls "$work"/results/aws-http-api-*/summary.json)
python3 - "$summary" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
names = [t["name"] for t in s["targets"]]
assert names == ["direct", "aws-jwt", "aws-open"], names
for t in s["targets"]:
    for c in t["classes"]:
        n = c["counts"]
        if n["completed"] == 0 or n["unexpected"]:
            sys.exit(f"{t['name']} {c['request']}: {n['completed']} completed, {n['unexpected']} unexpected: {c['status']}")
jwt = {c["request"]: c["status"] for c in s["targets"][1]["classes"]}
assert set(jwt["valid"]) == {"200"} and set(jwt["expired"]) == {"401"}, jwt
print("run.sh: deployed, published, ran (every class as expected through the AWS-semantics stand-in) and tore down")
PY
# Bad usage: exit 2 and a message, nothing deployed.
: >"$calls"
for bad in "--region us-east-1" "--region us-east-1 --upstream http://a --image b" "--region us-east-1 --upstream ftp://a" \
    "--upstream http://a" "--region us-east-1 --upstream http://a --rate 0"; do
    rc=0
    # shellcheck disable=SC2086
    PATH=$work/bin:$PATH deploy/aws/run.sh $bad >"$work/bad.out" 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q "run.sh:" "$work/bad.out" || fail "run.sh $bad exited $rc: $(cat "$work/bad.out")"
done
! grep -q deploy "$calls" || fail "bad usage deployed something"
echo "deploy/aws: ok"
