#!/usr/bin/env bash
# tokenizer_bench.sh -- single-thread tokenizer throughput over the 7 MB multilingual corpus:
# rerank (`rerank tokenize --bench`, encode calls only) side by side with the Rust Hugging Face
# tokenizers (npm @anush008/tokenizers: encodeBatch over all lines with RAYON_NUM_THREADS=1, which
# includes N-API conversion of the results). Special tokens on, no truncation, best of 3.
#
#   bench/tokenizer_bench.sh [BUILD] [SHARED]
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SHARED=${2:-../shared}
CORPUS=$SHARED/fixtures/corpus/multilingual_corpus.txt
T=$SHARED/fixtures/tokenizers
for name in xlmr_pruned32k bert-base-uncased t5-small qwen3; do
    c=$("$BUILD/rerank" tokenize -m "$T/$name" --bench "$CORPUS" --repeat 3 | sed -E 's/.*"mb_per_s": ([0-9.]+).*/\1/')
    r=$(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false node -e '
const tk = require(process.cwd() + "/tests/node_modules/@anush008/tokenizers");
const fs = require("fs");
const text = fs.readFileSync(process.argv[1], "utf8");
const lines = text.split("\n"); if (lines[lines.length - 1] === "") lines.pop();
const t = tk.Tokenizer.fromFile(process.argv[2]);
t.disablePadding(); t.disableTruncation();
(async () => {
  let best = 1e9;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < lines.length; i += 8192) await t.encodeBatch(lines.slice(i, i + 8192), { addSpecialTokens: true });
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log((Buffer.byteLength(text) / 1e6 / best).toFixed(2));
})();' "$CORPUS" "$T/$name/tokenizer.json")
    printf '%-20s rerank %6s MB/s   HF tokenizers (Rust, 1 thread) %6s MB/s   ratio %sx\n' "$name" "$c" "$r" \
        "$(awk -v a="$c" -v b="$r" 'BEGIN { printf "%.1f", a / b }')"
done
