/*
 * json.c -- JSON in. Parsing is cJSON's (Debian's libcjson); this file adds typed field readers
 * that produce one clear message per bad field, and the half-precision conversion used by the
 * safetensors reader. JSON out is rr_buf (buf.c).
 */
#include "core.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

rr_status rr_json_parse(const char *text, size_t len, const char *what, cJSON **out) {
    rr_json_init();
    const char *end = NULL;
    rr_json_oom_reset();
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (rr_json_oom_reset()) {
        cJSON_Delete(j);
        return rr_fail(RR_ERR_NOMEM, "%s: out of memory parsing JSON", what);
    }
    if (!j) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return rr_fail(RR_ERR_FORMAT, "%s: invalid JSON near byte %zu", what, at);
    }
    *out = j;
    return RR_OK;
}

rr_status rr_json_get_int(const cJSON *obj, const char *key, long lo, long hi, const char *what,
                          long *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return RR_ERR_NOT_FOUND;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return rr_fail(RR_ERR_FORMAT, "%s: field \"%s\" must be an integer", what, key);
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return rr_fail(RR_ERR_FORMAT, "%s: field \"%s\" = %.0f is outside [%ld, %ld]", what, key,
                       v->valuedouble, lo, hi);
    *out = (long)v->valuedouble;
    return RR_OK;
}

rr_status rr_json_get_double(const cJSON *obj, const char *key, const char *what, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return RR_ERR_NOT_FOUND;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return rr_fail(RR_ERR_FORMAT, "%s: field \"%s\" must be a finite number", what, key);
    *out = v->valuedouble;
    return RR_OK;
}

rr_status rr_json_need_int(const cJSON *obj, const char *what, const char *key, long lo, long hi, int *out) {
    long v;
    rr_status s = rr_json_get_int(obj, key, lo, hi, what, &v);
    if (s == RR_ERR_NOT_FOUND) return rr_fail(RR_ERR_FORMAT, "%s: missing field \"%s\"", what, key);
    if (s == RR_OK) *out = (int)v;
    return s;
}

rr_status rr_json_opt_int(const cJSON *obj, const char *what, const char *key, long lo, long hi, int dflt,
                          int *out) {
    long v;
    rr_status s = rr_json_get_int(obj, key, lo, hi, what, &v);
    if (s == RR_ERR_NOT_FOUND) {
        *out = dflt;
        return RR_OK;
    }
    if (s == RR_OK) *out = (int)v;
    return s;
}

const char *rr_json_get_str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

float rr_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
