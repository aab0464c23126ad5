/*
 * fuzz_safetensors.c -- libFuzzer target for the model loader's parsers: the safetensors header
 * (rr_st_open_file: header length, JSON entries, dtypes, shapes, offsets, overlaps) and config.json
 * (rr_config_load). The first byte picks which; the rest is the file. An opened safetensors file
 * must hold only tensors whose bytes lie inside the file: the first and last byte of each is read.
 */
#include "core/core.h"
#include "model/model.h"
#include "model/safetensors.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++, size--;
    if (mode & 1) {
        const char *path = fuzz_write("config.json", data, size);
        rr_config cfg;
        int is_bert = 0;
        if (rr_config_load(path, &cfg, &is_bert) == RR_OK) {
            if (cfg.hidden <= 0 || cfg.n_layers <= 0 || cfg.n_heads <= 0 || cfg.hidden % cfg.n_heads ||
                cfg.max_length < 2 || cfg.vocab_size <= 0)
                abort();
        } else if (!rr_errmsg()[0]) {
            abort();
        }
        return 0;
    }
    const char *path = fuzz_write("model.safetensors", data, size);
    rr_st *st = NULL;
    if (rr_st_open_file(path, &st) != RR_OK) {
        if (!rr_errmsg()[0]) abort();
        return 0;
    }
    for (int i = 0; i < rr_st_count(st); i++) {
        const rr_st_tensor *t = rr_st_at(st, i);
        if (rr_st_find(st, t->name) != t) abort();
        if (!t->nbytes) continue;
        uint8_t b[2];
        if (!rr_st_copy(t, 0, b, 1) || !rr_st_copy(t, t->nbytes - 1, b + 1, 1)) abort();
        volatile uint8_t x = ((const uint8_t *)t->data)[t->nbytes - 1];
        (void)x;
    }
    rr_st_close(st);
    return 0;
}
