#!/usr/bin/python3
"""export_bench_model.py -- the peers' benchmark model as a rerank model folder.

../shared/bench/xlmr_model.py builds the random-weight cross-encoder the peer benchmarks time
(jina-reranker-v2 shape, HF XLM-R parameter layout, seed 0). This writes the same weights as a Hugging
Face XLMRobertaForSequenceClassification folder (config.json + model.safetensors in F32 and BF16), so
rerank runs the very model the peers run, on the very token ids, and its fp32 logits can be checked
against the peers' torch reference (ref_scores.json of export_onnx.py).

usage: /usr/bin/python3 bench/export_bench_model.py SHARED_BENCH_DIR OUT_DIR
writes OUT_DIR/xlmr_f32/ and OUT_DIR/xlmr_bf16/
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gen_models  # noqa: E402  (safetensors writer, config.json writer)

bench_dir, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, bench_dir)
import torch  # noqa: E402
import xlmr_model as xm  # noqa: E402

model = xm.random_init(xm.CrossEncoder(), seed=0).eval()
sd = {k: v.detach() for k, v in model.state_dict().items()}

# bench layout -> Hugging Face XLM-R names
LAYER = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
         "attn_out": "attention.output.dense", "attn_ln": "attention.output.LayerNorm",
         "inter": "intermediate.dense", "out": "output.dense", "out_ln": "output.LayerNorm"}


def hf_name(k):
    if k.startswith("embeddings."):
        return "roberta." + k
    if k.startswith("layers."):
        _, i, mod, wb = k.split(".")
        return "roberta.encoder.layer.%s.%s.%s" % (i, LAYER[mod], wb)
    if k.startswith("cls_dense."):
        return "classifier.dense." + k.split(".")[1]
    if k.startswith("cls_out."):
        return "classifier.out_proj." + k.split(".")[1]
    raise KeyError(k)


shape = {"hidden_size": xm.HID, "intermediate_size": xm.FFN, "layer_norm_eps": xm.EPS,
         "max_position_embeddings": xm.MAXPOS, "num_attention_heads": xm.HEADS,
         "num_hidden_layers": xm.LAYERS, "pad_token_id": xm.PAD, "type_vocab_size": 1, "vocab_size": xm.VOCAB}
for dtype, st in (("f32", "F32"), ("bf16", "BF16")):
    folder = os.path.join(out, "xlmr_" + dtype)
    os.makedirs(folder, exist_ok=True)
    entries = []
    for k, v in sd.items():
        t = v.float().contiguous()

        def prod(t=t, st=st):
            yield gen_models.tensor_bytes(t, st)
        entries.append((hf_name(k), st, list(t.shape), prod))
    gen_models.write_safetensors(os.path.join(folder, "model.safetensors"), entries, 0)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(gen_models.hf_config("xlmr", shape, dtype))
    print("wrote", folder)
