/*
 * _rerank.c -- the CPython extension behind `import rerank`: a thin binding of include/rerank.h.
 *
 * It exposes one type, _Model (a loaded rr_model plus a pool of rr_ctx), and the hub functions that
 * turn a name into a model folder the way the CLI does. Argument shapes of the libraries users know
 * (jina's compute_score / rerank, sentence-transformers' predict / rank) live in rerank/__init__.py;
 * everything here takes plain lists of str and returns plain Python objects.
 *
 * Threads. The model is immutable and shared; each call borrows an rr_ctx from the model's pool (a
 * new one is made when every context is busy, so N Python threads calling at once get N contexts)
 * and gives it back at the end. The GIL is released for tokenization, the forward passes and
 * downloads.
 *
 * Interrupts. Python runs signal handlers only between bytecodes of the main thread, so a call that
 * stays in C for minutes would ignore Ctrl-C. Every scoring call is one library call (as the CLI makes
 * it) with the library's progress hook (rr_progress_fn): between forward passes the hook takes the GIL
 * back (at most every CHECK_NS) to run PyErr_CheckSignals and the progress callback; a pending
 * KeyboardInterrupt makes it return nonzero, the library stops with RR_ERR_CANCELLED after the pass
 * in flight, the context goes back to the pool, and the object stays usable.
 *
 * Errors. rr_status becomes an exception with the library's message: RR_ERR_NOT_FOUND ->
 * FileNotFoundError, RR_ERR_IO -> OSError, RR_ERR_NETWORK -> ConnectionError (an OSError),
 * RR_ERR_NOMEM -> MemoryError, RR_ERR_CANCELLED -> KeyboardInterrupt, everything else (bad argument,
 * malformed or unsupported model, out of range) -> ValueError. Wrong Python types -> TypeError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "rerank.h"
#include "rerank_hub.h"
#include "rerank_util.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define CHECK_NS 20000000LL /* take the GIL back for signals and progress at most every 20 ms */

/* ------------------------------------------------------------------ errors */

static PyObject *raise_status(rr_status st) {
    const char *msg = rr_errmsg(); /* thread-local: read on the thread that failed */
    PyObject *type;
    switch (st) {
    case RR_ERR_NOMEM: type = PyExc_MemoryError; break;
    case RR_ERR_NOT_FOUND: type = PyExc_FileNotFoundError; break;
    case RR_ERR_IO: type = PyExc_OSError; break;
    case RR_ERR_NETWORK: type = PyExc_ConnectionError; break;
    case RR_ERR_CANCELLED: type = PyExc_KeyboardInterrupt; break;
    default: type = PyExc_ValueError; break;
    }
    PyErr_SetString(type, msg && *msg ? msg : rr_status_str(st));
    return NULL;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ------------------------------------------------------------------ argument helpers */

/* Reads an int into *v (capped at INT_MAX / 2; the library caps lengths again at the model's limit). */
static int get_int(PyObject *o, const char *name, const char *kind, long long *v) {
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int%s, not %.80s", name, kind, Py_TYPE(o)->tp_name);
        return -1;
    }
    int overflow = 0;
    *v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (*v == -1 && PyErr_Occurred()) return -1;
    if (overflow) *v = overflow > 0 ? LLONG_MAX : LLONG_MIN;
    return 0;
}

/* An optional positive int: None -> 0 (the library's default). */
static int opt_positive(PyObject *o, const char *name, int *out) {
    long long v;
    *out = 0;
    if (!o || o == Py_None) return 0;
    if (get_int(o, name, " or None", &v)) return -1;
    if (v < 1) {
        PyErr_Format(PyExc_ValueError, "%s must be at least 1, got %S", name, o);
        return -1;
    }
    *out = v > INT_MAX / 2 ? INT_MAX / 2 : (int)v;
    return 0;
}

/* A non-negative int. */
static int get_count(PyObject *o, const char *name, int *out) {
    long long v;
    if (get_int(o, name, "", &v)) return -1;
    if (v < 0) {
        PyErr_Format(PyExc_ValueError, "%s must not be negative, got %S", name, o);
        return -1;
    }
    *out = v > INT_MAX / 2 ? INT_MAX / 2 : (int)v;
    return 0;
}

/* A list of texts taken from Python: strong references keep every UTF-8 buffer alive while the GIL is
 * released, even if the caller's list changes meanwhile. */
typedef struct texts {
    PyObject **refs;
    rr_text *t;
    Py_ssize_t n;
} texts;

static void texts_free(texts *x) {
    if (x->refs)
        for (Py_ssize_t i = 0; i < x->n; i++) Py_XDECREF(x->refs[i]);
    PyMem_Free(x->refs);
    PyMem_Free(x->t);
    memset(x, 0, sizeof *x);
}

static int texts_alloc(texts *x, Py_ssize_t n) {
    memset(x, 0, sizeof *x);
    size_t k = n > 0 ? (size_t)n : 1;
    x->refs = PyMem_Calloc(k, sizeof *x->refs);
    x->t = PyMem_Calloc(k, sizeof *x->t);
    if (!x->refs || !x->t) {
        texts_free(x);
        PyErr_NoMemory();
        return -1;
    }
    x->n = n;
    return 0;
}

/* Stores str `o` as text i; `what` and `idx` (-1: none) name it in the TypeError. */
static int text_set(texts *x, Py_ssize_t i, PyObject *o, const char *what, Py_ssize_t idx) {
    if (!PyUnicode_Check(o)) {
        if (idx >= 0)
            PyErr_Format(PyExc_TypeError, "%s %zd must be a str, not %.80s", what, idx, Py_TYPE(o)->tp_name);
        else
            PyErr_Format(PyExc_TypeError, "%s must be a str, not %.80s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(o, &len); /* cached in the str object */
    if (!s) return -1;
    Py_INCREF(o);
    x->refs[i] = o;
    x->t[i] = (rr_text){s, (size_t)len};
    return 0;
}

/* A list, tuple or other sequence (not a str, bytes or a mapping, not an iterator) as a fast sequence. */
static PyObject *as_list(PyObject *o, const char *what) {
    if (PyUnicode_Check(o) || PyBytes_Check(o) || PyByteArray_Check(o) || PyDict_Check(o) || !PySequence_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a list, not %.80s", what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    return PySequence_Fast(o, what);
}

/* documents: a sequence of str. */
static int texts_from_list(PyObject *o, const char *what, const char *item, texts *x) {
    PyObject *seq = as_list(o, what);
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > INT_MAX / 2) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "%s: too many items (%zd)", what, n);
        return -1;
    }
    if (texts_alloc(x, n)) {
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (text_set(x, i, PySequence_Fast_GET_ITEM(seq, i), item, i)) {
            Py_DECREF(seq);
            texts_free(x);
            return -1;
        }
    Py_DECREF(seq);
    return 0;
}

/* pairs: a sequence of [query, document] (each a list or tuple of two str). */
static int pairs_from_list(PyObject *o, texts *q, texts *d) {
    PyObject *seq = as_list(o, "sentence pairs");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > INT_MAX / 2) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "too many pairs (%zd)", n);
        return -1;
    }
    if (texts_alloc(q, n)) {
        Py_DECREF(seq);
        return -1;
    }
    if (texts_alloc(d, n)) {
        texts_free(q);
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyList_Check(p) && !PyTuple_Check(p)) {
            PyErr_Format(PyExc_TypeError, "pair %zd must be a [query, document] list or tuple, not %.80s", i,
                         Py_TYPE(p)->tp_name);
            goto fail;
        }
        if (PySequence_Fast_GET_SIZE(p) != 2) {
            PyErr_Format(PyExc_TypeError, "pair %zd must hold 2 texts [query, document], not %zd", i,
                         PySequence_Fast_GET_SIZE(p));
            goto fail;
        }
        /* a list or tuple is its own fast sequence */
        if (text_set(q, i, PySequence_Fast_GET_ITEM(p, 0), "the query of pair", i) ||
            text_set(d, i, PySequence_Fast_GET_ITEM(p, 1), "the document of pair", i))
            goto fail;
    }
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    texts_free(q);
    texts_free(d);
    return -1;
}

/* ------------------------------------------------------------------ the model type */

typedef struct {
    PyObject_HEAD
    rr_model *model;
    rr_model_info info;
    rr_ctx_params cp;
    int budget;         /* token rows of one pass, as rr_ctx_new settles it */
    int threads;
    pthread_mutex_t mu; /* guards the pool */
    rr_ctx **pool;      /* idle contexts */
    int n_idle, cap;
    int n_made;         /* contexts alive, idle or busy */
    unsigned fork_gen;  /* g_fork_gen when the pool was last valid */
    PyObject *dir;
} ModelObject;

/* Bumped in a forked child. A context's worker threads do not survive fork(), so a child (a
 * multiprocessing worker, a pre-forking server) must not use the contexts its parent made: it forgets
 * them (their memory stays with the parent's copy) and makes its own. The pool's mutex may have been
 * held by a parent thread at the fork, so it is re-created too. */
static volatile unsigned g_fork_gen;

static void after_fork_child(void) { g_fork_gen++; }

static void pool_after_fork(ModelObject *self) {
    if (self->fork_gen == g_fork_gen) return;
    pthread_mutex_init(&self->mu, NULL);
    self->pool = NULL; /* the parent's array and contexts, leaked on purpose */
    self->n_idle = self->cap = self->n_made = 0;
    self->fork_gen = g_fork_gen;
}

/* Borrows an idle context or makes one. Called without the GIL. */
static rr_status ctx_get(ModelObject *self, rr_ctx **out) {
    rr_ctx *c = NULL;
    pool_after_fork(self);
    pthread_mutex_lock(&self->mu);
    if (self->n_idle) c = self->pool[--self->n_idle];
    pthread_mutex_unlock(&self->mu);
    if (c) {
        *out = c;
        return RR_OK;
    }
    rr_status st = rr_ctx_new(self->model, &self->cp, out);
    if (!st) {
        pthread_mutex_lock(&self->mu);
        self->n_made++;
        pthread_mutex_unlock(&self->mu);
    }
    return st;
}

/* Gives a context back (frees it if the pool cannot grow). */
static void ctx_put(ModelObject *self, rr_ctx *c) {
    if (!c) return;
    pthread_mutex_lock(&self->mu);
    if (self->n_idle == self->cap) {
        int cap = self->cap ? 2 * self->cap : 4;
        rr_ctx **p = realloc(self->pool, (size_t)cap * sizeof *p);
        if (!p) {
            self->n_made--;
            pthread_mutex_unlock(&self->mu);
            rr_ctx_free(c);
            return;
        }
        self->pool = p;
        self->cap = cap;
    }
    self->pool[self->n_idle++] = c;
    pthread_mutex_unlock(&self->mu);
}

static void Model_dealloc(ModelObject *self) {
    pool_after_fork(self);
    for (int i = 0; i < self->n_idle; i++) rr_ctx_free(self->pool[i]);
    free(self->pool);
    rr_model_free(self->model);
    pthread_mutex_destroy(&self->mu);
    Py_XDECREF(self->dir);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Model_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    ModelObject *self = (ModelObject *)type->tp_alloc(type, 0);
    if (self) {
        pthread_mutex_init(&self->mu, NULL);
        self->fork_gen = g_fork_gen;
    }
    return (PyObject *)self;
}

static int parse_precision(const char *s, rr_precision *p) {
    static const struct {
        const char *name;
        rr_precision p;
    } names[] = {
        {"auto", RR_PRECISION_AUTO}, {"fp32", RR_PRECISION_FP32}, {"float32", RR_PRECISION_FP32},
        {"bf16", RR_PRECISION_BF16}, {"bfloat16", RR_PRECISION_BF16}, {"int8", RR_PRECISION_INT8},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(s, names[i].name)) {
            *p = names[i].p;
            return 0;
        }
    return -1;
}

static const char *precision_name(rr_precision p) {
    switch (p) {
    case RR_PRECISION_FP32: return "fp32";
    case RR_PRECISION_BF16: return "bf16";
    case RR_PRECISION_INT8: return "int8";
    default: return "auto";
    }
}

/* The prompt template of a decoder folder: None -> auto (the model card, else the architecture). */
static int parse_template(PyObject *o, rr_template *out) {
    *out = RR_TEMPLATE_AUTO;
    if (!o || o == Py_None) return 0;
    const char *name = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
    int t = name ? rr_template_parse(name) : -1;
    if (t < 0) {
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_UnicodeError)) {
            PyErr_Clear();
            PyErr_Format(PyUnicode_Check(o) ? PyExc_ValueError : PyExc_TypeError,
                         "template must be \"qwen3-reranker\", \"mxbai-rerank-v2\", \"auto\" or None, not %R", o);
        }
        return -1;
    }
    *out = (rr_template)t;
    return 0;
}

/* _Model(dir, precision="auto", threads=None, max_batch_tokens=None, template=None) */
static int Model_init(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"dir", "precision", "threads", "max_batch_tokens", "template", NULL};
    PyObject *dir_obj, *threads_obj = Py_None, *batch_obj = Py_None, *prec_obj = NULL, *tmpl_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|OOOO:_Model", kwlist, PyUnicode_FSConverter, &dir_obj, &prec_obj,
                                     &threads_obj, &batch_obj, &tmpl_obj))
        return -1;
    int rc = -1, threads = 0, batch = 0;
    rr_model_params mp = rr_model_default_params();
    mp.precision = RR_PRECISION_AUTO;
    if (self->model) {
        PyErr_SetString(PyExc_RuntimeError, "_Model is already initialized");
        goto out;
    }
    if (prec_obj) {
        const char *prec = PyUnicode_Check(prec_obj) ? PyUnicode_AsUTF8(prec_obj) : NULL;
        if (!prec || parse_precision(prec, &mp.precision)) {
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_UnicodeError)) {
                PyErr_Clear();
                PyErr_Format(PyUnicode_Check(prec_obj) ? PyExc_ValueError : PyExc_TypeError,
                             "precision must be \"auto\", \"fp32\", \"bf16\" or \"int8\", not %R", prec_obj);
            }
            goto out;
        }
    }
    if (opt_positive(threads_obj, "threads", &threads) || opt_positive(batch_obj, "max_batch_tokens", &batch) ||
        parse_template(tmpl_obj, &mp.prompt))
        goto out;
    if (threads > 1024) threads = 1024;
    mp.n_threads = threads;
    const char *dir = PyBytes_AS_STRING(dir_obj);
    rr_model *m = NULL;
    rr_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rr_model_load(dir, &mp, &m);
    Py_END_ALLOW_THREADS
    if (st) {
        raise_status(st);
        goto out;
    }
    self->model = m;
    rr_model_get_info(m, &self->info);
    self->cp = rr_ctx_default_params();
    if (batch) self->cp.max_batch_tokens = batch;
    self->budget = self->cp.max_batch_tokens > self->info.max_length ? self->cp.max_batch_tokens : self->info.max_length;
    self->threads = threads;
    self->dir = PyUnicode_DecodeFSDefault(dir);
    if (!self->dir) goto out;
    /* one context now, so a model that cannot get its scratch memory fails here, not on first use */
    rr_ctx *c = NULL;
    Py_BEGIN_ALLOW_THREADS
    st = ctx_get(self, &c);
    Py_END_ALLOW_THREADS
    if (st) {
        raise_status(st);
        goto out;
    }
    ctx_put(self, c);
    rc = 0;
out:
    Py_DECREF(dir_obj);
    return rc;
}

static int need_model(ModelObject *self) {
    if (self->model) return 0;
    PyErr_SetString(PyExc_RuntimeError, "_Model is not initialized");
    return -1;
}

/* A call's return to Python while the library works: the library calls on_progress between forward
 * passes (rr_progress_fn); at most every CHECK_NS it takes the GIL back to run pending signal
 * handlers and the progress callback. */
typedef struct checker {
    PyObject *progress;  /* callable(done, total) or NULL */
    long long last;
    PyThreadState *ts;   /* saved thread state while the GIL is released, else NULL */
    int py_error;        /* the call was stopped for a Python exception, which is set */
    long base, span, whole; /* grouped calls (whole > 0): this rr_rank's counts map onto
                                [base, base + span) of whole */
} checker;

static void released(checker *k) { k->ts = PyEval_SaveThread(); }

static void reacquire(checker *k) {
    if (!k->ts) return;
    PyEval_RestoreThread(k->ts);
    k->ts = NULL;
}

/* rr_progress_fn: runs on the calling thread without the GIL. Nonzero stops the library's call with
 * RR_ERR_CANCELLED; the Python exception (KeyboardInterrupt, or the progress callback's) is then set
 * in this thread's state. */
static int on_progress(void *user, long done, long total) {
    checker *k = user;
    int end = total > 0 && done >= total;
    if (!(k->progress && end) && now_ns() - k->last < CHECK_NS) return 0;
    reacquire(k);
    int rc = PyErr_CheckSignals();
    if (!rc && k->progress && total > 0) {
        long d = done, t = total;
        if (k->whole > 0) {
            d = k->base + (long)((double)k->span * (double)done / (double)total);
            t = k->whole;
        }
        PyObject *r = PyObject_CallFunction(k->progress, "ll", d, t);
        if (r) Py_DECREF(r);
        else rc = -1;
    }
    if (rc) k->py_error = 1;
    released(k);
    k->last = now_ns();
    return rc != 0;
}

/* The error of a library call made with a checker: the Python exception the hook set, else the
 * library's status. Called with the GIL. */
static PyObject *call_error(const checker *k, rr_status st) {
    if (k->py_error && PyErr_Occurred()) return NULL;
    return raise_status(st);
}

/* An optional instruction: None -> {NULL, 0} (the template's default). `keep` holds the str. */
static int get_instruction(PyObject *o, rr_text *out, PyObject **keep) {
    *out = (rr_text){NULL, 0};
    *keep = NULL;
    if (!o || o == Py_None) return 0;
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "instruction must be a str or None, not %.80s", Py_TYPE(o)->tp_name);
        return -1;
    }
    Py_ssize_t len;
    const char *t = PyUnicode_AsUTF8AndSize(o, &len);
    if (!t) return -1;
    Py_INCREF(o);
    *keep = o;
    *out = (rr_text){t, (size_t)len};
    return 0;
}

static int need_tokenizer(ModelObject *self, const char *what) {
    if (rr_model_tokenizer(self->model)) return 0;
    PyErr_Format(PyExc_ValueError, "%s: the model folder has no tokenizer.json, so text cannot be %s",
                 self->info.name, what);
    return -1;
}

/* Pair indices of a listwise model grouped by query: byte order of the query, then pair index. */
typedef struct qkey {
    rr_text q;
    int index;
} qkey;

static int qkey_cmp(const void *a, const void *b) {
    const qkey *x = a, *y = b;
    size_t n = x->q.len < y->q.len ? x->q.len : y->q.len;
    int c = n ? memcmp(x->q.text, y->q.text, n) : 0;
    if (c) return c;
    if (x->q.len != y->q.len) return x->q.len < y->q.len ? -1 : 1;
    return x->index - y->index;
}

/* jina-reranker-v3 pairs: the pairs that share a query are one listwise request (rr_rank over their
 * documents in pair order, so blocks and the query merge are the reference rerank()'s), and each
 * pair gets its document's score there. Called without the GIL; fills out[n]. On failure *bad is the
 * pair that failed when the library names one (else -1). */
static rr_status score_listwise(rr_ctx *ctx, const texts *q, const texts *d, rr_rank_params *p, checker *k,
                                float *out, int *bad) {
    int n = (int)q->n;
    *bad = -1;
    if (n == 0) return RR_OK;
    qkey *keys = malloc((size_t)n * sizeof *keys);
    rr_text *docs = malloc((size_t)n * sizeof *docs);
    rr_rank_result *res = malloc((size_t)n * sizeof *res);
    rr_status st = RR_OK;
    if (!keys || !docs || !res) {
        st = RR_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++) keys[i] = (qkey){q->t[i], i};
    qsort(keys, (size_t)n, sizeof *keys, qkey_cmp);
    k->whole = n;
    for (int a = 0; a < n && !st;) {
        int b = a + 1;
        while (b < n && !qkey_cmp(&(qkey){keys[a].q, keys[b].index}, &keys[b])) b++;
        for (int i = a; i < b; i++) docs[i - a] = d->t[keys[i].index];
        k->base = a;
        k->span = b - a;
        int nres = 0;
        st = rr_rank(ctx, keys[a].q, docs, b - a, p, res, &nres, NULL);
        if (st) {
            /* the library numbers documents within the group */
            int rel;
            if (sscanf(rr_errmsg(), "document %d:", &rel) == 1 && rel >= 0 && rel < b - a) *bad = keys[a + rel].index;
            break;
        }
        for (int i = 0; i < nres; i++) out[keys[a + res[i].index].index] = res[i].score;
        a = b;
    }
done:
    free(keys);
    free(docs);
    free(res);
    return st;
}

/* score_pairs(pairs, max_length=None, raw=False, progress=None, instruction=None) -> list[float]
 * rr_score_pairs_instructed: the pair template (or a decoder's prompt) with longest_first truncation
 * at max_length, scored as `rerank score` scores them. jina-reranker-v3: see score_listwise. */
static PyObject *Model_score_pairs(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"pairs", "max_length", "raw", "progress", "instruction", NULL};
    PyObject *pairs, *ml_obj = Py_None, *progress = Py_None, *instr_obj = Py_None, *instr_keep = NULL;
    int raw = 0, ml = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OpOO:score_pairs", kwlist, &pairs, &ml_obj, &raw, &progress,
                                     &instr_obj))
        return NULL;
    if (need_model(self) || opt_positive(ml_obj, "max_length", &ml)) return NULL;
    if (progress != Py_None && !PyCallable_Check(progress)) {
        PyErr_SetString(PyExc_TypeError, "progress must be callable or None");
        return NULL;
    }
    if (need_tokenizer(self, "scored")) return NULL;
    rr_text instr;
    if (get_instruction(instr_obj, &instr, &instr_keep)) return NULL;
    texts q, d;
    if (pairs_from_list(pairs, &q, &d)) {
        Py_XDECREF(instr_keep);
        return NULL;
    }
    int n = (int)q.n;
    size_t nn = (size_t)(n ? n : 1);
    float *out = PyMem_Calloc(nn, sizeof *out);
    rr_text *instrs = PyMem_Calloc(nn, sizeof *instrs);
    if (!out || !instrs) {
        PyMem_Free(out), PyMem_Free(instrs);
        texts_free(&q), texts_free(&d);
        Py_XDECREF(instr_keep);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < n; i++) instrs[i] = instr;
    int listwise = self->info.family == RR_FAMILY_JINA_V3, bad = -1;
    checker k = {progress == Py_None ? NULL : progress, now_ns(), NULL, 0, 0, 0, 0};
    rr_ctx *ctx = NULL;
    released(&k);
    rr_status st = ctx_get(self, &ctx);
    if (!st && listwise) {
        rr_rank_params p = rr_rank_default_params();
        p.max_length = ml;
        p.instruction = instr;
        p.progress = on_progress;
        p.progress_user = &k;
        st = score_listwise(ctx, &q, &d, &p, &k, out, &bad);
    } else if (!st) {
        rr_score_params sp = rr_score_default_params();
        sp.max_length = ml;
        sp.raw = raw;
        sp.progress = on_progress;
        sp.progress_user = &k;
        st = rr_score_pairs_instructed(ctx, q.t, d.t, instrs, n, &sp, out, NULL);
    }
    ctx_put(self, ctx);
    reacquire(&k);
    PyObject *result = NULL;
    if (st && listwise && bad >= 0 && !k.py_error) {
        const char *msg = strchr(rr_errmsg(), ':');
        PyErr_Format(st == RR_ERR_NOMEM ? PyExc_MemoryError : PyExc_ValueError, "pair %d%s", bad, msg ? msg : "");
    } else if (st) {
        call_error(&k, st);
    } else {
        result = PyList_New(n);
        for (int i = 0; result && i < n; i++) {
            PyObject *f = PyFloat_FromDouble(out[i]);
            if (!f) Py_CLEAR(result);
            else PyList_SET_ITEM(result, i, f);
        }
    }
    PyMem_Free(out), PyMem_Free(instrs);
    texts_free(&q), texts_free(&d);
    Py_XDECREF(instr_keep);
    return result;
}

/* rank(query, documents, max_length=None, max_query_length=None, overlap=None, top_n=None, raw=False,
 *      progress=None, instruction=None) -> (list[(index, score)], total_tokens)
 * One rr_rank call, as `rerank rank` makes it: windows over long documents (encoders), prompts
 * (decoders) or blocks (jina-reranker-v3); sorted, cut to top_n. */
static PyObject *Model_rank(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"query", "documents", "max_length", "max_query_length", "overlap", "top_n",
                             "raw",   "progress",  "instruction", NULL};
    PyObject *query, *docs_obj, *ml_obj = Py_None, *mq_obj = Py_None, *ov_obj = Py_None, *top_obj = Py_None;
    PyObject *progress = Py_None, *instr_obj = Py_None, *instr_keep = NULL;
    int raw = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOOOpOO:rank", kwlist, &query, &docs_obj, &ml_obj, &mq_obj,
                                     &ov_obj, &top_obj, &raw, &progress, &instr_obj))
        return NULL;
    if (need_model(self)) return NULL;
    rr_rank_params p = rr_rank_default_params();
    if (opt_positive(ml_obj, "max_length", &p.max_length) ||
        opt_positive(mq_obj, "max_query_length", &p.max_query_length))
        return NULL;
    if (ov_obj != Py_None && get_count(ov_obj, "overlap_tokens", &p.overlap)) return NULL;
    if (top_obj != Py_None && get_count(top_obj, "top_n", &p.top_n)) return NULL;
    if (progress != Py_None && !PyCallable_Check(progress)) {
        PyErr_SetString(PyExc_TypeError, "progress must be callable or None");
        return NULL;
    }
    if (need_tokenizer(self, "ranked")) return NULL;
    if (get_instruction(instr_obj, &p.instruction, &instr_keep)) return NULL;
    texts qt, docs;
    if (texts_alloc(&qt, 1)) {
        Py_XDECREF(instr_keep);
        return NULL;
    }
    if (text_set(&qt, 0, query, "query", -1) || texts_from_list(docs_obj, "documents", "document", &docs)) {
        texts_free(&qt);
        Py_XDECREF(instr_keep);
        return NULL;
    }
    int n = (int)docs.n, nres = 0;
    rr_rank_result *res = PyMem_Calloc((size_t)(n ? n : 1), sizeof *res);
    if (!res) {
        texts_free(&qt), texts_free(&docs);
        Py_XDECREF(instr_keep);
        return PyErr_NoMemory();
    }
    p.raw = raw;
    checker k = {progress == Py_None ? NULL : progress, now_ns(), NULL, 0, 0, 0, 0};
    p.progress = on_progress;
    p.progress_user = &k;
    rr_usage u = {0};
    rr_ctx *ctx = NULL;
    released(&k);
    rr_status st = ctx_get(self, &ctx);
    if (!st) st = rr_rank(ctx, qt.t[0], docs.t, n, &p, res, &nres, &u);
    ctx_put(self, ctx);
    reacquire(&k);
    PyObject *result = NULL;
    if (st) {
        call_error(&k, st);
    } else {
        PyObject *list = PyList_New(nres);
        for (int i = 0; list && i < nres; i++) {
            PyObject *t = Py_BuildValue("(id)", res[i].index, (double)res[i].score);
            if (!t) Py_CLEAR(list);
            else PyList_SET_ITEM(list, i, t);
        }
        if (list) result = Py_BuildValue("(Nl)", list, u.total_tokens);
    }
    PyMem_Free(res);
    texts_free(&qt), texts_free(&docs);
    Py_XDECREF(instr_keep);
    return result;
}

static PyObject *int_list(const int32_t *v, size_t n) {
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; l && i < n; i++) {
        PyObject *x = PyLong_FromLong(v[i]);
        if (!x) Py_CLEAR(l);
        else PyList_SET_ITEM(l, (Py_ssize_t)i, x);
    }
    return l;
}

/* tokenize(text, text_pair=None, max_length=None) -> (ids, type_ids), special tokens included;
 * truncation longest_first only when max_length is given. */
static PyObject *Model_tokenize(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"text", "text_pair", "max_length", NULL};
    PyObject *text, *pair = Py_None, *ml_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OO:tokenize", kwlist, &text, &pair, &ml_obj)) return NULL;
    int ml = 0;
    if (need_model(self) || opt_positive(ml_obj, "max_length", &ml)) return NULL;
    const rr_tokenizer *tok = rr_model_tokenizer(self->model);
    if (!tok) {
        PyErr_Format(PyExc_ValueError, "%s: the model folder has no tokenizer.json", self->info.name);
        return NULL;
    }
    texts t;
    if (texts_alloc(&t, 2)) return NULL;
    int has_pair = pair != Py_None;
    if (text_set(&t, 0, text, "text", -1) || (has_pair && text_set(&t, 1, pair, "text_pair", -1))) {
        texts_free(&t);
        return NULL;
    }
    rr_encoding e = {0};
    rr_encode_params ep = rr_encode_default_params();
    ep.max_length = ml;
    rr_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rr_tokenizer_encode(tok, t.t[0], has_pair ? &t.t[1] : NULL, &ep, &e);
    Py_END_ALLOW_THREADS
    PyObject *r = st ? raise_status(st) : Py_BuildValue("(NN)", int_list(e.ids, e.len), int_list(e.type_ids, e.len));
    rr_encoding_free(&e);
    texts_free(&t);
    return r;
}

static const char *family_name(rr_family f) {
    switch (f) {
    case RR_FAMILY_JINA_V2: return "jina_v2";
    case RR_FAMILY_XLMR: return "xlmr";
    case RR_FAMILY_BERT: return "bert";
    case RR_FAMILY_QWEN3: return "qwen3";
    case RR_FAMILY_QWEN2: return "qwen2";
    case RR_FAMILY_QWEN3_CLS: return "qwen3_cls";
    case RR_FAMILY_JINA_V3: return "jina_v3";
    case RR_FAMILY_JINA_V1: return "jina_v1";
    case RR_FAMILY_MGTE: return "mgte";
    case RR_FAMILY_MODERNBERT: return "modernbert";
    default: return "unknown";
    }
}

static PyObject *Model_info(ModelObject *self, PyObject *unused) {
    if (need_model(self)) return NULL;
    const rr_model_info *i = &self->info;
    const rr_tokenizer *t = rr_model_tokenizer(self->model);
    PyObject *d = Py_BuildValue(
        "{s:s,s:s,s:O,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:d,s:n,s:i,s:i,s:O,s:s}", "family",
        family_name(i->family), "name", i->name ? i->name : "", "model_dir", self->dir, "precision",
        precision_name(i->precision), "kernels", i->kernels ? i->kernels : "", "n_layers", i->n_layers, "hidden",
        i->hidden, "n_heads", i->n_heads, "intermediate", i->intermediate, "vocab_size", i->vocab_size,
        "max_positions", i->max_positions, "type_vocab_size", i->type_vocab_size, "pad_id", i->pad_id, "max_length",
        i->max_length, "model_max_length", t ? rr_tokenizer_model_max_length(t) : 0, "layer_norm_eps",
        (double)i->layer_norm_eps, "weight_bytes", (Py_ssize_t)i->weight_bytes, "threads", self->threads,
        "max_batch_tokens", self->budget, "tokenizer", t ? Py_True : Py_False, "version", RR_VERSION);
    /* the prompt (decoders: the template decided at load; "none" for encoders) and the decoder shapes */
    PyObject *extra = d ? Py_BuildValue("{s:s,s:z,s:O,s:i,s:i,s:i}", "template", rr_template_name(i->prompt),
                                        "default_instruction", i->default_instruction, "listwise",
                                        i->family == RR_FAMILY_JINA_V3 ? Py_True : Py_False, "n_kv_heads",
                                        i->n_kv_heads, "head_dim", i->head_dim, "embed_size", i->embed_size)
                        : NULL;
    if (!extra || PyDict_Update(d, extra)) Py_CLEAR(d);
    Py_XDECREF(extra);
    return d;
}

static PyObject *Model_contexts(ModelObject *self, PyObject *unused) {
    pool_after_fork(self);
    pthread_mutex_lock(&self->mu);
    int n = self->n_made;
    pthread_mutex_unlock(&self->mu);
    return PyLong_FromLong(n);
}

static PyMethodDef Model_methods[] = {
    {"score_pairs", (PyCFunction)(void (*)(void))Model_score_pairs, METH_VARARGS | METH_KEYWORDS,
     "score_pairs(pairs, max_length=None, raw=False, progress=None, instruction=None) -> list[float]\n\n"
     "Scores [query, document] pairs as rr_score_pairs_instructed (pair template or decoder prompt,\n"
     "truncation at max_length); jina-reranker-v3: pairs sharing a query are one rr_rank request."},
    {"rank", (PyCFunction)(void (*)(void))Model_rank, METH_VARARGS | METH_KEYWORDS,
     "rank(query, documents, max_length=None, max_query_length=None, overlap=None, top_n=None, raw=False,\n"
     "     progress=None, instruction=None) -> (list[(index, score)], total_tokens)\n\n"
     "rr_rank: long documents windowed (encoders), decoder prompts, jina-reranker-v3 blocks."},
    {"tokenize", (PyCFunction)(void (*)(void))Model_tokenize, METH_VARARGS | METH_KEYWORDS,
     "tokenize(text, text_pair=None, max_length=None) -> (ids, type_ids)"},
    {"info", (PyCFunction)Model_info, METH_NOARGS, "info() -> dict"},
    {"contexts", (PyCFunction)Model_contexts, METH_NOARGS, "contexts() -> int: scoring contexts alive"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rerank._rerank._Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "_Model(dir, precision='auto', threads=None, max_batch_tokens=None, template=None): a loaded model "
              "folder.",
    .tp_methods = Model_methods,
    .tp_init = (initproc)Model_init,
    .tp_new = Model_new,
};

/* ------------------------------------------------------------------ hub */

static int env_true(const char *name) {
    const char *v = getenv(name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

typedef struct pull_progress {
    int quiet, tty, bar_open;
} pull_progress;

/* Progress on Python's sys.stderr (so notebooks show it), as the CLI prints it; Ctrl-C cancels the
 * pull. Runs on the pulling thread without the GIL. */
static int on_pull(void *user, rr_pull_event ev, const char *file, uint64_t done, uint64_t total) {
    pull_progress *p = user;
    PyGILState_STATE g = PyGILState_Ensure();
    int stop = PyErr_CheckSignals() != 0;
    if (!stop && !p->quiet) {
        char a[32], b[32];
        if (ev == RR_PULL_EVENT_PROGRESS) {
            if (p->tty) {
                rr_fmt_bytes(a, sizeof a, done);
                rr_fmt_bytes(b, sizeof b, total);
                int pct = total ? (int)(100.0 * (double)done / (double)total) : 0;
                PySys_WriteStderr("\r%-28.28s %3d%% %s / %s", file, pct, a, b);
                p->bar_open = 1;
            }
        } else {
            if (p->bar_open) PySys_WriteStderr("\n");
            p->bar_open = 0;
            rr_fmt_bytes(a, sizeof a, done);
            if (ev == RR_PULL_EVENT_CACHED) PySys_WriteStderr("%.200s: cached (%s)\n", file, a);
            else if (ev == RR_PULL_EVENT_DONE) PySys_WriteStderr("%.200s: downloaded (%s)\n", file, a);
            else if (ev == RR_PULL_EVENT_ABSENT) PySys_WriteStderr("%.200s: not in the repository, skipped\n", file);
        }
    }
    PyGILState_Release(g);
    return stop;
}

static int stderr_isatty(void) {
    PyObject *err = PySys_GetObject("stderr"); /* borrowed */
    if (!err || err == Py_None) return 0;
    PyObject *r = PyObject_CallMethod(err, "isatty", NULL);
    int tty = r && PyObject_IsTrue(r) == 1;
    Py_XDECREF(r);
    PyErr_Clear();
    return tty;
}

/* rr_pull with progress; the snapshot folder, or NULL with an exception. */
static PyObject *pull_with_progress(const char *repo, const char *rev, int quiet) {
    pull_progress pr = {.quiet = quiet, .tty = stderr_isatty()};
    rr_pull_params pp = rr_pull_default_params();
    pp.revision = rev;
    pp.progress = on_pull;
    pp.progress_user = &pr;
    char dir[4096];
    rr_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rr_pull(repo, &pp, dir, sizeof dir);
    Py_END_ALLOW_THREADS
    if (pr.bar_open) PySys_WriteStderr("\n");
    if (st == RR_ERR_CANCELLED && PyErr_Occurred()) return NULL; /* the KeyboardInterrupt itself */
    if (st) return raise_status(st);
    return PyUnicode_DecodeFSDefault(dir);
}

/* Splits "ORG/NAME@REV" (and an explicit revision, which must agree) into repo[cap] and *rev. */
static int split_rev(const char *name, const char *revision, char *repo, size_t cap, const char **rev) {
    if (snprintf(repo, cap, "%s", name) >= (int)cap) {
        PyErr_Format(PyExc_ValueError, "'%.60s...' is too long for a repository id", name);
        return -1;
    }
    char *at = strchr(repo, '@');
    *rev = revision;
    if (at) {
        *at = 0;
        if (revision && strcmp(revision, at + 1)) {
            PyErr_Format(PyExc_ValueError, "two revisions given: '%s' in the name and revision='%s'", at + 1, revision);
            return -1;
        }
        *rev = at + 1;
    }
    return 0;
}

/* pull(repo_id, revision=None, quiet=False) -> str */
static PyObject *mod_pull(PyObject *mod, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"repo_id", "revision", "quiet", NULL};
    const char *name, *revision = NULL;
    int quiet = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zp:pull", kwlist, &name, &revision, &quiet)) return NULL;
    char repo[512];
    const char *rev;
    if (split_rev(name, revision, repo, sizeof repo, &rev)) return NULL;
    return pull_with_progress(repo, rev, quiet);
}

/* resolve(name=None, revision=None, quiet=False) -> str: the model folder for a folder or a repo id,
 * pulling a repo id that is not cached yet, as every CLI command does with -m. */
static PyObject *mod_resolve(PyObject *mod, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"name", "revision", "quiet", NULL};
    PyObject *name_obj = Py_None;
    const char *revision = NULL;
    int quiet = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Ozp:resolve", kwlist, &name_obj, &revision, &quiet)) return NULL;
    PyObject *bytes = NULL, *result = NULL;
    const char *name = RR_DEFAULT_MODEL;
    if (name_obj != Py_None) {
        if (!PyUnicode_FSConverter(name_obj, &bytes)) return NULL;
        name = PyBytes_AS_STRING(bytes);
        if (!*name) name = RR_DEFAULT_MODEL;
    }
    struct stat sb;
    int is_dir = stat(name, &sb) == 0 && S_ISDIR(sb.st_mode);
    char want[1024], repo[512], dir[4096];
    const char *query = name, *rev;
    if (revision && is_dir) {
        PyErr_Format(PyExc_ValueError, "revision='%s' applies to a repository id, and %s is a folder", revision, name);
        goto done;
    }
    if (revision) {
        if (strchr(name, '@')) {
            if (split_rev(name, revision, repo, sizeof repo, &rev)) goto done; /* checks they agree */
        } else if (snprintf(want, sizeof want, "%s@%s", name, revision) < (int)sizeof want) {
            query = want;
        }
    }
    rr_status st;
    Py_BEGIN_ALLOW_THREADS
    st = rr_hub_resolve(query, false, dir, sizeof dir);
    Py_END_ALLOW_THREADS
    if (st == RR_OK) {
        result = PyUnicode_DecodeFSDefault(dir);
    } else if (st == RR_ERR_NOT_FOUND && !env_true("HF_HUB_OFFLINE")) {
        if (split_rev(query, NULL, repo, sizeof repo, &rev)) goto done;
        if (!quiet) PySys_WriteStderr("rerank: %.400s is not in the cache; downloading it\n", repo);
        result = pull_with_progress(repo, rev, quiet);
    } else if (st == RR_ERR_INVALID && stat(name, &sb) != 0) {
        /* neither a folder nor a repository id: for Python, a missing path */
        PyErr_SetString(PyExc_FileNotFoundError, rr_errmsg());
    } else {
        raise_status(st);
    }
done:
    Py_XDECREF(bytes);
    return result;
}

static PyObject *mod_sigmoid(PyObject *mod, PyObject *arg) {
    double x = PyFloat_AsDouble(arg);
    if (x == -1.0 && PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble(rr_sigmoid((float)x));
}

static PyMethodDef module_methods[] = {
    {"pull", (PyCFunction)(void (*)(void))mod_pull, METH_VARARGS | METH_KEYWORDS,
     "pull(repo_id, revision=None, quiet=False) -> str: download into the Hugging Face cache."},
    {"resolve", (PyCFunction)(void (*)(void))mod_resolve, METH_VARARGS | METH_KEYWORDS,
     "resolve(name=None, revision=None, quiet=False) -> str: the model folder for a folder or repo id."},
    {"sigmoid", mod_sigmoid, METH_O, "sigmoid(x) -> float: the library's float32 sigmoid."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "rerank._rerank", "The C binding of librerank (use the rerank package).", -1,
    module_methods,        NULL,             NULL,                                                    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__rerank(void);
PyMODINIT_FUNC PyInit__rerank(void) {
    if (PyType_Ready(&ModelType) < 0) return NULL;
    static int atfork_done;
    if (!atfork_done && pthread_atfork(NULL, NULL, after_fork_child) == 0) atfork_done = 1;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(m, "_Model", (PyObject *)&ModelType) < 0 ||
        PyModule_AddStringConstant(m, "__version__", RR_VERSION) < 0 ||
        PyModule_AddStringConstant(m, "DEFAULT_MODEL", RR_DEFAULT_MODEL) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
