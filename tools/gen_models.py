#!/usr/bin/python3
"""gen_models.py -- writes the random-weight test models and their golden logits for the rerank tests.

Run with Debian's interpreter (python3-torch 1.13, python3-numpy):
    /usr/bin/python3 tools/gen_models.py --out DIR [--full] [--full-ext] [--selfcheck]

Everything is seeded: two runs write identical bytes. Without --full it takes a few seconds.

Output (the C tests depend on this layout exactly):
  DIR/models/<family>_<dtype>/       family in {jina, xlmr, bert}, dtype in {f32, f16, bf16}
      config.json                    as Hugging Face writes it for that family (tiny shapes, see FAMILIES)
      model.safetensors              see "safetensors format" below; tensor order shuffled on purpose
      tokenizer.json, ...            copied from ../shared/fixtures/tokenizers when shared is present
  DIR/models/xlmr_f32_sharded/       the xlmr_f32 weights over model-0000{1,2}-of-00002.safetensors plus
                                     model.safetensors.index.json {"metadata": {"total_size": N},
                                     "weight_map": {tensor: file}}; no model.safetensors
  DIR/golden/<folder>.jsonl          one line per test sequence:
                                     {"input_ids": [...], "token_type_ids": [...], "logit": x}
  DIR/full/jina_v2_bf16/             (--full) real jina-reranker-v2 shape, BF16, ~560 MB, written once per
                                     GENERATOR_VERSION; golden in DIR/golden/full_jina_v2_bf16.jsonl
  DIR/full/{jina_v1,mgte,modernbert}_bf16/  (--full-ext) the full-size shapes of tools/gen_models_ext.py; slow
                                     float64 references, so apart from --full (RR_FULL_EXT=1 in run_all.sh)
  DIR/models/dec_*/, DIR/golden/dec_*.jsonl   the Qwen3/Qwen2 decoder models of tools/gen_decoder.py
  DIR/models/v3_*/                            the jina-reranker-v3 models of tools/gen_jina_v3.py (the suite
                                              computes its float64 references itself)
  DIR/.complete                      written last; holds GENERATOR_VERSION (tests/run_all.sh regenerates
                                     when this script is newer than it)

safetensors format: u64 little-endian header length N, then N bytes of JSON
    {name: {"dtype": "F32"|"F16"|"BF16"|"I64", "shape": [...], "data_offsets": [begin, end]},
     "__metadata__": {"format": "pt"}}
padded with spaces so that N is a multiple of 8, then the tensor data; offsets are relative to the
start of the data (byte 8 + N). All values little-endian, row-major.

Golden logits come from `reference_logit`, an independent forward written from the formulas in
shared/spec/model.md (section 1.3 for jina/XLM-R, 5.2 for BERT) in float64, one sequence at a time,
reading the weights back from the written files (so F16/BF16 goldens use the rounded values).
--selfcheck cross-checks that reference against shared/bench/xlmr_model.py (an nn.Module in HF
XLM-R layout), against torch.nn.TransformerEncoderLayer for BERT, and jina against XLM-R naming.
"""
import argparse
import importlib.util
import json
import math
import os
import re
import random
import shutil
import sys
import time
import zlib

import numpy as np
import torch

GENERATOR_VERSION = 3  # 2: the decoder models of tools/gen_decoder.py; 3: the models of tools/gen_models_ext.py

# Tiny shapes shared by the three families; per-family fields below.
TINY = dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, intermediate_size=128)

FAMILIES = {
    # vocab sizes are those of the shared fixture tokenizers (xlmr_pruned32k, bert-base-uncased)
    "jina": dict(vocab_size=31998, max_position_embeddings=1026, type_vocab_size=1, layer_norm_eps=1e-5,
                 pad_token_id=1, prefix="roberta.", seed=101),
    "xlmr": dict(vocab_size=31998, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                 pad_token_id=1, prefix="roberta.", seed=202),
    "bert": dict(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                 pad_token_id=0, prefix="bert.", seed=305),
}
DTYPES = ("f32", "f16", "bf16")
ST_DTYPE = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
TORCH_DTYPE_NAME = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}
ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}

FULL_JINA = dict(vocab_size=250002, hidden_size=768, num_attention_heads=12, num_hidden_layers=12,
                 intermediate_size=3072, max_position_embeddings=1026, type_vocab_size=1,
                 layer_norm_eps=1e-5, pad_token_id=1, prefix="roberta.", seed=404,
                 out_gain=10.0)  # 12 layers leave token 0 less varied than 2 do: a larger head keeps the spread
FULL_LENGTHS = (5, 64, 256, 300, 512, 1024)

TOKENIZER_FILES = {
    "jina": ("xlmr_pruned32k", ("tokenizer.json", "tokenizer_config.json")),
    "xlmr": ("xlmr_pruned32k", ("tokenizer.json", "tokenizer_config.json")),
    "bert": ("bert-base-uncased", ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                                   "special_tokens_map.json")),
}

EMB_CHUNK_ROWS = 8192  # word embeddings are generated in row chunks (one seed each) to bound memory


# ------------------------------------------------------------------------------------------ config.json
def hf_config(family, shape, dtype):
    """config.json in the shape Hugging Face writes for the family (sorted keys, indent 2)."""
    c = {
        "architectures": ["BertForSequenceClassification" if family == "bert"
                          else "XLMRobertaForSequenceClassification"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": shape["hidden_size"],
        "id2label": {"0": "LABEL_0"},
        "initializer_range": 0.02,
        "intermediate_size": shape["intermediate_size"],
        "label2id": {"LABEL_0": 0},
        "layer_norm_eps": shape["layer_norm_eps"],
        "max_position_embeddings": shape["max_position_embeddings"],
        "model_type": "bert" if family == "bert" else "xlm-roberta",
        "num_attention_heads": shape["num_attention_heads"],
        "num_hidden_layers": shape["num_hidden_layers"],
        "pad_token_id": shape["pad_token_id"],
        "position_embedding_type": "absolute",
        "torch_dtype": TORCH_DTYPE_NAME[dtype],
        "transformers_version": "4.40.0",
        "type_vocab_size": shape["type_vocab_size"],
        "use_cache": True,
        "vocab_size": shape["vocab_size"],
    }
    if family == "jina":  # spec 1.1: custom-code fields of jina-reranker-v2's config
        c.update({
            "_name_or_path": "jinaai/jina-reranker-v2-base-multilingual",
            "auto_map": {
                "AutoConfig": "configuration_xlm_roberta.XLMRobertaFlashConfig",
                "AutoModel": "modeling_xlm_roberta.XLMRobertaModel",
                "AutoModelForSequenceClassification": "modeling_xlm_roberta.XLMRobertaForSequenceClassification",
            },
            "bos_token_id": 0, "eos_token_id": 2, "emb_pooler": None, "num_labels": 1,
            "output_past": True, "use_cache": False, "use_flash_attn": True,
        })
    elif family == "xlmr":  # bge-reranker-base style
        c.update({"_name_or_path": "BAAI/bge-reranker-base", "bos_token_id": 0, "eos_token_id": 2,
                  "output_past": True})
    else:  # cross-encoder/ms-marco-MiniLM style
        c.update({"_name_or_path": "cross-encoder/ms-marco-MiniLM-L-6-v2", "gradient_checkpointing": False,
                  "sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity"})
    return json.dumps(c, indent=2, sort_keys=True) + "\n"


# ------------------------------------------------------------------------------------------ random weights
def _gen(seed, name):
    """A generator seeded from the model seed and the tensor's canonical name, so each tensor's values
    do not depend on generation order (which lets the full model stream tensor by tensor)."""
    return torch.Generator().manual_seed(seed * 1000003 + zlib.crc32(name.encode()))


def _normal(seed, name, shape, std, mean=0.0):
    t = torch.empty(shape, dtype=torch.float32)
    t.normal_(mean, std, generator=_gen(seed, name))
    return t


# Scales chosen so that logits over the golden sequences spread over a few units: Q and K are larger than
# 1/sqrt(in) so attention is peaked (otherwise token 0 averages every sequence to the same state), and the
# head's out_proj is large enough that tanh outputs map to logits with std ~1-3.
GAIN = {"q": 1.6, "k": 1.6, "v": 1.0, "o": 1.0, "fc1": 1.0, "fc2": 1.0, "dense": 1.5, "out": 4.0}


def canonical_tensor(shape, seed, cname):
    """One tensor of the canonical (family-neutral) model, float32. cname examples: 'tok', 'pos', 'type',
    'emb_ln.w', 'L0.q.w', 'L1.fc2.b', 'head.dense.w', 'head.out.b'."""
    H, I = shape["hidden_size"], shape["intermediate_size"]
    if cname == "pos":
        return _normal(seed, cname, (shape["max_position_embeddings"], H), 0.5)   # [P, H]
    if cname == "type":
        return _normal(seed, cname, (shape["type_vocab_size"], H), 0.3)           # [T, H]
    part = cname.split(".")
    kind, wb = part[-2], part[-1]
    if kind in ("emb_ln", "ln1", "ln2"):                                          # LayerNorm [H]
        return _normal(seed, cname, (H,), 0.1, 1.0) if wb == "w" else _normal(seed, cname, (H,), 0.05)
    n_out, n_in = {"q": (H, H), "k": (H, H), "v": (H, H), "o": (H, H), "fc1": (I, H), "fc2": (H, I),
                   "dense": (H, H), "out": (1, H)}[kind]
    if wb == "w":                                                                 # Linear [out, in]
        gain = shape.get("out_gain", GAIN["out"]) if kind == "out" else GAIN[kind]
        return _normal(seed, cname, (n_out, n_in), gain / math.sqrt(n_in))
    return _normal(seed, cname, (n_out,), 0.1 if kind == "out" else 0.05)        # bias [out]


def word_embedding_chunks(shape, seed):
    """Rows of the word embedding [V, H] in chunks of EMB_CHUNK_ROWS, each chunk seeded on its own."""
    V, H = shape["vocab_size"], shape["hidden_size"]
    for r0 in range(0, V, EMB_CHUNK_ROWS):
        n = min(EMB_CHUNK_ROWS, V - r0)
        yield _normal(seed, "tok.%d" % r0, (n, H), 0.5)


# ------------------------------------------------------------------------------------------ family naming
def family_tensors(family, shape):
    """The tensors of a family's checkpoint in HF naming: list of (name, shape, recipe) where recipe is
    ('emb',) for the chunked word embedding, ('cat', [cnames]) for row-concatenated canonical tensors,
    ('canon', cname) for one canonical tensor, or ('posids',) for the I64 position_ids buffer."""
    H, I, L = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    P, T, V = shape["max_position_embeddings"], shape["type_vocab_size"], shape["vocab_size"]
    p = shape["prefix"]
    out = [
        (p + "embeddings.word_embeddings.weight", [V, H], ("emb",)),              # [V, H]
        (p + "embeddings.position_embeddings.weight", [P, H], ("canon", "pos")),  # [P, H]
        (p + "embeddings.token_type_embeddings.weight", [T, H], ("canon", "type")),  # [T, H]
    ]
    ln = p + ("emb_ln." if family == "jina" else "embeddings.LayerNorm.")
    out += [(ln + "weight", [H], ("canon", "emb_ln.w")), (ln + "bias", [H], ("canon", "emb_ln.b"))]  # [H]
    for i in range(L):
        c = "L%d." % i
        if family == "jina":
            lp = p + "encoder.layers.%d." % i
            out += [
                # Wqkv rows: Q (0..H-1) | K (H..2H-1) | V (2H..3H-1), each head-major (head h at rows 64h..)
                (lp + "mixer.Wqkv.weight", [3 * H, H], ("cat", [c + "q.w", c + "k.w", c + "v.w"])),  # [3H, H]
                (lp + "mixer.Wqkv.bias", [3 * H], ("cat", [c + "q.b", c + "k.b", c + "v.b"])),       # [3H]
                (lp + "mixer.out_proj.weight", [H, H], ("canon", c + "o.w")),    # [H, H]
                (lp + "mixer.out_proj.bias", [H], ("canon", c + "o.b")),         # [H]
                (lp + "norm1.weight", [H], ("canon", c + "ln1.w")),              # [H]
                (lp + "norm1.bias", [H], ("canon", c + "ln1.b")),                # [H]
                (lp + "mlp.fc1.weight", [I, H], ("canon", c + "fc1.w")),         # [I, H]
                (lp + "mlp.fc1.bias", [I], ("canon", c + "fc1.b")),              # [I]
                (lp + "mlp.fc2.weight", [H, I], ("canon", c + "fc2.w")),         # [H, I]
                (lp + "mlp.fc2.bias", [H], ("canon", c + "fc2.b")),              # [H]
                (lp + "norm2.weight", [H], ("canon", c + "ln2.w")),              # [H]
                (lp + "norm2.bias", [H], ("canon", c + "ln2.b")),                # [H]
            ]
        else:
            lp = p + "encoder.layer.%d." % i
            for proj, k in (("query", "q"), ("key", "k"), ("value", "v")):
                out += [(lp + "attention.self.%s.weight" % proj, [H, H], ("canon", c + k + ".w")),  # [H, H]
                        (lp + "attention.self.%s.bias" % proj, [H], ("canon", c + k + ".b"))]       # [H]
            out += [
                (lp + "attention.output.dense.weight", [H, H], ("canon", c + "o.w")),      # [H, H]
                (lp + "attention.output.dense.bias", [H], ("canon", c + "o.b")),           # [H]
                (lp + "attention.output.LayerNorm.weight", [H], ("canon", c + "ln1.w")),   # [H]
                (lp + "attention.output.LayerNorm.bias", [H], ("canon", c + "ln1.b")),     # [H]
                (lp + "intermediate.dense.weight", [I, H], ("canon", c + "fc1.w")),        # [I, H]
                (lp + "intermediate.dense.bias", [I], ("canon", c + "fc1.b")),             # [I]
                (lp + "output.dense.weight", [H, I], ("canon", c + "fc2.w")),              # [H, I]
                (lp + "output.dense.bias", [H], ("canon", c + "fc2.b")),                   # [H]
                (lp + "output.LayerNorm.weight", [H], ("canon", c + "ln2.w")),             # [H]
                (lp + "output.LayerNorm.bias", [H], ("canon", c + "ln2.b")),               # [H]
            ]
    if family == "bert":
        out += [
            (p + "pooler.dense.weight", [H, H], ("canon", "head.dense.w")),   # [H, H]
            (p + "pooler.dense.bias", [H], ("canon", "head.dense.b")),        # [H]
            ("classifier.weight", [1, H], ("canon", "head.out.w")),           # [1, H]
            ("classifier.bias", [1], ("canon", "head.out.b")),                # [1]
        ]
    else:
        out += [
            ("classifier.dense.weight", [H, H], ("canon", "head.dense.w")),     # [H, H]
            ("classifier.dense.bias", [H], ("canon", "head.dense.b")),          # [H]
            ("classifier.out_proj.weight", [1, H], ("canon", "head.out.w")),    # [1, H]
            ("classifier.out_proj.bias", [1], ("canon", "head.out.b")),         # [1]
        ]
    if family != "jina":  # real HF XLM-R / BERT checkpoints persist this buffer; loaders must ignore it
        out.append((p + "embeddings.position_ids", [1, P], ("posids",)))        # [1, P] int64
    return out


def tensor_bytes(t, st_dtype):
    """Little-endian bytes of a float32 tensor cast to the on-disk dtype."""
    if st_dtype == "F32":
        return t.numpy().astype("<f4").tobytes()
    if st_dtype == "F16":
        return t.half().numpy().astype("<f2").tobytes()
    if st_dtype == "BF16":  # round-to-nearest-even cast by torch, then the raw 16 bits
        return t.bfloat16().view(torch.int16).numpy().astype("<i2").tobytes()
    raise ValueError(st_dtype)


def entry_producer(shape, recipe, st_dtype, seed):
    """A callable yielding the bytes of one tensor (in chunks for the word embedding)."""
    def run():
        if recipe[0] == "emb":
            for chunk in word_embedding_chunks(shape, seed):
                yield tensor_bytes(chunk, st_dtype)
        elif recipe[0] == "cat":
            yield tensor_bytes(torch.cat([canonical_tensor(shape, seed, n) for n in recipe[1]]), st_dtype)
        elif recipe[0] == "canon":
            yield tensor_bytes(canonical_tensor(shape, seed, recipe[1]), st_dtype)
        else:
            yield np.arange(shape["max_position_embeddings"], dtype="<i8").reshape(1, -1).tobytes()
    return run


def model_entries(family, shape, dtype):
    """[(name, st_dtype, shape, producer)] for a whole checkpoint."""
    ents = []
    for name, shp, recipe in family_tensors(family, shape):
        st = "I64" if recipe[0] == "posids" else ST_DTYPE[dtype]
        ents.append((name, st, shp, entry_producer(shape, recipe, st, shape["seed"])))
    return ents


# ------------------------------------------------------------------------------------------ safetensors I/O
def write_safetensors(path, entries, shuffle_seed):
    """Writes entries [(name, st_dtype, shape, producer)] as one safetensors file. The data order and the
    JSON key order are both shuffled (real files are sorted by name; loaders must not depend on order)."""
    rng = random.Random(shuffle_seed)
    order = list(entries)
    rng.shuffle(order)
    header, off = {}, 0
    for name, st, shp, _ in order:
        n = ITEMSIZE[st] * math.prod(shp)
        header[name] = {"dtype": st, "shape": list(shp), "data_offsets": [off, off + n]}
        off += n
    keys = list(header) + ["__metadata__"]
    rng.shuffle(keys)
    header["__metadata__"] = {"format": "pt"}
    hjson = json.dumps({k: header[k] for k in keys}, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(hjson).to_bytes(8, "little"))
        f.write(hjson)
        for name, st, shp, prod in order:
            n = 0
            for b in prod():
                f.write(b)
                n += len(b)
            assert n == header[name]["data_offsets"][1] - header[name]["data_offsets"][0], name
    os.replace(tmp, path)
    return off


class SafeTensors:
    """Read side: parses the header, checks the byte ranges, and hands out tensors as float64 torch
    tensors (F16/BF16 upcast exactly), reading through a memory map so row gathers stay cheap."""

    def __init__(self, path):
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            self.header = json.loads(f.read(n))
        self.header.pop("__metadata__", None)
        self.base = 8 + n
        self.mm = np.memmap(path, dtype=np.uint8, mode="r")
        for name, h in self.header.items():
            b, e = h["data_offsets"]
            assert 0 <= b <= e and self.base + e <= len(self.mm), (path, name)
            assert e - b == ITEMSIZE[h["dtype"]] * math.prod(h["shape"]), (path, name)

    def raw(self, name):
        """The stored array (numpy view, on-disk dtype; BF16 as uint16)."""
        h = self.header[name]
        b, e = h["data_offsets"]
        np_dt = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8"}[h["dtype"]]
        return self.mm[self.base + b:self.base + e].view(np_dt).reshape(h["shape"]), h["dtype"]

    @staticmethod
    def to64(arr, st):
        if st == "BF16":  # bf16 is the top half of an f32
            arr = (np.asarray(arr).astype(np.uint32) << 16).view(np.float32)
        return torch.from_numpy(np.asarray(arr).astype(np.float64))

    def get(self, name, rows=None):
        arr, st = self.raw(name)
        if rows is not None:
            arr = arr[rows]
        return self.to64(arr, st)


class ShardedTensors:
    """Same interface over a model.safetensors.index.json folder."""

    def __init__(self, folder):
        with open(os.path.join(folder, "model.safetensors.index.json")) as f:
            wm = json.load(f)["weight_map"]
        files = {fn: SafeTensors(os.path.join(folder, fn)) for fn in sorted(set(wm.values()))}
        self.where = {name: files[fn] for name, fn in wm.items()}
        self.header = {name: st.header[name] for name, st in self.where.items()}

    def get(self, name, rows=None):
        return self.where[name].get(name, rows)


def open_model(folder):
    if os.path.exists(os.path.join(folder, "model.safetensors")):
        return SafeTensors(os.path.join(folder, "model.safetensors"))
    return ShardedTensors(folder)


# ------------------------------------------------------------------------------------------ float64 reference
def load_reference_weights(cfg, st):
    """Maps a checkpoint's tensors (any of the three namings, detected from the names) onto the forward's
    slots, as float64. The word embedding stays on disk: the forward gathers the rows it needs."""
    names = st.header.keys()
    fam = ("jina" if "roberta.emb_ln.weight" in names else
           "bert" if "bert.embeddings.LayerNorm.weight" in names else "xlmr")
    p = "bert." if fam == "bert" else "roberta."
    g = st.get
    w = {"family": fam, "pad": cfg["pad_token_id"], "eps": cfg["layer_norm_eps"],
         "heads": cfg["num_attention_heads"],
         "tok": lambda ids: g(p + "embeddings.word_embeddings.weight", rows=ids),
         "pos": g(p + "embeddings.position_embeddings.weight"),
         "type": g(p + "embeddings.token_type_embeddings.weight")}
    ln = p + ("emb_ln." if fam == "jina" else "embeddings.LayerNorm.")
    w["emb_ln"] = (g(ln + "weight"), g(ln + "bias"))
    H = cfg["hidden_size"]
    w["layers"] = []
    for i in range(cfg["num_hidden_layers"]):
        L = {}
        if fam == "jina":
            lp = p + "encoder.layers.%d." % i
            qkv_w, qkv_b = g(lp + "mixer.Wqkv.weight"), g(lp + "mixer.Wqkv.bias")  # [3H, H], [3H]
            # spec 1.3: "three" is the outermost factor of the 3H features: Q | K | V
            L["q"] = (qkv_w[0:H], qkv_b[0:H])
            L["k"] = (qkv_w[H:2 * H], qkv_b[H:2 * H])
            L["v"] = (qkv_w[2 * H:3 * H], qkv_b[2 * H:3 * H])
            for slot, mod in (("o", "mixer.out_proj"), ("ln1", "norm1"), ("fc1", "mlp.fc1"),
                              ("fc2", "mlp.fc2"), ("ln2", "norm2")):
                L[slot] = (g(lp + mod + ".weight"), g(lp + mod + ".bias"))
        else:
            lp = p + "encoder.layer.%d." % i
            for slot, mod in (("q", "attention.self.query"), ("k", "attention.self.key"),
                              ("v", "attention.self.value"), ("o", "attention.output.dense"),
                              ("ln1", "attention.output.LayerNorm"), ("fc1", "intermediate.dense"),
                              ("fc2", "output.dense"), ("ln2", "output.LayerNorm")):
                L[slot] = (g(lp + mod + ".weight"), g(lp + mod + ".bias"))
        w["layers"].append(L)
    if fam == "bert":
        w["head_dense"] = (g("bert.pooler.dense.weight"), g("bert.pooler.dense.bias"))
        w["head_out"] = (g("classifier.weight"), g("classifier.bias"))
    else:
        w["head_dense"] = (g("classifier.dense.weight"), g("classifier.dense.bias"))
        w["head_out"] = (g("classifier.out_proj.weight"), g("classifier.out_proj.bias"))
    return w


def _linear(x, wb):
    return x @ wb[0].T + wb[1]  # y = x W^T + b, W [out, in]


def _layernorm(x, wb, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased variance, as nn.LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * wb[0] + wb[1]


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))  # exact erf GELU


def reference_logit(w, input_ids, token_type_ids):
    """The raw logit of one unpadded sequence, float64, from the spec formulas."""
    ids = torch.tensor(input_ids, dtype=torch.int64)
    S = len(input_ids)
    if w["family"] == "bert":
        pos = torch.arange(S)                                       # BERT: 0..S-1
    else:  # create_position_ids_from_input_ids: cumsum over non-pad tokens, offset by pad; pad -> pad
        m = (ids != w["pad"]).long()
        pos = torch.cumsum(m, 0) * m + w["pad"]
    tt = torch.tensor(token_type_ids, dtype=torch.int64)
    x = w["tok"](ids.numpy()) + w["pos"][pos] + w["type"][tt]       # [S, H]
    x = _layernorm(x, w["emb_ln"], w["eps"])
    nh = w["heads"]
    H = x.shape[1]
    dh = H // nh
    for L in w["layers"]:
        def split(t):  # [S, H] -> [nh, S, dh], head h = features dh*h .. dh*h+dh-1
            return t.view(S, nh, dh).transpose(0, 1)
        q, k, v = split(_linear(x, L["q"])), split(_linear(x, L["k"])), split(_linear(x, L["v"]))
        p = torch.softmax((q @ k.transpose(1, 2)) / math.sqrt(dh), dim=-1)  # [nh, S, S]
        ctx = (p @ v).transpose(0, 1).reshape(S, H)                          # heads concatenated head-major
        h = _layernorm(x + _linear(ctx, L["o"]), L["ln1"], w["eps"])
        f = _linear(_gelu(_linear(h, L["fc1"])), L["fc2"])
        x = _layernorm(h + f, L["ln2"], w["eps"])
    t = torch.tanh(_linear(x[0], w["head_dense"]))
    return float(_linear(t, w["head_out"])[0])


# ------------------------------------------------------------------------------------------ test sequences
GOLDEN_LENGTHS = (1, 2, 3, 17, 64, 127, 128, 255, 256, 511, 512)
N_RANDOM = 15


def xlmr_sequence(rng, n, vocab, pads=()):
    """<s> q </s></s> d </s> with random ids in [4, vocab-1) (no <unk>/<mask>); short ones <s> ... </s>.
    pads: positions (1..n-2) overwritten with <pad> = 1 to exercise the position-id rule."""
    if n == 1:
        return [0]
    mid = [int(v) for v in rng.integers(4, vocab - 1, size=n - 2)]
    if n >= 8:  # pair template: the separator </s></s> somewhere in the middle
        j = int(rng.integers(1, n - 4))
        mid[j:j + 2] = [2, 2]
    ids = [0] + mid + [2]
    for p in pads:
        ids[p] = 1
    return ids


def bert_sequence(rng, n, vocab):
    """[CLS] a [SEP] b [SEP] with random ids in [1000, vocab); types 0 through the first [SEP], then 1."""
    if n == 1:
        return [101], [0]
    if n < 5:
        ids = [101] + [int(v) for v in rng.integers(1000, vocab, size=n - 2)] + [102]
        return ids, [0] * n
    a = int(rng.integers(1, n - 3))  # first segment length >= 1, second >= 1
    ids = ([101] + [int(v) for v in rng.integers(1000, vocab, size=a)] + [102]
           + [int(v) for v in rng.integers(1000, vocab, size=n - a - 3)] + [102])
    return ids, [0] * (a + 2) + [1] * (n - a - 2)


def golden_sequences(family, vocab, seed):
    """[(input_ids, token_type_ids)]: the fixed lengths, then random lengths in [4, 512]. For XLM-R
    families two sequences carry <pad> ids in the middle (one single, one a run of three plus one)."""
    rng = np.random.default_rng(seed)
    lengths = list(GOLDEN_LENGTHS) + [int(v) for v in rng.integers(4, 513, size=N_RANDOM)]
    seqs = []
    for i, n in enumerate(lengths):
        if family == "bert":
            seqs.append(bert_sequence(rng, n, vocab))
            continue
        pads = ()
        if n == 17:
            pads = (5,)
        elif i == len(GOLDEN_LENGTHS) + 1:
            n = max(n, 8)
            pads = (2, 3, 4, n - 3)
        ids = xlmr_sequence(rng, n, vocab, pads)
        seqs.append((ids, [0] * n))
    return seqs


def write_golden(path, w, seqs):
    logits = []
    with open(path + ".tmp", "w") as f:
        for ids, tt in seqs:
            x = reference_logit(w, ids, tt)
            logits.append(x)
            f.write(json.dumps({"input_ids": ids, "token_type_ids": tt, "logit": x}) + "\n")
    os.replace(path + ".tmp", path)
    return np.array(logits)


# ------------------------------------------------------------------------------------------ generation
def shared_dir():
    """$RR_SHARED, else ../shared beside the repository, else /work/shared; None when none exists."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for d in (os.environ.get("RR_SHARED"), os.path.join(repo, "..", "shared"), "/work/shared"):
        if d and os.path.isdir(d):
            return os.path.abspath(d)
    return None


def copy_tokenizer(family, folder, shared):
    if not shared:
        return
    sub, files = TOKENIZER_FILES[family]
    for fn in files:
        shutil.copyfile(os.path.join(shared, "fixtures", "tokenizers", sub, fn), os.path.join(folder, fn))


def fresh_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def spread(name, logits):
    print("%-22s n=%3d  logit min %7.3f  max %7.3f  mean %7.3f  std %6.3f"
          % (name, len(logits), logits.min(), logits.max(), logits.mean(), logits.std()))


def generate_tiny(out, shared):
    models, golden = os.path.join(out, "models"), os.path.join(out, "golden")
    os.makedirs(golden, exist_ok=True)
    for family, fam in FAMILIES.items():
        shape = dict(TINY, **fam)
        seqs = golden_sequences(family, shape["vocab_size"], fam["seed"] + 7)
        for dtype in DTYPES:
            name = "%s_%s" % (family, dtype)
            folder = os.path.join(models, name)
            fresh_dir(folder)
            with open(os.path.join(folder, "config.json"), "w") as f:
                f.write(hf_config(family, shape, dtype))
            write_safetensors(os.path.join(folder, "model.safetensors"),
                              model_entries(family, shape, dtype), fam["seed"] + DTYPES.index(dtype))
            copy_tokenizer(family, folder, shared)
            cfg = json.load(open(os.path.join(folder, "config.json")))
            w = load_reference_weights(cfg, open_model(folder))
            spread(name, write_golden(os.path.join(golden, name + ".jsonl"), w, seqs))
    write_sharded(models, golden)
    import gen_models_ext  # JinaBERT v1, mGTE, ModernBERT
    gen_models_ext.generate_tiny_ext(out, shared)


def write_sharded(models, golden):
    """xlmr_f32 split over two files (embeddings + layer 0 | the rest), bytes copied from xlmr_f32."""
    src = os.path.join(models, "xlmr_f32")
    dst = os.path.join(models, "xlmr_f32_sharded")
    fresh_dir(dst)
    st = SafeTensors(os.path.join(src, "model.safetensors"))
    first = [n for n in st.header if ".embeddings." in n or ".layer.0." in n]
    second = [n for n in st.header if n not in first]
    weight_map, total = {}, 0
    for k, part in enumerate((first, second)):
        fn = "model-%05d-of-00002.safetensors" % (k + 1)
        ents = []
        for n in part:
            arr, dt = st.raw(n)
            ents.append((n, dt, st.header[n]["shape"], (lambda a=arr: iter([a.tobytes()]))))
            weight_map[n] = fn
        total += write_safetensors(os.path.join(dst, fn), ents, 900 + k)
    with open(os.path.join(dst, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f,
                  indent=2)
        f.write("\n")
    for fn in os.listdir(src):
        if fn != "model.safetensors":
            shutil.copyfile(os.path.join(src, fn), os.path.join(dst, fn))
    shutil.copyfile(os.path.join(golden, "xlmr_f32.jsonl"), os.path.join(golden, "xlmr_f32_sharded.jsonl"))


def generate_full(out, shared):
    """Real jina-reranker-v2 shape, BF16, random seeded weights; skipped when already written by this
    GENERATOR_VERSION (it is ~560 MB)."""
    folder = os.path.join(out, "full", "jina_v2_bf16")
    gpath = os.path.join(out, "golden", "full_jina_v2_bf16.jsonl")
    mark = os.path.join(folder, ".complete")
    if os.path.exists(mark) and os.path.exists(gpath) and open(mark).read().strip() == str(GENERATOR_VERSION):
        print("full model present (generator version %d): kept" % GENERATOR_VERSION)
        return
    fresh_dir(folder)
    shape = dict(FULL_JINA)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(hf_config("jina", shape, "bf16"))
    write_safetensors(os.path.join(folder, "model.safetensors"), model_entries("jina", shape, "bf16"), 405)
    copy_tokenizer("jina", folder, shared)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    w = load_reference_weights(cfg, open_model(folder))
    rng = np.random.default_rng(406)
    seqs = [(xlmr_sequence(rng, n, 31998), [0] * n) for n in FULL_LENGTHS]  # ids < 31998: renderable text
    os.makedirs(os.path.dirname(gpath), exist_ok=True)
    spread("full_jina_v2_bf16", write_golden(gpath, w, seqs))
    with open(mark, "w") as f:
        f.write("%d\n" % GENERATOR_VERSION)


def is_complete(out):
    try:
        return open(os.path.join(out, ".complete")).read().split()[0] == "GENERATOR_VERSION=%d" % GENERATOR_VERSION
    except (OSError, IndexError):
        return False


def generate(out, full, full_ext=False):
    t0 = time.time()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, ".complete")):
        os.remove(os.path.join(out, ".complete"))
    shared = shared_dir()
    print("gen_models: writing into %s (tokenizers: %s)" % (out, shared or "none, ../shared missing"))
    generate_tiny(out, shared)
    import gen_decoder  # Qwen3 / Qwen2 decoders: their own file, same DIR layout
    gen_decoder.generate(out, shared)
    import gen_jina_v3  # jina-reranker-v3 (listwise): scaled down here; the full shape only on request
    gen_jina_v3.generate(out, shared, False)
    if full:
        generate_full(out, shared)
    if full_ext:  # separate from --full: their float64 references take long, so CI's RR_FULL=1 leaves them out
        import gen_models_ext
        gen_models_ext.generate_full_ext(out, shared)
    with open(os.path.join(out, ".complete"), "w") as f:
        f.write("GENERATOR_VERSION=%d\n" % GENERATOR_VERSION)
    print("gen_models: done in %.1f s" % (time.time() - t0))


# ------------------------------------------------------------------------------------------ self-check
def read_golden(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def load_bench_module(shared, shape):
    """shared/bench/xlmr_model.py with its module constants set to the tiny shape (its classes read
    them at call time)."""
    spec = importlib.util.spec_from_file_location("xlmr_model", os.path.join(shared, "bench", "xlmr_model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.VOCAB, mod.HID, mod.LAYERS = shape["vocab_size"], shape["hidden_size"], shape["num_hidden_layers"]
    mod.HEADS, mod.FFN, mod.MAXPOS = shape["num_attention_heads"], shape["intermediate_size"], shape["max_position_embeddings"]
    mod.PAD, mod.EPS = shape["pad_token_id"], shape["layer_norm_eps"]
    return mod


def check_bench(out, shared):
    """xlmr_f32 golden vs shared/bench/xlmr_model.py's nn.Module (HF XLM-R layout), one by one and as one
    right-padded batch."""
    shape = dict(TINY, **FAMILIES["xlmr"])
    mod = load_bench_module(shared, shape)
    model = mod.CrossEncoder().double().eval()
    st = SafeTensors(os.path.join(out, "models", "xlmr_f32", "model.safetensors"))
    sd = {}
    for n in st.header:
        if n.endswith("position_ids") or not n.startswith("roberta."):
            continue
        k = n[len("roberta."):]
        k = k.replace("encoder.layer.", "layers.").replace("attention.self.", "")
        k = k.replace("attention.output.dense", "attn_out").replace("attention.output.LayerNorm", "attn_ln")
        k = k.replace("intermediate.dense", "inter").replace("output.dense", "out").replace("output.LayerNorm", "out_ln")
        sd[k] = st.get(n)
    sd["cls_dense.weight"], sd["cls_dense.bias"] = st.get("classifier.dense.weight"), st.get("classifier.dense.bias")
    sd["cls_out.weight"], sd["cls_out.bias"] = st.get("classifier.out_proj.weight"), st.get("classifier.out_proj.bias")
    model.load_state_dict(sd, strict=True)
    gold = read_golden(os.path.join(out, "golden", "xlmr_f32.jsonl"))
    want = np.array([g["logit"] for g in gold])
    with torch.no_grad():
        one = np.array([float(model(torch.tensor([g["input_ids"]]), torch.ones(1, len(g["input_ids"]),
                                                                             dtype=torch.int64))[0])
                        for g in gold])
        ids, mask = mod.pad_batch([np.array(g["input_ids"]) for g in gold])
        batch = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    return max(np.abs(one - want).max(), np.abs(batch - want).max())


def check_bert_torch(out):
    """bert_f32 golden vs an encoder built from torch.nn.TransformerEncoderLayer (torch's own attention,
    LayerNorm and GELU), embeddings and pooler head written here."""
    shape = dict(TINY, **FAMILIES["bert"])
    H = shape["hidden_size"]
    st = SafeTensors(os.path.join(out, "models", "bert_f32", "model.safetensors"))
    g = st.get
    layers = []
    for i in range(shape["num_hidden_layers"]):
        lp = "bert.encoder.layer.%d." % i
        lay = torch.nn.TransformerEncoderLayer(H, shape["num_attention_heads"], shape["intermediate_size"],
                                               dropout=0.0, activation="gelu", layer_norm_eps=shape["layer_norm_eps"],
                                               batch_first=True, norm_first=False).double().eval()
        with torch.no_grad():
            lay.self_attn.in_proj_weight.copy_(torch.cat([g(lp + "attention.self.%s.weight" % s) for s in ("query", "key", "value")]))
            lay.self_attn.in_proj_bias.copy_(torch.cat([g(lp + "attention.self.%s.bias" % s) for s in ("query", "key", "value")]))
            for mod, name in ((lay.self_attn.out_proj, "attention.output.dense"), (lay.norm1, "attention.output.LayerNorm"),
                              (lay.linear1, "intermediate.dense"), (lay.linear2, "output.dense"), (lay.norm2, "output.LayerNorm")):
                mod.weight.copy_(g(lp + name + ".weight"))
                mod.bias.copy_(g(lp + name + ".bias"))
        layers.append(lay)
    word, posw, typew = (g("bert.embeddings.%s_embeddings.weight" % s) for s in ("word", "position", "token_type"))
    ln = torch.nn.LayerNorm(H, eps=shape["layer_norm_eps"]).double()
    with torch.no_grad():
        ln.weight.copy_(g("bert.embeddings.LayerNorm.weight"))
        ln.bias.copy_(g("bert.embeddings.LayerNorm.bias"))
    worst = 0.0
    with torch.no_grad():
        for gl in read_golden(os.path.join(out, "golden", "bert_f32.jsonl")):
            ids, tt = torch.tensor(gl["input_ids"]), torch.tensor(gl["token_type_ids"])
            x = ln(word[ids] + posw[torch.arange(len(ids))] + typew[tt])[None]
            for lay in layers:
                x = lay(x)
            t = torch.tanh(torch.nn.functional.linear(x[0, 0], g("bert.pooler.dense.weight"), g("bert.pooler.dense.bias")))
            logit = float(torch.nn.functional.linear(t, g("classifier.weight"), g("classifier.bias"))[0])
            worst = max(worst, abs(logit - gl["logit"]))
    return worst


class _Renamed:
    """xlmr_f32 tensors presented under jina names (q, k, v concatenated into Wqkv)."""

    def __init__(self, st, layers):
        self.st, self.map = st, {}
        for n in st.header:
            if n.endswith("position_ids"):
                continue
            j = n.replace("embeddings.LayerNorm", "emb_ln").replace("encoder.layer.", "encoder.layers.")
            j = j.replace("attention.output.dense", "mixer.out_proj").replace("attention.output.LayerNorm", "norm1")
            j = j.replace("intermediate.dense", "mlp.fc1").replace("output.dense", "mlp.fc2").replace("output.LayerNorm", "norm2")
            self.map[j] = n
        for i in range(layers):
            for wb in ("weight", "bias"):
                self.map["roberta.encoder.layers.%d.mixer.Wqkv.%s" % (i, wb)] = [
                    "roberta.encoder.layer.%d.attention.self.%s.%s" % (i, s, wb) for s in ("query", "key", "value")]
        self.header = {k: None for k in self.map if "attention.self" not in k}

    def get(self, name, rows=None):
        src = self.map[name]
        if isinstance(src, list):
            return torch.cat([self.st.get(s) for s in src])
        return self.st.get(src, rows)


def check_jina_layout(out):
    """The reference on xlmr_f32 converted to jina naming must give xlmr_f32's golden logits."""
    folder = os.path.join(out, "models", "xlmr_f32")
    cfg = json.load(open(os.path.join(folder, "config.json")))
    w = load_reference_weights(cfg, _Renamed(open_model(folder), cfg["num_hidden_layers"]))
    assert w["family"] == "jina"
    gold = read_golden(os.path.join(out, "golden", "xlmr_f32.jsonl"))
    return max(abs(reference_logit(w, g["input_ids"], g["token_type_ids"]) - g["logit"]) for g in gold)


def check_files(out):
    """Every folder re-read: golden logits reproduce from the files on disk, the sharded copy has the
    same tensors and bytes as xlmr_f32, and F16/BF16 logits stay near F32 (the casts are sane)."""
    models = os.path.join(out, "models")
    worst_repro, worst_cast = 0.0, 0.0
    for folder in sorted(os.listdir(models)):
        # only the folders this file's reference writes; the other generators check their own
        # (gen_models_ext.selfcheck_ext checks jina_v1_*, mgte_*, modernbert_*)
        if not re.fullmatch(r"(xlmr|jina|bert)_(f32|f16|bf16)(_sharded)?", folder):
            continue
        cfg = json.load(open(os.path.join(models, folder, "config.json")))
        w = load_reference_weights(cfg, open_model(os.path.join(models, folder)))
        gold = read_golden(os.path.join(out, "golden", folder + ".jsonl"))
        assert len(gold) >= 24, folder
        for g in gold:
            worst_repro = max(worst_repro, abs(reference_logit(w, g["input_ids"], g["token_type_ids"]) - g["logit"]))
        fam, dt = folder.split("_")[:2]
        if dt != "f32":
            ref = read_golden(os.path.join(out, "golden", fam + "_f32.jsonl"))
            worst_cast = max(worst_cast, max(abs(a["logit"] - b["logit"]) for a, b in zip(gold, ref)))
    a = SafeTensors(os.path.join(models, "xlmr_f32", "model.safetensors"))
    b = ShardedTensors(os.path.join(models, "xlmr_f32_sharded"))
    same = set(a.header) == set(b.header) and all(
        np.array_equal(a.raw(n)[0], b.where[n].raw(n)[0]) for n in a.header)
    return worst_repro, worst_cast, same


def selfcheck(out):
    if not is_complete(out):
        generate(out, False)
    shared = shared_dir()
    res = {"passed": 0, "failed": 0, "skipped": 0}

    def report(name, ok, detail):
        res["passed" if ok else "failed"] += 1
        print("%s %s: %s" % ("PASS" if ok else "FAIL", name, detail))

    repro, cast, same = check_files(out)
    report("golden reproduces from files", repro == 0.0, "max |diff| %.3g" % repro)
    report("f16/bf16 logits near f32", cast < 0.25, "max |diff| %.3g" % cast)
    report("sharded xlmr equals xlmr_f32", same, "tensor names and bytes")
    import gen_models_ext
    gen_models_ext.selfcheck_ext(out, report)
    d = check_jina_layout(out)
    report("jina layout (Wqkv) == xlmr layout", d < 1e-12, "max |diff| %.3g" % d)
    d = check_bert_torch(out)
    report("bert vs torch.nn.TransformerEncoderLayer", d < 1e-5, "max |diff| %.3g" % d)
    if shared and os.path.exists(os.path.join(shared, "bench", "xlmr_model.py")):
        d = check_bench(out, shared)
        report("xlmr vs shared/bench/xlmr_model.py", d < 1e-5, "max |diff| %.3g" % d)
    else:
        res["skipped"] += 1
        print("SKIP xlmr vs shared/bench/xlmr_model.py: ../shared missing")
    print("%d passed, %d failed, %d skipped" % (res["passed"], res["failed"], res["skipped"]))
    return res["failed"] == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("RR_TESTDATA", "build/testdata"))
    ap.add_argument("--full", action="store_true", help="also write the full-size jina-reranker-v2 model")
    ap.add_argument("--full-ext", action="store_true",
                    help="also write the full-size JinaBERT v1, mGTE and ModernBERT models (slow float64 references)")
    ap.add_argument("--selfcheck", action="store_true",
                    help="cross-check the reference (generates first if DIR is not complete)")
    a = ap.parse_args()
    if a.selfcheck:
        sys.exit(0 if selfcheck(a.out) else 1)
    generate(a.out, a.full, a.full_ext)


if __name__ == "__main__":
    main()
