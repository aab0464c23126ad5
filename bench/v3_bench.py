#!/usr/bin/python3
"""v3_bench.py -- jina-reranker-v3 speed, one run: 1 query + N documents of L tokens (default 100 x 256, W1's sizes)
in bf16, rerank against a hand-written PyTorch bf16 module of the same random model, and against rerank running a
pointwise Qwen3-Reranker folder of the same backbone shape on the same documents.

    /usr/bin/python3 bench/v3_bench.py --model build/testdata/models/v3_full_bf16 \
        [--pointwise QWEN3_RERANKER_DIR] [--docs 100] [--doc-tokens 256] [--threads 2] \
        [--only rerank|torch|pointwise ...] [--torch-layers A:B]

The full shape takes minutes per side on a small machine: --only runs one side per command, and --torch-layers
times a range of the PyTorch module's layers (equal cost each), so a long run splits into short benchmark commands.
QWEN3_RERANKER_DIR of the same backbone: tools/gen_jina_v3.py gen --full --pointwise writes
build/testdata/models/qwen3_reranker_full_bf16.

Documents are random English words cut to exactly L tokens by the reference's own round trip (tokenize, decode the
first L ids). rerank is timed as a whole process (`rerank rank`, model load included) and its load alone (one empty
document) is timed too, so the table shows both. The PyTorch module (`Torch` below) is the Qwen3 forward pass of
shared/spec/decoder.md section 1 in bf16 with causal attention in query chunks (a block of many thousand tokens
would not fit as one [T, T] matrix per head), then the projector and the cosines of one block; it is timed after
load, forward only, so the comparison favours it. Numbers on a shared machine are noisy: say so when quoting them.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import gen_jina_v3 as j3  # noqa: E402
import gen_models as gm  # noqa: E402

R = os.path.join(HERE, "..", "build", "rerank")


class Torch:
    """Qwen3 backbone + projector in bf16 (weights loaded once)."""

    def __init__(self, folder):
        self.c = json.load(open(os.path.join(folder, "config.json")))
        st = gm.open_model(folder)
        self.w = {n: st.get(n).to(torch.bfloat16) for n in st.header if n != "__metadata__"}

    def rms(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt((xf * xf).mean(-1, keepdim=True) + self.c["rms_norm_eps"])).to(x.dtype) * w

    def forward(self, ids, chunk=1024, layers=None):
        c, w = self.c, self.w
        nh, nkv, d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        T = len(ids)
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
        cos, sin = torch.cat([ang.cos()] * 2, 1).to(torch.bfloat16), torch.cat([ang.sin()] * 2, 1).to(torch.bfloat16)

        def rope(x):
            rot = torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1)
            return x * cos[:, None] + rot * sin[:, None]

        h = w["model.embed_tokens.weight"][torch.tensor(ids)]
        for i in range(*(layers or (0, c["num_hidden_layers"]))):
            p = "model.layers.%d." % i
            a = self.rms(h, w[p + "input_layernorm.weight"])
            q = rope(self.rms((a @ w[p + "self_attn.q_proj.weight"].T).view(T, nh, d), w[p + "self_attn.q_norm.weight"]))
            k = rope(self.rms((a @ w[p + "self_attn.k_proj.weight"].T).view(T, nkv, d), w[p + "self_attn.k_norm.weight"]))
            v = (a @ w[p + "self_attn.v_proj.weight"].T).view(T, nkv, d)
            k = k.repeat_interleave(nh // nkv, 1).transpose(0, 1)          # [nh, T, d]
            v = v.repeat_interleave(nh // nkv, 1).transpose(0, 1)
            q = q.transpose(0, 1)
            out = torch.empty(nh, T, d, dtype=torch.bfloat16)
            for s in range(0, T, chunk):
                e = min(T, s + chunk)
                sc = (q[:, s:e] @ k[:, :e].transpose(1, 2)).float() / math.sqrt(d)
                mask = torch.ones(e - s, e, dtype=torch.bool).triu(s + 1)
                sc.masked_fill_(mask, float("-inf"))
                out[:, s:e] = torch.softmax(sc, -1).to(torch.bfloat16) @ v[:, :e]
            h = h + out.transpose(0, 1).reshape(T, nh * d) @ w[p + "self_attn.o_proj.weight"].T
            m = self.rms(h, w[p + "post_attention_layernorm.weight"])
            g = m @ w[p + "mlp.gate_proj.weight"].T
            h = h + (torch.nn.functional.silu(g) * (m @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        return self.rms(h, w["model.norm.weight"])

    def scores(self, ids, doc_id, query_id, layers=None):
        h = self.forward(ids, layers=layers)
        t = torch.tensor(ids)
        e = torch.relu(h @ self.w["projector.0.weight"].T) @ self.w["projector.2.weight"].T
        return torch.nn.functional.cosine_similarity(e[t == doc_id].float(), e[t == query_id].float(), dim=-1)


def timed(cmd):
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr))
    return time.time() - t, r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--pointwise")
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--doc-tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", action="append", choices=["rerank", "torch", "pointwise"],
                    help="run only this side (repeatable; default all): keeps each benchmark command short")
    ap.add_argument("--torch-layers", metavar="A:B",
                    help="time PyTorch over layers A..B-1 only (every layer costs the same whatever its input, so "
                         "the full forward's time is the sum over disjoint ranges; for splitting a long run)")
    a = ap.parse_args()
    sides = set(a.only or ["rerank", "torch", "pointwise"])
    torch.set_num_threads(a.threads)
    rnd = random.Random(1234)
    words = "river city market bridge tower museum history people language food train station island lake".split()
    raw = [" ".join(rnd.choice(words) for _ in range(a.doc_tokens * 2)) for _ in range(a.docs)]
    enc = j3.tokenize(a.model, encode=raw)["encode"]
    docs = j3.tokenize(a.model, decode=[e[:a.doc_tokens] for e in enc])["decode"]
    query = "Which station is near the old bridge and the museum?"
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "docs.jsonl"), "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    with open(os.path.join(tmp, "empty.jsonl"), "w") as f:
        f.write('""\n')
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print("machine: %s, %d threads; %d documents of %d tokens" % (cpu, a.threads, a.docs, a.doc_tokens))
    base = [R, "rank", "-q", query, "--precision", "bf16", "--threads", str(a.threads), "--no-documents"]
    load = wall = None
    if "rerank" in sides:
        load, _ = timed(base + ["-m", a.model, "--documents", os.path.join(tmp, "empty.jsonl")])
        wall, out = timed(base + ["-m", a.model, "--documents", os.path.join(tmp, "docs.jsonl")])
        tokens = json.loads(out)["usage"]["total_tokens"]
        print("rerank v3 bf16:        %.2f s process (%d tokens in the prompt blocks), load alone %.2f s -> %.2f s "
              "scoring" % (wall, tokens, load, wall - load))
    if "torch" in sides:
        tj = json.load(open(os.path.join(a.model, "tokenizer.json"), encoding="utf-8"))
        ids = {t["content"]: t["id"] for t in tj["added_tokens"]}
        block = j3.tokenize(a.model, encode=[j3.prompt(query, docs)])["encode"][0]
        m = Torch(a.model)
        layers = tuple(int(v) for v in a.torch_layers.split(":")) if a.torch_layers else None
        t = time.time()
        with torch.no_grad():
            m.scores(block, ids[j3.DOC_MARK], ids[j3.QUERY_MARK], layers)
        tt = time.time() - t
        what = "layers %d..%d" % (layers[0], layers[1] - 1) if layers else "forward"
        print("PyTorch bf16 (%s): %.2f s for one block of %d tokens%s" %
              (what, tt, len(block), " -> rerank scoring is %.2fx" % (tt / max(wall - load, 1e-9)) if wall else ""))
    if a.pointwise and "pointwise" in sides:
        pl, _ = timed(base + ["-m", a.pointwise, "--documents", os.path.join(tmp, "empty.jsonl")])
        pw, out = timed(base + ["-m", a.pointwise, "--documents", os.path.join(tmp, "docs.jsonl")])
        print("rerank pointwise bf16: %.2f s process (%d tokens, query read %d times), load alone %.2f s -> %.2f s "
              "scoring%s" % (pw, json.loads(out)["usage"]["total_tokens"], a.docs, pl, pw - pl,
                             "; v3 / pointwise scoring time %.2f" % ((wall - load) / max(pw - pl, 1e-9)) if wall else ""))


if __name__ == "__main__":
    main()
