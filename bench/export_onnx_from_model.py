#!/usr/bin/python3
"""export_onnx_from_model.py SHARED_BENCH_DIR MODEL_DIR OUT_DIR -- a rerank XLM-R / jina-reranker-v2 model
folder (safetensors, F32/F16/BF16) as ONNX: loads its weights into the peers' plain-torch cross-encoder
(../shared/bench/xlmr_model.py, same shape) and writes OUT_DIR/xlmr_fp32.onnx and OUT_DIR/xlmr_int8.onnx
(ONNX Runtime dynamic int8, as ../shared/bench/export_onnx.py quantizes). bench/int8_accuracy.sh uses it
to compare int8 paths on models other than the peers' own, e.g. the full-size random model of
`tools/gen_models.py --full`."""
import json
import os
import struct
import sys

import numpy as np
import torch

bench_dir, model_dir, out = sys.argv[1:4]
sys.path.insert(0, bench_dir)
import export_onnx  # noqa: E402  (quantize_dynamic_int8)
import xlmr_model as xm  # noqa: E402


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for k, e in head.items():
            if k == "__metadata__":
                continue
            a, b = e["data_offsets"]
            f.seek(base + a)
            raw = f.read(b - a)
            if e["dtype"] == "BF16":
                v = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif e["dtype"] == "F16":
                v = np.frombuffer(raw, np.float16).astype(np.float32)
            else:
                v = np.frombuffer(raw, np.float32)
            out[k] = torch.from_numpy(v.reshape(e["shape"]).copy())
        return out


w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
model = xm.CrossEncoder().eval()
sd = {}
H = xm.HID
for k, v in w.items():
    k = k.replace("roberta.", "", 1)
    if k.startswith("embeddings."):
        sd[k] = v
    elif k.startswith("emb_ln."):
        sd["embeddings.LayerNorm." + k.split(".")[1]] = v
    elif k.startswith("classifier.dense."):
        sd["cls_dense." + k.split(".")[-1]] = v
    elif k.startswith("classifier.out_proj."):
        sd["cls_out." + k.split(".")[-1]] = v
    elif k.startswith("encoder.layers."):  # jina-reranker-v2 names
        _, _, i, *rest = k.split(".")
        name, wb = ".".join(rest[:-1]), rest[-1]
        p = "layers.%s." % i
        if name == "mixer.Wqkv":
            for j, part in enumerate(("query", "key", "value")):
                sd[p + part + "." + wb] = v[j * H:(j + 1) * H]
        else:
            sd[p + {"mixer.out_proj": "attn_out", "norm1": "attn_ln", "mlp.fc1": "inter", "mlp.fc2": "out",
                    "norm2": "out_ln"}[name] + "." + wb] = v
    elif k.startswith("encoder.layer."):  # Hugging Face XLM-R names
        _, _, i, *rest = k.split(".")
        name, wb = ".".join(rest[:-1]), rest[-1]
        sd["layers.%s.%s.%s" % (i, {"attention.self.query": "query", "attention.self.key": "key",
                                    "attention.self.value": "value", "attention.output.dense": "attn_out",
                                    "attention.output.LayerNorm": "attn_ln", "intermediate.dense": "inter",
                                    "output.dense": "out", "output.LayerNorm": "out_ln"}[name], wb)] = v
model.load_state_dict(sd, strict=True)
os.makedirs(out, exist_ok=True)
ids = torch.tensor([[0, 5, 6, 2, 2, 7, 8, 2]])
fp32 = os.path.join(out, "xlmr_fp32.onnx")
with torch.no_grad():
    torch.onnx.export(model, (ids, torch.ones_like(ids)), fp32, input_names=["input_ids", "attention_mask"],
                      output_names=["score"], dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                                            "attention_mask": {0: "batch", 1: "seq"},
                                                            "score": {0: "batch"}},
                      opset_version=17, do_constant_folding=True)
n = export_onnx.quantize_dynamic_int8(fp32, os.path.join(out, "xlmr_int8.onnx"))
print("wrote", fp32, "and", n, "quantized MatMuls in", os.path.join(out, "xlmr_int8.onnx"))
