// server_clients.mjs -- drives a running `rerank serve` with real npm clients and raw HTTP; run by
// tests/suite_server.sh. Prints "ok - NAME" / "not ok - NAME: why" / "skip - NAME: why" per check.
//
//   node tests/server_clients.mjs BASE_URL AUTH_BASE_URL API_KEY
//
// BASE_URL: a server without an API key, --max-docs 1000, --max-request-bytes 1000000.
// AUTH_BASE_URL: a server with --api-key API_KEY and a queue depth of 2 (for 401 and 429).
import { Buffer } from "node:buffer";

const [BASE, AUTH_BASE, KEY] = process.argv.slice(2);
let failures = 0;
const realFetch = globalThis.fetch;

function ok(name) { console.log(`ok - ${name}`); }
function notOk(name, why) { failures++; console.log(`not ok - ${name}: ${why}`); }
function skip(name, why) { console.log(`skip - ${name}: ${why}`); }
async function check(name, fn) {
  try {
    const r = await fn();
    if (r === "skip") return;
    ok(name);
  } catch (e) {
    notOk(name, (e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : String(e)));
  }
}
function assert(c, msg) { if (!c) throw new Error(msg); }
function near(a, b, tol, msg) { assert(Math.abs(a - b) <= tol, `${msg}: ${a} vs ${b}`); }

async function post(path, body, { base = BASE, headers = {}, raw = false } = {}) {
  const res = await realFetch(base + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: raw ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text, headers: res.headers };
}

function sortedDesc(results, key) {
  for (let i = 1; i < results.length; i++)
    if (results[i - 1][key] < results[i][key]) return false;
  return true;
}

const QUERY = "How do I reset my password?";
const DOCS = [
  "To reset your password, open settings and choose 'forgot password'.",
  "Our office is closed on public holidays.",
  "Passwörter können in den Einstellungen zurückgesetzt werden.",
  "パスワードを忘れた場合は設定から再設定できます。",
  "The weather tomorrow will be sunny with light winds.",
];

async function baseline() {
  const r = await post("/v1/rerank", { model: "m", query: QUERY, documents: DOCS, return_documents: false });
  assert(r.status === 200, `baseline status ${r.status}: ${r.text}`);
  const byIndex = new Map(r.json.results.map((x) => [x.index, x.relevance_score]));
  return { byIndex, json: r.json };
}

const { byIndex: SCORES, json: BASE_JSON } = await baseline();

// ---------------------------------------------------------------- response shape (Jina)
await check("jina shape: model, usage, sorted results with documents", async () => {
  const r = await post("/v1/rerank", { model: "jina-reranker-v2-base-multilingual", query: QUERY, documents: DOCS });
  assert(r.status === 200, `status ${r.status}`);
  const j = r.json;
  assert(typeof j.model === "string" && j.model.length > 0, "model missing");
  assert(Number.isInteger(j.usage.total_tokens) && j.usage.total_tokens > 0, "usage.total_tokens");
  assert(j.usage.prompt_tokens === j.usage.total_tokens, "usage.prompt_tokens");
  assert(j.results.length === DOCS.length, "all results when top_n is missing");
  assert(sortedDesc(j.results, "relevance_score"), "not sorted by score");
  for (const x of j.results) {
    assert(x.relevance_score >= 0 && x.relevance_score <= 1, "sigmoid score out of [0,1]");
    assert(x.document.text === DOCS[x.index], "document.text does not match index");
    near(x.relevance_score, SCORES.get(x.index), 1e-6, "score differs between identical requests");
  }
  assert(BASE_JSON.results.every((x) => !("document" in x)), "return_documents:false still returned documents");
});

await check("top_n: null, 0, larger than n, 2", async () => {
  for (const [top, want] of [[null, 5], [0, 5], [99, 5], [2, 2]]) {
    const r = await post("/v1/rerank", { query: QUERY, documents: DOCS, top_n: top });
    assert(r.status === 200, `top_n ${top}: status ${r.status}`);
    assert(r.json.results.length === want, `top_n ${top}: ${r.json.results.length} results`);
  }
});

await check("documents: mixed strings and objects, extra fields preserved, query as {text}", async () => {
  const r = await post("/v1/rerank", {
    query: { text: QUERY },
    documents: [DOCS[0], { text: DOCS[1], title: "t", meta: { n: 1 } }],
  });
  assert(r.status === 200, `status ${r.status}: ${r.text}`);
  const d1 = r.json.results.find((x) => x.index === 1).document;
  assert(d1.title === "t" && d1.meta.n === 1 && d1.text === DOCS[1], "extra fields not preserved");
  near(r.json.results.find((x) => x.index === 0).relevance_score, SCORES.get(0), 1e-6, "score depends on batch");
});

await check("empty documents gives no results", async () => {
  const r = await post("/v1/rerank", { query: QUERY, documents: [] });
  assert(r.status === 200 && r.json.results.length === 0, `status ${r.status}: ${r.text}`);
});

await check("long document is windowed, not refused", async () => {
  const long = Array.from({ length: 3000 }, (_, i) => `word${i % 97}`).join(" ");
  const r = await post("/v1/rerank", { query: QUERY, documents: [long, DOCS[0]] });
  assert(r.status === 200, `status ${r.status}: ${r.text}`);
  assert(r.json.usage.total_tokens > 1000, `usage ${r.json.usage.total_tokens}`);
});

// ---------------------------------------------------------------- TEI shape
await check("TEI /rerank: bare array, raw_scores, return_text", async () => {
  const r = await post("/rerank", { query: QUERY, texts: DOCS, raw_scores: true, return_text: true, truncate: true });
  assert(r.status === 200, `status ${r.status}: ${r.text}`);
  assert(Array.isArray(r.json) && r.json.length === DOCS.length, "not a full array");
  assert(sortedDesc(r.json, "score"), "not sorted");
  for (const x of r.json) {
    assert(x.text === DOCS[x.index], "text mismatch");
    near(1 / (1 + Math.exp(-x.score)), SCORES.get(x.index), 1e-5, "sigmoid(raw) != relevance_score");
  }
  const d = await post("/rerank", { query: QUERY, texts: DOCS });
  assert(d.status === 200 && d.json.every((x) => !("text" in x) && x.score >= 0 && x.score <= 1), "defaults");
  const j = await post("/rerank", { query: QUERY, documents: DOCS }); // Jina shape on /rerank
  assert(j.status === 200 && j.json.results.length === DOCS.length, "/rerank with documents");
});

// A long text whose relevant part is at its end: about 2,000 tokens of filler (under Cohere's 4096),
// then the answer.
const LONG_TAIL = Array.from({ length: 400 }, (_, i) => `filler${i % 31} about weather`).join(" ") +
  " To reset your password, open settings and choose 'forgot password'.";

await check("TEI truncate: Right and Left keep different ends, false windows, usage shrinks", async () => {
  const body = (extra) => ({ query: QUERY, texts: [LONG_TAIL, DOCS[1]], raw_scores: true, ...extra });
  const right = await post("/rerank", body({ truncate: true }));
  const right2 = await post("/rerank", body({ truncate: true, truncation_direction: "Right" }));
  const left = await post("/rerank", body({ truncate: true, truncation_direction: "Left" }));
  const win = await post("/rerank", body({ truncate: false, truncation_direction: "Left" }));
  const dflt = await post("/rerank", body({}));
  for (const r of [right, right2, left, win, dflt]) assert(r.status === 200, `status ${r.status}: ${r.text}`);
  const s = (r) => r.json.find((x) => x.index === 0).score;
  assert(s(right) === s(right2), "Right is the default direction");
  assert(s(right) !== s(left), `Right and Left give the same score ${s(right)}`);
  assert(s(win) === s(dflt), "truncate false and missing must both window");
  assert(s(win) >= Math.max(s(right), s(left)) - 1e-5, "windowing scores below a window it contains");
  // the short text is unaffected by any mode
  near(right.json.find((x) => x.index === 1).score, win.json.find((x) => x.index === 1).score, 1e-6, "short text changed");
  // usage in the Jina shape shows the cut: the same request on /v1 windows everything
  const v1 = await post("/v1/rerank", { query: QUERY, documents: [LONG_TAIL] });
  const v2 = await post("/v2/rerank", { model: "m", query: QUERY, documents: [LONG_TAIL], max_tokens_per_doc: 40 });
  assert(v2.json.usage.total_tokens < 100 && v1.json.usage.total_tokens > 1000,
    `usage v2 ${v2.json.usage.total_tokens} v1 ${v1.json.usage.total_tokens}`);
});

// ---------------------------------------------------------------- cohere-ai
let cohere;
try { cohere = await import("cohere-ai"); } catch (e) { cohere = null; }
if (!cohere) {
  skip("cohere-ai CohereClient", "package not installed");
} else {
  await check("cohere-ai CohereClient (v1, environment)", async () => {
    const client = new cohere.CohereClient({ token: "anything", environment: BASE });
    const res = await client.rerank({
      model: "rerank-v3.5", query: QUERY, documents: [DOCS[0], { text: DOCS[1], title: "t" }, DOCS[2]],
      topN: 2, returnDocuments: true,
    });
    assert(res.results.length === 2, `${res.results.length} results`);
    for (const x of res.results) near(x.relevanceScore, SCORES.get(x.index), 1e-6, "score mismatch");
    assert(res.results[0].relevanceScore >= res.results[1].relevanceScore, "order");
  });
  await check("cohere-ai CohereClientV2 (v2, baseUrl, no token)", async () => {
    const client = new cohere.CohereClientV2({ token: "", baseUrl: BASE });
    const res = await client.rerank({ model: "rerank-v3.5", query: QUERY, documents: DOCS, topN: 1, maxTokensPerDoc: 512 });
    assert(res.results.length === 1, `${res.results.length} results`);
    const best = [...SCORES.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
    assert(res.results[0].index === best[0], `best index ${res.results[0].index} != ${best[0]}`);
  });
  await check("cohere-ai CohereClientV2 maxTokensPerDoc is applied (default 4096)", async () => {
    const client = new cohere.CohereClientV2({ token: "", baseUrl: BASE });
    const docs = [LONG_TAIL, DOCS[1]];
    const cut = await client.rerank({ model: "m", query: QUERY, documents: docs, maxTokensPerDoc: 32 });
    const raw = await post("/v2/rerank", { model: "m", query: QUERY, documents: docs, max_tokens_per_doc: 32 });
    const full = await post("/v2/rerank", { model: "m", query: QUERY, documents: docs });
    const capped = await post("/v2/rerank", { model: "m", query: QUERY, documents: docs, max_tokens_per_doc: 4096 });
    const score = (rs, key) => rs.find((x) => x.index === 0)[key];
    near(score(cut.results, "relevanceScore"), score(raw.json.results, "relevance_score"), 1e-6, "client vs raw");
    assert(score(raw.json.results, "relevance_score") !== score(full.json.results, "relevance_score"), "cap had no effect");
    assert(full.json.usage.total_tokens === capped.json.usage.total_tokens, "default is not 4096");
    const v1 = await post("/v1/rerank", { query: QUERY, documents: docs, return_documents: false });
    near(score(full.json.results, "relevance_score"), score(v1.json.results, "relevance_score"), 1e-6,
      "a document under 4096 tokens is windowed whole on v2 as on v1");
  });
  await check("cohere-ai: 422 becomes UnprocessableEntityError with the message", async () => {
    const client = new cohere.CohereClient({ token: "x", environment: BASE });
    try {
      await client.rerank({ query: QUERY, documents: [DOCS[0]], topN: -3 });
    } catch (e) {
      assert(e.statusCode === 422, `status ${e.statusCode}`);
      assert(JSON.stringify(e.body).includes("top_n"), `body ${JSON.stringify(e.body)}`);
      return;
    }
    throw new Error("no error thrown");
  });
}

// ---------------------------------------------------------------- llamaindex JinaAIReranker
await check("llamaindex JinaAIReranker (fetch redirected from api.jina.ai)", async () => {
  let mod;
  try { mod = await import("llamaindex/postprocessors"); } catch (e) { skip("llamaindex JinaAIReranker", "package not installed"); return "skip"; }
  process.env.JINAAI_API_KEY = "x";
  const seen = [];
  globalThis.fetch = (u, init) => {
    const url = String(u).replace("https://api.jina.ai", BASE);
    seen.push(url);
    return realFetch(url, init);
  };
  try {
    const rr = new mod.JinaAIReranker({ topN: 3, model: "jina-reranker-v2-base-multilingual" });
    const results = await rr.rerank(QUERY, DOCS);
    assert(seen.length === 1 && seen[0] === `${BASE}/v1/rerank`, `fetched ${seen}`);
    assert(results.length === 3, `${results.length} results`);
    for (const x of results) near(x.relevance_score, SCORES.get(x.index), 1e-6, "score mismatch");
  } finally {
    globalThis.fetch = realFetch;
  }
});

// ---------------------------------------------------------------- @langchain/cohere
await check("@langchain/cohere CohereRerank (rerank and compressDocuments)", async () => {
  let lc, docmod;
  try {
    lc = await import("@langchain/cohere");
    docmod = await import("@langchain/core/documents");
  } catch (e) { skip("@langchain/cohere CohereRerank", "package not installed"); return "skip"; }
  const client = new cohere.CohereClient({ token: "x", environment: BASE });
  const rr = new lc.CohereRerank({ client, model: "rerank-v3.5", topN: 2 });
  const out = await rr.rerank(DOCS, QUERY, { topN: 3 });
  assert(out.length === 3, `${out.length} results`);
  for (const x of out) near(x.relevanceScore, SCORES.get(x.index), 1e-6, "score mismatch");
  const docs = DOCS.map((t, i) => new docmod.Document({ pageContent: t, metadata: { i } }));
  const kept = await rr.compressDocuments(docs, QUERY);
  assert(kept.length === 2, `${kept.length} documents kept`);
  for (const d of kept) near(d.metadata.relevanceScore, SCORES.get(d.metadata.i), 1e-6, "compress score");
});

// ---------------------------------------------------------------- bad input: a clear 4xx each
const badCases = [
  ["malformed JSON", "/v1/rerank", '{"query": "q", "documents": [', 400, "invalid JSON"],
  ["not an object", "/v1/rerank", "[1, 2, 3]", 422, "JSON object"],
  ["query wrong type", "/v1/rerank", { query: 5, documents: ["a"] }, 422, "query"],
  ["documents wrong type", "/v1/rerank", { query: "q", documents: "a" }, 422, "documents"],
  ["document item wrong type", "/v1/rerank", { query: "q", documents: ["a", 7] }, 422, "documents[1]"],
  ["missing query", "/v1/rerank", { documents: ["a"] }, 422, "query"],
  ["missing documents", "/v2/rerank", { query: "q" }, 422, "documents"],
  ["TEI missing texts", "/rerank", { query: "q" }, 422, "texts"],
  ["negative top_n", "/v1/rerank", { query: "q", documents: ["a"], top_n: -1 }, 422, "top_n"],
  ["fractional top_n", "/v1/rerank", { query: "q", documents: ["a"], top_n: 1.5 }, 422, "top_n"],
  ["return_documents wrong type", "/v1/rerank", { query: "q", documents: ["a"], return_documents: "no" }, 422, "return_documents"],
  ["10,000 documents", "/v1/rerank", { query: "q", documents: Array.from({ length: 10000 }, (_, i) => `d${i}`) }, 413, "too many documents"],
  ["oversized body", "/v1/rerank", { query: "q", documents: ["x".repeat(1500000)] }, 413, "limit"],
  ["invalid UTF-8", "/v1/rerank", Buffer.concat([Buffer.from('{"query":"q","documents":["ok","bad '), Buffer.from([0xff, 0xfe]), Buffer.from('"]}')]), 400, "UTF-8"],
  ["empty body", "/v1/rerank", "", 400, "empty"],
  ["TEI truncate wrong type", "/rerank", { query: "q", texts: ["a"], truncate: "yes" }, 422, "truncate"],
  ["TEI truncation_direction unknown", "/rerank", { query: "q", texts: ["a"], truncate: true, truncation_direction: "Up" }, 422, "truncation_direction"],
  ["v2 max_tokens_per_doc 0", "/v2/rerank", { model: "m", query: "q", documents: ["a"], max_tokens_per_doc: 0 }, 422, "max_tokens_per_doc"],
  ["v2 max_tokens_per_doc fractional", "/v2/rerank", { model: "m", query: "q", documents: ["a"], max_tokens_per_doc: 10.5 }, 422, "max_tokens_per_doc"],
  ["v2 max_tokens_per_doc string", "/v2/rerank", { model: "m", query: "q", documents: ["a"], max_tokens_per_doc: "512" }, 422, "max_tokens_per_doc"],
];
for (const [name, path, body, want, needle] of badCases) {
  await check(`bad input: ${name} -> ${want}`, async () => {
    const raw = typeof body === "string" || Buffer.isBuffer(body);
    const r = await post(path, body, { raw });
    assert(r.status === want, `status ${r.status}, want ${want}: ${r.text.slice(0, 200)}`);
    assert(r.json && typeof r.json.detail === "string" && r.json.detail === r.json.message, "detail/message missing");
    assert(r.json.detail.includes(needle), `message "${r.json.detail}" lacks "${needle}"`);
  });
}
await check("wrong method and unknown route", async () => {
  const g = await realFetch(BASE + "/v1/rerank");
  assert(g.status === 405, `GET /v1/rerank: ${g.status}`);
  const n = await realFetch(BASE + "/v1/nothing", { method: "POST", body: "{}" });
  assert(n.status === 404, `404: ${n.status}`);
});
await check("server still serves after bad input", async () => {
  const h = await realFetch(BASE + "/health");
  assert(h.status === 200, `health ${h.status}`);
  const { byIndex } = await baseline();
  for (const [i, s] of byIndex) near(s, SCORES.get(i), 1e-6, "scores changed");
});

// ---------------------------------------------------------------- client disconnect
await check("a client that disconnects has its work dropped", async () => {
  const before = await metric(BASE, "rerank_cancelled_total");
  const big = Array.from({ length: 400 }, (_, i) => `document ${i} ` + "lorem ipsum dolor sit amet ".repeat(40));
  const ctrls = [];
  for (let k = 0; k < 3; k++) {
    const c = new AbortController();
    ctrls.push(c);
    realFetch(BASE + "/v1/rerank", { method: "POST", body: JSON.stringify({ query: `q${k}`, documents: big }), signal: c.signal }).catch(() => {});
  }
  await sleep(300);
  for (const c of ctrls) c.abort();
  for (let t = 0; t < 100; t++) {
    if ((await metric(BASE, "rerank_cancelled_total")) > before) break;
    await sleep(100);
  }
  const after = await metric(BASE, "rerank_cancelled_total");
  assert(after > before, `rerank_cancelled_total stayed ${after}`);
  const r = await post("/v1/rerank", { query: QUERY, documents: DOCS });
  assert(r.status === 200, "server did not recover");
});

// ---------------------------------------------------------------- auth and 429 (second server)
await check("auth: 401 without or with a wrong key, 200 with the key (header and cohere client)", async () => {
  const none = await post("/v1/rerank", { query: "q", documents: ["a"] }, { base: AUTH_BASE });
  assert(none.status === 401 && none.json.detail.includes("API key"), `no key: ${none.status}`);
  const wrong = await post("/v1/rerank", { query: "q", documents: ["a"] }, { base: AUTH_BASE, headers: { Authorization: `Bearer ${KEY}x` } });
  assert(wrong.status === 401, `wrong key: ${wrong.status}`);
  const right = await post("/v1/rerank", { query: "q", documents: ["a"] }, { base: AUTH_BASE, headers: { Authorization: `Bearer ${KEY}` } });
  assert(right.status === 200, `right key: ${right.status}`);
  const h = await realFetch(AUTH_BASE + "/health");
  assert(h.status === 200, "health needs no key");
  if (cohere) {
    const c = new cohere.CohereClient({ token: KEY, environment: AUTH_BASE });
    const res = await c.rerank({ query: "q", documents: ["a", "b"] });
    assert(res.results.length === 2, "cohere with key");
  }
});

await check("queue full: 429 with Retry-After, everything else answered", async () => {
  const docs = Array.from({ length: 60 }, (_, i) => `document ${i} ` + "some filler text here ".repeat(20));
  const reqs = Array.from({ length: 16 }, (_, k) =>
    post("/v1/rerank", { query: `q${k}`, documents: docs }, { base: AUTH_BASE, headers: { Authorization: `Bearer ${KEY}` } }));
  const res = await Promise.all(reqs);
  const codes = res.map((r) => r.status);
  const n429 = codes.filter((c) => c === 429).length;
  assert(codes.every((c) => c === 200 || c === 429), `codes ${codes}`);
  assert(n429 > 0, `no 429 among ${codes}`);
  const r429 = res.find((r) => r.status === 429);
  assert(r429.headers.get("retry-after") === "1", "Retry-After missing");
  assert(r429.json.detail.includes("busy"), `429 message: ${r429.json.detail}`);
});

// ---------------------------------------------------------------- info, models, metrics
await check("GET /info, /v1/models, /metrics", async () => {
  const info = await (await realFetch(BASE + "/info")).json();
  assert(info.max_client_batch_size === 1000 && info.max_request_bytes === 1000000, JSON.stringify(info));
  assert(typeof info.precision === "string" && info.max_input_length > 0, "precision/max_input_length");
  const models = await (await realFetch(BASE + "/v1/models")).json();
  assert(models.data[0].id === info.model_id, "models");
  const m = await (await realFetch(BASE + "/metrics")).text();
  for (const name of ["rerank_requests_total{route=\"/v1/rerank\",code=\"200\"}", "rerank_request_errors_total{code=\"422\"}",
    "rerank_request_errors_total{code=\"413\"}", "rerank_queue_depth", "rerank_batch_tokens_bucket", "rerank_tokens_total",
    "rerank_request_duration_seconds_bucket", "rerank_batch_requests_bucket"])
    assert(m.includes(name), `metrics lack ${name}`);
});

async function metric(base, name) {
  const text = await (await realFetch(base + "/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(" ")[1]) : NaN;
}
function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

process.exit(failures ? 1 : 0);
