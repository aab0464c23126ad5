"""Every scoring method against the CLI on the same inputs, to the last printed digit (%.9g of the
float32 score): compute_score / predict / score / rank (sentence-transformers) against `rerank score`,
rerank against `rerank rank`, tokenize against `rerank tokenize`; every family and weight dtype of the
random test models, and each precision on one of them."""
import json

import numpy as np
import pytest

from conftest import cli, cli_rank, cli_score, g9, model_dir, texts

MODELS = ["jina_f32", "xlmr_f32", "bert_f32", "jina_bf16", "xlmr_f16", "xlmr_f32_sharded",
          "jina_v1_f32", "mgte_f32", "modernbert_f32"]  # the last three: JinaBERT v1, mGTE, ModernBERT


def pairs_for(seed=1, n=40):
    qs = texts(n, seed=seed)
    ds = texts(n, seed=seed + 100)
    pairs = [[q, d] for q, d in zip(qs, ds)]
    pairs += [["", ""], ["only a query", ""], ["", "only a document"], ["x " * 700, "long query, truncated"]]
    return pairs


@pytest.mark.parametrize("name", MODELS)
def test_compute_score_predict_score_equal_cli(rerank_mod, name):
    d = model_dir(name)
    m = rerank_mod.Reranker(d, precision="fp32")
    pairs = pairs_for()
    want = cli_score(d, pairs)
    assert [g9(s) for s in m.compute_score(pairs)] == want
    assert [g9(s) for s in m.predict(pairs)] == want
    assert [g9(s) for s in m.predict(pairs, convert_to_numpy=False)] == want
    assert [g9(s) for s in m.score([tuple(p) for p in pairs])] == want
    # one pair: a bare float (jina) / a numpy float32 (sentence-transformers)
    one = m.compute_score(pairs[0])
    assert isinstance(one, float) and g9(one) == want[0]
    p1 = m.predict(tuple(pairs[0]))
    assert isinstance(p1, np.float32) and g9(p1) == want[0]
    # max_length truncation, and raw logits through activation_fn
    want64 = cli_score(d, pairs, max_length=64)
    assert [g9(s) for s in m.compute_score(pairs, max_length=64)] == want64
    assert [g9(s) for s in m.predict(pairs, max_length=64)] == want64
    raw = cli_score(d, pairs, raw=True)
    assert [g9(s) for s in m.predict(pairs, activation_fn=lambda x: x)] == raw
    assert [g9(s) for s in m.predict(pairs, activation_fct=lambda x: x, num_workers=2)] == raw  # older names


@pytest.mark.parametrize("name", MODELS[:3])
def test_st_rank_equals_cli_score_order(rerank_mod, name):
    d = model_dir(name)
    m = rerank_mod.Reranker(d, precision="fp32")
    q = "Wie viele Menschen leben in Berlin?"
    docs = texts(30, seed=5) + ["", texts(1, seed=9)[0] * 8]
    want = cli_score(d, [[q, x] for x in docs])
    order = sorted(range(len(docs)), key=lambda i: (-float(want[i]), i))
    got = m.rank(q, docs, return_documents=True)
    assert [r["corpus_id"] for r in got] == order
    assert [g9(r["score"]) for r in got] == [want[i] for i in order]
    assert all(r["text"] == docs[r["corpus_id"]] for r in got)
    top = m.rank(q, docs, top_k=3)
    assert [r["corpus_id"] for r in top] == order[:3] and "text" not in top[0]


@pytest.mark.parametrize("name", MODELS[:3])
@pytest.mark.parametrize("opts", [
    dict(),
    dict(max_length=128, max_query_length=32, overlap_tokens=16, top_n=3),
    dict(max_length=256, max_query_length=512, overlap_tokens=80, top_n=0),
    dict(max_length=10**9, max_query_length=10**9),  # huge: capped at the model's length
])
def test_rerank_equals_cli_rank(rerank_mod, name, opts):
    d = model_dir(name)
    m = rerank_mod.Reranker(d, precision="fp32")
    q = "human rights and freedom of expression"
    long_doc = " ".join(texts(40, seed=11))  # several windows at 128 and 256 tokens
    docs = texts(25, seed=3) + ["", long_doc, long_doc[:900], ""]
    cli_opts = {}
    if "max_length" in opts:
        cli_opts["max_length"] = min(opts["max_length"], 1 << 20)
    if "max_query_length" in opts:
        cli_opts["max_query_length"] = min(opts["max_query_length"], 1 << 20)
    if "overlap_tokens" in opts:
        cli_opts["overlap"] = opts["overlap_tokens"]
    if "top_n" in opts:
        cli_opts["top_n"] = opts["top_n"]
    if "max_length" not in opts:
        cli_opts["max_length"] = 1024  # jina's default; the CLI's is the tokenizer's
    want, _ = cli_rank(d, q, docs, **cli_opts)
    got = m.rerank(q, docs, **opts)
    assert [(r["index"], g9(r["relevance_score"])) for r in got] == want
    assert all(r["document"] is docs[r["index"]] for r in got)


def test_rerank_many_chunks_equal_one_cli_call(rerank_mod):
    """Hundreds of documents go through several rr_rank chunks; ranking and scores are those of one
    `rerank rank` call."""
    d = model_dir("jina_f32")
    m = rerank_mod.Reranker(d, precision="fp32", max_batch_tokens=1024)
    q = "Organic skincare products for sensitive skin"
    docs = texts(300, seed=21)
    want, _ = cli_rank(d, q, docs, max_length=1024, top_n=50)
    got = m.rerank(q, docs, top_n=50)
    assert [(r["index"], g9(r["relevance_score"])) for r in got] == want


@pytest.mark.parametrize("precision", ["bf16", "int8", "auto"])
def test_precisions_equal_cli(rerank_mod, precision):
    d = model_dir("jina_f32")
    m = rerank_mod.Reranker(d, precision=precision)
    assert m.info["precision"] in ("fp32", "bf16", "int8")
    pairs = pairs_for(seed=7, n=20)
    assert [g9(s) for s in m.compute_score(pairs)] == cli_score(d, pairs, precision=precision)
    q = "summer outfit"
    docs = texts(20, seed=8) + [" ".join(texts(30, seed=2))]
    want, _ = cli_rank(d, q, docs, precision=precision, max_length=256, top_n=5)
    got = m.rerank(q, docs, max_length=256, top_n=5)
    assert [(r["index"], g9(r["relevance_score"])) for r in got] == want


@pytest.mark.parametrize("name", ["jina_f32", "bert_f32"])
def test_tokenize_equals_cli(rerank_mod, name):
    d = model_dir(name)
    m = rerank_mod.Reranker(d, precision="fp32")
    for i, (a, b) in enumerate(pairs_for(seed=4, n=10)):
        line = json.dumps({"text": a, "text_pair": b}, ensure_ascii=False) + "\n"
        want = json.loads(cli(["tokenize", "-m", d], line))
        ids, types = m.tokenize(a, b)
        assert ids == want["ids"]
        if "type_ids" in want:
            assert types == want["type_ids"]
        single = json.loads(cli(["tokenize", "-m", d], json.dumps({"text": a}, ensure_ascii=False) + "\n"))
        assert m.tokenize(a)[0] == single["ids"]
    ids, _ = m.tokenize("x " * 500, "y " * 500, max_length=40)
    assert len(ids) == 40


def test_info(rerank_mod):
    d = model_dir("bert_f32")
    info = rerank_mod.Reranker(d, precision="fp32", threads=1, max_batch_tokens=2048).info
    assert info["family"] == "bert" and info["precision"] == "fp32" and info["kernels"]
    assert info["threads"] == 1 and info["max_batch_tokens"] == 2048 and info["type_vocab_size"] == 2
    assert info["n_layers"] == 2 and info["hidden"] == 64 and info["weight_bytes"] > 0


def test_torch_activation_and_tensor(jina):
    """activation_fn may be a torch module (as sentence-transformers users pass it) and
    convert_to_tensor=True gives a tensor; both need PyTorch, which rerank itself never imports."""
    torch = pytest.importorskip("torch")
    pairs = pairs_for(seed=3, n=10)
    logits = jina.predict(pairs, activation_fn=lambda x: x)
    assert list(jina.predict(pairs, activation_fn=torch.nn.Identity())) == list(logits)
    sig = jina.predict(pairs, activation_fn=torch.nn.Sigmoid())
    assert max(abs(a - b) for a, b in zip(sig, jina.predict(pairs))) < 1e-6
    t = jina.predict(pairs, convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (len(pairs),)
    assert t.tolist() == [float(x) for x in jina.predict(pairs)]
    one = jina.predict(tuple(pairs[0]), convert_to_tensor=True)
    assert isinstance(one, torch.Tensor) and one.ndim == 0


@pytest.mark.parametrize("name,family", [("jina_v1_f32", "jina_v1"), ("mgte_f32", "mgte"),
                                         ("modernbert_f32", "modernbert")])
def test_info_names_the_newer_encoder_families(rerank_mod, name, family):
    m = rerank_mod.Reranker(model_dir(name))
    assert m.info["family"] == family and m.info["max_length"] == 8192
