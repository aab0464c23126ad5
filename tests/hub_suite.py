#!/usr/bin/python3
"""hub_suite.py -- end-to-end tests of `rerank pull` against tests/hub_mock.py (run by suite_hub.sh).

Every check runs the real binary with HF_ENDPOINT pointing at the mock on 127.0.0.1 and HF_HOME in
a fresh temporary folder, then compares the cache with what huggingface_hub would have written.
Prints one line per check and "N passed, N failed, N skipped"; exits 1 on any failure.
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hub_mock import Mock, Repo, git_blob_sha1  # noqa: E402

BUILD = os.environ.get("RR_BUILD", "build")
RERANK = os.path.abspath(os.path.join(BUILD, "rerank"))
TESTDATA = os.environ.get("RR_TESTDATA", os.path.join(BUILD, "testdata"))
TOKEN = "hf_test_secret"

passed = failed = skipped = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   %s" % name)
    else:
        failed += 1
        print("FAIL %s%s" % (name, (": " + detail) if detail else ""))


def skip(name, why):
    global skipped
    skipped += 1
    print("skip %s: %s" % (name, why))


def clean_env(**kw):
    """The environment without the caller's HF_* settings (a real token must never reach the mock)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(kw)
    return env


def run(args, home, endpoint, extra_env=None, timeout=60):
    env = clean_env()
    env.update({"HF_HOME": home, "HF_ENDPOINT": endpoint})
    env.update(extra_env or {})
    p = subprocess.run([RERANK] + args, env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def listing(folder):
    """Every entry under folder: 'path' for files and folders' files, 'path -> target' for links,
    refs' contents shown as 'path = text'."""
    out = []
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            p = os.path.join(root, d)
            if os.path.islink(p):
                out.append("%s -> %s" % (os.path.relpath(p, folder), os.readlink(p)))
        for f in files:
            p = os.path.join(root, f)
            rel = os.path.relpath(p, folder)
            if os.path.islink(p):
                out.append("%s -> %s" % (rel, os.readlink(p)))
            elif rel.startswith("refs/"):
                out.append("%s = %s" % (rel, open(p).read()))
            else:
                out.append(rel)
    return sorted(out)


def expected_listing(repo, names, absent=(), ref="main"):
    out = []
    for n in names:
        e = repo.etag(n)
        out.append("blobs/%s" % e)
        out.append("snapshots/%s/%s -> %s" % (repo.commit, n, "../" * (2 + n.count("/")) + "blobs/" + e))
    for n in absent:
        out.append(".no_exist/%s/%s" % (repo.commit, n))
    if ref:
        out.append("refs/%s = %s" % (ref, repo.commit))
    return sorted(set(out))


def diff(a, b):
    return "missing %s; unexpected %s" % (sorted(set(b) - set(a)), sorted(set(a) - set(b)))


VERBOSE = os.environ.get("RR_HUB_VERBOSE")


def one_line(err):
    if VERBOSE:
        print("     stderr: %r" % err)
    lines = [l for l in err.splitlines() if l.strip()]
    return len(lines) == 1, lines


def make_repos(root):
    """Synthetic repositories (files need not be a valid model for the cache checks)."""
    rnd = __import__("random").Random(7)
    repos = {}

    def repo(name, files):
        d = os.path.join(root, name.replace("/", "__"))
        for n, data in files.items():
            p = os.path.join(d, n)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        repos[name] = d

    weights = bytes(rnd.getrandbits(8) for _ in range(1 << 20))
    base = {
        "config.json": b'{"model_type": "xlm-roberta", "hidden_size": 8}\n',
        "tokenizer.json": b'{"version": "1.0", "model": {"type": "Unigram"}}\n',
        "tokenizer_config.json": b'{"model_max_length": 512}\n',
    }
    repo("test-org/synthetic", dict(base, **{"model.safetensors": weights}))
    repo("test-org/gated", dict(base, **{"model.safetensors": weights[:200_000]}))
    repo("test-org/pickle-only", dict(base, **{"pytorch_model.bin": weights[:150_000]}))
    index = {"metadata": {"total_size": 300_000},
             "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                            "b.weight": "model-00002-of-00002.safetensors",
                            "c.weight": "model-00001-of-00002.safetensors"}}
    repo("test-org/sharded", dict(base, **{
        "special_tokens_map.json": b'{"cls_token": "<s>"}\n',
        "model.safetensors.index.json": json.dumps(index).encode(),
        "model-00001-of-00002.safetensors": weights[:150_000],
        "model-00002-of-00002.safetensors": weights[150_000:300_000]}))
    # tools/gen_models.py's sharded model when generated with its tokenizer, else a tiny BERT made here
    for cand in ("xlmr_f32_sharded", "xlmr_f32"):
        d = os.path.join(TESTDATA, "models", cand)
        if all(os.path.isfile(os.path.join(d, f)) for f in ("config.json", "tokenizer.json")):
            repos["test-org/tiny"] = d
            break
    else:
        repo("test-org/tiny", tiny_bert(rnd))
    return repos


def safetensors(tensors):
    """Serializes {name: (shape, [floats])} as an F32 safetensors file."""
    header, blobs, off = {}, [], 0
    for name, (shape, vals) in tensors.items():
        data = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def tiny_bert(rnd):
    """A one-layer BertForSequenceClassification with random weights and a WordPiece tokenizer: a
    real model folder, small enough to serve from the mock."""
    V, H, I, P, T = 32, 8, 16, 16, 2
    cfg = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": V,
           "hidden_size": H, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": I,
           "max_position_embeddings": P, "type_vocab_size": T, "pad_token_id": 0, "layer_norm_eps": 1e-12,
           "hidden_act": "gelu", "position_embedding_type": "absolute", "id2label": {"0": "LABEL_0"}}
    t = {}

    def mat(name, *shape):
        n = 1
        for d in shape:
            n *= d
        t[name] = (shape, [rnd.uniform(-0.5, 0.5) for _ in range(n)])

    def ln(name):
        t[name + ".weight"] = ((H,), [1.0 + rnd.uniform(-0.1, 0.1) for _ in range(H)])
        t[name + ".bias"] = ((H,), [rnd.uniform(-0.1, 0.1) for _ in range(H)])

    mat("bert.embeddings.word_embeddings.weight", V, H)
    mat("bert.embeddings.position_embeddings.weight", P, H)
    mat("bert.embeddings.token_type_embeddings.weight", T, H)
    ln("bert.embeddings.LayerNorm")
    pre = "bert.encoder.layer.0."
    for n in ("query", "key", "value"):
        mat(pre + "attention.self.%s.weight" % n, H, H)
        mat(pre + "attention.self.%s.bias" % n, H)
    mat(pre + "attention.output.dense.weight", H, H)
    mat(pre + "attention.output.dense.bias", H)
    ln(pre + "attention.output.LayerNorm")
    mat(pre + "intermediate.dense.weight", I, H)
    mat(pre + "intermediate.dense.bias", I)
    mat(pre + "output.dense.weight", H, I)
    mat(pre + "output.dense.bias", H)
    ln(pre + "output.LayerNorm")
    mat("bert.pooler.dense.weight", H, H)
    mat("bert.pooler.dense.bias", H)
    mat("classifier.weight", 1, H)
    mat("classifier.bias", 1)
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + ["w%d" % i for i in range(V - 4)])}
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
           "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                          "strip_accents": None, "lowercase": True},
           "pre_tokenizer": {"type": "BertPreTokenizer"},
           "post_processor": {"type": "TemplateProcessing",
                              "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                         {"Sequence": {"id": "A", "type_id": 0}},
                                         {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                              "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                       {"Sequence": {"id": "A", "type_id": 0}},
                                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                                       {"Sequence": {"id": "B", "type_id": 1}},
                                       {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                              "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                                 "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
           "decoder": None,
           "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                     "max_input_chars_per_word": 100, "vocab": vocab}}
    return {"config.json": json.dumps(cfg).encode(), "tokenizer.json": json.dumps(tok).encode(),
            "model.safetensors": safetensors(t)}


def main():
    if not os.access(RERANK, os.X_OK):
        print("%s not built" % RERANK)
        print("0 passed, 1 failed, 0 skipped")
        return 1
    tmp = tempfile.mkdtemp(prefix="rr_hub_")
    try:
        return suite(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def suite(tmp):
    repos = make_repos(os.path.join(tmp, "repos"))
    mock = Mock(repos, gated={"test-org/gated"}, token=TOKEN, relative={"test-org/sharded", "test-org/gated"}).start()
    ep = mock.endpoint
    syn = mock.repos["test-org/synthetic"]
    size = len(syn.files["model.safetensors"])
    n_home = [0]

    def fresh_home():
        n_home[0] += 1
        h = os.path.join(tmp, "home%d" % n_home[0])
        os.makedirs(h)
        return h

    def folder(home, repo="test-org/synthetic"):
        return os.path.join(home, "hub", "models--" + repo.replace("/", "--"))

    syn_files = ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"]
    syn_expect = expected_listing(syn, syn_files, absent=["special_tokens_map.json", "README.md"])

    # 1. a cold pull writes the exact huggingface_hub layout
    home = fresh_home()
    rc, out, err = run(["pull", "test-org/synthetic"], home, ep)
    snap = os.path.join(folder(home), "snapshots", syn.commit)
    check("pull: exit 0", rc == 0, err)
    check("pull: prints the snapshot folder", out.strip() == snap, repr(out))
    got = listing(folder(home))
    check("pull: cache listing matches", got == syn_expect, diff(got, syn_expect))
    same = all(open(os.path.join(snap, n), "rb").read() == syn.files[n] for n in syn_files)
    check("pull: snapshot files hold the repo's bytes", same)
    check("pull: LFS weights fetched from the CDN once", mock.cdn_bytes == size, "%d" % mock.cdn_bytes)
    check("pull: quiet log, one line per file when stderr is not a TTY",
          "model.safetensors: downloaded" in err and "special_tokens_map.json: not in the repository" in err, err)
    check("pull: no partial files left", not any(".incomplete" in l for l in got))

    # 2. a warm pull downloads nothing
    mock.reset()
    rc, out, err = run(["pull", "test-org/synthetic"], home, ep)
    check("warm pull: exit 0, nothing downloaded", rc == 0 and mock.cdn_bytes == 0 and "cached" in err,
          "%d %d %s" % (rc, mock.cdn_bytes, err))
    check("warm pull: layout unchanged", listing(folder(home)) == syn_expect)

    # 3. blobs already in the cache (fetched by another tool or revision) are linked, not fetched
    shutil.rmtree(os.path.join(folder(home), "snapshots"))
    shutil.rmtree(os.path.join(folder(home), "refs"))
    mock.reset()
    rc, out, err = run(["pull", "test-org/synthetic", "--quiet"], home, ep)
    check("cached blobs: relinked without download", rc == 0 and mock.cdn_bytes == 0, err)
    check("cached blobs: layout restored", listing(folder(home)) == syn_expect, diff(listing(folder(home)), syn_expect))
    check("--quiet: nothing on stderr", err == "", err)

    # 4. --revision with a commit sha: same snapshot, no ref written
    h2 = fresh_home()
    rc, out, err = run(["pull", "test-org/synthetic", "--revision", syn.commit, "-q"], h2, ep)
    exp = expected_listing(syn, syn_files, absent=["special_tokens_map.json", "README.md"], ref=None)
    check("--revision SHA: exit 0 and no refs/", rc == 0 and listing(folder(h2)) == exp, diff(listing(folder(h2)), exp))
    rc, out, err = run(["pull", "test-org/synthetic@nope"], h2, ep)
    check("unknown revision: clear error", rc != 0 and "revision 'nope' not found" in err and one_line(err)[0], err)

    # 5. a transfer cut mid-way is resumed in the same pull, without fetching the first part again
    home = fresh_home()
    mock.reset()
    mock.cut_after, mock.cut_times = size * 2 // 5, 1
    rc, out, err = run(["pull", "test-org/synthetic", "-q"], home, ep)
    check("cut transfer: pull succeeds", rc == 0, err)
    check("cut transfer: resumed with Range at the cut", [r[0] for r in mock.cdn_requests] == [0, size * 2 // 5],
          str(mock.cdn_requests))
    check("cut transfer: served bytes == file size", mock.cdn_bytes == size, "%d vs %d" % (mock.cdn_bytes, size))
    check("cut transfer: layout matches", listing(folder(home)) == syn_expect)

    # 6. a pull that keeps failing leaves only .incomplete; the next pull resumes it
    home = fresh_home()
    mock.reset()
    mock.cut_after, mock.cut_times = size // 16, 1000
    rc, out, err = run(["pull", "test-org/synthetic", "-q"], home, ep)
    got = listing(folder(home))
    blob = "blobs/" + syn.etag("model.safetensors")
    partial = os.path.join(folder(home), blob + ".incomplete")
    have = os.path.getsize(partial) if os.path.exists(partial) else -1
    check("interrupted pull: fails in one line", rc != 0 and one_line(err)[0], err)
    check("interrupted pull: nothing looks complete",
          blob not in got and not any("model.safetensors" in l and "snapshots" in l for l in got)
          and not any(l.startswith("refs/") for l in got), str(got))
    check("interrupted pull: partial bytes kept", 0 < have < size, "%d" % have)
    mock.reset()
    rc, out, err = run(["pull", "test-org/synthetic", "-q"], home, ep)
    check("resume: pull succeeds", rc == 0, err)
    check("resume: only the missing bytes fetched", mock.cdn_bytes == size - have and mock.cdn_requests[0][0] == have,
          "served %d, had %d of %d, requests %s" % (mock.cdn_bytes, have, size, mock.cdn_requests))
    check("resume: layout matches", listing(folder(home)) == syn_expect, diff(listing(folder(home)), syn_expect))

    # 6b. a server that ignores Range: the partial file is restarted, never appended to
    home = fresh_home()
    mock.reset()
    mock.cut_after, mock.cut_times = size // 3, 1
    mock.ignore_range = True
    rc, out, err = run(["pull", "test-org/synthetic", "-q"], home, ep)
    check("Range ignored (200): restarted and correct", rc == 0 and listing(folder(home)) == syn_expect
          and open(os.path.join(folder(home), blob), "rb").read() == syn.files["model.safetensors"], err)
    check("Range ignored (200): second request took the whole file",
          [r[1] for r in mock.cdn_requests] == [size // 3, size], str(mock.cdn_requests))

    # 7. a corrupted blob is rejected and not kept
    home = fresh_home()
    mock.reset()
    mock.corrupt = True
    rc, out, err = run(["pull", "test-org/synthetic"], home, ep)
    got = listing(folder(home))
    check("corrupted blob: rejected with sha256 mismatch", rc != 0 and "corrupted download: sha256" in err, err)
    check("corrupted blob: one line on stderr (after the progress lines)",
          err.strip().splitlines()[-1].startswith("rerank: ") if err.strip() else False, err)
    check("corrupted blob: no blob, partial or snapshot entry left",
          not any("model.safetensors" in l or syn.etag("model.safetensors") in l for l in got), str(got))
    mock.reset()
    rc, out, err = run(["pull", "test-org/synthetic", "-q"], home, ep)
    check("corrupted blob: clean pull afterwards", rc == 0 and listing(folder(home)) == syn_expect, err)

    # 8. offline: warm cache needs no network, cold cache fails in one line
    dead = "http://127.0.0.1:9"
    hub_before = mock.hub_requests
    rc, out, err = run(["pull", "test-org/synthetic", "-q"], home, dead, {"HF_HUB_OFFLINE": "1"})
    check("offline warm: exit 0, same snapshot", rc == 0 and out.strip() == os.path.join(
        folder(home), "snapshots", syn.commit), err)
    check("offline warm: no request made", mock.hub_requests == hub_before)
    cold = fresh_home()
    rc, out, err = run(["pull", "test-org/synthetic"], cold, ep, {"HF_HUB_OFFLINE": "1"})
    ok, lines = one_line(err)
    check("offline cold: one clear line",
          rc != 0 and ok and "test-org/synthetic is not in the cache and HF_HUB_OFFLINE is set" in err, err)
    check("offline cold: no request made", mock.hub_requests == hub_before)

    # 9. errors
    rc, out, err = run(["pull", "test-org/nope"], fresh_home(), ep)
    check("unknown repo: 404 -> not found", rc != 0 and one_line(err)[0] and "repository test-org/nope not found" in err, err)
    h = fresh_home()
    rc, out, err = run(["pull", "test-org/gated"], h, ep)
    check("gated without token: says to set HF_TOKEN", rc != 0 and one_line(err)[0] and "HF_TOKEN" in err
          and "401" in err, err)
    mock.reset()
    rc, out, err = run(["pull", "test-org/gated", "-q"], h, ep, {"HF_TOKEN": TOKEN})
    check("gated with HF_TOKEN: pulled", rc == 0, err)
    check("gated with HF_TOKEN: Authorization not forwarded to the CDN", mock.auth_on_cdn == 0)
    with open(os.path.join(h, "token"), "w") as f:
        f.write(TOKEN + "\n")
    shutil.rmtree(os.path.join(h, "hub"))
    rc, out, err = run(["pull", "test-org/gated", "-q"], h, ep)
    check("gated with $HF_HOME/token: pulled", rc == 0, err)
    rc, out, err = run(["pull", "test-org/pickle-only"], fresh_home(), ep)
    check("no safetensors: clear error", rc != 0 and "has no safetensors weights" in err and ".bin" in err, err)
    rc, out, err = run(["pull", "test-org/synthetic"], fresh_home(), "http://127.0.0.1:9")
    check("no network: curl's reason in one line", rc != 0 and one_line(err)[0] and "cannot reach" in err, err)
    before = mock.hub_requests
    for bad in ["../evil", "a/b/c", "", "org/-x", "org/x y"]:
        rc, out, err = run(["pull", bad], fresh_home(), ep)
        check("bad repo id %r rejected" % bad, rc != 0 and one_line(err)[0] and "repository id" in err, err)
    check("bad repo ids: no request made", mock.hub_requests == before)

    # 9b. disk full: a 512 kB tmpfs (mounted in a private user+mount namespace) cannot hold the 1 MB weights
    h = fresh_home()
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=512k none \"$0\"", h],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        skip("disk full", "cannot mount a small tmpfs here (unshare -rm): " + probe.stderr.strip())
    else:
        script = ('mount -t tmpfs -o size=512k none "$0" || exit 99; "$1" pull test-org/synthetic -q; '
                  'echo "rc=$?" >&2; cd "$0/hub" && find . -name "*" -type f -o -type l >&2')
        p = subprocess.run(["unshare", "-rm", "sh", "-c", script, h, RERANK], capture_output=True, text=True,
                           timeout=60, env=clean_env(HF_HOME=h, HF_ENDPOINT=ep))
        lines = p.stderr.splitlines()
        errs = [l for l in lines if l.startswith("rerank:")]
        if VERBOSE:
            print("     stderr: %r" % p.stderr)
        check("disk full: one clear line", len(errs) == 1 and "disk full" in errs[0] and "rc=1" in lines, p.stderr)
        check("disk full: no complete-looking weights",
              not any(l.endswith(("model.safetensors", syn.etag("model.safetensors"))) for l in lines), p.stderr)

    # 10. sharded weights: the index, then every shard it names (once each)
    sh = mock.repos["test-org/sharded"]
    home = fresh_home()
    rc, out, err = run(["pull", "test-org/sharded", "-q"], home, ep)
    names = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    exp = expected_listing(sh, names, absent=["model.safetensors", "README.md"])
    check("sharded: exit 0 and layout matches", rc == 0 and listing(folder(home, "test-org/sharded")) == exp,
          err + diff(listing(folder(home, "test-org/sharded")), exp))
    rc, out, err = run(["pull", "test-org/sharded", "-q"], home, ep, {"HF_HUB_OFFLINE": "1"})
    check("sharded: offline warm", rc == 0, err)

    # 11. HF_HUB_CACHE wins over HF_HOME
    h = fresh_home()
    cache = os.path.join(h, "elsewhere")
    rc, out, err = run(["pull", "test-org/synthetic", "-q"], h, ep, {"HF_HUB_CACHE": cache})
    check("HF_HUB_CACHE: used", rc == 0 and out.strip().startswith(cache + "/models--test-org--synthetic/"), out)

    # 12. two pulls at once into one cache (the blob lock keeps them apart)
    home = fresh_home()
    mock.reset()
    results = []

    def bg():
        results.append(run(["pull", "test-org/synthetic", "-q"], home, ep))
    ts = [threading.Thread(target=bg) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check("concurrent pulls: both succeed", all(r[0] == 0 for r in results), str(results))
    check("concurrent pulls: layout matches", listing(folder(home)) == syn_expect, diff(listing(folder(home)), syn_expect))
    check("concurrent pulls: the blob was fetched once", mock.cdn_bytes == size, "%d" % mock.cdn_bytes)

    # 13. the pulled model loads: `rerank score -m ORG/NAME` resolves the repo id to the snapshot
    home = fresh_home()
    rc, out, err = run(["pull", "test-org/tiny", "-q"], home, ep)
    check("tiny model (%s): pulled" % repos["test-org/tiny"].rsplit("/", 1)[-1], rc == 0, err)
    rc2, out2, _ = run(["--help"], home, ep)
    if " score " not in out2:
        skip("pulled model loads", "this build has no `rerank score` command")
    else:
        line = '{"input_ids": [2, 5, 6, 3, 7, 8, 3]}\n'
        hub_before = mock.hub_requests
        p = subprocess.run([RERANK, "score", "-m", "test-org/tiny"], input=line, capture_output=True, text=True,
                           timeout=60, env=clean_env(HF_HOME=home, HF_ENDPOINT=ep))
        ok = p.returncode == 0 and '"score"' in p.stdout
        check("pulled model loads and scores (rerank score -m REPO_ID)", ok, p.stdout + p.stderr)
        check("score -m REPO_ID with a warm cache makes no request", mock.hub_requests == hub_before)
        p2 = subprocess.run([RERANK, "score", "-m", "test-org/tiny"], input=line, capture_output=True, text=True,
                            timeout=60, env=clean_env(HF_HOME=fresh_home(), HF_ENDPOINT=ep))
        check("score -m REPO_ID with a cold cache pulls it first", p2.returncode == 0 and p2.stdout == p.stdout
              and "downloading" in p2.stderr, p2.stdout + p2.stderr)
        p3 = subprocess.run([RERANK, "score", "-m", "test-org/tiny"], input=line, capture_output=True, text=True,
                            timeout=60, env=clean_env(HF_HOME=fresh_home(), HF_ENDPOINT=ep, HF_HUB_OFFLINE="1"))
        check("score -m REPO_ID offline with a cold cache: one line", p3.returncode != 0 and one_line(p3.stderr)[0]
              and "HF_HUB_OFFLINE" in p3.stderr, p3.stderr)

    mock.stop()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
