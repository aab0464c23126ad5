// deploy_check.mjs -- checks for tests/suite_deploy.sh against a running `rerank serve`:
//   openapi PORT          the server's /openapi.json is a valid OpenAPI 3.1 document
//                         (@seriousme/openapi-schema-validator), and real requests and answers of
//                         every route, errors included, validate against it (ajv, JSON Schema 2020-12)
//   browser PORT PNG      /docs in headless Chromium (Debian's, driven by playwright-core): the route
//                         list is drawn from the OpenAPI document, a screenshot is written to PNG, and
//                         a query typed into the form is ranked; prints the ranking read back from
//                         the page as JSON {"indices":[...],"scores":[...]} on stdout
// Each check prints "ok - ..." or "not ok - ..."; the exit status is the number of failures.
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";

const [mode, port, png] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
let failures = 0;
const ok = (c, what) => {
  console.log(`${c ? "ok" : "not ok"} - ${what}`);
  if (!c) failures++;
};

async function call(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

async function openapi() {
  const doc = JSON.parse((await call("GET", "/openapi.json")).text);
  const v = new Validator();
  const r = await v.validate(doc);
  ok(r.valid, "openapi.json is a valid OpenAPI " + doc.openapi + " document" + (r.valid ? "" : ": " + JSON.stringify(r.errors).slice(0, 400)));

  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(doc, "rerank:openapi");
  const ptr = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");
  const schemaAt = (pointer) => ajv.compile({ $ref: "rerank:openapi#" + pointer });

  // [method, path, request body or undefined, extra headers]
  const docs = ["Paris is the capital of France.", { text: "Berlin is in Germany.", title: "t" }, "cats"];
  const cases = [
    ["POST", "/v1/rerank", { model: "m", query: "capital of France", documents: docs, top_n: 2 }],
    ["POST", "/v1/rerank", { query: { text: "capital" }, documents: ["a", "b"], top_n: null, return_documents: false }],
    ["POST", "/v1/reranking", { query: "q", documents: ["a"] }],
    ["POST", "/reranking", { query: "q", documents: ["a"], raw_scores: true }],
    ["POST", "/v2/rerank", { model: "m", query: "q", documents: ["a", "b"], top_n: 1, max_tokens_per_doc: 512 }],
    ["POST", "/rerank", { query: "q", texts: ["a", "b"], return_text: true, truncate: true, truncation_direction: "Left" }],
    ["POST", "/rerank", { query: "q", documents: ["a", "b"] }],
    ["POST", "/v1/rerank", "{not json"],
    ["POST", "/v1/rerank", { query: "q" }],
    ["POST", "/v1/rerank", { query: "q", documents: "not an array" }],
    ["POST", "/v1/rerank", { query: "q", documents: Array(2000).fill("x") }],
    ["GET", "/v1/rerank"],
    ["GET", "/nope"],
    ["GET", "/health"],
    ["GET", "/ready"],
    ["GET", "/info"],
    ["GET", "/v1/models"],
    ["GET", "/models"],
    ["GET", "/metrics"],
    ["GET", "/openapi.json"],
    ["GET", "/docs"],
    ["POST", "/health", {}],
  ];
  for (const [method, path, body, headers] of cases) {
    const id = `check-${method}-${path}`.replace(/[^A-Za-z0-9/_-]/g, "_");
    const res = await call(method, path, body, { "X-Request-Id": id, ...(headers || {}) });
    const what = `${method} ${path} ${typeof body === "string" ? body : JSON.stringify(body ?? "").slice(0, 60)} -> ${res.status}`;
    ok(res.headers.get("x-request-id") === id, `${what}: X-Request-Id echoed`);
    const op = doc.paths[path]?.[method.toLowerCase()];
    if (!op) {
      // a route or method the document does not list: the answer must still be a documented Error
      ok(res.status === 404 || res.status === 405, `${what}: undocumented route/method answered 404/405`);
      const check = schemaAt("/components/schemas/Error");
      ok(check(JSON.parse(res.text)), `${what}: body is an Error`);
      continue;
    }
    if (body !== undefined && typeof body !== "string" && res.status === 200) {
      const rq = schemaAt(`/paths/${ptr(path)}/${method.toLowerCase()}/requestBody/content/application~1json/schema`);
      ok(rq(body), `${what}: request validates` + (rq.errors ? " " + JSON.stringify(rq.errors).slice(0, 300) : ""));
    }
    const resp = op.responses[String(res.status)];
    ok(!!resp, `${what}: status ${res.status} is documented for this route`);
    if (!resp) continue;
    const ctype = (res.headers.get("content-type") || "").split(";")[0];
    const content = resp.content && resp.content[ctype];
    ok(!!content, `${what}: content type ${ctype} is documented`);
    if (!content) continue;
    if (ctype !== "application/json") continue;
    const check = schemaAt(`/paths/${ptr(path)}/${method.toLowerCase()}/responses/${res.status}/content/${ptr(ctype)}/schema`);
    const valid = check(JSON.parse(res.text));
    ok(valid, `${what}: answer validates` + (valid ? "" : " " + JSON.stringify(check.errors).slice(0, 400)));
  }
  // the schema is not vacuous: a wrong answer fails it
  const rr = schemaAt(`/components/schemas/RerankResponse`);
  ok(!rr({ id: "x", model: "m", usage: { total_tokens: 1, prompt_tokens: 1 }, results: [{ index: "0", relevance_score: 1 }] }),
    "a result with a string index does not validate");
  const er = schemaAt(`/components/schemas/Error`);
  ok(!er({ detail: "x" }), "an error body without message/error/error_type/code does not validate");
}

async function browser() {
  const { chromium } = await import("playwright-core");
  const exe = process.env.CHROMIUM || "/usr/bin/chromium";
  const b = await chromium.launch({ executablePath: exe, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  try {
    const page = await b.newPage({ viewport: { width: 1100, height: 1400 } });
    const requests = [];
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(base + "/docs");
    await page.waitForSelector("#routes tr.route");
    const paths = await page.$$eval("#routes tr.route td.path", (tds) => tds.map((t) => t.textContent));
    const doc = JSON.parse((await call("GET", "/openapi.json")).text);
    const want = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map(() => p));
    ok(JSON.stringify(paths) === JSON.stringify(want), `the page lists the ${want.length} routes of /openapi.json`);
    await page.fill("#query", process.env.DOCS_QUERY);
    await page.fill("#documents", process.env.DOCS_DOCUMENTS);
    await page.click("#rank");
    await page.waitForSelector("#results tr.result");
    const rows = await page.$$eval("#results tr.result", (trs) =>
      trs.map((tr) => ({ index: Number(tr.dataset.index), score: Number(tr.querySelector(".score").dataset.score),
                         doc: tr.querySelector(".doc").textContent })));
    const status = await page.textContent("#status");
    ok(/results from/.test(status), `status line: ${status}`);
    await page.screenshot({ path: png, fullPage: true });
    ok(requests.every((u) => u.startsWith(base)), `the page fetched only from the server (${requests.length} requests)`);
    console.error(JSON.stringify(rows));
    process.stdout.write(JSON.stringify({ indices: rows.map((r) => r.index), scores: rows.map((r) => r.score) }) + "\n");
  } finally {
    await b.close();
  }
}

try {
  if (mode === "openapi") await openapi();
  else if (mode === "browser") await browser();
  else ok(false, `unknown mode ${mode}`);
} catch (e) {
  ok(false, `${mode}: ${e.stack || e}`);
}
process.exit(failures);
