#!/usr/bin/env bash
# suite_precision.sh -- the default precision is auto in every command: bf16 where the kernel table
# multiplies bf16 natively, else fp32, with RR_ISA forcing the table. For each table this CPU can
# run, `rerank score` and `rerank rank` without --precision give exactly the scores of the explicit
# precision auto should pick, and `rerank serve` / `rerank eval -m` report that precision. The bf16
# case runs only on a CPU with AVX512_BF16 (skipped elsewhere).
set -u
BUILD=${RR_BUILD:-build}
TD=${RR_TESTDATA:-build/testdata}
SHARED=${RR_SHARED:-../shared}
M=$TD/models/jina_f32
R=$BUILD/rerank
pass=0 fail=0 skip=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
skipped() { echo "skip $*"; skip=$((skip + 1)); }

if [ ! -d "$M" ]; then echo "skipped: no test model $M (tools/gen_models.py)"; echo "0 passed, 0 failed, 1 skipped"; exit 0; fi
tmp=$(mktemp -d); spid=""
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$tmp"' EXIT
printf '%s\n' '{"query": "what is a panda?", "document": "The giant panda is a bear native to China."}' \
    '{"query": "capital of France", "document": "Paris is the capital of France, and its largest city."}' >"$tmp/pairs"
printf '%s\n' '"The giant panda is a bear."' '"Paris is in France."' '"Pandas eat bamboo."' >"$tmp/docs"

flags=$(grep -m1 '^flags' /proc/cpuinfo)
cases=""
grep -qw avx2 <<<"$flags" && cases="$cases avx2:fp32"
grep -qw avx512f <<<"$flags" && cases="$cases avx512:fp32"
if grep -qw avx512_bf16 <<<"$flags"; then cases="$cases avx512bf16:bf16"; else skipped "bf16 default: this CPU has no AVX512_BF16"; fi
[ -n "$cases" ] || cases=" scalar:fp32"

for c in $cases; do
    isa=${c%%:*} want=${c#*:} other=bf16
    [ "$want" = bf16 ] && other=fp32
    export RR_ISA=$isa
    RR_ISA=$isa "$R" score -m "$M" --raw <"$tmp/pairs" >"$tmp/def" 2>"$tmp/err" || bad "RR_ISA=$isa score: $(cat "$tmp/err")"
    "$R" score -m "$M" --raw --precision "$want" <"$tmp/pairs" >"$tmp/want" 2>/dev/null
    "$R" score -m "$M" --raw --precision "$other" <"$tmp/pairs" >"$tmp/other" 2>/dev/null
    if cmp -s "$tmp/want" "$tmp/other"; then bad "RR_ISA=$isa: fp32 and bf16 give identical scores, the test cannot tell them apart"
    elif cmp -s "$tmp/def" "$tmp/want"; then ok "RR_ISA=$isa: rerank score without --precision = --precision $want ($(tr '\n' ' ' <"$tmp/def"))"
    else bad "RR_ISA=$isa: rerank score default $(tr '\n' ' ' <"$tmp/def") vs --precision $want $(tr '\n' ' ' <"$tmp/want")"; fi
    "$R" rank -m "$M" -q "giant panda" --raw --documents "$tmp/docs" >"$tmp/rdef" 2>/dev/null
    "$R" rank -m "$M" -q "giant panda" --raw --documents "$tmp/docs" --precision "$want" >"$tmp/rwant" 2>/dev/null
    if [ -s "$tmp/rdef" ] && cmp -s "$tmp/rdef" "$tmp/rwant"; then ok "RR_ISA=$isa: rerank rank without --precision = --precision $want"
    else bad "RR_ISA=$isa: rerank rank default differs from --precision $want"; fi
    # serve: the start-up line names the precision in use
    "$R" serve -m "$M" --port 0 2>"$tmp/serve.log" & spid=$!
    for _ in $(seq 1 300); do grep -q 'listening on' "$tmp/serve.log" && break; kill -0 "$spid" 2>/dev/null || break; sleep 0.05; done
    kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; spid=""
    if grep -q "listening on .*precision $want," "$tmp/serve.log"; then ok "RR_ISA=$isa: rerank serve runs $want by default"
    else bad "RR_ISA=$isa: rerank serve: $(head -n 3 "$tmp/serve.log")"; fi
    # eval -m: its start-up line names the precision too (needs a data set from ../shared)
    E=$SHARED/fixtures/eval/bfcl_multiple.jsonl
    if [ -f "$E" ]; then
        "$R" eval -m "$M" --data "$E" --task tools >/dev/null 2>"$tmp/eval.log"
        if grep -q "eval: model .*, $want, kernels $isa)" "$tmp/eval.log"; then ok "RR_ISA=$isa: rerank eval -m runs $want by default"
        else bad "RR_ISA=$isa: rerank eval: $(grep -m1 'eval: model' "$tmp/eval.log")"; fi
    else skipped "RR_ISA=$isa: rerank eval -m (no $E)"; fi
    unset RR_ISA
done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
