#!/usr/bin/env bash
# Load benchmark: authenticated POST /compress with a small payload over loopback, usage
# tracking on, measured with wrk. Prints requests/s and the latency distribution (p50, p99).
#
#   [BIN=path/to/omnimemory] scripts/load.sh [--duration 10] [--connections 64] [--instances N]
#                                            [--payload small|100]
#
# `small` (the default) is a two-sentence context of 19 tokens; `100` a five-sentence one of
# about 100 tokens (cl100k), the "small request" of issue 11.
#
# With OMNIMEMORY_DATABASE_URL / OMNIMEMORY_REDIS_URL set, the instances share PostgreSQL and
# Redis; otherwise one instance runs on SQLite in a temporary data folder.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10 connections=64 instances=1 payload=small
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --instances) instances=$2; shift 2 ;;
        --payload) payload=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# BIN=path/to/omnimemory measures that build instead (to compare builds on the same machine).
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; BIN=${CARGO_TARGET_DIR:-target}/release/omnimemory; fi
bin=$BIN
home=$(mktemp -d)
export OMNIMEMORY_HOME=$home RUST_LOG=warn
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$home"; }
trap cleanup EXIT

key=$($bin admin create-key --user-id load --tier enterprise --monthly-tokens 1000000000000 \
      --requests-per-second 1000000 --burst 1000000 --json | sed -n 's/.*"api_key": "\(.*\)".*/\1/p')
ports=()
for i in $(seq 1 "$instances"); do
    port=$((18000 + i))
    $bin serve --port "$port" & pids+=($!)
    ports+=("$port")
done
for port in "${ports[@]}"; do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done

case "$payload" in
    small) context="OmniMemory keeps what the model needs. The rest is noise that costs tokens and accuracy." ;;
    100) context="The launch moved to March 3 after the vendor missed two deadlines and the test plan changed twice. Budget stays at 2 million dollars for the year, with a review in the autumn. The team grows by four engineers in the spring, two of them for the data platform. Customers asked for exports in CSV and for a status page they can follow. The old dashboard will be retired in June once the new one covers billing. Support hours move to eight to six on weekdays from the first of May." ;;
    *) echo "unknown payload $payload (small or 100)" >&2; exit 2 ;;
esac
script=$(mktemp --suffix .lua)
cat > "$script" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
wrk.body = '{"context": "$context", "target_compression": 0.5, "model_id": "gpt-4"}'
LUA
echo "== $instances instance(s), $connections connections per instance, ${duration}s, payload $payload, $(nproc) cores shared with wrk"
outs=() loaders=()
for port in "${ports[@]}"; do
    out=$(mktemp); outs+=("$out")
    wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$script" "http://127.0.0.1:$port/compress" > "$out" &
    loaders+=($!)
done
wait "${loaders[@]}"
total=0
for out in "${outs[@]}"; do
    grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors" "$out" | sed 's/^/  /'
    rps=$(awk '/Requests\/sec/ {print $2}' "$out"); total=$(awk -v a="$total" -v b="$rps" 'BEGIN {print a + b}')
done
echo "total: $total requests/s"
records=$($bin admin usage-stats "$key" --days 1 --json | sed -n 's/.*"total_compressions": \([0-9]*\).*/\1/p')
echo "usage records written: $records"
rm -f "$script" "${outs[@]}"
