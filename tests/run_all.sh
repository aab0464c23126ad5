#!/usr/bin/env bash
# run_all.sh BUILD -- runs every test suite against the binaries in BUILD and prints the total as
# "N passed, N failed, N skipped" on the last line; exits non-zero if anything failed.
#
# Suites: the C unit tests (BUILD/run_tests) and every tests/suite_*.sh. Each suite prints its own
# "N passed, N failed[, N skipped]" line; a suite that exits non-zero without one counts as 1 failed.
# Test models are generated first by tools/gen_models.py into BUILD/testdata (skipped, not failed,
# where Debian's python3-torch is missing: the tests that need them skip too).
set -u
BUILD=${1:-build}
export RR_BUILD=$BUILD
export RR_TESTDATA=${RR_TESTDATA:-$BUILD/testdata}
PY=/usr/bin/python3
total_p=0 total_f=0 total_s=0
logdir=$(mktemp -d)

count() { # suite-name logfile exit-code
    local line p f s
    line=$(grep -E '^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
    if [ -z "$line" ]; then
        if [ "$3" -ne 0 ]; then total_f=$((total_f + 1)); echo "== $1: exited $3 without a summary"; fi
        return
    fi
    p=$(sed -E 's/^([A-Za-z_-]+: )?([0-9]+) passed.*/\2/' <<<"$line")
    f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || echo 0)
    total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + ${s:-0}))
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then total_f=$((total_f + 1)); echo "== $1: exited $3"; fi
}

run_suite() { # name command...
    local name=$1; shift
    echo "== $name"
    local t0=$SECONDS
    "$@" >"$logdir/$name.log" 2>&1
    local rc=$?
    cat "$logdir/$name.log"
    echo "== $name took $((SECONDS - t0)) s"
    count "$name" "$logdir/$name.log" "$rc"
}

if [ -x "$PY" ] && "$PY" -c 'import torch, numpy' 2>/dev/null; then
    if [ ! -f "$RR_TESTDATA/.complete" ] || [ tools/gen_models.py -nt "$RR_TESTDATA/.complete" ] ||
       [ tools/gen_decoder.py -nt "$RR_TESTDATA/.complete" ] ||
       [ tools/gen_models_ext.py -nt "$RR_TESTDATA/.complete" ]; then
        echo "== generating test models into $RR_TESTDATA"
        if ! "$PY" tools/gen_models.py --out "$RR_TESTDATA"; then
            echo "== gen_models.py failed"; total_f=$((total_f + 1))
        fi
    fi
    # RR_FULL=1: the full-size model before the unit tests, so enc_kernels_full_size_model runs too
    # (suite_fullmodel.sh would generate it only after them)
    if [ "${RR_FULL:-0}" = 1 ] && [ ! -f "$RR_TESTDATA/full/jina_v2_bf16/.complete" ]; then
        echo "== generating the full-size model into $RR_TESTDATA/full (RR_FULL=1)"
        if ! "$PY" tools/gen_models.py --out "$RR_TESTDATA" --full >/dev/null; then
            echo "== gen_models.py --full failed"; total_f=$((total_f + 1))
        fi
    fi
    # RR_FULL_EXT=1: the full-size JinaBERT v1, mGTE and ModernBERT models (model_ext_full_size_models);
    # apart from RR_FULL because their float64 references take long
    if [ "${RR_FULL_EXT:-0}" = 1 ] && { [ ! -f "$RR_TESTDATA/full/jina_v1_bf16/.complete" ] ||
        [ ! -f "$RR_TESTDATA/full/mgte_bf16/.complete" ] || [ ! -f "$RR_TESTDATA/full/modernbert_bf16/.complete" ]; }; then
        echo "== generating the full-size new-family models into $RR_TESTDATA/full (RR_FULL_EXT=1)"
        if ! "$PY" tools/gen_models.py --out "$RR_TESTDATA" --full-ext >/dev/null; then
            echo "== gen_models.py --full-ext failed"; total_f=$((total_f + 1))
        fi
    fi
    # RR_FULL_DEC=1: the full Qwen3-Reranker-0.6B shape for suite_decoder.sh's opt-in block (~1.2 GB, 6 min)
    if [ "${RR_FULL_DEC:-0}" = 1 ] && [ ! -f "$RR_TESTDATA/full/dec_qwen3_bf16/.complete" ]; then
        echo "== generating the full Qwen3-Reranker-0.6B shape into $RR_TESTDATA/full (RR_FULL_DEC=1)"
        if ! "$PY" tools/gen_decoder.py --out "$RR_TESTDATA" --full >/dev/null; then
            echo "== gen_decoder.py --full failed"; total_f=$((total_f + 1))
        fi
    fi
else
    echo "== /usr/bin/python3 with torch and numpy not found: model tests will skip"
fi

# The unit tests in one worker process per core (at most 4; RR_TEST_JOBS overrides): they are
# independent, and under the sanitizers they are most of the run's time.
jobs=${RR_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 4 ] && jobs=4
run_suite unit "$BUILD/run_tests" -j "$jobs"
for s in tests/suite_*.sh; do
    [ -e "$s" ] || continue
    n=$(basename "$s" .sh)
    run_suite "${n#suite_}" bash "$s"
done
rm -rf "$logdir"
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]
