/*
 * pull.c -- rr_pull() and rr_hub_resolve(): fetch a model repository from the Hugging Face hub
 * into the shared cache (layout in hub.h) with libcurl, or find it there.
 *
 * One file at a time:
 *   1. HEAD <endpoint>/<repo>/resolve/<rev>/<file>, following only relative redirects (a renamed
 *      repo). The answer gives the commit (X-Repo-Commit), the blob name (X-Linked-Etag for LFS files,
 *      a sha256, else ETag), the size (X-Linked-Size, else Content-Length) and, for LFS files, a
 *      redirect to the CDN. After the first file every URL names the commit, so a branch that moves
 *      during the pull cannot mix two snapshots.
 *   2. snapshots/<sha>/<file> exists: done. blobs/<etag> exists (another revision or a Python tool
 *      fetched it): link it. Otherwise, under a lock, download into blobs/<etag>.incomplete, resuming
 *      with Range from what is already there, check size and sha256, fsync, rename(2) to
 *      blobs/<etag> and link the snapshot entry. Only a checked file ever gets its final name.
 *   3. refs/<rev> gets the commit once every file is in place.
 * Authorization is sent to the endpoint's own origin only, never to the CDN a redirect names.
 */
#include "hub/hub.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RR_HUB_PATH 4096
#define RR_HUB_MAX_TRIES 4 /* GET attempts per blob; each resumes where the last one stopped */

typedef struct pull {
    const char *repo_id;
    char revision[256];          /* as asked */
    char commit[41];             /* resolved by the first answer (or refs/ offline) */
    char endpoint[1024];
    char token[1024];            /* "" = none */
    char folder[RR_HUB_PATH];    /* <cache>/models--ORG--NAME */
    char locks[RR_HUB_PATH];     /* <cache>/.locks/models--ORG--NAME */
    char snapshot[RR_HUB_PATH];  /* <folder>/snapshots/<commit> */
    int offline, offline_env;
    rr_pull_progress_fn progress;
    void *user;
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
} pull;

/* ------------------------------------------------------------------ small file-system helpers */

static rr_status io_fail(const char *what, const char *path) {
    int e = errno;
    if (e == ENOSPC || e == EDQUOT)
        return rr_fail(RR_ERR_IO, "disk full: cannot %s %s (%s)", what, path, strerror(e));
    return rr_fail(RR_ERR_IO, "cannot %s %s: %s", what, path, strerror(e));
}

static rr_status mkdirs(const char *path) {
    char tmp[RR_HUB_PATH];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return rr_fail(RR_ERR_RANGE, "path too long: %.80s...", path);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return io_fail("create the folder", tmp);
        *p = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return rr_fail(RR_ERR_IO, "%s is not a folder", path);
    return RR_OK;
}

static rr_status mkdirs_parent(const char *path) {
    char tmp[RR_HUB_PATH];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash || slash == tmp) return RR_OK;
    *slash = 0;
    return mkdirs(tmp);
}

static int is_file(const char *path, int64_t *size) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    if (size) *size = st.st_size;
    return 1;
}

#define PATHF(buf, ...)                                                                            \
    (snprintf(buf, sizeof buf, __VA_ARGS__) >= (int)sizeof buf                                     \
         ? rr_fail(RR_ERR_RANGE, "path too long: %.80s...", buf)                                   \
         : RR_OK)

/* Writes `text` to path atomically (temporary file + rename). */
static rr_status write_small_file(const char *path, const char *text) {
    char tmp[RR_HUB_PATH];
    rr_status st = PATHF(tmp, "%s.tmp.%ld", path, (long)getpid());
    if (st != RR_OK) return st;
    if ((st = mkdirs_parent(path)) != RR_OK) return st;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return io_fail("create", tmp);
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n || close(fd) != 0) {
        st = io_fail("write", tmp);
        unlink(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        st = io_fail("rename into", path);
        unlink(tmp);
    }
    return st;
}

/* Points snapshots/<commit>/<file> at blobs/<etag> with a relative link, replacing a stale one. */
static rr_status link_snapshot(pull *P, const char *file, const char *etag) {
    char ptr[RR_HUB_PATH], target[RR_HUB_PATH], tmp[RR_HUB_PATH], cur[RR_HUB_PATH];
    rr_status st;
    if ((st = PATHF(ptr, "%s/%s", P->snapshot, file)) != RR_OK) return st;
    if ((st = rr_hub_blob_link(file, etag, target, sizeof target)) != RR_OK) return st;
    ssize_t n = readlink(ptr, cur, sizeof cur - 1);
    if (n >= 0) {
        cur[n] = 0;
        if (!strcmp(cur, target)) return RR_OK;
    }
    if ((st = mkdirs_parent(ptr)) != RR_OK) return st;
    if ((st = PATHF(tmp, "%s.tmp.%ld", ptr, (long)getpid())) != RR_OK) return st;
    unlink(tmp);
    if (symlink(target, tmp) != 0) return io_fail("create the link", tmp);
    if (rename(tmp, ptr) != 0) {
        st = io_fail("rename into", ptr);
        unlink(tmp);
        return st;
    }
    return RR_OK;
}

/* ------------------------------------------------------------------ HTTP */

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc;
static void curl_init_once(void) { g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_header(char *buf, size_t size, size_t n, void *user) {
    rr_hub_meta_header(user, buf, size * n);
    return size * n;
}

static size_t discard_body(char *buf, size_t size, size_t n, void *user) {
    (void)buf, (void)user;
    return size * n;
}

/* Whether two URLs have the same scheme, host and port. */
static int same_origin(const char *a, const char *b) {
    CURLU *ua = curl_url(), *ub = curl_url();
    int same = 0;
    if (ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
        curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK) {
        static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
        same = 1;
        for (size_t i = 0; i < RR_ARRAY_LEN(parts) && same; i++) {
            char *x = NULL, *y = NULL;
            unsigned flags = parts[i] == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0;
            if (curl_url_get(ua, parts[i], &x, flags) != CURLUE_OK ||
                curl_url_get(ub, parts[i], &y, flags) != CURLUE_OK || strcasecmp(x, y))
                same = 0;
            curl_free(x);
            curl_free(y);
        }
    }
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

/* Resolves a redirect's Location against the URL that answered. */
static rr_status join_url(const char *base, const char *loc, char *out, size_t cap) {
    CURLU *u = curl_url();
    char *s = NULL;
    rr_status st = RR_OK;
    if (!u) return rr_fail(RR_ERR_NOMEM, "out of memory parsing a URL");
    if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_URL, loc, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK)
        st = rr_fail(RR_ERR_NETWORK, "the hub redirected %s to an invalid URL '%.200s'", base, loc);
    else if (snprintf(out, cap, "%s", s) >= (int)cap)
        st = rr_fail(RR_ERR_RANGE, "redirect URL too long: %.80s...", s);
    curl_free(s);
    curl_url_cleanup(u);
    return st;
}

/* Common options of every request; headers are built by the caller. */
static void curl_common(pull *P, const char *url, struct curl_slist *headers) {
    CURL *c = P->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "rerank/" RR_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, P->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    /* a stalled transfer (under 1 byte/s for 60 s) fails and is resumed, rather than hanging */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    P->errbuf[0] = 0;
}

static struct curl_slist *auth_headers(pull *P, struct curl_slist *h, int with_auth) {
    if (with_auth && P->token[0]) {
        char line[1100];
        snprintf(line, sizeof line, "Authorization: Bearer %s", P->token);
        h = curl_slist_append(h, line);
    }
    return h;
}

static rr_status curl_fail(pull *P, CURLcode rc, const char *url) {
    return rr_fail(RR_ERR_NETWORK, "cannot reach %s: %s", url, P->errbuf[0] ? P->errbuf : curl_easy_strerror(rc));
}

typedef enum {
    FILE_REQUIRED, /* missing -> error */
    FILE_OPTIONAL, /* missing -> skipped, recorded under .no_exist */
} file_need;

/* Turns a failed HEAD answer into a status. *absent = 1 when the repository exists but the file
 * does not (404 EntryNotFound). */
static rr_status http_error(pull *P, const char *file, const rr_hub_meta *m, const char *url, int *absent) {
    const char *code = m->error_code;
    *absent = 0;
    if (!strcmp(code, "RepoNotFound"))
        return rr_fail(RR_ERR_NOT_FOUND, "repository %s not found on %s%s", P->repo_id, P->endpoint,
                       P->token[0] ? "" : " (if it is private, set HF_TOKEN)");
    if (!strcmp(code, "RevisionNotFound"))
        return rr_fail(RR_ERR_NOT_FOUND, "revision '%s' not found in repository %s", P->revision, P->repo_id);
    if (!strcmp(code, "GatedRepo") || m->status == 401 || m->status == 403) {
        if (P->token[0])
            return rr_fail(RR_ERR_NETWORK,
                           "%s: access denied (HTTP %ld) with the token in HF_TOKEN; accept the model's terms on "
                           "the hub or use a token that can read it",
                           P->repo_id, m->status);
        return rr_fail(RR_ERR_NETWORK, "%s is gated or private (HTTP %ld): set HF_TOKEN to a token with access",
                       P->repo_id, m->status);
    }
    if (!strcmp(code, "EntryNotFound") || m->status == 404) {
        if (!P->commit[0] && strcmp(code, "EntryNotFound"))
            /* 404 on the very first file without a code: nothing tells repo and file apart */
            return rr_fail(RR_ERR_NOT_FOUND, "repository %s not found on %s (no %s at revision %s)", P->repo_id,
                           P->endpoint, file, P->revision);
        *absent = 1;
        return rr_fail(RR_ERR_NOT_FOUND, "%s has no file %s at revision %s", P->repo_id, file, P->revision);
    }
    return rr_fail(RR_ERR_NETWORK, "%s: HTTP %ld from %s%s%s", P->repo_id, m->status, url,
                   m->error_msg[0] ? ": " : "", m->error_msg);
}

/* HEAD of a file's resolve URL. Fills *m with the metadata and dl_url with where to GET it. */
static rr_status head_file(pull *P, const char *file, rr_hub_meta *m, char *dl_url, size_t cap, int *absent) {
    char url[4096];
    rr_status st = rr_hub_resolve_url(P->endpoint, P->repo_id, P->commit[0] ? P->commit : P->revision, file, url,
                                      sizeof url);
    if (st != RR_OK) return st;
    *absent = 0;
    for (int hop = 0;; hop++) {
        struct curl_slist *h = curl_slist_append(NULL, "Accept-Encoding: identity");
        h = auth_headers(P, h, same_origin(url, P->endpoint));
        if (!h) return rr_fail(RR_ERR_NOMEM, "out of memory building a request");
        curl_common(P, url, h);
        curl_easy_setopt(P->curl, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(P->curl, CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(P->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(P->curl, CURLOPT_HEADERDATA, m);
        curl_easy_setopt(P->curl, CURLOPT_WRITEFUNCTION, discard_body);
        rr_hub_meta_reset(m);
        CURLcode rc = curl_easy_perform(P->curl);
        curl_slist_free_all(h);
        if (rc != CURLE_OK) return curl_fail(P, rc, url);
        if (m->status >= 300 && m->status < 400 && m->location[0]) {
            if (m->location[0] == '/' && m->location[1] != '/') {
                /* relative: a renamed repo, or the hub's resolve cache for small files; the metadata
                 * is in the final answer (huggingface_hub follows these too) */
                if (hop >= 5) return rr_fail(RR_ERR_NETWORK, "%s: too many redirects from %s", P->repo_id, url);
                char next[4096];
                if ((st = join_url(url, m->location, next, sizeof next)) != RR_OK) return st;
                snprintf(url, sizeof url, "%s", next);
                continue;
            }
            /* absolute: the CDN holding an LFS file; the metadata came with the redirect */
            if ((st = join_url(url, m->location, dl_url, cap)) != RR_OK) return st;
            break;
        }
        if (m->status >= 200 && m->status < 300) {
            snprintf(dl_url, cap, "%s", url);
            break;
        }
        return http_error(P, file, m, url, absent);
    }
    if (!rr_hub_is_commit(m->commit))
        return rr_fail(RR_ERR_NETWORK,
                       "%s answered for %s/%s without a valid X-Repo-Commit header: is HF_ENDPOINT a Hugging Face hub?",
                       P->endpoint, P->repo_id, file);
    if (!m->etag[0] || strchr(m->etag, '/') || strstr(m->etag, "..") || strlen(m->etag) > 128 ||
        m->etag[0] == '.')
        return rr_fail(RR_ERR_NETWORK, "%s answered for %s/%s without a usable ETag ('%s')", P->endpoint,
                       P->repo_id, file, m->etag);
    for (const char *p = m->etag; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'))
            return rr_fail(RR_ERR_NETWORK, "%s answered for %s/%s with an ETag that is not a file name ('%s')",
                           P->endpoint, P->repo_id, file, m->etag);
    if (m->size < 0 && m->linked)
        return rr_fail(RR_ERR_NETWORK, "%s answered for %s/%s without X-Linked-Size", P->endpoint, P->repo_id, file);
    return RR_OK;
}

/* ------------------------------------------------------------------ resumable download of one blob */

typedef struct xfer {
    pull *P;
    const char *file;
    const char *tmp;   /* blobs/<etag>.incomplete */
    int fd;
    int64_t have;      /* bytes in tmp */
    int64_t expect;    /* announced size, -1 unknown */
    int hashing;       /* LFS file: the etag is the sha256 */
    rr_hub_sha256 sha;
    rr_hub_meta meta;  /* headers of the GET (last response of the redirect chain) */
    int started;       /* the status of the response with a body was checked */
    int cancelled;
    rr_status err;     /* set by a callback that stopped the transfer */
    double last_progress;
} xfer;

static size_t on_body(char *buf, size_t size, size_t n, void *user) {
    xfer *x = user;
    size_t len = size * n;
    if (!x->started) {
        x->started = 1;
        long code = x->meta.status;
        if (code == 200 && x->have > 0) {
            /* the server ignored Range: start over */
            if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
                x->err = io_fail("truncate", x->tmp);
                return 0;
            }
            x->have = 0;
            rr_hub_sha256_init(&x->sha);
        } else if (code == 206) {
            if (x->meta.range_start != x->have) {
                x->err = rr_fail(RR_ERR_NETWORK, "%s/%s: the server resumed at byte %lld instead of %lld",
                                 x->P->repo_id, x->file, (long long)x->meta.range_start, (long long)x->have);
                return 0;
            }
        } else if (code != 200) {
            x->err = rr_fail(RR_ERR_NETWORK, "%s/%s: HTTP %ld while downloading", x->P->repo_id, x->file, code);
            return 0;
        }
    }
    if (x->expect >= 0 && x->have + (int64_t)len > x->expect) {
        x->err = rr_fail(RR_ERR_FORMAT, "%s/%s: the server sent more than the %lld bytes it announced",
                         x->P->repo_id, x->file, (long long)x->expect);
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(x->fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            x->err = io_fail("write", x->tmp);
            return 0;
        }
        off += (size_t)w;
    }
    if (x->hashing) rr_hub_sha256_update(&x->sha, buf, len);
    x->have += (int64_t)len;
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    xfer *x = user;
    if (!x->P->progress) return 0;
    double now = rr_now();
    if (now - x->last_progress < 0.1) return 0;
    x->last_progress = now;
    if (x->P->progress(x->P->user, RR_PULL_EVENT_PROGRESS, x->file, (uint64_t)x->have,
                       x->expect > 0 ? (uint64_t)x->expect : 0)) {
        x->cancelled = 1;
        return 1;
    }
    return 0;
}

/* Hashes the bytes already in the partial file so a resumed download is checked whole. */
static rr_status hash_existing(xfer *x) {
    if (lseek(x->fd, 0, SEEK_SET) != 0) return io_fail("seek", x->tmp);
    char *buf = rr_malloc(1 << 20);
    if (!buf) return rr_fail(RR_ERR_NOMEM, "out of memory hashing %s", x->tmp);
    int64_t left = x->have;
    rr_status st = RR_OK;
    while (left > 0) {
        ssize_t r = read(x->fd, buf, (size_t)RR_MIN(left, (int64_t)(1 << 20)));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            st = r < 0 ? io_fail("read", x->tmp) : rr_fail(RR_ERR_IO, "%s: shrank while reading", x->tmp);
            break;
        }
        rr_hub_sha256_update(&x->sha, buf, (size_t)r);
        left -= r;
    }
    rr_free(buf);
    if (st == RR_OK && lseek(x->fd, 0, SEEK_END) != x->have) st = io_fail("seek", x->tmp);
    return st;
}

static int retryable(CURLcode rc) {
    return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_OPERATION_TIMEDOUT ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR || rc == CURLE_COULDNT_CONNECT ||
           rc == CURLE_HTTP2_STREAM || rc == CURLE_SSL_CONNECT_ERROR;
}

/* Download step 1: opens (or resumes) the partial file x->tmp, keeping its bytes when they can be a
 * prefix of the file (and hashing them when the blob is checked), positioned at its end. */
static rr_status open_partial(xfer *x) {
    x->fd = open(x->tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (x->fd < 0) return io_fail("create", x->tmp);
    struct stat sb;
    if (fstat(x->fd, &sb) != 0) return io_fail("stat", x->tmp);
    x->have = sb.st_size;
    if (x->expect >= 0 && x->have > x->expect) {
        /* longer than the file can be: not a prefix of it */
        if (ftruncate(x->fd, 0) != 0) return io_fail("truncate", x->tmp);
        x->have = 0;
    }
    rr_status st;
    if (x->hashing && x->have > 0 && (st = hash_existing(x)) != RR_OK) return st;
    if (lseek(x->fd, 0, SEEK_END) < 0) return io_fail("seek", x->tmp);
    return RR_OK;
}

/* Download step 2: one HTTP attempt for the bytes from x->have on, appended by on_body. Fails for a
 * cancel, a write error or no memory; otherwise *rc is curl's verdict. */
static rr_status attempt_once(pull *P, xfer *x, const char *dl_url, int same_origin_url, CURLcode *rc) {
    struct curl_slist *h = curl_slist_append(NULL, "Accept-Encoding: identity");
    char range[64];
    if (x->have > 0) {
        snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)x->have);
        h = curl_slist_append(h, range);
    }
    h = auth_headers(P, h, same_origin_url);
    if (!h) return rr_fail(RR_ERR_NOMEM, "out of memory building a request");
    curl_common(P, dl_url, h);
    /* libcurl keeps custom Authorization headers to the first host when following redirects */
    curl_easy_setopt(P->curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(P->curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(P->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(P->curl, CURLOPT_HEADERDATA, &x->meta);
    curl_easy_setopt(P->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(P->curl, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(P->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(P->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(P->curl, CURLOPT_XFERINFODATA, x);
    rr_hub_meta_reset(&x->meta);
    x->started = 0;
    x->err = RR_OK;
    *rc = curl_easy_perform(P->curl);
    curl_slist_free_all(h);
    if (x->cancelled)
        return rr_fail(RR_ERR_CANCELLED, "%s/%s: download cancelled (%lld bytes kept in %s)", P->repo_id, x->file,
                       (long long)x->have, x->tmp);
    return x->err;
}

/* Download step 3: attempts until the file is complete. Cut connections are retried (resuming, with
 * a growing pause when an attempt brought nothing); an attempt with no progress RR_HUB_MAX_TRIES
 * times in a row, or 3 * RR_HUB_MAX_TRIES attempts in all, gives up keeping the bytes for next time. */
static rr_status fetch_rest(pull *P, xfer *x, const char *dl_url) {
    int same = same_origin(dl_url, P->endpoint);
    for (int attempt = 0; x->expect < 0 || x->have < x->expect; attempt++) {
        int64_t before = x->have;
        CURLcode rc = CURLE_OK;
        rr_status st = attempt_once(P, x, dl_url, same, &rc);
        if (st != RR_OK) return st;
        if (rc == CURLE_OK) {
            long code = 0;
            curl_easy_getinfo(P->curl, CURLINFO_RESPONSE_CODE, &code);
            if (code == 416 && x->have > 0 && attempt == 0) {
                /* the server has nothing past our partial file: it is not a prefix; start over */
                if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) return io_fail("truncate", x->tmp);
                x->have = 0;
                rr_hub_sha256_init(&x->sha);
                continue;
            }
            if (code != 200 && code != 206)
                return rr_fail(RR_ERR_NETWORK, "%s/%s: HTTP %ld from %s", P->repo_id, x->file, code, dl_url);
            if (x->expect < 0 || x->have == x->expect) break;
            /* a clean end short of the size: retry like a cut connection */
        } else if (!retryable(rc)) {
            return curl_fail(P, rc, dl_url);
        }
        if (attempt + 1 >= RR_HUB_MAX_TRIES && x->have == before) {
            st = rc != CURLE_OK ? curl_fail(P, rc, dl_url)
                                : rr_fail(RR_ERR_NETWORK, "%s/%s: transfer ended at %lld of %lld bytes", P->repo_id,
                                          x->file, (long long)x->have, (long long)x->expect);
            rr_errmsg_prefix("%s/%s: download interrupted (%lld bytes kept for the next try)", P->repo_id, x->file,
                             (long long)x->have);
            return st;
        }
        if (attempt + 1 >= 3 * RR_HUB_MAX_TRIES)
            return rr_fail(RR_ERR_NETWORK, "%s/%s: download keeps failing (%lld of %lld bytes kept for the next try): %s",
                           P->repo_id, x->file, (long long)x->have, (long long)x->expect,
                           rc != CURLE_OK ? (P->errbuf[0] ? P->errbuf : curl_easy_strerror(rc)) : "short transfer");
        if (x->have == before) {
            struct timespec ts = {0, 250000000L * (attempt + 1)};
            nanosleep(&ts, NULL);
        }
    }
    return RR_OK;
}

/* Download step 4: the size the hub announced and (for LFS files) the sha256 it named, then the
 * partial file is flushed, closed and renamed to the blob. A corrupted download is removed. */
static rr_status verify_and_commit(pull *P, xfer *x, const rr_hub_meta *m, const char *blob) {
    if (x->expect >= 0 && x->have != x->expect)
        return rr_fail(RR_ERR_FORMAT, "%s/%s: downloaded %lld bytes, the hub announced %lld", P->repo_id, x->file,
                       (long long)x->have, (long long)x->expect);
    if (x->hashing) {
        char hex[65];
        rr_hub_sha256_final_hex(&x->sha, hex);
        if (strcasecmp(hex, m->etag)) {
            close(x->fd);
            x->fd = -1;
            unlink(x->tmp);
            return rr_fail(RR_ERR_FORMAT,
                           "%s/%s: corrupted download: sha256 %s, the hub says %s (removed; run the pull again)",
                           P->repo_id, x->file, hex, m->etag);
        }
    }
    if (fsync(x->fd) != 0) return io_fail("flush", x->tmp);
    int closed = close(x->fd);
    x->fd = -1;
    if (closed != 0) return io_fail("close", x->tmp);
    if (rename(x->tmp, blob) != 0) return io_fail("rename into", blob);
    return RR_OK;
}

/* Downloads blobs/<etag> from dl_url, resuming blobs/<etag>.incomplete. The caller holds the lock. */
static rr_status download_blob(pull *P, const char *file, const rr_hub_meta *m, const char *dl_url,
                               const char *blob) {
    char tmp[RR_HUB_PATH];
    rr_status st = PATHF(tmp, "%s.incomplete", blob);
    if (st != RR_OK) return st;
    xfer x = {.P = P, .file = file, .tmp = tmp, .expect = m->size, .fd = -1};
    x.hashing = m->linked && rr_hub_is_sha256(m->etag);
    rr_hub_sha256_init(&x.sha);
    st = open_partial(&x);
    if (st == RR_OK) st = fetch_rest(P, &x, dl_url);
    if (st == RR_OK) st = verify_and_commit(P, &x, m, blob);
    if (x.fd >= 0) close(x.fd);
    return st;
}

/* ------------------------------------------------------------------ one file */

static int notify(pull *P, rr_pull_event ev, const char *file, int64_t done, int64_t total) {
    if (!P->progress) return 0;
    return P->progress(P->user, ev, file, (uint64_t)RR_MAX(done, 0), (uint64_t)RR_MAX(total, 0));
}

static rr_status record_absent(pull *P, const char *file) {
    char path[RR_HUB_PATH];
    rr_status st = PATHF(path, "%s/.no_exist/%s/%s", P->folder, P->commit, file);
    if (st != RR_OK) return st;
    if (is_file(path, NULL)) return RR_OK;
    return write_small_file(path, "");
}

/* Makes snapshots/<commit>/<file> present. *absent = 1 (and RR_OK) for a file the repo lacks when
 * need is FILE_OPTIONAL; for FILE_REQUIRED a missing file is RR_ERR_NOT_FOUND. */
static rr_status fetch_file(pull *P, const char *file, file_need need, int *absent) {
    rr_hub_meta m;
    char dl_url[4096], path[RR_HUB_PATH];
    rr_status st = head_file(P, file, &m, dl_url, sizeof dl_url, absent);
    if (*absent) {
        if (need == FILE_REQUIRED) return st;
        rr_errmsg_clear();
        if (P->commit[0] && (st = record_absent(P, file)) != RR_OK) return st;
        return notify(P, RR_PULL_EVENT_ABSENT, file, 0, 0) ? rr_fail(RR_ERR_CANCELLED, "pull cancelled") : RR_OK;
    }
    if (st != RR_OK) return st;
    if (!P->commit[0]) {
        memcpy(P->commit, m.commit, 41);
        if ((st = PATHF(P->snapshot, "%s/snapshots/%s", P->folder, P->commit)) != RR_OK) return st;
    } else if (strcmp(P->commit, m.commit)) {
        return rr_fail(RR_ERR_NETWORK, "%s: the hub answered %s for commit %s with commit %s", P->repo_id, file,
                       P->commit, m.commit);
    }

    int64_t size = 0;
    if ((st = PATHF(path, "%s/%s", P->snapshot, file)) != RR_OK) return st;
    if (is_file(path, &size) && (m.size < 0 || size == m.size))
        return notify(P, RR_PULL_EVENT_CACHED, file, size, size) ? rr_fail(RR_ERR_CANCELLED, "pull cancelled")
                                                                  : RR_OK;

    char blob[RR_HUB_PATH], lock[RR_HUB_PATH];
    if ((st = PATHF(blob, "%s/blobs/%s", P->folder, m.etag)) != RR_OK) return st;
    if ((st = PATHF(lock, "%s/%s.lock", P->locks, m.etag)) != RR_OK) return st;
    if ((st = mkdirs_parent(blob)) != RR_OK || (st = mkdirs(P->locks)) != RR_OK) return st;
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) return io_fail("create the lock", lock);
    while (flock(lfd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            st = io_fail("lock", lock);
            close(lfd);
            return st;
        }
    }
    int downloaded = 0;
    /* a blob of the wrong size is a leftover of something else: fetch it again */
    if (!is_file(blob, &size) || (m.size >= 0 && size != m.size)) {
        st = download_blob(P, file, &m, dl_url, blob);
        downloaded = 1;
    }
    close(lfd); /* releases the lock */
    if (st != RR_OK) return st;
    if ((st = link_snapshot(P, file, m.etag)) != RR_OK) return st;
    is_file(blob, &size);
    return notify(P, downloaded ? RR_PULL_EVENT_DONE : RR_PULL_EVENT_CACHED, file, size, size)
               ? rr_fail(RR_ERR_CANCELLED, "pull cancelled")
               : RR_OK;
}

/* ------------------------------------------------------------------ the file set of a model */

/* The shard names of a model.safetensors.index.json, deduplicated, in first-seen order. Returns a
 * cJSON array of strings the caller deletes. */
static rr_status index_shards(const char *index_path, cJSON **out) {
    char *text;
    size_t len;
    rr_status st = rr_file_read(index_path, 64u << 20, &text, &len);
    if (st != RR_OK) return st;
    cJSON *root;
    st = rr_json_parse(text, len, index_path, &root);
    rr_free(text);
    if (st != RR_OK) return st;
    cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    cJSON *names = cJSON_CreateArray();
    if (!names) {
        cJSON_Delete(root);
        return rr_fail(RR_ERR_NOMEM, "out of memory reading %s", index_path);
    }
    if (!cJSON_IsObject(map) || !map->child)
        st = rr_fail(RR_ERR_FORMAT, "%s: no weight_map object naming the shards", index_path);
    for (cJSON *e = map ? map->child : NULL; st == RR_OK && e; e = e->next) {
        if (!cJSON_IsString(e)) {
            st = rr_fail(RR_ERR_FORMAT, "%s: weight_map[\"%s\"] is not a file name", index_path, e->string);
            break;
        }
        if (rr_hub_check_filename(e->valuestring) != RR_OK) {
            rr_errmsg_prefix("%s: weight_map[\"%s\"]", index_path, e->string);
            st = RR_ERR_FORMAT;
            break;
        }
        int seen = 0;
        for (cJSON *n = names->child; n && !seen; n = n->next) seen = !strcmp(n->valuestring, e->valuestring);
        if (!seen) {
            cJSON *s = cJSON_CreateString(e->valuestring);
            if (!s) {
                st = rr_fail(RR_ERR_NOMEM, "out of memory reading %s", index_path);
                break;
            }
            cJSON_AddItemToArray(names, s);
        }
    }
    cJSON_Delete(root);
    if (st != RR_OK) {
        cJSON_Delete(names);
        return st;
    }
    *out = names;
    return RR_OK;
}

static const char *const g_required[] = {"config.json", "tokenizer.json"};
/* README.md: the model card names decoder rerankers whose prompt the architecture does not tell */
static const char *const g_optional[] = {"tokenizer_config.json", "special_tokens_map.json", "README.md"};

static rr_status fetch_all(pull *P) {
    int absent;
    rr_status st;
    for (size_t i = 0; i < RR_ARRAY_LEN(g_required); i++)
        if ((st = fetch_file(P, g_required[i], FILE_REQUIRED, &absent)) != RR_OK) return st;
    for (size_t i = 0; i < RR_ARRAY_LEN(g_optional); i++)
        if ((st = fetch_file(P, g_optional[i], FILE_OPTIONAL, &absent)) != RR_OK) return st;
    if ((st = fetch_file(P, "model.safetensors", FILE_OPTIONAL, &absent)) != RR_OK || !absent) return st;
    if ((st = fetch_file(P, "model.safetensors.index.json", FILE_OPTIONAL, &absent)) != RR_OK) return st;
    if (absent)
        return rr_fail(RR_ERR_NOT_FOUND,
                       "repository %s has no safetensors weights (neither model.safetensors nor "
                       "model.safetensors.index.json at revision %s); rerank does not load pickle .bin files",
                       P->repo_id, P->revision);
    char index[RR_HUB_PATH];
    if ((st = PATHF(index, "%s/model.safetensors.index.json", P->snapshot)) != RR_OK) return st;
    cJSON *shards;
    if ((st = index_shards(index, &shards)) != RR_OK) return st;
    for (cJSON *n = shards->child; n && st == RR_OK; n = n->next)
        st = fetch_file(P, n->valuestring, FILE_REQUIRED, &absent);
    cJSON_Delete(shards);
    return st;
}

/* Offline: the commit refs/<revision> names, and every file the snapshot needs. `file` names what
 * is missing, NULL when the repository (revision) is not cached at all. */
static rr_status cold_cache(pull *P, const char *file) {
    const char *why = P->offline_env ? "HF_HUB_OFFLINE is set" : "offline mode is on";
    int main_rev = !strcmp(P->revision, "main");
    if (!file)
        return rr_fail(RR_ERR_NOT_FOUND, "%s%s%s is not in the cache and %s", P->repo_id, main_rev ? "" : "@",
                       main_rev ? "" : P->revision, why);
    return rr_fail(RR_ERR_NOT_FOUND, "%s%s%s: %s is missing from the cached snapshot %s and %s", P->repo_id,
                   main_rev ? "" : "@", main_rev ? "" : P->revision, file, P->commit, why);
}

static rr_status check_cached_file(pull *P, const char *file, int required, int *present) {
    char path[RR_HUB_PATH];
    int64_t size = 0;
    rr_status st = PATHF(path, "%s/%s", P->snapshot, file);
    if (st != RR_OK) return st;
    *present = is_file(path, &size);
    if (!*present && required) return cold_cache(P, file);
    if (*present && notify(P, RR_PULL_EVENT_CACHED, file, size, size))
        return rr_fail(RR_ERR_CANCELLED, "pull cancelled");
    return RR_OK;
}

static rr_status find_cached(pull *P) {
    rr_status st;
    if (rr_hub_is_commit(P->revision)) {
        memcpy(P->commit, P->revision, 41);
    } else {
        char ref[RR_HUB_PATH], *text;
        if ((st = PATHF(ref, "%s/refs/%s", P->folder, P->revision)) != RR_OK) return st;
        if ((st = rr_file_read(ref, 256, &text, NULL)) != RR_OK) return st == RR_ERR_NOT_FOUND ? cold_cache(P, NULL) : st;
        size_t n = strlen(text);
        while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ')) text[--n] = 0;
        int ok = rr_hub_is_commit(text);
        if (ok) memcpy(P->commit, text, 41);
        rr_free(text);
        if (!ok) return rr_fail(RR_ERR_FORMAT, "%s: not a commit sha", ref);
    }
    if ((st = PATHF(P->snapshot, "%s/snapshots/%s", P->folder, P->commit)) != RR_OK) return st;
    struct stat sb;
    if (stat(P->snapshot, &sb) != 0 || !S_ISDIR(sb.st_mode)) return cold_cache(P, NULL);
    int present;
    for (size_t i = 0; i < RR_ARRAY_LEN(g_required); i++)
        if ((st = check_cached_file(P, g_required[i], 1, &present)) != RR_OK) return st;
    for (size_t i = 0; i < RR_ARRAY_LEN(g_optional); i++)
        if ((st = check_cached_file(P, g_optional[i], 0, &present)) != RR_OK) return st;
    if ((st = check_cached_file(P, "model.safetensors", 0, &present)) != RR_OK || present) return st;
    if ((st = check_cached_file(P, "model.safetensors.index.json", 0, &present)) != RR_OK) return st;
    if (!present) return cold_cache(P, "model.safetensors");
    char index[RR_HUB_PATH];
    cJSON *shards;
    if ((st = PATHF(index, "%s/model.safetensors.index.json", P->snapshot)) != RR_OK) return st;
    if ((st = index_shards(index, &shards)) != RR_OK) return st;
    for (cJSON *n = shards->child; n && st == RR_OK; n = n->next)
        st = check_cached_file(P, n->valuestring, 1, &present);
    cJSON_Delete(shards);
    return st;
}

/* ------------------------------------------------------------------ public API */

rr_pull_params rr_pull_default_params(void) {
    rr_pull_params p = {0};
    return p;
}

/* Reads HF_TOKEN, else $HF_HOME/token (where `huggingface-cli login` keeps it). */
static void find_token(pull *P, const rr_pull_params *p) {
    P->token[0] = 0;
    const char *t = p->token ? p->token : getenv("HF_TOKEN");
    if (!t) t = getenv("HUGGING_FACE_HUB_TOKEN");
    char *text = NULL;
    if (!t) {
        char path[RR_HUB_PATH];
        const char *home = getenv("HF_HOME"), *h = getenv("HOME");
        if (home && *home)
            snprintf(path, sizeof path, "%s/token", home);
        else
            snprintf(path, sizeof path, "%s/.cache/huggingface/token", h ? h : "");
        if ((home && *home) || (h && *h)) {
            if (rr_file_read(path, 4096, &text, NULL) == RR_OK) t = text;
            rr_errmsg_clear();
        }
    }
    if (t) {
        snprintf(P->token, sizeof P->token, "%s", t);
        /* a token file ends with a newline; a header must not carry one */
        size_t n = strcspn(P->token, "\r\n");
        P->token[n] = 0;
        while (n && P->token[n - 1] == ' ') P->token[--n] = 0;
    }
    rr_free(text);
}

static rr_status pull_init(pull *P, const char *repo_id, const rr_pull_params *p) {
    memset(P, 0, sizeof *P);
    rr_status st = rr_hub_check_repo_id(repo_id);
    if (st != RR_OK) return st;
    P->repo_id = repo_id;
    const char *rev = p->revision && *p->revision ? p->revision : "main";
    if ((st = rr_hub_check_revision(rev)) != RR_OK) return st;
    snprintf(P->revision, sizeof P->revision, "%s", rev);
    if (p->endpoint && *p->endpoint) {
        snprintf(P->endpoint, sizeof P->endpoint, "%s", p->endpoint);
        size_t n = strlen(P->endpoint);
        while (n && P->endpoint[n - 1] == '/') P->endpoint[--n] = 0;
    } else {
        rr_hub_endpoint(P->endpoint, sizeof P->endpoint);
    }
    char cache[RR_HUB_PATH];
    if (p->cache_dir && *p->cache_dir)
        snprintf(cache, sizeof cache, "%s", p->cache_dir);
    else if ((st = rr_hub_cache_root(cache, sizeof cache)) != RR_OK)
        return st;
    if ((st = rr_hub_repo_folder(cache, repo_id, P->folder, sizeof P->folder)) != RR_OK) return st;
    if ((st = PATHF(P->locks, "%s/.locks/%s", cache, strrchr(P->folder, '/') + 1)) != RR_OK) return st;
    P->offline_env = rr_hub_env_true(getenv("HF_HUB_OFFLINE"));
    P->offline = p->offline || P->offline_env;
    P->progress = p->progress;
    P->user = p->progress_user;
    find_token(P, p);
    return RR_OK;
}

static rr_status copy_out(const char *s, char *dir, size_t cap) {
    if (!dir || snprintf(dir, cap, "%s", s) >= (int)cap)
        return rr_fail(RR_ERR_RANGE, "the folder name %s does not fit in %zu bytes", s, cap);
    return RR_OK;
}

rr_status rr_pull(const char *repo_id, const rr_pull_params *params, char *snapshot_dir, size_t cap) {
    rr_pull_params defaults = rr_pull_default_params();
    pull *P = rr_malloc(sizeof *P);
    if (!P) return rr_fail(RR_ERR_NOMEM, "out of memory starting a pull");
    rr_status st = pull_init(P, repo_id, params ? params : &defaults);
    if (st != RR_OK) goto done;
    if (P->offline) {
        st = find_cached(P);
        goto done;
    }
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK) {
        st = rr_fail(RR_ERR_NETWORK, "libcurl failed to start: %s", curl_easy_strerror(g_curl_init_rc));
        goto done;
    }
    if (!(P->curl = curl_easy_init())) {
        st = rr_fail(RR_ERR_NOMEM, "out of memory starting libcurl");
        goto done;
    }
    if ((st = mkdirs(P->folder)) != RR_OK) goto done;
    if ((st = fetch_all(P)) != RR_OK) goto done;
    if (strcmp(P->revision, P->commit)) {
        char ref[RR_HUB_PATH];
        if ((st = PATHF(ref, "%s/refs/%s", P->folder, P->revision)) != RR_OK) goto done;
        st = write_small_file(ref, P->commit);
    }
done:
    if (st == RR_OK && snapshot_dir) st = copy_out(P->snapshot, snapshot_dir, cap);
    if (P->curl) curl_easy_cleanup(P->curl);
    rr_free(P);
    return st;
}

rr_status rr_hub_resolve(const char *name, bool allow_download, char *dir, size_t cap) {
    if (!name || !*name) name = RR_DEFAULT_MODEL;
    struct stat sb;
    if (stat(name, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return rr_fail(RR_ERR_INVALID, "%s is a file; -m expects a model folder or a repository id", name);
        return copy_out(name, dir, cap);
    }
    /* "ORG/NAME@REVISION" */
    char repo[128], rev[256] = "main";
    const char *at = strchr(name, '@');
    size_t n = at ? (size_t)(at - name) : strlen(name);
    if (n >= sizeof repo || (at && strlen(at + 1) >= sizeof rev))
        return rr_fail(RR_ERR_INVALID, "%s: no such folder, and too long for a repository id", name);
    memcpy(repo, name, n);
    repo[n] = 0;
    if (at) snprintf(rev, sizeof rev, "%s", at + 1);
    if (rr_hub_check_repo_id(repo) != RR_OK || rr_hub_check_revision(rev) != RR_OK) {
        rr_errmsg_prefix("%s: no such folder, and not a repository id", name);
        return RR_ERR_INVALID;
    }
    rr_pull_params p = rr_pull_default_params();
    p.revision = rev;
    p.offline = true;
    char snap[RR_HUB_PATH];
    rr_status st = rr_pull(repo, &p, snap, sizeof snap);
    if (st == RR_OK) return copy_out(snap, dir, cap);
    if (st != RR_ERR_NOT_FOUND) return st;
    if (rr_hub_env_true(getenv("HF_HUB_OFFLINE"))) return st;
    if (!allow_download)
        return rr_fail(RR_ERR_NOT_FOUND, "%s is not a folder and not in the model cache (download it with `rerank pull %s`)",
                       name, name);
    p.offline = false;
    return rr_pull(repo, &p, dir, cap);
}
