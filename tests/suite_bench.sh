#!/usr/bin/env bash
# suite_bench.sh -- `rerank bench` on a tiny generated model: every workload kind and precision
# runs, prints the kernel table, pairs/s, GFLOP/s and peak RSS; bad arguments fail cleanly.
set -u
B=${RR_BUILD:-build}
D=${RR_TESTDATA:-$B/testdata}/models/jina_f32
pass=0 fail=0 skip=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
if [ ! -d "$D" ]; then
    echo "skipped: no generated models"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in fp32 bf16 int8 auto; do
    if "$B/rerank" bench -m "$D" --precision "$p" --repeat 1 --threads 2 >"$tmp/out" 2>&1 &&
        grep -q "^pairs/s [0-9.]* .*GFLOP/s" "$tmp/out" && grep -q "kernels " "$tmp/out" &&
        grep -q "^peak RSS [0-9]* MB" "$tmp/out" && grep -q "25600 tokens (256..256" "$tmp/out"; then
        ok "bench w1 --precision $p"
    else
        bad "bench w1 --precision $p"; cat "$tmp/out"
    fi
done
if "$B/rerank" bench -m "$D" --workload w2 --repeat 1 >"$tmp/out" 2>&1 && grep -q "^workload w2: 100 pairs" "$tmp/out"; then
    ok "bench w2"
else
    bad "bench w2"; cat "$tmp/out"
fi
# w3: 20 long pairs, capped at the tiny model's maximum length
if "$B/rerank" bench -m "$D" --workload w3 --repeat 1 >"$tmp/out" 2>&1 && grep -q "^workload w3: 20 pairs" "$tmp/out"; then
    ok "bench w3"
else
    bad "bench w3"; cat "$tmp/out"
fi
echo '{"w1": [[0, 7, 8, 2, 2, 9, 2], [0, 5, 2]], "w2": [[0, 6, 2]]}' >"$tmp/w.json"
if "$B/rerank" bench -m "$D" --workload "$tmp/w.json" --key w2 --repeat 1 >"$tmp/out" 2>&1 &&
    grep -q "1 pairs, 3 tokens" "$tmp/out"; then
    ok "bench FILE --key"
else
    bad "bench FILE --key"; cat "$tmp/out"
fi
# --seconds keeps running past --repeat until that much time has passed (a tiny workload: many runs)
if "$B/rerank" bench -m "$D" --workload "$tmp/w.json" --key w1 --repeat 2 --seconds 1 >"$tmp/out" 2>&1 &&
    runs=$(grep -c "^run [0-9]*:" "$tmp/out") && [ "$runs" -gt 2 ] &&
    grep -q "(best of $runs; median [0-9.]* s; mean [0-9.]* pairs/s)" "$tmp/out"; then
    ok "bench --seconds repeats until the time has passed ($runs runs)"
else
    bad "bench --seconds"; cat "$tmp/out"
fi
if "$B/rerank" bench -m "$D" --seconds -1 >"$tmp/out" 2>&1; then bad "negative --seconds fails"; else ok "negative --seconds fails"; fi
if "$B/rerank" bench -m "$D" --workload "$tmp/missing.json" >"$tmp/out" 2>&1; then
    bad "missing workload file fails"
else
    grep -q "cannot open" "$tmp/out" && ok "missing workload file fails" || bad "missing workload file message"
fi
if "$B/rerank" bench -m "$D" --workload q1 >"$tmp/out" 2>&1; then
    bad "workload q1 on an encoder fails"
else
    grep -q "workload q1 is the decoder rerankers'" "$tmp/out" && ok "workload q1 on an encoder fails, naming why" ||
        bad "workload q1 on an encoder: message"
fi
if "$B/rerank" bench -m "$D" --precision fp64 >"$tmp/out" 2>&1; then bad "bad precision fails"; else ok "bad precision fails"; fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
