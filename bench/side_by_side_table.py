#!/usr/bin/python3
"""side_by_side_table.py OUT -- the markdown table of bench/side_by_side.sh: pairs/s of every peer and
rerank configuration on W1, W2 (and W3 for rerank's forward pass), the acceptance ratios of issue 16,
and the bf16 / int8 efficiency against the oneDNN GEMM ceilings measured in the same run. A peer ratio
that the machine's own figures make impossible (it would need more than oneDNN's GEMM rate) is shown
with its arithmetic."""
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
print("| configuration | W1 pairs/s | W2 pairs/s | W3 pairs/s |")
print("|---|---|---|---|")


def pps(r, w):
    return r[w].get("pairs_per_s") if w in r else None


def cell(r, w):  # a peer that side_by_side.sh stopped at its time limit has no rate
    if w in r and "stopped_after_s" in r[w]:
        return "no result in %d s" % r[w]["stopped_after_s"]
    return "%.2f" % pps(r, w) if pps(r, w) else "-"


for name in sorted(table, key=lambda n: (not n.startswith("rerank"), n)):
    r = table[name]
    print("| %s | %s | %s | - |" % (name, cell(r, "w1"), cell(r, "w2")))
for prec in ("fp32", "bf16", "int8", "auto"):
    if prec in bench:
        b = bench[prec]
        cells = ["%.2f (%.0f tok/s, %.0f GFLOP/s)" % b[w][:3] if w in b else "-" for w in ("w1", "w2", "w3")]
        kern = next(iter(b.values()))[3]
        print("| rerank %s forward only (`rerank bench`, kernels %s) | %s | %s | %s |" % (prec, kern, *cells))


def get(label_prefix, w, key="pairs_per_s"):
    for name, r in table.items():
        if name.startswith(label_prefix) and w in r:
            return r[w].get(key)
    return None


gemm_text = open(os.path.join(out, "gemm.txt")).read()
# side_by_side.sh measures the ceiling before the rerank part and again after it ("# after the rerank part")
gemm_parts = gemm_text.split("# after the rerank part")


def ceiling(modes, text=gemm_text):
    """oneDNN's rate: the best per-shape median on the encoder's shapes (run_gemm.sh) for these modes,
    over both measurements of the run."""
    best = 0.0
    for m in re.finditer(r"onednn (\w+) M=\d+ K=\d+ N=\d+ .*median ([\d.]+)", text):
        if m.group(1) in modes:
            best = max(best, float(m.group(2)))
    return best


GFLOP_W1 = 45.9  # per W1 pair (xlmr_model.flops_per_pair)
ceil_modes = {"bf16": ("bf16", "bf16f32"), "int8": ("u8s8", "s8s8")}
ceil_name = {"bf16": "bf16", "int8": "int8"}
if not ceiling(ceil_modes["bf16"]) and ceiling(("f32",)):
    # a CPU without bf16 products (AVX2 only): oneDNN runs no bf16 GEMM, and bf16 data can be multiplied no
    # faster than the fp32 FMA rate, so that is the ceiling bf16 is measured against
    ceil_modes["bf16"], ceil_name["bf16"] = ("f32",), "f32 (no bf16 GEMM on this CPU)"
ceil = {prec: ceiling(modes) for prec, modes in ceil_modes.items()}
# peer labels without their closing parenthesis: "PyTorch bf16 (batch 16, OpenBLAS Haswell)" on a CPU without AVX-512
ratios = [("rerank int8 / ONNX Runtime int8 (>= 1.5)", "rerank int8", "ONNX Runtime int8 (batch 16", 1.5, "int8"),
          ("rerank bf16 / ONNX Runtime fp32 (>= 1.8)", "rerank bf16", "ONNX Runtime fp32 (batch 16", 1.8, "bf16"),
          ("rerank bf16 / PyTorch bf16 (>= 1.3)", "rerank bf16", "PyTorch bf16 (batch 16", 1.3, "bf16")]
print("\n| ratio (W1, whole process) | value |\n|---|---|")
for text, a, b, target, prec in ratios:
    x, y, stop = get(a, "w1"), get(b, "w1"), get(b, "w1", "stopped_after_s")
    cell = "%.2f" % (x / y) if x and y else "-"
    if x and stop:
        # the peer ran 3 repetitions of W1 (100 pairs) after its load and a warm-up batch: at 1 / target of
        # rerank's rate they alone would have taken 300 target / x seconds
        need_s = 300 * target / x
        cell = "no result from the peer in %d s; at 1/%.1f of rerank's %.2f pairs/s its 3 repetitions would take %.0f s (%s)" % (
            stop, target, x, need_s, "met" if need_s < stop else "not shown")
    if y and ceil[prec]:
        need = target * y * GFLOP_W1  # GFLOP/s the target asks for, before attention, LayerNorm, GELU and load
        if need > ceil[prec]:
            cell += " (impossible by arithmetic: %.1f x %.2f pairs/s x %.1f GFLOP = %.0f GFLOP/s > oneDNN's %s GEMM rate %.0f)" % (
                target, y, GFLOP_W1, need, ceil_name[prec], ceil[prec])
    print("| %s | %s |" % (text, cell))

print("\n| efficiency and long pairs (`rerank bench`) | value |\n|---|---|")
if len(gemm_parts) > 1:
    for prec in ("bf16", "int8"):
        before, after = ceiling(ceil_modes[prec], gemm_parts[0]), ceiling(ceil_modes[prec], gemm_parts[1])
        if before and after:
            print("| oneDNN's best %s GEMM median before / after the rerank part (the larger used) | %.0f / %.0f |" % (
                ceil_name[prec], before, after))
for prec in ("bf16", "int8"):
    b1 = bench.get(prec, {}).get("w1")
    if b1 and ceil[prec]:
        print("| %s W1 forward %.0f G(FL)OP/s / oneDNN's best %s GEMM median %.0f (>= 0.80) | %.2f |" % (
            prec, b1[2], ceil_name[prec], ceil[prec], b1[2] / ceil[prec]))
kt = os.path.join(out, "kernels.txt")
if os.path.exists(kt):
    ours, dn = {}, {}
    for m in re.finditer(r"^(\S+) +int8 +(\d+) +(\d+) +(\d+) +([\d.]+)", open(kt).read(), re.M):
        (dn if m.group(1) == "onednn" else ours).setdefault(m.group(2, 3, 4), []).append(float(m.group(5)))
    # each shape's median over the rounds (side_by_side.sh runs three; one line per shape also works)
    ours = {k: statistics.median(v) for k, v in ours.items()}
    dn = {k: statistics.median(v) for k, v in dn.items()}
    if ours and dn:
        top = max(dn.values())
        worst = min(ours.values())
        print("| int8 GEMMs alone (bench_kernels, %d shapes): worst %.0f, mean %.0f GOP/s / oneDNN's best median %.0f (>= 0.85) | %.2f (mean %.2f) |" % (
            len(ours), worst, statistics.mean(ours.values()), top, worst / top, statistics.mean(ours.values()) / top))
        # each shape against oneDNN on the same shape in the same minute: the figure the drift leaves alone
        same = sorted(ours[k] / dn[k] for k in ours if k in dn)
        if same:
            print("| int8 GEMMs, each shape / oneDNN on that shape beside it (bench_kernels) | %.2f-%.2f (median %.2f) |" % (
                same[0], same[-1], statistics.median(same)))
for prec in ("bf16", "int8"):
    b = bench.get(prec, {})
    for w, lim in (("w2", 0.85), ("w3", 0.75)):
        if "w1" in b and w in b:
            print("| %s tokens/s %s / W1 (>= %.2f) | %.2f |" % (prec, w.upper(), lim, b[w][1] / b["w1"][1]))
