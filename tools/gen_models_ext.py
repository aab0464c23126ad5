"""gen_models_ext.py -- test models of the JinaBERT v1, mGTE and ModernBERT families (called by gen_models.py).

The full-size shapes alone (what `gen_models.py --full-ext` adds, without rewriting the small models; about
3 minutes per family on one core, most of it the float64 reference through the system BLAS):
    /usr/bin/python3 tools/gen_models_ext.py --out DIR --full-ext [--family jina_v1|mgte|modernbert ...]

Output (beside gen_models.py's, same conventions):
  DIR/models/<family>_<dtype>/   family in {jina_v1, mgte, modernbert}, dtype in {f32, f16, bf16}: the real
                                 configs scaled down (see TINY_EXT), random seeded weights
  DIR/models/jina_v1_plain_f32/  jina_v1_f32 without the BERT pooler (classifier on token 0 directly)
  DIR/models/modernbert_cls_f32/ modernbert_f32 with classifier_pooling "cls"
  DIR/golden/<folder>.jsonl      {"input_ids", "token_type_ids", "logit"} per sequence, lengths 1..2100
  DIR/full/<family>_bf16/        (--full-ext) the real full-size shapes: jina-reranker-v1-base-en,
                                 gte-multilingual-reranker-base, gte-reranker-modernbert-base (unit Q/K and
                                 FFN-output gains, see UNIT_GAINS); golden in DIR/golden/full_<family>_bf16.jsonl

Reference logits come from the float64 forwards below, written from the families' published math
(../shared/spec/model.md 5.4, ../shared/spec/encoders.md 1.3-1.4 and 2.3-2.4; docs/FAMILIES.md), one
sequence at a time with full (unmasked) attention matrices, never from the C code. ALiBi slopes follow the
ALiBi paper's geometric sequence; rotary frequencies and NTK scaling are computed here in float64.
"""
import json
import math
import os
import random
import shutil
import time

import numpy as np
import torch

import gen_models as G

GEN_EXT_VERSION = 2  # 2: unit gains in the full shapes (the small models are unchanged)

TINY_EXT = {
    # jina-reranker-v1-base-en's config scaled down; 6 heads: ALiBi slopes beyond a power of two
    "jina_v1": dict(hidden_size=96, num_attention_heads=6, num_hidden_layers=2, intermediate_size=128,
                    vocab_size=30528, max_position_embeddings=8192, type_vocab_size=2, layer_norm_eps=1e-12,
                    pad_token_id=0, seed=501),
    # gte-multilingual-reranker-base's: NTK-scaled rotary, 250048-style spare embedding rows
    "mgte": dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, intermediate_size=96,
                 vocab_size=32064, max_position_embeddings=8192, type_vocab_size=1, layer_norm_eps=1e-12,
                 pad_token_id=1, rope_theta=20000.0, ntk=8.0, seed=601),
    # gte-reranker-modernbert-base's: 4 layers so layers 0 and 3 are global, 1 and 2 local; a 32-token
    # window (16 each side) so that short sequences already cross it
    "modernbert": dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=4, intermediate_size=96,
                       vocab_size=576, max_position_embeddings=8192, norm_eps=1e-5, local_attention=32,
                       global_attn_every_n_layers=3, global_rope_theta=160000.0, local_rope_theta=10000.0,
                       classifier_pooling="mean", seed=701),
}
# The full shapes take unit gains for Q/K and the FFN output: with the small models' 1.6 / 1.5 their 12 (22)
# layers are chaotic -- the relative difference between two hidden states grows about 1.5x per layer, so an
# independent float64 forward that merely rounds activations to bf16 moved sigmoids by 0.3 and fp32 rounding
# alone reached 4e-4 in the logit; with unit gains the same emulation stays near 1% relative after 12 layers,
# as trained checkpoints do, and the fp32 / bf16 / int8 comparisons measure the engine, not the weights.
UNIT_GAINS = dict(qk_gain=1.0, ff_out_gain=1.0)
FULL_EXT = {
    "jina_v1": dict(hidden_size=768, num_attention_heads=12, num_hidden_layers=12, intermediate_size=3072,
                    vocab_size=30528, max_position_embeddings=8192, type_vocab_size=2, layer_norm_eps=1e-12,
                    pad_token_id=0, seed=801, **UNIT_GAINS),
    "mgte": dict(hidden_size=768, num_attention_heads=12, num_hidden_layers=12, intermediate_size=3072,
                 vocab_size=250048, max_position_embeddings=8192, type_vocab_size=1, layer_norm_eps=1e-12,
                 pad_token_id=1, rope_theta=20000.0, ntk=8.0, seed=802, **UNIT_GAINS),
    "modernbert": dict(hidden_size=768, num_attention_heads=12, num_hidden_layers=22, intermediate_size=1152,
                       vocab_size=50368, max_position_embeddings=8192, norm_eps=1e-5, local_attention=128,
                       global_attn_every_n_layers=3, global_rope_theta=160000.0, local_rope_theta=10000.0,
                       classifier_pooling="mean", seed=803, **UNIT_GAINS),
}
FULL_EXT_LENGTHS = (5, 64, 300, 1100)  # one past 1024; the float64 reference costs minutes per family

LONG_LENGTHS = (1100, 1500, 2100)  # beyond jina-reranker-v2's 1024 (and ModernBERT's window)


# ------------------------------------------------------------------------------------------ configs
def ext_config(family, shape, dtype, variant=None):
    H, nh, L, I = (shape[k] for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size"))
    common = {"hidden_size": H, "num_attention_heads": nh, "num_hidden_layers": L, "intermediate_size": I,
              "vocab_size": shape["vocab_size"], "max_position_embeddings": shape["max_position_embeddings"],
              "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}, "initializer_range": 0.02,
              "torch_dtype": G.TORCH_DTYPE_NAME[dtype]}
    if family == "jina_v1":  # as jinaai/jina-reranker-v1-base-en writes it (remote code jina-bert-implementation)
        c = dict(common, **{
            "_name_or_path": "jinaai/jina-reranker-v1-base-en",
            "architectures": ["JinaBertForSequenceClassification"],
            "attention_probs_dropout_prob": 0.0,
            "auto_map": {"AutoConfig": "jinaai/jina-bert-implementation--configuration_bert.JinaBertConfig",
                         "AutoModelForSequenceClassification":
                             "jinaai/jina-bert-implementation--modeling_bert.JinaBertForSequenceClassification"},
            "classifier_dropout": None, "emb_pooler": None, "feed_forward_type": "geglu",
            "gradient_checkpointing": False, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "layer_norm_eps": shape["layer_norm_eps"], "model_max_length": shape["max_position_embeddings"],
            "model_type": "bert", "num_labels": 1, "pad_token_id": shape["pad_token_id"],
            "position_embedding_type": "alibi", "transformers_version": "4.26.0",
            "type_vocab_size": shape["type_vocab_size"], "use_cache": True})
    elif family == "mgte":  # as Alibaba-NLP/gte-multilingual-reranker-base (remote code new-impl)
        c = dict(common, **{
            "_name_or_path": "Alibaba-NLP/gte-multilingual-reranker-base",
            "architectures": ["NewForSequenceClassification"],
            "attention_probs_dropout_prob": 0.0,
            "auto_map": {"AutoConfig": "Alibaba-NLP/new-impl--configuration.NewConfig",
                         "AutoModel": "Alibaba-NLP/new-impl--modeling.NewModel",
                         "AutoModelForSequenceClassification": "Alibaba-NLP/new-impl--modeling.NewForSequenceClassification"},
            "classifier_dropout": 0.0, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "layer_norm_eps": shape["layer_norm_eps"], "layer_norm_type": "layer_norm",
            "logn_attention_clip1": False, "logn_attention_scale": False, "model_type": "new",
            "pack_qkv": True, "pad_token_id": shape["pad_token_id"], "position_embedding_type": "rope",
            "rope_scaling": {"factor": shape["ntk"], "type": "ntk"}, "rope_theta": shape["rope_theta"],
            "transformers_version": "4.39.1", "type_vocab_size": shape["type_vocab_size"],
            "unpad_inputs": False, "use_memory_efficient_attention": False})
    else:  # as Alibaba-NLP/gte-reranker-modernbert-base (native transformers >= 4.48)
        V = shape["vocab_size"]
        c = dict(common, **{
            "_name_or_path": "Alibaba-NLP/gte-reranker-modernbert-base",
            "architectures": ["ModernBertForSequenceClassification"],
            "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": V - 63 + 1,
            "classifier_activation": "gelu", "classifier_bias": False, "classifier_dropout": 0.0,
            "classifier_pooling": variant or shape["classifier_pooling"], "cls_token_id": V - 63 + 1,
            "decoder_bias": True, "deterministic_flash_attn": False, "embedding_dropout": 0.0,
            "eos_token_id": V - 63 + 2, "global_attn_every_n_layers": shape["global_attn_every_n_layers"],
            "global_rope_theta": shape["global_rope_theta"], "gradient_checkpointing": False,
            "hidden_activation": "gelu", "initializer_cutoff_factor": 2.0, "layer_norm_eps": shape["norm_eps"],
            "local_attention": shape["local_attention"], "local_rope_theta": shape["local_rope_theta"],
            "mlp_bias": False, "mlp_dropout": 0.0, "model_type": "modernbert", "norm_bias": False,
            "norm_eps": shape["norm_eps"], "pad_token_id": V - 63 + 3,
            "position_embedding_type": "absolute",  # present in the published config, inert for ModernBERT
            "reference_compile": True, "repad_logits_with_grad": False, "sep_token_id": V - 63 + 2,
            "sparse_pred_ignore_index": -100, "sparse_prediction": False, "transformers_version": "4.48.0"})
    return json.dumps(c, indent=2, sort_keys=True) + "\n"


# ------------------------------------------------------------------------------------------ tensors
def ext_tensors(family, shape, plain=False):
    """[(name, shape, (std, mean))] of a checkpoint; the word embedding is ('emb',) (chunked)."""
    H, I, L = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    V = shape["vocab_size"]
    qk, fo = shape.get("qk_gain", 1.6), shape.get("ff_out_gain", 1.5)  # peaked attention in the small models
    lin = lambda n_out, n_in, gain=1.0: (gain / math.sqrt(n_in), 0.0)
    ln_w, ln_b, bias = (0.1, 1.0), (0.05, 0.0), (0.05, 0.0)
    out = []
    if family == "jina_v1":
        p = "bert."
        out += [(p + "embeddings.word_embeddings.weight", [V, H], ("emb",)),
                (p + "embeddings.token_type_embeddings.weight", [shape["type_vocab_size"], H], (0.3, 0.0)),
                (p + "embeddings.LayerNorm.weight", [H], ln_w), (p + "embeddings.LayerNorm.bias", [H], ln_b)]
        for i in range(L):
            lp = p + "encoder.layer.%d." % i
            for proj, g in (("query", qk), ("key", qk), ("value", 1.0)):
                out += [(lp + "attention.self.%s.weight" % proj, [H, H], lin(H, H, g)),
                        (lp + "attention.self.%s.bias" % proj, [H], bias)]
            out += [(lp + "attention.output.dense.weight", [H, H], lin(H, H)),
                    (lp + "attention.output.dense.bias", [H], bias),
                    (lp + "attention.output.LayerNorm.weight", [H], ln_w),
                    (lp + "attention.output.LayerNorm.bias", [H], ln_b),
                    (lp + "mlp.gated_layers.weight", [2 * I, H], lin(2 * I, H)),          # [2I, H], no bias
                    (lp + "mlp.wo.weight", [H, I], lin(H, I, fo)), (lp + "mlp.wo.bias", [H], bias),
                    (lp + "mlp.layernorm.weight", [H], ln_w), (lp + "mlp.layernorm.bias", [H], ln_b)]
        if not plain:
            out += [(p + "pooler.dense.weight", [H, H], lin(H, H, 1.5)), (p + "pooler.dense.bias", [H], bias)]
        out += [("classifier.weight", [1, H], lin(1, H, 4.0 if not plain else 1.0)), ("classifier.bias", [1], (0.1, 0.0))]
    elif family == "mgte":
        p = "new."
        out += [(p + "embeddings.word_embeddings.weight", [V, H], ("emb",)),
                (p + "embeddings.token_type_embeddings.weight", [1, H], (0.3, 0.0)),
                (p + "embeddings.LayerNorm.weight", [H], ln_w), (p + "embeddings.LayerNorm.bias", [H], ln_b)]
        for i in range(L):
            lp = p + "encoder.layer.%d." % i
            out += [(lp + "attention.qkv_proj.weight", [3 * H, H], lin(H, H, qk)),   # Q | K | V rows
                    (lp + "attention.qkv_proj.bias", [3 * H], bias),
                    (lp + "attention.o_proj.weight", [H, H], lin(H, H)), (lp + "attention.o_proj.bias", [H], bias),
                    (lp + "attn_ln.weight", [H], ln_w), (lp + "attn_ln.bias", [H], ln_b),
                    (lp + "mlp.up_gate_proj.weight", [2 * I, H], lin(2 * I, H)),       # up | gate, no bias
                    (lp + "mlp.down_proj.weight", [H, I], lin(H, I, fo)), (lp + "mlp.down_proj.bias", [H], bias),
                    (lp + "mlp_ln.weight", [H], ln_w), (lp + "mlp_ln.bias", [H], ln_b)]
        out += [(p + "pooler.dense.weight", [H, H], lin(H, H, 1.5)), (p + "pooler.dense.bias", [H], bias),
                ("classifier.weight", [1, H], lin(1, H, 4.0)), ("classifier.bias", [1], (0.1, 0.0))]
    else:
        p = "model."
        out += [(p + "embeddings.tok_embeddings.weight", [V, H], ("emb",)), (p + "embeddings.norm.weight", [H], ln_w)]
        for i in range(L):
            lp = p + "layers.%d." % i
            if i > 0:
                out.append((lp + "attn_norm.weight", [H], ln_w))
            out += [(lp + "attn.Wqkv.weight", [3 * H, H], lin(H, H, qk)), (lp + "attn.Wo.weight", [H, H], lin(H, H)),
                    (lp + "mlp_norm.weight", [H], ln_w), (lp + "mlp.Wi.weight", [2 * I, H], lin(2 * I, H)),
                    (lp + "mlp.Wo.weight", [H, I], lin(H, I, fo))]
        out += [(p + "final_norm.weight", [H], ln_w), ("head.dense.weight", [H, H], lin(H, H, 1.5)),
                ("head.norm.weight", [H], ln_w), ("classifier.weight", [1, H], lin(1, H, 4.0)),
                ("classifier.bias", [1], (0.1, 0.0))]
    return out


def ext_entries(family, shape, dtype, plain=False):
    st = G.ST_DTYPE[dtype]
    seed = shape["seed"]
    ents = []
    for name, shp, rec in ext_tensors(family, shape, plain):
        if rec[0] == "emb":
            def prod(shp=shp, name=name):
                V, H = shp
                for r0 in range(0, V, G.EMB_CHUNK_ROWS):
                    yield G.tensor_bytes(G._normal(seed, "%s.%d" % (name, r0), (min(G.EMB_CHUNK_ROWS, V - r0), H), 0.5), st)
        else:
            def prod(shp=shp, name=name, rec=rec):
                yield G.tensor_bytes(G._normal(seed, name, tuple(shp), rec[0], rec[1]), st)
        ents.append((name, st, shp, prod))
    return ents


# ------------------------------------------------------------------------------------------ tokenizers
def _byte_chars():
    """GPT-2's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


CORPUS = ("The quick brown fox jumps over the lazy dog. How do I sort a list in python? sorted(xs) returns a new "
          "sorted list. Organic skincare products for sensitive skin. Wie alt ist Berlin? Berlin wurde 1237 "
          "erstmals erwähnt. what is the capital of China? Beijing is the capital of China. Introduction of quick "
          "sort. The weather is nice today. Deep Learning is not a new idea; neural networks learn representations "
          "from data. Rerankers score a query against each document and sort the documents by that score.") * 3


def bpe_tokenizer(vocab_size):
    """A small byte-level BPE tokenizer.json in the layout of ModernBERT's (GPT-NeoX/OLMo style: NFC, ByteLevel
    without prefix space, BERT-style [CLS] A [SEP] B [SEP] template, specials at the end of the table), with
    merges learned greedily on CORPUS. Returns (tokenizer.json text, tokenizer_config.json text, special ids)."""
    import re
    bc = _byte_chars()
    vocab = {bc[b]: i for i, b in enumerate(sorted(bc, key=lambda b: ord(bc[b])))}
    words = {}
    for w in re.findall(r" ?[A-Za-zäöüßé]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", CORPUS):
        t = tuple(bc[b] for b in w.encode("utf-8"))
        words[t] = words.get(t, 0) + 1
    merges = []
    n_specials = 5
    while len(vocab) < vocab_size - 63 - 1:  # the specials sit at V-63+0 .. V-63+4, spare rows above
        pairs = {}
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + n
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda k: pairs[k])
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        nw = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nw[tuple(out)] = nw.get(tuple(out), 0) + n
        words = nw
    base = vocab_size - 63
    names = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    ids = {nm: base + k for k, nm in enumerate(names)}
    added = [{"id": ids[nm], "content": nm, "single_word": False, "lstrip": nm == "[MASK]", "rstrip": False,
              "normalized": False, "special": True} for nm in names]
    added.append({"id": base + n_specials, "content": "|||EMAIL_ADDRESS|||", "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": True, "special": False})
    tok = lambda t: {"SpecialToken": {"id": t, "type_id": 0}}
    seq = lambda s, ty: {"Sequence": {"id": s, "type_id": ty}}
    tj = {
        "version": "1.0",
        # the published file reportedly carries these blocks; the engine must not pad every input to 8000
        "truncation": {"direction": "Right", "max_length": 8000, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 8000}, "direction": "Right", "pad_to_multiple_of": None,
                    "pad_id": ids["[PAD]"], "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [tok("[CLS]"), seq("A", 0), tok("[SEP]")],
                           "pair": [tok("[CLS]"), seq("A", 0), tok("[SEP]"), seq("B", 0), tok("[SEP]")],
                           "special_tokens": {nm: {"id": nm, "ids": [ids[nm]], "tokens": [nm]} for nm in ("[CLS]", "[SEP]")}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }
    cfg = {"clean_up_tokenization_spaces": True, "cls_token": "[CLS]", "mask_token": "[MASK]",
           "model_input_names": ["input_ids", "attention_mask"], "model_max_length": 8192, "pad_token": "[PAD]",
           "sep_token": "[SEP]", "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]"}
    return (json.dumps(tj, ensure_ascii=False, indent=2) + "\n", json.dumps(cfg, indent=2) + "\n", ids,
            len(vocab))


def write_tokenizer(family, folder, shared, shape):
    if family == "modernbert":
        tj, tc, _, _ = bpe_tokenizer(shape["vocab_size"])
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(tj)
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            f.write(tc)
        return
    if not shared:
        return
    sub = "bert-base-uncased" if family == "jina_v1" else "xlmr_pruned32k"
    src = os.path.join(shared, "fixtures", "tokenizers", sub)
    for fn in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if os.path.exists(os.path.join(src, fn)):
            shutil.copyfile(os.path.join(src, fn), os.path.join(folder, fn))
    # both real models accept 8192 tokens; the fixtures' configs say 512 / 1024
    path = os.path.join(folder, "tokenizer_config.json")
    tc = json.load(open(path)) if os.path.exists(path) else {}
    tc["model_max_length"] = 8192
    with open(path, "w") as f:
        json.dump(tc, f, indent=2)
        f.write("\n")


# ------------------------------------------------------------------------------------------ float64 references
def _lin(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps) * w
    return y + b if b is not None else y


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def alibi_slopes(n):
    """The ALiBi paper's slopes: a geometric sequence from 2^(-8/n) for n a power of two; otherwise the
    closest power of two's sequence followed by every other term of the doubled one."""
    def geo(k):
        first = 2.0 ** (-(2.0 ** -(math.log2(k) - 3)))
        return [first * first ** i for i in range(k)]
    if math.log2(n).is_integer():
        return geo(n)
    p = 2 ** math.floor(math.log2(n))
    return geo(p) + alibi_slopes(2 * p)[0::2][:n - p]


def rope_cos_sin(S, d, theta, ntk=None):
    """[S, d/2] cos and sin of p * inv_freq[j] in float64; NTK: base theta*f, frequencies / f^(2/d)."""
    j = torch.arange(0, d, 2, dtype=torch.float64)
    if ntk:
        inv = (theta * ntk) ** (-j / d) / ntk ** (2.0 / d)
    else:
        inv = theta ** (-j / d)
    ang = torch.arange(S, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang), torch.sin(ang)


def _rope(t, cos, sin):
    """t [nh, S, d]: half-split rotation (first half with the second)."""
    h = t.shape[-1] // 2
    a, b = t[..., :h], t[..., h:]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], -1)


def _attend(q, k, v, nh, bias=None):
    """q, k, v [S, H] -> [S, H]; bias [nh, S, S] added to the scaled scores (-inf = masked)."""
    S, H = q.shape
    d = H // nh
    sp = lambda t: t.view(S, nh, d).transpose(0, 1)
    q, k, v = sp(q), sp(k), sp(v)
    return _attend_heads(q, k, v, bias)


def _attend_heads(q, k, v, bias=None):
    """q, k, v [nh, S, d]; bias: None, [1 or nh, S, S], or a function of the head giving [S, S]. One head at
    a time, so a 2000-token sequence of the full-size shapes needs one [S, S] matrix, not nh."""
    nh, S, d = q.shape
    out = []
    for h in range(nh):
        s = q[h] @ k[h].T / math.sqrt(d)
        if callable(bias):
            s = s + bias(h)
        elif bias is not None:
            s = s + bias[h if bias.shape[0] > 1 else 0]
        out.append(torch.softmax(s, -1) @ v[h])
    return torch.stack(out, 0).transpose(0, 1).reshape(S, nh * d)


def reference_logit_ext(family, cfg, st, ids, types):
    g = st.get
    S = len(ids)
    idx = np.array(ids)
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d = H // nh
    if family == "jina_v1":
        eps = cfg["layer_norm_eps"]
        x = g("bert.embeddings.word_embeddings.weight", rows=idx) + g("bert.embeddings.token_type_embeddings.weight")[
            torch.tensor(types)]
        x = _ln(x, g("bert.embeddings.LayerNorm.weight"), g("bert.embeddings.LayerNorm.bias"), eps)
        pos = torch.arange(S, dtype=torch.float64)
        dist = (pos[None, :] - pos[:, None]).abs()                              # [S, S] |j - i|
        slopes = alibi_slopes(nh)
        bias = lambda h: -slopes[h] * dist                                      # head h: [S, S]
        I = cfg["intermediate_size"]
        for i in range(cfg["num_hidden_layers"]):
            lp = "bert.encoder.layer.%d." % i
            q, k, v = (_lin(x, g(lp + "attention.self.%s.weight" % n), g(lp + "attention.self.%s.bias" % n))
                       for n in ("query", "key", "value"))
            a = _lin(_attend(q, k, v, nh, bias), g(lp + "attention.output.dense.weight"), g(lp + "attention.output.dense.bias"))
            h = _ln(x + a, g(lp + "attention.output.LayerNorm.weight"), g(lp + "attention.output.LayerNorm.bias"), eps)
            u = _lin(h, g(lp + "mlp.gated_layers.weight"))                      # [S, 2I]
            f = _lin(_gelu(u[:, :I]) * u[:, I:], g(lp + "mlp.wo.weight"), g(lp + "mlp.wo.bias"))
            x = _ln(h + f, g(lp + "mlp.layernorm.weight"), g(lp + "mlp.layernorm.bias"), eps)
        z = x[0]
        if "bert.pooler.dense.weight" in st.header:
            z = torch.tanh(_lin(z, g("bert.pooler.dense.weight"), g("bert.pooler.dense.bias")))
        return float(_lin(z, g("classifier.weight"), g("classifier.bias"))[0])
    if family == "mgte":
        eps = cfg["layer_norm_eps"]
        x = g("new.embeddings.word_embeddings.weight", rows=idx) + g("new.embeddings.token_type_embeddings.weight")[0]
        x = _ln(x, g("new.embeddings.LayerNorm.weight"), g("new.embeddings.LayerNorm.bias"), eps)
        sc = cfg.get("rope_scaling") or {}
        cos, sin = rope_cos_sin(S, d, cfg["rope_theta"], sc.get("factor"))
        I = cfg["intermediate_size"]
        for i in range(cfg["num_hidden_layers"]):
            lp = "new.encoder.layer.%d." % i
            qkv = _lin(x, g(lp + "attention.qkv_proj.weight"), g(lp + "attention.qkv_proj.bias"))
            sp = lambda t: t.reshape(S, nh, d).transpose(0, 1)
            q, k, v = sp(qkv[:, :H]), sp(qkv[:, H:2 * H]), sp(qkv[:, 2 * H:])
            ctx = _attend_heads(_rope(q, cos, sin), _rope(k, cos, sin), v)
            a = _lin(ctx, g(lp + "attention.o_proj.weight"), g(lp + "attention.o_proj.bias"))
            x = _ln(x + a, g(lp + "attn_ln.weight"), g(lp + "attn_ln.bias"), eps)
            u = _lin(x, g(lp + "mlp.up_gate_proj.weight"))                      # [S, 2I]: up | gate
            f = _lin(_gelu(u[:, I:]) * u[:, :I], g(lp + "mlp.down_proj.weight"), g(lp + "mlp.down_proj.bias"))
            x = _ln(x + f, g(lp + "mlp_ln.weight"), g(lp + "mlp_ln.bias"), eps)
        z = torch.tanh(_lin(x[0], g("new.pooler.dense.weight"), g("new.pooler.dense.bias")))
        return float(_lin(z, g("classifier.weight"), g("classifier.bias"))[0])
    # ModernBERT: pre-norm, no biases, global layers every n-th with their own theta, local ones windowed
    eps = cfg["norm_eps"]
    I = cfg["intermediate_size"]
    x = _ln(g("model.embeddings.tok_embeddings.weight", rows=idx), g("model.embeddings.norm.weight"), None, eps)
    pos = torch.arange(S)
    far = (pos[None, :] - pos[:, None]).abs() > cfg["local_attention"] // 2
    local_mask = torch.zeros(S, S, dtype=torch.float64).masked_fill(far, float("-inf"))[None]
    cs = {"g": rope_cos_sin(S, d, cfg["global_rope_theta"]), "l": rope_cos_sin(S, d, cfg["local_rope_theta"])}
    for i in range(cfg["num_hidden_layers"]):
        lp = "model.layers.%d." % i
        glob = i % cfg["global_attn_every_n_layers"] == 0
        cos, sin = cs["g" if glob else "l"]
        h = x if i == 0 else _ln(x, g(lp + "attn_norm.weight"), None, eps)
        qkv = _lin(h, g(lp + "attn.Wqkv.weight"))
        sp = lambda t: t.reshape(S, nh, d).transpose(0, 1)
        q, k, v = sp(qkv[:, :H]), sp(qkv[:, H:2 * H]), sp(qkv[:, 2 * H:])
        ctx = _attend_heads(_rope(q, cos, sin), _rope(k, cos, sin), v, None if glob else local_mask)
        x = x + _lin(ctx, g(lp + "attn.Wo.weight"))
        u = _lin(_ln(x, g(lp + "mlp_norm.weight"), None, eps), g(lp + "mlp.Wi.weight"))  # [S, 2I]: input | gate
        x = x + _lin(_gelu(u[:, :I]) * u[:, I:], g(lp + "mlp.Wo.weight"))
    y = _ln(x, g("model.final_norm.weight"), None, eps)
    pooled = y.mean(0) if cfg["classifier_pooling"] == "mean" else y[0]
    z = _ln(_gelu(_lin(pooled, g("head.dense.weight"))), g("head.norm.weight"), None, eps)
    return float(_lin(z, g("classifier.weight"), g("classifier.bias"))[0])


# ------------------------------------------------------------------------------------------ sequences
def ext_sequence(family, shape, rng, n):
    """One (input_ids, token_type_ids) of n tokens in the family's pair layout, random ids the fixture
    tokenizers can render."""
    if family == "jina_v1":
        return G.bert_sequence(rng, n, 30522)
    if family == "mgte":
        return G.xlmr_sequence(rng, n, 31998), [0] * n
    V = shape["vocab_size"]
    cls, sep = V - 63 + 1, V - 63 + 2
    if n == 1:
        return [cls], [0]
    mid = [int(v) for v in rng.integers(0, min(V - 64, 50000), size=n - 2)]
    if n >= 8:
        mid[int(rng.integers(1, n - 3))] = sep
    return [cls] + mid + [sep], [0] * n


def ext_sequences(family, shape, seed, lengths=None):
    rng = np.random.default_rng(seed)
    if lengths is None:
        lengths = list(G.GOLDEN_LENGTHS) + [int(v) for v in rng.integers(4, 700, size=9)] + list(LONG_LENGTHS)
    return [ext_sequence(family, shape, rng, n) for n in lengths]


def write_golden_ext(path, family, cfg, st, seqs):
    logits = []
    with open(path + ".tmp", "w") as f:
        for ids, tt in seqs:
            x = reference_logit_ext(family, cfg, st, ids, tt)
            logits.append(x)
            f.write(json.dumps({"input_ids": ids, "token_type_ids": tt, "logit": x}) + "\n")
    os.replace(path + ".tmp", path)
    return np.array(logits)


def write_model(folder, family, shape, dtype, shared, plain=False, variant=None):
    G.fresh_dir(folder)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(ext_config(family, shape, dtype, variant))
    G.write_safetensors(os.path.join(folder, "model.safetensors"), ext_entries(family, shape, dtype, plain),
                        shape["seed"] + G.DTYPES.index(dtype))
    write_tokenizer(family, folder, shared, shape)
    return json.load(open(os.path.join(folder, "config.json"))), G.open_model(folder)


def generate_tiny_ext(out, shared):
    models, golden = os.path.join(out, "models"), os.path.join(out, "golden")
    os.makedirs(golden, exist_ok=True)
    for family, shape in TINY_EXT.items():
        seqs = ext_sequences(family, shape, shape["seed"] + 7)
        variants = [(d, False, None) for d in G.DTYPES]
        variants.append(("f32", True, None) if family == "jina_v1" else ("f32", False, "cls") if family == "modernbert"
                        else None)
        for v in variants:
            if v is None:
                continue
            dtype, plain, pool = v
            name = "%s_%s" % (family, "plain_f32" if plain else "cls_f32" if pool else dtype)
            cfg, st = write_model(os.path.join(models, name), family, shape, dtype, shared, plain, pool)
            G.spread(name, write_golden_ext(os.path.join(golden, name + ".jsonl"), family, cfg, st, seqs))


def generate_full_ext(out, shared, families=None):
    for family, shape in FULL_EXT.items():
        if families and family not in families:
            continue
        t0 = time.time()
        name = "%s_bf16" % family
        folder = os.path.join(out, "full", name)
        gpath = os.path.join(out, "golden", "full_%s.jsonl" % name)
        mark = os.path.join(folder, ".complete")
        if os.path.exists(mark) and os.path.exists(gpath) and open(mark).read().strip() == str(GEN_EXT_VERSION):
            print("full %s present (version %d): kept" % (name, GEN_EXT_VERSION))
            continue
        cfg, st = write_model(folder, family, shape, "bf16", shared)
        seqs = ext_sequences(family, shape, shape["seed"] + 1, FULL_EXT_LENGTHS)
        os.makedirs(os.path.dirname(gpath), exist_ok=True)
        G.spread("full_" + name, write_golden_ext(gpath, family, cfg, st, seqs))
        with open(mark, "w") as f:
            f.write("%d\n" % GEN_EXT_VERSION)
        print("full %s written in %.0f s" % (name, time.time() - t0))


def selfcheck_ext(out, report):
    """Golden files reproduce from the files on disk; JinaBERT's slopes and mGTE's NTK frequencies against
    the values the spec derives."""
    models = os.path.join(out, "models")
    worst = 0.0
    for folder in sorted(os.listdir(models)):
        fam = next((f for f in TINY_EXT if folder.startswith(f + "_")), None)
        if not fam:
            continue
        cfg = json.load(open(os.path.join(models, folder, "config.json")))
        st = G.open_model(os.path.join(models, folder))
        for g in G.read_golden(os.path.join(out, "golden", folder + ".jsonl"))[:12]:
            worst = max(worst, abs(reference_logit_ext(fam, cfg, st, g["input_ids"], g["token_type_ids"]) - g["logit"]))
    report("new families' golden reproduces from files", worst == 0.0, "max |diff| %.3g" % worst)
    want = [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625, 0.70711, 0.35355, 0.17678, 0.08839]
    got = alibi_slopes(12)
    report("ALiBi slopes for 12 heads", max(abs(a - b) for a, b in zip(got, want)) < 1e-5, "%s" % got[8:])
    c = rope_cos_sin(2, 64, 20000.0, 8.0)
    inv1 = math.atan2(float(c[1][1, 1]), float(c[0][1, 1]))
    report("mGTE NTK inv_freq[1]", abs(inv1 - 0.644391) < 2e-6, "%.6f (spec 0.644391)" % inv1)


def main():
    import argparse
    ap = argparse.ArgumentParser(description="the full-size JinaBERT v1 / mGTE / ModernBERT test models alone "
                                             "(gen_models.py --full-ext without regenerating the small models)")
    ap.add_argument("--out", default=os.environ.get("RR_TESTDATA", "build/testdata"))
    ap.add_argument("--full-ext", action="store_true", required=True)
    ap.add_argument("--family", action="append", choices=sorted(FULL_EXT),
                    help="only this family (repeatable); default all three")
    a = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    generate_full_ext(a.out, G.shared_dir(), a.family)


if __name__ == "__main__":
    main()
