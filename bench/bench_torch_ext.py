#!/usr/bin/python3
"""PyTorch peers of the new encoder families for bench/families_side_by_side.sh, in the style of
../shared/bench/bench_torch.py: random-weight nn.Modules of the full-size jina-reranker-v1-base-en (JinaBERT: ALiBi,
GEGLU) and gte-multilingual-reranker-base (mGTE: rotary with NTK scaling, GLU) shapes, padded batches with an
attention mask, bf16 through torch.autocast (oneDNN), fp32 otherwise.

Usage: /usr/bin/python3 bench/bench_torch_ext.py --family jina_v1|mgte [--precision bf16|fp32] [--batch 16]
           [--reps 3] [--threads 2] [--workload w1|w2]
Prints one JSON line: pairs/s (median of reps) for the 100 pairs of the workload (w1: 100 x 256 tokens;
w2: 100 pairs of 32..512 tokens, as rerank bench's).
"""
import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    "jina_v1": dict(V=30528, H=768, L=12, NH=12, I=3072, T=2),
    "mgte": dict(V=250048, H=768, L=12, NH=12, I=3072, T=1, theta=20000.0, ntk=8.0),
}


def alibi_slopes(n):
    def geo(k):
        first = 2.0 ** (-(2.0 ** -(math.log2(k) - 3)))
        return [first * first ** i for i in range(k)]
    if math.log2(n).is_integer():
        return geo(n)
    p = 2 ** math.floor(math.log2(n))
    return geo(p) + alibi_slopes(2 * p)[0::2][:n - p]


class Layer(nn.Module):
    def __init__(self, s, fused):
        super().__init__()
        H, I = s["H"], s["I"]
        self.nh = s["NH"]
        self.qkv = nn.Linear(H, 3 * H)
        self.o = nn.Linear(H, H)
        self.ln1 = nn.LayerNorm(H, eps=1e-12)
        self.up = nn.Linear(H, 2 * I, bias=False)
        self.down = nn.Linear(I, H)
        self.ln2 = nn.LayerNorm(H, eps=1e-12)
        self.second = fused  # mGTE activates the second half

    def forward(self, x, bias, rope):
        B, S, H = x.shape
        d = H // self.nh
        q, k, v = self.qkv(x).view(B, S, 3, self.nh, d).permute(2, 0, 3, 1, 4)
        if rope is not None:
            cos, sin = rope
            h = d // 2
            rot = lambda t: torch.cat([t[..., :h] * cos - t[..., h:] * sin, t[..., h:] * cos + t[..., :h] * sin], -1)
            q, k = rot(q), rot(k)
        s = q @ k.transpose(-1, -2) / math.sqrt(d) + bias
        ctx = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, S, H)
        x = self.ln1(x + self.o(ctx))
        u = self.up(x)
        I = u.shape[-1] // 2
        g = F.gelu(u[..., I:]) * u[..., :I] if self.second else F.gelu(u[..., :I]) * u[..., I:]
        return self.ln2(x + self.down(g))


class Model(nn.Module):
    def __init__(self, fam):
        super().__init__()
        s = SHAPES[fam]
        self.fam, self.s = fam, s
        self.word = nn.Embedding(s["V"], s["H"])
        self.tt = nn.Embedding(s["T"], s["H"])
        self.ln = nn.LayerNorm(s["H"], eps=1e-12)
        self.layers = nn.ModuleList([Layer(s, fam == "mgte") for _ in range(s["L"])])
        self.pool = nn.Linear(s["H"], s["H"])
        self.cls = nn.Linear(s["H"], 1)

    def forward(self, ids, mask):
        B, S = ids.shape
        x = self.ln(self.word(ids) + self.tt.weight[0])
        pad = (1.0 - mask[:, None, None, :].float()) * -1e30
        rope = None
        if self.fam == "jina_v1":
            pos = torch.arange(S, dtype=torch.float32)
            dist = (pos[None, :] - pos[:, None]).abs()
            bias = -torch.tensor(alibi_slopes(self.s["NH"]))[:, None, None] * dist + pad
        else:
            d = self.s["H"] // self.s["NH"]
            j = torch.arange(0, d, 2, dtype=torch.float32)
            inv = (self.s["theta"] * self.s["ntk"]) ** (-j / d) / self.s["ntk"] ** (2.0 / d)
            ang = torch.arange(S, dtype=torch.float32)[:, None] * inv[None, :]
            rope = (torch.cos(ang), torch.sin(ang))
            bias = pad
        for lay in self.layers:
            x = lay(x, bias, rope)
        return self.cls(torch.tanh(self.pool(x[:, 0]))).squeeze(-1)


def workload(name, vocab, seed=1234):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(100):
        n = 256 if name == "w1" else int(rng.integers(32, 513))
        out.append(np.concatenate([[1], rng.integers(5, vocab - 1, size=n - 2), [2]]).astype(np.int64))
    return out


def run(model, seqs, batch, precision):
    t0 = time.perf_counter()
    for b in range(0, len(seqs), batch):
        part = seqs[b:b + batch]
        S = max(len(p) for p in part)
        ids = np.zeros((len(part), S), dtype=np.int64)
        mask = np.zeros((len(part), S), dtype=np.int64)
        for i, p in enumerate(part):
            ids[i, :len(p)], mask[i, :len(p)] = p, 1
        with torch.inference_mode():
            if precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    model(torch.from_numpy(ids), torch.from_numpy(mask))
            else:
                model(torch.from_numpy(ids), torch.from_numpy(mask))
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", required=True, choices=sorted(SHAPES))
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workload", default="w1", choices=["w1", "w2"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model(a.family).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
    seqs = workload(a.workload, SHAPES[a.family]["V"])
    run(model, seqs[:a.batch], a.batch, a.precision)  # warm-up
    times = [run(model, seqs, a.batch, a.precision) for _ in range(a.reps)]
    med = statistics.median(times)
    print(json.dumps({"peer": "torch", "family": a.family, "precision": a.precision, "workload": a.workload,
                      "batch": a.batch, "threads": a.threads, "seconds": round(med, 3),
                      "pairs_per_s": round(len(seqs) / med, 2)}))


if __name__ == "__main__":
    main()
