#!/usr/bin/env bash
# suite_scaleout.sh -- a pool of 3 `rerank serve` replicas behind nginx (deploy/nginx/rerank.conf,
# ports rewritten), everything on 127.0.0.1 on free ports, nginx run as the current user with a
# temporary prefix. 32 clients (tests/scaleout_client.py) send /v1/rerank for SCALEOUT_SECONDS
# (default 32; longer where the machine is slow: every phase waits until the replicas involved have
# answered requests) while one replica is SIGKILLed and restarted, and another is SIGTERMed (drains)
# and restarted. Checked:
#   - every client request got a 200 with exactly `rerank rank`'s ranking and scores;
#   - none lost or duplicated: the request ids answered 200 in the replicas' JSON access logs are
#     the client's ids, each exactly once (a request nginx retried shows up as a non-200 line, or
#     not at all when its replica died, on the replica that failed it, and as a 200 on the one
#     that answered);
#   - /metrics: each live replica's rerank_requests_total{route="/v1/rerank",code="200"} equals the
#     200 lines of its own log, and these counts (the killed and drained processes' from their
#     logs, as their /metrics died with them) add up to the requests the clients sent;
#   - the drained replica exited 0, and both restarted replicas answered traffic again;
#   - `rerank eval --server` through the pool, while a third replica is drained and restarted, gives
#     the same metrics, query by query, as `rerank eval -m` on 60 XQuAD-de questions;
#   - a malformed Content-Length and a request line without a space (which libmicrohttpd 0.9.75
#     answers twice or not at all) each get one 400 from nginx.
# Prints "N passed, N failed, N skipped"; SKIPs where nginx or the test model is missing.
set -u
BUILD=${RR_BUILD:-build}
TESTDATA=${RR_TESTDATA:-$BUILD/testdata}
MODEL=${RR_SERVER_MODEL:-$TESTDATA/models/xlmr_f32}
BIN=$BUILD/rerank
PY=/usr/bin/python3
SECONDS_LOAD=${SCALEOUT_SECONDS:-32}
CLIENTS=${SCALEOUT_CLIENTS:-32}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
. "$(dirname "$0")/lib.sh"

if [ ! -x "$BIN" ] || [ ! -f "$MODEL/config.json" ] || [ ! -f "$MODEL/tokenizer.json" ]; then
    skp "scale-out: needs $BIN and the test model $MODEL with tokenizer.json"; finish
fi
if [ ! -x "$NGINX" ]; then
    skp "scale-out: nginx is not installed (Debian package nginx; scripts/install-deps.sh)"; finish
fi
if ! command -v curl >/dev/null || [ ! -x "$PY" ]; then skp "scale-out: needs curl and $PY"; finish; fi

chmod 755 "$tmp"
declare -A PID
cleanup() { # replicas by name and nginx, not lib.sh's pids
    for k in "${!PID[@]}"; do kill -9 "${PID[$k]}" 2>/dev/null; done
    local np
    np=$(cat "$tmp/nginx.pid" 2>/dev/null) && [ -n "$np" ] && kill "$np" 2>/dev/null
    wait 2>/dev/null
    sleep 0.2
    rm -rf "$tmp"
}
trap cleanup EXIT

# five free ports: nginx + 3 replicas (+1 spare)
read -r NPORT P1 P2 P3 _ < <("$PY" -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
PORTS=("$P1" "$P2" "$P3")

# start_replica I GEN: replica I (0-2) on its port, log $tmp/rI.gGEN.log
start_replica() {
    "$BIN" serve -m "$MODEL" --port "${PORTS[$1]}" --threads 1 --http-threads 4 --drain-timeout 30 \
        --log-format json 2>"$tmp/r$1.g$2.log" &
    PID[$1]=$!
}
wait_ready() { # PORT: up to 20 s for /ready to answer 200
    for _ in $(seq 1 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/ready")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

for i in 0 1 2; do start_replica $i 1; done
for i in 0 1 2; do
    if ! wait_ready "${PORTS[$i]}"; then bad "replica $i ready"; cat "$tmp/r$i.g1.log"; finish; fi
done
ok "3 replicas ready on ports ${PORTS[*]}"

# nginx: the deployment file with its ports rewritten, inside a minimal main configuration
sed -e "s/127\.0\.0\.1:8081/127.0.0.1:$P1/" -e "s/127\.0\.0\.1:8082/127.0.0.1:$P2/" \
    -e "s/127\.0\.0\.1:8083/127.0.0.1:$P3/" -e "s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:$NPORT;/" \
    deploy/nginx/rerank.conf >"$tmp/rerank.conf"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user $(id -un) $(id -gn);"
cat >"$tmp/nginx.conf" <<NGX
$user_line
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx.error.log warn;
events { worker_connections 1024; }
http {
    log_format pool '\$http_x_request_id \$status "\$upstream_addr" "\$upstream_status"';
    access_log $tmp/nginx.access.log pool;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    include $tmp/rerank.conf;
}
NGX
if ! "$NGINX" -p "$tmp" -c "$tmp/nginx.conf" -t >"$tmp/nginx.t" 2>&1; then
    bad "nginx -t accepts deploy/nginx/rerank.conf: $(cat "$tmp/nginx.t")"; finish
fi
ok "nginx -t accepts deploy/nginx/rerank.conf"
"$NGINX" -p "$tmp" -c "$tmp/nginx.conf" 2>"$tmp/nginx.start"
for _ in $(seq 1 50); do [ -s "$tmp/nginx.pid" ] && break; sleep 0.1; done
if ! wait_ready "$NPORT"; then bad "nginx answers /ready on $NPORT: $(cat "$tmp/nginx.start" "$tmp/nginx.error.log")"; finish; fi
ok "nginx on $NPORT in front of the replicas"

# the two malformed requests libmicrohttpd 0.9.75 mishandles on its own (docs/ARCHITECTURE.md, HTTP:
# a bad Content-Length answered with its header block twice, a request line without a space closed
# unanswered) get exactly one 400 from nginx, and the connection is closed
if "$PY" - "$NPORT" <<'PYEOF'
import socket, sys, time
bad = []
for raw in (b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}", b"GARBAGE\r\n\r\n"):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(raw)
    buf, t0 = b"", time.time()
    try:
        while time.time() - t0 < 5:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except OSError:
        pass
    s.close()
    if not buf.startswith(b"HTTP/1.1 400") or buf.count(b"HTTP/1.1 ") != 1:
        bad.append("%r: %r" % (raw[:20], buf[:80]))
print("; ".join(bad))
sys.exit(1 if bad else 0)
PYEOF
then ok "through nginx, a malformed Content-Length and a request line without a space each get one 400"
else bad "nginx and malformed framing (see above)"; fi

# the requests and their expected answers, from `rerank rank`
long=$(printf 'sentence %d about Paris, rivers and bananas. ' $(seq 1 150))
"$PY" - "$tmp" "$long" <<'PYEOF'
import json, sys
tmp, long = sys.argv[1], sys.argv[2]
docs = ["Paris is the capital of France.", "Bananas are yellow.", "Die Hauptstadt Frankreichs ist Paris.",
        "The Seine flows through Paris.", "東京は日本の首都です。", long]
queries = ["capital of France", "yellow fruit", "river in Paris", "Hauptstadt", "首都", "long text about rivers"]
for k, q in enumerate(queries):
    n = 3 + k % 4
    json.dump({"query": q, "documents": docs[:n] if k % 2 else docs[-n:], "return_documents": False},
              open("%s/case%d.json" % (tmp, k), "w"))
    with open("%s/case%d.docs" % (tmp, k), "w") as f:
        for d in (docs[:n] if k % 2 else docs[-n:]):
            f.write(json.dumps(d) + "\n")
PYEOF
ncases=6
for k in $(seq 0 $((ncases - 1))); do
    q=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["query"])' "$tmp/case$k.json")
    "$BIN" rank -m "$MODEL" -q "$q" --documents "$tmp/case$k.docs" --no-documents >"$tmp/case$k.expect" 2>/dev/null ||
        { bad "rerank rank for case $k"; finish; }
done
"$PY" -c '
import json, sys
tmp, n = sys.argv[1], int(sys.argv[2])
cases = [{"body": json.load(open("%s/case%d.json" % (tmp, k))),
          "expect": json.load(open("%s/case%d.expect" % (tmp, k)))["results"]} for k in range(n)]
json.dump(cases, open(tmp + "/cases.json", "w"))' "$tmp" "$ncases"

# ---------------------------------------------------------------- load + failures
# The failures are timed by progress, not only by the clock, so a slow machine (or a sanitizer
# build) still exercises every phase: each replica is hit only after it has answered requests,
# and the load stops only once both restarted replicas have answered some too (at most 180 s).
"$PY" tests/scaleout_client.py "127.0.0.1:$NPORT" "$tmp/cases.json" 180 "$CLIENTS" "$tmp/clients.json" "$tmp/stop" &
CPID=$!
t0=$(date +%s)
served() { local n; n=$(grep -c '"route":"/v1/rerank".*"status":200' "$tmp/$1.log" 2>/dev/null); echo "${n:-0}"; }
# until SECS have passed since the start and replica log LOG has answered N requests (cap: 150 s)
until_served() {
    while [ $(($(date +%s) - t0)) -lt 150 ]; do
        [ $(($(date +%s) - t0)) -ge "$1" ] && [ "$(served "$2")" -ge "$3" ] && return 0
        sleep 0.2
    done
    return 1
}
until_served $((SECONDS_LOAD * 2 / 10)) r0.g1 5
kill -9 "${PID[0]}"; wait "${PID[0]}" 2>/dev/null
echo "# t=$(($(date +%s) - t0))s: SIGKILL replica 0 (it had answered $(served r0.g1))"
sleep 1
start_replica 0 2
echo "# t=$(($(date +%s) - t0))s: replica 0 restarted"
until_served $((SECONDS_LOAD * 5 / 10)) r1.g1 5
kill -TERM "${PID[1]}"
echo "# t=$(($(date +%s) - t0))s: SIGTERM replica 1 (drain; it had answered $(served r1.g1))"
wait "${PID[1]}"
drain_rc=$?
echo "# t=$(($(date +%s) - t0))s: replica 1 exited $drain_rc"
start_replica 1 2
echo "# t=$(($(date +%s) - t0))s: replica 1 restarted"
until_served "$SECONDS_LOAD" r0.g2 5
until_served "$SECONDS_LOAD" r1.g2 5
touch "$tmp/stop"
wait "$CPID"
crc=$?
echo "# t=$(($(date +%s) - t0))s: load stopped"
[ "$drain_rc" = 0 ] && ok "drained replica exited 0" || bad "drained replica exited $drain_rc: $(tail -3 "$tmp/r1.g1.log")"
[ "$crc" = 0 ] && ok "load client finished" || bad "load client exited $crc"
for i in 0 1; do wait_ready "${PORTS[$i]}" || bad "restarted replica $i ready"; done

# per-process /metrics of the live replicas (generation 2 of 0 and 1, generation 1 of 2)
for i in 0 1 2; do curl -s "http://127.0.0.1:${PORTS[$i]}/metrics" >"$tmp/metrics$i.txt"; done
cp "$tmp"/r*.log "$tmp"/nginx.access.log "$tmp/clients.json" "${SCALEOUT_KEEP:-/dev/null}" 2>/dev/null

"$PY" - "$tmp" <<'PYEOF' >"$tmp/verdict.txt"
import collections, glob, json, os, re, sys
tmp = sys.argv[1]
c = json.load(open(tmp + "/clients.json"))
def line(good, what):
    print(("ok - " if good else "not ok - ") + what)
line(c["sent"] > 0 and c["ok"] == c["sent"],
     "every client request answered 200 with rerank rank's ranking and scores (%d of %d)%s"
     % (c["ok"], c["sent"], "" if not c["failures"] else ": " + "; ".join(c["failures"][:5])))
logs = {}
for p in sorted(glob.glob(tmp + "/r*.g*.log")):
    objs = []
    for l in open(p):
        if l.startswith("{"):
            objs.append(json.loads(l))
    logs[os.path.basename(p)[:-4]] = objs
ok200 = {k: [o["request_id"] for o in v if o["route"] == "/v1/rerank" and o["status"] == 200] for k, v in logs.items()}
other = collections.Counter((k, o["status"]) for k, v in logs.items() for o in v
                            if o["route"] == "/v1/rerank" and o["status"] != 200)
answered = collections.Counter(i for v in ok200.values() for i in v)
dups = [i for i, n in answered.items() if n > 1]
sent = set(c["ids"])
missing = sent - set(answered)
extra = set(answered) - sent
line(not dups and not missing and not extra and len(c["ids"]) == len(sent),
     "no request lost or duplicated: %d ids answered 200 by the replicas, each once (%d duplicated, %d missing, %d unknown)"
     % (len(answered), len(dups), len(missing), len(extra)))
per = {k: len(v) for k, v in ok200.items()}
print("# 200s per replica process: " + ", ".join("%s=%d" % kv for kv in sorted(per.items())))
print("# non-200 answers nginx retried elsewhere: " + (", ".join("%s:%d=%d" % (k, s, n) for (k, s), n in sorted(other.items())) or "none"))
retried = [l for l in open(tmp + "/nginx.access.log") if '"' in l and "," in l.split('"')[1]]
print("# requests nginx sent to more than one replica: %d" % len(retried))
live = {0: "r0.g2", 1: "r1.g2", 2: "r2.g1"}
total = 0
good = True
for i, key in live.items():
    txt = open("%s/metrics%d.txt" % (tmp, i)).read()
    m = re.search(r'rerank_requests_total\{route="/v1/rerank",code="200"\} (\d+)', txt)
    n = int(m.group(1)) if m else 0
    if n != per.get(key, 0):
        good = False
        print("# replica %d: /metrics says %d, its log %d" % (i, n, per.get(key, 0)))
    total += n
dead = per.get("r0.g1", 0) + per.get("r1.g1", 0)
line(good and total + dead == c["sent"],
     "per-replica /metrics 200 counts (%s) + the killed and drained processes' (%d) = %d requests sent"
     % ("+".join(str(per.get(k, 0)) for k in live.values()), dead, c["sent"]))
line(per.get("r0.g2", 0) > 0 and per.get("r1.g2", 0) > 0 and per.get("r0.g1", 0) > 0 and per.get("r1.g1", 0) > 0,
     "killed and drained replicas served before, their restarts after")
PYEOF
cat "$tmp/verdict.txt"
pass=$((pass + $(grep -c '^ok - ' "$tmp/verdict.txt"))) fail=$((fail + $(grep -c '^not ok - ' "$tmp/verdict.txt")))
grep -q '^ok - every client' "$tmp/verdict.txt" || "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["failures"])' "$tmp/clients.json"

# ---------------------------------------------------------------- rerank eval --server through the pool
# 60 XQuAD-de questions, BM25 top 10, top 5 reranked: through nginx (8 requests in flight, replica 2
# drained and restarted meanwhile) the metrics must equal a local -m run's, query by query.
E=${RR_SHARED:-../shared}/fixtures/eval/xquad-de
if [ ! -f "$E/corpus.jsonl" ]; then
    skp "eval --server: XQuAD fixture not found ($E; set RR_SHARED)"
else
    mini=$tmp/xquad-de-60
    mkdir -p "$mini/qrels"
    cp "$E/corpus.jsonl" "$mini/"
    head -n 60 "$E/queries.jsonl" >"$mini/queries.jsonl"
    head -n 61 "$E/qrels/test.tsv" >"$mini/qrels/test.tsv"
    args=(--data "$mini" --bm25 10 --top-k 5 --metrics ndcg@10,recall@5,mrr@10,map)
    "$BIN" eval --server "http://127.0.0.1:$NPORT" --concurrency 8 "${args[@]}" --json "$tmp/eval.server.json" \
        >/dev/null 2>"$tmp/eval.server.err" &
    EPID=$!
    sleep 0.5
    kill -TERM "${PID[2]}"; wait "${PID[2]}" 2>/dev/null
    start_replica 2 2
    wait "$EPID"
    erc=$?
    "$BIN" eval -m "$MODEL" "${args[@]}" --json "$tmp/eval.local.json" >/dev/null 2>"$tmp/eval.local.err"
    lrc=$?
    if [ "$erc" = 0 ] && [ "$lrc" = 0 ] && "$PY" - "$tmp/eval.server.json" "$tmp/eval.local.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["num_queries"] == b["num_queries"] == 60, (a["num_queries"], b["num_queries"])
assert a["mean"] == b["mean"], (a["mean"], b["mean"])
assert a["per_query"] == b["per_query"]
print("# eval --server = eval -m: " + json.dumps(a["mean"]))
PYEOF
    then ok "rerank eval --server through the pool (a replica drained meanwhile) = rerank eval -m on 60 XQuAD-de questions"
    else bad "eval --server ($erc) vs -m ($lrc): $(tail -3 "$tmp/eval.server.err" "$tmp/eval.local.err")"; fi
    grep -h "reranked" "$tmp/eval.server.err" "$tmp/eval.local.err" | sed 's/^/# /'
fi

for i in 0 1 2; do kill -TERM "${PID[$i]}" 2>/dev/null; done
for i in 0 1 2; do wait "${PID[$i]}" 2>/dev/null; done
PID=()
np=$(cat "$tmp/nginx.pid" 2>/dev/null) && kill -QUIT "$np" 2>/dev/null
for _ in $(seq 1 50); do [ -f "$tmp/nginx.pid" ] || break; sleep 0.1; done
finish
