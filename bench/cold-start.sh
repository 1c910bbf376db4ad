#!/usr/bin/env bash
# Cold start: from starting the standalone proxy (`tollgate-proxy`, embedded store) to its
# first answered call, through to the fake Bedrock. Repeated RUNS times (default 20); prints
# the median and the worst. Everything stays on 127.0.0.1. See BENCHMARKS.md.
#
#   bench/cold-start.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="${2:?}"; shift 2 ;;
    *) echo "cold-start.sh: unknown argument $1" >&2; sed -n '2,6p' "$0" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[0-9]+$ ]] && [ "$runs" -ge 1 ] && [ "$runs" -le 200 ] ||
  { echo "cold-start.sh: --runs must be 1 to 200" >&2; exit 2; }

echo "== building (release)" >&2
cargo build --quiet --release -p tollgate -p tests --bin tollgate --bin tollgate-proxy --bin fake-bedrock >&2
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export RUST_LOG="${RUST_LOG:-error}"

python3 - "$runs" <<'PY'
import json, os, statistics, subprocess, sys, tempfile, time, urllib.request

runs = int(sys.argv[1])
release = os.path.join(os.getcwd(), "target", "release")

def listening(process):
    for line in process.stdout:
        if line.startswith("listening on "):
            return line.split()[2]
    raise SystemExit(f"{process.args[0]} stopped before listening")

with tempfile.TemporaryDirectory() as work:
    fake = subprocess.Popen([f"{release}/fake-bedrock"], stdout=subprocess.PIPE, text=True)
    fake_url = listening(fake)
    data = os.path.join(work, "data")
    created = json.loads(subprocess.run(
        [f"{release}/tollgate", "--data-dir", data, "--json", "create", "--name", "Cold Co",
         "--email", "cold@example.com", "--daily-limit", "1000000"],
        check=True, capture_output=True, text=True).stdout)
    body = json.dumps({"modelId": "anthropic.claude-3-haiku-20240307-v1:0",
                       "anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
                       "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}).encode()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        proxy = subprocess.Popen(
            [f"{release}/tollgate-proxy", "--db", os.path.join(data, "tollgate.db"),
             "--data-dir", data, "--listen", "127.0.0.1:0", "--upstream", "bedrock",
             "--bedrock-endpoint-url", fake_url],
            stdout=subprocess.PIPE, text=True)
        url = listening(proxy)
        request = urllib.request.Request(f"{url}/prod/bedrock", data=body, method="POST", headers={
            "Authorization": f"Bearer {created['token']}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 200
            answer.read()
        timings.append((time.perf_counter() - started) * 1000)
        proxy.terminate()
        proxy.wait()
    fake.terminate()
    fake.wait()
    print(f"tollgate-proxy, embedded store: start to first answered call over {runs} runs")
    print(f"median {statistics.median(timings):.1f} ms, best {min(timings):.1f} ms, worst {max(timings):.1f} ms")
PY
