// tok_families.js TOKENIZER_JSON RERANK_BIN CORPUS [N] -- `rerank tokenize` against the Rust Hugging Face
// tokenizers (npm @anush008/tokenizers) on one tokenizer.json, the first N corpus lines (default 2000) as
// singles without specials and consecutive lines as pairs with the post-processor's specials. Used by
// suite_families.sh for the byte-level BPE file tools/gen_models_ext.py writes in ModernBERT's layout
// (whose padding and truncation blocks both sides must ignore here). Prints "N passed, N failed".
const path = require('path');
const fs = require('fs');
const os = require('os');
const { spawnSync } = require('child_process');
const tk = require(path.join(__dirname, 'node_modules', '@anush008', 'tokenizers'));

(async () => {
  const [tokPath, bin, corpus, nArg] = process.argv.slice(2);
  const n = Number(nArg || 2000);
  const lines = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l.length).slice(0, n);
  const t = tk.Tokenizer.fromFile(tokPath);
  t.disablePadding();
  t.disableTruncation();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokfam-'));
  const runC = (inputs, noSpecial) => {
    const f = path.join(tmp, 'in.jsonl');
    fs.writeFileSync(f, inputs.map((x) => JSON.stringify(x)).join('\n') + '\n');
    const args = ['tokenize', '-m', tokPath];
    if (noSpecial) args.push('--no-special');
    const r = spawnSync(bin, args, { input: fs.readFileSync(f), maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`rerank tokenize exited ${r.status}: ${String(r.stderr).slice(0, 300)}`);
    return String(r.stdout).split('\n').filter((l) => l.length).map((l) => JSON.parse(l).ids);
  };
  let pass = 0, fail = 0;
  const compare = (name, got, want) => {
    let bad = 0, first = -1;
    for (let i = 0; i < want.length; i++) {
      if (JSON.stringify(got[i]) !== JSON.stringify(want[i])) { bad++; if (first < 0) first = i; }
    }
    if (bad === 0 && got.length === want.length) { pass++; console.log(`ok   ${name}: ${want.length} identical`); }
    else { fail++; console.log(`FAIL ${name}: ${bad} of ${want.length} differ; first ${first}: ${JSON.stringify(got[first])} vs ${JSON.stringify(want[first])}`); }
  };
  const singles = await t.encodeBatch(lines, { addSpecialTokens: false });
  compare('singles', runC(lines.map((text) => ({ text })), true), singles.map((e) => Array.from(e.getIds())));
  const pairs = [], want = [];
  for (let i = 0; i + 1 < lines.length && pairs.length < 300; i += 2) {
    pairs.push({ text: lines[i], text_pair: lines[i + 1] });
    want.push(Array.from((await t.encode(lines[i], lines[i + 1])).getIds()));
  }
  compare('pairs with specials', runC(pairs, false), want);
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`${pass} passed, ${fail} failed`);
  process.exit(fail ? 1 : 0);
})().catch((e) => { console.error(e); console.log('0 passed, 1 failed'); process.exit(1); });
