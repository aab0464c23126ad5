#!/usr/bin/env bash
# weights_rss.sh MODEL_DIR [BINARY...] -- the memory cost of how weights are held: peak RSS (/usr/bin/time
# %M) of `rerank score` on 64 sequences of 256 random token ids below min(vocab_size, 250000) (fp32, 2
# threads), twice per binary
# (default build/rerank), and what reading the whole weights file into anonymous memory would add at
# most (its size; the 250k-row embedding table is most of it). Used for docs/ARCHITECTURE.md
# ("Weights a running process depends on").
set -eu
MODEL=${1:?usage: bench/weights_rss.sh MODEL_DIR [BINARY...]}
shift
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(build/rerank)
in=$(mktemp)
trap 'rm -f "$in" "$in.t"' EXIT
/usr/bin/python3 - "$in" "$MODEL/config.json" <<'PY'
import json, random, sys
r = random.Random(7)
top = min(250000, json.load(open(sys.argv[2]))["vocab_size"])  # ids inside any family's vocabulary
with open(sys.argv[1], "w") as f:
    for _ in range(64):
        f.write(json.dumps({"input_ids": [0] + [r.randrange(5, top) for _ in range(254)] + [2]}) + "\n")
PY
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
for b in "${bins[@]}"; do
    for rep in 1 2; do
        /usr/bin/time -o "$in.t" -f "%M %e" "$b" score -m "$MODEL" --threads 2 --precision fp32 <"$in" >/dev/null
        read -r kb secs <"$in.t"
        echo "$b run $rep: peak RSS $((kb / 1024)) MB, $secs s"
    done
done
w=$(stat -c %s "$MODEL"/model.safetensors 2>/dev/null || du -cb "$MODEL"/*.safetensors | tail -n 1 | cut -f1)
echo "weights file(s): $((w / 1048576)) MB (the upper bound on what a private in-memory copy would add)"
