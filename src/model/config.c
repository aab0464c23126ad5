/*
 * config.c -- reads a Hugging Face config.json into rr_config.
 *
 * Shapes come from the config, never from class defaults (jina's config class defaults differ from
 * its config.json). Anything rerank does not implement -- another architecture, activation, position
 * scheme, or more than one label -- is refused here with a message naming the field, before any
 * weight is touched.
 */
#include "model/model.h"

#include <cjson/cJSON.h>

static rr_status check_config(const cJSON *j, const char *path, rr_config *c, int *is_bert) {
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    const char *a = cJSON_IsArray(arch) && cJSON_IsString(arch->child) ? arch->child->valuestring : NULL;
    const char *mt = rr_json_get_str(j, "model_type");
    int ext = 0;
    rr_status es = rr_config_ext(j, path, c, &ext); /* JinaBERT v1, mGTE, ModernBERT */
    if (ext || es) {
        *is_bert = 0;
        return es;
    }
    if (!a) return rr_fail(RR_ERR_FORMAT, "%s: missing field \"architectures\"", path);
    if (!strcmp(a, "XLMRobertaForSequenceClassification") || !strcmp(a, "RobertaForSequenceClassification")) {
        *is_bert = 0;
    } else if (!strcmp(a, "BertForSequenceClassification")) {
        *is_bert = 1;
    } else if (!strcmp(a, "Qwen3ForCausalLM") || !strcmp(a, "Qwen2ForCausalLM") ||
               !strcmp(a, "Qwen3ForSequenceClassification") || !strcmp(a, "JinaForRanking")) {
        *is_bert = 0;
        return rr_qwen_config(j, path, a, c);
    } else {
        return rr_fail(RR_ERR_UNSUPPORTED,
                       "%s: architecture \"%s\" is not supported (supported: XLMRobertaForSequenceClassification, "
                       "BertForSequenceClassification, Qwen3ForCausalLM, Qwen2ForCausalLM, "
                       "Qwen3ForSequenceClassification, JinaForRanking, "
                       "JinaBertForSequenceClassification, NewForSequenceClassification, "
                       "ModernBertForSequenceClassification)",
                       path, a);
    }
    if (mt && strcmp(mt, "xlm-roberta") && strcmp(mt, "roberta") && strcmp(mt, "bert"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not supported", path, mt);

    rr_status s;
    if ((s = rr_json_need_int(j, path, "vocab_size", 1, 10000000, &c->vocab_size)) ||
        (s = rr_json_need_int(j, path, "hidden_size", 1, 16384, &c->hidden)) ||
        (s = rr_json_need_int(j, path, "num_hidden_layers", 1, 256, &c->n_layers)) ||
        (s = rr_json_need_int(j, path, "num_attention_heads", 1, 1024, &c->n_heads)) ||
        (s = rr_json_need_int(j, path, "intermediate_size", 1, 131072, &c->intermediate)) ||
        (s = rr_json_need_int(j, path, "max_position_embeddings", 1, 1 << 20, &c->max_positions)) ||
        (s = rr_json_opt_int(j, path, "type_vocab_size", 0, 1024, 2, &c->type_vocab_size)) ||
        (s = rr_json_opt_int(j, path, "pad_token_id", 0, c->vocab_size - 1, *is_bert ? 0 : 1, &c->pad_id)))
        return s;
    if (c->hidden % c->n_heads)
        return rr_fail(RR_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->hidden,
                       c->n_heads);
    double eps = 1e-12;
    s = rr_json_get_double(j, "layer_norm_eps", path, &eps);
    if (s && s != RR_ERR_NOT_FOUND) return s;
    if (!(eps > 0 && eps < 1)) return rr_fail(RR_ERR_FORMAT, "%s: layer_norm_eps %g is not in (0, 1)", path, eps);
    c->eps = (float)eps;

    const char *act = rr_json_get_str(j, "hidden_act");
    if (!act) return rr_fail(RR_ERR_FORMAT, "%s: missing field \"hidden_act\"", path);
    if (strcmp(act, "gelu"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only the exact \"gelu\")", path, act);
    const char *pet = rr_json_get_str(j, "position_embedding_type");
    if (pet && strcmp(pet, "absolute"))
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: position_embedding_type \"%s\" is not supported (only \"absolute\")",
                       path, pet);
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(j, "id2label");
    int labels = 1;
    if ((s = rr_json_opt_int(j, path, "num_labels", 1, 1 << 20, 1, &labels))) return s;
    if (cJSON_IsObject(id2label)) labels = cJSON_GetArraySize(id2label);
    if (labels != 1)
        return rr_fail(RR_ERR_UNSUPPORTED, "%s: %d labels (id2label); rerank needs a single-logit cross-encoder", path,
                       labels);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(j, "is_decoder");
    if (cJSON_IsTrue(dec)) return rr_fail(RR_ERR_UNSUPPORTED, "%s: is_decoder is true", path);

    c->family = *is_bert ? RR_FAMILY_BERT : RR_FAMILY_XLMR; /* jina is told apart by its tensor names */
    c->pos_offset = *is_bert ? 0 : c->pad_id + 1;
    c->max_length = c->max_positions - c->pos_offset;
    if (c->max_length < 2)
        return rr_fail(RR_ERR_FORMAT, "%s: max_position_embeddings %d leaves no room after pad_token_id %d", path,
                       c->max_positions, c->pad_id);
    return RR_OK;
}

rr_status rr_config_load(const char *path, rr_config *cfg, int *is_bert) {
    char *text = NULL;
    size_t len;
    /* real config.json files are 1-5 KB: 1 MiB bounds a hostile one */
    rr_status s = rr_file_read(path, RR_CONFIG_MAX_BYTES, &text, &len);
    if (s) return s;
    cJSON *j = NULL;
    s = rr_json_parse(text, len, path, &j);
    rr_free(text);
    if (s) return s;
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(j)) s = rr_fail(RR_ERR_FORMAT, "%s: not a JSON object", path);
    else s = check_config(j, path, cfg, is_bert);
    cJSON_Delete(j);
    return s;
}
