"""Every bad input gives its exception, never a crash: wrong types (None, bytes, nested lists, a dict,
a generator), bad lengths and counts, missing or malformed model folders, an unreachable hub, out of
memory."""
import json
import os
import shutil

import pytest

from conftest import model_dir

BAD_PAIRS = [
    None, b"bytes", "a string", {"q": "d"}, (p for p in [["a", "b"]]), 5,
    [["a", "b"], ["c"]],            # a pair of one text
    [["a", "b", "c"]],              # three texts
    [["a", ["nested"]]],            # nested list
    [["a", None]], [[None, "b"]], [["a", b"bytes"]], [["a", 5]],
    [("a", "b"), "c"],              # a str where a pair belongs
    [{"query": "a", "document": "b"}],
]


@pytest.mark.parametrize("bad", BAD_PAIRS, ids=range(len(BAD_PAIRS)))
def test_bad_pairs(jina, bad):
    for call in (jina.compute_score, jina.predict, jina.score):
        with pytest.raises(TypeError):
            call(bad)


BAD_DOCS = [None, b"bytes", "a string", {"a": 1}, (d for d in ["a"]), 5, ["a", None], ["a", ["b"]], ["a", b"b"]]


@pytest.mark.parametrize("bad", BAD_DOCS, ids=range(len(BAD_DOCS)))
def test_bad_documents(jina, bad):
    with pytest.raises(TypeError):
        jina.rerank("q", bad)
    with pytest.raises(TypeError):
        jina.rank("q", bad)


@pytest.mark.parametrize("bad", [None, b"q", 5, ["q"], {"q": 1}])
def test_bad_query(jina, bad):
    with pytest.raises(TypeError):
        jina.rerank(bad, ["a"])
    with pytest.raises(TypeError):
        jina.rank(bad, ["a"])
    with pytest.raises(TypeError):
        jina.tokenize(bad)
    with pytest.raises(TypeError):
        jina.tokenize("a", bad if bad is not None else 5)


def test_bad_numbers(jina):
    pairs = [["a", "b"]]
    for kw in (dict(max_length=0), dict(max_length=-5), dict(batch_size=0), dict(batch_size=-1)):
        with pytest.raises(ValueError):
            jina.compute_score(pairs, **kw)
    for kw in (dict(max_length="10"), dict(max_length=1.5), dict(batch_size="32"), dict(batch_size=None)):
        with pytest.raises(TypeError):
            jina.compute_score(pairs, **kw)
    for kw in (dict(top_n=-1), dict(top_n=-10**30), dict(overlap_tokens=-1), dict(max_length=0),
               dict(max_query_length=-1), dict(max_length=4)):  # 4 tokens leave no room for a document
        with pytest.raises(ValueError):
            jina.rerank("q", ["a"], **kw)
    with pytest.raises(TypeError):
        jina.rerank("q", ["a"], top_n="3")
    with pytest.raises(TypeError):
        jina.rerank("q", ["a"], frobnicate=1)
    with pytest.raises(ValueError):
        jina.rank("q", ["a"], top_k=-1)
    with pytest.raises(ValueError):
        jina.tokenize("a", max_length=0)
    # huge values are capped at the model's length, not errors
    assert jina.compute_score(pairs, max_length=10**30) == jina.compute_score(pairs)
    assert jina.rerank("q", ["a", "b"], max_length=2**62, top_n=2**70)[0]["index"] in (0, 1)
    assert len(jina.tokenize("a " * 5000, max_length=10**20)[0]) == 5002


def test_empty_inputs(jina):
    assert jina.compute_score([]) == []
    assert len(jina.predict([])) == 0
    assert jina.score([]) == []
    assert jina.rerank("q", []) == []
    assert jina.rank("q", []) == []
    assert jina.rerank("", [""])[0]["index"] == 0


def test_model_errors(rerank_mod, tmp_path):
    with pytest.raises(FileNotFoundError):
        rerank_mod.Reranker(str(tmp_path / "no" / "such" / "folder"))
    with pytest.raises(FileNotFoundError):
        rerank_mod.Reranker("./not-here")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError):
        rerank_mod.Reranker(empty)  # a folder without config.json, as a pathlib.Path
    src = model_dir("jina_f32")
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ValueError):
        rerank_mod.Reranker(str(bad))
    (bad / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}))
    with pytest.raises(ValueError):
        rerank_mod.Reranker(str(bad))
    cut = tmp_path / "cut"
    shutil.copytree(src, cut)
    with open(cut / "model.safetensors", "r+b") as f:
        f.truncate(os.path.getsize(cut / "model.safetensors") // 2)
    with pytest.raises(ValueError):
        rerank_mod.Reranker(str(cut))
    notok = tmp_path / "notok"
    notok.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(src, f), notok / f)
    m = rerank_mod.Reranker(str(notok), precision="fp32")
    with pytest.raises(ValueError):
        m.compute_score([["a", "b"]])
    with pytest.raises(ValueError):
        m.rerank("a", ["b"])
    for kw, exc in ((dict(precision="fp64"), ValueError), (dict(precision=32), TypeError),
                    (dict(threads=0), ValueError), (dict(threads="2"), TypeError),
                    (dict(max_batch_tokens=-1), ValueError), (dict(revision=5), TypeError),
                    (dict(revision="main"), ValueError)):  # a revision for a folder
        with pytest.raises(exc):
            rerank_mod.Reranker(src, **kw)
    with pytest.raises(TypeError):
        rerank_mod.Reranker(b"bytes-path")
    with pytest.raises(MemoryError):
        rerank_mod.Reranker(src, max_batch_tokens=2**40)  # scratch for 2^30 token rows


def test_hub_errors(rerank_mod, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError):
        rerank_mod.Reranker("some-org/not-cached")
    with pytest.raises(FileNotFoundError):
        rerank_mod.pull("some-org/not-cached")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(OSError):
        rerank_mod.Reranker("some-org/not-cached")
    with pytest.raises(ConnectionError):
        rerank_mod.pull("some-org/not-cached", quiet=True)
    with pytest.raises(ValueError):
        rerank_mod.pull("not a repo id!")
    with pytest.raises(ValueError):
        rerank_mod.pull("org/name@v1", revision="v2")
    with pytest.raises(TypeError):
        rerank_mod.pull(None)


def test_unencodable_and_nul_text(jina):
    # a lone surrogate has no UTF-8 form: UnicodeEncodeError (a ValueError), as Hugging Face tokenizers
    for call in (lambda: jina.compute_score([["a", "\ud800"]]), lambda: jina.rerank("\udfff", ["a"]),
                 lambda: jina.rank("q", ["\ud800"]), lambda: jina.tokenize("x\ud800")):
        with pytest.raises(UnicodeEncodeError):
            call()
    # NUL characters are text like any other: the whole string is tokenized and scored
    ids, _ = jina.tokenize("a\x00b")
    assert len(ids) > len(jina.tokenize("a")[0])
    assert jina.compute_score(["a\x00b", "c"]) != jina.compute_score(["a", "c"])
