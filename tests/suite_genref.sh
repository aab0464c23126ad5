#!/usr/bin/env bash
# suite_genref.sh -- checks the test-model generator's float64 reference (tools/gen_models.py --selfcheck):
# golden logits reproduce from the written files, the jina Wqkv layout equals the XLM-R layout, BERT
# matches torch.nn.TransformerEncoderLayer, and XLM-R matches ../shared/bench/xlmr_model.py (skipped
# without ../shared). Generates $RR_TESTDATA first when it is missing or stale. Last line:
# "N passed, N failed, N skipped".
set -u
PY=/usr/bin/python3
OUT=${RR_TESTDATA:-${RR_BUILD:-build}/testdata}
if [ ! -x "$PY" ] || ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
    echo "SKIP genref: /usr/bin/python3 with torch and numpy not found"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
exec "$PY" "$(dirname "$0")/../tools/gen_models.py" --out "$OUT" --selfcheck
