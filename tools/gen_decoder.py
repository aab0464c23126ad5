#!/usr/bin/python3
"""gen_decoder.py -- random-weight Qwen3 / Qwen2 decoder test models and their float64 reference scores.

Called by gen_models.py (into the same DIR); runs alone as
    /usr/bin/python3 tools/gen_decoder.py --out DIR [--full]

Output (tests/test_decoder.c and the suites depend on this layout):
  DIR/models/dec_qwen3_<dtype>/      Qwen3ForCausalLM, tied lm_head, dtype in {f32, f16, bf16}
  DIR/models/dec_qwen3_untied_f32/   the same weights plus a separate random lm_head.weight
  DIR/models/dec_qwen3_seqcls_f32/   Qwen3ForSequenceClassification converted from dec_qwen3_f32 the way
                                     other tools publish it: score.weight [1, H] = W[yes] - W[no] (fp32),
                                     one label, no lm_head
  DIR/models/dec_qwen2_<dtype>/      Qwen2ForCausalLM (q/k/v biases, no q/k norm), tied, with a model card
                                     README.md naming mxbai-rerank-base-v2 (selects its prompt)
  each folder: config.json, model.safetensors, and the Qwen3 tokenizer files of
  ../shared/fixtures/tokenizers/qwen3 when shared is present (the vocabularies cover its 151,669 ids)
  DIR/full/dec_qwen3_bf16/           (--full, alone) the real Qwen3-Reranker-0.6B config (28 layers, hidden 1024,
                                     16/8 heads of 128, intermediate 3072, vocab 151,669), random weights in
                                     BF16 (~1.2 GB), the Qwen3 tokenizer; for the opt-in RR_FULL_DEC=1 block of
                                     tests/suite_decoder.sh and bench/decoder_side_by_side.sh
  DIR/golden/full_dec_qwen3_bf16.jsonl   its float64 reference, lines as below, 1 to 333 tokens
  DIR/golden/dec_<folder>.jsonl      one line per test sequence:
      {"input_ids": [...], "l_yes": x, "l_no": x, "l_1": x, "l_0": x, "raw": x, "logit": x}
      l_* are the last token's logits for "yes" 9693, "no" 2152, "1" 16, "0" 15; raw is the score the
      folder's template gives (Qwen3: l_yes - l_no; mxbai: l_1 - l_0; classifier: score.weight . h),
      repeated as "logit" for the golden loader the encoder tests share

Shapes are the real configs scaled down, keeping what makes them different from an encoder: head_dim
is not hidden/heads in Qwen3 (128 with hidden 64, as 128 with 1024/16 in the 0.6B), fewer KV heads than
query heads (GQA), RoPE with theta 1e6, RMSNorm eps 1e-6, SwiGLU.

The reference (`decoder_forward`) is written from the formulas of shared/spec/decoder.md section 1 in
float64, one sequence at a time, reading the weights back from the written files. Only the rotary
angles follow the fp32 recipe the spec prescribes (inv_freq and p * inv_freq rounded to fp32, cos/sin
of that value), because the models run it that way and a float64 angle differs by more than the test
tolerance at long positions; inv_freq uses the correctly rounded power.
"""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_models as gm  # noqa: E402  (safetensors writer/reader, seeding, shared folder lookup)

DECODER_VERSION = 1

YES, NO, ONE, ZERO = 9693, 2152, 16, 15

QWEN3 = dict(arch="qwen3", vocab_size=151669, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
             head_dim=128, intermediate_size=160, num_hidden_layers=3, max_position_embeddings=40960,
             rope_theta=1000000.0, rms_norm_eps=1e-6, seed=501)
QWEN2 = dict(arch="qwen2", vocab_size=151936, hidden_size=128, num_attention_heads=2, num_key_value_heads=1,
             intermediate_size=192, num_hidden_layers=2, max_position_embeddings=32768,
             rope_theta=1000000.0, rms_norm_eps=1e-6, seed=502)

MXBAI_CARD = """---
library_name: transformers
license: apache-2.0
language:
- en
pipeline_tag: text-ranking
---

# mxbai-rerank-base-v2 (random-weight test copy)

Random weights in the shape of a scaled-down Qwen2; this card only names the model so that rerank
picks the mxbai-rerank-v2 prompt.
"""


def head_dim(s):
    return s.get("head_dim", s["hidden_size"] // s["num_attention_heads"])


def hf_config(s, dtype, arch_name, tied):
    c = {
        "architectures": [arch_name],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645 if s["arch"] == "qwen3" else 151643,
        "hidden_act": "silu",
        "hidden_size": s["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": s["intermediate_size"],
        "max_position_embeddings": s["max_position_embeddings"],
        "max_window_layers": s["num_hidden_layers"],
        "model_type": s["arch"],
        "num_attention_heads": s["num_attention_heads"],
        "num_hidden_layers": s["num_hidden_layers"],
        "num_key_value_heads": s["num_key_value_heads"],
        "rms_norm_eps": s["rms_norm_eps"],
        "rope_scaling": None,
        "rope_theta": s["rope_theta"],
        "sliding_window": None if s["arch"] == "qwen3" else 32768,
        "tie_word_embeddings": tied,
        "torch_dtype": gm.TORCH_DTYPE_NAME[dtype],
        "transformers_version": "4.51.3",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": s["vocab_size"],
    }
    if s["arch"] == "qwen3":
        c["attention_bias"] = False
        c["head_dim"] = s["head_dim"]
    if arch_name.endswith("ForSequenceClassification"):
        c["id2label"] = {"0": "LABEL_0"}
        c["label2id"] = {"LABEL_0": 0}
        c["pad_token_id"] = 151643
    return json.dumps(c, indent=2, sort_keys=True) + "\n"


# ------------------------------------------------------------------------------------------ random weights
def tensor_specs(s, tied):
    """[(name, shape, std, mean)] of a checkpoint. Scales keep the final logits spread over a few units:
    unit-ish embeddings (RMSNorm removes their scale anyway), Q/K larger than 1/sqrt(in) so attention is
    peaked rather than a plain average, norm weights 1 +- 0.1."""
    H, I, nh, nkv, d = (s["hidden_size"], s["intermediate_size"], s["num_attention_heads"],
                        s["num_key_value_heads"], head_dim(s))
    out = []

    def normal(name, shape, std, mean=0.0):
        out.append((name, shape, std, mean))

    normal("model.embed_tokens.weight", (s["vocab_size"], H), 0.5)
    for i in range(s["num_hidden_layers"]):
        p = "model.layers.%d." % i
        normal(p + "input_layernorm.weight", (H,), 0.1, 1.0)
        normal(p + "post_attention_layernorm.weight", (H,), 0.1, 1.0)
        normal(p + "self_attn.q_proj.weight", (nh * d, H), 2.0 / math.sqrt(H))
        normal(p + "self_attn.k_proj.weight", (nkv * d, H), 2.0 / math.sqrt(H))
        normal(p + "self_attn.v_proj.weight", (nkv * d, H), 1.0 / math.sqrt(H))
        normal(p + "self_attn.o_proj.weight", (H, nh * d), 1.0 / math.sqrt(nh * d))
        if s["arch"] == "qwen3":
            normal(p + "self_attn.q_norm.weight", (d,), 0.1, 1.5)
            normal(p + "self_attn.k_norm.weight", (d,), 0.1, 1.5)
        else:
            normal(p + "self_attn.q_proj.bias", (nh * d,), 0.3)
            normal(p + "self_attn.k_proj.bias", (nkv * d,), 0.3)
            normal(p + "self_attn.v_proj.bias", (nkv * d,), 0.1)
        normal(p + "mlp.gate_proj.weight", (I, H), 1.0 / math.sqrt(H))
        normal(p + "mlp.up_proj.weight", (I, H), 1.0 / math.sqrt(H))
        normal(p + "mlp.down_proj.weight", (H, I), 1.0 / math.sqrt(I))
    normal("model.norm.weight", (H,), 0.1, 1.0)
    if not tied:
        normal("lm_head.weight", (s["vocab_size"], H), 0.5)
    return out


def tensors(s, tied):
    """[(name, float32 tensor)] of a checkpoint (tensor_specs drawn with the model's seed)."""
    return [(n, gm._normal(s["seed"], n, shp, std, mean)) for n, shp, std, mean in tensor_specs(s, tied)]


def lazy_entries(s, tied, st_dtype):
    """entries() of the same tensors, each drawn only when the writer reaches it (the full shape holds
    2.4 GB of fp32 weights: never all at once)."""
    return [(n, st_dtype, tuple(shp),
             (lambda n=n, shp=shp, std=std, mean=mean:
              iter([gm.tensor_bytes(gm._normal(s["seed"], n, shp, std, mean), st_dtype)])))
            for n, shp, std, mean in tensor_specs(s, tied)]


def entries(named, st_dtype):
    return [(n, st_dtype, tuple(t.shape), (lambda t=t: iter([gm.tensor_bytes(t, st_dtype)]))) for n, t in named]


# ------------------------------------------------------------------------------------------ float64 reference
def rms_norm(x, w, eps):
    """y = w * x / sqrt(mean(x^2) + eps) over the last axis (no mean subtraction, no bias)."""
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope_tables(T, d, theta):
    """cos, sin [T, d] (the d/2 angles repeated twice, concatenated). inv_freq[i] = 1 / theta^(2i/d) and
    the angle p * inv_freq[i] are fp32 values, as the model computes them; cos and sin in float64."""
    expo = np.arange(0, d, 2, dtype=np.float32) / np.float32(d)            # fp32 division
    inv = np.array([np.float32(1.0) / np.float32(math.pow(theta, float(e))) for e in expo], dtype=np.float32)
    ang = np.arange(T, dtype=np.float32)[:, None] * inv[None, :]           # fp32 product [T, d/2]
    ang = torch.from_numpy(ang.astype(np.float64))
    emb = torch.cat([ang, ang], dim=1)
    return torch.cos(emb), torch.sin(emb)


def apply_rope(x, cos, sin):
    """x [T, n, d]: pairs (i, i + d/2) rotated by the angle of position t (NeoX half-split)."""
    d = x.shape[-1]
    rot = torch.cat([-x[..., d // 2:], x[..., :d // 2]], dim=-1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


class Weights:
    def __init__(self, folder, cache=True):
        self.cfg = json.load(open(os.path.join(folder, "config.json")))
        self.st = gm.open_model(folder)
        self.cache = {} if cache else None

    def __call__(self, name, rows=None):
        if rows is not None:
            return self.st.get(name, rows)
        if self.cache is None:  # the full shape: 3.5 GB of float64 layers, read again per sequence
            return self.st.get(name)
        if name not in self.cache:
            self.cache[name] = self.st.get(name)
        return self.cache[name]

    def has(self, name):
        return name in self.st.header


def decoder_forward(w, ids):
    """Final hidden state (after model.norm) of the last token of one sequence, float64 [H]."""
    c = w.cfg
    H, nh, nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    d = c.get("head_dim", H // nh)
    eps, T = c["rms_norm_eps"], len(ids)
    qwen3 = c["model_type"] == "qwen3"
    cos, sin = rope_tables(T, d, c["rope_theta"])
    h = w("model.embed_tokens.weight", rows=np.asarray(ids))              # [T, H]
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % i
        a = rms_norm(h, w(p + "input_layernorm.weight"), eps)
        q = a @ w(p + "self_attn.q_proj.weight").T                        # [T, nh*d]
        k = a @ w(p + "self_attn.k_proj.weight").T                        # [T, nkv*d]
        v = a @ w(p + "self_attn.v_proj.weight").T
        if not qwen3:
            q = q + w(p + "self_attn.q_proj.bias")
            k = k + w(p + "self_attn.k_proj.bias")
            v = v + w(p + "self_attn.v_proj.bias")
        q, k, v = q.view(T, nh, d), k.view(T, nkv, d), v.view(T, nkv, d)
        if qwen3:
            q = rms_norm(q, w(p + "self_attn.q_norm.weight"), eps)
            k = rms_norm(k, w(p + "self_attn.k_norm.weight"), eps)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = nh // nkv
        outs = []
        for j in range(nh):
            g = j // rep                                                  # query head j reads KV head j // rep
            s = (q[:, j, :] @ k[:, g, :].T) / math.sqrt(d) + causal      # [T, T]
            outs.append(torch.softmax(s, dim=-1) @ v[:, g, :])          # [T, d]
        h = h + torch.cat(outs, dim=1) @ w(p + "self_attn.o_proj.weight").T
        m = rms_norm(h, w(p + "post_attention_layernorm.weight"), eps)
        g_ = m @ w(p + "mlp.gate_proj.weight").T
        u = m @ w(p + "mlp.up_proj.weight").T
        h = h + (g_ * torch.sigmoid(g_) * u) @ w(p + "mlp.down_proj.weight").T
    return rms_norm(h[-1], w("model.norm.weight"), eps)


def golden_line(w, ids, kind):
    h = decoder_forward(w, ids)
    rec = {"input_ids": [int(x) for x in ids]}
    if kind == "seqcls":
        rec["raw"] = rec["logit"] = float(w("score.weight")[0] @ h)
        return rec
    lm = "lm_head.weight" if w.has("lm_head.weight") else "model.embed_tokens.weight"
    rows = w(lm, rows=np.array([YES, NO, ONE, ZERO]))
    l = (rows @ h).tolist()
    rec.update(l_yes=l[0], l_no=l[1], l_1=l[2], l_0=l[3])
    rec["raw"] = l[2] - l[3] if kind == "mxbai" else l[0] - l[1]
    rec["logit"] = rec["raw"]
    return rec


def test_sequences(vocab, seed, long_len):
    """Mixed lengths (1 token up to a few hundred), ids anywhere in the vocabulary including the yes/no
    and special ids, plus one sequence of long_len tokens when long_len > 0."""
    rng = np.random.default_rng(seed)
    lengths = [1, 2, 3, 7, 16, 31, 64, 100, 129, 257, 300]
    seqs = []
    for n in lengths:
        ids = rng.integers(0, vocab, size=n)
        if n >= 7:
            ids[rng.integers(0, n)] = YES
            ids[-1] = [151645, 198, 271, 16][n % 4]
        seqs.append(ids.tolist())
    if long_len:
        seqs.append(rng.integers(0, vocab, size=long_len).tolist())
    return seqs


def write_golden(path, w, seqs, kind):
    vals = []
    with open(path, "w") as f:
        for ids in seqs:
            rec = golden_line(w, ids, kind)
            vals.append(rec["raw"])
            f.write(json.dumps(rec) + "\n")
    vals = np.array(vals)
    print("%-28s n=%3d  raw min %7.3f  max %7.3f  std %6.3f" % (os.path.basename(path), len(vals), vals.min(),
                                                               vals.max(), vals.std()))


def copy_tokenizer(folder, shared):
    if not shared:
        return
    src = os.path.join(shared, "fixtures", "tokenizers", "qwen3")
    for fn in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        if os.path.exists(os.path.join(src, fn)):
            shutil.copyfile(os.path.join(src, fn), os.path.join(folder, fn))


def write_model(models, name, s, dtype, arch_name, named, shared, card=None):
    folder = os.path.join(models, name)
    gm.fresh_dir(folder)
    tied = not any(n == "lm_head.weight" for n, _ in named)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(hf_config(s, dtype, arch_name, tied))
    gm.write_safetensors(os.path.join(folder, "model.safetensors"), entries(named, gm.ST_DTYPE[dtype]),
                         s["seed"] + gm.DTYPES.index(dtype))
    copy_tokenizer(folder, shared)
    if card:
        with open(os.path.join(folder, "README.md"), "w") as f:
            f.write(card)
    return folder


LONG = 4500  # beyond 4096 tokens

# The real config of Qwen/Qwen3-Reranker-0.6B (shared/spec/decoder.md section 1.8), random weights.
FULL = dict(arch="qwen3", vocab_size=151669, hidden_size=1024, num_attention_heads=16, num_key_value_heads=8,
            head_dim=128, intermediate_size=3072, num_hidden_layers=28, max_position_embeddings=40960,
            rope_theta=1000000.0, rms_norm_eps=1e-6, seed=503)
FULL_LENGTHS = [1, 9, 85, 333]  # 333: about a Q1 prompt (256 document tokens in the reranker prompt)


def generate_full(out, shared):
    """DIR/full/dec_qwen3_bf16: the full Qwen3-Reranker-0.6B shape in BF16 (~1.2 GB) with the Qwen3
    tokenizer, and DIR/golden/full_dec_qwen3_bf16.jsonl (float64 reference of a few sequences). Kept when
    already written by this DECODER_VERSION."""
    folder = os.path.join(out, "full", "dec_qwen3_bf16")
    gpath = os.path.join(out, "golden", "full_dec_qwen3_bf16.jsonl")
    mark = os.path.join(folder, ".complete")
    if os.path.exists(mark) and os.path.exists(gpath) and open(mark).read().strip() == str(DECODER_VERSION):
        print("full decoder model present (version %d): kept" % DECODER_VERSION)
        return
    s = FULL
    gm.fresh_dir(folder)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(hf_config(s, "bf16", "Qwen3ForCausalLM", True))
    gm.write_safetensors(os.path.join(folder, "model.safetensors"), lazy_entries(s, True, "BF16"), s["seed"])
    copy_tokenizer(folder, shared)
    os.makedirs(os.path.dirname(gpath), exist_ok=True)
    rng = np.random.default_rng(s["seed"] + 11)
    seqs = []
    for n in FULL_LENGTHS:
        ids = rng.integers(0, s["vocab_size"], size=n)
        ids[-1] = 271  # "\n\n", the end of the reranker prompt
        seqs.append(ids.tolist())
    write_golden(gpath, Weights(folder, cache=False), seqs, "qwen3")
    with open(mark, "w") as f:
        f.write("%d\n" % DECODER_VERSION)


def generate(out, shared):
    models, golden = os.path.join(out, "models"), os.path.join(out, "golden")
    os.makedirs(golden, exist_ok=True)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    for s, card, kind in ((QWEN3, None, "qwen3"), (QWEN2, MXBAI_CARD, "mxbai")):
        named = tensors(s, tied=True)
        arch_name = "Qwen3ForCausalLM" if s["arch"] == "qwen3" else "Qwen2ForCausalLM"
        for dtype in gm.DTYPES:
            name = "dec_%s_%s" % (s["arch"], dtype)
            folder = write_model(models, name, s, dtype, arch_name, named, shared, card)
            seqs = test_sequences(s["vocab_size"], s["seed"] + 11, LONG if dtype == "f32" else 0)
            write_golden(os.path.join(golden, name + ".jsonl"), Weights(folder), seqs, kind)
        if s["arch"] == "qwen3":
            seqs = test_sequences(s["vocab_size"], s["seed"] + 11, 0)
            untied = tensors(s, tied=False)
            folder = write_model(models, "dec_qwen3_untied_f32", s, "f32", arch_name, untied, shared)
            write_golden(os.path.join(golden, "dec_qwen3_untied_f32.jsonl"), Weights(folder), seqs, kind)
            # the converted classifier: the causal model's weights, score.weight = W[yes] - W[no] in fp32
            emb = dict(named)["model.embed_tokens.weight"]
            score = (emb[YES] - emb[NO]).reshape(1, -1).clone()
            cls = [(n, t) for n, t in named] + [("score.weight", score)]
            folder = write_model(models, "dec_qwen3_seqcls_f32", s, "f32", "Qwen3ForSequenceClassification", cls,
                                 shared)
            write_golden(os.path.join(golden, "dec_qwen3_seqcls_f32.jsonl"), Weights(folder), seqs, "seqcls")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("RR_TESTDATA", "build/testdata"))
    ap.add_argument("--full", action="store_true",
                    help="only write the full Qwen3-Reranker-0.6B shape (DIR/full/dec_qwen3_bf16) and its reference")
    a = ap.parse_args()
    if a.full:
        torch.set_num_threads(min(2, torch.get_num_threads()))
        generate_full(a.out, gm.shared_dir())
    else:
        generate(a.out, gm.shared_dir())


if __name__ == "__main__":
    main()
