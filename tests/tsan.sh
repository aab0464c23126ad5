#!/usr/bin/env bash
# tsan.sh BUILD -- `make tsan`: the engine and server unit tests (build/run_tests engine, server) and
# the server suite (tests/suite_server.sh: real clients, 64-client load, SIGTERM under load) run on
# the ThreadSanitizer build in BUILD (default build-tsan). Any ThreadSanitizer report fails the run:
# halt_on_error stops the process at the first one, and the output is searched for reports too. The
# load test runs 20 s: a TSan server answers 64 clients about 10x slower, and needs answers after warm-up.
# Suppressions, each with its reason, are in tests/tsan.supp. Prints "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
B=${1:-build-tsan}
export RR_TESTDATA=${RR_TESTDATA:-build/testdata}
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp ${TSAN_OPTIONS:-}"
pass=0 fail=0 skip=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# ASLR with many random bits breaks ThreadSanitizer's fixed memory layout on some kernels
# ("unexpected memory mapping"): run without randomization when setarch allows it.
NORAND=
if setarch "$(uname -m)" -R true 2>/dev/null; then NORAND="setarch $(uname -m) -R"; fi

add_summary() { # name: adds the last "N passed, N failed[, N skipped]" line of $log
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    grep -E '^(not ok|FAIL)' "$log" | head -20
    if grep -q 'WARNING: ThreadSanitizer' "$log"; then
        grep -A30 'WARNING: ThreadSanitizer' "$log" | head -60
        echo "FAIL $1: ThreadSanitizer report"
        fail=$((fail + 1))
    fi
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
        pass=$((pass + BASH_REMATCH[1])) fail=$((fail + BASH_REMATCH[2])) skip=$((skip + ${BASH_REMATCH[4]:-0}))
        echo "== $1: $line"
    else
        tail -n 20 "$log"
        echo "FAIL $1: ended without a summary"
        fail=$((fail + 1))
    fi
}

if [ ! -x "$B/run_tests" ] || ! nm -an "$B/run_tests" 2>/dev/null | grep -q __tsan_init; then
    echo "tsan: $B/run_tests is missing or not built with -fsanitize=thread (make tsan builds it)"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
for filter in engine server_; do
    timeout 1200 $NORAND "$B/run_tests" "$filter" >"$log" 2>&1
    add_summary "run_tests $filter"
done
RR_BUILD=$B RR_SERVER_LOAD_SECONDS=${RR_SERVER_LOAD_SECONDS:-20} timeout 1200 $NORAND bash tests/suite_server.sh >"$log" 2>&1
add_summary "suite_server.sh"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
