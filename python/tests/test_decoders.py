"""Decoder rerankers (Qwen3-Reranker, mxbai-rerank-v2) and the listwise jina-reranker-v3 from Python,
against the CLI on the same inputs to the last printed digit: compute_score / predict / score against
`rerank score` (with and without an instruction, with --template), rerank / rank against `rerank
rank`; jina-reranker-v3's pair methods against `rerank rank` of each query's documents; template= and
instruction= errors; info naming the template."""
import os
import shutil

import numpy as np
import pytest

from conftest import cli_rank, cli_score, g9, model_dir, texts

DECODERS = ["dec_qwen3_f32", "dec_qwen2_f32", "dec_qwen3_bf16", "dec_qwen3_seqcls_f32"]
INSTR = "Given a product question, find the passage that answers it"


def pairs_for(seed, n=24):
    qs = texts(n, seed=seed)
    ds = texts(n, seed=seed + 50)
    return [[q, d] for q, d in zip(qs, ds)] + [["", ""], ["only a query", ""], ["x " * 300, "long query"]]


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("instruction", [None, INSTR, ""])
def test_decoder_pairs_equal_cli_score(rerank_mod, name, instruction):
    d = model_dir(name)
    m = rerank_mod.Reranker(d, precision="fp32")
    pairs = pairs_for(seed=31)
    want = cli_score(d, pairs, instruction=instruction)
    kw = {} if instruction is None else {"instruction": instruction}
    assert [g9(s) for s in m.compute_score(pairs, **kw)] == want
    assert [g9(s) for s in m.predict(pairs, **kw)] == want
    assert [g9(s) for s in m.score(pairs, **kw)] == want
    assert g9(m.compute_score(pairs[0], **kw)) == want[0]
    raw = cli_score(d, pairs, raw=True, instruction=instruction)
    assert [g9(s) for s in m.predict(pairs, activation_fn=lambda x: x, **kw)] == raw
    assert [g9(s) for s in m.compute_score(pairs, max_length=96, **kw)] == \
        cli_score(d, pairs, max_length=96, instruction=instruction)


@pytest.mark.parametrize("name", DECODERS[:2])
@pytest.mark.parametrize("instruction", [None, INSTR])
def test_decoder_rerank_and_rank_equal_cli_rank(rerank_mod, name, instruction):
    d = model_dir(name)
    m = rerank_mod.Reranker(d, precision="fp32")
    q = "which products suit sensitive skin?"
    docs = texts(20, seed=41) + ["", " ".join(texts(30, seed=42))]
    opts = {} if instruction is None else {"instruction": instruction}
    want, _ = cli_rank(d, q, docs, **opts)  # the CLI's defaults: the model's own length (8192)
    got = m.rerank(q, docs, **opts)
    assert [(r["index"], g9(r["relevance_score"])) for r in got] == want
    want3, _ = cli_rank(d, q, docs, max_length=128, top_n=3, **opts)
    got3 = m.rerank(q, docs, max_length=128, top_n=3, **opts)
    assert [(r["index"], g9(r["relevance_score"])) for r in got3] == want3
    # sentence-transformers' rank scores each pair as predict does: a decoder prompt per document, the
    # same scores as rerank (no windows for decoders)
    st = m.rank(q, docs, top_k=5, **opts)
    assert [(r["corpus_id"], g9(r["score"])) for r in st] == want[:5]


def test_template_keyword_equals_cli_template(rerank_mod, tmp_path):
    src = model_dir("dec_qwen2_f32")  # its model card names mxbai-rerank-base-v2
    pairs = pairs_for(seed=51, n=10)
    q3 = rerank_mod.Reranker(src, precision="fp32", template="qwen3-reranker")
    assert q3.info["template"] == "qwen3-reranker" and q3.info["family"] == "qwen2"
    assert [g9(s) for s in q3.compute_score(pairs)] == cli_score(src, pairs, template="qwen3-reranker")
    mx = rerank_mod.Reranker(src, precision="fp32")
    assert mx.info["template"] == "mxbai-rerank-v2" and mx.info["default_instruction"] is None
    assert mx.compute_score(pairs) != q3.compute_score(pairs)
    # the same folder without its model card: refused without a template, runs with one
    bare = tmp_path / "mxbai_no_card"
    shutil.copytree(src, bare, ignore=shutil.ignore_patterns("README.md"))
    with pytest.raises(ValueError, match="template"):
        rerank_mod.Reranker(str(bare), precision="fp32")
    m = rerank_mod.Reranker(str(bare), precision="fp32", template="mxbai-rerank-v2")
    assert m.compute_score(pairs) == mx.compute_score(pairs)
    assert rerank_mod.Reranker(src, precision="fp32", template="auto").info["template"] == "mxbai-rerank-v2"


def test_template_and_instruction_errors(rerank_mod, jina):
    d = model_dir("dec_qwen3_f32")
    with pytest.raises(ValueError, match="template"):
        rerank_mod.Reranker(d, template="qwen4-reranker")
    with pytest.raises(TypeError, match="template"):
        rerank_mod.Reranker(d, template=3)
    with pytest.raises(ValueError):
        rerank_mod.Reranker(model_dir("jina_f32"), template="qwen3-reranker")  # an encoder has no prompt
    with pytest.raises(ValueError):
        rerank_mod.Reranker(d, template="jina-reranker-v3")  # needs a v3 folder
    m = rerank_mod.Reranker(d, precision="fp32")
    for bad in (3, b"x", ["a"], {"a": 1}):
        with pytest.raises(TypeError, match="instruction"):
            m.compute_score([["q", "d"]], instruction=bad)
        with pytest.raises(TypeError, match="instruction"):
            m.rerank("q", ["d"], instruction=bad)
        with pytest.raises(TypeError, match="instruction"):
            m.predict([["q", "d"]], instruction=bad)
        with pytest.raises(TypeError, match="instruction"):
            m.rank("q", ["d"], instruction=bad)
        with pytest.raises(TypeError, match="instruction"):
            m.score([["q", "d"]], instruction=bad)
    with pytest.raises(UnicodeEncodeError):
        m.compute_score([["q", "d"]], instruction="\ud800")
    # encoders ignore an instruction, as the CLI and the library do
    pairs = [["q", "d"], ["a", "b"]]
    assert jina.compute_score(pairs, instruction=INSTR) == jina.compute_score(pairs)
    assert m.info["template"] == "qwen3-reranker" and m.info["default_instruction"].startswith("Given a web")
    assert jina.info["template"] == "none" and jina.info["listwise"] is False


# ------------------------------------------------------------------------------ jina-reranker-v3


@pytest.fixture(scope="module")
def v3(rerank_mod):
    return rerank_mod.Reranker(model_dir("v3_f32"), precision="fp32")


def test_v3_info(v3):
    i = v3.info
    assert i["family"] == "jina_v3" and i["template"] == "jina-reranker-v3" and i["listwise"] is True
    assert i["embed_size"] > 0 and i["head_dim"] == 128


def short_docs(n, seed):
    """n short documents (a 125-document block stays a few thousand tokens), one of them empty."""
    import random
    rng = random.Random(seed)
    vocab = ["river", "Fluss", "delta", "erosion", "rain", "数据", "valley", "stone", "Nil", "sea", "42", "の"]
    docs = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 12))) for _ in range(n)]
    if n > 2:
        docs[n // 2] = ""
    return docs


@pytest.mark.parametrize("n,instruction", [(1, None), (7, None), (7, INSTR), (130, None)])
def test_v3_rerank_equals_cli_rank(v3, n, instruction):
    """1 and 7 documents (one block), 130 (two blocks: 125 + 5, the query merged across them)."""
    d = v3.model_dir
    q = "how do rivers shape the land?"
    docs = short_docs(n, seed=60 + n) if n > 100 else texts(n, seed=60 + n)
    opts = {} if instruction is None else {"instruction": instruction}
    want, tokens = cli_rank(d, q, docs, **opts)
    got = v3.rerank(q, docs, **opts)
    assert [(r["index"], g9(r["relevance_score"])) for r in got] == want
    assert all(-1.0 <= r["relevance_score"] <= 1.0 for r in got)
    st = v3.rank(q, docs, return_documents=True, **opts)
    assert [(r["corpus_id"], g9(r["score"])) for r in st] == want
    assert all(r["text"] == docs[r["corpus_id"]] for r in st)
    if n == 7:
        top, _ = cli_rank(d, q, docs, top_n=3, **opts)
        assert [(r["index"], g9(r["relevance_score"])) for r in v3.rerank(q, docs, top_n=3, **opts)] == top


def test_v3_pairs_sharing_a_query_are_one_listwise_request(v3):
    """compute_score / predict / score: the pairs of each query, in pair order, are ranked as one
    `rerank rank` request; pairs of different queries never meet; a lone pair is a request of one."""
    d = v3.model_dir
    qa, qb = "what do pandas eat?", "where is the Nile?"
    da, db = texts(9, seed=71, words=(2, 15)), texts(5, seed=72, words=(2, 15))
    pairs, where = [], []
    for i in range(max(len(da), len(db))):  # interleaved: the grouping must not depend on adjacency
        if i < len(da):
            pairs.append([qa, da[i]])
            where.append(("a", i))
        if i < len(db):
            pairs.append([qb, db[i]])
            where.append(("b", i))
    pairs.append(["a lone query", "its only document"])
    ra, _ = cli_rank(d, qa, da)
    rb, _ = cli_rank(d, qb, db)
    rc, _ = cli_rank(d, "a lone query", ["its only document"])
    by = {("a", i): s for i, s in ra}
    by.update({("b", i): s for i, s in rb})
    want = [by[w] for w in where] + [rc[0][1]]
    assert [g9(s) for s in v3.compute_score(pairs)] == want
    assert [g9(s) for s in v3.predict(pairs)] == want
    assert [g9(s) for s in v3.predict(pairs, activation_fn=lambda x: x)] == want  # cosines: no sigmoid
    assert [g9(s) for s in v3.score(pairs)] == want
    one = v3.compute_score(pairs[-1])
    assert isinstance(one, float) and g9(one) == rc[0][1]
    p1 = v3.predict(tuple(pairs[-1]))
    assert isinstance(p1, np.float32) and g9(p1) == rc[0][1]
    # with an instruction: the same as --instruction on each request
    ia, _ = cli_rank(d, qa, da, instruction=INSTR)
    got = v3.compute_score([[qa, x] for x in da], instruction=INSTR)
    assert [g9(got[i]) for i, _ in ia] == [s for _, s in ia]
    assert v3.compute_score([]) == []


def test_v3_pair_errors_name_the_pair(v3):
    with pytest.raises(TypeError, match="pair 1"):
        v3.compute_score([["q", "d"], ["q", 3]])
    with pytest.raises(ValueError):
        v3.compute_score([["q", "d"]], max_length=0)



def test_qwen3_prompt_is_the_reference_codes(rerank_mod):
    """The README example of Qwen3-Reranker from Python scores exactly the prompt ids its reference code
    builds (fixture reference_ids.jsonl, scored as ids by `rerank score`), with no flag."""
    import json
    from conftest import SHARED, cli
    ref = os.path.join(SHARED, "fixtures", "tokenizers", "qwen3", "reference_ids.jsonl")
    if not os.path.exists(ref):
        pytest.skip("needs ../shared (RR_SHARED)")
    ids = next(json.loads(l)["ids"] for l in open(ref, encoding="utf-8")
               if json.loads(l)["name"] == "qwen3_reranker_full_example")
    d = model_dir("dec_qwen3_f32")
    out = cli(["score", "-m", d, "--precision", "fp32", "--raw"], json.dumps({"input_ids": ids}) + "\n")
    want = out.split(":", 1)[1].strip().rstrip("}").strip()
    m = rerank_mod.Reranker(d, precision="fp32")
    q, doc = "What is the capital of China?", "The capital of China is Beijing."
    assert g9(m.predict([(q, doc)], activation_fn=lambda x: x)[0]) == want
    assert g9(m.rerank(q, [doc])[0]["relevance_score"]) == g9(rerank_mod._rerank.sigmoid(float(want)))
