/*
 * names.c -- the pure parts of the hub client: repo id and file name checks, cache paths, resolve
 * URLs and the parsing of the hub's response headers.
 *
 * Everything a server sends that ends up in a path (ETag, commit, shard names) is checked here first:
 * a hostile endpoint must not be able to write outside the cache with "../" in a header.
 */
#include "hub/hub.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* ------------------------------------------------------------------ checks */

static int name_char(int c) { return isalnum(c) || c == '-' || c == '_' || c == '.'; }

rr_status rr_hub_check_repo_id(const char *id) {
    if (!id || !*id) return rr_fail(RR_ERR_INVALID, "empty repository id (expected ORG/NAME)");
    size_t n = strlen(id);
    if (n > 96)
        return rr_fail(RR_ERR_INVALID, "repository id '%.40s...' is %zu characters long, more than 96", id, n);
    const char *slash = strchr(id, '/');
    if (slash && strchr(slash + 1, '/'))
        return rr_fail(RR_ERR_INVALID, "repository id '%s' has more than one '/' (expected ORG/NAME)", id);
    for (const char *p = id; *p; p++)
        if (*p != '/' && !name_char((unsigned char)*p))
            return rr_fail(RR_ERR_INVALID,
                           "repository id '%s' contains '%c'; only letters, digits, '-', '_' and '.' are allowed",
                           id, isprint((unsigned char)*p) ? *p : '?');
    if (strstr(id, "..") || strstr(id, "--"))
        return rr_fail(RR_ERR_INVALID, "repository id '%s' must not contain '..' or '--'", id);
    /* each part: non-empty, not starting or ending with '-' or '.' */
    const char *part = id;
    for (;;) {
        const char *end = strchr(part, '/');
        size_t len = end ? (size_t)(end - part) : strlen(part);
        if (len == 0) return rr_fail(RR_ERR_INVALID, "repository id '%s' has an empty part (expected ORG/NAME)", id);
        if (strchr("-.", part[0]) || strchr("-.", part[len - 1]))
            return rr_fail(RR_ERR_INVALID, "repository id '%s': a part starts or ends with '-' or '.'", id);
        if (!end) break;
        part = end + 1;
    }
    return RR_OK;
}

rr_status rr_hub_check_revision(const char *rev) {
    if (!rev || !*rev) return rr_fail(RR_ERR_INVALID, "empty revision");
    size_t n = strlen(rev);
    if (n > 255) return rr_fail(RR_ERR_INVALID, "revision '%.40s...' is longer than 255 characters", rev);
    for (const char *p = rev; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '\\')
            return rr_fail(RR_ERR_INVALID, "revision '%s' contains a space, control character or '\\'", rev);
    if (strstr(rev, "..") || rev[0] == '/' || rev[n - 1] == '/' || strstr(rev, "//"))
        return rr_fail(RR_ERR_INVALID, "revision '%s' must not contain '..', '//' or start or end with '/'", rev);
    return RR_OK;
}

rr_status rr_hub_check_filename(const char *name) {
    if (!name || !*name) return rr_fail(RR_ERR_INVALID, "empty file name");
    if (strlen(name) > 255) return rr_fail(RR_ERR_INVALID, "file name '%.40s...' is too long", name);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f || *p == '\\')
            return rr_fail(RR_ERR_INVALID, "file name '%s' contains a control character or '\\'", name);
    const char *part = name;
    for (;;) {
        const char *end = strchr(part, '/');
        size_t len = end ? (size_t)(end - part) : strlen(part);
        if (len == 0 || (len == 1 && part[0] == '.') || (len == 2 && part[0] == '.' && part[1] == '.'))
            return rr_fail(RR_ERR_INVALID, "file name '%s' is not a plain relative path", name);
        if (!end) break;
        part = end + 1;
    }
    return RR_OK;
}

static int all_hex(const char *s, size_t n, int lower_only) {
    if (!s || strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (!(isdigit(c) || (c >= 'a' && c <= 'f') || (!lower_only && c >= 'A' && c <= 'F'))) return 0;
    }
    return 1;
}

int rr_hub_is_commit(const char *s) { return all_hex(s, 40, 1); }
int rr_hub_is_sha256(const char *s) { return all_hex(s, 64, 0); }

int rr_hub_env_true(const char *v) {
    if (!v) return 0;
    static const char *const yes[] = {"1", "true", "yes", "on"};
    for (size_t i = 0; i < RR_ARRAY_LEN(yes); i++)
        if (!strcasecmp(v, yes[i])) return 1;
    return 0;
}

/* ------------------------------------------------------------------ paths and URLs */

static rr_status fit(int n, size_t cap, const char *what) {
    if (n < 0 || (size_t)n >= cap) return rr_fail(RR_ERR_RANGE, "%s does not fit in %zu bytes", what, cap);
    return RR_OK;
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

rr_status rr_hub_cache_root(char *out, size_t cap) {
    const char *v;
    if ((v = env_nonempty("HF_HUB_CACHE")) || (v = env_nonempty("HUGGINGFACE_HUB_CACHE")))
        return fit(snprintf(out, cap, "%s", v), cap, "the cache path");
    if ((v = env_nonempty("HF_HOME"))) return fit(snprintf(out, cap, "%s/hub", v), cap, "the cache path");
    if ((v = env_nonempty("XDG_CACHE_HOME")))
        return fit(snprintf(out, cap, "%s/huggingface/hub", v), cap, "the cache path");
    if ((v = env_nonempty("HOME")))
        return fit(snprintf(out, cap, "%s/.cache/huggingface/hub", v), cap, "the cache path");
    return rr_fail(RR_ERR_NOT_FOUND, "no model cache: set HF_HOME or HF_HUB_CACHE (HOME is not set either)");
}

rr_status rr_hub_repo_folder(const char *cache, const char *repo_id, char *out, size_t cap) {
    rr_status st = rr_hub_check_repo_id(repo_id);
    if (st != RR_OK) return st;
    const char *slash = strchr(repo_id, '/');
    int n = slash ? snprintf(out, cap, "%s/models--%.*s--%s", cache, (int)(slash - repo_id), repo_id, slash + 1)
                  : snprintf(out, cap, "%s/models--%s", cache, repo_id);
    return fit(n, cap, "the cache path");
}

rr_status rr_hub_blob_link(const char *file, const char *etag, char *out, size_t cap) {
    size_t depth = 0;
    for (const char *p = file; *p; p++) depth += *p == '/';
    size_t need = 3 * (depth + 2) + strlen("blobs/") + strlen(etag) + 1;
    if (need > cap) return rr_fail(RR_ERR_RANGE, "symlink target for %s does not fit in %zu bytes", file, cap);
    char *o = out;
    for (size_t i = 0; i < depth + 2; i++) memcpy(o, "../", 3), o += 3;
    sprintf(o, "blobs/%s", etag);
    return RR_OK;
}

/* Percent-encodes s into b; '/' stays when keep_slash (RFC 3986 unreserved characters stay). */
static void url_encode(rr_buf *b, const char *s, int keep_slash) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p) || (keep_slash && *p == '/'))
            rr_buf_append(b, p, 1);
        else
            rr_buf_printf(b, "%%%02X", *p);
    }
}

rr_status rr_hub_resolve_url(const char *endpoint, const char *repo_id, const char *revision,
                             const char *file, char *out, size_t cap) {
    rr_buf b = {0};
    rr_buf_printf(&b, "%s/%s/resolve/", endpoint, repo_id);
    url_encode(&b, revision, 0);
    rr_buf_puts(&b, "/");
    url_encode(&b, file, 1);
    rr_status st = RR_OK;
    if (b.oom)
        st = rr_fail(RR_ERR_NOMEM, "out of memory building the URL of %s", file);
    else
        st = fit(snprintf(out, cap, "%.*s", (int)b.len, b.data), cap, "the URL");
    rr_buf_free(&b);
    return st;
}

void rr_hub_endpoint(char *out, size_t cap) {
    const char *v = env_nonempty("HF_ENDPOINT");
    snprintf(out, cap, "%s", v ? v : "https://huggingface.co");
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/') out[--n] = 0;
}

/* ------------------------------------------------------------------ response headers */

void rr_hub_meta_reset(rr_hub_meta *m) {
    memset(m, 0, sizeof *m);
    m->size = -1;
    m->linked_size = -1;
    m->range_start = -1;
}

/* Copies a header value without surrounding blanks, truncated to cap. */
static void copy_value(char *dst, size_t cap, const char *v, size_t n) {
    while (n && (*v == ' ' || *v == '\t')) v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static int64_t parse_size(const char *s) {
    char *end;
    if (!isdigit((unsigned char)*s)) return -1;
    long long v = strtoll(s, &end, 10);
    return *end == 0 && v >= 0 ? (int64_t)v : -1;
}

/* ETags arrive quoted, sometimes weak ('W/"abc"'); the cache names blobs by the bare value. */
static void normalize_etag(char *e) {
    char *p = e;
    if (p[0] == 'W' && p[1] == '/') p += 2;
    size_t n = strlen(p);
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') p++, n -= 2;
    memmove(e, p, n);
    e[n] = 0;
}

void rr_hub_meta_header(rr_hub_meta *m, const char *line, size_t len) {
    if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
        rr_hub_meta_reset(m);
        const char *sp = memchr(line, ' ', len);
        if (sp) m->status = strtol(sp + 1, NULL, 10);
        return;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon) return;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    char val[2048];
    copy_value(val, sizeof val, v, vlen);
#define IS(name) (nlen == strlen(name) && !strncasecmp(line, name, nlen))
    if (IS("X-Repo-Commit")) {
        copy_value(m->commit, sizeof m->commit, val, strlen(val));
    } else if (IS("X-Linked-Etag")) {
        copy_value(m->etag, sizeof m->etag, val, strlen(val));
        normalize_etag(m->etag);
        m->linked = 1;
    } else if (IS("ETag")) {
        if (!m->linked) {
            copy_value(m->etag, sizeof m->etag, val, strlen(val));
            normalize_etag(m->etag);
        }
    } else if (IS("X-Linked-Size")) {
        m->linked_size = parse_size(val);
        if (m->linked_size >= 0) m->size = m->linked_size;
    } else if (IS("Content-Length")) {
        if (m->linked_size < 0) m->size = parse_size(val);
    } else if (IS("Location")) {
        copy_value(m->location, sizeof m->location, val, strlen(val));
    } else if (IS("X-Error-Code")) {
        copy_value(m->error_code, sizeof m->error_code, val, strlen(val));
    } else if (IS("X-Error-Message")) {
        copy_value(m->error_msg, sizeof m->error_msg, val, strlen(val));
    } else if (IS("Content-Range")) {
        /* "bytes START-END/TOTAL" */
        if (!strncasecmp(val, "bytes ", 6)) {
            char *end;
            long long s = strtoll(val + 6, &end, 10);
            if (end != val + 6 && *end == '-' && s >= 0) m->range_start = s;
        }
    }
#undef IS
}
