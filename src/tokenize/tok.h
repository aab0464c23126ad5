/*
 * tok.h -- internals of the tokenizer module (src/tokenize): the loaded tokenizer.json pipeline
 * (added tokens -> normalizers -> pre-tokenizers -> model -> truncation -> post-processor) and
 * the pieces each stage is built from. Everything a loaded rr_tokenizer holds is immutable after
 * rr_tokenizer_load; per-call working memory lives in an rr_tok_scratch owned by the caller of
 * the stage functions, so one tokenizer serves any number of threads.
 *
 * Strings between stages are UTF-8 and always valid (invalid input is repaired first, the way
 * Rust's String::from_utf8_lossy does). Offsets into the original text are not tracked: the
 * engine only needs ids and type ids.
 */
#ifndef RR_TOK_H
#define RR_TOK_H

#include "core/core.h"

struct cJSON;

/* ------------------------------------------------------------------ UTF-8 and character classes */

/* Decodes one code point of VALID UTF-8 at s (n > 0 bytes available); *len receives its length. */
static inline uint32_t rr_tok_utf8_next(const uint8_t *s, size_t n, size_t *len) {
    uint8_t c = s[0];
    if (c < 0x80 || n < 2) return *len = 1, c;
    if (c < 0xE0) return *len = 2, ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    if (c < 0xF0 || n < 4) {
        if (n < 3) return *len = 1, c;
        return *len = 3, ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    return *len = 4, ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                         ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}
/* Writes cp as UTF-8 into out (4 bytes room); returns the length. */
int rr_tok_utf8_put(uint32_t cp, char *out);

/* Rust char::is_whitespace (Unicode White_Space). */
bool rr_tok_is_whitespace(uint32_t cp);
/* Regex \w in Rust's regex crate (alphabetic, marks, decimal digits, connector punctuation, joiners). */
bool rr_tok_is_word(uint32_t cp);

/* ------------------------------------------------------------------ byte trie over a vocabulary */

/* A byte-level trie over a vocabulary. Child links live in one open-addressing hash table of
 * 64-bit slots, each packing the key (parent << 8 | byte) + 1 in its low 36 bits and the child in
 * its high 28, so a step costs one multiply and usually one cache line; the root's children are a
 * dense table. Terminal nodes carry a value (a token id); inserting a key twice keeps the last
 * value, as a HashMap insert would. Node 0 is the root and never a child, so 0 means "none". */
typedef struct rr_tok_trie {
    uint64_t *slots;
    size_t cap, used;
    int shift;          /* 64 - log2(cap) */
    int32_t *value;     /* per node: id or -1 */
    size_t n_nodes, nodes_cap;
    uint32_t root[256];
} rr_tok_trie;

#define RR_TOK_TRIE_KEY_BITS 36
#define RR_TOK_TRIE_KEY_MASK ((UINT64_C(1) << RR_TOK_TRIE_KEY_BITS) - 1)

rr_status rr_tok_trie_init(rr_tok_trie *t, size_t expect_keys);
rr_status rr_tok_trie_insert(rr_tok_trie *t, const char *key, size_t len, int32_t value);
/* The child of node for byte b, created when missing. */
rr_status rr_tok_trie_child(rr_tok_trie *t, uint32_t node, uint8_t b, uint32_t *out);
void rr_tok_trie_free(rr_tok_trie *t);

/* Child of node for byte b, or 0 when there is none. */
static inline uint32_t rr_tok_trie_step(const rr_tok_trie *t, uint32_t node, uint8_t b) {
    if (node == 0) return t->root[b];
    uint64_t key = (((uint64_t)node << 8) | b) + 1;
    size_t mask = t->cap - 1, i = (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> t->shift);
    for (;;) {
        uint64_t v = t->slots[i];
        if ((v & RR_TOK_TRIE_KEY_MASK) == key) return (uint32_t)(v >> RR_TOK_TRIE_KEY_BITS);
        if (!v) return 0;
        i = (i + 1) & mask;
    }
}
/* Value of the exact key, or -1. */
int32_t rr_tok_trie_get(const rr_tok_trie *t, const char *key, size_t len);

typedef struct rr_tok_key {
    const char *s;
    uint32_t len;
    int32_t value;
} rr_tok_key;
/* Rebuilds t from a key list (empty keys are skipped); a key listed twice keeps the value of its
 * later occurrence, as a HashMap filled in list order would. */
rr_status rr_tok_trie_build(rr_tok_trie *t, const rr_tok_key *keys, size_t n);

/* ------------------------------------------------------------------ Precompiled charsmap */

typedef struct rr_tok_charsmap {
    uint32_t *units;    /* Darts double-array units */
    size_t n_units;
    char *norm;         /* NUL-separated replacement strings */
    size_t norm_len;
    int32_t *bmp_off;   /* per BMP code point: offset of its single-char replacement, or -1 */
    uint16_t *bmp_len;
} rr_tok_charsmap;

/* Parses a sentencepiece precompiled charsmap blob (u32 LE trie size in bytes, trie units, strings).
 * `what` names the source for messages. An empty blob gives an identity map. */
rr_status rr_tok_charsmap_parse(rr_tok_charsmap *m, const uint8_t *blob, size_t n, const char *what);
void rr_tok_charsmap_free(rr_tok_charsmap *m);
/* The replacement of the shortest prefix of s[0..n) that has a rule: returns its offset in m->norm
 * and sets *len, or returns -1 when no prefix has a rule. */
long rr_tok_charsmap_lookup(const rr_tok_charsmap *m, const uint8_t *s, size_t n, size_t *len);
/* The replacement of exactly the key s[0..n) (a rule of the map), or -1 (for tests and tools). */
long rr_tok_charsmap_rule(const rr_tok_charsmap *m, const uint8_t *s, size_t n, size_t *len);
/* Appends the normalization of s to out, per grapheme cluster as HF's Precompiled normalizer does. */
void rr_tok_charsmap_apply(const rr_tok_charsmap *m, const char *s, size_t n, rr_buf *out);

/* ------------------------------------------------------------------ normalizers */

typedef enum rr_tok_norm_kind {
    RR_TOK_NORM_PRECOMPILED,
    RR_TOK_NORM_STRIP,
    RR_TOK_NORM_REPLACE,
    RR_TOK_NORM_NFC,
    RR_TOK_NORM_NFD,
    RR_TOK_NORM_NFKC,
    RR_TOK_NORM_NFKD,
    RR_TOK_NORM_LOWERCASE,
    RR_TOK_NORM_STRIP_ACCENTS,
    RR_TOK_NORM_BERT,
    RR_TOK_NORM_PREPEND,
} rr_tok_norm_kind;

/* A pattern: a literal string; a regex of the restricted form converters emit for Replace: a
 * sequence of atoms (a literal code point, '.', \s, \d, \w or a [...] class of literals and
 * ranges), each with an optional quantifier (*, +, ?, {n}, {n,}, {n,m}), matched greedily without
 * backtracking across atoms; or any other regex, compiled with Oniguruma (pattern.c). */
typedef struct rr_tok_re_atom {
    uint8_t kind;       /* 0 literal, 1 any, 2 \s, 3 \d, 4 \w, 5 class, 6 negated class */
    uint32_t cp;        /* literal */
    uint32_t *ranges;   /* class: pairs lo, hi */
    int n_ranges;
    int min, max;       /* repetitions; max -1 = unbounded */
} rr_tok_re_atom;

typedef struct rr_tok_pattern {
    bool is_regex;
    char *literal;      /* String pattern */
    size_t literal_len;
    rr_tok_re_atom *atoms;
    int n_atoms;
    void *onig;         /* compiled Oniguruma regex (regex_t *), or NULL */
} rr_tok_pattern;

struct rr_tok_spans;
/* Parses {"String": s} or {"Regex": r}. full_regex: every Regex goes to Oniguruma (Split);
 * otherwise the subset matcher takes the patterns it covers and Oniguruma the rest (Replace). */
rr_status rr_tok_pattern_parse(rr_tok_pattern *p, const struct cJSON *pattern, bool full_regex, const char *what);
void rr_tok_pattern_free(rr_tok_pattern *p);
/* Literal and subset patterns: finds the leftmost non-empty match at or after byte `from`;
 * returns 1 and sets [*ms, *me) or returns 0. */
int rr_tok_pattern_find(const rr_tok_pattern *p, const char *s, size_t n, size_t from, size_t *ms, size_t *me);
/* Appends every match in s[0..n) to out as (off, len), left to right and non-overlapping: for an
 * Oniguruma pattern exactly as HF tokenizers enumerates them (empty matches included), for the
 * others as repeated rr_tok_pattern_find. Fails only on memory or a regex engine error. */
rr_status rr_tok_pattern_matches(const rr_tok_pattern *p, const char *s, size_t n, struct rr_tok_spans *out);

typedef struct rr_tok_norm {
    rr_tok_norm_kind kind;
    bool strip_left, strip_right;             /* Strip */
    rr_tok_pattern pattern;                   /* Replace */
    char *content;                            /* Replace content, Prepend string */
    size_t content_len;
    bool clean_text, chinese, strip_accents, lowercase; /* BertNormalizer */
    rr_tok_charsmap charsmap;                 /* Precompiled */
} rr_tok_norm;

/* Appends the normalization of s by one normalizer to out. Memory failures are sticky in out; a
 * regex engine failure (Replace with an Oniguruma pattern) is returned. */
rr_status rr_tok_norm_apply(const rr_tok_norm *nm, const char *s, size_t n, rr_buf *out);
void rr_tok_norm_free(rr_tok_norm *nm);
/* Parses a normalizer object (Sequence is flattened into the list). */
rr_status rr_tok_norm_parse(const struct cJSON *j, rr_tok_norm **list, int *n, const char *what);

/* ------------------------------------------------------------------ pre-tokenizers */

typedef enum rr_tok_pre_kind {
    RR_TOK_PRE_METASPACE,
    RR_TOK_PRE_WHITESPACE_SPLIT,
    RR_TOK_PRE_WHITESPACE,
    RR_TOK_PRE_BERT,
    RR_TOK_PRE_PUNCTUATION,
    RR_TOK_PRE_DIGITS,
    RR_TOK_PRE_BYTELEVEL,
    RR_TOK_PRE_SPLIT,
} rr_tok_pre_kind;

typedef enum rr_tok_prepend { RR_TOK_PREPEND_ALWAYS, RR_TOK_PREPEND_FIRST, RR_TOK_PREPEND_NEVER } rr_tok_prepend;

typedef enum rr_tok_split_behavior {
    RR_TOK_SPLIT_REMOVED,
    RR_TOK_SPLIT_ISOLATED,
    RR_TOK_SPLIT_MERGED_PREV,
    RR_TOK_SPLIT_MERGED_NEXT,
    RR_TOK_SPLIT_CONTIGUOUS,
} rr_tok_split_behavior;

typedef struct rr_tok_pre {
    rr_tok_pre_kind kind;
    char replacement[5];        /* Metaspace replacement as UTF-8 */
    uint32_t replacement_cp;
    int replacement_len;
    rr_tok_prepend prepend;
    bool split;                 /* Metaspace split */
    rr_tok_split_behavior behavior; /* Punctuation, Split */
    bool individual_digits;     /* Digits */
    bool add_prefix_space, use_regex; /* ByteLevel */
    rr_tok_pattern pattern;     /* Split */
    bool invert;                /* Split */
} rr_tok_pre;

/* A pre-token: bytes [off, off + len) of a string buffer; at0 = it starts at offset 0 of the
 * original text (for Metaspace prepend_scheme "first"). */
typedef struct rr_tok_span {
    uint32_t off, len;
    uint32_t at0;
} rr_tok_span;

typedef struct rr_tok_spans {
    rr_tok_span *v;
    size_t n, cap;
    bool oom;
} rr_tok_spans;

void rr_tok_spans_push(rr_tok_spans *s, size_t off, size_t len, bool at0);
/* Applies one pre-tokenizer to every span of (in, ins), appending the resulting pieces to out/outs.
 * Memory failures are sticky in out/outs; a regex engine failure (Split) is returned. */
rr_status rr_tok_pre_apply(const rr_tok_pre *p, const char *in, const rr_tok_spans *ins, rr_buf *out,
                           rr_tok_spans *outs);
/* ByteLevel pre-tokenization of one span (bpe.c). */
void rr_tok_bytelevel_pre(const rr_tok_pre *p, const char *in, const rr_tok_span *sp, rr_buf *out, rr_tok_spans *outs);
rr_status rr_tok_pre_parse(const struct cJSON *j, rr_tok_pre **list, int *n, const char *what);
void rr_tok_pre_free(rr_tok_pre *p);

/* ------------------------------------------------------------------ models */

typedef enum rr_tok_model_kind { RR_TOK_UNIGRAM, RR_TOK_WORDPIECE, RR_TOK_BPE } rr_tok_model_kind;

typedef struct rr_tok_bpe rr_tok_bpe;

typedef struct rr_tok_model {
    rr_tok_model_kind kind;
    int n_vocab;            /* ids 0..n_vocab-1 */
    char **pieces;          /* id -> piece, NUL-terminated, pointing into arena; NULL for unused ids */
    uint32_t *piece_len;
    char *arena;
    rr_tok_trie trie;       /* piece -> id (last duplicate wins) */
    /* Unigram */
    double *scores;
    double min_score;
    int32_t unk_id;         /* -1 = none */
    bool byte_fallback;
    int32_t byte_ids[256];  /* <0xXX> ids for byte_fallback, -1 when missing */
    /* WordPiece */
    uint32_t cont_node;     /* trie node of the continuing-subword prefix ("##") */
    bool has_cont;          /* some piece starts with the prefix */
    char *cont_prefix;
    int max_chars;
    /* BPE */
    rr_tok_bpe *bpe;
} rr_tok_model;

/* Per-call working memory: grown on demand, owned by one encode call. */
typedef struct rr_tok_scratch {
    double *score;
    int32_t *from, *id;
    size_t cap;
    rr_buf tmp;
    bool oom;
    /* BPE: the symbols of one word, their links and the merge heap (bpe.c) */
    struct rr_tok_ids *sym;
    uint32_t *link;
    uint64_t *heap;
    size_t link_cap;
} rr_tok_scratch;

void rr_tok_scratch_free(rr_tok_scratch *s);

/* Growable id list. */
struct rr_tok_ids;
typedef struct rr_tok_ids {
    int32_t *v;
    size_t n, cap;
    bool oom;
} rr_tok_ids;
void rr_tok_ids_push(rr_tok_ids *ids, int32_t id);

/* serde_json's (default, not correctly rounded) f64 parse of the JSON number p[0..n). */
double rr_tok_serde_f64(const char *p, size_t n, bool *ok);
/* Re-reads the n scores of "model.vocab" from the raw JSON text the way serde_json does; false
 * when the text does not have the expected shape (the caller keeps cJSON's values). */
bool rr_tok_serde_unigram_scores(const char *text, size_t len, double *scores, int n);

/* Finds where the value of "model"."vocab" starts in the raw text. */
bool rr_tok_find_vocab(const char *text, size_t len, size_t *vb);
/* Parses a raw Unigram vocabulary array: piece strings decoded into arena (NUL-terminated, at
 * offsets *offs; arena needs n bytes), scores as serde_json reads them. Owned by the caller. */
rr_status rr_tok_parse_unigram_vocab(const char *raw, size_t n, char *arena, uint32_t **offs, double **scores, int *count,
                                     size_t *consumed, const char *what);

/* `raw`/`raw_len`: the whole tokenizer.json text, for rr_tok_serde_unigram_scores. */
rr_status rr_tok_unigram_load(rr_tok_model *m, const struct cJSON *j, const char *raw, size_t raw_len, const char *what);
/* The same in two steps from the raw text (the fast path: no cJSON nodes for the vocabulary):
 * parse the array starting at vocab (at most max bytes; *consumed receives its length), then,
 * once the rest of the file is parsed, finish with the model object. */
rr_status rr_tok_unigram_parse_raw(rr_tok_model *m, const char *vocab, size_t max, size_t *consumed, const char *what);
rr_status rr_tok_unigram_finish_raw(rr_tok_model *m, const struct cJSON *j, const char *what);
rr_status rr_tok_unigram_encode(const rr_tok_model *m, const char *s, size_t n, rr_tok_scratch *sc, rr_tok_ids *out);
rr_status rr_tok_wordpiece_load(rr_tok_model *m, const struct cJSON *j, const char *what);
rr_status rr_tok_wordpiece_encode(const rr_tok_model *m, const char *s, size_t n, rr_tok_ids *out);
rr_status rr_tok_bpe_load(rr_tok_model *m, const struct cJSON *j, const char *what);
rr_status rr_tok_bpe_encode(const rr_tok_model *m, const char *s, size_t n, rr_tok_scratch *sc, rr_tok_ids *out);
void rr_tok_bpe_free(rr_tok_bpe *b);
void rr_tok_model_free(rr_tok_model *m);
/* Inserts every piece into the trie (ids in file order decide duplicates: the last one wins). */
rr_status rr_tok_insert_sorted(rr_tok_model *m, const char *what);
/* Allocates the id tables for n_vocab ids and an arena of arena_bytes for their strings. */
rr_status rr_tok_model_alloc(rr_tok_model *m, int n_vocab, size_t arena_bytes, const char *what);

/* ------------------------------------------------------------------ added tokens */

typedef struct rr_tok_added {
    char *content;
    size_t len;
    char *pat;          /* what is matched: content, or its normalization when normalized */
    size_t pat_len;
    int32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
} rr_tok_added;

/* A matcher over one set of added tokens (the raw-text set or the normalized-text set). */
typedef struct rr_tok_matcher {
    rr_tok_added **tok;  /* sorted by first byte, then longer first */
    int n;
    int first[257];      /* tokens with first byte b are tok[first[b] .. first[b+1]) */
} rr_tok_matcher;

/* A segment of text: either plain text [off, off+len) or an added token (id >= 0). */
typedef struct rr_tok_seg {
    size_t off, len;
    int32_t id;
} rr_tok_seg;

typedef struct rr_tok_segs {
    rr_tok_seg *v;
    size_t n, cap;
    bool oom;
} rr_tok_segs;

/* Splits s into segments around added-token matches, the way HF's AddedVocabulary does
 * (leftmost-longest, single_word / lstrip / rstrip rules). Appends to out. */
void rr_tok_segs_push(rr_tok_segs *s, size_t off, size_t len, int32_t id);
/* Builds a matcher over the tokens of `all` whose normalized flag equals `normalized`. */
rr_status rr_tok_matcher_build(rr_tok_matcher *mt, rr_tok_added *all, int n, bool normalized);
void rr_tok_matcher_free(rr_tok_matcher *mt);
void rr_tok_match_split(const rr_tok_matcher *mt, const char *s, size_t n, size_t base, rr_tok_segs *out);

/* ------------------------------------------------------------------ post-processor */

typedef struct rr_tok_tpl_item {
    int8_t seq;        /* 0 = $A, 1 = $B, -1 = special token */
    int32_t type_id;
    int32_t *ids;      /* special: its ids */
    int n_ids;
} rr_tok_tpl_item;

typedef enum rr_tok_post_kind { RR_TOK_POST_NONE, RR_TOK_POST_TEMPLATE, RR_TOK_POST_ROBERTA, RR_TOK_POST_BERT } rr_tok_post_kind;

typedef struct rr_tok_post {
    rr_tok_post_kind kind;
    rr_tok_tpl_item *single, *pair;
    int n_single, n_pair;
} rr_tok_post;

rr_status rr_tok_post_parse(rr_tok_post *p, const struct cJSON *j, const char *what);
void rr_tok_post_free(rr_tok_post *p);
int rr_tok_post_added(const rr_tok_post *p, bool pair);
/* Writes the post-processed encoding of (a, b) into out. */
rr_status rr_tok_post_apply(const rr_tok_post *p, const int32_t *a, size_t na, const int32_t *b, size_t nb,
                            bool pair, bool add_special, rr_encoding *out);
/* HF truncate_encodings: new lengths of a and b for max length T (specials already subtracted). */
rr_status rr_tok_truncate(size_t *na, size_t *nb, bool pair, size_t T, rr_truncation strategy);

/* ------------------------------------------------------------------ the tokenizer */

struct rr_tokenizer {
    char *path;
    rr_tok_norm *norms;
    int n_norms;
    rr_tok_pre *pres;
    int n_pres;
    rr_tok_model model;
    rr_tok_added *added;
    int n_added;
    rr_tok_matcher raw_match, norm_match; /* non-normalized and normalized added tokens */
    rr_tok_post post;
    int vocab_size;
    int model_max_length;
};

#endif
