#!/usr/bin/python3
"""side_by_side_table.py OUT -- the markdown table of bench/side_by_side.sh: pairs/s of every peer and
rerank configuration on W1 and W2, the acceptance ratios of issue 5, and the bf16 efficiency against
the oneDNN GEMM ceiling measured in the same run."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl")) if l.strip().startswith("{")]


def label(r):
    if r["peer"].startswith("rerank"):
        return "rerank %s (whole process)" % r["precision"]
    extra = []
    if r.get("order") == "sorted":
        extra.append("length-sorted")
    if r.get("batch"):
        extra.append("batch %s" % r["batch"])
    if "fastpath" in r["peer"]:
        extra.append("fastpath")
    if r.get("openblas_coretype") not in (None, "auto", "SkylakeX"):
        extra.append("OpenBLAS %s" % r["openblas_coretype"])
    name = "PyTorch" if r["peer"].startswith("torch") else "ONNX Runtime"
    return "%s %s (%s)" % (name, r["precision"], ", ".join(extra))


for r in rows:  # bench_ort.js names the model file, not the precision
    if "precision" not in r:
        r["precision"] = "int8" if "int8" in r.get("model", "") else "fp32"
table = {}
for r in rows:
    table.setdefault(label(r), {})[r["workload"]] = r
bench = {}
for f in glob.glob(os.path.join(out, "rerank_bench_*_*.txt")):
    m = re.search(r"rerank_bench_(\w+)_(w\d)\.txt", f)
    t = open(f).read()
    p = re.search(r"pairs/s ([\d.]+) +tokens/s ([\d.]+) .* ([\d.]+) GFLOP/s", t)
    k = re.search(r"kernels (\w+)", t)
    if m and p:
        bench.setdefault(m.group(1), {})[m.group(2)] = (float(p.group(1)), float(p.group(2)), float(p.group(3)),
                                                        k.group(1) if k else "?")

machine = open(os.path.join(out, "machine.txt")).read().strip().lstrip("= ")
print("Machine: %s; 2 threads; one run of `bench/side_by_side.sh`.\n" % machine.replace("machine: ", ""))
print("| configuration | W1 pairs/s | W2 pairs/s |")
print("|---|---|---|")


def pps(r, w):
    return r[w]["pairs_per_s"] if w in r else None


for name in sorted(table, key=lambda n: (not n.startswith("rerank"), n)):
    r = table[name]
    print("| %s | %s | %s |" % (name, *["%.2f" % pps(r, w) if pps(r, w) else "-" for w in ("w1", "w2")]))
for prec in ("fp32", "bf16", "int8", "auto"):
    if prec in bench:
        b = bench[prec]
        cells = ["%.2f (%.0f tok/s, %.0f GFLOP/s)" % b[w][:3] if w in b else "-" for w in ("w1", "w2")]
        kern = next(iter(b.values()))[3]
        print("| rerank %s forward only (`rerank bench`, kernels %s) | %s | %s |" % (prec, kern, *cells))


def get(label_prefix, w):
    for name, r in table.items():
        if name.startswith(label_prefix) and w in r:
            return r[w]["pairs_per_s"]
    return None


ratios = [("rerank bf16 / ONNX Runtime fp32 (>= 3)", "rerank bf16", "ONNX Runtime fp32 (batch 16)"),
          ("rerank bf16 / PyTorch bf16 (>= 2)", "rerank bf16", "PyTorch bf16 (batch 16)"),
          ("rerank int8 / ONNX Runtime int8 (>= 2)", "rerank int8", "ONNX Runtime int8 (batch 16)")]
print("\n| ratio (W1) | value |\n|---|---|")
for text, a, b in ratios:
    x, y = get(a, "w1"), get(b, "w1")
    print("| %s | %s |" % (text, "%.2f" % (x / y) if x and y else "-"))

gemm = [float(m.group(1)) for m in re.finditer(r"onednn bf16 M=\d+ K=\d+ N=\d+ .*median ([\d.]+)", open(os.path.join(out, "gemm.txt")).read())]
if gemm and "bf16" in bench and "w1" in bench["bf16"]:
    ceil = statistics.median(gemm)
    eff = bench["bf16"]["w1"][2] / ceil
    print("| rerank bf16 forward GFLOP/s / oneDNN bf16 GEMM median (%.0f GFLOP/s) (>= 0.70) | %.2f |" % (ceil, eff))
w1, w2 = bench.get("bf16", {}).get("w1"), bench.get("bf16", {}).get("w2")
if w1 and w2:
    print("| rerank bf16 tokens/s W2 / W1 (within 15%%) | %.2f |" % (w2[1] / w1[1]))
