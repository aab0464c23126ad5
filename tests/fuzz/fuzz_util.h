/*
 * fuzz_util.h -- helpers shared by the libFuzzer targets: loaders that take a path get the input
 * written to a file in a private temporary folder (created once per process, removed at exit).
 */
#ifndef RR_FUZZ_UTIL_H
#define RR_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_fuzz_dir[256];

static void fuzz_rmdir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", g_fuzz_dir);
}

/* The private folder (TMPDIR or /tmp), made on first use. */
static const char *fuzz_dir(void) {
    if (!g_fuzz_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_fuzz_dir, sizeof g_fuzz_dir, "%s/rr_fuzz_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_fuzz_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_rmdir);
    }
    return g_fuzz_dir;
}

/* Writes data[0..n) to <dir>/<name> (replacing it) and returns the path in a static buffer. */
static const char *fuzz_write(const char *name, const uint8_t *data, size_t n) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

#endif
