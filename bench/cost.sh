#!/usr/bin/env bash
# Cost model of the metering path (docs/cost.md): runs a bounded number of calls through
# Tollgate on emulated AWS (moto), counts the AWS requests and billable units each process
# made (tollgate_aws_requests_total, tollgate_aws_billable_units_total on /metrics), and
# prints them per million events with us-east-1 list prices.
#
#   bench/cost.sh [--events 5000] [--customers 10] [--concurrency 16] [--strict] [--debug]
#
# --strict gives every customer strict daily request and token limits that never refuse,
# so every call is admitted from quota the proxy leases from DynamoDB, and prints the
# proxy's quota writes per call.
#
# Two `tollgate serve --backend aws` processes share the resources, as the proxy and the
# metering functions do on AWS:
#   - the proxy: its consumer polls once a day, so it meters nothing during the run;
#   - the consumer: nobody calls its listener; it applies runs of 2,500 records (the counting
#     Lambda applies a batch, of at most MeteringBatchSize 2,500 records, as one run) and is timed from start until every event is counted. It buffers
#     Parquet for 2 s (--parquet-flush-secs 2) and is read once it has written it out: the
#     whole run's events in one flush, as the Parquet function writes one file per shard
#     per invocation of up to 300 s.
# moto answers one request at a time on this machine: its latency is not DynamoDB's, so
# the Lambda duration derived from the drain time is shown with its sensitivity.
set -euo pipefail

events=5000
customers=10
concurrency=16
profile=release
limit_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --customers) customers="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --debug) profile=debug; shift ;;
    --strict) limit_flags=(--daily-limit 1000000000 --daily-token-limit 1000000000000 --enforcement strict); shift ;;
    *) echo "usage: $0 [--events N] [--customers N] [--concurrency N] [--strict] [--debug]" >&2; exit 2 ;;
  esac
done

repository="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repository/target}"
OHA_VERSION="1.16.0"
tools="${TOLLGATE_BENCH_HOME:-$HOME/.cache/tollgate-bench}"
oha="$tools/bin/oha"
if ! "$oha" --version 2>/dev/null | grep -q "$OHA_VERSION"; then
  echo "== installing oha $OHA_VERSION into $tools" >&2
  cargo install --quiet --locked "oha@$OHA_VERSION" --root "$tools" >&2
fi
if [ "$profile" = release ]; then
  cargo build --quiet --release -p tollgate -p tests --bin tollgate --bin fake-bedrock >&2
else
  cargo build --quiet -p tollgate -p tests --bin tollgate --bin fake-bedrock >&2
fi
bin="$target/$profile"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$repository/tests/emulators/moto.sh" stop || true
  rm -rf "$work"
}
trap cleanup EXIT

endpoint="$("$repository/tests/emulators/moto.sh" start)"
python="${TOLLGATE_EMULATOR_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-emulators}/moto-5.2.5/bin/python"
suffix="$(date +%s)"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export RUST_LOG="${RUST_LOG:-error}"
export TOLLGATE_BACKEND=aws TOLLGATE_AWS_ENDPOINT_URL="$endpoint"
export TOLLGATE_REGISTRY_TABLE="cost-registry-$suffix" TOLLGATE_COUNTERS_TABLE="cost-counters-$suffix"
export TOLLGATE_STREAM_NAME="cost-events-$suffix" TOLLGATE_BUCKET="cost-usage-$suffix"
# As in infra/template.yaml: the raw archive is Firehose reading the stream, not the consumer.
export TOLLGATE_FIREHOSE_STREAM="" TOLLGATE_DATA_DIR="$work/data"

# One shard: moto serves one request at a time, so more shards only add polling.
"$python" - "$endpoint" "$suffix" <<'PY'
import sys, time, boto3
endpoint, suffix = sys.argv[1], sys.argv[2]
session = dict(endpoint_url=endpoint, region_name="us-east-1")
dynamo = boto3.client("dynamodb", **session)
for table in (f"cost-registry-{suffix}", f"cost-counters-{suffix}"):
    dynamo.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
kinesis = boto3.client("kinesis", **session)
kinesis.create_stream(StreamName=f"cost-events-{suffix}", ShardCount=1)
while kinesis.describe_stream_summary(StreamName=f"cost-events-{suffix}")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.05)
boto3.client("s3", **session).create_bucket(Bucket=f"cost-usage-{suffix}")
PY

tokens=()
for index in $(seq 1 "$customers"); do
  created="$("$bin/tollgate" --json create --name "Cost Co $index" --email "cost$index@example.com" "${limit_flags[@]}")"
  tokens+=("$(python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])' <<<"$created")")
done

# Starts a command in the background and waits for its "listening on URL" line.
start_listening() {
  local log="$1"
  shift
  "$@" >"$log" 2>&1 &
  echo "$!" >"$log.pid"
  for _ in $(seq 1 400); do
    if grep -q "listening on " "$log"; then
      grep -m1 -o "listening on [^ ]*" "$log" | sed 's/listening on //'
      return
    fi
    sleep 0.05
  done
  echo "cost.sh: $* did not start; its output:" >&2
  cat "$log" >&2
  exit 1
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
metric() { # metric URL NAME -> value (0 when absent)
  curl -s "$1" | awk -v name="$2" '$1 == name { value = $2 } END { print value + 0 }'
}

fake_url="$(start_listening "$work/fake.log" "$bin/fake-bedrock")"
pids+=("$(cat "$work/fake.log.pid")")

proxy_port="$(free_port)"
proxy_metrics="http://127.0.0.1:$proxy_port/metrics"
proxy_url="$(start_listening "$work/proxy.log" "$bin/tollgate" serve --listen 127.0.0.1:0 \
  --upstream bedrock --bedrock-endpoint-url "$fake_url" --metering-poll-ms 86400000 \
  --metrics-listen "127.0.0.1:$proxy_port" --no-alerts)"
pids+=("$(cat "$work/proxy.log.pid")")
sleep 1
curl -s "$proxy_metrics" >"$work/proxy-before.prom"

model="anthropic.claude-3-haiku-20240307-v1:0"
body='{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"What is the capital of France?"}]}]}'
per_customer=$(( (events + customers - 1) / customers ))
sent=0
for token in "${tokens[@]}"; do
  calls=$(( events - sent < per_customer ? events - sent : per_customer ))
  [ "$calls" -gt 0 ] || break
  "$oha" -n "$calls" -c "$concurrency" --no-tui --output-format json -m POST \
    -H "Authorization: Bearer $token" -H "Content-Type: application/json" -d "$body" \
    "$proxy_url/model/$model/invoke" >"$work/oha.json"
  sent=$(( sent + calls ))
done
for _ in $(seq 1 600); do
  [ "$(metric "$proxy_metrics" tollgate_proxy_events_appended_total)" -ge "$sent" ] && break
  sleep 0.1
done
curl -s "$proxy_metrics" >"$work/proxy.prom"

consumer_port="$(free_port)"
consumer_metrics="http://127.0.0.1:$consumer_port/metrics"
started="$(date +%s.%N)"
start_listening "$work/consumer.log" "$bin/tollgate" serve --listen 127.0.0.1:0 \
  --upstream simulated --metering-batch-records 2500 --metering-poll-ms 50 \
  --parquet-flush-secs 2 --metrics-listen "127.0.0.1:$consumer_port" --no-alerts >/dev/null
pids+=("$(cat "$work/consumer.log.pid")")
counted=0
for _ in $(seq 1 12000); do
  counted="$(metric "$consumer_metrics" tollgate_metering_events_counted_total)"
  [ "$counted" -ge "$sent" ] && break
  sleep 0.05
done
finished="$(date +%s.%N)"
for _ in $(seq 1 200); do
  [ "$(metric "$consumer_metrics" tollgate_metering_parquet_objects_written_total)" -ge 1 ] && break
  sleep 0.05
done
curl -s "$consumer_metrics" >"$work/consumer.prom"

python3 - "$work" "$sent" "$counted" "$started" "$finished" "$profile" "$customers" <<'PY'
import re, sys
work, sent, counted, started, finished, profile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
customers = int(sys.argv[7])

# us-east-1 list prices, USD.
PRICES = {
    # https://aws.amazon.com/kinesis/data-streams/pricing/ (provisioned mode)
    "kinesis_put_payload_unit": 0.014 / 1e6,
    # same page (on-demand mode): data in per GB, each record rounded up to 1 KB; data out per GB
    "kinesis_on_demand_in_gb": 0.08,
    "kinesis_on_demand_out_gb": 0.04,
    # https://aws.amazon.com/dynamodb/pricing/on-demand/ (since 2024-11-01)
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    # https://aws.amazon.com/s3/pricing/ (S3 Standard requests)
    "s3_put_copy_post_list": 0.005 / 1000,
    "s3_get_head": 0.0004 / 1000,
    # https://aws.amazon.com/lambda/pricing/ (arm64, first 7.5 billion GB-s a month)
    "lambda_gb_second": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    # https://aws.amazon.com/firehose/pricing/ (Kinesis stream as source, per GB, 5 KB rounding)
    "firehose_gb": 0.029,
    # https://aws.amazon.com/cloudwatch/pricing/ (Logs, standard ingestion)
    "cloudwatch_logs_gb": 0.50,
    # https://aws.amazon.com/api-gateway/pricing/ (REST APIs, first 333 million a month)
    "api_gateway_rest_request": 3.50 / 1e6,
}
LAMBDA_MEMORY_GB = 512 / 1024   # infra/template.yaml MeteringMemoryMB
LAMBDA_BATCH = 2500             # MeteringBatchSize
LAMBDA_RUN = 2500               # metering::lambda applies a shard's batch as one run

def parse(path):
    requests, units = {}, {}
    for line in open(path):
        match = re.match(r'^tollgate_aws_(requests|billable_units)_total\{(.*)\} (\S+)$', line.strip())
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        value = float(match.group(3))
        if match.group(1) == "requests":
            requests[(labels["service"], labels["operation"])] = value
        else:
            units[(labels["service"], labels["operation"], labels["unit"])] = value
    return requests, units

def minus(after, before):
    return {key: value - before.get(key, 0) for key, value in after.items() if value - before.get(key, 0) > 0}

proxy_before = parse(f"{work}/proxy-before.prom")
proxy_after = parse(f"{work}/proxy.prom")
proxy = (minus(proxy_after[0], proxy_before[0]), minus(proxy_after[1], proxy_before[1]))
consumer = parse(f"{work}/consumer.prom")
per_million = 1e6 / sent

# Operations the metering Lambda does not make itself (the event source mapping reads the
# stream and keeps the position), or only at start-up.
POLLER_ONLY = {("Kinesis", "ListShards"), ("Kinesis", "GetShardIterator"), ("Kinesis", "GetRecords")}
START_UP = {("DynamoDB", "DescribeTable"), ("Kinesis", "DescribeStreamSummary"), ("S3", "ListObjectsV2")}

def unit_cost(service, operation, unit, amount):
    if service == "Kinesis" and unit == "put_payload_units":
        return amount * PRICES["kinesis_put_payload_unit"], "provisioned"
    if service == "Kinesis" and unit == "ingested_kib":
        return amount * 1024 / 1e9 * PRICES["kinesis_on_demand_in_gb"], "on-demand"
    if service == "Kinesis" and unit == "retrieved_bytes":
        return amount / 1e9 * PRICES["kinesis_on_demand_out_gb"], "on-demand"
    if service == "DynamoDB" and unit == "write_request_units":
        return amount * PRICES["dynamodb_wru"], ""
    if service == "DynamoDB" and unit == "read_request_units":
        return amount * PRICES["dynamodb_rru"], ""
    return 0.0, None

def request_cost(service, operation, calls):
    if service != "S3":
        return 0.0
    cheap = operation in ("GetObject", "HeadObject")
    return calls * PRICES["s3_get_head" if cheap else "s3_put_copy_post_list"]

rows = []
metering_total = {"provisioned": 0.0, "on-demand": 0.0}
for process, (requests, units) in (("proxy", proxy), ("consumer", consumer)):
    for (service, operation), calls in sorted(requests.items()):
        role = "start-up" if (service, operation) in START_UP else (
            "poller only" if (service, operation) in POLLER_ONLY else "")
        if process == "proxy" and (service, operation) != ("Kinesis", "PutRecords"):
            role = "proxy path"
        op_units = {unit: amount for (s, o, unit), amount in units.items() if (s, o) == (service, operation)}
        described, dollars = [], {"provisioned": request_cost(service, operation, calls), "on-demand": request_cost(service, operation, calls)}
        for unit, amount in sorted(op_units.items()):
            cost, mode = unit_cost(service, operation, unit, amount)
            described.append(f"{amount * per_million:,.0f} {unit}")
            if mode == "":
                dollars["provisioned"] += cost
                dollars["on-demand"] += cost
            elif mode in dollars:
                dollars[mode] += cost
        counted_in = role in ("", "poller only") and not (role == "poller only" and service != "Kinesis")
        if counted_in:
            for mode in metering_total:
                metering_total[mode] += dollars[mode] * per_million
        rows.append((process, service, operation, calls * per_million, "; ".join(described),
                     dollars["on-demand"] * per_million, dollars["provisioned"] * per_million, role or "metering"))

elapsed = finished - started
runs = sent / LAMBDA_RUN
seconds_per_run = elapsed / runs
invocations = 1e6 / LAMBDA_BATCH
def lambda_cost(seconds_per_invocation, events_per_invocation=LAMBDA_BATCH):
    n = 1e6 / events_per_invocation
    return n * seconds_per_invocation * LAMBDA_MEMORY_GB * PRICES["lambda_gb_second"] + n * PRICES["lambda_request"]
measured_invocation = seconds_per_run * LAMBDA_BATCH / LAMBDA_RUN
lambda_measured = lambda_cost(measured_invocation)

print(f"events sent {sent}, counted {counted}, build {profile}")
# The same workload shape in the scale simulator (bench/simulate.sh, BENCHMARKS.md): one
# shard, one producer, the customers one after another, one model, the frames' events per
# record as measured here, the polling consumer's runs of 2,500 records.
records = sum(amount for (s, o, u), amount in proxy[1].items() if u == "records_put")
per_record = sent / max(records, 1)
print(f"workload shape: {sent} events from {customers} customers one after another, {records:.0f} records "
      f"({per_record:.2f} events per record), 1 shard, 1 producer; simulate it with: bench/simulate.sh "
      f"--events {sent} --shards 1 --producers 1 --producer-lifetime-s 0 --customers {customers} "
      f"--customer-order sequential --models 1 --consumer poller --consumer-starts-after-appends --run-records 2500 --batch-records 2500 --frame-ms 10 "
      f"--hot-customer-rate {per_record * 100:.0f}")
print()
print("| process | service | operation | calls / M events | billable units / M events | $ / M on-demand Kinesis | $ / M provisioned Kinesis | counted as |")
print("|---|---|---|---|---|---|---|---|")
for process, service, operation, calls, described, on_demand, provisioned, role in rows:
    print(f"| {process} | {service} | {operation} | {calls:,.0f} | {described or '-'} | {on_demand:.4f} | {provisioned:.4f} | {role} |")
print()
print(f"consumer drain: {sent} events in {elapsed:.1f} s = {seconds_per_run * 1000:.0f} ms per run of {LAMBDA_RUN} records "
      f"(moto, one request at a time; GetRecords and checkpoints included)")
print(f"metering Lambda at {int(LAMBDA_MEMORY_GB * 1024)} MB, batches of {LAMBDA_BATCH}: {invocations:,.0f} invocations / M events")
print()
print(f"| seconds per invocation of {LAMBDA_BATCH} | GB-s / M events | Lambda $ / M events |")
print("|---|---|---|")
for seconds in (0.1, 0.25, 0.5, measured_invocation, 2.0):
    label = f"{seconds:.2f}" + (" (measured on moto)" if seconds == measured_invocation else "")
    print(f"| {label} | {invocations * seconds * LAMBDA_MEMORY_GB:,.0f} | {lambda_cost(seconds):.4f} |")
print()
records_put = sum(amount for (s, o, u), amount in proxy[1].items() if u == "records_put")
firehose = records_put * per_million * 5 * 1024 / 1e9 * PRICES["firehose_gb"]
quota_writes = proxy[0].get(("DynamoDB", "UpdateItem"), 0)
quota_wru = proxy[1].get(("DynamoDB", "UpdateItem", "write_request_units"), 0)
if quota_writes:
    print(f"strict limits: the proxy made {quota_writes:.0f} quota writes (UpdateItem) for {sent} calls = "
          f"{quota_writes / sent:.4f} writes per call, {quota_wru * per_million:,.0f} WRU = "
          f"${quota_wru * PRICES['dynamodb_wru'] * per_million:.4f} per million calls")
    print()
for mode in ("on-demand", "provisioned"):
    total = metering_total[mode] + lambda_measured
    print(f"metering path, Kinesis {mode}: AWS calls {metering_total[mode]:.4f} + Lambda {lambda_measured:.4f} "
          f"= ${total:.4f} per million events (target 0.10); raw archive (Firehose, 5 KB per record) +{firehose:.4f}")
print()
# The spec logs one line per call; ours would be an event's JSON, about 690 bytes (the log
# itself now carries events compressed, several to a record, so its bytes are not a line's).
event_bytes = 690
print(f"spec's approach: API Gateway REST {PRICES['api_gateway_rest_request'] * 1e6:.2f} per M requests, plus CloudWatch Logs "
      f"at {PRICES['cloudwatch_logs_gb']:.2f}/GB: one {event_bytes:.0f}-byte usage line per call = "
      f"{event_bytes * 1e6 / 1e9 * PRICES['cloudwatch_logs_gb']:.4f} per M; a 1 KB access-log line = "
      f"{1024 * 1e6 / 1e9 * PRICES['cloudwatch_logs_gb']:.4f} per M")
PY
