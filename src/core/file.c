/*
 * file.c -- whole-file reads and read-only memory maps.
 *
 * Model weights are mapped while the model loads (and packs them), never read whole. Small files
 * (config.json, tokenizer.json) are read whole with a size cap so a hostile or corrupt path cannot
 * make us allocate without bound. Both only open regular files, without blocking on a FIFO.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static rr_status open_fail(const char *path) {
    int e = errno;
    return rr_fail(e == ENOENT ? RR_ERR_NOT_FOUND : RR_ERR_IO, "%s: %s", path, strerror(e));
}

/* Opens path for reading only when it is a regular file. O_NONBLOCK keeps open(2) itself from
 * waiting: a FIFO put in place of a model file would otherwise block until a writer appears (and a
 * device could do worse). The flag is cleared once fstat has shown a regular file. */
static rr_status open_regular(const char *path, int *fd_out, struct stat *st) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return open_fail(path);
    if (fstat(fd, st) != 0) {
        rr_status s = open_fail(path);
        close(fd);
        return s;
    }
    if (!S_ISREG(st->st_mode)) {
        const char *what = S_ISDIR(st->st_mode) ? "a directory" : S_ISFIFO(st->st_mode) ? "a FIFO (named pipe)"
                           : S_ISSOCK(st->st_mode)                                         ? "a socket"
                           : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)                  ? "a device"
                                                                                          : "not a regular file";
        close(fd);
        return rr_fail(RR_ERR_IO, "%s: is %s; model and data files must be regular files", path, what);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    return RR_OK;
}

rr_status rr_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len) {
    int fd;
    struct stat st;
    rr_status os = open_regular(path, &fd, &st);
    if (os) return os;
    if ((size_t)st.st_size > max_bytes) {
        close(fd);
        return rr_fail(RR_ERR_RANGE, "%s: file is %lld bytes, more than the limit of %zu", path,
                       (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = rr_malloc(n + 1);
    if (!buf) {
        close(fd);
        return rr_fail(RR_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            rr_status st2 = rr_fail(RR_ERR_IO, "%s: read failed: %s", path, r < 0 ? strerror(errno) : "short read");
            rr_free(buf);
            close(fd);
            return st2;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    if (out_len) *out_len = n;
    return RR_OK;
}

rr_status rr_mmap_open(const char *path, rr_mmap *out) {
    int fd;
    struct stat st;
    rr_status os = open_regular(path, &fd, &st);
    if (os) return os;
    out->size = (size_t)st.st_size;
    out->data = NULL;
    out->fd = fd;
    if (out->size == 0) return RR_OK;
    void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        rr_status s = rr_fail(RR_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        close(fd);
        out->fd = -1;
        return s;
    }
    out->data = p;
    return RR_OK;
}

bool rr_mmap_pread(const rr_mmap *m, size_t off, void *dst, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(m->fd, (char *)dst + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        got += (size_t)r;
    }
    return true;
}

void rr_mmap_close(rr_mmap *m) {
    if (!m) return;
    if (m->data) munmap((void *)m->data, m->size);
    if (m->fd >= 0) close(m->fd);
    m->data = NULL;
    m->size = 0;
    m->fd = -1;
}

bool rr_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

char *rr_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/') a--;
    char *p = rr_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

double rr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void rr_fmt_bytes(char *out, size_t cap, uint64_t n) {
    static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1000 && u < 4) v /= 1000, u++;
    if (cap) snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}
