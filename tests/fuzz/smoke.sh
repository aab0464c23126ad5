#!/usr/bin/env bash
# smoke.sh -- `make fuzz-smoke`: builds every libFuzzer target (tests/fuzz/fuzz_*.c) and runs each for
# FUZZ_SECONDS (default 60) on a scratch copy of its seed corpus tests/fuzz/corpus/<name>/, so the
# committed corpus never changes. A target passes when libFuzzer ends without a finding (crash, leak,
# sanitizer report, timeout or out-of-memory); a finding is kept in build-fuzz/findings/<name>/ with
# the last lines of the log. Skips with a message when clang is missing, and skips fuzz_tokenizer
# when the shared tokenizer fixtures ($RR_SHARED, default ../shared) are absent.
# FUZZ_ONLY="name ..." limits the run to those targets; FUZZ_OUT sets the findings folder.
# Prints "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-60}
CC_FUZZ=${FUZZ_CC:-clang}
SHARED=${RR_SHARED:-../shared}
OUT=${FUZZ_OUT:-build-fuzz/findings}
targets=$(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/\(.*\)\.c|\1|')
# FUZZ_ONLY="jsonl trec" runs only those targets
if [ -n "${FUZZ_ONLY:-}" ]; then targets=$(for t in $FUZZ_ONLY; do echo "fuzz_$t"; done); fi
n=$(echo "$targets" | wc -w)
if ! command -v "$CC_FUZZ" >/dev/null 2>&1; then
    echo "fuzz-smoke: $CC_FUZZ not found (scripts/install-deps.sh installs clang): skipped"
    echo "0 passed, 0 failed, $n skipped"
    exit 0
fi
mkdir -p build-fuzz
if ! nice make -j2 fuzz FUZZ_CC="$CC_FUZZ" >build-fuzz/build.log 2>&1; then
    tail -20 build-fuzz/build.log
    echo "fuzz-smoke: building the targets failed (build-fuzz/build.log)"
    echo "0 passed, $n failed, 0 skipped"
    exit 1
fi
# One target per core at a time (FUZZ_JOBS overrides): each still fuzzes for SECS on its own core.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
case $jobs in '' | *[!0-9]* | 0) echo "fuzz-smoke: FUZZ_JOBS=$jobs is not a count of 1 or more: using 1"; jobs=1 ;; esac
res=$(mktemp -d)
trap 'rm -rf "$res"' EXIT
run_target() { # target: writes "ok", "fail" or "skip" and its message lines to $res/<target>
    local t=$1 name=${1#fuzz_} work log rc stats cov
    if [ "$t" = fuzz_tokenizer ] && [ ! -d "$SHARED/fixtures/tokenizers" ]; then
        printf 'skip\n  SKIP %s: no %s/fixtures/tokenizers\n' "$t" "$SHARED" >"$res/$t"
        return
    fi
    work=$(mktemp -d)
    mkdir -p "$work/corpus" "$OUT/$name"
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/corpus/"
    log=$OUT/$name/log.txt
    RR_SHARED="$SHARED" TMPDIR="$work" nice "build-fuzz/$t" -max_total_time="$SECS" -timeout=25 -rss_limit_mb=2048 \
        -artifact_prefix="$OUT/$name/" -print_final_stats=1 "$work/corpus" >"$log" 2>&1
    rc=$?
    stats=$(grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | sed 's/stat:://' | tr '\n' ' ')
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        printf 'ok\n  ok   %s (%ss, %s%s)\n' "$t" "$SECS" "$stats" "$cov" >"$res/$t"
    else
        { printf 'fail\n  FAIL %s (exit %s): findings and log in %s/\n' "$t" "$rc" "$OUT/$name"
          grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -5 | sed 's/^/       /'; } >"$res/$t"
    fi
    rm -rf "$work"
}
for t in $targets; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    run_target "$t" &
done
wait
pass=0 fail=0 skip=0
for t in $targets; do
    case $(head -n 1 "$res/$t" 2>/dev/null) in
    ok) pass=$((pass + 1)) ;;
    skip) skip=$((skip + 1)) ;;
    *) fail=$((fail + 1)) ;;
    esac
    if [ -f "$res/$t" ]; then tail -n +2 "$res/$t"; else echo "  FAIL $t: no result"; fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
