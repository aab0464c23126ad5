#!/usr/bin/python3
"""python_overhead.py -- what the Python binding costs: Reranker.compute_score on 100 pairs of 256
tokens against `rerank score` on the same pairs, side by side, interleaved, in one run.

usage: /usr/bin/python3 bench/python_overhead.py [MODEL] [--rounds N] [--precision P] [--build DIR]

MODEL defaults to the full-size random jina-reranker-v2 model (build/testdata/full/jina_v2_bf16, from
`tools/gen_models.py --full`), else the small jina_f32 test model. Each round runs, in turn:
  - `rerank score --max-length 256` on the 100 pairs (a whole process: load + scoring),
  - `rerank score` on no input (the same process, load only),
  - compute_score(pairs, max_length=256) in this process (model loaded once, before the rounds),
  - the same Python call in a fresh interpreter (import + load + scoring, a whole process).
Prints the medians: scoring time (CLI: whole process minus load) and whole-process time of both sides,
and the ratio Python / CLI. Not a timed test: numbers depend on the machine and its load.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))


def make_pairs(model, n=100, tokens=256):
    """n (query, document) pairs that tokenize to exactly `tokens` tokens at max_length=tokens: varied
    words, documents longer than the room, so longest_first truncation fills every pair."""
    import random
    rng = random.Random(5)
    shared = os.environ.get("RR_SHARED", os.path.join(ROOT, "..", "shared"))
    corpus = os.path.join(shared, "fixtures", "corpus", "multilingual_corpus.txt")
    if os.path.exists(corpus):
        with open(corpus, encoding="utf-8") as f:
            words = f.read().split()
    else:
        words = ("Berlin river skin care Haut Fluss piel ocean data city law music history " * 50).split()
    pairs = []
    for _ in range(n):
        s = rng.randrange(0, len(words) - 600)
        q = " ".join(words[s:s + rng.randint(5, 20)])
        t = rng.randrange(0, len(words) - 600)
        pairs.append([q, " ".join(words[t:t + 500])])
    lens = {len(model.tokenize(q, d, max_length=tokens)[0]) for q, d in pairs}
    return pairs, lens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    model = a.model
    if not model:
        full = os.path.join(a.build, "testdata", "full", "jina_v2_bf16")
        model = full if os.path.exists(os.path.join(full, "config.json")) else \
            os.path.join(a.build, "testdata", "models", "jina_f32")
    import rerank
    m = rerank.Reranker(model, precision=a.precision)
    pairs, lens = make_pairs(m)
    jsonl = "".join(json.dumps({"query": q, "document": d}, ensure_ascii=False) + "\n" for q, d in pairs).encode()
    cli = [os.path.join(a.build, "rerank"), "score", "-m", model, "--precision", a.precision, "--max-length", "256"]
    py_whole = [sys.executable, "-c",
                "import json,sys; sys.path.insert(0, %r); import rerank; p=json.load(sys.stdin); "
                "rerank.Reranker(%r, precision=%r).compute_score(p, max_length=256)"
                % (os.path.join(ROOT, "python"), model, a.precision)]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print("model %s, precision %s (in use: %s, kernels %s), %d pairs of %s tokens, %d rounds, %s, %d cores"
          % (model, a.precision, m.info["precision"], m.info["kernels"], len(pairs), sorted(lens), a.rounds, cpu,
             os.cpu_count()))

    def timed(fn):
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    ref = None
    t_cli, t_load, t_py, t_pyw = [], [], [], []
    m.compute_score(pairs, max_length=256)  # warm-up
    for r in range(a.rounds):
        out = []
        t_cli.append(timed(lambda: out.append(subprocess.run(cli, input=jsonl, capture_output=True, check=True))))
        t_load.append(timed(lambda: subprocess.run(cli, input=b"", capture_output=True, check=True)))
        got = []
        t_py.append(timed(lambda: got.append(m.compute_score(pairs, max_length=256))))
        t_pyw.append(timed(lambda: subprocess.run(py_whole, input=json.dumps(pairs).encode(), capture_output=True,
                                                  check=True)))
        cli_scores = [l.split(":", 1)[1].strip().rstrip("}").strip() for l in out[0].stdout.decode().splitlines()]
        same = cli_scores == ["%.9g" % s for s in got[0]]
        print("round %d: rerank score %.3f s (load %.3f s) | compute_score %.3f s | python whole process %.3f s | "
              "scores identical: %s" % (r + 1, t_cli[-1], t_load[-1], t_py[-1], t_pyw[-1], same))
        ref = same if ref is None else ref and same
    med = statistics.median
    cli_scoring = med(t_cli) - med(t_load)
    print("\nmedians over %d interleaved rounds:" % a.rounds)
    print("  scoring only:   rerank score %.3f s (whole %.3f - load %.3f)   compute_score %.3f s   ratio %.3f"
          % (cli_scoring, med(t_cli), med(t_load), med(t_py), med(t_py) / cli_scoring if cli_scoring > 0 else
             float("nan")))
    print("  whole process:  rerank score %.3f s   python -c (import, load, compute_score) %.3f s   ratio %.3f"
          % (med(t_cli), med(t_pyw), med(t_pyw) / med(t_cli)))
    print("  scores identical to the CLI's in every round: %s" % ref)


if __name__ == "__main__":
    main()
