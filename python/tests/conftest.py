"""conftest.py -- shared fixtures of the Python suite: where the CLI and the random test models are, and
the CLI as the oracle (`rerank score` / `rerank rank` / `rerank tokenize` on the same inputs).

RR_BUILD (default build) and RR_TESTDATA (default BUILD/testdata) are resolved from the repository
root; tests that need the models skip without them (tools/gen_models.py writes them)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
BUILD = os.path.join(ROOT, os.environ.get("RR_BUILD", "build"))
TESTDATA = os.path.join(ROOT, os.environ.get("RR_TESTDATA", os.path.join(BUILD, "testdata")))
CLI = os.path.join(BUILD, "rerank")
SHARED = os.path.join(ROOT, os.environ.get("RR_SHARED", "../shared"))


def model_dir(name):
    d = os.path.join(TESTDATA, "models", name)
    if not os.path.exists(os.path.join(d, "tokenizer.json")) or not os.access(CLI, os.X_OK):
        pytest.skip("needs %s with a tokenizer and %s (make; tools/gen_models.py)" % (d, CLI))
    return d


def cli(args, stdin=""):
    r = subprocess.run([CLI] + args, input=stdin.encode(), capture_output=True)
    if r.returncode:
        raise AssertionError("rerank %s failed: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout.decode()


def cli_score(model, pairs, precision="fp32", max_length=None, raw=False, instruction=None, template=None):
    """`rerank score` on text pairs: the printed numbers, as strings."""
    args = ["score", "-m", model, "--precision", precision] + (["--raw"] if raw else [])
    if max_length:
        args += ["--max-length", str(max_length)]
    if instruction is not None:
        args += ["--instruction", instruction]
    if template:
        args += ["--template", template]
    inp = "".join(json.dumps({"query": q, "document": d}, ensure_ascii=False) + "\n" for q, d in pairs)
    out = cli(args, inp) if pairs else ""
    # the raw line text: json.loads would re-round the number
    return [line.split(":", 1)[1].strip().rstrip("}").strip() for line in out.splitlines()]


def cli_rank(model, query, docs, precision="fp32", **opts):
    """`rerank rank --raw-text`: [(index, printed score)] and total_tokens."""
    args = ["rank", "-m", model, "-q", query, "--precision", precision, "--no-documents"]
    for k, v in opts.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    inp = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    out = cli(args, inp)
    results = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith('{"index"'):
            idx = int(line.split('"index": ', 1)[1].split(",", 1)[0])
            score = line.split('"relevance_score": ', 1)[1].split("}", 1)[0].strip()
            results.append((idx, score))
    return results, json.loads(out)["usage"]["total_tokens"]


def g9(x):
    """A float printed as the CLI prints it (%.9g of the float32 value)."""
    return "%.9g" % x


@pytest.fixture(scope="session")
def rerank_mod():
    import rerank
    return rerank


@pytest.fixture(scope="session")
def jina(rerank_mod):
    return rerank_mod.Reranker(model_dir("jina_f32"), precision="fp32")


def corpus_lines():
    p = os.path.join(SHARED, "fixtures", "corpus", "multilingual_corpus.txt")
    if not os.path.exists(p):
        return None
    with open(p, encoding="utf-8") as f:
        return [l.strip() for l in f if l.strip()]


def texts(n, seed=1, words=(3, 60)):
    """n varied multilingual texts: corpus lines when ../shared is there, else generated words."""
    import random
    rng = random.Random(seed)
    lines = corpus_lines()
    out = []
    for _ in range(n):
        if lines:
            s = rng.randrange(0, len(lines) - 8)
            t = " ".join(lines[s:s + rng.randint(1, 4)])
            out.append(t[:rng.randint(10, 600)])
        else:
            vocab = ["Berlin", "Stadt", "river", "Fluss", "skin", "Haut", "数据", "の", "piel", "ocean", "42"]
            out.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(*words))))
    return out
