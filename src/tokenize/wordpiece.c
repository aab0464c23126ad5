/*
 * wordpiece.c -- the WordPiece model (BERT): greedy longest-match-first over each pre-token, the
 * pieces after the first carrying the continuing-subword prefix ("##"). A word longer than
 * max_input_chars_per_word characters, or one with a position no piece matches, becomes a single
 * unknown token, as in HF tokenizers. The longest match is one walk of the vocabulary trie that
 * remembers the last terminal node reached at a character boundary.
 */
#include "tokenize/tok.h"

#include <cjson/cJSON.h>

rr_status rr_tok_wordpiece_load(rr_tok_model *m, const cJSON *j, const char *what) {
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(j, "vocab");
    if (!cJSON_IsObject(vocab)) return rr_fail(RR_ERR_FORMAT, "%s: field \"model.vocab\" must be an object", what);
    long max_id = -1;
    size_t bytes = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > (1 << 28) || e->valuedouble != (long)e->valuedouble)
            return rr_fail(RR_ERR_FORMAT, "%s: field \"model.vocab\" entry \"%s\" must be an id in [0, 2^28]", what,
                           e->string ? e->string : "");
        if ((long)e->valuedouble > max_id) max_id = (long)e->valuedouble;
        bytes += strlen(e->string) + 1;
    }
    if (max_id < 0) return rr_fail(RR_ERR_FORMAT, "%s: field \"model.vocab\" is empty", what);
    rr_status st = rr_tok_model_alloc(m, (int)max_id + 1, bytes, what);
    if (st) return st;
    m->kind = RR_TOK_WORDPIECE;
    /* Every key goes into the trie (two keys may share an id), in file order for duplicates. */
    rr_tok_key *keys = rr_malloc((size_t)cJSON_GetArraySize(vocab) * sizeof *keys + 1);
    if (!keys) return rr_fail(RR_ERR_NOMEM, "%s: out of memory for the vocabulary", what);
    size_t off = 0, nk = 0;
    cJSON_ArrayForEach(e, vocab) {
        size_t len = strlen(e->string);
        int id = (int)e->valuedouble;
        memcpy(m->arena + off, e->string, len + 1);
        m->pieces[id] = m->arena + off;
        m->piece_len[id] = (uint32_t)len;
        keys[nk++] = (rr_tok_key){m->arena + off, (uint32_t)len, id};
        off += len + 1;
    }
    st = rr_tok_trie_build(&m->trie, keys, nk);
    rr_free(keys);
    if (st) return rr_errmsg_prefix("%s", what), st;
    const char *unk = rr_json_get_str(j, "unk_token");
    if (!unk) unk = "[UNK]";
    m->unk_id = rr_tok_trie_get(&m->trie, unk, strlen(unk));
    const char *cont = rr_json_get_str(j, "continuing_subword_prefix");
    if (!cont) cont = "##";
    m->cont_prefix = rr_strdup(cont);
    if (!m->cont_prefix) return rr_fail(RR_ERR_NOMEM, "%s: out of memory", what);
    m->has_cont = true;
    m->cont_node = 0;
    for (size_t k = 0; cont[k]; k++)
        if (!(m->cont_node = rr_tok_trie_step(&m->trie, m->cont_node, (uint8_t)cont[k]))) {
            m->has_cont = false;
            break;
        }
    long mc = 100;
    st = rr_json_get_int(j, "max_input_chars_per_word", 0, INT32_MAX, what, &mc);
    if (st && st != RR_ERR_NOT_FOUND) return st;
    m->max_chars = (int)mc;
    return RR_OK;
}

rr_status rr_tok_wordpiece_encode(const rr_tok_model *m, const char *s, size_t n, rr_tok_ids *out) {
    const uint8_t *u = (const uint8_t *)s;
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) chars += (u[i] & 0xC0) != 0x80;
    size_t first = out->n;
    if (chars <= (size_t)m->max_chars) {
        size_t start = 0;
        while (start < n) {
            uint32_t node = 0;
            if (start > 0) {
                if (!m->has_cont) break;
                node = m->cont_node;
            }
            int32_t best = -1;
            size_t best_end = start;
            for (size_t k = start; k < n; k++) {
                if (!(node = rr_tok_trie_step(&m->trie, node, u[k]))) break;
                bool boundary = k + 1 == n || (u[k + 1] & 0xC0) != 0x80;
                if (boundary && m->trie.value[node] >= 0) best = m->trie.value[node], best_end = k + 1;
            }
            if (best < 0) break;
            rr_tok_ids_push(out, best);
            start = best_end;
        }
        if (start >= n) return out->oom ? rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory") : RR_OK;
    }
    out->n = first;
    if (m->unk_id < 0) return rr_fail(RR_ERR_UNSUPPORTED, "tokenizer: WordPiece unk_token is not in the vocabulary");
    rr_tok_ids_push(out, m->unk_id);
    return out->oom ? rr_fail(RR_ERR_NOMEM, "tokenizer: out of memory") : RR_OK;
}
