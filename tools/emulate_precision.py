#!/usr/bin/python3
"""emulate_precision.py -- an independent PyTorch emulation of rerank's reduced-precision contracts, to
tell the error a precision must have on a model from the error an implementation adds.

    /usr/bin/python3 tools/emulate_precision.py MODEL_DIR PAIRS.jsonl MODE > SCORES.jsonl

MODEL_DIR: a jina / xlmr / bert folder written by tools/gen_models.py (safetensors + config.json).
PAIRS.jsonl: lines {"input_ids": [...]} as `rerank score` reads them. MODE:
  fp32  the plain float32 forward (spec formulas, one sequence at a time)
  bf16  rerank's bf16 contract: every linear layer's input, and Q, K, V and the softmax
        probabilities, rounded to bf16 (nearest even); products and sums in float32. Weights are
        used as stored (a BF16 checkpoint is exact).
Prints {"score": raw logit} per line, as `rerank score --raw` does. Slow (about 0.5 s per 100-token
pair on one core): for measurements, not for the test suite."""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_models as G  # noqa: E402  (the loader of the float64 reference)


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("fp32", "bf16"):
        sys.exit("usage: emulate_precision.py MODEL_DIR PAIRS.jsonl fp32|bf16")
    folder, pairs, mode = sys.argv[1:]
    torch.set_num_threads(1)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    w = G.load_reference_weights(cfg, G.open_model(folder))
    t32 = lambda t: torch.as_tensor(np.asarray(t), dtype=torch.float32)
    pair = lambda wb: (t32(wb[0]), t32(wb[1]))
    layers = [{k: pair(v) for k, v in L.items()} for L in w["layers"]]
    pos, typ = t32(w["pos"]), t32(w["type"])
    emb_ln, head_d, head_o = pair(w["emb_ln"]), pair(w["head_dense"]), pair(w["head_out"])
    eps, nh, pad = w["eps"], w["heads"], w["pad"]

    def rnd(x):  # the bf16 contract's rounding point (identity in fp32)
        return x.to(torch.bfloat16).float() if mode == "bf16" else x

    def lin(x, wb):
        return rnd(x) @ wb[0].T + wb[1]

    def ln(x, wb):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * wb[0] + wb[1]

    for line in open(pairs):
        j = json.loads(line)
        ids = torch.tensor(j["input_ids"])
        S = len(ids)
        tt = torch.tensor(j.get("token_type_ids") or [0] * S)
        if w["family"] == "bert":
            p = torch.arange(S)
        else:
            m = (ids != pad).long()
            p = torch.cumsum(m, 0) * m + pad
        x = ln(t32(w["tok"](ids.numpy())) + pos[p] + typ[tt], emb_ln)      # [S, H]
        H = x.shape[1]
        dh = H // nh
        for L in layers:
            heads = lambda t: t.view(S, nh, dh).transpose(0, 1)          # [nh, S, dh]
            q, k, v = heads(lin(x, L["q"])), heads(lin(x, L["k"])), heads(lin(x, L["v"]))
            a = torch.softmax(rnd(q) @ rnd(k).transpose(1, 2) / math.sqrt(dh), -1)
            ctx = (rnd(a) @ rnd(v)).transpose(0, 1).reshape(S, H)
            h = ln(x + lin(ctx, L["o"]), L["ln1"])
            f = lin(h, L["fc1"])
            x = ln(h + lin(0.5 * f * (1 + torch.erf(f / math.sqrt(2))), L["fc2"]), L["ln2"])
        logit = lin(torch.tanh(lin(x[0], head_d)), head_o)
        print(json.dumps({"score": float(logit[0])}))


if __name__ == "__main__":
    main()
