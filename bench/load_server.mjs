// load_server.mjs -- a bounded closed-loop load test for `rerank serve` (Node 20, no dependencies).
//
//   node bench/load_server.mjs --url http://127.0.0.1:PORT [--clients 64] [--duration 120]
//        [--docs 20] [--doc-words 60] [--pid SERVER_PID] [--sigterm-at SECONDS] [--warmup 2]
//   node bench/load_server.mjs --write-docs FILE [--count 512] [--doc-words 60]
//   node bench/load_server.mjs --write-pairs FILE [--write-bodies FILE] [--docs 20] [--doc-words 60]
//
// Each of --clients clients sends the same kind of request (one query, --docs documents of about
// --doc-words words, all different) in a loop for --duration seconds. With --pid the server's RSS is
// sampled from /proc every 0.5 s. With --sigterm-at the server gets SIGTERM at that time, clients stop
// starting new requests, and the test checks that every request already sent is answered.
// Prints a human summary and, last, one JSON line with the numbers (latencies in ms).
import fs from "node:fs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const URL_ = args.url;
const CLIENTS = Number(args.clients ?? 64);
const DURATION = Number(args.duration ?? 120);
const NDOCS = Number(args.docs ?? 20);
const WORDS = Number(args["doc-words"] ?? 60);
const PID = args.pid ? Number(args.pid) : null;
const TERM_AT = args["sigterm-at"] ? Number(args["sigterm-at"]) : null;
const WARMUP = Number(args.warmup ?? 2);
const vocab = ("the of and to in is was for on that with as by at from this be or are an it which his not but " +
  "password reset account login security settings email support network server cache index query vector " +
  "Haus Stadt Wasser Licht 東京 日本 検索 学校 maison ville eau lumière casa ciudad agua luz").split(" ");
let seed = 12345;
function rnd() { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; }
function text(n) { return Array.from({ length: n }, () => vocab[Math.floor(rnd() * vocab.length)]).join(" "); }
if (args["write-docs"]) {
  // the same kind of documents, one JSON string per line, for `rerank rank` (engine alone)
  const n = Number(args.count ?? 512);
  seed = 777;
  fs.writeFileSync(args["write-docs"], Array.from({ length: n }, () => JSON.stringify(text(WORDS))).join("\n") + "\n");
  process.exit(0);
}
const BODIES = Array.from({ length: 16 }, (_, k) => JSON.stringify({
  model: "load", query: `how do I reset the password of account ${k}`, top_n: 5,
  documents: Array.from({ length: NDOCS }, () => text(WORDS)),
}));
if (args["write-pairs"] || args["write-bodies"]) {
  // exactly what a run with the same --docs/--doc-words sends: the request bodies, one per line, and
  // the (query, document) pairs they hold as `rerank tokenize` input, so `rerank bench` can time the
  // engine on the very pairs the server scores
  if (args["write-bodies"]) fs.writeFileSync(args["write-bodies"], BODIES.join("\n") + "\n");
  if (args["write-pairs"]) {
    const lines = BODIES.flatMap((b) => { const j = JSON.parse(b); return j.documents.map((d) => JSON.stringify({ text: j.query, text_pair: d })); });
    fs.writeFileSync(args["write-pairs"], lines.join("\n") + "\n");
  }
  process.exit(0);
}
if (!URL_) { console.error("--url is required"); process.exit(2); }

function rss() {
  if (!PID) return null;
  try {
    const m = fs.readFileSync(`/proc/${PID}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
    return m ? Number(m[1]) * 1024 : null;
  } catch { return null; }
}

const lat = [];
const codes = {};
const errors = [];
let done = 0, stop = false, termSent = false;
let inflight = 0, inflightAtTerm = 0, lostAfterTerm = 0, answeredAfterTerm = 0;
const t0 = performance.now();
const rssSamples = [];
const sampler = setInterval(() => { const r = rss(); if (r) rssSamples.push([(performance.now() - t0) / 1e3, r]); }, 500);

async function client(id) {
  let k = id;
  while (!stop) {
    const body = BODIES[k++ % BODIES.length];
    const start = performance.now();
    const wasBeforeTerm = !termSent;
    inflight++;
    try {
      const res = await fetch(URL_ + "/v1/rerank", { method: "POST", headers: { "content-type": "application/json" }, body });
      const txt = await res.text();
      const el = performance.now() - start;
      codes[res.status] = (codes[res.status] ?? 0) + 1;
      if (res.status === 200) {
        const j = JSON.parse(txt);
        if (!Array.isArray(j.results) || j.results.length !== Math.min(5, NDOCS)) errors.push(`bad body: ${txt.slice(0, 100)}`);
        const end = (performance.now() - t0) / 1e3;
        if (end >= WARMUP && end <= DURATION) lat.push(el); // completions inside the measured window
      } else if (res.status === 429) {
        await new Promise((r) => setTimeout(r, 50)); // deliberate backpressure: back off a little
      } else {
        errors.push(`HTTP ${res.status}: ${txt.slice(0, 200)}`);
      }
      if (termSent && wasBeforeTerm) answeredAfterTerm++;
    } catch (e) {
      if (termSent && !wasBeforeTerm) { /* started after SIGTERM: refused connections are expected */ }
      else if (termSent) { lostAfterTerm++; errors.push(`lost in drain: ${e.cause?.code ?? e.message}`); }
      else errors.push(`fetch failed: ${e.cause?.code ?? e.message}`);
    } finally {
      inflight--;
    }
    done++;
  }
}

if (TERM_AT !== null) {
  setTimeout(() => {
    inflightAtTerm = inflight;
    termSent = true;
    stop = true; // no new requests after the signal
    process.kill(PID, "SIGTERM");
  }, TERM_AT * 1000);
}
setTimeout(() => { stop = true; }, DURATION * 1000);
await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
clearInterval(sampler);
const wall = (performance.now() - t0) / 1e3;

lat.sort((a, b) => a - b);
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : NaN);
const measured = Math.max(1e-9, Math.min(wall, DURATION, termSent ? TERM_AT : Infinity) - WARMUP);
const ok = lat.length;
const rssAfterWarm = rssSamples.find(([t]) => t >= WARMUP)?.[1] ?? rssSamples[0]?.[1] ?? null;
const rssMid = rssSamples.find(([t]) => t >= DURATION / 2)?.[1] ?? null;
const rssEnd = rssSamples.length ? rssSamples[rssSamples.length - 1][1] : null;
const rssMax = rssSamples.reduce((m, [, r]) => Math.max(m, r), 0) || null;
const out = {
  clients: CLIENTS, duration_s: Number(wall.toFixed(2)), docs_per_request: NDOCS, codes,
  ok_after_warmup: ok, requests_per_s: Number((ok / measured).toFixed(2)), docs_per_s: Number(((ok * NDOCS) / measured).toFixed(1)),
  p50_ms: Number(pct(50).toFixed(1)), p90_ms: Number(pct(90).toFixed(1)), p99_ms: Number(pct(99).toFixed(1)),
  errors: errors.length, first_errors: errors.slice(0, 5),
  rss_after_warmup_mb: rssAfterWarm && Number((rssAfterWarm / 2 ** 20).toFixed(1)),
  rss_mid_mb: rssMid && Number((rssMid / 2 ** 20).toFixed(1)),
  rss_end_mb: rssEnd && Number((rssEnd / 2 ** 20).toFixed(1)), rss_max_mb: rssMax && Number((rssMax / 2 ** 20).toFixed(1)),
  sigterm: termSent, inflight_at_sigterm: inflightAtTerm, answered_after_sigterm: answeredAfterTerm, lost_in_drain: lostAfterTerm,
};
console.log(`${CLIENTS} clients, ${out.duration_s}s: ${out.requests_per_s} req/s, ${out.docs_per_s} docs/s, ` +
  `p50 ${out.p50_ms} ms, p99 ${out.p99_ms} ms, codes ${JSON.stringify(codes)}, errors ${errors.length}, ` +
  `RSS ${out.rss_after_warmup_mb} -> ${out.rss_mid_mb} -> ${out.rss_end_mb} MB (max ${out.rss_max_mb})` +
  (termSent ? `, SIGTERM with ${inflightAtTerm} in flight: ${answeredAfterTerm} answered, ${lostAfterTerm} lost` : ""));
console.log(JSON.stringify(out));
