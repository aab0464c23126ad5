/*
 * config_ext.c -- config.json of the encoder families whose architecture differs from BERT /
 * XLM-R beyond tensor names: JinaBERT v1 (ALiBi, GEGLU), mGTE ("new": rotary with NTK scaling, GLU)
 * and ModernBERT (pre-norm, rotary, alternating global and sliding-window layers).
 *
 * A family is recognised from config.json alone (architectures / model_type / position scheme);
 * model_ext.c then checks that the tensor names agree. Every field the family's modeling code acts
 * on is read from the file, with the code's own default when absent; a value we do not implement is
 * refused with a message naming the field. docs/FAMILIES.md records what was read and why.
 */
#include "model/model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

static rr_status opt_double(const cJSON *j, const char *path, const char *key, double dflt, double *out) {
    rr_status s = rr_json_get_double(j, key, path, out);
    if (s == RR_ERR_NOT_FOUND) {
        *out = dflt;
        return RR_OK;
    }
    return s;
}

/* A boolean field: absent or null -> dflt; anything but true/false is an error. */
static rr_status opt_bool(const cJSON *j, const char *path, const char *key, int dflt, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return RR_OK;
    }
    if (!cJSON_IsBool(v)) return rr_fail(RR_ERR_FORMAT, "%s: field \"%s\" must be true or false", path, key);
    *out = cJSON_IsTrue(v);
    return RR_OK;
}

/* A string field that must be one of `allowed` (NULL-terminated); absent -> dflt. Returns the index. */
static rr_status opt_choice(const cJSON *j, const char *path, const char *key, const char *const *allowed,
                            const char *dflt, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    const char *str = dflt;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v)) return rr_fail(RR_ERR_FORMAT, "%s: field \"%s\" must be a string", path, key);
        str = v->valuestring;
    }
    char list[256] = "";
    size_t n = 0;
    for (int i = 0; allowed[i]; i++) {
        if (!strcmp(str, allowed[i])) {
            *out = i;
            return RR_OK;
        }
        n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s\"%s\"", i ? ", " : "", allowed[i]);
    }
    return rr_fail(RR_ERR_UNSUPPORTED, "%s: %s \"%s\" is not supported (supported: %s)", path, key, str, list);
}

static const char *const ACTS[] = {"gelu", "relu", "silu", NULL}; /* index = rr_kern_act */

static rr_status check_labels(const cJSON *j, const char *path) {
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(j, "id2label");
    int labels = 1;
    rr_status s = rr_json_opt_int(j, path, "num_labels", 1, 1 << 20, 1, &labels);
    if (s) return s;
    if (cJSON_IsObject(id2label)) labels = cJSON_GetArraySize(id2label);
    if (labels != 1)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: %d labels (id2label); rerank needs a single-logit cross-encoder", path,
                       labels);
    return RR_OK;
}

static rr_status shape_fields(const cJSON *j, const char *path, rr_config *c, int dflt_maxpos) {
    rr_status s;
    if ((s = rr_json_need_int(j, path, "vocab_size", 1, 10000000, &c->vocab_size)) ||
        (s = rr_json_need_int(j, path, "hidden_size", 1, 16384, &c->hidden)) ||
        (s = rr_json_need_int(j, path, "num_hidden_layers", 1, 256, &c->n_layers)) ||
        (s = rr_json_need_int(j, path, "num_attention_heads", 1, 1024, &c->n_heads)) ||
        (s = rr_json_need_int(j, path, "intermediate_size", 1, 131072, &c->intermediate)) ||
        (s = rr_json_opt_int(j, path, "max_position_embeddings", 2, 1 << 20, dflt_maxpos, &c->max_positions)))
        return s;
    if (c->hidden % c->n_heads)
        return rr_fail(RR_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->hidden,
                       c->n_heads);
    if ((c->hidden / c->n_heads) % 2 && c->pos_kind == RR_POS_ROPE)
        return rr_fail(RR_ERR_FORMAT, "%s: rotary positions need an even head size (hidden_size / num_attention_heads)",
                       path);
    c->max_length = c->max_positions; /* no position table: every position up to the trained length */
    c->pos_offset = 0;
    return check_labels(j, path);
}

static rr_status eps_field(const cJSON *j, const char *path, const char *key, double dflt, float *out) {
    double eps;
    rr_status s = opt_double(j, path, key, dflt, &eps);
    if (s) return s;
    if (!(eps > 0 && eps < 1)) return rr_fail(RR_ERR_FORMAT, "%s: %s %g is not in (0, 1)", path, key, eps);
    *out = (float)eps;
    return RR_OK;
}

/* ------------------------------------------------------------------ JinaBERT v1 */

static rr_status jina_v1(const cJSON *j, const char *path, rr_config *c) {
    c->family = RR_FAMILY_JINA_V1;
    c->pos_kind = RR_POS_ALIBI;
    rr_status s;
    if ((s = shape_fields(j, path, c, 512)) ||
        (s = rr_json_opt_int(j, path, "type_vocab_size", 0, 1024, 2, &c->type_vocab_size)) ||
        (s = rr_json_opt_int(j, path, "pad_token_id", 0, c->vocab_size - 1, 0, &c->pad_id)) ||
        (s = eps_field(j, path, "layer_norm_eps", 1e-12, &c->eps)))
        return s;
    /* the gated FFN's activation comes from feed_forward_type; hidden_act is not used by it, but a
     * config naming another activation is not one we have checked */
    const char *act = rr_json_get_str(j, "hidden_act");
    if (act && strcmp(act, "gelu"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only \"gelu\")", path, act);
    static const char *const ff[] = {"geglu", "reglu", NULL};
    int k;
    if ((s = opt_choice(j, path, "feed_forward_type", ff, "geglu", &k))) return s;
    c->act = k == 0 ? RR_KERN_ACT_GELU : RR_KERN_ACT_RELU;
    c->glu = RR_GLU_FIRST;
    c->head = RR_HEAD_TANH; /* model_ext.c: RR_HEAD_PLAIN when the checkpoint has no pooler */
    c->qkv_bias = c->mlp_bias = c->norm_bias = c->head_bias = 1;
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(j, "is_decoder");
    if (cJSON_IsTrue(dec)) return rr_fail(RR_ERR_UNSUPPORTED, "%s: is_decoder is true", path);
    return RR_OK;
}

/* ------------------------------------------------------------------ mGTE ("new") */

static rr_status mgte(const cJSON *j, const char *path, rr_config *c) {
    c->family = RR_FAMILY_MGTE;
    c->pos_kind = RR_POS_ROPE;
    rr_status s;
    static const char *const pet[] = {"rope", NULL}, *const lnt[] = {"layer_norm", NULL};
    int k;
    if ((s = opt_choice(j, path, "position_embedding_type", pet, "rope", &k)) ||
        (s = opt_choice(j, path, "layer_norm_type", lnt, "layer_norm", &k)) ||
        (s = shape_fields(j, path, c, 2048)) ||
        (s = rr_json_opt_int(j, path, "type_vocab_size", 0, 1024, 1, &c->type_vocab_size)) ||
        (s = rr_json_opt_int(j, path, "pad_token_id", 0, c->vocab_size - 1, 1, &c->pad_id)) ||
        (s = eps_field(j, path, "layer_norm_eps", 1e-12, &c->eps)) ||
        (s = opt_choice(j, path, "hidden_act", ACTS, "gelu", &c->act)))
        return s;
    int packed, logn, clip1;
    if ((s = opt_bool(j, path, "pack_qkv", 1, &packed)) ||
        (s = opt_bool(j, path, "logn_attention_scale", 0, &logn)) ||
        (s = opt_bool(j, path, "logn_attention_clip1", 0, &clip1)))
        return s;
    if (!packed) return rr_fail(RR_ERR_UNSUPPORTED, "%s: pack_qkv false is not supported (only the fused qkv_proj)", path);
    if (logn) return rr_fail(RR_ERR_UNSUPPORTED, "%s: logn_attention_scale true is not supported", path);
    if (clip1) return rr_fail(RR_ERR_UNSUPPORTED, "%s: logn_attention_clip1 true is not supported", path);
    /* rope_theta, or rope_parameters.rope_theta in configs re-saved by newer transformers */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(j, "rope_parameters");
    if ((s = opt_double(cJSON_IsObject(rp) ? rp : j, path, "rope_theta", 10000.0, &c->rope_base))) return s;
    if (!(c->rope_base > 1)) return rr_fail(RR_ERR_FORMAT, "%s: rope_theta %g must be above 1", path, c->rope_base);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (sc && !cJSON_IsNull(sc)) {
        if (!cJSON_IsObject(sc)) return rr_fail(RR_ERR_FORMAT, "%s: rope_scaling must be an object or null", path);
        const char *type = rr_json_get_str(sc, "type");
        if (!type) type = rr_json_get_str(sc, "rope_type");
        if (!type || strcmp(type, "ntk"))
            return rr_fail(RR_ERR_UNSUPPORTED, "%s: rope_scaling type \"%s\" is not supported (only \"ntk\")", path,
                           type ? type : "(missing)");
        if (cJSON_GetObjectItemCaseSensitive(sc, "mixed_b"))
            return rr_fail(RR_ERR_UNSUPPORTED, "%s: rope_scaling mixed_b (mixed NTK) is not supported", path);
        if ((s = rr_json_get_double(sc, "factor", path, &c->rope_ntk)))
            return s == RR_ERR_NOT_FOUND ? rr_fail(RR_ERR_FORMAT, "%s: rope_scaling has no \"factor\"", path) : s;
        if (!(c->rope_ntk >= 1))
            return rr_fail(RR_ERR_FORMAT, "%s: rope_scaling factor %g must be at least 1", path, c->rope_ntk);
    }
    c->rope_base_local = c->rope_base;
    c->glu = RR_GLU_SECOND;
    c->head = RR_HEAD_TANH;
    c->qkv_bias = c->norm_bias = c->head_bias = 1;
    c->mlp_bias = 0; /* up_gate_proj has none; down_proj's bias is loaded on its own (model_ext.c) */
    return RR_OK;
}

/* ------------------------------------------------------------------ ModernBERT */

static rr_status modernbert(const cJSON *j, const char *path, rr_config *c) {
    c->family = RR_FAMILY_MODERNBERT;
    c->pos_kind = RR_POS_ROPE;
    c->prenorm = 1;
    c->type_vocab_size = 0;
    rr_status s;
    if ((s = shape_fields(j, path, c, 8192)) ||
        (s = rr_json_opt_int(j, path, "pad_token_id", 0, c->vocab_size - 1, 0, &c->pad_id)) ||
        (s = eps_field(j, path, "norm_eps", 1e-5, &c->eps)) ||
        (s = opt_choice(j, path, "hidden_activation", ACTS, "gelu", &c->act)) ||
        (s = opt_choice(j, path, "classifier_activation", ACTS, "gelu", &c->head_act)) ||
        (s = opt_bool(j, path, "norm_bias", 0, &c->norm_bias)) ||
        (s = opt_bool(j, path, "attention_bias", 0, &c->qkv_bias)) ||
        (s = opt_bool(j, path, "mlp_bias", 0, &c->mlp_bias)) ||
        (s = opt_bool(j, path, "classifier_bias", 0, &c->head_bias)) ||
        (s = rr_json_opt_int(j, path, "global_attn_every_n_layers", 1, 1 << 20, 3, &c->global_every)))
        return s;
    static const char *const pools[] = {"cls", "mean", NULL};
    if ((s = opt_choice(j, path, "classifier_pooling", pools, "cls", &c->mean_pool))) return s;
    int local;
    if ((s = rr_json_opt_int(j, path, "local_attention", 2, 1 << 20, 128, &local))) return s;
    c->window = local / 2; /* total window: half on each side of the query, plus itself */
    /* rotary bases: the flat fields, or rope_parameters {full_attention, sliding_attention} of
     * configs re-saved by newer transformers */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(j, "rope_parameters");
    const cJSON *rg = cJSON_IsObject(rp) ? cJSON_GetObjectItemCaseSensitive(rp, "full_attention") : NULL;
    const cJSON *rl = cJSON_IsObject(rp) ? cJSON_GetObjectItemCaseSensitive(rp, "sliding_attention") : NULL;
    if ((s = opt_double(j, path, "global_rope_theta", 160000.0, &c->rope_base))) return s;
    if (cJSON_IsObject(rg) && (s = opt_double(rg, path, "rope_theta", c->rope_base, &c->rope_base))) return s;
    if ((s = opt_double(j, path, "local_rope_theta", c->rope_base, &c->rope_base_local))) return s;
    if (cJSON_IsObject(rl) && (s = opt_double(rl, path, "rope_theta", c->rope_base_local, &c->rope_base_local)))
        return s;
    if (!(c->rope_base > 1) || !(c->rope_base_local > 1))
        return rr_fail(RR_ERR_FORMAT, "%s: rotary bases must be above 1", path);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (sc && !cJSON_IsNull(sc)) return rr_fail(RR_ERR_UNSUPPORTED, "%s: rope_scaling is not supported", path);
    /* layer_types, when present, overrides the every-n rule; model_ext.c reads it per layer */
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(j, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers)
            return rr_fail(RR_ERR_FORMAT, "%s: layer_types must list num_hidden_layers (%d) entries", path, c->n_layers);
        int i = 0, first_global = -1;
        for (const cJSON *e = lt->child; e; e = e->next, i++) {
            if (!cJSON_IsString(e) ||
                (strcmp(e->valuestring, "full_attention") && strcmp(e->valuestring, "sliding_attention")))
                return rr_fail(RR_ERR_UNSUPPORTED,
                               "%s: layer_types[%d] must be \"full_attention\" or \"sliding_attention\"", path, i);
            int glob = !strcmp(e->valuestring, "full_attention");
            if (glob && first_global < 0) first_global = i;
            /* only the every-n pattern is stored: check the list is one */
            if (glob != (i % c->global_every == 0))
                return rr_fail(RR_ERR_UNSUPPORTED,
                               "%s: layer_types does not follow global_attn_every_n_layers %d (layer %d)", path,
                               c->global_every, i);
        }
    }
    c->glu = RR_GLU_FIRST;
    c->head = RR_HEAD_DENSE_ACT_NORM;
    return RR_OK;
}

rr_status rr_config_ext(const cJSON *j, const char *path, rr_config *c, int *mine) {
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    const char *a = cJSON_IsArray(arch) && cJSON_IsString(arch->child) ? arch->child->valuestring : "";
    const char *mt = rr_json_get_str(j, "model_type");
    const char *pet = rr_json_get_str(j, "position_embedding_type");
    *mine = 1;
    if (!strcmp(a, "NewForSequenceClassification") || (mt && !strcmp(mt, "new"))) {
        if (*a && strcmp(a, "NewForSequenceClassification"))
            return rr_fail(RR_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported (mGTE: only "
                           "NewForSequenceClassification)", path, a);
        return mgte(j, path, c);
    }
    if (!strcmp(a, "ModernBertForSequenceClassification") || (mt && !strcmp(mt, "modernbert"))) {
        if (strcmp(a, "ModernBertForSequenceClassification"))
            return rr_fail(RR_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported (ModernBERT: only "
                           "ModernBertForSequenceClassification)", path, a);
        return modernbert(j, path, c);
    }
    if (!strcmp(a, "JinaBertForSequenceClassification") ||
        (!strcmp(a, "BertForSequenceClassification") && pet && !strcmp(pet, "alibi"))) {
        if (!pet || strcmp(pet, "alibi"))
            return rr_fail(RR_ERR_UNSUPPORTED, "%s: position_embedding_type \"%s\" is not supported for JinaBERT "
                           "(only \"alibi\")", path, pet ? pet : "(missing)");
        return jina_v1(j, path, c);
    }
    *mine = 0;
    return RR_OK;
}
