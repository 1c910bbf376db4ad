#!/usr/bin/env bash
# Deploys Tollgate's AWS side (infra/template.yaml) with one command, or tears it down.
#
#   infra/deploy.sh [--region R] [--stack-name NAME] [--name-prefix P] [--stage S]
#                   [--alarm-email ADDRESS] [--limit-mode eventual|strict] [--event-format binary|json]
#                   [--bedrock-region R] [--skip-build] [--dry-run]
#   infra/deploy.sh teardown [--region R] [--stack-name NAME] [--delete-data] [--dry-run]
#
# Needs: cargo, cargo-lambda, the AWS SAM CLI and the AWS CLI
# (pip install cargo-lambda aws-sam-cli awscli), and AWS credentials allowed to create the
# stack's resources. See docs/deploy.md.
set -euo pipefail

repository="$(cd "$(dirname "$0")/.." && pwd)"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
stack="tollgate"
prefix="tollgate"
stage="prod"
alarm_email=""
limit_mode="eventual"
event_format="binary"
bedrock_region=""
skip_build=0
dry_run=0
delete_data=0
action="deploy"
LAMBDAS=(tollgate-proxy-lambda tollgate-metering-lambda tollgate-compact-lambda)

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

fail() {
  echo "deploy.sh: $1" >&2
  exit "${2:-1}"
}

if [ "${1:-}" = "teardown" ]; then
  action="teardown"
  shift
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --region) region="${2:?--region needs a value}"; shift 2 ;;
    --stack-name) stack="${2:?--stack-name needs a value}"; shift 2 ;;
    --name-prefix) prefix="${2:?--name-prefix needs a value}"; shift 2 ;;
    --stage) stage="${2:?--stage needs a value}"; shift 2 ;;
    --alarm-email) alarm_email="${2:?--alarm-email needs a value}"; shift 2 ;;
    --limit-mode) limit_mode="${2:?--limit-mode needs a value}"; shift 2 ;;
    --event-format) event_format="${2:?--event-format needs a value}"; shift 2 ;;
    --bedrock-region) bedrock_region="${2:?--bedrock-region needs a value}"; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --delete-data) delete_data=1; shift ;;
    -h|--help) usage ;;
    *) echo "deploy.sh: unknown argument $1" >&2; usage ;;
  esac
done

[ -n "$region" ] || fail "no region: give --region or set AWS_REGION" 2
[[ "$prefix" =~ ^[a-z][a-z0-9-]{1,30}$ ]] || fail "--name-prefix must be 2 to 31 lowercase letters, digits or hyphens, starting with a letter" 2
[[ "$limit_mode" =~ ^(eventual|strict)$ ]] || fail "--limit-mode must be eventual or strict" 2
[[ "$event_format" =~ ^(binary|binary-v2|json)$ ]] || fail "--event-format must be binary, binary-v2 or json" 2

# Runs a command, or prints it with --dry-run.
run() {
  if [ "$dry_run" = 1 ]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

need() {
  command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed: $2"
}

stack_output() {
  aws cloudformation describe-stacks --region "$region" --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

deploy() {
  if [ "$dry_run" = 0 ]; then
    need cargo "install Rust from https://rustup.rs"
    need sam "pip install aws-sam-cli"
    need aws "pip install awscli"
    [ "$skip_build" = 1 ] || need cargo-lambda "pip install cargo-lambda"
    aws sts get-caller-identity --region "$region" >/dev/null ||
      fail "no usable AWS credentials (aws sts get-caller-identity failed); configure them first"
  fi

  if [ "$skip_build" = 0 ]; then
    echo "== building the Lambda functions (arm64, release)"
    local bins=()
    for lambda in "${LAMBDAS[@]}"; do bins+=(--bin "$lambda"); done
    run cargo lambda build --profile lambda --arm64 --manifest-path "$repository/Cargo.toml" "${bins[@]}"
  fi
  for lambda in "${LAMBDAS[@]}"; do
    if [ "$dry_run" = 0 ] && [ ! -x "$repository/target/lambda/$lambda/bootstrap" ]; then
      fail "target/lambda/$lambda/bootstrap is missing: build without --skip-build"
    fi
  done

  echo "== deploying stack $stack in $region"
  local parameters=(
    "NamePrefix=$prefix"
    "StageName=$stage"
    "LimitMode=$limit_mode"
    "EventFormat=$event_format"
    "AlarmEmail=$alarm_email"
    "BedrockRegion=$bedrock_region"
    "ProxyCodeUri=$repository/target/lambda/tollgate-proxy-lambda/"
    "MeteringCodeUri=$repository/target/lambda/tollgate-metering-lambda/"
    "CompactCodeUri=$repository/target/lambda/tollgate-compact-lambda/"
  )
  run sam deploy \
    --template-file "$repository/infra/template.yaml" \
    --stack-name "$stack" \
    --region "$region" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --resolve-s3 \
    --no-fail-on-empty-changeset \
    --parameter-overrides "${parameters[@]}"

  if [ "$dry_run" = 1 ]; then
    return
  fi
  local api registry counters stream bucket database topic
  api="$(stack_output BedrockEndpoint)"
  registry="$(stack_output RegistryTableName)"
  counters="$(stack_output CountersTableName)"
  stream="$(stack_output UsageStreamName)"
  bucket="$(stack_output DataBucketName)"
  database="$(stack_output GlueDatabaseName)"
  topic="$(stack_output NotificationTopicArn)"
  cat <<NEXT

Tollgate is deployed. The customer endpoint:

  $api

Point the operator CLI at the deployed tables (put these in your shell profile):

  export TOLLGATE_BACKEND=aws AWS_REGION=$region
  export TOLLGATE_REGISTRY_TABLE=$registry TOLLGATE_COUNTERS_TABLE=$counters
  export TOLLGATE_STREAM_NAME=$stream TOLLGATE_BUCKET=$bucket TOLLGATE_FIREHOSE_STREAM=
  export TOLLGATE_ARCHIVE_BUCKET=$bucket TOLLGATE_ARCHIVE_PREFIX=archive

TOLLGATE_FIREHOSE_STREAM is empty because the stack's Firehose archives the stream itself;
TOLLGATE_ARCHIVE_BUCKET and TOLLGATE_ARCHIVE_PREFIX say where, so that tollgate reconcile
and replay read that archive, not the stream, which keeps only 24 hours.

Then create the first customer and call the API with the token it prints once:

  tollgate create --name "First Customer" --email ops@example.com --daily-limit 1000
  curl -X POST $api -H "Authorization: Bearer <token>" -H "Content-Type: application/json" \\
    -d '{"modelId":"anthropic.claude-3-haiku-20240307-v1:0","anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}]}'

Query usage in Athena (workgroup $prefix, database $database), and subscribe to alarms and
alerts on $topic. Bedrock model access must be enabled in the console for the models you
resell. Next steps: docs/deploy.md.
NEXT
}

empty_bucket() {
  local bucket="$1"
  echo "== emptying s3://$bucket (every version)"
  python3 - "$bucket" "$region" <<'PY'
import json, subprocess, sys
bucket, region = sys.argv[1], sys.argv[2]
def aws(*args):
    return subprocess.run(["aws", "--region", region, "--output", "json", *args],
                          check=True, capture_output=True, text=True).stdout
while True:
    listed = json.loads(aws("s3api", "list-object-versions", "--bucket", bucket, "--max-items", "1000") or "{}")
    objects = [{"Key": item["Key"], "VersionId": item["VersionId"]}
               for kind in ("Versions", "DeleteMarkers") for item in listed.get(kind) or []]
    if not objects:
        break
    aws("s3api", "delete-objects", "--bucket", bucket, "--delete", json.dumps({"Objects": objects, "Quiet": True}))
PY
  aws s3api delete-bucket --bucket "$bucket" --region "$region"
}

teardown() {
  [ "$dry_run" = 1 ] || need aws "pip install awscli"
  local registry="" counters="" bucket="" failures="" key=""
  if [ "$delete_data" = 1 ] && [ "$dry_run" = 0 ]; then
    registry="$(stack_output RegistryTableName)"
    counters="$(stack_output CountersTableName)"
    bucket="$(stack_output DataBucketName)"
    failures="$(stack_output FailureBucketName)"
    key="$(aws cloudformation describe-stack-resource --region "$region" --stack-name "$stack" \
      --logical-resource-id DataKey --query StackResourceDetail.PhysicalResourceId --output text)"
  fi
  echo "== deleting stack $stack in $region"
  run aws cloudformation delete-stack --region "$region" --stack-name "$stack"
  run aws cloudformation wait stack-delete-complete --region "$region" --stack-name "$stack"
  if [ "$delete_data" = 0 ]; then
    cat <<KEPT
The stack is gone. Kept, because they hold billing data: the DynamoDB tables (with deletion
protection), the usage and failure buckets and their KMS key. Delete them with
  infra/deploy.sh teardown --region $region --stack-name $stack --delete-data
before the stack is deleted, or by hand (docs/deploy.md).
KEPT
    return
  fi
  if [ "$dry_run" = 1 ]; then
    echo "+ (disable deletion protection and delete both tables, empty and delete both buckets, schedule the key's deletion)"
    return
  fi
  for table in "$registry" "$counters"; do
    echo "== deleting table $table"
    aws dynamodb update-table --region "$region" --table-name "$table" --no-deletion-protection-enabled >/dev/null
    aws dynamodb delete-table --region "$region" --table-name "$table" >/dev/null
  done
  empty_bucket "$bucket"
  empty_bucket "$failures"
  echo "== scheduling the deletion of KMS key $key in 30 days"
  aws kms schedule-key-deletion --region "$region" --key-id "$key" --pending-window-in-days 30 >/dev/null
  echo "Everything is deleted (the KMS key in 30 days)."
}

"$action"
