#!/usr/bin/env bash
# decoder_side_by_side.sh PART... -- workload Q1 of the decoder rerankers (1 query + 20 documents of 256 tokens in
# the Qwen3-Reranker prompt) on the full Qwen3-Reranker-0.6B shape (tools/gen_decoder.py --full: the real config,
# random bf16 weights), rerank against the peers of the issue, 2 threads, each timed as a whole process
# (/usr/bin/time: start, model load, scoring, exit):
#   rerank   `rerank rank` bf16 on the 20 document texts (tokenizer and prompt building included)
#   torch    bench/decoder_peers.py torch: a hand-written PyTorch bf16 module of the same shape (Debian python3-torch)
#   ort      bench/decoder_ort.js: ONNX Runtime fp32 (npm onnxruntime-node) on that module exported in fp32 with
#            torch.onnx.export (bench/decoder_peers.py export; Debian python3-onnx)
# PARTs: setup (model, export, inputs; not timed), rerank, torch, ort (one run each, appended to
# build/bench/dec_out/results.jsonl), table (medians and ratios of everything appended so far), clean (empties the
# results). Run each timed part on a quiet machine, e.g. `/work/wt/benchlock bash bench/decoder_side_by_side.sh
# rerank torch` (the peers load 1.2-2.4 GB: a part takes one to three minutes), and bracket the peers with rerank runs.
# Env: RR_THREADS (2), RR_PREC (bf16: rerank's precision), RR_TESTDATA (build/testdata).
set -u
cd "$(dirname "$0")/.."
TD=${RR_TESTDATA:-build/testdata}
F=$TD/full/dec_qwen3_bf16
W=build/bench/dec_q1
OUT=build/bench/dec_out
R=build/rerank
PY=/usr/bin/python3
TH=${RR_THREADS:-2}
PREC=${RR_PREC:-bf16}
mkdir -p "$W" "$OUT"
# the peers' Debian packages (as bench/side_by_side.sh installs them): PyTorch, the ONNX exporter's onnx, GNU time
need=""
for p in python3-torch python3-onnx python3-numpy time; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
[ -z "$need" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need; }
Q="What is the capital of China?"

timed() { # NAME CMD... -> one JSON line in results.jsonl with wall seconds, peak RSS and the command's JSON
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" ||
        { echo "$name failed: $(tail -n 5 "$OUT/$name.err")" >&2; return 1; }
    $PY - "$name" "$OUT/time.txt" "$OUT/$name.out" "$TH" >>"$OUT/results.jsonl" <<'EOF'
import json, sys
name, tf, of, th = sys.argv[1:]
wall, rss = open(tf).read().split()[-2:]
text = open(of).read().strip()
inner = {}
try:  # rerank rank: one JSON document over several lines
    inner = json.loads(text)
except ValueError:
    for l in text.splitlines()[::-1]:  # the peers: their last line
        try:
            inner = json.loads(l)
            break
        except ValueError:
            pass
if "results" in inner:  # rerank rank: keep the usage and the first score, not the whole answer
    inner = {"total_tokens": inner["usage"]["total_tokens"], "score0": inner["results"][0]["relevance_score"]}
print(json.dumps({"peer": name, "threads": int(th), "wall_s": float(wall), "maxrss_mb": int(rss) // 1024,
                  "inner": inner}))
EOF
    tail -n 1 "$OUT/results.jsonl"
}

for part in "$@"; do
    case $part in
    setup)
        [ -f "$F/.complete" ] || /work/wt/heavy nice $PY tools/gen_decoder.py --out "$TD" --full || exit 1
        [ -x "$R" ] || make -j2 || exit 1
        # the 20 documents of 256 one-token words (as `rerank bench --workload q1` draws them)
        $PY - "$W/docs.jsonl" <<'EOF'
import json, random, sys
W = [" the", " city", " river", " capital", " of", " and", " is", " a", " history", " people", " old", " new",
     " north", " south", " water", " long", " time", " first", " state", " world"]
rnd = random.Random(1234)
with open(sys.argv[1], "w") as f:
    for _ in range(20):
        f.write(json.dumps("".join(rnd.choice(W) for _ in range(256))[1:]) + "\n")
EOF
        L=$("$R" rank -m "$F" -q "$Q" --documents "$W/docs.jsonl" --no-documents --precision bf16 --threads "$TH" |
            $PY -c 'import json,sys; print(json.load(sys.stdin)["usage"]["total_tokens"] // 20)')
        echo "Q1 prompt length: $L tokens" | tee "$W/len.txt"
        if [ ! -f "$W/qwen3_fp32.onnx" ] || [ "$(cat "$W/len.export" 2>/dev/null)" != "$L" ]; then
            /work/wt/heavy nice $PY bench/decoder_peers.py export --model "$F" --len "$L" --out "$W" || exit 1
            echo "$L" >"$W/len.export"
        fi
        node bench/decoder_ort.js "$W/qwen3_fp32.onnx" "$W/ids.json" --check "$W/check.json" --reps 0 >/dev/null
        [ -d build/bench/node_modules/onnxruntime-node ] ||
            (cd build/bench && npm install --no-audit --no-fund --ignore-scripts --loglevel=error onnxruntime-node@1.30.0)
        ;;
    rerank)
        timed "rerank-$PREC" "$R" rank -m "$F" -q "$Q" --documents "$W/docs.jsonl" --no-documents --raw \
            --precision "$PREC" --threads "$TH" ;;
    torch)
        timed pytorch-bf16 $PY bench/decoder_peers.py torch --model "$F" --len "$(sed 's/.*: *\([0-9]*\).*/\1/' "$W/len.txt")" \
            --threads "$TH" ;;
    ort)
        timed ort-fp32 node bench/decoder_ort.js "$W/qwen3_fp32.onnx" "$W/ids.json" --threads "$TH" ;;
    table)
        echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
        $PY - "$OUT/results.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["peer"], []).append(r)
med = {p: statistics.median(x["wall_s"] for x in v) for p, v in by.items()}
ref = next((med[p] for p in med if p.startswith("rerank-bf16")), None)
print("| peer | runs | whole process, median s | all runs s | peak RSS MB | Q1 pairs/s | rerank bf16 is |")
print("|---|---|---|---|---|---|---|")
for p, v in by.items():
    ratio = "%.2fx faster" % (med[p] / ref) if ref and not p.startswith("rerank-bf16") else ""
    print("| %s | %d | %.2f | %s | %d | %.2f | %s |" % (p, len(v), med[p], " ".join("%.2f" % x["wall_s"] for x in v),
                                                     max(x["maxrss_mb"] for x in v), 20 / med[p], ratio))
EOF
        ;;
    clean) : >"$OUT/results.jsonl" ;;
    *) echo "usage: bench/decoder_side_by_side.sh setup|rerank|torch|ort|table|clean..." >&2; exit 2 ;;
    esac
done
