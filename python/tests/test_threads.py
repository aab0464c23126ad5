"""Threads and interrupts: four threads sharing one Reranker give the results of one; another Python
thread keeps running while a long call is in C (the GIL is released); Ctrl-C (SIGINT) stops a long
call within about one forward pass with KeyboardInterrupt, and the object stays usable."""
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import model_dir, texts


@pytest.fixture(scope="module")
def model(rerank_mod):
    return rerank_mod.Reranker(model_dir("jina_f32"), precision="fp32", threads=1)


def long_pairs(model, seconds):
    """Pairs that take about `seconds` to score on this machine (calibrated)."""
    base = [[q, d] for q, d in zip(texts(64, seed=61), texts(64, seed=62))]
    t = time.perf_counter()
    model.compute_score(base)
    per = max((time.perf_counter() - t) / len(base), 1e-6)
    n = int(seconds / per) + 1
    return [base[i % len(base)] for i in range(n)]


def test_four_threads_equal_one(model):
    pairs = [[q, d] for q, d in zip(texts(200, seed=71), texts(200, seed=72))]
    queries = texts(8, seed=73)
    docs = texts(60, seed=74)
    want_scores = [model.compute_score(pairs[i::4]) for i in range(4)]
    want_ranks = [model.rerank(q, docs, max_length=128, top_n=10) for q in queries]
    want_pred = [list(model.predict(pairs[i::4])) for i in range(4)]

    def work(i):
        out = []
        for _ in range(3):
            out.append((model.compute_score(pairs[i::4]), [model.rerank(q, docs, max_length=128, top_n=10)
                                                           for q in queries[2 * i:2 * i + 2]],
                        list(model.predict(pairs[i::4]))))
        return out

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(work, range(4)))
    for i, runs in enumerate(results):
        for scores, ranks, pred in runs:
            assert scores == want_scores[i]
            assert ranks == want_ranks[2 * i:2 * i + 2]
            assert pred == want_pred[i]
    assert 1 <= model._model.contexts() <= 5


def test_other_thread_runs_during_long_call(model):
    pairs = long_pairs(model, 1.5)
    stamps = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            stamps.append(time.perf_counter())
            x = 0
            for i in range(2000):  # pure Python: needs the GIL
                x += i

    th = threading.Thread(target=ticker)
    th.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    model.compute_score(pairs)
    t1 = time.perf_counter()
    stop.set()
    th.join()
    during = [s for s in stamps if t0 <= s <= t1]
    gaps = [b - a for a, b in zip([t0] + during, during + [t1])]
    assert t1 - t0 > 0.5, "the call was too short to tell (%.2f s)" % (t1 - t0)
    # held for the whole call, the GIL would let the ticker run only before and after it; the margin
    # allows for a loaded machine that leaves the ticker without a core for a while
    assert len(during) > 10 and max(gaps) < max(0.25, 0.3 * (t1 - t0)), \
        "ticker ran %d times in %.2f s, longest gap %.3f s" % (len(during), t1 - t0, max(gaps))


@pytest.mark.parametrize("method", ["compute_score", "rerank"])
def test_ctrl_c_interrupts_and_object_stays_usable(model, method):
    pairs = long_pairs(model, 6.0)
    small = pairs[:5]
    before = model.compute_score(small)
    fired = []

    def interrupt():
        fired.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.5, interrupt)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        if method == "compute_score":
            model.compute_score(pairs)
        else:
            model.rerank("a query", [d for _, d in pairs], max_length=256)
    t1 = time.perf_counter()
    timer.join()
    assert fired and t1 - fired[0] < 1.5, "stopped %.2f s after SIGINT" % (t1 - fired[0])
    assert t1 - t0 < 4.0
    assert model.compute_score(small) == before
    assert model.rerank("q", ["a", "b"]) == model.rerank("q", ["a", "b"])


def test_ctrl_c_inside_one_huge_document(model):
    """rerank() of ONE enormous document is a single rr_rank call over thousands of windows; SIGINT
    stops it within about one forward pass (the library's progress hook runs the signal handlers
    between passes), and the same Reranker then gives the exact result again."""
    base = " ".join(texts(40, seed=63))
    small_doc = base * 4
    t = time.perf_counter()
    want = model.rerank("a query", [small_doc, "x"], max_length=64)
    per_copy = max((time.perf_counter() - t) / 4, 1e-4)
    copies = int(8.0 / per_copy) + 1  # about 8 s of windows in one document
    huge = base * copies
    t = time.perf_counter()
    model.tokenize(huge)  # tokenizing the one text is not interruptible: fire after it
    t_tok = time.perf_counter() - t
    fired = []

    def interrupt():
        fired.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(t_tok + 0.5, interrupt)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        model.rerank("a query", [huge], max_length=64)
    t1 = time.perf_counter()
    timer.join()
    # one pass here is 1024 tokens of the small model: a few ms; the margin is for a loaded machine
    assert fired and t1 - fired[0] < 1.0, "stopped %.2f s after SIGINT" % (t1 - fired[0])
    assert t1 - t0 < 0.6 * (t_tok + 8.0), "the call ran %.2f s: it was not interrupted early" % (t1 - t0)
    assert model.rerank("a query", [small_doc, "x"], max_length=64) == want
    assert model._model.contexts() >= 1


def test_forked_child_scores(rerank_mod):
    """A forked child (multiprocessing's default on Linux) cannot use its parent's worker threads: it
    makes its own contexts and gets the parent's results."""
    model = rerank_mod.Reranker(model_dir("jina_f32"), precision="fp32", threads=2)  # a pool with workers
    pairs = [[q, d] for q, d in zip(texts(20, seed=91), texts(20, seed=92))]
    want = model.compute_score(pairs)
    want_rank = model.rerank("q", [d for _, d in pairs], top_n=5)
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # a hang kills the child instead of the suite
        try:
            ok = model.compute_score(pairs) == want and model.rerank("q", [d for _, d in pairs], top_n=5) == want_rank
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "child status %d" % status
    assert model.compute_score(pairs) == want
