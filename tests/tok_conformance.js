// tok_conformance.js -- compares `rerank tokenize` with the Rust Hugging Face tokenizers (npm
// @anush008/tokenizers, an N-API build of the `tokenizers` crate) on every fixture tokenizer.json,
// over the multilingual corpus (single lines; pairs of consecutive lines truncated longest_first at
// 64 and 512) and over the golden files of ../shared/fixtures/golden and the Qwen3 fixture's
// reference_ids.jsonl.
//
// usage: node tests/tok_conformance.js SHARED RERANK_BIN [--quick] [--shard I/N]
// RR_TOK_ONLY=substring limits the tokenizer x mode runs to tokenizers whose name contains it.
// Prints one line per tokenizer x mode and "N passed, N failed, N skipped". Exit 1 on failure.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');
const { spawn, spawnSync } = require('child_process');

const [shared, bin] = process.argv.slice(2);
const quick = process.argv.includes('--quick');
// --shard I/N: only the tokenizers whose index is I modulo N, and the golden files only in shard 0,
// so that N processes share the corpus runs (each is bound by its one JavaScript thread)
const shardAt = process.argv.indexOf('--shard');
const shardArg = shardAt < 0 ? '0/1' : process.argv[shardAt + 1] || '';
const [shard, shards] = shardArg.split('/').map(Number);
if (!(shards >= 1 && shard >= 0 && shard < shards)) {
  console.log(`FAIL: bad --shard ${shardArg}`);
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
let tk;
try {
  tk = require(path.join(__dirname, 'node_modules', '@anush008', 'tokenizers'));
} catch (e) {
  console.log('SKIP: @anush008/tokenizers is not installed (scripts/install-deps.sh)');
  console.log('0 passed, 0 failed, 1 skipped');
  process.exit(0);
}
const F = path.join(shared, 'fixtures');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rr-tokconf-'));
let passed = 0, failed = 0, skipped = 0;

const toks = [
  ['xlmr_pruned32k', 'xlmr_pruned32k/tokenizer.json'],
  ['xlmr_pruned32k-legacy', 'xlmr_pruned32k/tokenizer.legacy.json'],
  ['multi_unigram_8k', 'multi_unigram_8k/tokenizer.json'],
  ['multi_unigram_8k-legacy', 'multi_unigram_8k/tokenizer.legacy.json'],
  ['t5-small', 't5-small/tokenizer.json'],
  ['bert-base-uncased', 'bert-base-uncased/tokenizer.json'],
  ['qwen3', 'qwen3/tokenizer.json'],
];

// Runs the C side on inputs [{text, text_pair}] and resolves to [{ids, type_ids}] (or rejects).
// Asynchronous, so that the C side runs on one core while the reference (single-threaded for the
// most part) computes on the other: a corpus run takes the larger of the two times, not the sum.
function runC(tokPath, inputs, opts) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, cArgs(tokPath, opts));
    const out = [], err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.stdin.on('error', () => { /* the exit status tells */ });
    child.on('error', reject);
    child.on('close', (status) => {
      try { resolve(cOutput(status, Buffer.concat(out), Buffer.concat(err))); } catch (e) { reject(e); }
    });
    child.stdin.end(cInput(inputs));
  });
}

function cArgs(tokPath, opts) {
  const args = ['tokenize', '-m', tokPath];
  if (opts.maxLength) args.push('--max-length', String(opts.maxLength));
  if (opts.noSpecial) args.push('--no-special');
  return args;
}

function cInput(inputs) {
  return inputs.map((x) => JSON.stringify(x)).join('\n') + '\n';
}

function cOutput(status, stdout, stderr) {
  if (status !== 0) throw new Error(`rerank tokenize exited ${status}: ${String(stderr).slice(0, 500)}`);
  return String(stdout).split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
}

// Reference encodings: singles through encodeBatch; pairs through encode(a, b) one by one (the
// crate's encodeBatch takes only strings, and its postProcess() truncates pairs differently from
// encode() when both sides exceed the limit, so it is no shortcut). Pairs are slow through N-API
// (about 12 s per 55k), so results are cached under $RR_BUILD/tokref, keyed by the tokenizer
// file, the options, the inputs and the package version.
const crypto = require('crypto');
const pkgVersion = require(path.join(__dirname, 'node_modules', '@anush008', 'tokenizers', 'package.json')).version;
const cacheDir = path.join(process.env.RR_BUILD || 'build', 'tokref');

async function computeRef(tokPath, inputs, opts) {
  const t = tk.Tokenizer.fromFile(tokPath);
  t.disablePadding();
  if (opts.maxLength) t.setTruncation(opts.maxLength, { strategy: 'LongestFirst' });
  else t.disableTruncation();
  const out = new Array(inputs.length);
  const o = { addSpecialTokens: !opts.noSpecial };
  const singles = [];
  const C = 512;
  for (let i = 0; i < inputs.length; i += C) {
    const ps = [];
    for (let k = i; k < Math.min(i + C, inputs.length); k++) {
      if (inputs[k].text_pair != null) ps.push(t.encode(inputs[k].text, inputs[k].text_pair, o).then((e) => (out[k] = { ids: e.getIds(), type_ids: e.getTypeIds() })));
      else singles.push(k);
    }
    await Promise.all(ps);
  }
  const B = 4096;
  for (let k = 0; k < singles.length; k += B) {
    const idx = singles.slice(k, k + B);
    const encs = await t.encodeBatch(idx.map((i) => inputs[i].text), o);
    encs.forEach((e, j) => (out[idx[j]] = { ids: e.getIds(), type_ids: e.getTypeIds() }));
  }
  return out;
}

async function runRef(tokPath, inputs, opts) {
  const h = crypto.createHash('sha256');
  h.update(fs.readFileSync(tokPath));
  h.update(JSON.stringify(opts) + pkgVersion);
  h.update(JSON.stringify(inputs));
  const file = path.join(cacheDir, h.digest('hex').slice(0, 32) + '.json');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) { /* not cached yet */ }
  const out = await computeRef(tokPath, inputs, opts);
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(file + '.tmp', JSON.stringify(out));
    fs.renameSync(file + '.tmp', file);
  } catch (e) { /* a read-only build folder only costs time */ }
  return out;
}

function same(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// Compares got (C) with want (expected ids, and type ids when given).
function report(name, inputs, got, want) {
  let bad = 0;
  const shown = [];
  if (got.length !== want.length) {
    console.log(`FAIL ${name}: ${got.length} outputs for ${want.length} inputs`);
    failed++;
    return;
  }
  for (let i = 0; i < want.length; i++) {
    const ok = same(got[i].ids, want[i].ids) && (!want[i].type_ids || same(got[i].type_ids, want[i].type_ids));
    if (!ok) {
      bad++;
      if (shown.length < 3) shown.push(i);
    }
  }
  if (bad) {
    failed++;
    console.log(`FAIL ${name}: ${bad}/${want.length} differ`);
    for (const i of shown) {
      console.log(`  input ${i}: ${JSON.stringify(inputs[i]).slice(0, 300)}`);
      console.log(`    want ${JSON.stringify(want[i].ids).slice(0, 300)} types ${JSON.stringify(want[i].type_ids || null).slice(0, 100)}`);
      console.log(`    got  ${JSON.stringify(got[i].ids).slice(0, 300)} types ${JSON.stringify(got[i].type_ids).slice(0, 100)}`);
    }
  } else {
    passed++;
    console.log(`ok   ${name}: ${want.length} identical`);
  }
}

// A byte-level BPE tokenizer (RoBERTa layout) trained by the reference on the first 6000 corpus
// lines: there is no BPE fixture in ../shared.
function trainBpe() {
  const dir = fs.mkdtempSync(path.join(tmp, 'bpe-'));
  const lines = fs.readFileSync(path.join(F, 'corpus', 'multilingual_corpus.txt'), 'utf8').split('\n').slice(0, 6000);
  fs.writeFileSync(path.join(dir, 'train.txt'), lines.join('\n') + '\n');
  const t = new tk.Tokenizer(tk.BPE.empty());
  t.setPreTokenizer(tk.byteLevelPreTokenizer(true, true));
  t.setPostProcessor(tk.robertaProcessing(['</s>', 2], ['<s>', 0]));
  t.train([path.join(dir, 'train.txt')]);
  t.save(path.join(dir, 'tokenizer.json'), false);
  return path.join(dir, 'tokenizer.json');
}

async function main() {
  let lines = fs.readFileSync(path.join(F, 'corpus', 'multilingual_corpus.txt'), 'utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (quick) lines = lines.filter((_, i) => i % 20 === 0);
  const singles = lines.map((l) => ({ text: l }));
  const pairs = [];
  if (lines.length % 2) lines.pop();
  for (let i = 0; i + 1 < lines.length; i += 2) pairs.push({ text: lines[i], text_pair: lines[i + 1] });
  // Hand-written edge strings: special tokens in the text, whitespace runs, controls, combining
  // marks, ZWJ emoji, U+2581 itself, fullwidth forms, a lone surrogate, long words.
  const edge = ['', ' ', '   ', '\t\n', 'a <mask> b', '<s>hello</s> world', '  leading spaces', '<mask>x', 'hello<mask>',
    'x </s> y z', ' <s> a', '<pad><unk>[CLS] [SEP][MASK]', 'trailing   ', 'a  b   c', '\u2581\u2581x \u2581', 'e\u0301\u0302\u0323 x',
    '\u{1F468}\u200D\u{1F469}\u200D\u{1F467} \u{1F1E9}\u{1F1EA}', '\u0000\u0001\u007f\u0085\u00a0x', 'ＦＵＬＬ　ｗｉｄｔｈ ① ﬁ ㍿',
    '\ud800 lone', '....', '-------', 'x'.repeat(300), 'Über naïve café İstanbul ΣΑΣ', '東京は日本の首都です。', 'क्षत्रिय', 'ไทย ภาษา',
    "don't I'll we've", '1,234.56 7e10', '\r\n\r\n', '\u200b\u200c\u200d\ufeff',
    // Qwen (Split regex + byte-level BPE): contractions in any case, one digit per piece, whitespace
    // runs before words and line ends, added tokens glued to text, the long s folding to 's'.
    "IT'S it'S we'RE 'll 'Ll x'ſ", '12345 ١٢٣ ３４５ ⅻ', 'a \t\r\n \r\n\r\n  x\n\n\n', '   x   \u3000y\u00a0 z \u180e\u200a',
    '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n', 'x<|endoftext|>y <tool_call> </tool_call>z',
    '<|im_start|><|im_start|> <|im_end|>x<|fim_pad|>', '<|im_start', '<think><think>\u4f60\u597d</think>', '?!?!... ---\n\n',
    'naïve café\u0301 e\u0301 A\u030a \u1100\u1161\u11a8', '\u{1F600}\u{1F44D}\u{1F3FD} \u{1F469}\u200d\u{1F4BB}!',
    '\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd', ' '.repeat(40) + 'x' + '\n'.repeat(20),
    'ab'.repeat(200), '\u4e00'.repeat(150), ' <|im_start|> x  <|im_end|>  y', 'Café Cafe\u0301 <think>x</think> <tool_call>x<tool_call>'];
  const edgeIn = edge.map((t) => ({ text: t })).concat(edge.map((t, i) => ({ text: t, text_pair: edge[(i + 7) % edge.length] })));
  const modes = [
    ['edge', edgeIn, {}],
    ['edge@16', edgeIn, { maxLength: 16 }],
    ['single', singles, {}],
    ['pair@64', pairs, { maxLength: 64 }],
    ['pair@512', pairs, { maxLength: 512 }],
  ];
  // Variants of the fixtures for options no fixture uses: Metaspace prepend_scheme "first" and
  // "never", a cased BERT normalizer (no lowercase, accents kept).
  {
    const dir = fs.mkdtempSync(path.join(tmp, 'var-'));
    const x = JSON.parse(fs.readFileSync(path.join(F, 'tokenizers', 'xlmr_pruned32k', 'tokenizer.json'), 'utf8'));
    for (const scheme of ['first', 'never']) {
      x.pre_tokenizer.prepend_scheme = scheme;
      const p = path.join(dir, `xlmr_${scheme}.json`);
      fs.writeFileSync(p, JSON.stringify(x));
      toks.push([`xlmr_pruned32k prepend_scheme=${scheme}`, p]);
    }
    const b = JSON.parse(fs.readFileSync(path.join(F, 'tokenizers', 'bert-base-uncased', 'tokenizer.json'), 'utf8'));
    b.normalizer.lowercase = false;
    b.normalizer.strip_accents = false;
    const p = path.join(dir, 'bert_cased.json');
    fs.writeFileSync(p, JSON.stringify(b));
    toks.push(['bert-base-uncased cased-normalizer', p]);
    // Qwen3 with the added-token flags its own file leaves off: lstrip, rstrip, single_word,
    // normalized (matched against the NFC form of its content), special=false on a control token,
    // and an added token that is not in the vocabulary. Edge strings only.
    const q = JSON.parse(fs.readFileSync(path.join(F, 'tokenizers', 'qwen3', 'tokenizer.json'), 'utf8'));
    const flag = (content, f) => Object.assign(q.added_tokens.find((t) => t.content === content), f);
    flag('<|im_start|>', { lstrip: true });
    flag('<|im_end|>', { rstrip: true, special: false });
    flag('<think>', { normalized: true });
    flag('<tool_call>', { single_word: true });
    q.added_tokens.push({ id: 151669, content: 'Cafe\u0301', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
    const pq = path.join(dir, 'qwen3_flags.json');
    fs.writeFileSync(pq, JSON.stringify(q));
    toks.push(['qwen3 added-token-flags', pq, 'edge']);
    // The same vocabulary behind other Split pre-tokenizers (every behavior, invert, a String
    // pattern, empty matches, lookaround) and Replace normalizers outside the subset matcher (not
    // one that matches empty strings: the reference panics on those at the end of the text).
    const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
    const split = (pattern, behavior, invert) => ({ type: 'Sequence', pretokenizers: [{ type: 'Split', pattern, behavior, invert }, bl] });
    const variants = [
      ['split \\s+ MergedWithNext', { pre_tokenizer: split({ Regex: '\\s+' }, 'MergedWithNext', false) }],
      ['split \\p{L}+ MergedWithPrevious inverted', { pre_tokenizer: split({ Regex: '\\p{L}+' }, 'MergedWithPrevious', true) }],
      ['split " " Contiguous', { pre_tokenizer: split({ String: ' ' }, 'Contiguous', false) }],
      ['split x*|\\d Removed (empty matches)', { pre_tokenizer: split({ Regex: 'x*|\\d' }, 'Removed', false) }],
      ['split lookaround Isolated', { pre_tokenizer: split({ Regex: '(?<=\\d)(?=\\D)|\\s' }, 'Isolated', false) }],
      ['replace full regexes', { normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '(?i)é|\\s{2,}' }, content: '_' }, { type: 'Replace', pattern: { Regex: 'a+(?=b)' }, content: '-' },
        { type: 'Replace', pattern: { Regex: '\\w+\\d' }, content: '#' }] } }],
    ];
    for (const [vname, patch] of variants) {
      const v = JSON.parse(JSON.stringify(q));
      v.added_tokens.pop();
      Object.assign(v, patch);
      const pv = path.join(dir, `qwen3_${toks.length}.json`);
      fs.writeFileSync(pv, JSON.stringify(v));
      toks.push([`qwen3 ${vname}`, pv, 'edge']);
    }
  }
  try {
    if (toks.length % shards === shard) toks.push(['bpe-bytelevel (trained)', trainBpe()]);
  } catch (e) {
    failed++;
    console.log(`FAIL training the BPE tokenizer: ${e.message}`);
  }
  for (const [ti, [tname, rel, only]] of toks.entries()) {
    if (process.env.RR_TOK_ONLY && !tname.includes(process.env.RR_TOK_ONLY)) continue;
    if (ti % shards !== shard) continue;
    const p = path.isAbsolute(rel) ? rel : path.join(F, 'tokenizers', rel);
    for (const [mname, inputs, opts] of modes) {
      if (only && !mname.startsWith(only)) continue;
      const name = `${tname} ${mname}`;
      try {
        const [got, want] = await Promise.all([runC(p, inputs, opts), runRef(p, inputs, opts)]);
        report(name, inputs, got, want);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e.message}`);
      }
    }
  }
  if (shard !== 0) return finish();
  // Golden files: hf_ids (no specials) for both layouts.
  const G = path.join(F, 'golden');
  for (const [file, dir] of [['xlmr_pruned32k_single_ref.jsonl', 'xlmr_pruned32k'], ['multi_unigram_8k_single_ref.jsonl', 'multi_unigram_8k']]) {
    const recs = fs.readFileSync(path.join(G, file), 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
    const inputs = recs.map((r) => ({ text: r.text }));
    for (const layout of ['tokenizer.json', 'tokenizer.legacy.json']) {
      const name = `golden ${file} ${layout}`;
      try {
        report(name, inputs, await runC(path.join(F, 'tokenizers', dir, layout), inputs, { noSpecial: true }), recs.map((r) => ({ ids: r.hf_ids })));
      } catch (e) { failed++; console.log(`FAIL ${name}: ${e.message}`); }
    }
  }
  {
    const recs = fs.readFileSync(path.join(G, 'xlmr_pruned32k_pairs_xquad.jsonl'), 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
    const inputs = recs.map((r) => ({ text: r.query, text_pair: r.document }));
    for (const layout of ['tokenizer.json', 'tokenizer.legacy.json']) {
      const p = path.join(F, 'tokenizers', 'xlmr_pruned32k', layout);
      try {
        report(`golden xquad pairs ${layout}`, inputs, await runC(p, inputs, {}), recs.map((r) => ({ ids: r.input_ids })));
        report(`xquad pairs@512 ${layout}`, inputs, await runC(p, inputs, { maxLength: 512 }), await runRef(p, inputs, { maxLength: 512 }));
      } catch (e) { failed++; console.log(`FAIL xquad ${layout}: ${e.message}`); }
    }
  }
  // The Qwen3 fixture's reference ids (Rust tokenizers 0.22.2, no specials added; the file's
  // post-processor adds none either way): every line must match, with and without specials.
  {
    const qdir = path.join(F, 'tokenizers', 'qwen3');
    const recs = fs.readFileSync(path.join(qdir, 'reference_ids.jsonl'), 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
    const inputs = recs.map((r) => ({ text: r.text }));
    for (const noSpecial of [true, false]) {
      const name = `qwen3 reference_ids.jsonl${noSpecial ? ' --no-special' : ''}`;
      try { report(name, inputs, await runC(qdir, inputs, { noSpecial }), recs.map((r) => ({ ids: r.ids }))); } catch (e) { failed++; console.log(`FAIL ${name}: ${e.message}`); }
    }
  }
  for (const [file, model, dir] of [['golden_bert.json', 'Xenova/bert-base-uncased', 'bert-base-uncased'], ['golden_t5.json', 'Xenova/t5-small', 't5-small']]) {
    const cases = JSON.parse(fs.readFileSync(path.join(G, 'transformers.js', file), 'utf8'))[model];
    if (!cases) { skipped++; console.log(`SKIP ${file}: no ${model}`); continue; }
    const vals = Object.values(cases);
    const inputs = vals.map((c) => (c.text_pair != null ? { text: c.text, text_pair: c.text_pair } : { text: c.text }));
    try {
      report(`golden ${file}`, inputs, await runC(path.join(F, 'tokenizers', dir, 'tokenizer.json'), inputs, {}), vals.map((c) => ({ ids: c.ids })));
    } catch (e) { failed++; console.log(`FAIL ${file}: ${e.message}`); }
  }
  // CLI error handling: a bad line is reported with its number and a non-zero exit, never a crash.
  {
    const tokPath = path.join(F, 'tokenizers', 'xlmr_pruned32k');
    const bad = ['{"text": "ok"}\n{"text": 5}\n', '{"text": "ok"}\n\n{"txt": "x"}\n', '{"text": "a"} trailing\n', 'not json\n',
      '{"text": "\\u12"}\n'];
    const wantLine = [2, 3, 1, 1, 1];
    let ok = true;
    bad.forEach((input, i) => {
      const r = spawnSync(bin, ['tokenize', '-m', tokPath], { input });
      const err = String(r.stderr);
      if (r.status === 0 || r.signal || !err.includes(`line ${wantLine[i]}:`)) {
        ok = false;
        console.log(`  bad input ${JSON.stringify(input)}: exit ${r.status} signal ${r.signal} stderr ${err.trim()}`);
      }
    });
    const r = spawnSync(bin, ['tokenize', '-m', '/nonexistent']);
    if (r.status === 0 || !String(r.stderr).includes('/nonexistent')) ok = false;
    if (ok) { passed++; console.log('ok   cli errors: bad lines name their line number and exit non-zero'); }
    else { failed++; console.log('FAIL cli errors'); }
  }
  finish();
}

function finish() {
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed ? 1 : 0);
}
main().catch((e) => { console.log(`FAIL: ${e.stack}`); console.log(`${passed} passed, ${failed + 1} failed, ${skipped} skipped`); process.exit(1); });
