#!/usr/bin/env bash
# suite_tokenizer.sh -- token ids of `rerank tokenize` against the Rust Hugging Face tokenizers
# (npm @anush008/tokenizers, installed into tests/node_modules by scripts/install-deps.sh) on every
# fixture tokenizer.json: the whole multilingual corpus as singles and as pairs of consecutive lines
# truncated at 64 and 512, plus the golden files. Reference ids are computed at test time (pairs
# are cached under $RR_BUILD/tokref; the first run takes a few minutes). Skips cleanly without
# ../shared, node or the package. RR_TOK_QUICK=1 uses every 20th corpus line.
set -u
cd "$(dirname "$0")/.."
BUILD=${RR_BUILD:-build}
SHARED=${RR_SHARED:-../shared}
skip() { echo "SKIP: $1"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }
[ -d "$SHARED/fixtures/tokenizers" ] || skip "$SHARED/fixtures not found"
command -v node >/dev/null || skip "node not installed"
[ -d tests/node_modules/@anush008/tokenizers ] || skip "tests/node_modules/@anush008/tokenizers missing (scripts/install-deps.sh)"
[ -x "$BUILD/rerank" ] || { echo "$BUILD/rerank not built"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
args=()
[ "${RR_TOK_QUICK:-0}" = 1 ] && args+=(--quick)
# Two processes share the tokenizers (each is bound by its one JavaScript thread, and the machines
# this runs on have two cores); their logs are printed in order and their counts summed.
n=2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for ((i = 0; i < n; i++)); do
    RR_BUILD=$BUILD node tests/tok_conformance.js "$SHARED" "$BUILD/rerank" "${args[@]}" --shard "$i/$n" \
        >"$dir/$i.log" 2>&1 &
done
wait
p=0 f=0 s=0
for ((i = 0; i < n; i++)); do
    grep -vE '^[0-9]+ passed, [0-9]+ failed' "$dir/$i.log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$dir/$i.log" | tail -n 1)
    if [ -z "$line" ]; then echo "FAIL shard $i/$n ended without a summary"; f=$((f + 1)); continue; fi
    read -r lp _ lf _ ls _ <<<"${line//,/}"
    p=$((p + lp)) f=$((f + lf)) s=$((s + ${ls:-0}))
done
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
