#!/usr/bin/env node
// ort_scores.js MODEL.onnx PAIRS.jsonl [--threads 2] -- ONNX Runtime (npm onnxruntime-node, CPU) logits
// of token-id pairs, one pair per run (no padding), one JSON line {"score": x} per input line, in order.
// bench/int8_accuracy.sh compares them with rerank's on the same pairs. onnxruntime-node is resolved
// from the current directory's node_modules when it is not on the module path.
'use strict';
const fs = require('fs');
const path = require('path');
let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  ort = require(path.join(process.cwd(), 'node_modules', 'onnxruntime-node'));
}

(async () => {
  const [model, pairs] = process.argv.slice(2, 4);
  const ti = process.argv.indexOf('--threads');
  const threads = ti > 0 ? parseInt(process.argv[ti + 1]) : 2;
  const sess = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const out = [];
  for (const line of fs.readFileSync(pairs, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const s = JSON.parse(line).input_ids;
    const ids = BigInt64Array.from(s.map((x) => BigInt(x)));
    const mask = new BigInt64Array(s.length).fill(1n);
    const r = await sess.run({
      input_ids: new ort.Tensor('int64', ids, [1, s.length]),
      attention_mask: new ort.Tensor('int64', mask, [1, s.length]),
    });
    out.push(JSON.stringify({ score: r.score.data[0] }));
  }
  process.stdout.write(out.join('\n') + '\n');
})().catch((e) => { console.error(e); process.exit(1); });
