"""Every scoring method against the independent float64 reference forward of tools/gen_models.py
(precision="fp32", within 1e-4): ids from tokenize(), which test_cli_match.py ties to the CLI and
tests/suite_tokenizer.sh to Hugging Face tokenizers; jina's windows rebuilt here from spec/model.md
section 3."""
import json
import math
import os
import sys

import pytest

from conftest import ROOT, model_dir, texts

TOL = 1e-4


def reference(name):
    try:
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        import gen_models
    except ImportError as e:  # python3-torch missing
        pytest.skip("the float64 reference needs python3-torch: %s" % e)
    d = model_dir(name)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    w = gen_models.load_reference_weights(cfg, gen_models.open_model(d))
    return d, lambda ids, types: gen_models.reference_logit(w, ids, types)


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize("name", ["jina_f32", "xlmr_f16", "bert_bf16"])
def test_pair_methods_match_float64(rerank_mod, name):
    d, logit = reference(name)
    m = rerank_mod.Reranker(d, precision="fp32")
    pairs = [[q, x] for q, x in zip(texts(12, seed=31), texts(12, seed=32))] + [["", ""], ["q " * 400, "d"]]
    want = []
    for q, x in pairs:
        ids, types = m.tokenize(q, x, max_length=m.info["model_max_length"] or m.info["max_length"])
        want.append(sig(logit(ids, types)))
    for got in (m.compute_score(pairs), list(m.predict(pairs)), m.score(pairs)):
        assert max(abs(a - b) for a, b in zip(got, want)) <= TOL
    raw = m.predict(pairs, activation_fn=lambda v: v)
    assert max(abs(a - math.log(b / (1 - b))) for a, b in zip(raw, want) if 1e-6 < b < 1 - 1e-6) <= 1e-3


def test_st_rank_matches_float64(rerank_mod):
    d, logit = reference("xlmr_f32")
    m = rerank_mod.Reranker(d, precision="fp32")
    q = "Wie alt ist Berlin?"
    docs = texts(10, seed=41) + [""]
    want = {i: sig(logit(*m.tokenize(q, x, max_length=m.info["model_max_length"]))) for i, x in enumerate(docs)}
    got = m.rank(q, docs)
    assert sorted(r["corpus_id"] for r in got) == list(range(len(docs)))
    assert max(abs(r["score"] - want[r["corpus_id"]]) for r in got) <= TOL
    assert all(got[i]["score"] >= got[i + 1]["score"] for i in range(len(got) - 1))


def windows(q_ids, d_ids, max_length, overlap):
    """spec/model.md section 3: windows of exactly M tokens, stride M - overlap, the last one aligned
    to the document's end."""
    M = max_length - len(q_ids) - 2
    ov = min(overlap, M // 4)
    if len(d_ids) <= M:
        return [d_ids]
    out, start = [], 0
    while True:
        end = start + M
        if end >= len(d_ids):
            out.append(d_ids[len(d_ids) - M:])
            return out
        out.append(d_ids[start:end])
        start = end - ov


@pytest.mark.parametrize("max_length,max_query,overlap", [(128, 32, 16), (256, 64, 80), (1024, 512, 80)])
def test_rerank_windows_match_float64(rerank_mod, max_length, max_query, overlap):
    d, logit = reference("jina_f32")
    m = rerank_mod.Reranker(d, precision="fp32")
    query = " ".join(texts(3, seed=51))
    docs = texts(6, seed=52) + [" ".join(texts(30, seed=53)), ""]
    q_all = m.tokenize(query)[0]  # <s> q </s>
    q_ids = q_all[:1] + q_all[1:-1][:min(max_query, max_length // 2) - 2] + q_all[-1:]
    want = []
    for x in docs:
        d_ids = m.tokenize(x)[0][1:-1] if x else []
        best = max(logit(q_ids + [2] + w + [2], [0] * (len(q_ids) + len(w) + 2))
                   for w in windows(q_ids, d_ids, max_length, overlap))
        want.append(sig(best))
    got = m.rerank(query, docs, max_length=max_length, max_query_length=max_query, overlap_tokens=overlap)
    assert sorted(r["index"] for r in got) == list(range(len(docs)))
    assert max(abs(r["relevance_score"] - want[r["index"]]) for r in got) <= TOL
    order = sorted(range(len(docs)), key=lambda i: (-want[i], i))
    assert [r["index"] for r in got][:3] == order[:3] or \
        max(abs(want[a] - want[b]) for a, b in zip([r["index"] for r in got][:3], order[:3])) <= TOL
