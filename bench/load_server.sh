#!/usr/bin/env bash
# load_server.sh -- server throughput under 64 concurrent clients versus the engine alone, on the same
# kind of documents. Prints both in documents/s, their ratio, p50/p99 latency and RSS.
#
#   bench/load_server.sh MODEL [SECONDS=120] [CLIENTS=64] [DOCS_PER_REQUEST=20] [WORDS_PER_DOC=60]
#
# Engine alone: `rerank rank` over 100 x DOCS_PER_REQUEST documents for one query (one process; the
# model load is timed separately and subtracted). Server: `rerank serve` + bench/load_server.mjs.
# Extra flags: $SERVE_FLAGS for serve, $RANK_FLAGS for rank (e.g. "--precision auto" in both).
set -eu
MODEL=${1:?usage: bench/load_server.sh MODEL [SECONDS] [CLIENTS] [DOCS_PER_REQUEST] [WORDS_PER_DOC]}
SECONDS_=${2:-120} CLIENTS=${3:-64} DOCS=${4:-20} WORDS=${5:-60}
BIN=${RR_BUILD:-build}/rerank
tmp=$(mktemp -d)
trap 'kill $SPID 2>/dev/null; rm -rf "$tmp"' EXIT
SPID=

n=$((DOCS * 100))
node bench/load_server.mjs --write-docs "$tmp/docs.jsonl" --count "$n" --doc-words "$WORDS"
head -n 1 "$tmp/docs.jsonl" >"$tmp/one.jsonl"
t0=$(date +%s.%N)
"$BIN" rank -m "$MODEL" -q "how do I reset the password of account 1" --documents "$tmp/one.jsonl" --no-documents ${RANK_FLAGS:-} >/dev/null
t1=$(date +%s.%N)
"$BIN" rank -m "$MODEL" -q "how do I reset the password of account 1" --documents "$tmp/docs.jsonl" --no-documents ${RANK_FLAGS:-} >/dev/null
t2=$(date +%s.%N)
engine=$(awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { print n / ((c - b) - (b - a)) }')
printf 'engine alone (rerank rank, %d documents): %.1f docs/s\n' "$n" "$engine"

"$BIN" serve -m "$MODEL" --port 0 --quiet ${SERVE_FLAGS:-} 2>"$tmp/serve.log" &
SPID=$!
for _ in $(seq 1 200); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/serve.log" | head -n 1)
    [ -n "$PORT" ] && break
    sleep 0.05
done
node bench/load_server.mjs --url "http://127.0.0.1:$PORT" --clients "$CLIENTS" --duration "$SECONDS_" --docs "$DOCS" \
    --doc-words "$WORDS" --pid "$SPID" --warmup 5 | tee "$tmp/load.out"
server=$(tail -n 1 "$tmp/load.out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).docs_per_s))')
printf 'server / engine alone: %.1f / %.1f docs/s = %.0f%%\n' "$server" "$engine" "$(awk -v s="$server" -v e="$engine" 'BEGIN { print 100 * s / e }')"
