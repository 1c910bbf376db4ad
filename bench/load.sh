#!/usr/bin/env bash
# Proxy load benchmark: the latency Tollgate adds in front of a fast fake Bedrock, measured in
# the same run as calling the fake directly and through a plain nginx reverse proxy (the
# floor). Fixed rates, then saturation; the proxy's CPU and memory. Bounded: each step runs
# DURATION seconds; everything stays on 127.0.0.1. See BENCHMARKS.md.
#
#   bench/load.sh [--rates "500 1000 2000 5000"] [--duration 10] [--connections 64]
#                 [--rounds 3] [--limit-mode eventual|strict] [--queued-events]
#                 [--layout serve|split] [--backend embedded|aws] [--profile dist|release]
#                 [--upstream-tls h2|http1]
#
# --rounds runs the whole sequence (direct, nginx, Tollgate at each rate, then saturation)
# that many times over the same processes. Every comparison is made within a round, where
# the three targets ran seconds apart, and the report gives the median over the rounds and
# their range: on a shared 2-core machine the speed drifts by a third from one minute to
# the next, more than the differences measured.
#
# --profile dist (default) measures Tollgate as operators ship it (`cargo build --profile
# dist`: whole-program LTO, the first build takes about 15 minutes on 2 cores); release
# measures the build the tests and `cargo run --release` use. The fake Bedrock is always
# the release build.
#
# --layout serve (default) runs `tollgate serve`: proxy and consumer in one process.
# --layout split runs the standalone `tollgate-proxy` and `tollgate-metering` side by side
# on the same database; the table then shows the proxy process alone.
# --backend aws runs Tollgate on DynamoDB, Kinesis and S3 emulated by moto
# (tests/emulators/moto.sh, started and stopped by the script). moto answers one request
# at a time, so this measures the proxy's own path, not AWS's latency.
#
# --upstream-tls makes the fake Bedrock serve HTTPS, as Bedrock's endpoint does, with a new
# self-signed certificate that Tollgate (--bedrock-ca-bundle) and nginx
# (proxy_ssl_trusted_certificate) trust: h2 offers HTTP/2 and HTTP/1.1 by ALPN (Bedrock's
# endpoint offers both, and Tollgate takes HTTP/2), http1 offers HTTP/1.1 only. nginx
# always calls its upstreams over HTTP/1.1. Direct calls go over HTTPS too.
#
# Installs what it needs when missing: nginx (Debian package) and oha (cargo install,
# pinned, into ~/.cache/tollgate-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
repository="$(pwd)"

OHA_VERSION="1.16.0"
rates="500 1000 2000 5000"
duration=10
connections=64
rounds=3
limit_mode="eventual"
durable=()
events_label="durable events"
layout="serve"
backend="embedded"
profile="dist"
upstream_tls=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rates) rates="${2:?}"; shift 2 ;;
    --duration) duration="${2:?}"; shift 2 ;;
    --connections) connections="${2:?}"; shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --limit-mode) limit_mode="${2:?}"; shift 2 ;;
    --durable-events) durable=(--durable-events=true); shift ;;
    --queued-events) durable=(--durable-events=false); events_label="queued events"; shift ;;
    --layout) layout="${2:?}"; shift 2 ;;
    --backend) backend="${2:?}"; shift 2 ;;
    --profile) profile="${2:?}"; shift 2 ;;
    --upstream-tls) upstream_tls="${2:?}"; shift 2 ;;
    *) echo "load.sh: unknown argument $1" >&2; sed -n '2,22p' "$0" >&2; exit 2 ;;
  esac
done
[[ "$duration" =~ ^[0-9]+$ ]] && [ "$duration" -ge 1 ] && [ "$duration" -le 120 ] ||
  { echo "load.sh: --duration must be 1 to 120 seconds" >&2; exit 2; }
[[ "$rounds" =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] && [ "$rounds" -le 10 ] ||
  { echo "load.sh: --rounds must be 1 to 10" >&2; exit 2; }
case "$layout" in
  serve | split) ;;
  *) echo "load.sh: --layout must be serve or split" >&2; exit 2 ;;
esac
case "$backend" in
  embedded | aws) ;;
  *) echo "load.sh: --backend must be embedded or aws" >&2; exit 2 ;;
esac
case "$profile" in
  dist | release) ;;
  *) echo "load.sh: --profile must be dist or release" >&2; exit 2 ;;
esac
case "$upstream_tls" in
  "" | h2 | http1) ;;
  *) echo "load.sh: --upstream-tls must be h2 or http1" >&2; exit 2 ;;
esac

tools="${TOLLGATE_BENCH_HOME:-$HOME/.cache/tollgate-bench}"
oha="$tools/bin/oha"
if ! "$oha" --version 2>/dev/null | grep -q "$OHA_VERSION"; then
  echo "== installing oha $OHA_VERSION into $tools" >&2
  cargo install --quiet --locked "oha@$OHA_VERSION" --root "$tools" >&2
fi
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "== installing nginx (Debian)" >&2
  maybe_sudo=""
  [ "$(id -u)" = 0 ] || maybe_sudo="sudo"
  $maybe_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >&2
fi
nginx_binary="$(command -v nginx || echo /usr/sbin/nginx)"

echo "== building (Tollgate: $profile, the fake: release)" >&2
cargo build --quiet --release -p tests --bin fake-bedrock >&2
# Only the binaries the layout runs: each link of a dist binary takes minutes.
if [ "$layout" = serve ]; then
  cargo build --quiet --profile "$profile" -p tollgate --bin tollgate >&2
else
  cargo build --quiet --profile "$profile" -p tollgate -p metering \
    --bin tollgate --bin tollgate-proxy --bin tollgate-metering >&2
fi
binaries="$repository/target/$profile"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The servers were started from subshells, so `wait` does not see them: give them up to
  # 10 s to finish their graceful shutdown (which writes into $work) before removing it.
  for _ in $(seq 1 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  [ "$backend" = aws ] && "$repository/tests/emulators/moto.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export RUST_LOG="${RUST_LOG:-error}"

# Starts a command in the background and waits for its "listening on URL" line.
start_listening() {
  local log="$1"
  shift
  "$@" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 200); do
    if grep -q "listening on " "$log"; then
      grep -m1 -o "listening on [^ ]*" "$log" | sed 's/listening on //'
      echo "$pid" >"$log.pid"
      return
    fi
    sleep 0.05
  done
  echo "load.sh: $* did not start; its output:" >&2
  cat "$log" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

fake_flags=()
nginx_upstream_tls=""
tollgate_tls=()
direct_tls=()
upstream_label="plain HTTP/1.1 upstream"
if [ -n "$upstream_tls" ]; then
  fake_flags=(--tls "$work/fake-tls")
  [ "$upstream_tls" = http1 ] && fake_flags+=(--http1)
  nginx_upstream_tls="proxy_ssl_trusted_certificate $work/fake-tls/ca.pem; proxy_ssl_verify on; proxy_ssl_name localhost; proxy_ssl_session_reuse on;"
  tollgate_tls=(--bedrock-ca-bundle "$work/fake-tls/ca.pem")
  direct_tls=(--cacert "$work/fake-tls/ca.pem")
  upstream_label="TLS upstream offering $upstream_tls (nginx: HTTP/1.1)"
fi
fake_url="$(start_listening "$work/fake.log" "$repository/target/release/fake-bedrock" "${fake_flags[@]}")"
fake_pid="$(cat "$work/fake.log.pid")"
pids+=("$fake_pid") # started in a command substitution: remember it here

nginx_port="$(free_port)"
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream fake { server ${fake_url#*://}; keepalive 128; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass ${fake_url%%://*}://fake;
      proxy_http_version 1.1;
      $nginx_upstream_tls
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
"$nginx_binary" -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g "daemon off;" &
pids+=("$!")
nginx_pid=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && break
  sleep 0.05
done

data="$work/tollgate-data"
if [ "$backend" = aws ]; then
  echo "== starting moto" >&2
  export TOLLGATE_EMULATOR_STATE="$work/moto"
  endpoint="$("$repository/tests/emulators/moto.sh" start)"
  python="${TOLLGATE_EMULATOR_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-emulators}/moto-5.2.5/bin/python"
  export TOLLGATE_BACKEND=aws TOLLGATE_AWS_ENDPOINT_URL="$endpoint"
  export TOLLGATE_REGISTRY_TABLE=bench-registry TOLLGATE_COUNTERS_TABLE=bench-counters
  export TOLLGATE_STREAM_NAME=bench-events TOLLGATE_BUCKET=bench-usage TOLLGATE_FIREHOSE_STREAM=""
  "$python" - "$endpoint" <<'PY'
import sys, time, boto3
session = dict(endpoint_url=sys.argv[1], region_name="us-east-1")
dynamo = boto3.client("dynamodb", **session)
for table in ("bench-registry", "bench-counters"):
    dynamo.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
kinesis = boto3.client("kinesis", **session)
kinesis.create_stream(StreamName="bench-events", ShardCount=1)
while kinesis.describe_stream_summary(StreamName="bench-events")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.05)
boto3.client("s3", **session).create_bucket(Bucket="bench-usage")
PY
fi
created="$("$binaries/tollgate" --data-dir "$data" --json create --name "Bench Co" \
  --email bench@example.com --daily-limit 1000000000 --daily-token-limit 1000000000000)"
token="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])' <<<"$created")"
proxy_flags=(--listen 127.0.0.1:0 --upstream bedrock --bedrock-endpoint-url "$fake_url" "${tollgate_tls[@]}"
  --limit-mode "$limit_mode" "${durable[@]}")
metering_pid=""
if [ "$layout" = serve ]; then
  tollgate_url="$(start_listening "$work/tollgate.log" "$binaries/tollgate" --data-dir "$data" serve \
    "${proxy_flags[@]}")"
else
  tollgate_url="$(start_listening "$work/tollgate.log" "$binaries/tollgate-proxy" --data-dir "$data" \
    "${proxy_flags[@]}")"
  "$binaries/tollgate-metering" --data-dir "$data" >"$work/metering.log" 2>&1 &
  metering_pid=$!
  pids+=("$metering_pid")
fi
tollgate_pid="$(cat "$work/tollgate.log.pid")"
pids+=("$tollgate_pid")

model="anthropic.claude-3-haiku-20240307-v1:0"
body='{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"What is the capital of France?"}]}]}'
route="/model/$model/invoke"
# The fake accepts any SigV4-shaped request; direct and nginx calls carry a fixed one.
signed=(-H "Authorization: AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=bench" -H "X-Amz-Date: 20260101T000000Z")
bearer=(-H "Authorization: Bearer $token")

# CPU seconds (user + system) of a process and its children threads, and its RSS in KiB.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
group_cpu_seconds() {
  local total=0 pid
  for pid in "$@"; do
    total="$(awk -v a="$total" -v b="$(cpu_seconds "$pid")" 'BEGIN { print a + b }')"
  done
  echo "$total"
}
rss_kib() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")))
  done
  echo "$total"
}

# One oha run; prints a JSON line of figures. Headers come from the array named by $4.
measure() {
  local target="$1" rate="$2" url="$3"
  local -n headers="$4"
  shift 4
  local watched=("$@") before after rate_flags=() tls_flags=()
  [ "$target" = direct ] && tls_flags=("${direct_tls[@]}")
  [ "$rate" = "max" ] || rate_flags=(-q "$rate" --latency-correction)
  # Context switches of the watched processes over the step, where perf can count them.
  local switches="$work/switches.csv" counting=()
  rm -f "$switches"
  if [ "$count_switches" = yes ]; then
    counting=(perf stat -x, -e context-switches -p "$(IFS=,; echo "${watched[*]}")" -o "$switches" --)
  fi
  before="$(group_cpu_seconds "${watched[@]}")"
  machine_before="$(head -1 /proc/stat)"
  "${counting[@]}" "$oha" -z "${duration}s" -c "$connections" "${rate_flags[@]}" "${tls_flags[@]}" --no-tui --output-format json \
    -m POST "${headers[@]}" -H "Content-Type: application/json" -d "$body" "$url" >"$work/oha.json"
  after="$(group_cpu_seconds "${watched[@]}")"
  machine_after="$(head -1 /proc/stat)"
  python3 - "$work/oha.json" "$target" "$rate" "$before" "$after" "$duration" "$(rss_kib "${watched[@]}")" "$switches" "$round" \
    "$machine_before" "$machine_after" <<'PY'
import json, os, sys
path, target, rate, before, after, duration, rss, switches, round_number, machine_before, machine_after = sys.argv[1:]
# The hypervisor's steal: the share of the machine's CPU time over the step that the host
# gave to others (the eighth figure of /proc/stat's cpu line). A step with much of it ran
# on a machine slower than it looked.
ticks = [int(after) - int(before) for before, after in
         zip(machine_before.split()[1:], machine_after.split()[1:])]
steal = ticks[7] / sum(ticks) * 100 if len(ticks) > 7 and sum(ticks) > 0 else None
context_switches = None
if os.path.exists(switches):
    for line in open(switches):
        fields = line.strip().split(",")
        if len(fields) > 2 and fields[2] == "context-switches" and fields[0].isdigit():
            context_switches = int(fields[0])
result = json.load(open(path))
summary = result["summary"]
percentiles = result["latencyPercentiles"]
statuses = result.get("statusCodeDistribution", {})
ok = int(statuses.get("200", 0))
# Requests still in flight when the step's time ran out are cut, not failed.
cut_off = "aborted due to deadline"
failures = {key: count for key, count in result.get("errorDistribution", {}).items() if key != cut_off}
errors = sum(int(count) for code, count in statuses.items() if code != "200")
errors += sum(int(count) for count in failures.values())
ms = lambda key: (percentiles.get(key) or 0) * 1000
print(json.dumps({
    "target": target, "rate": rate, "round": int(round_number),
    "rps": ok / float(duration),
    "p50": ms("p50"), "p90": ms("p90"), "p99": ms("p99"),
    "errors": errors,
    "cpu": (float(after) - float(before)) / float(duration) * 100,
    "rss_mb": int(rss) / 1024,
    "switches_per_call": context_switches / ok if context_switches is not None and ok else None,
    "steal": steal,
    "not_ok": {code: count for code, count in statuses.items() if code != "200"} | failures,
}))
PY
}

# perf counts context switches where it is installed and allowed to.
count_switches=no
if command -v perf >/dev/null 2>&1 && perf stat -x, -e context-switches -o /dev/null -- true >/dev/null 2>&1; then
  count_switches=yes
fi

results="$work/results.jsonl"
for round in $(seq 1 "$rounds"); do
  [ "$rounds" = 1 ] || echo "== round $round of $rounds" >&2
  for rate in $rates max; do
    measure direct "$rate" "$fake_url$route" signed "$fake_pid" >>"$results"
    measure nginx "$rate" "http://127.0.0.1:$nginx_port$route" signed "$nginx_pid" $(pgrep -P "$nginx_pid") >>"$results"
    measure tollgate "$rate" "$tollgate_url$route" bearer "$tollgate_pid" >>"$results"
  done
done
peak_rss="$(awk '/^VmHWM/ { print $2 }' "/proc/$tollgate_pid/status")"
if [ -n "$metering_pid" ]; then
  sleep 2 # let the consumer catch up before reading its CPU time
  echo "metering consumer (separate process): $(cpu_seconds "$metering_pid") CPU seconds over the run, RSS $(($(rss_kib "$metering_pid") / 1024)) MB" >&2
fi

python3 - "$results" "$limit_mode" "$events_label" "$peak_rss" "$connections" "$duration" "$layout" "$backend" "$profile" "$upstream_label" <<'PY'
import json, statistics, sys
path, mode, events, peak, connections, duration, layout, backend, profile, upstream = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]
rounds = sorted({row["round"] for row in rows})
steps = list(dict.fromkeys((row["target"], row["rate"]) for row in rows))
by = {(row["target"], row["rate"], row["round"]): row for row in rows}
print(f"Tollgate ({layout}, {profile} build; {mode} limits, {events}, {backend} backend) vs the fake Bedrock directly vs nginx;")
print(f"the fake behind a {upstream};")
print(f"oha, {connections} connections, {duration} s per step, latency-corrected at fixed rates;")
print(f"{len(rounds)} round(s); each figure is the median over the rounds, [low to high] where it varies.")
print()
median = statistics.median
# A median and, over several rounds, the range it came from.
def spread(values, digits=2, unit=""):
    text = f"{median(values):.{digits}f}{unit}"
    if len(values) > 1:
        text += f" [{min(values):.{digits}f} to {max(values):.{digits}f}]"
    return text
# CPU per call: the process's CPU time over the step divided by the calls it answered, the
# figure least moved by how much of the machine the load generator and the fake take.
def cpu_per_call(row):
    return row["cpu"] / 100 / row["rps"] * 1e6 if row["rps"] > 0 else 0.0
# Context switches per call (perf, when it can count them): how often the process's
# threads sleep and are woken per call, steadier than CPU time between runs.
def switches(values):
    known = [value for value in values if value is not None]
    return f"{median(known):.2f}" if known else "-"
# The hypervisor's steal in the step's worst round, in % of the machine.
def steal(values):
    known = [value for value in values if value is not None]
    return f"{max(known):.1f}" if known else "-"
print(f"{'target':<9} {'rate':>5} {'ok req/s':>9} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'errors':>6} {'cpu %':>6} {'cpu us/call':>11} {'cs/call':>7} {'rss MB':>7} {'steal %':>7}")
for target, rate in steps:
    runs = [by[(target, rate, number)] for number in rounds if (target, rate, number) in by]
    pick = lambda key: median(run[key] for run in runs)
    print(f"{target:<9} {rate:>5} {pick('rps'):>9.0f} {pick('p50'):>7.2f} {pick('p90'):>7.2f} {pick('p99'):>7.2f} "
          f"{sum(run['errors'] for run in runs):>6} {pick('cpu'):>6.0f} {median(cpu_per_call(run) for run in runs):>11.0f} "
          f"{switches([run.get('switches_per_call') for run in runs]):>7} {max(run['rss_mb'] for run in runs):>7.1f} "
          f"{steal([run.get('steal') for run in runs]):>7}")
print()
# Added latency: a proxy's percentile minus the fake's own, both from the same round.
def added(target, rate, key):
    return [by[(target, rate, number)][key] - by[("direct", rate, number)][key]
            for number in rounds
            if (target, rate, number) in by and ("direct", rate, number) in by]
print(f"{'rate':>5}  {'added p50 ms':<22} {'added p99 ms':<22} {'nginx added p50':<22} {'nginx added p99':<22}")
for rate in dict.fromkeys(rate for _, rate in steps):
    if rate == "max":
        continue
    columns = [added(target, rate, key) for target, key in
               (("tollgate", "p50"), ("tollgate", "p99"), ("nginx", "p50"), ("nginx", "p99"))]
    if all(columns):
        print(f"{rate:>5}  " + " ".join(f"{spread(column):<22}" for column in columns))
for row in rows:
    if row["not_ok"]:
        print(f"not 200: {row['target']} at {row['rate']} (round {row['round']}): {row['not_ok']}")
# Saturation: Tollgate's rate over nginx's, both from the same round.
pairs = [(by[("tollgate", "max", number)], by[("nginx", "max", number)]) for number in rounds
         if ("tollgate", "max", number) in by and ("nginx", "max", number) in by]
pairs = [(tollgate, nginx) for tollgate, nginx in pairs if nginx["rps"] > 0]
if pairs:
    print()
    ratios = [tollgate["rps"] / nginx["rps"] * 100 for tollgate, nginx in pairs]
    print(f"saturation: tollgate {median(t['rps'] for t, _ in pairs):.0f} req/s, nginx {median(n['rps'] for _, n in pairs):.0f} req/s; "
          f"tollgate is {spread(ratios, 0, '%')} of the floor (per round: {', '.join(f'{ratio:.0f}%' for ratio in ratios)})")
    print(f"CPU per call at saturation: tollgate {median(cpu_per_call(t) for t, _ in pairs):.0f} us, nginx {median(cpu_per_call(n) for _, n in pairs):.0f} us")
print(f"tollgate peak RSS: {int(peak) / 1024:.1f} MB")
PY
