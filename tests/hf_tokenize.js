// hf_tokenize.js TOKENIZER_JSON -- reference token ids from the Rust Hugging Face tokenizers (npm
// @anush008/tokenizers): reads a JSON array of strings on stdin, writes a JSON array of id arrays
// (no special tokens, no truncation) on stdout. Used by tests that need ids independent of rerank.
const tk = require('@anush008/tokenizers');
const fs = require('fs');

(async () => {
  const t = tk.Tokenizer.fromFile(process.argv[2]);
  t.disablePadding();
  t.disableTruncation();
  const texts = JSON.parse(fs.readFileSync(0, 'utf8'));
  const encs = texts.length ? await t.encodeBatch(texts, { addSpecialTokens: false }) : [];
  process.stdout.write(JSON.stringify(encs.map((e) => Array.from(e.getIds()))));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
