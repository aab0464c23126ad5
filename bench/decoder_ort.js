#!/usr/bin/env node
// decoder_ort.js -- ONNX Runtime (npm onnxruntime-node, CPU EP) on workload Q1 of the decoder rerankers: the fp32
// Qwen3 scorer exported by bench/decoder_peers.py, one batch of the 20 equal-length prompts in ids.json.
// Usage: node bench/decoder_ort.js MODEL.onnx IDS.json [--threads 2] [--reps 1] [--check check.json]
// --check: first scores the export's small check batch and prints ORT's raw scores next to PyTorch fp32's.
// Prints one JSON line: session creation (model load) and run times inside the process; the whole process is
// timed by bench/decoder_side_by_side.sh. Resolves onnxruntime-node from build/bench/node_modules.
'use strict';
const fs = require('fs');
const path = require('path');
const base = path.join(__dirname, '..', 'build', 'bench', 'node_modules', 'onnxruntime-node');
const ort = require(fs.existsSync(base) ? base : 'onnxruntime-node');
const version = require(path.join(fs.existsSync(base) ? base : 'onnxruntime-node', 'package.json')).version;

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : def;
}

(async () => {
  const ids = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
  const threads = parseInt(arg('threads', '2'));
  const reps = parseInt(arg('reps', '1'));
  const B = ids.length, T = ids[0].length;
  const data = new BigInt64Array(B * T);
  ids.forEach((s, i) => s.forEach((x, j) => { data[i * T + j] = BigInt(x); }));
  const t0 = process.hrtime.bigint();
  const sess = await ort.InferenceSession.create(process.argv[2], {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const load = Number(process.hrtime.bigint() - t0) / 1e9;
  if (arg('check')) {
    const ck = JSON.parse(fs.readFileSync(arg('check'), 'utf8'));
    const b = ck.ids.length, t = ck.ids[0].length, d = new BigInt64Array(b * t);
    ck.ids.forEach((s, i) => s.forEach((x, j) => { d[i * t + j] = BigInt(x); }));
    const o = await sess.run({ input_ids: new ort.Tensor('int64', d, [b, t]) });
    console.error('check: ort', Array.from(o.raw.data).map((x) => x.toFixed(5)).join(' '),
      '| torch fp32', ck.raw.map((x) => x.toFixed(5)).join(' '));
  }
  const runs = [];
  let raw;
  for (let r = 0; r < reps; r++) {
    const t = process.hrtime.bigint();
    const out = await sess.run({ input_ids: new ort.Tensor('int64', data, [B, T]) });
    runs.push(Number(process.hrtime.bigint() - t) / 1e9);
    raw = out.raw.data;
  }
  console.log(JSON.stringify({ peer: 'onnxruntime', precision: 'fp32', ort: version, threads, docs: B, len: T,
    load_s: +load.toFixed(3), run_s: runs.map((x) => +x.toFixed(3)), raw0: raw ? raw[0] : null }));
})().catch((e) => { console.error(e); process.exit(1); });
