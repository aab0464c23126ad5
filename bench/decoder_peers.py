#!/usr/bin/python3
"""decoder_peers.py -- the peers of bench/decoder_side_by_side.sh on workload Q1 (issue 17): a Qwen3-Reranker
folder's model as a hand-written PyTorch module of the same shape, in bf16 (timed here) or fp32 (exported to ONNX
for ONNX Runtime, timed by bench/decoder_ort.js).

    /usr/bin/python3 bench/decoder_peers.py torch  --model DIR --len L [--docs 20] [--threads 2] [--reps 1]
    /usr/bin/python3 bench/decoder_peers.py export --model DIR --len L [--docs 20] --out DIR

Q1 = the reranker prompt for 1 query and 20 documents of 256 tokens: every sequence has the same length L (the
prompt's, printed by `rerank bench --workload q1`), so a batch of 20 needs no padding. Only the length matters for
speed: the ids are drawn at random (seed 1234) and written to ids.json so every peer scores the same ones.

The module (`Qwen3Scorer`) is the Qwen3 forward pass of shared/spec/decoder.md section 1, written from the formulas
(RMSNorm in fp32, rotary pairs (i, i + d/2), grouped-query causal attention, SwiGLU), and, like rerank, it sends only
each sequence's last token through the final norm and only the "yes" and "no" rows of the tied lm_head (the reference
code computes the whole 151,669-row head for every position: the peers are spared that). It returns
raw = l_yes - l_no per sequence. Weights are read straight from the folder's safetensors (bf16 bits, no float64
detour). `torch` prints one JSON line: the load and forward times inside the process (the whole process, Python
start and imports included, is timed by the shell script).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import gen_models as gm  # noqa: E402  (safetensors reader)

YES, NO = 9693, 2152


def load_weights(folder, dtype):
    """{name: tensor in dtype} from the folder's safetensors, BF16 read as its raw bits."""
    st = gm.open_model(folder)
    out = {}
    for name in st.header:
        arr, sdt = st.raw(name)
        if sdt == "BF16":
            t = torch.from_numpy(np.array(arr).view(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.array(arr))
        out[name] = t.to(dtype)
    return out


class Qwen3Scorer(torch.nn.Module):
    """raw = (W[yes] - W[no]) . RMSNorm(h_last) of a Qwen3 causal LM, for a batch of equal-length sequences."""

    def __init__(self, folder, dtype):
        super().__init__()
        c = json.load(open(os.path.join(folder, "config.json")))
        self.c = c
        w = load_weights(folder, dtype)
        lm = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        self.embed = torch.nn.Parameter(w.pop("model.embed_tokens.weight"), requires_grad=False)
        self.head = torch.nn.Parameter((lm[YES] - lm[NO]).clone(), requires_grad=False)  # [H]
        w.pop("lm_head.weight", None)
        self.w = torch.nn.ParameterDict({k.replace(".", "_"): torch.nn.Parameter(v, requires_grad=False)
                                         for k, v in w.items()})

    def p(self, name):
        return self.w[name.replace(".", "_")]

    def rms(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt((xf * xf).mean(-1, keepdim=True) + self.c["rms_norm_eps"])).to(x.dtype) * w

    def forward(self, ids):  # ids [B, T] int64
        c = self.c
        nh, nkv, d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        B, T = ids.shape
        dt = self.embed.dtype
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]             # [T, d/2]
        cos = torch.cat([ang.cos(), ang.cos()], 1).to(dt)[None, None]                   # [1, 1, T, d]
        sin = torch.cat([ang.sin(), ang.sin()], 1).to(dt)[None, None]
        pos = torch.arange(T)
        masked = pos[None, :] > pos[:, None]                                            # [T, T] future keys

        def rope(x):  # [B, n, T, d]
            rot = torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1)
            return x * cos + rot * sin

        h = self.embed[ids]                                                             # [B, T, H]
        for i in range(c["num_hidden_layers"]):
            p = "model.layers.%d." % i
            a = self.rms(h, self.p(p + "input_layernorm.weight"))
            q = (a @ self.p(p + "self_attn.q_proj.weight").T).view(B, T, nh, d)
            k = (a @ self.p(p + "self_attn.k_proj.weight").T).view(B, T, nkv, d)
            v = (a @ self.p(p + "self_attn.v_proj.weight").T).view(B, T, nkv, d)
            q = rope(self.rms(q, self.p(p + "self_attn.q_norm.weight")).transpose(1, 2))  # [B, nh, T, d]
            k = rope(self.rms(k, self.p(p + "self_attn.k_norm.weight")).transpose(1, 2))  # [B, nkv, T, d]
            v = v.transpose(1, 2)
            rep = nh // nkv                                                             # query head j: KV j // rep
            k = k[:, :, None].expand(B, nkv, rep, T, d).reshape(B, nh, T, d)
            v = v[:, :, None].expand(B, nkv, rep, T, d).reshape(B, nh, T, d)
            sc = (q @ k.transpose(2, 3)).float() / math.sqrt(d)                         # [B, nh, T, T]
            sc = sc.masked_fill(masked, float("-inf"))
            o = (torch.softmax(sc, -1).to(dt) @ v).transpose(1, 2).reshape(B, T, nh * d)
            h = h + o @ self.p(p + "self_attn.o_proj.weight").T
            m = self.rms(h, self.p(p + "post_attention_layernorm.weight"))
            g = m @ self.p(p + "mlp.gate_proj.weight").T
            u = m @ self.p(p + "mlp.up_proj.weight").T
            h = h + (torch.nn.functional.silu(g) * u) @ self.p(p + "mlp.down_proj.weight").T
        last = self.rms(h[:, -1], self.p("model.norm.weight"))                          # [B, H]
        return (last.float() * self.head.float()).sum(-1)                               # [B] raw


def q1_ids(n, length, vocab):
    rng = np.random.default_rng(1234)
    ids = rng.integers(0, vocab, size=(n, length))
    ids[:, -1] = 271  # the prompt ends with "\n\n"
    return ids.tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["torch", "export"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--len", type=int, required=True)
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    ids = torch.tensor(q1_ids(a.docs, a.len, cfg["vocab_size"]), dtype=torch.int64)
    t0 = time.time()
    if a.what == "torch":
        m = Qwen3Scorer(a.model, torch.bfloat16).eval()
        load = time.time() - t0
        runs = []
        with torch.no_grad():
            for _ in range(a.reps):
                t = time.time()
                raw = m(ids)
                runs.append(time.time() - t)
        print(json.dumps({"peer": "pytorch", "precision": "bf16", "torch": torch.__version__, "threads": a.threads,
                          "docs": a.docs, "len": a.len, "load_s": round(load, 3), "forward_s": [round(x, 3) for x in runs],
                          "raw0": float(raw[0])}))
        return
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "ids.json"), "w") as f:
        json.dump(ids.tolist(), f)
    m = Qwen3Scorer(a.model, torch.float32).eval()
    # traced on a small batch with dynamic axes: Debian's torch runs fp32 matmuls on the reference BLAS
    # (libblas.so.3), where one fp32 forward of Q1 on the 0.6B shape takes half an hour
    small = ids[:2, -16:]
    with torch.no_grad():
        raw = m(small)
    path = os.path.join(a.out, "qwen3_fp32.onnx")
    # a 0.6B fp32 model is over protobuf's 2 GB: torch writes the weights as external data next to the file
    with torch.no_grad():
        torch.onnx.export(m, (small,), path, input_names=["input_ids"], output_names=["raw"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "raw": {0: "batch"}}, opset_version=17)
    with open(os.path.join(a.out, "check.json"), "w") as f:
        json.dump({"ids": small.tolist(), "raw": [float(x) for x in raw]}, f)
    print(json.dumps({"exported": path, "torch": torch.__version__, "export_s": round(time.time() - t0, 1),
                      "raw_torch_fp32": [float(x) for x in raw]}))


if __name__ == "__main__":
    main()
