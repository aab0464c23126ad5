/*
 * test_hub.c -- the pure parts of the hub client: sha256 against the FIPS 180-4 examples, repo id,
 * revision and file name checks, cache paths, resolve URLs, response header parsing, and the
 * offline lookup in a cache laid out by hand. The network half is tests/suite_hub.sh.
 */
#include "check.h"
#include "hub/hub.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void sha_hex(const void *p, size_t n, char hex[65]) {
    rr_hub_sha256 s;
    rr_hub_sha256_init(&s);
    rr_hub_sha256_update(&s, p, n);
    rr_hub_sha256_final_hex(&s, hex);
}

RR_TEST(hub_sha256_vectors) {
    char hex[65];
    sha_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    sha_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(m448, strlen(m448), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                       "mnopqrstnopqrstu";
    sha_hex(m896, strlen(m896), hex);
    CHECK(!strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
    /* one million 'a', fed in uneven pieces to cross block boundaries */
    rr_hub_sha256 s;
    rr_hub_sha256_init(&s);
    char a[1000];
    memset(a, 'a', sizeof a);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t n = RR_MIN(left, step);
        rr_hub_sha256_update(&s, a, n);
        left -= n;
        step = step % 997 + 1;
    }
    rr_hub_sha256_final_hex(&s, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    /* lengths around the padding boundary (55, 56, 64 bytes) agree whole or byte by byte */
    for (size_t n = 54; n <= 65; n++) {
        char whole[65], pieces[65];
        sha_hex(a, n, whole);
        rr_hub_sha256_init(&s);
        for (size_t i = 0; i < n; i++) rr_hub_sha256_update(&s, a + i, 1);
        rr_hub_sha256_final_hex(&s, pieces);
        CHECK(!strcmp(whole, pieces));
    }
    sha_hex(a, 55, hex);
    CHECK(!strcmp(hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"));
    sha_hex(a, 56, hex);
    CHECK(!strcmp(hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"));
}

/* the sizes `rerank pull` and rerank.pull() print */
RR_TEST(hub_progress_sizes) {
    static const struct {
        uint64_t n;
        const char *want;
    } cases[] = {{0, "0 B"},           {999, "999 B"},         {1000, "1.0 kB"},       {1536000, "1.5 MB"},
                 {1112000000, "1.1 GB"}, {UINT64_MAX, "18446744.1 TB"}};
    char out[32];
    for (size_t i = 0; i < RR_ARRAY_LEN(cases); i++) {
        rr_fmt_bytes(out, sizeof out, cases[i].n);
        CHECK_MSG(!strcmp(out, cases[i].want), "%s != %s", out, cases[i].want);
    }
    rr_fmt_bytes(out, 4, 1536000); /* cut, still terminated */
    CHECK_MSG(!strcmp(out, "1.5"), "%s", out);
    out[0] = 'x';
    rr_fmt_bytes(out, 0, 5);
    CHECK(out[0] == 'x');
}

RR_TEST(hub_repo_id_checks) {
    const char *good[] = {"jinaai/jina-reranker-v2-base-multilingual", "BAAI/bge-reranker-v2-m3",
                          "cross-encoder/ms-marco-MiniLM-L-6-v2", "bert-base-uncased", "a/b", "org_1/x.y_z"};
    for (size_t i = 0; i < RR_ARRAY_LEN(good); i++) CHECK_MSG(rr_hub_check_repo_id(good[i]) == RR_OK, "%s: %s", good[i], rr_errmsg());
    const char *bad[] = {"", "../x", "a/../b", "a/b/c", "/a", "a/", "a//b", "a b/c", "-a/b", "a/b.", "a--b/c",
                         "a/b\n", "a\\b", "a/b@main", "~/x",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"};
    for (size_t i = 0; i < RR_ARRAY_LEN(bad); i++) {
        rr_errmsg_clear();
        CHECK_MSG(rr_hub_check_repo_id(bad[i]) == RR_ERR_INVALID, "accepted '%s'", bad[i]);
        CHECK_MSG(strlen(rr_errmsg()) > 10, "no message for '%s'", bad[i]);
    }
    CHECK(rr_hub_check_repo_id(NULL) == RR_ERR_INVALID);
    CHECK(strstr(rr_errmsg(), "empty") != NULL);
    rr_hub_check_repo_id("a/b/c");
    CHECK(strstr(rr_errmsg(), "more than one '/'") != NULL);
}

RR_TEST(hub_revision_and_filename_checks) {
    CHECK(rr_hub_check_revision("main") == RR_OK);
    CHECK(rr_hub_check_revision("refs/pr/12") == RR_OK);
    CHECK(rr_hub_check_revision("v1.0") == RR_OK);
    CHECK(rr_hub_check_revision("") == RR_ERR_INVALID);
    CHECK(rr_hub_check_revision("../../etc") == RR_ERR_INVALID);
    CHECK(rr_hub_check_revision("/main") == RR_ERR_INVALID);
    CHECK(rr_hub_check_revision("a b") == RR_ERR_INVALID);
    CHECK(rr_hub_check_filename("model-00001-of-00002.safetensors") == RR_OK);
    CHECK(rr_hub_check_filename("onnx/model.onnx") == RR_OK);
    CHECK(rr_hub_check_filename("../model.safetensors") == RR_ERR_INVALID);
    CHECK(rr_hub_check_filename("a/./b") == RR_ERR_INVALID);
    CHECK(rr_hub_check_filename("/etc/passwd") == RR_ERR_INVALID);
    CHECK(rr_hub_check_filename("a//b") == RR_ERR_INVALID);
    CHECK(rr_hub_check_filename("a\\b") == RR_ERR_INVALID);
    CHECK(rr_hub_check_filename("") == RR_ERR_INVALID);
    CHECK(rr_hub_is_commit("0123456789abcdef0123456789abcdef01234567"));
    CHECK(!rr_hub_is_commit("0123456789abcdef0123456789abcdef0123456"));
    CHECK(!rr_hub_is_commit("0123456789ABCDEF0123456789abcdef01234567"));
    CHECK(!rr_hub_is_commit("../3456789abcdef0123456789abcdef01234567"));
    CHECK(rr_hub_is_sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(!rr_hub_is_sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
    CHECK(rr_hub_env_true("1") && rr_hub_env_true("TRUE") && rr_hub_env_true("yes") && rr_hub_env_true("On"));
    CHECK(!rr_hub_env_true(NULL) && !rr_hub_env_true("0") && !rr_hub_env_true("") && !rr_hub_env_true("false"));
}

RR_TEST(hub_cache_paths) {
    char out[512];
    CHECK(rr_hub_repo_folder("/c", "jinaai/jina-reranker-v2-base-multilingual", out, sizeof out) == RR_OK);
    CHECK(!strcmp(out, "/c/models--jinaai--jina-reranker-v2-base-multilingual"));
    CHECK(rr_hub_repo_folder("/c", "bert-base-uncased", out, sizeof out) == RR_OK);
    CHECK(!strcmp(out, "/c/models--bert-base-uncased"));
    CHECK(rr_hub_repo_folder("/c", "../x", out, sizeof out) == RR_ERR_INVALID);
    CHECK(rr_hub_repo_folder("/c", "a/b", out, 8) == RR_ERR_RANGE);

    CHECK(rr_hub_blob_link("config.json", "abc", out, sizeof out) == RR_OK);
    CHECK(!strcmp(out, "../../blobs/abc"));
    CHECK(rr_hub_blob_link("onnx/model.onnx", "abc", out, sizeof out) == RR_OK);
    CHECK(!strcmp(out, "../../../blobs/abc"));
    CHECK(rr_hub_blob_link("config.json", "abc", out, 10) == RR_ERR_RANGE);

    CHECK(rr_hub_resolve_url("https://huggingface.co", "org/m", "main", "config.json", out, sizeof out) == RR_OK);
    CHECK(!strcmp(out, "https://huggingface.co/org/m/resolve/main/config.json"));
    CHECK(rr_hub_resolve_url("http://h", "org/m", "refs/pr/1", "sub dir/a+b.json", out, sizeof out) == RR_OK);
    CHECK(!strcmp(out, "http://h/org/m/resolve/refs%2Fpr%2F1/sub%20dir/a%2Bb.json"));
    CHECK(rr_hub_resolve_url("http://h", "org/m", "main", "config.json", out, 20) == RR_ERR_RANGE);

    /* environment precedence: HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, HOME */
    const char *names[] = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME", "HF_ENDPOINT"};
    char *saved[RR_ARRAY_LEN(names)];
    for (size_t i = 0; i < RR_ARRAY_LEN(names); i++) {
        const char *v = getenv(names[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(names[i]);
    }
    setenv("HOME", "/home/u", 1);
    CHECK(rr_hub_cache_root(out, sizeof out) == RR_OK && !strcmp(out, "/home/u/.cache/huggingface/hub"));
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK(rr_hub_cache_root(out, sizeof out) == RR_OK && !strcmp(out, "/xdg/huggingface/hub"));
    setenv("HF_HOME", "/hf", 1);
    CHECK(rr_hub_cache_root(out, sizeof out) == RR_OK && !strcmp(out, "/hf/hub"));
    setenv("HF_HUB_CACHE", "/hubcache", 1);
    CHECK(rr_hub_cache_root(out, sizeof out) == RR_OK && !strcmp(out, "/hubcache"));
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    CHECK(rr_hub_cache_root(out, sizeof out) == RR_ERR_NOT_FOUND);
    rr_hub_endpoint(out, sizeof out);
    CHECK(!strcmp(out, "https://huggingface.co"));
    setenv("HF_ENDPOINT", "http://mirror.local:8080//", 1);
    rr_hub_endpoint(out, sizeof out);
    CHECK(!strcmp(out, "http://mirror.local:8080"));
    for (size_t i = 0; i < RR_ARRAY_LEN(names); i++) {
        if (saved[i]) setenv(names[i], saved[i], 1);
        else unsetenv(names[i]);
        free(saved[i]);
    }
}

static void feed(rr_hub_meta *m, const char *line) { rr_hub_meta_header(m, line, strlen(line)); }

RR_TEST(hub_header_parsing) {
    rr_hub_meta m;
    rr_hub_meta_reset(&m);
    /* a LFS redirect as huggingface.co sends it */
    feed(&m, "HTTP/1.1 302 Found\r\n");
    feed(&m, "Content-Length: 1146\r\n");
    feed(&m, "location: https://cdn-lfs.hf.co/repos/ab/cd/e3b0?x=1\r\n");
    feed(&m, "x-repo-commit: 0123456789abcdef0123456789abcdef01234567\r\n");
    feed(&m, "ETag: \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\r\n");
    feed(&m, "X-Linked-Etag: \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\r\n");
    feed(&m, "X-Linked-Size:   1112201288 \r\n");
    feed(&m, "\r\n");
    CHECK_EQ_INT(m.status, 302);
    CHECK(!strcmp(m.commit, "0123456789abcdef0123456789abcdef01234567"));
    CHECK(!strcmp(m.etag, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(m.linked);
    CHECK_EQ_INT(m.size, 1112201288LL);
    CHECK(!strcmp(m.location, "https://cdn-lfs.hf.co/repos/ab/cd/e3b0?x=1"));

    /* a small git file: weak ETag, Content-Length is the size; a later response resets the struct */
    feed(&m, "HTTP/2 200\r\n");
    CHECK(!m.commit[0] && m.size == -1 && !m.linked);
    feed(&m, "etag: W/\"a1b2c3\"\r\n");
    feed(&m, "content-length: 684\r\n");
    CHECK(!strcmp(m.etag, "a1b2c3"));
    CHECK_EQ_INT(m.size, 684);
    CHECK(!m.linked);

    /* X-Linked-Etag wins over ETag whatever the order */
    feed(&m, "HTTP/1.1 302 Found\r\n");
    feed(&m, "X-Linked-Etag: \"lfs\"\r\n");
    feed(&m, "ETag: \"git\"\r\n");
    CHECK(!strcmp(m.etag, "lfs"));

    /* errors and ranges */
    feed(&m, "HTTP/1.1 404 Not Found\r\n");
    feed(&m, "X-Error-Code: EntryNotFound\r\n");
    feed(&m, "X-Error-Message: Entry not found\r\n");
    CHECK_EQ_INT(m.status, 404);
    CHECK(!strcmp(m.error_code, "EntryNotFound"));
    CHECK(!strcmp(m.error_msg, "Entry not found"));
    feed(&m, "HTTP/1.1 206 Partial Content\r\n");
    feed(&m, "Content-Range: bytes 1000-1999/2000\r\n");
    CHECK_EQ_INT(m.range_start, 1000);
    /* garbage never crashes or fills fields */
    feed(&m, "HTTP/1.1 200 OK\r\n");
    feed(&m, "Content-Length: -5\r\n");
    feed(&m, "Content-Range: bytes x-y/z\r\n");
    feed(&m, "no colon here\r\n");
    feed(&m, ":\r\n");
    rr_hub_meta_header(&m, "X-Repo-Commit", 5);
    CHECK_EQ_INT(m.size, -1);
    CHECK_EQ_INT(m.range_start, -1);
    CHECK(!m.commit[0]);
}

/* Lays out a cache by hand the way huggingface_hub does and checks the offline lookup. */
static void put(const char *dir, const char *rel, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

RR_TEST(hub_offline_lookup) {
    const char *tmp = rr_test_tmpdir();
    char cache[512], snap[1024], dir[1024];
    snprintf(cache, sizeof cache, "%s/hub", tmp);
    const char *sha = "0123456789abcdef0123456789abcdef01234567";
    char *saved = getenv("HF_HUB_OFFLINE") ? strdup(getenv("HF_HUB_OFFLINE")) : NULL;
    unsetenv("HF_HUB_OFFLINE");
    rr_pull_params p = rr_pull_default_params();
    p.cache_dir = cache;
    p.offline = 1;

    /* cold */
    CHECK(rr_pull("org/m", &p, snap, sizeof snap) == RR_ERR_NOT_FOUND);
    CHECK(strstr(rr_errmsg(), "org/m is not in the cache and offline mode is on") != NULL);

    /* a ref, a snapshot, blobs and links */
    char base[768];
    snprintf(base, sizeof base, "%s/models--org--m", cache);
    mkdir(cache, 0755);
    mkdir(base, 0755);
    put(base, "refs/main", sha);
    put(base, "blobs/e1", "{}");
    put(base, "blobs/e2", "{}");
    char link[1024];
    snprintf(link, sizeof link, "%s/snapshots", base);
    mkdir(link, 0755);
    snprintf(link, sizeof link, "%s/snapshots/%s", base, sha);
    mkdir(link, 0755);
    snprintf(link, sizeof link, "%s/snapshots/%s/config.json", base, sha);
    CHECK(symlink("../../blobs/e1", link) == 0);
    snprintf(link, sizeof link, "%s/snapshots/%s/tokenizer.json", base, sha);
    CHECK(symlink("../../blobs/e2", link) == 0);
    /* weights missing: still not usable */
    CHECK(rr_pull("org/m", &p, snap, sizeof snap) == RR_ERR_NOT_FOUND);
    CHECK(strstr(rr_errmsg(), "model.safetensors is missing") != NULL);
    /* sharded weights, one shard missing, then all */
    char rel[256];
    snprintf(rel, sizeof rel, "snapshots/%s/model.safetensors.index.json", sha);
    put(base, rel, "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}}");
    snprintf(rel, sizeof rel, "snapshots/%s/s1.safetensors", sha);
    put(base, rel, "x");
    CHECK(rr_pull("org/m", &p, snap, sizeof snap) == RR_ERR_NOT_FOUND);
    CHECK(strstr(rr_errmsg(), "s2.safetensors is missing") != NULL);
    snprintf(rel, sizeof rel, "snapshots/%s/s2.safetensors", sha);
    put(base, rel, "x");
    REQUIRE(rr_pull("org/m", &p, snap, sizeof snap) == RR_OK);
    snprintf(dir, sizeof dir, "%s/snapshots/%s", base, sha);
    CHECK(!strcmp(snap, dir));
    /* the buffer is too small: an error, not a truncated path */
    char small[8];
    CHECK(rr_pull("org/m", &p, small, sizeof small) == RR_ERR_RANGE);
    /* a commit revision needs no ref; an unknown branch is cold */
    p.revision = sha;
    CHECK(rr_pull("org/m", &p, snap, sizeof snap) == RR_OK);
    p.revision = "dev";
    CHECK(rr_pull("org/m", &p, snap, sizeof snap) == RR_ERR_NOT_FOUND);
    CHECK(strstr(rr_errmsg(), "org/m@dev is not in the cache") != NULL);
    /* a shard name escaping the snapshot is refused */
    snprintf(rel, sizeof rel, "snapshots/%s/model.safetensors.index.json", sha);
    put(base, rel, "{\"weight_map\": {\"a\": \"../../../../evil\"}}");
    p.revision = NULL;
    CHECK(rr_pull("org/m", &p, snap, sizeof snap) == RR_ERR_FORMAT);
    CHECK(strstr(rr_errmsg(), "not a plain relative path") != NULL);
    /* a corrupt ref */
    put(base, "refs/main", "not-a-sha");
    CHECK(rr_pull("org/m", &p, snap, sizeof snap) == RR_ERR_FORMAT);

    /* rr_hub_resolve: folders pass through, bad names and uncached ids fail clearly */
    setenv("HF_HUB_CACHE", cache, 1);
    CHECK(rr_hub_resolve(tmp, 0, dir, sizeof dir) == RR_OK && !strcmp(dir, tmp));
    CHECK(rr_hub_resolve("./no/such/../folder", 0, dir, sizeof dir) == RR_ERR_INVALID);
    CHECK(strstr(rr_errmsg(), "no such folder") != NULL);
    CHECK(rr_hub_resolve("org/other", 0, dir, sizeof dir) == RR_ERR_NOT_FOUND);
    CHECK(strstr(rr_errmsg(), "rerank pull org/other") != NULL);
    put(base, "refs/main", sha);
    snprintf(rel, sizeof rel, "snapshots/%s/model.safetensors.index.json", sha);
    put(base, rel, "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}}");
    CHECK(rr_hub_resolve("org/m", 0, dir, sizeof dir) == RR_OK);
    CHECK(strstr(dir, "/snapshots/0123456789abcdef") != NULL);
    CHECK(rr_hub_resolve("org/m@dev", 0, dir, sizeof dir) == RR_ERR_NOT_FOUND);
    setenv("HF_HUB_OFFLINE", "1", 1);
    CHECK(rr_hub_resolve("org/other", 1, dir, sizeof dir) == RR_ERR_NOT_FOUND);
    CHECK(strstr(rr_errmsg(), "HF_HUB_OFFLINE is set") != NULL);
    unsetenv("HF_HUB_CACHE");
    if (saved) setenv("HF_HUB_OFFLINE", saved, 1);
    else unsetenv("HF_HUB_OFFLINE");
    free(saved);
}

/* Every allocation of the offline lookup (refs, the shard index, cJSON) may fail: the result is
 * RR_ERR_NOMEM with a message, never a crash or a leak (ASan checks the latter). */
RR_TEST(hub_offline_fault_injection) {
    const char *tmp = rr_test_tmpdir();
    char base[768], rel[256], snap[1024];
    const char *sha = "89abcdef0123456789abcdef0123456789abcdef";
    snprintf(base, sizeof base, "%s/models--org--m", tmp);
    mkdir(base, 0755);
    put(base, "refs/main", sha);
    const char *files[] = {"config.json", "tokenizer.json", "s1.safetensors", "s2.safetensors"};
    for (size_t i = 0; i < RR_ARRAY_LEN(files); i++) {
        snprintf(rel, sizeof rel, "snapshots/%s/%s", sha, files[i]);
        put(base, rel, "{}");
    }
    snprintf(rel, sizeof rel, "snapshots/%s/model.safetensors.index.json", sha);
    put(base, rel, "{\"metadata\": {}, \"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\", "
                   "\"c\": \"s1.safetensors\"}}");
    char *saved = getenv("HF_HUB_OFFLINE") ? strdup(getenv("HF_HUB_OFFLINE")) : NULL;
    unsetenv("HF_HUB_OFFLINE");
    rr_pull_params p = rr_pull_default_params();
    p.cache_dir = tmp;
    p.offline = 1;
    rr_alloc_fail_after(0);
    REQUIRE(rr_pull("org/m", &p, snap, sizeof snap) == RR_OK);
    long total = rr_alloc_fail_after(0);
    REQUIRE(total > 3);
    int failures = 0;
    for (long k = 1; k <= total; k++) {
        rr_alloc_fail_after(k);
        rr_status st = rr_pull("org/m", &p, snap, sizeof snap);
        rr_alloc_fail_after(0);
        if (st != RR_OK) {
            failures++;
            CHECK_MSG(st == RR_ERR_NOMEM, "failing allocation %ld gave %s: %s", k, rr_status_str(st), rr_errmsg());
        }
    }
    CHECK_MSG(failures == total, "%d of %ld injected failures were reported", failures, total);
    if (saved) setenv("HF_HUB_OFFLINE", saved, 1);
    free(saved);
}
