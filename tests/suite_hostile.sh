#!/usr/bin/env bash
# suite_hostile.sh -- `rerank serve` against clients that try to take it down (issue 14), on
# loopback only, each attack replayed by tests/hostile.py with bounded loops and socket timeouts:
# 6,000 half-sent connections (then /health within 1 s, no CLOSE-WAIT growth); 4,100 idle
# connections from 127.0.0.1 while 127.0.0.2 is served; headers and a body trickled byte by byte
# (cut at their deadlines); an idle keep-alive connection closed; 400 slow 2 MB bodies (RSS under
# the --max-buffered-bytes cap plus the model); SIGTERM with stuck clients (exit 0); conflicting
# framing; Expect: 100-continue before the upload; lenient JSON; empty API keys and --api-key-file;
# one log line per request, none with --quiet; a decoder's and an mGTE model's weights file cut and
# emptied under the running server (clear 500s, never a SIGBUS). A sanitizer report in any server log fails the suite.
# Prints "N passed, N failed, N skipped"; SKIPs without the test model or /usr/bin/python3.
set -u
BUILD=${RR_BUILD:-build}
TESTDATA=${RR_TESTDATA:-$BUILD/testdata}
MODEL=${RR_SERVER_MODEL:-$TESTDATA/models/xlmr_f32}
BIN=$BUILD/rerank
ASAN=$(nm -an "$BIN" 2>/dev/null | grep -q __asan_init && echo 1 || true)
PY=/usr/bin/python3
HOSTILE="$(dirname "$0")/hostile.py"
. "$(dirname "$0")/lib.sh"
# attack NAME ARGS...: runs hostile.py, passes or fails on its verdict line
attack() {
    local name=$1 out; shift
    out=$(timeout 120 "$PY" "$HOSTILE" "$@" 2>&1)
    if [ $? -eq 0 ]; then ok "$name: ${out#held: }"; else bad "$name: $out"; fi
}

if [ ! -x "$BIN" ] || [ ! -f "$MODEL/config.json" ] || [ ! -f "$MODEL/tokenizer.json" ]; then
    skp "hostile suite: needs $BIN and the test model $MODEL with tokenizer.json"
    finish
fi
if [ ! -x "$PY" ] || ! command -v ss >/dev/null; then
    skp "hostile suite: needs /usr/bin/python3 and ss"
    finish
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

stop_server() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# ---------------------------------------------------------------- half-sent connections
if start_server half --quiet; then
    attack "6,000 half-sent connections" half_sent "$PORT" 6000
    # the lines after the start-up ones ("bound ... loading", "listening on")
    after=$(sed -n '/listening on/,$p' "$tmp/half.log" | tail -n +2)
    if [ -z "$after" ]; then ok "--quiet: no line for aborted connections"
    else bad "--quiet: $(wc -l <<<"$after") lines for aborted connections: $(head -n 1 <<<"$after")"; fi
    stop_server "$SPID"
else bad "server starts (half-sent)"; fi

# ---------------------------------------------------------------- slowloris
if start_server loris --quiet; then
    attack "slowloris from one address" slowloris "$PORT" 4100
    stop_server "$SPID"
else bad "server starts (slowloris)"; fi
if start_server trickle --header-timeout 2 --body-timeout 2 --idle-timeout 2; then
    attack "header deadline" trickle "$PORT" 2 header
    attack "body deadline" trickle "$PORT" 2 body
    attack "idle timeout" idle "$PORT" 2
    sleep 0.3
    m=$(curl -s "http://127.0.0.1:$PORT/metrics")
    if grep -q '^rerank_http_deadline_closed_total [2-9]' <<<"$m" && grep -q '"POST /v1/rerank" 408 ' "$tmp/trickle.log"; then
        ok "deadline closes counted in /metrics, the cut request logged as 408"
    else bad "deadline metrics/log: $(grep deadline_closed_total <<<"$m" | tail -n 1) / $(tail -n 1 "$tmp/trickle.log")"; fi
    stop_server "$SPID"
else bad "server starts with --header-timeout"; fi

# ---------------------------------------------------------------- slow 2 MB bodies
if start_server bodies --quiet --max-buffered-bytes 32000000 --body-timeout 20; then
    "$PY" "$HOSTILE" health "$PORT" >/dev/null # warm up: first request's allocations
    # (under ASan, freed buffers sit in its quarantine: the allowance grows by 64 MB)
    attack "400 slow 2 MB bodies" slow_bodies "$PORT" "$SPID" 32 "${ASAN:+64}"
    stop_server "$SPID"
else bad "server starts with --max-buffered-bytes"; fi

# ---------------------------------------------------------------- SIGTERM with stuck clients
if start_server term --drain-timeout 6; then
    "$PY" "$HOSTILE" stuck "$PORT" >"$tmp/stuck.out" 2>&1 &
    STUCK=$!
    pids+=("$STUCK")
    for _ in $(seq 1 50); do grep -q ready "$tmp/stuck.out" && break; sleep 0.1; done
    t0=$(date +%s.%N)
    kill -TERM "$SPID"
    rc=124
    for _ in $(seq 1 100); do
        if ! kill -0 "$SPID" 2>/dev/null; then wait "$SPID"; rc=$?; break; fi
        sleep 0.1
    done
    dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" -eq 0 ] && awk -v d="$dt" 'BEGIN { exit !(d < 4) }'; then ok "SIGTERM with 20 stuck clients: exit 0 after ${dt}s"
    else bad "SIGTERM with 20 stuck clients: exit $rc after ${dt}s (drain timeout 6s)"; fi
    kill "$STUCK" 2>/dev/null
    stop_server "$SPID"
else bad "server starts (SIGTERM)"; fi

# ---------------------------------------------------------------- framing, 100-continue, JSON, keys
KEY=hostile-key-$$
printf '%s\n' "$KEY" >"$tmp/key"
if RERANK_API_KEY=$KEY start_server keyed; then
    attack "conflicting framing" framing "$PORT"
    attack "Expect: 100-continue" expect "$PORT" "$KEY"
    stop_server "$SPID"
else bad "server starts with RERANK_API_KEY"; fi
if start_server keyfile --api-key-file "$tmp/key"; then
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/info")
    code2=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "http://127.0.0.1:$PORT/info")
    if [ "$code" = 200 ] && [ "$code2" = 401 ]; then ok "--api-key-file: the key from the file is required"
    else bad "--api-key-file: right key $code, wrong key $code2"; fi
    stop_server "$SPID"
else bad "server starts with --api-key-file"; fi
if start_server json; then
    attack "strict JSON" json "$PORT"
    # one access line per request: an aborted request logs its 499 once, and nothing else is logged
    before=$(wc -l <"$tmp/json.log")
    "$PY" "$HOSTILE" abort_one "$PORT" >/dev/null
    sleep 0.3
    new=$(tail -n +$((before + 1)) "$tmp/json.log")
    if [ "$(printf '%s\n' "$new" | grep -c .)" -eq 1 ] && grep -q '" 499 ' <<<"$new"; then ok "one log line for an aborted request"
    else bad "log lines for one aborted request: $(printf '%s' "$new" | tr '\n' '|')"; fi
    stop_server "$SPID"
else bad "server starts (JSON)"; fi

# ---------------------------------------------------------------- weights truncated under the server
# A decoder and a newer encoder family (their tables used to be read through the file mapping): the
# file cut right after the word embeddings (mGTE's token-type table lies beyond: a SIGBUS before),
# then emptied in place (the decoder scored it without an error before), then rewritten: answers are
# unchanged or a 500 naming the truncated file, /health stays 200, the restored file scores as before.
word_end() { # the end offset of the word embedding table in safetensors file $1
    "$PY" - "$1" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
print(max(8 + n + v["data_offsets"][1] for k, v in h.items()
          if k != "__metadata__" and any(w in k for w in ("word_embeddings", "embed_tokens", "tok_embeddings"))))
PY
}
BODY='{"query":"what is a panda?","documents":["The giant panda is a bear.","Paris is in France."]}'
rerank_call() { curl -s -m 20 -o "$1" -w '%{http_code}' -H 'Content-Type: application/json' -d "$BODY" "http://127.0.0.1:$PORT/v1/rerank"; }
for fam in dec_qwen3_f32 mgte_f32; do
    src=$TESTDATA/models/$fam
    if [ ! -f "$src/model.safetensors" ] || [ ! -f "$src/tokenizer.json" ]; then skp "weights truncated under the server ($fam): no test model"; continue; fi
    mkdir -p "$tmp/$fam" && find "$src" -maxdepth 1 -type f -exec cp {} "$tmp/$fam/" \;
    w=$tmp/$fam/model.safetensors
    if MODEL=$tmp/$fam start_server "trunc-$fam" --quiet; then
        c1=$(rerank_call "$tmp/$fam.r1")
        truncate -s "$(word_end "$w")" "$w"
        c2=$(rerank_call "$tmp/$fam.r2")
        : >"$w" # emptied in place: same inode, as a failed copy over it leaves it
        c3=$(rerank_call "$tmp/$fam.r3")
        h=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")
        cp "$src/model.safetensors" "$w" # rewritten in place
        c4=$(rerank_call "$tmp/$fam.r4")
        scores() { grep -o '"relevance_score":[^,}]*' "$1" | tr '\n' ' '; }
        why=""
        [ "$c1" = 200 ] || why="first call $c1"
        if [ "$c2" = 500 ]; then grep -q truncated "$tmp/$fam.r2" || why="$why; cut file: 500 without the cause"
        elif [ "$c2" != 200 ] || [ "$(scores "$tmp/$fam.r2")" != "$(scores "$tmp/$fam.r1")" ]; then why="$why; cut file: $c2 $(head -c 120 "$tmp/$fam.r2")"; fi
        { [ "$c3" = 500 ] && grep -q truncated "$tmp/$fam.r3"; } || why="$why; emptied file: $c3 $(head -c 120 "$tmp/$fam.r3")"
        [ "$h" = 200 ] || why="$why; /health $h"
        { [ "$c4" = 200 ] && [ "$(scores "$tmp/$fam.r4")" = "$(scores "$tmp/$fam.r1")" ]; } || why="$why; restored file: $c4"
        kill -0 "$SPID" 2>/dev/null || why="$why; the server died ($(tail -n 1 "$tmp/trunc-$fam.log"))"
        if [ -z "$why" ]; then ok "weights truncated under the server ($fam): errors name the file, server healthy, restored file scores as before"
        else bad "weights truncated under the server ($fam):${why#;}"; fi
        stop_server "$SPID"
    else bad "server starts ($fam)"; fi
done

# (timeout: a binary that accepts the empty key would serve forever)
if timeout 5 "$BIN" serve -m "$MODEL" --port 0 --api-key "" 2>"$tmp/empty.log"; then bad "--api-key \"\" refused"
elif grep -q 'empty' "$tmp/empty.log"; then ok "--api-key \"\" refused"
else bad "--api-key \"\": $(head -n 1 "$tmp/empty.log")"; fi
if RERANK_API_KEY= timeout 5 "$BIN" serve -m "$MODEL" --port 0 2>"$tmp/empty2.log"; then bad "empty RERANK_API_KEY refused"
elif grep -q 'empty' "$tmp/empty2.log"; then ok "empty RERANK_API_KEY refused"
else bad "empty RERANK_API_KEY: $(head -n 1 "$tmp/empty2.log")"; fi
: >"$tmp/nokey"
if timeout 5 "$BIN" serve -m "$MODEL" --port 0 --api-key-file "$tmp/nokey" 2>/dev/null; then bad "--api-key-file with no key refused"
else ok "--api-key-file with no key refused"; fi

if cat "$tmp"/*.log 2>/dev/null | grep -q 'AddressSanitizer\|LeakSanitizer\|runtime error'; then
    bad "sanitizer report in a server log: $(cat "$tmp"/*.log | grep -m 1 'AddressSanitizer\|LeakSanitizer\|runtime error')"
fi
finish
