#!/usr/bin/python3
"""accuracy_pairs.py OUT -- writes the 1,000 token-id pairs on which precision is judged: one JSON line
{"input_ids": <s> q </s></s> d </s>} each, q 4..24 and d 8..100 random ids of the XLM-R vocabulary, fixed seed.
tests/suite_fullmodel.sh (bf16/int8 against fp32) and bench/int8_accuracy.sh (rerank int8 beside ONNX Runtime's
dynamic int8) read the same file, so their numbers are on the same pairs."""
import json
import sys

import numpy as np

rng = np.random.default_rng(2026)
with open(sys.argv[1], "w") as f:
    for _ in range(1000):
        q = rng.integers(5, 250000, size=int(rng.integers(4, 25))).tolist()
        d = rng.integers(5, 250000, size=int(rng.integers(8, 101))).tolist()
        f.write(json.dumps({"input_ids": [0] + q + [2, 2] + d + [2]}) + "\n")
