#!/usr/bin/env bash
# suite_python.sh -- the Python package (python/): builds it in place (make python), runs its pytest
# suite (python/tests: every method against the CLI and the float64 reference, the model card example,
# threads, Ctrl-C, memory, bad input), then installs it with pip into a fresh virtual environment,
# offline, and imports it from another folder. Skips cleanly without Debian's python3-dev or
# python3-pytest, and under the sanitizers (the extension would need the sanitizer runtime preloaded).
set -u
BUILD=${RR_BUILD:-build}
TD=${RR_TESTDATA:-$BUILD/testdata}
PY=/usr/bin/python3
pass=0 fail=0 skip=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

inc=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
if [ ! -x "$PY" ] || [ ! -f "$inc/Python.h" ]; then
    echo "skipped: needs Debian's python3-dev (Python.h)"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
if ! $PY -c 'import pytest, numpy, setuptools' 2>/dev/null; then
    echo "skipped: needs python3-pytest, python3-numpy and python3-setuptools"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
case "$BUILD" in *asan*|*fuzz*)
    echo "skipped under the sanitizers: the extension would need their runtime preloaded into python3"
    echo "0 passed, 0 failed, 1 skipped"; exit 0 ;;
esac

# 1. build in place
if out=$(make --no-print-directory BUILD="$BUILD" python 2>&1); then ok "make python"
else echo "$out" | tail -n 20; bad "make python"; echo "$pass passed, $fail failed, $skip skipped"; exit 1; fi

# 2. the pytest suite; its summary line ("== 3 failed, 70 passed, 2 skipped in 9.1s ==") is added in
log=$(mktemp)
RR_BUILD=$BUILD RR_TESTDATA=$TD PYTHONPATH=python timeout 1800 $PY -m pytest -q -p no:cacheprovider python/tests 2>&1 | tee "$log"
summary=$(grep -E '^=*[ ]*[0-9]+ (passed|failed|skipped|error)' "$log" | tail -n 1)
[ -n "$summary" ] || summary=$(tail -n 1 "$log")
num() { grep -oE "[0-9]+ $1" <<<"$summary" | grep -oE '[0-9]+' || echo 0; }
p=$(num passed) f=$(num failed) s=$(num skipped) e=$(num errors) e1=$(num error)
pass=$((pass + p)) fail=$((fail + f + e + e1)) skip=$((skip + s))
if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then bad "pytest ended without a summary"; fi
rm -f "$log"

# 3. pip install into a virtual environment made from Debian's Python, offline, then import anywhere
if $PY -c 'import venv, ensurepip' 2>/dev/null || [ -x /usr/bin/pip3 ]; then
    venv=$(mktemp -d)
    if $PY -m venv --system-site-packages "$venv/env" >/dev/null 2>&1 &&
       out=$(cd python && RERANK_BUILD=$(cd .. && pwd)/$BUILD "$venv/env/bin/pip" install -q --no-index --no-build-isolation . 2>&1) &&
       got=$(cd "$venv" && "$venv/env/bin/python" -c 'import rerank, os; print(rerank.__version__, os.path.dirname(rerank.__file__))' 2>&1) &&
       grep -q "$venv/env" <<<"$got"; then
        ok "pip install --no-index --no-build-isolation ./python into a venv; import from another folder: $got"
    else
        echo "${out:-}"; bad "pip install into a venv: ${got:-}"
    fi
    rm -rf "$venv" python/build python/rerank.egg-info
else
    echo "skip pip install into a venv: needs python3-venv"; skip=$((skip + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
