"""rank_ref.py -- an independent reference of jina-reranker-v2's rerank() windowing, checked against
`rerank rank`.

Written from the algorithm in shared/spec/model.md section 3, not from the C code: token ids from the
Rust Hugging Face tokenizers (npm @anush008/tokenizers, through tests/hf_tokenize.js; Debian's
sentencepiece breaks near-ties between equal-score splits differently, e.g. "sosiaalisia" inside a long
text), the windows and the merge by hand, and every window scored by the float64 forward of
tools/gen_models.py.
For each case it runs `rerank rank --raw` on the same model and compares the ranking and the scores.

usage: /usr/bin/python3 tests/rank_ref.py BUILD TESTDATA SHARED
Prints one line per case and "N passed, N failed, N skipped".
"""
import json
import math
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gen_models  # noqa: E402  (the float64 reference forward)

BUILD, TESTDATA, SHARED = sys.argv[1:4]
passed = failed = skipped = 0


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   %s" % name)
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


HERE = os.path.dirname(os.path.abspath(__file__))
model_dir = os.path.join(TESTDATA, "models", "jina_f32")
tok_path = os.path.join(model_dir, "tokenizer.json")
corpus_path = os.path.join(SHARED, "fixtures", "corpus", "multilingual_corpus.txt")
node_ok = os.path.isdir(os.path.join(HERE, "node_modules", "@anush008", "tokenizers"))
if not node_ok or not os.path.exists(tok_path) or not os.path.exists(corpus_path):
    print("skipped: needs tests/node_modules/@anush008/tokenizers, %s and %s" % (tok_path, corpus_path))
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)

_ids = {}


def prefetch(texts):
    """Reference ids for many texts in one node call."""
    todo = sorted({t for t in texts if t not in _ids})
    if not todo:
        return
    r = subprocess.run(["node", os.path.join(HERE, "hf_tokenize.js"), tok_path],
                       input=json.dumps(todo).encode(), capture_output=True, check=True)
    for t, ids in zip(todo, json.loads(r.stdout)):
        _ids[t] = ids


def tokens(text):
    """XLM-R ids without specials, from the Rust reference."""
    prefetch([text])
    return _ids[text]


with open(os.path.join(model_dir, "config.json")) as f:
    cfg = json.load(f)
W = gen_models.load_reference_weights(cfg, gen_models.open_model(model_dir))
cache = {}


def logit(ids):
    key = tuple(ids)
    if key not in cache:
        cache[key] = gen_models.reference_logit(W, ids, [0] * len(ids))
    return cache[key]


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def rank_ref(query, docs, max_length, max_query_length, overlap, top_n):
    """rerank() from the spec: returns ([(index, score)], total_tokens)."""
    max_query_length = min(max_query_length, max_length // 2)
    q = [0] + tokens(query)[:max_query_length - 2] + [2]
    M = max_length - len(q) - 2
    ov = min(overlap, M // 4)
    scores, total = [], 0
    for doc in docs:
        d = tokens(doc)
        L = len(d)
        windows = []
        if L <= M:
            windows.append(d)
        else:
            start = 0
            while start < L:
                end = start + M
                if end >= L:
                    windows.append(d[L - M:L])
                    break
                windows.append(d[start:end])
                start = end - ov
        best = -float("inf")
        for w in windows:
            ids = q + [2] + w + [2]
            total += len(ids)
            best = max(best, logit(ids))
        scores.append(best)
    order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))
    n = len(docs) if not top_n or top_n > len(docs) else top_n
    return [(i, scores[i]) for i in order[:n]], total


def rank_c(query, docs, max_length, max_query_length, overlap, top_n):
    inp = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    cmd = [os.path.join(BUILD, "rerank"), "rank", "-m", model_dir, "-q", query, "--raw", "--precision", "fp32",
           "--max-length", str(max_length), "--max-query-length", str(max_query_length),
           "--overlap", str(overlap), "--top-n", str(top_n)]
    r = subprocess.run(cmd, input=inp.encode(), capture_output=True)
    if r.returncode:
        raise RuntimeError(r.stderr.decode())
    out = json.loads(r.stdout)
    return [(x["index"], x["relevance_score"]) for x in out["results"]], out["usage"]["total_tokens"], out


with open(corpus_path, encoding="utf-8") as f:
    lines = [l.strip() for l in f if l.strip()]
rng = random.Random(7)


def long_doc(n_lines):
    start = rng.randrange(0, len(lines) - n_lines)
    return " ".join(lines[start:start + n_lines])


docs = [long_doc(k) for k in (1, 3, 10, 40, 120)] + ["", lines[5], long_doc(25)]
queries = ["Wie viele Menschen leben in Berlin?", " ".join(lines[100:130])]  # short and very long query
prefetch(docs + queries + ["short query"])
cases = [
    (512, 64, 80, 0), (256, 32, 16, 3), (300, 100, 80, 100), (1024, 512, 80, 0), (128, 64, 200, 2),
]
for qi, query in enumerate(queries):
    for (ml, mq, ov, top) in cases:
        name = "q%d max_length=%d max_query=%d overlap=%d top_n=%d" % (qi, ml, mq, ov, top)
        want, want_total = rank_ref(query, docs, ml, mq, ov, top)
        try:
            got, got_total, _ = rank_c(query, docs, ml, mq, ov, top)
        except RuntimeError as e:
            report(False, name, str(e))
            continue
        same_order = [i for i, _ in got] == [i for i, _ in want]
        worst = max((abs(a[1] - b[1]) for a, b in zip(got, want)), default=0.0)
        report(same_order and worst <= 1e-4 and got_total == want_total, name,
               "order %s vs %s, max |diff| %.3g, tokens %d vs %d" %
               ([i for i, _ in got], [i for i, _ in want], worst, got_total, want_total))

# a document of exactly M and M+1 tokens: one window, then two windows aligned to the end
q = "short query"
qlen = len(tokens(q)) + 2
M = 128 - qlen - 2
for n_target in (M, M + 1):
    # "▁the" is one piece, so n words give n tokens; the reference confirms the count
    acc = " ".join(["the"] * n_target)
    if len(tokens(acc)) == n_target:
        want, wt = rank_ref(q, [acc], 128, 64, 80, 0)
        got, gt, _ = rank_c(q, [acc], 128, 64, 80, 0)
        report(abs(got[0][1] - want[0][1]) <= 1e-4 and gt == wt, "document of %d tokens (M=%d)" % (n_target, M),
               "%s vs %s tokens %d vs %d" % (got, want, gt, wt))
    else:
        skipped += 1
        print("skip document of exactly %d tokens: 'the' is not one piece here" % n_target)

# edge cases: empty list, empty documents only, top_n larger than the list
got, gt, out = rank_c(q, [], 128, 64, 80, 0)
report(got == [] and gt == 0 and out["results"] == [], "empty document list")
want, wt = rank_ref(q, ["", ""], 128, 64, 80, 5)
got, gt, _ = rank_c(q, ["", ""], 128, 64, 80, 5)
report([i for i, _ in got] == [0, 1] and abs(got[0][1] - want[0][1]) <= 1e-4 and gt == wt,
       "empty documents score the empty pair, ties by index")

print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
