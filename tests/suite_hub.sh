#!/usr/bin/env bash
# suite_hub.sh -- `rerank pull` against a local mock of the Hugging Face hub (tests/hub_mock.py,
# 127.0.0.1 only): cache layout, resume, corrupted blobs, offline mode, errors. The checks live in
# tests/hub_suite.py; this wrapper bounds the run time and reports a failure if Python is missing.
set -u
PY=/usr/bin/python3
if [ ! -x "$PY" ]; then
    echo "suite_hub: $PY not found"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
export RR_BUILD=${RR_BUILD:-build}
# no proxy may divert the requests to 127.0.0.1
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
timeout -k 5 300 "$PY" "$(dirname "$0")/hub_suite.py"
rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "suite_hub: timed out"; echo "0 passed, 1 failed, 0 skipped"; fi
exit $rc
