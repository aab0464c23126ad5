// v3_tok.js TOKENIZER_JSON -- tokenization for the jina-reranker-v3 reference (tools/gen_jina_v3.py),
// by the Rust Hugging Face tokenizers (npm @anush008/tokenizers), independent of rerank. stdin:
// {"encode": [texts], "decode": [[ids]]}; stdout: {"encode": [[ids]], "decode": [texts]}. Encoding
// adds the tokenizer's special tokens as the reference's tokenizer(...) call does (none for Qwen);
// decoding keeps special tokens, as the reference's decode(ids) does.
const tk = require('@anush008/tokenizers');
const fs = require('fs');

(async () => {
  const t = tk.Tokenizer.fromFile(process.argv[2]);
  t.disablePadding();
  t.disableTruncation();
  const req = JSON.parse(fs.readFileSync(0, 'utf8'));
  const enc = [];
  const texts = req.encode || [];
  if (texts.length) for (const e of await t.encodeBatch(texts, { addSpecialTokens: true })) enc.push(Array.from(e.getIds()));
  const dec = [];
  for (const ids of req.decode || []) dec.push(await t.decode(ids, false));
  process.stdout.write(JSON.stringify({ encode: enc, decode: dec }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
