#!/usr/bin/python3
"""gen_jina_v3.py -- random-weight jina-reranker-v3 test models and a float64 reference of its listwise scoring.

    /usr/bin/python3 tools/gen_jina_v3.py gen --out DIR [--full [--pointwise]]
    /usr/bin/python3 tools/gen_jina_v3.py ref --model FOLDER --query Q --docs FILE.jsonl [--max-length N]

gen writes (the suites depend on this layout):
  DIR/models/v3_<dtype>/       architecture JinaForRanking, dtype in {f32, bf16}: the scaled-down Qwen3 backbone
                               of gen_decoder.py (no lm_head) plus projector.0 [H/2, H] and projector.2 [E, H/2]
  DIR/models/v3_qwen3arch_f32/ the same weights under architecture Qwen3ForCausalLM: told apart by projector.*
  DIR/models/v3_full_bf16/     with --full: the real shape (28 layers, H 1024, 16/8 heads of 128, I 3072, vocab
                               151,936, projector 1024 -> 512 -> 512), for the opt-in RR_FULL_V3 suite and bench/
  DIR/models/qwen3_reranker_full_bf16/  with --full --pointwise: the same backbone weights under
                               Qwen3ForCausalLM with a tied lm_head and no projector, i.e. a pointwise
                               Qwen3-Reranker-0.6B of the same shape (bench/v3_bench.py --pointwise)
  each folder's tokenizer.json is ../shared/fixtures/tokenizers/qwen3/tokenizer.json plus the model's three added
  special tokens <|score_token|>, <|embed_token|>, <|rerank_token|> (ids 151669..151671 in that order).

ref prints a JSON array: the score of every document by input index. It is written from the prose of
shared/spec/decoder.md section 4, not from rerank's C code: the query and documents are tokenized alone and cut
by decoding their first 512 / 2048 ids when they reach that many, lose the marker strings, are split into blocks
(125 documents, or when the capacity max_length - 2 q_len, less each document's length, falls to 2048 or below),
each block's prompt is tokenized whole, the backbone runs in float64 (torch) over it, the final-normed states at
the markers go through the projector, and the block query embeddings are merged weighted by each block's best
(1 + cos) / 2. Tokenization and decoding are done by the Hugging Face tokenizers (node, tests/v3_tok.js), so
rerank's tokenizer is checked too. max_length stands for the tokenizer's model_max_length.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_models as gm  # noqa: E402
import gen_decoder as gd  # noqa: E402

SMALL = dict(gd.QWEN3, vocab_size=151936, seed=518)
FULL = dict(arch="qwen3", vocab_size=151936, hidden_size=1024, num_attention_heads=16, num_key_value_heads=8,
            head_dim=128, intermediate_size=3072, num_hidden_layers=28, max_position_embeddings=40960,
            rope_theta=1000000.0, rms_norm_eps=1e-6, seed=519)
ADDED = ("<|score_token|>", "<|embed_token|>", "<|rerank_token|>")
DOC_MARK, QUERY_MARK = ADDED[1], ADDED[2]
BLOCK_DOCS, MAX_DOC, MAX_QUERY = 125, 2048, 512
SYS = ("You are a search relevance expert who can determine a ranking of the passages based on how relevant they "
       "are to the query. If the query is a question, how relevant a passage is depends on how well it answers the "
       "question. If not, try to analyze the intent of the query and assess how well each passage satisfies the "
       "intent. If an instruction is provided, you should follow the instruction when determining the ranking.")


# ------------------------------------------------------------------------------------------ models
def embed_size(s):
    return 512 if s["hidden_size"] == 1024 else s["hidden_size"] // 2


def tensors(s):
    out = gd.tensors(s, tied=True)
    H, P, E = s["hidden_size"], s["hidden_size"] // 2, embed_size(s)
    out.append(("projector.0.weight", gm._normal(s["seed"], "projector.0.weight", (P, H), 1.0 / math.sqrt(H))))
    out.append(("projector.2.weight", gm._normal(s["seed"], "projector.2.weight", (E, P), 1.0 / math.sqrt(P))))
    return out


def write_tokenizer(folder, shared):
    src = os.path.join(shared, "fixtures", "tokenizers", "qwen3")
    tj = json.load(open(os.path.join(src, "tokenizer.json"), encoding="utf-8"))
    nxt = max(t["id"] for t in tj["added_tokens"]) + 1
    for i, content in enumerate(ADDED):
        tj["added_tokens"].append({"id": nxt + i, "content": content, "single_word": False, "lstrip": False,
                                   "rstrip": False, "normalized": False, "special": True})
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    cfg = os.path.join(src, "tokenizer_config.json")
    if os.path.exists(cfg):
        with open(cfg, encoding="utf-8") as f, open(os.path.join(folder, "tokenizer_config.json"), "w") as g:
            g.write(f.read())


def write_model(models, name, s, dtype, arch, named, shared, listwise=True):
    folder = os.path.join(models, name)
    gm.fresh_dir(folder)
    cfg = json.loads(gd.hf_config(s, dtype, arch, True))
    if listwise:
        cfg["embedding_size"] = embed_size(s)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    gm.write_safetensors(os.path.join(folder, "model.safetensors"), gd.entries(named, gm.ST_DTYPE[dtype]),
                         s["seed"] + gm.DTYPES.index(dtype))
    write_tokenizer(folder, shared)
    return folder


def generate(out, shared, full, pointwise=False):
    if not shared:
        print("gen_jina_v3: no shared folder (tokenizer fixture); nothing written", file=sys.stderr)
        return
    models = os.path.join(out, "models")
    os.makedirs(models, exist_ok=True)
    named = tensors(SMALL)
    for dtype in ("f32", "bf16"):
        write_model(models, "v3_" + dtype, SMALL, dtype, "JinaForRanking", named, shared)
    write_model(models, "v3_qwen3arch_f32", SMALL, "f32", "Qwen3ForCausalLM", named, shared)
    if full:
        named = tensors(FULL)
        write_model(models, "v3_full_bf16", FULL, "bf16", "JinaForRanking", named, shared)
        if pointwise:  # the same backbone as a pointwise Qwen3-Reranker-0.6B: no projector, tied lm_head
            write_model(models, "qwen3_reranker_full_bf16", FULL, "bf16", "Qwen3ForCausalLM",
                        [t for t in named if not t[0].startswith("projector.")], shared, listwise=False)


# ------------------------------------------------------------------------------------------ reference
def tokenize(folder, encode=(), decode=()):
    node_path = os.pathsep.join(p for p in (os.path.join(HERE, "..", "tests", "node_modules"),
                                            os.environ.get("NODE_PATH", "")) if p)
    r = subprocess.run(["node", os.path.join(HERE, "..", "tests", "v3_tok.js"), os.path.join(folder, "tokenizer.json")],
                       input=json.dumps({"encode": list(encode), "decode": list(decode)}).encode(),
                       capture_output=True, env=dict(os.environ, NODE_PATH=node_path), check=True)
    return json.loads(r.stdout)


def states(w, ids):
    """Hidden states after the final norm at every position of one sequence, float64 [T, H]."""
    c = w.cfg
    H, nh, nkv, d = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps, T = c["rms_norm_eps"], len(ids)
    cos, sin = gd.rope_tables(T, d, c["rope_theta"])
    h = w("model.embed_tokens.weight", rows=np.asarray(ids))
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % i
        a = gd.rms_norm(h, w(p + "input_layernorm.weight"), eps)
        q = (a @ w(p + "self_attn.q_proj.weight").T).view(T, nh, d)
        k = (a @ w(p + "self_attn.k_proj.weight").T).view(T, nkv, d)
        v = (a @ w(p + "self_attn.v_proj.weight").T).view(T, nkv, d)
        q = gd.apply_rope(gd.rms_norm(q, w(p + "self_attn.q_norm.weight"), eps), cos, sin)
        k = gd.apply_rope(gd.rms_norm(k, w(p + "self_attn.k_norm.weight"), eps), cos, sin)
        heads = []
        for j in range(nh):
            g = j // (nh // nkv)
            att = torch.softmax(q[:, j] @ k[:, g].T / math.sqrt(d) + causal, dim=-1)
            heads.append(att @ v[:, g])
        h = h + torch.cat(heads, dim=1) @ w(p + "self_attn.o_proj.weight").T
        m = gd.rms_norm(h, w(p + "post_attention_layernorm.weight"), eps)
        gate, up = m @ w(p + "mlp.gate_proj.weight").T, m @ w(p + "mlp.up_proj.weight").T
        h = h + (gate * torch.sigmoid(gate) * up) @ w(p + "mlp.down_proj.weight").T
    return gd.rms_norm(h, w("model.norm.weight"), eps)


def prompt(query, docs, instruction=None):
    s = "<|im_start|>system\n" + SYS + "<|im_end|>\n<|im_start|>user\n"
    s += ("I will provide you with %d passages, each indicated by a numerical identifier. Rank the passages based "
          "on their relevance to query: %s\n" % (len(docs), query))
    if instruction:
        s += "<instruct>\n%s\n</instruct>\n" % instruction
    s += "\n".join('<passage id="%d">\n%s%s\n</passage>' % (i, d, DOC_MARK) for i, d in enumerate(docs)) + "\n"
    s += "<query>\n%s%s\n</query>" % (query, QUERY_MARK)
    return s + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def cos(a, b):
    return float(a @ b / (max(np.linalg.norm(a), 1e-8) * max(np.linalg.norm(b), 1e-8)))


def reference(folder, query, docs, max_length):
    w = gd.Weights(folder)
    tj = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    ids = {t["content"]: t["id"] for t in tj["added_tokens"]}
    doc_id, query_id = ids[DOC_MARK], ids[QUERY_MARK]
    clean = lambda t: t.replace(DOC_MARK, "").replace(QUERY_MARK, "")  # noqa: E731
    texts = [query] + list(docs)  # cut first, cleaned when the prompt is formatted
    enc = tokenize(folder, encode=texts)["encode"]
    limits = [MAX_QUERY] + [MAX_DOC] * len(docs)
    cut = [i for i, e in enumerate(enc) if len(e) >= limits[i]]
    dec = tokenize(folder, decode=[enc[i][:limits[i]] for i in cut])["decode"] if cut else []
    for i, t in zip(cut, dec):
        texts[i] = t
    lens = [min(len(e), lim) for e, lim in zip(enc, limits)]
    texts = [clean(t) for t in texts]
    q, q_len, docs, dlen = texts[0], lens[0], texts[1:], lens[1:]
    blocks, cur, room = [], [], max_length - 2 * q_len
    for i in range(len(docs)):
        cur.append(i)
        room -= dlen[i]
        if len(cur) >= BLOCK_DOCS or room <= MAX_DOC:
            blocks.append(cur)
            cur, room = [], max_length - 2 * q_len
    if cur:
        blocks.append(cur)
    P1, P2 = w("projector.0.weight"), w("projector.2.weight")
    proj = lambda h: (torch.relu(h @ P1.T) @ P2.T).numpy()  # noqa: E731
    block_ids = tokenize(folder, encode=[prompt(q, [docs[i] for i in b]) for b in blocks])["encode"]
    doc_emb, qs, ws = {}, [], []
    for b, bid in zip(blocks, block_ids):
        h = states(w, bid)
        pos = [t for t, x in enumerate(bid) if x == doc_id]
        qpos = [t for t, x in enumerate(bid) if x == query_id]
        assert len(pos) == len(b) and len(qpos) == 1, "markers: %d docs, %d in ids, %d queries" % (
            len(b), len(pos), len(qpos))
        e = proj(h[pos])
        eq = proj(h[qpos])[0]
        for i, row in zip(b, e):
            doc_emb[i] = row
        qs.append(eq)
        ws.append(max((1 + cos(row, eq)) / 2 for row in e))
    qf = np.average(np.array(qs), axis=0, weights=np.array(ws))
    return [cos(doc_emb[i], qf) for i in range(len(docs))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--out", default=os.environ.get("RR_TESTDATA", "build/testdata"))
    g.add_argument("--full", action="store_true")
    g.add_argument("--pointwise", action="store_true",
                   help="with --full: also models/qwen3_reranker_full_bf16, the same Qwen3 backbone as a pointwise "
                        "Qwen3-Reranker-0.6B (for bench/v3_bench.py --pointwise)")
    r = sub.add_parser("ref")
    r.add_argument("--model", required=True)
    r.add_argument("--query", required=True)
    r.add_argument("--docs", required=True)
    r.add_argument("--max-length", type=int, default=131072)
    a = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if a.cmd == "gen":
        generate(a.out, gm.shared_dir(), a.full, a.pointwise)
        return
    docs = []
    with open(a.docs, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                docs.append(d["text"] if isinstance(d, dict) else d)
    print(json.dumps(reference(a.model, a.query, docs, a.max_length)))


if __name__ == "__main__":
    main()
