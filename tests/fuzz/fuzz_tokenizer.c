/*
 * fuzz_tokenizer.c -- libFuzzer target for the tokenizer (`make fuzz`; not part of the unit-test
 * build). Each input drives one of:
 *   - raw bytes (any UTF-8, valid or not) through the XLM-R Unigram and BERT WordPiece tokenizers,
 *     single and pair, with and without specials, with truncation from the first bytes;
 *   - "random Unicode": the bytes pick code points from ranges that stress normalization and
 *     grapheme clustering (combining marks, ZWJ, emoji, regional indicators, Hangul, Indic,
 *     CJK, whitespace and controls), encoded as valid UTF-8;
 *   - a precompiled charsmap blob, parsed and applied to a fixed text.
 * Tokenizers come from $RR_SHARED (default ../shared) fixtures (XLM-R, BERT and Qwen3's byte-level
 * BPE behind its Oniguruma split regex); every result is checked for basic invariants (ids in
 * range, lengths within max_length), and Qwen3's pieces, mapped back to bytes, must spell the NFC
 * form of the text exactly (byte-level BPE loses nothing) when it holds no added token.
 */
#include "core/core.h"
#include "tokenize/tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <utf8proc.h>

#define N_TOK 3
static rr_tokenizer *g_tok[N_TOK];

static void load_all(void) {
    const char *shared = getenv("RR_SHARED");
    if (!shared) shared = "../shared";
    const char *rel[N_TOK] = {"fixtures/tokenizers/xlmr_pruned32k", "fixtures/tokenizers/bert-base-uncased",
                              "fixtures/tokenizers/qwen3"};
    for (int i = 0; i < N_TOK; i++) {
        char *p = rr_path_join(shared, rel[i]);
        if (rr_tokenizer_load(p, &g_tok[i]) != RR_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", rr_errmsg());
            abort();
        }
        rr_free(p);
    }
}

static const uint32_t g_ranges[][2] = {
    {0x20, 0x7E},     {0x00, 0x1F},     {0x300, 0x36F},   {0x200B, 0x200F}, {0x1F1E6, 0x1F1FF}, {0x1F600, 0x1F64F},
    {0x1F3FB, 0x1F3FF}, {0xAC00, 0xAC40}, {0x1100, 0x1112}, {0x1161, 0x1175}, {0x0900, 0x097F}, {0x0E00, 0x0E7F},
    {0x4E00, 0x4E40}, {0xFF01, 0xFF5E}, {0x2000, 0x200A}, {0x2581, 0x2581}, {0xFE00, 0xFE0F}, {0x0600, 0x06FF},
    {0x10FFF0, 0x10FFFF}, {0xE000, 0xE010}, {0x0C00, 0x0C7F}, {0x1100, 0x11FF}, {0x3000, 0x303F}, {0x00C0, 0x017F},
};

static void check_enc(const rr_tokenizer *t, const rr_encoding *e, int max_length) {
    if (max_length > 0 && e->len > (size_t)max_length && (size_t)max_length >= (size_t)rr_tokenizer_num_special(t, 1)) {
        /* truncation must hold whenever max_length leaves room for the specials */
        if (e->len > (size_t)max_length + (size_t)rr_tokenizer_num_special(t, 1)) abort();
    }
    for (size_t i = 0; i < e->len; i++)
        if (e->ids[i] < 0 || e->ids[i] >= rr_tokenizer_vocab_size(t) || !rr_tokenizer_id_to_piece(t, e->ids[i])) abort();
}

/* Byte-level BPE round trip: the pieces of an encoding without added tokens, each character
 * mapped back to its byte (GPT-2's table inverted), equal the NFC form of the (valid UTF-8) text. */
static void check_bytelevel_roundtrip(const rr_tokenizer *t, const char *s, size_t n) {
    if (!n || rr_utf8_valid_prefix((const uint8_t *)s, n) != n || memchr(s, '<', n) || memchr(s, 0, n)) return;
    rr_encoding e = {0};
    if (rr_tokenizer_encode(t, s, n, NULL, 0, 0, 0, RR_TRUNC_LONGEST_FIRST, &e) != RR_OK) abort();
    rr_buf got = {0};
    for (size_t i = 0; i < e.len; i++) {
        const char *p = rr_tokenizer_id_to_piece(t, e.ids[i]);
        size_t pl = strlen(p);
        for (size_t k = 0; k < pl;) {
            size_t l;
            uint32_t c = rr_tok_utf8_next((const uint8_t *)p + k, pl - k, &l);
            k += l;
            uint8_t b;
            if ((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)) b = (uint8_t)c;
            else if (c >= 256 && c <= 288) b = (uint8_t)(c - 256);
            else if (c >= 289 && c <= 322) b = (uint8_t)(c - 289 + 127);
            else if (c == 323) b = 173;
            else abort(); /* not a byte-level character */
            rr_buf_append(&got, &b, 1);
        }
    }
    char *tmp = rr_malloc(n + 1);
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *nfc = (char *)utf8proc_NFC((const utf8proc_uint8_t *)tmp);
    if (!nfc || got.len != strlen(nfc) || (got.len && memcmp(got.data, nfc, got.len))) abort();
    free(nfc);
    rr_free(tmp);
    rr_buf_free(&got);
    rr_encoding_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok[0]) load_all();
    if (size < 3) return 0;
    uint8_t mode = data[0], ml = data[1], split = data[2];
    data += 3, size -= 3;
    if (mode % 8 == 7) { /* charsmap blob */
        rr_tok_charsmap m;
        if (rr_tok_charsmap_parse(&m, data, size, "fuzz") == RR_OK) {
            rr_buf out = {0};
            const char *txt = "Hello ＷＯＲＬＤ e\xCC\x82\xCC\xA3 \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 \xE1\x84\x80\xE1\x85\xA1";
            rr_tok_charsmap_apply(&m, txt, strlen(txt), &out);
            rr_buf_free(&out);
            rr_tok_charsmap_free(&m);
        }
        return 0;
    }
    rr_buf text = {0};
    if (mode & 1) { /* random Unicode */
        for (size_t i = 0; i + 1 < size; i += 2) {
            const uint32_t *r = g_ranges[data[i] % RR_ARRAY_LEN(g_ranges)];
            uint32_t cp = r[0] + (uint32_t)data[i + 1] % (r[1] - r[0] + 1);
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
            char u[4];
            rr_buf_append(&text, u, (size_t)rr_tok_utf8_put(cp, u));
        }
    } else {
        rr_buf_append(&text, data, size);
    }
    const char *s = text.data ? text.data : "";
    size_t n = text.len, cut = n ? split % (n + 1) : 0;
    rr_encoding e = {0};
    int max_length = ml < 128 ? 0 : ml - 128;
    check_bytelevel_roundtrip(g_tok[2], s, n);
    for (int k = 0; k < N_TOK; k++) {
        const rr_tokenizer *t = g_tok[k];
        rr_truncation strat = (rr_truncation)((mode >> 4) % 3);
        if (rr_tokenizer_encode(t, (rr_text){s, n}, NULL, &(rr_encode_params){(mode >> 1) & 1, max_length, RR_TRUNC_LONGEST_FIRST}, &e) == RR_OK)
            check_enc(t, &e, max_length);
        if (rr_tokenizer_encode(t, (rr_text){s, cut}, &(rr_text){s + cut, n - cut}, &(rr_encode_params){(mode >> 2) & 1, max_length, strat}, &e) == RR_OK) {
            check_enc(t, &e, max_length);
            rr_encoding a = {0}, b = {0}, pp = {0};
            if (rr_tokenizer_encode(t, (rr_text){s, cut}, NULL, &(rr_encode_params){0, 0, RR_TRUNC_LONGEST_FIRST}, &a) == RR_OK &&
                rr_tokenizer_encode(t, (rr_text){s + cut, n - cut}, NULL, &(rr_encode_params){0, 0, RR_TRUNC_LONGEST_FIRST}, &b) == RR_OK &&
                rr_tokenizer_post_process(t, &a, &b, &pp) == RR_OK)
                check_enc(t, &pp, 0);
            rr_encoding_free(&a);
            rr_encoding_free(&b);
            rr_encoding_free(&pp);
        }
    }
    rr_encoding_free(&e);
    rr_buf_free(&text);
    return 0;
}
