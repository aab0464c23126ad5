#!/usr/bin/env bash
# suite_server.sh -- black-box tests of `rerank serve` on the small random-weight XLM-R test model
# (with its real tokenizer): real npm clients (cohere-ai v1/v2, llamaindex JinaAIReranker,
# @langchain/cohere) and raw HTTP for the TEI shape and every bad input (tests/server_clients.mjs),
# consistency with `rerank rank` where that command exists, a short 64-client load test, and SIGTERM
# during load (every request sent before the signal is answered, exit status 0).
# Prints "N passed, N failed, N skipped"; SKIPs when the model, node or the npm clients are missing.
set -u
BUILD=${RR_BUILD:-build}
TESTDATA=${RR_TESTDATA:-$BUILD/testdata}
MODEL=${RR_SERVER_MODEL:-$TESTDATA/models/xlmr_f32}
BIN=$BUILD/rerank
# a sanitizer build (ASan quarantine, TSan shadow memory) keeps freed memory: the flat-RSS check is skipped there
ASAN=$(nm -an "$BIN" 2>/dev/null | grep -qE "__asan_init|__tsan_init" && echo 1 || true)
LOAD_SECONDS=${RR_SERVER_LOAD_SECONDS:-12}
. "$(dirname "$0")/lib.sh"

if [ ! -x "$BIN" ] || [ ! -f "$MODEL/config.json" ] || [ ! -f "$MODEL/tokenizer.json" ]; then
    skp "server suite: needs $BIN and the test model $MODEL (tools/gen_models.py) with tokenizer.json"
    finish
fi
if ! command -v node >/dev/null || ! command -v curl >/dev/null; then
    skp "server suite: needs node and curl"
    finish
fi


# ---------------------------------------------------------------- CLI
if "$BIN" serve --help | grep -q -- "--api-key"; then ok "serve --help"; else bad "serve --help"; fi
if "$BIN" serve -m "$MODEL" --port 70000 2>/dev/null; then bad "bad --port refused"; else ok "bad --port refused"; fi
if "$BIN" serve 2>/dev/null; then bad "missing -m refused"; else ok "missing -m refused"; fi

# ---------------------------------------------------------------- servers
if ! start_server main --precision fp32 --max-docs 1000 --max-request-bytes 1000000 --http-threads 4; then bad "server starts"; finish; fi
MAIN_PORT=$PORT MAIN_PID=$SPID
KEY=test-key-$$
if ! start_server auth --api-key "$KEY" --queue-depth 2 --max-batch-tokens 512 --quiet; then bad "auth server starts"; finish; fi
AUTH_PORT=$PORT
ok "servers start on free ports ($MAIN_PORT, $AUTH_PORT)"
BASE=http://127.0.0.1:$MAIN_PORT

# raw curl smoke test (and the README example)
out=$(curl -s -X POST "$BASE/v1/rerank" -H 'Content-Type: application/json' \
    -d '{"query":"capital of France","documents":["Paris is the capital of France.","Bananas are yellow."],"top_n":1}')
if grep -q '"results":\[{"index":' <<<"$out" && grep -q '"usage"' <<<"$out"; then ok "curl /v1/rerank"; else bad "curl /v1/rerank: $out"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/v1/rerank" --data-binary $'{"query":"q","documents":["\xff"]}')
[ "$code" = 400 ] && ok "curl invalid UTF-8 -> 400" || bad "curl invalid UTF-8 -> $code"

# ---------------------------------------------------------------- npm clients and bad inputs
if [ -d tests/node_modules/cohere-ai ]; then
    (cd tests && node server_clients.mjs "$BASE" "http://127.0.0.1:$AUTH_PORT" "$KEY") >"$tmp/clients.out" 2>&1
    rc=$?
    cat "$tmp/clients.out"
    np=$(grep -c '^ok - ' "$tmp/clients.out"); nf=$(grep -c '^not ok - ' "$tmp/clients.out"); ns=$(grep -c '^skip - ' "$tmp/clients.out")
    pass=$((pass + np)) fail=$((fail + nf)) skipped=$((skipped + ns))
    if [ "$rc" -ne 0 ] && [ "$nf" -eq 0 ]; then bad "server_clients.mjs exited $rc"; fi
else
    skp "npm clients: tests/node_modules missing (scripts/install-deps.sh installs them)"
fi

# ---------------------------------------------------------------- consistency with `rerank rank`
if "$BIN" rank --help >/dev/null 2>&1; then
    long=$(printf 'sentence %d about Paris, rivers and bananas. ' $(seq 1 400))
    printf '"%s"\n' "Paris is the capital of France." "Bananas are yellow." "$long" "Die Hauptstadt Frankreichs ist Paris." "" >"$tmp/docs.jsonl"
    if "$BIN" rank -m "$MODEL" --precision fp32 -q "capital of France" --documents "$tmp/docs.jsonl" >"$tmp/rank.out" 2>"$tmp/rank.err"; then
        node -e '
            const fs = require("fs");
            const docs = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
            fs.writeFileSync(process.argv[2], JSON.stringify({ query: "capital of France", documents: docs }));
        ' "$tmp/docs.jsonl" "$tmp/req.json"
        curl -s -X POST "$BASE/v1/rerank" --data-binary @"$tmp/req.json" >"$tmp/srv.json"
        if node -e '
            const fs = require("fs");
            const a = JSON.parse(fs.readFileSync(process.argv[1], "utf8")), b = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
            if (a.results.length !== b.results.length || a.usage.total_tokens !== b.usage.total_tokens) process.exit(1);
            for (let i = 0; i < a.results.length; i++)
                if (a.results[i].index !== b.results[i].index || Math.abs(a.results[i].relevance_score - b.results[i].relevance_score) > 1e-6) process.exit(1);
        ' "$tmp/rank.out" "$tmp/srv.json"; then ok "scores and usage equal rerank rank (long document windowed)"; else bad "server differs from rerank rank: $(head -c 300 "$tmp/srv.json") vs $(head -c 300 "$tmp/rank.out")"; fi
    else
        bad "rerank rank failed: $(head -c 200 "$tmp/rank.err")"
    fi

    # long-document fields: TEI truncate/truncation_direction and Cohere v2 max_tokens_per_doc give
    # what `rerank rank --truncate [right|left]` / `--max-doc-tokens N` give (same scores, same order)
    same_as_rank() { # SERVER_JSON RANK_JSON [check usage]
        node -e '
            const fs = require("fs");
            const s = JSON.parse(fs.readFileSync(process.argv[1], "utf8")), a = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
            const got = Array.isArray(s) ? s.map((x) => [x.index, x.score]) : s.results.map((x) => [x.index, x.relevance_score]);
            if (got.length !== a.results.length) process.exit(1);
            for (let i = 0; i < got.length; i++)
                if (got[i][0] !== a.results[i].index || Math.abs(got[i][1] - a.results[i].relevance_score) > 1e-6) process.exit(1);
            if (process.argv[3] && s.usage.total_tokens !== a.usage.total_tokens) process.exit(1);
        ' "$1" "$2" "${3:-}"
    }
    with_fields() { # PATH_KEY FIELDS -> request body on stdout (documents from docs.jsonl)
        node -e '
            const fs = require("fs");
            const docs = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
            const body = { query: "capital of France", [process.argv[2]]: docs, ...JSON.parse(process.argv[3]) };
            process.stdout.write(JSON.stringify(body));
        ' "$tmp/docs.jsonl" "$1" "$2"
    }
    for c in "texts|/rerank|{\"truncate\":true}|--truncate|" \
             "texts|/rerank|{\"truncate\":true,\"truncation_direction\":\"Left\"}|--truncate left|" \
             "texts|/rerank|{\"truncate\":true,\"truncation_direction\":\"right\"}|--truncate right|" \
             "texts|/rerank|{\"truncate\":false}||" \
             "documents|/v2/rerank|{\"max_tokens_per_doc\":60}|--max-doc-tokens 60|usage" \
             "documents|/v2/rerank|{}|--max-doc-tokens 4096|usage"; do
        IFS='|' read -r key path fields flags usage <<<"$c"
        # shellcheck disable=SC2086
        if "$BIN" rank -m "$MODEL" --precision fp32 -q "capital of France" --documents "$tmp/docs.jsonl" $flags \
            >"$tmp/rank_t.out" 2>"$tmp/rank_t.err"; then
            with_fields "$key" "$fields" >"$tmp/req_t.json"
            curl -s -X POST "$BASE$path" --data-binary @"$tmp/req_t.json" >"$tmp/srv_t.json"
            if same_as_rank "$tmp/srv_t.json" "$tmp/rank_t.out" "$usage"; then
                ok "$path $fields equals rerank rank ${flags:-(windows)}"
            else
                bad "$path $fields differs from rerank rank $flags: $(head -c 300 "$tmp/srv_t.json") vs $(head -c 300 "$tmp/rank_t.out")"
            fi
        else
            bad "rerank rank $flags failed: $(head -c 200 "$tmp/rank_t.err")"
        fi
    done
    # the long document (index 2) keeps different text from the right and from the left
    for d in right left; do
        "$BIN" rank -m "$MODEL" -q "capital of France" --documents "$tmp/docs.jsonl" --truncate "$d" --raw \
            --no-documents >"$tmp/rank_$d.out" 2>/dev/null
    done
    if node -e '
        const fs = require("fs");
        const s = (f) => JSON.parse(fs.readFileSync(f, "utf8")).results.find((x) => x.index === 2).relevance_score;
        if (!(s(process.argv[1]) !== s(process.argv[2]))) process.exit(1);
    ' "$tmp/rank_right.out" "$tmp/rank_left.out"; then ok "rank --truncate right and left differ on the long document"; else bad "truncate right == left"; fi
    if "$BIN" rank -m "$MODEL" -q q --documents "$tmp/docs.jsonl" --max-doc-tokens 0 >/dev/null 2>&1 ||
        "$BIN" rank -m "$MODEL" -q q --documents "$tmp/docs.jsonl" --max-doc-tokens x >/dev/null 2>&1; then
        bad "rank --max-doc-tokens 0 / x refused"
    else
        ok "rank --max-doc-tokens 0 / x refused"
    fi
    if "$BIN" rank -m "$MODEL" -q q --documents "$tmp/docs.jsonl" --max-windows 0 >/dev/null 2>&1 ||
        "$BIN" rank -m "$MODEL" -q q --documents "$tmp/docs.jsonl" --max-windows x >/dev/null 2>&1 ||
        ! "$BIN" rank -m "$MODEL" -q q --documents "$tmp/docs.jsonl" --max-windows 2 >/dev/null 2>&1; then
        bad "rank --max-windows 0 / x refused, 2 accepted"
    else
        ok "rank --max-windows 0 / x refused, 2 accepted"
    fi
else
    skp "consistency with rerank rank: no rank command in this build"
fi

# ---------------------------------------------------------------- access log
if grep -q '"POST /v1/rerank" 200 .* docs=' "$tmp/main.log" && grep -q '"POST /v1/rerank" 422 ' "$tmp/main.log"; then
    ok "access log line per request"
else
    bad "access log"
fi

# ---------------------------------------------------------------- short load test, then SIGTERM during load
if start_server load --quiet; then
    LOAD_PID=$SPID
    node bench/load_server.mjs --url "http://127.0.0.1:$PORT" --clients 64 --duration "$LOAD_SECONDS" --docs 8 \
        --doc-words 40 --pid "$LOAD_PID" --warmup 2 >"$tmp/load.out" 2>&1
    cat "$tmp/load.out"
    if node -e '
        const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop());
        const bad = Object.keys(j.codes).filter((c) => c !== "200" && c !== "429");
        if (j.errors || bad.length) { console.error("errors", j.first_errors, bad); process.exit(1); }
        if (!(j.ok_after_warmup > 0)) { console.error("nothing answered"); process.exit(1); }
        // flat RSS: growth after warm-up stays small (not under ASan, whose quarantine keeps freed memory)
        if (!process.argv[2] && j.rss_end_mb > j.rss_after_warmup_mb * 1.25 + 16) { console.error("RSS grew", j.rss_after_warmup_mb, j.rss_end_mb); process.exit(1); }
    ' "$tmp/load.out" "$ASAN"; then ok "load: 64 clients, ${LOAD_SECONDS}s, no errors, flat RSS"; else bad "load test"; fi

    node bench/load_server.mjs --url "http://127.0.0.1:$PORT" --clients 64 --duration 30 --docs 8 --doc-words 40 \
        --pid "$LOAD_PID" --sigterm-at 3 --warmup 0 >"$tmp/term.out" 2>&1
    cat "$tmp/term.out"
    wait "$LOAD_PID"
    rc=$?
    if [ "$rc" -eq 0 ]; then ok "SIGTERM during load: exit status 0"; else bad "SIGTERM during load: exit status $rc"; fi
    if node -e '
        const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop());
        if (!j.sigterm || j.inflight_at_sigterm < 1) { console.error("nothing in flight at SIGTERM"); process.exit(1); }
        if (j.lost_in_drain || j.errors || j.answered_after_sigterm !== j.inflight_at_sigterm) { console.error(j); process.exit(1); }
    ' "$tmp/term.out"; then ok "SIGTERM during load: every request in flight answered"; else bad "SIGTERM drain"; fi
    grep -q "stopped" "$tmp/load.log" && ok "server logs a clean stop" || bad "no clean stop in log"
else
    bad "load server starts"
fi

finish
