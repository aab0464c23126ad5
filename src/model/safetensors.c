/*
 * safetensors.c -- maps safetensors files and validates their headers (see safetensors.h).
 *
 * Validation happens once, here, so the rest of the engine can trust every rr_st_tensor: the byte
 * range lies inside the mapping, matches shape x dtype, and overlaps no other tensor. Sharded models
 * (model.safetensors.index.json) are merged into one sorted table; a name in two shards, a shard
 * outside the folder or an index entry whose tensor is missing is refused.
 */
#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/mman.h>

#define ST_MAX_HEADER (100u << 20) /* the format's own limit on header size */
#define ST_MAX_FILES 256

struct rr_st {
    char *source;      /* model.safetensors or the index file: named in messages */
    int n_files;
    rr_mmap *maps;     /* [n_files] */
    char **paths;      /* [n_files] */
    int n_tensors, cap;
    rr_st_tensor *tensors; /* sorted by name once loading is done */
};

size_t rr_dtype_size(rr_dtype t) {
    switch (t) {
    case RR_DTYPE_F32: return 4;
    case RR_DTYPE_F16:
    case RR_DTYPE_BF16: return 2;
    case RR_DTYPE_I64: return 8;
    case RR_DTYPE_OTHER: return 0;
    }
    return 0;
}

const char *rr_dtype_name(rr_dtype t) {
    static const char *names[] = {"F32", "F16", "BF16", "I64", "other"};
    return (unsigned)t < RR_ARRAY_LEN(names) ? names[t] : "?";
}

/* Element size of a safetensors dtype string, 0 if unknown. */
static size_t parse_dtype(const char *s, rr_dtype *t) {
    static const struct {
        const char *name;
        rr_dtype t;
        size_t size;
    } tab[] = {
        {"F32", RR_DTYPE_F32, 4},   {"F16", RR_DTYPE_F16, 2},   {"BF16", RR_DTYPE_BF16, 2},
        {"I64", RR_DTYPE_I64, 8},   {"F64", RR_DTYPE_OTHER, 8}, {"I32", RR_DTYPE_OTHER, 4},
        {"U32", RR_DTYPE_OTHER, 4}, {"I16", RR_DTYPE_OTHER, 2}, {"U16", RR_DTYPE_OTHER, 2},
        {"I8", RR_DTYPE_OTHER, 1},  {"U8", RR_DTYPE_OTHER, 1},  {"BOOL", RR_DTYPE_OTHER, 1},
        {"U64", RR_DTYPE_OTHER, 8}, {"F8_E4M3", RR_DTYPE_OTHER, 1}, {"F8_E5M2", RR_DTYPE_OTHER, 1},
    };
    for (size_t i = 0; i < RR_ARRAY_LEN(tab); i++)
        if (!strcmp(s, tab[i].name)) {
            *t = tab[i].t;
            return tab[i].size;
        }
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const rr_st_tensor *)a)->name, ((const rr_st_tensor *)b)->name);
}

static int cmp_ptr(const void *a, const void *b) {
    const rr_st_tensor *x = *(rr_st_tensor *const *)a, *y = *(rr_st_tensor *const *)b;
    uintptr_t p = (uintptr_t)x->data, q = (uintptr_t)y->data;
    return p < q ? -1 : p > q;
}

static rr_status push_tensor(rr_st *st, rr_st_tensor **slot) {
    if (st->n_tensors == st->cap) {
        int cap = st->cap ? st->cap * 2 : 64;
        rr_st_tensor *t = rr_realloc(st->tensors, (size_t)cap * sizeof *t);
        if (!t) return rr_fail(RR_ERR_NOMEM, "out of memory reading safetensors header");
        st->tensors = t;
        st->cap = cap;
    }
    *slot = &st->tensors[st->n_tensors++];
    memset(*slot, 0, sizeof **slot);
    return RR_OK;
}

/* Parses one tensor entry `e` of file `path` whose data section is [data, data + data_len). */
static rr_status parse_entry(rr_st *st, const char *path, const rr_mmap *map, const cJSON *e,
                             const uint8_t *data, size_t data_len) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: entry is not an object", path, name);
    const char *dt = rr_json_get_str(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!dt) return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: missing or non-string \"dtype\"", path, name);
    rr_dtype t;
    size_t esize = parse_dtype(dt, &t);
    if (!esize) return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: unknown dtype \"%s\"", path, name, dt);
    if (!cJSON_IsArray(shape)) return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: missing \"shape\" array", path, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > RR_ST_MAX_DIMS)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: tensor %s: %d dimensions (at most %d supported)", path, name, nd,
                       RR_ST_MAX_DIMS);
    rr_st_tensor *ten = NULL;
    rr_status s = push_tensor(st, &ten);
    if (s) return s;
    ten->dtype = t;
    ten->n_dims = nd;
    ten->file = path;
    ten->map = map;
    uint64_t nelem = 1;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 4e15 ||
            d->valuedouble != (double)(int64_t)d->valuedouble)
            return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: shape[%d] is not a non-negative integer", path, name, i);
        ten->shape[i] = (int64_t)d->valuedouble;
        if (ten->shape[i] && nelem > UINT64_MAX / 16 / (uint64_t)ten->shape[i])
            return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: shape overflows", path, name);
        nelem *= (uint64_t)ten->shape[i];
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: \"data_offsets\" must be [begin, end]", path, name);
    double b = offs->child->valuedouble, en = offs->child->next->valuedouble;
    /* range first: converting a double past 2^64 (or inf, as cJSON reads 1e999) to an integer is undefined */
    if (!cJSON_IsNumber(offs->child) || !cJSON_IsNumber(offs->child->next) || !(b >= 0) || !(en >= b) ||
        en >= 18446744073709551616.0 || b != (double)(uint64_t)b || en != (double)(uint64_t)en)
        return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: bad data_offsets", path, name);
    uint64_t begin = (uint64_t)b, end = (uint64_t)en;
    if (end > data_len)
        return rr_fail(RR_ERR_FORMAT,
                       "%s: tensor %s: data_offsets [%llu, %llu) run past the end of the file's %zu data bytes "
                       "(truncated file?)",
                       path, name, (unsigned long long)begin, (unsigned long long)end, data_len);
    if (end - begin != nelem * esize)
        return rr_fail(RR_ERR_FORMAT, "%s: tensor %s: %llu bytes for shape of %llu %s elements", path, name,
                       (unsigned long long)(end - begin), (unsigned long long)nelem, dt);
    ten->name = rr_strdup(name);
    if (!ten->name) return rr_fail(RR_ERR_NOMEM, "out of memory reading %s", path);
    ten->data = data + begin;
    ten->nbytes = (size_t)(end - begin);
    ten->offset = (size_t)(data - map->data) + (size_t)begin;
    return RR_OK;
}

/* Maps `path` and appends its tensors, each validated against the file. */
static rr_status add_file(rr_st *st, const char *path) {
    if (st->n_files >= ST_MAX_FILES) return rr_fail(RR_ERR_UNSUPPORTED, "%s: more than %d shards", path, ST_MAX_FILES);
    char *p = rr_strdup(path);
    if (!p) return rr_fail(RR_ERR_NOMEM, "out of memory");
    st->paths[st->n_files] = p;
    rr_mmap *m = &st->maps[st->n_files];
    st->n_files++;
    rr_status s = rr_mmap_open(path, m);
    if (s) return s;
    if (m->size < 8) return rr_fail(RR_ERR_FORMAT, "%s: file is %zu bytes, too short for a safetensors header", path, m->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | m->data[i];
    if (n > ST_MAX_HEADER || n > m->size - 8)
        return rr_fail(RR_ERR_FORMAT, "%s: header length %llu exceeds the file size %zu (truncated or not safetensors)",
                       path, (unsigned long long)n, m->size);
    cJSON *hdr = NULL;
    s = rr_json_parse((const char *)m->data + 8, (size_t)n, path, &hdr);
    if (s) {
        rr_errmsg_prefix("safetensors header");
        return s;
    }
    if (!cJSON_IsObject(hdr)) {
        cJSON_Delete(hdr);
        return rr_fail(RR_ERR_FORMAT, "%s: safetensors header is not a JSON object", path);
    }
    const uint8_t *data = m->data + 8 + n;
    size_t data_len = m->size - 8 - (size_t)n;
    int first = st->n_tensors;
    for (const cJSON *e = hdr->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) continue;
        s = parse_entry(st, p, m, e, data, data_len);
        if (s) break;
    }
    cJSON_Delete(hdr);
    if (s) return s;
    /* no two tensors of this file may share bytes */
    int cnt = st->n_tensors - first;
    if (cnt > 1) {
        rr_st_tensor **v = rr_malloc((size_t)cnt * sizeof *v);
        if (!v) return rr_fail(RR_ERR_NOMEM, "out of memory");
        for (int i = 0; i < cnt; i++) v[i] = &st->tensors[first + i];
        qsort(v, (size_t)cnt, sizeof *v, cmp_ptr);
        for (int i = 1; i < cnt; i++) {
            const uint8_t *prev_end = (const uint8_t *)v[i - 1]->data + v[i - 1]->nbytes;
            if ((const uint8_t *)v[i]->data < prev_end && v[i]->nbytes && v[i - 1]->nbytes) {
                s = rr_fail(RR_ERR_FORMAT, "%s: tensors %s and %s overlap", path, v[i - 1]->name, v[i]->name);
                break;
            }
        }
        rr_free(v);
    }
    return s;
}

static rr_status st_new(int max_files, rr_st **out) {
    rr_st *st = rr_calloc(1, sizeof *st);
    if (!st) return rr_fail(RR_ERR_NOMEM, "out of memory");
    st->maps = rr_calloc((size_t)max_files, sizeof *st->maps);
    st->paths = rr_calloc((size_t)max_files, sizeof *st->paths);
    if (!st->maps || !st->paths) {
        rr_st_close(st);
        return rr_fail(RR_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < max_files; i++) st->maps[i].fd = -1;
    *out = st;
    return RR_OK;
}

static rr_status finish(rr_st *st, const char *what) {
    if (st->n_tensors > 1) qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_name);
    for (int i = 1; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, st->tensors[i - 1].name))
            return rr_fail(RR_ERR_FORMAT, "%s: tensor %s appears twice (in %s and %s)", what, st->tensors[i].name,
                           st->tensors[i - 1].file, st->tensors[i].file);
    return RR_OK;
}

rr_status rr_st_open_file(const char *path, rr_st **out) {
    rr_json_init();
    rr_st *st;
    rr_status s = st_new(1, &st);
    if (s) return s;
    st->source = rr_strdup(path);
    s = st->source ? add_file(st, path) : rr_fail(RR_ERR_NOMEM, "out of memory");
    if (!s) s = finish(st, path);
    if (s) {
        rr_st_close(st);
        return s;
    }
    *out = st;
    return RR_OK;
}

static bool safe_shard_name(const char *f) {
    return *f && !strchr(f, '/') && strcmp(f, ".") && strcmp(f, "..");
}

static rr_status open_index(const char *dir, const char *index_path, rr_st **out) {
    char *text = NULL;
    size_t len;
    rr_status s = rr_file_read(index_path, 64u << 20, &text, &len);
    if (s) return s;
    cJSON *idx = NULL;
    s = rr_json_parse(text, len, index_path, &idx);
    rr_free(text);
    if (s) return s;
    rr_st *st = NULL;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        s = rr_fail(RR_ERR_FORMAT, "%s: missing or empty \"weight_map\" object", index_path);
        goto done;
    }
    /* distinct shard names, in order of first appearance */
    const char *files[ST_MAX_FILES];
    int n_files = 0;
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !safe_shard_name(e->valuestring)) {
            s = rr_fail(RR_ERR_FORMAT, "%s: weight_map entry %s: shard name must be a file name in the model folder",
                        index_path, e->string);
            goto done;
        }
        int k = 0;
        while (k < n_files && strcmp(files[k], e->valuestring)) k++;
        if (k == n_files) {
            if (n_files == ST_MAX_FILES) {
                s = rr_fail(RR_ERR_UNSUPPORTED, "%s: more than %d shards", index_path, ST_MAX_FILES);
                goto done;
            }
            files[n_files++] = e->valuestring;
        }
    }
    s = st_new(n_files, &st);
    if (s) goto done;
    st->source = rr_strdup(index_path);
    if (!st->source) {
        s = rr_fail(RR_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < n_files && !s; k++) {
        char *p = rr_path_join(dir, files[k]);
        if (!p) {
            s = rr_fail(RR_ERR_NOMEM, "out of memory");
            break;
        }
        s = add_file(st, p);
        rr_free(p);
    }
    if (!s) s = finish(st, index_path);
    /* every tensor the index promises must be in the shard it names */
    for (const cJSON *e = wm->child; e && !s; e = e->next) {
        const rr_st_tensor *t = rr_st_find(st, e->string);
        if (!t) {
            s = rr_fail(RR_ERR_FORMAT, "%s: tensor %s is listed in the index but missing from shard %s", index_path,
                        e->string, e->valuestring);
        } else {
            const char *base = strrchr(t->file, '/');
            base = base ? base + 1 : t->file;
            if (strcmp(base, e->valuestring))
                s = rr_fail(RR_ERR_FORMAT, "%s: tensor %s is listed in shard %s but found in %s", index_path, e->string,
                            e->valuestring, base);
        }
    }
done:
    cJSON_Delete(idx);
    if (s) {
        rr_st_close(st);
        return s;
    }
    *out = st;
    return RR_OK;
}

rr_status rr_st_open_dir(const char *dir, rr_st **out) {
    rr_json_init();
    char *single = rr_path_join(dir, "model.safetensors");
    char *index = rr_path_join(dir, "model.safetensors.index.json");
    rr_status s;
    if (!single || !index) {
        s = rr_fail(RR_ERR_NOMEM, "out of memory");
    } else if (rr_file_exists(single)) {
        s = rr_st_open_file(single, out);
    } else if (rr_file_exists(index)) {
        s = open_index(dir, index, out);
    } else {
        s = rr_fail(RR_ERR_NOT_FOUND, "%s: no model.safetensors or model.safetensors.index.json (only safetensors "
                                      "weights are supported)", dir);
    }
    rr_free(single);
    rr_free(index);
    return s;
}

void rr_st_unmap(rr_st *st) {
    if (!st) return;
    for (int i = 0; i < st->n_files; i++) {
        rr_mmap *m = &st->maps[i];
        if (m->data) munmap((void *)m->data, m->size);
        m->data = NULL;
    }
    for (int i = 0; i < st->n_tensors; i++) st->tensors[i].data = NULL;
}

void rr_st_close(rr_st *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) rr_free(st->tensors[i].name);
    rr_free(st->tensors);
    for (int i = 0; i < st->n_files; i++) {
        rr_mmap_close(&st->maps[i]);
        if (st->paths) rr_free(st->paths[i]);
    }
    rr_free(st->maps);
    rr_free(st->paths);
    rr_free(st->source);
    rr_free(st);
}

const rr_st_tensor *rr_st_find(const rr_st *st, const char *name) {
    rr_st_tensor key;
    key.name = (char *)name;
    return st->n_tensors ? bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof key, cmp_name) : NULL;
}

const char *rr_st_source(const rr_st *st) { return st->source; }

int rr_st_count(const rr_st *st) { return st->n_tensors; }
const rr_st_tensor *rr_st_at(const rr_st *st, int i) { return &st->tensors[i]; }

bool rr_st_copy(const rr_st_tensor *t, size_t off, void *dst, size_t n) {
    /* never through the mapping: a file truncated under us would fault (SIGBUS) there, while pread
     * just comes back short */
    if (off > t->nbytes || n > t->nbytes - off) return false;
    return rr_mmap_pread(t->map, t->offset + off, dst, n);
}
