#!/usr/bin/env bash
# suite_eval.sh -- `rerank eval` end to end: trec_eval vectors through the CLI, BM25 on the XQuAD
# sets (prints each summary line), JSON and TREC run outputs, candidate lists, and error exits.
# Needs ../shared (or $RR_SHARED); skips without it. Prints "N passed, N failed, N skipped".
set -u
BUILD=${RR_BUILD:-build}
BIN=$BUILD/rerank
SHARED=${RR_SHARED:-../shared}
PY=/usr/bin/python3
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     /' <<<"$2"; }
skipped() { skip=$((skip + 1)); echo "skip $1"; }

# expect NAME EXPECTED-REGEX COMMAND...: stdout+stderr must match, exit status 0
expect() {
    local name=$1 re=$2; shift 2
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -Eq -- "$re" <<<"$out"; then ok "$name"; else bad "$name (exit $rc)" "$out"; fi
}
# expect_fail NAME EXIT-CODE MESSAGE-REGEX COMMAND...
expect_fail() {
    local name=$1 code=$2 re=$3; shift 3
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ $rc -eq "$code" ] && grep -Eq -- "$re" <<<"$out"; then ok "$name"; else bad "$name (exit $rc)" "$out"; fi
}

if [ ! -x "$BIN" ]; then echo "no $BIN"; echo "0 passed, 1 failed, 0 skipped"; exit 1; fi

# ---------------------------------------------------------------- options and errors (no data needed)
expect "help" "--bm25 K" "$BIN" eval --help
expect_fail "no data" 2 "give --data" "$BIN" eval
expect_fail "run and bm25" 2 "alternatives" "$BIN" eval --data x --run y --bm25 10
expect_fail "unknown option" 2 "unknown option '--frobnicate'" "$BIN" eval --data x --frobnicate
expect_fail "bad k" 2 "--bm25 expects an integer" "$BIN" eval --data x --bm25 0

# ---------------------------------------------------------------- trec_eval 10.0 reading rules (no data needed)
# scores equal as floats but not as doubles rank apart (MRR 1.0, not 0.5); '#' lines are skipped; 1e39 is a score
printf '# BM25, 6 decimals\nq1 Q0 d_top 1 40.123457 bm25\nq1 Q0 d_rel 2 40.123458 bm25\n# q2\nq2 Q0 a 1 1e39 bm25\nq2 Q0 b 2 1e38 bm25\n' >"$tmp/dbl.run"
printf '# judgments\nq1 0 d_rel 1\n#q1 0 d_top 1\nq2 0 a 1\n' >"$tmp/dbl.qrels"
expect "doubles, comment lines and 1e39 as trec_eval 10.0" "all \(2 queries\)[[:space:]]+1\.0000" "$BIN" eval --run "$tmp/dbl.run" --qrels "$tmp/dbl.qrels" --metrics mrr
expect_fail "-m without --data" 2 "-m needs --data" "$BIN" eval -m some/model --run x --qrels y
expect_fail "bad task" 2 "--task must be" "$BIN" eval --data x --task poetry
expect_fail "--server without --data" 2 "--server needs --data" "$BIN" eval --server http://127.0.0.1:1 --run x --qrels y
expect_fail "--server with --max-length" 2 "the server's settings" "$BIN" eval --server http://127.0.0.1:1 --data x --max-length 64
expect_fail "bad --concurrency" 2 "--concurrency expects an integer" "$BIN" eval --server http://127.0.0.1:1 --data x --concurrency 0
printf 'q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.4\n' >"$tmp/bad.run"
printf 'q1 0 d1 1\n' >"$tmp/ok.qrels"
expect_fail "malformed run line" 1 "bad.run: line 2: expected 6 fields" "$BIN" eval --run "$tmp/bad.run" --qrels "$tmp/ok.qrels"
expect_fail "missing qrels" 1 "nope.qrels: No such file" "$BIN" eval --run "$tmp/bad.run" --qrels "$tmp/nope.qrels"
: >"$tmp/empty.run"
expect_fail "empty run" 1 "empty run file" "$BIN" eval --run "$tmp/empty.run" --qrels "$tmp/ok.qrels"
printf 'q9 Q0 d1 1 0.5 t\n' >"$tmp/other.run"
expect_fail "disjoint query ids" 1 "no query is both judged and ranked" "$BIN" eval --run "$tmp/other.run" --qrels "$tmp/ok.qrels"
expect_fail "bad metric" 1 "unknown metric 'bleu'" "$BIN" eval --run "$tmp/other.run" --qrels "$tmp/ok.qrels" --metrics map,bleu

if [ ! -d "$SHARED/fixtures/metrics" ] || [ ! -d "$SHARED/fixtures/eval" ]; then
    skipped "trec_eval vectors and XQuAD ($SHARED/fixtures missing)"
    echo "eval: $pass passed, $fail failed, $skip skipped"
    [ $fail -eq 0 ]; exit
fi
M=$SHARED/fixtures/metrics
E=$SHARED/fixtures/eval

# ---------------------------------------------------------------- trec_eval vectors
expect "toy per query" "^q1 +0.6098 +0.7500 +0.5000" \
    "$BIN" eval --run "$M/toy.run" --qrels "$M/toy.qrels" --metrics ndcg_cut.10,recall.10,recip_rank -q
expect "toy mean" "^all \(2 queries\) +0.5549 +0.8750 +0.4167" \
    "$BIN" eval --run "$M/toy.run" --qrels "$M/toy.qrels" --metrics ndcg@10,recall@10,mrr
expect "toy -c with q3" "^all \(3 queries\) +0.3699 +0.5833 +0.2778" \
    "$BIN" eval --run "$M/toy.run" --qrels "$M/toy_with_q3_unretrieved.qrels" --metrics ndcg@10,recall@10,mrr -c
expect "toy without -c ignores q3" "^all \(2 queries\) +0.5549" \
    "$BIN" eval --run "$M/toy.run" --qrels "$M/toy_with_q3_unretrieved.qrels" --metrics ndcg@10,recall@10,mrr
expect "toy --top-k 2" "^all \(2 queries\) +0.1823 +0.1250 +0.2500" \
    "$BIN" eval --run "$M/toy.run" --qrels "$M/toy.qrels" --metrics ndcg@10,recall@10,mrr --top-k 2
expect "dl19 -l 1" "^all \(43 queries\) +0.6605 +0.1255 +0.9504 +0.3631" \
    "$BIN" eval --run "$M/dl19_synthetic.run" --qrels "$M/qrels.dl19-passage.txt" --metrics ndcg@10,recall@10,mrr,map
expect "dl19 -l 2" "^all \(43 queries\) +0.6605 +0.1670 +0.9062 +0.2851" \
    "$BIN" eval --run "$M/dl19_synthetic.run" --qrels "$M/qrels.dl19-passage.txt" --metrics ndcg@10,recall@10,mrr,map -l 2

# ---------------------------------------------------------------- BM25 on XQuAD
# min nDCG@10 per set: far above random (about 0.02), with room for tokenizer changes
declare -A MIN=([xquad-en]=0.90 [xquad-de]=0.85 [xquad-zh]=0.85 [xquad-xling-de-en]=0.30)
for s in xquad-en xquad-de xquad-zh xquad-xling-de-en; do
    out=$("$BIN" eval --data "$E/$s" --bm25 100 -c --json "$tmp/$s.json" --output-run "$tmp/$s.run" 2>"$tmp/err")
    rc=$?
    line=$(grep '^all' <<<"$out")
    echo "     $s BM25: $line"
    ndcg=$(awk '{print $4}' <<<"$line")
    if [ $rc -eq 0 ] && awk -v v="$ndcg" -v m="${MIN[$s]}" 'BEGIN{exit !(v+0 >= m)}'; then
        ok "bm25 $s nDCG@10 $ndcg >= ${MIN[$s]}"
    else
        bad "bm25 $s (exit $rc, nDCG@10 '$ndcg')" "$out$(cat "$tmp/err")"
    fi
    # The written run, evaluated as a file, gives the same numbers (order survives the round trip).
    again=$("$BIN" eval --run "$tmp/$s.run" --qrels "$E/$s/qrels/test.trec" -c 2>/dev/null | grep '^all')
    if [ -n "$line" ] && [ "$again" = "$line" ]; then ok "bm25 $s run file round trip"; else bad "bm25 $s round trip" "$line
$again"; fi
    if [ -x "$PY" ]; then
        if "$PY" - "$tmp/$s.json" "$ndcg" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["num_queries"] == 1190 and len(j["per_query"]) == 1190, j["num_queries"]
assert abs(j["mean"]["ndcg@10"] - float(sys.argv[2])) < 6e-5
m = sum(v["ndcg@10"] for v in j["per_query"].values()) / 1190
assert abs(m - j["mean"]["ndcg@10"]) < 1e-5
EOF
        then ok "bm25 $s JSON"; else bad "bm25 $s JSON"; fi
    fi
done
head -1 "$tmp/xquad-en.run" | grep -Eq '^56beb4343aeaaa14008c925b Q0 a00p0[0-9] 1 [0-9.e+-]+ bm25$' \
    && ok "run file format" || bad "run file format" "$(head -2 "$tmp/xquad-en.run")"

# ---------------------------------------------------------------- candidate lists (function calling)
expect "bfcl given order" "^all \(200 queries\) +[01]\.[0-9]{4}" "$BIN" eval --data "$E/bfcl_multiple.jsonl" --task tools
expect "bfcl bm25 recall@3" "^query +recall@3" "$BIN" eval --data "$E/bfcl_multiple.jsonl" --bm25 10 --task tools
expect "bfcl code task metric" "^query +mrr@10" "$BIN" eval --data "$E/bfcl_multiple.jsonl" --task code

if [ -x "$PY" ]; then
    if "$BIN" eval --data "$E/bfcl_multiple.jsonl" --json - 2>/dev/null |
        "$PY" -c 'import json, sys; j = json.load(sys.stdin); assert j["num_queries"] == 200 and "recall@3" in j["mean"]'; then
        ok "json on stdout"
    else
        bad "json on stdout"
    fi
fi

# ---------------------------------------------------------------- reranking with a random-weight model (-m)
# Mechanics, not quality: a 20-question slice of XQuAD-en, BM25 top 20, top 5 reranked.
MODEL=${RR_TESTDATA:-$BUILD/testdata}/models/xlmr_f32
if [ ! -f "$MODEL/tokenizer.json" ]; then
    skipped "rerank eval -m (no $MODEL: run tools/gen_models.py)"
else
    mini=$tmp/xquad-en-20
    mkdir -p "$mini/qrels"
    cp "$E/xquad-en/corpus.jsonl" "$mini/"
    head -n 20 "$E/xquad-en/queries.jsonl" >"$mini/queries.jsonl"
    head -n 21 "$E/xquad-en/qrels/test.tsv" >"$mini/qrels/test.tsv"
    out=$("$BIN" eval -m "$MODEL" --data "$mini" --bm25 20 --top-k 5 --metrics recall@5,ndcg@10,mrr \
        --output-run "$tmp/rr.run" --json "$tmp/rr.json" 2>"$tmp/rr.err")
    rc=$?
    line=$(grep '^all' <<<"$out")
    echo "     xquad-en (20 questions) random xlmr_f32 reranking BM25 top 5: $line"
    if [ $rc -eq 0 ] && grep -q "reranked 100 pairs" "$tmp/rr.err"; then ok "-m reranks 20 x 5 pairs"; else
        bad "-m reranks 20 x 5 pairs (exit $rc)" "$out$(cat "$tmp/rr.err")"; fi
    # Reranking a top-5 set cannot change recall@5: the first stage's and the final value agree.
    first=$(grep -oE 'first stage .* recall@5 [0-9.]+' "$tmp/rr.err" | grep -oE '[0-9.]+$')
    final=$(awk '{print $4}' <<<"$line")
    if [ -n "$first" ] && [ "$first" = "$final" ]; then ok "-m keeps recall@5 of the top 5 ($final)"; else
        bad "-m recall@5: first stage '$first', reranked '$final'" "$(cat "$tmp/rr.err")"; fi
    expect_fail "-m with a missing model folder" 1 "nonexistent-model" env HF_HUB_OFFLINE=1 \
        "$BIN" eval -m "$tmp/nonexistent-model" --data "$mini" --bm25 20
    expect "-m on candidate lists" "^all \(200 queries\)" "$BIN" eval -m "$MODEL" --data "$E/bfcl_multiple.jsonl" --task tools
    n=$(wc -l <"$tmp/rr.run")
    [ "$n" -eq 100 ] && ok "-m run file has 100 lines" || bad "-m run file has $n lines"
    # The score of each query's first document is the model's raw logit for that (query, document)
    # pair: rerank score --raw on the same texts must agree (checks that texts are wired right).
    if [ -x "$PY" ]; then
        "$PY" - "$tmp/rr.run" "$mini" >"$tmp/pairs.jsonl" <<'PYEOF'
import json, sys
run, d = sys.argv[1], sys.argv[2]
docs = {}
for l in open(d + "/corpus.jsonl", encoding="utf-8"):
    j = json.loads(l)
    docs[j["_id"]] = (j["title"] + " " + j["text"]) if j.get("title") else j["text"]
qs = {json.loads(l)["_id"]: json.loads(l)["text"] for l in open(d + "/queries.jsonl", encoding="utf-8")}
seen = set()
for l in open(run):
    q, _, doc, rank, score, _ = l.split()
    if q in seen: continue
    seen.add(q)
    print(json.dumps({"query": qs[q], "document": docs[doc], "expect": float(score)}))
PYEOF
        if "$BIN" score -m "$MODEL" --raw <"$tmp/pairs.jsonl" >"$tmp/scores.jsonl" 2>"$tmp/score.err" &&
            "$PY" - "$tmp/pairs.jsonl" "$tmp/scores.jsonl" <<'PYEOF'
import json, sys
exp = [json.loads(l)["expect"] for l in open(sys.argv[1])]
got = [json.loads(l)["score"] for l in open(sys.argv[2])]
assert len(exp) == len(got) == 20, (len(exp), len(got))
bad = [(e, g) for e, g in zip(exp, got) if abs(e - g) > 1e-4 * max(1.0, abs(e))]
assert not bad, bad[:3]
PYEOF
        then ok "-m scores equal rerank score --raw"; else bad "-m scores vs rerank score" "$(cat "$tmp/score.err")"; fi
    fi
fi

echo "eval: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
