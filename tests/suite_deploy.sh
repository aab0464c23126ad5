#!/usr/bin/env bash
# suite_deploy.sh -- what running `rerank serve` in production needs, black-box on the small XLM-R
# test model: the serve flags (--served-model-name and its alias --model-name, --log-format json),
# one JSON access-log object per request with its X-Request-Id, /openapi.json validated as an
# OpenAPI document and against real answers of every route (tests/deploy_check.mjs, validators from
# npm), /docs in Debian's headless Chromium (screenshot + a query typed into the page, ranking read
# back and compared with `rerank rank`), and the offline checks of the deployment files: deploy/k8s
# (kubectl client-side dry run where it works without a cluster, and a cross-check of every probe
# path, port, flag and environment variable against `rerank serve --help` and the server's routes),
# deploy/rerank.service (systemd-analyze verify), the Dockerfile (hadolint-free static checks; a
# build only where a builder and a base image are available offline).
# Prints "N passed, N failed, N skipped"; SKIPs what needs a missing tool.
set -u
BUILD=${RR_BUILD:-build}
TESTDATA=${RR_TESTDATA:-$BUILD/testdata}
MODEL=${RR_SERVER_MODEL:-$TESTDATA/models/xlmr_f32}
BIN=$BUILD/rerank
PY=/usr/bin/python3
SHOT=${RR_DOCS_SCREENSHOT:-$BUILD/docs_page.png}
pass=0 fail=0 skipped=0
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }
skp() { echo "skip - $1"; skipped=$((skipped + 1)); }
finish() { echo "$pass passed, $fail failed, $skipped skipped"; [ "$fail" -eq 0 ]; exit $?; }
# tally FILE: adds the ok / not ok lines a helper printed
tally() {
    local np nf
    np=$(grep -c '^ok - ' "$1"); nf=$(grep -c '^not ok - ' "$1")
    pass=$((pass + np)) fail=$((fail + nf))
}

# start_server NAME ARGS...: `rerank serve --port 0`, sets PORT and SPID once the model is loaded
start_server() {
    local name=$1; shift
    "$BIN" serve -m "$MODEL" --port 0 "$@" 2>"$tmp/$name.log" &
    SPID=$!
    pids+=("$SPID")
    PORT=""
    for _ in $(seq 1 200); do
        PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.log" | head -n 1)
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.05
    done
    echo "server $name did not start:"; cat "$tmp/$name.log"
    return 1
}

have_model=1
if [ ! -x "$BIN" ] || [ ! -f "$MODEL/config.json" ] || [ ! -f "$MODEL/tokenizer.json" ]; then
    have_model=0
    skp "server checks: need $BIN and the test model $MODEL with tokenizer.json"
fi

if [ "$have_model" = 1 ]; then
    # ------------------------------------------------------------ flags
    help=$("$BIN" serve --help)
    for f in --served-model-name --model-name --log-format; do
        grep -q -- "$f" <<<"$help" && ok "serve --help lists $f" || bad "serve --help lists $f"
    done
    if "$BIN" serve -m "$MODEL" --log-format xml 2>/dev/null; then bad "--log-format xml refused"; else ok "--log-format xml refused"; fi

    # ------------------------------------------------------------ JSON access log, served model name
    if start_server json --log-format json --served-model-name pool-model; then
        BASE=http://127.0.0.1:$PORT
        out=$(curl -s -H 'X-Request-Id: suite-deploy-1' "$BASE/v1/rerank" -d '{"query":"capital of France","documents":["Paris.","Bananas."]}')
        grep -q '"model":"pool-model"' <<<"$out" && ok "--served-model-name in answers" || bad "--served-model-name in answers: $out"
        curl -s "$BASE/health" >/dev/null
        curl -s "$BASE/v1/rerank" -d '{"query":1}' >/dev/null
        sleep 0.2
        # the line before "listening on" is the /ready-less start; every other line must be JSON
        if "$PY" - "$tmp/json.log" <<'PYEOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
objs = [json.loads(l) for l in lines]
need = {"time", "method", "route", "path", "status", "total_ms", "request_id", "client"}
for o in objs:
    assert need <= o.keys(), o
rr = [o for o in objs if o["request_id"] == "suite-deploy-1"]
assert len(rr) == 1, rr
o = rr[0]
assert o["method"] == "POST" and o["route"] == "/v1/rerank" and o["status"] == 200, o
assert o["documents"] == 2 and o["tokens"] > 0 and o["windows"] == 2, o
assert o["queue_ms"] >= 0 and o["total_ms"] >= o["queue_ms"], o
assert o["time"].endswith("Z") and "T" in o["time"], o
health = [o for o in objs if o["route"] == "/health"]
assert health and len(health[0]["request_id"]) == 16 and "documents" not in health[0], health
bad = [o for o in objs if o["status"] == 422]
assert bad and bad[0]["route"] == "/v1/rerank", objs
print("%d JSON access-log lines checked" % len(objs))
PYEOF
        then ok "JSON access log"; else bad "JSON access log: $(cat "$tmp/json.log")"; fi
        kill "$SPID"; wait "$SPID" 2>/dev/null
    else
        bad "server with --log-format json starts"
    fi
    if start_server alias --model-name alias-name --quiet; then
        out=$(curl -s "http://127.0.0.1:$PORT/v1/rerank" -d '{"query":"q","documents":["a"]}')
        grep -q '"model":"alias-name"' <<<"$out" && ok "--model-name is an alias" || bad "--model-name alias: $out"
        kill "$SPID"; wait "$SPID" 2>/dev/null
    else
        bad "server with --model-name starts"
    fi

    # ------------------------------------------------------------ OpenAPI and /docs
    if ! command -v node >/dev/null || [ ! -d tests/node_modules/@seriousme/openapi-schema-validator ] ||
        [ ! -d tests/node_modules/ajv ]; then
        skp "OpenAPI validation: needs node and tests/node_modules (scripts/install-deps.sh)"
    elif start_server api --quiet; then
        (cd tests && node deploy_check.mjs openapi "$PORT") >"$tmp/openapi.out" 2>&1
        grep -v '^ok - ' "$tmp/openapi.out"
        echo "($(grep -c '^ok - ' "$tmp/openapi.out") OpenAPI checks passed)"
        tally "$tmp/openapi.out"
        if [ ! -x /usr/bin/chromium ] || [ ! -d tests/node_modules/playwright-core ]; then
            skp "/docs in a browser: needs Debian's chromium and playwright-core in tests/node_modules"
        else
            query="capital of France"
            printf '%s\n' "Berlin is the capital of Germany." "Paris is the capital of France." "Bananas are yellow." \
                "Die Hauptstadt Frankreichs ist Paris." >"$tmp/docs.txt"
            (cd tests && DOCS_QUERY="$query" DOCS_DOCUMENTS="$(cat "$tmp/docs.txt")" timeout 180 \
                node deploy_check.mjs browser "$PORT" "$OLDPWD/$SHOT") >"$tmp/page.json" 2>"$tmp/page.err"
            tally "$tmp/page.json"
            grep '^not ok' "$tmp/page.json"
            "$PY" -c 'import json,sys; [print(json.dumps(l)) for l in open(sys.argv[1]).read().splitlines()]' "$tmp/docs.txt" >"$tmp/docs.jsonl"
            "$BIN" rank -m "$MODEL" -q "$query" --documents "$tmp/docs.jsonl" --no-documents >"$tmp/rank.json" 2>/dev/null
            if "$PY" - "$tmp/page.json" "$tmp/rank.json" <<'PYEOF'
import json, sys
page = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
rank = json.load(open(sys.argv[2]))["results"]
assert page["indices"] == [r["index"] for r in rank], (page, rank)
assert all(abs(a - r["relevance_score"]) < 1e-6 for a, r in zip(page["scores"], rank)), (page, rank)
PYEOF
            then ok "/docs in Chromium: the ranking read back from the page equals rerank rank ($(tail -n 1 "$tmp/page.json"))"
            else bad "/docs ranking: $(cat "$tmp/page.json" "$tmp/page.err" | tail -5)"; fi
            [ -s "$SHOT" ] && ok "/docs screenshot written to $SHOT" || bad "/docs screenshot"
        fi
        kill "$SPID"; wait "$SPID" 2>/dev/null
    else
        bad "server for the OpenAPI checks starts"
    fi
fi

# DEPLOYMENT-FILES (deploy/k8s, deploy/rerank.service, Dockerfile)

finish
