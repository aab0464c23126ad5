#!/usr/bin/env bash
# suite_families.sh -- the JinaBERT v1, mGTE and ModernBERT test models through every user-facing path
# with no family-specific flag: `rerank rank` (documents longer than 1024 tokens scored in one pair, as
# the families allow 8192), `rerank score` and `tokenize`, `rerank bench`, `rerank eval -m`, and
# `rerank serve` (/info names the family; /v1/rerank scores equal `rerank rank`'s).
set -u
BUILD=${RR_BUILD:-build}
TD=${RR_TESTDATA:-build/testdata}
SHARED=${RR_SHARED:-../shared}
BIN=$BUILD/rerank
. "$(dirname "$0")/lib.sh" # serve_port; tmp; ok and bad as below
pass=0 fail=0 skip=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
skp() { echo "skip $*"; skip=$((skip + 1)); }
SPID=""
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

declare -A FAM=([jina_v1_f32]=jina-v1 [mgte_f32]=mgte [modernbert_f32]=modernbert)
Q="Organic skincare products for sensitive skin"
# a long English document: about 2,000 tokens for every tokenizer here
long=""
for i in $(seq 1 120); do long+="Natural organic skincare for sensitive skin, tested on volunteers in study $i. "; done
printf '"%s"\n"Tech gadgets for smart homes"\n"%s"\n' "Gentle organic face cream for sensitive skin" "$long" >"$tmp/docs.jsonl"

for name in jina_v1_f32 mgte_f32 modernbert_f32; do
    M=$TD/models/$name
    if [ ! -f "$M/tokenizer.json" ]; then skp "$name: no model with a tokenizer (tools/gen_models.py, ../shared)"; continue; fi
    # rank: three documents, the long one in a single pair (no 1024-token cap)
    if out=$("$BIN" rank -m "$M" -q "$Q" --documents "$tmp/docs.jsonl" 2>"$tmp/err"); then
        n=$(grep -c '"index"' <<<"$out")
        tot=$(sed -n 's/.*"total_tokens": \([0-9]*\).*/\1/p' <<<"$out" | head -n 1)
        if [ "$n" = 3 ] && [ -n "$tot" ] && [ "$tot" -gt 1100 ] && [ "$tot" -lt 8192 ]; then
            ok "$name rank: 3 results, $tot tokens in one pass per document"
        else bad "$name rank: $n results, total_tokens '$tot': $out"; fi
    else bad "$name rank: $(cat "$tmp/err")"; fi
    # windows only past the model's 8192: --max-length 512 forces several for the long document
    if out2=$("$BIN" rank -m "$M" -q "$Q" --documents "$tmp/docs.jsonl" --max-length 512 2>"$tmp/err"); then
        tot2=$(sed -n 's/.*"total_tokens": \([0-9]*\).*/\1/p' <<<"$out2" | head -n 1)
        [ "$tot2" -gt "$tot" ] && ok "$name rank --max-length 512: windows ($tot2 tokens)" ||
            bad "$name rank --max-length 512: $tot2 tokens vs $tot"
    else bad "$name rank --max-length 512: $(cat "$tmp/err")"; fi
    # score text and tokenize
    if s=$(echo '{"query": "how do I sort a list in python?", "document": "sorted(xs) returns a new sorted list"}' |
        "$BIN" score -m "$M" 2>"$tmp/err") && grep -q '"score"' <<<"$s"; then ok "$name score: $s"
    else bad "$name score: $(cat "$tmp/err")"; fi
    if t=$(echo '{"text": "how do I sort?", "text_pair": "sorted(xs)"}' | "$BIN" tokenize -m "$M" 2>"$tmp/err") &&
        grep -q '"ids"' <<<"$t"; then ok "$name tokenize"; else bad "$name tokenize: $(cat "$tmp/err")"; fi
    # bench names the family
    if b=$("$BIN" bench -m "$M" --workload w2 --repeat 1 2>"$tmp/err") && grep -q "(${FAM[$name]})" <<<"$b"; then
        ok "$name bench: $(grep pairs/s <<<"$b")"
    else bad "$name bench: $b $(cat "$tmp/err")"; fi
    # eval -m on a 10-question XQuAD slice
    E=$SHARED/fixtures/eval
    if [ -d "$E/xquad-en" ]; then
        mini=$tmp/xq; mkdir -p "$mini/qrels"
        cp "$E/xquad-en/corpus.jsonl" "$mini/"
        head -n 10 "$E/xquad-en/queries.jsonl" >"$mini/queries.jsonl"
        head -n 11 "$E/xquad-en/qrels/test.tsv" >"$mini/qrels/test.tsv"
        if "$BIN" eval -m "$M" --data "$mini" --bm25 10 --top-k 3 --metrics mrr >"$tmp/ev" 2>"$tmp/err" &&
            grep -q "reranked 30 pairs" "$tmp/err"; then ok "$name eval -m: $(grep '^all' "$tmp/ev")"
        else bad "$name eval -m: $(cat "$tmp/ev" "$tmp/err")"; fi
    else skp "$name eval -m: $E missing"; fi
    # server: /info and /v1/rerank, scores equal to rank's
    if ! command -v curl >/dev/null; then skp "$name serve: no curl"; continue; fi
    "$BIN" serve -m "$M" --port 0 --quiet 2>"$tmp/serve.log" &
    SPID=$!
    PORT=$(serve_port "$tmp/serve.log" "$SPID")
    if [ -z "$PORT" ]; then bad "$name serve did not start: $(cat "$tmp/serve.log")"; kill $SPID; wait $SPID 2>/dev/null; SPID=""; continue; fi
    info=$(curl -s "127.0.0.1:$PORT/info")
    grep -q "\"family\":\"${FAM[$name]}\"" <<<"$info" && ok "$name /info family ${FAM[$name]}" || bad "$name /info: $info"
    body=$(/usr/bin/python3 -c 'import json,sys; d=[json.loads(l) for l in open(sys.argv[2])]; print(json.dumps({"query": sys.argv[1], "documents": d}))' "$Q" "$tmp/docs.jsonl")
    resp=$(curl -s "127.0.0.1:$PORT/v1/rerank" -H 'Content-Type: application/json' -d "$body")
    same=$(/usr/bin/python3 -c '
import json, sys
a = {r["index"]: r["relevance_score"] for r in json.loads(sys.argv[1])["results"]}
b = {r["index"]: r["relevance_score"] for r in json.loads(sys.argv[2])["results"]}
print("yes" if a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-6 for k in a) else "no %s %s" % (a, b))' "$resp" "$out" 2>&1)
    [ "$same" = yes ] && ok "$name /v1/rerank equals rerank rank" || bad "$name /v1/rerank: $same"
    kill "$SPID"; wait "$SPID" 2>/dev/null; SPID=""
done
# the generated ModernBERT-layout BPE tokenizer.json against the Rust tokenizers
TJ=$TD/models/modernbert_f32/tokenizer.json
CORPUS=$SHARED/fixtures/corpus/multilingual_corpus.txt
if [ -f "$TJ" ] && [ -f "$CORPUS" ] && command -v node >/dev/null && [ -d tests/node_modules/@anush008/tokenizers ]; then
    if r=$(node tests/tok_families.js "$TJ" "$BIN" "$CORPUS" 2000 2>&1); then ok "modernbert BPE ids equal the Rust tokenizers: $(tr '\n' ' ' <<<"$r")"
    else bad "modernbert BPE vs Rust tokenizers: $r"; fi
else skp "modernbert BPE vs Rust tokenizers: needs node, tests/node_modules/@anush008/tokenizers and $CORPUS"; fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
