"""The model card's Python example (jina-reranker-v2-base-multilingual) with only the loading line
changed, run on a test model folder: compute_score on its pairs and rerank with max_query_length=512,
max_length=1024, top_n=3; its numbers equal `rerank score` / `rerank rank` on the same inputs to the
last printed digit (default precision "auto" on both sides)."""
from conftest import cli_rank, cli_score, g9, model_dir

CARD = '''
import rerank
model = rerank.Reranker(MODEL_DIR)

model.to('cuda') # or 'cpu' if no GPU is available
model.eval()

# Example query and documents
query = "Organic skincare products for sensitive skin"
documents = [
    "Organic skincare for sensitive skin with aloe vera and chamomile.",
    "New makeup trends focus on bold colors and innovative techniques",
    "Bio-Hautpflege für empfindliche Haut mit Aloe Vera und Kamille",
    "Neue Make-up-Trends setzen auf kräftige Farben und innovative Techniken",
    "Cuidado de la piel orgánico para piel sensible con aloe vera y manzanilla",
    "Las nuevas tendencias de maquillaje se centran en colores vivos y técnicas innovadoras",
    "针对敏感肌专门设计的天然有机护肤产品",
    "新的化妆趋势注重鲜艳的颜色和创新的技巧",
    "敏感肌のために特別に設計された天然有機スキンケア製品",
    "新しいメイクのトレンドは鮮やかな色と革新的な技術に焦点を当てています",
]

# construct sentence pairs
sentence_pairs = [[query, doc] for doc in documents]

scores = model.compute_score(sentence_pairs, max_length=1024)

result = model.rerank(
    query,
    documents,
    max_query_length=512,
    max_length=1024,
    top_n=3
)
'''


def test_model_card_example():
    d = model_dir("jina_f32")
    env = {"MODEL_DIR": d}
    exec(compile(CARD, "model_card_example", "exec"), env)
    pairs, query, docs = env["sentence_pairs"], env["query"], env["documents"]
    assert [g9(s) for s in env["scores"]] == cli_score(d, pairs, precision="auto", max_length=1024)
    want, _ = cli_rank(d, query, docs, precision="auto", max_query_length=512, max_length=1024, top_n=3)
    assert [(r["index"], g9(r["relevance_score"])) for r in env["result"]] == want
    assert [r["document"] for r in env["result"]] == [docs[i] for i, _ in want]
    # the other shapes agree with the CLI on the same pairs
    m = env["model"]
    want_scores = cli_score(d, pairs, precision="auto")
    assert [g9(s) for s in m.predict(pairs)] == want_scores
    assert [g9(s) for s in m.score(pairs)] == want_scores
    ranked = m.rank(query, docs, top_k=3)
    order = sorted(range(len(docs)), key=lambda i: (-float(want_scores[i]), i))[:3]
    assert [(r["corpus_id"], g9(r["score"])) for r in ranked] == [(i, want_scores[i]) for i in order]
