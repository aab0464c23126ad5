#!/usr/bin/env bash
# suite_realmodel.sh -- the published scores of jina-reranker-v2-base-multilingual for the 10 skincare
# documents of its model card (compute_score, max_length 1024), checked when a real model folder is
# given in RR_REAL_MODEL; skipped otherwise. The reference ran in bf16, so the tolerance is 1e-2.
set -u
BUILD=${RR_BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${RR_REAL_MODEL:-}" ]; then
    echo "skipped: set RR_REAL_MODEL to a jina-reranker-v2-base-multilingual folder (or repo id) to run"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
expected=(0.8311430811882019 0.09401018172502518 0.6334102749824524 0.08269733935594559 0.7620701193809509
          0.09947021305561066 0.9263036847114563 0.05834583938121796 0.8418256044387817 0.11124119907617569)
query="Organic skincare products for sensitive skin"
pass=0 fail=0
for prec in fp32 auto; do
    out=$(/usr/bin/python3 -c '
import json, sys
q = sys.argv[1]
for line in open(sys.argv[2], encoding="utf-8"):
    print(json.dumps({"query": q, "document": json.loads(line)}, ensure_ascii=False))
' "$query" "$here/../examples/skincare.jsonl" | "$BUILD/rerank" score -m "$RR_REAL_MODEL" --max-length 1024 --precision $prec)
    if [ $? -ne 0 ]; then echo "FAIL $prec: rerank score failed"; fail=$((fail + 1)); continue; fi
    i=0
    while read -r line; do
        got=$(sed -E 's/.*"score": ([-0-9.eE+]+).*/\1/' <<<"$line")
        if /usr/bin/python3 -c "import sys; sys.exit(0 if abs(float('$got') - ${expected[$i]}) <= 1e-2 else 1)"; then
            pass=$((pass + 1))
        else
            echo "FAIL $prec document $i: $got vs ${expected[$i]}"; fail=$((fail + 1))
        fi
        i=$((i + 1))
    done <<<"$out"
    [ $i -eq 10 ] || { echo "FAIL $prec: $i scores"; fail=$((fail + 1)); }
done
echo "$pass passed, $fail failed, 0 skipped"
[ $fail -eq 0 ]
