"""10,000 calls leave memory flat: RSS after 10,000 mixed calls is within a small margin of RSS after
the first 1,000, and no call keeps a reference to its arguments."""
import sys

from conftest import model_dir, texts


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 1024


def test_ten_thousand_calls_leave_rss_flat(rerank_mod):
    m = rerank_mod.Reranker(model_dir("jina_f32"), precision="fp32", threads=1)
    q = "Wie alt ist Berlin? " + "x" * 3  # a fresh str whose references we count
    docs = texts(3, seed=81)
    pairs = [[q, d] for d in docs]
    d0 = docs[0]
    refs_q, refs_d = sys.getrefcount(q), sys.getrefcount(d0)

    def one_round(i):
        k = i % 6
        if k == 0:
            m.compute_score(pairs)
        elif k == 1:
            m.rerank(q, docs, top_n=2)
        elif k == 2:
            m.predict(pairs)
        elif k == 3:
            m.rank(q, docs, return_documents=True)
        elif k == 4:
            m.score(pairs)
        else:
            m.tokenize(q, docs[0])
        if i % 500 == 0:  # error paths too
            try:
                m.compute_score([[q, 5]])
            except TypeError:
                pass

    for i in range(1000):
        one_round(i)
    base = rss_kb()
    for i in range(1000, 10000):
        one_round(i)
    grown = rss_kb() - base
    now_q, now_d = sys.getrefcount(q), sys.getrefcount(d0)  # before assert, which keeps temporaries
    assert (now_q, now_d) == (refs_q, refs_d)
    assert grown < 1024, "RSS grew by %d kB over 9,000 calls" % grown
