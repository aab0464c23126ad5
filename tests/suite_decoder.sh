#!/usr/bin/env bash
# suite_decoder.sh -- the decoder rerankers from the command line: `rerank score` with {"input_ids"} of
# whole prompts (against the float64 reference of tools/gen_decoder.py), the --template rules, and --
# when the tokenizer reads Qwen's tokenizer.json -- `rerank rank` / `rerank score` with text, whose
# prompt must score exactly like the reference code's ids of the same prompt; long documents (windows,
# truncation, --max-doc-tokens) against their windows' texts scored one by one, through the CLI and
# every server field that asks for them; /info and the notes that encoders ignore an instruction.
set -u
BUILD=${RR_BUILD:-build}
TD=${RR_TESTDATA:-build/testdata}
SHARED=${RR_SHARED:-../shared}
PY=/usr/bin/python3
R="$BUILD/rerank"
. "$(dirname "$0")/lib.sh" # serve_port; tmp; ok and bad as below
pass=0 fail=0 skip=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
skipped() { echo "skip $*"; skip=$((skip + 1)); }

if [ ! -d "$TD/models/dec_qwen3_f32" ] || ! [ -x "$PY" ]; then
    echo "skipped: needs the decoder test models (tools/gen_decoder.py)"
    echo "0 passed, 0 failed, 1 skipped"; exit 0
fi

# a folder with links to a model's weights, config and card, without its tokenizer: ids only
ids_folder() { # name -> prints the folder
    local d="$tmp/$1"
    mkdir -p "$d"
    for f in config.json model.safetensors README.md; do
        [ -e "$TD/models/$1/$f" ] && ln -sf "$(realpath "$TD/models/$1/$f")" "$d/$f"
    done
    echo "$d"
}

# 1. rerank score with input_ids: raw scores within 1e-4 of the reference (lines up to 4,500 tokens)
for name in dec_qwen3_f32 dec_qwen2_bf16 dec_qwen3_seqcls_f32; do
    d=$(ids_folder $name)
    $PY -c 'import json,sys
for l in open(sys.argv[1]): print(json.dumps({"input_ids": json.loads(l)["input_ids"]}))' \
        "$TD/golden/$name.jsonl" >"$tmp/$name.in"
    if "$R" score -m "$d" --raw --precision fp32 <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/err"; then
        res=$($PY -c 'import json,sys
g=[json.loads(l)["raw"] for l in open(sys.argv[1])]
o=[json.loads(l)["score"] for l in open(sys.argv[2])]
print(len(g) == len(o) and max(abs(a-b) for a,b in zip(g,o)) <= 1e-4, len(o), max(abs(a-b) for a,b in zip(g,o)))' \
            "$TD/golden/$name.jsonl" "$tmp/$name.out")
        [[ $res == True* ]] && ok "score input_ids $name: $res" || bad "score input_ids $name: $res"
    else
        bad "score input_ids $name: $(cat "$tmp/err")"
    fi
done

# 2. --template: a Qwen2 folder whose card names nothing is refused naming --template; the flag loads it
d="$tmp/bare"; mkdir -p "$d"
for f in config.json model.safetensors; do ln -sf "$(realpath "$TD/models/dec_qwen2_f32/$f")" "$d/$f"; done
err=$(echo '{"input_ids": [1, 2, 3]}' | "$R" score -m "$d" 2>&1 >/dev/null); rc=$?
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q -- "--template" <<<"$err"; then ok "no card: refused ($err)"
else bad "no card: exit $rc, $err"; fi
out=$(echo '{"input_ids": [1, 2, 3]}' | "$R" score -m "$d" --template mxbai-rerank-v2 --raw 2>&1)
[[ $out == '{"score": '* ]] && ok "--template mxbai-rerank-v2: $out" || bad "--template mxbai-rerank-v2: $out"
err=$(echo '{"input_ids": [1]}' | "$R" score -m "$d" --template bogus 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "qwen3-reranker" <<<"$err" && ok "--template bogus: $err" || bad "--template bogus: exit $rc $err"

# 3. text: needs the tokenizer to read Qwen's tokenizer.json
M=$TD/models/dec_qwen3_f32
REF="$SHARED/fixtures/tokenizers/qwen3/reference_ids.jsonl"
if [ ! -f "$M/tokenizer.json" ] || [ ! -f "$REF" ]; then
    skipped "text prompts: no tokenizer in the test folder or no ../shared"
elif ! echo '{"query": "a", "document": "b"}' | "$R" score -m "$M" >/dev/null 2>"$tmp/err"; then
    skipped "text prompts: the tokenizer cannot load Qwen's tokenizer.json ($(head -c 200 "$tmp/err"))"
else
    ids=$($PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["name"] == "qwen3_reranker_full_example": print(json.dumps({"input_ids": r["ids"]}))' "$REF")
    want=$(echo "$ids" | "$R" score -m "$M" --raw)
    got=$(echo '{"query": "What is the capital of China?", "document": "The capital of China is Beijing."}' |
        "$R" score -m "$M" --raw)
    [ "$want" = "$got" ] && ok "score text = reference prompt ids: $got" || bad "score text $got != ids $want"
    got=$(echo '"The capital of China is Beijing."' | "$R" rank -m "$M" -q "What is the capital of China?" --raw |
        $PY -c 'import json,sys; print(json.dumps({"score": json.load(sys.stdin)["results"][0]["relevance_score"]}))')
    $PY -c 'import json,sys; a=json.loads(sys.argv[1])["score"]; b=json.loads(sys.argv[2])["score"]; sys.exit(abs(a-b) > 1e-6)' \
        "$want" "$got" && ok "rank text = reference prompt ids: $got" || bad "rank text $got != ids $want"
    a=$(echo '{"query": "q", "document": "d"}' | "$R" score -m "$M" --raw)
    b=$(echo '{"query": "q", "document": "d", "instruction": "Find the city"}' | "$R" score -m "$M" --raw)
    c=$(echo '{"query": "q", "document": "d"}' | "$R" score -m "$M" --raw --instruction "Find the city")
    [ "$a" != "$b" ] && [ "$b" = "$c" ] && ok "instruction: line key = --instruction, differs from default" ||
        bad "instruction: default $a, line $b, flag $c"
    got=$(echo '"d"' | "$R" rank -m "$M" -q q --raw --instruction "Find the city" |
        $PY -c 'import json,sys; print(json.dumps({"score": json.load(sys.stdin)["results"][0]["relevance_score"]}))')
    $PY -c 'import json,sys; a=json.loads(sys.argv[1])["score"]; b=json.loads(sys.argv[2])["score"]; sys.exit(abs(a-b) > 1e-6)' \
        "$b" "$got" && ok "rank --instruction = score instruction" || bad "rank --instruction $got != $b"
    M2=$TD/models/dec_qwen2_f32
    out=$(echo '"The capital of China is Beijing."' | "$R" rank -m "$M2" -q "What is the capital of China?" 2>&1)
    grep -q relevance_score <<<"$out" && ok "mxbai folder ranks with no flag" || bad "mxbai rank: $out"

    # long documents: --windows / --truncate / --max-doc-tokens over the document's ids = the windows'
    # texts scored one by one (a document of one-token words, so a window of ids is a window of words)
    words() { $PY -c 'import sys
W = [" the", " city", " river", " capital", " of", " and", " is", " a", " history", " people", " old", " new",
     " north", " south", " water", " long", " time", " first", " state", " world"]
a, n = int(sys.argv[1]), int(sys.argv[2])
print("".join(W[(i * 7 + i // 3) % len(W)] for i in range(a, a + n))[1:])' "$@"; }
    jq_tokens() { $PY -c 'import json,sys; print(json.load(sys.stdin)["usage"]["total_tokens"])'; }
    jq_score() { $PY -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["relevance_score"])'; }
    Q="What is the capital of China?"
    LD=$(words 0 300)
    for MM in "$M" "$TD/models/dec_qwen2_f32"; do
        mname=$(basename "$MM")
        L=(--max-length 120 --overlap 9 --raw)
        one=$(echo '"the"' | "$R" rank -m "$MM" -q "$Q" "${L[@]}" --truncate | jq_tokens)
        full=$($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$LD" | "$R" rank -m "$MM" -q "$Q" "${L[@]}" --truncate)
        trunc=$(jq_tokens <<<"$full")
        M_=$((trunc - one + 1))
        ov=$((M_ / 4 < 9 ? M_ / 4 : 9))
        # the windows' starts, as rerank() cuts them, and their texts as score lines
        $PY -c 'import json,sys
M, ov, L = int(sys.argv[1]), int(sys.argv[2]), 300
s = 0
while True:
    f = L - M if s + M >= L else s
    print(f)
    if f == L - M: break
    s += M - ov' "$M_" "$ov" >"$tmp/starts"
        : >"$tmp/win.in"
        while read -r f; do
            $PY -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "document": sys.argv[2]}))' "$Q" "$(words "$f" "$M_")" >>"$tmp/win.in"
        done <"$tmp/starts"
        "$R" score -m "$MM" --raw <"$tmp/win.in" >"$tmp/win.out"
        got=$($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$LD" | "$R" rank -m "$MM" -q "$Q" "${L[@]}" --windows | jq_score)
        left=$($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$LD" | "$R" rank -m "$MM" -q "$Q" "${L[@]}" --truncate left | jq_score)
        right=$(jq_score <<<"$full")
        res=$($PY -c 'import json,sys
s = [json.loads(l)["score"] for l in open(sys.argv[1])]
w, r, l = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(len(s) >= 3 and abs(max(s) - w) < 1e-4 and abs(s[0] - r) < 1e-4 and abs(s[-1] - l) < 1e-4, len(s), max(s), w)' \
            "$tmp/win.out" "$got" "$right" "$left")
        [[ $res == True* ]] && ok "$mname --windows/--truncate = window texts one by one: $res" ||
            bad "$mname windows: $res"
        k=$((M_ / 2))
        a=$($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$LD" | "$R" rank -m "$MM" -q "$Q" "${L[@]}" --max-doc-tokens $k | jq_score)
        b=$($PY -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "document": sys.argv[2]}))' "$Q" "$(words 0 $k)" |
            "$R" score -m "$MM" --raw | $PY -c 'import json,sys; print(json.load(sys.stdin)["score"])')
        $PY -c 'import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 1e-4)' "$a" "$b" &&
            ok "$mname --max-doc-tokens $k = its first $k words" || bad "$mname --max-doc-tokens: $a vs $b"
        d0=$($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$LD" | "$R" rank -m "$MM" -q "$Q" --max-length 120 --raw)
        [ "$(jq_tokens <<<"$d0")" = "$trunc" ] && ok "$mname default: one prompt cut at max_length ($trunc ids)" ||
            bad "$mname default: $(jq_tokens <<<"$d0") ids, want $trunc"
        echo "$LD" >"$tmp/ld.txt"
    done

    # rerank serve: every request shape, with and without an instruction, scores as rerank rank does
    "$R" serve -m "$M" --port 0 --quiet 2>"$tmp/serve.log" &
    spid=$!
    port=$(serve_port "$tmp/serve.log" "$spid")
    if [ -z "$port" ]; then
        bad "serve on a decoder folder: $(cat "$tmp/serve.log")"
    else
        for instr in "" "Find the city"; do
            if [ -n "$instr" ]; then field=", \"instruction\": \"$instr\""; flag=(--instruction "$instr"); else field=""; flag=(); fi
            want=$(echo '"d1 text"' | "$R" rank -m "$M" -q "q text" --raw "${flag[@]}" |
                $PY -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["relevance_score"])')
            for shape in "/v1/rerank|{\"query\": \"q text\", \"documents\": [\"d1 text\"]$field}" \
                         "/v2/rerank|{\"query\": \"q text\", \"documents\": [\"d1 text\"]$field}" \
                         "/rerank|{\"query\": \"q text\", \"texts\": [\"d1 text\"], \"raw_scores\": true$field}"; do
                path=${shape%%|*} body=${shape#*|}
                got=$(curl -s -X POST "http://127.0.0.1:$port$path" -H 'Content-Type: application/json' -d "$body")
                res=$($PY -c 'import json,math,sys
j = json.loads(sys.argv[1]); want = float(sys.argv[2]); path = sys.argv[3]
if path == "/rerank": s = j[0]["score"]
else:
    s = j["results"][0]["relevance_score"]; s = math.log(s / (1 - s))  # back to the raw score
print(abs(s - want) < 2e-3)' "$got" "$want" "$path" 2>&1)
                [ "$res" = True ] && ok "serve $path${instr:+ with instruction} = rank" || bad "serve $path $instr: $got vs $want ($res)"
            done
        done
    fi
    kill $spid 2>/dev/null; wait $spid 2>/dev/null

    # the server's long-document fields on a decoder: TEI truncate false = --windows, truncate true +
    # Left = --truncate left, Cohere v1 max_chunks_per_doc = --windows, nothing = the reference's cut
    "$R" serve -m "$M" --port 0 --quiet --max-length 120 2>"$tmp/serve2.log" &
    spid=$!
    port=$(serve_port "$tmp/serve2.log" "$spid")
    if [ -z "$port" ]; then
        bad "serve --max-length 120: $(cat "$tmp/serve2.log")"
    else
        LDJ=$($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$LD")
        for case in "--windows|/rerank|\"texts\": [$LDJ], \"raw_scores\": true, \"truncate\": false" \
                    "--truncate left|/rerank|\"texts\": [$LDJ], \"raw_scores\": true, \"truncate\": true, \"truncation_direction\": \"Left\"" \
                    "--windows|/v1/rerank|\"documents\": [$LDJ], \"max_chunks_per_doc\": 10" \
                    "|/rerank|\"texts\": [$LDJ], \"raw_scores\": true" \
                    "|/v1/rerank|\"documents\": [$LDJ]"; do
            flag=${case%%|*} rest=${case#*|}; path=${rest%%|*} fields=${rest#*|}
            # shellcheck disable=SC2086
            want=$(echo "$LDJ" | "$R" rank -m "$M" -q "$Q" --max-length 120 --raw $flag | jq_score)
            got=$(curl -s -X POST "http://127.0.0.1:$port$path" -H 'Content-Type: application/json' \
                -d "{\"query\": \"$Q\", $fields}")
            res=$($PY -c 'import json,math,sys
j = json.loads(sys.argv[1]); want = float(sys.argv[2])
if isinstance(j, list): s = j[0]["score"]
else:
    s = j["results"][0]["relevance_score"]; s = math.log(s / (1 - s))
print(abs(s - want) < 2e-3)' "$got" "$want" 2>&1)
            [ "$res" = True ] && ok "serve $path (${fields##*\]}) = rank ${flag:-(default)}" ||
                bad "serve $path $fields: $got vs $want ($res)"
        done
        info=$(curl -s "http://127.0.0.1:$port/info")
        $PY -c 'import json,sys; j = json.loads(sys.argv[1])
sys.exit(not (j["template"] == "qwen3-reranker" and j["instruction"]["supported"] is True and
              "web search" in j["instruction"]["default"] and j["long_documents"] == "reference_cut"))' "$info" &&
            ok "/info on a decoder: template, instruction, long documents" || bad "/info on a decoder: $info"
    fi
    kill $spid 2>/dev/null; wait $spid 2>/dev/null
fi

# encoders ignore an instruction, and say so: /info, and a note on stderr from rank / score
E=$TD/models/xlmr_f32
if [ -f "$E/tokenizer.json" ]; then
    out=$(echo '"d"' | "$R" rank -m "$E" -q q --instruction "Find the city" 2>"$tmp/err")
    grep -q "instruction is ignored" "$tmp/err" && grep -q relevance_score <<<"$out" &&
        ok "rank --instruction on an encoder: $(cat "$tmp/err")" || bad "rank --instruction on an encoder: $(cat "$tmp/err")"
    echo '{"query": "q", "document": "d", "instruction": "x"}' | "$R" score -m "$E" >/dev/null 2>"$tmp/err"
    grep -q '"instruction" is ignored' "$tmp/err" && ok "score instruction line on an encoder: note" ||
        bad "score instruction on an encoder: $(cat "$tmp/err")"
    "$R" serve -m "$E" --port 0 --quiet 2>"$tmp/serve3.log" &
    spid=$!
    port=$(serve_port "$tmp/serve3.log" "$spid")
    info=$(curl -s "http://127.0.0.1:$port/info")
    $PY -c 'import json,sys; j = json.loads(sys.argv[1]); i = j["instruction"]
sys.exit(not (j["template"] == "none" and i["supported"] is False and "ignored" in i["note"] and
              i["default"] is None and j["long_documents"] == "windows"))' "$info" 2>/dev/null &&
        ok "/info on an encoder notes that instruction is ignored" || bad "/info on an encoder: $info"
    kill $spid 2>/dev/null; wait $spid 2>/dev/null
else
    skipped "encoder instruction notes: no xlmr_f32 test model with a tokenizer"
fi

# opt-in (RR_FULL_DEC=1): the full Qwen3-Reranker-0.6B shape (tools/gen_decoder.py --full), fp32 raw scores
# against its float64 reference, and bf16 / int8 against fp32 (printed: the accuracy the README reports)
F=$TD/full/dec_qwen3_bf16
if [ "${RR_FULL_DEC:-0}" != 1 ]; then
    skipped "full Qwen3-Reranker-0.6B shape: set RR_FULL_DEC=1 (after tools/gen_decoder.py --full)"
elif [ ! -f "$F/.complete" ] || [ ! -f "$TD/golden/full_dec_qwen3_bf16.jsonl" ]; then
    bad "RR_FULL_DEC=1 but no $F (run /usr/bin/python3 tools/gen_decoder.py --out $TD --full)"
else
    G=$TD/golden/full_dec_qwen3_bf16.jsonl
    $PY -c 'import json,sys
for l in open(sys.argv[1]): print(json.dumps({"input_ids": json.loads(l)["input_ids"]}))' "$G" >"$tmp/full.in"
    for p in fp32 bf16 int8; do
        "$R" score -m "$F" --raw --precision $p <"$tmp/full.in" >"$tmp/full.$p" 2>"$tmp/err" || bad "full $p: $(cat "$tmp/err")"
    done
    res=$($PY -c 'import json,math,sys
g = [json.loads(l)["raw"] for l in open(sys.argv[1])]
o = {p: [json.loads(l)["score"] for l in open(sys.argv[2] + "." + p)] for p in ("fp32", "bf16", "int8")}
sg = lambda x: 1 / (1 + math.exp(-x))
d = max(abs(a - b) for a, b in zip(g, o["fp32"]))
rep = ["fp32 max |raw - ref| %.2g over %d sequences (raw %.1f..%.1f)" % (d, len(g), min(g), max(g))]
for p in ("bf16", "int8"):
    dr = [abs(a - b) for a, b in zip(o[p], o["fp32"])]
    ds = [abs(sg(a) - sg(b)) for a, b in zip(o[p], o["fp32"])]
    rep.append("%s vs fp32: max |d raw| %.3f mean %.3f, max |d sigmoid| %.4f" % (p, max(dr), sum(dr) / len(dr), max(ds)))
print(len(g) == len(o["fp32"]) and d <= 1e-4, "; ".join(rep))' "$G" "$tmp/full")
    [[ $res == True* ]] && ok "full Qwen3-Reranker-0.6B shape: ${res#True }" || bad "full shape: $res"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
