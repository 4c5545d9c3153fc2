#!/usr/bin/env bash
# Work per request and fairness under load, over HTTP against a release build: how long another
# tenant's small (1 KB) and medium (40 KB) /compress requests take alone and while one tenant
# runs 8 concurrent 2.5 MB compressions; what /validate of 300,000-word texts costs; what a
# 4 KB query adds to a 2.5 MB context; what a free key sending 10 MB bodies (each refused, 402)
# on 16 connections for 10 s costs the server and another tenant. Prints the figures the README
# quotes.
#
#   scripts/fairness.sh [--large 8] [--validate-words 300000]
#                       (BIN=path/to/omnimemory to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."

large=8 validate_words=300000
while [ $# -gt 0 ]; do
    case "$1" in
        --large) large=$2; shift 2 ;;
        --validate-words) validate_words=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

if [ -z "${BIN:-}" ]; then cargo build --release --quiet; BIN=target/release/omnimemory; fi
work=$(mktemp -d)
export OMNIMEMORY_HOME=$work/data RUST_LOG=warn
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

new_key() {
    $BIN admin create-key --user-id "$1" --tier enterprise --json | sed -n 's/.*"api_key": "\(.*\)".*/\1/p'
}
big_key=$(new_key big-tenant)
small_key=$(new_key other-tenant)
free_key=$($BIN admin create-key --user-id free-flood --tier free --json | sed -n 's/.*"api_key": "\(.*\)".*/\1/p')
port=18111
$BIN serve --port $port & pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

python3 - "$work" "$validate_words" <<'EOF'
import json, random, sys
work, validate_words = sys.argv[1], int(sys.argv[2])
random.seed(1)
vocab = [''.join(random.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(random.randint(3, 9))) for _ in range(20000)]
def prose(n):
    out, size = [], 0
    while size < n:
        s = ' '.join(random.choice(vocab) for _ in range(random.randint(8, 20))).capitalize() + '.'
        out.append(s); size += len(s) + 1
    return ' '.join(out)
def dump(name, body):
    json.dump(body, open(f'{work}/{name}.json', 'w'))
context = prose(2_500_000)
dump('ten', {'context': (context * 4)[:10_000_000]})
dump('fifty', {'context': context[:50_000]})
dump('large', {'context': context, 'query': 'which words come first', 'target_compression': 0.9})
dump('medium', {'context': prose(40 * 1024), 'query': 'which words come first'})
dump('small', {'context': prose(1024), 'query': 'which words come first'})
distinct, seen = [], set()
for w in context.lower().replace('.', '').split():
    if w not in seen and len(' '.join(distinct + [w])) <= 4096:
        seen.add(w); distinct.append(w)
dump('large_noquery', {'context': context, 'target_compression': 0.9})
dump('large_query4k', {'context': context, 'query': ' '.join(distinct), 'target_compression': 0.9})
dump('large_querycontext', {'context': context, 'query': context, 'target_compression': 0.9})
words = [f'w{i}' for i in range(validate_words)]
original = ' '.join(words)
dump('validate_same', {'original': original, 'compressed': original})
dump('validate_half', {'original': original, 'compressed': ' '.join(words[::2])})
dump('validate_reversed', {'original': original, 'compressed': ' '.join(reversed(words))})
EOF

# post NAME KEY PATH: prints "status seconds"
post() {
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $2" \
        -H 'Content-Type: application/json' --data-binary "@$work/$1.json" "http://127.0.0.1:$port$3"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max() { sort -n | tail -1; }
series() { for _ in $(seq 1 "$3"); do post "$1" "$2" /compress | cut -d' ' -f2; done; }

echo "== another tenant's requests, alone (median of 5, seconds)"
post small "$small_key" /compress >/dev/null
for size in small medium; do echo "$size: $(series $size "$small_key" 5 | median)"; done

echo "== the same while one tenant runs $large concurrent 2.5 MB compressions"
for i in $(seq 1 "$large"); do post large "$big_key" /compress > "$work/result.large.$i" & done
sleep 1
for size in small medium; do
    times=$(series $size "$small_key" 5)
    echo "$size: median $(echo "$times" | median), max $(echo "$times" | max)"
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
echo "2.5 MB compressions: $(cat "$work"/result.large.* | cut -d' ' -f1 | sort | uniq -c | tr -s ' ' | tr '\n' ' ')status; slowest $(cat "$work"/result.large.* | cut -d' ' -f2 | max) s"

echo "== a query on a 2.5 MB context (status seconds)"
for name in large_noquery large_query4k large_querycontext; do echo "$name: $(post $name "$big_key" /compress)"; done

echo "== /validate of $validate_words distinct words (status seconds; the server's peak memory after)"
for name in validate_same validate_half validate_reversed; do echo "$name: $(post $name "$big_key" /validate)"; done
echo "peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2 / 1024 " MB"}')"

echo "== a free key sends 10 MB bodies on 16 connections for 10 s; another tenant's 50 KB meanwhile"
echo "alone: $(series fifty "$small_key" 5 | median) s (median of 5)"
cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
end=$((SECONDS + 10))
for c in $(seq 1 16); do
    ( while [ $SECONDS -lt $end ]; do post ten "$free_key" /compress | cut -d' ' -f1; done > "$work/flood.$c" ) &
done
sleep 3
times=$(series fifty "$small_key" 5)
echo "during: median $(echo "$times" | median), max $(echo "$times" | max) s"
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
echo "answers: $(cat "$work"/flood.* | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
echo "server CPU during the flood: $(awk -v c0="$cpu0" '{print ($14 + $15 - c0) / 100}' /proc/$pid/stat) s"
