/*
 * fuzz_tokenizer_json.c -- libFuzzer target for the tokenizer.json loader (rr_tokenizer_load: the
 * model section of every type, added tokens, normalizers, pre-tokenizers, post-processor, the raw
 * Unigram vocabulary scanner). The input is written as tokenizer.json into a private folder and
 * loaded; a tokenizer that loads must encode a fixed text, single and pair, into ids inside its
 * vocabulary.
 */
#include "core/core.h"
#include "tokenize/tok.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write("tokenizer.json", data, size);
    rr_tokenizer *t = NULL;
    if (rr_tokenizer_load(fuzz_dir(), &t) != RR_OK) {
        if (!rr_errmsg()[0]) abort(); /* a refusal must say why */
        return 0;
    }
    static const char text[] = "Hello wORLD, caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 <s> [SEP] 12,345 \xF0\x9F\x98\x80!";
    rr_encoding e = {0};
    for (int pair = 0; pair < 2; pair++)
        if (rr_tokenizer_encode(t, (rr_text){text, sizeof text - 1}, pair ? &(rr_text){text, 5} : NULL,
                                &(rr_encode_params){1, 64, RR_TRUNC_LONGEST_FIRST}, &e) == RR_OK)
            for (size_t i = 0; i < e.len; i++)
                if (e.ids[i] < 0 || e.ids[i] >= rr_tokenizer_vocab_size(t)) abort();
    rr_encoding_free(&e);
    rr_tokenizer_free(t);
    return 0;
}
