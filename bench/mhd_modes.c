/*
 * mhd_modes.c -- the smallest libmicrohttpd server, to measure how the library itself treats
 * hostile clients apart from rerank's code (bench/mhd_modes.sh; docs/ARCHITECTURE.md, "Hostile
 * clients"). Usage: mhd_modes epoll|poll PORT. Answers every request with 200 "ok", with the
 * thread pool, connection limit and timeout `rerank serve` used before issue 14.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (!*con_cls) { /* headers: nothing to do yet */
        *con_cls = conn;
        return MHD_YES;
    }
    if (*upload_size) { /* body bytes: dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: mhd_modes epoll|poll PORT\n");
        return 2;
    }
    unsigned flags = !strcmp(argv[1], "epoll") ? MHD_USE_EPOLL_INTERNAL_THREAD : MHD_USE_POLL_INTERNAL_THREAD;
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)atoi(argv[2]), NULL, NULL, answer, NULL,
                                            MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_CONNECTION_LIMIT, 4096u,
                                            MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd_modes: cannot listen on port %s\n", argv[2]);
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    pause();
    MHD_stop_daemon(d);
    return 0;
}
