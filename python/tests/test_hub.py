"""Names resolved and pulled as the CLI does, against tests/hub_mock.py (a local stand-in for the
Hugging Face hub): a repo id not in the cache is downloaded with progress on stderr into the
HF_HOME cache, then found there offline; rerank.pull and `rerank pull` agree on the snapshot folder.
Also the progress bar of show_progress_bar=True."""
import os
import subprocess
import sys

import pytest

from conftest import CLI, ROOT, model_dir

sys.path.insert(0, os.path.join(ROOT, "tests"))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    from hub_mock import Mock
    m = Mock({"test-org/tiny": model_dir("jina_f32")}).start()
    for v in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", m.endpoint)
    yield m
    m.stop()


def test_repo_id_is_pulled_then_cached(rerank_mod, hub, capsys, monkeypatch):
    m = rerank_mod.Reranker("test-org/tiny", precision="fp32")
    err = capsys.readouterr().err
    assert "test-org/tiny is not in the cache; downloading it" in err
    assert "model.safetensors: downloaded" in err and "config.json: downloaded" in err
    assert m.model_dir.startswith(os.environ["HF_HOME"]) and "models--test-org--tiny" in m.model_dir
    local = rerank_mod.Reranker(model_dir("jina_f32"), precision="fp32")
    pairs = [["Wie alt ist Berlin?", "Berlin wurde 1237 erstmals erwähnt."], ["a", "b"]]
    assert m.compute_score(pairs) == local.compute_score(pairs)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # now from the cache only, silently
    again = rerank_mod.Reranker("test-org/tiny", precision="fp32", revision="main")
    assert again.model_dir == m.model_dir and capsys.readouterr().err == ""
    assert rerank_mod.Reranker("test-org/tiny@main").model_dir == m.model_dir
    monkeypatch.delenv("HF_HUB_OFFLINE")

    snap = rerank_mod.pull("test-org/tiny", quiet=True)
    assert snap == m.model_dir and capsys.readouterr().err == ""
    rerank_mod.pull("test-org/tiny")
    assert "model.safetensors: cached" in capsys.readouterr().err
    r = subprocess.run([CLI, "pull", "test-org/tiny", "--quiet"], capture_output=True, env=dict(os.environ))
    assert r.returncode == 0 and r.stdout.decode().strip() == snap
    with pytest.raises(FileNotFoundError):
        rerank_mod.pull("test-org/tiny", revision="no-such-branch", quiet=True)
    with pytest.raises(FileNotFoundError):
        rerank_mod.Reranker("test-org/unknown")


def test_progress_bar(jina, capsys):
    pairs = [["q %d" % i, "d %d" % i] for i in range(50)]
    quiet = jina.predict(pairs)
    assert capsys.readouterr().err == ""
    shown = jina.predict(pairs, show_progress_bar=True)
    err = capsys.readouterr().err
    assert "Batches" in err and "50/50" in err
    assert list(shown) == list(quiet)
    jina.rank("q", ["a", "b"], show_progress_bar=True)
    assert "2/2" in capsys.readouterr().err
